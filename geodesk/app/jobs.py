"""Jobs: plain functions ``fn(ctx)`` that may take long, run by a :class:`JobRunner`.

A controller never waits on the model or the disk: it hands a job to the runner with callbacks for the
result, a failure (a sentence), progress, streamed tokens, cancellation and the end. The desktop app's
runner (``geodesk.qt.workers.TaskRunner``) runs jobs on the Qt thread pool and calls the callbacks on
the UI thread; :class:`SyncRunner` runs them at once in the calling thread, so controller tests need
no display and no event loop. Both give a job the same context (:class:`CallbackContext`: cancel flag,
progress, token, check) and report its end through the same :func:`run_job`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class JobCancelled(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a job that noticed its cancel flag; reported as 'cancelled', not as an error."""


class JobContext(Protocol):
    """What a job gets: a cancel flag to check, and callbacks that reach the UI thread."""

    cancel: threading.Event

    def progress(self, done: int, total: int, message: str = "") -> None: ...

    def token(self, text: str) -> None: ...

    def check(self) -> None: ...


class Job(Protocol):
    name: str

    def cancel(self) -> None: ...


JobFn = Callable[[Any], Any]  # fn(ctx: JobContext) -> result


class JobRunner(Protocol):
    def start(
        self,
        fn: JobFn,
        name: str,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_token: Callable[[str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Job: ...

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` on the UI thread once the events already waiting have been handled (a paint, a
        click): work applied in steps leaves the event loop free between them."""
        ...

    def cancel_all(self) -> None: ...


_PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, AssertionError, IndexError, ZeroDivisionError)


def describe_error(exc: BaseException) -> str:
    """Turn an exception into a message for the analyst; the traceback goes to the log."""
    if isinstance(exc, MemoryError):
        return "not enough memory for this job; close other programs or choose a smaller model / quantization"
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return "the case database is busy (another geodesk process?); try again in a moment"
    if isinstance(exc, _PROGRAMMING_ERRORS) or not str(exc):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # geodesk's own errors (SessionError, BackendError, StoreError, EvidenceError...) carry sentences.
    return str(exc)


@dataclass
class CallbackContext:
    """The one :class:`JobContext` of both runners: a cancel flag, and callbacks for progress and
    streamed tokens (the Qt runner passes its signals' ``emit``, which queue to the UI thread)."""

    cancel: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[int, int, str], None] | None = None
    on_token: Callable[[str], None] | None = None

    def progress(self, done: int, total: int, message: str = "") -> None:
        if self.on_progress is not None:
            self.on_progress(done, total, message)

    def token(self, text: str) -> None:
        if self.on_token is not None:
            self.on_token(text)

    def check(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled


@dataclass(frozen=True, slots=True)
class JobEnd:
    """Where a job's end is reported: its value, a failure sentence, a cancellation, and always the end."""

    result: Callable[[Any], None] | None = None
    failed: Callable[[str], None] | None = None
    cancelled: Callable[[], None] | None = None
    finished: Callable[[], None] | None = None


def run_job(fn: JobFn, context: CallbackContext, name: str, end: JobEnd) -> None:
    """Run one job in this thread and report how it ended: the one implementation of a job's outcome.

    A cancelled job (JobCancelled) reports ``cancelled``; any other exception is logged with its
    traceback and reported as a sentence (:func:`describe_error`); a job that returns although its
    cancel flag was set reports ``cancelled`` and then its (partial) value. ``finished`` comes last.
    """
    try:
        value = fn(context)
    except JobCancelled:
        if end.cancelled is not None:
            end.cancelled()
    except Exception as exc:
        log.error("job %s failed:\n%s", name, traceback.format_exc())
        if end.failed is not None:
            end.failed(describe_error(exc))
    else:
        if context.cancel.is_set() and end.cancelled is not None:
            end.cancelled()
        if end.result is not None:
            end.result(value)
    finally:
        if end.finished is not None:
            end.finished()


@dataclass
class SyncJob:
    name: str
    context: CallbackContext

    def cancel(self) -> None:
        self.context.cancel.set()


class SyncRunner:
    """Runs each job at once, in the calling thread, with the same callbacks as the Qt runner.

    ``cancel_next`` cancels the next job before it starts (tests of the cancel paths).
    """

    def __init__(self) -> None:
        self.started: list[str] = []  # names of the jobs run, in order
        self.cancel_next = False

    def start(
        self,
        fn: JobFn,
        name: str,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_token: Callable[[str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Job:
        context = CallbackContext(on_progress=on_progress, on_token=on_token)
        if self.cancel_next:
            self.cancel_next = False
            context.cancel.set()
        job = SyncJob(name, context)
        self.started.append(name)
        run_job(fn, context, name, JobEnd(on_result, on_failed, on_cancelled, on_finished))
        return job

    def call_soon(self, fn: Callable[[], None]) -> None:
        """At once: a synchronous runner has no event loop to come back to."""
        fn()

    def cancel_all(self) -> None:
        """Nothing is ever left running."""
