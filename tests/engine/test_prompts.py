"""The prompt protocol: wording per mode and hint kind, determinism, pinned canonical text."""

from __future__ import annotations

import random
import re
import string
import subprocess
import sys
from datetime import datetime

import pytest

from geodesk.domain import Clue, ClueSource, ClueStatus, Hint, HintKind, Region, SessionMode
from geodesk.engine import prompts as pr
from geodesk.engine.parsing import parse_answer, parse_choice

# Pinned: changing these texts changes what models are asked. Do it deliberately, together with
# PROTOCOL_VERSION, and update the pins.
CANONICAL_DIRECT = (
    "<image>\n"
    "Where was this photo taken? Give the country, the region, the city and your best estimate of the "
    "coordinates.\n"
    'Reply with one JSON object and nothing else: {"country": "<country name>", "region": "<state, province '
    'or other first-level region>", "city": "<city or town>", "lat": <latitude>, "lon": <longitude>}. '
    "lat and lon are decimal degrees; south and west are negative."
)
CANONICAL_CLUES = (
    "<image>\n"
    "List the clues in this photo that show where it was taken, then combine them to locate it.\n"
    'Reply with one JSON object and nothing else: {"clues": [{"category": "<category>", "text": "<what you '
    'see and what it suggests>"}], "reasoning": "<one or two sentences>", "country": "<country name>", '
    '"region": "<state, province or other first-level region>", "city": "<city or town>", '
    '"lat": <latitude>, "lon": <longitude>}. The category is one of: architecture, vegetation, climate, '
    "terrain, road_markings, signage_language, vehicles, landmarks, infrastructure, people_culture, other. "
    "lat and lon are decimal degrees; south and west are negative."
)
CANONICAL_HINTS = {
    HintKind.QUESTION: "A question to consider: {question}",
    HintKind.QA: "Question: {question} Answer from the analyst: {answer}",
    HintKind.PRIOR: "The photo was taken in {place}.",
    HintKind.EXCLUDE: "The photo was not taken in {place}.",
    HintKind.CORRECT: "Your prediction is incorrect.",
    HintKind.REGION: "Look at the part of the image inside the box {box}: {note}",
    HintKind.CLUES: "Feedback on your clues. Confirmed: {accepted} Wrong, ignore these: {rejected}",
}
FIELDS = {
    pr.TemplateKind.DIRECT: set(),
    pr.TemplateKind.CLUE_MODE: set(),
    pr.TemplateKind.QUESTION: {"question"},
    pr.TemplateKind.QA: {"question", "answer"},
    pr.TemplateKind.PRIOR: {"place"},
    pr.TemplateKind.EXCLUDE: {"place"},
    pr.TemplateKind.CORRECT: set(),
    pr.TemplateKind.CORRECT_KNOWN: {"known"},
    pr.TemplateKind.REGION: {"box", "note"},
    pr.TemplateKind.CLUES: {"accepted", "rejected"},
}


def _clue(clue_id: int, category: str, text: str, status: ClueStatus) -> Clue:
    return Clue(clue_id, "ab" * 32, category, text, ClueSource.MODEL, status, created_at=datetime(2025, 1, 1))


def test_protocol_version() -> None:
    assert re.fullmatch(r"geodesk-gaga/\d+", pr.PROTOCOL_VERSION)
    assert pr.first_turn(SessionMode.DIRECT).protocol_version == pr.PROTOCOL_VERSION


def test_clue_categories_are_the_papers_ten_with_stable_ids() -> None:
    assert pr.CLUE_CATEGORY_IDS == (
        "architecture",
        "vegetation",
        "climate",
        "terrain",
        "road_markings",
        "signage_language",
        "vehicles",
        "landmarks",
        "infrastructure",
        "people_culture",
    )
    assert pr.OTHER_CATEGORY not in pr.CLUE_CATEGORY_IDS
    labels = [c.label for c in pr.CLUE_CATEGORIES]
    assert "road markings" in labels and "signage and language" in labels and "people and culture" in labels


@pytest.mark.parametrize(
    ("written", "category"),
    [
        ("Architecture", "architecture"),
        ("road-markings", "road_markings"),
        ("Road Markings", "road_markings"),
        ("LANGUAGE", "signage_language"),
        ("Signs and language", "signage_language"),
        ("flora", "vegetation"),
        ("utility poles", "infrastructure"),
        ("Architecture / buildings", "architecture"),
        ("people and culture", "people_culture"),
        ("weather vane", "other"),
        ("", "other"),
        ("sun", "climate"),
    ],
)
def test_clue_category_synonyms(written: str, category: str) -> None:
    assert pr.clue_category_id(written) == category


