"""Model families: one small, explicit adapter per vision-language architecture geodesk runs.

A checkpoint's ``config.json`` names its ``model_type``; :func:`detect_family` maps it to a
:class:`Family`, which says everything the engine, the registry and the training recipes do
differently per architecture:

- ``loader``: the transformers class that loads the folder (``trust_remote_code`` is never set);
- ``processor``: how the processor is built (``auto`` through AutoProcessor, or an image-only
  subclass of the family's own processor, see :mod:`geodesk.engine.families.processors`);
- image preprocessing: ``pad_to_square`` (GaGA / LLaVA pad with the mean colour before a centre-crop
  processor; the others resize whole images themselves);
- image placeholders: the processor writes one image token id per visual token; ``image_token_attr``
  names the config field with that id;
- ``skip_modules``: what bitsandbytes must leave in the compute dtype (matched from the start of the
  module name in transformers 5), ``lora_target`` / ``modules_to_save``: LoRA on the language model
  only, the vision side frozen;
- ``cache_reuse_with_new_images``: whether the KV cache of earlier turns can be reused when the new
  turn adds images (LLaVA: yes, positions are 1-D; Qwen2.5-VL's 3-D M-RoPE positions and InternVL's
  tiles are computed over the whole prompt, so a turn with a new image is prefilled from scratch,
  while text-only hint turns reuse the cache);
- ``default_profile``: the prompt profile a plain install gets (see :mod:`geodesk.engine.profiles`).

No torch here: the registry and the package manifest read this without the model stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ProcessorKind = Literal["auto", "still-qwen2_5_vl", "still-qwen3_vl", "still-internvl"]
# How the managed lmdeploy server serves a family: "export" (geodesk writes a copy in the form lmdeploy
# loads: LLaVA's legacy key names and Llama-3 template), "folder" (lmdeploy loads the installed folder
# as it is, with the folder's own chat template), "none" (not started by geodesk).
LmdeployMode = Literal["export", "folder", "none"]

# The LoRA target every family shares: the language model's attention and MLP projections. Vision
# towers name their projections differently (qkv, fc1) or sit outside ``language_model`` (Qwen's
# ``model.visual`` has gate/up/down_proj too, hence the anchor on ``language_model``).
LM_LORA_TARGET = r".*language_model.*\.(q|k|v|o|gate|up|down)_proj"


class FamilyError(Exception):
    """A checkpoint's architecture is not one geodesk runs; the message names what to use instead."""


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    label: str
    model_types: tuple[str, ...]
    loader: str  # transformers class name
    processor: ProcessorKind
    skip_modules: tuple[str, ...]
    modules_to_save: tuple[str, ...]
    pad_to_square: bool
    cache_reuse_with_new_images: bool
    default_profile: str
    lmdeploy: LmdeployMode  # how the managed lmdeploy server serves it
    image_token_attr: str = "image_token_id"
    lora_target: str = LM_LORA_TARGET

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "loader": self.loader,
                "default_profile": self.default_profile, "lmdeploy": self.lmdeploy}


