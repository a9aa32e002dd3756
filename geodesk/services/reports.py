"""Deliverables: the case report (HTML, PDF) and the GIS exports, written from committed data only.

Both read the case and never change what it holds; the one write is the audit entry that records a
report (with the file's SHA-256), so a reader can match a report to the case it came from. The PDF is
printed from the same HTML by a renderer the caller supplies (the CLI passes Qt WebEngine's
``printToPdf`` from ``geodesk.qt.pdf``; this layer imports no Qt).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_bytes, atomic_write_text
from geodesk.report.case_report import ReportOptions, collect_report, render_html
from geodesk.report.gis import FORMATS, KINDS, collect_features, to_csv, to_geojson, to_kml, to_kmz
from geodesk.store.case_store import CaseStore

# html text -> PDF bytes
PdfRenderer = Callable[[str], bytes]
REPORT_FORMATS = (".html", ".htm", ".pdf")


class DeliverableError(Exception):
    """The report or export cannot be written; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    sha256: str
    size_bytes: int
    items: int

    def as_document(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "size_bytes": self.size_bytes,
                "items": self.items}


def _borders() -> dict[str, Any] | None:
    from geodesk.report.map_page import default_borders_path, load_borders

    path = default_borders_path()
    return None if path is None else load_borders(path)


def report_html(store: CaseStore, options: ReportOptions) -> tuple[str, int]:
    """The report's HTML and how many evidence items it covers (nothing is written)."""
    from geodesk.services.cases import verify_case

    try:
        data = collect_report(store, options, verify_case(store), datetime.now(UTC), _borders())
    except LookupError as exc:
        raise DeliverableError(str(exc.args[0]) if exc.args else str(exc)) from None
    return render_html(data), len(data["summary"])


def _check_report_target(out: Path, force: bool) -> None:
    if out.suffix.lower() not in REPORT_FORMATS:
        raise DeliverableError(f"a report is .html or .pdf, not {out.name!r}")
    if out.exists() and not force:
        raise DeliverableError(f"{out} exists; choose another name or pass --force to replace it")


def write_report(store: CaseStore, out: Path, options: ReportOptions,
                 pdf_renderer: PdfRenderer | None = None, *, force: bool = False) -> Written:
    _check_report_target(out, force)  # before the build, which decodes every image
    html, items = report_html(store, options)
    return write_html_or_pdf(store, out, html, items, pdf_renderer, force=True,
                             include_rejected=options.include_rejected, redacted=options.redact_paths)


def write_html_or_pdf(store: CaseStore, out: Path, html: str, items: int,
                      pdf_renderer: PdfRenderer | None = None, *, force: bool = False,
                      include_rejected: bool = False, redacted: bool = False) -> Written:
    """Write a built report (the app's previewed one, or the CLI's) and record it in the audit log."""
    _check_report_target(out, force)
    suffix = out.suffix.lower()
    if suffix == ".pdf":
        if pdf_renderer is None:
            raise DeliverableError("PDF output needs Qt WebEngine; write .html, or run where the app runs")
        data = pdf_renderer(html)
    else:
        data = html.encode("utf-8")
    atomic_write_bytes(out, data)
    digest = hashlib.sha256(data).hexdigest()
    with store.transaction():
        store.audit.append("report.write", f"case:{store.case.id}", {
            "sha256": digest, "format": suffix.lstrip("."), "items": items,
            "include_rejected": include_rejected, "redacted_paths": redacted,
            **({} if redacted else {"path": str(out)}),
        })
    return Written(out, digest, len(data), items)


def write_export(store: CaseStore, out: Path, what: Sequence[str] = KINDS, *, force: bool = False) -> Written:
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise DeliverableError(f"exports are {', '.join(FORMATS)}; not {out.name!r}")
    if out.exists() and not force:
        raise DeliverableError(f"{out} exists; choose another name or pass --force to replace it")
    try:
        features = collect_features(store, what)
    except ValueError as exc:
        raise DeliverableError(str(exc)) from None
    title = store.case.title
    if suffix in (".geojson", ".json"):
        atomic_write_text(out, to_geojson(features))
    elif suffix == ".kml":
        atomic_write_text(out, to_kml(features, title))
    elif suffix == ".kmz":
        atomic_write_bytes(out, to_kmz(features, title))
    else:
        atomic_write_text(out, to_csv(store, what))
    data = out.read_bytes()
    return Written(out, hashlib.sha256(data).hexdigest(), len(data), len(features))
