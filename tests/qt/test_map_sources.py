"""The map sources dialog (File → Map layers and tile sets…): its buttons and check boxes reach the
MapsController, the lists show what the services hold, and the map redraws after each change."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from geodesk.qt.dialogs.map_sources import MapSourcesDialog
from geodesk.qt.main_window import MainWindow
from geodesk.services.case_layers import list_layers
from geodesk.services.map_tiles import list_tilesets
from tests.services.test_case_layers import layer_files
from tests.tilefiles import raster_mbtiles, tiny_vector_pmtiles


def test_tile_sets_install_verify_and_remove_from_the_dialog(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    window.acts["map_sources"].trigger()  # the menu entry opens the dialog
    dialog = window.prompts.dialog
    assert isinstance(dialog, MapSourcesDialog)
    qtbot.addWidget(dialog)
    rebuilt: list[str] = []
    window.state.map_sources_changed.connect(rebuilt.append)
    assert dialog.tile_table.rowCount() == 0 and not dialog.verify_button.isEnabled()
    dialog.install(tiny_vector_pmtiles(tmp_path / "city.pmtiles", "Hostile <b>town</b>"))
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30000)
    dialog.install(raster_mbtiles(tmp_path / "sat.mbtiles"))
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30000)
    installed = list_tilesets(window.app.workspace_path)
    assert dialog.tile_table.rowCount() == 2 == len(installed)
    assert [dialog.tile_table.item(r, 4).text() for r in range(2)] == [t.id for t in installed]
    assert rebuilt == ["tilesets", "tilesets"]
    assert dialog.select_tileset(installed[1].id)
    qtbot.mouseClick(dialog.verify_button, Qt.MouseButton.LeftButton)
    assert "matches its SHA-256" in dialog.status.text()
    qtbot.mouseClick(dialog.remove_tileset_button, Qt.MouseButton.LeftButton)
    assert [t.id for t in list_tilesets(window.app.workspace_path)] == [installed[0].id]
    assert dialog.tile_table.rowCount() == 1
    bad = tmp_path / "broken.pmtiles"
    bad.write_bytes(b"not a tile set")
    dialog.install(bad)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30000)
    assert dialog.status.text().startswith("Tile sets:") and dialog.tile_table.rowCount() == 1


def test_case_layers_import_toggle_and_remove_from_the_dialog(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    dialog = MapSourcesDialog(window.app, window)
    qtbot.addWidget(dialog)
    assert not dialog.layers_box.isEnabled()  # no case: nothing to put layers in
    window.app.cases.create("Layers")
    case_dir = window.state.case_dir
    assert case_dir is not None
    dialog.refresh()
    assert dialog.layers_box.isEnabled()
    kml, _, gpx, _ = layer_files(tmp_path)
    redrawn: list[str] = []
    window.state.map_sources_changed.connect(redrawn.append)
    dialog.import_layer(kml)
    dialog.import_layer(gpx)
    assert dialog.layer_table.rowCount() == 2
    assert dialog.layer_table.item(0, 0).checkState() == Qt.CheckState.Checked
    dialog.set_layer_shown(0, False)  # the analyst clears the Shown box
    assert [x.visible for x in list_layers(case_dir)] == [False, True]
    assert dialog.layer_table.item(0, 0).checkState() == Qt.CheckState.Unchecked
    dialog.layer_table.selectRow(1)
    qtbot.mouseClick(dialog.remove_layer_button, Qt.MouseButton.LeftButton)
    assert [x.source_name for x in list_layers(case_dir)] == [kml.name]
    assert dialog.layer_table.rowCount() == 1
    assert redrawn == ["layers", "layers", "layers", "layers"]
    window.app.maps.import_layer(layer_files(tmp_path)[3], "<b>area</b><img src=x>")
    dialog.refresh()
    assert dialog.layer_table.item(1, 1).text() == "<b>area</b><img src=x>"  # shown as the text it is


def test_the_layer_list_follows_the_open_case(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    """Another case opened while the dialog is up (a job, the demo) never leaves its layers listed."""
    window.app.cases.create("With a layer")
    dialog = MapSourcesDialog(window.app, window)
    qtbot.addWidget(dialog)
    window.app.maps.import_layer(layer_files(tmp_path)[0], "roads")
    assert dialog.layer_table.rowCount() == 1  # the controller's change reached the open dialog
    window.app.cases.create("Without layers")
    assert dialog.layer_table.rowCount() == 0
    dialog.done(0)
    window.app.cases.create("After closing")  # the closed dialog no longer listens
