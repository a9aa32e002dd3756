"""Answer parsing: a table of real-world answer shapes, property tests, normalizer behaviour."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geodesk.domain import SessionMode
from geodesk.engine.parsing import (
    AnswerSource,
    ParsedAnswer,
    Problem,
    parse_answer,
    parse_choice,
    parse_clue_selection,
    problem_codes,
)
from geodesk.engine.prompts import format_answer

SHAPES = json.loads((Path(__file__).parent / "answer_shapes.json").read_text(encoding="utf-8"))


# A small normalizer for tests about the parser's own logic (which names it asks for, what it keeps).
@dataclass(frozen=True)
class _Country:
    code: str
    name: str


@dataclass(frozen=True)
class _Region:
    code: str
    name: str
    country_code: str


@dataclass(frozen=True)
class _City:
    name: str
    country_code: str
    region: str | None
    lat: float
    lon: float
    population: int


class FakeNormalizer:
    COUNTRIES: ClassVar[dict[str, _Country]] = {
        "france": _Country("FR", "France"),
        "fr": _Country("FR", "France"),
        "united states": _Country("US", "United States"),
        "usa": _Country("US", "United States"),
        "us": _Country("US", "United States"),
        "germany": _Country("DE", "Germany"),
        "de": _Country("DE", "Germany"),
    }
    REGIONS: ClassVar[dict[tuple[str, str], _Region]] = {
        ("washington", "US"): _Region("US-WA", "Washington", "US"),
        ("washington state", "US"): _Region("US-WA", "Washington", "US"),
        ("île-de-france", "FR"): _Region("FR-IDF", "Île-de-France", "FR"),
    }
    CITIES: ClassVar[dict[tuple[str, str], _City]] = {
        ("seattle", "US"): _City("Seattle", "US", "Washington", 47.6062, -122.3321, 737015),
        ("paris", "FR"): _City("Paris", "FR", "Île-de-France", 48.8534, 2.3488, 2138551),
        ("berlin", "DE"): _City("Berlin", "DE", "Berlin", 52.5244, 13.4105, 3426354),
    }

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def country(self, name_or_code: str) -> _Country | None:
        self.calls.append(("country", name_or_code))
        return self.COUNTRIES.get(name_or_code.strip().casefold())

    def region(self, name: str, country_code: str) -> _Region | None:
        self.calls.append(("region", name, country_code))
        return self.REGIONS.get((name.strip().casefold(), country_code))

    def city(self, name: str, country_code: str) -> _City | None:
        self.calls.append(("city", name, country_code))
        return self.CITIES.get((name.strip().casefold(), country_code))


class BrokenNormalizer:
    def country(self, name_or_code: str) -> _Country | None:
        raise RuntimeError("gazetteer database is locked")

    def region(self, name: str, country_code: str) -> _Region | None:
        raise RuntimeError("unreachable")

    def city(self, name: str, country_code: str) -> _City | None:
        raise RuntimeError("unreachable")


def _check_fields(result: ParsedAnswer, expect: dict[str, Any]) -> None:
    pred = result.prediction
    for key, want in expect.items():
        got = getattr(pred, key)
        if key == "clues":
            assert [list(c) for c in got] == want
        elif isinstance(want, float) and got is not None:
            assert got == pytest.approx(want, abs=1e-6), key
        else:
            assert got == want, key


def test_the_table_is_big_and_unique() -> None:
    ids = [case["id"] for case in SHAPES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    known = {p.value for p in Problem}
    for case in SHAPES:
        assert set(case["problems"]) <= known, case["id"]


@pytest.mark.parametrize("case", SHAPES, ids=[c["id"] for c in SHAPES])
def test_answer_shapes(case: dict[str, Any]) -> None:
    normalizer = FakeNormalizer() if case.get("normalizer") == "fake" else None
    result = parse_answer(case["raw"], normalizer, SessionMode(case["mode"]))
    assert result.raw == case["raw"]
    _check_fields(result, case["expect"])
    assert result.valid is case["valid"]
    assert sorted(result.problem_codes) == case["problems"], result.problems


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

_lat = st.floats(min_value=-90, max_value=90, allow_nan=False)
_lon = st.floats(min_value=-180, max_value=180, allow_nan=False)
_name = st.text(st.characters(categories=("L",)), min_size=1, max_size=20).filter(
    lambda s: s.strip().casefold() not in {"na", "x", "nil", "none", "null", "country", "unknown", "tbd"}
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_gives_a_result(text: str) -> None:
    result = parse_answer(text)
    assert isinstance(result, ParsedAnswer)
    assert result.raw == text
    assert result.valid is result.prediction.valid
    if result.prediction.lat is not None:
        assert -90 <= result.prediction.lat <= 90
        assert result.prediction.lon is not None and -180 <= result.prediction.lon <= 180


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="{}[]:,'\"\\ \nlatonNSEW0123456789.-°countryNaIf", max_size=200))
def test_json_like_noise_never_raises(text: str) -> None:
    result = parse_answer(text, FakeNormalizer(), SessionMode.CLUES)
    assert result.raw == text


@settings(max_examples=150)
@given(_json_values)
def test_arbitrary_json_documents_never_raise(value: Any) -> None:
    raw = json.dumps(value)
    assert parse_answer(raw, FakeNormalizer(), SessionMode.CLUES).raw == raw


@pytest.mark.parametrize("raw", [None, b'{"country": "France"}', 42, ["x"], object()])
def test_non_text_input_is_reported_not_raised(raw: object) -> None:
    result = parse_answer(raw)
    assert isinstance(result.raw, str)
    assert Problem.NOT_TEXT in result.problem_codes


def test_bytes_are_decoded() -> None:
    result = parse_answer(b'{"country": "France", "lat": 48.85, "lon": 2.35}')
    assert result.prediction.country == "France"
    assert result.valid


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 5000,
        "{" * 5000,
        '{"a":' * 3000,
        "{" * 300 + '"country": "France"',
        "'" * 5000,
        '{"country": "' + "x" * 200_000,
        "} {" * 3000,
    ],
    ids=["deep-list", "deep-object", "deep-keys", "unclosed", "quotes", "huge-string", "brace-noise"],
)
def test_adversarial_input_returns(raw: str) -> None:
    result = parse_answer(raw)
    assert result.raw == raw


@settings(max_examples=300)
@given(_lat, _lon, _name, st.sampled_from(["number", "string"]))
def test_json_from_valid_coordinates_round_trips(lat: float, lon: float, country: str, kind: str) -> None:
    answer = {
        "country": country,
        "region": None,
        "city": None,
        "lat": lat if kind == "number" else repr(lat),
        "lon": lon if kind == "number" else repr(lon),
    }
    result = parse_answer(json.dumps(answer, ensure_ascii=False))
    assert result.prediction.lat == lat
    assert result.prediction.lon == lon
    assert result.valid
    assert Problem.SWAPPED_COORDINATES not in result.problem_codes


@settings(max_examples=200)
@given(
    _lat,
    _lon,
    st.text(max_size=200).map(lambda s: s.replace("{", "(").replace("}", ")")),
    st.text(max_size=200).map(lambda s: s.replace("{", "(").replace("}", ")")),
)
def test_json_embedded_in_prose_still_parses(lat: float, lon: float, before: str, after: str) -> None:
    # Prose without braces: a brace in prose may legitimately open another JSON object.
    answer = json.dumps({"country": "France", "lat": lat, "lon": lon})
    result = parse_answer(f"{before}\n```json\n{answer}\n```\n{after}")
    assert result.source is AnswerSource.JSON
    assert (result.prediction.country, result.prediction.lat, result.prediction.lon) == ("France", lat, lon)


@settings(max_examples=100)
@given(
    _lat,
    _lon,
    st.lists(
        st.tuples(
            st.sampled_from(["architecture", "vegetation", "climate"]),
            st.text(st.characters(categories=("L", "Zs")), min_size=1, max_size=30).filter(
                lambda s: s.strip()
            ),
        ),
        max_size=4,
    ),
)
def test_format_answer_round_trips(lat: float, lon: float, clues: list[tuple[str, str]]) -> None:
    raw = format_answer(
        country="Japan", region="Tokyo", city="Tokyo", lat=lat, lon=lon, clues=clues, reasoning="because"
    )
    result = parse_answer(raw, mode=SessionMode.CLUES)
    assert result.prediction.lat == round(lat, 4)
    assert result.prediction.lon == round(lon, 4)
    assert result.prediction.clues == tuple((c, t.strip()) for c, t in clues)
    assert result.prediction.reasoning == "because"


# --------------------------------------------------------------------------------------------------
# Names and the normalizer
# --------------------------------------------------------------------------------------------------


def test_region_and_city_are_looked_up_within_the_resolved_country() -> None:
    normalizer = FakeNormalizer()
    parse_answer(
        '{"country": "usa", "region": "Washington", "city": "Seattle", "lat": 47.6, "lon": -122.3}',
        normalizer,
    )
    assert ("region", "Washington", "US") in normalizer.calls
    assert ("city", "Seattle", "US") in normalizer.calls


def test_no_region_or_city_lookup_without_a_country() -> None:
    normalizer = FakeNormalizer()
    result = parse_answer('{"city": "Paris", "lat": 48.85, "lon": 2.35}', normalizer)
    assert [c[0] for c in normalizer.calls] == []
    assert result.prediction.city == "Paris"
    assert result.valid  # coordinates alone are enough


def test_missing_coordinates_are_not_invented_by_default() -> None:
    result = parse_answer('{"country": "France", "city": "Paris"}', FakeNormalizer())
    assert (result.prediction.lat, result.prediction.lon) == (None, None)
    assert Problem.MISSING_COORDINATES in result.problem_codes
    assert any("fill_coordinates_from_names" in p for p in result.problems)
    assert not result.coordinates_from_names


def test_coordinates_can_be_filled_from_the_city_and_are_marked() -> None:
    result = parse_answer(
        '{"country": "France", "city": "paris"}', FakeNormalizer(), fill_coordinates_from_names=True
    )
    assert (result.prediction.lat, result.prediction.lon) == (48.8534, 2.3488)
    assert result.prediction.city == "Paris"
    assert result.coordinates_from_names
    assert Problem.COORDINATES_FROM_NAMES in result.problem_codes
    assert Problem.MISSING_COORDINATES not in result.problem_codes


def test_filling_needs_a_known_city() -> None:
    result = parse_answer(
        '{"country": "France", "city": "Nowhere"}', FakeNormalizer(), fill_coordinates_from_names=True
    )
    assert result.prediction.lat is None
    assert not result.coordinates_from_names
    assert {Problem.UNKNOWN_CITY, Problem.MISSING_COORDINATES} <= result.problem_codes


def test_answer_coordinates_win_over_filling() -> None:
    result = parse_answer(
        '{"country": "France", "city": "Paris", "lat": 43.3, "lon": 5.4}',
        FakeNormalizer(),
        fill_coordinates_from_names=True,
    )
    assert (result.prediction.lat, result.prediction.lon) == (43.3, 5.4)
    assert not result.coordinates_from_names


def test_a_failing_normalizer_is_a_problem_not_an_exception() -> None:
    result = parse_answer(
        '{"country": "France", "city": "Paris", "lat": 48.85, "lon": 2.35}', BrokenNormalizer()
    )
    assert Problem.NORMALIZER_ERROR in result.problem_codes
    assert result.prediction.country == "France"  # kept as written
    assert result.valid


def test_free_text_without_a_country_the_normalizer_knows_is_invalid() -> None:
    result = parse_answer("Looks like somewhere in Narnia, Middle Earth.", FakeNormalizer())
    assert not result.valid
    assert result.prediction.country is None


def test_free_text_ignores_sentence_words() -> None:
    normalizer = FakeNormalizer()
    result = parse_answer("In my view, The Image shows Germany.", normalizer)
    assert result.prediction.country == "Germany"
    assert ("country", "In") not in normalizer.calls  # 'In' must never be tried (it is India's code)


def test_country_code_is_uppercased_without_a_normalizer_and_checked_for_shape() -> None:
    assert parse_answer('{"country": "Spain", "country_code": "es"}').prediction.country_code == "ES"
    assert parse_answer('{"country": "Spain", "country_code": "Spain"}').prediction.country_code is None


def test_problem_strings_carry_code_and_detail() -> None:
    result = parse_answer('{"country": "China", "lat": 117.2, "lon": 31.8}')
    (swapped,) = [p for p in result.problems if p.startswith("swapped_coordinates")]
    assert swapped.startswith("swapped_coordinates: ") and "117.2" in swapped
    assert problem_codes(result.problems) == result.problem_codes


def test_reasoning_prefers_the_json_field_over_prose() -> None:
    result = parse_answer(
        'Prose here.\n{"reasoning": "From the field.", "country": "Peru", "lat": -12, "lon": -77}'
    )
    assert result.prediction.reasoning == "From the field."


# --------------------------------------------------------------------------------------------------
# The real gazetteer, when geodesk.geo provides it
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gazetteer() -> Any:
    geo = pytest.importorskip("geodesk.geo")
    factory = getattr(geo, "default_gazetteer", None)
    if factory is None:
        pytest.skip("geodesk.geo.default_gazetteer is not available yet")
    return factory()


def test_real_gazetteer_normalises_names(gazetteer: Any) -> None:
    result = parse_answer(
        '{"country": "USA", "region": "Washington", "city": "Seattle", "lat": 47.6, "lon": -122.3}', gazetteer
    )
    assert result.prediction.country_code == "US"
    assert result.prediction.city == "Seattle"
    assert Problem.UNKNOWN_COUNTRY not in result.problem_codes


def test_real_gazetteer_free_text(gazetteer: Any) -> None:
    result = parse_answer("I think this is in Paris, France.", gazetteer)
    assert result.prediction.country_code == "FR"
    assert result.valid


def test_real_gazetteer_fills_coordinates_when_asked(gazetteer: Any) -> None:
    result = parse_answer(
        '{"country": "France", "city": "Paris"}', gazetteer, fill_coordinates_from_names=True
    )
    assert result.coordinates_from_names
    assert result.prediction.lat is not None and math.isclose(result.prediction.lat, 48.85, abs_tol=0.1)


# --------------------------------------------------------------------------------------------------
# HIER choices and teacher clue selections
# --------------------------------------------------------------------------------------------------

COUNTRIES = ["Niger", "Nigeria", "France", "Côte d'Ivoire"]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("France", "France"),
        ("france.", "France"),
        ("2", "Nigeria"),
        ("3. France", "France"),
        ("The answer is Nigeria.", "Nigeria"),
        ("I would say Niger, not Nigeria.", "Niger"),
        ("cote d'ivoire", "Côte d'Ivoire"),
        ('{"country": "France"}', "France"),
        ("**France**", "France"),
        ("I am not sure.", None),
        ("9", None),
        ("", None),
    ],
)
def test_parse_choice(raw: str, want: str | None) -> None:
    assert parse_choice(raw, COUNTRIES) == want


def test_parse_choice_never_raises() -> None:
    assert parse_choice(None, COUNTRIES) is None
    assert parse_choice("France", []) is None


def test_parse_clue_selection_keeps_valid_indices_only() -> None:
    raw = (
        'Here you go: {"clues": ['
        '{"index": 2, "category": "Road markings", "text": "White dashed edge lines"},'
        ' {"index": 9, "category": "vegetation", "text": "out of range"},'
        ' {"index": "1", "category": "bogus", "text": "Yellow plates"},'
        ' {"index": 2, "category": "vegetation", "text": "duplicate"}]}'
    )
    selected = parse_clue_selection(raw, count=3)
    assert [(s.index, s.category, s.text) for s in selected] == [
        (2, "road_markings", "White dashed edge lines"),
        (1, "other", "Yellow plates"),
    ]
    assert parse_clue_selection("no json", 3) == ()
    assert parse_clue_selection(None, 3) == ()
