"""``geodesk batch CASE``: locate every evidence item of a case that has no session on this model yet."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from geodesk.cli._common import CliError, emit
from geodesk.cli.session import _model_arguments, _open_backend, _open_case, _turn_options
from geodesk.domain.model import SessionMode


def register(subparsers: Any) -> None:
    batch = subparsers.add_parser(
        "batch",
        help="locate every evidence item without a finished session on this model (resumable)",
    )
    batch.add_argument("case", metavar="CASE", help="case id or unique title prefix")
    batch.add_argument("--mode", choices=[m.value for m in SessionMode], default="direct")
    batch.add_argument(
        "--workers",
        type=int,
        default=None,
        help="concurrent requests (default: 1 for hf, 2 per endpoint for remote)",
    )
    _model_arguments(batch)
    batch.set_defaults(handler=_batch)


def _batch(args: argparse.Namespace) -> int:
    from geodesk.services.batch import run_batch
    from geodesk.services.sessions import backend_profile

    if args.stream:
        raise CliError("--stream shows one answer at a time; it does not go with batch")
    workers = args.workers or (2 * max(1, len(args.endpoint)) if args.backend == "remote" else 1)
    if workers < 1:
        raise CliError("--workers must be at least 1")
    if args.backend == "hf" and workers > 1:
        sys.stderr.write("geodesk: the in-process model answers one request at a time; using 1 worker\n")
        workers = 1
    store = _open_case(args, args.case)
    case_dir = store.path
    store.close()
    backend = _open_backend(args)
    text_mode = not args.json

    def item(row: dict[str, Any]) -> None:
        # Text mode prints each item as it finishes: the lines are the progress.
        if text_mode:
            sys.stdout.write(_item_line(row) + "\n")
            sys.stdout.flush()

    try:
        options = _turn_options(args, backend_profile(backend))
        report = run_batch(case_dir, backend, SessionMode(args.mode), options, workers=workers, on_item=item)
    finally:
        backend.close()
    document = report.as_document()
    human = (f"{len(report.located)} located, {len(report.skipped)} already done, {len(report.failed)} "
             f"failed of {report.total}")
    emit(args, document, human)
    return 2 if report.failed else 0


def _item_line(row: dict[str, Any]) -> str:
    name = row.get("original_name") or ""
    head = f"{row['evidence'][:12]} {name}".rstrip()
    if "error" in row:
        return f"{head}: failed: {row['error']}"
    place = ", ".join(x for x in (row["city"], row["region"], row["country"]) if x) or "no place named"
    where = "no coordinates" if row["lat"] is None else f"{row['lat']:.4f}, {row['lon']:.4f}"
    exif = "" if row["exif_km"] is None else f", {row['exif_km']:.1f} km from its EXIF point"
    valid = "" if row["valid"] else " (not a valid answer)"
    return f"{head}: session {row['session']}: {place} ({where}){exif}{valid}"
