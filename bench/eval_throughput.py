"""Evaluation throughput (images/s): batched generation against one conversation at a time, same run.

    .venv/bin/python -m bench.eval_throughput                      # CPU, the tiny model package
    .venv/bin/python -m bench.eval_throughput --gpu                # CUDA, LLaVA-Llama-3-8B shapes, bf16
    .venv/bin/python -m bench.eval_throughput --gpu --tiny-shapes  # the --gpu code path with tiny shapes

What is timed is what ``geodesk-train evaluate`` runs in DIRE mode: per image the direct-mode first
turn (system prompt + ``<image>`` + instruction + JSON format), greedy, ``--tokens`` answer tokens.
One at a time: ``HFBackend.generate`` (the sessions path, KV reuse on). Batched:
``training.evaluation.generation.HFBatchGenerator`` at each ``--batch-sizes`` value (left-padded,
one ``model.generate`` per batch). Figures: images/s, median of ``--reps`` passes over ``--images``
images after one warm-up pass, the speed-up over one-at-a-time, and whether the greedy answers of
every batched pass equal the one-at-a-time answers.

CPU: the tiny model (geodesk.engine.tiny) answers until ``--tokens`` or its end-of-turn, as a real
evaluation would. ``--gpu``: a random-weight model with the exact 8B shapes (bench.gpu_hf_inference),
whose special-token logits are zeroed so every answer is exactly ``--tokens`` long. Writes
bench/results/eval_throughput.json (``--gpu``: eval_throughput_gpu.json / eval_throughput_gpu_tiny.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, median, write_result


def make_images(count: int) -> list[Any]:
    """Street-scene-like test images of varied sizes (so the processor really pads and resizes)."""
    from PIL import Image, ImageDraw

    images = []
    for i in range(count):
        w, h = 640 + 64 * (i % 4), 480 + 32 * (i % 3)
        img = Image.new("RGB", (w, h), (90 + 7 * i % 60, 140, 200))
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, h * 2 // 3, w, h), fill=(40 + 11 * i % 80, 120, 40))
        draw.rectangle((w // 4, h // 3, w // 2, h * 2 // 3), fill=(150, 60 + 13 * i % 90, 50))
        images.append(img)
    return images


def conversations(images: list[Any]) -> list[Any]:
    from training.evaluation.modes import dire_conversation

    return [dire_conversation(img) for img in images]


def measure(backend: Any, args: argparse.Namespace, sync: Any) -> dict[str, Any]:
    from geodesk.engine.backends.base import GenerationSettings
    from training.evaluation.generation import HFBatchGenerator

    convs = conversations(make_images(args.images))
    settings = GenerationSettings(max_new_tokens=args.tokens)

    def one_at_a_time() -> list[str]:
        return [backend.generate(c, settings).text for c in convs]

    def timed(run: Any) -> tuple[float, list[str]]:
        run()  # warm-up pass: allocator, kernels, the processor's first call
        rates, texts = [], []
        for _ in range(args.reps):
            sync()
            started = time.perf_counter()
            texts = run()
            sync()
            rates.append(len(convs) / (time.perf_counter() - started))
        return median(rates), texts

    base_rate, reference = timed(one_at_a_time)
    results: dict[str, Any] = {
        "one_at_a_time": {"images_per_s": round(base_rate, 3)},
        "batched": {},
    }
    for b in args.batch_sizes:
        generator = HFBatchGenerator(backend, batch_size=b)
        rate, texts = timed(lambda g=generator: g.generate_batch(convs, settings))
        results["batched"][str(b)] = {
            "images_per_s": round(rate, 3),
            "speedup": round(rate / base_rate, 3),
            "greedy_answers_equal_one_at_a_time": texts == reference,
        }
    results["answer_chars_mean"] = round(sum(len(t) for t in reference) / len(reference), 1)
    return results


def run_cpu(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.engine.tiny import create_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        create_tiny_model(Path(tmp) / "tiny", seed=0)
        backend = HFBackend(Path(tmp) / "tiny", HFOptions(device="cpu"))
        figures = measure(backend, args, lambda: None)
        backend.close()
    return {"device": "cpu", "model": "geodesk tiny model (geodesk.engine.tiny)",
            "torch_threads": torch.get_num_threads(), **figures}


def run_gpu(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from bench.gpu_hf_inference import LLAVA_LLAMA3_8B, TINY, build_model, make_processor
    from geodesk.domain.model import ModelIdentity
    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.engine.tiny import END_OF_TEXT, EOT, IMAGE_TOKEN, build_tokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.tiny_shapes:
        raise SystemExit("no CUDA device: --gpu needs one (add --tiny-shapes to run this path on CPU)")
    shapes = TINY if args.tiny_shapes else LLAVA_LLAMA3_8B
    processor = make_processor(build_tokenizer(), shapes["vision"])
    tok = processor.tokenizer
    eos_ids = [int(tok.convert_tokens_to_ids(EOT)), int(tok.convert_tokens_to_ids(END_OF_TEXT))]
    model = build_model(shapes, device, int(tok.convert_tokens_to_ids(IMAGE_TOKEN)), eos_ids)
    backend = HFBackend.from_loaded(model, processor, ModelIdentity("random-8b-shape", "bf16", "0" * 64),
                                    HFOptions())

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    figures = measure(backend, args, sync)
    if device.type == "cuda":
        figures["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return {"device": str(device), "model": "random weights, " + ("tiny shapes" if args.tiny_shapes
                                                                   else "LLaVA-Llama-3-8B shapes, bf16"),
            **figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="the 8B-shaped model on CUDA")
    parser.add_argument("--tiny-shapes", action="store_true", help="with --gpu: tiny shapes (runs on CPU)")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32, help="answer tokens (max_new_tokens)")
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    result = run_gpu(args) if args.gpu else run_cpu(args)
    document = {
        "benchmark": "eval_throughput",
        "machine": machine(),
        "images": args.images,
        "answer_tokens": args.tokens,
        "repetitions": args.reps,
        "result": result,
    }
    name = "eval_throughput.json"
    if args.gpu:
        name = "eval_throughput_gpu_tiny.json" if args.tiny_shapes else "eval_throughput_gpu.json"
    path = write_result(name, document)
    print(f"wrote {path}")
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
