"""Tiny, untrained models of the Qwen2.5-VL, Qwen3-VL and InternVL3 (``-hf``) architectures, for tests
and smoke runs.

Like :mod:`geodesk.engine.tiny` (the LLaVA one): a genuine transformers model built from a small
config, a byte-level BPE tokenizer trained here on the same corpus with the family's own special
tokens, the family's ChatML chat template and image layout, an image processor and a generation config
that stops on ``<|im_end|>``. Everything derives from ``seed``: two builds give the same files.

Shapes: images are resized to 56x56; Qwen2.5-VL: patch 14 -> 4x4 patches, merged 2x2 -> 4 image
tokens per image, vision hidden 32 (2 blocks), decoder hidden 64, 2 layers, 4 heads (head dim 16,
M-RoPE sections 2+3+3 = 8 = head_dim/2), 2 KV heads. InternVL: 56x56 one tile, patch 14 -> 16
patches, pixel shuffle 0.5 -> 4 image tokens, vision hidden 32 (2 layers), Qwen2 decoder as above.
Qwen3-VL: 64x64 images, patch 16 (see :func:`build_qwen3_vl`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from geodesk.engine.package import PackageManifest, read_manifest, write_manifest
from geodesk.engine.tiny import normalise_json_files, train_byte_level_bpe

IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
IMAGE_SIZE = 56
QWEN3_IMAGE_SIZE = 64  # Qwen3-VL's patches are 16 pixels

# ChatML with list content. Qwen2.5-VL writes an image part as <|vision_start|><|image_pad|><|vision_end|>
# (the processor expands <|image_pad|> to one token per merged patch); InternVL3-hf writes <IMG_CONTEXT>
# followed by a newline (the processor wraps it as <img><IMG_CONTEXT>*N</img>).
_CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}{{- IMAGE }}"
    "{%- elif part['type'] == 'text' %}{{- part['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
QWEN_CHAT_TEMPLATE = _CHATML.replace("IMAGE", "'<|vision_start|><|image_pad|><|vision_end|>'")
INTERNVL_CHAT_TEMPLATE = _CHATML.replace("IMAGE", "'<IMG_CONTEXT>\\n'")

QWEN_SPECIAL = (END_OF_TEXT, IM_START, IM_END, "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                "<|video_pad|>")
INTERNVL_SPECIAL = (END_OF_TEXT, IM_START, IM_END, "<img>", "</img>", "<IMG_CONTEXT>", "<video>")
QWEN_EXTRA = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}
INTERNVL_EXTRA = {"start_image_token": "<img>", "end_image_token": "</img>",
                  "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}


def build_chatml_tokenizer(special: tuple[str, ...], extra: dict[str, str], template: str) -> Any:
    """A byte-level BPE tokenizer with ChatML specials, trained in-process on the tiny corpus."""
    from transformers import PreTrainedTokenizerFast

    tok = train_byte_level_bpe(special)
    fast_class: Any = PreTrainedTokenizerFast
    fast = fast_class(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        extra_special_tokens=extra,
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = template
    return fast


def _text_config(vocab_size: int, pad_id: int, eos_id: int) -> dict[str, Any]:
    return {
        "bos_token_id": pad_id,
        "eos_token_id": eos_id,
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "pad_token_id": pad_id,
    }


def _silence_specials(model: Any, count: int) -> Any:
    """Zero the output rows of the special tokens (ids 0..count-1), as the tiny LLaVA does: greedy
    decoding then writes ordinary text up to max_new_tokens instead of stopping after a token."""
    import torch

    with torch.no_grad():
        model.lm_head.weight[:count] = 0.0
    return model.eval()


def build_qwen2_5_vl(seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) of a tiny Qwen2.5-VL."""
    import torch
    import transformers

    from geodesk.engine.families.processors import StillQwen25VLProcessor

    hf: Any = transformers
    tokenizer = build_chatml_tokenizer(QWEN_SPECIAL, QWEN_EXTRA, QWEN_CHAT_TEMPLATE)
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in QWEN_SPECIAL}
    text = _text_config(len(tokenizer), ids[END_OF_TEXT], ids[IM_END])
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]}
    config = hf.Qwen2_5_VLConfig(
        text_config=text,
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 28,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = hf.Qwen2_5_VLForConditionalGeneration(config)
    pixels = IMAGE_SIZE * IMAGE_SIZE
    image_processor = hf.Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": pixels}, patch_size=14, temporal_patch_size=2,
        merge_size=2,
    )
    processor = StillQwen25VLProcessor(image_processor, tokenizer, chat_template=QWEN_CHAT_TEMPLATE)
    return _silence_specials(model, len(QWEN_SPECIAL)), processor


