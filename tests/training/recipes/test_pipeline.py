"""The command line: pretrain through geodesk-train, the smoke pipeline, and a two-process DDP run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.recipes.conftest import CONFIGS
from training.cli import main as train_main


def test_pretrain_command_prints_one_json_document(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train_main(
        [
            "pretrain",
            "--config",
            str(CONFIGS / "pretrain.yaml"),
            f"model.path={tiny_model_dir}",
            f"output_dir={tmp_path / 'run'}",
            f"data.files=[{tiny_data['meta']}]",
            "train.max_steps=2",
            "log.tensorboard=false",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["recipe"] == "pretrain_projector"


def test_commands_report_config_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = train_main(["finetune", "--config", str(CONFIGS / "pretrain.yaml"), "--json"])
    assert code == 1 and "is a 'pretrain_projector' config" in capsys.readouterr().err
    code = train_main(["pretrain", "--config", str(tmp_path / "missing.yaml")])
    assert code == 1 and "does not exist" in capsys.readouterr().err


def test_smoke_runs_the_whole_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "smoke"
    assert train_main(["smoke", str(out), "--per-country", "3", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    losses = document["stage_losses"]
    assert losses["pretrain_projector"]["steps"] > 0 and losses["finetune_qlora"]["quantization"] == "nf4"
    assert document["installed"]["ref"] == "tiny-geo@0.1.0"
    assert Path(document["installed"]["path"]).is_relative_to(out / "workspace")
    turn = document["locate"]
    assert turn["status"] == "done" and turn["model"]["name"] == "tiny-geo"
    assert (out / "workspace" / "cases" / turn["case"] / "case.db").is_file()


@pytest.mark.slow
def test_two_cpu_processes_train_with_ddp(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """torchrun, gloo backend: each rank takes every other batch; rank 0 alone writes and prints."""
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "training.cli",
            "pretrain",
            "--config",
            str(CONFIGS / "pretrain.yaml"),
            f"model.path={tiny_model_dir}",
            f"output_dir={out}",
            f"data.files=[{tiny_data['meta']}]",
            "train.batch_size=2",
            "train.epochs=1",
            "checkpoint.every=1",
            "log.tensorboard=false",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    documents = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(documents) == 1
    summary = json.loads(documents[0])
    assert summary["world_size"] == 2 and summary["steps"] == 2  # 8 samples / batch 2 / 2 ranks
    state = json.loads((out / "checkpoints" / "step-0000001" / "state.json").read_text(encoding="utf-8"))
    assert state["world_size"] == 2 and state["batch_in_epoch"] == 1
    assert (out / "projector.safetensors").is_file()
