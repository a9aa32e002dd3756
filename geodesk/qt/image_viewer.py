"""The image viewer: zoom, pan, fit, EXIF orientation, and rectangular regions drawn over the image.

Scene coordinates are the image's pixels after its EXIF orientation is applied (QImageReader's
auto-transform), which is exactly the frame :class:`geodesk.domain.model.Region` is defined in, so a
rectangle drawn here is stored as is. The image is decoded in a worker; only the QPixmap conversion
happens on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QImageReader,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from geodesk.domain.model import Region

MIN_REGION_PX = 4  # smaller drags are clicks, not regions
ZOOM_STEP = 1.25
KIND_COLOURS = {"clue": QColor("#f08c00"), "hint": QColor("#1c7ed6"), "pending": QColor("#e03131")}


def load_evidence_image(path: Path, orientation: int) -> QImage:
    """Decode an original upright, the way the import pipeline does (same orientation table, same
    decompression-bomb limit, HEIC when installed). Safe in a worker: QImage is not a GUI object.
    """
    from geodesk.evidence.formats import default_max_pixels, open_image
    from geodesk.evidence.thumbnails import apply_orientation, to_rgb

    image = open_image(path, max_pixels=default_max_pixels())
    try:
        rgb = to_rgb(apply_orientation(image, orientation))
        width, height = rgb.size
        data = rgb.tobytes()  # (H, W, 3) uint8, rows packed: bytes per line = 3 * W
    finally:
        image.close()
    # Converted here, in the worker, to the format the raster paint engine draws natively: the UI
    # thread's QPixmap.fromImage then copies no pixels into another format (a 12 MP photo costs
    # tens of milliseconds to convert).
    image_rgb = QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image_rgb.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def load_oriented_image(path: str) -> QImage:
    """Decode any image Qt reads with its EXIF orientation applied (files outside a case)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"cannot show {path}: {reader.errorString()}")
    return image


@dataclass(frozen=True, slots=True)
class PinnedRegion:
    key: str  # e.g. "clue:12" or "hint:3"; unique within the viewer
    region: Region
    label: str
    kind: str  # "clue" | "hint"


class RegionItem(QGraphicsRectItem):
    def __init__(self, pinned: PinnedRegion) -> None:
        r = pinned.region
        super().__init__(QRectF(r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0))
        self.pinned = pinned
        colour = KIND_COLOURS.get(pinned.kind, QColor("#ae3ec9"))
        pen = QPen(colour, 2)
        pen.setCosmetic(True)  # stays 2 px wide at any zoom
        self.setPen(pen)
        fill = QColor(colour)
        fill.setAlpha(40)
        self.setBrush(QBrush(fill))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setZValue(10)
        self.setToolTip(pinned.label)  # tooltips are plain text unless they look like rich text
        text = QGraphicsSimpleTextItem(pinned.label[:40], self)  # simple text items never parse markup
        text.setBrush(QBrush(colour))
        text.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        text.setPos(r.x0, r.y0)

    def set_highlighted(self, on: bool) -> None:
        pen = self.pen()
        pen.setWidth(4 if on else 2)
        self.setPen(pen)


