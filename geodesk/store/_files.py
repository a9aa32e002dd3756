"""File helpers: atomic JSON writes and streaming SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from geodesk.atomic import atomic_write_json

CHUNK = 1 << 20  # 1 MiB: large originals stream through; memory stays flat


def write_json_atomic(path: Path, document: object) -> None:
    """Case and settings JSON: sorted keys, so the files diff cleanly between versions."""
    atomic_write_json(path, document, sort_keys=True)


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
