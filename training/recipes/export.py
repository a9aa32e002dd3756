"""Export: base + stage-1 projector + stage-2 LoRA adapter -> one geodesk model package.

Without ``stage2_run`` (and with ``stage1_run``) the package is the stage-1-only model: the base with
the pretrained projector and no adapter, GaGA's "GaGA-pretraining" row of Table VI.

1. Load the base model UNQUANTIZED in ``dtype`` (bf16 for the 8B model). The adapter was trained on an
   NF4 copy of these weights, but merging into NF4 would need a re-quantization of ``W + BA`` (lossy, and
   the result could not be served in bf16); QLoRA's practice is to merge into the original
   high-precision base, which is what ``merge_and_unload`` on this load does.
2. Put the stage-1 projector in (GaGA keeps it frozen in stage 2, so stage 1's file is the final one).
3. ``PeftModel.from_pretrained(base, adapter).merge_and_unload()``: ``W <- W + (alpha / r) B A`` for every
   LoRA target, then plain ``nn.Linear`` layers again.
4. Save in HF llava format, rename the weights to the legacy llava-hf key names
   (:func:`geodesk.engine.checkpoint.export_legacy`, what lmdeploy loads), keep the base's tokenizer,
   processor and chat template, and a generation config that stops on both Llama-3 end ids
   (``<|eot_id|>``, ``<|end_of_text|>``).
5. Write ``geodesk-model.json`` (:func:`geodesk.engine.package.write_manifest`) with provenance: the base
   model's identity, each stage's config, data manifest hashes and losses, the export settings, and the
   geodesk version + git commit. Everything is built in a temporary sibling folder and renamed into
   place at the end.

    geodesk-train export --config training/configs/tiny/export.yaml [--install --name N --version V]
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from training.recipes._common import SUMMARY, RecipeError, code_version
from training.recipes.finetune_qlora import ADAPTER_DIR, load_family_model, load_projector

DEFAULTS: dict[str, Any] = {
    "recipe": "export",
    "base_model": None,
    "stage1_run": None,  # null: keep the base model's projector
    "stage2_run": None,
    "output_dir": None,
    "dtype": "bf16",
    "device": "cpu",
    "name": None,
    "version": None,
    "protocol_version": None,  # null: the prompt protocol this geodesk speaks (prompts.PROTOCOL_VERSION)
    "max_images_per_message": None,  # null: the base package's value (1 without a manifest)
}
# Summary fields of a stage that go into the package's provenance.
_STAGE_FIELDS = (
    "recipe",
    "steps",
    "first_loss",
    "final_loss",
    "losses",
    "config",
    "config_sha256",
    "data_manifest",
    "data",
    "code",
    "world_size",
)


def _stage_summary(run_dir: str | None, what: str) -> dict[str, Any] | None:
    if not run_dir:
        return None
    path = Path(run_dir).expanduser() / SUMMARY
    if not path.is_file():
        raise RecipeError(f"{path} does not exist: {what} has not finished in {run_dir}")
    summary = json.loads(path.read_text(encoding="utf-8"))
    return {k: summary.get(k) for k in _STAGE_FIELDS}


def _end_ids(tokenizer: Any, generation_config: Any) -> list[int]:
    """The generation config's eos ids plus Llama-3's two end ids when the tokenizer has them."""
    eos = generation_config.eos_token_id
    ids = [int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None]
    for token in ("<|eot_id|>", "<|end_of_text|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid not in ids:
            ids.append(tid)
    if not ids:
        raise RecipeError(
            "the base model names no end-of-turn token; set eos_token_id in its generation config"
        )
    return ids


def export_package(config: dict[str, Any]) -> dict[str, Any]:
    """Merge and write the package; returns a summary (path, identity, provenance) for the CLI."""
    import torch
    from peft import PeftModel

    from geodesk.engine import prompts
    from geodesk.engine.backends.hf import load_processor
    from geodesk.engine.checkpoint import export_legacy
    from geodesk.engine.families import LLAVA, detect_family
    from geodesk.engine.families.processors import name_public_processor
    from geodesk.engine.package import MANIFEST_NAME, package_identity, read_manifest, write_manifest
    from geodesk.engine.tiny import normalise_json_files

    cfg = copy.deepcopy(config)
    for key in ("base_model", "output_dir", "name", "version"):
        if not cfg.get(key):
            raise RecipeError(f"export needs {key} in its config (or as an override {key}=...)")
    if not cfg.get("stage1_run") and not cfg.get("stage2_run"):
        raise RecipeError("export needs stage2_run (a full model), or stage1_run alone (the stage-1-only "
                          "model of the Table VI ablation)")
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if cfg["dtype"] not in dtypes:
        raise RecipeError(f"dtype must be bf16, fp16 or fp32, not {cfg['dtype']!r}")
    base = Path(cfg["base_model"]).expanduser().resolve()
    adapter = Path(cfg["stage2_run"]).expanduser() / ADAPTER_DIR if cfg.get("stage2_run") else None
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise RecipeError(f"{adapter} holds no LoRA adapter: run stage 2 (geodesk-train finetune) first")
    out = Path(cfg["output_dir"]).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RecipeError(f"{out} already exists and is not empty; choose a new output_dir")
    stage1 = _stage_summary(cfg["stage1_run"], "stage 1 (geodesk-train pretrain)")
    stage2 = _stage_summary(cfg["stage2_run"], "stage 2 (geodesk-train finetune)")
    base_manifest = read_manifest(base) if (base / MANIFEST_NAME).is_file() else None

    # 1-3: unquantized base, stage-1 projector, merged adapter.
    family = detect_family(base)
    model = load_family_model(str(base), dtype=dtypes[cfg["dtype"]], device=torch.device(cfg["device"]))
    if cfg["stage1_run"]:
        load_projector(model, cfg["stage1_run"])
    merged = (model if adapter is None
              else PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload())
    processor = load_processor(base, family)
    merged.generation_config.eos_token_id = _end_ids(processor.tokenizer, merged.generation_config)

    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        # 4: save (transformers-5 naming), then rename the weights to the legacy llava-hf names.
        saved = scratch / "saved"
        merged.save_pretrained(str(saved), safe_serialization=True)
        processor.save_pretrained(str(saved))
        if family is LLAVA:
            normalise_json_files(saved)  # sorted keys; tokenizer_class readable by older transformers
            package = export_legacy(saved, scratch / "package")
        else:  # transformers-native families keep the names save_pretrained writes
            name_public_processor(saved, type(processor).__mro__[1].__name__)
            normalise_json_files(saved)
            package = saved
        # 5: manifest with provenance.
        provenance = {
            "kind": "geodesk-train",
            "base_model": {
                "path": str(base),
                "identity_sha256": package_identity(base).sha256,
                "name": base_manifest.name if base_manifest else base.name,
                "version": base_manifest.version if base_manifest else None,
            },
            "stages": {"pretrain_projector": stage1, "finetune_qlora": stage2},
            "export": {
                "dtype": cfg["dtype"],
                "merge": ("none: stage-1-only model" if adapter is None
                          else "peft merge_and_unload on an unquantized load"),
                "key_naming": "legacy" if family is LLAVA else "transformers",
                "config": cfg,
            },
            "code": code_version(),
        }
        images = cfg["max_images_per_message"] or (
            base_manifest.max_images_per_message if base_manifest else 1
        )
        manifest = write_manifest(
            package,
            name=str(cfg["name"]),
            version=str(cfg["version"]),
            protocol_version=str(cfg["protocol_version"] or prompts.PROTOCOL_VERSION),
            provenance=provenance,
            untrained=False,
            max_images_per_message=int(images),
            profile="gaga",  # trained on geodesk's conversations: asked in geodesk's protocol
        )
        if out.exists():
            out.rmdir()
        package.replace(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "package": str(out),
        "name": manifest.name,
        "version": manifest.version,
        "identity_sha256": manifest.identity_sha256,
        "protocol_version": manifest.protocol_version,
        "stage_losses": {
            "pretrain_projector": stage1["final_loss"] if stage1 else None,
            "finetune_qlora": stage2["final_loss"] if stage2 else None,
        },
    }
