"""Stage 1 and stage 2 on the tiny model: pinned losses, what each stage freezes, exact resume.

Torchtune style: the same seed, data and config give the same losses, pinned here. A change to the
tiny model, the prompt protocol, the tokenizer, the data writer or the training loop moves them; if the
change is intended, re-pin (run the test, copy the printed values) and say why in the commit.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.training.recipes.conftest import stage_config
from training.recipes import finetune_qlora, pretrain_projector
from training.recipes._common import RecipeError, latest_checkpoint, load_config

# CPU, fp32, batch 2, lr 1e-3, seed 0, 4 steps; tolerance for summation-order differences across CPUs.
PRETRAIN_LOSSES = [6.561811923980713, 6.565485000610352, 6.51757287979126, 6.602482795715332]
FINETUNE_NF4_LOSSES = [6.552114009857178, 6.500170707702637, 6.574827194213867, 6.536073684692383]
FINETUNE_NOQUANT_LOSSES = [6.552980899810791, 6.49734354019165, 6.57396125793457, 6.5360870361328125]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def stage1_run(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("stage1") / "run"
    config = stage_config("pretrain", tiny_model_dir, out, [tiny_data["meta"]], "train.max_steps=4")
    return pretrain_projector.run(config)


def _params(model_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    from geodesk.engine.checkpoint import flat_key

    return {flat_key(k): v for k, v in load_file(str(model_dir / "model.safetensors")).items()}


def test_pretrain_losses_are_pinned(stage1_run: dict[str, Any]) -> None:
    assert stage1_run["losses"] == pytest.approx(PRETRAIN_LOSSES, abs=TOLERANCE), stage1_run["losses"]
    assert stage1_run["steps"] == 4 and stage1_run["data"]["samples"] == 8


def test_pretrain_trains_only_the_projector(stage1_run: dict[str, Any], tiny_model_dir: Path) -> None:
    from safetensors.torch import load_file

    out = Path(stage1_run["output_dir"])
    projector = load_file(str(out / pretrain_projector.PROJECTOR_FILE))
    base = _params(tiny_model_dir)
    assert set(projector) == {k for k in base if k.startswith("model.multi_modal_projector.")}
    assert all(not v.equal(base[k]) for k, v in projector.items())  # every projector tensor moved
    rows = list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[0]["lr"]) == pytest.approx(1e-3)  # warmup of ceil(0.03 * 4) = 1 step
    # Step 4 used the lr after 3 steps: cosine at progress (3 - 1) / (4 - 1).
    assert float(rows[-1]["lr"]) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 2 / 3)))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["losses"] == stage1_run["losses"] and summary["data_manifest"][0]["sha256"]


def test_pretrain_freezes_vision_tower_and_llm(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    recipe = pretrain_projector.ProjectorPretrainRecipe(
        stage_config("pretrain", tiny_model_dir, tmp_path / "run", [tiny_data["meta"]])
    )
    recipe.setup()
    try:
        model = recipe.model
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable and all(n.startswith("model.multi_modal_projector.") for n in trainable)
        batch = next(iter(recipe.loader))
        recipe.set_train_modes()
        assert not model.model.vision_tower.training and not model.model.language_model.training
        model(**batch).loss.backward()
        for name, param in model.named_parameters():
            assert (param.grad is not None) == (name in trainable), name
    finally:
        recipe.cleanup()


def test_finetune_losses_are_pinned(
    stage1_run: dict[str, Any], tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    config = stage_config(
        "finetune",
        tiny_model_dir,
        tmp_path / "run",
        [tiny_data["meta"], tiny_data["clues"]],
        f"model.stage1_run={stage1_run['output_dir']}",
        "train.max_steps=4",
    )
    summary = finetune_qlora.run(config)
    assert summary["losses"] == pytest.approx(FINETUNE_NF4_LOSSES, abs=TOLERANCE), summary["losses"]
    adapter = Path(summary["outputs"]["adapter"])
    assert (adapter / "adapter_model.safetensors").is_file()
    adapter_config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter_config["r"] == 64 and adapter_config["lora_alpha"] == 16
    assert adapter_config["lora_dropout"] == 0.05 and not adapter_config.get("modules_to_save")


def test_finetune_trains_only_lora_on_an_nf4_llm(
    stage1_run: dict[str, Any], tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """NF4 where it must be, and no gradient reaches the projector, the vision tower or the base."""
    import bitsandbytes as bnb
    import torch
    from safetensors.torch import load_file

    recipe = finetune_qlora.QLoRAFinetuneRecipe(
        stage_config(
            "finetune",
            tiny_model_dir,
            tmp_path / "run",
            [tiny_data["meta"], tiny_data["clues"]],
            f"model.stage1_run={stage1_run['output_dir']}",
        )
    )
    recipe.setup()
    try:
        base = recipe.model.get_base_model()
        four_bit = {n for n, m in base.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
        assert len(four_bit) == 2 * 7  # 2 layers x q k v o gate up down
        assert all(".language_model." in n for n in four_bit)
        assert base.model.multi_modal_projector.linear_1.weight.dtype == torch.float32
        weight = base.model.language_model.layers[0].self_attn.q_proj.base_layer.weight
        assert weight.quant_state.nested  # double quantization
        stage1 = load_file(str(Path(stage1_run["output_dir"]) / pretrain_projector.PROJECTOR_FILE))
        for key, value in stage1.items():  # the stage-1 projector is in place
            module_key = key.removeprefix("model.multi_modal_projector.")
            assert torch.equal(base.model.multi_modal_projector.state_dict()[module_key], value)

        batch = next(iter(recipe.loader))
        recipe.set_train_modes()
        recipe.model(**batch).loss.backward()
        with_grad = {n for n, p in recipe.model.named_parameters() if p.grad is not None}
        assert with_grad == {n for n, p in recipe.model.named_parameters() if p.requires_grad}
        assert with_grad and all(".lora_A." in n or ".lora_B." in n for n in with_grad)
        assert not any("vision_tower" in n or "multi_modal_projector" in n for n in with_grad)
    finally:
        recipe.cleanup()


def test_resume_continues_exactly(
    stage1_run: dict[str, Any], tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """Stage 2 (LoRA dropout draws random numbers), 2 epochs, grad_accum 2: interrupted after step 5
    with the last checkpoint at step 3, resumed: the losses from step 4 on equal an uninterrupted run's."""
    files = [tiny_data["meta"], tiny_data["clues"]]
    extra = (
        f"model.stage1_run={stage1_run['output_dir']}",
        "model.quantization=none",
        "train.epochs=2",
        "train.grad_accum=2",
        "checkpoint.every=3",
    )
    straight = finetune_qlora.run(stage_config("finetune", tiny_model_dir, tmp_path / "a", files, *extra))
    assert straight["steps"] == 8  # 16 samples / batch 2 / accum 2 = 4 steps per epoch

    def interrupt(step: int, loss: float) -> None:
        if step == 5:
            raise KeyboardInterrupt

    config = stage_config("finetune", tiny_model_dir, tmp_path / "b", files, *extra)
    with pytest.raises(KeyboardInterrupt):
        finetune_qlora.run(config, on_step=interrupt)
    last = latest_checkpoint(tmp_path / "b")
    assert last is not None and last.name == "step-0000003"
    with pytest.raises(RecipeError, match="pass --resume"):
        finetune_qlora.run(config)
    resumed = finetune_qlora.run(config, resume=True)
    assert resumed["losses"] == straight["losses"]  # bit for bit on CPU
    rows = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open(encoding="utf-8")))
    assert [int(r["step"]) for r in rows] == list(range(1, 9))  # the interrupted steps 4-5 were replaced
    assert [float(r["loss"]) for r in rows] == pytest.approx(straight["losses"], abs=1e-12)

    changed = stage_config("finetune", tiny_model_dir, tmp_path / "b", files, *extra, "train.lr=5e-4")
    with pytest.raises(RecipeError, match="different config"):
        finetune_qlora.run(changed, resume=True)


