"""Evidence import as a use case: paths in, a case updated, a report out (CLI and desktop app alike).

``import_evidence`` opens the case by reference; ``import_into`` takes an already open store (the
desktop app's import worker holds one per thread). Both take a progress callback
``(done, total, current_path)`` and a ``threading.Event`` to cancel between files. The place of each
GPS point comes from the offline gazetteer, looked up for every ready batch of files at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geodesk.domain.model import Evidence, GpsPoint, Place
from geodesk.evidence.pipeline import (
    Duplicate,
    FileError,
    ImportOptions,
    ImportReport,
    PlaceLookup,
    ProgressCallback,
    collect_sources,
    run_import,
)
from geodesk.store import CaseStore, Workspace
from geodesk.store._codec import to_text


def gazetteer_places(points: Sequence[GpsPoint]) -> list[Place | None]:
    """Places of GPS points from the default gazetteer (loaded on first use, then kept), named as a
    person would name them (the city by population and distance, ADR 0033)."""
    from geodesk.geo.gazetteer import default_gazetteer, places_from_columns

    columns = default_gazetteer().named_columns([p.lat for p in points], [p.lon for p in points])
    return list(places_from_columns(columns))


def warm_gazetteer_in_background() -> threading.Thread:
    """Build the gazetteer's indexes (about a second, once per process) while the workers start and
    hash, instead of in the middle of the import when the first GPS point needs its place."""

    def warm() -> None:
        with contextlib.suppress(Exception):  # a failure shows up, with its message, at the first lookup
            gazetteer_places([GpsPoint(0.0, 0.0)])

    thread = threading.Thread(target=warm, name="geodesk-gazetteer-warmup", daemon=True)
    thread.start()
    return thread


def import_into(
    store: CaseStore,
    paths: Sequence[str | os.PathLike[str]],
    *,
    options: ImportOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    locate: PlaceLookup | None = gazetteer_places,
) -> ImportReport:
    """Import files and folders into an open case; refused paths are reported with the file errors."""
    sources, refused = collect_sources(paths)
    if locate is gazetteer_places and sources:
        warm_gazetteer_in_background()
    report = run_import(store, sources, options=options or ImportOptions(), locate=locate, progress=progress,
                        cancel=cancel)
    # Refusals first: they were decided before any file was read, and their paths are the ones named.
    report.errors[:0] = refused
    return report


def import_evidence(
    workspace: Workspace | Path,
    case_ref: str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    options: ImportOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ImportReport:
    """Import into the case ``case_ref`` (id or unique title prefix) of ``workspace``."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    with ws.open_case(case_ref) as store:
        return import_into(store, paths, options=options, progress=progress, cancel=cancel)


# --- documents for the CLI (and anything else that speaks JSON) ---------------------------------------


def evidence_summary(e: Evidence) -> dict[str, Any]:
    """The fields `evidence list` and `evidence add` print for one item."""
    return {
        "sha256": e.sha256,
        "original_name": e.original_name,
        "size_bytes": e.size_bytes,
        "width": e.width,
        "height": e.height,
        "format": e.format,
        "gps": None if e.gps is None else {"lat": e.gps.lat, "lon": e.gps.lon, "alt": e.gps.alt},
        "taken_at": e.taken_at,
        "camera": e.camera,
        "place": None if e.place is None else e.place.as_dict(),
    }


def evidence_details(e: Evidence) -> dict[str, Any]:
    """Everything `evidence show` prints: the summary plus provenance and the full metadata."""
    return {
        **evidence_summary(e),
        "orientation": e.orientation,
        "imported_at": to_text(e.imported_at),
        "source_path": e.source_path,
        "taken_at_has_offset": bool(e.metadata.get("taken_at_has_offset", False)),
        "notes": list(e.metadata.get("notes", [])),
        "metadata": e.metadata,
    }


def duplicate_document(d: Duplicate) -> dict[str, Any]:
    return d.as_dict()


def error_document(e: FileError) -> dict[str, str]:
    return e.as_dict()


def report_document(report: ImportReport) -> dict[str, Any]:
    """``{"imported": [...], "duplicates": [...], "errors": [{"path", "error"}], "cancelled": bool,
    "notes": [...]}``; notes are about the run as a whole (e.g. it ran without worker processes)."""
    return {
        "imported": [evidence_summary(e) for e in report.imported],
        "duplicates": [duplicate_document(d) for d in report.duplicates],
        "errors": [error_document(e) for e in report.errors],
        "cancelled": report.cancelled,
        "notes": list(report.notes),
    }
