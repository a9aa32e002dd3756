"""GPU inference of the ``hf`` backend on a model with the exact shapes of LLaVA-Llama-3-8B or Qwen2.5-VL-7B.

    .venv/bin/python -m bench.gpu_hf_inference [--shape llava-8b|qwen2.5-vl-7b] [--modes bf16,nf4]
        [--static-compile] [--tokens 128]
    .venv/bin/python -m bench.gpu_hf_inference --tiny [--shape ...]   # CPU smoke run, tiny shapes

``--shape qwen2.5-vl-7b``: Qwen2.5-VL-7B-Instruct's shapes (vision: 32 blocks, hidden 1280, 16 heads,
patch 14, 2x2 merge, window 112; decoder: hidden 3584, 28 layers, 28 heads, 4 KV heads, MLP 18944,
vocabulary 152064, M-RoPE sections 16/24/24) with its published image processor bounds (the 1024x768
test photo becomes 1008x756 pixels, 972 image tokens); NF4 skips ``model.visual`` and lm_head.

Shapes: CLIP ViT-L/14-336 (hidden 1024, 24 layers, 16 heads, 336 px, patch 14 -> 576 image tokens) and
Llama-3-8B (hidden 4096, 32 layers, 32 heads, 8 KV heads, MLP 14336, vocabulary 128256), projector a
2-layer GELU MLP 1024 -> 4096 -> 4096. Random weights are created directly on the device (torch device
context: no checkpoint, no host copy); NF4 replaces every language-model ``*_proj`` Linear in place
with a bitsandbytes ``Linear4bit`` (double quantization, bf16 compute), keeping the vision tower,
projector and lm_head in bf16 as the backend does. The model goes through ``HFBackend.from_loaded``,
so what is timed is the geodesk generation path (template, padding, processor, streaming, cancel
check, KV reuse).

Per mode: time to first token with one image (cold), decode tokens/s at batch 1, second-turn time to
first token with the cache reused, peak memory. The memory-bandwidth bound: bytes read per decoded
token (every language-model weight byte once, lm_head included, embeddings excluded since one row is
read; plus the KV cache at the measured context) over the device-to-device copy bandwidth measured in
the same run (``dst.copy_(src)`` of 1 GiB reads and writes 1 GiB each). The target (issue 3): decode
>= 50% of the bound in bf16; NF4 within 8 GB, bf16 within 18 GB. Writes
bench/results/gpu_hf_inference.json (``--tiny`` writes gpu_hf_inference_tiny.json).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, median, write_result

LLAVA_LLAMA3_8B = {
    "vision": {"image_size": 336, "patch_size": 14, "hidden_size": 1024, "intermediate_size": 4096,
               "num_hidden_layers": 24, "num_attention_heads": 16, "projection_dim": 768},
    "text": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
             "max_position_embeddings": 8192},
}
TINY = {
    "vision": {"image_size": 56, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
               "num_hidden_layers": 2, "num_attention_heads": 2, "projection_dim": 32},
    "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1024,
             "max_position_embeddings": 2048},
}
QWEN2_5_VL_7B = {
    "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
               "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
               "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]},
    "text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
             "max_position_embeddings": 128000, "mrope_section": [16, 24, 24]},
    "pixels": {"min_pixels": 3136, "max_pixels": 12845056},
}
QWEN_TINY = {
    "vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
               "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 28,
               "fullatt_block_indexes": [1]},
    "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 1024, "max_position_embeddings": 2048,
             "mrope_section": [2, 3, 3]},
    "pixels": {"min_pixels": 3136, "max_pixels": 112 * 112},
}
TARGETS = {"bf16_fraction_of_bound": 0.5, "nf4_peak_bytes": 8 * 2**30, "bf16_peak_bytes": 18 * 2**30}


def copy_bandwidth(device: Any, nbytes: int, reps: int = 10) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write counted), median of ``reps``."""
    import torch

    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    src.fill_(1)
    times = []
    for _ in range(reps + 2):
        _sync(device)
        started = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        times.append(time.perf_counter() - started)
    del src, dst
    return 2 * nbytes / median(times[2:])


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(
    shapes: dict[str, dict[str, int]], device: Any, image_token_id: int, eos_ids: list[int]
) -> Any:
    """A random-weight LLaVA built on ``device`` in bf16."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    text = LlamaConfig(**shapes["text"], rms_norm_eps=1e-5, tie_word_embeddings=False,
                       rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    vision = CLIPVisionConfig(**shapes["vision"])
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token_id,
                         image_seq_length=(vision.image_size // vision.patch_size) ** 2,
                         vision_feature_select_strategy="default", vision_feature_layer=-2,
                         projector_hidden_act="gelu", tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    with torch.no_grad():  # the special-token rows: never chosen, so every run decodes --tokens tokens
        model.lm_head.weight[: max(eos_ids) + 8] = 0
    model.generation_config.eos_token_id = eos_ids
    model.generation_config.pad_token_id = eos_ids[-1]
    return model.eval()


def build_qwen_model(shapes: dict[str, Any], device: Any, ids: dict[str, int], eos_ids: list[int]) -> Any:
    """A random-weight Qwen2.5-VL built on ``device`` in bf16."""
    import torch
    import transformers

    hf: Any = transformers
    text = dict(shapes["text"])
    section = text.pop("mrope_section")
    text.update(rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=eos_ids[-1],
                eos_token_id=eos_ids[0],
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": section})
    config = hf.Qwen2_5_VLConfig(
        text_config=text, vision_config=dict(shapes["vision"]), image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = hf.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    with torch.no_grad():
        model.lm_head.weight[: max(eos_ids) + 8] = 0
    model.generation_config.eos_token_id = eos_ids
    model.generation_config.pad_token_id = eos_ids[-1]
    return model.eval()


def make_qwen_processor(pixels: dict[str, int]) -> Any:
    import transformers

    from geodesk.engine.families import tiny
    from geodesk.engine.families.processors import StillQwen25VLProcessor

    hf: Any = transformers
    tokenizer = tiny.build_chatml_tokenizer(tiny.QWEN_SPECIAL, tiny.QWEN_EXTRA, tiny.QWEN_CHAT_TEMPLATE)
    image_processor = hf.Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels["min_pixels"], "longest_edge": pixels["max_pixels"]},
        patch_size=14, temporal_patch_size=2, merge_size=2,
    )
    return StillQwen25VLProcessor(image_processor, tokenizer, chat_template=tiny.QWEN_CHAT_TEMPLATE)


def quantize_nf4(model: Any) -> None:
    """Swap the language model's projections for NF4 ``Linear4bit`` layers, one at a time (in place)."""
    import bitsandbytes as bnb
    import torch

    targets = [(name, module) for name, module in model.named_modules()
               if name.startswith("model.language_model.") and isinstance(module, torch.nn.Linear)]
    for name, linear in targets:
        parent = model.get_submodule(name.rsplit(".", 1)[0])
        device = linear.weight.device
        q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=linear.bias is not None,
                              compute_dtype=torch.bfloat16, compress_statistics=True, quant_type="nf4",
                              device="meta")
        weight = linear.weight.data
        q.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4",
                                     compress_statistics=True).to(device)  # quantizes on the device
        if linear.bias is not None:
            q.bias = torch.nn.Parameter(linear.bias.data, requires_grad=False)
        setattr(parent, name.rsplit(".", 1)[1], q)
        del weight, linear
    gc.collect()


