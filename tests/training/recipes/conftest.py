"""Fixtures for the recipe tests: tiny synthetic data and configs pointing at the tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CONFIGS = Path(__file__).resolve().parents[3] / "training" / "configs" / "tiny"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """8 direct-mode (meta.json) and 8 clue-mode (clues.json) samples over 4 countries."""
    from training.recipes.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("tiny-data"), per_country=2, seed=0)


def stage_config(
    stage: str, model_dir: Path, out_dir: Path, files: list[Path], *extra: str
) -> dict[str, Any]:
    """The tiny config of ``stage`` ("pretrain" / "finetune") with the test's paths and small shapes.

    Every value the pinned losses depend on is set here, so editing the shipped tiny YAML does not
    silently move the pins.
    """
    from training.recipes import finetune_qlora, pretrain_projector
    from training.recipes._common import load_config

    module = pretrain_projector if stage == "pretrain" else finetune_qlora
    file_list = ", ".join(str(f) for f in files)
    return load_config(
        CONFIGS / f"{stage}.yaml",
        module.DEFAULTS,
        [
            f"model.path={model_dir}",
            f"output_dir={out_dir}",
            f"data.files=[{file_list}]",
            "seed=0",
            "device=cpu",
            "model.dtype=fp32",
            "train.batch_size=2",
            "train.grad_accum=1",
            "train.epochs=1",
            "train.lr=1e-3",
            "train.warmup_ratio=0.03",
            "train.group_by_length=true",
            "log.tensorboard=false",
            "checkpoint.every=0",
            *extra,
        ],
    )
