"""GRPO (training/recipes/grpo.py) on the tiny model on CPU: rewards computed and logged, the adapter
moves, resume continues exactly, the math of one step, the prompt data and the command line.

The tiny model's answers are noise; some of them still name a country in free text (the parser reads
those as valid answers), so the semantic reward varies within groups and the advantages are not all 0.
Sampling is seeded: on CPU in fp32 the same config gives the same completions, bit for bit, which is what
makes an exact resume test possible (the RNG state is part of each checkpoint).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from training.recipes import grpo
from training.recipes._common import RecipeError, latest_checkpoint, load_config

CONFIGS = Path(__file__).resolve().parents[3] / "training" / "configs"
REWARDS = ("format", "distance", "admin", "semantic")


def grpo_config(model_dir: Path, out_dir: Path, files: list[Path], *extra: str) -> dict[str, Any]:
    """The shipped tiny GRPO config with the test's paths and every value the results depend on."""
    file_list = ", ".join(str(f) for f in files)
    return load_config(CONFIGS / "tiny" / "grpo.yaml", grpo.DEFAULTS, [
        f"model.path={model_dir}", f"output_dir={out_dir}", f"data.files=[{file_list}]",
        "seed=0", "device=cpu", "model.dtype=fp32", "model.quantization=none",
        "lora.r=8", "lora.dropout=0.05",
        "train.batch_size=4", "train.max_steps=2", "train.lr=1e-3", "train.warmup_ratio=0.0",
        "grpo.group_size=4", "grpo.max_completion_length=32", "grpo.beta=0.04", "grpo.temperature=1.0",
        "rewards.similarity=string", "rewards.distance=geoagent",
        "rewards.weights={format: 0.2, distance: 1.0, admin: 1.0, semantic: 0.5, grounding: 0.0, "
        "consistency: 0.0}",
        "log.tensorboard=false", "checkpoint.every=1", *extra,
    ])


def rows_of(out_dir: Path) -> list[dict[str, str]]:
    with (out_dir / grpo.GRPO_METRICS).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def adapter(out_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return dict(load_file(str(out_dir / "adapter" / "adapter_model.safetensors")))


@pytest.fixture(scope="module")
def straight(tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("grpo") / "straight"
    return grpo.run(grpo_config(tiny_model_dir, out, [tiny_data["meta"], tiny_data["clues"]]))


def test_two_steps_compute_and_log_the_rewards(straight: dict[str, Any]) -> None:
    out = Path(straight["output_dir"])
    rows = rows_of(out)
    assert [int(r["step"]) for r in rows] == [1, 2] and straight["steps"] == 2
    for row in rows:
        for name in REWARDS:
            mean, std = float(row[f"{name}_mean"]), float(row[f"{name}_std"])
            assert 0.0 <= mean <= 1.0 and std >= 0.0 and math.isfinite(std)
        for key in ("loss", "kl", "lr", "grad_norm", "reward_mean", "reward_std", "completion_length"):
            assert math.isfinite(float(row[key]))
        assert 0 < float(row["completion_length"]) <= 32
    assert "grounding_mean" not in rows[0]  # weight 0: not computed, not logged
    assert any(float(r["reward_std"]) > 0 for r in rows), "no reward varied: the advantages were all 0"
    assert float(rows[0]["kl"]) == 0.0  # step 1 samples from the reference policy (LoRA B starts at 0)
    assert float(rows[1]["kl"]) > 0.0  # after one update the policy has moved away from it
    assert float(rows[0]["lr"]) == pytest.approx(1e-3)
    shared = list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))
    assert [float(r["loss"]) for r in shared] == [float(r["loss"]) for r in rows]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["outputs"]["rewards"]["similarity"] == "string"  # the choice is recorded
    assert len(summary["outputs"]["reward_history"]) == 2


# Step 1 of the straight run, pinned as stages 1 and 2 pin their losses: the sampled completions, the
# rewards they earn and the gradient of the GRPO objective. (Step 1's loss and KL are 0 by
# construction: mu = 1 makes the ratio 1, the advantages of a group sum to 0, and the policy is the
# reference until the first update.)
STEP1 = {"loss": 0.0, "kl": 0.0, "grad_norm": 0.06925885379314423, "reward_mean": 0.005681818181818182,
         "reward_std": 0.016481988759677494, "completion_length": 30.1875}


