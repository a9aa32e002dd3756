"""MapsController with the synchronous runner: tile sets and case layers through the same services as
`geodesk map ...` and `geodesk layer ...`, refusals as sentences, one change signal per change."""

from __future__ import annotations

from pathlib import Path

from geodesk.app import Application
from geodesk.services.map_tiles import tileset_path
from tests.services.test_case_layers import layer_files
from tests.tilefiles import raster_mbtiles, tiny_vector_pmtiles


def test_tile_sets_install_verify_and_remove(app: Application, tmp_path: Path) -> None:
    changes: list[str] = []
    app.state.map_sources_changed.connect(changes.append)
    done: list[object] = []
    app.maps.install_tileset(tiny_vector_pmtiles(tmp_path / "city.pmtiles"), on_done=done.append)
    app.maps.install_tileset(raster_mbtiles(tmp_path / "sat.mbtiles"), on_done=done.append)
    assert all(d is not None for d in done) and changes == ["tilesets", "tilesets"]
    sets = app.maps.tilesets()
    assert sorted(t.kind for t in sets) == ["raster", "vector"]
    assert app.maps.verify_tileset(sets[0].id) is None
    victim = tileset_path(app.ctx.workspace_path, sets[0])
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")  # tampered after install
    problem = app.maps.verify_tileset(sets[0].id)
    assert problem and app.state.status.startswith("Tile sets:")
    assert app.maps.remove_tileset(sets[0].id) and [t.id for t in app.maps.tilesets()] == [sets[1].id]
    assert not app.maps.remove_tileset("no-such-set") and "no-such-set" in app.state.status
    bad = tmp_path / "not-tiles.pmtiles"
    bad.write_bytes(b"hello")
    app.maps.install_tileset(bad, on_done=done.append)
    assert done[-1] is None and len(app.maps.tilesets()) == 1  # refused, nothing installed


def test_case_layers_import_hide_show_and_remove(app: Application, tmp_path: Path) -> None:
    assert app.maps.layers() == [] and app.maps.import_layer(layer_files(tmp_path)[0]) is None
    assert "open a case first" in app.state.status
    app.cases.create("Layers")
    changes: list[str] = []
    app.state.map_sources_changed.connect(changes.append)
    kml, _, gpx, _ = layer_files(tmp_path)
    route = app.maps.import_layer(kml)
    walk = app.maps.import_layer(gpx)
    assert route is not None and walk is not None
    hidden = app.maps.set_layer_visible(route.id, False)
    assert hidden is not None and not hidden.visible
    assert [x.visible for x in app.maps.layers()] == [False, True]
    assert app.maps.set_layer_visible(route.id, True) is not None
    assert app.maps.remove_layer(walk.id) is not None
    assert [x.id for x in app.maps.layers()] == [route.id]
    assert changes == ["layers"] * 5
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json", encoding="utf-8")
    assert app.maps.import_layer(broken) is None and app.state.status.startswith("Map layers:")
    assert len(app.maps.layers()) == 1
