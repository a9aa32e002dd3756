"""Which model the desktop app uses, and loading it off the UI thread.

The app's active model is a model package folder: the one chosen in the model manager (kept in the
workspace settings under ``extra["desktop_model_path"]``), else the registry's active package when the
registry is installed. Loading goes through the engine's hf backend in a worker; torch and transformers
are imported there, never at app start.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_NAME = "geodesk-model.json"
MODEL_PATH_KEY = "desktop_model_path"
# Workspace settings spell dtype / quantization one way, the hf backend another.
DTYPE_TO_BACKEND = {"auto": "auto", "bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
QUANT_TO_BACKEND = {"none": "none", "4bit": "nf4", "8bit": "int8"}


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """What the model manager lists for a model folder, read from its manifest without loading it."""

    path: Path
    name: str
    version: str
    untrained: bool
    architecture: str
    provenance: str
    problem: str = ""  # non-empty when the folder is not a usable package

    def label(self) -> str:
        text = f"{self.name} {self.version}"
        if self.untrained:
            text += " — UNTRAINED (trial runs only)"
        if self.problem:
            text += f" — {self.problem}"
        return text


def read_package_info(folder: Path) -> PackageInfo:
    manifest = folder / MANIFEST_NAME
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return PackageInfo(
            folder, folder.name, "?", False, "?", "", f"no {MANIFEST_NAME}: not a model package"
        )
    except (OSError, ValueError) as exc:
        return PackageInfo(folder, folder.name, "?", False, "?", "", f"{MANIFEST_NAME} unreadable: {exc}")
    if not isinstance(data, dict):
        return PackageInfo(folder, folder.name, "?", False, "?", "", f"{MANIFEST_NAME} is not a JSON object")
    provenance = data.get("provenance") or {}
    return PackageInfo(
        path=folder,
        name=str(data.get("name", folder.name)),
        version=str(data.get("version", "?")),
        untrained=bool(data.get("untrained", False)),
        architecture=str(data.get("architecture", "?")),
        provenance=str(provenance.get("note") or provenance.get("kind") or "")
        if isinstance(provenance, dict)
        else str(provenance),
    )


def find_packages(root: Path, max_depth: int = 3) -> list[PackageInfo]:
    """Model packages (folders with a manifest) under ``root``, at most ``max_depth`` levels down."""
    found: list[PackageInfo] = []
    if not root.is_dir():
        return found

    def walk(folder: Path, depth: int) -> None:
        if (folder / MANIFEST_NAME).is_file():
            found.append(read_package_info(folder))
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            walk(child, depth + 1)

    walk(root, 0)
    return found


def load_backend(path: Path, device: str, dtype: str, quantization: str, cancel: threading.Event) -> Any:
    """Load the hf backend for ``path`` (blocking: call it in a worker). Errors say what to fix."""
    if not path.is_dir():
        raise ValueError(f"the model folder {path} does not exist; choose another in Models → Model manager")
    from geodesk.engine.backends.base import BackendError
    from geodesk.engine.backends.hf import HFBackend, HFOptions

    options = HFOptions(
        device=device,
        dtype=DTYPE_TO_BACKEND.get(dtype, "auto"),  # type: ignore[arg-type]
        quantization=QUANT_TO_BACKEND.get(quantization, "none"),  # type: ignore[arg-type]
    )
    try:
        backend = HFBackend(path, options)
    except BackendError as exc:
        raise ValueError(f"the model could not be loaded: {exc}") from None
    if cancel.is_set():
        backend.close()
        raise ValueError("model loading was cancelled")
    return backend
