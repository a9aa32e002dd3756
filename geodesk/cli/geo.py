"""``geodesk geo``: offline reverse geocoding and place-name look-up.

geodesk geo reverse LAT LON [--rule named|nearest] [--json]
geodesk geo reverse --input POINTS.csv        one JSON object per line, in input order
geodesk geo lookup NAME [--kind country|region|city] [--limit N] [--json]
geodesk geo prepare [--json]                  build the geography cache (ADR 0049)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from geodesk.cli._common import CliError, add_json_argument, emit, fail, terminal_safe

BATCH_ROWS = 10_000  # rows reverse-geocoded per vectorised call when reading a file


def register(subparsers: Any) -> None:
    geo = subparsers.add_parser(
        "geo",
        help="offline geography: reverse geocoding and place names",
        description="Offline geography from GeoNames places and Natural Earth borders.",
    )
    sub = geo.add_subparsers(dest="geo_command", metavar="SUBCOMMAND", required=True)

    rev = sub.add_parser(
        "reverse",
        help="the place at coordinates",
        description="Country (by Natural Earth 1:10m border polygon), region and city for a point, or "
        "for every row of a CSV file with columns lat,lon (header required; '-' reads standard input). "
        "The city is the place a person would name (population and distance: the Eiffel Tower is in "
        "Paris) unless --rule nearest asks for the nearest populated place, the rule evaluation uses. "
        "A disputed area's 'dispute' names its claimants. Within 5 km of a land border, where the 1:10m "
        "line is generalised, the time-zone polygon decides between the countries near the point when "
        "its zone covers exactly one of them ('border_zone' names it). File input prints one JSON "
        "object per line in input order; a bad row prints an object with an 'error' field, the rest "
        "go on, and the exit code is 2 if any row failed.",
    )
    rev.add_argument("lat", nargs="?", help="latitude in decimal degrees (-90..90)")
    rev.add_argument("lon", nargs="?", help="longitude in decimal degrees (-180..180)")
    rev.add_argument("--input", metavar="FILE.csv", help="CSV file with columns lat,lon")
    rev.add_argument(
        "--rule",
        choices=("named", "nearest"),
        default="named",
        help="named: the place a person would name (default); nearest: the nearest populated place",
    )
    add_json_argument(rev)
    rev.set_defaults(handler=_reverse)

    prep = sub.add_parser(
        "prepare",
        help="build the geography cache that makes the first reverse geocoding fast",
        description="Read the Natural Earth 1:10m borders, the GeoNames places and which countries each "
        "time zone covers (ADR 0055) once and save the prepared arrays in the geography cache "
        "($GEODESK_CACHE, else the user cache folder), keyed "
        "by the source files' SHA-256. Any geo command builds it on first use; this builds it ahead "
        "(set-up runs it). A stale or damaged cache file is rebuilt.",
    )
    add_json_argument(prep)
    prep.set_defaults(handler=_prepare)

    look = sub.add_parser(
        "lookup",
        help="places called NAME",
        description="Countries, regions and cities called NAME (any language, ISO codes, common "
        "names), best match first. Exit code 1 when nothing matches.",
    )
    look.add_argument("name", help="a place name or code, e.g. 'Hefei', '合肥', 'Deutschland', 'CN-AH'")
    look.add_argument("--kind", choices=("country", "region", "city"), help="only this kind of place")
    look.add_argument("--limit", type=int, default=10, metavar="N", help="at most N matches (default 10)")
    add_json_argument(look)
    look.set_defaults(handler=_lookup)


def _parse_coordinate(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not a finite number")
    limit = 90.0 if what == "latitude" else 180.0
    if abs(value) > limit:
        raise ValueError(f"{what} {value} is outside -{limit:g}..{limit:g}")
    return value


def _gazetteer() -> Any:
    from geodesk.geo import default_gazetteer

    return default_gazetteer()


def _place_document(columns: Any, k: int, lat: float, lon: float) -> dict[str, Any]:
    """Row k of reverse-geocoded columns as the JSON document ``geo reverse`` prints."""
    return {
        **columns.place(k).as_dict(),
        "dispute": columns.dispute[k],
        "border_zone": columns.border_zone[k],
        "lat": lat,
        "lon": lon,
    }


def _columns(gaz: Any, rule: str, lats: list[float], lons: list[float]) -> Any:
    return gaz.named_columns(lats, lons) if rule == "named" else gaz.reverse_columns(lats, lons)


def _reverse(args: argparse.Namespace) -> int:
    from geodesk.geo import GeoDataError

    try:
        if args.input is not None:
            if args.lat is not None or args.lon is not None:
                raise CliError("give either LAT LON or --input FILE.csv, not both")
            return _reverse_file(args.input, args.rule)
        if args.lat is None or args.lon is None:
            raise CliError("give LAT LON (decimal degrees), or --input FILE.csv")
        try:
            lat = _parse_coordinate(args.lat, "latitude")
            lon = _parse_coordinate(args.lon, "longitude")
        except ValueError as exc:
            raise CliError(f"{exc}; give decimal degrees, e.g. 48.8566 2.3522") from None
        columns = _columns(_gazetteer(), args.rule, [lat], [lon])
    except GeoDataError as exc:
        raise CliError(str(exc)) from None
    doc = _place_document(columns, 0, lat, lon)
    emit(args, doc, _human_place(doc))
    return 0


def _human_place(doc: dict[str, Any]) -> str:
    lines = [f"point:    {doc['lat']:.6f}, {doc['lon']:.6f}"]
    if doc["country_code"] is None:
        lines.append("country:  none" if doc["dispute"] else "country:  none (at sea)")
        lines.append(f"nearest:  {doc['distance_km']:.1f} km to the nearest populated place")
        if doc["dispute"]:
            lines.append(f"disputed: {doc['dispute']}")
        return "\n".join(lines)
    lines.append(f"country:  {doc['country']} ({doc['country_code']})")
    if doc["dispute"]:
        lines.append(f"disputed: {doc['dispute']}")
    if doc["border_zone"]:
        lines.append(
            f"border:   decided by the {doc['border_zone']} time-zone polygon "
            "(the 1:10m line is generalised here)"
        )
    lines.append(f"region:   {doc['region'] or '-'}")
    if doc["city"] is not None:
        lines.append(f"city:     {doc['city']} ({doc['distance_km']:.1f} km away)")
    else:
        lines.append("city:     -")
    return "\n".join(lines)


def _open_input(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return Path(path).open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _rows(fh: TextIO, path: str) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line number, row) for each data row; the header must name lat and lon columns."""
    reader = csv.DictReader(fh)
    fields = {name.strip().lower(): name for name in (reader.fieldnames or []) if name}
    lat_col = fields.get("lat") or fields.get("latitude")
    lon_col = fields.get("lon") or fields.get("lng") or fields.get("longitude")
    if lat_col is None or lon_col is None:
        raise CliError(f"{path} needs a header row with columns lat,lon; found {list(fields) or 'nothing'}")
    for row in reader:
        yield reader.line_num, {"lat": row.get(lat_col), "lon": row.get(lon_col)}


