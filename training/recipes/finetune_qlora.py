"""Stage 2: QLoRA fine-tuning of the language model (GaGA section III-C 2, on the mix of the three parts).

- The LLM's linear layers are loaded in 4-bit NF4 (GaGA's Table VIII: BitsAndBytesConfig, 4-bit, nf),
  with double quantization (QLoRA's recommendation; Table VIII does not name it); the vision
  tower, the projector and ``lm_head`` stay in the compute dtype (skip list
  ``model.vision_tower`` / ``model.multi_modal_projector`` / ``lm_head``, the helper the hf backend
  uses: transformers 5 matches skip names from the start of the module name).
- LoRA (peft) r = 64, alpha = 16, dropout 0.05 on ``.*language_model.*\\.(q|k|v|o|gate|up|down)_proj``:
  every attention and MLP projection of the LLM, nothing in CLIP.
- Projector and vision tower frozen: GaGA freezes the projector in this stage to keep the mapping
  learnt in stage 1, so unlike the usual llava QLoRA setup there is NO ``modules_to_save`` for the
  projector; only LoRA matrices get gradients (tested).
- Gradient checkpointing (non-reentrant), images padded to square, length-grouped batches.
- GaGA's Table VIII: AdamW, lr 2e-5, cosine annealing, total batch 16 (``train.total_batch``, split
  over the processes by ``batch_plan``), 1 epoch, fp16 compute. Ours: bf16 compute on CUDA (no fp16
  overflow; ``model.dtype: fp16`` gives the paper's), warmup 3 % and no weight decay as in stage 1
  (Table VIII lists neither for stage 2), gradient clipping at 1.0, gradient checkpointing.

Families (:mod:`geodesk.engine.families`): the base model's family comes from its ``config.json``; the
loader, the NF4 skip list and the frozen vision modules are the family's (Qwen2.5-VL: ``model.visual``,
vision tower and merger frozen, LoRA on the language model). ``model.stage1_run`` is LLaVA's only.

The projector comes from stage 1 (``model.stage1_run``: its output folder); without it the base
model's projector is used. ``model.quantization: none`` (``--no-quant``) trains LoRA on the unquantized
base, for machines without bitsandbytes support.

Output: ``<output_dir>/adapter/`` (peft: ``adapter_config.json`` + ``adapter_model.safetensors``),
``summary.json``, ``metrics.csv``.

    geodesk-train finetune --config training/configs/tiny/finetune.yaml
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_directory
from training.recipes._common import BASE_DEFAULTS, Recipe, RecipeError
from training.recipes.pretrain_projector import PROJECTOR_FILE, PROJECTOR_PREFIX, load_llava

ADAPTER_DIR = "adapter"
LORA_TARGET = r".*language_model.*\.(q|k|v|o|gate|up|down)_proj"

DEFAULTS: dict[str, Any] = copy.deepcopy(BASE_DEFAULTS)
DEFAULTS["recipe"] = "finetune_qlora"
DEFAULTS["model"].update({"stage1_run": None, "quantization": "nf4"})
DEFAULTS["lora"] = {"r": 64, "alpha": 16, "dropout": 0.05, "target": LORA_TARGET}
DEFAULTS["train"].update({"lr": 2.0e-5, "gradient_checkpointing": True})


def load_projector(model: Any, stage1_run: str | Path) -> int:
    """Copy stage 1's projector weights into ``model`` (a Llava model, or a peft model around one).

    ``stage1_run``: a stage-1 output folder, or a ``projector.safetensors``-style file itself (keys
    ``model.multi_modal_projector.*``)."""
    import torch
    from safetensors.torch import load_file

    given = Path(stage1_run).expanduser()
    path = given if given.is_file() else given / PROJECTOR_FILE
    if not path.is_file():
        raise RecipeError(
            f"{path} does not exist: run stage 1 (geodesk-train pretrain) into {stage1_run} first"
        )
    tensors = load_file(str(path))
    params = {
        n.split(PROJECTOR_PREFIX, 1)[1]: p for n, p in model.named_parameters() if PROJECTOR_PREFIX in n
    }
    wanted = {k.removeprefix(PROJECTOR_PREFIX) for k in tensors}
    if wanted != set(params):
        raise RecipeError(f"{path} does not fit this model's projector (different layers or shapes)")
    with torch.no_grad():
        for key, value in tensors.items():
            target = params[key.removeprefix(PROJECTOR_PREFIX)]
            if target.shape != value.shape:
                raise RecipeError(
                    f"{path}: {key} has shape {tuple(value.shape)}, the model {tuple(target.shape)}"
                )
            target.copy_(value.to(target.dtype))
    return len(tensors)


def lora_config(cfg: dict[str, Any]) -> Any:
    from peft import LoraConfig

    lora = cfg["lora"]
    return LoraConfig(
        r=int(lora["r"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=str(lora["target"]),  # a string is matched as a regex against full module names
        bias="none",
    )


def build_lora_model(recipe: Recipe, stage: str, *, stage1_run: str | None = None) -> Any:
    """The base model (NF4 or unquantized) frozen, a stage-1 projector loaded if given, LoRA on the LLM.

    Shared by stage 2 and GRPO: only LoRA weights may train (checked), so no gradient reaches the
    projector or the vision tower.
    """
    from peft import get_peft_model

    from geodesk.engine.backends.hf import quantization_config
    from geodesk.engine.families import LLAVA, detect_family

    model_cfg = recipe.cfg["model"]
    kind = model_cfg["quantization"]
    if kind not in ("nf4", "none"):
        raise RecipeError(f"model.quantization must be nf4 or none, not {kind!r}")
    family = detect_family(Path(model_cfg["path"]).expanduser())
    if stage1_run and family is not LLAVA:
        raise RecipeError(f"model.stage1_run is a LLaVA projector; a {family.label} base has its own merger")
    quant = quantization_config(kind, recipe.autocast_dtype, family.skip_modules)
    try:
        model = load_family_model(
            model_cfg["path"], dtype=recipe.autocast_dtype, device=recipe.device, quantization_config=quant
        )
    except (ImportError, RuntimeError) as exc:
        if quant is None:
            raise
        raise RecipeError(
            f"loading the model in NF4 failed ({exc}); this machine's bitsandbytes cannot quantize "
            "here: rerun with model.quantization=none (LoRA on the unquantized model)"
        ) from None
    if stage1_run:
        load_projector(model, stage1_run)
    model.requires_grad_(False)
    peft_model = get_peft_model(model, lora_config(recipe.cfg))
    stray = [n for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in n]
    if stray:
        raise RecipeError(f"only LoRA weights may train in {stage}, but {stray[0]} does too")
    return peft_model


def save_adapter(model: Any, out_dir: Path) -> Path:
    """Write the LoRA adapter (safetensors) to ``out_dir/adapter`` whole: staged, then renamed into place."""
    final = out_dir / ADAPTER_DIR
    with atomic_directory(final) as staging:
        model.save_pretrained(str(staging), safe_serialization=True)
    return final


def load_family_model(path: str, *, dtype: Any, device: Any, quantization_config: Any = None) -> Any:
    """The base model with its family's loader (LLaVA, Qwen2.5-VL, InternVL; safetensors only)."""
    import transformers

    from geodesk.engine.families import LLAVA, detect_family

    family = detect_family(Path(path).expanduser())
    if family is LLAVA:
        return load_llava(path, dtype=dtype, device=device, quantization_config=quantization_config)
    from geodesk.engine.checkpoint import weight_files

    weight_files(path)  # refuses folders with only pickled weights
    loader: Any = getattr(transformers, family.loader)
    return loader.from_pretrained(
        path,
        dtype=dtype,
        device_map={"": str(device)},
        quantization_config=quantization_config,
        use_safetensors=True,
        trust_remote_code=False,
    )