class ImageViewer(QGraphicsView):
    region_drawn = Signal(object)  # Region
    region_selected = Signal(str)  # PinnedRegion.key, "" when the selection is cleared
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QBrush(QColor("#2b2b2b")))
        self._pixmap_item: QGraphicsPixmapItem | None = None
        self._regions: dict[str, RegionItem] = {}
        self._draw_mode = False
        self._drag_origin: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None
        self._pending: QGraphicsRectItem | None = None
        self.pending_region: Region | None = None
        self._scene.selectionChanged.connect(self._on_selection)

    # ---- image -------------------------------------------------------------------------------
    def set_image(self, image: QImage | None) -> None:
        self.clear_pending()
        for item in list(self._regions.values()):
            self._scene.removeItem(item)
        self._regions.clear()
        if self._pixmap_item is not None:
            self._scene.removeItem(self._pixmap_item)
            self._pixmap_item = None
        if image is None or image.isNull():
            self._scene.setSceneRect(QRectF())
            return
        self._pixmap_item = self._scene.addPixmap(QPixmap.fromImage(image))
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.setSceneRect(QRectF(image.rect()))
        self.fit()

    def has_image(self) -> bool:
        return self._pixmap_item is not None

    def image_rect(self) -> QRectF:
        return QRectF() if self._pixmap_item is None else self._pixmap_item.boundingRect()

    # ---- zoom / pan --------------------------------------------------------------------------
    def fit(self) -> None:
        if self._pixmap_item is not None:
            self.fitInView(self._pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.zoom())

    def zoom(self) -> float:
        return float(self.transform().m11())

    def zoom_by(self, factor: float) -> None:
        new = self.zoom() * factor
        if 0.02 <= new <= 40:
            self.scale(factor, factor)
            self.zoom_changed.emit(self.zoom())

    def actual_size(self) -> None:
        self.resetTransform()
        self.zoom_changed.emit(1.0)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP**steps)
        event.accept()

    # ---- drawing -----------------------------------------------------------------------------
    def set_draw_mode(self, on: bool) -> None:
        self._draw_mode = on
        self.setDragMode(QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor)

    def draw_mode(self) -> bool:
        return self._draw_mode

    def _clamped(self, pos: QPointF) -> QPointF:
        rect = self.image_rect()
        return QPointF(
            min(max(pos.x(), rect.left()), rect.right()), min(max(pos.y(), rect.top()), rect.bottom())
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._draw_mode and self.has_image() and event.button() == Qt.MouseButton.LeftButton:
            self._drag_origin = self._clamped(self.mapToScene(event.position().toPoint()))
            pen = QPen(KIND_COLOURS["pending"], 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber = self._scene.addRect(QRectF(self._drag_origin, self._drag_origin), pen)
            self._rubber.setZValue(20)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._drag_origin is not None and self._rubber is not None:
            here = self._clamped(self.mapToScene(event.position().toPoint()))
            self._rubber.setRect(QRectF(self._drag_origin, here).normalized())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._drag_origin is not None and self._rubber is not None:
            here = self._clamped(self.mapToScene(event.position().toPoint()))
            rect = QRectF(self._drag_origin, here).normalized()
            self._scene.removeItem(self._rubber)
            self._rubber = None
            self._drag_origin = None
            event.accept()
            if rect.width() >= MIN_REGION_PX and rect.height() >= MIN_REGION_PX:
                region = Region(
                    round(rect.left()), round(rect.top()), round(rect.right()), round(rect.bottom())
                )
                self.set_pending(region)
                self.region_drawn.emit(region)
            return
        super().mouseReleaseEvent(event)

    def set_pending(self, region: Region | None) -> None:
        """The drawn region not yet pinned to a hint or clue (dashed red)."""
        self.clear_pending()
        if region is None:
            return
        pen = QPen(KIND_COLOURS["pending"], 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._pending = self._scene.addRect(
            QRectF(region.x0, region.y0, region.x1 - region.x0, region.y1 - region.y0), pen
        )
        self._pending.setZValue(15)
        self.pending_region = region

    def clear_pending(self) -> None:
        if self._pending is not None:
            self._scene.removeItem(self._pending)
        self._pending = None
        self.pending_region = None

    # ---- pinned regions ----------------------------------------------------------------------
    def set_regions(self, pinned: list[PinnedRegion]) -> None:
        for item in list(self._regions.values()):
            self._scene.removeItem(item)
        self._regions.clear()
        for p in pinned:
            item = RegionItem(p)
            self._scene.addItem(item)
            self._regions[p.key] = item

    def regions(self) -> list[PinnedRegion]:
        return [item.pinned for item in self._regions.values()]

    def highlight(self, key: str | None) -> None:
        """Select the region with ``key`` (None clears) and bring it into view."""
        self._scene.clearSelection()
        for k, item in self._regions.items():
            item.set_highlighted(k == key)
        if key is not None and key in self._regions:
            item = self._regions[key]
            item.setSelected(True)
            self.ensureVisible(item, 40, 40)

    def selected_key(self) -> str | None:
        for key, item in self._regions.items():
            if item.isSelected():
                return key
        return None

    def _on_selection(self) -> None:
        self.region_selected.emit(self.selected_key() or "")
