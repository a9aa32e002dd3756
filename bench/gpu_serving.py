"""GPU serving: lmdeploy vs ``geodesk serve`` on a random-weight model with LLaVA-Llama-3-8B's shapes.

    .venv/bin/python -m bench.gpu_serving [--tokens 128] [--requests 64] [--lmdeploy-env DIR]
    .venv/bin/python -m bench.gpu_serving --tiny      # CPU dry run: tiny shapes, same code path

Model: CLIP ViT-L/14-336 + 2-layer projector + Llama-3-8B (shapes in bench.gpu_hf_inference), random
bf16 weights built on the device; the lm_head rows of the special tokens and of every id beyond the
tokenizer's vocabulary are zeroed, so greedy decoding emits ordinary text for exactly --tokens tokens.

Both servers are measured the same way, through the ``remote`` backend over HTTP on 127.0.0.1, each
request a distinct 1024x768 image with the GaGA direct question:
  - time to first token (median of --reps, one request at a time);
  - decode tokens/s at batch 1 = (answer tokens - 1) / (total - time to first token);
  - throughput in images/s with 1, 8 and 32 concurrent requests (--requests per level).
The bound: bytes read per decode step (language-model weights + KV cache, bench.gpu_hf_inference)
over the device copy bandwidth measured in this run. Targets (issue 4): lmdeploy at batch 1 >= 75% of
the bound; throughput at 32 concurrent >= 10x at 1.

lmdeploy runs when its environment exists (installers/lmdeploy/install.sh) and an NVIDIA GPU is
present: the model is written with export_for_lmdeploy and served by ``geodesk lmdeploy``'s process
manager. Otherwise the result file says why it did not run. Writes bench/results/gpu_serving.json
(``--tiny``: gpu_serving_tiny.json).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, median, write_result
from bench.gpu_hf_inference import (
    LLAVA_LLAMA3_8B,
    TINY,
    build_model,
    bytes_per_token,
    copy_bandwidth,
    make_processor,
)

QUESTION = (
    "<image>\nWhere was this photo taken? Answer with one JSON object (country, region, city, lat, lon)."
)
CONCURRENCY = (1, 8, 32)
TARGETS = {"lmdeploy_batch1_fraction_of_bound": 0.75, "throughput_32_over_1": 10.0}


def images(n: int, seed: int = 0) -> list[Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sky, ground = rng.integers(60, 230, size=3), rng.integers(10, 160, size=3)
        pixels = np.empty((768, 1024, 3), dtype=np.uint8)  # (H, W, RGB)
        pixels[:400], pixels[400:] = sky, ground
        out.append(Image.fromarray(pixels, "RGB"))
    return out


def measure(
    endpoint: str, tokens: int, reps: int, requests: int, concurrency: tuple[int, ...]
) -> dict[str, Any]:
    """TTFT, batch-1 decode rate and throughput at each concurrency, through the remote backend."""
    from geodesk.engine.backends.base import ChatMessage, GenerationSettings
    from geodesk.engine.backends.remote import RemoteBackend, RemoteOptions

    remote = RemoteBackend(endpoint, RemoteOptions(retries=2, read_timeout_s=900, image_format="jpeg"))
    settings = GenerationSettings(max_new_tokens=tokens)
    pool = images(max(requests, reps) + 2, seed=1)

    def one(image: Any) -> Any:
        return remote.generate([ChatMessage("user", QUESTION, (image,))], settings)

    one(pool[-1])  # warm-up
    singles = [one(pool[i]) for i in range(reps)]
    decode = [(r.answer_tokens - 1) / (r.total_time_s - r.time_to_first_token_s) for r in singles]
    levels = {}
    for level in concurrency:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=level) as executor:
            results = list(executor.map(one, pool[:requests]))
        wall = time.perf_counter() - started
        levels[str(level)] = {
            "requests": requests,
            "images_per_s": round(requests / wall, 3),
            "answer_tokens_per_s": round(sum(r.answer_tokens for r in results) / wall, 1),
            "latency_s_median": round(median([r.total_time_s for r in results]), 3),
        }
    return {
        "server_model": remote.identity.name,
        "prompt_tokens": singles[-1].prompt_tokens,
        "answer_tokens": singles[-1].answer_tokens,
        "ttft_s": round(median([r.time_to_first_token_s for r in singles]), 4),
        "decode_tokens_per_s_batch1": round(median(decode), 2),
        "throughput": levels,
        "throughput_32_over_1": (
            round(levels["32"]["images_per_s"] / levels["1"]["images_per_s"], 2)
            if "32" in levels and "1" in levels
            else None
        ),
    }


def save_package(model: Any, processor: Any, folder: Path) -> None:
    from geodesk.engine.package import write_manifest

    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    write_manifest(
        folder,
        name="random-llava-llama-3-8b-shape",
        version="bench",
        protocol_version=None,
        untrained=True,
        provenance={"kind": "random", "built_by": "bench/gpu_serving.py"},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", "--dry-run", dest="tiny", action="store_true", help="tiny shapes on CPU")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    parser.add_argument("--lmdeploy-env", default=None, help="lmdeploy's environment (default as geodesk)")
    parser.add_argument("--workdir", default=None, help="where the model files go (default: a temp folder)")
    parser.add_argument("--skip-geodesk", action="store_true", help="measure lmdeploy only")
    args = parser.parse_args(argv)
    if args.tiny:
        args.tokens, args.reps, args.requests = min(args.tokens, 8), min(args.reps, 2), min(args.requests, 8)

    import torch

    from geodesk.domain.model import ModelIdentity
    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.engine.tiny import END_OF_TEXT, EOT, IMAGE_TOKEN, build_tokenizer
    from geodesk.services import lmdeploy_server as lm
    from geodesk.services.serving import ChatServer, ServeConfig, ServeLimits

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    shapes = TINY if args.tiny else LLAVA_LLAMA3_8B
    processor = make_processor(build_tokenizer(), shapes["vision"])
    tok = processor.tokenizer
    eos_ids = [int(tok.convert_tokens_to_ids(EOT)), int(tok.convert_tokens_to_ids(END_OF_TEXT))]
    model = build_model(shapes, device, int(tok.convert_tokens_to_ids(IMAGE_TOKEN)), eos_ids)
    with torch.no_grad():  # ids the tokenizer cannot decode are never chosen: every token is text
        model.lm_head.weight[len(tok) :] = 0
    bandwidth = copy_bandwidth(device, (1 << 30) if device.type == "cuda" else (64 << 20))
    context = 600 + args.tokens // 2  # ~576 image tokens + the question + half the answer
    per_token = bytes_per_token(model, context)
    bound = bandwidth / per_token
    document: dict[str, Any] = {
        "benchmark": "gpu_serving",
        "machine": machine(),
        "shapes": "tiny (CPU dry run)" if args.tiny else "LLaVA-Llama-3-8B (CLIP ViT-L/14-336, Llama-3-8B)",
        "device": str(device),
        "answer_tokens": args.tokens,
        "concurrency": list(CONCURRENCY),
        "copy_bandwidth_bytes_per_s": round(bandwidth),
        "bytes_per_decode_step": per_token,
        "bandwidth_bound_tokens_per_s": round(bound, 2),
        "targets": TARGETS,
    }
    limits = ServeLimits(queue_size=max(CONCURRENCY) + 8, max_tokens=max(args.tokens, 64))

    # geodesk serve: the hf backend on the in-memory model, served on loopback.
    if not args.skip_geodesk:
        try:
            identity = ModelIdentity("random-llava-llama-3-8b-shape", "bench", "0" * 64)
            backend = HFBackend.from_loaded(model, processor, identity, HFOptions(reuse_cache=False))
            server = ChatServer(backend, ServeConfig(port=0, limits=limits)).start()
            try:
                geodesk = measure(server.url, args.tokens, args.reps, args.requests, CONCURRENCY)
            finally:
                server.shutdown()
            geodesk["fraction_of_bound_batch1"] = round(geodesk["decode_tokens_per_s_batch1"] / bound, 4)
            document["geodesk_serve"] = geodesk
        except Exception as exc:
            document["geodesk_serve"] = {
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(),
            }

    # lmdeploy: only where it can run; otherwise record why not.
    gpu = lm.detect_nvidia_gpu()
    try:
        lm.lmdeploy_executable(args.lmdeploy_env)
        env_problem = None
    except lm.LmdeployError as exc:
        env_problem = str(exc)
    if env_problem or not gpu.present:
        reasons = [r for r in (env_problem, None if gpu.present else f"no NVIDIA GPU ({gpu.detail})") if r]
        document["lmdeploy"] = {"ran": False, "reason": "; ".join(reasons)}
    else:
        with tempfile.TemporaryDirectory(prefix="geodesk-gpu-serving-", dir=args.workdir) as tmp:
            work = Path(tmp)
            manager = lm.LmdeployServer(work / "workspace", args.lmdeploy_env)
            try:
                save_package(model, processor, work / "package")
                del model
                gc.collect()
                torch.cuda.empty_cache()
                export = lm.export_for_lmdeploy(work / "package", work / "lmdeploy-model")
                started = time.perf_counter()
                record = manager.start(export.path, port=23333, model_name="geo-8b-shape", wait_s=1200)
                load_s = time.perf_counter() - started
                result = measure(record.endpoint, args.tokens, args.reps, args.requests, CONCURRENCY)
                result["ran"] = True
                result["load_s"] = round(load_s, 1)
                result["fraction_of_bound_batch1"] = round(result["decode_tokens_per_s_batch1"] / bound, 4)
                result["meets_batch1_target"] = (
                    result["fraction_of_bound_batch1"] >= TARGETS["lmdeploy_batch1_fraction_of_bound"]
                )
                ratio = result["throughput_32_over_1"]
                result["meets_batching_target"] = (
                    ratio is not None and ratio >= TARGETS["throughput_32_over_1"]
                )
                document["lmdeploy"] = result
            except Exception as exc:
                log_tail = ""
                with_log = manager.log_path
                if with_log.is_file():
                    log_tail = "\n".join(with_log.read_text(errors="replace").splitlines()[-30:])
                document["lmdeploy"] = {
                    "ran": False,
                    "reason": f"{type(exc).__name__}: {exc}",
                    "log_tail": log_tail,
                }
            finally:
                manager.stop()
    path = write_result("gpu_serving_tiny.json" if args.tiny else "gpu_serving.json", document)
    for name in ("geodesk_serve", "lmdeploy"):
        part = document.get(name, {})
        if "decode_tokens_per_s_batch1" in part:
            print(
                f"{name}: ttft {part['ttft_s']} s, decode {part['decode_tokens_per_s_batch1']} tok/s "
                f"({part['fraction_of_bound_batch1']:.0%} of bound {bound:.1f}), "
                + ", ".join(f"x{k}: {v['images_per_s']} img/s" for k, v in part["throughput"].items())
            )
        else:
            print(f"{name}: did not run: {part.get('reason') or part.get('error')}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
