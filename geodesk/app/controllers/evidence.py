"""Evidence: the grid's list, the selection (and everything that depends on it), and imports.

:meth:`EvidenceController.select` is the one way to change the selected item. It runs in steps, so
a click never waits on the disk or on every view redrawing at once:

1. at once, on the UI thread: the item becomes the selection and every field that depends on it is
   reset (``AppState.clear_selection``, one batch): each view shows the new item and nothing else;
2. a job reads the item's clues, sessions (the newest selected), turns, finding and history through
   its own read-only connection (:func:`read_selection`);
3. its result is applied on the UI thread in small steps (clues; the finding; the sessions and
   turns), each a batch of its own with the event loop free between them (``JobRunner.call_soon``).

Every step carries the selection's generation: a result or a step for a selection that is no longer
current (the analyst clicked on, or another case was opened) is dropped, so no view ever shows
another item's data. :meth:`reload` reads the same rows at once (after a turn or a session choice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.jobs import JobContext
from geodesk.app.state import Progress, StatusLine
from geodesk.domain.model import Clue, Evidence, Finding, Session, Turn

if TYPE_CHECKING:
    from geodesk.store import CaseStore

# run_import(ctx, case_dir, paths, workers) -> ImportReport; None: the import runs in the job's thread.
ImportFn = Callable[[JobContext, Path, list[Path], int | None], Any]


@dataclass(frozen=True, slots=True)
class SelectionData:
    """Everything the views show about one evidence item, read together."""

    sha256: str
    clues: tuple[Clue, ...]
    sessions: tuple[Session, ...]
    session: Session | None
    turns: tuple[Turn, ...]
    finding: Finding | None
    finding_history: tuple[Finding, ...]


def read_selection(store: CaseStore, sha: str, session_id: int | None) -> SelectionData:
    """The item's rows: its clues, sessions (``session_id`` selected when it is one of them, else the
    newest), that session's turns, and the finding with its history. Any thread, its own store."""
    sessions = tuple(store.sessions.list(evidence_sha256=sha))
    session = next((s for s in sessions if s.id == session_id), sessions[-1] if sessions else None)
    return SelectionData(
        sha256=sha,
        clues=tuple(store.clues.list(evidence_sha256=sha)),
        sessions=sessions,
        session=session,
        turns=() if session is None or session.id is None else tuple(store.turns.list(session.id)),
        finding=store.findings.current(sha),
        finding_history=tuple(store.findings.history(sha)),
    )


