"""Numbered schema migrations for ``case.db``.

Each migration is ``(number, name, apply)``; ``apply`` is SQL (one or more statements) or a callable
taking the :class:`sqlite_utils.Database`. They run in order, each in its own ``BEGIN IMMEDIATE``
transaction that also records it in the ``migrations`` table, so a migration and its record commit
or roll back together: a failing migration leaves no trace. Opening a database that records a
migration this geodesk does not know (written by a newer geodesk) is refused rather than guessed at.

Rules for later migrations (see docs/adr/0002-case-store.md): never edit a released migration, only
append; keep enum values out of CHECK constraints (SQLite cannot alter a CHECK without rebuilding the
table), so new hint kinds or statuses need no migration at all.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database

from geodesk import __version__
from geodesk.store.errors import MigrationError, NewerSchemaError


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    apply: str | Callable[[Database], None]


# The whole domain in one migration, so later issues add behaviour, not schema. Enumerations are
# plain TEXT validated in Python (see module docstring); structural rules are CHECKs.
_INITIAL_SCHEMA = """
CREATE TABLE case_info (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE evidence (
    sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    original_name TEXT NOT NULL,
    source_path TEXT,
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    gps_lat REAL CHECK (gps_lat BETWEEN -90 AND 90),
    gps_lon REAL CHECK (gps_lon BETWEEN -180 AND 180),
    gps_alt REAL,
    taken_at TEXT,
    camera TEXT,
    orientation INTEGER NOT NULL DEFAULT 1,
    place TEXT,                          -- JSON object (Place) or NULL
    metadata TEXT NOT NULL DEFAULT '{}', -- JSON object: EXIF / XMP as imported
    imported_at TEXT NOT NULL,
    CHECK ((gps_lat IS NULL) = (gps_lon IS NULL))
);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    evidence_sha256 TEXT NOT NULL REFERENCES evidence(sha256),
    mode TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    model_path TEXT,
    backend TEXT NOT NULL,
    decoding TEXT NOT NULL DEFAULT '{}', -- JSON object
    protocol_version TEXT NOT NULL,
    replay_of INTEGER REFERENCES sessions(id),
    created_at TEXT NOT NULL
);
CREATE INDEX sessions_evidence ON sessions(evidence_sha256);

CREATE TABLE turns (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    prompt TEXT NOT NULL,
    raw_answer TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    protocol_version TEXT NOT NULL,
    prompt_tokens INTEGER,
    answer_tokens INTEGER,
    time_to_first_token_s REAL,
    total_time_s REAL,
    created_at TEXT NOT NULL,
    UNIQUE (session_id, idx)                -- also the index for "turns of a session, in order"
);

CREATE TABLE hints (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    position INTEGER NOT NULL,              -- order of the hint within its turn
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    answer TEXT,
    region_x0 INTEGER, region_y0 INTEGER, region_x1 INTEGER, region_y1 INTEGER,
    clue_ids TEXT NOT NULL DEFAULT '[]',    -- JSON list of clue ids sent back with a "clues" hint
    UNIQUE (turn_id, position),
    CHECK ((region_x0 IS NULL) = (region_y0 IS NULL) AND (region_x0 IS NULL) = (region_x1 IS NULL)
           AND (region_x0 IS NULL) = (region_y1 IS NULL))
);

-- One row per turn (1:1): the parsed answer. Kept apart from turns so that evaluation and history
-- queries read a narrow table and the prompt / raw answer text stays out of their way.
CREATE TABLE predictions (
    turn_id INTEGER PRIMARY KEY REFERENCES turns(id),
    country TEXT,
    country_code TEXT,
    region TEXT,
    city TEXT,
    lat REAL,
    lon REAL,
    valid INTEGER NOT NULL CHECK (valid IN (0, 1)),
    problems TEXT NOT NULL DEFAULT '[]',    -- JSON list of sentences
    clues TEXT NOT NULL DEFAULT '[]',       -- JSON list of [category, text]
    reasoning TEXT,
    candidates TEXT NOT NULL DEFAULT '[]'   -- JSON list of Candidate objects
);

CREATE TABLE clues (
    id INTEGER PRIMARY KEY,
    evidence_sha256 TEXT NOT NULL REFERENCES evidence(sha256),
    category TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    region_x0 INTEGER, region_y0 INTEGER, region_x1 INTEGER, region_y1 INTEGER,
    turn_id INTEGER REFERENCES turns(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK ((region_x0 IS NULL) = (region_y0 IS NULL) AND (region_x0 IS NULL) = (region_x1 IS NULL)
           AND (region_x0 IS NULL) = (region_y1 IS NULL))
);
CREATE INDEX clues_evidence ON clues(evidence_sha256);
CREATE INDEX clues_turn ON clues(turn_id);

-- Versioned: saving a finding adds a row; the current one is the highest version.
CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    evidence_sha256 TEXT NOT NULL REFERENCES evidence(sha256),
    version INTEGER NOT NULL CHECK (version >= 1),
    lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
    radius_km REAL NOT NULL CHECK (radius_km >= 0),
    status TEXT NOT NULL,
    reasoning TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (evidence_sha256, version)       -- also the index for current() and history()
);
CREATE TRIGGER findings_keep_history_update BEFORE UPDATE ON findings
BEGIN SELECT RAISE(ABORT, 'findings keep their history: save a new version instead of editing one'); END;
CREATE TRIGGER findings_keep_history_delete BEFORE DELETE ON findings
BEGIN SELECT RAISE(ABORT, 'findings keep their history: versions cannot be deleted'); END;

