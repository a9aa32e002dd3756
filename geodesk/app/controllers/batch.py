"""Locate all: every image of the open case without a finished session on this model (services.batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.controllers.evidence import EvidenceController
from geodesk.app.controllers.models import ModelsController
from geodesk.app.controllers.sessions import MODEL_BUSY, SessionsController
from geodesk.app.jobs import JobContext
from geodesk.app.state import Progress


class BatchController(Controller):
    def __init__(
        self, ctx: AppContext, evidence: EvidenceController, models: ModelsController,
        sessions: SessionsController,
    ) -> None:
        super().__init__(ctx)
        self.evidence = evidence
        self.models = models
        self.sessions = sessions
        self.last_report: Any = None  # the last services.batch.BatchReport

    def locate_all(self) -> bool:
        case_dir = self.state.case_dir
        if self.ctx.store is None or case_dir is None:
            self.ctx.say("Locate all", "open a case first")
            return False
        if self.state.model_busy:
            self.ctx.say("Locate all", MODEL_BUSY)
            return False
        if self.models.is_stale():
            self.models.load(then=self.locate_all)
            return False
        backend = self.models.backend
        settings = self.ctx.settings()
        mode, samples = self.state.session_mode, self.state.samples
        choice = self.state.model
        # One answer at a time in-process (one model in memory); remote servers take two each.
        endpoints = getattr(choice, "endpoints", ()) or ()
        workers = 2 * max(1, len(endpoints)) if settings.backend == "remote" else 1
        options = self.sessions.turn_options(None, samples)

        def job(ctx: JobContext) -> Any:
            from geodesk.domain.model import SessionMode
            from geodesk.services.batch import run_batch

            return run_batch(
                case_dir, backend, SessionMode(mode), options, workers=workers,
                progress=lambda done, total, sha: ctx.progress(done, total, sha[:12]),
                cancel=ctx.cancel,
            )

        def progress(done: int, total: int, sha: str) -> None:
            self.state.progress = Progress(done, total, sha)
            self.ctx.status(f"Locating {done}/{total} ({sha})")

        self.state.progress = Progress(0, 0, "")
        self.ctx.status("Locating every image of the case…")
        self.ctx.start_job(
            "batch", job, "locate all",
            on_result=lambda report: self._finished(case_dir, report),
            on_progress=progress,
            on_failed=lambda m: self.ctx.say("Locate all", m),
            on_finished=lambda: setattr(self.state, "progress", None),
        )
        return True

    def _finished(self, case_dir: Path, report: Any) -> None:
        self.last_report = report
        if self.state.case_dir == case_dir:
            self.evidence.refresh()
            if self.state.evidence is not None:
                # The selected item's newest session (the batch may have added one) is shown.
                sessions = self.ctx.case_store().sessions.list(evidence_sha256=self.state.evidence.sha256)
                self.evidence.reload(session_id=sessions[-1].id if sessions else None)
        self.ctx.status(
            f"Located {len(report.located)}, skipped {len(report.skipped)} (already located), "
            f"failed {len(report.failed)}" + (" — cancelled" if report.cancelled else "")
        )
        self.state.batch_finished.emit(report)
