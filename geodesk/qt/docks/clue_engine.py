"""The clue engine's docks: its clues with review, run, sun and send (Engine clues), and the combined
constraint's leading countries with the turns that contradict the accepted clues (Leading countries).

Both show the selected item only: they redraw from ``state.engine_clues``, ``state.clue_constraint``,
``state.turn_flags`` and ``state.sun_marks``, which the selection resets (never another item's data).
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from geodesk.app import Application
from geodesk.app.controllers.clue_engine import ENGINE_JOB, REVIEWED
from geodesk.qt.docks.base import Dock
from geodesk.qt.engine_clue_panel import EngineCluePanel
from geodesk.qt.leading_countries import LeadingCountriesPanel


class EngineCluesDock(Dock):
    title, name = "Engine clues", "engineCluesDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.panel = panel = EngineCluePanel(self)
        self.setWidget(panel)
        engine = app.clue_engine
        panel.status_requested.connect(app.clues.set_status)
        panel.edit_requested.connect(app.clues.edit)
        panel.run_requested.connect(lambda: engine.run())
        panel.run_region_requested.connect(lambda: engine.run(self.state.pending_region))
        panel.send_requested.connect(engine.send_accepted)
        panel.sun_marking_toggled.connect(engine.set_sun_marking)
        panel.add_sun_requested.connect(engine.add_sun)
        panel.clear_sun_requested.connect(engine.clear_sun_marks)
        panel.clue_selected.connect(lambda clue_id: setattr(self.state, "selected_clue", clue_id))
        self.watch("engine_clues", lambda clues: panel.set_clues(list(clues)))
        self.watch("selected_clue", panel.select_clue)
        self.watch("sun_marks", panel.set_sun_marks)
        self.watch("sun_marking", panel.set_sun_marking)
        self.watch("evidence", self._selection_changed)
        self.watch_all(("evidence", "busy", "pending_region", "session", "engine_clues"), self._update)
        self._selection_changed(self.state.evidence)
        self._update()

    def _selection_changed(self, evidence: object) -> None:
        self.panel.reset_sun_form()
        self.panel.setEnabled(evidence is not None)

    def _update(self) -> None:
        s = self.state
        self.panel.set_running(ENGINE_JOB in s.busy)
        self.panel.set_can_run(s.has_evidence and ENGINE_JOB not in s.busy, s.pending_region is not None)
        accepted = any(c.clue.status in REVIEWED for c in s.engine_clues)
        self.panel.set_can_send(s.session is not None and accepted and not s.model_running)


class LeadingCountriesDock(Dock):
    title, name = "Leading countries", "leadingCountriesDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.panel = LeadingCountriesPanel(self)
        self.setWidget(self.panel)
        self.watch_all(("evidence", "clue_constraint"), self._show_constraint)
        self.watch_all(("evidence", "turn_flags", "turns"), self._show_flags)
        self._show_constraint()
        self._show_flags()

    def _show_constraint(self) -> None:
        self.panel.show_constraint(None if self.state.evidence is None else self.state.clue_constraint)

    def _show_flags(self) -> None:
        numbers = {t.id: t.number for t in self.state.turns if t.id is not None}
        self.panel.show_flags(list(self.state.turn_flags) if self.state.evidence is not None else [], numbers)
