"""The real tiny model as teacher through the hf backend: the builders run end to end on it.

Its answers are noise, so most images end up rejected; what is checked is that every image is asked,
traced with its path and status, and that the outputs exist and pass the validator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from geodesk.engine.backends.base import GenerationSettings
from geodesk.engine.backends.hf import HFBackend
from training.data.clues import build_clues
from training.data.common import read_jsonl, trace_path
from training.data.dialog import build_dialog
from training.data.metadata import PlaceNamer
from training.data.validate import load_budget, validate_samples


@pytest.fixture(scope="module")
def teacher(tiny_model_dir: Path) -> Iterator[HFBackend]:
    backend = HFBackend(tiny_model_dir)
    yield backend
    backend.close()


def test_dialog_and_clues_with_the_tiny_model(
    teacher: HFBackend, table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer, tiny_model_dir: Path
) -> None:
    csv_path, images = table
    short = GenerationSettings(max_new_tokens=24, seed=0)
    dialog_out = tmp_path / "dialog.json"
    report = build_dialog(csv_path, images, dialog_out, teacher, settings=short, namer=namer)
    assert dialog_out.is_file()
    records = read_jsonl(trace_path(dialog_out))
    assert len(records) == 4
    # Noise has no coordinates near the truth: every image goes down the introspection path.
    assert {r["path"] for r in records} == {"introspection"}
    assert all(r["status"] in ("done", "rejected") for r in records)
    done = sum(r["status"] == "done" for r in records)
    assert report.counts["samples"] == done + report.counts.get("hint_samples", 0)

    clue_out = tmp_path / "clues.json"
    build_clues(csv_path, images, clue_out, teacher, settings=short, namer=namer)
    assert len(read_jsonl(trace_path(clue_out))) == 4
    budget = load_budget(tiny_model_dir)
    for out in (dialog_out, clue_out):
        check = validate_samples(out, images, budget=budget)
        assert check.counts["failed_samples"] == 0, check.problems
