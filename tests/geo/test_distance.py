"""The metric functions every evaluation in geodesk builds on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geodesk.geo.distance import (
    ACCURACY_THRESHOLDS_KM,
    EARTH_RADIUS_KM,
    MAX_DISTANCE_KM,
    accuracy_at_thresholds,
    geoscore,
    geoscore_np,
    haversine_km,
    haversine_km_np,
    within_threshold,
)

lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)


def test_constants_match_the_references() -> None:
    assert EARTH_RADIUS_KM == 6371.0
    assert ACCURACY_THRESHOLDS_KM == (1, 25, 200, 750, 2500)


def test_same_point_is_zero() -> None:
    assert haversine_km(48.8566, 2.3522, 48.8566, 2.3522) == 0.0


def test_known_distance_paris_london() -> None:
    # reference value from the haversine formula with R = 6371 km
    assert haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.556, abs=0.01)


def test_one_degree_of_latitude() -> None:
    assert haversine_km(0, 0, 1, 0) == pytest.approx(EARTH_RADIUS_KM * math.pi / 180, rel=1e-12)


def test_antipodes_are_half_the_circumference() -> None:
    assert haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_KM, rel=1e-12)
    # near the antipode haversine loses precision (asin near 1): still within 1 m
    assert haversine_km(35.0, 139.0, -35.0, -41.0) == pytest.approx(math.pi * EARTH_RADIUS_KM, abs=1e-3)


def test_poles() -> None:
    assert haversine_km(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_KM, rel=1e-12)
    # every longitude is the same point at a pole
    assert haversine_km(90, 0, 90, 123.0) == pytest.approx(0.0, abs=1e-9)
    assert haversine_km(90, 0, 0, 77.0) == pytest.approx(math.pi * EARTH_RADIUS_KM / 2, rel=1e-12)


def test_date_line_is_short_across() -> None:
    across = haversine_km(0, 179.5, 0, -179.5)
    assert across == pytest.approx(EARTH_RADIUS_KM * math.pi / 180, rel=1e-9)
    assert haversine_km(-16.5, 180.0, -16.5, -180.0) == pytest.approx(0.0, abs=1e-9)


def test_vectorised_matches_scalar() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform([-90, -180], [90, 180], size=(200, 2))
    b = rng.uniform([-90, -180], [90, 180], size=(200, 2))
    vec = haversine_km_np(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    assert vec.shape == (200,)
    for k in range(200):
        assert vec[k] == pytest.approx(haversine_km(a[k, 0], a[k, 1], b[k, 0], b[k, 1]), rel=1e-12, abs=1e-9)


def test_vectorised_broadcasts_a_point_against_many() -> None:
    d = haversine_km_np(0.0, 0.0, [0.0, 0.0, 90.0], [0.0, 180.0, 0.0])
    assert d.tolist() == pytest.approx([0.0, math.pi * EARTH_RADIUS_KM, math.pi * EARTH_RADIUS_KM / 2])


@given(lats, lons, lats, lons)
def test_haversine_symmetric_and_bounded(a: float, b: float, c: float, d: float) -> None:
    x = haversine_km(a, b, c, d)
    assert x == pytest.approx(haversine_km(c, d, a, b), abs=1e-6)
    assert 0.0 <= x <= MAX_DISTANCE_KM + 1e-6


@given(lats, lons, lats, lons, lats, lons)
def test_triangle_inequality(a: float, b: float, c: float, d: float, e: float, f: float) -> None:
    assert haversine_km(a, b, e, f) <= haversine_km(a, b, c, d) + haversine_km(c, d, e, f) + 1e-6


def test_geoscore_values() -> None:
    assert geoscore(0.0) == 5000.0
    assert geoscore(1492.7) == pytest.approx(5000.0 / math.e)
    assert geoscore(MAX_DISTANCE_KM) == pytest.approx(5000 * math.exp(-MAX_DISTANCE_KM / 1492.7))
    assert geoscore_np([0.0, 1492.7]).tolist() == pytest.approx([5000.0, 5000.0 / math.e])


def test_geoscore_rejects_negative_or_nan() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        geoscore(-1.0)
    with pytest.raises(ValueError):
        geoscore(float("nan"))


@given(st.floats(min_value=0, max_value=MAX_DISTANCE_KM), st.floats(min_value=0, max_value=MAX_DISTANCE_KM))
def test_geoscore_decreases_with_distance(d1: float, d2: float) -> None:
    lo, hi = sorted((d1, d2))
    assert geoscore(lo) >= geoscore(hi)


@pytest.mark.parametrize("r", ACCURACY_THRESHOLDS_KM)
def test_threshold_is_strict(r: float) -> None:
    assert not within_threshold(r, r)  # exactly on the threshold does not count
    assert within_threshold(math.nextafter(r, 0), r)
    assert not within_threshold(r + 1e-9, r)


def test_accuracy_at_thresholds() -> None:
    acc = accuracy_at_thresholds([0.5, 1.0, 24.9, 25.0, 3000.0])
    assert acc == {1: 0.2, 25: 0.6, 200: 0.8, 750: 0.8, 2500: 0.8}
    assert accuracy_at_thresholds([]) == {r: 0.0 for r in ACCURACY_THRESHOLDS_KM}
