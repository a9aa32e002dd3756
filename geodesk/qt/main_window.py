"""The main window: it composes the image pane, the docks, the menus, the toolbar and the status bar.

It holds no application logic. The state and the controllers are a Qt-free
:class:`geodesk.app.Application`; each dock (geodesk.qt.docks) and dialog (geodesk.qt.dialogs) is
built from it and subscribes to its state. Actions are data (geodesk.app.actions plus the view's own
below), turned into QActions once and enabled from the state on every change. The window keeps the
dock layout (per workspace, geodesk.qt.settings) and answers the actions' prompts (title, files).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QProgressBar, QPushButton

from geodesk.app import Application
from geodesk.app.actions import ActionSpec, app_actions
from geodesk.app.jobs import JobRunner
from geodesk.app.state import Message, Progress
from geodesk.qt.constraint_layer import ConstraintLayer
from geodesk.qt.dialogs.prompts import DialogPrompts
from geodesk.qt.docks.base import Dock
from geodesk.qt.docks.cases import CasesDock
from geodesk.qt.docks.clue_engine import EngineCluesDock, LeadingCountriesDock
from geodesk.qt.docks.clues import CluesDock, FindingDock
from geodesk.qt.docks.evidence import EvidenceDock, MetadataDock
from geodesk.qt.docks.history import HistoryDock, MapDock
from geodesk.qt.docks.image import ImagePane
from geodesk.qt.docks.session import HintsDock, SessionDock
from geodesk.qt.interpreter import settle
from geodesk.qt.layout import fit_to_screen, hide_stale_tab_bars, restore_layout
from geodesk.qt.settings import LAYOUT_VERSION, LayoutSettings
from geodesk.qt.sun_marking import SunMarker
from geodesk.qt.text import plain_label
from geodesk.qt.workers import TaskContext, TaskRunner

log = logging.getLogger(__name__)
DEFAULT_SIZE = (1400, 900)


class MainWindow(QMainWindow):
    def __init__(self, workspace: Path, *, restore_layout: bool = True, defer_startup: bool = False,
                 runner: JobRunner | None = None) -> None:
        """``defer_startup``: show the window first and import the store (sqlite-utils pulls in pandas)
        and pyqtgraph in a job; the app does this, tests build everything at once. ``runner``: the job
        runner (default: the Qt thread pool's)."""
        super().__init__()
        self.setObjectName("geodeskMainWindow")
        self.setWindowTitle("geodesk")
        self.runner = TaskRunner(self)
        self.app = Application(workspace, runner or self.runner)
        self.state = self.app.state
        self.layout_settings = LayoutSettings(self.app.workspace_path)
        self.viewer = ImagePane(self.app, self.runner, self)
        self.setCentralWidget(self.viewer)
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        self.docks: dict[str, Dock] = {}
        for key, dock, area in (
            ("cases", CasesDock(self.app, self), left),
            ("evidence", EvidenceDock(self.app, self.runner, self), left),
            ("metadata", MetadataDock(self.app, self), left),
            ("map", MapDock(self.app, self.runner, self), right),
            ("session", SessionDock(self.app, self), right),
            ("hints", HintsDock(self.app, self), right),
            ("history", HistoryDock(self.app, self), bottom),
            ("clues", CluesDock(self.app, self), right),
            ("finding", FindingDock(self.app, self), right),
            ("engine_clues", EngineCluesDock(self.app, self), right),
            ("leading", LeadingCountriesDock(self.app, self), bottom),
        ):
            self.docks[key] = dock
            self.addDockWidget(area, dock)
        self._arrange_docks()
        self.sun_marker = SunMarker(self.app, self.viewer)
        self.constraint_layer = ConstraintLayer(self.app, self.docks["map"].view)  # type: ignore[attr-defined]
        self.acts = self._build_actions()
        cases = self.docks["cases"]
        cases.new_button.clicked.connect(self.acts["new_case"].trigger)  # type: ignore[attr-defined]
        cases.open_button.clicked.connect(self.acts["open_case"].trigger)  # type: ignore[attr-defined]
        self._build_menus()
        self._build_status_bar()
        fit_to_screen(self, DEFAULT_SIZE)
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._sized = restore_layout and self.restore_layout()  # default proportions after the first show
        self.state.watch_any(tuple(self.state.events.signals), self._update_actions)
        self.state.message.connect(self._show_message)
        self.state.watch("status", self.status_label.setText)
        self.state.watch("progress", self._show_progress)
        self.state.watch_any(("case", "model"), self._update_title)
        self.state.batch_finished.connect(self._batch_summary)
        self._update_actions()
        if defer_startup:
            self.app.ctx.status("Starting…")
            self.runner.start(_preload, "preload libraries", on_result=lambda _: self.finish_startup(),
                              on_failed=lambda m: self.app.ctx.say("Start", m))
        else:
            self.finish_startup()

    def finish_startup(self) -> None:
        """The parts that need the store or pyqtgraph: cases, the model, the plot, the map page."""
        if self.state.started:
            return
        self.docks["history"].panel.ensure_plot()  # type: ignore[attr-defined]
        self.app.start()
        self.docks["map"].view.build(self.state.tile_folder, self.state.workspace)  # type: ignore[attr-defined]
        settle()  # the libraries' objects leave the collector's full passes (geodesk/qt/interpreter.py)
        self.state.watch("case", lambda _case: QTimer.singleShot(0, settle))  # and what opening loaded

    # ------------------------------------------------------------------ layout
    def _arrange_docks(self) -> None:
        # The side columns run the full height; the bottom docks sit under the image only, so the map
        # keeps its height and the history gets the width between the columns.
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        for corner, area in ((Qt.Corner.BottomLeftCorner, left), (Qt.Corner.BottomRightCorner, right),
                             (Qt.Corner.TopLeftCorner, left), (Qt.Corner.TopRightCorner, right)):
            self.setCorner(corner, area)
        d = self.docks
        self.tabifyDockWidget(d["evidence"], d["metadata"])
        for key in ("hints", "clues", "engine_clues", "finding"):
            self.tabifyDockWidget(d["session"], d[key])
        self.tabifyDockWidget(d["history"], d["leading"])
        d["history"].raise_()
        d["evidence"].raise_()
        d["session"].raise_()
        for dock in d.values():
            dock.dockLocationChanged.connect(self._schedule_tab_bar_check)
            dock.topLevelChanged.connect(self._schedule_tab_bar_check)
        self.tabifiedDockWidgetActivated.connect(self._schedule_tab_bar_check)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            fit_to_screen(self, DEFAULT_SIZE)  # the screen it opened on is known now
            self.apply_default_sizes()

    def apply_default_sizes(self) -> None:
        """Default proportions: a tall map above the session, a narrow left column that still shows the
        metadata values, the history wider than the clues. resizeDocks needs a laid-out window."""
        vertical, horizontal = Qt.Orientation.Vertical, Qt.Orientation.Horizontal
        d, w, h = self.docks, max(self.width(), 1000), max(self.height(), 600)
        self.resizeDocks([d["cases"], d["evidence"]], [int(h * 0.18), int(h * 0.62)], vertical)
        self.resizeDocks([d["cases"], d["map"]], [max(int(w * 0.17), 230), int(w * 0.30)], horizontal)
        self.resizeDocks([d["map"], d["session"]], [int(h * 0.50), int(h * 0.50)], vertical)
        self.resizeDocks([d["history"]], [int(h * 0.30)], vertical)
        d["history"].panel.balance()  # type: ignore[attr-defined]
        self._schedule_tab_bar_check()

    def _schedule_tab_bar_check(self, *_: Any) -> None:
        QTimer.singleShot(0, lambda: hide_stale_tab_bars(self))

    def restore_layout(self) -> bool:
        return restore_layout(self, self.layout_settings)

    def save_layout(self) -> None:
        self.layout_settings.set_window_layout(self.saveGeometry(), self.saveState(LAYOUT_VERSION))

    def reset_layout(self) -> None:
        self.restoreState(QByteArray(self._default_state), LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.setVisible(True)
        self.apply_default_sizes()

    # ------------------------------------------------------------------ actions and menus
    def _view_actions(self) -> list[ActionSpec]:
        v = self.viewer
        has_image = lambda s: s.has_evidence  # noqa: E731 - a one-line condition
        return [
            ActionSpec("fit", "&Fit image", v.fit, "Ctrl+0", menu="View", toolbar=True),
            ActionSpec("zoom_in", "Zoom &in", lambda: v.zoom_by(1.25), "ZoomIn", menu="View"),
            ActionSpec("zoom_out", "Zoom &out", lambda: v.zoom_by(0.8), "ZoomOut", menu="View"),
            ActionSpec("actual_size", "&Actual size", v.actual_size, "Ctrl+1", menu="View"),
            ActionSpec("draw_region", "&Draw region", lambda: None, "R", checkable=True, menu="View",
                       tip="Drag on the image to draw a region for a hint or a clue", enabled_when=has_image,
                       toolbar=True),
            ActionSpec("reset_layout", "&Reset layout", self.reset_layout, menu="Layout"),
            ActionSpec("quit", "&Quit", self.close, "Quit", menu="Quit"),
        ]

    def _build_actions(self) -> dict[str, QAction]:
        self.prompts = DialogPrompts(self.app, self, self.docks["cases"])  # type: ignore[arg-type]
        self.specs = {s.name: s for s in [*app_actions(self.app, self.prompts), *self._view_actions()]}
        acts: dict[str, QAction] = {}
        for spec in self.specs.values():
            act = QAction(spec.text, self)
            if spec.shortcut:
                standard = getattr(QKeySequence.StandardKey, spec.shortcut, None)
                act.setShortcut(QKeySequence(standard or spec.shortcut))
            act.setCheckable(spec.checkable)
            handler = spec.handler
            if spec.checkable:
                act.toggled.connect(self.viewer.set_draw_mode)
            else:
                act.triggered.connect(lambda _=False, h=handler: h())
            acts[spec.name] = act
        return acts

    def _update_actions(self) -> None:
        """Enable and explain every action from the state; Qt is told only what changed."""
        for name, spec in self.specs.items():
            on = bool(spec.enabled_when(self.state))
            act = self.acts[name]
            if act.isEnabled() != on:
                act.setEnabled(on)
            tip = spec.tip or spec.text.replace("&", "").rstrip("…")
            tip = tip if on or not spec.disabled_tip else spec.disabled_tip
            if act.toolTip() != tip:
                act.setToolTip(tip)
                act.setStatusTip(tip)

    def _build_menus(self) -> None:
        bar, a = self.menuBar(), self.acts
        menus = {"File": bar.addMenu("&File"), "View": bar.addMenu("&View"), "Models": bar.addMenu("&Models"),
                 "Clues": bar.addMenu("&Clues"), "Help": bar.addMenu("&Help")}
        for spec in self.specs.values():
            if spec.menu in menus:
                menus[spec.menu].addAction(a[spec.name])
        self.recent_menu = menus["File"].addMenu("Open &recent")
        menus["File"].addSeparator()
        menus["File"].addAction(a["quit"])
        self.state.watch_any(("recent_cases", "cases"), self._fill_recent)
        view = menus["View"]
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(a["reset_layout"])
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.addActions([a[s.name] for s in self.specs.values() if s.toolbar])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        titles = {c.id: c.title for c in self.state.cases}
        for case_id in self.state.recent_cases:
            act = self.recent_menu.addAction(f"{titles.get(case_id, case_id)} ({case_id})")
            act.triggered.connect(lambda _=False, cid=case_id: self.app.cases.open(cid))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(260)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.app.cancel_work)
        self.status_label = plain_label("", self, wrap=False)  # quotes file names and model text
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)

    def _show_progress(self, progress: Progress | None) -> None:
        self.progress.setVisible(progress is not None)
        self.cancel_button.setVisible(bool(self.state.busy & {"import", "turn", "replay", "batch"}))
        if progress is not None:
            self.progress.setRange(0, max(progress.total, 0))
            self.progress.setValue(progress.done)

    def _update_title(self) -> None:
        case, model = self.state.case, self.state.model
        title = "geodesk" if case is None else f"{case.title} — geodesk"
        untrained = model is not None and model.untrained
        self.setWindowTitle(title + (" [UNTRAINED trial model]" if untrained else ""))

    def _show_message(self, message: Message) -> None:
        """An error the analyst can act on, in a non-modal box (never blocks); its text stays plain."""
        if not message.error or not self.isVisible():
            return
        ok = QMessageBox.StandardButton.Ok
        box = QMessageBox(QMessageBox.Icon.Warning, message.title, message.text, ok, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _batch_summary(self, report: Any) -> None:
        if self.isVisible():
            from geodesk.qt.dialogs.batch import BatchSummaryDialog

            BatchSummaryDialog(self.app, report, self).open()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_layout()
        self.runner.cancel_all()
        self.runner.wait(10000)
        self.app.close()
        event.accept()


def _preload(ctx: TaskContext) -> None:
    """Import the slow libraries off the UI thread (imports are thread-safe; no Qt objects are made)."""
    import pyqtgraph  # noqa: F401

    import geodesk.store.case_store  # noqa: F401  (sqlite-utils, which imports pandas when installed)
