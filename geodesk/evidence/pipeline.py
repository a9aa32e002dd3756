"""The evidence import pipeline: files and folders in, originals stored and recorded, one report out.

Work is split so that the slow, risky part runs in other processes and the database has one writer:

    collect_sources (parent)   paths -> SourceFile list: folders walked sorted, hidden names skipped,
                               symlinks out of the imported folder refused, non-regular files refused
    prepare_file (workers)     one file: copy into the case's staging folder while hashing (one read
                               pass), open the staged copy, read EXIF/XMP, check the JPEG structure or
                               decode, write the thumbnail into staging. Never raises: returns
                               Prepared or Failed.
    run_import (parent)        bounded in-flight submissions (memory stays flat whatever N), results
                               consumed in input order (so "which copy is the duplicate" is
                               deterministic), places looked up for every ready result at once, then
                               one transaction per file: row + audit entry, staged copy moved into
                               evidence/<sha[:2]>/ with os.replace and made read-only.

Nothing half-written stays behind: staged files live in a per-run folder that is removed at the end
(and swept on the next run if the process died); a row is only committed after its original is in
place, and an original placed by a failed transaction is removed again. A worker that crashes (a
decoder bug on a hostile file) breaks the process pool: the pool is rebuilt and the files that were in
flight are retried one at a time, so the one that crashes again is the one blamed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from geodesk._crashpoints import crash_point
from geodesk.domain.model import Evidence, GpsPoint, Place
from geodesk.evidence.formats import EvidenceError, check_jpeg_structure, default_max_pixels, open_image
from geodesk.evidence.hashing import copy_and_hash
from geodesk.evidence.metadata import ImageMetadata, read_metadata
from geodesk.evidence.thumbnails import JPEG_FORMATS, THUMB_SIZE, make_thumbnail, write_jpeg_atomic
from geodesk.pixels import DEFAULT_DECODE_BUDGET_BYTES, ImageTooLargeError
from geodesk.processes import pid_alive as _pid_alive

if TYPE_CHECKING:
    from geodesk.store import CaseStore

STAGING_DIR = ".staging"  # inside the case folder: same file system as evidence/, so os.replace is atomic
EXTENSIONS = {"JPEG": ".jpg", "MPO": ".mpo", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "HEIF": ".heic"}

BATCH = 8  # results committed together (places looked up at once)
BATCH_WAIT_S = 2.0  # never hold a finished result back longer than this waiting for its batch
ProgressCallback = Callable[[int, int, str | None], None]  # (done, total, path just finished)
PlaceLookup = Callable[[Sequence[GpsPoint]], Sequence[Place | None]]


# --- what goes in and what comes out -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to import. ``workers``: processes (None = every available core, 0 = in this process)."""

    workers: int | None = None
    max_pixels: int | None = None  # None: Pillow's decompression-bomb threshold, read when the import starts
    verify_decode: bool = False  # decode every image in full (slower) instead of trusting the EXIF thumbnail
    thumb_size: int = THUMB_SIZE
    decode_budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES  # above it: stored, flagged oversize, no thumbnail


