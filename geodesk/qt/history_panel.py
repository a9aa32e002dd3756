"""Prediction history: a table of turns and a pyqtgraph plot of km moved / km from the reference.

Rows come from :func:`geodesk.report.history.history_rows` (Qt-free, tested on its own); this module
only lays them out. Selecting a row or a plot point emits ``turn_selected`` for the map.

The plot is redrawn on the UI thread at every selection, so it is kept cheap: no grid (its lines
cost about 6 ms of every repaint, more than the curves and axes together), the key to the curves a
label under the plot rather than a legend drawn in its scene (2-3 ms more), ranges set from the data
instead of pyqtgraph's auto-range passes, and a series, the title or the range is handed to
pyqtgraph only when it changed (a new turn adds a point; selecting an item with the same shape of
history repaints nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from geodesk.qt.text import plain_tip
from geodesk.report.history import HistoryRow, Reference

if TYPE_CHECKING:
    import pyqtgraph as pg

LEFT_AXIS_WIDTH = 56  # px: tick labels up to "20000" and the axis label
COLUMNS = ("Turn", "Hint", "Prediction", "Moved (km)", "From ref. (km)", "Time (s)", "Status")
Index = QModelIndex | QPersistentModelIndex


def plot_ranges(
    xs: list[int], ys: list[float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The plot's (x, y) ranges for these points: the data with a margin, a readable range around a
    single point or value (not ±0.001), and (0, 1) × (0, 1) for nothing (never the previous item's)."""
    if not xs:
        return (0.0, 1.0), (0.0, 1.0)
    x0, x1, y0, y1 = float(min(xs)), float(max(xs)), float(min(ys)), float(max(ys))
    x_pad = 1.0 if x0 == x1 else (x1 - x0) * 0.05
    y_pad = 10.0 if y0 == y1 else (y1 - y0) * 0.05
    return (x0 - x_pad, x1 + x_pad), (y0 - y_pad, y1 + y_pad)


