"""Clues of the selected evidence item: add, accept, reject, edit (geodesk.services.clues' rules).

Each change is a write in a job (``AppContext.write``: one at a time, in the order asked for), so the
UI thread never waits on the disk. The job stores the change and reads the item's clues back; they
are shown only while that item is still the selected one (another item's clues never reach the
views; what was stored stays stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.controllers.evidence import EvidenceController
from geodesk.app.jobs import JobContext
from geodesk.domain.model import Clue, ClueStatus, Region


@dataclass(frozen=True, slots=True)
class ClueWrite:
    """What a clue write's job gives back: the clue it stored (None: refused, with the reason) and
    the item's clues as they are after it."""

    clue: Clue | None
    refused: str
    clues: tuple[Clue, ...]


class CluesController(Controller):
    def __init__(self, ctx: AppContext, evidence: EvidenceController) -> None:
        super().__init__(ctx)
        self.evidence = evidence

    def _run(self, change: str, clue_id: int | None, text: str = "", category: str = "",
             region: Region | None = None) -> Clue | None:
        """Start the change; returns the stored clue when the runner ran it at once (the synchronous
        runner), None when it was refused or is still on its way (``state.clues`` shows it then)."""
        selected = self.evidence.selected()
        if selected is None:
            self.ctx.say("Clue", "open a case and choose an image first")
            return None
        case_dir, evidence = selected
        sha = evidence.sha256

        def job(_ctx: JobContext) -> ClueWrite:
            from geodesk.services import clues
            from geodesk.store import CaseStore

            with CaseStore.open_writer(case_dir) as store:
                try:
                    if change == "add":
                        clue = clues.add_clue(store, sha, category, text, region)
                    elif change == "edit":
                        assert clue_id is not None
                        clue = clues.edit_clue(store, clue_id, text)
                    else:
                        assert clue_id is not None
                        clue = clues.set_clue_status(store, clue_id, ClueStatus(change))
                except (LookupError, ValueError) as exc:
                    refused = str(exc.args[0]) if exc.args else str(exc)
                    return ClueWrite(None, refused, tuple(store.clues.list(evidence_sha256=sha)))
                return ClueWrite(clue, "", tuple(store.clues.list(evidence_sha256=sha)))

        stored: list[Clue] = []

        def done(outcome: ClueWrite) -> None:
            if outcome.refused:
                self.ctx.say("Clue", outcome.refused)
            else:
                assert outcome.clue is not None
                stored.append(outcome.clue)
            if not self.evidence.shows(case_dir, sha):
                return  # another item is shown now: this one's clues are stored, not shown
            with self.state.batch():
                self.state.clues = outcome.clues
                if change == "add" and outcome.clue is not None and self.state.pending_region == region:
                    self.state.pending_region = None  # pinned now

        name = f"{change} a clue" if change in ("add", "edit") else f"mark a clue {change}"
        self.ctx.write(job, name, on_result=done,
                       on_failed=lambda message: self._failed(case_dir, sha, message))
        return stored[0] if stored else None

    def _failed(self, case_dir: Path, sha: str, message: str) -> None:
        self.ctx.say("Clue", f"the clue could not be stored: {message}")
        if self.evidence.shows(case_dir, sha):
            self.evidence.reload_clues()  # whatever the store holds now

    def add(self, category: str, text: str, region: Region | None = None) -> Clue | None:
        return self._run("add", None, text=text, category=category, region=region)

    def set_status(self, clue_id: int, status: ClueStatus | str) -> Clue | None:
        return self._run(ClueStatus(status).value, clue_id)

    def accept(self, clue_id: int) -> Clue | None:
        return self.set_status(clue_id, ClueStatus.ACCEPTED)

    def reject(self, clue_id: int) -> Clue | None:
        return self.set_status(clue_id, ClueStatus.REJECTED)

    def edit(self, clue_id: int, text: str) -> Clue | None:
        return self._run("edit", clue_id, text=text)
