"""Build resources/geo/countries_110m.geojson from Natural Earth 1:110m admin-0 countries.

Where the data comes from: the ``naturalearth_lowres`` shapefile that ships inside the
``geopandas==0.14.4`` wheel (geopandas/datasets/naturalearth_lowres/*; Natural Earth, public domain;
later geopandas releases dropped it). geodesk reads the result at run time and never downloads
anything; this script is only needed again to rebuild the file.

How to run it (a build step, needs the package registry once):

    .venv/bin/pip download --no-deps geopandas==0.14.4 -d /tmp/gp
    .venv/bin/python tools/build_geo_resources.py --wheel /tmp/gp/geopandas-0.14.4-py3-none-any.whl

What it does:
- reads the .shp (polygon records) and .dbf (attributes) with the small readers below, so neither
  geopandas nor pyshp is a dependency of geodesk;
- rebuilds each country as a (Multi)Polygon: in a shapefile, outer rings run clockwise and holes
  counter-clockwise; each hole goes to the outer ring that contains it;
- gives every feature an ISO 3166-1 alpha-2 code. The file carries alpha-3 codes with '-99' quirks
  (France, Norway, Kosovo, N. Cyprus, Somaliland), fixed here by name; N. Cyprus and Somaliland take
  the code GeoNames uses for places there (CY, SO) so that polygons and places agree;
- snaps coordinates to a 1e-5 degree grid (about 1 m, far below the 110m data's own precision),
  keeping every polygon valid, and writes
  the GeoJSON atomically (temp file + os.replace).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import struct
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pycountry
import shapely
from shapely.geometry import LinearRing, MultiPolygon, Polygon, mapping

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "resources" / "geo" / "countries_110m.geojson"
MEMBER_PREFIX = "geopandas/datasets/naturalearth_lowres/naturalearth_lowres"

# Natural Earth names whose iso_a3 is '-99' (or that GeoNames files under another code) -> alpha-2.
CODE_BY_NAME = {
    "France": "FR",
    "Norway": "NO",
    "Kosovo": "XK",  # user-assigned code, the one GeoNames uses
    "N. Cyprus": "CY",  # GeoNames puts places there under CY
    "Somaliland": "SO",  # GeoNames puts places there under SO
}
EXTRA_ALPHA3 = {"XKX": "XK"}


def read_dbf(data: bytes, encoding: str) -> list[dict[str, str]]:
    """Minimal dBASE III reader: fixed-width character/numeric fields, as Natural Earth writes them."""
    n_records, header_len, record_len = struct.unpack("<IHH", data[4:12])
    fields: list[tuple[str, int]] = []
    pos = 32
    while data[pos] != 0x0D:  # field descriptors end with a 0x0D terminator
        name = data[pos : pos + 11].split(b"\x00", 1)[0].decode("ascii")
        fields.append((name, data[pos + 16]))
        pos += 32
    rows = []
    for i in range(n_records):
        rec = data[header_len + i * record_len : header_len + (i + 1) * record_len]
        if rec[:1] == b"*":  # deleted record
            continue
        row, off = {}, 1
        for name, length in fields:
            row[name] = rec[off : off + length].decode(encoding).strip()
            off += length
        rows.append(row)
    return rows


def read_shp_polygons(data: bytes) -> list[list[list[tuple[float, float]]]]:
    """Minimal .shp reader for polygon records (type 5): one list of rings (lon, lat) per record."""
    shape_type = struct.unpack("<i", data[32:36])[0]
    if shape_type != 5:
        raise SystemExit(f"expected a polygon shapefile (type 5), got type {shape_type}")
    out = []
    pos = 100  # the file header is 100 bytes
    while pos < len(data):
        _, content_words = struct.unpack(">ii", data[pos : pos + 8])
        content = data[pos + 8 : pos + 8 + 2 * content_words]
        pos += 8 + 2 * content_words
        rtype = struct.unpack("<i", content[:4])[0]
        if rtype == 0:  # null shape
            out.append([])
            continue
        n_parts, n_points = struct.unpack("<ii", content[36:44])
        parts = list(struct.unpack(f"<{n_parts}i", content[44 : 44 + 4 * n_parts]))
        pts_off = 44 + 4 * n_parts
        xy = struct.unpack(f"<{2 * n_points}d", content[pts_off : pts_off + 16 * n_points])
        points = list(zip(xy[0::2], xy[1::2], strict=True))
        bounds = [*parts, n_points]
        out.append([points[bounds[k] : bounds[k + 1]] for k in range(n_parts)])
    return out


def rings_to_geometry(rings: list[list[tuple[float, float]]]) -> Polygon | MultiPolygon:
    """Shells run clockwise, holes counter-clockwise (ESRI); each hole joins the shell containing it."""
    shells: list[list[tuple[float, float]]] = []
    holes: list[list[tuple[float, float]]] = []
    for ring in rings:
        (holes if LinearRing(ring).is_ccw else shells).append(ring)
    shell_polys = [Polygon(s) for s in shells]
    shell_holes: list[list[list[tuple[float, float]]]] = [[] for _ in shells]
    for hole in holes:
        probe = Polygon(hole).representative_point()
        for k, poly in enumerate(shell_polys):
            if poly.contains(probe):
                shell_holes[k].append(hole)
                break
        else:
            raise SystemExit(
                "a hole ring lies in no outer ring; the shapefile is not what this script expects"
            )
    polys = [Polygon(s, h) for s, h in zip(shells, shell_holes, strict=True)]
    geom: Polygon | MultiPolygon = polys[0] if len(polys) == 1 else MultiPolygon(polys)
    if not geom.is_valid:
        geom = geom.buffer(0)
    return geom


def alpha2(name: str, iso_a3: str) -> str:
    if name in CODE_BY_NAME:
        return CODE_BY_NAME[name]
    if iso_a3 in EXTRA_ALPHA3:
        return EXTRA_ALPHA3[iso_a3]
    country = pycountry.countries.get(alpha_3=iso_a3)
    if country is None:
        raise SystemExit(f"no ISO alpha-2 code for {name!r} ({iso_a3}); add it to CODE_BY_NAME")
    return str(country.alpha_2)


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 5)
    if isinstance(obj, (list, tuple)):
        return [_round(v) for v in obj]
    return obj


def build(wheel: Path, out: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as zf:
        shp = zf.read(MEMBER_PREFIX + ".shp")
        dbf = zf.read(MEMBER_PREFIX + ".dbf")
        # the .cpg file names the .dbf text encoding (ISO-8859-1 in this release)
        encoding = zf.read(MEMBER_PREFIX + ".cpg").decode("ascii").strip() or "latin-1"
    records = read_dbf(dbf, encoding)
    shapes = read_shp_polygons(shp)
    if len(records) != len(shapes):
        raise SystemExit(f".dbf has {len(records)} records but .shp has {len(shapes)} shapes")
    features = []
    for rec, rings in zip(records, shapes, strict=True):
        # snap to a 1e-5 degree grid (about 1 m); set_precision keeps the polygons valid while doing it
        geom = shapely.set_precision(rings_to_geometry(rings), grid_size=1e-5)
        if not geom.is_valid:
            raise SystemExit(f"{rec['name']}: polygon is invalid after snapping to the grid")
        gj = mapping(geom)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "iso_a2": alpha2(rec["name"], rec["iso_a3"]),
                    "iso_a3": rec["iso_a3"],
                    "name": rec["name"],
                    "continent": rec["continent"],
                },
                "geometry": {"type": gj["type"], "coordinates": _round(gj["coordinates"])},  # drops fp noise
            }
        )
    document = {
        "type": "FeatureCollection",
        "source": "Natural Earth 1:110m Admin 0 - Countries (naturalearth_lowres from geopandas 0.14.4)",
        "license": "Public domain (Natural Earth, https://www.naturalearthdata.com/about/terms-of-use/)",
        "generated_by": "tools/build_geo_resources.py",
        "generated_at": _dt.date.today().isoformat(),
        "source_sha256": hashlib.sha256(shp + dbf).hexdigest(),
        "features": features,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".countries-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, ensure_ascii=False, separators=(",", ":"))
            fh.write("\n")
        Path(tmp).replace(out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheel", type=Path, required=True, help="path to geopandas-0.14.4-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.wheel.is_file():
        parser.error(
            f"{args.wheel} is not a file; fetch it with: pip download --no-deps geopandas==0.14.4 -d DIR"
        )
    doc = build(args.wheel, args.out)
    print(f"wrote {len(doc['features'])} countries to {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
