"""What every controller shares: the state, the job runner, the workspace and the open case's store."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.app.jobs import CallbackContext, Job, JobEnd, JobFn, JobRunner, run_job
from geodesk.app.state import AppState, Message

if TYPE_CHECKING:
    from geodesk.store import CaseStore, Settings, Workspace

log = logging.getLogger(__name__)


class AppContext:
    """The application's shared parts. The UI thread's CaseStore reads and writes a few rows at a time
    (SQLite WAL, milliseconds); every job opens its own CaseStore on ``state.case_dir``."""

    def __init__(self, workspace: Path, runner: JobRunner, state: AppState) -> None:
        self.workspace_path = Path(workspace).expanduser().absolute()
        if self.workspace_path.exists() and not self.workspace_path.is_dir():
            raise ValueError(f"{self.workspace_path} is a file, not a folder; choose another --workspace")
        self.workspace_path.mkdir(parents=True, exist_ok=True)
        self.runner = runner
        self.state = state
        self.store: CaseStore | None = None
        self._workspace: Workspace | None = None
        self._jobs: dict[str, Job] = {}
        # The analyst's writes not started yet (fn, name, on_result, on_failed), oldest first, and
        # whether one is running: they run one at a time, in the order they were asked for.
        self._writes: deque[tuple[JobFn, str, Callable[[Any], None] | None, Callable[[str], None] | None]] = (
            deque()
        )
        self._write_running = False

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:  # geodesk.store loads sqlite-utils: only once the app needs it
            from geodesk.store import Workspace

            self._workspace = Workspace(self.workspace_path)
        return self._workspace

    # -- messages
    def say(self, title: str, text: str, *, error: bool = True) -> None:
        """A sentence for the analyst: the window's status line, the log, and ``state.message``."""
        if error:
            log.warning("%s: %s", title, text)
        self.state.status = f"{title}: {text}" if error else text
        self.state.message.emit(Message(title, text, error))

    def status(self, text: str) -> None:
        self.state.status = text

    # -- settings
    def settings(self) -> Settings:
        try:
            return self.workspace.load_settings()
        except ValueError as exc:
            self.say("Settings", str(exc))
            from geodesk.store import Settings

            return Settings()

    # -- jobs
    def start_job(
        self,
        kind: str,
        fn: JobFn,
        name: str,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_token: Callable[[str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        """Run ``fn`` through the runner; ``kind`` is in ``state.busy`` until it ends.

        The job counts as ended before its result, failure or cancellation is handled, so a handler
        can start the next job of the same kind (a dialog's next registry operation, a batch after
        its model loaded).
        """
        self.state.busy = self.state.busy | {kind}
        ended = [False]

        def end() -> None:
            if not ended[0]:
                ended[0] = True
                self._jobs.pop(kind, None)
                self.state.busy = self.state.busy - {kind}

        # Fixed-arity handlers (no *args): Qt's queued signals call them with exactly their arguments.
        def result(value: Any) -> None:
            end()
            if on_result is not None:
                on_result(value)

        def failed(message: str) -> None:
            end()
            if on_failed is not None:
                on_failed(message)

        def cancelled() -> None:
            end()
            if on_cancelled is not None:
                on_cancelled()

        def finished() -> None:
            end()
            if on_finished is not None:
                on_finished()

        job = self.runner.start(
            fn,
            name,
            on_result=result,
            on_failed=failed,
            on_progress=on_progress,
            on_token=on_token,
            on_cancelled=cancelled,
            on_finished=finished,
        )
        if not ended[0]:  # a synchronous runner has already finished it
            self._jobs[kind] = job

    def write(
        self,
        fn: JobFn,
        name: str,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
    ) -> None:
        """A write to a case (accept a clue, save a finding) in a job, so the UI thread never waits on
        the disk. Writes run one at a time in the order they were asked for: one starts when the one
        before it has ended and its result was handled, so accepting and then rejecting a clue leaves
        it rejected however the jobs are scheduled. ``fn`` opens its own store on the case folder it
        was given (the case may be closed meanwhile: the write still lands in it)."""
        self._writes.append((fn, name, on_result, on_failed))
        if not self._write_running:
            self._next_write()

    @property
    def writes_pending(self) -> int:
        """Writes asked for whose job has not ended yet (the running one included)."""
        return len(self._writes) + self._write_running

    def _next_write(self) -> None:
        if not self._writes:
            return
        fn, name, on_result, on_failed = self._writes.popleft()
        self._write_running = True

        def ended() -> None:
            self._write_running = False
            self._next_write()

        # Straight to the runner, not through start_job: a write is not in ``state.busy`` (no action
        # waits on it, and two busy changes per click would have every view that watches it redraw).
        self.runner.start(fn, name, on_result=on_result, on_failed=on_failed, on_finished=ended)

    def finish_writes(self) -> None:
        """Run the writes not started yet here and now, in order (on close: after the runner's jobs
        have ended, nothing the analyst asked to store is left behind). Their results go nowhere."""
        while self._writes:
            fn, name, _result, _failed = self._writes.popleft()

            def failed(message: str, name: str = name) -> None:
                log.warning("%s: %s", name, message)

            run_job(fn, CallbackContext(), name, JobEnd(failed=failed))

    def cancel(self, *kinds: str) -> bool:
        """Ask the running jobs of these kinds (all with none given) to stop; True when one was running."""
        found = False
        for kind, job in list(self._jobs.items()):
            if not kinds or kind in kinds:
                job.cancel()
                found = True
        return found

    def case_store(self) -> CaseStore:
        if self.store is None:
            raise LookupError("open a case first")
        return self.store


class Controller:
    """Base of the controllers: each gets the shared :class:`AppContext`."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.state = ctx.state