def test_no_quant_losses_are_pinned(
    stage1_run: dict[str, Any], tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    config = stage_config(
        "finetune",
        tiny_model_dir,
        tmp_path / "run",
        [tiny_data["meta"], tiny_data["clues"]],
        f"model.stage1_run={stage1_run['output_dir']}",
        "train.max_steps=4",
        "model.quantization=none",
    )
    losses = finetune_qlora.run(config)["losses"]
    assert losses == pytest.approx(FINETUNE_NOQUANT_LOSSES, abs=TOLERANCE), losses


def test_configs_refuse_unknown_keys_and_read_overrides(tmp_path: Path) -> None:
    configs = Path(finetune_qlora.__file__).resolve().parents[1] / "configs"
    for stage, module in (("pretrain", pretrain_projector), ("finetune", finetune_qlora)):
        for size in ("tiny", "8b"):
            config = load_config(configs / size / f"{stage}.yaml", module.DEFAULTS)
            assert config["recipe"] == module.DEFAULTS["recipe"]
    eight = load_config(configs / "8b" / "finetune.yaml", finetune_qlora.DEFAULTS, ["train.lr=2e-4"])
    assert eight["train"]["lr"] == 2e-4 and eight["lora"]["target"] == finetune_qlora.LORA_TARGET
    assert eight["lora"]["r"] == 64 and eight["model"]["quantization"] == "nf4"
    with pytest.raises(RecipeError, match=r"unknown config key 'train\.learning_rate'"):
        load_config(
            configs / "tiny" / "pretrain.yaml", pretrain_projector.DEFAULTS, ["train.learning_rate=1"]
        )
    with pytest.raises(RecipeError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", pretrain_projector.DEFAULTS)


def test_stop_at_ends_on_the_whole_schedule_and_resumes_to_its_end(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """train.stop_at=2 of a 4-step run: the first two steps of the 4-step schedule (its pinned losses),
    outputs written, a checkpoint at the stop (before the every-3 one); resumed without stop_at, the
    run ends as the whole one."""
    files = [tiny_data["meta"]]
    stopped = pretrain_projector.run(stage_config("pretrain", tiny_model_dir, tmp_path / "run", files,
                                                  "train.max_steps=4", "checkpoint.every=3",
                                                  "train.stop_at=2"))
    assert stopped["steps"] == 2 and stopped["total_steps"] == 4 and stopped["stopped_at"] == 2
    assert stopped["losses"] == pytest.approx(PRETRAIN_LOSSES[:2], abs=TOLERANCE)
    assert (tmp_path / "run" / pretrain_projector.PROJECTOR_FILE).is_file()
    last = latest_checkpoint(tmp_path / "run")
    assert last is not None and last.name == "step-0000002"
    whole = pretrain_projector.run(stage_config("pretrain", tiny_model_dir, tmp_path / "run", files,
                                                "train.max_steps=4", "checkpoint.every=3"), resume=True)
    assert whole["steps"] == 4 and whole["stopped_at"] is None
    assert whole["losses"] == pytest.approx(PRETRAIN_LOSSES, abs=TOLERANCE)


@pytest.mark.parametrize("value", ["0", "-3", "true"])
def test_stop_at_below_one_is_refused(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path: Path, value: str
) -> None:
    config = stage_config("pretrain", tiny_model_dir, tmp_path / "run", [tiny_data["meta"]],
                          "train.max_steps=4", f"train.stop_at={value}")
    with pytest.raises(RecipeError, match=r"train\.stop_at must be a step number"):
        pretrain_projector.run(config)