-- Append-only hash chain. AUTOINCREMENT keeps sqlite_sequence at the highest seq ever used, which
-- lets verify() notice that the newest entries were deleted.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL,                  -- canonical JSON object
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

# What a session's model is known not to be fit for (the registry's untrained / synthetic labels), and
# the known true location of evidence that has one (a GeoSynth demo scene's truth), so every screen can
# label such answers and measure them against the truth.
_MODEL_CAVEAT_AND_TRUTH = """
ALTER TABLE sessions ADD COLUMN model_caveat TEXT CHECK (model_caveat IN ('untrained', 'synthetic'));

CREATE TABLE evidence_truth (
    evidence_sha256 TEXT PRIMARY KEY REFERENCES evidence(sha256),
    source TEXT NOT NULL,                  -- where the truth comes from, e.g. 'geosynth'
    lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
    country TEXT,
    country_code TEXT,
    region TEXT,
    city TEXT,
    created_at TEXT NOT NULL
);
"""

# The clue engine's part of a clue (ADR 0036): one row per engine clue, beside the clue itself, so the
# clue table stays as it is and clues from the model or the analyst need no row here. ``countries`` is
# a JSON object {ISO alpha-2: likelihood 0..1}, ``others`` the likelihood of every unlisted country
# (0: ruled out), ``area`` a GeoJSON geometry or NULL, ``provenance`` the engine version and the
# SHA-256 of every model file the finding came from.
_CLUE_ENGINE_SCHEMA = """
CREATE TABLE clue_engine (
    clue_id INTEGER PRIMARY KEY REFERENCES clues(id),
    confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    countries TEXT NOT NULL DEFAULT '{}',
    others REAL NOT NULL CHECK (others BETWEEN 0 AND 1),
    area TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    engine_version TEXT NOT NULL,
    provenance TEXT NOT NULL DEFAULT '{}'
);
"""

# Contradiction flags (ADR 0050): a turn's prediction against an engine clue of its evidence item, one
# row per (turn, clue, kind) found, whatever the clue's review status then; a flag counts while its clue
# is accepted or edited. Both sides never change (a turn's answer, a clue's likelihoods and area), so the
# rows never change either: append-only, like the audit log.
_TURN_FLAGS_SCHEMA = """
CREATE TABLE turn_flags (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    clue_id INTEGER NOT NULL REFERENCES clues(id),
    kind TEXT NOT NULL CHECK (kind IN ('country', 'sun')),  -- its country ruled out / its point off a band
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (turn_id, clue_id, kind)
);
CREATE INDEX turn_flags_clue ON turn_flags (clue_id);
CREATE TRIGGER turn_flags_append_only_update BEFORE UPDATE ON turn_flags
BEGIN SELECT RAISE(ABORT, 'contradiction flags are append-only'); END;
CREATE TRIGGER turn_flags_append_only_delete BEFORE DELETE ON turn_flags
BEGIN SELECT RAISE(ABORT, 'contradiction flags are append-only'); END;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial domain schema", _INITIAL_SCHEMA),
    Migration(2, "session model caveat and evidence truth", _MODEL_CAVEAT_AND_TRUTH),
    Migration(3, "clue engine findings beside clues", _CLUE_ENGINE_SCHEMA),
    Migration(4, "contradiction flags between turns and engine clues", _TURN_FLAGS_SCHEMA),
)

# The triggers that make the audit log append-only; verify() reports any that went missing.
AUDIT_GUARD_TRIGGERS = ("audit_log_append_only_update", "audit_log_append_only_delete")

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS migrations (
    number INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    geodesk_version TEXT NOT NULL
)
"""


def _check_sequence(migrations: Sequence[Migration]) -> None:
    numbers = [m.number for m in migrations]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3, ... without gaps; got {numbers}")


def applied_migrations(db: Database) -> dict[int, tuple[str, str]]:
    """``{number: (name, geodesk_version)}`` recorded in ``db``; empty for a fresh database."""
    if "migrations" not in db.table_names():
        return {}
    rows = db.execute("SELECT number, name, geodesk_version FROM migrations").fetchall()
    return {int(n): (str(name), str(version)) for n, name, version in rows}


