from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from geodesk.store import CaseStore, MigrationError, NewerSchemaError, Workspace
from geodesk.store.migrations import (
    MIGRATIONS,
    Migration,
    applied_migrations,
    apply_migrations,
    schema_version,
)

DOMAIN_TABLES = {
    "case_info",
    "evidence",
    "clues",
    "hints",
    "sessions",
    "turns",
    "predictions",
    "findings",
    "audit_log",
    "migrations",
}


def test_fresh_database_gets_the_whole_domain() -> None:
    db = Database(memory=True)
    assert apply_migrations(db) == [m.number for m in MIGRATIONS]
    assert set(db.table_names()) >= DOMAIN_TABLES
    assert applied_migrations(db)[1][0] == "initial domain schema"
    assert schema_version(db) == len(MIGRATIONS)


def test_reopening_applies_only_missing_migrations() -> None:
    db = Database(memory=True)
    apply_migrations(db)
    assert apply_migrations(db) == []
    extended = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "add notes", "CREATE TABLE notes (id INTEGER)"))
    assert apply_migrations(db, extended) == [len(MIGRATIONS) + 1]
    assert "notes" in db.table_names()
    assert apply_migrations(db, extended) == []


def test_callable_migration_runs_in_the_transaction() -> None:
    db = Database(memory=True)

    def add_table(d: Database) -> None:
        d["widgets"].create({"id": int, "name": str}, pk="id")
        d.execute("INSERT INTO widgets (id, name) VALUES (1, 'x')")

    nxt = len(MIGRATIONS) + 1
    applied = apply_migrations(db, (*MIGRATIONS, Migration(nxt, "widgets", add_table)))
    assert applied == [*range(1, nxt + 1)]
    assert db.execute("SELECT name FROM widgets").fetchall() == [("x",)]


def test_failing_migration_leaves_no_trace() -> None:
    db = Database(memory=True)
    apply_migrations(db)
    before = set(db.table_names())
    nxt = len(MIGRATIONS) + 1
    broken = Migration(nxt, "half done", "CREATE TABLE half (id INTEGER); INSERT INTO nowhere VALUES (1);")
    with pytest.raises(MigrationError, match=rf"migration {nxt} \('half done'\) failed and was rolled back"):
        apply_migrations(db, (*MIGRATIONS, broken))
    assert set(db.table_names()) == before
    assert sorted(applied_migrations(db)) == [*range(1, nxt)]
    assert not db.conn.in_transaction


def test_failing_first_migration_leaves_an_empty_database() -> None:
    db = Database(memory=True)
    with pytest.raises(MigrationError):
        apply_migrations(db, (Migration(1, "bad", "CREATE TABLE a (id INTEGER); SELECT * FROM missing;"),))
    assert db.table_names() == []


def test_migrations_must_be_numbered_without_gaps() -> None:
    with pytest.raises(ValueError, match="without gaps"):
        apply_migrations(
            Database(memory=True), (Migration(1, "a", "SELECT 1"), Migration(3, "c", "SELECT 1"))
        )


def _record_migration(case_dir: Path, number: int, name: str) -> None:
    conn = sqlite3.connect(case_dir / "case.db")
    with conn:
        conn.execute(
            "INSERT INTO migrations (number, name, applied_at, geodesk_version) "
            "VALUES (?, ?, '2030-01-01', '9.0')",
            (number, name),
        )
    conn.close()


def test_case_from_a_newer_geodesk_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    case = ws.create_case("From the future")
    _record_migration(Path(case.path), 99, "future tables")
    with pytest.raises(NewerSchemaError, match=r"newer geodesk \(9\.0\).*migration 99"):
        ws.open_case(case.id)


def test_case_with_a_differently_named_migration_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    case = ws.create_case("Fork")
    conn = sqlite3.connect(Path(case.path) / "case.db")
    with conn:
        conn.execute("UPDATE migrations SET name = 'something else' WHERE number = 1")
    conn.close()
    with pytest.raises(NewerSchemaError, match="different geodesk build"):
        CaseStore.open(Path(case.path))


def test_opened_case_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with ws.open_case(ws.create_case("Pragmas")) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            store.db.execute(
                "INSERT INTO sessions (evidence_sha256, mode, model_name, model_version, model_sha256, "
                "backend, "
                "protocol_version, created_at) VALUES (?, 'direct', 'm', '1', 'x', 'hf', '1', 'now')",
                ("a" * 64,),
            )
