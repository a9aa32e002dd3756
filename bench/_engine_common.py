"""Shared helpers for the benchmark scripts: machine description and atomic JSON result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import torch
    import transformers

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        import bitsandbytes
        import peft

        info["bitsandbytes"] = bitsandbytes.__version__
        info["peft"] = peft.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_bytes"] = props.total_memory
        info["cuda"] = torch.version.cuda
    return info


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def write_result(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=RESULTS)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2)
        fh.write("\n")
    Path(tmp).replace(path)
    return path
