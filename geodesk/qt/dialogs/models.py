"""The model manager: a view of the model registry (geodesk.engine.registry) through the models controller.

It lists installed versions, installs a folder (geodesk package, llava-hf folder or XTuner export) in a
job with progress and cancel, activates, rolls back, verifies (in a job; every changed, missing or
unlisted file is listed) and removes versions; the registry's own sentences are shown when it refuses
something. It also builds the untrained tiny model and installs it (geodesk.services.models), so it is
labelled UNTRAINED wherever it is listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from geodesk.app import Application
from geodesk.qt.dialogs.common import item, size_text, table

if TYPE_CHECKING:
    from geodesk.engine.registry import InstalledModel

MODEL_COLUMNS = ("Name", "Version", "Active", "Trained", "Size", "Family", "Profile", "Installed from")
UNTRAINED_NOTE = "UNTRAINED: random weights for trial runs; never use its answers as evidence."
SYNTHETIC_NOTE = ("SYNTHETIC demo model: trained on GeoSynth scenes only; it knows nothing about real "
                  "photographs. A demonstration, never casework.")


class ModelManagerDialog(QDialog):
    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model manager")
        self.setObjectName("modelManager")
        self.app = app
        self.resize(860, 480)
        self.models: list[InstalledModel] = []
        self.busy = False
        self.last_verify: Any = None  # the last VerifyReport (tests read it)

        self.heading = QLabel(self)
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.table = table(self, MODEL_COLUMNS)
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
        self.demo_button = QPushButton("Install the demo model (synthetic scenes, not for casework)", self)
        self.demo_button.setObjectName("installDemoModel")
        self.demo_button.clicked.connect(self.install_demo)
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
        layout.addWidget(self.demo_button)
        layout.addLayout(work)
        layout.addWidget(self.status)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self.refresh()

    # ---------------------------------------------------------------- listing
    def refresh(self) -> None:
        selected = self.selected()
        self.models = self.app.models.installed()
        self.heading.setText(f"Models installed in {self.app.workspace_path / 'models'}")
        self.table.setRowCount(len(self.models))
        for r, m in enumerate(self.models):
            cells = (
                m.name,
                m.version,
                "active" if m.active else "",
                "UNTRAINED (trial runs only)" if m.untrained
                else "SYNTHETIC (demo only)" if m.synthetic else "trained",
                size_text(m.size_bytes),
                m.family or m.architecture,  # manifests older than families name the class only
                m.profile,
                m.source_kind,
            )
            for c, text in enumerate(cells):
                cell = item(text)
                if (m.untrained or m.synthetic) and c == 3:
                    cell.setForeground(Qt.GlobalColor.darkRed)
                self.table.setItem(r, c, cell)
        if selected is not None:
            self.select(selected.ref)
        legacy = self.app.state.legacy_model_folder
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
        busy = self.busy
        for b in (self.activate_button, self.rollback_button, self.verify_button, self.remove_button):
            b.setEnabled(model is not None and not busy)
        self.install_button.setEnabled(not busy)
        self.tiny_button.setEnabled(not busy)
        demo = self.app.demo.model_folder()
        self.demo_button.setEnabled(demo is not None and not busy)
        self.demo_button.setToolTip(
            f"Install {demo} (what `geodesk demo` installs)" if demo is not None
            else f"The demo model has not been built: {self.app.demo.build_hint()}"
        )
        if model is not None and model.untrained:
            self.detail.setText(f"{model.ref}: {UNTRAINED_NOTE}")
        elif model is not None and model.synthetic:
            self.detail.setText(f"{model.ref}: {SYNTHETIC_NOTE}")

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c92a2a" if error else "")

    def _changed(self) -> None:
        self.refresh()

    # ---------------------------------------------------------------- work in a job (the models controller)
    def _busy(self, progress: bool = False) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(progress)
        self.problems.setVisible(False)
        self.busy = True
        self._update_buttons()

    def _idle(self) -> None:
        self.busy = False
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._update_buttons()

    def _failed(self, message: str) -> None:
        self._idle()
        self._say(message, error=True)

    def _progress(self, done: int, total: int, _message: str) -> None:
        # Qt progress bars hold an int: report MiB for packages of several GiB.
        self.progress.setRange(0, max(1, total // (1 << 20)))
        self.progress.setValue(done // (1 << 20))

    def cancel(self) -> None:
        self.app.ctx.cancel("models")

    def _ask_install(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Model folder: geodesk package, llava-hf folder or XTuner export", str(Path.home())
        )
        if folder:
            self.install(Path(folder))

    def install(self, source: Path) -> None:
        """Install ``source`` through the registry in a job (copy with progress, verify, commit)."""

        def done(model: InstalledModel) -> None:
            self._idle()
            state = "active" if model.active else f"installed; activate it to use it ({model.ref})"
            label = (" — UNTRAINED, trial runs only" if model.untrained
                     else " — SYNTHETIC demo model, not for casework" if model.synthetic else "")
            self._say(f"Installed {model.name} {model.version}: {state}{label}")
            self._changed()
            self.select(model.ref)

        def cancelled() -> None:
            self._idle()
            self._say("install was cancelled; nothing was changed")

        self._say(f"Installing {source}…")
        self._busy(progress=True)
        self.app.models.install(source, on_result=done, on_failed=self._failed, on_progress=self._progress,
                                on_cancelled=cancelled)

    def activate_selected(self) -> None:
        model = self.selected()
        if model is None:
            return
        try:
            active = self.app.models.activate(model.ref)
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
        try:
            previous = self.app.models.rollback(model.name)
        except Exception as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"Rolled {model.name} back to version {previous.version}; it is the active model")
        self._changed()
        self.select(previous.ref)

    def verify_selected(self) -> None:
        model = self.selected()
        if model is None:
            return
        ref = model.ref

        def done(report: Any) -> None:
            self._idle()
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
        self._busy()
        self.app.models.verify(ref, on_result=done, on_failed=self._failed)

    def remove_selected(self) -> None:
        model = self.selected()
        if model is None:
            return

        def done(removed: InstalledModel) -> None:
            self._idle()
            self._say(f"Removed {removed.ref}")
            self._changed()

        # The registry refuses to remove the active version and says how to switch first.
        self._say(f"Removing {model.ref}…")
        self._busy()
        self.app.models.remove(model.ref, on_result=done, on_failed=self._failed)

    def install_demo(self) -> None:
        """Install the built demo model package through the registry, as `geodesk demo` does."""
        folder = self.app.demo.model_folder()
        if folder is None:
            self._say(f"The demo model has not been built: {self.app.demo.build_hint()}", error=True)
            return
        self.install(folder)

    def create_tiny(self) -> None:
        """Build the untrained tiny model and install it through the registry (labelled UNTRAINED)."""

        def done(model: InstalledModel) -> None:
            self._idle()
            how = "it is the active model" if model.active else f"activate it to use it ({model.ref})"
            self._say(f"{model.name} {model.version} is installed — UNTRAINED, for trial runs only; {how}")
            self._changed()
            self.select(model.ref)

        self._say("Building the untrained tiny model (a few seconds; loads torch)…")
        self._busy()
        self.app.models.install_tiny(on_result=done, on_failed=self._failed)
