"""``geodesk-train gws-sample``: a GWS15k-style benchmark from a pool CSV (GaGA's Algorithm 1).

    geodesk-train gws-sample --pool POOL.csv --n 15000 --seed 0 --out GWS.csv [--exact-n] [--json]

POOL.csv needs ``latitude`` and ``longitude`` columns (an OSV-5M test CSV works as is); every column
is copied to OUT.csv, plus ``gws_country`` and ``gws_city`` (the draw that selected the row). See
training/gws.py for the algorithm and what it fixes where the paper is silent.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gws-sample",
        help="sample a GWS15k-style benchmark from a pool of geotagged images (Algorithm 1)",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument(
        "--pool", required=True, metavar="POOL.csv", help="CSV with latitude, longitude columns"
    )
    parser.add_argument("--n", required=True, type=int, help="number of samples (N_max)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, metavar="OUT.csv")
    parser.add_argument("--radius-km", type=float, default=5.0, help="R of Algorithm 1 (default 5)")
    parser.add_argument(
        "--min-population",
        type=int,
        default=10_000,
        help="cities C: GeoNames places with at least this population (default 10000)",
    )
    parser.add_argument(
        "--exact-n",
        action="store_true",
        help="cut the last city's extra points so OUT has exactly N rows (the paper keeps them)",
    )
    add_json_argument(parser)
    parser.set_defaults(handler=_gws_sample)


def read_pool(path: Path) -> tuple[list[str], list[dict[str, str]], list[float], list[float]]:
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CliError(f"cannot read the pool {path}: {exc.strerror or exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        if "latitude" not in columns or "longitude" not in columns:
            raise CliError(
                f"{path}: the header needs latitude and longitude columns (has {', '.join(columns)})"
            )
        rows, lats, lons = [], [], []
        for record in reader:
            try:
                lat, lon = float(record["latitude"]), float(record["longitude"])
            except (TypeError, ValueError):
                raise CliError(
                    f"{path} line {reader.line_num}: latitude / longitude are not numbers"
                ) from None
            if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
                raise CliError(f"{path} line {reader.line_num}: ({lat}, {lon}) is not a valid coordinate")
            rows.append(record)
            lats.append(lat)
            lons.append(lon)
    if not rows:
        raise CliError(f"{path} holds no rows")
    return columns, rows, lats, lons


def _gws_sample(args: argparse.Namespace) -> int:
    from training.gws import SamplingError, gazetteer_cities, natural_earth_areas, sample_gws

    if args.n < 1:
        raise CliError("--n must be at least 1")
    if not args.radius_km > 0:
        raise CliError("--radius-km must be positive")
    pool = Path(args.pool).expanduser()
    out = Path(args.out).expanduser()
    columns, rows, lats, lons = read_pool(pool)
    try:
        result = sample_gws(
            lats,
            lons,
            args.n,
            args.seed,
            gazetteer_cities(args.min_population),
            natural_earth_areas(),
            radius_km=args.radius_km,
            exact_n=args.exact_n,
        )
    except SamplingError as exc:
        raise CliError(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*columns, "gws_country", "gws_city"], extrasaction="ignore")
        writer.writeheader()
        for i, cc, city in zip(result.indices, result.country, result.city, strict=True):
            writer.writerow({**rows[i], "gws_country": cc, "gws_city": city})
    tmp.replace(out)
    summary = result.summary(args.n, args.seed)
    summary["out"] = str(out)
    top = list(summary["countries"].items())[:5]
    human = (
        f"{summary['n']} samples from {summary['countries_sampled']} countries written to {out} "
        f"({summary['draws']} draws, {summary['empty_draws']} empty)\n"
        + "\n".join(f"  {cc}: p {v['p']:.4f}  share {v['share']:.4f}" for cc, v in top)
    )
    emit(args, summary, human)
    return 0