class EvidenceController(Controller):
    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        # Import processes of the import service (None: one per core; 0: none, in the importing thread).
        self.import_workers: int | None = None
        # The desktop app imports in a child process (geodesk.app.import_process: no GIL shared with
        # the UI thread); tests import in the job's own thread.
        self.import_in_child_process = False
        # The selection's generation: every select/reload makes a new one; a read or a step of an
        # older one is dropped. ``_applied``: the newest generation whose rows are all in the state.
        self._generation = 0
        self._applied = 0

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
    @property
    def loading(self) -> bool:
        """The selected item's rows are still being read or applied (views show it with nothing yet)."""
        return self._applied < self._generation

    def select(self, sha: str | None, session_id: int | None = None) -> None:
        """Select an evidence item (hash or unique prefix; None: nothing) and, optionally, one session."""
        store = self.ctx.store
        if store is None:
            return
        if not sha:
            self._generation += 1
            self._applied = self._generation
            with self.state.batch():
                self.state.clear_selection()
            return
        current = self.state.evidence
        if current is not None and current.sha256 == sha and session_id is None:
            return
        evidence = next((e for e in self.state.evidence_items if e.sha256 == sha), None)
        if evidence is None:  # a prefix, or an item the grid has not listed yet
            try:
                evidence = store.evidence.get(sha)
            except LookupError as exc:
                self.ctx.say("Evidence", str(exc.args[0]) if exc.args else str(exc))
                return
        self._generation += 1
        generation, case_dir = self._generation, Path(store.path)
        with self.state.batch():  # step 1: the new item, with nothing of the previous one
            self.state.clear_selection()
            self.state.evidence = evidence
            self.state.selection_loading = True
        chosen_sha = evidence.sha256

        def job(_ctx: JobContext) -> SelectionData:
            from geodesk.store import CaseStore

            with CaseStore.open_reader(case_dir) as reader:
                return read_selection(reader, chosen_sha, session_id)

        self.ctx.runner.start(
            job,
            "read the selected item",
            on_result=lambda data: self._apply_in_steps(generation, case_dir, data),
            on_failed=lambda message: self._load_failed(generation, evidence, message),
        )

    def _current(self, generation: int, sha: str, case_dir: Path) -> bool:
        return generation == self._generation and self.shows(case_dir, sha)

    def shows(self, case_dir: Path, sha: str) -> bool:
        """This item of this case is the selected one (a write's result is shown only then: the
        write read its rows after it stored them, so they are newer than any read of the selection,
        whichever generation made that read)."""
        evidence, store = self.state.evidence, self.ctx.store
        return evidence is not None and evidence.sha256 == sha and store is not None and Path(
            store.path) == case_dir

    def selected(self) -> tuple[Path, Evidence] | None:
        """The open case's folder and the selected item, or None when either is missing."""
        store, evidence = self.ctx.store, self.state.evidence
        return None if store is None or evidence is None else (Path(store.path), evidence)

    def _apply_in_steps(self, generation: int, case_dir: Path, data: SelectionData) -> None:
        """Step 3: the clues now, then the finding, then the sessions and turns, then the end of
        loading (``state.selection_loading``), each in its own batch with the event loop free in
        between. A step does nothing for a selection that is no longer
        current, and fills only fields still empty since step 1: a field set meanwhile (a finding
        saved, a session started) holds something newer than this read."""
        s = self.state
        steps: list[tuple[Callable[[], bool], Callable[[], None]]] = [
            (lambda: not s.clues, lambda: setattr(s, "clues", data.clues)),
            (lambda: s.finding is None and not s.finding_history, lambda: self._set(
                finding=data.finding, finding_history=data.finding_history)),
            (lambda: s.session is None and not s.sessions and not s.turns, lambda: self._set(
                sessions=data.sessions, session=data.session, turns=data.turns)),
            # the end of loading, a step of its own: the views drawn from all the rows (history,
            # map, the clue engine's check) draw then, in an event-loop turn of their own
            (lambda: True, lambda: setattr(s, "selection_loading", False)),
        ]

        def step(index: int) -> None:
            if not self._current(generation, data.sha256, case_dir):
                return
            still_empty, fill = steps[index]
            if still_empty():
                fill()
            if index + 1 < len(steps):
                self.ctx.runner.call_soon(lambda: step(index + 1))
            else:
                self._applied = max(self._applied, generation)

        step(0)

    def _set(self, **fields: Any) -> None:
        with self.state.batch():
            for name, value in fields.items():
                setattr(self.state, name, value)

    def _load_failed(self, generation: int, evidence: Evidence, message: str) -> None:
        if generation == self._generation:
            self._applied = generation
            self.state.selection_loading = False
            self.ctx.say("Evidence", f"{evidence.original_name} could not be read: {message}")

    def _apply(self, data: SelectionData) -> None:
        """The item's rows, all at once (one batch)."""
        self._set(clues=data.clues, sessions=data.sessions, session=data.session, turns=data.turns,
                  finding=data.finding, finding_history=data.finding_history)

    def reload(self, session_id: int | None = None) -> None:
        """Re-read everything of the selected item at once; keeps the selected session (or selects
        ``session_id``; with neither, the newest). Nothing of another item survives, and a read of the
        item still on its way is dropped (this one is newer)."""
        store, evidence = self.ctx.store, self.state.evidence
        if store is None or evidence is None:
            return
        wanted = session_id if session_id is not None else (
            None if self.state.session is None else self.state.session.id
        )
        self._generation += 1
        self._applied = self._generation
        with self.state.batch():
            self._apply(read_selection(store, evidence.sha256, wanted))
            self.state.selection_loading = False
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
