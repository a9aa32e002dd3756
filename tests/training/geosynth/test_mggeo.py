"""MG-Geo parts from GeoSynth truth: they pass the data validator, parse as valid answers, and the +QA
turns carry the hidden cue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import parse_answer
from tests.training.geosynth.conftest import N
from training.data.common import read_samples
from training.data.validate import validate_samples
from training.geosynth.generator import read_scenes
from training.geosynth.mggeo import build_mggeo, clue_texts
from training.geosynth.world import World


@pytest.fixture(scope="module")
def parts(generated: Path, world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("mggeo")
    report = build_mggeo(generated, out, seed=2, world=world)
    assert report.counts == {"meta": N, "clue": N, "dialog": 3 * N, "hints": N}  # +Q, +QA, verdict
    return {p: out / f"{p}.json" for p in ("meta", "clue", "dialog", "hints")}


@pytest.fixture(scope="module")
def scenes(generated: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["id"]: r for r in read_scenes(generated)}


@pytest.mark.parametrize("part", ["meta", "clue", "dialog", "hints"])
def test_parts_pass_the_training_data_validator(parts: dict[str, Path], generated: Path, part: str) -> None:
    report = validate_samples(parts[part], generated)
    assert report.counts.get("failed_samples", 0) == 0, report.problems[:3]
    assert (parts[part].parent / f"{part}.json.manifest.json").is_file()


def test_every_answer_parses_to_the_truth(parts: dict[str, Path], scenes: dict[str, dict]) -> None:  # type: ignore[type-arg]
    for part, mode in (("meta", SessionMode.DIRECT), ("clue", SessionMode.CLUES)):
        for sample in read_samples(parts[part]):
            record = scenes[sample["id"].split("-", 1)[1]]
            parsed = parse_answer(sample["conversations"][-1]["value"], None, mode)
            p = parsed.prediction
            assert p.valid and not parsed.problems, sample["id"]
            assert (p.country, p.region, p.city) == (record["country"], record["region"], record["city"])
            assert p.lat == pytest.approx(record["latitude"], abs=1e-4)
            if part == "clue":
                categories = {c[0] for c in p.clues}  # (category, text) pairs
                assert categories <= set(prompts.CLUE_CATEGORY_IDS)
                assert len(p.clues) == len(record["cues"])


def test_clue_texts_describe_only_visible_cues(scenes: dict[str, dict]) -> None:  # type: ignore[type-arg]
    for record in scenes.values():
        texts = " ".join(t for _, t in clue_texts(record))
        if "sign" not in record["cues"]:
            assert record["sign_lines"][0] not in texts
        else:
            assert record["sign_lines"][0] in texts
        if "landmark" not in record["cues"]:
            assert record["glyph"] not in texts


def _dialog(parts: dict[str, Path]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["id"]: s for s in read_samples(parts["dialog"])}


def test_qa_turns_carry_the_hidden_cue_and_reach_the_truth(parts: dict[str, Path],
                                                           scenes: dict[str, dict]) -> None:  # type: ignore[type-arg]
    dialogs = _dialog(parts)
    hidden = [r for r in scenes.values() if r["decisive_hidden"]]
    assert hidden
    for record in hidden:
        sample = dialogs[f"dialog-{record['id']}-qa"]
        human = sample["conversations"][-2]["value"]
        assert record["answer"] in human  # the analyst's answer, which supplies the hidden cue
        cue = record["sign_lines"][0] if record["decisive"] == "sign" else record["glyph"]
        assert cue in record["answer"]
        final = parse_answer(sample["conversations"][-1]["value"], None, SessionMode.DIRECT).prediction
        assert final.valid and final.city == record["city"] and final.country == record["country"]


def test_q_turns_on_hidden_scenes_do_not_invent_the_cue(parts: dict[str, Path],
                                                        scenes: dict[str, dict]) -> None:  # type: ignore[type-arg]
    dialogs = _dialog(parts)
    for record in (r for r in scenes.values() if r["decisive_hidden"]):
        sample = dialogs[f"dialog-{record['id']}-q"]
        conversation = sample["conversations"]
        assert record["question"] in conversation[-2]["value"]
        reply = conversation[-1]["value"]
        assert record["sign_lines"][0] not in reply.split("\n")[0]
        guess = parse_answer(reply, None, SessionMode.DIRECT).prediction
        first = parse_answer(conversation[1]["value"], None, SessionMode.DIRECT).prediction
        assert (guess.city, guess.country) == (first.city, first.country)  # the question changed nothing


def test_hint_text_samples_settle_the_place_from_the_hint_alone(parts: dict[str, Path],
                                                                scenes: dict[str, dict]) -> None:  # type: ignore[type-arg]
    samples = read_samples(parts["hints"])
    assert len(samples) == len(scenes)
    lengths = {len(sample["conversations"]) for sample in samples}
    assert lengths == {2, 4}  # the hint in the first turn, or after a first answer naming another place
    for sample in samples:
        record = scenes[sample["id"].removeprefix("hints-")]
        assert "image" not in sample
        turns = [turn["value"] for turn in sample["conversations"]]
        human, reply = turns[-2:]
        assert not any(prompts.IMAGE_PLACEHOLDER in text for text in turns)
        if len(turns) == 4:
            earlier = parse_answer(turns[1], None, SessionMode.DIRECT).prediction
            assert earlier.valid and (earlier.country, earlier.city) != (record["country"], record["city"])
            assert human.endswith(prompts.FOLLOW_UP_FORMAT[SessionMode.DIRECT])
        assert record["answer"] in human  # the analyst's answer carries the decisive cue
        cue = record["sign_lines"][0] if record["decisive"] == "sign" else record["glyph"]
        assert cue in record["answer"]
        first_line = reply.split("\n")[0]
        assert record["city"] in first_line  # the reply names the town the hint settles
        final = parse_answer(reply, None, SessionMode.DIRECT).prediction
        assert final.valid and (final.country, final.city) == (record["country"], record["city"])


def test_dialog_turns_use_the_protocols_hint_wording(parts: dict[str, Path]) -> None:
    words = {kind: [t.split("{")[0] for t in prompts.templates(template)] for kind, template in (
        ("qa", prompts.TemplateKind.QA), ("q", prompts.TemplateKind.QUESTION),
        ("verdict", prompts.TemplateKind.CLUES))}
    for sample_id, sample in _dialog(parts).items():
        kind = sample_id.rsplit("-", 1)[1]
        text = sample["conversations"][-2]["value"]
        if kind == "verdict":  # the verdict turn, then a +Q or +QA hint as the third turn
            assert any(w in sample["conversations"][2]["value"] for w in words["verdict"]), sample_id
            assert any(w in text for w in words["q"] + words["qa"]), sample_id
        else:
            assert any(w in text for w in words[kind]), sample_id
    placements = {len(s["conversations"]) for s in _dialog(parts).values()}
    assert placements == {2, 4, 6}  # hints in the first turn, as a follow-up turn, after a verdict


def test_building_twice_gives_the_same_files(generated: Path, world: World, tmp_path: Path) -> None:
    a = build_mggeo(generated, tmp_path / "a", seed=2, world=world)
    b = build_mggeo(generated, tmp_path / "b", seed=2, world=world)
    for part in ("meta", "clue", "dialog", "hints"):
        assert Path(a.files[part]).read_bytes() == Path(b.files[part]).read_bytes()
    assert json.loads(Path(a.files["meta"]).read_text())
