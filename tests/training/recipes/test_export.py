"""Export: the merged package behaves as base + projector + adapter, and installs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.training.recipes.conftest import CONFIGS, stage_config
from training.cli import main as train_main
from training.recipes import export, finetune_qlora, pretrain_projector
from training.recipes._common import RecipeError, load_config


@pytest.fixture(scope="module")
def stages(
    tiny_model_dir: Path, tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-stages")
    pretrain_projector.run(
        stage_config("pretrain", tiny_model_dir, root / "s1", [tiny_data["meta"]], "train.max_steps=2")
    )
    # lr 1e-2: LoRA B starts at zero; a large step makes the merged delta big enough to matter below.
    finetune_qlora.run(
        stage_config(
            "finetune",
            tiny_model_dir,
            root / "s2",
            [tiny_data["meta"], tiny_data["clues"]],
            f"model.stage1_run={root / 's1'}",
            "train.max_steps=2",
            "train.lr=1e-2",
            "train.warmup_ratio=0",
        )
    )
    return {"s1": root / "s1", "s2": root / "s2"}


def _export_config(tiny_model_dir: Path, stages: dict[str, Path], out: Path, *extra: str) -> dict[str, Any]:
    return load_config(
        CONFIGS / "export.yaml",
        export.DEFAULTS,
        [
            f"base_model={tiny_model_dir}",
            f"stage1_run={stages['s1']}",
            f"stage2_run={stages['s2']}",
            f"output_dir={out}",
            *extra,
        ],
    )


def _inputs(tiny_data: dict[str, Path], processor: Any) -> dict[str, Any]:
    from training.datasets import Collator, LlavaConversationDataset

    ds = LlavaConversationDataset([tiny_data["clues"]], processor)
    batch = Collator(int(processor.tokenizer.pad_token_id))([ds[0], ds[3]])
    batch.pop("labels")
    return batch


def test_merged_package_logits_equal_the_adapter_model(
    tiny_model_dir: Path, tiny_data: dict[str, Path], stages: dict[str, Path], tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel

    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.engine.checkpoint import KeyNaming, checkpoint_naming
    from training.recipes.finetune_qlora import load_projector
    from training.recipes.pretrain_projector import load_llava

    result = export.export_package(_export_config(tiny_model_dir, stages, tmp_path / "pkg"))
    package = Path(result["package"])
    assert checkpoint_naming(package) is KeyNaming.LEGACY

    reference = load_llava(str(tiny_model_dir), dtype=torch.float32, device="cpu")
    load_projector(reference, stages["s1"])
    reference = PeftModel.from_pretrained(reference, str(stages["s2"] / "adapter")).eval()
    backend = HFBackend(package, HFOptions(device="cpu", dtype="fp32"))
    batch = _inputs(tiny_data, backend.processor)
    with torch.no_grad():
        expected = reference(**batch).logits  # [2, L, vocab]
        got = backend.model(**batch).logits
        with reference.disable_adapter():
            without = reference(**batch).logits
    assert (expected - without).abs().max() > 1e-3  # the adapter changes the logits ...
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)  # ... and the merge keeps that change


def test_package_manifest_generation_config_and_install(
    tiny_model_dir: Path,
    stages: dict[str, Path],
    tmp_path: Path,
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from geodesk.engine import prompts
    from geodesk.engine.package import read_manifest, verify_package
    from geodesk.engine.registry import ModelRegistry

    out = tmp_path / "pkg"
    code = train_main(
        [
            "export",
            "--config",
            str(CONFIGS / "export.yaml"),
            f"base_model={tiny_model_dir}",
            f"stage1_run={stages['s1']}",
            f"stage2_run={stages['s2']}",
            f"output_dir={out}",
            "dtype=bf16",
            "--install",
            "--name",
            "geo-test",
            "--version",
            "1.2.0",
            "--json",
        ]
    )
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["installed"]["ref"] == "geo-test@1.2.0"
    assert ModelRegistry(workspace).resolve("geo-test").identity_sha256 == document["identity_sha256"]

    manifest = read_manifest(out)
    assert verify_package(out).ok and manifest.protocol_version == prompts.PROTOCOL_VERSION
    assert not manifest.untrained
    stages_prov = manifest.provenance["stages"]
    s2 = stages_prov["finetune_qlora"]
    assert s2["config"]["lora"]["r"] == 64 and len(s2["losses"]) == 2
    assert [m["sha256"] for m in s2["data_manifest"]] and stages_prov["pretrain_projector"]["final_loss"] > 0
    assert manifest.provenance["export"]["dtype"] == "bf16" and manifest.provenance["code"]["geodesk"]
    assert document["stage_losses"]["finetune_qlora"] == s2["final_loss"]
    generation = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    tokenizer = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    assert set(generation["eos_token_id"]) == {ids["<|eot_id|>"], ids["<|end_of_text|>"]}
    assert (out / "chat_template.jinja").is_file()
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["text_config"]["dtype"] == "bfloat16" or config.get("dtype") == "bfloat16"


def test_export_refuses_missing_stages_and_used_folders(
    tiny_model_dir: Path, stages: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(RecipeError, match="holds no LoRA adapter"):
        export.export_package(
            _export_config(tiny_model_dir, {"s1": stages["s1"], "s2": tmp_path}, tmp_path / "a")
        )
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(RecipeError, match="not empty"):
        export.export_package(_export_config(tiny_model_dir, stages, tmp_path / "used"))


def test_a_stage_1_only_model_exports_with_the_trained_projector_and_the_base_language_model(
    tiny_model_dir: Path, stages: dict[str, Path], tmp_path: Path
) -> None:
    """Table VI's "GaGA-pretraining" row: stage 1's projector, no adapter."""
    import torch
    from safetensors.torch import load_file

    from training.recipes.pretrain_projector import PROJECTOR_FILE, PROJECTOR_PREFIX, load_llava

    config = _export_config(tiny_model_dir, stages, tmp_path / "s1-only", "stage2_run=null", "dtype=fp32")
    result = export.export_package(config)
    assert result["stage_losses"]["finetune_qlora"] is None
    exported = load_llava(result["package"], dtype=torch.float32, device="cpu")
    base = load_llava(str(tiny_model_dir), dtype=torch.float32, device="cpu")
    trained = load_file(str(stages["s1"] / PROJECTOR_FILE))
    params = dict(exported.named_parameters())
    for key, value in trained.items():
        assert torch.equal(params[key], value.to(torch.float32)), key
    base_params = dict(base.named_parameters())
    for name, value in params.items():
        if PROJECTOR_PREFIX not in name:
            assert torch.equal(value, base_params[name]), name
    with pytest.raises(RecipeError, match="stage1_run alone"):
        export.export_package(_export_config(tiny_model_dir, stages, tmp_path / "x", "stage2_run=null",
                                             "stage1_run=null"))


def test_stage_1_can_start_from_a_given_projector(
    tiny_model_dir: Path, tiny_data: dict[str, Path], stages: dict[str, Path], tmp_path: Path
) -> None:
    """GaGA starts its projector from ShareGPT4V's: model.projector_init names the file to start from."""
    import torch
    from safetensors.torch import load_file

    from training.recipes.pretrain_projector import PROJECTOR_FILE, ProjectorPretrainRecipe

    given = stages["s1"] / PROJECTOR_FILE
    recipe = ProjectorPretrainRecipe(stage_config("pretrain", tiny_model_dir, tmp_path / "from-given",
                                                  [tiny_data["meta"]], f"model.projector_init={given}"))
    recipe.setup()
    try:
        params = dict(recipe.model.named_parameters())
        for key, value in load_file(str(given)).items():
            assert torch.equal(params[key], value.to(torch.float32)), key
    finally:
        recipe.cleanup()
