"""The evidence grid: thumbnails of a case's images; drop files or folders on it to import them.

Thumbnails are read from the case's ``thumbs/`` folder in a worker (QImage is safe off the UI thread,
QPixmap is not) and set as icons when they arrive.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QImage,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from geodesk.domain.model import Evidence
from geodesk.qt.workers import TaskContext, TaskRunner

SHA_ROLE = Qt.ItemDataRole.UserRole
THUMB_EDGE = 128


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
        placeholder = QPixmap(THUMB_EDGE, THUMB_EDGE)
        placeholder.fill(QColor("#dee2e6"))
        self._placeholder = QIcon(placeholder)
        self.selectionModel().currentChanged.connect(self._on_current)

    def set_evidence(self, items: list[Evidence], thumbs_dir: Path | None) -> None:
        current = self.current_sha()
        known = set(self._items)
        wanted = {e.sha256 for e in items}
        if wanted != known:
            self.model_.clear()
            self._items.clear()
            for e in items:
                item = QStandardItem(self._placeholder, e.original_name)
                item.setData(e.sha256, SHA_ROLE)
                item.setToolTip(f"{e.original_name}\n{e.width}×{e.height} {e.format}\n{e.sha256[:16]}")
                item.setEditable(False)
                self.model_.appendRow(item)
                self._items[e.sha256] = item
            if thumbs_dir is not None:
                self._load_thumbs([e.sha256 for e in items], thumbs_dir)
        if current in self._items:
            self.select_sha(current)

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
        for sha, image in images.items():
            item = self._items.get(sha)
            if item is not None:
                item.setIcon(QIcon(QPixmap.fromImage(image)))

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
