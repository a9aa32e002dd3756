"""Admin tile sets: install (PMTiles as is, MBTiles converted once), hash, list, verify, remove."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodesk.cli import main
from geodesk.services.map_tiles import (
    TileSetError,
    find_tileset,
    install_tileset,
    list_tilesets,
    page_tilesets,
    pmtiles_header,
    remove_tileset,
    tileset_path,
    verify_tileset,
)
from tests.tilefiles import raster_mbtiles, tiny_vector_pmtiles


def test_install_list_verify_remove(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    vector = install_tileset(ws, tiny_vector_pmtiles(tmp_path / "town.pmtiles"), "Town streets")
    raster = install_tileset(ws, raster_mbtiles(tmp_path / "aerial.mbtiles"))
    assert (vector.kind, vector.tile_format, vector.source_format) == ("vector", "mvt", "pmtiles")
    assert (raster.kind, raster.tile_format, raster.source_format) == ("raster", "png", "mbtiles")
    assert (raster.min_zoom, raster.max_zoom, raster.name) == (0, 2, "aerial")
    assert raster.bounds == pytest.approx((-180.0, -85.0, 180.0, 85.0))
    # the MBTiles file became a PMTiles file with all 21 tiles
    converted = tileset_path(ws, raster)
    assert pmtiles_header(converted)["addressed_tiles_count"] == 1 + 4 + 16
    assert [s.id for s in list_tilesets(ws)] == [vector.id, raster.id]
    assert verify_tileset(ws, vector) is None and verify_tileset(ws, raster) is None
    # the same file again is the same set, not a second one
    assert install_tileset(ws, tmp_path / "town.pmtiles", "Town streets").id == vector.id
    assert len(list_tilesets(ws)) == 2
    # the page gets file URLs of the installed copies
    urls = [t["url"] for t in page_tilesets(ws)]
    assert urls == [tileset_path(ws, vector).as_uri(), converted.as_uri()]
    # a damaged copy is reported, and left out of the page once its size changes
    with converted.open("ab") as fh:
        fh.write(b"junk")
    problem = verify_tileset(ws, raster)
    assert problem is not None and "recorded" in problem
    assert [t["id"] for t in page_tilesets(ws)] == [vector.id]
    assert find_tileset(ws, vector.id[:6]) == vector and find_tileset(ws, "Town streets") == vector
    remove_tileset(ws, raster.id)
    assert [s.id for s in list_tilesets(ws)] == [vector.id] and not converted.exists()
    # no staging file is left behind
    assert sorted(p.name for p in (ws / "map" / "tiles").iterdir()) == sorted(
        ["tilesets.json", f"{vector.sha256}.pmtiles"]
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"hello", "give a .pmtiles or .mbtiles file"),
        ("fake.pmtiles", b"not a tile archive at all", "not a PMTiles file"),
        ("short.pmtiles", b"PMTiles\x03", "not a readable PMTiles file"),
        ("fake.mbtiles", b"SQLite? no", "not an MBTiles file"),
    ],
)
def test_bad_files_are_refused_and_leave_nothing(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    ws = tmp_path / "ws"
    with pytest.raises(TileSetError, match=message):
        install_tileset(ws, src)
    assert list_tilesets(ws) == []
    assert not any(p.name.startswith(".staging") for p in (ws / "map" / "tiles").glob("*"))


def test_mbtiles_without_metadata_says_what_is_missing(tmp_path: Path) -> None:
    import sqlite3

    src = tmp_path / "bare.mbtiles"
    with sqlite3.connect(src) as conn:
        conn.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, b BLOB)")
    with pytest.raises(TileSetError, match="lacks MBTiles metadata format, minzoom, maxzoom"):
        install_tileset(tmp_path / "ws", src)


def test_cli_map_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    src = tiny_vector_pmtiles(tmp_path / "town.pmtiles")
    assert main(["--workspace", ws, "map", "install", str(src), "--json"]) == 0
    installed = json.loads(capsys.readouterr().out)
    assert installed["kind"] == "vector" and len(installed["sha256"]) == 64
    assert main(["--workspace", ws, "map", "list", "--json"]) == 0
    assert [t["id"] for t in json.loads(capsys.readouterr().out)["tilesets"]] == [installed["id"]]
    assert main(["--workspace", ws, "map", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"verified": 1, "problems": {}}
    assert main(["--workspace", ws, "map", "remove", installed["id"][:8]]) == 0
    assert "removed" in capsys.readouterr().out
    assert main(["--workspace", ws, "map", "remove", "nothing"]) == 1
    assert "geodesk map list" in capsys.readouterr().err
