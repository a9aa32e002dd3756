"""Evidence: the grid's list, the selection (and everything that depends on it), and imports.

:meth:`EvidenceController.select` is the one way to change the selected item: the item, its clues,
sessions (the newest selected), turns, finding and history, the streamed answer, the session status
line and the proposed finding point all change together (``AppState.batch``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.jobs import JobContext
from geodesk.app.state import Progress, StatusLine

# run_import(ctx, case_dir, paths, workers) -> ImportReport; None: the import runs in the job's thread.
ImportFn = Callable[[JobContext, Path, list[Path], int | None], Any]


class EvidenceController(Controller):
    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        # Import processes of the import service (None: one per core; 0: none, in the importing thread).
        self.import_workers: int | None = None
        # The desktop app imports in a child process (geodesk.app.import_process: no GIL shared with
        # the UI thread); tests import in the job's own thread.
        self.import_in_child_process = False

    # -- the grid
    def refresh(self) -> None:
        store = self.ctx.store
        if store is None:
            return
        with self.state.batch():
            self.state.evidence_items = tuple(store.evidence.list())
            self.state.located = frozenset(store.evidence.located())

    def refresh_located(self) -> None:
        if self.ctx.store is not None:
            self.state.located = frozenset(self.ctx.store.evidence.located())

    # -- the selection
    def select(self, sha: str | None, session_id: int | None = None) -> None:
        """Select an evidence item (hash or unique prefix; None: nothing) and, optionally, one session."""
        store = self.ctx.store
        if store is None:
            return
        if not sha:
            with self.state.batch():
                self.state.clear_selection()
            return
        current = self.state.evidence
        if current is not None and current.sha256 == sha and session_id is None:
            return
        try:
            evidence = store.evidence.get(sha)
        except LookupError as exc:
            self.ctx.say("Evidence", str(exc.args[0]) if exc.args else str(exc))
            return
        with self.state.batch():
            self.state.clear_selection()
            self.state.evidence = evidence
            self.reload(session_id=session_id)

    def reload(self, session_id: int | None = None) -> None:
        """Re-read everything of the selected item; keeps the selected session (or selects ``session_id``;
        with neither, the newest). Nothing of another item survives."""
        store, evidence = self.ctx.store, self.state.evidence
        if store is None or evidence is None:
            return
        sha = evidence.sha256
        sessions = tuple(store.sessions.list(evidence_sha256=sha))
        wanted = session_id if session_id is not None else (
            None if self.state.session is None else self.state.session.id
        )
        session = next((s for s in sessions if s.id == wanted), sessions[-1] if sessions else None)
        with self.state.batch():
            self.state.clues = tuple(store.clues.list(evidence_sha256=sha))
            self.state.sessions = sessions
            self.state.session = session
            self.state.turns = () if session is None or session.id is None else tuple(
                store.turns.list(session.id)
            )
            self.state.finding = store.findings.current(sha)
            self.state.finding_history = tuple(store.findings.history(sha))
            self.state.located = frozenset(store.evidence.located())

    def reload_clues(self) -> None:
        if self.ctx.store is not None and self.state.evidence is not None:
            self.state.clues = tuple(self.ctx.store.clues.list(evidence_sha256=self.state.evidence.sha256))

    def name_of(self, sha: str) -> str:
        """The original file name of an evidence item (the hash's start when it is unknown)."""
        store = self.ctx.store
        if store is None:
            return sha[:12]
        try:
            return store.evidence.get(sha).original_name
        except LookupError:
            return sha[:12]

    # -- import
    def import_paths(self, paths: list[Path]) -> bool:
        """Import files and folders into the open case in a job, with progress and cancel."""
        if self.ctx.store is None:
            self.ctx.say("Import", "open or create a case first, then drop the images on the evidence grid")
            return False
        if "import" in self.state.busy:
            self.ctx.say("Import", "an import is already running; wait for it or cancel it")
            return False
        case_dir = Path(self.ctx.store.path)
        workers = self.import_workers
        child = self.import_in_child_process

        def job(ctx: JobContext) -> Any:
            if child:
                from geodesk.app.import_process import run_import

                return run_import(ctx, case_dir, list(paths), workers)
            from geodesk.evidence.pipeline import ImportOptions
            from geodesk.services.importing import import_into
            from geodesk.store import CaseStore

            with CaseStore.open(case_dir) as store:  # this thread's own connection
                return import_into(
                    store,
                    [Path(p) for p in paths],
                    options=ImportOptions(workers=workers),
                    progress=lambda done, total, name: ctx.progress(done, total, Path(name or "").name),
                    cancel=ctx.cancel,
                )

        def progress(done: int, total: int, name: str) -> None:
            self.state.progress = Progress(done, total, name)
            self.ctx.status(f"Importing {done}/{total} {name}")

        def finished() -> None:
            self.state.progress = None

        self.state.progress = Progress(0, 0, "")
        self.ctx.status("Importing…")
        self.ctx.start_job(
            "import",
            job,
            "import",
            on_result=lambda outcome: self._imported(case_dir, outcome),
            on_progress=progress,
            on_failed=lambda m: self.ctx.say("Import", m),
            on_finished=finished,
        )
        return True

    def _imported(self, case_dir: Path, outcome: Any) -> None:
        if self.ctx.store is None or Path(self.ctx.store.path) != case_dir:
            return  # the case was closed meanwhile; what was imported is in it
        self.refresh()
        errors = list(getattr(outcome, "errors", []) or [])
        imported = list(getattr(outcome, "imported", []) or [])
        duplicates = list(getattr(outcome, "duplicates", []) or [])
        summary = f"Imported {len(imported)} image(s)"
        if duplicates:
            summary += f", {len(duplicates)} already in the case"
        if getattr(outcome, "cancelled", False):
            summary += " (cancelled: the files done so far were kept)"
        self.ctx.status(summary)
        if errors:
            lines = [describe_import_error(e) for e in errors]
            self.ctx.say("Import", f"{len(errors)} file(s) could not be imported:\n" + "\n".join(lines[:30]))
        if self.state.evidence is None and self.state.evidence_items:
            self.select(self.state.evidence_items[0].sha256)
        self.state.import_finished.emit(outcome)

    def set_session_status(self, text: str, error: bool = False) -> None:
        self.state.session_status = StatusLine(text, error)


def describe_import_error(error: Any) -> str:
    """One line per failed file (geodesk.evidence.pipeline.FileError): its name and the reason."""
    path, reason = getattr(error, "path", None), getattr(error, "error", None)
    if path is not None and reason is not None:
        return f"{Path(str(path)).name}: {reason}"
    return str(error)