@dataclass(frozen=True, slots=True)
class SourceFile:
    index: int
    path: str  # as the person named it (given path, or folder + relative path)
    read_path: str  # the real file to read (symlinks resolved)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A worker's result for a good file: staged copy, hash, metadata, staged thumbnail."""

    source: SourceFile
    sha256: str
    size_bytes: int
    staged_original: str
    staged_thumb: str | None
    metadata: ImageMetadata
    thumbnail_source: str
    notes: tuple[str, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()  # (step, seconds) for benchmarks: where the time goes
    damaged: str | None = None  # the pixel data is damaged but readable: imported, flagged (why)
    oversize: str | None = None  # too large to decode within the budget: stored without a thumbnail (why)


@dataclass(frozen=True, slots=True)
class Failed:
    source: SourceFile
    error: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A file whose bytes are already in the case (or earlier in the same batch): not copied again."""

    path: str
    sha256: str
    existing_name: str | None
    within_batch: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "existing_name": self.existing_name,
            "within_batch": self.within_batch,
        }


@dataclass(frozen=True, slots=True)
class FileError:
    path: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "error": self.error}


@dataclass(slots=True)
class ImportReport:
    imported: list[Evidence] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    cancelled: bool = False
    not_processed: int = 0  # files left when the import was cancelled
    notes: list[str] = field(default_factory=list)  # about the run as a whole, not one file
    timings: dict[str, float] = field(default_factory=dict)  # seconds summed over files, per step

    @property
    def ok(self) -> bool:
        return not self.errors


# --- collecting files ---------------------------------------------------------------------------------


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_target(shown: str, link: Path, boundary: Path) -> tuple[str | None, str | None]:
    """(real path to read, None) for a usable file, or (None, error sentence)."""
    if link.is_symlink():
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError):
            return None, "is a broken symbolic link (its target does not exist)"
        if not _inside(target, boundary):
            return None, (
                f"is a symbolic link to {target}, outside the imported folder {boundary}; refused so that "
                "files from elsewhere on this machine do not slip into the case. Import the target itself "
                "if it belongs to the case"
            )
    else:
        target = link.absolute()
    try:
        info = target.stat()
    except PermissionError:
        return None, "cannot be read: permission denied (check the folder's permissions)"
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return None, "is not a regular file (a device, pipe or socket); only image files are imported"
    return str(target), None


def collect_sources(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[SourceFile], list[FileError]]:
    """Expand files and folders into the files to import, in a stable order, and the paths refused.

    Folders are walked recursively in sorted order; names starting with "." are skipped. A symbolic
    link (to a file or folder) is followed only when it stays inside the folder being imported; for a
    file named directly, "the folder" is the one holding it. The same real file named twice is
    imported once.
    """
    sources: list[SourceFile] = []
    errors: list[FileError] = []
    seen: set[str] = set()

    def add(shown: str, link: Path, boundary: Path) -> None:
        real, error = _check_target(shown, link, boundary)
        if error is not None:
            errors.append(FileError(shown, error))
        elif real is not None and real not in seen:
            seen.add(real)
            sources.append(SourceFile(len(sources), shown, real))

    for given in paths:
        given_path = Path(given)
        shown = str(given)
        if not os.path.lexists(given_path):
            errors.append(FileError(shown, "does not exist (check the path)"))
            continue
        if given_path.is_dir() and not given_path.is_symlink():
            root = given_path.resolve()
            for folder, dirnames, filenames in os.walk(given_path, followlinks=False, onerror=None):
                folder_path = Path(folder)
                kept = []
                for name in sorted(dirnames):
                    if name.startswith("."):
                        continue
                    child = folder_path / name
                    if child.is_symlink():
                        target = child.resolve()
                        if not _inside(target, root):
                            errors.append(FileError(str(child), (
                                f"is a symbolic link to the folder {target}, outside the imported folder "
                                f"{root}; refused (import that folder itself if it belongs to the case)")))
                        continue  # links inside the folder: their files are reached directly
                    kept.append(name)
                dirnames[:] = kept
                if not os.access(folder, os.R_OK | os.X_OK):
                    errors.append(FileError(folder, "is a folder that cannot be read: permission denied"))
                    continue
                for name in sorted(filenames):
                    if not name.startswith("."):
                        add(str(folder_path / name), folder_path / name, root)
        elif given_path.is_symlink() and given_path.resolve().is_dir():
            errors.append(FileError(shown, "is a symbolic link to a folder; name the folder itself"))
        else:
            add(shown, given_path, given_path.absolute().parent.resolve())
    return sources, errors


# --- the per-file work (runs in worker processes) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    staging_dir: str
    max_pixels: int
    verify_decode: bool
    thumb_size: int
    decode_budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES


def init_worker(parent_pid: int | None = None) -> None:
    """Worker start-up: ignore Ctrl-C (the parent decides), silence Pillow's bomb warning (we check),
    and die with the importing process.

    A worker blocks on its task queue, which never reports end-of-file (every worker holds the queue's
    write end too), so after a ``kill -9`` of the parent it would wait for ever. On Linux the kernel
    kills it when its parent (the forkserver, which itself exits when the importing process's pipe to
    it closes) dies; everywhere a watchdog thread ends it within a second of the importing process.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    if parent_pid is None:
        return
    _die_with_parent()
    watchdog = threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True)
    watchdog.start()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _watch_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    while True:
        time.sleep(interval_s)
        if not _pid_alive(parent_pid):
            os._exit(1)  # the importing process is gone: nobody will read this worker's result


