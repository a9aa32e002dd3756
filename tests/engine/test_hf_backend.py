"""The hf backend on the tiny model, CPU: dtypes, quantization, LoRA, streaming, cancel, seeds, KV reuse."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from geodesk.engine.backends.base import Backend, BackendError, ChatMessage, GenerationSettings
from geodesk.engine.backends.hf import SKIP_MODULES, HFBackend, HFOptions

GREEDY = GenerationSettings(max_new_tokens=12)


def _image(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (90, 60)) -> Image.Image:
    image = Image.new("RGB", size, colour)
    image.paste((20, 160, 40), (10, 10, 40, 30))
    return image


def _first_turn(image: Image.Image | None = None) -> list[ChatMessage]:
    return [
        ChatMessage("system", "You are a geolocation expert."),
        ChatMessage("user", "<image>\nWhere is this photo taken? Answer in json.", (image or _image(),)),
    ]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> HFBackend:
    return HFBackend(tiny_model_dir)


def test_greedy_generation_with_accounting(backend: HFBackend) -> None:
    assert isinstance(backend, Backend)
    assert backend.identity.name == "tiny-llava" and len(backend.identity.sha256) == 64
    backend.reset_cache()
    result = backend.generate(_first_turn(), GREEDY)
    assert result.text.strip()
    assert result.answer_tokens == 12 and result.finish_reason == "length" and not result.cancelled
    # 16 image tokens (56/14 squared) replace the one placeholder in the rendered prompt.
    assert result.prompt_text.count("<image>") == 1
    text_only = len(backend.tokenizer(result.prompt_text, add_special_tokens=False)["input_ids"])
    assert result.prompt_tokens == text_only - 1 + 16
    ttft = result.time_to_first_token_s
    assert ttft is not None and 0 < ttft <= result.total_time_s
    again = backend.generate(_first_turn(), GREEDY)
    assert again.text == result.text


def test_bf16_runs_and_keeps_the_dtype(tiny_model_dir: Path) -> None:
    backend = HFBackend(tiny_model_dir, HFOptions(dtype="bf16"))
    assert backend.model.model.language_model.embed_tokens.weight.dtype == torch.bfloat16
    result = backend.generate(_first_turn(), GenerationSettings(max_new_tokens=4))
    assert result.answer_tokens == 4
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.generate(_first_turn(), GREEDY)


@pytest.mark.parametrize(("quantization", "layer_class"), [("nf4", "Linear4bit"), ("int8", "Linear8bitLt")])
def test_quantized_loading_keeps_vision_projector_and_head_unquantized(
    tiny_model_dir: Path, quantization: str, layer_class: str
) -> None:
    backend = HFBackend(tiny_model_dir, HFOptions(quantization=quantization))  # type: ignore[arg-type]
    linears = {name: type(module).__name__ for name, module in backend.model.named_modules()
               if isinstance(module, torch.nn.Linear)}
    llm = {n: c for n, c in linears.items() if n.startswith("model.language_model.")}
    kept = {n: c for n, c in linears.items() if n.startswith(SKIP_MODULES)}
    assert llm and set(llm.values()) == {layer_class}
    assert any(n.startswith("model.vision_tower.") for n in kept)
    assert any(n.startswith("model.multi_modal_projector.") for n in kept)
    assert "lm_head" in kept
    assert set(kept.values()) == {"Linear"}
    result = backend.generate(_first_turn(), GenerationSettings(max_new_tokens=3))
    assert result.answer_tokens == 3 and result.text.strip()


def test_lora_adapter_loads_and_changes_the_answer(
    tiny_model_dir: Path, tmp_path: Path, backend: HFBackend
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import LlavaForConditionalGeneration

    base = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir, use_safetensors=True)
    config = LoraConfig(r=8, lora_alpha=32, init_lora_weights=False,
                        target_modules=r".*language_model.*\.(q|k|v|o|gate|up|down)_proj")
    torch.manual_seed(3)
    peft_model = get_peft_model(base, config)
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    assert (adapter_dir / "adapter_model.safetensors").is_file()

    adapted = HFBackend(tiny_model_dir, HFOptions(adapter=adapter_dir))
    plain = backend.generate(_first_turn(), GREEDY)
    tuned = adapted.generate(_first_turn(), GREEDY)
    assert tuned.answer_tokens == 12 and tuned.text != plain.text
    assert adapted.identity.sha256 != backend.identity.sha256
    assert adapted.identity.version.endswith("+adapter")

    (adapter_dir / "adapter_model.safetensors").rename(adapter_dir / "adapter_model.bin")
    with pytest.raises(BackendError, match="pickle"):
        HFBackend(tiny_model_dir, HFOptions(adapter=adapter_dir))


def test_streamed_pieces_concatenate_to_the_answer(backend: HFBackend) -> None:
    pieces: list[str] = []
    result = backend.generate(_first_turn(), GenerationSettings(max_new_tokens=20), on_token=pieces.append)
    assert len(pieces) > 5
    assert "".join(pieces) == result.text


def test_cancel_mid_stream_keeps_the_partial_answer(backend: HFBackend) -> None:
    cancel = threading.Event()
    pieces: list[str] = []

    def on_token(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()

    full = backend.generate(_first_turn(), GenerationSettings(max_new_tokens=40))
    result = backend.generate(_first_turn(), GenerationSettings(max_new_tokens=40), on_token, cancel)
    assert result.cancelled and result.finish_reason == "cancelled"
    assert result.answer_tokens <= 4  # stopped at the token after the one that set the event
    assert result.text == "".join(pieces) and full.text.startswith(result.text)

    early = backend.generate(_first_turn(), GREEDY, cancel=cancel)  # already set: nothing generated
    assert early.cancelled and early.text == "" and early.answer_tokens == 0


def test_seeded_sampling_is_reproducible(backend: HFBackend) -> None:
    def sample(seed: int) -> str:
        settings = GenerationSettings(max_new_tokens=16, temperature=1.0, top_p=0.95, seed=seed)
        return backend.generate(_first_turn(), settings).text

    torch.manual_seed(0)
    global_before = torch.rand(1)
    torch.manual_seed(0)
    first = sample(11)
    assert torch.equal(torch.rand(1), global_before)  # the caller's RNG stream is untouched
    assert sample(11) == first
    assert sample(12) != first


def _second_turn(first: list[ChatMessage], answer: str) -> list[ChatMessage]:
    return [*first, ChatMessage("assistant", answer),
            ChatMessage("user", "Your prediction is incorrect. It is in Japan; update the location.")]


def test_kv_cache_reuse_gives_the_same_answer_as_a_cold_start(tiny_model_dir: Path) -> None:
    warm = HFBackend(tiny_model_dir)
    cold = HFBackend(tiny_model_dir, HFOptions(reuse_cache=False))
    settings = GenerationSettings(max_new_tokens=10)
    first = _first_turn()
    answer = warm.generate(first, settings)
    assert answer.text == cold.generate(first, settings).text

    second = _second_turn(first, answer.text)
    warm_second = warm.generate(second, settings)
    cold_second = cold.generate(second, settings)
    assert warm_second.cached_prompt_tokens > answer.prompt_tokens  # the image and the first answer reused
    assert cold_second.cached_prompt_tokens == 0
    assert warm_second.text == cold_second.text
    assert warm_second.prompt_tokens == cold_second.prompt_tokens

    # A third turn that adds a second image (a region crop) goes through the cache too.
    third = [*second, ChatMessage("assistant", warm_second.text),
             ChatMessage("user", "Look at this region: <image>", (_image((10, 10, 200), (30, 30)),))]
    assert warm.generate(third, settings).text == cold.generate(third, settings).text


def test_a_different_image_is_never_served_from_the_cache(tiny_model_dir: Path) -> None:
    warm = HFBackend(tiny_model_dir)
    cold = HFBackend(tiny_model_dir, HFOptions(reuse_cache=False))
    settings = GenerationSettings(max_new_tokens=8)
    warm.generate(_first_turn(_image((200, 30, 30))), settings)
    other = _first_turn(_image((30, 30, 200)))  # same token ids, different pixels
    result = warm.generate(other, settings)
    image_start = result.prompt_text.index("<image>")
    assert result.cached_prompt_tokens > 0
    assert result.cached_prompt_tokens <= len(warm.tokenizer(result.prompt_text[:image_start],
                                                             add_special_tokens=False)["input_ids"])
    assert result.text == cold.generate(other, settings).text


def test_message_and_image_limits(backend: HFBackend) -> None:
    with pytest.raises(BackendError, match="placeholder"):
        ChatMessage("user", "no placeholder here", (_image(),))
    with pytest.raises(BackendError, match="at most 2"):
        backend.generate([ChatMessage("user", "<image><image><image>", (_image(),) * 3)], GREEDY)
    with pytest.raises(BackendError, match="end with a user message"):
        backend.generate([*_first_turn(), ChatMessage("assistant", "Paris")], GREEDY)
    pair = ChatMessage("user", "<image>\nand a crop: <image>", (_image(), _image()))
    two = backend.generate([pair], GREEDY)
    assert two.prompt_text.count("<image>") == 2 and two.answer_tokens == 12
    with pytest.raises(BackendError):
        GenerationSettings(top_p=0.0)


def test_unusable_model_folders_give_actionable_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        HFBackend(tmp_path / "nowhere")
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="none is available"):
            HFBackend(tiny_model_dir, HFOptions(device="cuda"))
    tampered = tmp_path / "tampered"
    shutil.copytree(tiny_model_dir, tampered)
    with (tampered / "config.json").open("a") as fh:
        fh.write(" ")
    with pytest.raises(BackendError, match=r"changed: config.json"):
        HFBackend(tampered)


def test_static_cache_gives_the_same_answers(tiny_model_dir: Path) -> None:
    static = HFBackend(tiny_model_dir, HFOptions(cache="static", max_context=256))
    cold = HFBackend(tiny_model_dir, HFOptions(reuse_cache=False))
    settings = GenerationSettings(max_new_tokens=10)
    first = _first_turn()
    answer = static.generate(first, settings)
    assert answer.text == cold.generate(first, settings).text
    second = _second_turn(first, answer.text)
    warm_second = static.generate(second, settings)
    assert warm_second.cached_prompt_tokens > answer.prompt_tokens
    assert warm_second.text == cold.generate(second, settings).text
    other = _first_turn(_image((30, 30, 200)))  # a new image: the static cache is reset, not cropped
    assert static.generate(other, settings).text == cold.generate(other, settings).text
    with pytest.raises(BackendError, match="static cache"):
        static.generate(first, GenerationSettings(max_new_tokens=250))


def test_from_loaded_wraps_a_model_in_memory(tiny_model_dir: Path, backend: HFBackend) -> None:
    wrapped = HFBackend.from_loaded(backend.model, backend.processor, backend.identity)
    assert wrapped.generate(_first_turn(), GREEDY).text == backend.generate(_first_turn(), GREEDY).text
