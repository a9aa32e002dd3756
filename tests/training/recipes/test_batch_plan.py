"""The paper's total batch of 16 on any number of processes: batch_plan and the configs' launch lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from training.recipes import finetune_qlora, pretrain_projector
from training.recipes._common import RecipeError, batch_plan, load_config

CONFIGS = Path(pretrain_projector.__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("world", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 16, 32])
def test_every_world_size_that_divides_16_gets_a_total_of_16(world: int, batch_size: int) -> None:
    micro, accum = batch_plan(16, batch_size, world)
    assert micro * accum * world == 16
    assert 1 <= micro <= batch_size


def test_the_micro_batch_is_the_largest_that_fits() -> None:
    assert batch_plan(16, 4, 1) == (4, 4)
    assert batch_plan(16, 4, 4) == (4, 1)
    assert batch_plan(16, 4, 8) == (2, 1)
    assert batch_plan(16, 16, 8) == (2, 1)
    assert batch_plan(16, 3, 1) == (2, 8)  # 3 does not divide 16: the next size down that does


def test_a_world_size_that_cannot_split_the_batch_is_refused() -> None:
    with pytest.raises(RecipeError, match="cannot be split evenly over 3 processes"):
        batch_plan(16, 4, 3)
    with pytest.raises(RecipeError, match="at least 1"):
        batch_plan(16, 0, 1)


def _launch_lines(config: Path) -> list[tuple[int, list[str]]]:
    """(processes, overrides) of every launch command in a config's header comment."""
    header = []
    for line in config.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    text = " ".join(" ".join(header).replace("\\", " ").split())
    launches = []
    for match in re.finditer(r"(?:torchrun [^:]*?--nproc-per-node (\d+) -m training\.cli |geodesk-train )"
                             r"(pretrain|finetune) --config (\S+)((?: [a-z_.]+=\S+)*)", text):
        launches.append((int(match.group(1) or 1), shlex.split(match.group(4))))
    return launches


@pytest.mark.parametrize(("stage", "module"),
                         [("pretrain", pretrain_projector), ("finetune", finetune_qlora)])
def test_the_8b_launch_lines_train_with_a_total_batch_of_16(stage: str, module: object) -> None:
    config_file = CONFIGS / "8b" / f"{stage}.yaml"
    launches = _launch_lines(config_file)
    assert {n for n, _ in launches} >= {1} and any(n > 1 for n, _ in launches), launches
    for processes, overrides in launches:
        config = load_config(config_file, module.DEFAULTS, overrides)  # type: ignore[attr-defined]
        train = config["train"]
        micro, accum = batch_plan(int(train["total_batch"]), int(train["batch_size"]), processes)
        assert micro * accum * processes == 16, (processes, overrides)


def test_stage_1_defaults_are_the_papers() -> None:
    train = pretrain_projector.DEFAULTS["train"]
    assert train["lr"] == 2e-4 and train["weight_decay"] == 0.0 and train["warmup_ratio"] == 0.03
    assert load_config(CONFIGS / "8b" / "pretrain.yaml", pretrain_projector.DEFAULTS)["train"]["lr"] == 2e-4
    assert finetune_qlora.DEFAULTS["train"]["lr"] == 2e-5
