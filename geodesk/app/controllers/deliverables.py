"""The open case's deliverables: the report (previewed, then saved as HTML or PDF) and GIS exports.

Both read committed data (geodesk.services.reports). The report is built in a job (it decodes every
image); the PDF is printed by the view, which owns Qt WebEngine, from the same HTML the preview shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geodesk.app.controllers.base import Controller


@dataclass(frozen=True, slots=True)
class ReportDraft:
    """A report built for the case ``case_id``: what the preview shows and Save writes."""

    case_id: str
    html: str
    items: int


class DeliverablesController(Controller):
    def build_report(self, on_ready: Callable[[ReportDraft], None], *, include_rejected: bool = False,
                     redact_paths: bool = False, reference: str = "") -> bool:
        """Build the report of the open case in a job; ``on_ready`` gets it if that case is still open."""
        from geodesk.report.case_report import ReportOptions

        if self.ctx.store is None or self.state.case is None:
            self.ctx.say("Report", "open a case first")
            return False
        case_dir, case_id = Path(self.ctx.store.path), self.state.case.id
        options = ReportOptions(include_rejected=include_rejected, redact_paths=redact_paths,
                                reference=reference)

        def job(_ctx: Any) -> ReportDraft:
            from geodesk.services.reports import report_html
            from geodesk.store import CaseStore

            with CaseStore.open(case_dir) as store:  # the job's own connection
                html, items = report_html(store, options)
            return ReportDraft(case_id, html, items)

        def ready(draft: ReportDraft) -> None:
            if self.state.case is None or self.state.case.id != draft.case_id:
                return  # another case was opened meanwhile: this report is not the open case's
            on_ready(draft)

        self.ctx.start_job("report", job, "build report", on_result=ready,
                           on_failed=lambda m: self.ctx.say("Report", m))
        return True

    def save_report(self, draft: ReportDraft, out: Path, pdf: Callable[[str], bytes] | None = None) -> bool:
        """Write ``draft`` to ``out`` (.html, or .pdf through ``pdf``) and record it in the audit log."""
        from geodesk.services.reports import DeliverableError, write_html_or_pdf

        store = self.ctx.store
        if store is None or self.state.case is None or self.state.case.id != draft.case_id:
            self.ctx.say("Report", "the report belongs to a case that is no longer open; build it again")
            return False
        try:
            written = write_html_or_pdf(store, out, draft.html, draft.items, pdf, force=True)
        except (DeliverableError, OSError) as exc:
            self.ctx.say("Report", str(exc))
            return False
        self.ctx.say("Report", f"wrote {written.path} (sha256 {written.sha256[:12]}…)", error=False)
        return True

    def export(self, out: Path, what: Sequence[str] | None = None) -> bool:
        """GeoJSON, KML, KMZ or CSV of the open case, by the file's extension."""
        from geodesk.report.gis import KINDS
        from geodesk.services.reports import DeliverableError, write_export

        store = self.ctx.store
        if store is None:
            self.ctx.say("Export", "open a case first")
            return False
        try:
            written = write_export(store, out, tuple(what or KINDS), force=True)
        except (DeliverableError, OSError) as exc:
            self.ctx.say("Export", str(exc))
            return False
        self.ctx.say("Export", f"wrote {written.path} ({written.items} feature(s))", error=False)
        return True