def _reverse_file(path: str, rule: str) -> int:
    gaz = _gazetteer()
    failed = 0
    fh = _open_input(path)
    try:
        batch: list[tuple[int, str | None, str | None, float | None, float | None, str | None]] = []

        def flush() -> None:
            nonlocal failed
            good = [(la, lo) for *_, la, lo, err in batch if la is not None and lo is not None]
            columns = _columns(gaz, rule, [p[0] for p in good], [p[1] for p in good]) if good else None
            k = 0
            for line, raw_lat, raw_lon, la, lo, err in batch:
                if err is None:
                    assert la is not None and lo is not None and columns is not None
                    doc = _place_document(columns, k, la, lo)
                    k += 1
                else:
                    failed += 1
                    doc = {"line": line, "lat": raw_lat, "lon": raw_lon, "error": err}
                    sys.stderr.write(terminal_safe(f"geodesk: {path} line {line}: {err}") + "\n")
                sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            batch.clear()

        for line, row in _rows(fh, path):
            raw_lat, raw_lon = row["lat"], row["lon"]
            try:
                if raw_lat is None or raw_lon is None or not raw_lat.strip() or not raw_lon.strip():
                    raise ValueError("the row has no lat or lon value")
                lat = _parse_coordinate(raw_lat.strip(), "latitude")
                lon = _parse_coordinate(raw_lon.strip(), "longitude")
                batch.append((line, raw_lat, raw_lon, lat, lon, None))
            except ValueError as exc:
                batch.append((line, raw_lat, raw_lon, None, None, str(exc)))
            if len(batch) >= BATCH_ROWS:
                flush()
        flush()
    except csv.Error as exc:
        raise CliError(f"{path} is not a readable CSV file: {exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text; save it as UTF-8 CSV") from None
    finally:
        if fh is not sys.stdin:
            fh.close()
    if failed:
        return fail(f"{failed} row(s) of {path} could not be reverse-geocoded (see the lines above)", 2)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    import time

    from geodesk.geo import GeoDataError
    from geodesk.geo.gazetteer import prepare_cache

    start = time.perf_counter()
    try:
        files = prepare_cache()
    except GeoDataError as exc:
        raise CliError(str(exc)) from None
    doc = {
        "files": [{"path": str(p), "bytes": p.stat().st_size} for p in files],
        "seconds": round(time.perf_counter() - start, 3),
    }
    if not files:
        raise CliError("the geography cache folder is not writable; set GEODESK_CACHE to a writable folder")
    emit(args, doc, "\n".join(f"{p}  {p.stat().st_size / 1e6:.1f} MB" for p in files))
    return 0


def _lookup(args: argparse.Namespace) -> int:
    from geodesk.geo import GeoDataError
    from geodesk.geo.name_store import NameStoreError, default_store_path, lookup  # no 10 s index build

    if args.limit < 1:
        raise CliError("--limit must be 1 or more")
    try:

        matches = lookup(args.name, limit=args.limit, kind=args.kind)
    except GeoDataError as exc:
        raise CliError(str(exc)) from None
    except NameStoreError as exc:
        raise CliError(f"{exc}; delete {default_store_path()} and run the look-up again") from None
    doc = {"query": args.name, "matches": [m.as_dict() for m in matches]}
    emit(args, doc, _human_matches(args.name, doc["matches"]))
    return 0 if matches else 1


def _human_matches(query: str, matches: list[dict[str, Any]]) -> str:
    if not matches:
        return f"no country, region or city called {query!r}"
    lines = []
    for m in matches:
        where = ", ".join(x for x in (m["region"], m["country_code"]) if x)
        point = "" if m["lat"] is None else f"  ({m['lat']:.4f}, {m['lon']:.4f})"
        lines.append(
            f"{m['score']:.3f}  {m['kind']:<7} {m['name']}" + (f" [{where}]" if where else "") + point
        )
    return "\n".join(lines)