def _km(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


# Each column's text of a row (the view asks for one cell at a time, many times per repaint).
_DISPLAY: tuple[Any, ...] = (
    lambda r: str(r.turn_index + 1),  # shown as Turn.number, from 1
    lambda r: r.hint,
    lambda r: r.prediction,
    lambda r: _km(r.km_moved),
    lambda r: _km(r.km_from_reference),
    lambda r: "" if r.seconds is None else f"{r.seconds:.1f}",
    lambda r: r.status,
)


class HistoryModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[HistoryRow] = []
        self.reference_label = "reference"
        self.turn_flags: dict[int, list[str]] = {}  # turn index -> the accepted clues its answer contradicts

    def set_rows(self, rows: list[HistoryRow], reference: Reference | None) -> None:
        self.beginResetModel()
        self.rows = rows
        self.reference_label = "reference" if reference is None else reference.label
        self.endResetModel()
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)

    def set_flags(self, flags: dict[int, list[str]]) -> None:
        self.turn_flags = {k: list(v) for k, v in flags.items() if v}
        if self.rows:
            column = len(COLUMNS) - 1
            self.dataChanged.emit(self.index(0, column), self.index(len(self.rows) - 1, column))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(  # noqa: N802
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        if section == 4:
            return f"From {self.reference_label} (km)"
        return COLUMNS[section]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        flags = self.turn_flags.get(row.turn_index, [])
        if flags and index.column() == len(COLUMNS) - 1:
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{row.status} ⚠ against {len(flags)} clue(s)"
            if role == Qt.ItemDataRole.ToolTipRole:
                return plain_tip("Contradicts accepted clues:\n" + "\n".join(flags))
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor("#c92a2a")
        if role == Qt.ItemDataRole.DisplayRole:
            return _DISPLAY[index.column()](row)
        if role == Qt.ItemDataRole.ToolTipRole and index.column() in (1, 2):
            return plain_tip(row.hint if index.column() == 1 else row.prediction)  # model text: plain
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (0, 3, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class HistoryPanel(QWidget):
    turn_selected = Signal(int)  # turn index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = HistoryModel()
        self.table = QTableView(self)
        self.table.setObjectName("historyTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        for column in (0, 3, 4, 5, 6):  # numbers and status: as wide as their header and values
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(1, 110)
        header.setMinimumSectionSize(48)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        # pyqtgraph (with numpy) costs half a second to import: the plot is made by ensure_plot(), after
        # the window is shown; the app imports pyqtgraph in a worker first.
        self.plot: pg.PlotWidget | None = None
        self.moved_curve: Any = None
        self.ref_curve: Any = None
        self.marker: Any = None
        self._reference: Reference | None = None
        # What pyqtgraph was last given (series, title, ranges): only changes are handed on.
        self._shown: dict[str, Any] = {}
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def ensure_plot(self) -> None:
        if self.plot is not None:
            return
        import pyqtgraph as pg

        self.plot = pg.PlotWidget(self)
        self.plot.setObjectName("historyPlot")
        self.plot.setBackground("w")
        self.plot.getViewBox().disableAutoRange()  # ranges come from the data (_update_plot)
        self.plot.setLabel("bottom", "turn")
        self.plot.setLabel("left", "km")
        # A fixed axis width and a title row that is always there: new tick labels or a title
        # appearing would otherwise lay the plot out again and repaint it a second time.
        self.plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
        self.moved_curve = self.plot.plot(
            [],
            [],
            pen=pg.mkPen("#1f5fbf", width=2),
            symbol="o",
            symbolBrush="#1f5fbf",
        )
        self.ref_curve = self.plot.plot(
            [],
            [],
            pen=pg.mkPen("#c2255c", width=2),
            symbol="s",
            symbolBrush="#c2255c",
        )
        self.marker = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen("#e8590c", style=Qt.PenStyle.DashLine)
        )
        self.marker.setVisible(False)
        self.plot.addItem(self.marker)
        for curve in (self.moved_curve, self.ref_curve):
            curve.sigPointsClicked.connect(self._on_points_clicked)
        self.plot_key = QLabel(
            "<span style='color:#1f5fbf'>&#9679; moved from previous turn</span>&nbsp;&nbsp;"
            "<span style='color:#c2255c'>&#9632; from finding / EXIF point</span>",
            self,
        )
        self.plot_key.setObjectName("historyPlotKey")
        self.plot_key.setTextFormat(Qt.TextFormat.RichText)  # fixed text, no data in it
        box = QWidget(self)
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.setSpacing(2)
        box_layout.addWidget(self.plot, 1)
        box_layout.addWidget(self.plot_key)
        # With no turn to plot a label stands in for the plot: the click on an item then does not
        # also repaint an emptied plot (its axes are most of a repaint); the plot is painted once,
        # when the item's rows are in.
        self.plot_stack = QStackedWidget(self)
        self.plot_stack.addWidget(box)
        self.no_turns = QLabel("No turns to plot", self.plot_stack)
        self.no_turns.setObjectName("historyNoTurns")
        self.no_turns.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_turns.setStyleSheet("color: #868e96")
        self.plot_stack.addWidget(self.no_turns)
        self.splitter.addWidget(self.plot_stack)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.plot.setMinimumWidth(260)
        self.balance()
        self._update_plot()

    def balance(self) -> None:
        """Table and plot side by side, the plot wide enough for its axes and its key."""
        if self.plot is not None:
            width = max(self.splitter.width(), 600)
            self.splitter.setSizes([int(width * 0.62), int(width * 0.38)])

    def set_flags(self, flags: dict[int, list[str]]) -> None:
        """Mark the turns (by index) whose answers contradict accepted clues, with the reasons."""
        self.model.set_flags(flags)

    def set_rows(self, rows: list[HistoryRow], reference: Reference | None) -> None:
        """Show these rows (nothing is laid out or repainted when they are the rows already shown)."""
        if rows == self.model.rows and reference == self._reference:
            return
        self.model.set_rows(rows, reference)
        self._reference = reference
        self._update_plot()

    def _update_plot(self) -> None:
        if self.plot is None:
            return
        rows = self.model.rows
        if not rows:  # the label first: the emptied plot behind it is not painted
            self.plot_stack.setCurrentWidget(self.no_turns)
        # x is the turn number people see (from 1), not the stored index.
        moved = [(r.turn_index + 1, r.km_moved) for r in rows if r.km_moved is not None]
        ref = [(r.turn_index + 1, r.km_from_reference) for r in rows if r.km_from_reference is not None]
        for key, curve, points in (("moved", self.moved_curve, moved), ("reference", self.ref_curve, ref)):
            if self._shown.get(key) != points:
                self._shown[key] = points
                curve.setData([x for x, _ in points], [y for _, y in points])
        title = "" if self._reference is None else f"km from the {self._reference.label} point"
        if self._shown.get("title") != title:  # "" at first: the title row is laid out once
            self._shown["title"] = title
            self.plot.setTitle(title)
        self.marker.setVisible(False)
        ranges = plot_ranges([x for x, _ in moved + ref], [y for _, y in moved + ref])
        if self._shown.get("ranges") != ranges or self.plot_range() != ranges:
            self._shown["ranges"] = ranges
            self.plot.getViewBox().setRange(xRange=ranges[0], yRange=ranges[1], padding=0)
        if rows:  # drawn while hidden, shown (and painted) once
            self.plot_stack.setCurrentIndex(0)

    def plot_shown(self) -> bool:
        """The plot is on screen (False: the "no turns" label stands in for it)."""
        return self.plot is not None and self.plot_stack.currentIndex() == 0
    def plot_range(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The plot's (x, y) ranges, or None before the plot exists."""
        if self.plot is None:
            return None
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        return (float(x0), float(x1)), (float(y0), float(y1))

    def plotted(self) -> dict[str, tuple[list[float], list[float]]]:
        """The plotted series (x = turn number from 1, y = km), for tests and screenshots."""
        out: dict[str, tuple[list[float], list[float]]] = {}
        for name, curve in (("moved", self.moved_curve), ("reference", self.ref_curve)):
            xs, ys = (None, None) if curve is None else curve.getData()
            out[name] = (
                [] if xs is None else [float(v) for v in xs],
                [] if ys is None else [float(v) for v in ys],
            )
        return out

    def select_turn(self, turn_index: int) -> None:
        for i, row in enumerate(self.model.rows):
            if row.turn_index == turn_index:
                self.table.selectRow(i)
                return

    def selected_turn(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return None if not rows else self.model.rows[rows[0].row()].turn_index

    def _on_table_selection(self) -> None:
        turn = self.selected_turn()
        if self.marker is not None:
            self.marker.setVisible(turn is not None)
            if turn is not None:
                self.marker.setPos(turn)
        if turn is not None:
            self.turn_selected.emit(turn)

    def _on_points_clicked(self, _curve: Any, points: Any, *_: Any) -> None:
        if len(points):
            self.select_turn(round(points[0].pos().x()))
