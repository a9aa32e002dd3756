"""The model manager, settings, replay and batch-summary dialogs.

The model manager is a view of the model registry (geodesk.engine.registry): it lists installed
versions, installs a folder (geodesk package, llava-hf folder or XTuner export) in a worker with
progress and cancel, activates, rolls back, verifies (in a worker; every changed, missing or unlisted
file is listed) and removes versions; the registry's own sentences are shown when it refuses something.
It also builds the untrained tiny model (geodesk.engine.tiny) and installs it through the registry, so
it is labelled UNTRAINED wherever it is listed. Settings edit the workspace's ``settings.json``
(geodesk.store.settings), shared with the CLI. The replay dialog runs a session again on a model and
shows the per-turn comparison (services.sessions.replay_session); the batch summary lists what
"Locate all" located, skipped and failed, with each failure's reason.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geodesk.qt.model_host import APP_BACKENDS
from geodesk.qt.workers import Task, TaskCancelled, TaskContext

if TYPE_CHECKING:
    from geodesk.engine.registry import InstalledModel
    from geodesk.qt.main_window import MainWindow

DEVICES = ("auto", "cpu", "cuda")
MODEL_COLUMNS = ("Name", "Version", "Active", "Trained", "Size", "Architecture", "Installed from")
REPLAY_COLUMNS = (
    "Turn", "Status", "Original", "Replayed", "Moved (km)", "Same country", "Same region", "Same city"
)
UNTRAINED_NOTE = "UNTRAINED: random weights for trial runs; never use its answers as evidence."


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def _item(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def _table(parent: QWidget, columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class ModelManagerDialog(QDialog):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Model manager")
        self.setObjectName("modelManager")
        self.window_ = window
        self.resize(860, 480)
        self.models: list[InstalledModel] = []
        self.task: Task | None = None
        self.last_verify: Any = None  # the last VerifyReport (tests read it)

        self.heading = QLabel(self)
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.table = _table(self, MODEL_COLUMNS)
        self.table.setObjectName("modelTable")
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.detail = QLabel(self)
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.problems = QListWidget(self)  # files a verify found changed / missing / unlisted
        self.problems.setObjectName("verifyProblems")
        self.problems.setVisible(False)
        self.problems.setMaximumHeight(110)

        self.install_button = QPushButton("Install…", self)
        self.install_button.setToolTip("Install a geodesk package, a llava-hf folder or an XTuner export")
        self.install_button.clicked.connect(self._ask_install)
        self.activate_button = QPushButton("Activate", self)
        self.activate_button.clicked.connect(self.activate_selected)
        self.rollback_button = QPushButton("Roll back", self)
        self.rollback_button.setToolTip("Activate the version of this name that was active before")
        self.rollback_button.clicked.connect(self.rollback_selected)
        self.verify_button = QPushButton("Verify", self)
        self.verify_button.setToolTip("Re-hash every file against the hashes recorded at install")
        self.verify_button.clicked.connect(self.verify_selected)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.tiny_button = QPushButton("Create untrained tiny model for a trial run", self)
        self.tiny_button.setObjectName("createTiny")
        self.tiny_button.clicked.connect(self.create_tiny)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel(self)
        self.status.setObjectName("modelStatus")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        row = QHBoxLayout()
        for b in (self.install_button, self.activate_button, self.rollback_button, self.verify_button,
                  self.remove_button):
            row.addWidget(b)
        row.addStretch(1)
        work = QHBoxLayout()
        work.addWidget(self.progress, 1)
        work.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.problems)
        layout.addLayout(row)
        layout.addWidget(self.tiny_button)
        layout.addLayout(work)
        layout.addWidget(self.status)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self.refresh()

    # ---------------------------------------------------------------- listing
    def refresh(self) -> None:
        window = self.window_
        selected = self.selected()
        self.models = window.installed_models()
        self.heading.setText(f"Models installed in {window.workspace_path / 'models'}")
        self.table.setRowCount(len(self.models))
        for r, m in enumerate(self.models):
            cells = (
                m.name,
                m.version,
                "active" if m.active else "",
                "UNTRAINED (trial runs only)" if m.untrained else "trained",
                _size(m.size_bytes),
                m.architecture,
                m.source_kind,
            )
            for c, text in enumerate(cells):
                item = _item(text)
                if m.untrained and c == 3:
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.table.setItem(r, c, item)
        if selected is not None:
            self.select(selected.ref)
        legacy = window.legacy_model_folder
        if legacy is not None:
            self.detail.setText(
                f"The app uses the folder {legacy} in place (set before the registry existed; not verified). "
                "Install it to verify its files, or activate an installed model to stop using it."
            )
        elif not self.models:
            self.detail.setText(
                "No model is installed. Install a model package, a llava-hf folder or an XTuner export "
                "with Install…; for a trial run, create the untrained tiny model below (its answers mean "
                "nothing)."
            )
        else:
            self.detail.clear()
        self._update_buttons()

    def selected(self) -> InstalledModel | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.models):
            return None
        return self.models[rows[0].row()]

    def select(self, ref: str) -> bool:
        for r, m in enumerate(self.models):
            if m.ref == ref:
                self.table.selectRow(r)
                return True
        return False

    def _update_buttons(self) -> None:
        model = self.selected()
        busy = self.task is not None
        for b in (self.activate_button, self.rollback_button, self.verify_button, self.remove_button):
            b.setEnabled(model is not None and not busy)
        self.install_button.setEnabled(not busy)
        self.tiny_button.setEnabled(not busy)
        if model is not None and model.untrained:
            self.detail.setText(f"{model.ref}: {UNTRAINED_NOTE}")

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c92a2a" if error else "")

    def _changed(self) -> None:
        self.refresh()
        self.window_.models_changed()

    # ---------------------------------------------------------------- work in a worker
    def _start(self, fn: Any, name: str, on_result: Any, *, progress: bool = False) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(progress)
        self.problems.setVisible(False)

        def on_progress(done: int, total: int, _message: str) -> None:
            # Qt progress bars hold an int: report MiB for packages of several GiB.
            self.progress.setRange(0, max(1, total // (1 << 20)))
            self.progress.setValue(done // (1 << 20))

        def finished() -> None:
            self.task = None
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)
            self._update_buttons()

        self.task = self.window_.runner.start(
            fn,
            name,
            on_result=on_result,
            on_failed=lambda m: self._say(m, error=True),
            on_progress=on_progress,
            on_cancelled=lambda: self._say(f"{name} was cancelled; nothing was changed"),
            on_finished=finished,
        )
        self._update_buttons()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _ask_install(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Model folder: geodesk package, llava-hf folder or XTuner export", str(Path.home())
        )
        if folder:
            self.install(Path(folder))

    def install(self, source: Path) -> None:
        """Install ``source`` through the registry in a worker (copy with progress, verify, commit)."""
        workspace = self.window_.workspace_path

        def job(ctx: TaskContext) -> InstalledModel:
            from geodesk.engine.registry import ModelRegistry

            def progress(done: int, total: int) -> None:
                ctx.progress(done, total)
                if ctx.cancel.is_set():
                    raise TaskCancelled  # the registry puts the folder tree back as it was
            return ModelRegistry(workspace).install(source, progress=progress)

        def done(model: InstalledModel) -> None:
            state = "active" if model.active else f"installed; activate it to use it ({model.ref})"
            label = " — UNTRAINED, trial runs only" if model.untrained else ""
            self._say(f"Installed {model.name} {model.version}: {state}{label}")
            self._changed()
            self.select(model.ref)

        self._say(f"Installing {source}…")
        self._start(job, "install", done, progress=True)

    def activate_selected(self) -> None:
        model = self.selected()
        if model is None:
            return
        try:
            active = self.window_.activate_model(model.ref)
        except Exception as exc:  # RegistryError: the registry's sentence says what to do
            self._say(str(exc), error=True)
            return
        self._say(f"{active.name} {active.version} is now the active model of this workspace")
        self._changed()
        self.select(active.ref)

    def rollback_selected(self) -> None:
        model = self.selected()
        if model is None:
            return
        from geodesk.engine.registry import ModelRegistry

        try:
            previous = ModelRegistry(self.window_.workspace_path).rollback(model.name)
        except Exception as exc:
            self._say(str(exc), error=True)
            return
        self.window_.forget_legacy_model()
        self._say(f"Rolled {model.name} back to version {previous.version}; it is the active model")
        self._changed()
        self.select(previous.ref)

    def verify_selected(self) -> None:
        model = self.selected()
        if model is None:
            return
        workspace, ref = self.window_.workspace_path, model.ref

        def job(ctx: TaskContext) -> Any:
            from geodesk.engine.registry import ModelRegistry

            return ModelRegistry(workspace).verify(ref)

        def done(report: Any) -> None:
            self.last_verify = report
            self.problems.clear()
            if report.ok:
                self._say(f"{ref}: every file matches the hashes recorded at install")
                return
            lines = [f"changed: {f}" for f in report.mismatched]
            lines += [f"missing: {f}" for f in report.missing]
            lines += [f"not in the manifest: {f}" for f in report.unlisted]
            self.problems.addItems(lines)
            self.problems.setVisible(True)
            self._say(
                f"{ref} does not match what was installed ({len(lines)} file(s) below). Remove it and "
                "install it again from its source; do not use it for casework until then.",
                error=True,
            )

        self._say(f"Verifying {ref} (re-hashing every file)…")
        self._start(job, "verify", done)

    def remove_selected(self) -> None:
        model = self.selected()
        if model is None:
            return
        workspace, ref = self.window_.workspace_path, model.ref
        from geodesk.engine.registry import ModelRegistry, RegistryError

        if model.active:
            # The registry refuses and says how to switch first; ask it, so the sentence is its own.
            try:
                ModelRegistry(workspace).remove(ref)
            except RegistryError as exc:
                self._say(str(exc), error=True)
                return
            self._changed()
            return

        def job(ctx: TaskContext) -> InstalledModel:
            return ModelRegistry(workspace).remove(ref)

        def done(removed: InstalledModel) -> None:
            self._say(f"Removed {removed.ref}")
            self._changed()

        self._say(f"Removing {ref}…")
        self._start(job, "remove", done)

    def create_tiny(self) -> None:
        """Build the untrained tiny model and install it through the registry (labelled UNTRAINED)."""
        workspace = self.window_.workspace_path

        def job(ctx: TaskContext) -> InstalledModel:
            from geodesk.engine.registry import ModelRegistry
            from geodesk.engine.tiny import TINY_NAME, create_tiny_model

            registry = ModelRegistry(workspace)
            existing = next((m for m in registry.list() if m.name == TINY_NAME), None)
            if existing is None:
                scratch = Path(tempfile.mkdtemp(prefix=".tiny-", dir=workspace))
                try:
                    create_tiny_model(scratch / "tiny-llava", seed=0)
                    ctx.check()
                    existing = registry.install(scratch / "tiny-llava")
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
            if registry.active() is None:
                existing = registry.activate(existing.ref)
            return existing

        def done(model: InstalledModel) -> None:
            how = "it is the active model" if model.active else f"activate it to use it ({model.ref})"
            self._say(f"{model.name} {model.version} is installed — UNTRAINED, for trial runs only; {how}")
            if model.active:
                self.window_.forget_legacy_model()
            self._changed()
            self.select(model.ref)

        self._say("Building the untrained tiny model (a few seconds; loads torch)…")
        self._start(job, "create tiny model", done)


class SettingsDialog(QDialog):
    """Backend, device, dtype, quantization, remote endpoints and key, tile folder; the workspace shown."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.window_ = window
        from geodesk.qt.model_host import remote_endpoints
        from geodesk.store.settings import DTYPES, QUANTIZATIONS

        settings = window._settings()
        backend = settings.backend if settings.backend in APP_BACKENDS else "hf"
        self.backend = self._combo(APP_BACKENDS, backend)
        self.backend.setToolTip("hf: the model runs in this process; remote: OpenAI-compatible servers")
        self.device = QComboBox(self)
        self.device.setEditable(True)  # cuda:1 and the like
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        self.dtype = self._combo(DTYPES, settings.dtype)
        self.quantization = self._combo(QUANTIZATIONS, settings.quantization)
        self.endpoints = QPlainTextEdit(self)
        self.endpoints.setObjectName("remoteEndpoints")
        self.endpoints.setPlaceholderText(
            "one URL per line, e.g.\nhttp://127.0.0.1:8000 (geodesk serve)\n"
            "http://gpu-box:23333/v1 (lmdeploy)"
        )
        self.endpoints.setPlainText("\n".join(remote_endpoints(settings)))
        self.endpoints.setMaximumHeight(80)
        self.remote_model = QLineEdit(settings.remote_model or "", self)
        self.remote_model.setPlaceholderText("the server's model name (default: the server's only model)")
        self.api_key = QLineEdit(settings.remote_api_key or "", self)
        self.api_key.setEchoMode(QLineEdit.EchoMode.PasswordEchoOnEdit)
        self.api_key.setPlaceholderText("only when the server asks for one")
        self.tiles = QLineEdit(settings.tile_folder or "", self)
        self.tiles.setPlaceholderText("optional local {z}/{x}/{y}.png tile folder")
        browse = QPushButton("…", self)
        browse.clicked.connect(self._browse_tiles)
        tiles_row = QHBoxLayout()
        tiles_row.addWidget(self.tiles, 1)
        tiles_row.addWidget(browse)
        workspace = QLabel(str(window.workspace.path), self)
        workspace.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        workspace.setToolTip("Start geodesk with --workspace DIR or GEODESK_WORKSPACE=DIR to use another")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c92a2a")
        form = QFormLayout()
        form.addRow("Workspace", workspace)
        form.addRow("Backend", self.backend)
        form.addRow("Device (hf)", self.device)
        form.addRow("Dtype (hf)", self.dtype)
        form.addRow("Quantization (hf)", self.quantization)
        form.addRow("Remote endpoints", self.endpoints)
        form.addRow("Remote model name", self.remote_model)
        form.addRow("API key (remote)", self.api_key)
        form.addRow("Map tile folder", tiles_row)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.backend.currentTextChanged.connect(self._backend_changed)
        self._backend_changed(self.backend.currentText())

    def _combo(self, values: tuple[str, ...], current: str) -> QComboBox:
        box = QComboBox(self)
        box.addItems(values)
        box.setCurrentText(current)
        return box

    def _backend_changed(self, backend: str) -> None:
        remote = backend == "remote"
        hf_widgets: tuple[QWidget, ...] = (self.device, self.dtype, self.quantization)
        remote_widgets: tuple[QWidget, ...] = (self.endpoints, self.remote_model, self.api_key)
        for w in hf_widgets:
            w.setEnabled(not remote)
        for w in remote_widgets:
            w.setEnabled(remote)

    def _browse_tiles(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Map tile folder", self.tiles.text() or str(Path.home())
        )
        if folder:
            self.tiles.setText(folder)

    def save(self) -> bool:
        tiles = self.tiles.text().strip()
        endpoints = tuple(line.strip() for line in self.endpoints.toPlainText().splitlines() if line.strip())
        backend = self.backend.currentText()
        if tiles and not Path(tiles).is_dir():
            self.message.setText(f"the tile folder {tiles} does not exist")
            return False
        bad = [e for e in endpoints if not e.startswith(("http://", "https://"))]
        if bad:
            self.message.setText(f"{bad[0]} is not an endpoint: write http://HOST:PORT or https://HOST:PORT")
            return False
        if backend == "remote" and not endpoints:
            self.message.setText("the remote backend needs at least one endpoint URL")
            return False
        old = self.window_._settings()
        try:
            new = replace(
                old,
                backend=backend,
                device=self.device.currentText().strip() or "auto",
                dtype=self.dtype.currentText(),
                quantization=self.quantization.currentText(),
                remote_url=endpoints[0] if endpoints else None,
                remote_endpoints=endpoints,
                remote_model=self.remote_model.text().strip() or None,
                remote_api_key=self.api_key.text().strip() or None,
                tile_folder=tiles or None,
            )
            self.window_.workspace.save_settings(new)
        except (ValueError, OSError) as exc:
            self.message.setText(str(exc))
            return False
        if (old.tile_folder or "") != (tiles or ""):
            self.window_.map.build(tiles)
        self.window_.models_changed()
        self.accept()
        return True


