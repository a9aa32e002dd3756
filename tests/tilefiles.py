"""Small real tile files built on the spot: PMTiles (vector and raster) and MBTiles, written with
mapbox-vector-tile, Pillow, pmtiles and sqlite3 (no downloaded data)."""

from __future__ import annotations

import gzip
import io
import sqlite3
from pathlib import Path
from typing import Any

WORLD = {
    "min_lon_e7": -1800000000,
    "min_lat_e7": -850000000,
    "max_lon_e7": 1800000000,
    "max_lat_e7": 850000000,
}


def vector_tile(place_name: str) -> bytes:
    """One MVT tile: a 'land' square, an 'earth' square and a 'roads' line (Protomaps basemap layer
    names), and a 'places' point called ``place_name``."""
    import mapbox_vector_tile

    square = "POLYGON ((1024 1024, 3072 1024, 3072 3072, 1024 3072, 1024 1024))"
    data: bytes = mapbox_vector_tile.encode(
        [
            {"name": "land", "features": [{"geometry": square, "properties": {}}]},
            {"name": "earth", "features": [{"geometry": square, "properties": {}}]},
            {"name": "roads", "features": [{"geometry": "LINESTRING (0 2048, 4096 2048)",
                                            "properties": {"kind": "major_road", "name": "Main Street"}}]},
            {"name": "places", "features": [{"geometry": "POINT (2048 2048)",
                                             "properties": {"name": place_name, "rank": 0}}]},
        ]
    )  # fmt: skip
    return data


def png_tile(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(out, "PNG")
    return out.getvalue()


def write_pmtiles(
    path: Path, tiles: dict[tuple[int, int, int], bytes], *, vector: bool, bounds: Any = None
) -> Path:
    """A PMTiles v3 file of ``tiles`` ((z, x, y) -> bytes); vector tiles are gzip-compressed."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    zooms = [z for z, _, _ in tiles]
    with write(str(path)) as writer:
        for (z, x, y), data in sorted(tiles.items(), key=lambda kv: zxy_to_tileid(*kv[0])):
            writer.write_tile(zxy_to_tileid(z, x, y), gzip.compress(data) if vector else data)
        writer.finalize(
            {
                "tile_type": TileType.MVT if vector else TileType.PNG,
                "tile_compression": Compression.GZIP if vector else Compression.NONE,
                "min_zoom": min(zooms),
                "max_zoom": max(zooms),
                **(bounds or WORLD),
                "center_zoom": min(zooms),
                "center_lon_e7": 0,
                "center_lat_e7": 0,
            },
            {"vector_layers": [{"id": n, "fields": {}} for n in ("land", "earth", "roads", "places")]}
            if vector
            else {},
        )
    return path


def tiny_vector_pmtiles(path: Path, place_name: str = "Testville") -> Path:
    """One z0 vector tile: under 16 KB, so the page reads the file whole."""
    return write_pmtiles(path, {(0, 0, 0): vector_tile(place_name)}, vector=True)


def raster_mbtiles(path: Path, zooms: range = range(0, 3)) -> Path:
    """An MBTiles file of PNG tiles for every tile of ``zooms`` (TMS rows, as MBTiles stores them)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        conn.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)"
        )
        meta = {
            "name": "test raster",
            "format": "png",
            "minzoom": str(zooms.start),
            "maxzoom": str(zooms.stop - 1),
            "bounds": "-180,-85,180,85",
            "type": "baselayer",
        }
        conn.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
        for z in zooms:
            for x in range(2**z):
                for y in range(2**z):
                    row = (z, x, (2**z - 1) - y, png_tile((200, 40 * z, 60)))
                    conn.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", row)
    return path
