"""The main window: case browser, evidence grid, image viewer and the docks around them.

It presents and delegates. Reads of a few rows come from the case store on the UI thread (SQLite in WAL
mode, milliseconds); everything that can take longer (import, image decoding, the map page, model
loading, inference, replay, batch) runs in workers through :class:`geodesk.qt.workers.TaskRunner`, each
worker with its own CaseStore connection. All actions are built in one place
(:meth:`MainWindow._build_actions`), labelme-style, and enabled from one place (:meth:`_update_actions`).
Model work (a turn, a replay, a batch) runs one at a time: they share the loaded backend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QImage, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from geodesk.domain.model import (
    Clue,
    ClueSource,
    ClueStatus,
    Evidence,
    Finding,
    FindingStatus,
    Hint,
    Region,
    Session,
    Turn,
    TurnStatus,
)
from geodesk.qt.clue_panel import CluePanel
from geodesk.qt.evidence_grid import EvidenceGrid
from geodesk.qt.finding_panel import FindingEditor, MetadataPanel
from geodesk.qt.hint_composer import HintComposer
from geodesk.qt.history_panel import HistoryPanel
from geodesk.qt.image_viewer import ImageViewer, PinnedRegion, load_evidence_image
from geodesk.qt.map_view import MapView
from geodesk.qt.model_host import (
    NO_MODEL,
    ModelChoice,
    backend_key,
    backend_request,
    current_choice,
    migrate_legacy_model,
    open_app_backend,
    registry_models,
)
from geodesk.qt.session_panel import SessionPanel
from geodesk.qt.settings import LAYOUT_VERSION, LayoutSettings
from geodesk.qt.workers import Task, TaskContext, TaskRunner
from geodesk.report.history import history_rows, reference_point
from geodesk.report.map_page import map_state
from geodesk.services.case_layers import case_map_layers

if TYPE_CHECKING:
    from geodesk.store import CaseStore, Workspace

log = logging.getLogger(__name__)

MODEL_BUSY = "the model is still working (a turn, a replay or a batch); stop it or wait"


@dataclass
class Actions:
    new_case: QAction
    open_case: QAction
    close_case: QAction
    import_files: QAction
    import_folder: QAction
    cancel_jobs: QAction
    quit: QAction
    fit: QAction
    zoom_in: QAction
    zoom_out: QAction
    actual_size: QAction
    draw_region: QAction
    load_model: QAction
    start_session: QAction
    stop_session: QAction
    replay_session: QAction
    locate_all: QAction
    model_manager: QAction
    settings: QAction
    reset_layout: QAction


class MainWindow(QMainWindow):
    case_changed = Signal(str)  # case id, "" when closed
    import_done = Signal(object)  # the import service's outcome
    turns_changed = Signal()
    model_changed = Signal()
    error_shown = Signal(str)
    replay_done = Signal(object)  # (replayed Session, list[ReplayStep])
    batch_done = Signal(object)  # services.batch.BatchReport
    started = Signal()  # the store and the plot are ready (see finish_startup)

    def __init__(self, workspace: Path, *, restore_layout: bool = True, defer_startup: bool = False) -> None:
        """``defer_startup``: show the window first and import the store (sqlite-utils pulls in pandas)
        and pyqtgraph in a worker; the app does this, tests build everything at once."""
        super().__init__()
        self.setObjectName("geodeskMainWindow")
        self.workspace_path = Path(workspace).expanduser().absolute()
        if self.workspace_path.exists() and not self.workspace_path.is_dir():
            raise ValueError(f"{self.workspace_path} is a file, not a folder; choose another --workspace")
        self.workspace_path.mkdir(parents=True, exist_ok=True)
        self._workspace: Workspace | None = None
        self.is_started = False
        self.layout_settings = LayoutSettings(self.workspace_path)
        self.runner = TaskRunner(self)
        self.store: CaseStore | None = None
        self.evidence: Evidence | None = None
        self.session: Session | None = None
        self.turns: list[Turn] = []
        self.finding: Finding | None = None
        self.backend: Any = None  # the loaded engine backend (geodesk.engine.backends), if any
        self._backend_key: tuple[Any, ...] | None = None  # what self.backend was opened for
        self.model_choice: str | None = None  # NAME@VERSION chosen in the session panel; None: active
        self.legacy_model_folder: Path | None = None  # settings.extra["desktop_model_path"], kept in use
        self.choice: ModelChoice | None = None  # what the next model call runs on
        self.last_batch: Any = None  # the last BatchReport
        self.replay_dialog: Any = None  # the last replay dialog opened (tests read it)
        self.errors: list[str] = []  # every message shown to the analyst, newest last (tests read it)
        self._import_task: Task | None = None
        self._session_task: Task | None = None
        self._model_task: Task | None = None
        self._batch_task: Task | None = None
        self._image_request = 0
        # Import processes of the import service (None: one per core; 0: none, in the importing thread).
        self.import_workers: int | None = None
        # Imports run in a child process (see geodesk.qt.import_process); tests import in the worker
        # thread instead (import_in_process=True, import_workers=0) to skip process start-up.
        self.import_in_process = False
        self.max_new_tokens = 256  # per model answer

        self.setWindowTitle("geodesk")
        self.resize(1400, 900)
        self.viewer = ImageViewer(self)
        self.setCentralWidget(self.viewer)
        self._build_docks()
        self.acts = self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._connect()
        self.resize(1400, 900)
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._layout_restored = restore_layout and self.restore_layout()
        self._sized = self._layout_restored  # default proportions are applied once the window is shown
        self._update_actions()
        if defer_startup:
            self.show_status("Starting…")
            self.runner.start(
                _preload,
                "preload libraries",
                on_result=lambda _: self.finish_startup(),
                on_failed=lambda m: self.show_error("Start", m),
            )
        else:
            self.finish_startup()

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from geodesk.store import Workspace

            self._workspace = Workspace(self.workspace_path)
        return self._workspace

    def finish_startup(self) -> None:
        """The parts that need the store or pyqtgraph: cases, model label, plot, map page."""
        if self.is_started:
            return
        self.history.ensure_plot()
        self._migrate_model_setting()
        self._refresh_cases()
        self._refresh_model_label()
        self.is_started = True
        self._update_actions()
        self.map.build(self._settings_value("tile_folder") or "", self.workspace_path)
        self.show_status(f"Workspace {self.workspace_path}")
        self.started.emit()

    # ------------------------------------------------------------------ construction
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            self.apply_default_sizes()

    def apply_default_sizes(self) -> None:
        """Default proportions for the window's current size: a tall map above the session, the left
        column narrow, the history (table and plot) wider than the clues. resizeDocks only takes effect
        on a laid-out window, hence after the first show."""
        vertical, horizontal = Qt.Orientation.Vertical, Qt.Orientation.Horizontal
        w, h = max(self.width(), 1000), max(self.height(), 700)
        right = int(w * 0.30)
        self.resizeDocks([self.cases_dock, self.evidence_dock], [int(h * 0.18), int(h * 0.62)], vertical)
        self.resizeDocks([self.cases_dock, self.map_dock], [int(w * 0.16), right], horizontal)
        self.resizeDocks([self.map_dock, self.session_dock], [int(h * 0.52), int(h * 0.48)], vertical)
        self.resizeDocks([self.history_dock], [int(h * 0.32)], vertical)
        self.history.balance()
        self._schedule_tab_bar_check()

    def _schedule_tab_bar_check(self, *_: Any) -> None:
        QTimer.singleShot(0, self.hide_stale_tab_bars)

    def hide_stale_tab_bars(self) -> None:
        """Hide the dock tab bars Qt left behind. Each tabifyDockWidget after the first makes two tab
        bars for the same group (PySide6 6.12); the layout moves one and leaves the other where the
        window's edge was, drawn over whatever is there now. The one in use sits right under one of
        its docks; a bar that touches none of its docks is not in use."""
        docks = {d.windowTitle(): d for d in self.findChildren(QDockWidget)}
        for bar in self.findChildren(QTabBar):
            if bar.parent() is not self or bar.isHidden():
                continue
            group = [docks[t] for t in (bar.tabText(i) for i in range(bar.count())) if t in docks]
            visible = [d for d in group if d.isVisible() and not d.isFloating()]
            if visible and not any(_touches(bar.geometry(), d.geometry()) for d in visible):
                bar.hide()

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState key
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right, bottom = (
            Qt.DockWidgetArea.LeftDockWidgetArea,
            Qt.DockWidgetArea.RightDockWidgetArea,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        cases = QWidget(self)
        self.case_list = QListWidget(cases)
        self.case_list.setObjectName("caseList")
        self.case_new_button = QPushButton("New…", cases)
        self.case_open_button = QPushButton("Open", cases)
        self.case_close_button = QPushButton("Close", cases)
        row = QHBoxLayout()
        for b in (self.case_new_button, self.case_open_button, self.case_close_button):
            row.addWidget(b)
        col = QVBoxLayout(cases)
        col.addWidget(self.case_list, 1)
        col.addLayout(row)
        self.grid = EvidenceGrid(self.runner, self)
        self.metadata = MetadataPanel(self)
        self.clue_panel = CluePanel(self)
        self.session_panel = SessionPanel(self)
        self.hints = HintComposer(self)
        self.history = HistoryPanel(self)
        self.map = MapView(self.runner, self.workspace_path / "cache" / "map-page.html", self)
        self.finding_editor = FindingEditor(self)

        self.cases_dock = self._dock("Cases", "casesDock", cases, left)
        self.evidence_dock = self._dock("Evidence", "evidenceDock", self.grid, left)
        self.metadata_dock = self._dock("Metadata", "metadataDock", self.metadata, left)
        self.map_dock = self._dock("Map", "mapDock", self.map, right)
        self.session_dock = self._dock("Session", "sessionDock", self.session_panel, right)
        self.hints_dock = self._dock("Hints", "hintsDock", self.hints, right)
        self.history_dock = self._dock("History", "historyDock", self.history, bottom)
        self.clues_dock = self._dock("Clues", "cluesDock", self.clue_panel, right)
        self.finding_dock = self._dock("Finding", "findingDock", self.finding_editor, right)
        # The side columns run the full height; the bottom docks sit under the image only, so the map
        # keeps its height and the history gets the width between the columns.
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self.setCorner(Qt.Corner.TopLeftCorner, left)
        self.setCorner(Qt.Corner.TopRightCorner, right)
        self.tabifyDockWidget(self.evidence_dock, self.metadata_dock)
        for dock in (self.hints_dock, self.clues_dock, self.finding_dock):
            self.tabifyDockWidget(self.session_dock, dock)
        self.evidence_dock.raise_()
        self.session_dock.raise_()
        for dock in self.findChildren(QDockWidget):
            dock.dockLocationChanged.connect(self._schedule_tab_bar_check)
            dock.topLevelChanged.connect(self._schedule_tab_bar_check)
        self.tabifiedDockWidgetActivated.connect(self._schedule_tab_bar_check)

    def _build_actions(self) -> Actions:
        def action(
            text: str,
            slot: Any,
            shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
            tip: str = "",
            checkable: bool = False,
        ) -> QAction:
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.setToolTip(tip or text.replace("&", "").rstrip("…"))
            a.setStatusTip(a.toolTip())
            a.setCheckable(checkable)
            (a.toggled if checkable else a.triggered).connect(slot)
            return a

        std = QKeySequence.StandardKey
        return Actions(
            new_case=action("&New case…", self._ask_new_case, std.New),
            open_case=action("&Open case", self._open_selected_case, std.Open),
            close_case=action("&Close case", self.close_case, std.Close),
            import_files=action("&Import images…", self._ask_import_files, "Ctrl+I"),
            import_folder=action("Import &folder…", self._ask_import_folder, "Ctrl+Shift+I"),
            cancel_jobs=action("Cancel &running work", self.cancel_work, "Esc"),
            quit=action("&Quit", self.close, std.Quit),
            fit=action("&Fit image", self.viewer.fit, "Ctrl+0"),
            zoom_in=action("Zoom &in", lambda: self.viewer.zoom_by(1.25), std.ZoomIn),
            zoom_out=action("Zoom &out", lambda: self.viewer.zoom_by(0.8), std.ZoomOut),
            actual_size=action("&Actual size", self.viewer.actual_size, "Ctrl+1"),
            draw_region=action(
                "&Draw region",
                self.viewer.set_draw_mode,
                "R",
                checkable=True,
                tip="Drag on the image to draw a region for a hint or a clue",
            ),
            load_model=action(
                "&Load model", self.load_model, tip="Load the active model now (in the background)"
            ),
            start_session=action(
                "&Start session",
                lambda: self.start_session(self.session_panel.mode.currentData()),
                "Ctrl+Return",
            ),
            stop_session=action("S&top", self.stop_session, "Ctrl+."),
            replay_session=action(
                "&Replay session…",
                self.show_replay,
                tip="Run this session's turns again on the active or another model and compare",
            ),
            locate_all=action(
                "Locate &all",
                self.locate_all,
                "Ctrl+Shift+Return",
                tip="Locate every image of the case that has no finished session on this model yet",
            ),
            model_manager=action("&Model manager…", self.show_model_manager),
            settings=action("&Settings…", self.show_settings, std.Preferences),
            reset_layout=action("&Reset layout", self.reset_layout),
        )

    def _build_menus(self) -> None:
        a = self.acts
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([a.new_case, a.open_case, a.close_case])
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        file_menu.addActions([a.import_files, a.import_folder, a.cancel_jobs])
        file_menu.addSeparator()
        file_menu.addAction(a.quit)
        view = bar.addMenu("&View")
        view.addActions([a.fit, a.zoom_in, a.zoom_out, a.actual_size, a.draw_region])
        view.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(a.reset_layout)
        models = bar.addMenu("&Models")
        models.addActions([a.load_model, a.start_session, a.stop_session, a.replay_session, a.locate_all])
        models.addSeparator()
        models.addActions([a.model_manager, a.settings])
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.addActions(
            [a.new_case, a.import_files, a.fit, a.draw_region, a.start_session, a.stop_session, a.locate_all]
        )

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(260)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_work)
        self.status_label = QLabel(self)
        bar = self.statusBar()
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    def _connect(self) -> None:
        self.case_new_button.clicked.connect(self._ask_new_case)
        self.case_open_button.clicked.connect(self._open_selected_case)
        self.case_close_button.clicked.connect(self.close_case)
        self.case_list.itemDoubleClicked.connect(lambda _item: self._open_selected_case())
        self.grid.files_dropped.connect(self.import_paths)
        self.grid.evidence_selected.connect(self.select_evidence)
        self.viewer.region_drawn.connect(self._region_drawn)
        self.viewer.region_selected.connect(self._region_selected)
        self.clue_panel.status_requested.connect(self.set_clue_status)
        self.clue_panel.edit_requested.connect(self.edit_clue)
        self.clue_panel.add_requested.connect(self.add_clue)
        self.clue_panel.clue_selected.connect(self._clue_selected)
        self.session_panel.start_requested.connect(self.start_session)
        self.session_panel.stop_requested.connect(self.stop_session)
        self.session_panel.session_chosen.connect(self._choose_session)
        self.session_panel.model_chosen.connect(self.choose_model)
        self.session_panel.replay_requested.connect(self.show_replay)
        self.hints.hint_requested.connect(self.send_hint)
        self.history.turn_selected.connect(self.map.select_turn)
        self.map.turn_clicked.connect(self.history.select_turn)
        self.map.finding_clicked.connect(self.set_finding_point)
        self.map.failed.connect(lambda m: self.show_error("Map", m))
        self.finding_editor.save_requested.connect(self.save_finding)
        self.runner.busy_changed.connect(lambda _busy: self._update_actions())

    # ------------------------------------------------------------------ messages
    def show_error(self, title: str, message: str) -> None:
        """A message the analyst can act on: status bar, log, and a non-modal box (never blocks)."""
        self.errors.append(message)
        log.warning("%s: %s", title, message)
        self.status_label.setText(f"{title}: {message}")
        self.error_shown.emit(message)
        if not self.isVisible():
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # the message may quote file names or model text
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_status(self, message: str) -> None:
        self.status_label.setText(message)

    # ------------------------------------------------------------------ settings helpers
    def _settings(self) -> Any:
        try:
            return self.workspace.load_settings()
        except ValueError as exc:
            self.show_error("Settings", str(exc))
            from geodesk.store import Settings

            return Settings()

    def _settings_value(self, name: str) -> Any:
        return getattr(self._settings(), name, None)

    # ------------------------------------------------------------------ cases
    def _refresh_cases(self) -> None:
        self.case_list.clear()
        for case in self.workspace.list_cases():
            item = QListWidgetItem(f"{case.title}\n{case.id}")
            item.setData(Qt.ItemDataRole.UserRole, case.id)
            item.setToolTip(case.path)
            self.case_list.addItem(item)
        self.recent_menu.clear()
        titles = {c.id: c.title for c in self.workspace.list_cases()}
        for case_id in self._settings().recent_cases:
            if case_id in titles:
                act = self.recent_menu.addAction(f"{titles[case_id]} ({case_id})")
                act.triggered.connect(lambda _=False, cid=case_id: self.open_case(cid))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def _ask_new_case(self) -> None:
        title, ok = QInputDialog.getText(self, "New case", "Title of the case:")
        if ok and title.strip():
            self.create_case(title)

    def create_case(self, title: str) -> str | None:
        try:
            case = self.workspace.create_case(title)
        except ValueError as exc:
            self.show_error("New case", str(exc))
            return None
        self._refresh_cases()
        self.open_case(case.id)
        return case.id

    def _open_selected_case(self) -> None:
        item = self.case_list.currentItem()
        if item is None:
            self.show_status("Choose a case in the Cases list first")
            return
        self.open_case(str(item.data(Qt.ItemDataRole.UserRole)))

    def open_case(self, ref: str) -> bool:
        try:
            store = self.workspace.open_case(ref)
        except (LookupError, ValueError, OSError) as exc:
            self.show_error("Open case", str(exc))
            return False
        self.close_case()
        self.store = store
        settings = self._settings()
        recent = (store.case.id, *(c for c in settings.recent_cases if c != store.case.id))[:8]
        try:
            self.workspace.save_settings(replace(settings, recent_cases=recent))
        except (ValueError, OSError) as exc:
            log.warning("recent cases not saved: %s", exc)
        self.setWindowTitle(f"{store.case.title} — geodesk")
        self.finding_editor.setEnabled(False)
        self._refresh_cases()
        self.refresh_evidence()
        self._update_actions()
        self.case_changed.emit(store.case.id)
        return True

    def close_case(self) -> None:
        if self.store is None:
            return
        if self._import_task is not None:
            self._import_task.cancel()
        self.store.close()
        self.store = None
        self.evidence = None
        self.session = None
        self.turns = []
        self.finding = None
        self.grid.set_evidence([], None)
        self.viewer.set_image(None)
        self.metadata.show_evidence(None)
        self.clue_panel.set_clues([])
        self.session_panel.show_turns([])
        self.history.set_rows([], None)
        self.map.set_state(map_state([]))
        self.finding_editor.setEnabled(False)
        self.setWindowTitle("geodesk")
        self._update_actions()
        self.case_changed.emit("")

    # ------------------------------------------------------------------ evidence
    def refresh_evidence(self) -> None:
        if self.store is None:
            return
        self.grid.set_evidence(self.store.evidence.list(), self.store.thumbs_dir, self.located_evidence())

    def located_evidence(self) -> set[str]:
        """Evidence hashes with at least one session whose turns include a finished one."""
        if self.store is None:
            return set()
        located: set[str] = set()
        for session in self.store.sessions.list():
            if session.evidence_sha256 in located or session.id is None:
                continue
            if any(t.status is TurnStatus.DONE for t in self.store.turns.list(session.id)):
                located.add(session.evidence_sha256)
        return located

    def select_evidence(self, sha: str) -> None:
        if self.store is None or not sha:
            return
        if self.evidence is not None and self.evidence.sha256 == sha:
            return
        try:
            self.evidence = self.store.evidence.get(sha)
        except LookupError as exc:
            self.show_error("Evidence", str(exc))
            return
        if self.grid.current_sha() != sha:
            self.grid.select_sha(sha)
        self.metadata.show_evidence(self.evidence)
        self.viewer.set_image(None)
        self._load_image(self.evidence)
        sessions = self.store.sessions.list(evidence_sha256=sha)
        self.session = sessions[-1] if sessions else None
        self.finding_editor.setEnabled(True)
        self.refresh_case_view(fit_map=True)
        self._update_actions()

    def _load_image(self, evidence: Evidence) -> None:
        assert self.store is not None
        try:
            path = self.store.evidence_file(evidence.sha256)
        except (LookupError, OSError, ValueError) as exc:
            self.show_error("Image", f"the original of {evidence.original_name} is missing: {exc}")
            return
        self._image_request += 1
        request = self._image_request
        orientation = evidence.orientation

        def job(ctx: TaskContext) -> QImage:
            return load_evidence_image(path, orientation)

        def done(image: QImage) -> None:
            if request == self._image_request:  # a newer selection wins
                self.viewer.set_image(image)
                self._update_regions()

        self.runner.start(
            job,
            "decode image",
            on_result=done,
            on_failed=lambda m: self.show_error("Image", f"{evidence.original_name} {m}"),
        )

    def refresh_case_view(self, fit_map: bool = False) -> None:
        """Re-read clues, turns and finding of the current evidence and show them everywhere."""
        if self.store is None or self.evidence is None:
            return
        sha = self.evidence.sha256
        clues = self.store.clues.list(evidence_sha256=sha)
        self.clue_panel.set_clues(clues)
        self.hints.set_clues(clues)
        sessions = self.store.sessions.list(evidence_sha256=sha)
        self.session_panel.set_sessions(
            [
                (
                    s.id,
                    f"session {s.id}: {s.mode.value}, {s.model.name} {s.model.version}"
                    + ("" if s.replay_of is None else f" (replay of {s.replay_of})"),
                )
                for s in sessions
                if s.id is not None
            ],
            None if self.session is None else self.session.id,
        )
        self.turns = (
            [] if self.session is None or self.session.id is None else self.store.turns.list(self.session.id)
        )
        self.session_panel.show_turns(self.turns)
        self.finding = self.store.findings.current(sha)
        self.finding_editor.show_finding(self.finding, self.store.findings.history(sha))
        rows = history_rows(self.turns, self.evidence, self.finding)
        self.history.set_rows(rows, reference_point(self.evidence, self.finding))
        self.map.set_state(
            map_state(self.turns, self.evidence, self.finding, layers=case_map_layers(self.store.path)),
            fit=fit_map,
        )
        self._update_regions()
        self.grid.set_located(self.located_evidence())
        self.turns_changed.emit()

    def _update_regions(self) -> None:
        pinned: list[PinnedRegion] = []
        for clue in self.clue_panel.clues():
            if clue.region is not None and clue.id is not None:
                pinned.append(
                    PinnedRegion(f"clue:{clue.id}", clue.region, f"{clue.category}: {clue.text}", "clue")
                )
        for turn in self.turns:
            for i, hint in enumerate(turn.hints):
                if hint.region is not None:
                    key = f"hint:{turn.index}:{i}"
                    pinned.append(PinnedRegion(key, hint.region, f"turn {turn.index}: {hint.text}", "hint"))
        pending = self.viewer.pending_region
        self.viewer.set_regions(pinned)
        if pending is not None:
            self.viewer.set_pending(pending)

    def _region_drawn(self, region: Region) -> None:
        self.hints.set_region(region)
        self.clue_panel.set_pending_region(region)
        self.show_status("Region drawn: pin it with a clue (Clues → Add) or a region note (Hints)")

    def _region_selected(self, key: str) -> None:
        if key.startswith("clue:"):
            self.clue_panel.select_clue(int(key.split(":", 1)[1]))

    def _clue_selected(self, clue: Clue | None) -> None:
        self.viewer.highlight(None if clue is None or clue.region is None else f"clue:{clue.id}")

    # ------------------------------------------------------------------ import
    def _ask_import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Import images",
            str(Path.home()),
            "Images (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.heic *.heif);;All files (*)",
        )
        if files:
            self.import_paths([Path(f) for f in files])

    def _ask_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images", str(Path.home()))
        if folder:
            self.import_paths([Path(folder)])

    def import_paths(self, paths: list[Path]) -> None:
        """Import files and folders into the open case in a worker, with progress and cancel."""
        if self.store is None:
            self.show_error(
                "Import", "open or create a case first, then drop the images on the evidence grid"
            )
            return
        if self._import_task is not None:
            self.show_error("Import", "an import is already running; wait for it or cancel it")
            return
        case_dir = Path(self.store.path)

        workers = self.import_workers

        in_process = self.import_in_process

        def job(ctx: TaskContext) -> Any:
            if not in_process:
                from geodesk.qt.import_process import run_import

                return run_import(ctx, case_dir, list(paths), workers)
            from geodesk.evidence.pipeline import ImportOptions
            from geodesk.services.importing import import_into
            from geodesk.store import CaseStore

            with CaseStore.open(case_dir) as store:  # this thread's own connection
                return import_into(
                    store,
                    [Path(p) for p in paths],
                    options=ImportOptions(workers=workers),
                    progress=lambda done, total, name: ctx.progress(done, total, Path(name or "").name),
                    cancel=ctx.cancel,
                )

        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.show_status("Importing…")
        self._import_task = self.runner.start(
            job,
            "import",
            on_result=self._import_finished,
            on_progress=self._import_progress,
            on_failed=lambda m: self.show_error("Import", m),
            on_finished=self._import_ended,
        )
        self._update_actions()

    def _import_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.show_status(f"Importing {done}/{total} {name}")

    def _import_finished(self, outcome: Any) -> None:
        self.refresh_evidence()
        errors = list(getattr(outcome, "errors", []) or [])
        imported = getattr(outcome, "imported", None)
        count = len(imported) if isinstance(imported, (list, tuple)) else imported
        summary = f"Imported {count if count is not None else '?'} image(s)"
        skipped = getattr(outcome, "duplicates", None) or getattr(outcome, "skipped", None)
        if skipped:
            summary += (
                f", {len(skipped) if isinstance(skipped, (list, tuple)) else skipped} already in the case"
            )
        if getattr(outcome, "cancelled", False):
            summary += " (cancelled: the files done so far were kept)"
        self.show_status(summary)
        if errors:
            lines = [_describe_import_error(e) for e in errors]
            self.show_error(
                "Import", f"{len(errors)} file(s) could not be imported:\n" + "\n".join(lines[:30])
            )
        if self.evidence is None and self.grid.shas():
            self.select_evidence(self.grid.shas()[0])
        self.import_done.emit(outcome)

    def _import_ended(self) -> None:
        self._import_task = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(self._model_busy())
        self._update_actions()

    def cancel_work(self) -> None:
        for task in (self._import_task, self._session_task, self._model_task, self._batch_task):
            if task is not None:
                task.cancel()
        self.show_status("Cancelling…")

    # ------------------------------------------------------------------ clues
    def set_clue_status(self, clue_id: int, status: str) -> None:
        if self.store is None:
            return
        try:
            self.store.clues.update_status(clue_id, ClueStatus(status))
        except (LookupError, ValueError) as exc:
            self.show_error("Clue", str(exc))
        self.refresh_case_view()

    def edit_clue(self, clue_id: int, text: str) -> None:
        if self.store is None:
            return
        try:
            self.store.clues.update_status(clue_id, ClueStatus.EDITED, text=text)
        except (LookupError, ValueError) as exc:
            self.show_error("Clue", str(exc))
        self.refresh_case_view()

    def add_clue(self, category: str, text: str, region: Region | None) -> None:
        if self.store is None or self.evidence is None:
            self.show_error("Clue", "choose an image first")
            return
        try:
            self.store.clues.add(
                Clue(
                    None,
                    self.evidence.sha256,
                    category,
                    text,
                    ClueSource.ANALYST,
                    ClueStatus.ACCEPTED,
                    region=region,
                )
            )
        except (LookupError, ValueError) as exc:
            self.show_error("Clue", str(exc))
            return
        if region is not None:
            self.viewer.clear_pending()
            self.clue_panel.set_pending_region(None)
        self.refresh_case_view()

    # ------------------------------------------------------------------ finding
    def set_finding_point(self, lat: float, lon: float) -> None:
        """A map click: the finding moves there (a new version, keeping radius, status and reasoning)."""
        if self.store is None or self.evidence is None:
            self.show_status("Open a case and choose an image before placing a finding")
            return
        self.finding_editor.set_point(lat, lon)
        self.finding_editor.save()

    def save_finding(self, lat: float, lon: float, radius_km: float, status: str, reasoning: str) -> None:
        if self.store is None or self.evidence is None:
            return
        try:
            finding = Finding(
                None, self.evidence.sha256, lat, lon, radius_km, FindingStatus(status), reasoning
            )
            self.store.findings.save(finding)
        except (LookupError, ValueError) as exc:
            self.show_error("Finding", str(exc))
            return
        self.refresh_case_view()
        self.show_status(f"Finding saved at {lat:.5f}, {lon:.5f} (±{radius_km:g} km, {status})")

    # ------------------------------------------------------------------ model
    def _migrate_model_setting(self) -> None:
        """The pre-registry ``extra["desktop_model_path"]``: keep an unregistered folder, drop the rest."""
        settings = self._settings()
        try:
            migrated, folder = migrate_legacy_model(self.workspace_path, settings)
        except Exception as exc:  # a damaged registry.json: say so, keep the setting as it is
            self.show_error("Models", str(exc))
            return
        self.legacy_model_folder = folder
        if migrated != settings:
            try:
                self.workspace.save_settings(migrated)
            except (ValueError, OSError) as exc:
                log.warning("the old model setting was not cleaned up: %s", exc)

    def installed_models(self) -> list[Any]:
        try:
            return registry_models(self.workspace_path)
        except Exception as exc:  # RegistryError: registry.json damaged; the message says what to do
            self.show_error("Models", str(exc))
            return []

    def current_model(self) -> ModelChoice | None:
        """What the next model call runs on: remote endpoints, the chosen or active model, a legacy folder."""
        try:
            return current_choice(self.workspace_path, self._settings(), self.legacy_model_folder,
                                  self.model_choice)
        except Exception as exc:
            self.show_error("Models", str(exc))
            return None

    def choose_model(self, ref: str) -> None:
        """The session panel's model: ``""`` for the workspace's active one, else NAME@VERSION."""
        self.model_choice = ref or None
        self.models_changed()

    def activate_model(self, ref: str) -> Any:
        """Make NAME@VERSION the workspace's active model (the registry's rules and messages)."""
        from geodesk.engine.registry import ModelRegistry

        model = ModelRegistry(self.workspace_path).activate(ref)
        self.forget_legacy_model()
        self.models_changed()
        return model

    def forget_legacy_model(self) -> None:
        """Stop using the pre-registry model folder: the registry's active model takes over."""
        from geodesk.qt.model_host import LEGACY_MODEL_PATH_KEY

        self.legacy_model_folder = None
        settings = self._settings()
        if LEGACY_MODEL_PATH_KEY in settings.extra:
            extra = {k: v for k, v in settings.extra.items() if k != LEGACY_MODEL_PATH_KEY}
            self.workspace.save_settings(replace(settings, extra=extra))

    def models_changed(self) -> None:
        """The registry, the settings or the choice changed: close a backend that no longer fits."""
        choice = self.current_model()
        if self.backend is not None and not self._model_busy():
            try:
                wanted = None if choice is None else backend_key(backend_request(self._settings(), choice))
            except ValueError:
                wanted = None
            if wanted != self._backend_key:
                self.backend.close()
                self.backend = None
                self._backend_key = None
        self._refresh_model_label()
        self._update_actions()
        self.model_changed.emit()

    def _refresh_model_label(self) -> None:
        self.choice = self.current_model()
        installed = self.installed_models()
        self.session_panel.set_models(
            [(m.ref, f"{m.name} {m.version}" + (" (UNTRAINED)" if m.untrained else "")) for m in installed],
            self.model_choice,
        )
        if self.choice is None:
            self.session_panel.set_model(NO_MODEL, False)
        else:
            loaded = " (loaded)" if self.backend is not None else ""
            self.session_panel.set_model(self.choice.describe() + loaded, self.choice.untrained)
        untrained = self.choice is not None and self.choice.untrained
        self.setWindowTitle(
            self.windowTitle().split(" [UNTRAINED")[0] + (" [UNTRAINED trial model]" if untrained else "")
        )

    def load_model(self, then: Any = None) -> None:
        """Open the backend for the current model in a worker; ``then()`` runs once it is open."""
        choice = self.current_model()
        if choice is None:
            self.show_error("Model", NO_MODEL)
            return
        if self._model_task is not None:
            return
        try:
            request = backend_request(self._settings(), choice)
        except ValueError as exc:
            self.show_error("Model", str(exc))
            return
        key = backend_key(request)
        if self.backend is not None and key == self._backend_key:
            if callable(then):
                then()
            return
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        workspace = self.workspace_path

        def job(ctx: TaskContext) -> Any:
            return open_app_backend(workspace, request, ctx.cancel)

        def done(backend: Any) -> None:
            self.backend = backend
            self._backend_key = key
            self._refresh_model_label()
            identity = backend.identity
            self.show_status(f"Model ready: {identity.name} {identity.version} ({backend.name})")
            self.model_changed.emit()
            if callable(then):
                then()

        def ended() -> None:
            self._model_task = None
            self.session_panel.set_running(False)
            self._update_actions()

        self.session_panel.show_status(
            "Connecting to the remote endpoint…" if request.backend == "remote" else "Loading the model…"
        )
        self._model_task = self.runner.start(
            job,
            "load model",
            on_result=done,
            on_finished=ended,
            on_failed=self._model_failed,
        )
        self._update_actions()

    def _model_failed(self, message: str) -> None:
        self.session_panel.show_status(message, error=True)
        self.show_error("Model", message)

    def _model_busy(self) -> bool:
        return self._session_task is not None or self._batch_task is not None

    def _turn_options(self, ctx: TaskContext | None = None, samples: int = 0) -> Any:
        from geodesk.engine.backends.base import GenerationSettings
        from geodesk.services.sessions import TurnOptions

        return TurnOptions(
            settings=GenerationSettings(max_new_tokens=self.max_new_tokens),
            samples=samples,
            on_token=None if ctx is None else ctx.token,
            cancel=None if ctx is None else ctx.cancel,
        )

    # ------------------------------------------------------------------ sessions
    def start_session(self, mode: str) -> None:
        self._run_turn(mode=mode, hint=None)

    def send_hint(self, hint: Hint) -> None:
        if self.session is None:
            self.hints.show_error("start a session first: a hint refines an existing session")
            return
        self._run_turn(mode=None, hint=hint)

    def _run_turn(self, mode: str | None, hint: Hint | None) -> None:
        if self.store is None or self.evidence is None:
            self.show_error("Session", "open a case and choose an image first")
            return
        if self._model_busy():
            self.show_error("Session", MODEL_BUSY)
            return
        if self.backend is None or self._backend_stale():
            self.load_model(then=lambda: self._run_turn(mode, hint))
            return
        case_dir = Path(self.store.path)
        evidence_sha = self.evidence.sha256
        session_id = None if self.session is None else self.session.id
        backend = self.backend
        samples = self.session_panel.samples.value()

        def job(ctx: TaskContext) -> Any:
            from geodesk.domain.model import SessionMode
            from geodesk.services.sessions import add_hints, locate
            from geodesk.store import CaseStore

            options = self._turn_options(ctx, samples)
            store = CaseStore.open(case_dir)  # this thread's own connection
            try:
                if mode is not None:
                    return locate(store, evidence_sha, backend, SessionMode(mode), options)
                assert session_id is not None and hint is not None
                return add_hints(store, session_id, [hint], backend, options)
            finally:
                store.close()

        self.session_panel.set_running(True)
        self.session_panel.show_status(
            "The model is answering…"
            + (f" then drawing {samples} sample(s) for candidates" if samples else "")
        )
        self.cancel_button.setVisible(True)
        self._session_task = self.runner.start(
            job,
            "session turn",
            on_result=self._turn_finished,
            on_token=self.session_panel.append_token,
            on_failed=self._turn_failed,
            on_finished=self._turn_ended,
        )
        self._update_actions()

    def _backend_stale(self) -> bool:
        """The settings or the chosen model changed since the backend was opened."""
        choice = self.current_model()
        if choice is None:
            return True
        try:
            return backend_key(backend_request(self._settings(), choice)) != self._backend_key
        except ValueError:
            return True

    def _turn_finished(self, outcome: Any) -> None:
        if self.store is None:
            return
        session = getattr(outcome, "session", None)
        session_id = getattr(session, "id", None)
        if session_id is not None:
            self.session = self.store.sessions.get(int(session_id))
        self.hints.clear()
        self.viewer.clear_pending()
        self.hints.set_region(None)
        self.refresh_case_view(fit_map=True)
        turn = getattr(outcome, "turn", None)
        last = turn if turn is not None else (self.turns[-1] if self.turns else None)
        if last is None:
            self.session_panel.show_status("")
            return
        text = f"Turn {last.index}: {last.status.value}" + (f" — {last.error}" if last.error else "")
        self.session_panel.show_status(text, error=bool(last.error))
        if last.status is TurnStatus.FAILED:
            # The failed turn is stored with its error; the turns before it are all still there.
            self.show_error("Session", f"turn {last.index} failed: {last.error or 'the model call failed'}")

    def _turn_failed(self, message: str) -> None:
        self.session_panel.show_status(message, error=True)
        self.show_error("Session", message)
        self.refresh_case_view()  # earlier turns are all still there: show them

    def _turn_ended(self) -> None:
        self._session_task = None
        self.session_panel.set_running(False)
        self.cancel_button.setVisible(self._import_task is not None or self._batch_task is not None)
        self._update_actions()

    def stop_session(self) -> None:
        if self._session_task is not None:
            self._session_task.cancel()
            self.session_panel.show_status("Stopping: the partial answer is kept as a cancelled turn")
        if self._batch_task is not None:
            self._batch_task.cancel()
            self.show_status("Stopping the batch: the images located so far keep their sessions")

    def _choose_session(self, session_id: int) -> None:
        if self.store is None:
            return
        self.session = self.store.sessions.get(session_id)
        self.refresh_case_view(fit_map=True)

    # ------------------------------------------------------------------ replay
    def replay_current(self, ref: str | None, on_step: Any = None) -> bool:
        """Replay the current session on ``ref`` (NAME@VERSION; None: the model the panel would use).

        The loaded backend is reused when it is that model; otherwise the worker opens one for the
        replay and closes it afterwards. ``replay_done`` carries (replayed session, steps).
        """
        if self.store is None or self.session is None or self.session.id is None:
            self.show_error("Replay", "choose a session to replay first (start one, or pick one in the list)")
            return False
        if self._model_busy() or self._model_task is not None:
            self.show_error("Replay", MODEL_BUSY)
            return False
        settings = self._settings()
        choice = self.current_model() if ref is None else ModelChoice("registry", ref, ref)
        if choice is None:
            self.show_error("Replay", NO_MODEL)
            return False
        try:
            request = backend_request(settings, choice)
        except ValueError as exc:
            self.show_error("Replay", str(exc))
            return False
        reuse = self.backend is not None and backend_key(request) == self._backend_key
        shared = self.backend if reuse else None
        case_dir = Path(self.store.path)
        session_id = self.session.id
        workspace = self.workspace_path

        def job(ctx: TaskContext) -> Any:
            from geodesk.services.sessions import replay_session
            from geodesk.store import CaseStore

            backend = shared if shared is not None else open_app_backend(workspace, request, ctx.cancel)
            try:
                with CaseStore.open(case_dir) as store:
                    total = len(store.turns.list(session_id))
                    count = [0]

                    def step(s: Any) -> None:
                        count[0] += 1
                        ctx.progress(count[0], total, f"turn {s.index}: {s.status.value}")

                    return replay_session(store, session_id, backend, self._turn_options(ctx), on_step=step)
            finally:
                if shared is None:
                    backend.close()

        def done(result: Any) -> None:
            replayed, _steps = result
            self.refresh_case_view()
            self.show_status(f"Session {session_id} replayed as session {replayed.id}")
            self.replay_done.emit(result)

        def failed(message: str) -> None:
            self.show_error("Replay", message)
            self.refresh_case_view()

        self.session_panel.show_status(f"Replaying session {session_id}…")
        self.session_panel.set_running(True)
        self.cancel_button.setVisible(True)
        self._session_task = self.runner.start(
            job,
            "replay session",
            on_result=done,
            on_failed=failed,
            on_progress=on_step,
            on_finished=self._turn_ended,
        )
        self._update_actions()
        return True

    def show_replay(self) -> None:
        from geodesk.qt.dialogs import ReplayDialog

        if self.session is None:
            self.show_error("Replay", "choose a session to replay first (start one, or pick one in the list)")
            return
        self.replay_dialog = ReplayDialog(self)
        self.replay_dialog.open()

    # ------------------------------------------------------------------ batch
    def locate_all(self) -> bool:
        """Locate every image of the open case without a finished session on this model (services.batch)."""
        if self.store is None:
            self.show_error("Locate all", "open a case first")
            return False
        if self._model_busy():
            self.show_error("Locate all", MODEL_BUSY)
            return False
        if self.backend is None or self._backend_stale():
            self.load_model(then=self.locate_all)
            return False
        case_dir = Path(self.store.path)
        backend = self.backend
        settings = self._settings()
        mode = self.session_panel.mode.currentData()
        samples = self.session_panel.samples.value()
        # One answer at a time in-process (one model in memory); remote servers take two each.
        endpoints = self.choice.endpoints if self.choice is not None else ()
        workers = 2 * max(1, len(endpoints)) if settings.backend == "remote" else 1

        def job(ctx: TaskContext) -> Any:
            from geodesk.domain.model import SessionMode
            from geodesk.services.batch import run_batch

            options = self._turn_options(None, samples)
            return run_batch(
                case_dir,
                backend,
                SessionMode(mode),
                options,
                workers=workers,
                progress=lambda done, total, sha: ctx.progress(done, total, sha[:12]),
                cancel=ctx.cancel,
            )

        def progress(done: int, total: int, sha: str) -> None:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
            self.show_status(f"Locating {done}/{total} ({sha})")

        def finished() -> None:
            self._batch_task = None
            self.progress.setVisible(False)
            self.session_panel.set_running(False)
            self.cancel_button.setVisible(self._import_task is not None or self._session_task is not None)
            self._update_actions()

        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.session_panel.set_running(True)
        self.show_status("Locating every image of the case…")
        self._batch_task = self.runner.start(
            job,
            "locate all",
            on_result=self._batch_finished,
            on_progress=progress,
            on_failed=lambda m: self.show_error("Locate all", m),
            on_finished=finished,
        )
        self._update_actions()
        return True

    def _batch_finished(self, report: Any) -> None:
        self.last_batch = report
        self.refresh_evidence()
        if self.evidence is not None:
            sessions = self.store.sessions.list(evidence_sha256=self.evidence.sha256) if self.store else []
            self.session = sessions[-1] if sessions else self.session
            self.refresh_case_view(fit_map=True)
        self.show_status(
            f"Located {len(report.located)}, skipped {len(report.skipped)} (already located), "
            f"failed {len(report.failed)}" + (" — cancelled" if report.cancelled else "")
        )
        self.batch_done.emit(report)
        if self.isVisible():
            from geodesk.qt.dialogs import BatchSummaryDialog

            BatchSummaryDialog(self, report).open()

    def evidence_name(self, sha: str) -> str:
        if self.store is None:
            return sha[:12]
        try:
            return self.store.evidence.get(sha).original_name
        except LookupError:
            return sha[:12]

    # ------------------------------------------------------------------ dialogs
    def show_model_manager(self) -> None:
        from geodesk.qt.dialogs import ModelManagerDialog

        dialog = ModelManagerDialog(self)
        dialog.open()

    def show_settings(self) -> None:
        from geodesk.qt.dialogs import SettingsDialog

        dialog = SettingsDialog(self)
        dialog.open()

    # ------------------------------------------------------------------ state
    def _update_actions(self) -> None:
        a = self.acts
        for act in (a.new_case, a.open_case, a.model_manager, a.settings):
            act.setEnabled(self.is_started)
        self.case_new_button.setEnabled(self.is_started)
        self.case_open_button.setEnabled(self.is_started)
        has_case = self.store is not None
        has_image = self.evidence is not None
        importing = self._import_task is not None
        busy = self._model_busy()
        running = busy or self._model_task is not None
        a.close_case.setEnabled(has_case)
        self.case_close_button.setEnabled(has_case)
        for act in (a.import_files, a.import_folder):
            act.setEnabled(has_case and not importing)
        a.cancel_jobs.setEnabled(importing or running)
        a.draw_region.setEnabled(has_image)
        has_model = self.is_started and self.choice is not None
        a.load_model.setEnabled(has_model and not running)
        a.load_model.setToolTip("Load the model now (in the background)" if has_model else NO_MODEL)
        can_start = has_image and not running
        a.start_session.setEnabled(can_start)
        a.stop_session.setEnabled(self._session_task is not None or self._batch_task is not None)
        self.session_panel.set_available(can_start, "" if has_image else "choose an image first")
        self.session_panel.stop_button.setEnabled(a.stop_session.isEnabled())
        can_replay = self.session is not None and not running
        a.replay_session.setEnabled(can_replay)
        self.session_panel.replay_button.setEnabled(can_replay)
        a.locate_all.setEnabled(has_case and not running and not importing and has_model)
        a.locate_all.setToolTip(
            "Locate every image of the case that has no finished session on this model yet"
            if has_model
            else NO_MODEL
        )
        self.hints.send_button.setEnabled(self.session is not None and not running)

    def restore_layout(self) -> bool:
        geometry, state = self.layout_settings.window_layout()
        ok = True
        if geometry is not None:
            ok = self.restoreGeometry(geometry) and ok
        if state is not None:
            ok = self.restoreState(state, LAYOUT_VERSION) and ok
        return ok and state is not None

    def save_layout(self) -> None:
        self.layout_settings.set_window_layout(self.saveGeometry(), self.saveState(LAYOUT_VERSION))

    def reset_layout(self) -> None:
        self.restoreState(QByteArray(self._default_state), LAYOUT_VERSION)
        for dock in self.findChildren(QDockWidget):
            dock.setVisible(True)
        self.apply_default_sizes()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_layout()
        self.runner.cancel_all()
        self.runner.wait(10000)
        self.close_case()
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        event.accept()


def _touches(bar: QRect, dock: QRect, slack: int = 4) -> bool:
    """The tab bar lies along one edge of the dock (tabs are drawn below, above or beside it)."""
    grown = dock.adjusted(-slack, -slack, slack, slack)
    return grown.intersects(bar) and not dock.contains(bar.center())


def _preload(ctx: TaskContext) -> None:
    """Import the slow libraries off the UI thread (imports are thread-safe; no Qt objects are made)."""
    import pyqtgraph  # noqa: F401

    import geodesk.store  # noqa: F401  (sqlite-utils, which imports pandas when installed)


def _describe_import_error(error: Any) -> str:
    """One line per failed file, whatever shape the import service reports it in."""
    if isinstance(error, str):
        return error
    path = getattr(error, "path", None) or getattr(error, "source", None) or getattr(error, "name", None)
    reason = (
        getattr(error, "reason", None) or getattr(error, "message", None) or getattr(error, "error", None)
    )
    if path is not None and reason is not None:
        return f"{Path(str(path)).name}: {reason}"
    if isinstance(error, (tuple, list)) and len(error) == 2:
        return f"{Path(str(error[0])).name}: {error[1]}"
    return str(error)
