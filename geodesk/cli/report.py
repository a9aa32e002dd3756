"""``geodesk report`` and ``geodesk export``: the case report (HTML/PDF) and GIS exports."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit, workspace_path


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report", help="write the case report as one self-contained HTML file or a PDF",
        description="Write the case report (cover with the audit chain head and verify result, summary "
                    "table, one section per evidence item, methods and audit extract). Recorded in the "
                    "case's audit log with the file's SHA-256.",
    )
    report.add_argument("case", metavar="CASE", help="case id or unique title prefix")
    report.add_argument("out", metavar="OUT", type=Path, help="OUT.html or OUT.pdf")
    report.add_argument("--evidence", action="append", default=[], metavar="SHA",
                        help="only this evidence item (SHA-256 or unique prefix; repeat for several)")
    report.add_argument("--include-rejected", action="store_true", help="list rejected clues too")
    report.add_argument("--redact-paths", action="store_true",
                        help="leave out the analyst's local file paths (import sources, case folder)")
    report.add_argument("--reference", default="", help="the analyst's case reference for the cover")
    report.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_json_argument(report)
    report.set_defaults(handler=_report)

    export = subparsers.add_parser(
        "export", help="export findings, predictions and EXIF points as GeoJSON, KML, KMZ or CSV",
        description="GeoJSON (RFC 7946, lon/lat, WGS 84) for QGIS, KML 2.2 / KMZ for Google Earth (the "
                    "finding radius as a circle), CSV with one row per evidence item.",
    )
    export.add_argument("case", metavar="CASE", help="case id or unique title prefix")
    export.add_argument("out", metavar="OUT", type=Path, help="OUT.geojson, OUT.kml, OUT.kmz or OUT.csv")
    export.add_argument("--what", default="findings,predictions,exif,clues",
                        help="comma-separated: findings, predictions, exif, clues (default: all)")
    export.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_json_argument(export)
    export.set_defaults(handler=_export)


def _open(args: argparse.Namespace) -> Any:
    from geodesk.store.workspace import Workspace

    try:
        return Workspace(workspace_path(args)).open_case(args.case)
    except LookupError as exc:
        raise CliError(str(exc.args[0]) if exc.args else str(exc)) from None


def _pdf_renderer() -> Any:
    from geodesk.cli._launch import FLAGS_VARIABLE, webengine_flags

    flags, _note = webengine_flags(os.geteuid(), os.environ)
    if flags is not None:
        os.environ[FLAGS_VARIABLE] = flags
    try:
        from geodesk.qt.pdf import PdfError, html_to_pdf
    except ImportError as exc:
        raise CliError(f"PDF output needs Qt WebEngine, which cannot load here ({exc}); write .html "
                       "instead, or run `geodesk doctor`") from None

    def render(html: str) -> bytes:
        try:
            return html_to_pdf(html)
        except PdfError as exc:
            raise CliError(str(exc)) from None

    return render


def _report(args: argparse.Namespace) -> int:
    from geodesk.report.case_report import ReportOptions
    from geodesk.services.reports import DeliverableError, write_report

    options = ReportOptions(evidence=tuple(args.evidence), include_rejected=args.include_rejected,
                            redact_paths=args.redact_paths, reference=args.reference)
    renderer = _pdf_renderer() if args.out.suffix.lower() == ".pdf" else None
    with _open(args) as store:
        try:
            written = write_report(store, args.out, options, renderer, force=args.force)
        except DeliverableError as exc:
            raise CliError(str(exc)) from None
    emit(args, written.as_document(),
         f"wrote {written.path} ({written.items} evidence item(s), sha256 {written.sha256})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from geodesk.services.reports import DeliverableError, write_export

    what = [w.strip() for w in args.what.split(",") if w.strip()]
    with _open(args) as store:
        try:
            written = write_export(store, args.out, what, force=args.force)
        except DeliverableError as exc:
            raise CliError(str(exc)) from None
    emit(args, written.as_document(), f"wrote {written.path} ({written.items} feature(s))")
    return 0