def test_step_1_values_are_pinned(straight: dict[str, Any]) -> None:
    first = rows_of(Path(straight["output_dir"]))[0]
    got = {key: float(first[key]) for key in STEP1}
    assert got == pytest.approx(STEP1, rel=1e-5, abs=1e-7), got


def test_only_the_lora_adapter_changes(straight: dict[str, Any]) -> None:
    tensors = adapter(Path(straight["output_dir"]))
    assert tensors and all("lora_" in name for name in tensors)
    lora_b = {n: t for n, t in tensors.items() if "lora_B" in n}
    assert lora_b and any(bool(t.abs().sum() > 0) for t in lora_b.values())  # B starts at 0 in peft
    assert all("vision_tower" not in n and "multi_modal_projector" not in n for n in tensors)


def test_resume_after_step_1_equals_the_uninterrupted_step_2(
    straight: dict[str, Any], tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    def interrupt(step: int, loss: float) -> None:
        if step == 2:
            raise KeyboardInterrupt

    config = grpo_config(tiny_model_dir, tmp_path / "b", [tiny_data["meta"], tiny_data["clues"]])
    with pytest.raises(KeyboardInterrupt):
        grpo.run(config, on_step=interrupt)
    last = latest_checkpoint(tmp_path / "b")
    assert last is not None and last.name == "step-0000001"
    with pytest.raises(RecipeError, match="pass --resume"):
        grpo.run(config)
    resumed = grpo.run(config, resume=True)
    assert resumed["losses"] == straight["losses"]  # bit for bit on CPU
    drop = ("elapsed_s",)
    expected = [{k: v for k, v in r.items() if k not in drop} for r in rows_of(Path(straight["output_dir"]))]
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows_of(tmp_path / "b")] == expected
    a, b = adapter(Path(straight["output_dir"])), adapter(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


# ------------------------------------------------------------------------------------- step math


def test_group_advantages() -> None:
    import torch

    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    adv = grpo.group_advantages(rewards)
    std = math.sqrt(1 / 3)  # unbiased std of (1, 0, 0, 1)
    a = 0.5 / (std + 1e-4)
    assert adv[0].tolist() == pytest.approx([a, -a, -a, a])
    assert adv[1].tolist() == [0.0] * 4  # equal rewards: no signal
    assert grpo.group_advantages(rewards, scale=False)[0].tolist() == [0.5, -0.5, -0.5, 0.5]


def test_completion_mask_stops_after_the_first_eos() -> None:
    import torch

    ids = torch.tensor([[5, 6, 9, 7, 9], [5, 6, 7, 8, 4], [9, 1, 1, 1, 1]])
    mask = grpo.completion_mask(ids, [9])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert grpo.completion_mask(ids, [4, 9]).tolist()[1] == [1, 1, 1, 1, 1]


# ------------------------------------------------------------------------------------------- data


def test_prompt_data_truth_and_annotations(tiny_model_dir: Path, tiny_data: dict[str, Path]) -> None:
    from transformers import AutoProcessor

    items = json.loads(tiny_data["clues"].read_text(encoding="utf-8"))[:3]
    items[0]["truth"] = {"lat": 1.5, "lon": 2.5, "country": "Kenya", "region": None, "city": "Nairobi"}
    items[0]["clue_entities"] = ["white circle", "blue scene"]
    items[1]["conversations"][-1]["value"] = "I do not know."  # no truth from the answer: dropped
    items[2]["image"] = "images/missing.png"
    path = tiny_data["clues"].parent / "grpo-test.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    data = grpo.GRPOPromptDataset([path], processor, max_length=1024, system_prompt="auto")
    assert len(data) == 1 and data.report.dropped == 2
    prompt = data.samples[0]
    assert prompt.truth.country == "Kenya" and prompt.truth.lat == 1.5 and prompt.truth.region is None
    assert prompt.truth.clue_entities == ("white circle", "blue scene") and prompt.truth.mode == "clues"
    assert [role for role, _ in prompt.messages] == ["system", "user"]  # the answer is what gets generated
    encoded = data.encode(prompt)
    text = processor.tokenizer.decode(encoded["input_ids"][0])
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert encoded["pixel_values"].shape[-2:] == (56, 56)
    # Without a "truth", the last answer is the truth.
    meta = grpo.GRPOPromptDataset([tiny_data["meta"]], processor, max_length=1024, system_prompt="auto")
    assert {s.truth.country for s in meta.samples} == {"France", "Japan", "Brazil", "Kenya"}
    assert all(s.truth.mode == "direct" and s.truth.lat is not None for s in meta.samples)


def test_config_errors_are_sentences(tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
                                     ) -> None:
    files = [tiny_data["meta"]]
    with pytest.raises(RecipeError, match="group_size must be at least 2"):
        grpo.run(grpo_config(tiny_model_dir, tmp_path / "g", files, "grpo.group_size=1"))
    with pytest.raises(RecipeError, match=r"unknown config key 'rewards\.weights\.style'"):
        grpo_config(tiny_model_dir, tmp_path / "w", files, "rewards.weights.style=1")
    with pytest.raises(RecipeError, match="judge"):
        grpo.run(grpo_config(tiny_model_dir, tmp_path / "j", files, "rewards.weights.consistency=1"))


# ------------------------------------------------------------------------------------------- CLI


def test_cli_runs_grpo_and_prints_one_json_document(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.cli import main

    args = ["grpo", "--config", str(CONFIGS / "tiny" / "grpo.yaml"), "--json", f"model.path={tiny_model_dir}",
            f"output_dir={tmp_path / 'cli'}", f"data.files=[{tiny_data['meta']}]", "device=cpu",
            "model.quantization=none", "train.max_steps=1", "grpo.max_completion_length=8",
            "checkpoint.every=0"]
    assert main(args) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["recipe"] == "grpo" and document["steps"] == 1
    assert (tmp_path / "cli" / "adapter" / "adapter_model.safetensors").is_file()
    bad = ["grpo", "--config", str(CONFIGS / "tiny" / "finetune.yaml"), f"output_dir={tmp_path / 'x'}"]
    assert main(bad) != 0
    assert "unknown config key 'model.stage1_run'" in capsys.readouterr().err  # a stage-2 config


def test_qlora_nf4_layout_and_one_step(tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
                                       ) -> None:
    """NF4 + double quantization on the LLM only (skip modules: vision tower, projector, lm_head); one
    step runs, including the reference pass through the quantized base with the adapter disabled."""
    config = grpo_config(tiny_model_dir, tmp_path / "nf4", [tiny_data["meta"]], "model.quantization=nf4",
                         "train.max_steps=1", "train.batch_size=2", "grpo.max_completion_length=8",
                         "checkpoint.every=0")
    recipe = grpo.GRPORecipe(config)
    recipe.setup()
    try:
        base = recipe.model.get_base_model()
        assert type(base.model.language_model.layers[0].self_attn.q_proj.base_layer).__name__ == "Linear4bit"
        quant = base.config.quantization_config
        assert quant.bnb_4bit_quant_type == "nf4" and quant.bnb_4bit_use_double_quant
        for module in (base.lm_head, base.model.multi_modal_projector.linear_1,
                       base.model.vision_tower.encoder.layers[0].self_attn.q_proj):
            assert type(module).__name__ == "Linear"
        recipe.train()
        assert recipe.step == 1 and math.isfinite(recipe.losses[0])
    finally:
        recipe.cleanup()


@pytest.mark.slow
def test_two_cpu_processes_run_grpo_with_ddp(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """torchrun, gloo backend: each rank samples its own prompts; rank 0 alone logs and saves."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "training.cli", "grpo",
         "--config", str(CONFIGS / "tiny" / "grpo.yaml"), f"model.path={tiny_model_dir}", f"output_dir={out}",
         f"data.files=[{tiny_data['meta']}]", "device=cpu", "model.dtype=fp32", "model.quantization=none",
         "lora.r=4", "train.batch_size=1", "train.max_steps=1", "grpo.group_size=2",
         "grpo.max_completion_length=8", "rewards.similarity=string", "log.tensorboard=false",
         "checkpoint.every=1", "--json"],
        capture_output=True, text=True, timeout=1200, env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    documents = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(documents) == 1
    summary = json.loads(documents[0])
    assert summary["world_size"] == 2 and summary["steps"] == 1
    assert len(rows_of(out)) == 1 and (out / "adapter" / "adapter_model.safetensors").is_file()
