"""The leading countries of the combined constraint, each with the clue that supports or rules it out,
and the turns whose answers contradict the accepted clues.

Reasons quote clue text (read off the image): shown as plain text only (tree items never parse markup).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QListWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from geodesk.qt.text import plain_label, plain_tip

STATUS_COLOURS = {
    "supported": QColor("#2b8a3e"),
    "contested": QColor("#e8590c"),
    "ruled_out": QColor("#c92a2a"),
    "neutral": QColor("#495057"),
}
STATUS_WORDS = {"supported": "supported", "contested": "contested", "ruled_out": "ruled out", "neutral": "—"}


class LeadingCountriesPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = plain_label("", self)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("leadingCountries")
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Country", "Share", "Status", "Why"])
        self.tree.setRootIsDecorated(False)
        header = self.tree.header()
        for column in (0, 1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.flags_label = plain_label("", self)
        self.flags = QListWidget(self)
        self.flags.setObjectName("turnFlags")
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree, 3)
        layout.addWidget(self.flags_label)
        layout.addWidget(self.flags, 1)
        self.show_constraint(None)
        self.show_flags([], {})

    def show_constraint(self, document: dict[str, Any] | None) -> None:
        """``document``: services.clue_engine.constraint_for's (None: no engine clues, or not combined)."""
        self.tree.clear()
        if document is None:
            self.summary.setText("Run the clue engine and accept clues to rank the countries.")
            return
        clues = document.get("clues") or []
        if not clues:
            self.summary.setText("No engine clue is accepted yet: accept clues to rank the countries.")
            return
        ruled_out = len(document.get("ruled_out") or [])
        self.summary.setText(
            f"{len(clues)} accepted clue(s); {ruled_out} countr{'y' if ruled_out == 1 else 'ies'} ruled out"
        )
        for verdict in document.get("leading") or []:
            status = str(verdict.get("status", "neutral"))
            item = QTreeWidgetItem(
                self.tree,
                [
                    f"{verdict.get('country', '')} ({verdict.get('country_code', '')})",
                    f"{float(verdict.get('share', 0.0)):.0%}",
                    STATUS_WORDS.get(status, status),
                    str(verdict.get("reason", "")),
                ],
            )
            item.setForeground(2, QBrush(STATUS_COLOURS.get(status, STATUS_COLOURS["neutral"])))
            item.setToolTip(3, plain_tip(str(verdict.get("reason", ""))))

    def rows(self) -> list[tuple[str, str, str, str]]:
        out: list[tuple[str, str, str, str]] = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None:
                out.append((item.text(0), item.text(1), item.text(2), item.text(3)))
        return out

    def show_flags(self, flags: Sequence[Any], turn_numbers: dict[int, int]) -> None:
        """The contradictions of the shown session's turns (``turn_numbers``: turn id -> number)."""
        self.flags.clear()
        shown = [f for f in flags if f.turn_id in turn_numbers]
        self.flags_label.setText(
            "Turns whose answer contradicts an accepted clue:"
            if shown
            else "No turn contradicts the accepted clues."
        )
        for f in shown:
            self.flags.addItem(f"Turn {turn_numbers[f.turn_id]}: {f.text}")

    def flag_texts(self) -> list[str]:
        return [self.flags.item(i).text() for i in range(self.flags.count())]
