"""The clue panel: clues grouped by category with source and status; accept, reject, edit, add.

The panel only presents and asks: it emits what the analyst wants (status change, new text, new clue)
and the main window writes it to the case store, then hands the stored clues back with
:meth:`CluePanel.set_clues`. Text from the model is shown as plain text (tree items never parse HTML).
"""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geodesk.domain.model import Clue, ClueStatus, Region

# Categories GaGA's clue mode uses; the analyst may type any other.
DEFAULT_CATEGORIES = (
    "architecture",
    "language",
    "signage",
    "vegetation",
    "terrain",
    "climate",
    "road",
    "vehicles",
    "people",
    "landmark",
    "metadata",
    "other",
)
STATUS_COLOURS = {
    ClueStatus.ACCEPTED: QColor("#2b8a3e"),
    ClueStatus.REJECTED: QColor("#c92a2a"),
    ClueStatus.EDITED: QColor("#1864ab"),
    ClueStatus.PROPOSED: QColor("#495057"),
}
ID_ROLE = Qt.ItemDataRole.UserRole


class CluePanel(QWidget):
    status_requested = Signal(int, str)  # clue id, ClueStatus value
    edit_requested = Signal(int, str)  # clue id, new text
    add_requested = Signal(str, str, object)  # category, text, Region | None
    clue_selected = Signal(object)  # Clue | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clues: dict[int, Clue] = {}
        self._filling = False
        self.pending_region: Region | None = None

        self.tree = QTreeWidget(self)
        self.tree.setObjectName("clueTree")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Clue", "Source", "Status"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.tree.itemChanged.connect(self._on_item_changed)

        self.accept_button = QPushButton("Accept", self)
        self.reject_button = QPushButton("Reject", self)
        self.edit_button = QPushButton("Edit", self)
        self.accept_button.clicked.connect(lambda: self._request_status(ClueStatus.ACCEPTED))
        self.reject_button.clicked.connect(lambda: self._request_status(ClueStatus.REJECTED))
        self.edit_button.clicked.connect(self._edit_selected)
        buttons = QHBoxLayout()
        for b in (self.accept_button, self.reject_button, self.edit_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.category = QComboBox(self)
        self.category.setEditable(True)
        self.category.addItems(DEFAULT_CATEGORIES)
        self.text = QLineEdit(self)
        self.text.setPlaceholderText("A clue you see, e.g. 'Cyrillic shop sign'")
        self.text.returnPressed.connect(self._add)
        self.pin = QCheckBox("Pin to drawn region", self)
        self.pin.setEnabled(False)
        self.add_button = QPushButton("Add", self)
        self.add_button.clicked.connect(self._add)
        add_row = QHBoxLayout()
        add_row.addWidget(self.category)
        add_row.addWidget(self.text, 1)
        add_row.addWidget(self.pin)
        add_row.addWidget(self.add_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addLayout(add_row)
        self._update_buttons()

    def set_clues(self, clues: list[Clue]) -> None:
        selected = self.selected_clue()
        self._filling = True
        self.tree.clear()
        self._clues = {c.id: c for c in clues if c.id is not None}
        groups: dict[str, list[Clue]] = defaultdict(list)
        for clue in clues:
            groups[clue.category or "other"].append(clue)
        for category in sorted(groups):
            parent = QTreeWidgetItem(self.tree, [f"{category} ({len(groups[category])})", "", ""])
            parent.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for clue in groups[category]:
                text = clue.text + ("  ▣" if clue.region is not None else "")
                item = QTreeWidgetItem(parent, [text, clue.source.value, clue.status.value])
                item.setData(0, ID_ROLE, clue.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setForeground(2, QBrush(STATUS_COLOURS.get(clue.status, QColor("#495057"))))
                if clue.status == ClueStatus.REJECTED:
                    font = item.font(0)
                    font.setStrikeOut(True)
                    item.setFont(0, font)
            parent.setExpanded(True)
        self._filling = False
        if selected is not None and selected.id is not None:
            self.select_clue(selected.id)
        self._update_buttons()

    def clues(self) -> list[Clue]:
        return list(self._clues.values())

    def set_pending_region(self, region: Region | None) -> None:
        self.pending_region = region
        self.pin.setEnabled(region is not None)
        self.pin.setChecked(region is not None)

    def select_clue(self, clue_id: int) -> None:
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            if parent is None:
                continue
            for j in range(parent.childCount()):
                item = parent.child(j)
                if item is not None and item.data(0, ID_ROLE) == clue_id:
                    self.tree.setCurrentItem(item)
                    return

    def selected_clue(self) -> Clue | None:
        item = self.tree.currentItem()
        if item is None or not item.isSelected():
            return None
        clue_id = item.data(0, ID_ROLE)
        return self._clues.get(clue_id) if clue_id is not None else None

    def _request_status(self, status: ClueStatus) -> None:
        clue = self.selected_clue()
        if clue is not None and clue.id is not None:
            self.status_requested.emit(clue.id, status.value)

    def accept_selected(self) -> None:
        self._request_status(ClueStatus.ACCEPTED)

    def reject_selected(self) -> None:
        self._request_status(ClueStatus.REJECTED)

    def _edit_selected(self) -> None:
        item = self.tree.currentItem()
        if item is not None and item.data(0, ID_ROLE) is not None:
            self.tree.editItem(item, 0)

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0:
            return
        clue = self._clues.get(item.data(0, ID_ROLE))
        text = item.text(0).replace("  ▣", "").strip()
        if clue is not None and clue.id is not None and text and text != clue.text:
            self.edit_requested.emit(clue.id, text)

    def _add(self) -> None:
        text = self.text.text().strip()
        category = self.category.currentText().strip() or "other"
        if not text:
            self.text.setPlaceholderText("Type the clue first, then Add")
            return
        region = self.pending_region if self.pin.isChecked() else None
        self.add_requested.emit(category, text, region)
        self.text.clear()

    def _on_selection(self) -> None:
        self._update_buttons()
        self.clue_selected.emit(self.selected_clue())

    def _update_buttons(self) -> None:
        has = self.selected_clue() is not None
        for b in (self.accept_button, self.reject_button, self.edit_button):
            b.setEnabled(has)
