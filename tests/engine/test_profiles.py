"""Prompt profiles: the turns each profile writes and a parser table for GLOBE-style and generic answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodesk.domain.model import Hint, HintKind, SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import Problem
from geodesk.engine.profiles import PROFILE_NAMES, ProfileError, profile, profile_for_protocol
from geodesk.geo import default_gazetteer


@pytest.fixture(scope="module")
def gazetteer() -> Any:
    return default_gazetteer()


GLOBE_TABLE: list[dict[str, Any]] = [
    {  # the published format
        "raw": "<think>Left-hand traffic, kanji signs.</think>\n<answer>country: Japan\ncity: Tokyo</answer>",
        "country": "Japan", "city": "Tokyo", "valid": True, "reasoning": "Left-hand traffic, kanji signs.",
    },
    {  # no tags at all
        "raw": "The signs are French.\ncountry: France\ncity: Paris",
        "country": "France", "city": "Paris", "valid": True,
    },
    {  # upper-case tags and keys, extra lines inside the answer
        "raw": "<THINK>Maple leaves</THINK><ANSWER>\nConfidence: high\nCountry: Canada\nCITY: Toronto\n"
               "Reason: flags</ANSWER>",
        "country": "Canada", "city": "Toronto", "valid": True, "reasoning": "Maple leaves",
    },
    {  # a country line in the reasoning must not win over the answer's
        "raw": "<think>country: France? No, the plates are Spanish.</think><answer>country: Spain\n"
               "city: Madrid</answer>",
        "country": "Spain", "city": "Madrid", "valid": True,
    },
    {  # cut off inside the answer (max tokens): what is there is used
        "raw": "<think>Cyrillic</think><answer>country: Russia\ncity: Mos",
        "country": "Russia", "valid": True, "point": False,
    },
    {  # country only: valid, no point
        "raw": "<answer>country: Kenya</answer>", "country": "Kenya", "city": None, "valid": True,
        "point": False,
    },
    {  # placeholders are not an answer
        "raw": "<answer>country: [country name]\ncity: [city name]</answer>", "valid": False, "point": False,
    },
    {"raw": "", "valid": False, "point": False},
    {"raw": "<think>I cannot tell.</think>", "valid": False, "point": False},
    {  # unknown city: kept as written, no invented point
        "raw": "<answer>country: Brazil\ncity: Xyzzyville</answer>", "country": "Brazil", "valid": True,
        "point": False,
    },
]


@pytest.mark.parametrize("case", GLOBE_TABLE, ids=[str(i) for i in range(len(GLOBE_TABLE))])
def test_globe_answers(case: dict[str, Any], gazetteer: Any) -> None:
    parsed = profile("globe").parse(case["raw"], gazetteer)
    p = parsed.prediction
    assert p.valid is case["valid"]
    assert parsed.raw == case["raw"]
    if "country" in case:
        assert p.country == case["country"]
    if case.get("city"):
        assert p.city is not None and case["city"].casefold() in p.city.casefold()
    if "reasoning" in case:
        assert p.reasoning == case["reasoning"]
    has_point = case.get("point", True)
    assert (p.lat is not None) is has_point
    if has_point:
        # GLOBE names places only: the point is the gazetteer's, and the prediction says so.
        assert parsed.coordinates_from_names and parsed.has_problem(Problem.COORDINATES_FROM_NAMES)
        city = gazetteer.city(p.city, p.country_code)
        assert (p.lat, p.lon) == (city.lat, city.lon)


GENERIC_TABLE: list[dict[str, Any]] = [
    {"raw": '{"country": "France", "region": "Ile-de-France", "city": "Paris", "lat": 48.86, "lon": 2.35}',
     "country": "France", "lat": 48.86, "from_names": False},
    {"raw": 'Here is my answer:\n```json\n{"country": "Japan", "city": "Osaka"}\n```',
     "country": "Japan", "from_names": True},
    {"raw": "Country: Kenya\nCity: Nairobi", "country": "Kenya", "from_names": True},
    {"raw": "I think this is Norway, near Oslo.", "country": "Norway"},
    {"raw": "I can't tell where this is.", "valid": False},
]


@pytest.mark.parametrize("case", GENERIC_TABLE, ids=[str(i) for i in range(len(GENERIC_TABLE))])
def test_generic_answers(case: dict[str, Any], gazetteer: Any) -> None:
    parsed = profile("generic").parse(case["raw"], gazetteer)
    p = parsed.prediction
    assert p.valid is case.get("valid", True)
    if "country" in case:
        assert p.country == case["country"]
    if "lat" in case:
        assert p.lat == case["lat"]
    if "from_names" in case:
        assert parsed.coordinates_from_names is case["from_names"]
        assert p.lat is not None


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_every_profile_parses_any_text_without_raising(text: str) -> None:
    for name in PROFILE_NAMES:
        for wrapped in (text, f"<think>{text}</think><answer>{text}", f"<answer>{text}</answer>"):
            profile(name).parse(wrapped, None)


def test_each_profile_has_its_turns_and_protocol() -> None:
    hint = Hint(kind=HintKind.QA, text="Which script?", answer="Cyrillic")
    globe = profile("globe")
    first = globe.first_turn(SessionMode.DIRECT)
    assert first.text == f"{prompts.IMAGE_PLACEHOLDER}\n{prompts.GLOBE_QUESTION}"
    assert first.protocol_version == prompts.GLOBE_PROTOCOL_VERSION
    follow = globe.hint_turn([hint], mode=SessionMode.DIRECT)
    assert "Cyrillic" in follow.text and "<answer>" in follow.text and first.image_count == 1
    assert follow.image_count == 0
    assert globe.system_prompt(SessionMode.DIRECT) == prompts.GLOBE_SYSTEM_PROMPT
    assert (globe.default_temperature, globe.default_max_new_tokens) == (0.1, 512)

    generic = profile("generic").first_turn(SessionMode.DIRECT, [hint])
    assert generic.text.startswith(prompts.IMAGE_PLACEHOLDER + "\n" + prompts.GENERIC_INSTRUCTION)
    assert "Cyrillic" in generic.text and "JSON" in generic.text
    generic_hint = profile("generic").hint_turn([hint], mode=SessionMode.DIRECT)
    assert generic_hint.protocol_version == prompts.GENERIC_PROTOCOL_VERSION

    assert profile("gaga").first_turn(SessionMode.CLUES) == prompts.first_turn(SessionMode.CLUES)
    for name in PROFILE_NAMES:
        assert profile_for_protocol(profile(name).protocol_version).name == name
    assert profile_for_protocol("geodesk-gaga/0").name == "gaga"
    with pytest.raises(ProfileError, match="gaga, globe, generic"):
        profile("llama")
