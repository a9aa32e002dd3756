"""Admin tile sets: PMTiles (vector or raster) or MBTiles files installed into the workspace (ADR 0035).

An administrator brings street-level tiles made elsewhere; geodesk never downloads any. ``install``
checks the file (PMTiles v3 header, a known tile type, zooms, bounds, at least one readable tile),
converts an MBTiles file once to PMTiles with the pure-Python ``pmtiles`` package, stores it under
``<workspace>/map/tiles/<sha256>.pmtiles`` (written to a staging file, then renamed: a half-copied set
never appears) and records it in ``tilesets.json``. ``verify`` re-hashes, ``remove`` deletes. The
map page draws installed sets over the default basemap, inside their bounds.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import sqlite3
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_json
from geodesk.digest import sha256_file

REGISTRY = "tilesets.json"
# PMTiles v3 tile types (pmtiles.tile.TileType) -> what the page draws and the MIME type of a tile
TILE_TYPES = {1: ("vector", "mvt"), 2: ("raster", "png"), 3: ("raster", "jpeg"), 4: ("raster", "webp")}


class TileSetError(ValueError):
    """A tile file that cannot be installed, or a tile set that is not there; the message says why."""


@dataclass(frozen=True, slots=True)
class TileSet:
    id: str  # the first 12 hex digits of the installed file's SHA-256
    name: str
    source_name: str  # the file the administrator gave
    source_format: str  # pmtiles | mbtiles
    kind: str  # vector | raster
    tile_format: str  # mvt | png | jpeg | webp
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float]  # west, south, east, north
    sha256: str
    bytes: int
    installed_at: str

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bounds"] = list(self.bounds)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TileSet:
        return cls(**{**raw, "bounds": tuple(float(v) for v in raw["bounds"])})


def tiles_dir(workspace: Path) -> Path:
    return Path(workspace) / "map" / "tiles"


_lock = threading.Lock()


def _load(workspace: Path) -> list[TileSet]:
    path = tiles_dir(workspace) / REGISTRY
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [TileSet.from_dict(item) for item in raw["tilesets"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TileSetError(
            f"{path} is unreadable ({exc}); restore it or remove the folder {path.parent}"
        ) from None


def _save(workspace: Path, sets: list[TileSet]) -> None:
    document = {"version": 1, "tilesets": [s.as_dict() for s in sets]}
    atomic_write_json(tiles_dir(workspace) / REGISTRY, document)


def list_tilesets(workspace: Path) -> list[TileSet]:
    return _load(workspace)


def pmtiles_header(path: Path) -> dict[str, Any]:
    """The PMTiles v3 header of ``path``, after reading one tile; TileSetError when it is not one."""
    from pmtiles.reader import MmapSource, Reader, all_tiles

    try:
        with path.open("rb") as fh:
            if fh.read(7) != b"PMTiles":
                raise TileSetError(f"{path.name} is not a PMTiles file (no 'PMTiles' signature)")
            fh.seek(0)
            get_bytes = MmapSource(fh)  # type: ignore[no-untyped-call]
            header: dict[str, Any] = Reader(get_bytes).header()  # type: ignore[no-untyped-call]
            if header.get("version") != 3:
                raise TileSetError(f"{path.name} is PMTiles version {header.get('version')}; only version 3")
            header["tile_type"] = int(getattr(header["tile_type"], "value", header["tile_type"]))  # an Enum
            if header["tile_type"] not in TILE_TYPES:
                raise TileSetError(f"{path.name} holds tiles of an unknown type ({header['tile_type']})")
            first = next(iter(all_tiles(get_bytes)), None)  # type: ignore[no-untyped-call]
            if first is None:
                raise TileSetError(f"{path.name} holds no tiles")
    except TileSetError:
        raise
    except (OSError, ValueError, KeyError, IndexError, EOFError) as exc:
        raise TileSetError(f"{path.name} is not a readable PMTiles file ({exc})") from None
    return header


def _mbtiles_to_pmtiles(src: Path, out: Path) -> None:
    from pmtiles.convert import mbtiles_to_pmtiles

    try:
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
            tables = {row[0] for row in rows}
            meta = {}
            if "metadata" in tables:
                meta = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
    except sqlite3.DatabaseError as exc:
        raise TileSetError(f"{src.name} is not an MBTiles file (SQLite: {exc})") from None
    if "tiles" not in tables:
        raise TileSetError(f"{src.name} is not an MBTiles file (it has no 'tiles' table)")
    missing = [k for k in ("format", "minzoom", "maxzoom") if k not in meta]
    if missing:
        raise TileSetError(f"{src.name} lacks MBTiles metadata {', '.join(missing)}; add them and try again")
    try:
        mbtiles_to_pmtiles(str(src), str(out), None)  # type: ignore[no-untyped-call]
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as exc:
        raise TileSetError(f"{src.name} could not be converted to PMTiles ({exc})") from None


def install_tileset(workspace: Path, source: Path, name: str | None = None) -> TileSet:
    """Check, convert (MBTiles), hash and install a tile file; the same file twice is one set."""
    source = Path(source)
    if not source.is_file():
        raise TileSetError(f"{source} does not exist or is not a file")
    suffix = source.suffix.lower()
    if suffix not in (".pmtiles", ".mbtiles"):
        raise TileSetError(f"{source.name}: give a .pmtiles or .mbtiles file")
    folder = tiles_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    fd, staged_name = tempfile.mkstemp(dir=folder, prefix=".staging-", suffix=".pmtiles")
    staged = Path(staged_name)
    try:
        os.close(fd)
        if suffix == ".mbtiles":
            _mbtiles_to_pmtiles(source, staged)
        else:
            shutil.copyfile(source, staged)
        header = pmtiles_header(staged)
        digest = sha256_file(staged)
        kind, tile_format = TILE_TYPES[int(header["tile_type"])]
        tileset = TileSet(
            id=digest[:12],
            name=name or source.stem,
            source_name=source.name,
            source_format=suffix[1:],
            kind=kind,
            tile_format=tile_format,
            min_zoom=int(header["min_zoom"]),
            max_zoom=int(header["max_zoom"]),
            bounds=(
                header["min_lon_e7"] / 1e7,
                header["min_lat_e7"] / 1e7,
                header["max_lon_e7"] / 1e7,
                header["max_lat_e7"] / 1e7,
            ),
            sha256=digest,
            bytes=staged.stat().st_size,
            installed_at=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        with _lock:
            sets = _load(workspace)
            staged.replace(folder / f"{digest}.pmtiles")
            same = [i for i, s in enumerate(sets) if s.sha256 == digest]
            if same:  # the same tiles again: one set, in its place, with the new name and time
                sets[same[0]] = tileset
            else:
                sets.append(tileset)
            _save(workspace, sets)
        return tileset
    finally:
        staged.unlink(missing_ok=True)


def tileset_path(workspace: Path, tileset: TileSet) -> Path:
    return tiles_dir(workspace) / f"{tileset.sha256}.pmtiles"


def find_tileset(workspace: Path, ref: str) -> TileSet:
    """A tile set by id (a unique prefix is enough) or exact name."""
    sets = _load(workspace)
    hits = [s for s in sets if s.id.startswith(ref.lower()) or s.name == ref] if ref else []
    if not hits:
        raise TileSetError(f"no tile set {ref!r}; `geodesk map list` shows the installed ones")
    if len(hits) > 1:
        raise TileSetError(f"{ref!r} matches {len(hits)} tile sets; give more of the id")
    return hits[0]


def remove_tileset(workspace: Path, ref: str) -> TileSet:
    tileset = find_tileset(workspace, ref)
    with _lock:
        _save(workspace, [s for s in _load(workspace) if s.sha256 != tileset.sha256])
        tileset_path(workspace, tileset).unlink(missing_ok=True)
    return tileset


def verify_tileset(workspace: Path, tileset: TileSet) -> str | None:
    """None when the installed file is there with its recorded SHA-256, else what is wrong."""
    path = tileset_path(workspace, tileset)
    if not path.is_file():
        return f"{path} is missing"
    actual = sha256_file(path)
    if actual != tileset.sha256:
        return f"{path.name} has SHA-256 {actual}, recorded {tileset.sha256}"
    return None


def page_tilesets(workspace: Path) -> list[dict[str, Any]]:
    """What the map page needs for each installed set whose file has its recorded size (hashing
    waits for ``verify``): its file URL, kind, format, zooms and bounds."""
    out = []
    for s in _load(workspace):
        path = tileset_path(workspace, s)
        if path.is_file() and path.stat().st_size == s.bytes:
            out.append(
                {
                    "id": s.id,
                    "name": s.name,
                    "url": path.resolve().as_uri(),
                    "kind": s.kind,
                    "tile_format": s.tile_format,
                    "min_zoom": s.min_zoom,
                    "max_zoom": s.max_zoom,
                    "bounds": list(s.bounds),
                }
            )
    return out
