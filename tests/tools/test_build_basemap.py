"""tools/build_basemap.py: the zoom rules, and the built default basemap against its manifest."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from geodesk.report.map_page import default_basemap_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_basemap", ROOT / "tools" / "build_basemap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_basemap"] = module
    spec.loader.exec_module(module)
    return module


def test_zoom_rules(tool: ModuleType) -> None:
    assert [tool.place_minzoom(r) for r in (0, 1, 2, 5, 10)] == [0, 0, 0, 3, 8]
    # a rank of 0 is a rank, not "missing": Paris, London and Rome once vanished this way
    assert tool.number({"scalerank": 0}, "scalerank", 10) == 0
    assert tool.number({"scalerank": None}, "scalerank", 10) == 10
    assert tool.number({}, "min_zoom", 5) == 5
    assert tool.clamp_zoom(12.7) == 8 and tool.clamp_zoom(-3) == 0 and tool.clamp_zoom(4.9, 5) == 5
    assert tool.parse_bbox("-10,35,30,60") == (-10.0, 35.0, 30.0, 60.0)
    with pytest.raises(SystemExit):
        tool.parse_bbox("1,2,3")


def test_the_built_basemap_matches_its_manifest_and_holds_the_big_cities() -> None:
    import mapbox_vector_tile
    from pmtiles.reader import MmapSource, Reader

    path = default_basemap_path()
    if path is None:
        pytest.fail("resources/basemap/naturalearth-10m.pmtiles is missing: run `make basemap`")
    manifest = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    assert manifest["maxzoom"] == 8 and manifest["bbox"] is None
    assert manifest["features"]["places"] == 7322
    with path.open("rb") as fh:
        reader = Reader(MmapSource(fh))
        header = reader.header()
        assert (header["min_zoom"], header["max_zoom"]) == (0, 8)
        world = mapbox_vector_tile.decode(gzip.decompress(reader.get(0, 0, 0)))
    assert {"land", "lakes", "rivers", "boundaries", "places"} <= set(world)  # country names from z1
    names = {f["properties"]["name"] for f in world["places"]["features"]}
    # scalerank 0-2 from zoom 0; "Zürich" proves the Windows-1252 names were decoded as such
    assert {"Paris", "London", "Rome", "Tokyo", "Zürich"} <= names
    assert not any("\ufffd" in n for n in names)
