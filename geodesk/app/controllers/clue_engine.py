"""The clue engine in the desktop app: run it, mark the sun, combine the accepted clues, send them.

What it shows depends on the selected evidence item only: ``state.engine_clues`` (the item's engine
clues with their confidence, likelihoods and provenance), ``state.clue_constraint`` (the combined view
of the accepted ones: leading countries with their reasons and the map layer), ``state.turn_flags``
(the contradictions between the item's turns and its accepted clues) and ``state.sun_marks``. All are
reset with the selection (``AppState.clear_selection``) and re-read here whenever the item, its clues
or its turns change. Reading the engine clues and the stored flags takes milliseconds on the UI
thread; recording new flags and combining the clues (which loads the borders and CLDR tables once)
run as a job, whose result is shown only if the same item is still selected and no newer check was
started. Review (accept, reject, edit) is the ordinary clue review (:class:`CluesController`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.controllers.evidence import EvidenceController
from geodesk.app.controllers.sessions import SessionsController
from geodesk.app.jobs import JobContext
from geodesk.app.state import SunMarks
from geodesk.domain.model import ClueStatus, Region

ENGINE_JOB = "clue engine"
CHECK_JOB = "clue check"
SUN_JOB = "sun clue"
REVIEWED = (ClueStatus.ACCEPTED, ClueStatus.EDITED)


class ClueEngineController(Controller):
    def __init__(self, ctx: AppContext, evidence: EvidenceController, sessions: SessionsController) -> None:
        super().__init__(ctx)
        self.evidence = evidence
        self.sessions = sessions
        self.ocr = "hybrid"  # geodesk.services.clue_engine.DEFAULT_OCR; tests choose a faster reader
        self._check = 0  # the newest check started; an older one's result is dropped
        self.state.watch_any(("evidence", "clues", "turns", "selection_loading"), self.reload)

    # -- what the views show
    def _selection(self) -> tuple[Path | None, str | None]:
        evidence = self.state.evidence
        return self.state.case_dir, None if evidence is None else evidence.sha256

    def _still_selected(self, case_dir: Path | None, sha: str | None) -> bool:
        return sha is not None and self._selection() == (case_dir, sha)

    def reload(self) -> None:
        """Re-read the selected item's engine clues and flags now, and check and combine them in a job."""
        store = self.ctx.store
        case_dir, sha = self._selection()
        self._check += 1
        if store is None or case_dir is None or sha is None or self.state.selection_loading:
            return  # clear_selection has emptied the fields (they are read once the rows are in)
        engine_clues = tuple(store.engine_clues.list(sha))
        with self.state.batch():
            self.state.engine_clues = engine_clues
            self.state.turn_flags = tuple(f for f in store.turn_flags.list(evidence_sha256=sha) if f.counts)
            if not engine_clues:
                self.state.clue_constraint = None
        if not engine_clues:
            return  # nothing to check the turns against or to combine: no job
        check = self._check

        def job(ctx: JobContext) -> tuple[list[Any], dict[str, Any]]:
            from geodesk.services.clue_engine import constraint_for, record_turn_flags
            from geodesk.store import CaseStore

            with CaseStore.open(case_dir) as job_store:  # this thread's own connection
                record_turn_flags(job_store, sha)
                flags = [f for f in job_store.turn_flags.list(evidence_sha256=sha) if f.counts]
                return flags, constraint_for(job_store, sha)

        def done(result: tuple[list[Any], dict[str, Any]]) -> None:
            if check != self._check or not self._still_selected(case_dir, sha):
                return  # another item, or a newer check of this one, is shown now
            flags, document = result
            with self.state.batch():
                self.state.turn_flags = tuple(flags)
                self.state.clue_constraint = document

        def failed(message: str) -> None:
            if check == self._check and self._still_selected(case_dir, sha):
                self.ctx.say("Clue engine", f"the accepted clues could not be combined: {message}")

        self.ctx.start_job(CHECK_JOB, job, "combine accepted clues", on_result=done, on_failed=failed)

    @property
    def accepted(self) -> list[Any]:
        """The selected item's accepted (or edited) engine clues."""
        return [c for c in self.state.engine_clues if c.clue.status in REVIEWED]

    # -- running the engine
    def run(self, region: Region | None = None) -> bool:
        """Run the clue engine on the selected item (only ``region`` of it when given) in a job."""
        case_dir, sha = self._selection()
        if self.ctx.store is None or case_dir is None or sha is None:
            self.ctx.say("Clue engine", "open a case and choose an image first")
            return False
        if ENGINE_JOB in self.state.busy:
            self.ctx.say("Clue engine", "the clue engine is already running; wait for it to finish")
            return False
        ocr = self.ocr

        def job(ctx: JobContext) -> Any:
            from geodesk.services.clue_engine import run_engine
            from geodesk.store import CaseStore

            with CaseStore.open(case_dir) as store:
                return run_engine(store, sha, ocr=ocr, region=region)

        def done(run: Any) -> None:
            name = self.evidence.name_of(sha)
            summary = f"Clue engine on {name}: {len(run.added)} new clue(s)"
            if run.skipped:
                summary += f", {run.skipped} already there"
            self.ctx.status(summary)
            if self._still_selected(case_dir, sha):
                self.evidence.reload_clues()
            if not run.ok:
                self.ctx.say("Clue engine", f"{name}: " + "; ".join(run.messages))

        where = "the drawn region" if region is not None else "the image"
        self.ctx.status(f"Running the clue engine on {where}…")
        self.ctx.start_job(
            ENGINE_JOB,
            job,
            "run clue engine",
            on_result=done,
            on_failed=lambda m: self.ctx.say("Clue engine", m),
        )
        return True

    def run_all(self) -> bool:
        """Run the clue engine on every item of the open case; one item's failure never stops the rest."""
        case_dir = self.state.case_dir
        if self.ctx.store is None or case_dir is None:
            self.ctx.say("Clue engine", "open a case first")
            return False
        if ENGINE_JOB in self.state.busy:
            self.ctx.say("Clue engine", "the clue engine is already running; wait for it to finish")
            return False
        ocr = self.ocr
        total = len(self.state.evidence_items)

        def job(ctx: JobContext) -> Any:
            from geodesk.services.clue_engine import run_engine_batch
            from geodesk.store import CaseStore

            done = [0]

            def item(run: Any) -> None:
                done[0] += 1
                ctx.progress(done[0], total, run.evidence[:12])
                ctx.check()

            with CaseStore.open(case_dir) as store:
                return run_engine_batch(store, ocr=ocr, on_item=item)

        def finished(runs: list[Any]) -> None:
            self.state.progress = None
            added = sum(len(r.added) for r in runs)
            failed = [r for r in runs if not r.ok]
            self.ctx.status(f"Clue engine on {len(runs)} image(s): {added} new clue(s)")
            if self.state.case_dir == case_dir:
                self.evidence.reload_clues()
            if failed:
                lines = [f"{self.evidence.name_of(r.evidence)}: {'; '.join(r.messages)}" for r in failed]
                self.ctx.say("Clue engine", f"{len(failed)} image(s) had problems:\n" + "\n".join(lines[:30]))

        def progress(done: int, count: int, text: str) -> None:
            from geodesk.app.state import Progress

            self.state.progress = Progress(done, count, text)

        self.ctx.status(f"Running the clue engine on {total} image(s)…")
        self.ctx.start_job(
            ENGINE_JOB,
            job,
            "run clue engine on the case",
            on_result=finished,
            on_progress=progress,
            on_failed=lambda m: self.ctx.say("Clue engine", m),
            on_cancelled=lambda: self.evidence.reload_clues(),
            on_finished=lambda: setattr(self.state, "progress", None),
        )
        return True

    # -- the sun
    def set_sun_marking(self, on: bool) -> None:
        self.state.sun_marking = bool(on) and self.state.evidence is not None

    def mark_object(self, box: Region) -> None:
        """The vertical object's box (its base is the box's bottom edge); a new box drops the old tip."""
        if self.state.evidence is not None:
            self.state.sun_marks = SunMarks(box, None)

    def mark_shadow_tip(self, x: float, y: float) -> None:
        marks = self.state.sun_marks
        if self.state.evidence is None or marks is None or marks.object_box is None:
            self.ctx.status("Mark the object first: drag a box from its top to its base")
            return
        self.state.sun_marks = SunMarks(marks.object_box, (float(x), float(y)))

    def clear_sun_marks(self) -> None:
        self.state.sun_marks = None

    def add_sun(self, time_text: str = "", ratio_text: str = "") -> bool:
        """A sun clue from the marks (or a typed height / shadow ratio) and a time (blank: EXIF's)."""
        case_dir, sha = self._selection()
        if self.ctx.store is None or case_dir is None or sha is None:
            self.ctx.say("Sun", "open a case and choose an image first")
            return False
        when: datetime | None = None
        if time_text.strip():
            try:
                when = datetime.fromisoformat(time_text.strip())
            except ValueError:
                self.ctx.say(
                    "Sun", f"{time_text.strip()!r} is not a time; write it as 2024-06-21T14:05:00+02:00"
                )
                return False
        ratio: float | None = None
        if ratio_text.strip():
            try:
                ratio = float(ratio_text.strip().replace(",", "."))
            except ValueError:
                self.ctx.say("Sun", f"{ratio_text.strip()!r} is not a number; give the height / shadow ratio")
                return False
        marks = self.state.sun_marks or SunMarks()
        if ratio is None and not marks.complete:
            self.ctx.say(
                "Sun", "mark the object (drag a box) and its shadow's tip (click), or type the ratio"
            )
            return False
        box, tip = (None, None) if ratio is not None else (marks.object_box, marks.shadow_tip)

        def job(ctx: JobContext) -> Any:
            from geodesk.services.clue_engine import add_sun_clue
            from geodesk.store import CaseStore

            with CaseStore.open(case_dir) as store:
                return add_sun_clue(store, sha, object_box=box, shadow_tip=tip, ratio=ratio, when=when)

        def done(clue: Any) -> None:
            self.ctx.status(f"Sun clue added: {clue.clue.text}")
            if self._still_selected(case_dir, sha):
                with self.state.batch():
                    self.state.sun_marks = None
                    self.state.sun_marking = False
                    self.evidence.reload_clues()

        self.ctx.start_job(
            SUN_JOB, job, "sun clue", on_result=done, on_failed=lambda m: self.ctx.say("Sun", m)
        )
        return True

    # -- the model
    def send_accepted(self) -> bool:
        """The accepted engine clues as the selected session's next +QA hint (a model turn)."""
        from geodesk.services.clue_engine import accepted_clues_hint
        from geodesk.services.sessions import SessionError

        store, session = self.ctx.store, self.state.session
        if store is None or session is None or session.id is None:
            self.ctx.say(
                "Clue hint", "start a session first: the accepted clues go to it as the next turn's hint"
            )
            return False
        try:
            hint = accepted_clues_hint(store, session.id)
        except SessionError as exc:
            self.ctx.say("Clue hint", str(exc))
            return False
        return self.sessions.send_hint(hint)