def prepare_file(source: SourceFile, settings: WorkerSettings) -> Prepared | Failed:
    """Stage, hash, probe and thumbnail one file. Returns Failed (never raises) for a bad file."""
    staged = Path(settings.staging_dir) / f"{source.index}.original"
    thumb_path = Path(settings.staging_dir) / f"{source.index}.thumb.jpg"
    # A retry after a worker crash finds what the killed attempt left; the run's folder is ours alone.
    staged.unlink(missing_ok=True)
    thumb_path.unlink(missing_ok=True)
    try:
        return _prepare(source, settings, staged, thumb_path)
    except EvidenceError as exc:
        error = str(exc)
    except MemoryError:
        error = "is too large to process in the available memory"
    except PermissionError:
        error = "cannot be read: permission denied (check the file's permissions)"
    except FileNotFoundError:
        error = "disappeared before it could be read"
    except Exception as exc:  # any decoder failure on a hostile file is that file's error, not the batch's
        error = f"is damaged or not a supported image: {_describe(exc)}"
    staged.unlink(missing_ok=True)
    thumb_path.unlink(missing_ok=True)
    return Failed(source, error)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _prepare(source: SourceFile, settings: WorkerSettings, staged: Path, thumb_path: Path) -> Prepared:
    started = time.perf_counter()
    try:
        if Path(source.read_path).stat().st_size == 0:
            raise EvidenceError("the file is empty (0 bytes)")
        sha256, size = copy_and_hash(source.read_path, staged)
    except PermissionError:
        raise EvidenceError("cannot be read: permission denied (check the file's permissions)") from None
    except IsADirectoryError:
        raise EvidenceError("is a folder, not a file") from None
    if size == 0:
        raise EvidenceError("the file is empty (0 bytes)")
    copied = time.perf_counter()
    with _captured_diagnostics() as diagnostics:
        probe = _probe(staged, settings)
    probed = probe.probed_at
    notes: list[str] = list(diagnostics)
    if probe.damaged:
        notes.append(f"the file is damaged: {probe.damaged}; it was imported as it is, flagged as damaged")
    if probe.oversize:
        notes.append(f"{probe.oversize}; it was stored without a thumbnail")
    staged_thumb: str | None = None
    if probe.thumb is not None:
        try:
            write_jpeg_atomic(probe.thumb, thumb_path)
            staged_thumb = str(thumb_path)
        except OSError as exc:  # the original is what matters; a thumbnail can be rebuilt
            notes.append(f"the thumbnail could not be written ({exc}); it will be missing")
    ended = time.perf_counter()
    timings = (("copy_hash", copied - started), ("probe_metadata", probed - copied),
               ("thumbnail", ended - probed))
    return Prepared(source, sha256, size, str(staged), staged_thumb, probe.metadata, probe.thumb_source,
                    tuple(notes), timings, probe.damaged, probe.oversize)


@dataclass(slots=True)
class _Probe:
    metadata: ImageMetadata
    thumb: Image.Image | None
    thumb_source: str  # "exif-embedded", "decoded" or "none" (oversize)
    damaged: str | None
    oversize: str | None
    probed_at: float