def _yes_no(value: Any) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _place(p: dict[str, Any]) -> str:
    names = ", ".join(str(v) for v in (p.get("city"), p.get("region"), p.get("country")) if v)
    if p.get("lat") is not None and p.get("lon") is not None:
        names += f" ({p['lat']:.3f}, {p['lon']:.3f})"
    return names or "no place"


class ReplayDialog(QDialog):
    """Replay the current session on the active or another installed model; one row per turn."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Replay session")
        self.setObjectName("replayDialog")
        self.window_ = window
        self.resize(900, 360)
        self.session_id = None if window.session is None else window.session.id
        self.rows: list[dict[str, Any]] = []  # ReplayStep.as_document() of each replayed turn
        self.replayed: Any = None
        self.model = QComboBox(self)
        self.model.setObjectName("replayModel")
        choice = window.current_model()
        self.model.addItem(
            "the model new sessions use" + ("" if choice is None else f" ({choice.describe()})"), None
        )
        if window._settings().backend != "remote":
            for m in window.installed_models():
                self.model.addItem(f"{m.name} {m.version}" + (" (UNTRAINED)" if m.untrained else ""), m.ref)
        self.run_button = QPushButton("Replay", self)
        self.run_button.setObjectName("runReplay")
        self.run_button.clicked.connect(self.run)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.table = _table(self, REPLAY_COLUMNS)
        self.table.setObjectName("replayTable")
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        top = QHBoxLayout()
        top.addWidget(QLabel(f"Replay session {self.session_id} on", self))
        top.addWidget(self.model, 1)
        top.addWidget(self.run_button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(close)
        window.replay_done.connect(self._done)
        window.error_shown.connect(self._error)

    def run(self) -> bool:
        ref = self.model.currentData()
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText("Replaying… (each turn is asked again, exactly as it was sent)")
        started = self.window_.replay_current(ref, on_step=self._step)
        self.run_button.setEnabled(not started)
        if not started:
            self.progress.setVisible(False)
        return started

    def _step(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"Replayed {message}")

    def _error(self, message: str) -> None:
        if self.progress.isVisible():
            self.progress.setVisible(False)
            self.run_button.setEnabled(True)
            self.status.setText(message)

    def _done(self, result: Any) -> None:
        replayed, steps = result
        self.replayed = replayed
        self.rows = [s.as_document() for s in steps]
        self.progress.setVisible(False)
        self.run_button.setEnabled(True)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            moved = row["moved_km"]
            cells = (
                str(row["turn"]),
                row["status"],
                _place(row["original"]),
                _place(row["replayed"]),
                "—" if moved is None else f"{moved:,.1f}",
                _yes_no(row["same_country"]),
                _yes_no(row["same_region"]),
                _yes_no(row["same_city"]),
            )
            for c, text in enumerate(cells):
                self.table.setItem(r, c, _item(text))
        model = replayed.model
        self.status.setText(
            f"Replayed as session {replayed.id} on {model.name} {model.version}; it is in the session list."
        )


class BatchSummaryDialog(QDialog):
    """What "Locate all" did: located, skipped (already located on this model), failed with reasons."""

    def __init__(self, window: MainWindow, report: Any) -> None:
        super().__init__(window)
        self.setWindowTitle("Locate all")
        self.setObjectName("batchSummary")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(640, 360)
        summary = QLabel(self)
        summary.setWordWrap(True)
        summary.setTextFormat(Qt.TextFormat.PlainText)
        summary.setText(
            f"{report.total} image(s): {len(report.located)} located, {len(report.skipped)} skipped "
            f"(already located on this model), {len(report.failed)} failed"
            + (". Cancelled: run it again to locate the rest." if report.cancelled else ".")
        )
        self.failures = QListWidget(self)
        for failure in report.failed:
            self.failures.addItem(f"{window.evidence_name(failure['evidence'])}: {failure['error']}")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        if report.failed:
            note = "Failed (the other images were located; fix these and run it again):"
            layout.addWidget(QLabel(note, self))
            layout.addWidget(self.failures, 1)
        else:
            self.failures.hide()
            layout.addStretch(1)
            self.resize(560, 140)
        layout.addWidget(close)
