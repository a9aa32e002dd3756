"""A tiny, untrained LLaVA of the real architecture, for tests and smoke runs.

It is a genuine ``LlavaForConditionalGeneration`` (CLIP vision tower -> 2-layer GELU projector ->
Llama decoder) with a byte-level BPE tokenizer trained here, in-process, on a small built-in corpus,
the Llama-3 special tokens and chat template, a ``LlavaProcessor`` with a CLIP image processor and a
generation config that stops on both Llama-3 end ids. Its answers are noise: the manifest says
``untrained``. Everything is derived from ``seed``, so two builds with the same seed give the same
files, byte for byte.

Shapes (defaults): image 56x56, patch 14 -> 4x4 = 16 image tokens per image; CLIP hidden 32, 2 layers;
Llama hidden 64, 2 layers, 4 heads (head dim 16), 2 KV heads, vocabulary ~700 tokens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_directory
from geodesk.engine.package import PackageManifest, write_manifest

# Llama-3 special tokens, in Llama-3's order, plus LLaVA's image placeholder.
BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = (BEGIN_OF_TEXT, END_OF_TEXT, START_HEADER, END_HEADER, EOT, IMAGE_TOKEN)

TINY_NAME = "tiny-llava"
TINY_VERSION = "0.0.0"

# Llama-3 chat template that also takes list content (``{"type": "image"}`` / ``{"type": "text"}``
# parts), as llava-hf processors pass it. Each image part renders as ``<image>\n``, which is how
# LLaVA-Llama-3 was trained (image first, newline, then the question).
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['content'] is string %}"
    "{{- message['content'] }}"
    "{%- else %}"
    "{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}{{- '<image>\\n' }}"
    "{%- elif part['type'] == 'text' %}{{- part['text'] }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# The training corpus: geography words, the JSON answer shape, digits and coordinates, so that
# GaGA-style prompts and answers tokenize into a reasonable number of pieces.
_WORDS = (
    "country region city latitude longitude lat lon location image photo picture where is this taken "
    "predict the clues architecture vegetation climate terrain road markings signage language vehicles "
    "landmarks infrastructure people culture street building mountain river coast desert forest snow "
    "tropical temperate arid village town capital province state prefecture county district north south "
    "east west France Paris Germany Berlin Japan Tokyo China Beijing Hefei Anhui Brazil Russia India "
    "United States America Kingdom London Spain Madrid Italy Rome Canada Australia Sydney Mexico Kenya "
    "Nairobi Egypt Cairo Norway Oslo answer json your prediction is incorrect hint question correct "
    "guess the place in not of a an and with what which analyst model user assistant system"
)
_JSON_LINES = (
    '{"country": "France", "region": "Ile-de-France", "city": "Paris", "lat": 48.8566, "lon": 2.3522}',
    '{"country": "Japan", "region": "Tokyo", "city": "Tokyo", "lat": 35.6762, "lon": 139.6503}',
    '{"clues": [{"category": "vegetation", "text": "palm trees"}], "lat": -33.87, "lon": 151.21}',
    "```json\n{\"lat\": -1.2921, \"lon\": 36.8219}\n```",
    "0 1 2 3 4 5 6 7 8 9 10 25 48.85 -122.41 139.69 0.5 -0.25 N S E W , . : ; ' \" ( ) [ ] { } - _ ! ?",
)


def _corpus() -> list[str]:
    words = _WORDS.split()
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    return lines * 4 + list(_JSON_LINES) * 8


def train_byte_level_bpe(special_tokens: Sequence[str]) -> Any:
    """The tiny models' tokenizer: byte-level BPE with 700 tokens, trained in-process on the tiny corpus
    (every family's tiny model shares it; only the special tokens and the chat template differ)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        min_frequency=2,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


def build_tokenizer() -> Any:
    """Train a byte-level BPE tokenizer in-process and wrap it as a transformers fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    tok = train_byte_level_bpe(SPECIAL_TOKENS)
    fast_class: Any = PreTrainedTokenizerFast  # transformers leaves its __init__ untyped
    fast = fast_class(
        tokenizer_object=tok,
        bos_token=BEGIN_OF_TEXT,
        eos_token=EOT,
        pad_token=END_OF_TEXT,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(
    seed: int = 0,
    *,
    vocab_size: int,
    image_token_id: int,
    pad_token_id: int,
    image_size: int = 56,
    patch_size: int = 14,
) -> Any:
    """A tiny ``LlavaForConditionalGeneration`` with weights drawn from ``torch`` seeded with ``seed``."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        tie_word_embeddings=False,
        pad_token_id=pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        image_seq_length=(image_size // patch_size) ** 2,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",  # drop CLS: 16 patch tokens per image
        vision_feature_layer=-2,
        tie_word_embeddings=False,
    )
    # Seed a private generator state: the caller's global RNG stays untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = LlavaForConditionalGeneration(config)
    # Zero the output rows of the special tokens (ids 0..5): their logit is then 0 while the best of
    # ~700 random logits is positive, so greedy decoding writes ordinary text up to max_new_tokens
    # instead of stopping or emitting <image> after a token or two. Tests of streaming, cancel and
    # cache reuse need answers of a known length.
    with torch.no_grad():
        model.lm_head.weight[: len(SPECIAL_TOKENS)] = 0.0
    return model.eval()


def create_tiny_model(out_dir: str | Path, seed: int = 0) -> PackageManifest:
    """Write a tiny untrained LLaVA model package into ``out_dir`` (created; must be empty or absent).

    The folder is built next to ``out_dir`` and moved into place at the end, so an interrupted build
    leaves nothing half-written under the final name.
    """
    import transformers

    # transformers leaves these constructors untyped; go through Any rather than silence mypy per line.
    hf: Any = transformers

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()
    image_token_id = int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    eot_id = int(tokenizer.convert_tokens_to_ids(EOT))
    eos_id = int(tokenizer.convert_tokens_to_ids(END_OF_TEXT))
    bos_id = int(tokenizer.convert_tokens_to_ids(BEGIN_OF_TEXT))
    model = build_model(seed, vocab_size=len(tokenizer), image_token_id=image_token_id, pad_token_id=eos_id)
    model.generation_config = hf.GenerationConfig(
        bos_token_id=bos_id,
        eos_token_id=[eot_id, eos_id],  # Llama-3: end of turn, end of text
        pad_token_id=eos_id,
        do_sample=False,
        max_new_tokens=256,
    )
    size = int(model.config.vision_config.image_size)
    image_processor = hf.CLIPImageProcessorPil(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
    )
    processor = hf.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=int(model.config.vision_config.patch_size),
        vision_feature_select_strategy="default",
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped again by the "default" strategy
        chat_template=CHAT_TEMPLATE,
    )

    # Written in a staging folder beside out, renamed into place when complete (geodesk.atomic).
    with atomic_directory(out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
        normalise_json_files(staging)
        write_manifest(
            staging,
            name=TINY_NAME,
            version=TINY_VERSION,
            protocol_version=None,
            untrained=True,
            provenance={
                "kind": "tiny-random",
                "seed": seed,
                "built_by": "geodesk.engine.tiny.create_tiny_model",
                "note": "random weights for tests and smoke runs; its answers mean nothing",
            },
            max_images_per_message=2,
        )
    from geodesk.engine.package import read_manifest

    return read_manifest(out)


def normalise_json_files(folder: Path) -> None:
    """Rewrite the JSON files with sorted keys so the same seed gives byte-identical files.

    ``tokenizer_class`` becomes ``PreTrainedTokenizerFast`` (transformers 5 writes its new
    ``TokenizersBackend`` name, which older transformers, e.g. in lmdeploy's environment, do not know).
    """
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if path.name == "tokenizer_config.json":
            data["tokenizer_class"] = "PreTrainedTokenizerFast"
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
