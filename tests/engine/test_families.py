"""Model families: detection, refusals, chat templates against each family's own processor, KV-cache
reuse, NF4 and LoRA on CPU, for tiny models of every family."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from geodesk.engine.backends.base import BackendError, ChatMessage, GenerationSettings
from geodesk.engine.backends.hf import HFBackend, HFOptions, load_processor
from geodesk.engine.families import (
    FAMILIES,
    LM_LORA_TARGET,
    FamilyError,
    detect_family,
    family_by_name,
)

FAMILY_NAMES = [f.name for f in FAMILIES]
SYSTEM = "You are a geolocation analyst."


def photo(colour: tuple[int, int, int], size: tuple[int, int] = (56, 56)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.fixture(scope="module")
def backends(tiny_family_dirs: dict[str, Path]) -> dict[str, HFBackend]:
    return {name: HFBackend(path) for name, path in tiny_family_dirs.items()}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_family_is_read_from_config_and_recorded_in_the_manifest(
    name: str, tiny_family_dirs: dict[str, Path]
) -> None:
    folder = tiny_family_dirs[name]
    family = detect_family(folder)
    assert family.name == name
    manifest = json.loads((folder / "geodesk-model.json").read_text())
    assert manifest["family"] == name
    assert manifest["profile"] == family.default_profile
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == [family.loader]


def test_remote_code_checkpoints_are_refused_naming_the_hf_format(tmp_path: Path) -> None:
    folder = tmp_path / "InternVL3-8B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "internvl_chat",
        "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"},
    }))
    with pytest.raises(FamilyError, match=r"trust_remote_code.*-hf.*InternVL3-8B-hf"):
        detect_family(folder)
    with pytest.raises(BackendError, match="-hf"):
        HFBackend(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "mllama"}))
    with pytest.raises(FamilyError, match=r"'mllama' model, not LLaVA, Qwen2\.5-VL"):
        detect_family(folder)


def _three_turns(image: Image.Image) -> tuple[list[ChatMessage], list[dict[str, Any]]]:
    """The same 3-turn session as geodesk sends it and as the families' model cards write it."""
    ours = [
        ChatMessage("system", SYSTEM),
        ChatMessage("user", "<image>\nWhere was this photo taken?", (image,)),
        ChatMessage("assistant", '{"country": "France", "city": "Paris"}'),
        ChatMessage("user", "The photo was not taken in France."),
        ChatMessage("assistant", '{"country": "Japan", "city": "Tokyo"}'),
        ChatMessage("user", "Question: Which script? Answer from the analyst: Cyrillic."),
    ]
    canonical = [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
        {"role": "user", "content": [
            {"type": "image", "image": image}, {"type": "text", "text": "Where was this photo taken?"},
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": ours[2].text}]},
        {"role": "user", "content": [{"type": "text", "text": "The photo was not taken in France."}]},
        {"role": "assistant", "content": [{"type": "text", "text": ours[4].text}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Question: Which script? Answer from the analyst: Cyrillic."},
        ]},
    ]
    return ours, canonical


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_three_turn_session_tokenizes_as_the_family_processor_does(
    name: str, backends: dict[str, HFBackend], tiny_family_dirs: dict[str, Path]
) -> None:
    backend = backends[name]
    image = photo((30, 140, 60))  # square: LLaVA's padding leaves it unchanged
    ours, canonical = _three_turns(image)
    prompt = backend._build_prompt(ours)
    processor = load_processor(tiny_family_dirs[name], family_by_name(name))
    expected = processor.apply_chat_template(
        canonical, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert prompt.input_ids.tolist() == expected["input_ids"].tolist()
    assert torch.equal(prompt.pixel_values, expected["pixel_values"])
    text = processor.apply_chat_template(canonical, add_generation_prompt=True, tokenize=False)
    assert prompt.text == text
    # One block of image tokens, as many as the processor wrote.
    count = int((prompt.input_ids == backend.image_token_id).sum())
    assert prompt.image_spans == [(prompt.image_spans[0][0], prompt.image_spans[0][0] + count)]


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_cache_reuse_gives_the_cold_answer_for_hint_turns_and_new_images(
    name: str, backends: dict[str, HFBackend]
) -> None:
    backend = backends[name]
    settings = GenerationSettings(max_new_tokens=6)
    wide = photo((200, 20, 20), (80, 60))
    first = [ChatMessage("system", SYSTEM), ChatMessage("user", "<image>\nWhere?", (wide,))]
    backend.reset_cache()
    one = backend.generate(first, settings)
    hint = [*first, ChatMessage("assistant", one.text), ChatMessage("user", "It is in Kenya.")]
    warm = backend.generate(hint, settings)
    assert warm.cached_prompt_tokens > one.prompt_tokens - 1  # the whole first exchange was reused
    backend.reset_cache()
    cold = backend.generate(hint, settings)
    assert cold.cached_prompt_tokens == 0 and warm.text == cold.text
    region = ChatMessage("user", "Look: <image>", (photo((9, 9, 200)),))
    crop = [*hint, ChatMessage("assistant", warm.text), region]
    backend.reset_cache()
    backend.generate(hint, settings)
    with_image = backend.generate(crop, settings)
    backend.reset_cache()
    assert backend.generate(crop, settings).text == with_image.text
    if not family_by_name(name).cache_reuse_with_new_images:
        assert with_image.cached_prompt_tokens == 0


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl", "internvl"])
def test_nf4_on_cpu_keeps_the_vision_side_and_lm_head_unquantized(
    name: str, tiny_family_dirs: dict[str, Path]
) -> None:
    pytest.importorskip("bitsandbytes")
    backend = HFBackend(tiny_family_dirs[name], HFOptions(device="cpu", quantization="nf4"))
    import bitsandbytes as bnb

    family = family_by_name(name)
    quantized = {n for n, m in backend.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert quantized, "no layer was quantized"
    assert all(".language_model." in n for n in quantized)
    assert not any(n.startswith(family.skip_modules) for n in quantized)
    image = photo((10, 200, 10))
    result = backend.generate(
        [ChatMessage("user", "<image>\nWhere?", (image,))], GenerationSettings(max_new_tokens=4)
    )
    assert result.answer_tokens == 4
    backend.close()


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl", "internvl"])
def test_lora_targets_the_language_model_only_and_loads_as_an_adapter(
    name: str, tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig

    family = family_by_name(name)
    folder = tiny_family_dirs[name]
    loader: Any = getattr(transformers, family.loader)
    base = loader.from_pretrained(folder, dtype=torch.float32)
    assert AutoConfig.from_pretrained(folder).model_type in family.model_types
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=LM_LORA_TARGET,
                      modules_to_save=list(family.modules_to_save) or None)
    torch.manual_seed(0)  # lora_A's random init: the same adapter whatever ran before in this process
    model = get_peft_model(base, lora)
    wrapped = [n for n, _ in model.named_modules() if n.endswith(".lora_A")]
    assert wrapped and all(".language_model." in n for n in wrapped)
    assert not any(".visual." in n or ".vision_tower." in n for n in wrapped)
    with torch.no_grad():  # a non-zero update, so the adapter changes the answers
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.fill_(0.05)
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter, safe_serialization=True)
    plain = HFBackend(folder)
    tuned = HFBackend(folder, HFOptions(adapter=adapter))
    assert tuned.identity.sha256 != plain.identity.sha256
    messages = [ChatMessage("user", "<image>\nWhere?", (photo((90, 90, 9)),))]
    settings = GenerationSettings(max_new_tokens=5)
    assert tuned.generate(messages, settings).text != plain.generate(messages, settings).text


def test_sharded_checkpoints_load_for_the_new_families(
    tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    import transformers

    folder = tiny_family_dirs["qwen2_5_vl"]
    model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(folder)
    sharded = tmp_path / "sharded"
    shutil.copytree(folder, sharded)
    (sharded / "model.safetensors").unlink()
    (sharded / "geodesk-model.json").unlink()
    model.save_pretrained(sharded, max_shard_size="100KB", safe_serialization=True)
    assert len(list(sharded.glob("model-*.safetensors"))) > 1
    messages = [ChatMessage("user", "<image>\nWhere?", (photo((1, 2, 3)),))]
    settings = GenerationSettings(max_new_tokens=5)
    assert HFBackend(sharded).generate(messages, settings).text == HFBackend(folder).generate(
        messages, settings
    ).text
