"""Clue Part: teacher selection through the Backend protocol, review queue, accept-reviewed, resume."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from geodesk.engine.backends.base import ChatMessage
from geodesk.engine.parsing import parse_answer
from tests.training.data.scripted import ScriptedTeacher
from training.data.clues import accept_reviewed, build_clues, queue_path
from training.data.common import DataError, read_jsonl, read_samples, trace_path
from training.data.metadata import PlaceNamer


def keep_driving_side(messages: Sequence[ChatMessage]) -> str:
    """Keeps the driving-side clue (found by its text in the numbered list) and rephrases it."""
    prompt = messages[-1].text
    listing = dict(re.findall(r"^(\d+)\. (.*)$", prompt, re.M))
    index = next(int(n) for n, text in listing.items() if "drives on the" in text)
    side = "left" if "left" in listing[str(index)] else "right"
    clue = {"index": index, "category": "road", "text": f"The cars keep to the {side}."}
    return json.dumps({"clues": [clue]})


def test_selected_clues_become_samples_and_pending_queue_entries(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    out = tmp_path / "clues.json"
    teacher = ScriptedTeacher(keep_driving_side)
    report = build_clues(csv_path, images, out, teacher, seed=1, namer=namer)
    assert report.counts["samples"] == 4
    assert report.counts["missing_images"] == 1
    assert len(teacher.calls) == 4
    first = teacher.calls[0][0]
    assert len(first.images) == 1 and first.text.startswith("<image>\n")
    assert "This photo was taken in France" in first.text

    samples = {s["id"]: s for s in read_samples(out)}
    tokyo = json.loads(samples["clue-t1"]["conversations"][1]["value"])
    assert tokyo["clues"] == [{"category": "road_markings", "text": "The cars keep to the left."}]
    assert tokyo["country"] == "Japan" and tokyo["city"] == "Tokyo"
    assert list(tokyo)[:2] == ["clues", "reasoning"]  # clues first: reason, then conclude
    assert parse_answer(samples["clue-t1"]["conversations"][1]["value"], None, "clues").prediction.clues

    queue = read_jsonl(queue_path(out))
    assert [e["status"] for e in queue] == ["pending"] * 4
    entry = next(e for e in queue if e["id"] == "clue-t1")
    assert entry["selected"] == ["jp-driving-side"]
    assert set(entry["offered"]) >= {"jp-driving-side", "jp-plates"}
    assert entry["rephrased"][0]["text"] == "The cars keep to the left."
    assert entry["image"] == "t1.png"


def test_nothing_selected_gives_no_sample(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    out = tmp_path / "clues.json"
    report = build_clues(csv_path, images, out, ScriptedTeacher(lambda m: '{"clues": []}'), namer=namer)
    assert report.counts["samples"] == 0
    assert report.counts["status_no_selection"] == 4
    assert read_jsonl(queue_path(out)) == []


def test_accept_reviewed_takes_only_approved_entries_with_their_edits(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    out = tmp_path / "clues.json"
    build_clues(csv_path, images, out, ScriptedTeacher(keep_driving_side), namer=namer)
    queue = queue_path(out)
    with pytest.raises(DataError, match="nobody has reviewed"):
        accept_reviewed(queue, tmp_path / "reviewed.json")

    entries = read_jsonl(queue)
    for e in entries:
        if e["id"] == "clue-p1":
            e["status"] = "approved"
            e["rephrased"][0]["text"] = "Cars drive on the right; the roadside posts have a black band."
        elif e["id"] == "clue-t1":
            e["status"] = "reviewed"  # read as approved
        else:
            e["status"] = "rejected"
    queue.write_text("".join(json.dumps(e) + "\n" for e in entries))
    report = accept_reviewed(queue, tmp_path / "reviewed.json")
    assert report.counts == {"pending": 0, "approved": 2, "rejected": 2, "samples": 2}
    samples = {s["id"]: s for s in read_samples(tmp_path / "reviewed.json")}
    assert set(samples) == {"clue-p1", "clue-t1"}
    paris = json.loads(samples["clue-p1"]["conversations"][1]["value"])
    assert paris["clues"][0]["text"].startswith("Cars drive on the right; the roadside posts")
    # The question is the one the unreviewed sample had (same seed, same id).
    unreviewed = {s["id"]: s for s in read_samples(out)}
    assert samples["clue-t1"]["conversations"][0] == unreviewed["clue-t1"]["conversations"][0]

    # A rebuild keeps the reviewers' edits in the queue.
    build_clues(csv_path, images, out, ScriptedTeacher(keep_driving_side), namer=namer)
    kept = {e["id"]: e for e in read_jsonl(queue)}
    assert kept["clue-p1"]["status"] == "approved"
    assert kept["clue-p1"]["rephrased"][0]["text"].startswith("Cars drive on the right; the roadside")


def test_accept_reviewed_refuses_an_unknown_status(tmp_path: Path) -> None:
    queue = tmp_path / "q.jsonl"
    queue.write_text('{"id": "clue-1", "status": "aproved"}\n')
    with pytest.raises(DataError, match=r"line 1: status 'aproved'"):
        accept_reviewed(queue, tmp_path / "out.json")


def test_an_approved_entry_with_a_clue_that_was_not_offered_is_reported(tmp_path: Path) -> None:
    queue = tmp_path / "q.jsonl"
    entry = {"id": "clue-x", "image": "x.png", "status": "approved", "offered": ["fr-plates"],
             "location": {"country": "France", "region": None, "city": None, "lat": 45.0, "lon": 3.0},
             "rephrased": [{"clue_id": "de-plates", "category": "signage_language",
                            "text": "A German plate."}]}
    queue.write_text(json.dumps(entry) + "\n")
    report = accept_reviewed(queue, tmp_path / "out.json")
    assert report.counts["samples"] == 0
    assert report.problems[0]["id"] == "clue-x"
    assert "was not offered" in report.problems[0]["reason"]


def test_interrupted_build_resumes_without_duplicates(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    out = tmp_path / "clues.jsonl"
    with pytest.raises(KeyboardInterrupt):
        build_clues(csv_path, images, out, ScriptedTeacher(keep_driving_side, interrupt_after=2), namer=namer)
    assert len(read_jsonl(trace_path(out))) == 2  # two images finished before the interruption
    assert not out.exists()
    again = ScriptedTeacher(keep_driving_side)
    report = build_clues(csv_path, images, out, again, namer=namer)
    assert len(again.calls) == 2  # only the two unfinished images were asked
    assert report.counts["resumed"] == 2
    ids = [s["id"] for s in read_samples(out)]
    assert sorted(ids) == ["clue-b1", "clue-p1", "clue-s1", "clue-t1"]
    trace_ids = [r["id"] for r in read_jsonl(trace_path(out))]
    assert len(trace_ids) == len(set(trace_ids)) == 4
    queue_ids = [e["id"] for e in read_jsonl(queue_path(out))]
    assert len(queue_ids) == len(set(queue_ids)) == 4
