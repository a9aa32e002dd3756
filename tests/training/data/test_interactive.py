"""The interactive evaluation set and GRPO prompts with clue entities, from a reviewed Clue part."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from geodesk.engine.backends.base import ChatMessage
from tests.training.data.scripted import ScriptedTeacher
from training.data.clues import build_clues, queue_path
from training.data.common import read_jsonl, write_jsonl
from training.data.interactive import TOPIC_QUESTIONS, build_interactive
from training.data.metadata import PlaceNamer
from training.datasets import read_llava_json
from training.evaluation.io import read_dialogs, read_truth
from training.rewards import GroundTruth, grounding_reward


def keep_side_and_script(messages: Sequence[ChatMessage]) -> str:
    """Keeps the driving-side clue and the script clue (found by their texts) and rephrases them."""
    listing = dict(re.findall(r"^(\d+)\. (.*)$", messages[-1].text, re.M))
    kept = []
    for number, text in listing.items():
        if "drives on the" in text:
            kept.append({"index": int(number), "category": "road", "text": "Cars keep to one side."})
        elif "script" in text.lower() or "kanji" in text.lower():
            kept.append({"index": int(number), "category": "signs", "text": f"Shop signs: {text}"})
    return json.dumps({"clues": kept})


def test_reviewed_clues_make_dialogs_truths_and_grounded_grpo_prompts(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    out = tmp_path / "clues.json"
    build_clues(csv_path, images, out, ScriptedTeacher(keep_side_and_script), seed=0, namer=namer)
    queue = read_jsonl(queue_path(out))
    for entry in queue:
        entry["status"] = "approved" if entry["id"] != "clue-b1" else "rejected"
    write_jsonl(queue_path(out), queue)

    report = build_interactive(queue_path(out), images, tmp_path / "eval")
    assert report.counts["not_approved"] == 1 and report.counts["dialogs"] == 3
    dialogs = {d.id: d for d in read_dialogs(tmp_path / "eval" / "dialogs.jsonl")}
    assert set(dialogs) == {"p1", "t1", "s1"}
    for dialog in dialogs.values():
        assert dialog.question in TOPIC_QUESTIONS.values()
        assert "France" not in dialog.question and "Japan" not in dialog.question
    # Signs narrow a place down more than the driving side: the script clue is the one asked about.
    assert dialogs["t1"].question == TOPIC_QUESTIONS["script"]
    assert dialogs["t1"].answer.startswith("Shop signs")
    truth = {s.row.id: s.row for s in read_truth(tmp_path / "eval" / "truth.csv")}
    assert truth["t1"].country == "Japan" and abs(truth["t1"].lat - 35.6762) < 1e-6

    prompts = {s.id: s for s in read_llava_json(tmp_path / "eval" / "grpo.json")}
    assert prompts["clue-t1"].images[0] == images / "t1.png"  # the image root from the manifest
    raw = {s["id"]: s for s in json.loads((tmp_path / "eval" / "grpo.json").read_text(encoding="utf-8"))}
    entities = raw["clue-t1"]["clue_entities"]
    assert "left" in entities and any("Japanese" in e or "Kanji" in e for e in entities), entities
    assert report.counts["grpo_prompts_with_entities"] == 3
    # The grounding reward now has something to score.
    tokyo = GroundTruth(35.6762, 139.6503, "Japan", "Tokyo", "Tokyo", tuple(entities), "clues")
    seen = "Traffic keeps left; signs in Kanji."
    good = json.dumps({"clues": [{"category": "road_markings", "text": seen}],
                       "reasoning": "Left-hand traffic and Kanji.", "country": "Japan", "region": "Tokyo",
                       "city": "Tokyo", "lat": 35.68, "lon": 139.65})
    assert grounding_reward(good, tokyo) > 0.0
