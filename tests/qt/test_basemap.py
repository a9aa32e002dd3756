"""The default basemap in Qt WebEngine: tiles read from local PMTiles files, asserted on the page's JS
state (``grab()`` of a web view is blank offscreen); the offline filter still refuses the network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from pytestqt.qtbot import QtBot

from geodesk.qt.main_window import MainWindow
from geodesk.report.map_page import MapState, default_basemap_path, write_map_page
from tests.qt.helpers import js, wait_summary
from tests.tilefiles import raster_mbtiles, tiny_vector_pmtiles


def probe(qtbot: QtBot, window: MainWindow, lat: float, lon: float, z: int) -> dict[str, Any]:
    """Features per layer of the basemap tile under (lat, lon) at zoom z, as the renderer decoded it."""
    js(
        qtbot,
        window.docks["map"].view,
        f"(window.__probe = null, geodesk.probeBasemap({lat}, {lon}, {z})"
        ".then(function (r) { window.__probe = JSON.stringify(r); },"
        " function (e) { window.__probe = JSON.stringify({error: String(e)}); }), 1)",
    )
    box: list[str] = []

    def done() -> bool:
        value = js(qtbot, window.docks["map"].view, "window.__probe || ''")
        if value:
            box.append(value)
        return bool(box)

    qtbot.waitUntil(done, timeout=15000)
    result: dict[str, Any] = json.loads(box[0])
    return result


def test_default_basemap_draws_natural_earth_tiles(qtbot: QtBot, window: MainWindow) -> None:
    if default_basemap_path() is None:
        pytest.fail("resources/basemap/naturalearth-10m.pmtiles is missing: run tools/build_basemap.py")
    state = wait_summary(
        qtbot, window.docks["map"].view, lambda s: s["basemap"] and s["tiles"]["loaded"] > 0, 30000
    )
    tiles = state["tiles"]
    assert tiles["errors"] == 0 and tiles["error"] is None
    assert tiles["mode"] == "range"  # Qt WebEngine honours the Range header on file:// URLs
    assert tiles["header"] == {"minZoom": 0, "maxZoom": 8, "tileType": 1}  # 1: vector (MVT)
    assert state["layers"] == 6  # basemap, names, session overlay, candidates, case layers, clue constraint
    # what the renderer decoded around Paris at zoom 5: land, borders, rivers, the city itself
    paris = probe(qtbot, window, 48.8566, 2.3522, 5)
    assert paris["land"] > 0 and paris["boundaries"] > 0 and paris["rivers"] > 0
    assert "Paris" in paris["placeNames"]
    # over-zoomed past the data's zoom 8: still drawn from the zoom-8 tile
    assert "Strasbourg" in probe(qtbot, window, 48.5734, 7.7521, 11)["placeNames"]


def test_a_small_pmtiles_file_is_read_whole_and_names_stay_text(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    tiles = tiny_vector_pmtiles(tmp_path / "tiny.pmtiles", "<img src=x onerror=alert(1)>")
    assert tiles.stat().st_size < 16384
    page = write_map_page(tmp_path / "map.html", MapState(), basemap=tiles, view=(0.0, 0.0, 1))
    wait_summary(
        qtbot, window.docks["map"].view, lambda s: s["basemap"], 30000
    )  # the window's own page first
    window.docks["map"].view.load(QUrl.fromLocalFile(str(page)))

    def ours(s: dict[str, Any]) -> bool:
        header = s["tiles"]["header"]
        return bool(s["basemap"] and header and header["maxZoom"] == 0 and s["tiles"]["loaded"] > 0)

    state = wait_summary(qtbot, window.docks["map"].view, ours, 30000)
    assert state["tiles"]["mode"] == "whole" and state["tiles"]["errors"] == 0
    result = probe(qtbot, window, 10.0, 10.0, 0)
    assert result["land"] == 1 and result["placeNames"] == ["<img src=x onerror=alert(1)>"]
    # a label is drawn on a canvas, never parsed as markup: no <img> reached the document
    assert js(qtbot, window.docks["map"].view, "document.querySelectorAll('img[src=x]').length") == 0


def test_the_network_stays_refused_with_a_basemap(qtbot: QtBot, window: MainWindow) -> None:
    from geodesk.qt import map_view

    wait_summary(qtbot, window.docks["map"].view, lambda s: s["basemap"], 30000)
    js(
        qtbot,
        window.docks["map"].view,
        "(window.__net = [], ['http://example.com/t.pmtiles', 'https://example.com/x', 'ftp://example.com/y']"
        ".forEach(function (u) { fetch(u).then(function () { window.__net.push('ok ' + u); },"
        " function () { window.__net.push('refused'); }); }), 1)",
    )
    qtbot.waitUntil(lambda: js(qtbot, window.docks["map"].view, "window.__net.length") == 3, timeout=15000)
    assert json.loads(js(qtbot, window.docks["map"].view, "JSON.stringify(window.__net)")) == ["refused"] * 3
    assert map_view._interceptor is not None  # the offline filter is installed on the page's profile
    assert window.docks["map"].view.page().profile() is map_view.offline_profile()


def test_installed_pmtiles_and_mbtiles_are_drawn_over_the_basemap(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    from geodesk.services.map_tiles import install_tileset

    vector = install_tileset(
        window.app.workspace_path, tiny_vector_pmtiles(tmp_path / "town.pmtiles"), "Town"
    )
    raster = install_tileset(window.app.workspace_path, raster_mbtiles(tmp_path / "aerial.mbtiles"))
    wait_summary(qtbot, window.docks["map"].view, lambda s: s["basemap"], 30000)  # the window's first page
    window.docks["map"].view.build("", window.app.workspace_path)  # as the window does on start

    def drawn(s: dict[str, Any]) -> bool:
        sets = s.get("tilesets") or []
        return len(sets) == 2 and all(t["loaded"] > 0 for t in sets) and s["tiles"]["loaded"] > 0

    state = wait_summary(qtbot, window.docks["map"].view, drawn, 30000)
    by_id = {t["id"]: t for t in state["tilesets"]}
    assert by_id[vector.id]["kind"] == "vector" and by_id[raster.id]["kind"] == "raster"
    assert all(t["errors"] == 0 and t["bytes"] > 0 for t in state["tilesets"])
    assert state["layers"] == 8  # + two tile sets


def test_case_layers_are_drawn_and_their_names_stay_text(
    qtbot: QtBot, window: MainWindow, images: list[Path], tmp_path: Path
) -> None:
    from geodesk.services.case_layers import import_layer, set_visible
    from tests.qt.conftest import import_and_wait
    from tests.services.test_case_layers import layer_files

    window.app.cases.create("Layers")
    import_and_wait(qtbot, window, images[:1])
    assert window.app.ctx.store is not None and window.state.evidence is not None
    kml, _, gpx, _ = layer_files(tmp_path)
    shown = import_layer(Path(window.app.ctx.store.path), kml)
    hidden = set_visible(
        Path(window.app.ctx.store.path), import_layer(Path(window.app.ctx.store.path), gpx).id, False
    )
    wait_summary(qtbot, window.docks["map"].view, lambda s: s["basemap"], 30000)
    window.docks["map"].refresh()  # the case's layers changed outside the app
    state = wait_summary(qtbot, window.docks["map"].view, lambda s: len(s.get("caseLayers") or []) == 2)
    by_id = {c["id"]: c for c in state["caseLayers"]}
    assert by_id[shown.id] == {"id": shown.id, "features": 2, "visible": True, "shown": True}
    assert by_id[hidden.id]["shown"] is False
    # open every popup of the shown layer: the hostile name is text, no element was created from it
    js(
        qtbot,
        window.docks["map"].view,
        "(geodesk.caseLayers[" + json.dumps(shown.id) + "].layer.eachLayer("
        "function (l) { l.openPopup(); }), 1)",
    )
    text = js(
        qtbot,
        window.docks["map"].view,
        "Array.from(document.querySelectorAll('.gd-layer-popup'))"
        ".map(function (e) { return e.textContent; }).join('|')",
    )
    assert "<script>alert(1)</script>" in text or "<img src=x" in text
    assert (
        js(
            qtbot,
            window.docks["map"].view,
            "document.querySelectorAll('.gd-layer-popup img, .gd-layer-popup script').length",
        )
        == 0
    )
    assert js(qtbot, window.docks["map"].view, "String(window.pwned)") == "undefined"
    # a later push (a finding saved) sends no layers: the page keeps the ones it drew
    window.app.findings.save(45.0, 5.0, 3.0)
    state = wait_summary(qtbot, window.docks["map"].view, lambda s: bool(s.get("finding")))
    assert sorted(c["id"] for c in state["caseLayers"]) == sorted([shown.id, hidden.id])
    assert {c["id"]: c["shown"] for c in state["caseLayers"]} == {shown.id: True, hidden.id: False}
