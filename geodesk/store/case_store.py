"""One open case: its SQLite database (WAL, foreign keys on, migrated) and its folders.

A case folder::

    case.json            id, title, created_at: an archived folder describes itself without SQLite
    case.db              SQLite in WAL mode: the domain tables, migrations, audit_log
    evidence/ab/<sha256>.<ext>   originals, content-addressed, read-only
    thumbs/<sha256>.jpg  thumbnails (derived, can be rebuilt)
    exports/             reports and archives written from this case

Open one with :meth:`CaseStore.open` (or ``Workspace.open_case``); use it as a context manager or call
:meth:`close`. One CaseStore per thread: SQLite connections are not shared across threads, and WAL
lets several connections (the GUI, a worker, the CLI) read while one writes.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database

from geodesk.domain import Case
from geodesk.store._codec import from_text, now_utc, to_text
from geodesk.store._files import write_json_atomic
from geodesk.store._staging import remove_stale
from geodesk.store.anchor import CaseAnchor, Head, anchor_for, restrict_folder
from geodesk.store.audit import AuditLog
from geodesk.store.engine_clues import EngineClueRepository
from geodesk.store.errors import NotACaseError, StoreError
from geodesk.store.migrations import apply_migrations, schema_version
from geodesk.store.recovery import RecoveryReport, recover
from geodesk.store.repositories import (
    ClueRepository,
    EvidenceRepository,
    FindingRepository,
    SessionRepository,
    TruthRepository,
    TurnRepository,
    check_sha256,
)
from geodesk.store.turn_flags import TurnFlagRepository

DB_NAME = "case.db"
CASE_JSON = "case.json"
EXPORT_STAGING_PREFIX = ".export-"  # an export's snapshot folder inside the case folder
PARTIAL_ARCHIVE_SUFFIX = ".geodesk-partial"  # an archive being written, beside its final name
_EXT = re.compile(r"\.?[a-z0-9]{1,10}")
_BUSY_TIMEOUT_S = 10.0  # another process (GUI + CLI) may hold the write lock for a moment


def _restrict_case_files(case_dir: Path) -> None:
    """Owner-only permissions on a case folder and its database files (0700 / 0600, whatever the umask).

    SQLite gives the -wal and -shm files the permissions of the database file. A case on read-only
    media or owned by someone else keeps what it has: that is reported by nothing and harms nothing.
    """
    try:
        case_dir.chmod(0o700)
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
            path = case_dir / name
            if path.exists():
                path.chmod(0o600)
    except OSError:
        pass


def case_document(case: Case) -> dict[str, str]:
    return {"id": case.id, "title": case.title, "created_at": to_text(case.created_at)}


class CaseStore:
    """The repositories of one case over one SQLite connection."""

    def __init__(self, db: Database, path: Path, anchor: CaseAnchor | None = None) -> None:
        # Use CaseStore.open / CaseStore.create; this only wires the parts together.
        self.db = db
        self.path = path
        # The workspace's audit anchor (docs/adr/0016), when the case sits in a workspace with a key.
        self.anchor = anchor
        self._savepoints = itertools.count(1)
        self.audit = AuditLog(db, self.transaction)
        self.evidence = EvidenceRepository(db, self.transaction, self.audit)
        self.clues = ClueRepository(db, self.transaction, self.audit)
        self.engine_clues = EngineClueRepository(self.clues, db, self.transaction, self.audit)
        self.sessions = SessionRepository(db, self.transaction, self.audit)
        self.turns = TurnRepository(db, self.transaction, self.audit)
        self.findings = FindingRepository(db, self.transaction, self.audit)
        self.truth = TruthRepository(db, self.transaction, self.audit)
        self.turn_flags = TurnFlagRepository(db, self.transaction, self.audit)
        row = db.execute("SELECT id, title, created_at FROM case_info").fetchone()
        if row is None:
            raise NotACaseError(
                f"{path} has a case.db without its case record; it is not a usable geodesk case"
            )
        created = from_text(row[2])
        assert created is not None
        self.case = Case(id=row[0], title=row[1], path=str(path), created_at=created)
        self.recovered = RecoveryReport([], [])  # what crash recovery settled when this store opened

    # ------------------------------------------------------------------ opening, creating, closing

    @staticmethod
    def _connect(db_path: Path) -> Database:
        conn = sqlite3.connect(str(db_path), timeout=_BUSY_TIMEOUT_S)
        # A case database may come from someone else's archive: never let its schema (a trigger, a
        # view, a default) call functions that are not harmless (SQLite's trusted_schema).
        conn.execute("PRAGMA trusted_schema = OFF")
        db = Database(conn, execute_plugins=False)
        # Both pragmas must be set outside a transaction; foreign keys are per connection.
        db.execute("PRAGMA foreign_keys = ON")
        db.enable_wal()
        # WAL + NORMAL: a commit no longer waits for an fsync (3.8 ms -> 0.2 ms per transaction here).
        # The database still cannot be corrupted by a crash; only an OS crash or power loss may undo
        # the last committed transactions, each whole with its audit entries (docs/adr/0002).
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    @classmethod
    def open(cls, case_dir: Path) -> CaseStore:
        """Open an existing case folder, applying any schema migrations it lacks."""
        case_dir = Path(case_dir)
        db_path = case_dir / DB_NAME
        if not db_path.is_file():
            raise NotACaseError(f"{case_dir} is not a geodesk case folder: it has no {DB_NAME}")
        _restrict_case_files(case_dir)
        # An export killed mid-way leaves its snapshot folder here (and its partial archive beside the
        # archive it was writing): remove them once their process is gone.
        remove_stale(case_dir, EXPORT_STAGING_PREFIX, owned_suffix=PARTIAL_ARCHIVE_SUFFIX)
        db = cls._connect(db_path)
        try:
            apply_migrations(db, label=f"case {case_dir.name}")
            store = cls(db, case_dir, anchor_for(case_dir))
            # Work a killed process left half-done (a placed original without its row, a turn left
            # 'running') is settled before anyone reads the case: geodesk/store/recovery.py.
            store.recovered = recover(store)
            return store
        except BaseException:
            db.close()
            raise

    @classmethod
    def open_reader(cls, case_dir: Path) -> CaseStore:
        """A read-only connection to a case this process has already opened with :meth:`open`.

        It skips what :meth:`open` does once per case (migrations, crash recovery, stale exports,
        permissions), so a worker thread can read the selected item's rows in a few milliseconds;
        SQLite refuses any write through it (``query_only``).
        """
        db_path = Path(case_dir) / DB_NAME
        if not db_path.is_file():
            raise NotACaseError(f"{case_dir} is not a geodesk case folder: it has no {DB_NAME}")
        db = cls._connect(db_path)
        try:
            db.execute("PRAGMA query_only = ON")
            return cls(db, Path(case_dir), None)
        except BaseException:
            db.close()
            raise

    @classmethod
    def open_writer(cls, case_dir: Path) -> CaseStore:
        """A connection to a case this process has already opened with :meth:`open`, for one of the
        analyst's small writes in a worker thread (a clue's review, a finding's version). Like
        :meth:`open_reader` it skips what :meth:`open` does once per case; it writes through the same
        transactions, audit chain and workspace anchor as any other store."""
        db_path = Path(case_dir) / DB_NAME
        if not db_path.is_file():
            raise NotACaseError(f"{case_dir} is not a geodesk case folder: it has no {DB_NAME}")
        db = cls._connect(db_path)
        try:
            return cls(db, Path(case_dir), anchor_for(Path(case_dir)))
        except BaseException:
            db.close()
            raise

    @classmethod
    def create(
        cls, case_dir: Path, case_id: str, title: str, created_at: datetime | None = None
    ) -> CaseStore:
        """Create a new case in ``case_dir`` (which must not exist or be empty) and open it."""
        case_dir = Path(case_dir)
        if case_dir.exists() and any(case_dir.iterdir()):
            raise StoreError(f"cannot create a case in {case_dir}: the folder is not empty")
        restrict_folder(case_dir)  # owner-only whatever the umask: a case holds seized material
        for sub in ("evidence", "thumbs", "exports"):
            (case_dir / sub).mkdir(parents=True, exist_ok=True)
        db = cls._connect(case_dir / DB_NAME)
        _restrict_case_files(case_dir)
        anchor = anchor_for(case_dir)
        try:
            apply_migrations(db, label=f"case {case_id}")
            created = to_text(created_at or now_utc())
            # The case record and its first audit entry commit together.
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO case_info (singleton, id, title, created_at) VALUES (1, ?, ?, ?)",
                    (case_id, title, created),
                )
                first = AuditLog(db, contextlib.nullcontext).append(
                    "case.create", f"case:{case_id}", {"id": case_id, "title": title, "created_at": created}
                )
                if anchor is not None:
                    anchor.before_commit(case_id, None, (first.seq, first.hash))
                db.conn.execute("COMMIT")
            except BaseException:
                db.rollback()
                raise
            if anchor is not None:
                anchor.after_commit(case_id, (first.seq, first.hash))
            store = cls(db, case_dir, anchor)
            write_json_atomic(case_dir / CASE_JSON, case_document(store.case))
            return store
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        self.db.close()
        if self.anchor is not None:
            self.anchor.close()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction; a nested call joins the outer one.

        The outermost call starts ``BEGIN IMMEDIATE`` (take the write lock now, so a read-then-write
        never fails half-way with SQLITE_BUSY) and commits at the end, or rolls everything back on an
        exception. A nested call runs inside a savepoint: if its block raises, only its own changes
        (and their audit entries) are undone and the exception goes on to the caller; nothing commits
        before the outermost block ends.
        """
        conn = self.db.conn
        if conn.in_transaction:
            name = f"geodesk_sp_{next(self._savepoints)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                raise
            conn.execute(f"RELEASE {name}")
            return
        conn.execute("BEGIN IMMEDIATE")
        start = self._audit_head() if self.anchor is not None else None
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        anchored: tuple[str, Head] | None = None
        try:
            if self.anchor is not None:
                new = self._audit_head()
                if new is not None and new != start:
                    # Recorded while this connection holds the write lock: no other writer can race.
                    (case_id,) = conn.execute("SELECT id FROM case_info").fetchone()
                    anchored = (str(case_id), new)
                    self.anchor.before_commit(anchored[0], start, new)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if anchored is not None and self.anchor is not None:
                self.anchor.after_rollback(*anchored)
            raise
        if anchored is not None and self.anchor is not None:
            self.anchor.after_commit(*anchored)

    def _audit_head(self) -> Head | None:
        row = self.db.conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # ------------------------------------------------------------------------------------ folders

    @property
    def evidence_dir(self) -> Path:
        return self.path / "evidence"

    @property
    def thumbs_dir(self) -> Path:
        return self.path / "thumbs"

    @property
    def exports_dir(self) -> Path:
        return self.path / "exports"

    def evidence_path(self, sha256: str, ext: str) -> Path:
        """Where the original with this SHA-256 lives: ``evidence/<sha[:2]>/<sha256><.ext>``.

        ``ext`` is like ``".jpg"`` or ``"jpg"`` (lower-cased; ``""`` for none). The parent folder is
        created so the importer can write there directly.
        """
        check_sha256(sha256)
        ext = ext.lower()
        if ext and not _EXT.fullmatch(ext):
            raise ValueError(f"{ext!r} is not a file extension (1 to 10 letters or digits)")
        if ext and not ext.startswith("."):
            ext = "." + ext
        folder = self.evidence_dir / sha256[:2]
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{sha256}{ext}"

    def evidence_files(self, sha256: str) -> list[Path]:
        """The stored original(s) of this SHA-256, whatever their extension (normally exactly one)."""
        check_sha256(sha256)
        folder = self.evidence_dir / sha256[:2]
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.name == sha256 or p.name.startswith(sha256 + "."))

    def evidence_file(self, sha256: str) -> Path:
        """The stored original of this SHA-256; LookupError when the file is gone."""
        files = self.evidence_files(sha256)
        if not files:
            raise LookupError(f"the original of evidence {sha256[:12]}… is missing from {self.evidence_dir}")
        return files[0]

    def thumb_path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.thumbs_dir / f"{sha256}.jpg"

    # -------------------------------------------------------------------------------------- facts

    def schema_version(self) -> int:
        return schema_version(self.db)

    def counts(self) -> dict[str, int]:
        """How many of each thing the case holds (findings: evidence items with a finding)."""
        queries = {
            "evidence": "SELECT count(*) FROM evidence",
            "sessions": "SELECT count(*) FROM sessions",
            "turns": "SELECT count(*) FROM turns",
            "clues": "SELECT count(*) FROM clues",
            "findings": "SELECT count(DISTINCT evidence_sha256) FROM findings",
            "audit_entries": "SELECT count(*) FROM audit_log",
        }
        return {name: int(self.db.execute(sql).fetchone()[0]) for name, sql in queries.items()}

    def backup_to(self, target: Path) -> None:
        """A consistent snapshot of ``case.db`` through SQLite's backup API (never a copy of a live WAL file).

        The copy is switched to a rollback journal so it is one self-contained file.
        """
        if target.exists():
            raise StoreError(f"{target} already exists; refusing to overwrite it with a snapshot")
        dest = sqlite3.connect(str(target))
        try:
            self.db.conn.backup(dest)  # pages=-1: the whole database in one step, one read snapshot
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
