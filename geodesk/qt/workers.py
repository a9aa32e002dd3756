"""The Qt job runner (geodesk.app.jobs.JobRunner): one QRunnable per job, results back as signals.

The UI thread never waits on the model or the disk. A job is a plain function ``fn(ctx)`` that gets a
:class:`TaskContext` (cancel flag, progress and token callbacks); it runs on the global QThreadPool and
its outcome arrives on the UI thread through queued signals. Heavy libraries (torch, transformers,
offlinefolium) are imported inside those functions, never at module level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal

from geodesk.app.jobs import CallbackContext, JobCancelled, JobEnd, run_job

log = logging.getLogger(__name__)


# One context, one cancel signal, one outcome dispatch and one error wording for both runners
# (geodesk.app.jobs); this module only carries the outcome across threads as queued signals.
TaskContext = CallbackContext
TaskCancelled = JobCancelled


class TaskSignals(QObject):
    progress = Signal(int, int, str)  # done, total, message
    token = Signal(str)  # streamed model text
    result = Signal(object)
    failed = Signal(str)  # a sentence a person can act on
    cancelled = Signal()
    finished = Signal()


class Task(QRunnable):
    def __init__(self, fn: Callable[[TaskContext], Any], name: str) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner keeps it until `finished`, so its signals stay alive
        self.name = name
        self.signals = signals = TaskSignals()
        self.context = TaskContext(on_progress=signals.progress.emit, on_token=signals.token.emit)
        self._fn = fn

    def cancel(self) -> None:
        self.context.cancel.set()

    def run(self) -> None:
        signals = self.signals
        end = JobEnd(signals.result.emit, signals.failed.emit, signals.cancelled.emit, signals.finished.emit)
        try:
            run_job(self._fn, self.context, self.name, end)
        except RuntimeError:  # the app is shutting down and the signal object is gone: nobody to tell
            log.debug("job %s ended after its receiver was deleted", self.name)


class TaskRunner(QObject):
    """Starts jobs and keeps them referenced until they finish; knows which are still running."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._tasks: set[Task] = set()

    def start(
        self,
        fn: Callable[[TaskContext], Any],
        name: str,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_token: Callable[[str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Task:
        task = Task(fn, name)
        for signal, slot in (
            (task.signals.result, on_result),
            (task.signals.failed, on_failed),
            (task.signals.progress, on_progress),
            (task.signals.token, on_token),
            (task.signals.cancelled, on_cancelled),
            (task.signals.finished, on_finished),
        ):
            if slot is not None:
                # Queued: the slot runs on the UI thread's event loop, whatever thread emitted.
                signal.connect(slot, Qt.ConnectionType.QueuedConnection)
        task.signals.finished.connect(lambda: self._done(task), Qt.ConnectionType.QueuedConnection)
        was_busy = bool(self._tasks)
        self._tasks.add(task)
        if not was_busy:
            self.busy_changed.emit(True)
        self._pool.start(task)
        return task

    def call_soon(self, fn: Callable[[], None]) -> None:
        """``fn`` on the UI thread after the events already queued (a zero timer of this runner)."""
        QTimer.singleShot(0, self, fn)

    def _done(self, task: Task) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self.busy_changed.emit(False)

    @property
    def running(self) -> list[str]:
        return sorted(t.name for t in self._tasks)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Wait for the pool (used on close); jobs have been asked to cancel first."""
        return bool(self._pool.waitForDone(msecs))
