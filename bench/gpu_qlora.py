"""Stage-2 QLoRA training speed on the 8B shape: tokens/s, MFU, peak memory, batch 1 / 4 / 8.

    python bench/gpu_qlora.py            # H100 / H200: 8B shapes, writes bench/results/gpu_qlora.json
    python bench/gpu_qlora.py --tiny     # CPU path with the tiny model's shapes: gpu_qlora_tiny.json

The model is LLaVA with CLIP ViT-L/14-336 (576 image tokens) + Llama-3-8B shapes, random weights
allocated directly on the device (``torch.device`` context: no CPU copy, no checkpoint on disk). The
LLM's q/k/v/o/gate/up/down projections are then quantized to NF4 with double quantization in place,
one layer at a time (the same layers the recipe's BitsAndBytesConfig quantizes: lm_head, CLIP and
the projector stay bf16), and LoRA r 64 / alpha 16 / dropout 0.05 is put on them with peft, exactly
as ``training/recipes/finetune_qlora.py`` does. Batches are synthetic: one 336x336 image + 1,024 text
tokens per sample, all text tokens labelled. Gradient checkpointing on, bf16 autocast, AdamW.

Model FLOPs per step (what MFU counts; no recomputation):
  LLM: 4 * N_llm * T  (forward 2NT + input gradients 2NT; the frozen NF4 weights get no weight
       gradient) + 6 * N_lora * T + attention 3 * 2 * L * T^2 * d (causal half of QK^T and AV,
       backward twice the forward);
  vision tower + projector: forward only (nothing upstream needs a gradient): 2 * N * T_img + attention.
HFU adds the recomputed LLM forward of gradient checkpointing. MFU divides by the bf16 matmul peak
measured in the same run (an 8192^3 matmul loop), not by the datasheet, so the ratio says how much of
what this GPU can actually do the training step uses. A bf16 (unquantized) LoRA step at batch 1 is
measured first as a reference: the ratio between the two shows what NF4 dequantization costs.
"""

from __future__ import annotations

import argparse
import gc
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._engine_common import machine, write_result

LORA_TARGET = r".*language_model.*\.(q|k|v|o|gate|up|down)_proj"
TEXT_TOKENS = 1024


def configs(tiny: bool) -> Any:
    """A LlavaConfig: the tiny test model's shapes, or CLIP ViT-L/14-336 + Llama-3-8B."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    if tiny:
        vision = CLIPVisionConfig(
            image_size=56,
            patch_size=14,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            projection_dim=32,
        )
        text = LlamaConfig(
            vocab_size=700,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            tie_word_embeddings=False,
        )
        image_token = 5
    else:
        vision = CLIPVisionConfig(
            image_size=336,
            patch_size=14,
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            projection_dim=768,
            hidden_act="quick_gelu",
        )
        text = LlamaConfig(
            vocab_size=128257,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
            tie_word_embeddings=False,
        )
        image_token = 128256
    side, patch = (56, 14) if tiny else (336, 14)
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token,
        image_seq_length=(side // patch) ** 2,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
    )


def build_model(config: Any, device: Any, dtype: Any) -> Any:
    """Random weights created on ``device`` in ``dtype`` (never materialised on the CPU first)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    return model


def quantize_nf4(model: Any, compute_dtype: Any) -> int:
    """Replace the LLM's projection layers by bitsandbytes NF4 layers (double quantization), in place."""
    import bitsandbytes
    import torch

    bnb: Any = bitsandbytes  # untyped library
    count = 0
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if not (isinstance(child, torch.nn.Linear) and re.fullmatch(LORA_TARGET, full)):
                continue
            device = child.weight.device
            layer = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=compute_dtype,
                compress_statistics=True,
                quant_type="nf4",
                device="meta",
            )
            layer.weight = bnb.nn.Params4bit(
                child.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4"
            )
            layer = layer.to(device)  # quantizes: 4-bit codes + absmax (itself 8-bit, double quantized)
            setattr(parent, child_name, layer)
            del child
            count += 1
    gc.collect()
    return count


