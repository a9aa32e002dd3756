"""Convert an original InternVL checkpoint (OpenGVLab's remote-code ``InternVLChatModel``, ``model_type``
``internvl_chat``) into the transformers-native ``-hf`` layout (``InternVLForConditionalGeneration``).

The original folder ships its own Python model code, which geodesk never runs (``trust_remote_code``
stays off). The conversion reads only files: ``config.json``, the safetensors weights, the tokenizer and
(if present) ``generation_config.json``; it writes a new folder that the ``internvl`` family loads.

Weights, from the original module tree (``vision_model`` = InternViT, ``mlp1`` = LayerNorm, Linear,
GELU, Linear; ``language_model`` = a transformers causal LM) to what transformers 5 ``save_pretrained``
writes for ``InternVLForConditionalGeneration``:

- ``vision_model.embeddings.class_embedding`` (1, 1, C) -> ``vision_tower.embeddings.cls_token``;
  ``patch_embedding`` -> ``patch_embeddings.projection``; ``position_embedding`` (1, 1+N, C) ->
  ``position_embeddings``;
- ``vision_model.encoder.layers.i.``: ``attn.qkv`` (3C, C) is split in rows [0:C), [C:2C), [2C:3C) into
  ``attention.q_proj / k_proj / v_proj`` (the original reshapes its output as (B, N, 3, heads, C/heads),
  so q, k and v are consecutive row blocks); ``attn.proj`` -> ``attention.projection_layer``;
  ``attn.q_norm / k_norm`` -> ``attention.q_norm / k_norm``; ``norm1 / norm2`` -> ``layernorm_before /
  layernorm_after``; ``ls1 / ls2`` -> ``lambda_1 / lambda_2``; ``mlp.fc1 / fc2`` unchanged;
- ``mlp1.0 / mlp1.1 / mlp1.3`` -> ``multi_modal_projector.layer_norm / linear_1 / linear_2``;
- ``language_model.*`` unchanged (the same names in both layouts).

Only the pixel-shuffle the ``-hf`` model implements (``ps_version`` "v2") and language models
transformers ships (Qwen2, Qwen3, Llama, Phi-3) convert; InternLM2-based checkpoints need remote code for
the language model too and are refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_directory
from geodesk.engine.checkpoint import CheckpointError, rename_shards

ORIGINAL_MODEL_TYPE = "internvl_chat"
CONVERT_COMMAND = "geodesk model convert-internvl SRC OUT_DIR"
# Language models the -hf format can hold without remote code: original llm_config model_type -> ok.
NATIVE_LANGUAGE_MODELS = ("qwen2", "qwen3", "llama", "phi3")
IMAGE_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

_LAYER = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.(.+)$")
_LAYER_PARTS = {
    "attn.proj.": "attention.projection_layer.",
    "attn.q_norm.": "attention.q_norm.",
    "attn.k_norm.": "attention.k_norm.",
    "norm1.": "layernorm_before.",
    "norm2.": "layernorm_after.",
    "mlp.fc1.": "mlp.fc1.",
    "mlp.fc2.": "mlp.fc2.",
}
_EMBED, _HF_EMBED = "vision_model.embeddings.", "vision_tower.embeddings."
_FIXED = {
    _EMBED + "class_embedding": _HF_EMBED + "cls_token",
    _EMBED + "position_embedding": _HF_EMBED + "position_embeddings",
    _EMBED + "patch_embedding.weight": _HF_EMBED + "patch_embeddings.projection.weight",
    _EMBED + "patch_embedding.bias": _HF_EMBED + "patch_embeddings.projection.bias",
}
_PROJECTOR = {"mlp1.0.": "multi_modal_projector.layer_norm.", "mlp1.1.": "multi_modal_projector.linear_1.",
              "mlp1.3.": "multi_modal_projector.linear_2."}


class InternVLConversionError(CheckpointError):
    """The folder cannot be converted; the message says why and what to use instead."""


def is_original_internvl(config: dict[str, Any]) -> bool:
    return config.get("model_type") == ORIGINAL_MODEL_TYPE


def convert_weight(key: str, tensor: Any) -> list[tuple[str, Any]]:
    """One original weight under its ``-hf`` name(s); the fused ``qkv`` becomes three row blocks."""
    if key.startswith("language_model."):
        return [(key, tensor)]
    if key in _FIXED:
        return [(_FIXED[key], tensor)]
    for old, new in _PROJECTOR.items():
        if key.startswith(old):
            return [(new + key[len(old) :], tensor)]
    layer = _LAYER.match(key)
    if layer is not None:
        index, rest = layer.groups()
        prefix = f"vision_tower.encoder.layer.{index}."
        if rest in ("ls1", "ls2"):
            return [(prefix + ("lambda_1" if rest == "ls1" else "lambda_2"), tensor)]
        if rest.startswith("attn.qkv."):
            part = rest[len("attn.qkv.") :]  # weight (3C, C) or bias (3C,)
            if tensor.shape[0] % 3:
                raise InternVLConversionError(f"{key} has {tensor.shape[0]} rows, not three equal blocks")
            q, k, v = tensor.chunk(3, dim=0)
            blocks = zip("qkv", (q, k, v), strict=True)
            return [(f"{prefix}attention.{name}_proj.{part}", block) for name, block in blocks]
        for old, new in _LAYER_PARTS.items():
            if rest.startswith(old):
                return [(prefix + new + rest[len(old) :], tensor)]
    raise InternVLConversionError(f"weight {key!r} is not part of an original InternVL checkpoint")


def _as_pair(value: Any) -> list[int]:
    return [int(value), int(value)] if isinstance(value, int) else [int(v) for v in value]


def hf_config_kwargs(original: dict[str, Any], image_token_id: int) -> dict[str, Any]:
    """``InternVLConfig`` arguments equivalent to an original ``internvl_chat`` config."""
    vision = original.get("vision_config")
    llm = original.get("llm_config")
    if not isinstance(vision, dict) or not isinstance(llm, dict):
        raise InternVLConversionError(
            "config.json lacks vision_config or llm_config: not an InternVL checkpoint"
        )
    llm_type = str(llm.get("model_type", ""))
    if llm_type not in NATIVE_LANGUAGE_MODELS or llm.get("auto_map"):
        raise InternVLConversionError(
            f"its language model is {llm_type or 'unnamed'!r}, which transformers does not ship (it needs "
            "the publisher's code as well); install the model's transformers-native -hf release instead"
        )
    if str(original.get("ps_version", "v2")) != "v2":
        raise InternVLConversionError(
            f"ps_version {original.get('ps_version')!r}: the -hf format implements only the v2 pixel "
            "shuffle; install the model's -hf release instead"
        )
    image_size = int(original.get("force_image_size") or vision["image_size"])
    patch = int(vision["patch_size"])
    ratio = float(original.get("downsample_ratio", 0.5))
    text = {k: v for k, v in llm.items() if k not in ("architectures", "auto_map", "_name_or_path")}
    return {
        "text_config": text,
        "vision_config": {
            "hidden_size": int(vision["hidden_size"]),
            "intermediate_size": int(vision["intermediate_size"]),
            "num_hidden_layers": int(vision["num_hidden_layers"]),
            "num_attention_heads": int(vision["num_attention_heads"]),
            "image_size": [image_size, image_size],
            "patch_size": _as_pair(patch),
            "num_channels": int(vision.get("num_channels", 3)),
            "attention_bias": bool(vision.get("qkv_bias", True)),
            "use_qk_norm": bool(vision.get("qk_normalization", False)),
            "norm_type": str(vision.get("norm_type", "layer_norm")),
            "layer_norm_eps": float(vision.get("layer_norm_eps", 1e-6)),
            "hidden_act": str(vision.get("hidden_act", "gelu")),
            "layer_scale_init_value": float(vision.get("initializer_factor", 0.1)),
        },
        "image_token_id": image_token_id,
        "image_seq_length": int((image_size // patch) ** 2 * ratio**2),
        "downsample_ratio": ratio,
        "vision_feature_layer": int(original.get("select_layer", -1)),
        "vision_feature_select_strategy": "default",  # the original drops the class token too
        "projector_hidden_act": "gelu",
        "tie_word_embeddings": bool(llm.get("tie_word_embeddings", False)),
    }


def _read_config(src: Path) -> dict[str, Any]:
    path = src / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InternVLConversionError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(config, dict) or not is_original_internvl(config):
        raise InternVLConversionError(
            f"{path} does not describe an original InternVL checkpoint (model_type {ORIGINAL_MODEL_TYPE!r})"
        )
    return config


def _tokenizer(src: Path, vocab_size: int) -> Any:
    import transformers

    hf: Any = transformers
    try:
        tokenizer = hf.AutoTokenizer.from_pretrained(
            src, trust_remote_code=False, extra_special_tokens=dict(IMAGE_TOKENS)
        )
    except (OSError, ValueError) as exc:
        raise InternVLConversionError(
            f"the tokenizer in {src} does not load without the publisher's code ({exc}); install the model's "
            "-hf release instead"
        ) from None
    for name in ("start_image_token", "end_image_token", "context_image_token"):
        token = IMAGE_TOKENS[name]
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id or token_id >= vocab_size:
            raise InternVLConversionError(
                f"the tokenizer in {src} has no {token} token: not an InternVL tokenizer"
            )
    video_id = int(tokenizer.convert_tokens_to_ids(IMAGE_TOKENS["video_token"]))
    if video_id >= vocab_size:  # the -hf processor names a video token; it must fit the embedding matrix
        raise InternVLConversionError(
            f"the tokenizer has no room for {IMAGE_TOKENS['video_token']} within the model's {vocab_size} "
            "embeddings; install the model's -hf release instead"
        )
    return tokenizer


def convert_original_internvl(src_dir: str | Path, dst_dir: str | Path) -> Path:
    """Write the ``-hf`` form of the original InternVL checkpoint in ``src_dir`` into ``dst_dir``.

    ``dst_dir`` must be new or empty; it is assembled in a staging folder beside it and renamed into place
    when complete. Weights go shard by shard (memory stays at one shard). The result is a plain model
    folder: install it with ``geodesk model install``.
    """
    import transformers

    from geodesk.engine.families.processors import StillInternVLProcessor, name_public_processor
    from geodesk.engine.families.tiny import INTERNVL_CHAT_TEMPLATE
    from geodesk.engine.tiny import normalise_json_files

    hf: Any = transformers
    src = Path(src_dir).expanduser().resolve()
    dst = Path(dst_dir).expanduser().resolve()
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise InternVLConversionError(f"{dst} already exists and is not empty; choose a new folder")
    original = _read_config(src)
    llm = original.get("llm_config") if isinstance(original.get("llm_config"), dict) else {}
    assert isinstance(llm, dict)
    vocab_size = int(llm.get("vocab_size", 0))
    kwargs = hf_config_kwargs(original, 0)  # the refusals about the architecture come first
    tokenizer = _tokenizer(src, vocab_size)
    kwargs["image_token_id"] = int(tokenizer.convert_tokens_to_ids(IMAGE_TOKENS["context_image_token"]))
    config = hf.InternVLConfig(**kwargs)
    size = kwargs["vision_config"]["image_size"][0]
    dynamic = bool(original.get("dynamic_image_size", True))
    image_processor = hf.GotOcr2ImageProcessorPil(
        size={"height": size, "width": size},
        crop_to_patches=dynamic,
        min_patches=int(original.get("min_dynamic_patch", 1)),
        max_patches=int(original.get("max_dynamic_patch", 12)) if dynamic else 1,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    processor = StillInternVLProcessor(
        image_processor,
        tokenizer,
        image_seq_length=config.image_seq_length,
        chat_template=INTERNVL_CHAT_TEMPLATE,
    )
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    generation = hf.GenerationConfig.from_pretrained(src) if (src / "generation_config.json").is_file() else (
        hf.GenerationConfig()
    )
    ends = generation.eos_token_id if isinstance(generation.eos_token_id, list) else (
        [generation.eos_token_id] if generation.eos_token_id is not None else []
    )
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id and im_end not in ends:
        ends = [im_end, *ends]  # the chat template ends each turn with <|im_end|>
    generation.eos_token_id = ends or None
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(dst) as staging:
        rename_shards(src, staging, convert_weight)
        config.architectures = ["InternVLForConditionalGeneration"]
        config.save_pretrained(staging)
        processor.save_pretrained(staging)
        name_public_processor(staging, "InternVLProcessor")
        generation.save_pretrained(staging)
        normalise_json_files(staging)
    return dst


__all__ = [
    "CONVERT_COMMAND",
    "ORIGINAL_MODEL_TYPE",
    "InternVLConversionError",
    "convert_original_internvl",
    "convert_weight",
    "hf_config_kwargs",
    "is_original_internvl",
]
