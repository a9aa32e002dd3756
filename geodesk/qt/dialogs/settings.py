"""Settings: backend, device, dtype, quantization, remote endpoints and key, tile folder.

They are the workspace's ``settings.json`` (geodesk.store.settings), shared with the CLI.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

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
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from geodesk.app import Application
from geodesk.services.models import APP_BACKENDS

DEVICES = ("auto", "cpu", "cuda")


class SettingsDialog(QDialog):
    """Backend, device, dtype, quantization, remote endpoints and key, tile folder; the workspace shown."""

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.app = app
        from geodesk.domain.precision import DTYPES, QUANTIZATIONS
        from geodesk.services.models import remote_endpoints

        settings = app.ctx.settings()
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
        workspace = QLabel(str(app.workspace_path), self)
        workspace.setTextFormat(Qt.TextFormat.PlainText)
        workspace.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        workspace.setToolTip("Start geodesk with --workspace DIR or GEODESK_WORKSPACE=DIR to use another")
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
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
        old = self.app.ctx.settings()
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
            self.app.ctx.workspace.save_settings(new)
        except (ValueError, OSError) as exc:
            self.message.setText(str(exc))
            return False
        self.app.state.tile_folder = tiles  # the map rebuilds its page when this changes
        self.app.models.changed()
        self.accept()
        return True


