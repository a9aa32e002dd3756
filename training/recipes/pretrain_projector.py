"""Stage 1: projector pretraining (GaGA section III-C 1, on the Meta part of MG-Geo).

The vision tower (CLIP) and the language model stay frozen (``requires_grad=False``, eval mode); only
the 2-layer MLP ``multi_modal_projector`` learns to map CLIP patch features ``[B, 576, 1024]`` into
the LLM's embedding space ``[B, 576, 4096]`` (8B shapes). GaGA's Table VIII settings are the defaults:
AdamW, lr 2e-4, no weight decay, betas (0.9, 0.999), warmup ratio 0.03 then cosine annealing, total
batch 16 (``train.total_batch: 16`` in the 8B config), 1 epoch, 1472 text tokens (max length 2048
with the 576 image tokens). Ours, not the paper's: gradient clipping at 1.0 (``train.grad_clip``;
Table VIII names none), bf16 autocast on CUDA with the trained projector kept in fp32 as master
weights (Table VIII gives fp16 compute for stage 2 only), plain fp32 on CPU.

GaGA initialises the projector from ShareGPT4V's before this stage: ``model.projector_init`` names a
projector file to start from (a stage-1 output folder or the file itself, keys
``model.multi_modal_projector.*``); without it the base model's own projector is the start.

Unlike XTuner, the sample keeps the question text (our Meta-part samples are GaGA direct-mode
questions with JSON answers), masked out of the loss: the projector learns to serve the question the
app will really ask (docs/adr/0011-training-recipes.md).

Output: ``<output_dir>/projector.safetensors`` (keys ``model.multi_modal_projector.*``), which stage 2
and export read, plus ``summary.json`` and ``metrics.csv``.

    geodesk-train pretrain --config training/configs/tiny/pretrain.yaml
"""

from __future__ import annotations

import copy
from typing import Any

from training.recipes._common import BASE_DEFAULTS, Recipe, _save_tensors

PROJECTOR_FILE = "projector.safetensors"
PROJECTOR_PREFIX = "model.multi_modal_projector."

DEFAULTS: dict[str, Any] = copy.deepcopy(BASE_DEFAULTS)
DEFAULTS["recipe"] = "pretrain_projector"
DEFAULTS["model"].update({"projector_init": None})
DEFAULTS["train"].update({"lr": 2.0e-4, "weight_decay": 0.0, "warmup_ratio": 0.03, "grad_clip": 1.0})


def load_llava(path: str, *, dtype: Any, device: Any, quantization_config: Any = None) -> Any:
    """``LlavaForConditionalGeneration`` from a model folder (any key naming; safetensors only)."""
    from transformers import LlavaForConditionalGeneration

    from geodesk.engine.checkpoint import weight_files

    weight_files(path)  # refuses folders with only pickled weights, with a sentence to act on
    loader: Any = LlavaForConditionalGeneration
    return loader.from_pretrained(
        path,
        dtype=dtype,
        device_map={"": str(device)},
        quantization_config=quantization_config,
        use_safetensors=True,
        trust_remote_code=False,
    )


class ProjectorPretrainRecipe(Recipe):
    NAME = "pretrain_projector"
    DEFAULTS = DEFAULTS

    def build_model(self) -> Any:
        import torch

        model = load_llava(self.cfg["model"]["path"], dtype=self.autocast_dtype, device=self.device)
        if self.cfg["model"]["projector_init"]:
            from training.recipes.finetune_qlora import load_projector  # it imports this module

            load_projector(model, self.cfg["model"]["projector_init"])
        model.requires_grad_(False)
        projector = model.model.multi_modal_projector
        # fp32 master weights for the only trained module; autocast runs its matmuls in bf16 on CUDA.
        projector.to(torch.float32)
        projector.requires_grad_(True)
        model.eval()
        return model

    def set_train_modes(self) -> None:
        self.model.eval()
        self.model.model.multi_modal_projector.train()

    def save_outputs(self) -> dict[str, Any]:
        state = {n: p for n, p in self.model.named_parameters() if n.startswith(PROJECTOR_PREFIX)}
        path = self.out_dir / PROJECTOR_FILE
        tmp = path.with_name(f".{path.name}.tmp")
        _save_tensors(state, tmp)
        tmp.replace(path)
        return {"projector": str(path), "projector_tensors": len(state)}


def run(
    config: dict[str, Any], *, resume: bool = False, progress: bool = False, on_step: Any = None
) -> dict[str, Any]:
    """Run stage 1 with a loaded config (see :func:`training.recipes._common.load_config`)."""
    return ProjectorPretrainRecipe(config, resume=resume, progress=progress, on_step=on_step).run()
