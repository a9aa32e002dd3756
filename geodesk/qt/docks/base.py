"""What every dock shares: a fixed object name (the saved layout's key) and subscriptions to the state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QDockWidget, QWidget

from geodesk.app import Application


class Dock(QDockWidget):
    title = ""
    name = ""  # saveState/restoreState key

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(self.title, parent)
        self.setObjectName(self.name)
        self.app = app
        self.state = app.state

    def watch(self, field: str, slot: Callable[..., Any]) -> None:
        """Call ``slot(value)`` whenever the state's ``field`` changes."""
        self.state.watch(field, slot)

    def watch_all(self, fields: tuple[str, ...], slot: Callable[[], Any]) -> None:
        """Call ``slot()`` once per change of any of ``fields`` (several in one batch: once each)."""
        self.state.watch_any(fields, slot)
