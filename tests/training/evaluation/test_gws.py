"""GaGA's Algorithm 1 (training/gws.py): distribution, radius, replacement, determinism, CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chisquare

from training.cli import main
from training.gws import (
    Cities,
    SamplingError,
    country_probabilities,
    gazetteer_cities,
    natural_earth_areas,
    polygon_area_km2,
    sample_gws,
)

KM_PER_DEG = 6371.0 * math.pi / 180
AREAS = {"AA": 5.0, "BB": 3.0, "CC": 1.0, "DD": 1.0}


def synthetic_world(per_country: int, seed: int = 0) -> tuple[Cities, np.ndarray, np.ndarray]:
    """Cities spread over four bands of latitude (one country each); one pool point 1 km north of
    each city, plus pool points far from every city (never sampled)."""
    rng = np.random.default_rng(seed)
    codes, lats, lons = [], [], []
    for k, cc in enumerate(AREAS):
        codes += [cc] * per_country
        lats.append(rng.uniform(-60 + 30 * k, -35 + 30 * k, per_country))
        lons.append(rng.uniform(-179, 179, per_country))
    lat, lon = np.concatenate(lats), np.concatenate(lons)
    cities = Cities(codes, lat, lon, [f"city{i}" for i in range(lat.size)])
    pool_lat = np.concatenate([lat + 1.0 / KM_PER_DEG, np.full(50, 85.0)])
    pool_lon = np.concatenate([lon, np.linspace(-170, 170, 50)])
    return cities, pool_lat, pool_lon


def test_probabilities_are_algorithm_1() -> None:
    p = country_probabilities(AREAS)
    assert p == pytest.approx({"AA": 0.5 * 0.5 + 0.125, "BB": 0.5 * 0.3 + 0.125, "CC": 0.175, "DD": 0.175})
    assert sum(p.values()) == pytest.approx(1.0)


def test_distribution_follows_p_adj_for_large_n() -> None:
    cities, plat, plon = synthetic_world(per_country=4000)
    result = sample_gws(plat, plon, 3000, seed=7, cities=cities, areas=AREAS)
    p = country_probabilities(AREAS)
    codes = sorted(AREAS)
    draws = np.asarray([result.draws[c] for c in codes])
    assert chisquare(draws, draws.sum() * np.asarray([p[c] for c in codes])).pvalue > 1e-3
    summary = result.summary(3000, 7)
    for cc in codes:  # each city has one point, few cities repeat: sample shares track p too
        assert summary["countries"][cc]["share"] == pytest.approx(p[cc], abs=0.03)
    assert len(set(result.indices)) == len(result.indices) == 3000  # without replacement
    assert max(result.indices) < 4 * 4000  # the far-away pool points are never within 5 km


def test_radius_is_inclusive_and_a_too_small_pool_is_refused() -> None:
    cities = Cities(["AA"], np.array([0.0]), np.array([0.0]), ["only"])
    plat = np.array([4.99 / KM_PER_DEG, 5.01 / KM_PER_DEG])
    plon = np.zeros(2)
    assert sample_gws(plat, plon, 1, 0, cities, {"AA": 1.0}).indices == [0]
    with pytest.raises(SamplingError, match="only 1 pool point"):
        sample_gws(plat, plon, 2, 0, cities, {"AA": 1.0})


def test_the_last_city_adds_all_its_points_unless_exact_n() -> None:
    cities = Cities(["AA"], np.array([10.0]), np.array([10.0]), ["c"])
    plat, plon = np.full(3, 10.0) + np.array([0.0, 0.01, 0.02]), np.full(3, 10.0)
    paper = sample_gws(plat, plon, 2, 0, cities, {"AA": 1.0})
    assert paper.indices == [0, 1, 2] and paper.overflow == 1
    exact = sample_gws(plat, plon, 2, 0, cities, {"AA": 1.0}, exact_n=True)
    assert exact.indices == [0, 1] and exact.overflow == 0


def test_deterministic_per_seed() -> None:
    cities, plat, plon = synthetic_world(per_country=200)
    a = sample_gws(plat, plon, 100, 3, cities, AREAS).indices
    assert sample_gws(plat, plon, 100, 3, cities, AREAS).indices == a
    assert sample_gws(plat, plon, 100, 4, cities, AREAS).indices != a


def test_geodesic_areas() -> None:
    one_degree_box = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    # exact spherical area of the box: R^2 * dlon * (sin 1deg - sin 0)
    assert polygon_area_km2(one_degree_box) == pytest.approx(
        6371.0**2 * math.radians(1) * math.sin(math.radians(1))
    )
    areas = natural_earth_areas()
    assert areas["RU"] == pytest.approx(17.1e6, rel=0.03)  # Russia, 17.1 million km²
    assert areas["FR"] == pytest.approx(0.64e6, rel=0.05)  # metropolitan France + French Guiana
    assert "SO" in areas and len(areas) == 239  # 1:10m, Germany's view: Somaliland is in Somalia
    # small countries and territories the 1:110m map could not draw
    assert areas["SG"] == pytest.approx(720, rel=0.35) and areas["MT"] == pytest.approx(316, rel=0.1)
    assert {"HK", "AD", "LU", "BH"} <= set(areas)


def test_cli_writes_the_sample_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cities = gazetteer_cities()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(cities.lat), 400, replace=False)
    pool = tmp_path / "pool.csv"
    with pool.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "latitude", "longitude", "split"])
        for i, k in enumerate(pick.tolist()):
            w.writerow([f"img{i}", round(float(cities.lat[k]) + 0.01, 5), float(cities.lon[k]), "test"])
    out = tmp_path / "gws.csv"
    argv = [
        "gws-sample",
        "--pool",
        str(pool),
        "--n",
        "40",
        "--seed",
        "5",
        "--out",
        str(out),
        "--exact-n",
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary["n"] == 40
    assert set(rows[0]) == {"id", "latitude", "longitude", "split", "gws_country", "gws_city"}
    assert sum(v["samples"] for v in summary["countries"].values()) == 40
    assert sum(v["p"] for v in summary["countries"].values()) == pytest.approx(1.0, abs=1e-6)
    first = out.read_bytes()
    assert main(argv) == 0
    assert out.read_bytes() == first  # same seed, same sample
