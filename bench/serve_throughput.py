"""Batch throughput through ``geodesk serve`` vs the in-process ``hf`` backend (CPU, tiny model).

    .venv/bin/python -m bench.serve_throughput [--images 24] [--tokens 24] [--reps 3]

One tiny model (geodesk.engine.tiny) is loaded once; in the same run, alternating, with --reps
repetitions each:
  in-process   HFBackend.generate over every image, one after the other (the baseline)
  serve x1     the same images through ``geodesk serve`` (ChatServer on 127.0.0.1, same backend object)
               with the remote backend, one client
  serve x4     the same, 4 concurrent clients (threads sharing one RemoteBackend)
  ... _jpeg    both again with the images sent as JPEG q95 instead of PNG
Each image is a distinct 640x480 photo-like picture with the GaGA direct-mode question; greedy,
--tokens answer tokens (the tiny model never stops early); answers are compared with the in-process
ones (equal over PNG, which is lossless). Reported: images/s (median), ratio to in-process, median
time to first token and latency as the client sees them, and the server's own accounting. The model
runs one generation at a time, so 4 clients gain only by overlapping the clients' image encoding with
generation: it does not batch (lmdeploy does: bench/gpu_serving.py).
Writes bench/results/serve_throughput.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, median, write_result

QUESTION = (
    "<image>\nWhere was this photo taken? Answer with one JSON object with the keys country, region, "
    "city, lat and lon."
)


def make_images(n: int) -> list[Any]:
    """``n`` distinct 640x480 pictures: sky, ground and a few blocks in per-image colours."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pixels = np.empty((480, 640, 3), dtype=np.uint8)  # (H, W, RGB)
        pixels[:240] = rng.integers(120, 230, size=3)
        pixels[240:] = rng.integers(20, 140, size=3)
        pixels += rng.integers(0, 12, size=pixels.shape, dtype=np.uint8)  # sensor-like noise
        image = Image.fromarray(pixels, "RGB")
        for _ in range(3):
            x, y = int(rng.integers(0, 560)), int(rng.integers(120, 400))
            image.paste(tuple(int(c) for c in rng.integers(0, 255, size=3)), (x, y, x + 80, y + 60))
        image.info["index"] = i
        out.append(image)
    return out


def run_in_process(backend: Any, images: list[Any], settings: Any) -> dict[str, Any]:
    from geodesk.engine.backends.base import ChatMessage

    started = time.perf_counter()
    results = [backend.generate([ChatMessage("user", QUESTION, (img,))], settings) for img in images]
    wall = time.perf_counter() - started
    return {"wall_s": wall, "results": results}


def run_served(remote: Any, images: list[Any], settings: Any, clients: int) -> dict[str, Any]:
    from geodesk.engine.backends.base import ChatMessage

    def one(image: Any) -> Any:
        return remote.generate([ChatMessage("user", QUESTION, (image,))], settings)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, images))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--tokens", type=int, default=24, help="answer tokens per image")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="serve_throughput.json", help="file name under bench/results/")
    args = parser.parse_args(argv)

    from geodesk.engine.backends.base import GenerationSettings
    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.engine.backends.remote import RemoteBackend, RemoteOptions
    from geodesk.engine.tiny import create_tiny_model
    from geodesk.services.serving import ChatServer, ServeConfig, ServeLimits

    settings = GenerationSettings(max_new_tokens=args.tokens)
    images = make_images(args.images)
    with tempfile.TemporaryDirectory(prefix="geodesk-bench-") as tmp:
        model_dir = Path(tmp) / "tiny"
        create_tiny_model(model_dir, seed=0)
        # No KV reuse: every image is a new conversation, as in batch work; keeps the arms comparable.
        backend = HFBackend(model_dir, HFOptions(reuse_cache=False))
        server = ChatServer(backend, ServeConfig(port=0, limits=ServeLimits(queue_size=16))).start()
        remote = RemoteBackend(server.url, RemoteOptions(retries=0, image_format="png"))
        remote_jpeg = RemoteBackend(server.url, RemoteOptions(retries=0, image_format="jpeg"))
        # warm-up: first-call allocations, tokenizer caches, HTTP path
        run_in_process(backend, images[:2], settings)
        run_served(remote, images[:2], settings, 1)
        arms: dict[str, list[dict[str, Any]]] = {
            "in_process": [],
            "serve_1_client": [],
            "serve_4_clients": [],
            "serve_1_client_jpeg": [],
            "serve_4_clients_jpeg": [],
        }
        for _ in range(args.reps):
            arms["in_process"].append(run_in_process(backend, images, settings))
            arms["serve_1_client"].append(run_served(remote, images, settings, 1))
            arms["serve_4_clients"].append(run_served(remote, images, settings, 4))
            arms["serve_1_client_jpeg"].append(run_served(remote_jpeg, images, settings, 1))
            arms["serve_4_clients_jpeg"].append(run_served(remote_jpeg, images, settings, 4))
        server_stats = server.stats.as_dict()
        server.shutdown()
        backend.close()

    reference = [r.text for r in arms["in_process"][0]["results"]]
    summary: dict[str, Any] = {}
    for name, runs in arms.items():
        rate = median([args.images / run["wall_s"] for run in runs])
        last = runs[-1]["results"]
        summary[name] = {
            "images_per_s": round(rate, 3),
            "wall_s_median": round(median([run["wall_s"] for run in runs]), 3),
            "ttft_s_median": round(median([r.time_to_first_token_s for r in last]), 4),
            "latency_s_median": round(median([r.total_time_s for r in last]), 4),
            "answers_equal_in_process": [r.text for r in last] == reference,
        }
    base = summary["in_process"]["images_per_s"]
    for name in list(summary)[1:]:
        summary[name]["ratio_to_in_process"] = round(summary[name]["images_per_s"] / base, 3)
    document = {
        "benchmark": "serve_throughput",
        "machine": machine(),
        "model": "tiny-llava (geodesk.engine.tiny, seed 0): CLIP 56px/2 layers, Llama 64 hidden/2 layers",
        "images": args.images,
        "image_size": [640, 480],
        "answer_tokens": args.tokens,
        "reps": args.reps,
        "wire_format": "PNG (the remote default below 2 MP) or JPEG q95 data URLs; streamed SSE with usage",
        "results": summary,
        "server_stats": server_stats,
        "note": (
            "geodesk serve runs one generation at a time (one worker thread): concurrent clients queue, "
            "so 4 clients gain only by overlapping image encoding with generation. The tiny model generates "
            "in ~20 ms, so per-request costs dominate here: PNG encoding of a 640x480 photo (tens of ms on "
            "this CPU), base64 + HTTP + SSE. With a real model (seconds per answer) they are noise"
        ),
    }
    path = write_result(args.out, document)
    for name, figures in summary.items():
        print(f"{name:16s} {figures['images_per_s']:8.2f} images/s  ttft {figures['ttft_s_median']:.4f} s")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
