"""The border tie-break by time-zone polygons (ADR 0055): border towns on both sides, zones that span
a border never decide it, disputed areas keep their claimants, and the zone table's cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodesk.geo import Gazetteer, cache, default_gazetteer, timezones
from geodesk.geo.borders import BORDER_BAND_KM, CountryBorders
from tests.geo.places_of import own_point


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return default_gazetteer()


@pytest.fixture(scope="module")
def plain(gaz: Gazetteer) -> Gazetteer:
    """The same places and borders without the tie-break: the 1:10m answer alone."""
    return Gazetteer(places=gaz.places.table, borders=gaz.borders, border_zones=False)


# Both sides of twelve borders, from the towns' own GeoNames coordinates. The first town of each pair
# lies where the generalised 1:10m line puts it in the neighbouring country; the time-zone polygon,
# which follows the border at OpenStreetMap resolution, brings it home (its zone is named).
FIXED_PAIRS = [
    ("Goma", "CD", "RW", "Africa/Lubumbashi", "Gisenyi", "RW"),
    ("Narva", "EE", "RU", "Europe/Tallinn", "Ivangorod", "RU"),
    ("Görlitz", "DE", "PL", "Europe/Berlin", "Zgorzelec", "PL"),
    ("Konstanz", "DE", "CH", "Europe/Berlin", "Kreuzlingen", "CH"),
    ("Słubice", "PL", "DE", "Europe/Warsaw", "Frankfurt (Oder)", "DE"),
    ("Tornio", "FI", "SE", "Europe/Helsinki", "Haparanda", "SE"),
    ("Český Těšín", "CZ", "PL", "Europe/Prague", "Cieszyn", "PL"),
    ("Gorizia", "IT", "SI", "Europe/Rome", "Nova Gorica", "SI"),
    ("Baarle-Hertog", "BE", "NL", "Europe/Brussels", "Baarle-Nassau", "NL"),
    ("Agua Prieta", "MX", "US", "America/Hermosillo", "Douglas", "US"),
    ("Leticia", "CO", "BR", "America/Bogota", "Tabatinga", "BR"),
    ("Irun", "ES", "FR", "Europe/Madrid", "Hendaye", "FR"),
]


@pytest.mark.parametrize(("town", "cc", "line_cc", "zone", "other", "other_cc"), FIXED_PAIRS)
def test_the_time_zone_brings_border_towns_home(
    gaz: Gazetteer, plain: Gazetteer, town: str, cc: str, line_cc: str, zone: str, other: str, other_cc: str
) -> None:
    lat, lon = own_point(gaz, town, cc)
    assert plain.reverse(lat, lon).country_code == line_cc  # the 1:10m line alone gets it wrong
    columns = gaz.reverse_columns([lat], [lon])
    assert (columns.country_code[0], columns.border_zone[0]) == (cc, zone)
    assert columns.city[0] == town  # region and city follow the decided country
    lat, lon = own_point(gaz, other, other_cc)
    assert gaz.reverse(lat, lon).country_code == other_cc  # and the town across stays where it is


# The border towns the 1:10m line already gets right, which the tie-break must leave where they are,
# are in test_borders_10m.BORDER_TOWNS.


def test_own_country_agreement_on_a_sample(gaz: Gazetteer, plain: Gazetteer) -> None:
    # Every 20th GeoNames place (7,761 of 155,210): the full figure is in bench/reverse_geocode.py.
    table = gaz.places.table
    rows = np.arange(0, len(table), 20)
    own = np.asarray([table.country_code[i] for i in rows.tolist()], dtype=object)

    def agreement(g: Gazetteer) -> float:
        got = np.asarray(g.reverse_columns(table.lat[rows], table.lon[rows]).country_code, dtype=object)
        return float(np.mean(got == own))

    assert agreement(gaz) >= 0.999  # the 1:10m line alone: 0.9972 on this sample
    assert agreement(plain) < 0.999


def test_zones_are_judged_by_geometry() -> None:
    cover = timezones.zone_cover(default_gazetteer().borders)
    # zones that stop at a border cover one side only
    assert cover["Europe/Berlin"] == ("DE",) and cover["America/Ciudad_Juarez"] == ("MX",)
    assert cover["Europe/Warsaw"] == ("PL",) and cover["Europe/Tallinn"] == ("EE",)
    # zones that span a border cover both sides, so they decide neither
    assert {"IL", "PS"} <= set(cover["Asia/Jerusalem"])
    assert {"RS", "XK"} <= set(cover["Europe/Belgrade"])
    assert {"TH", "VN"} <= set(cover["Asia/Bangkok"])


def test_a_zone_spanning_the_border_leaves_the_line_answer(gaz: Gazetteer) -> None:
    # Ma'ale Adumim: in the West Bank (Natural Earth, GeoNames: PS) but in the Asia/Jerusalem zone,
    # which covers Israel and much of the West Bank; within the border band, yet not decided by it.
    lat, lon = own_point(gaz, "Ma‘ale Adummim", "PS")
    assert gaz.borders.border_band(np.asarray([lat]), np.asarray([lon]))[0].size == 1
    assert timezones.zone_at(lat, lon) == "Asia/Jerusalem"
    columns = gaz.reverse_columns([lat], [lon])
    assert (columns.country_code[0], columns.border_zone[0]) == ("PS", None)
    lat, lon = own_point(gaz, "Pristina", "XK")  # Europe/Belgrade spans Serbia and Kosovo
    assert gaz.reverse(lat, lon).country_code == "XK"


def test_a_disputed_area_keeps_its_claimants(gaz: Gazetteer, plain: Gazetteer) -> None:
    # In Western Sahara's polygon 2 km from the line with Morocco, where the Africa/Casablanca zone
    # (Morocco only) reaches: the tie-break would say MA, but a disputed area's answer stays.
    lat, lon = 27.6472, -12.9987
    assert timezones.zone_at(lat, lon) == "Africa/Casablanca"
    assert timezones.zone_cover(gaz.borders)["Africa/Casablanca"] == ("MA",)
    columns = gaz.reverse_columns([lat], [lon])
    assert (columns.country_code[0], columns.border_zone[0]) == ("EH", None)
    dispute = columns.dispute[0]
    assert dispute is not None and "Morocco" in dispute
    assert plain.reverse_columns([lat], [lon]).dispute == columns.dispute


def test_the_band_is_bounded() -> None:
    borders = default_gazetteer().borders
    # Strasbourg cathedral, 2.5 km from the Rhine; Paris, 230 km from any land border; the open sea
    lat, lon = np.asarray([48.5818, 48.8566, 30.0]), np.asarray([7.7510, 2.3522, -40.0])
    rows, start, polys = borders.border_band(lat, lon)
    assert rows.tolist() == [0]
    assert {borders.codes[p] for p in polys[start[0] : start[1]]} == {"FR", "DE"}
    km = borders.border_km(lat, lon, 3 * BORDER_BAND_KM)
    assert 1.0 < km[0] < BORDER_BAND_KM and np.isinf(km[1:]).all()


def test_a_tripoint_has_three_candidates_however_many_vertices_are_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from geodesk.geo import borders as borders_mod

    borders = default_gazetteer().borders
    lat, lon = np.asarray([47.5896, 48.5818]), np.asarray([7.5886, 7.7510])  # Basel's tripoint; Strasbourg
    found = borders.border_band(lat, lon)
    _, start, polys = found
    assert {borders.codes[p] for p in polys[start[0] : start[1]]} == {"FR", "DE", "CH"}
    monkeypatch.setattr(borders_mod, "BAND_QUERY_VERTICES", 3)  # every point takes the list path
    for a, b in zip(found, borders.border_band(lat, lon), strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_point_and_a_batch_agree(gaz: Gazetteer) -> None:
    lat, lon = own_point(gaz, "Goma", "CD")
    fresh = Gazetteer()
    assert fresh.reverse(lat, lon) == gaz.reverse_many([lat] * 600, [lon] * 600)[0]


def test_the_zone_table_is_cached_and_a_damaged_file_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    borders = default_gazetteer().borders
    expected = timezones.zone_cover(borders)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    built: list[int] = []
    real_build = timezones._build_zone_cover

    def counting(b: CountryBorders, finder: timezones.ZoneFinder) -> dict[str, tuple[str, ...]]:
        built.append(1)
        return real_build(b, finder)

    monkeypatch.setattr(timezones, "_build_zone_cover", counting)
    assert timezones.zone_cover(borders) == expected and len(built) == 1
    assert timezones.zone_cover(borders) == expected and len(built) == 1  # read back, not rebuilt
    (tmp_path / "zone_cover.npz").write_bytes(b"PK\x03\x04 truncated")
    assert timezones.zone_cover(borders) == expected and len(built) == 2


def test_cached_border_lines_answer_like_fresh_ones() -> None:
    small = CountryBorders(geojson=_two_countries())
    again = CountryBorders.from_arrays(small.to_arrays())
    lat = np.asarray([0.0, 0.5, 0.9, 0.0])
    lon = np.asarray([0.02, 0.5, -0.5, 5.0])
    for a, b in zip(small.border_band(lat, lon), again.border_band(lat, lon), strict=True):
        np.testing.assert_array_equal(a, b)
    rows, start, polys = small.border_band(lat, lon)
    assert rows.tolist() == [0]  # 2 km from the shared line at lon 0; the others are farther
    assert sorted(small.codes[p] for p in polys[start[0] : start[1]]) == ["AA", "BB"]


def _two_countries() -> dict[str, object]:
    def square(code: str, x0: float, x1: float) -> dict[str, object]:
        ring = [[x0, -1.0], [x1, -1.0], [x1, 1.0], [x0, 1.0], [x0, -1.0]]
        return {
            "type": "Feature",
            "properties": {"iso_a2": code, "name": code},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    return {"type": "FeatureCollection", "features": [square("AA", -1.0, 0.0), square("BB", 0.0, 1.0)]}
