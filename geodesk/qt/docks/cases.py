"""The case browser: the workspace's cases; double-click or Open opens one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from geodesk.app import Application
from geodesk.domain.model import Case
from geodesk.qt.docks.base import Dock


class CasesDock(Dock):
    title, name = "Cases", "casesDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        body = QWidget(self)
        self.case_list = QListWidget(body)
        self.case_list.setObjectName("caseList")
        self.new_button = QPushButton("New…", body)
        self.open_button = QPushButton("Open", body)
        self.close_button = QPushButton("Close", body)
        row = QHBoxLayout()
        for b in (self.new_button, self.open_button, self.close_button):
            row.addWidget(b)
        col = QVBoxLayout(body)
        col.addWidget(self.case_list, 1)
        col.addLayout(row)
        self.setWidget(body)
        self.case_list.itemDoubleClicked.connect(lambda _item: self.open_selected())
        self.close_button.clicked.connect(app.cases.close)
        self.watch("cases", self.show_cases)
        self.watch_all(("case", "started"), self._update_buttons)
        self.show_cases(self.state.cases)
        self._update_buttons()

    def show_cases(self, cases: tuple[Case, ...]) -> None:
        self.case_list.clear()
        for case in cases:
            item = QListWidgetItem(f"{case.title}\n{case.id}")  # list items are plain text
            item.setData(Qt.ItemDataRole.UserRole, case.id)
            item.setToolTip(case.path)
            self.case_list.addItem(item)

    def selected_case(self) -> str | None:
        item = self.case_list.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    def open_selected(self) -> None:
        ref = self.selected_case()
        if ref is None:
            self.app.ctx.status("Choose a case in the Cases list first")
        else:
            self.app.cases.open(ref)

    def _update_buttons(self) -> None:
        self.new_button.setEnabled(self.state.started)
        self.open_button.setEnabled(self.state.started)
        self.close_button.setEnabled(self.state.case is not None)