def test_every_synonym_belongs_to_one_category_only() -> None:
    seen: dict[str, str] = {}
    for cat in pr.CLUE_CATEGORIES:
        for name in (cat.id, cat.label, *cat.synonyms):
            key = pr._category_key(name)
            assert seen.setdefault(key, cat.id) == cat.id, f"{name!r} is claimed by {seen[key]} and {cat.id}"


@pytest.mark.parametrize("kind", list(pr.TemplateKind))
def test_template_families(kind: pr.TemplateKind) -> None:
    family = pr.templates(kind)
    minimum = 5 if kind in (pr.TemplateKind.DIRECT, pr.TemplateKind.CLUE_MODE) else 3
    assert len(family) >= minimum
    assert len(set(family)) == len(family), "templates in a family must differ"
    for template in family:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        assert fields == FIELDS[kind], template
        assert pr.IMAGE_PLACEHOLDER not in template  # the turn builders place the image


def test_all_templates_are_distinct_across_families() -> None:
    every = [t for family in pr.TEMPLATES.values() for t in family]
    assert len(set(every)) == len(every)


def test_every_hint_kind_has_canonical_wording() -> None:
    assert set(CANONICAL_HINTS) == set(HintKind)
    for kind, text in CANONICAL_HINTS.items():
        assert pr.canonical_template(kind) == text


def test_session_clue_mode_and_clue_hint_are_different_families() -> None:
    # Both enums have the value "clues"; the lookup must go by type.
    assert pr.canonical_template(SessionMode.CLUES) != pr.canonical_template(HintKind.CLUES)
    with pytest.raises(TypeError):
        pr.templates("clues")  # type: ignore[arg-type]


def test_canonical_first_turns_are_pinned() -> None:
    assert pr.first_turn(SessionMode.DIRECT).text == CANONICAL_DIRECT
    assert pr.first_turn(SessionMode.CLUES).text == CANONICAL_CLUES
    assert pr.first_turn(SessionMode.DIRECT).image_count == 1


def test_pick_template_is_canonical_without_rng_and_seeded_with_one() -> None:
    assert pr.pick_template(SessionMode.DIRECT, None) == pr.templates(SessionMode.DIRECT)[0]
    a = [pr.pick_template(HintKind.QA, random.Random(7)) for _ in range(5)]
    b = [pr.pick_template(HintKind.QA, random.Random(7)) for _ in range(5)]
    assert a == b
    rng = random.Random(0)
    drawn = {pr.pick_template(SessionMode.CLUES, rng) for _ in range(300)}
    assert drawn == set(pr.templates(SessionMode.CLUES))


def test_training_first_turn_varies_but_keeps_the_format() -> None:
    rng = random.Random(3)
    texts = {pr.first_turn(SessionMode.DIRECT, rng=rng).text for _ in range(100)}
    assert len(texts) == len(pr.templates(SessionMode.DIRECT))
    assert all(t.startswith("<image>\n") and t.endswith(pr.DIRECT_FORMAT) for t in texts)


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (
            Hint(HintKind.QUESTION, "Which side of the road do cars drive on"),
            "A question to consider: Which side of the road do cars drive on?",
        ),
        (
            Hint(HintKind.QA, "What script is on the sign?", answer="Cyrillic"),
            "Question: What script is on the sign? Answer from the analyst: Cyrillic.",
        ),
        (Hint(HintKind.PRIOR, "South America"), "The photo was taken in South America."),
        (Hint(HintKind.EXCLUDE, "Spain"), "The photo was not taken in Spain."),
        (Hint(HintKind.CORRECT), "Your prediction is incorrect."),
        (
            Hint(HintKind.CORRECT, "it is in Portugal"),
            "Your prediction is incorrect. What is known: it is in Portugal.",
        ),
        (
            Hint(HintKind.REGION, "a shop sign", region=Region(10, 20, 110, 90)),
            "Look at the part of the image inside the box [10, 20, 110, 90] "
            "(pixels: left, top, right, bottom): a shop sign.",
        ),
        (
            Hint(HintKind.REGION, region=Region(0, 0, 5, 5)),
            "Look at the part of the image inside the box [0, 0, 5, 5] (pixels: left, top, right, bottom): "
            "this area may hold a clue.",
        ),
    ],
)
def test_canonical_hint_texts(hint: Hint, expected: str) -> None:
    assert pr.hint_text(hint) == expected


