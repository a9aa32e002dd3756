"""Evidence import in a child process, so the desktop app's interpreter (and its UI thread) stays free.

An import in a worker *thread* still shares the GIL with the UI thread, and parts of it hold the GIL
for long stretches (loading the gazetteer's 155k places, numpy/scipy work, module imports): the event
loop stalled for 100-270 ms that way. Here the whole import (the import service, its process pool,
the gazetteer, the SQLite writes) runs in a process started through ``forkserver`` (never a fork of
this Qt process); a worker thread relays its progress messages, which blocks in ``Queue.get`` without
holding the GIL. Cancel sets a shared Event the import checks between files.
"""

from __future__ import annotations

import multiprocessing
import queue
import sys
from pathlib import Path
from typing import Any

from geodesk.app.jobs import JobContext


def _context() -> Any:
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _child(case_dir: str, paths: list[str], workers: int | None, messages: Any, cancel: Any) -> None:
    try:
        from geodesk.evidence.pipeline import ImportOptions
        from geodesk.services.importing import import_into
        from geodesk.store import CaseStore

        with CaseStore.open(Path(case_dir)) as store:
            report = import_into(
                store,
                paths,
                options=ImportOptions(workers=workers),
                progress=lambda done, total, name: messages.put(("progress", done, total, name or "")),
                cancel=cancel,
            )
        messages.put(("result", report))
    except BaseException as exc:  # everything goes back to the app as a message
        from geodesk.app.jobs import describe_error

        messages.put(("failed", describe_error(exc)))


def run_import(ctx: JobContext, case_dir: Path, paths: list[Path], workers: int | None) -> Any:
    """Import ``paths`` into the case at ``case_dir`` in a child process; returns its ImportReport."""
    mp = _context()
    messages = mp.Queue()
    cancel = mp.Event()
    process = mp.Process(
        target=_child,
        args=(str(case_dir), [str(p) for p in paths], workers, messages, cancel),
        name="geodesk-import",
        daemon=False,
    )
    process.start()
    try:
        while True:
            if ctx.cancel.is_set():
                cancel.set()
            try:
                message = messages.get(timeout=0.2)
            except queue.Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"the import process ended unexpectedly (exit code {process.exitcode}); "
                        "files imported before that are kept — import the rest again"
                    ) from None
                continue
            kind = message[0]
            if kind == "progress":
                ctx.progress(int(message[1]), int(message[2]), Path(str(message[3])).name)
            elif kind == "result":
                return message[1]
            else:
                raise RuntimeError(str(message[1]))
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
