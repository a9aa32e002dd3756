"""The finding of the selected item: a map click proposes a point; only :meth:`save` records a version.

Saving is a write in a job (``AppContext.write``: one at a time, in the order asked for): the job
stores the new version and reads the item's history back; they are shown only while that item is
still the selected one.
"""

from __future__ import annotations

from dataclasses import dataclass

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.controllers.evidence import EvidenceController
from geodesk.app.jobs import JobContext
from geodesk.domain.model import Finding, FindingStatus


@dataclass(frozen=True, slots=True)
class FindingWrite:
    """A save's outcome: the stored version and the history after it, or the reason it was refused."""

    finding: Finding | None
    refused: str
    history: tuple[Finding, ...] = ()


class FindingsController(Controller):
    def __init__(self, ctx: AppContext, evidence: EvidenceController) -> None:
        super().__init__(ctx)
        self.evidence = evidence

    def propose_point(self, lat: float, lon: float) -> bool:
        """The finding form fills in with this point; nothing is stored until the analyst saves."""
        if self.state.evidence is None:
            self.ctx.status("Open a case and choose an image before placing a finding")
            return False
        self.state.proposed_point = (round(lat, 6), round(lon, 6))
        self.ctx.status(f"Proposed finding point {lat:.5f}, {lon:.5f}: Save finding to record it")
        return True

    def save(
        self,
        lat: float,
        lon: float,
        radius_km: float,
        status: FindingStatus | str = FindingStatus.UNVERIFIED,
        reasoning: str = "",
    ) -> Finding | None:
        """Record a new version in a job. Returns it when the runner ran the job at once (the
        synchronous runner); None when it was refused (the reason is said) or is still on its way
        (``state.finding`` shows it once stored, if the item is still selected)."""
        selected = self.evidence.selected()
        if selected is None:
            self.ctx.say("Finding", "open a case and choose an image first")
            return None
        case_dir, evidence = selected
        sha, proposed = evidence.sha256, self.state.proposed_point

        def job(_ctx: JobContext) -> FindingWrite:
            from geodesk.services.findings import save_finding
            from geodesk.store import CaseStore

            with CaseStore.open_writer(case_dir) as store:
                try:
                    finding = save_finding(store, sha, lat, lon, radius_km, status, reasoning)
                except (LookupError, ValueError) as exc:
                    return FindingWrite(None, str(exc.args[0]) if exc.args else str(exc))
                return FindingWrite(finding, "", tuple(store.findings.history(sha)))

        stored: list[Finding] = []

        def done(outcome: FindingWrite) -> None:
            finding = outcome.finding
            if finding is None:
                self.ctx.say("Finding", outcome.refused)
                return
            stored.append(finding)
            saved = (f"Finding v{finding.version} saved at {lat:.5f}, {lon:.5f} "
                     f"(±{radius_km:g} km, {finding.status.value})")
            if not self.evidence.shows(case_dir, sha):  # stored; another item is shown now
                self.ctx.status(f"{saved} for {evidence.original_name}")
                return
            with self.state.batch():
                self.state.finding = finding
                self.state.finding_history = outcome.history
                if self.state.proposed_point == proposed:  # a point proposed since then stays
                    self.state.proposed_point = None
                self.ctx.status(saved)

        def failed(message: str) -> None:
            self.ctx.say("Finding", f"the finding could not be saved: {message}")

        self.ctx.write(job, "save a finding", on_result=done, on_failed=failed)
        return stored[0] if stored else None
