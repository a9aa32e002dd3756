"""The clue list of the selected item (grouped by category) and the finding form with its history."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from geodesk.app import Application
from geodesk.domain.model import Region
from geodesk.qt.clue_panel import CluePanel
from geodesk.qt.docks.base import Dock
from geodesk.qt.finding_panel import FindingEditor


class CluesDock(Dock):
    title, name = "Clues", "cluesDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.panel = panel = CluePanel(self)
        self.setWidget(panel)
        panel.status_requested.connect(app.clues.set_status)
        panel.edit_requested.connect(app.clues.edit)
        panel.add_requested.connect(self._add)
        self.watch("clues", lambda clues: panel.set_clues(list(clues)))
        self.watch("pending_region", panel.set_pending_region)
        self.watch("evidence", lambda e: panel.setEnabled(e is not None))
        panel.clue_selected.connect(
            lambda clue: setattr(self.state, "selected_clue", None if clue is None else clue.id)
        )
        self.watch("selected_clue", lambda clue_id: None if clue_id is None else panel.select_clue(clue_id))
        panel.setEnabled(self.state.evidence is not None)

    def _add(self, category: str, text: str, region: Region | None) -> None:
        self.app.clues.add(category, text, region)


class FindingDock(Dock):
    title, name = "Finding", "findingDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.editor = editor = FindingEditor(self)
        self.setWidget(editor)
        editor.save_requested.connect(app.findings.save)
        self.watch_all(("finding", "finding_history", "evidence"), self._show)
        self.watch("proposed_point", lambda p: editor.set_point(*p) if p is not None else None)
        self._show()

    def _show(self) -> None:
        self.editor.setEnabled(self.state.evidence is not None)
        self.editor.show_finding(self.state.finding, self.state.finding_history)
        if self.state.proposed_point is not None:
            self.editor.set_point(*self.state.proposed_point)
