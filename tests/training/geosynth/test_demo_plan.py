"""The demo build's plan: stage 0c sits between stage 0b and GaGA's stages, and can be left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.geosynth.demo import parse_args, plan
from training.recipes._common import RecipeError


def test_stages_after_0c_start_from_its_model(tmp_path: Path) -> None:
    lines = plan(parse_args(["--out", str(tmp_path)]))
    (stage0c,) = [line for line in lines if line.startswith("stage 0c")]
    assert "data = hints,meta" in stage0c and "max_steps=400" in stage0c
    later = [line for line in lines if line.startswith(("geodesk-train pretrain", "geodesk-train finetune",
                                                        "geodesk-train export"))]
    assert len(later) == 3 and all(f"{tmp_path}/hints/model" in line for line in later)


def test_without_hint_steps_the_stages_start_from_stage_0b(tmp_path: Path) -> None:
    lines = plan(parse_args(["--out", str(tmp_path), "--hint-steps", "0"]))
    assert not any(line.startswith("stage 0c") for line in lines)
    assert any(f"model.path={tmp_path}/stage0/model" in line for line in lines if "pretrain" in line)


def test_unknown_hint_parts_are_refused_with_the_choices(tmp_path: Path) -> None:
    from training.geosynth.demo import _part_files

    with pytest.raises(RecipeError, match="meta, clue, dialog, hints"):
        _part_files(tmp_path, "hints,photos")
