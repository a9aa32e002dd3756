"""Jobs: plain functions ``fn(ctx)`` that may take long, run by a :class:`JobRunner`.

A controller never waits on the model or the disk: it hands a job to the runner with callbacks for the
result, a failure (a sentence), progress, streamed tokens, cancellation and the end. The desktop app's
runner (``geodesk.qt.workers.TaskRunner``) runs jobs on the Qt thread pool and calls the callbacks on
the UI thread; :class:`SyncRunner` runs them at once in the calling thread, so controller tests need
no display and no event loop. Both give a job the same context (cancel flag, progress, token, check).
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
class SyncContext:
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


@dataclass
class SyncJob:
    name: str
    context: SyncContext

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
        context = SyncContext(on_progress=on_progress, on_token=on_token)
        if self.cancel_next:
            self.cancel_next = False
            context.cancel.set()
        job = SyncJob(name, context)
        self.started.append(name)
        try:
            value = fn(context)
        except JobCancelled:
            if on_cancelled is not None:
                on_cancelled()
        except Exception as exc:
            log.error("job %s failed:\n%s", name, traceback.format_exc())
            if on_failed is not None:
                on_failed(describe_error(exc))
        else:
            if context.cancel.is_set() and on_cancelled is not None:
                on_cancelled()
            if on_result is not None:
                on_result(value)
        finally:
            if on_finished is not None:
                on_finished()
        return job

    def cancel_all(self) -> None:
        """Nothing is ever left running."""
