"""The model manager and settings dialogs.

The model manager lists the model packages found in the workspace's ``models/`` folder (where the
registry installs them) or in a folder the analyst picks, makes one the active model of the desktop
app, and creates the untrained tiny model for a trial run (geodesk.engine.tiny), labelled UNTRAINED.
Registry operations (install with verification, activate a version, verify, remove) belong to the
registry; when it is not installed in this build those buttons stay disabled and say so.
Settings edit the workspace's ``settings.json`` (geodesk.store.settings), shared with the CLI.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from geodesk.qt.model_host import PackageInfo, find_packages
from geodesk.qt.workers import TaskContext

if TYPE_CHECKING:
    from geodesk.qt.main_window import MainWindow

NEEDS_REGISTRY = "needs the model registry (geodesk.engine.registry), which is not installed in this build"
BACKENDS = ("hf", "remote", "lmdeploy")
DEVICES = ("auto", "cpu", "cuda")


def registry_available() -> bool:
    try:
        return importlib.util.find_spec("geodesk.engine.registry") is not None
    except (ImportError, ValueError):
        return False


def tiny_available() -> bool:
    try:
        return importlib.util.find_spec("geodesk.engine.tiny") is not None
    except (ImportError, ValueError):
        return False


class ModelManagerDialog(QDialog):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Model manager")
        self.setObjectName("modelManager")
        self.window_ = window
        self.resize(640, 420)
        self.folder = window.workspace.models_dir
        self.folder_label = QLabel(self)
        self.list = QListWidget(self)
        self.list.setObjectName("modelList")
        self.detail = QLabel(self)
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.use_button = QPushButton("Use this model", self)
        self.use_button.clicked.connect(self.use_selected)
        self.browse_button = QPushButton("Look in folder…", self)
        self.browse_button.clicked.connect(self._browse)
        self.tiny_button = QPushButton("Create untrained tiny model for a trial run", self)
        self.tiny_button.setObjectName("createTiny")
        self.tiny_button.clicked.connect(self.create_tiny)
        if not tiny_available():
            self.tiny_button.setEnabled(False)
            self.tiny_button.setToolTip("needs geodesk.engine.tiny, which is not installed in this build")
        registry = registry_available()
        self.registry_buttons = []
        for text in ("Install…", "Verify", "Remove"):
            b = QPushButton(text, self)
            b.setEnabled(False)
            b.setToolTip(
                "use `geodesk model install / verify / remove` on the command line"
                if registry
                else NEEDS_REGISTRY
            )
            self.registry_buttons.append(b)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)

        row = QHBoxLayout()
        for b in (self.use_button, self.browse_button, *self.registry_buttons):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folder_label)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.detail)
        layout.addLayout(row)
        layout.addWidget(self.tiny_button)
        layout.addWidget(self.status)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self.list.currentItemChanged.connect(self._show_detail)
        self.refresh()

    def refresh(self) -> None:
        self.folder_label.setText(f"Model packages in {self.folder}")
        self.list.clear()
        active = self.window_.model_path()
        packages = find_packages(self.folder)
        for info in packages:
            item = QListWidgetItem(info.label() + ("  ← active" if active == info.path else ""))
            item.setData(Qt.ItemDataRole.UserRole, info)
            self.list.addItem(item)
        if not packages:
            self.status.setText(
                "No model packages here. An admin installs models with `geodesk model install SRC`; "
                "for a trial run you can create the untrained tiny model below (its answers mean nothing)."
            )
        self.use_button.setEnabled(bool(packages))

    def packages(self) -> list[PackageInfo]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _show_detail(self) -> None:
        item = self.list.currentItem()
        info: PackageInfo | None = None if item is None else item.data(Qt.ItemDataRole.UserRole)
        if info is None:
            self.detail.clear()
            return
        text = f"{info.name} {info.version} · {info.architecture}\n{info.path}"
        if info.provenance:
            text += f"\nProvenance: {info.provenance}"
        if info.untrained:
            text += "\nUNTRAINED: random weights for trial runs; never use its answers as evidence."
        if info.problem:
            text += f"\nProblem: {info.problem}"
        self.detail.setText(text)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with model packages", str(self.folder))
        if folder:
            self.folder = Path(folder)
            self.refresh()

    def use_selected(self) -> None:
        item = self.list.currentItem() or (self.list.item(0) if self.list.count() else None)
        if item is None:
            return
        info: PackageInfo = item.data(Qt.ItemDataRole.UserRole)
        if info.problem:
            self.status.setText(f"{info.path} cannot be used: {info.problem}")
            return
        self.window_.set_model_path(info.path)
        self.status.setText(f"{info.name} {info.version} is now the model of this workspace's desktop app")
        self.refresh()

    def create_tiny(self) -> None:
        target = self.window_.workspace.models_dir / "tiny-llava-untrained"
        if target.exists():
            self.status.setText(f"{target} already exists; choose it in the list")
            self.folder = self.window_.workspace.models_dir
            self.refresh()
            return
        self.tiny_button.setEnabled(False)
        self.status.setText("Building the untrained tiny model (a few seconds; loads torch)…")

        def job(ctx: TaskContext) -> Any:
            from geodesk.engine.tiny import create_tiny_model

            return create_tiny_model(target)

        def done(_manifest: Any) -> None:
            self.folder = self.window_.workspace.models_dir
            self.window_.set_model_path(target)
            self.status.setText(
                f"Created {target} — UNTRAINED, for trial runs only; it is now the active model"
            )
            self.refresh()

        def failed(message: str) -> None:
            self.status.setText(f"The tiny model could not be created: {message}")

        self.window_.runner.start(
            job,
            "create tiny model",
            on_result=done,
            on_failed=failed,
            on_finished=lambda: self.tiny_button.setEnabled(True),
        )


class SettingsDialog(QDialog):
    """Backend, device, dtype, quantization, remote endpoint, map tile folder; the workspace is shown."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.window_ = window
        from geodesk.store.settings import DTYPES, QUANTIZATIONS

        settings = window._settings()
        self.backend = self._combo(BACKENDS, settings.backend)
        self.device = QComboBox(self)
        self.device.setEditable(True)  # cuda:1 and the like
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        self.dtype = self._combo(DTYPES, settings.dtype)
        self.quantization = self._combo(QUANTIZATIONS, settings.quantization)
        self.remote_url = QLineEdit(settings.remote_url or "", self)
        self.remote_url.setPlaceholderText("http://127.0.0.1:23333/v1 (OpenAI-compatible)")
        self.remote_model = QLineEdit(settings.remote_model or "", self)
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
        form.addRow("Device", self.device)
        form.addRow("Dtype", self.dtype)
        form.addRow("Quantization", self.quantization)
        form.addRow("Remote endpoint", self.remote_url)
        form.addRow("Remote model name", self.remote_model)
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

    def _combo(self, values: tuple[str, ...], current: str) -> QComboBox:
        box = QComboBox(self)
        box.addItems(values)
        box.setCurrentText(current)
        return box

    def _browse_tiles(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Map tile folder", self.tiles.text() or str(Path.home())
        )
        if folder:
            self.tiles.setText(folder)

    def save(self) -> bool:
        tiles = self.tiles.text().strip()
        url = self.remote_url.text().strip()
        if tiles and not Path(tiles).is_dir():
            self.message.setText(f"the tile folder {tiles} does not exist")
            return False
        if self.backend.currentText() == "remote" and not url.startswith(("http://", "https://")):
            self.message.setText("the remote backend needs an http:// or https:// endpoint")
            return False
        old = self.window_._settings()
        try:
            new = replace(
                old,
                backend=self.backend.currentText(),
                device=self.device.currentText().strip() or "auto",
                dtype=self.dtype.currentText(),
                quantization=self.quantization.currentText(),
                remote_url=url or None,
                remote_model=self.remote_model.text().strip() or None,
                tile_folder=tiles or None,
            )
            self.window_.workspace.save_settings(new)
        except (ValueError, OSError) as exc:
            self.message.setText(str(exc))
            return False
        if (old.tile_folder or "") != (tiles or ""):
            self.window_.map.build(tiles)
        self.accept()
        return True
