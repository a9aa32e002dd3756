"""The evidence grid: thumbnails of a case's images; drop files or folders on it to import them.

Thumbnails are read from the case's ``thumbs/`` folder in a worker (QImage is safe off the UI thread,
QPixmap is not) and set as icons when they arrive. Two badges are painted on a thumbnail:

- "EXIF" (bottom left) when the thumbnail is the camera's embedded EXIF thumbnail
  (``metadata["thumbnail_source"] == "exif-embedded"``): an edited photo can keep its pre-edit camera
  thumbnail, so the grid may show what the original no longer does; the viewer always decodes the
  original;
- a check mark (top right) when the item has a finished session (located).

A large case must not stall the UI thread: an item with no thumbnail yet shares one painted
placeholder per badge combination, and thumbnails that arrive are painted in small chunks
(:data:`PAINT_CHUNK` per event-loop turn), so a click or a repaint waits for a chunk at most.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QIcon,
    QImage,
    QPainter,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from geodesk.domain.model import Evidence
from geodesk.qt.text import plain_tip
from geodesk.qt.workers import TaskContext, TaskRunner

SHA_ROLE = Qt.ItemDataRole.UserRole
EXIF_THUMB_ROLE = Qt.ItemDataRole.UserRole + 1  # bool: the thumbnail is the camera's embedded one
LOCATED_ROLE = Qt.ItemDataRole.UserRole + 2  # bool: the item has a finished session
THUMB_EDGE = 128
PAINT_CHUNK = 25  # thumbnails badged and set per event-loop turn (~0.2 ms each)
EXIF_THUMB_NOTE = (
    "Thumbnail from the camera's EXIF; the viewer shows the decoded original. An edited photo can keep "
    "its pre-edit camera thumbnail, so compare with the original before relying on it."
)


def is_exif_thumbnail(evidence: Evidence) -> bool:
    return evidence.metadata.get("thumbnail_source") == "exif-embedded"


def badged(image: QImage | None, exif_thumb: bool, located: bool) -> QPixmap:
    """The grid icon: the thumbnail (or a grey square) centred in a square, with its badges painted on."""
    canvas = QPixmap(THUMB_EDGE, THUMB_EDGE)
    canvas.fill(QColor("#dee2e6") if image is None else QColor(0, 0, 0, 0))
    painter = QPainter(canvas)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if image is not None:
            painter.drawImage((THUMB_EDGE - image.width()) // 2, (THUMB_EDGE - image.height()) // 2, image)
        font = QFont(painter.font())
        font.setPixelSize(11)
        font.setBold(True)
        painter.setFont(font)
        if exif_thumb:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#e8590c"))
            painter.drawRoundedRect(2, THUMB_EDGE - 18, 34, 16, 3, 3)
            painter.setPen(QColor("white"))
            painter.drawText(2, THUMB_EDGE - 18, 34, 16, Qt.AlignmentFlag.AlignCenter, "EXIF")
        if located:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#2b8a3e"))
            painter.drawEllipse(THUMB_EDGE - 20, 2, 18, 18)
            painter.setPen(QColor("white"))
            painter.drawText(THUMB_EDGE - 20, 2, 18, 18, Qt.AlignmentFlag.AlignCenter, "✓")
    finally:
        painter.end()
    return canvas


class EvidenceGrid(QListView):
    files_dropped = Signal(list)  # list[Path]
    evidence_selected = Signal(str)  # sha256, "" when nothing is selected

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evidenceGrid")
        self._runner = runner
        self.model_ = QStandardItemModel(self)
        self.setModel(self.model_)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(THUMB_EDGE, THUMB_EDGE))
        self.setGridSize(QSize(THUMB_EDGE + 24, THUMB_EDGE + 36))
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self._items: dict[str, QStandardItem] = {}
        self._thumbs: dict[str, QImage] = {}
        self._located: set[str] = set()
        self._placeholders: dict[tuple[bool, bool], QIcon] = {}  # (exif thumb, located) -> icon
        self._to_paint: list[str] = []  # thumbnails arrived, not painted yet (painted in chunks)
        self.selectionModel().currentChanged.connect(self._on_current)

    def set_evidence(
        self, items: list[Evidence], thumbs_dir: Path | None, located: set[str] | None = None
    ) -> None:
        current = self.current_sha()
        known = set(self._items)
        wanted = {e.sha256 for e in items}
        if located is not None:
            self._located = set(located)
        if wanted != known:
            self.model_.clear()
            self._items.clear()
            self._thumbs.clear()
            self._to_paint.clear()
            for e in items:
                item = QStandardItem(e.original_name)
                item.setData(e.sha256, SHA_ROLE)
                exif_thumb = is_exif_thumbnail(e)
                item.setData(exif_thumb, EXIF_THUMB_ROLE)
                tip = f"{e.original_name}\n{e.width}×{e.height} {e.format}\n{e.sha256[:16]}"
                item.setToolTip(plain_tip(tip + (f"\n\n{EXIF_THUMB_NOTE}" if exif_thumb else "")))
                item.setEditable(False)
                self.model_.appendRow(item)
                self._items[e.sha256] = item
                self._paint(e.sha256)
            if thumbs_dir is not None:
                self._load_thumbs([e.sha256 for e in items], thumbs_dir)
        else:
            for sha in self._items:
                self._paint(sha)
        if current in self._items:
            self.select_sha(current)

    def set_located(self, located: set[str]) -> None:
        """Mark the items that have a finished session."""
        changed = located ^ self._located
        self._located = set(located)
        for sha in changed:
            if sha in self._items:
                self._paint(sha)

    def located(self) -> set[str]:
        return {sha for sha, item in self._items.items() if item.data(LOCATED_ROLE)}

    def exif_thumbnails(self) -> set[str]:
        return {sha for sha, item in self._items.items() if item.data(EXIF_THUMB_ROLE)}

    def _paint(self, sha: str) -> None:
        item = self._items[sha]
        located = sha in self._located
        item.setData(located, LOCATED_ROLE)
        exif_thumb = bool(item.data(EXIF_THUMB_ROLE))
        thumb = self._thumbs.get(sha)
        if thumb is None:  # no picture yet: the same grey square for every such item
            key = (exif_thumb, located)
            if key not in self._placeholders:
                self._placeholders[key] = QIcon(badged(None, exif_thumb, located))
            item.setIcon(self._placeholders[key])
        else:
            item.setIcon(QIcon(badged(thumb, exif_thumb, located)))

    def _load_thumbs(self, shas: list[str], thumbs_dir: Path) -> None:
        def job(ctx: TaskContext) -> dict[str, QImage]:
            out = {}
            for sha in shas:
                if ctx.cancel.is_set():
                    break
                image = QImage(str(thumbs_dir / f"{sha}.jpg"))
                if not image.isNull():
                    out[sha] = image.scaled(
                        THUMB_EDGE,
                        THUMB_EDGE,
                        Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation,
                    )
            return out

        self._runner.start(job, "load thumbnails", on_result=self._set_thumbs)

    def _set_thumbs(self, images: dict[str, QImage]) -> None:
        """Keep the thumbnails of items still listed and paint them a chunk per event-loop turn."""
        fresh = [sha for sha in images if sha in self._items]
        for sha in fresh:
            self._thumbs[sha] = images[sha]
        was_idle = not self._to_paint
        self._to_paint.extend(fresh)
        if was_idle and self._to_paint:
            self._paint_chunk()

    def _paint_chunk(self) -> None:
        chunk, self._to_paint = self._to_paint[:PAINT_CHUNK], self._to_paint[PAINT_CHUNK:]
        for sha in chunk:
            if sha in self._items:  # another case may have been opened meanwhile
                self._paint(sha)
        if self._to_paint:
            QTimer.singleShot(0, self, self._paint_chunk)

    def painting(self) -> bool:
        """Thumbnails have arrived that are not painted yet."""
        return bool(self._to_paint)

    def shas(self) -> list[str]:
        return list(self._items)

    def current_sha(self) -> str:
        index = self.currentIndex()
        return str(index.data(SHA_ROLE)) if index.isValid() else ""

    def select_sha(self, sha: str) -> None:
        item = self._items.get(sha)
        if item is not None:
            self.setCurrentIndex(item.index())

    def _on_current(self) -> None:
        self.evidence_selected.emit(self.current_sha())

    # ---- drag and drop of files and folders ---------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
        else:
            super().dropEvent(event)
