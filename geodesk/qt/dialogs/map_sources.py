"""Map layers and tile sets: the workspace's tile sets (install, verify, remove) and the open case's
map layers (import, show or hide, remove), through geodesk.app's MapsController.

Each list is read again after every change, so what is shown is what the services hold; names come
from files an analyst or administrator brought and are shown as plain text.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geodesk.app import Application

TILESET_COLUMNS = ("Name", "Kind", "Zoom", "Size", "Id")
LAYER_COLUMNS = ("Shown", "Name", "Features", "From", "Id")


class MapSourcesDialog(QDialog):
    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Map layers and tile sets")
        self.setObjectName("mapSourcesDialog")
        self.app = app
        self.busy = False
        self.tilesets = self.app.maps.tilesets()
        self.layers = self.app.maps.layers()

        self.tile_table = self._table(TILESET_COLUMNS, "tileSetTable")
        self.install_button = QPushButton("Install…", self)
        self.verify_button = QPushButton("Verify", self)
        self.remove_tileset_button = QPushButton("Remove", self)
        self.install_button.clicked.connect(self._ask_install)
        self.verify_button.clicked.connect(self.verify_selected)
        self.remove_tileset_button.clicked.connect(self.remove_selected_tileset)
        tiles_box = self._box(
            "Tile sets of this workspace (drawn over the default basemap where they have tiles)",
            self.tile_table, self.install_button, self.verify_button, self.remove_tileset_button,
        )

        self.layer_table = self._table(LAYER_COLUMNS, "caseLayerTable")
        self.layer_table.itemChanged.connect(self._layer_item_changed)
        self.import_button = QPushButton("Import…", self)
        self.remove_layer_button = QPushButton("Remove", self)
        self.import_button.clicked.connect(self._ask_import)
        self.remove_layer_button.clicked.connect(self.remove_selected_layer)
        self.layers_box = self._box(
            "Map layers of the open case (KML, KMZ, GeoJSON, GPX)",
            self.layer_table, self.import_button, self.remove_layer_button,
        )

        self.status = QLabel(self)
        self.status.setObjectName("mapSourcesStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tiles_box)
        layout.addWidget(self.layers_box)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        app.state.message.connect(self._message)
        # The layer list belongs to the open case: another case (opened by a job, the demo) reloads it,
        # as does any change the maps controller reports.
        app.state.events.case.connect(self._reload)
        app.state.map_sources_changed.connect(self._reload)
        self.finished.connect(self._closed)
        self.resize(760, 520)
        self.refresh()

    # -- building
    def _table(self, columns: tuple[str, ...], name: str) -> QTableWidget:
        table = QTableWidget(0, len(columns), self)
        table.setObjectName(name)
        table.setHorizontalHeaderLabels(list(columns))
        table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setStretchLastSection(True)
        return table

    def _box(self, title: str, table: QTableWidget, *buttons: QPushButton) -> QGroupBox:
        box = QGroupBox(title, self)
        row = QHBoxLayout()
        for button in buttons:
            row.addWidget(button)
        row.addStretch(1)
        layout = QVBoxLayout(box)
        layout.addWidget(table)
        layout.addLayout(row)
        return box

    def _reload(self, *_values: object) -> None:
        self.refresh()

    def _closed(self, _code: int) -> None:
        self.app.state.message.disconnect(self._message)
        self.app.state.events.case.disconnect(self._reload)
        self.app.state.map_sources_changed.disconnect(self._reload)

    def _message(self, message: object) -> None:
        title = getattr(message, "title", "")
        if title in ("Tile sets", "Map layers"):
            self.status.setText(f"{title}: {getattr(message, 'text', '')}")

    # -- what is shown
    def refresh(self) -> None:
        self.tilesets = self.app.maps.tilesets()
        self.layers = self.app.maps.layers()
        self.tile_table.setRowCount(len(self.tilesets))
        for row, t in enumerate(self.tilesets):
            cells = (t.name, f"{t.kind} ({t.tile_format})", f"{t.min_zoom}–{t.max_zoom}",
                     f"{t.bytes / 1e6:.1f} MB", t.id)
            for col, text in enumerate(cells):
                self.tile_table.setItem(row, col, QTableWidgetItem(text))
        self.layer_table.blockSignals(True)  # filling the table is not the analyst toggling a layer
        self.layer_table.setRowCount(len(self.layers))
        for row, layer in enumerate(self.layers):
            shown = QTableWidgetItem()
            flags = Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            shown.setFlags(flags)
            shown.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
            self.layer_table.setItem(row, 0, shown)
            for col, text in enumerate((layer.name, str(layer.features), layer.source_name, layer.id), 1):
                self.layer_table.setItem(row, col, QTableWidgetItem(text))
        self.layer_table.blockSignals(False)
        has_case = self.app.state.case_dir is not None
        self.layers_box.setEnabled(has_case)
        if not has_case:
            self.layers_box.setToolTip("open a case first: map layers belong to a case")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.install_button.setEnabled(not self.busy)
        self.verify_button.setEnabled(bool(self.tilesets) and not self.busy)
        self.remove_tileset_button.setEnabled(bool(self.tilesets) and not self.busy)
        self.remove_layer_button.setEnabled(bool(self.layers))

    def _selected(self, table: QTableWidget) -> int:
        rows = table.selectionModel().selectedRows()
        return rows[0].row() if rows else (0 if table.rowCount() == 1 else -1)

    # -- tile sets
    def _ask_install(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Install a tile set", str(Path.home()), "Tile sets (*.pmtiles *.mbtiles);;All files (*)"
        )
        if path:
            self.install(Path(path))

    def install(self, source: Path) -> None:
        self.busy = True
        self._update_buttons()
        self.status.setText(f"Installing {source.name}: checking and hashing the file…")

        def done(_tileset: object) -> None:
            self.busy = False
            self.refresh()

        self.app.maps.install_tileset(source, on_done=done)

    def select_tileset(self, ref: str) -> bool:
        for row, t in enumerate(self.tilesets):
            if ref in (t.id, t.name):
                self.tile_table.selectRow(row)
                return True
        return False

    def verify_selected(self) -> None:
        row = self._selected(self.tile_table)
        if row < 0:
            self.status.setText("Tile sets: choose a tile set in the list first")
            return
        self.app.maps.verify_tileset(self.tilesets[row].id)

    def remove_selected_tileset(self) -> None:
        row = self._selected(self.tile_table)
        if row < 0:
            self.status.setText("Tile sets: choose a tile set in the list first")
            return
        self.app.maps.remove_tileset(self.tilesets[row].id)
        self.refresh()

    # -- case layers
    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a map layer", str(Path.home()),
            "Map layers (*.kml *.kmz *.geojson *.json *.gpx);;All files (*)",
        )
        if path:
            self.import_layer(Path(path))

    def import_layer(self, source: Path) -> None:
        self.app.maps.import_layer(source)
        self.refresh()

    def _layer_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0 or not 0 <= item.row() < len(self.layers):
            return
        visible = item.checkState() == Qt.CheckState.Checked
        self.app.maps.set_layer_visible(self.layers[item.row()].id, visible)
        self.refresh()

    def set_layer_shown(self, row: int, shown: bool) -> None:
        """Tick or clear the Shown box of a row, as the analyst would."""
        item = self.layer_table.item(row, 0)
        if item is not None:
            item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)

    def remove_selected_layer(self) -> None:
        row = self._selected(self.layer_table)
        if row < 0:
            self.status.setText("Map layers: choose a layer in the list first")
            return
        self.app.maps.remove_layer(self.layers[row].id)
        self.refresh()
