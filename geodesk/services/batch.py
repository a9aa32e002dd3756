"""Batch geolocation: locate every evidence item of a case that has no finished session yet.

Resumable by construction: an item counts as done when it has a session on the same model package
(same identity SHA-256) and mode whose first turn finished, so a rerun skips it; failed or cancelled
items are tried again. One failing image never stops the batch: its error is collected and the next
item goes on. With several workers (remote endpoints), each task opens its own connection
to the case database (SQLite WAL: writers take turns, readers never wait).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodesk.domain.model import GpsPoint, SessionMode, TurnStatus
from geodesk.engine.backends.base import Backend
from geodesk.geo.distance import haversine_km
from geodesk.services.sessions import SessionError, TurnOptions, TurnOutcome, locate
from geodesk.store.case_store import CaseStore

BatchProgress = Callable[[int, int, str], None]  # (done, total, evidence sha256)
BatchItem = Callable[[dict[str, Any]], None]  # one located or failed row, as it finishes


@dataclass(slots=True)
class BatchReport:
    total: int = 0
    skipped: list[str] = field(default_factory=list)  # already located on this model and mode
    located: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False

    def as_document(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "located": len(self.located),
            "skipped": len(self.skipped),
            "failed": self.failed,
            "cancelled": self.cancelled,
            "sessions": self.located,
        }


def pending_evidence(store: CaseStore, model_sha256: str, mode: SessionMode) -> tuple[list[str], list[str]]:
    """(to do, already done) evidence hashes for this model identity and mode, in import order.

    "Done" is the store's one definition of located (EvidenceRepository.located) for this model and mode.
    """
    done = store.evidence.located(model_sha256, mode)
    todo: list[str] = []
    skipped: list[str] = []
    for evidence in store.evidence.list():
        (skipped if evidence.sha256 in done else todo).append(evidence.sha256)
    return todo, skipped


def run_batch(
    case_dir: Path,
    backend: Backend,
    mode: SessionMode = SessionMode.DIRECT,
    options: TurnOptions | None = None,
    workers: int = 1,
    progress: BatchProgress | None = None,
    cancel: threading.Event | None = None,
    on_item: BatchItem | None = None,
) -> BatchReport:
    """Locate every pending evidence item of the case at ``case_dir`` with ``backend``.

    ``on_item`` receives each item's row (located or failed) as soon as it finishes, with
    ``exif_km``, the distance from the prediction to the image's own GPS point when it has one.
    """
    if workers < 1:
        raise ValueError("a batch needs at least one worker")
    options = options or TurnOptions()
    if cancel is not None:
        options.cancel = cancel
    report = BatchReport()
    with CaseStore.open(case_dir) as store:
        todo, skipped = pending_evidence(store, backend.identity.sha256, mode)
        items = store.evidence.list()
        exif_points = {e.sha256: e.gps for e in items if e.gps is not None}
        names = {e.sha256: e.original_name for e in items}
    report.total = len(todo) + len(skipped)
    report.skipped = skipped

    def one(sha: str) -> TurnOutcome:
        # Each task has its own connection: SQLite connections stay in the thread that made them.
        with CaseStore.open(case_dir) as store:
            return locate(store, sha, backend, mode, options)

    done_count = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geodesk-batch") as pool:
        queue = iter(todo)
        running: dict[Future[TurnOutcome], str] = {}

        def refill() -> None:
            while len(running) < workers and not (cancel is not None and cancel.is_set()):
                sha = next(queue, None)
                if sha is None:
                    return
                running[pool.submit(one, sha)] = sha

        refill()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                sha = running.pop(future)
                done_count += 1
                row = _collect(report, sha, future, exif_points.get(sha))
                row["original_name"] = names.get(sha)
                if on_item is not None:
                    on_item(row)
                if progress is not None:
                    progress(done_count, len(todo), sha)
            refill()
    report.cancelled = bool(cancel is not None and cancel.is_set() and done_count < len(todo))
    return report


def _collect(report: BatchReport, sha: str, future: Future[TurnOutcome],
             exif: GpsPoint | None) -> dict[str, Any]:
    """Record one finished item in the report and return its row."""
    try:
        outcome = future.result()
    except SessionError as exc:
        return _failed(report, sha, str(exc))
    except Exception as exc:  # one broken item never stops the batch; the error names it
        return _failed(report, sha, f"{type(exc).__name__}: {exc}")
    turn = outcome.turn
    if turn.status is TurnStatus.FAILED:
        return _failed(report, sha, turn.error or "the model call failed")
    p = turn.prediction
    exif_km = None
    if exif is not None and p.lat is not None and p.lon is not None:
        exif_km = round(haversine_km(p.lat, p.lon, exif.lat, exif.lon), 3)
    row: dict[str, Any] = {
        "evidence": sha,
        "session": outcome.session.id,
        "status": turn.status.value,
        "valid": p.valid,
        "country": p.country,
        "region": p.region,
        "city": p.city,
        "lat": p.lat,
        "lon": p.lon,
        "exif_km": exif_km,
    }
    report.located.append(row)
    return row


def _failed(report: BatchReport, sha: str, error: str) -> dict[str, Any]:
    row: dict[str, Any] = {"evidence": sha, "error": error}
    report.failed.append(row)
    return row