def build_qwen3_vl(seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) of a tiny Qwen3-VL: images 64x64, patch 16 -> 4x4 patches, merged 2x2 -> 4 image
    tokens; vision hidden 32 (2 blocks, deep-stack features from block 0), decoder as Qwen2.5-VL's with
    head dim 16 and interleaved M-RoPE sections 2+3+3."""
    import torch
    import transformers

    from geodesk.engine.families.processors import StillQwen3VLProcessor

    hf: Any = transformers
    tokenizer = build_chatml_tokenizer(QWEN_SPECIAL, QWEN_EXTRA, QWEN_CHAT_TEMPLATE)
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in QWEN_SPECIAL}
    text = _text_config(len(tokenizer), ids[END_OF_TEXT], ids[IM_END])
    text["head_dim"] = 16
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [2, 3, 3],
                               "mrope_interleaved": True}
    config = hf.Qwen3VLConfig(
        text_config=text,
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "num_position_embeddings": 16, "deepstack_visual_indexes": [0],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = hf.Qwen3VLForConditionalGeneration(config)
    pixels = QWEN3_IMAGE_SIZE * QWEN3_IMAGE_SIZE
    image_processor = hf.Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": pixels}, patch_size=16, temporal_patch_size=2,
        merge_size=2, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    processor = StillQwen3VLProcessor(image_processor, tokenizer, chat_template=QWEN_CHAT_TEMPLATE)
    return _silence_specials(model, len(QWEN_SPECIAL)), processor


def build_internvl(seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) of a tiny InternVL3 in the transformers-native (``-hf``) format."""
    import torch
    import transformers

    from geodesk.engine.families.processors import StillInternVLProcessor

    hf: Any = transformers
    tokenizer = build_chatml_tokenizer(INTERNVL_SPECIAL, INTERNVL_EXTRA, INTERNVL_CHAT_TEMPLATE)
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in INTERNVL_SPECIAL}
    text = _text_config(len(tokenizer), ids[END_OF_TEXT], ids[IM_END])
    text["model_type"] = "qwen2"
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1000000.0}
    seq_length = (IMAGE_SIZE // 14) ** 2 // 4  # 16 patches, pixel shuffle 0.5 -> 4 tokens
    config = hf.InternVLConfig(
        text_config=text,
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "image_size": [IMAGE_SIZE, IMAGE_SIZE], "patch_size": [14, 14],
        },
        image_token_id=ids["<IMG_CONTEXT>"],
        image_seq_length=seq_length,
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = hf.InternVLForConditionalGeneration(config)
    image_processor = hf.GotOcr2ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, crop_to_patches=True, max_patches=1,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    processor = StillInternVLProcessor(
        image_processor, tokenizer, image_seq_length=seq_length, chat_template=INTERNVL_CHAT_TEMPLATE
    )
    return _silence_specials(model, len(INTERNVL_SPECIAL)), processor


BUILDERS = {"qwen2_5_vl": build_qwen2_5_vl, "qwen3_vl": build_qwen3_vl, "internvl": build_internvl}


def create_tiny_family_model(out_dir: str | Path, family: str, seed: int = 0) -> PackageManifest:
    """Write a tiny untrained package of ``family`` (``qwen2_5_vl`` or ``internvl``) into ``out_dir``."""
    import transformers

    hf: Any = transformers
    if family not in BUILDERS:
        known = ", ".join(sorted(BUILDERS))
        raise ValueError(f"no tiny builder for family {family!r}; choose one of {known}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    model, processor = BUILDERS[family](seed)
    tokenizer = processor.tokenizer
    end_ids = [int(tokenizer.convert_tokens_to_ids(t)) for t in (IM_END, END_OF_TEXT)]
    model.generation_config = hf.GenerationConfig(
        eos_token_id=end_ids, pad_token_id=end_ids[1], do_sample=False, max_new_tokens=256
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
        from geodesk.engine.families import family_by_name
        from geodesk.engine.families.processors import name_public_processor

        name_public_processor(staging, type(processor).__mro__[1].__name__)
        normalise_json_files(staging)

        write_manifest(
            staging,
            name=f"tiny-{family.replace('_', '-')}",
            version="0.0.0",
            protocol_version=None,
            untrained=True,
            provenance={
                "kind": "tiny-random",
                "seed": seed,
                "family": family,
                "built_by": "geodesk.engine.families.tiny.create_tiny_family_model",
                "note": "random weights for tests and smoke runs; its answers mean nothing",
            },
            max_images_per_message=2,
            profile=family_by_name(family).default_profile,
        )
        if out.exists():
            out.rmdir()
        staging.replace(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return read_manifest(out)
