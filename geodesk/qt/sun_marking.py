"""Sun marks on the image viewer: the analyst drags a box over a vertical object (a pole, a person, a
wall's edge: top to base) and clicks the tip of its shadow; the marks go to the clue engine controller
(``state.sun_marks``) and the sun clue is made from them (geodesk.services.clue_engine.add_sun_clue).

While ``state.sun_marking`` is on, an event filter on the viewer's viewport takes the mouse: a drag is
the object's box, a click the shadow's tip; the view does not pan meanwhile. The marks are drawn from
the state (the box, and a line from the base's middle to the tip), so a new selection, which resets
``sun_marks``, clears them. Scene coordinates are the upright image's pixels, the frame
:class:`geodesk.domain.model.Region` and the sun service use.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QLineF, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView

from geodesk.app import Application
from geodesk.app.state import SunMarks
from geodesk.domain.model import Region
from geodesk.qt.image_viewer import MIN_REGION_PX, ImageViewer

SUN_COLOUR = QColor("#fab005")


class SunMarker(QObject):
    def __init__(self, app: Application, viewer: ImageViewer) -> None:
        super().__init__(viewer)
        self.app = app
        self.viewer = viewer
        self._origin: QPointF | None = None
        self._rubber: QGraphicsItem | None = None
        self._drawn: list[QGraphicsItem] = []
        viewer.viewport().installEventFilter(self)
        app.state.watch("sun_marks", self._draw)
        app.state.watch("sun_marking", self._mode_changed)

    # -- the mode
    def _mode_changed(self, on: bool) -> None:
        self.viewer.setDragMode(
            QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag
        )
        self.viewer.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor)
        if on:
            self.app.ctx.status(
                "Sun: drag a box over a vertical object (top to base), then click its shadow's tip"
            )

    def _scene_point(self, event: QMouseEvent) -> QPointF:
        pos = self.viewer.mapToScene(event.position().toPoint())
        rect = self.viewer.image_rect()
        return QPointF(
            min(max(pos.x(), rect.left()), rect.right()), min(max(pos.y(), rect.top()), rect.bottom())
        )

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if not self.app.state.sun_marking or not self.viewer.has_image():
            return False
        kind = event.type()
        if kind not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease):
            return False
        assert isinstance(event, QMouseEvent)
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._origin = self._scene_point(event)
            pen = QPen(SUN_COLOUR, 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber = self.viewer.scene().addRect(QRectF(self._origin, self._origin), pen)
            self._rubber.setZValue(30)
            return True
        if kind == QEvent.Type.MouseMove and self._origin is not None and self._rubber is not None:
            rect = QRectF(self._origin, self._scene_point(event)).normalized()
            self._rubber.setRect(rect)  # type: ignore[attr-defined]
            return True
        if kind == QEvent.Type.MouseButtonRelease and self._origin is not None:
            here = self._scene_point(event)
            rect = QRectF(self._origin, here).normalized()
            self._origin = None
            if self._rubber is not None:
                self.viewer.scene().removeItem(self._rubber)
                self._rubber = None
            if rect.width() >= MIN_REGION_PX and rect.height() >= MIN_REGION_PX:
                box = Region(round(rect.left()), round(rect.top()), round(rect.right()), round(rect.bottom()))
                self.app.clue_engine.mark_object(box)
            else:  # a click: the shadow's tip
                self.app.clue_engine.mark_shadow_tip(here.x(), here.y())
            return True
        return kind != QEvent.Type.MouseMove  # other buttons do nothing while marking

    # -- drawing the marks
    def _draw(self, marks: SunMarks | None) -> None:
        scene = self.viewer.scene()
        for item in self._drawn:
            if item.scene() is scene:
                scene.removeItem(item)
        self._drawn = []
        if marks is None or marks.object_box is None:
            return
        pen = QPen(SUN_COLOUR, 2)
        pen.setCosmetic(True)
        b = marks.object_box
        self._drawn.append(scene.addRect(QRectF(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0), pen))
        if marks.shadow_tip is not None:
            base = QPointF((b.x0 + b.x1) / 2, b.y1)
            tip = QPointF(*marks.shadow_tip)
            shadow = QPen(SUN_COLOUR, 3, Qt.PenStyle.DashLine)
            shadow.setCosmetic(True)
            self._drawn.append(scene.addLine(QLineF(base, tip), shadow))
        for item in self._drawn:
            item.setZValue(25)

    def drawn(self) -> int:
        """How many mark items are on the image (tests)."""
        return len(self._drawn)