def _probe(staged: Path, settings: WorkerSettings) -> _Probe:
    """Metadata, integrity and thumbnail of the staged copy; EvidenceError when it cannot be evidence.

    Damaged but readable files (a truncated JPEG whose header and metadata are intact, as seized photos
    often are) are kept and flagged; only a file of which nothing decodes is refused.
    """
    damaged: str | None = None
    with open_image(staged, max_pixels=settings.max_pixels) as image:
        metadata = read_metadata(image)
        if image.format in JPEG_FORMATS and not settings.verify_decode:
            try:
                check_jpeg_structure(staged)
            except EvidenceError as exc:
                damaged = str(exc).removeprefix("is ")
        probed = time.perf_counter()
        try:
            thumb, source = make_thumbnail(
                image, metadata.orientation, size=settings.thumb_size,
                prefer_embedded=not settings.verify_decode, budget_bytes=settings.decode_budget_bytes,
            )
            return _Probe(metadata, thumb, source, damaged, None, probed)
        except ImageTooLargeError as exc:
            return _Probe(metadata, None, "none", damaged, str(exc), probed)
        except Image.DecompressionBombError as exc:
            raise EvidenceError(f"refused as a possible decompression bomb: {exc}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            first_error = exc
    # The pixel data does not decode in full: keep the file if part of it does, flagged as damaged.
    try:
        with open_image(staged, max_pixels=settings.max_pixels) as image:
            thumb, source = make_thumbnail(
                image, metadata.orientation, size=settings.thumb_size, prefer_embedded=False,
                budget_bytes=settings.decode_budget_bytes, allow_truncated=True,
            )
    except Exception:  # nothing decodes: this is not usable evidence
        reason = _describe(first_error)
        raise EvidenceError(
            f"is a damaged {metadata.format} image: its pixel data cannot be decoded ({reason})"
        ) from None
    damaged = damaged or f"its {metadata.format} pixel data is damaged ({_describe(first_error)})"
    return _Probe(metadata, thumb, source, damaged, None, probed)


_MAX_DIAGNOSTICS = 5
_DIAGNOSTICS_BYTES = 16 * 1024


@contextlib.contextmanager
def _captured_diagnostics() -> Iterator[list[str]]:
    """Python warnings and C-library messages (libtiff writes to file descriptor 2) raised while one
    file is probed, returned as notes about that file instead of anonymous lines on the terminal."""
    lines: list[str] = []
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(_DIAGNOSTICS_BYTES).decode("utf-8", errors="replace")
            found = [f"the decoder warned: {w.message}" for w in caught]
            found += [f"the decoder reported: {line.strip()}" for line in text.splitlines() if line.strip()]
            for line in dict.fromkeys(found):  # in order, without repeats
                if len(lines) == _MAX_DIAGNOSTICS:
                    lines.append(f"(and {len(set(found)) - _MAX_DIAGNOSTICS} more decoder messages)")
                    break
                lines.append(line)


# --- the parent side ----------------------------------------------------------------------------------



def make_staging_dir(case_dir: Path) -> Path:
    """A fresh per-run staging folder; folders left by runs whose process is gone are removed first."""
    root = case_dir / STAGING_DIR
    root.mkdir(exist_ok=True)
    for old in root.iterdir():
        parts = old.name.split("-")
        if len(parts) == 3 and parts[0] == "import" and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"import-{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir()
    return folder


def _pool_context() -> Any:
    """forkserver on POSIX: no fork of a parent that may run Qt or SQLite threads, and cheap restarts."""
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["geodesk.evidence.pipeline"])
        _start_forkserver_safely()
        return context
    return multiprocessing.get_context("spawn")


def _start_forkserver_safely() -> None:
    """Start the forkserver with ``PYTHONSAFEPATH`` so the current folder is not first on its path.

    The forkserver runs ``python -c ...``, which puts the current folder first on ``sys.path``: run from
    the folder that holds a checkout (``./geodesk/``), it imported that folder instead of the installed
    package, and the workers then failed with an ImportError traceback. The variable is set only while
    the server starts, and only for it and the workers it forks (which take the parent's ``sys.path``).
    """
    from multiprocessing import forkserver

    saved = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = saved


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


Worker = Callable[[SourceFile, WorkerSettings], "Prepared | Failed"]


