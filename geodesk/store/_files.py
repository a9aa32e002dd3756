"""The store's JSON files (case.json, settings.json): sorted keys, through geodesk.atomic."""

from __future__ import annotations

from pathlib import Path

from geodesk.atomic import atomic_write_json


def write_json_atomic(path: Path, document: object) -> None:
    """Case and settings JSON: sorted keys, so the files diff cleanly between versions."""
    atomic_write_json(path, document, sort_keys=True)
