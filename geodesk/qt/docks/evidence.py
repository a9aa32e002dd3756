"""The evidence grid (thumbnails, located and EXIF badges) and the metadata of the selected item."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from geodesk.app import Application
from geodesk.domain.model import Evidence
from geodesk.qt.docks.base import Dock
from geodesk.qt.evidence_grid import EvidenceGrid
from geodesk.qt.finding_panel import MetadataPanel
from geodesk.qt.workers import TaskRunner


class EvidenceDock(Dock):
    title, name = "Evidence", "evidenceDock"

    def __init__(self, app: Application, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.grid = EvidenceGrid(runner, self)
        self.setWidget(self.grid)
        self.grid.files_dropped.connect(app.evidence.import_paths)
        self.grid.evidence_selected.connect(lambda sha: app.evidence.select(sha) if sha else None)
        self.watch("evidence_items", lambda _items: self._show_items())
        self.watch("located", lambda located: self.grid.set_located(set(located)))
        self.watch("evidence", self._show_selected)

    def _show_items(self) -> None:
        store = self.app.ctx.store
        thumbs = None if store is None else store.thumbs_dir
        self.grid.set_evidence(list(self.state.evidence_items), thumbs, set(self.state.located))
        self._show_selected(self.state.evidence)

    def _show_selected(self, evidence: Evidence | None) -> None:
        if evidence is not None and self.grid.current_sha() != evidence.sha256:
            self.grid.select_sha(evidence.sha256)


class MetadataDock(Dock):
    title, name = "Metadata", "metadataDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.panel = MetadataPanel(self)
        self.setWidget(self.panel)
        self.watch("evidence", self.panel.show_evidence)
        self.panel.show_evidence(self.state.evidence)
