"""The clue engine's panel: one row per engine clue (kind, value, source and provenance, confidence,
status, what it supports), review buttons, the engine's run buttons, the sun form and the send button.

The panel presents and asks; it never writes: its signals go to the controllers (the dock wires them).
Every text an image or a model produced (OCR'd sign text, place names) is shown as plain text: table
items never parse markup, and tooltips get escaped text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geodesk.app.state import SunMarks
from geodesk.domain.model import ClueStatus
from geodesk.qt.text import plain_label, plain_tip

COLUMNS = ("Kind", "Value", "Source", "Confidence", "Status", "Supports")
VALUE_COLUMN = 1
ID_ROLE = Qt.ItemDataRole.UserRole
STATUS_COLOURS = {
    ClueStatus.ACCEPTED: QColor("#2b8a3e"),
    ClueStatus.REJECTED: QColor("#c92a2a"),
    ClueStatus.EDITED: QColor("#1864ab"),
    ClueStatus.PROPOSED: QColor("#495057"),
}


def provenance_text(clue: Any) -> str:
    """Where an engine clue came from, in one line: the analyser, the OCR engine and its model files."""
    parts = [f"{clue.clue.source.value}, engine v{clue.engine_version}"]
    ocr = clue.provenance.get("ocr") or {}
    if isinstance(ocr, dict) and ocr.get("engine"):
        parts.append(f"OCR {ocr['engine']} {ocr.get('version', '')}".rstrip())
        models = ocr.get("models") or {}
        if isinstance(models, dict):
            parts += [f"{name} {str(digest)[:12]}" for name, digest in sorted(models.items())]
    if clue.provenance.get("solar_position"):
        parts.append(f"solar position: {clue.provenance['solar_position']}")
    return "; ".join(parts)


def supports_text(clue: Any, limit: int = 4) -> str:
    """The countries a clue backs most, and what it says of the others."""
    top = sorted(clue.countries.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    listed = ", ".join(f"{code} {value:.2f}" for code, value in top)
    if len(clue.countries) > limit:
        listed += f" … ({len(clue.countries)})"
    if clue.others <= 0.05:
        return f"{listed}; rules out the rest" if listed else "rules out every country"
    if not listed:
        return "says nothing about places"
    return f"{listed}; others {clue.others:.2f}"


class EngineCluePanel(QWidget):
    status_requested = Signal(int, str)  # clue id, ClueStatus value
    edit_requested = Signal(int, str)  # clue id, new text
    clue_selected = Signal(object)  # clue id | None
    run_requested = Signal()
    run_region_requested = Signal()
    send_requested = Signal()
    sun_marking_toggled = Signal(bool)
    add_sun_requested = Signal(str, str)  # time text (blank: EXIF), ratio text (blank: from the marks)
    clear_sun_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ids: list[int] = []
        self._texts: dict[int, str] = {}
        self._filling = False

        self.run_button = QPushButton("Run clue engine", self)
        self.run_button.setObjectName("runClueEngine")
        self.run_button.setToolTip("Read the selected image's text, numbers, addresses and time zone")
        self.run_button.clicked.connect(self.run_requested)
        self.run_region_button = QPushButton("Run on drawn region", self)
        self.run_region_button.setEnabled(False)
        self.run_region_button.clicked.connect(self.run_region_requested)
        self.running = plain_label("", self, wrap=False)
        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(self.run_region_button)
        top.addWidget(self.running, 1)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("engineClueTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in (0, 2, 3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(VALUE_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Interactive)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.itemChanged.connect(self._on_item_changed)

        self.accept_button = QPushButton("Accept", self)
        self.reject_button = QPushButton("Reject", self)
        self.edit_button = QPushButton("Edit", self)
        self.accept_button.clicked.connect(lambda: self._request_status(ClueStatus.ACCEPTED))
        self.reject_button.clicked.connect(lambda: self._request_status(ClueStatus.REJECTED))
        self.edit_button.clicked.connect(self._edit_selected)
        self.send_button = QPushButton("Send accepted clues as hint", self)
        self.send_button.setObjectName("sendAcceptedClues")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send_requested)
        review = QHBoxLayout()
        for b in (self.accept_button, self.reject_button, self.edit_button):
            review.addWidget(b)
        review.addStretch(1)
        review.addWidget(self.send_button)

        # The sun: an object's box and its shadow tip on the image (or a typed ratio) and the time.
        sun = QGroupBox("Sun and shadow", self)
        self.mark_button = QPushButton("Mark on image", sun)
        self.mark_button.setCheckable(True)
        self.mark_button.setToolTip(
            "Drag a box over a vertical object (top to base), then click its shadow's tip"
        )
        self.mark_button.toggled.connect(self.sun_marking_toggled)
        self.marks_label = plain_label("Nothing marked", sun, wrap=True)
        self.time_edit = QLineEdit(sun)
        self.time_edit.setPlaceholderText("time with offset, e.g. 2024-06-21T14:05:00+02:00 (blank: EXIF)")
        self.ratio_edit = QLineEdit(sun)
        self.ratio_edit.setPlaceholderText("or height / shadow ratio")
        self.add_sun_button = QPushButton("Add sun clue", sun)
        self.add_sun_button.setObjectName("addSunClue")
        self.add_sun_button.clicked.connect(
            lambda: self.add_sun_requested.emit(self.time_edit.text(), self.ratio_edit.text())
        )
        self.clear_marks_button = QPushButton("Clear marks", sun)
        self.clear_marks_button.clicked.connect(self.clear_sun_requested)
        sun_rows = QVBoxLayout(sun)
        first = QHBoxLayout()
        first.addWidget(self.mark_button)
        first.addWidget(self.marks_label, 1)
        first.addWidget(self.clear_marks_button)
        second = QHBoxLayout()
        second.addWidget(self.time_edit, 2)
        second.addWidget(self.ratio_edit, 1)
        second.addWidget(self.add_sun_button)
        sun_rows.addLayout(first)
        sun_rows.addLayout(second)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(review)
        layout.addWidget(sun)
        self._update_buttons()

    # -- rows
    def set_clues(self, clues: Sequence[Any]) -> None:
        """Show these engine clues (geodesk.store.engine_clues.EngineClue), keeping the selected row."""
        selected = self.selected_clue_id()
        self._filling = True
        self.table.setRowCount(0)
        self._ids = []
        self._texts = {}
        for row, c in enumerate(clues):
            clue = c.clue
            if clue.id is None:
                continue
            self.table.insertRow(row)
            self._ids.append(clue.id)
            self._texts[clue.id] = clue.text
            cells = (
                clue.category,
                clue.text + ("  ▣" if clue.region is not None else ""),
                provenance_text(c),
                f"{c.confidence:.2f}",
                clue.status.value,
                supports_text(c),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(ID_ROLE, clue.id)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if column == VALUE_COLUMN:
                    flags |= Qt.ItemFlag.ItemIsEditable
                item.setFlags(flags)
                item.setToolTip(plain_tip(text))
                self.table.setItem(row, column, item)
            status = self.table.item(row, 4)
            assert status is not None
            status.setForeground(QBrush(STATUS_COLOURS.get(clue.status, QColor("#495057"))))
            if clue.status == ClueStatus.REJECTED:
                value = self.table.item(row, VALUE_COLUMN)
                assert value is not None
                font = value.font()
                font.setStrikeOut(True)
                value.setFont(font)
        self._filling = False
        if selected is not None:
            self.select_clue(selected)
        self._update_buttons()

    def row_texts(self) -> list[tuple[str, ...]]:
        """What each row shows, column by column (tests and screenshots)."""
        out: list[tuple[str, ...]] = []
        for row in range(self.table.rowCount()):
            cells = [self.table.item(row, column) for column in range(len(COLUMNS))]
            out.append(tuple("" if c is None else c.text() for c in cells))
        return out

    def select_clue(self, clue_id: int | None) -> None:
        if clue_id is None or clue_id not in self._ids:
            self.table.clearSelection()
            return
        row = self._ids.index(clue_id)
        if self.selected_clue_id() != clue_id:
            self.table.selectRow(row)

    def selected_clue_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return None if not rows else self._ids[rows[0].row()]

    def _request_status(self, status: ClueStatus) -> None:
        clue_id = self.selected_clue_id()
        if clue_id is not None:
            self.status_requested.emit(clue_id, status.value)

    def _edit_selected(self) -> None:
        clue_id = self.selected_clue_id()
        if clue_id is not None:
            item = self.table.item(self._ids.index(clue_id), VALUE_COLUMN)
            if item is not None:
                item.setText(self._texts[clue_id])  # edit the text itself, without the region mark
                self.table.editItem(item)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != VALUE_COLUMN:
            return
        clue_id = item.data(ID_ROLE)
        text = item.text().replace("  ▣", "").strip()
        if clue_id in self._texts and text and text != self._texts[clue_id]:
            self.edit_requested.emit(int(clue_id), text)

    def _on_selection(self) -> None:
        self._update_buttons()
        self.clue_selected.emit(self.selected_clue_id())

    def _update_buttons(self) -> None:
        has = self.selected_clue_id() is not None
        for b in (self.accept_button, self.reject_button, self.edit_button):
            b.setEnabled(has)

    # -- the rest of the panel's state
    def set_running(self, running: bool) -> None:
        self.running.setText("The clue engine is reading the image…" if running else "")

    def set_can_run(self, can_run: bool, has_region: bool) -> None:
        self.run_button.setEnabled(can_run)
        self.run_region_button.setEnabled(can_run and has_region)

    def set_can_send(self, can_send: bool) -> None:
        self.send_button.setEnabled(can_send)

    def set_sun_marks(self, marks: SunMarks | None) -> None:
        if marks is None or marks.object_box is None:
            self.marks_label.setText("Nothing marked")
        else:
            b = marks.object_box
            text = f"object {b.x0},{b.y0}–{b.x1},{b.y1}"
            if marks.shadow_tip is None:
                text += "; now click the shadow's tip"
            else:
                text += f"; shadow tip {marks.shadow_tip[0]:.0f},{marks.shadow_tip[1]:.0f}"
            self.marks_label.setText(text)

    def set_sun_marking(self, on: bool) -> None:
        if self.mark_button.isChecked() != on:
            self.mark_button.blockSignals(True)
            self.mark_button.setChecked(on)
            self.mark_button.blockSignals(False)

    def reset_sun_form(self) -> None:
        """A new selection: the previous item's typed time and ratio do not carry over."""
        self.time_edit.clear()
        self.ratio_edit.clear()
