"""Reverse geocoding: exact nearest place, country by polygon, sea, date line, territories."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geodesk.domain.model import Place
from geodesk.geo import Gazetteer, default_gazetteer
from geodesk.geo.borders import CountryBorders
from geodesk.geo.distance import haversine_km_np
from geodesk.geo.gazetteer import COAST_SNAP_KM, validate_coordinates
from geodesk.geo.places import unit_vectors


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return default_gazetteer()


@pytest.mark.parametrize(
    ("lat", "lon", "cc", "region", "city"),
    [
        (48.8566, 2.3522, "FR", "Île-de-France", "Paris"),
        (31.86389, 117.28083, "CN", "Anhui", "Hefei"),
        (-33.8688, 151.2093, "AU", "New South Wales", "Sydney"),
        (54.7065, 20.5110, "RU", "Kaliningrad Oblast", "Kaliningrad"),  # exclave between PL and LT
        (78.2232, 15.6267, "SJ", "Svalbard", "Longyearbyen"),  # part of Norway's polygon
        (42.5063, 1.5218, "AD", "Andorra la Vella", "Andorra la Vella"),  # its own 1:10m polygon
        (1.2897, 103.8501, "SG", None, "Singapore"),
        (22.2783, 114.1747, "HK", None, "Hong Kong"),
    ],
)
def test_known_places(gaz: Gazetteer, lat: float, lon: float, cc: str, region: str | None, city: str) -> None:
    place = gaz.reverse(lat, lon)
    assert isinstance(place, Place)
    assert (place.country_code, place.region, place.city) == (cc, region, city)
    assert place.distance_km is not None and place.distance_km < 2.0


def test_country_names(gaz: Gazetteer) -> None:
    assert gaz.reverse(48.8566, 2.3522).country == "France"
    assert gaz.reverse(54.7104, 20.4522).country == "Russia"


def test_open_atlantic_has_no_country_but_a_distance(gaz: Gazetteer) -> None:
    place = gaz.reverse(30.0, -40.0)
    assert place.country_code is None and place.country is None
    assert place.region is None and place.city is None
    assert place.distance_km is not None and place.distance_km > 1000


@pytest.mark.parametrize("lon", [180.0, -180.0, 179.99, -179.99])
def test_fiji_across_the_date_line(gaz: Gazetteer, lon: float) -> None:
    place = gaz.reverse(-16.85, lon)  # Taveuni, the island the date line crosses
    assert place.country_code == "FJ"
    assert place.region == "Northern"


def test_both_sides_of_the_date_line_are_the_same_point(gaz: Gazetteer) -> None:
    east, west = gaz.reverse(-16.85, 180.0), gaz.reverse(-16.85, -180.0)
    assert east.city == west.city
    assert east.distance_km == pytest.approx(west.distance_km, abs=1e-6)


def test_poles(gaz: Gazetteer) -> None:
    south = gaz.reverse(-90.0, 0.0)
    assert south.country_code == "AQ"  # Antarctica: a polygon without any GeoNames place
    assert south.city is None and south.distance_km is not None and south.distance_km > 1000
    north = gaz.reverse(90.0, 0.0)
    assert north.country_code is None  # the Arctic Ocean


def test_region_and_city_stay_in_the_decided_country(gaz: Gazetteer) -> None:
    # Strasbourg's eastern edge: the nearest place may be across the Rhine in Germany; the polygon says
    # France, and the reported city must then be French too.
    rng = np.random.default_rng(3)
    lats = rng.uniform(47.5, 49.0, 300)
    lons = rng.uniform(7.3, 8.3, 300)
    table = gaz.places.table
    for lat, lon, place in zip(lats, lons, gaz.reverse_many(lats, lons), strict=True):
        if place.city is None:
            continue
        members = [
            i
            for i, n in enumerate(table.name)
            if n == place.city and table.country_code[i] == place.country_code
        ]
        assert members, (lat, lon, place)


def test_coastline_snap_is_bounded(gaz: Gazetteer) -> None:
    # Off Valletta's harbour: outside Malta's 1:10m coast, the nearest place within COAST_SNAP_KM.
    place = gaz.reverse(35.92, 14.53)
    assert place.country_code == "MT"
    assert place.distance_km is not None and place.distance_km <= COAST_SNAP_KM
    assert gaz.reverse(35.5, 14.0).country_code is None  # open sea, beyond the snap


def test_reverse_many_matches_reverse_and_keeps_order(gaz: Gazetteer) -> None:
    pts = [(48.8566, 2.3522), (30.0, -40.0), (-33.8688, 151.2093), (31.86389, 117.28083)]
    many = gaz.reverse_many([p[0] for p in pts], [p[1] for p in pts])
    assert many == [gaz.reverse(*p) for p in pts]
    assert gaz.reverse_many([], []) == []


def test_nearest_is_exact_against_brute_force(gaz: Gazetteer) -> None:
    rng = np.random.default_rng(11)
    n = 300
    z = rng.uniform(-1, 1, n)  # uniform on the sphere
    lats = np.degrees(np.arcsin(z))
    lons = rng.uniform(-180, 180, n)
    table = gaz.places.table
    d_tree, idx = gaz.places.nearest(lats, lons)
    for k in range(n):
        brute = haversine_km_np(lats[k], lons[k], table.lat, table.lon).min()
        assert d_tree[k] == pytest.approx(brute, abs=1e-6)
        assert idx[k] >= 0


def test_degree_space_would_be_wrong_here(gaz: Gazetteer) -> None:
    # At 70°N a degree of longitude is ~38 km: a (lat, lon) tree misjudges; the unit-sphere tree must not.
    table = gaz.places.table
    lat, lon = np.array([69.5]), np.array([25.0])
    d, _ = gaz.places.nearest(lat, lon)
    assert d[0] == pytest.approx(haversine_km_np(lat[0], lon[0], table.lat, table.lon).min(), abs=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=0))
def test_a_places_own_coordinates_give_that_place(gaz: Gazetteer, seed: int) -> None:
    table = gaz.places.table
    i = seed % len(table)
    place = gaz.reverse(float(table.lat[i]), float(table.lon[i]))
    if place.country_code != table.country_code[i]:
        # only where the coarse polygon puts the place in a neighbouring country; then the city is
        # that country's nearest, never a place of another country
        assert place.country_code is not None
        return
    assert place.distance_km == pytest.approx(0.0, abs=1e-6)
    same_spot = {
        table.name[j] for j in np.flatnonzero((table.lat == table.lat[i]) & (table.lon == table.lon[i]))
    }
    assert place.city in same_spot


@pytest.mark.parametrize(
    ("lats", "lons", "message"),
    [
        ([91.0], [0.0], "-90..90"),
        ([0.0], [181.0], "-180..180"),
        ([float("nan")], [0.0], "not a valid coordinate"),
        ([0.0, 1.0], [0.0], "2 latitudes but 1 longitudes"),
    ],
)
def test_invalid_coordinates_are_refused(
    gaz: Gazetteer, lats: list[float], lons: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        gaz.reverse_many(lats, lons)
    with pytest.raises(ValueError):
        validate_coordinates(lats, lons)


def test_unit_vectors_are_unit_length() -> None:
    v = unit_vectors(np.array([0.0, 90.0, -45.0]), np.array([0.0, 10.0, 180.0]))
    assert v.shape == (3, 3)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert np.allclose(v[1], [0.0, 0.0, 1.0])


def test_borders_codes_and_quirks() -> None:
    borders = CountryBorders()
    assert len(borders.codes) == 250
    assert {"FR", "NO", "XK", "SG", "HK", "MT", "AD"} <= borders.country_codes  # '-99' or tiny at 110m
    assert all(c is None or (len(c) == 2 and c.isupper()) for c in borders.codes)
    assert sum(c is None for c in borders.codes) == 3  # Bir Tawil, Spratly Is., Scarborough Reef
    assert all(g.is_valid for g in borders.geometries)
    assert borders.country_codes_at([46.6, 60.5, 42.6, 0.0], [2.5, 8.5, 20.9, -30.0]) == [
        "FR",
        "NO",
        "XK",
        None,
    ]


def test_a_custom_gazetteer_instance_works_without_the_default() -> None:
    g = Gazetteer()
    assert g.reverse(48.8566, 2.3522).city == "Paris"


def test_border_grid_gives_the_exact_answer() -> None:
    import shapely

    borders = CountryBorders()
    rng = np.random.default_rng(5)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))
    lon = rng.uniform(-180, 180, 20_000)
    lat[:4], lon[:4] = [90.0, -90.0, 0.0, -16.5], [180.0, -180.0, 180.0, 180.0]  # grid edges
    fast = borders.country_indices(lat, lon)
    # the grid answers for points clamped 1 cm inside the map's edges (see country_indices)
    lat_in, lon_in = np.clip(lat, -90 + 1e-7, 90 - 1e-7), np.clip(lon, -180 + 1e-7, 180 - 1e-7)
    pairs = borders._tree.query(shapely.points(lon_in, lat_in), predicate="intersects")
    exact = np.full(lat.size, -1)
    for p, poly in sorted(zip(pairs[0].tolist(), pairs[1].tolist(), strict=True), reverse=True):
        exact[p] = poly  # reverse order: the lowest polygon index is written last
    assert np.array_equal(fast, exact)
