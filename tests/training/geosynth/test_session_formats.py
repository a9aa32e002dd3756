"""GeoSynth's session-format samples: clue-mode hint turns and clue verdicts, as the app sends them.

The decisive tests drive a real session (geodesk.services.sessions: locate in clue mode, the analyst's
verdict on the stored clues or a +Q / +QA hint, then add_hints) with the builder's own answers, and check
that the conversation the session sent, rendered through the tiny model's chat template, is exactly what
the training dataset renders for the builder's canonical sample. The others check that every training
target of the new layouts is an answer the app parses without a problem, in the session's mode.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from geodesk.domain import ClueStatus, SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import parse_answer
from tests.scripted import ScriptedModel
from training.data.common import read_samples
from training.geosynth.generator import read_scenes
from training.geosynth.mggeo import (
    build_mggeo,
    clue_texts,
    follow_up_exchanges,
    hint_of,
    verdict_clues,
    verdict_exchanges,
)
from training.geosynth.world import World


@pytest.fixture(scope="module")
def scenes(generated: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in read_scenes(generated)}


@pytest.fixture(scope="module")
def dialog(generated: Path, world: World, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("formats")
    build_mggeo(generated, out, seed=4, world=world, parts=("dialog",))
    return read_samples(out / "dialog.json")


def _hidden_with_clues(scenes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in scenes.values() if r["decisive_hidden"] and len(r["cues"]) >= 2)


def _elsewhere(world: World, record: dict[str, Any]) -> dict[str, Any]:
    place = next(p for p in world.places if p.country_name != record["country"])
    return {"country": place.country_name, "region": place.region, "city": place.city_name,
            "lat": place.lat, "lon": place.lon}


# --------------------------------------------------------------------------------------------------
# Training targets: valid JSON in the session's mode
# --------------------------------------------------------------------------------------------------


def _mode(sample: dict[str, Any]) -> SessionMode:
    return SessionMode.CLUES if '"clues": [' in sample["conversations"][0]["value"] else SessionMode.DIRECT


def test_every_dialog_answer_parses_without_a_problem_in_its_sessions_mode(
    dialog: list[dict[str, Any]], scenes: dict[str, dict[str, Any]]
) -> None:
    modes: dict[str, set[SessionMode]] = {}
    for sample in dialog:
        mode = _mode(sample)
        kind = sample["id"].rsplit("-", 1)[1]
        modes.setdefault(kind, set()).add(mode)
        record = scenes[sample["id"].removeprefix("dialog-").rsplit("-", 1)[0]]
        for turn in sample["conversations"][1::2]:
            parsed = parse_answer(turn["value"], None, mode)
            assert parsed.prediction.valid and not parsed.problems, (sample["id"], parsed.problems)
            if mode is SessionMode.CLUES:
                assert parsed.prediction.clues and parsed.prediction.reasoning
        if sample["id"].endswith("-qa"):  # +QA settles the place, in every layout and mode
            final = parse_answer(sample["conversations"][-1]["value"], None, mode).prediction
            assert (final.country, final.city) == (record["country"], record["city"])
    assert modes["q"] == modes["qa"] == {SessionMode.DIRECT, SessionMode.CLUES}
    assert modes["verdict"] == {SessionMode.CLUES}


def test_clue_mode_hint_turns_end_with_the_clue_mode_follow_up_format(dialog: list[dict[str, Any]]) -> None:
    follow_ups = [s for s in dialog if _mode(s) is SessionMode.CLUES]
    assert follow_ups
    for sample in follow_ups:
        turns = [t["value"] for t in sample["conversations"]]
        # a hint session has two exchanges; a verdict session three (the verdict, then a hint)
        assert len(turns) == (6 if sample["id"].endswith("-verdict") else 4)
        assert turns[0].startswith(prompts.IMAGE_PLACEHOLDER) and turns[0].endswith(prompts.CLUE_FORMAT)
        for later in turns[2::2]:
            assert prompts.IMAGE_PLACEHOLDER not in later
            assert later.endswith(prompts.FOLLOW_UP_FORMAT[SessionMode.CLUES])


def test_a_verdict_session_goes_on_with_a_hint_over_the_accepted_clues(
    dialog: list[dict[str, Any]], scenes: dict[str, dict[str, Any]]
) -> None:
    """The third turn of a verdict sample is the scene's +Q or +QA hint: +QA moves the place to the
    truth, +Q keeps the verdict's place, and both list only the clues the verdict kept."""
    thens: set[str] = set()
    for sample in (s for s in dialog if s["id"].endswith("-verdict")):
        record = scenes[sample["id"].removeprefix("dialog-").removesuffix("-verdict")]
        turns = [t["value"] for t in sample["conversations"]]
        verdict = parse_answer(turns[3], None, SessionMode.CLUES).prediction
        after = parse_answer(turns[5], None, SessionMode.CLUES).prediction
        assert after.clues == verdict.clues
        if record["answer"] in turns[4]:
            thens.add("qa")
            assert (after.country, after.city) == (record["country"], record["city"])
        else:
            thens.add("q")
            assert record["question"] in turns[4]
            assert (after.country, after.city) == (verdict.country, verdict.city)
    assert thens == {"q", "qa"}