def add_lora(model: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    model.requires_grad_(False)
    peft_model = get_peft_model(
        model, LoraConfig(r=64, lora_alpha=16, lora_dropout=0.05, target_modules=LORA_TARGET, bias="none")
    )
    peft_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    peft_model.config.use_cache = False
    peft_model.train()
    base: Any = peft_model.get_base_model()
    base.model.vision_tower.eval()
    return peft_model


def batch(config: Any, size: int, text_tokens: int, device: Any, dtype: Any) -> dict[str, Any]:
    """``size`` samples of [bos, 576 image tokens, text_tokens random ids]; the text is labelled."""
    import torch

    image_tokens = int(config.image_seq_length)
    vocab = int(config.text_config.vocab_size)
    generator = torch.Generator().manual_seed(size)
    text = torch.randint(10, vocab, (size, text_tokens), generator=generator)
    text[text == config.image_token_index] = 10  # only the image block holds image tokens
    ids = torch.cat(
        [
            torch.ones(size, 1, dtype=torch.long),
            torch.full((size, image_tokens), config.image_token_index, dtype=torch.long),
            text,
        ],
        dim=1,
    )
    labels = ids.clone()
    labels[:, : 1 + image_tokens] = -100
    side = int(config.vision_config.image_size)
    pixels = torch.randn(size, 3, side, side, generator=generator)
    return {
        "input_ids": ids.to(device),
        "labels": labels.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "pixel_values": pixels.to(device, dtype),
    }


def count_params(config: Any, lora_params: int) -> dict[str, int]:
    t, v = config.text_config, config.vision_config
    head_dim = t.hidden_size // t.num_attention_heads
    attn = t.hidden_size * head_dim * (2 * t.num_attention_heads + 2 * t.num_key_value_heads)
    mlp = 3 * t.hidden_size * t.intermediate_size
    llm = t.num_hidden_layers * (attn + mlp) + t.vocab_size * t.hidden_size  # + lm_head
    vision = v.num_hidden_layers * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    projector = v.hidden_size * t.hidden_size + t.hidden_size**2
    return {"llm_matmul": llm, "vision_matmul": vision, "projector": projector, "lora": lora_params}


def step_flops(config: Any, params: dict[str, int], size: int, seq: int) -> dict[str, float]:
    t, v = config.text_config, config.vision_config
    attn_fwd = 2 * t.num_hidden_layers * seq**2 * t.hidden_size  # causal: half of 4 L T^2 d
    img_seq = (v.image_size // v.patch_size) ** 2 + 1
    vision = 2 * params["vision_matmul"] * img_seq + 4 * v.num_hidden_layers * img_seq**2 * v.hidden_size
    vision += 2 * params["projector"] * (img_seq - 1)
    llm_fwd = 2 * params["llm_matmul"] * seq + attn_fwd
    model = size * (2 * llm_fwd + 6 * params["lora"] * seq + attn_fwd + vision)  # fwd + input grads + lora
    return {"model": float(model), "hardware": float(model + size * llm_fwd)}  # + checkpoint recompute


def matmul_peak(device: Any, dtype: Any, tiny: bool) -> float:
    """Achieved bf16 matmul FLOP/s on this device (the MFU denominator)."""
    import torch

    n = 1024 if tiny else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    iters = 5 if tiny else 50
    start = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(device)
    return 2 * n**3 * iters / (time.perf_counter() - start)


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    model: Any,
    config: Any,
    size: int,
    args: argparse.Namespace,
    device: Any,
    dtype: Any,
    peak: float,
    params: dict[str, int],
) -> dict[str, Any]:
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    data = batch(config, size, args.text_tokens, device, dtype)
    seq = int(data["input_ids"].shape[1])
    autocast = (
        torch.autocast(device.type, dtype=dtype)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    try:
        for i in range(args.warmup + args.steps):
            sync(device)
            start = time.perf_counter()
            with autocast:
                loss = model(**data).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    except torch.OutOfMemoryError:
        del optimizer, data
        gc.collect()
        torch.cuda.empty_cache()
        return {"batch_size": size, "oom": True}
    step = sorted(times)[len(times) // 2]
    flops = step_flops(config, params, size, seq)
    out: dict[str, Any] = {
        "batch_size": size,
        "sequence_tokens": seq,
        "step_s": round(step, 4),
        "tokens_per_s": round(size * seq / step, 1),
        "text_tokens_per_s": round(size * args.text_tokens / step, 1),
        "model_gflops_per_step": round(flops["model"] / 1e9, 3),
        "mfu": round(flops["model"] / step / peak, 4),
        "hfu": round(flops["hardware"] / step / peak, 4),
        "final_loss": round(float(loss.detach()), 4),
    }
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 2)
        out["fits_24gb"] = torch.cuda.max_memory_reserved(device) < 24 * 10**9 * 0.95
    del optimizer, data
    gc.collect()
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (a check that it runs)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--text-tokens", type=int, default=TEXT_TOKENS)
    parser.add_argument("--no-bf16-reference", action="store_true", help="skip the unquantized LoRA step")
    args = parser.parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run with --tiny for the CPU check")
    device = torch.device("cpu" if args.tiny else "cuda")
    dtype = torch.float32 if args.tiny else torch.bfloat16
    if args.tiny:
        args.text_tokens = min(args.text_tokens, 256)
    torch.manual_seed(0)
    config = configs(args.tiny)
    peak = matmul_peak(device, torch.float32 if args.tiny else torch.bfloat16, args.tiny)
    started = time.perf_counter()
    model = build_model(config, device, dtype)
    build_s = time.perf_counter() - started
    results: dict[str, Any] = {"reference_bf16_lora": None, "qlora": []}

    if not args.no_bf16_reference:
        lora = add_lora(model)
        params = count_params(config, sum(p.numel() for p in lora.parameters() if p.requires_grad))
        results["reference_bf16_lora"] = measure(lora, config, 1, args, device, dtype, peak, params)
        model = lora.unload()  # back to the plain model, LoRA layers removed
        gc.collect()
    quantized = quantize_nf4(model, dtype)
    model = add_lora(model)
    params = count_params(config, sum(p.numel() for p in model.parameters() if p.requires_grad))
    if device.type == "cuda":
        results["weights_memory_gib"] = round(torch.cuda.memory_allocated(device) / 2**30, 2)
    for size in args.batch_sizes:
        row = measure(model, config, size, args, device, dtype, peak, params)
        results["qlora"].append(row)
        print(row, file=sys.stderr)
    document = {
        "benchmark": "gpu_qlora",
        "shape": "tiny" if args.tiny else "llava-clip-l336-llama3-8b",
        "machine": machine(),
        "settings": {
            "text_tokens": args.text_tokens,
            "image_tokens": int(config.image_seq_length),
            "steps": args.steps,
            "warmup": args.warmup,
            "dtype": str(dtype).removeprefix("torch."),
            "lora": {"r": 64, "alpha": 16, "dropout": 0.05, "target": LORA_TARGET},
            "gradient_checkpointing": True,
            "quantized_layers": quantized,
        },
        "matmul_peak_tflops": round(peak / 1e12, 2),
        "build_s": round(build_s, 2),
        "parameters": params,
        "targets": {"mfu": 0.35, "batch_1_memory_gb": 24},
        **results,
    }
    if document["qlora"] and document["reference_bf16_lora"] and "step_s" in document["qlora"][0]:
        ref, q = document["reference_bf16_lora"], document["qlora"][0]
        if "step_s" in ref:
            document["nf4_over_bf16_step_time_batch1"] = round(q["step_s"] / ref["step_s"], 3)
    path = write_result("gpu_qlora_tiny.json" if args.tiny else "gpu_qlora.json", document)
    print(path)
    return 0 if all(math.isfinite(r.get("final_loss", 0.0)) for r in document["qlora"]) else 1


if __name__ == "__main__":
    sys.exit(main())
