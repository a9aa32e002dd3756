"""GPU check: geodesk's managed lmdeploy server on a Qwen2.5-VL package (the path tests cannot run).

    .venv/bin/python -m bench.gpu_lmdeploy_families [--shape qwen2.5-vl-7b|tiny] [--tokens 64]
        [--requests 8] [--lmdeploy-env DIR]

Needs an NVIDIA GPU and lmdeploy's environment (installers/lmdeploy/install.sh). It writes a
random-weight Qwen2.5-VL package (Qwen2.5-VL-7B's shapes from bench.gpu_hf_inference, bf16, built on the
GPU; ``--shape tiny``: the tiny shapes, for a quick check), then goes through exactly what
``geodesk lmdeploy start`` does: ``served_folder`` (the package folder as it is), the environment probe,
``LmdeployServer.start`` with the health check, requests through the ``remote`` backend, ``stop``.
Recorded: whether each step ran, load time, time to first token, decode tokens/s at batch 1 as a share
of the bandwidth bound (as bench/gpu_serving.py measures it), throughput at 1 and 8 concurrent
requests, and the end of lmdeploy's log on failure. Where lmdeploy cannot run, the file says why.
Writes bench/results/gpu_lmdeploy_families.json (``--shape tiny``: ..._tiny.json).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, write_result
from bench.gpu_hf_inference import (
    QWEN2_5_VL_7B,
    QWEN_TINY,
    build_qwen_model,
    bytes_per_token,
    copy_bandwidth,
    make_qwen_processor,
)
from bench.gpu_serving import measure

CONCURRENCY = (1, 8)


def save_qwen_package(model: Any, processor: Any, folder: Path, name: str) -> None:
    """The model as an installed package would hold it: weights, processor, public processor name."""
    from geodesk.engine.families.processors import name_public_processor
    from geodesk.engine.package import write_manifest

    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    name_public_processor(folder, "Qwen2_5_VLProcessor")
    write_manifest(
        folder,
        name=name,
        version="bench",
        protocol_version=None,
        untrained=True,
        provenance={"kind": "random", "built_by": "bench/gpu_lmdeploy_families.py"},
        profile="generic",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("qwen2.5-vl-7b", "tiny"), default="qwen2.5-vl-7b")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=8, help="requests per concurrency level")
    parser.add_argument("--lmdeploy-env", default=None, help="lmdeploy's environment (default as geodesk)")
    parser.add_argument("--workdir", default=None, help="where the package goes (default: a temp folder)")
    parser.add_argument("--wait", type=float, default=1200.0, help="seconds to wait for lmdeploy to load")
    args = parser.parse_args(argv)

    from geodesk.services import lmdeploy_server as lm

    tiny = args.shape == "tiny"
    document: dict[str, Any] = {
        "benchmark": "gpu_lmdeploy_families",
        "machine": machine(),
        "family": "qwen2_5_vl",
        "shapes": "tiny" if tiny else "Qwen2.5-VL-7B (32-block ViT, 28-layer Qwen2 decoder)",
        "answer_tokens": args.tokens,
        "requests_per_level": args.requests,
        "concurrency": list(CONCURRENCY),
    }
    steps: dict[str, Any] = {}
    document["steps"] = steps
    gpu = lm.detect_nvidia_gpu()
    steps["gpu"] = {"present": gpu.present, "detail": gpu.detail}
    try:
        report = lm.require_usable_environment(lm.probe_environment(args.lmdeploy_env), args.lmdeploy_env)
        steps["environment"] = report.as_dict()
    except lm.LmdeployError as exc:
        steps["environment"] = {"usable": False, "reason": str(exc)}
        report = None
    if report is None or not gpu.present:
        document["ran"] = False
        document["reason"] = steps["environment"].get("reason") or f"no NVIDIA GPU ({gpu.detail})"
        return _finish(document, tiny)

    import torch

    device = torch.device("cuda")
    shapes: dict[str, Any] = QWEN_TINY if tiny else QWEN2_5_VL_7B
    processor = make_qwen_processor(shapes["pixels"])
    tok = processor.tokenizer
    specials = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>",
                "<|endoftext|>")
    ids = {t: int(tok.convert_tokens_to_ids(t)) for t in specials}
    model = build_qwen_model(shapes, device, ids, [ids["<|im_end|>"], ids["<|endoftext|>"]])
    with torch.no_grad():  # ids the tokenizer cannot decode are never chosen: every token is text
        model.lm_head.weight[len(tok) :] = 0
    bandwidth = copy_bandwidth(device, 1 << 30)
    per_token = bytes_per_token(model, 1300 + args.tokens // 2)  # ~1.2k image tokens at 1024x768
    bound = bandwidth / per_token
    document.update(bandwidth_bound_tokens_per_s=round(bound, 2), copy_bandwidth_bytes_per_s=round(bandwidth))
    with tempfile.TemporaryDirectory(prefix="geodesk-gpu-lmdeploy-", dir=args.workdir) as tmp:
        work = Path(tmp)
        manager = lm.LmdeployServer(work / "workspace", args.lmdeploy_env)
        try:
            save_qwen_package(model, processor, work / "package", f"random-qwen2.5-vl-{args.shape}")
            del model
            gc.collect()
            torch.cuda.empty_cache()
            launch = lm.served_folder(work / "workspace", work / "package")
            steps["served_folder"] = {"family": launch.family, "model_dir": str(launch.model_dir),
                                      "chat_template": launch.chat_template}
            lm.require_readable_config(launch, report)
            started = time.perf_counter()
            record = manager.start(
                launch.model_dir, model_name="qwen-geo", environment=report, wait_s=args.wait
            )
            steps["start"] = {"ran": True, "load_s": round(time.perf_counter() - started, 1),
                              "command": record.command}
            result = measure(record.endpoint, args.tokens, args.reps, args.requests, CONCURRENCY)
            result["fraction_of_bound_batch1"] = round(result["decode_tokens_per_s_batch1"] / bound, 4)
            document["lmdeploy"] = result
            status = manager.status()
            steps["status"] = {"running": status.running, "healthy": status.healthy}
            document["ran"] = True
        except Exception as exc:
            document["ran"] = False
            document["reason"] = f"{type(exc).__name__}: {exc}"
            document["trace"] = traceback.format_exc()
            if manager.log_path.is_file():
                document["log_tail"] = manager.log_path.read_text(errors="replace").splitlines()[-30:]
        finally:
            steps["stop"] = {"stopped": manager.stop(), "record_left": manager.pidfile.exists()}
    return _finish(document, tiny)


def _finish(document: dict[str, Any], tiny: bool) -> int:
    path = write_result("gpu_lmdeploy_families_tiny.json" if tiny else "gpu_lmdeploy_families.json", document)
    if document.get("ran"):
        part = document["lmdeploy"]
        print(
            f"lmdeploy qwen2_5_vl: ttft {part['ttft_s']} s, "
            f"decode {part['decode_tokens_per_s_batch1']} tok/s "
            f"({part['fraction_of_bound_batch1']:.0%} of bound)"
        )
    else:
        print(f"did not run: {document.get('reason')}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