def run_import(
    store: CaseStore,
    sources: Sequence[SourceFile],
    *,
    options: ImportOptions = ImportOptions(),
    locate: PlaceLookup | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    worker: Worker = prepare_file,
) -> ImportReport:
    """Import ``sources`` into ``store``; see the module docstring. ``worker`` is for tests."""
    report = ImportReport()
    total = len(sources)
    if total == 0:
        return report
    workers = default_workers() if options.workers is None else options.workers
    staging = make_staging_dir(store.path)
    settings = WorkerSettings(
        staging_dir=str(staging),
        max_pixels=options.max_pixels if options.max_pixels is not None else default_max_pixels(),
        verify_decode=options.verify_decode,
        thumb_size=options.thumb_size,
        decode_budget_bytes=options.decode_budget_bytes,
    )
    committer = _Committer(store, report, locate)
    done = 0

    def finish(source: SourceFile) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, source.path)

    try:
        if workers <= 0:
            for source in sources:
                if cancel is not None and cancel.is_set():
                    break
                committer.commit([worker(source, settings)])
                finish(source)
        else:
            _run_pool(sources, settings, workers, worker, committer, finish, cancel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()  # only succeeds when no other import is staging
    report.not_processed = total - done
    report.cancelled = report.not_processed > 0
    return report


def _ping() -> bool:
    return True


def _run_pool(
    sources: Sequence[SourceFile],
    settings: WorkerSettings,
    workers: int,
    worker: Worker,
    committer: _Committer,
    finish: Callable[[SourceFile], None],
    cancel: threading.Event | None,
) -> None:
    # In-flight files: each is a staged copy on disk plus a small result, so memory stays flat. Results
    # are committed in batches of up to BATCH (one place look-up per batch, still one transaction per
    # file) while the other half of the window keeps the workers busy.
    window = max(2 * BATCH, 2 * workers)
    pending: deque[SourceFile] = deque(sources)
    inflight: deque[tuple[SourceFile, Future[Prepared | Failed]]] = deque()
    suspects: set[int] = set()  # files in flight when a worker died: retried one at a time
    context = _pool_context()

    def new_pool() -> ProcessPoolExecutor | None:
        """A pool that has shown it can run a task, or None (workers cannot start in this process)."""
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker,
                                   initargs=(os.getpid(),))
        try:
            pool.submit(_ping).result()
        except Exception:
            pool.shutdown(wait=True, cancel_futures=True)
            return None
        return pool

    pool = new_pool()
    try:
        while pending or inflight:
            if pool is None:
                # Worker processes cannot start here (for one, the parent's __main__ cannot be re-imported
                # by them): import the rest in this process, one file at a time, rather than not at all.
                committer.report.notes.append(
                    "worker processes could not be started; the files were imported here, one by one"
                )
                pending.extendleft(reversed([s for s, _ in inflight]))
                inflight.clear()
                while pending and not (cancel is not None and cancel.is_set()):
                    source = pending.popleft()
                    committer.commit([worker(source, settings)])
                    finish(source)
                return
            cancelled = cancel is not None and cancel.is_set()
            limit = 1 if suspects else window
            while not cancelled and pending and len(inflight) < limit:
                source = pending.popleft()
                try:
                    inflight.append((source, pool.submit(worker, source, settings)))
                except BrokenProcessPool:  # a worker died since the last result: requeue, recover below
                    pending.appendleft(source)
                    break
            if not inflight:
                if cancelled:
                    break
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
                continue
            source, future = inflight[0]
            try:
                future.result()
                # Wait for the rest of a batch too (those already submitted), unless the queue is short.
                batch = [f for _, f in list(inflight)[:BATCH]]
                futures_wait(batch, timeout=BATCH_WAIT_S)
            except BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
                if source.index in suspects and len(inflight) == 1:
                    # Alone in the pool and it crashed again: this file kills the decoder.
                    inflight.popleft()
                    suspects.discard(source.index)
                    crash = "made the image decoder crash; the file is damaged or built to attack decoders"
                    committer.commit([Failed(source, crash)])
                    finish(source)
                    continue
                for lost, _ in reversed(inflight):
                    suspects.add(lost.index)
                    pending.appendleft(lost)
                inflight.clear()
                continue
            if cancelled:
                break
            # Take every result that is already finished, in order, so places are looked up together.
            ready: list[tuple[SourceFile, Prepared | Failed]] = []
            while inflight and inflight[0][1].done():
                item_source, item_future = inflight[0]
                try:
                    item = item_future.result()
                except BrokenProcessPool:
                    break  # handled on the next pass
                inflight.popleft()
                suspects.discard(item_source.index)
                ready.append((item_source, item))
            committer.commit([item for _, item in ready])
            for item_source, _ in ready:
                finish(item_source)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class _Committer:
    """Parent-side writes: one transaction per file, originals moved in, duplicates and errors reported."""

    def __init__(self, store: CaseStore, report: ImportReport, locate: PlaceLookup | None) -> None:
        self.store = store
        self.report = report
        self.locate = locate
        self.names_in_batch: dict[str, str] = {}  # sha256 -> path of the first copy in this batch

    def commit(self, results: Sequence[Prepared | Failed]) -> None:
        started = time.perf_counter()
        timings = self.report.timings
        places = self._places([r for r in results if isinstance(r, Prepared)])
        timings["places"] = timings.get("places", 0.0) + time.perf_counter() - started
        for result in results:
            started = time.perf_counter()
            if isinstance(result, Prepared):
                for step, seconds in result.timings:
                    timings[step] = timings.get(step, 0.0) + seconds
            if isinstance(result, Failed):
                self.report.errors.append(FileError(result.source.path, result.error))
                continue
            try:
                self._commit_one(result, places.get(result.source.index))
            except Exception as exc:  # a store failure costs this file, never the batch
                error = f"could not be stored: {_describe(exc)}"
                self.report.errors.append(FileError(result.source.path, error))
            finally:
                Path(result.staged_original).unlink(missing_ok=True)
                if result.staged_thumb:
                    Path(result.staged_thumb).unlink(missing_ok=True)
                timings["commit"] = timings.get("commit", 0.0) + time.perf_counter() - started

    def _places(self, prepared: Sequence[Prepared]) -> dict[int, Place | str | None]:
        with_gps = [p for p in prepared if p.metadata.gps is not None]
        if not with_gps or self.locate is None:
            return {}
        try:
            places = self.locate([p.metadata.gps for p in with_gps if p.metadata.gps is not None])
        except Exception as exc:  # no place is better than no evidence
            return {p.source.index: f"the place of the GPS point could not be looked up: {_describe(exc)}"
                    for p in with_gps}
        return {p.source.index: place for p, place in zip(with_gps, places, strict=True)}

    def _commit_one(self, result: Prepared, place: Place | str | None) -> None:
        from geodesk.store.errors import AlreadyExistsError
        from geodesk.store.recovery import placing_marker

        store, meta = self.store, result.metadata
        if store.evidence.exists(result.sha256):
            self._duplicate(result)
            return
        notes = [*meta.notes, *result.notes]
        if isinstance(place, str):
            notes.append(place)
            place = None
        metadata = meta.as_dict()
        metadata["notes"] = notes
        metadata["thumbnail_source"] = result.thumbnail_source
        if result.damaged:
            metadata["damaged"] = result.damaged
        if result.oversize:
            metadata["oversize"] = result.oversize
        evidence = Evidence(
            sha256=result.sha256,
            original_name=Path(result.source.path).name,
            size_bytes=result.size_bytes,
            format=meta.format,
            width=meta.width,
            height=meta.height,
            imported_at=datetime.now(UTC),
            source_path=str(Path(result.source.path).absolute()),
            gps=meta.gps,
            taken_at=meta.taken_at,
            camera=meta.camera,
            orientation=meta.orientation,
            place=place,
            metadata=metadata,
        )
        final = store.evidence_path(result.sha256, EXTENSIONS.get(meta.format, ""))
        placed = False
        try:
            # The marker outlives a kill -9 between the rename and the commit: the next open of the case
            # then removes the placed file whose row never committed (geodesk/store/recovery.py).
            with placing_marker(store.path, result.sha256, final), store.transaction():
                store.evidence.add(evidence)
                Path(result.staged_original).replace(final)
                placed = True
                final.chmod(0o444)  # read-only: the original is never modified
                crash_point("import-commit")
        except AlreadyExistsError:  # another importer (GUI and CLI at once) got there first
            self._duplicate(result)
            return
        except BaseException:
            if placed:
                final.unlink(missing_ok=True)
            raise
        if result.staged_thumb:
            with contextlib.suppress(OSError):  # thumbnails are derived: a missing one is rebuilt on demand
                Path(result.staged_thumb).replace(store.thumb_path(result.sha256))
        self.names_in_batch[result.sha256] = result.source.path
        self.report.imported.append(evidence)

    def _duplicate(self, result: Prepared) -> None:
        first = self.names_in_batch.get(result.sha256)
        if first is not None:
            duplicate = Duplicate(result.source.path, result.sha256, Path(first).name, True)
            self.report.duplicates.append(duplicate)
            return
        try:
            existing: str | None = self.store.evidence.get(result.sha256).original_name
        except LookupError:
            existing = None
        self.report.duplicates.append(Duplicate(result.source.path, result.sha256, existing, False))
