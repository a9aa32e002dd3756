"""Cases: list, create, open and close. Opening or closing a case resets every view of the selection."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from geodesk.app.controllers.base import AppContext, Controller

if TYPE_CHECKING:
    from geodesk.app.controllers.evidence import EvidenceController

log = logging.getLogger(__name__)
RECENT_CASES = 8


class CasesController(Controller):
    def __init__(self, ctx: AppContext, evidence: EvidenceController) -> None:
        super().__init__(ctx)
        self.evidence = evidence

    def refresh(self) -> None:
        cases = tuple(self.ctx.workspace.list_cases())
        known = {c.id for c in cases}
        recent = tuple(c for c in self.ctx.settings().recent_cases if c in known)
        with self.state.batch():
            self.state.cases = cases
            self.state.recent_cases = recent

    def create(self, title: str) -> str | None:
        """Create a case and open it; its id, or None (the reason is a message)."""
        try:
            case = self.ctx.workspace.create_case(title)
        except ValueError as exc:
            self.ctx.say("New case", str(exc))
            return None
        self.open(case.id)
        return case.id

    def open(self, ref: str) -> bool:
        """Open a case by id or unique title prefix; the previous case and its selection are closed."""
        try:
            store = self.ctx.workspace.open_case(ref)
        except (LookupError, ValueError, OSError) as exc:
            lookup = isinstance(exc, LookupError) and exc.args
            self.ctx.say("Open case", str(exc.args[0]) if lookup else str(exc))
            return False
        self.close()
        self.ctx.store = store
        settings = self.ctx.settings()
        recent = (store.case.id, *(c for c in settings.recent_cases if c != store.case.id))[:RECENT_CASES]
        try:
            self.ctx.workspace.save_settings(replace(settings, recent_cases=recent))
        except (ValueError, OSError) as exc:
            log.warning("recent cases not saved: %s", exc)
        with self.state.batch():
            self.state.case = store.case
            self.state.case_dir = store.path
            self.evidence.refresh()
            self.refresh()
            self.ctx.status(f"Case {store.case.title} ({store.case.id})")
        return True

    def close(self) -> None:
        if self.ctx.store is None:
            return
        self.ctx.cancel("import")
        self.ctx.store.close()
        self.ctx.store = None
        with self.state.batch():
            self.state.clear_selection()
            self.state.case = None
            self.state.case_dir = None
            self.state.evidence_items = ()
            self.state.located = frozenset()