def check_not_newer(
    db: Database, migrations: Sequence[Migration] = MIGRATIONS, label: str = "this case"
) -> None:
    """Refuse a database recording migrations this geodesk does not know (or knows by another name)."""
    known = {m.number: m for m in migrations}
    for number, (name, version) in sorted(applied_migrations(db).items()):
        if number not in known:
            raise NewerSchemaError(
                f"{label} was written by a newer geodesk ({version}): it has schema migration {number} "
                f"({name!r}), but geodesk {__version__} knows only migrations 1 to {len(known)}. "
                "Open it with a geodesk at least as new as the one that wrote it."
            )
        if known[number].name != name:
            raise NewerSchemaError(
                f"{label} records schema migration {number} as {name!r}, but geodesk {__version__} names it "
                f"{known[number].name!r}: it was written by a different geodesk build. Open it with "
                f"that build."
            )


def apply_migrations(
    db: Database, migrations: Sequence[Migration] = MIGRATIONS, label: str = "this case"
) -> list[int]:
    """Apply the migrations ``db`` lacks, in order; return the numbers applied now.

    Raises :class:`NewerSchemaError` for a database from a newer geodesk and :class:`MigrationError`
    (with the failed migration's changes rolled back) when a migration fails.
    """
    _check_sequence(migrations)
    check_not_newer(db, migrations, label)
    applied_now: list[int] = []
    conn = db.conn
    if conn.in_transaction:
        raise MigrationError("migrations must run outside a transaction; commit or roll back first")
    already = applied_migrations(db)
    for migration in migrations:
        if migration.number in already:
            continue  # plain read first: opening an up-to-date case never waits for the write lock
        # BEGIN IMMEDIATE takes the write lock first, so a second process opening the same case waits
        # here and then sees the migration already recorded instead of applying it twice.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_MIGRATIONS_TABLE)
            done = conn.execute("SELECT 1 FROM migrations WHERE number = ?", (migration.number,)).fetchone()
            if done is None:
                if callable(migration.apply):
                    migration.apply(db)
                else:
                    db.executescript(migration.apply)  # inside a transaction: no implicit COMMIT
                conn.execute(
                    "INSERT INTO migrations (number, name, applied_at, geodesk_version) VALUES (?, ?, ?, ?)",
                    (migration.number, migration.name, datetime.now(UTC).isoformat(), __version__),
                )
                applied_now.append(migration.number)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, (sqlite3.Error, ValueError, TypeError, KeyError)):
                raise MigrationError(
                    f"schema migration {migration.number} ({migration.name!r}) failed and was rolled "
                    f"back: {exc}"
                ) from exc
            raise
    return applied_now


def schema_version(db: Database) -> int:
    """The highest migration number recorded in ``db`` (0 for a fresh database)."""
    return max(applied_migrations(db), default=0)


SchemaObject = tuple[str, str, str | None]  # (type, name, sql) as sqlite_master holds them
# Made by ANALYZE / PRAGMA optimize (say, from a SQLite shell): statistics for the query planner, no code.
_STATISTICS_TABLES = ("sqlite_stat1", "sqlite_stat4")


@functools.cache
def expected_schema(version: int) -> frozenset[SchemaObject]:
    """Every schema object geodesk's own migrations 1..``version`` create (built once in memory)."""
    db = Database(sqlite3.connect(":memory:"))
    try:
        apply_migrations(db, MIGRATIONS[:version])
        return frozenset(_schema_objects(db.conn))
    finally:
        db.close()


def _schema_objects(conn: sqlite3.Connection) -> list[SchemaObject]:
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    return [(str(t), str(n), None if s is None else str(s)) for t, n, s in rows]


def schema_differences(conn: sqlite3.Connection) -> list[str]:
    """Each schema object of ``conn`` that geodesk's migrations did not create, or that differs from
    what they create, as a sentence; empty when the schema is exactly geodesk's own.

    A case database from someone else's archive may carry a trigger that quietly edits later rows
    (strips GPS from new evidence), a view or a table that shadows one; none of it is geodesk's.
    """
    try:
        version = max((int(n) for (n,) in conn.execute("SELECT number FROM migrations")), default=0)
    except sqlite3.Error:
        version = 0
    known = {m.number for m in MIGRATIONS}
    if version not in known:
        return [f"the database records schema version {version}, which geodesk {__version__} does not know."]
    expected = expected_schema(version)
    expected_by_name = {(t, n): s for t, n, s in expected}
    problems = []
    actual = _schema_objects(conn)
    for kind, name, sql in sorted(actual, key=lambda o: (o[0], o[1])):
        if (kind, name, sql) in expected or (kind == "table" and name in _STATISTICS_TABLES):
            continue
        if (kind, name) in expected_by_name:
            problems.append(f"the database's {kind} {name!r} is not the one geodesk creates: it was changed.")
        else:
            problems.append(f"the database holds a {kind} {name!r} that geodesk did not create.")
    present = {(t, n) for t, n, _ in actual}
    for kind, name in sorted(set(expected_by_name) - present):
        if name in AUDIT_GUARD_TRIGGERS:
            continue  # AuditLog.verify() reports a dropped guard in its own words
        problems.append(f"the database lacks geodesk's {kind} {name!r}: it was removed.")
    return problems