LLAVA = Family(
    name="llava",
    label="LLaVA",
    model_types=("llava",),
    loader="LlavaForConditionalGeneration",
    processor="auto",
    skip_modules=("model.vision_tower", "model.multi_modal_projector", "lm_head"),
    modules_to_save=("multi_modal_projector",),
    pad_to_square=True,
    cache_reuse_with_new_images=True,
    default_profile="gaga",
    lmdeploy="export",
)
QWEN2_5_VL = Family(
    name="qwen2_5_vl",
    label="Qwen2.5-VL",
    model_types=("qwen2_5_vl",),
    loader="Qwen2_5_VLForConditionalGeneration",
    processor="still-qwen2_5_vl",
    skip_modules=("model.visual", "lm_head"),
    modules_to_save=(),
    pad_to_square=False,
    cache_reuse_with_new_images=False,
    default_profile="generic",
    lmdeploy="folder",
)
# Qwen3-VL loads like Qwen2.5-VL (transformers' own class, an image-only processor, the same ChatML
# image block); its vision tower (patch 16, deep-stack features fed to early decoder layers) and its
# interleaved M-RoPE are inside the model class. Not started on lmdeploy by geodesk: lmdeploy's
# Qwen3-VL loader was not checked against the saved layout (model.language_model.*, model.visual.*).
QWEN3_VL = Family(
    name="qwen3_vl",
    label="Qwen3-VL",
    model_types=("qwen3_vl",),
    loader="Qwen3VLForConditionalGeneration",
    processor="still-qwen3_vl",
    skip_modules=("model.visual", "lm_head"),
    modules_to_save=(),
    pad_to_square=False,
    cache_reuse_with_new_images=False,
    default_profile="generic",
    lmdeploy="none",
)
INTERNVL = Family(
    name="internvl",
    label="InternVL3 (-hf format)",
    model_types=("internvl",),
    loader="InternVLForConditionalGeneration",
    processor="still-internvl",
    skip_modules=("model.vision_tower", "model.multi_modal_projector", "lm_head"),
    modules_to_save=(),
    pad_to_square=False,
    cache_reuse_with_new_images=False,
    default_profile="generic",
    lmdeploy="none",
)
FAMILIES: tuple[Family, ...] = (LLAVA, QWEN2_5_VL, QWEN3_VL, INTERNVL)

# Checkpoints that need the publisher's own Python code, and the transformers-native format to use.
_REMOTE_CODE_FORMATS = {
    "internvl_chat": "the transformers-native InternVL3 release (the `-hf` repositories, e.g. "
    "OpenGVLab/InternVL3-8B-hf), whose config.json says model_type \"internvl\", or convert this folder "
    "into that format with `geodesk model convert-internvl SRC OUT_DIR` and install the result",
    "llava_llama": "a llava-hf folder (model_type \"llava\") or an XTuner LLaVA export",
}


def family_by_name(name: str) -> Family:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise FamilyError(f"unknown model family {name!r}; geodesk runs {', '.join(f.name for f in FAMILIES)}")


def family_names() -> tuple[str, ...]:
    return tuple(f.name for f in FAMILIES)


def family_from_architecture(architecture: str) -> Family:
    """The family whose loader class (or model type) ``architecture`` names; LLaVA for older manifests."""
    for family in FAMILIES:
        if architecture == family.loader or architecture in family.model_types:
            return family
    raise FamilyError(f"no geodesk model family loads a {architecture!r}")


def family_from_config(config: dict[str, Any], where: str = "config.json") -> Family:
    """The family a parsed ``config.json`` belongs to; a clear refusal for anything else."""
    model_type = str(config.get("model_type", ""))
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    if model_type in _REMOTE_CODE_FORMATS or config.get("auto_map"):
        use = _REMOTE_CODE_FORMATS.get(model_type, "the model's transformers-native release")
        raise FamilyError(
            f"{where} describes a {model_type or 'custom'!r} model that only loads with the publisher's "
            f"own Python code (trust_remote_code), which geodesk never runs; install {use} instead"
        )
    raise FamilyError(
        f"{where} holds a {model_type!r} model, not LLaVA, Qwen2.5-VL, Qwen3-VL or InternVL3; geodesk runs "
        "the "
        "model types " + ", ".join(repr(t) for f in FAMILIES for t in f.model_types)
    )


def detect_family(folder: str | Path) -> Family:
    """The family of a model folder, from its ``config.json``."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FamilyError(f"{Path(folder)} has no config.json: it is not a transformers model folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FamilyError(f"{path} is not valid JSON; the model folder is damaged") from None
    if not isinstance(config, dict):
        raise FamilyError(f"{path} must hold a JSON object")
    return family_from_config(config, str(path))
