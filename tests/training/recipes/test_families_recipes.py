"""Stage 2 (LoRA / QLoRA) on a tiny Qwen2.5-VL: pinned losses, only LoRA on the language model trains,
the vision side stays frozen, and ``export`` writes a package the registry installs and sessions run.

Re-pin as in test_recipes.py when the tiny model, the data writer or the loop changes on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.training.recipes.conftest import stage_config
from training.recipes import finetune_qlora

# CPU, fp32, batch 2, lr 1e-3, seed 0, 4 steps (the LLaVA pins' settings).
QWEN_NOQUANT_LOSSES = [6.609442710876465, 6.568540096282959, 6.544559478759766, 6.5539774894714355]
QWEN_NF4_LOSSES = [6.607430934906006, 6.566725730895996, 6.543612003326416, 6.55425500869751]
TOLERANCE = 1e-5


def _config(model: Path, out: Path, data: dict[str, Path], *extra: str) -> dict[str, Any]:
    return stage_config(
        "finetune", model, out, [data["meta"], data["clues"]], "model.stage1_run=null", "train.max_steps=4",
        *extra,
    )


def test_qwen_stage2_losses_are_pinned_and_only_lm_lora_trains(
    tiny_family_dirs: dict[str, Path], tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    model = tiny_family_dirs["qwen2_5_vl"]
    recipe = finetune_qlora.QLoRAFinetuneRecipe(_config(model, tmp_path / "probe", tiny_data,
                                                        "model.quantization=none"))
    recipe.setup()
    try:
        trainable = [n for n, p in recipe.model.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in n and ".language_model." in n for n in trainable)
        batch = next(iter(recipe.loader))
        assert {"image_grid_thw", "mm_token_type_ids", "pixel_values"} <= set(batch)
        recipe.set_train_modes()
        visual = recipe.model.get_base_model().model.visual
        assert not visual.training
    finally:
        recipe.cleanup()
    summary = finetune_qlora.run(_config(model, tmp_path / "run", tiny_data, "model.quantization=none"))
    print("QWEN_NOQUANT_LOSSES", summary["losses"])
    assert summary["losses"] == pytest.approx(QWEN_NOQUANT_LOSSES, abs=TOLERANCE), summary["losses"]


def test_qwen_qlora_nf4_losses_are_pinned(
    tiny_family_dirs: dict[str, Path], tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("bitsandbytes")
    summary = finetune_qlora.run(_config(tiny_family_dirs["qwen2_5_vl"], tmp_path / "run", tiny_data))
    print("QWEN_NF4_LOSSES", summary["losses"])
    assert summary["losses"] == pytest.approx(QWEN_NF4_LOSSES, abs=TOLERANCE), summary["losses"]


def test_qwen_export_is_an_installable_package_sessions_run_on(
    tiny_family_dirs: dict[str, Path], tiny_data: dict[str, Path], tmp_path: Path, workspace: Path
) -> None:
    from PIL import Image

    from geodesk.engine.backends.base import ChatMessage, GenerationSettings
    from geodesk.engine.backends.hf import HFBackend
    from geodesk.engine.registry import ModelRegistry
    from tests.training.recipes.conftest import CONFIGS
    from training.recipes import export
    from training.recipes._common import load_config

    base = tiny_family_dirs["qwen2_5_vl"]
    s2 = finetune_qlora.run(
        _config(base, tmp_path / "s2", tiny_data, "model.quantization=none", "train.max_steps=2")
    )
    out = tmp_path / "pkg"
    result = export.export_package(load_config(CONFIGS / "export.yaml", export.DEFAULTS, [
        f"base_model={base}", "stage1_run=null", f"stage2_run={s2['output_dir']}", f"output_dir={out}",
        "name=geo-qwen", "version=0.1.0", "dtype=fp32",
    ]))
    installed = ModelRegistry(workspace).install(out)
    assert (installed.family, installed.profile) == ("qwen2_5_vl", "gaga")
    assert installed.identity_sha256 == result["identity_sha256"]
    backend = HFBackend(installed.path)
    reply = backend.generate(
        [ChatMessage("user", "<image>\nWhere?", (Image.new("RGB", (56, 56), (5, 90, 30)),))],
        GenerationSettings(max_new_tokens=4),
    )
    assert reply.answer_tokens == 4 and backend.family.name == "qwen2_5_vl"


def test_the_qwen_configs_load_with_lora_on_the_language_model_and_no_stage1() -> None:
    from training.recipes._common import load_config

    configs = Path(finetune_qlora.__file__).resolve().parents[1] / "configs"
    for path in (configs / "tiny" / "finetune_qwen2_5_vl.yaml", configs / "qwen2_5_vl-7b" / "finetune.yaml"):
        config = load_config(path, finetune_qlora.DEFAULTS)
        assert config["recipe"] == "finetune_qlora" and config["model"]["stage1_run"] is None
        assert config["lora"]["target"] == finetune_qlora.LORA_TARGET
        assert config["model"]["quantization"] == "nf4"
    from training.recipes import grpo

    config = load_config(configs / "qwen2_5_vl-7b" / "grpo.yaml", grpo.DEFAULTS)
    assert config["recipe"] == "grpo" and "qwen2_5_vl-7b" in config["model"]["path"]


def test_grpo_runs_on_the_tiny_qwen_and_moves_only_the_lm_adapter(
    tiny_family_dirs: dict[str, Path], tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    import math

    from safetensors.torch import load_file

    from tests.training.recipes.test_grpo import grpo_config
    from training.recipes import grpo

    out = tmp_path / "grpo"
    summary = grpo.run(grpo_config(
        tiny_family_dirs["qwen2_5_vl"], out, [tiny_data["meta"]], "train.max_steps=1",
        "grpo.max_completion_length=8", "train.batch_size=2",
    ))
    assert summary["steps"] == 1 and all(math.isfinite(x) for x in summary["losses"])
    tensors = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert tensors and all(".language_model." in k and "lora_" in k for k in tensors)
    assert any(float(v.abs().sum()) > 0 for k, v in tensors.items() if "lora_B" in k)  # it trained
