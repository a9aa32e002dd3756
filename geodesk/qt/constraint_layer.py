"""The clue constraint on the map: ``state.clue_constraint`` drawn by the map page's
``geodesk.setConstraint`` (geodesk.report.map_page), beside the session's turns and candidates.

It is pushed on its own call, so the map's turns and the constraint redraw independently; a page that
(re)loads gets the current constraint again. A new selection resets the constraint to None first,
which clears the layer: the map never shows another item's clues.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from geodesk.app import Application
from geodesk.qt.map_view import MapView
from geodesk.report.map_page import constraint_json


class ConstraintLayer(QObject):
    def __init__(self, app: Application, view: MapView) -> None:
        super().__init__(view)
        self.app = app
        self.view = view
        self.pushed = 0  # how many times the layer was sent to the page (tests)
        view.ready.connect(self.push)
        app.state.watch_any(("evidence", "clue_constraint"), self.push)

    def document(self) -> dict[str, Any] | None:
        s = self.app.state
        return None if s.evidence is None else s.clue_constraint

    def push(self) -> None:
        if not self.view.is_ready:
            return  # the page calls for it when it is ready
        self.pushed += 1
        code = f"window.geodesk && window.geodesk.setConstraint({constraint_json(self.document())});"
        self.view.page().runJavaScript(code)