def frozen_vision_modules(model: Any) -> list[Any]:
    """The vision side of a (peft-wrapped) model: its family's skip modules except lm_head."""
    from geodesk.engine.families import family_from_config

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    family = family_from_config(base.config.to_dict(), "the model's config")
    return [base.get_submodule(name) for name in family.skip_modules if name != "lm_head"]


def set_lora_train_modes(model: Any) -> None:
    """LoRA dropout on; the frozen vision tower and projector (or Qwen's visual) stay in eval mode."""
    model.train()
    for module in frozen_vision_modules(model):
        module.eval()


class QLoRAFinetuneRecipe(Recipe):
    NAME = "finetune_qlora"
    DEFAULTS = DEFAULTS

    def build_model(self) -> Any:
        return build_lora_model(self, "stage 2", stage1_run=self.cfg["model"]["stage1_run"])

    def set_train_modes(self) -> None:
        set_lora_train_modes(self.model)

    def save_outputs(self) -> dict[str, Any]:
        final = save_adapter(self.model, self.out_dir)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {
            "adapter": str(final),
            "trainable_parameters": trainable,
            "quantization": self.cfg["model"]["quantization"],
            "stage1_run": self.cfg["model"]["stage1_run"],
        }


def run(
    config: dict[str, Any], *, resume: bool = False, progress: bool = False, on_step: Any = None
) -> dict[str, Any]:
    """Run stage 2 with a loaded config (see :func:`training.recipes._common.load_config`)."""
    return QLoRAFinetuneRecipe(config, resume=resume, progress=progress, on_step=on_step).run()