def test_a_verdict_keeps_the_accepted_clues_and_the_place(scenes: dict[str, dict[str, Any]]) -> None:
    rejected_any = False
    for record in scenes.values():
        judged = verdict_clues(record, random.Random(record["id"]))
        assert [(c.category, c.text) for c in judged] == clue_texts(record)
        assert any(c.status is ClueStatus.ACCEPTED for c in judged)
        decisive = [c for c, cue in zip(judged, record["cues"], strict=True) if cue == record["decisive"]]
        assert all(c.status is ClueStatus.ACCEPTED for c in decisive)  # the deciding clue stays
        rejected_any |= any(c.status is ClueStatus.REJECTED for c in judged)
        first = {"country": record["country"], "region": record["region"], "city": record["city"],
                 "lat": record["latitude"], "lon": record["longitude"]}
        _, (verdict, after) = verdict_exchanges(record, first, judged)
        kept = [(c.category, c.text) for c in judged if c.status is ClueStatus.ACCEPTED]
        parsed = parse_answer(after, None, SessionMode.CLUES).prediction
        assert [(c[0], c[1]) for c in parsed.clues] == kept
        assert (parsed.country, parsed.city) == (record["country"], record["city"])
        for clue in judged:
            assert clue.text.rstrip(".") in verdict
    assert rejected_any


# --------------------------------------------------------------------------------------------------
# One code path: the app's session and the training dataset render the same conversation
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def case(generated: Path, scenes: dict[str, dict[str, Any]],
         tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into
    from geodesk.store.workspace import Workspace

    image = generated / _hidden_with_clues(scenes)["image"]
    ws = Workspace(tmp_path / "ws")
    store = ws.open_case(ws.create_case("GeoSynth session formats"))
    report = import_into(store, [image], options=ImportOptions(workers=0), locate=None)
    assert not report.errors
    yield store, report.imported[0].sha256, image
    store.close()


def _assert_trained_as_sent(exchanges: list[tuple[str, str]], model: ScriptedModel, image: Path,
                            tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoProcessor

    from geodesk.engine.backends.base import template_messages
    from training.datasets import LlavaConversationDataset

    answers = [gpt for _, gpt in exchanges]
    sent = [(m.role, m.text) for m in model.calls[-1]] + [("assistant", answers[-1])]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / image.name).write_bytes(image.read_bytes())
    sample = {"id": "s", "image": image.name, "conversations": [
        {"from": side, "value": text} for human, gpt in exchanges
        for side, text in (("human", human), ("gpt", gpt))]}
    data = folder / "dialog.json"
    data.write_text(json.dumps([sample]), encoding="utf-8")
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    dataset = LlavaConversationDataset([data], processor)
    assert dataset.messages_for(dataset.samples[0]) == sent
    trained_text = "".join(chunk for chunk, _ in dataset.render(dataset.samples[0]))
    assert trained_text == processor.apply_chat_template(template_messages(sent), tokenize=False)
    assert [len(m.images) for m in model.calls[-1] if m.role == "user"] == [1] + [0] * (len(exchanges) - 1)


def _scripted(exchanges: list[tuple[str, str]]) -> ScriptedModel:
    answers = [gpt for _, gpt in exchanges]
    return ScriptedModel(lambda messages: answers[sum(m.role == "user" for m in messages) - 1])


@pytest.mark.parametrize("variant", ["q", "qa"])
def test_a_clue_mode_hint_turn_sample_renders_exactly_as_the_session_sends_it(
    variant: str, case: tuple[Any, str, Path], scenes: dict[str, dict[str, Any]], world: World,
    tiny_model_dir: Path, tmp_path: Path,
) -> None:
    from geodesk.services.sessions import TurnOptions, add_hints, locate

    store, sha, image = case
    record = _hidden_with_clues(scenes)
    exchanges = follow_up_exchanges(record, variant, SessionMode.CLUES, _elsewhere(world, record))
    model = _scripted(exchanges)
    outcome = locate(store, sha, model, SessionMode.CLUES, TurnOptions())
    assert outcome.parsed.prediction.clues  # the session stored the first answer's clues
    follow = add_hints(store, outcome.session.id or 0, [hint_of(record, variant)], model, TurnOptions())
    assert follow.parsed.prediction.valid and not follow.parsed.problems
    _assert_trained_as_sent(exchanges, model, image, tiny_model_dir, tmp_path)


@pytest.mark.parametrize("then", [None, "q", "qa"])
def test_a_clue_verdict_sample_renders_exactly_as_the_session_sends_it(
    then: str | None, case: tuple[Any, str, Path], scenes: dict[str, dict[str, Any]], world: World,
    tiny_model_dir: Path, tmp_path: Path,
) -> None:
    from geodesk.services.sessions import TurnOptions, add_hints, clue_verdict_hint, locate, set_clue_status

    store, sha, image = case
    record = _hidden_with_clues(scenes)
    judged = verdict_clues(record, random.Random(1))
    # The analyst rejects one clue that does not decide the place and accepts the others.
    other = next(i for i, cue in enumerate(record["cues"]) if cue != record["decisive"])
    judged = [replace(c, status=ClueStatus.REJECTED if i == other else ClueStatus.ACCEPTED)
              for i, c in enumerate(judged)]
    exchanges = verdict_exchanges(record, _elsewhere(world, record), judged, then=then)
    model = _scripted(exchanges)
    outcome = locate(store, sha, model, SessionMode.CLUES, TurnOptions())
    stored = store.clues.list(evidence_sha256=sha)
    assert [(c.category, c.text) for c in stored] == [(c.category, c.text) for c in judged]
    for clue, verdict in zip(stored, judged, strict=True):  # the analyst judges them in the clue panel
        set_clue_status(store, clue.id or 0, verdict.status)
    hint = clue_verdict_hint(store, outcome.session.id or 0)
    follow = add_hints(store, outcome.session.id or 0, [hint], model, TurnOptions())
    assert follow.parsed.prediction.valid and not follow.parsed.problems
    if then is not None:  # the analyst goes on with the scene's hint after the verdict
        follow = add_hints(store, outcome.session.id or 0, [hint_of(record, then)], model, TurnOptions())
        assert follow.parsed.prediction.valid and not follow.parsed.problems
    _assert_trained_as_sent(exchanges, model, image, tiny_model_dir, tmp_path)
