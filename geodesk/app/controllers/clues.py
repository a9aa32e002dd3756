"""Clues of the selected evidence item: add, accept, reject, edit (geodesk.services.clues' rules)."""

from __future__ import annotations

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.controllers.evidence import EvidenceController
from geodesk.domain.model import Clue, ClueStatus, Region


class CluesController(Controller):
    def __init__(self, ctx: AppContext, evidence: EvidenceController) -> None:
        super().__init__(ctx)
        self.evidence = evidence

    def _run(self, change: str, clue_id: int | None, text: str = "", category: str = "",
             region: Region | None = None) -> Clue | None:
        from geodesk.services import clues

        store = self.ctx.store
        if store is None or self.state.evidence is None:
            self.ctx.say("Clue", "open a case and choose an image first")
            return None
        try:
            if change == "add":
                clue = clues.add_clue(store, self.state.evidence.sha256, category, text, region)
            elif change == "edit":
                assert clue_id is not None
                clue = clues.edit_clue(store, clue_id, text)
            else:
                assert clue_id is not None
                clue = clues.set_clue_status(store, clue_id, ClueStatus(change))
        except (LookupError, ValueError) as exc:
            self.ctx.say("Clue", str(exc.args[0]) if exc.args else str(exc))
            self.evidence.reload_clues()
            return None
        self.evidence.reload_clues()
        if change == "add" and region is not None:
            self.state.pending_region = None  # pinned now
        return clue

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
