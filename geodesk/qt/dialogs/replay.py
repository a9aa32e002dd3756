"""Replay: run a session again on a model and compare each turn (services.sessions.replay_session)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from geodesk.app import Application
from geodesk.app.state import Message
from geodesk.qt.dialogs.common import item, table

REPLAY_COLUMNS = (
    "Turn", "Status", "Original", "Replayed", "Moved (km)", "Same country", "Same region", "Same city"
)


def _yes_no(value: Any) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _place(p: dict[str, Any]) -> str:
    names = ", ".join(str(v) for v in (p.get("city"), p.get("region"), p.get("country")) if v)
    if p.get("lat") is not None and p.get("lon") is not None:
        names += f" ({p['lat']:.3f}, {p['lon']:.3f})"
    return names or "no place"


class ReplayDialog(QDialog):
    """Replay the current session on the active or another installed model; one row per turn."""

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Replay session")
        self.setObjectName("replayDialog")
        self.app = app
        self.resize(900, 360)
        self.session_id = None if app.state.session is None else app.state.session.id
        self.rows: list[dict[str, Any]] = []  # ReplayStep.as_document() of each replayed turn
        self.replayed: Any = None
        self.model = QComboBox(self)
        self.model.setObjectName("replayModel")
        choice = app.models.current()
        self.model.addItem(
            "the model new sessions use" + ("" if choice is None else f" ({choice.describe()})"), None
        )
        if app.ctx.settings().backend != "remote":
            for m in app.models.installed():
                self.model.addItem(f"{m.name} {m.version}" + (" (UNTRAINED)" if m.untrained else ""), m.ref)
        self.run_button = QPushButton("Replay", self)
        self.run_button.setObjectName("runReplay")
        self.run_button.clicked.connect(self.run)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.table = table(self, REPLAY_COLUMNS)
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
        app.state.replay_finished.connect(self._done)
        app.state.message.connect(self._error)

    def run(self) -> bool:
        ref = self.model.currentData()
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText("Replaying… (each turn is asked again, exactly as it was sent)")
        started = self.app.sessions.replay(ref, on_step=self._step)
        self.run_button.setEnabled(not started)
        if not started:
            self.progress.setVisible(False)
        return started

    def _step(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"Replayed {message}")

    def _error(self, message: Message) -> None:
        if message.error and self.progress.isVisible():
            self.progress.setVisible(False)
            self.run_button.setEnabled(True)
            self.status.setText(message.text)

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
                self.table.setItem(r, c, item(text))
        model = replayed.model
        self.status.setText(
            f"Replayed as session {replayed.id} on {model.name} {model.version}; it is in the session list."
        )


