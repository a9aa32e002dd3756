"""``geodesk evidence``: add (import files and folders), list, show.

``evidence add`` exits 0 when every file was imported or was already there, 2 when some files failed
(the others are imported all the same), 1 when nothing could start (unknown case, no workspace).
"""

from __future__ import annotations

import argparse
from typing import Any

from geodesk.cli._common import (
    CliError,
    add_json_argument,
    emit,
    errors_as_sentences,
    progress_enabled,
    workspace_path,
)

EXIT_SOME_FAILED = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("evidence", help="import images into a case and inspect them")
    commands = parser.add_subparsers(dest="evidence_command", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "add",
        help="import image files and folders (recursive) into a case",
        description="Copy images into the case's content-addressed store (read-only), read their EXIF/XMP, "
        "make thumbnails. Exit 0 when nothing failed, 2 when some files failed.",
    )
    add.add_argument("case", metavar="CASE", help="case id or the start of its title")
    add.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders")
    add.add_argument("--workers", type=int, default=None, metavar="N",
                     help="worker processes (default: every core; 0: import in this process)")
    add.add_argument("--verify-decode", action="store_true",
                     help="decode every image in full to check its data (slower; default checks structure "
                     "and uses the camera's embedded thumbnail when there is one)")
    add_json_argument(add)
    add.set_defaults(handler=_add)

    listing = commands.add_parser("list", help="the evidence of a case")
    listing.add_argument("case", metavar="CASE", help="case id or the start of its title")
    add_json_argument(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one evidence item with its metadata")
    show.add_argument("case", metavar="CASE", help="case id or the start of its title")
    show.add_argument("evidence", metavar="EVIDENCE", help="SHA-256 or a unique prefix of it")
    add_json_argument(show)
    show.set_defaults(handler=_show)


def _add(args: argparse.Namespace) -> int:
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_evidence, report_document
    from geodesk.store import Workspace

    if args.workers is not None and args.workers < 0:
        raise CliError("--workers must be 0 or more")
    options = ImportOptions(workers=args.workers, verify_decode=args.verify_decode)
    bar: Any = None
    if progress_enabled(args):
        from tqdm import tqdm

        bar = tqdm(total=0, unit="file", desc="importing", leave=False)

    def progress(done: int, total: int, path: str | None) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        with errors_as_sentences():
            report = import_evidence(Workspace(workspace_path(args)), args.case, args.paths,
                                     options=options, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    document = report_document(report)
    emit(args, document, _add_text(document))
    return EXIT_SOME_FAILED if report.errors else 0


def _add_text(document: dict[str, Any]) -> str:
    imported, duplicates, errors = document["imported"], document["duplicates"], document["errors"]
    lines = [f"imported {len(imported)}, duplicates {len(duplicates)}, errors {len(errors)}"]
    lines += [f"  + {e['sha256'][:12]}  {e['original_name']}  {_where(e)}" for e in imported]
    for d in duplicates:
        already = "earlier in this batch" if d["within_batch"] else "already in the case"
        lines.append(f"  = {d['sha256'][:12]}  {d['path']}  ({already} as {d['existing_name']})")
    lines += [f"  ! {e['path']}: {e['error']}" for e in errors]
    lines += [f"  note: {note}" for note in document.get("notes", [])]
    return "\n".join(lines)


def _where(e: dict[str, Any]) -> str:
    place, gps = e.get("place"), e.get("gps")
    if place and (place.get("city") or place.get("country")):
        return ", ".join(p for p in (place.get("city"), place.get("country")) if p)
    if gps:
        return f"{gps['lat']:.5f}, {gps['lon']:.5f}"
    return "no GPS"


def _list(args: argparse.Namespace) -> int:
    from geodesk.services.importing import evidence_summary
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        items = [evidence_summary(e) for e in store.evidence.list()]
        case_id = store.case.id
    if items:
        human = "\n".join(
            f"{e['sha256'][:12]}  {e['format']:<4} {e['width']:>5}×{e['height']:<5}  "
            f"{e['taken_at'] or '-':<25}  {_where(e):<30}  {e['original_name']}"
            for e in items
        )
    else:
        human = f"case {case_id} has no evidence yet; add some with `geodesk evidence add {case_id} PATH...`"
    emit(args, {"case": case_id, "evidence": items}, human)
    return 0


def _show(args: argparse.Namespace) -> int:
    from geodesk.services.importing import evidence_details
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        details = evidence_details(store.evidence.get(args.evidence))
    gps, place = details["gps"], details["place"]
    lines = [
        f"{details['sha256']}",
        f"  name       {details['original_name']}  ({details['size_bytes']:,} bytes)",
        f"  image      {details['format']} {details['width']}×{details['height']} "
        f"(orientation {details['orientation']})",
        f"  taken      {details['taken_at'] or 'unknown'}"
        + ("" if details["taken_at"] is None or details["taken_at_has_offset"] else "  (no UTC offset)"),
        f"  camera     {details['camera'] or 'unknown'}",
        "  gps        " + ("none" if gps is None else f"{gps['lat']:.6f}, {gps['lon']:.6f}"
                              + ("" if gps["alt"] is None else f", {gps['alt']:.1f} m")),
    ]
    if place is not None:
        parts = [p for p in (place["city"], place["region"], place["country"]) if p]
        distance = "" if place["distance_km"] is None else f"  ({place['distance_km']:.1f} km from the place)"
        lines.append(f"  place      {', '.join(parts) or 'at sea'}{distance}")
    lines.append(f"  imported   {details['imported_at']} from {details['source_path']}")
    lines += [f"  note       {note}" for note in details["notes"]]
    emit(args, details, "\n".join(lines))
    return 0
