"""Dialog Part: the 25 km decision rule (with a ScriptedTeacher), round parsing, rejection, resume."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from geodesk.engine.backends.base import ChatMessage
from geodesk.geo import haversine_km
from tests.training.data.conftest import write_table
from tests.training.data.scripted import ScriptedTeacher
from training.data.common import read_jsonl, read_samples, trace_path
from training.data.dialog import build_dialog, needs_introspection, parse_rounds
from training.data.metadata import PlaceNamer

PARIS = (48.8566, 2.3522)


def north_of(lat: float, lon: float, km: float) -> tuple[float, float]:
    """A point ``km`` due north: along a meridian the haversine distance is R * dlat exactly."""
    return lat + math.degrees(km / 6371.0), lon


def deduction(lat: float | None, lon: float | None, tag: str = "D") -> str:
    coords = "no idea" if lat is None else json.dumps({"lat": round(lat, 7), "lon": round(lon or 0, 7)})
    return "\n".join([
        "Q1: What does the climate suggest?", f"A1: {tag} temperate, mild and wet.",
        "Q2: What about the buildings?", f"A2: {tag} rendered walls and slate roofs.",
        "Q3: Which language is on the signs?", f"A3: {tag} French.",
        "Q4: What are your coordinates?", f"A4: {tag} northern France, near the capital. {coords}",
    ])


def paris_only(tmp_path: Path) -> tuple[Path, Path]:
    from PIL import Image

    images = tmp_path / "img"
    images.mkdir()
    Image.new("RGB", (32, 32), (90, 90, 90)).save(images / "p1.jpg")
    table = write_table(tmp_path / "one.csv", [("p1", *PARIS, "FR", "Île-de-France", "", "Paris")], False)
    return table, images


def test_decision_rule_is_strictly_more_than_25_km() -> None:
    assert not needs_introspection(0.0)
    assert not needs_introspection(24.9)
    assert not needs_introspection(25.0)
    assert needs_introspection(25.0001)
    assert needs_introspection(25.1)
    assert needs_introspection(None)  # no readable coordinates


def test_at_24_9_km_the_deduction_is_kept(tmp_path: Path, namer: PlaceNamer) -> None:
    csv_path, images = paris_only(tmp_path)
    lat, lon = north_of(*PARIS, 24.9)
    assert haversine_km(lat, lon, *PARIS) == pytest.approx(24.9, abs=1e-6)
    teacher = ScriptedTeacher([deduction(lat, lon)])
    out = tmp_path / "dialog.json"
    report = build_dialog(csv_path, images, out, teacher, namer=namer, hint_turns=0)
    assert len(teacher.calls) == 1
    assert report.counts["path_deduction"] == 1
    (record,) = read_jsonl(trace_path(out))
    assert record["path"] == "deduction" and record["deduced_km"] == pytest.approx(24.9, abs=1e-3)
    (sample,) = read_samples(out)
    values = [t["value"] for t in sample["conversations"]]
    assert values[0] == "<image>\nWhat does the climate suggest?"
    assert values[1] == "D temperate, mild and wet."
    assert values[6] == "What are your coordinates?"
    assert values[7].startswith("D northern France")
    assert [t["from"] for t in sample["conversations"]] == ["human", "gpt"] * 4


def test_at_25_1_km_the_teacher_introspects_and_its_revision_replaces_the_answers(
    tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = paris_only(tmp_path)
    lat, lon = north_of(*PARIS, 25.1)
    teacher = ScriptedTeacher([deduction(lat, lon), deduction(*PARIS, tag="R")])
    out = tmp_path / "dialog.json"
    report = build_dialog(csv_path, images, out, teacher, namer=namer, hint_turns=0)
    assert len(teacher.calls) == 2
    assert report.counts["path_introspection"] == 1
    second: list[ChatMessage] = teacher.calls[1]
    assert [m.role for m in second] == ["user", "assistant", "user"]
    assert second[1].text == deduction(lat, lon)  # same conversation: the teacher sees its deduction
    assert "Your prediction is incorrect." in second[2].text
    assert "(48.8566, 2.3522)" in second[2].text and "Paris" in second[2].text
    (record,) = read_jsonl(trace_path(out))
    assert record["path"] == "introspection"
    assert record["deduced_km"] == pytest.approx(25.1, abs=1e-3)
    assert record["revised_km"] == pytest.approx(0.0, abs=1e-3)
    (sample,) = read_samples(out)
    answers = [t["value"] for t in sample["conversations"] if t["from"] == "gpt"]
    questions = [t["value"] for t in sample["conversations"] if t["from"] == "human"]
    assert all(a.startswith("R ") for a in answers)  # revised answers replace the deduced ones
    assert questions[0] == "<image>\nWhat does the climate suggest?"  # questions kept


def test_missing_coordinates_trigger_introspection(tmp_path: Path, namer: PlaceNamer) -> None:
    csv_path, images = paris_only(tmp_path)
    teacher = ScriptedTeacher([deduction(None, None), deduction(*PARIS, tag="R")])
    report = build_dialog(csv_path, images, tmp_path / "d.json", teacher, namer=namer)
    assert len(teacher.calls) == 2
    assert report.counts["path_introspection"] == 1


def test_a_revision_that_is_still_wrong_is_rejected(tmp_path: Path, namer: PlaceNamer) -> None:
    csv_path, images = paris_only(tmp_path)
    far = north_of(*PARIS, 300)
    teacher = ScriptedTeacher([deduction(*far), deduction(*far, tag="R")])
    out = tmp_path / "d.json"
    report = build_dialog(csv_path, images, out, teacher, namer=namer)
    assert report.counts["samples"] == 0
    assert report.counts["status_rejected"] == 1
    assert "still more than 25 km" in read_jsonl(trace_path(out))[0]["reason"]


def test_parse_rounds_reads_common_label_styles() -> None:
    text = ("**Q1:** Climate?\n**A1:** Wet.\nQ2. Roofs?\nA2) Slate.\n- Q3 - Signs?\n- A3: French.\n"
            "Q4: Where?\nA4: Here.")
    rounds = parse_rounds(text, 4)
    assert rounds.questions == ("Climate?", "Roofs?", "Signs?", "Where?")
    assert rounds.answers[:3] == ("Wet.", "Slate.", "French.")
    assert rounds.complete_answers()
    partial = parse_rounds("A1: x\nA2: y", 4)
    assert not partial.complete_answers() and not partial.complete_questions()


def test_interrupted_dialog_build_resumes_without_duplicates(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    truths = {"France": (48.8566, 2.3522), "Japan": (35.6762, 139.6503), "Australia": (-33.8688, 151.2093),
              "Germany": (52.52, 13.405)}

    def correct(messages: Sequence[ChatMessage]) -> str:
        # The teacher is right first time: no introspection, one call per image.
        text = messages[0].images[0].getpixel((0, 0))
        country = {(200, 30, 30): "France", (30, 200, 30): "Japan", (30, 30, 200): "Australia",
                   (200, 200, 30): "Germany"}[text]
        return deduction(*truths[country])

    out = tmp_path / "dialog.jsonl"
    with pytest.raises(KeyboardInterrupt):
        build_dialog(csv_path, images, out, ScriptedTeacher(correct, interrupt_after=3), namer=namer)
    again = ScriptedTeacher(correct)
    report = build_dialog(csv_path, images, out, again, namer=namer)
    assert len(again.calls) == 1
    assert report.counts["resumed"] == 3
    ids = [s["id"] for s in read_samples(out)]
    chains = ["dialog-b1", "dialog-p1", "dialog-s1", "dialog-t1"]
    # The resumed build writes every chain and, from the trace alone, each chain's hint-turn sample.
    assert sorted(ids) == sorted([*chains, *(f"{c}-hints" for c in chains)])
    trace_ids = [r["id"] for r in read_jsonl(trace_path(out))]
    assert sorted(trace_ids) == sorted(set(trace_ids))
