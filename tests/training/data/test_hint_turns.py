"""Hint-turn samples: the planning rules, the Dialog builder's output, and one code path with the app.

The decisive test drives a real session (geodesk.services.sessions: locate, then add_hints) with the
sample's own answers, and checks that the conversation the session sent, rendered through the tiny
model's chat template, is exactly what the training dataset renders for the sample.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from geodesk.domain import HintKind, SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import parse_answer
from geodesk.geo import haversine_km
from tests.scripted import ScriptedModel
from tests.training.data.conftest import write_table
from tests.training.data.scripted import ScriptedTeacher
from training.data.common import read_samples
from training.data.dialog import build_dialog
from training.data.hint_turns import Location, hint_dialog, plan_hints, short_reply
from training.data.metadata import PlaceNamer

PARIS = Location("France", "Île-de-France", "Paris", 48.8566, 2.3522)
LYON = Location("France", "Auvergne-Rhône-Alpes", "Lyon", 45.764, 4.8357)
BRUSSELS = Location("Belgium", "Brussels Capital", "Brussels", 50.8503, 4.3517)
ROUNDS = [("Which language is on the signs?", "French. The signs use the Latin script. Very clear."),
          ("What do the roofs suggest?", "Slate roofs. Typical of the north of France.")]


def _kinds(steps: list[Any]) -> list[HintKind]:
    return [s.hints[0].kind for s in steps]


def test_correction_and_exclusion_only_follow_a_wrong_first_answer() -> None:
    for seed in range(40):
        steps = plan_hints(PARIS, PARIS, ROUNDS, random.Random(seed), turns=3)
        assert HintKind.CORRECT not in _kinds(steps) and HintKind.EXCLUDE not in _kinds(steps)
        # Lyon is wrong (390 km) but in the right country: a correction may come, an exclusion not.
        steps = plan_hints(PARIS, LYON, ROUNDS, random.Random(seed), turns=3)
        assert HintKind.EXCLUDE not in _kinds(steps)
        steps = plan_hints(PARIS, BRUSSELS, ROUNDS, random.Random(seed), turns=3)
        kinds = _kinds(steps)
        assert len(kinds) == len(set(kinds)) == 3
        assert all(k not in (HintKind.CORRECT, HintKind.EXCLUDE) for k in kinds[1:])  # first turn only
        if kinds[0] is HintKind.EXCLUDE:
            assert steps[0].hints[0].text == "Belgium"


def test_every_hint_turn_is_answered_with_the_truth_and_questions_get_a_short_reply() -> None:
    seen: set[HintKind] = set()
    for seed in range(60):
        for step in plan_hints(PARIS, BRUSSELS, ROUNDS, random.Random(seed), turns=2):
            hint = step.hints[0]
            seen.add(hint.kind)
            parsed = parse_answer(step.reply).prediction
            got = (parsed.country, parsed.city, parsed.lat, parsed.lon)
            assert got == ("France", "Paris", 48.8566, 2.3522)
            if hint.kind is HintKind.QUESTION:
                prose = step.reply.split("\n")[0]
                assert prose in {short_reply(a) for _, a in ROUNDS} and not prose.startswith("{")
            elif hint.kind is HintKind.QA:
                assert hint.answer in {short_reply(a) for _, a in ROUNDS}
                assert step.reply.startswith("{")
            elif hint.kind is HintKind.PRIOR:
                assert hint.text in ("France", "Île-de-France, France")
    assert seen == {HintKind.CORRECT, HintKind.EXCLUDE, HintKind.PRIOR, HintKind.QUESTION, HintKind.QA}


def test_short_reply_keeps_three_sentences_on_one_line() -> None:
    assert short_reply("One.  Two!\nThree? Four. Five.") == "One. Two! Three?"


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="region"):
        plan_hints(PARIS, BRUSSELS, ROUNDS, random.Random(0), kinds=[HintKind.REGION])


def _deduction(lat: float, lon: float) -> str:
    return "\n".join([
        "Q1: Which language is on the signs?", "A1: French, in the Latin script.",
        "Q2: What do the roofs suggest?", "A2: Grey slate, as in the north of France.",
        "Q3: What about the cars?", "A3: European models, French plates.",
        "Q4: What are your coordinates?", f"A4: Near the capital. {json.dumps({'lat': lat, 'lon': lon})}",
    ])


def _paris_table(tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "img"
    images.mkdir()
    Image.new("RGB", (48, 36), (90, 110, 90)).save(images / "p1.png")
    table = write_table(tmp_path / "one.csv", [("p1", 48.8566, 2.3522, "FR", "Île-de-France", "", "Paris")],
                        False)
    return table, images


def test_the_dialog_builder_writes_a_hint_turn_sample_in_the_session_format(
    tmp_path: Path, namer: PlaceNamer
) -> None:
    table, images = _paris_table(tmp_path)
    far = (48.8566 + math.degrees(300 / 6371.0), 2.3522)  # 300 km north: introspection
    teacher = ScriptedTeacher([_deduction(*far), _deduction(48.8566, 2.3522)])
    out = tmp_path / "dialog.json"
    report = build_dialog(table, images, out, teacher, namer=namer, hint_turns=2)
    assert report.counts["hint_samples"] == 1
    chain, hints = read_samples(out)
    assert hints["id"] == f"{chain['id']}-hints" and hints["image"] == chain["image"]
    turns = hints["conversations"]
    assert [t["from"] for t in turns] == ["human", "gpt"] * 3
    assert turns[0]["value"].startswith("<image>\n") and turns[2]["value"].count("<image>") == 0
    # The first answer is the teacher's deduced point, named by reverse geocoding, in the app's JSON.
    first = parse_answer(turns[1]["value"]).prediction
    assert first.lat is not None and first.lon is not None
    assert haversine_km(first.lat, first.lon, *far) < 0.1
    for answer in (turns[3]["value"], turns[5]["value"]):
        final = parse_answer(answer).prediction
        assert final.country == "France" and (final.lat, final.lon) == (48.8566, 2.3522)
    for follow_up in (turns[2]["value"], turns[4]["value"]):
        assert follow_up.endswith(prompts.FOLLOW_UP_FORMAT[SessionMode.DIRECT])

    paper_only = build_dialog(table, images, tmp_path / "paper.json", ScriptedTeacher(
        [_deduction(*far), _deduction(48.8566, 2.3522)]), namer=namer, hint_turns=0)
    assert "hint_samples" not in paper_only.counts and len(read_samples(tmp_path / "paper.json")) == 1


# --------------------------------------------------------------------------------------------------
# One code path: the app's session and the training dataset render the same conversation
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def case(tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into
    from geodesk.store.workspace import Workspace

    image = tmp_path / "street.png"
    Image.new("RGB", (64, 48), (120, 160, 90)).save(image)
    ws = Workspace(tmp_path / "ws")
    store = ws.open_case(ws.create_case("Hint turns"))
    report = import_into(store, [image], options=ImportOptions(workers=0), locate=None)
    assert not report.errors
    yield store, report.imported[0].sha256, image
    store.close()


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_a_hint_turn_sample_renders_exactly_as_the_session_sends_it(
    seed: int, case: tuple[Any, str, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoProcessor

    from geodesk.engine.backends.base import template_messages
    from geodesk.services.sessions import TurnOptions, add_hints, locate
    from training.datasets import LlavaConversationDataset

    store, sha, image = case
    steps = plan_hints(PARIS, BRUSSELS, ROUNDS, random.Random(seed), turns=3)
    exchanges = hint_dialog(BRUSSELS, steps)  # canonical wording: what the app sends
    answers = [gpt for _, gpt in exchanges]
    model = ScriptedModel(lambda messages: answers[sum(m.role == "user" for m in messages) - 1])
    outcome = locate(store, sha, model, SessionMode.DIRECT, TurnOptions())
    for step in steps:
        add_hints(store, outcome.session.id or 0, list(step.hints), model, TurnOptions())
    sent = [(m.role, m.text) for m in model.calls[-1]] + [("assistant", answers[-1])]

    shutil_image = tmp_path / "data" / "p.png"
    shutil_image.parent.mkdir()
    shutil_image.write_bytes(image.read_bytes())
    sample = {"id": "h", "image": "p.png", "conversations": [
        {"from": side, "value": text} for human, gpt in exchanges for side, text in (("human", human),
                                                                                      ("gpt", gpt))]}
    data = tmp_path / "data" / "hints.json"
    data.write_text(json.dumps([sample]), encoding="utf-8")
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    dataset = LlavaConversationDataset([data], processor)
    assert dataset.messages_for(dataset.samples[0]) == sent
    trained_text = "".join(chunk for chunk, _ in dataset.render(dataset.samples[0]))
    session_text = processor.apply_chat_template(template_messages(sent), tokenize=False)
    assert trained_text == session_text
    # The image goes with the first user turn only, as the session attaches it.
    assert [len(m.images) for m in model.calls[-1] if m.role == "user"] == [1] + [0] * len(steps)
