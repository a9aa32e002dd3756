"""Name look-up and comparison: countries, regions, cities, aliases, suffixes, ranking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geodesk.geo import CityRef, CountryRef, Gazetteer, NameMatch, RegionRef, default_gazetteer
from geodesk.geo.names import COUNTRY_ALIASES
from geodesk.geo.text import fold, keys_for, strip_generic


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return default_gazetteer()


# ---- folding -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "exact", "stripped"),
    [
        ("Hefei City", "hefei city", "hefei"),
        ("Hefei Shi", "hefei shi", "hefei"),
        ("合肥市", "合肥市", "合肥"),
        ("Côte d'Ivoire", "cote d ivoire", "cote d ivoire"),
        ("St. Petersburg", "saint petersburg", "saint petersburg"),
        ("State of São Paulo", "state of sao paulo", "sao paulo"),
        ("Nei Mongol Zizhiqu", "nei mongol zizhiqu", "nei mongol"),
        ("Kaliningrad Oblast", "kaliningrad oblast", "kaliningrad"),
        ("東京都", "東京都", "東京"),
        ("京都", "京都", "京都"),  # too short to strip: 京都 is Kyoto, not 京
        ("广州", "广州", "广州"),  # 州 is part of the name
        ("Province", "province", "province"),  # a generic word alone stays
        ("  ZÜRICH  ", "zurich", "zurich"),
        ("Łódź", "lodz", "lodz"),
    ],
)
def test_keys(text: str, exact: str, stripped: str) -> None:
    assert keys_for(text) == (exact, stripped)


@given(st.text(max_size=40))
def test_fold_and_strip_are_idempotent(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert strip_generic(strip_generic(once)) == strip_generic(once)


# ---- countries -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("DE", "DE"),
        ("deu", "DE"),
        ("DEU", "DE"),
        ("China", "CN"),
        ("中国", "CN"),
        ("PRC", "CN"),
        ("People's Republic of China", "CN"),
        ("Spain", "ES"),
        ("España", "ES"),
        ("Japan", "JP"),
        ("日本", "JP"),
        ("Ivory Coast", "CI"),
        ("Côte d'Ivoire", "CI"),
        ("USA", "US"),
        ("United States of America", "US"),
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("Россия", "RU"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("North Korea", "KP"),
        ("Taiwan", "TW"),
        ("Kosovo", "XK"),
        ("Türkiye", "TR"),
        ("Czechia", "CZ"),
        ("The Netherlands", "NL"),
        ("Dem. Rep. Congo", "CD"),
        ("Bosnia and Herz.", "BA"),
        ("france", "FR"),
        ("FRANCE", "FR"),
    ],
)
def test_country_names(gaz: Gazetteer, text: str, code: str) -> None:
    ref = gaz.country(text)
    assert isinstance(ref, CountryRef)
    assert ref.code == code


def test_country_display_names(gaz: Gazetteer) -> None:
    assert gaz.country("DE") == CountryRef("DE", "Germany")
    assert gaz.country("KR") == CountryRef("KR", "South Korea")


@pytest.mark.parametrize("text", ["", "   ", "Atlantis", "Narnia"])
def test_unknown_countries(gaz: Gazetteer, text: str) -> None:
    assert gaz.country(text) is None


@pytest.mark.parametrize(("code", "aliases"), sorted(COUNTRY_ALIASES.items()))
def test_every_alias_resolves_to_its_country(gaz: Gazetteer, code: str, aliases: tuple[str, ...]) -> None:
    for alias in aliases:
        ref = gaz.country(alias)
        assert ref is not None and ref.code == code, alias


# ---- regions -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "cc", "code", "name"),
    [
        ("Anhui", None, "CN-AH", "Anhui"),
        ("Anhui Province", "CN", "CN-AH", "Anhui"),
        ("Anhui Sheng", None, "CN-AH", "Anhui"),
        ("安徽省", None, "CN-AH", "Anhui"),
        ("CN-AH", None, "CN-AH", "Anhui"),
        ("cn-ah", None, "CN-AH", "Anhui"),
        ("CA", "US", "US-CA", "California"),
        ("California", None, "US-CA", "California"),
        ("State of California", None, "US-CA", "California"),
        ("Bavaria", None, "DE-BY", "Bavaria"),
        ("Bayern", "Germany", "DE-BY", "Bavaria"),
        ("New South Wales", None, "AU-NSW", "New South Wales"),
    ],
)
def test_regions(gaz: Gazetteer, text: str, cc: str | None, code: str, name: str) -> None:
    ref = gaz.region(text, cc)
    assert isinstance(ref, RegionRef)
    assert (ref.code, ref.name) == (code, name)


def test_region_country_filter(gaz: Gazetteer) -> None:
    assert gaz.region("Georgia", "US") == RegionRef("US-GA", "Georgia", "US")
    assert gaz.region("Anhui", "FR") is None


def test_geonames_region_without_iso_link_is_still_found(gaz: Gazetteer) -> None:
    ref = gaz.region("Kaliningrad Oblast")
    assert ref is not None and ref.country_code == "RU"


# ---- cities --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["Hefei", "合肥", "合肥市", "Hefei Shi", "Hefei City", "hefei", "HEFEI"])
def test_hefei_in_every_spelling(gaz: Gazetteer, text: str) -> None:
    ref = gaz.city(text)
    assert isinstance(ref, CityRef)
    assert (ref.name, ref.country_code, ref.region) == ("Hefei", "CN", "Anhui")
    assert ref.population > 1_000_000


@pytest.mark.parametrize(
    ("text", "cc", "name", "country"),
    [
        ("Paris", None, "Paris", "FR"),  # the most populous Paris
        ("Paris", "US", "Paris", "US"),
        ("Paris", "United States", "Paris", "US"),
        ("Sydney", None, "Sydney", "AU"),
        ("Sydney", "CA", "Sydney", "CA"),
        ("New York", None, "New York City", "US"),
        ("NYC", None, "New York City", "US"),
        ("St. Petersburg", None, "Saint Petersburg", "RU"),
        ("Leningrad", None, "Saint Petersburg", "RU"),
        ("東京", None, "Tokyo", "JP"),
        ("München", None, "Munich", "DE"),
        ("Mexico City", None, "Mexico City", "MX"),
    ],
)
def test_cities(gaz: Gazetteer, text: str, cc: str | None, name: str, country: str) -> None:
    ref = gaz.city(text, cc)
    assert ref is not None
    assert (ref.name, ref.country_code) == (name, country)


def test_unknown_city(gaz: Gazetteer) -> None:
    assert gaz.city("Qwxzyville") is None
    assert gaz.city("") is None
    assert gaz.city("Hefei", "FR") is None


# ---- lookup --------------------------------------------------------------------------------------
def test_lookup_ranks_and_describes(gaz: Gazetteer) -> None:
    matches = gaz.lookup("Georgia", limit=5)
    assert [m.kind for m in matches[:2]] == ["country", "region"]
    assert matches[0].country_code == "GE" and matches[1].country_code == "US"
    assert all(isinstance(m, NameMatch) for m in matches)
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < s <= 1.0 for s in scores)


def test_lookup_city_fields(gaz: Gazetteer) -> None:
    (top,) = gaz.lookup("合肥", limit=1)
    assert (top.kind, top.name, top.country_code, top.region) == ("city", "Hefei", "CN", "Anhui")
    assert top.lat == pytest.approx(31.86, abs=0.05) and top.lon == pytest.approx(117.28, abs=0.05)


def test_lookup_kind_and_limit(gaz: Gazetteer) -> None:
    cities = gaz.lookup("Paris", limit=3, kind="city")
    assert len(cities) == 3 and all(m.kind == "city" for m in cities)
    assert cities[0].country_code == "FR"
    countries = gaz.lookup("Deutschland", kind="country")
    assert [(m.name, m.country_code) for m in countries] == [("Germany", "DE")]
    assert countries[0].lat is not None  # a point inside the country
    assert gaz.lookup("Paris", limit=0) == []
    with pytest.raises(ValueError, match="kind must be one of"):
        gaz.lookup("Paris", kind="planet")


def test_lookup_prefix_fills_in(gaz: Gazetteer) -> None:
    names = [m.name for m in gaz.lookup("Hefe", kind="city", limit=5)]
    assert "Hefei" in names


def test_lookup_small_country_gets_its_capital_point(gaz: Gazetteer) -> None:
    (sg,) = gaz.lookup("Singapore", kind="country", limit=1)
    assert sg.country_code == "SG" and sg.lat == pytest.approx(1.29, abs=0.2)


def test_lookup_nothing(gaz: Gazetteer) -> None:
    assert gaz.lookup("Qwxzyville") == []
    assert gaz.lookup("   ") == []


# ---- same_place ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "a", "b", "cc", "same"),
    [
        ("country", "Deutschland", "Germany", None, True),
        ("country", "DE", "deu", None, True),
        ("country", "中国", "PRC", None, True),
        ("country", "Ivory Coast", "Côte d'Ivoire", None, True),
        ("country", "USA", "United States", None, True),
        ("country", "Austria", "Australia", None, False),
        ("country", "North Korea", "South Korea", None, False),
        ("country", "Narnia", "narnia", None, True),  # unknown names still compare by folded text
        ("region", "Anhui", "安徽省", "CN", True),
        ("region", "Anhui Province", "CN-AH", None, True),
        ("region", "Bavaria", "Bayern", None, True),
        ("region", "California", "CA", "US", True),
        ("region", "Anhui", "Jiangsu", "CN", False),
        ("city", "Hefei", "合肥", None, True),
        ("city", "Hefei City", "Hefei Shi", None, True),
        ("city", "St. Petersburg", "Leningrad", "RU", True),
        ("city", "Paris", "Lyon", None, False),
        ("city", "Hefei", "Nanjing", "CN", False),
    ],
)
def test_same_place(gaz: Gazetteer, level: str, a: str, b: str, cc: str | None, same: bool) -> None:
    assert gaz.same_place(level, a, b, cc) is same
    assert gaz.same_place(level, b, a, cc) is same  # symmetric


@pytest.mark.parametrize(
    ("a", "b"), [(None, "France"), ("France", None), (None, None), ("", ""), (" ", "France")]
)
def test_same_place_missing_is_never_same(gaz: Gazetteer, a: str | None, b: str | None) -> None:
    assert gaz.same_place("country", a, b) is False


def test_same_place_rejects_unknown_level(gaz: Gazetteer) -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        gaz.same_place("continent", "Europe", "Europe")


def test_reverse_geocoded_names_compare_with_lookups(gaz: Gazetteer) -> None:
    place = gaz.reverse(31.86389, 117.28083)
    assert gaz.same_place("country", place.country, "中国")
    assert gaz.same_place("region", place.region, "安徽省", place.country_code)
    assert gaz.same_place("city", place.city, "合肥市", place.country_code)
