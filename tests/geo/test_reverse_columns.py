"""The column path of reverse geocoding, the fast Place construction, the per-cell nearest-place
shortcut, and what the first reverse geocoding builds."""

from __future__ import annotations

import numpy as np
import pytest

from geodesk.domain.model import Place
from geodesk.geo import Gazetteer, default_gazetteer
from geodesk.geo.distance import haversine_km_np
from geodesk.geo.gazetteer import ReverseColumns, places_from_columns
from geodesk.geo.names import CountryNames, country_display_names
from geodesk.geo.places import CELL_CANDIDATES, SUBCELL_LEVELS, SUBCELLS_PER_SIDE, cell_of, unit_vectors


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return default_gazetteer()


def _sphere(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n))), rng.uniform(-180.0, 180.0, n)


def _near_places(gaz: Gazetteer, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    table = gaz.places.table
    pick = rng.integers(0, len(table), n)
    lat = np.clip(table.lat[pick] + rng.normal(0.0, 0.2, n), -90.0, 90.0)
    lon = (table.lon[pick] + rng.normal(0.0, 0.2, n) + 180.0) % 360.0 - 180.0
    return lat, lon


def test_columns_and_reverse_many_agree_on_5000_random_points(gaz: Gazetteer) -> None:
    lat, lon = _sphere(4000, 21)
    near_lat, near_lon = _near_places(gaz, 1000, 22)  # land and borders, not only sea
    lat, lon = np.concatenate([lat, near_lat]), np.concatenate([lon, near_lon])
    cols = gaz.reverse_columns(lat, lon)
    places = gaz.reverse_many(lat, lon)
    assert isinstance(cols, ReverseColumns) and len(cols) == len(places) == 5000
    assert all(type(p) is Place for p in places)
    assert [cols.place(i) for i in range(len(cols))] == places
    assert places[:200] == [
        gaz.reverse(float(a), float(b)) for a, b in zip(lat[:200], lon[:200], strict=True)
    ]
    # the column invariants a Place relies on
    for i in range(len(cols)):
        if cols.country_code[i] is None:
            assert cols.country[i] is None and cols.region[i] is None and cols.city[i] is None
        if cols.place_index[i] < 0:
            assert cols.city[i] is None
        else:
            assert cols.city[i] == gaz.places.table.name[cols.place_index[i]]
            assert gaz.places.table.country_code[cols.place_index[i]] == cols.country_code[i]
    assert np.isfinite(cols.distance_km).all()
    assert sum(c is None for c in cols.country_code) > 1000  # the sea is there
    assert len({c for c in cols.country_code if c}) > 50


def test_fast_place_construction_equals_the_constructor(gaz: Gazetteer) -> None:
    lat, lon = _near_places(gaz, 500, 23)
    cols = gaz.reverse_columns(lat, lon)
    fast = places_from_columns(cols)
    slow = [cols.place(i) for i in range(len(cols))]  # through Place's constructor
    assert fast == slow
    assert [hash(p) for p in fast] == [hash(p) for p in slow]
    assert [p.as_dict() for p in fast] == [p.as_dict() for p in slow]
    assert all(type(p) is Place for p in fast)
    with pytest.raises(AttributeError):  # still frozen
        fast[0].city = "x"  # type: ignore[misc]


def test_empty_batch(gaz: Gazetteer) -> None:
    cols = gaz.reverse_columns([], [])
    assert len(cols) == 0 and places_from_columns(cols) == []


def test_cell_shortcut_is_exact_against_brute_force(gaz: Gazetteer) -> None:
    # points in cells answered from candidate lists, near cell edges and corners, and near places
    index = gaz.places
    count, _ = index._cells
    rng = np.random.default_rng(24)
    cells = rng.choice(np.flatnonzero(count > 0), 600)
    row, col = cells // 360, cells % 360
    edge = rng.choice([0.0, 1e-9, 0.5, 1.0 - 1e-9], size=(2, cells.size))
    lat = np.minimum(row - 90.0 + edge[0], 90.0)
    lon = np.minimum(col - 180.0 + edge[1], 180.0)
    near_lat, near_lon = _near_places(gaz, 400, 25)
    lat, lon = np.concatenate([lat, near_lat]), np.concatenate([lon, near_lon])
    assert (count[cell_of(lat, lon)] > 0).sum() >= 600
    table = index.table
    d, idx = index.nearest(lat, lon)
    for k in range(lat.size):
        brute = haversine_km_np(lat[k], lon[k], table.lat, table.lon).min()
        assert d[k] == pytest.approx(brute, abs=1e-6)
        assert haversine_km_np(lat[k], lon[k], table.lat[idx[k]], table.lon[idx[k]]) == pytest.approx(d[k])


def test_subcells_of_dense_cells_are_exact(gaz: Gazetteer) -> None:
    # points in the dense 1-degree cells, on and beside the subcell edges of both levels: answered
    # from the subcells' lists (or the tree), always the nearest place
    index = gaz.places
    count, _ = index._cells
    levels = index._subcells
    per = SUBCELLS_PER_SIDE
    assert len(levels) == SUBCELL_LEVELS
    parent_count = count
    for base, sub_count, _ in levels:  # each level splits exactly the dense cells of the one above
        dense = np.flatnonzero(parent_count == 0)
        assert (base[dense] >= 0).all() and (base[parent_count > 0] == -1).all()
        assert sub_count.shape == (dense.size * per * per,) and (sub_count > 0).any()
        parent_count = sub_count
    rng = np.random.default_rng(27)
    cells = rng.choice(np.flatnonzero(count == 0), 500)
    edge = rng.choice(
        [0.0, 1e-9, 0.25 - 1e-9, 0.25, 0.5 - 1e-9, 0.5, 0.5 + 1e-9, 0.75, 1.0 - 1e-9], size=(2, cells.size)
    )
    lat = np.minimum(cells // 360 - 90.0 + edge[0], 90.0)
    lon = np.minimum(cells % 360 - 180.0 + edge[1], 180.0)
    lat, lon = np.concatenate([lat, [90.0, -90.0]]), np.concatenate([lon, [180.0, -180.0]])
    table = index.table
    d, _ = index.nearest(np.repeat(lat, 2), np.repeat(lon, 2))  # a batch big enough for the lists
    for k in range(lat.size):
        brute = haversine_km_np(lat[k], lon[k], table.lat, table.lon).min()
        assert d[2 * k] == pytest.approx(brute, abs=1e-6)
    # the lists' reach, checked directly on the first level's subcells
    base, sub_count, sub_cand = levels[0]
    dense = np.flatnonzero(count == 0)
    for c in rng.choice(np.flatnonzero(sub_count > 1), 30):
        cell, k = dense[c // (per * per)], c % (per * per)
        lat = cell // 360 - 90.0 + (k // per + rng.uniform(0, 1, 40)) / per
        lon = cell % 360 - 180.0 + (k % per + rng.uniform(0, 1, 40)) / per
        xyz = unit_vectors(lat, lon)
        best_inside = (xyz @ index._xyz[sub_cand[c, : sub_count[c]]].T).max(axis=1)
        assert np.allclose(best_inside, (xyz @ index._xyz.T).max(axis=1), rtol=0, atol=1e-15)


def test_cell_candidates_hold_every_possible_nearest_place(gaz: Gazetteer) -> None:
    # the candidate list's reach, checked directly: no place outside the list beats the best inside
    index = gaz.places
    count, cand = index._cells
    assert count.shape == (64800,) and cand.shape == (64800, CELL_CANDIDATES)
    assert ((count >= 0) & (count <= CELL_CANDIDATES)).all()
    assert (count == 0).any() and (count == 1).any()  # both paths are in use
    rng = np.random.default_rng(26)
    for c in rng.choice(np.flatnonzero(count > 1), 40):
        lat = c // 360 - 90.0 + rng.uniform(0, 1, 50)
        lon = c % 360 - 180.0 + rng.uniform(0, 1, 50)
        xyz = unit_vectors(lat, lon)
        best_inside = (xyz @ index._xyz[cand[c, : count[c]]].T).max(axis=1)  # (50,)
        best_all = (xyz @ index._xyz.T).max(axis=1)
        assert np.allclose(best_inside, best_all, rtol=0, atol=1e-15)


def test_reverse_geocoding_does_not_build_the_multilingual_name_index() -> None:
    g = Gazetteer()
    assert g.reverse(48.8566, 2.3522).country == "France"
    assert "countries" not in g.__dict__  # the CountryNames cached_property was never computed


def test_display_names_match_the_name_index() -> None:
    assert CountryNames().names == country_display_names()
    assert country_display_names()["KR"] == "South Korea"
    assert country_display_names()["XK"] == "Kosovo"


def test_lookup_tables_are_built_once(gaz: Gazetteer) -> None:
    gaz.reverse(1.0, 2.0)
    tables, cells = gaz._reverse_tables, gaz.places._cells
    gaz.reverse_many([3.0, 50.0], [4.0, 10.0])
    assert gaz._reverse_tables is tables and gaz.places._cells is cells