def bytes_per_token(model: Any, context_tokens: int) -> int:
    """Bytes a decode step must read: language-model weights (no embedding table) + the KV cache."""
    import torch

    seen: set[int] = set()
    total = 0
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if id(tensor) in seen or "embed_tokens" in name:
            continue
        if not (name.startswith("model.language_model.") or name.startswith("lm_head")):
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
        state = getattr(tensor, "quant_state", None)  # NF4: absmax (+ nested absmax) per block
        if state is not None and getattr(state, "absmax", None) is not None:
            total += state.absmax.numel() * state.absmax.element_size()
            if getattr(state, "state2", None) is not None:
                total += state.state2.absmax.numel() * state.state2.absmax.element_size()
    text = model.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * torch.bfloat16.itemsize
    return total + kv * context_tokens


def run_mode(mode: str, args: argparse.Namespace, device: Any, bandwidth: float) -> dict[str, Any]:
    import torch
    from PIL import Image

    from geodesk.domain.model import ModelIdentity
    from geodesk.engine.backends.base import ChatMessage, GenerationSettings
    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.engine.tiny import END_OF_TEXT, EOT, IMAGE_TOKEN, build_tokenizer

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    if args.shape == "qwen2.5-vl-7b":
        from geodesk.engine.families import tiny

        qwen_shapes = QWEN_TINY if args.tiny else QWEN2_5_VL_7B
        processor = make_qwen_processor(qwen_shapes["pixels"])
        tok = processor.tokenizer
        ids = {t: int(tok.convert_tokens_to_ids(t)) for t in tiny.QWEN_SPECIAL}
        eos_ids = [ids[tiny.IM_END], ids[tiny.END_OF_TEXT]]
        started = time.perf_counter()
        model = build_qwen_model(qwen_shapes, device, ids, eos_ids)
    else:
        shapes = TINY if args.tiny else LLAVA_LLAMA3_8B
        processor = make_processor(build_tokenizer(), shapes["vision"])
        tok = processor.tokenizer
        eos_ids = [int(tok.convert_tokens_to_ids(EOT)), int(tok.convert_tokens_to_ids(END_OF_TEXT))]
        started = time.perf_counter()
        model = build_model(shapes, device, int(tok.convert_tokens_to_ids(IMAGE_TOKEN)), eos_ids)
    if mode.startswith("nf4"):
        quantize_nf4(model)
    build_s = time.perf_counter() - started
    static = mode.endswith("static-compile")
    options = HFOptions(cache="static" if static else "dynamic", compile=static, max_context=2048)
    label = "random-qwen2.5-vl-7b-shape" if args.shape == "qwen2.5-vl-7b" else "random-llava-llama-3-8b-shape"
    backend = HFBackend.from_loaded(model, processor, ModelIdentity(label, mode, "0" * 64), options)
    image = Image.new("RGB", (1024, 768), (90, 140, 200))
    image.paste((30, 120, 40), (0, 500, 1024, 768))
    first = [ChatMessage("system", "You are a geolocation expert."),
             ChatMessage("user", "<image>\nWhere was this photo taken? Answer with a JSON object.", (image,))]
    settings = GenerationSettings(max_new_tokens=args.tokens)

    def cold_turn() -> Any:
        backend.reset_cache()
        return backend.generate(first, settings)

    for _ in range(args.warmup):  # kernels, allocator, compilation (static-compile modes)
        cold_turn()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    firsts = [cold_turn() for _ in range(args.reps)]
    answer = firsts[-1]
    second = [*first, ChatMessage("assistant", answer.text),
              ChatMessage("user", "Your prediction is incorrect. It is in Kenya; update the location.")]
    seconds = []
    for _ in range(args.reps):
        cold_turn()
        seconds.append(backend.generate(second, settings))
    decode_rates = [(r.answer_tokens - 1) / (r.total_time_s - r.time_to_first_token_s) for r in firsts]
    decode = median(decode_rates)
    context = answer.prompt_tokens + args.tokens // 2
    per_token = bytes_per_token(model, context)
    bound = bandwidth / per_token
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    result = {
        "mode": mode,
        "build_s": round(build_s, 2),
        "prompt_tokens": answer.prompt_tokens,
        "answer_tokens": answer.answer_tokens,
        "ttft_first_turn_s": round(median([r.time_to_first_token_s for r in firsts]), 4),
        "decode_tokens_per_s": round(decode, 2),
        "second_turn_prompt_tokens": seconds[-1].prompt_tokens,
        "second_turn_cached_tokens": seconds[-1].cached_prompt_tokens,
        "ttft_second_turn_cache_reused_s": round(median([r.time_to_first_token_s for r in seconds]), 4),
        "bytes_per_token": per_token,
        "bandwidth_bound_tokens_per_s": round(bound, 2),
        "fraction_of_bound": round(decode / bound, 4),
        "peak_memory_bytes": peak,
        "peak_memory_gib": None if peak is None else round(peak / 2**30, 2),
    }
    backend.close()  # drops the model and the cache; the caller collects before the next mode
    return result


