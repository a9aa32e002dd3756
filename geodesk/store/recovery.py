"""Crash recovery: work a killed process left half-done is found and settled when a case is opened.

Two kinds of work span a database transaction and something outside it, so a ``kill -9`` between the
two leaves a trace the database alone cannot explain:

- **placing an original** (import): the staged copy is renamed into ``evidence/`` inside the
  transaction that adds its row. Killed before the commit, the file stays but its row is rolled back:
  a stray file that ``case verify`` reports and ``case export`` refuses;
- **a model turn**: the turn is stored as ``running`` before the model is asked and updated when the
  answer arrives. Killed in between, it would stay ``running`` for ever.

Each such piece of work holds a **work marker**, a file in ``<case>/.journal/`` locked with ``flock``
for as long as the work runs. The kernel drops the lock when the process dies, however it dies, so on
the next open a marker whose lock can be taken belongs to dead work: a placed original whose row never
committed is removed (only that file, named by the marker), and a ``running`` turn becomes
``interrupted`` with an explanation, through the repository (so the audit log records it). Markers of
live work (another process, or another connection in this one) stay locked and are left alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from geodesk.domain.model import TurnStatus

if TYPE_CHECKING:
    from geodesk.store.case_store import CaseStore

try:  # POSIX; on other systems markers fall back to the pid written inside them
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

JOURNAL_DIR = ".journal"
INTERRUPTED_ERROR = (
    "interrupted: the process running this turn stopped (killed or crashed) before the answer was "
    "stored; ask again to get an answer"
)


def _journal(case_dir: Path) -> Path:
    folder = case_dir / JOURNAL_DIR
    folder.mkdir(exist_ok=True)
    return folder


def _try_lock(handle: IO[Any]) -> bool:
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def work_marker(case_dir: Path, name: str, details: dict[str, Any]) -> Iterator[Path]:
    """Hold the marker ``<case>/.journal/<name>`` (locked, fsynced) while the block runs, then drop it.

    The marker is written and locked *before* the block starts, so no other process can see the work's
    database trace without also seeing its locked marker.
    """
    path = _journal(case_dir) / name
    handle = path.open("a+b")
    try:
        if not _try_lock(handle):
            raise RuntimeError(f"{path} is held by another running piece of work")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({**details, "pid": os.getpid()}, sort_keys=True).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
        yield path
    finally:
        path.unlink(missing_ok=True)  # unlinked while still locked: nobody can mistake it for dead work
        handle.close()


@dataclass(frozen=True, slots=True)
class _DeadMarker:
    path: Path
    details: dict[str, Any]
    handle: IO[Any]  # holds the lock until settled, so two openers never settle the same marker


def _dead_markers(case_dir: Path, prefix: str) -> list[_DeadMarker]:
    folder = case_dir / JOURNAL_DIR
    if not folder.is_dir():
        return []
    dead = []
    for path in sorted(folder.glob(f"{prefix}*")):
        try:
            handle = path.open("r+b")
        except FileNotFoundError:  # finished while we looked
            continue
        if not _try_lock(handle) or not path.exists():
            handle.close()
            continue
        try:
            details = json.loads(handle.read().decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            details = {}  # killed while writing the marker: the work itself never started
        dead.append(_DeadMarker(path, details if isinstance(details, dict) else {}, handle))
    return dead


def _settle(marker: _DeadMarker) -> None:
    marker.path.unlink(missing_ok=True)
    marker.handle.close()


def placing_marker(case_dir: Path, sha256: str, final: Path) -> contextlib.AbstractContextManager[Path]:
    """The marker an import holds while it moves an original into ``evidence/`` and commits its row."""
    return work_marker(case_dir, f"place-{sha256}", {"sha256": sha256, "final": final.name})


def turn_marker(case_dir: Path, session_id: int, index: int) -> contextlib.AbstractContextManager[Path]:
    """The marker a model turn holds from before its ``running`` row is stored until its answer is."""
    return work_marker(case_dir, f"turn-{session_id}-{index}", {"session_id": session_id, "index": index})


@dataclass(slots=True)
class RecoveryReport:
    removed_strays: list[str]
    interrupted_turns: list[int]


def recover(store: CaseStore) -> RecoveryReport:
    """Settle the work killed processes left in ``store``'s case (see the module docstring)."""
    report = RecoveryReport([], [])
    try:
        _recover_placements(store, report)
        _recover_turns(store, report)
    except sqlite3.OperationalError as exc:  # a read-only copy of a case: report, never fail the open
        log.warning("crash recovery skipped for %s: %s", store.path, exc)
    return report


def _recover_placements(store: CaseStore, report: RecoveryReport) -> None:
    for marker in _dead_markers(store.path, "place-"):
        try:
            sha256, final_name = str(marker.details.get("sha256", "")), str(marker.details.get("final", ""))
            if sha256 and final_name and not store.evidence.exists(sha256):
                # The row never committed: the file the killed import placed is the only trace.
                final = store.evidence_dir / sha256[:2] / final_name
                if final.name.startswith(sha256) and final.is_file():
                    final.chmod(0o644)
                    final.unlink()
                    report.removed_strays.append(final.name)
                    log.info("removed %s: its import was killed before its row committed", final)
        finally:
            _settle(marker)


def _recover_turns(store: CaseStore, report: RecoveryReport) -> None:
    running = store.db.execute("SELECT id, session_id, idx FROM turns WHERE status = ?",
                               (TurnStatus.RUNNING.value,)).fetchall()
    if not running:
        for marker in _dead_markers(store.path, "turn-"):
            _settle(marker)
        return
    folder = store.path / JOURNAL_DIR
    dead = {m.path.name: m for m in _dead_markers(store.path, "turn-")}
    try:
        for turn_id, session_id, index in running:
            name = f"turn-{session_id}-{index}"
            if name not in dead and (folder / name).exists():
                continue  # a live process holds it: the turn really is running
            turn = store.turns.get(int(turn_id))
            if turn.status is not TurnStatus.RUNNING:
                continue  # it finished while we looked
            store.turns.update(replace(turn, status=TurnStatus.INTERRUPTED, error=INTERRUPTED_ERROR))
            report.interrupted_turns.append(int(turn_id))
    finally:
        for marker in dead.values():
            _settle(marker)