def test_clues_hint_lists_accepted_and_rejected() -> None:
    clues = {
        1: _clue(1, "architecture", "Red tile roofs", ClueStatus.ACCEPTED),
        2: _clue(2, "vegetation", "Palm trees.", ClueStatus.REJECTED),
        3: _clue(3, "vehicles", "Yellow taxis", ClueStatus.EDITED),
    }
    text = pr.hint_text(Hint(HintKind.CLUES, clue_ids=(1, 2, 3)), clues=clues)
    assert text == (
        "Feedback on your clues. Confirmed: [architecture] Red tile roofs. [vehicles] Yellow taxis. "
        "Wrong, ignore these: [vegetation] Palm trees."
    )
    only_ok = pr.hint_text(Hint(HintKind.CLUES, clue_ids=(1,)), clues=clues)
    assert only_ok.endswith("Wrong, ignore these: none.")


@pytest.mark.parametrize(
    ("hint", "clues", "message"),
    [
        (Hint(HintKind.QUESTION, "  "), None, "needs a question"),
        (Hint(HintKind.QA, "Which script?"), None, "needs an answer"),
        (Hint(HintKind.PRIOR), None, "needs a place name"),
        (Hint(HintKind.REGION, "note"), None, "needs a region"),
        (Hint(HintKind.CLUES), None, "at least one clue id"),
        (Hint(HintKind.CLUES, clue_ids=(1,)), None, "pass clues="),
        (Hint(HintKind.CLUES, clue_ids=(9,)), {}, "clue 9"),
        (
            Hint(HintKind.CLUES, clue_ids=(1,)),
            {1: _clue(1, "terrain", "Hills", ClueStatus.PROPOSED)},
            "still proposed",
        ),
    ],
)
def test_bad_hints_get_clear_errors(hint: Hint, clues: dict[int, Clue] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pr.hint_text(hint, clues=clues)


def test_several_hints_in_one_turn_keep_their_order() -> None:
    turn = pr.hint_turn(
        [
            Hint(HintKind.EXCLUDE, "France"),
            Hint(HintKind.PRIOR, "Belgium"),
            Hint(HintKind.QUESTION, "Which language?"),
        ],
        mode=SessionMode.DIRECT,
    )
    lines = turn.text.split("\n")
    assert lines == [
        "The photo was not taken in France.",
        "The photo was taken in Belgium.",
        "A question to consider: Which language?",
        pr.FOLLOW_UP_QUESTION,
        pr.FOLLOW_UP_FORMAT[SessionMode.DIRECT],
    ]
    assert turn.image_count == 0 and turn.region_crops == ()


def test_follow_up_without_question_asks_to_revise() -> None:
    turn = pr.hint_turn([Hint(HintKind.CORRECT)], mode=SessionMode.CLUES)
    assert turn.text == "\n".join(
        ["Your prediction is incorrect.", pr.FOLLOW_UP_NO_QUESTION, pr.FOLLOW_UP_FORMAT[SessionMode.CLUES]]
    )
    with pytest.raises(ValueError, match="at least one hint"):
        pr.hint_turn([], mode=SessionMode.DIRECT)


def test_region_crop_placeholder_only_when_asked() -> None:
    region = Region(10, 20, 110, 90)
    hints = [Hint(HintKind.REGION, "a shop sign", region=region)]
    plain = pr.hint_turn(hints, mode=SessionMode.DIRECT)
    assert plain.image_count == 0 and plain.region_crops == ()
    attached = pr.hint_turn(hints, mode=SessionMode.DIRECT, attach_region_crops=True, image_size=(640, 480))
    assert attached.image_count == 1
    assert attached.region_crops == (region,)
    assert pr.REGION_CROP_SENTENCE in attached.text and "of a 640x480 image" in attached.text
    first = pr.first_turn(SessionMode.DIRECT, hints, attach_region_crops=True)
    assert first.image_count == 2  # the evidence image, then the crop
    assert first.text.index(pr.IMAGE_PLACEHOLDER) == 0


def test_first_turn_with_a_guiding_question_for_q_evaluation() -> None:
    turn = pr.first_turn(
        SessionMode.DIRECT, [Hint(HintKind.QUESTION, "What climate does the vegetation suggest?")]
    )
    lines = turn.text.split("\n")
    assert lines[0] == pr.IMAGE_PLACEHOLDER
    assert lines[1] == pr.canonical_template(SessionMode.DIRECT)
    assert lines[2] == "A question to consider: What climate does the vegetation suggest?"
    assert lines[3] == pr.FOLLOW_UP_QUESTION
    assert lines[4].startswith("End with one JSON object:")


def test_build_messages() -> None:
    first = pr.first_turn(SessionMode.DIRECT).text
    answer = '{"country": "France", "region": null, "city": null, "lat": 48.8, "lon": 2.3}'
    follow = pr.hint_turn([Hint(HintKind.EXCLUDE, "France")], mode=SessionMode.DIRECT).text
    messages = pr.build_messages(SessionMode.DIRECT, [(first, answer)], follow)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == pr.system_prompt(SessionMode.DIRECT)
    assert messages[1]["content"] == first and messages[2]["content"] == answer
    assert messages == pr.build_messages(SessionMode.DIRECT, [(first, answer)], follow)
    bare = pr.build_messages(SessionMode.CLUES, [], first, include_system=False)
    assert bare == [{"role": "user", "content": first}]
    assert pr.system_prompt(SessionMode.CLUES) != pr.system_prompt(SessionMode.DIRECT)


@pytest.mark.parametrize("bad", [("only one",), ("user", 3)])
def test_build_messages_rejects_malformed_turns(bad: tuple[object, ...]) -> None:
    with pytest.raises(ValueError, match="turn 0"):
        pr.build_messages(SessionMode.DIRECT, [bad], "next")  # type: ignore[list-item]


def test_build_messages_rejects_an_empty_message() -> None:
    with pytest.raises(ValueError, match="empty"):
        pr.build_messages(SessionMode.DIRECT, [], "  ")


def test_format_answer_is_parsed_back() -> None:
    raw = pr.format_answer(country="Kenya", region="Nairobi", city="Nairobi", lat=-1.292066, lon=36.821945)
    assert (
        raw == '{"country": "Kenya", "region": "Nairobi", "city": "Nairobi", "lat": -1.2921, "lon": 36.8219}'
    )
    parsed = parse_answer(raw)
    assert (parsed.prediction.lat, parsed.prediction.lon, parsed.problems) == (-1.2921, 36.8219, ())
    with pytest.raises(ValueError, match="finite"):
        pr.format_answer(country=None, region=None, city=None, lat=float("nan"), lon=0.0)


def test_cot_prompts() -> None:
    deduction = pr.cot_deduction_prompt()
    assert deduction.startswith("<image>\n")
    for label in ("Q1/A1", "Q3/A3", "Q4", "A4", '{"lat": <latitude>, "lon": <longitude>}'):
        assert label in deduction
    assert "Q5" in pr.cot_deduction_prompt(4)
    introspection = pr.cot_introspection_prompt(48.8566, 2.3522, "Paris, France")
    assert "Your prediction is incorrect." in introspection
    assert "(48.8566, 2.3522) (Paris, France)" in introspection
    assert pr.IMAGE_PLACEHOLDER not in introspection  # a follow-up turn in the same conversation
    with pytest.raises(ValueError):
        pr.cot_introspection_prompt(123.0, 2.0)
    with pytest.raises(ValueError):
        pr.cot_deduction_prompt(0)


def test_hier_prompts_number_candidates_and_their_answers_parse() -> None:
    text = pr.hier_country_prompt(["France", "Spain", "Portugal"])
    assert "1. France\n2. Spain\n3. Portugal" in text
    assert parse_choice("3", ["France", "Spain", "Portugal"]) == "Portugal"
    region = pr.hier_region_prompt("France", ["Brittany", "Normandy"], image=False)
    assert region.startswith("This photo was taken in France.") and pr.IMAGE_PLACEHOLDER not in region
    city = pr.hier_city_prompt("France", "Brittany", ["Rennes", "Brest"])
    assert "Brittany, France" in city and "2. Brest" in city
    with pytest.raises(ValueError):
        pr.hier_country_prompt([])


def test_clue_rephrase_prompt() -> None:
    text = pr.clue_rephrase_prompt("France", ["Yellow plates ", "Bollards with red tops"])
    assert "1. Yellow plates\n2. Bollards with red tops" in text
    assert '"index"' in text and "signage_language" in text
    with pytest.raises(ValueError, match="France"):
        pr.clue_rephrase_prompt("France", [])


def test_engine_package_import_stays_light() -> None:
    code = "import sys, geodesk.engine; print(any(m in sys.modules for m in ('torch', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