def make_processor(tokenizer: Any, vision: dict[str, int]) -> Any:
    import transformers

    from geodesk.engine.tiny import CHAT_TEMPLATE, IMAGE_TOKEN

    hf: Any = transformers
    size = vision["image_size"]
    image_processor = hf.CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    return hf.LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=vision["patch_size"],
        vision_feature_select_strategy="default", image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on CPU (smoke test of this script)")
    parser.add_argument("--shape", choices=["llava-8b", "qwen2.5-vl-7b"], default="llava-8b")
    parser.add_argument("--modes", default="bf16,nf4", help="comma list of bf16, nf4")
    parser.add_argument("--static-compile", action="store_true",
                        help="also run each mode with a static KV cache and torch.compile'd decoding")
    parser.add_argument("--tokens", type=int, default=128, help="answer tokens per turn")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", default=None, help="file name under bench/results/")
    args = parser.parse_args(argv)

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if device.type != "cuda" and not args.tiny:
        raise SystemExit("no CUDA device: this benchmark needs a GPU (use --tiny for a CPU smoke run)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.static_compile:
        modes += [f"{m}-static-compile" for m in modes]
    bandwidth = copy_bandwidth(device, (64 if args.tiny else 1024) * 2**20)
    results: list[dict[str, Any]] = []
    for mode in modes:
        try:
            results.append(run_mode(mode, args, device, bandwidth))
            gc.collect()
        except Exception as exc:  # one failing mode (e.g. OOM) still leaves the others' figures
            results.append({"mode": mode, "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc(limit=5)})
        print(results[-1])
    document = {
        "benchmark": "gpu_hf_inference",
        "shapes": ("tiny (CPU smoke run), " if args.tiny else "") + (
            "Qwen2.5-VL-7B (vision 32x1280, decoder 28x3584, M-RoPE)" if args.shape == "qwen2.5-vl-7b"
            else "LLaVA-Llama-3-8B (CLIP ViT-L/14-336, Llama-3-8B)"
        ),
        "machine": machine(),
        "device": str(device),
        "copy_bandwidth_bytes_per_s": round(bandwidth),
        "answer_tokens": args.tokens,
        "repetitions": args.reps,
        "targets": TARGETS,
        "results": results,
    }
    stem = "gpu_hf_inference" if args.shape == "llava-8b" else "gpu_hf_inference_qwen2_5_vl_7b"
    out = args.out or (f"{stem}_tiny.json" if args.tiny else f"{stem}.json")
    print(f"wrote {write_result(out, document)}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
