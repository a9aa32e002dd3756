"""Case map layers: KML, KMZ, GeoJSON and GPX in, plain-text features out, through the case archive."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from geodesk.cli import main
from geodesk.report.map_page import MapState, state_document
from geodesk.services.case_layers import (
    LayerError,
    import_layer,
    list_layers,
    page_layers,
    remove_layer,
    set_visible,
)
from geodesk.services.cases import export_case, open_archive
from geodesk.store import Workspace

HOSTILE = '<img src=x onerror="window.pwned=1"><script>alert(1)</script>'

KML = f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>route</name>
  <NetworkLink><name>remote</name><Link><href>http://example.com/more.kml</href></Link></NetworkLink>
  <Placemark><name>{HOSTILE.replace("<", "&lt;").replace(">", "&gt;")}</name>
    <description>seen from the bridge</description><Point><coordinates>7.7521,48.5734,0</coordinates></Point>
  </Placemark>
  <Folder><Placemark><name>river walk</name>
    <LineString><coordinates>7.74,48.58 7.76,48.57 7.78,48.56</coordinates></LineString></Placemark></Folder>
</Document></kml>"""

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="48.8584" lon="2.2945"><name>tower</name></wpt>
  <trk><name>walk</name><trkseg><trkpt lat="48.85" lon="2.29"/><trkpt lat="48.86" lon="2.30"/></trkseg></trk>
</gpx>"""

GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"name": "area", "style": "<b>x</b>"},
         "geometry": {"type": "Polygon", "coordinates": [[[2, 48], [3, 48], [3, 49], [2, 48]]]}},
        {"type": "Feature", "properties": {}, "geometry": None},
    ],
}  # fmt: skip


def layer_files(folder: Path) -> list[Path]:
    kml = folder / "route.kml"
    kml.write_text(KML, encoding="utf-8")
    kmz = folder / "route2.kmz"
    with zipfile.ZipFile(kmz, "w") as zf:
        zf.writestr("doc.kml", KML.replace("route", "zipped route"))
        zf.writestr("files/icon.png", b"\x89PNG never opened")
    gpx = folder / "walk.gpx"
    gpx.write_text(GPX, encoding="utf-8")
    geojson = folder / "area.geojson"
    geojson.write_text(json.dumps(GEOJSON), encoding="utf-8")
    return [kml, kmz, gpx, geojson]


def test_layers_round_trip_through_the_case_archive(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Layers")
    with ws.open_case(case.id) as store:
        case_path = Path(store.path)
    layers = [import_layer(case_path, f) for f in layer_files(tmp_path)]
    assert [(x.source_format, x.features) for x in layers] == [
        ("kml", 2),
        ("kmz", 2),
        ("gpx", 2),
        ("geojson", 1),
    ]
    assert len({x.colour for x in layers}) == 4
    set_visible(case_path, layers[1].id, False)
    with ws.open_case(case.id) as store:
        out = export_case(store, tmp_path / "case.zip").archive
    with zipfile.ZipFile(out) as zf:
        assert sum(n.startswith("layers/") for n in zf.namelist()) == 5  # four layers and the index
    opened = open_archive(ws, out, as_copy=True)
    with ws.open_case(opened.case.id) as store:
        copy_path = Path(store.path)
    assert list_layers(copy_path) == list_layers(case_path)
    assert page_layers(copy_path) == page_layers(case_path)
    assert [x.visible for x in list_layers(copy_path)] == [True, False, True, True]
    remove_layer(copy_path, layers[0].id)
    assert len(list_layers(copy_path)) == 3 and len(list_layers(case_path)) == 4


def test_hostile_names_reach_the_page_as_text(tmp_path: Path) -> None:
    case_path = tmp_path / "case"
    case_path.mkdir()
    kml = layer_files(tmp_path)[0]
    import_layer(case_path, kml, name="<b>my layer</b>")
    stored = page_layers(case_path)[0]
    names = [f["properties"]["name"] for f in stored["features"]]
    assert HOSTILE in names  # kept as the analyst's text
    assert all(set(f["properties"]) == {"name", "description"} for f in stored["features"])  # nothing else
    doc = state_document(MapState(layers=tuple(page_layers(case_path))))
    layer = doc["layers"][0]
    assert layer["name_html"] == "&lt;b&gt;my layer&lt;/b&gt;"
    shown = [f["properties"]["name_html"] for f in layer["features"]]
    assert not any("<img" in n or "<script" in n for n in shown)
    assert any("&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;" in n for n in shown)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"x", "give a .kml"),
        ("bad.kml", b"<kml><unclosed>", "not readable KML"),
        ("bad.kmz", b"not a zip", "not a KMZ"),
        ("bad.gpx", b"<gpx", "not readable GPX"),
        ("bad.geojson", b"{", "not readable GeoJSON"),
        (
            "empty.geojson",
            b'{"type": "FeatureCollection", "features": []}',
            "holds no point, line or polygon",
        ),
    ],
)
def test_bad_layer_files_are_clear_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    with pytest.raises(LayerError, match=message):
        import_layer(tmp_path / "case", src)
    assert list_layers(tmp_path / "case") == []


def test_cli_layer_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "case", "new", "Walks", "--json"]) == 0
    capsys.readouterr()
    gpx = layer_files(tmp_path)[2]
    assert main(["--workspace", ws, "layer", "import", "Walks", str(gpx), "--json"]) == 0
    layer = json.loads(capsys.readouterr().out)
    assert layer["features"] == 2 and layer["visible"] is True
    assert main(["--workspace", ws, "layer", "hide", "Walks", layer["id"][:6], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["visible"] is False
    assert main(["--workspace", ws, "layer", "list", "Walks", "--json"]) == 0
    assert [x["name"] for x in json.loads(capsys.readouterr().out)["layers"]] == ["walk"]
    assert main(["--workspace", ws, "layer", "remove", "Walks", "walk"]) == 0
    assert main(["--workspace", ws, "layer", "remove", "Walks", "walk"]) == 1
    assert "geodesk layer list" in capsys.readouterr().err
