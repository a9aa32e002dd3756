"""Reverse geocoding on the Natural Earth 1:10m borders: border towns, disputes, the named place."""

from __future__ import annotations

import numpy as np
import pytest

from geodesk.geo import Gazetteer, default_gazetteer
from tests.geo.places_of import own_point


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return default_gazetteer()


# Fifteen border crossings, a town on each side. At 1:110m, Ciudad Juárez, Brazzaville, Posadas, Reynosa and
# Matamoros came back in the neighbouring country.
BORDER_TOWNS = [
    ("Ciudad Juárez", "MX", "El Paso", "US"),
    ("Brazzaville", "CG", "Kinshasa", "CD"),
    ("Posadas", "AR", "Encarnación", "PY"),
    ("Reynosa", "MX", "McAllen", "US"),
    ("Heroica Matamoros", "MX", "Brownsville", "US"),
    ("Tijuana", "MX", "San Diego", "US"),
    ("Strasbourg", "FR", "Kehl", "DE"),
    ("Foz do Iguaçu", "BR", "Ciudad del Este", "PY"),
    ("Windsor", "CA", "Detroit", "US"),
    ("Valga", "EE", "Valka", "LV"),
    # ... and the 1:10m line gets right: the time-zone tie-break (ADR 0055) must not move them
    ("Basel", "CH", "Weil am Rhein", "DE"),
    ("Saint-Louis", "FR", "Basel", "CH"),
    ("Kerkrade", "NL", "Herzogenrath", "DE"),
    ("Ruse", "BG", "Giurgiu", "RO"),
    ("Komárom", "HU", "Komárno", "SK"),
]


@pytest.mark.parametrize(("a", "cc_a", "b", "cc_b"), BORDER_TOWNS)
def test_border_towns_on_both_sides(gaz: Gazetteer, a: str, cc_a: str, b: str, cc_b: str) -> None:
    for name, cc in ((a, cc_a), (b, cc_b)):
        lat, lon = own_point(gaz, name, cc)
        place = gaz.reverse(lat, lon)
        assert place.country_code == cc, (name, place)
        assert place.city == name


def test_own_country_agreement_on_a_sample(gaz: Gazetteer) -> None:
    # Every 20th GeoNames place (7,761 of 155,210): the full figure is in bench/reverse_geocode.py.
    table = gaz.places.table
    rows = np.arange(0, len(table), 20)
    got = gaz.reverse_columns(table.lat[rows], table.lon[rows]).country_code
    own = [table.country_code[i] for i in rows.tolist()]
    agreement = float(np.mean([g == o for g, o in zip(got, own, strict=True)]))
    assert agreement >= 0.995, agreement  # 1:110m borders: 0.988


@pytest.mark.parametrize(
    ("lat", "lon", "cc", "claimant"),
    [
        (36.14, -5.35, "GI", "Spain"),  # Gibraltar
        (-51.69, -57.86, "FK", "Argentina"),  # Stanley, Falkland Islands
        (27.15, -13.20, "EH", "Morocco"),  # Laayoune, Western Sahara
        (25.03, 121.56, "TW", "China"),  # Taipei
        (21.87, 33.75, None, "Egypt and Sudan"),  # Bir Tawil: claimed by neither
    ],
)
def test_disputed_areas_name_the_claimants(
    gaz: Gazetteer, lat: float, lon: float, cc: str | None, claimant: str
) -> None:
    columns = gaz.reverse_columns([lat], [lon])
    assert columns.country_code[0] == cc
    dispute = columns.dispute[0]
    assert dispute is not None and claimant in dispute


def test_undisputed_places_have_no_dispute(gaz: Gazetteer) -> None:
    columns = gaz.reverse_columns([48.8566, 30.0, -85.0], [2.3522, -40.0, 0.0])  # Paris, sea, Antarctica
    assert columns.dispute == [None, None, None]


# The place a person would name for a landmark, and the nearest populated place that evaluation uses.
LANDMARKS = [
    ("Eiffel Tower", 48.85837, 2.29448, "Paris", "Neuilly-sur-Seine"),
    ("Louvre", 48.86061, 2.33764, "Paris", "Paris"),
    ("Brandenburg Gate", 52.51628, 13.37770, "Berlin", "Tiergarten"),
    ("Big Ben", 51.50073, -0.12463, "London", "City of Westminster"),
    ("Tower Bridge", 51.50546, -0.07536, "London", "Whitechapel"),
    ("Statue of Liberty", 40.68925, -74.04450, "New York City", "Battery Park City"),
    ("Golden Gate Bridge", 37.81993, -122.47825, "San Francisco", "Sausalito"),
    ("Sydney Opera House", -33.85678, 151.21530, "Sydney", "The Rocks"),
    ("Hagia Sophia", 41.00854, 28.98000, "Istanbul", "Eminönü"),
    ("Christ the Redeemer", -22.95192, -43.21049, "Rio de Janeiro", "Rocinha"),
    ("CN Tower", 43.64257, -79.38706, "Toronto", None),
    ("Prague Castle", 50.09064, 14.40045, "Prague", "Malá Strana"),
    ("Petronas Towers", 3.15785, 101.71165, "Kuala Lumpur", "Kampung Baru"),
    ("Colosseum", 41.89021, 12.49223, "Rome", "Rome"),
    ("Palace of Versailles", 48.80490, 2.12035, "Versailles", "Versailles"),  # a town keeps its name
]


@pytest.mark.parametrize(("landmark", "lat", "lon", "named", "nearest"), LANDMARKS)
def test_landmarks_get_the_city_a_person_would_name(
    gaz: Gazetteer, landmark: str, lat: float, lon: float, named: str, nearest: str | None
) -> None:
    assert gaz.named_place(lat, lon).city == named, landmark
    if nearest is not None:
        assert gaz.reverse(lat, lon).city == nearest, landmark  # the evaluation rule is unchanged


def test_a_village_far_from_a_city_keeps_its_name(gaz: Gazetteer) -> None:
    # Every place's own coordinates: the named place is a place of the same country, and where a
    # place is far (over 30 km) from every bigger place it names itself.
    table = gaz.places.table
    rows = np.arange(3, len(table), 997)
    named = gaz.named_columns(table.lat[rows], table.lon[rows])
    nearest = gaz.reverse_columns(table.lat[rows], table.lon[rows])
    assert named.country_code == nearest.country_code
    moved = [i for i, (a, b) in enumerate(zip(named.place_index, nearest.place_index, strict=True)) if a != b]
    assert len(moved) < len(rows)  # most places are their own named place
    for i in moved:
        assert table.population[named.place_index[i]] > table.population[nearest.place_index[i]]
        assert named.distance_km[i] <= 30.0


def test_named_columns_handles_sea_and_empty(gaz: Gazetteer) -> None:
    assert len(gaz.named_columns([], [])) == 0
    sea = gaz.named_place(30.0, -40.0)
    assert sea.country_code is None and sea.city is None
