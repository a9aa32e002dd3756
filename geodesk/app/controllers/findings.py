"""The finding of the selected item: a map click proposes a point; only :meth:`save` records a version."""

from __future__ import annotations

from geodesk.app.controllers.base import Controller
from geodesk.domain.model import Finding, FindingStatus


class FindingsController(Controller):
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
        from geodesk.services.findings import save_finding

        store, evidence = self.ctx.store, self.state.evidence
        if store is None or evidence is None:
            self.ctx.say("Finding", "open a case and choose an image first")
            return None
        try:
            finding = save_finding(store, evidence.sha256, lat, lon, radius_km, status, reasoning)
        except (LookupError, ValueError) as exc:
            self.ctx.say("Finding", str(exc.args[0]) if exc.args else str(exc))
            return None
        with self.state.batch():
            self.state.finding = finding
            self.state.finding_history = tuple(store.findings.history(evidence.sha256))
            self.state.proposed_point = None
            self.ctx.status(
                f"Finding v{finding.version} saved at {lat:.5f}, {lon:.5f} "
                f"(±{radius_km:g} km, {finding.status.value})"
            )
        return finding
