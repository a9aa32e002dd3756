"""The prediction history (table + plot of how far each turn moved) and the map of the selected item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget

from geodesk.app import Application
from geodesk.qt.docks.base import Dock
from geodesk.qt.history_panel import HistoryPanel
from geodesk.qt.map_view import MapView
from geodesk.qt.workers import TaskRunner
from geodesk.report.history import flags_by_turn, history_rows, reference_point
from geodesk.report.map_page import map_state
from geodesk.services.case_layers import case_map_layers


class HistoryDock(Dock):
    title, name = "History", "historyDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.panel = HistoryPanel(self)
        self.setWidget(self.panel)
        self.panel.turn_selected.connect(lambda index: setattr(self.state, "selected_turn", index))
        self.watch("selected_turn", lambda index: None if index is None else self.panel.select_turn(index))
        self.watch_all(("turns", "evidence", "finding", "selection_loading"), self._show)
        self.watch_all(("turns", "evidence", "turn_flags"), self._show_flags)

    def _show(self) -> None:
        s = self.state
        if s.evidence is None or s.selection_loading:
            self.panel.set_rows([], None)  # the table, the plot and its axes of nothing (yet)
            return
        rows = history_rows(list(s.turns), s.evidence, s.finding)
        self.panel.set_rows(rows, reference_point(s.evidence, s.finding))

    def _show_flags(self) -> None:
        """The contradiction flags of the shown turns (state.turn_flags: the selected item's only)."""
        index = {t.id: t.index for t in self.state.turns if t.id is not None}
        against = flags_by_turn(self.state.turn_flags if self.state.evidence is not None else ())
        self.panel.set_flags({index[turn]: lines for turn, lines in against.items() if turn in index})


class MapDock(Dock):
    title, name = "Map", "mapDock"

    def __init__(self, app: Application, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        page = Path(app.workspace_path) / "cache" / "map-page.html"
        self.view = MapView(runner, page, self)
        self.setWidget(self.view)
        self.view.finding_clicked.connect(app.findings.propose_point)  # proposes; Save records
        self.view.failed.connect(lambda m: app.ctx.say("Map", m))
        self._shown_for: str | None = None  # the evidence hash the map was last fitted to
        self._fitted_loaded: str | None = None  # ... and fitted to once its rows were in
        # The case's map layers, read once per case (files on disk; refresh() reads them again).
        self._layers: tuple[Path | None, list[dict[str, Any]]] = (None, [])
        # A turn whose answer an accepted clue contradicts is marked on its marker and in its popup.
        self.watch_all(("evidence", "turns", "finding", "selection_loading", "turn_flags"), self._show)
        self.view.turn_clicked.connect(lambda index: setattr(self.state, "selected_turn", index))
        self.watch("selected_turn", self.view.select_turn)
        self.watch("tile_folder", lambda folder: self.view.build(folder, self.state.workspace))
        self.state.map_sources_changed.connect(self._sources_changed)

    def _sources_changed(self, what: str) -> None:
        """A tile set was installed or removed (the page is built again with the sets it draws), or
        the case's layers changed (the selection is drawn again with them)."""
        if what == "tilesets":
            self.view.build(self.state.tile_folder, self.state.workspace)
        else:
            self._show()

    def refresh(self) -> None:
        """Draw the selection again (the case's map layers were changed from outside the state)."""
        self._layers = (None, [])
        self._show()

    def _case_layers(self) -> list[dict[str, Any]]:
        case = self.state.case
        path = None if case is None else Path(case.path)
        if path is None:
            return []
        if self._layers[0] != path:
            self._layers = (path, case_map_layers(path))
        return self._layers[1]

    def _show(self) -> None:
        s = self.state
        sha = None if s.evidence is None else s.evidence.sha256
        fit, self._shown_for = sha != self._shown_for, sha  # a newly selected item: fit its markers
        if s.evidence is None:
            self.view.set_state(map_state([]), fit=True)  # nothing's data: an empty map, the world view
            return
        if s.selection_loading:  # the item and its EXIF point; its turns and finding once they are in
            self._fitted_loaded = None
            self.view.set_state(map_state([], s.evidence, layers=self._case_layers()), fit=fit)
            return
        fit, self._fitted_loaded = fit or sha != self._fitted_loaded, sha
        # The case's own map layers (KML/GeoJSON/GPX an analyst imported) are drawn with its items.
        layers = self._case_layers()
        caveat = None if s.session is None else s.session.model.caveat  # its sentence heads each popup
        self.view.set_state(map_state(list(s.turns), s.evidence, s.finding, layers=layers, caveat=caveat,
                                      flags=s.turn_flags), fit=fit)
