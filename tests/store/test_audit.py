from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodesk.store import GENESIS_HASH, CaseStore
from tests.store.conftest import add_evidence


def test_chain_links_and_hashes(store: CaseStore) -> None:
    add_evidence(store, b"a")
    store.audit.append("note", "case", {"text": "Ünïcode ✓", "n": [1, 2.5, None]})
    entries = store.audit.entries()
    assert entries[0].prev_hash == GENESIS_HASH
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
        assert entry.seq == previous.seq + 1
    last = entries[-1]
    payload = json.dumps(
        [last.seq, last.at, last.action, last.subject, last.details, last.prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert last.hash == hashlib.sha256(payload.encode()).hexdigest()
    assert store.audit.head() == last
    assert store.audit.verify() == []


@settings(max_examples=30, deadline=None)
@given(
    details=st.dictionaries(
        st.text(max_size=10),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        max_size=5,
    ),
    subject=st.text(max_size=20),
)
def test_appended_entries_read_back_and_verify(
    tmp_path_factory: pytest.TempPathFactory, details: dict, subject: str
) -> None:
    from geodesk.store import Workspace

    ws = Workspace(tmp_path_factory.mktemp("audit"))
    with ws.open_case(ws.create_case("Audit")) as store:
        entry = store.audit.append("note.add", subject, details)
        assert store.audit.entries()[-1] == entry
        assert entry.details == details
        assert store.audit.verify() == []


def test_append_only_triggers(store: CaseStore) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE audit_log SET details = '{}'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM audit_log")


def test_bad_details_are_refused(store: CaseStore) -> None:
    with pytest.raises(ValueError, match="not finite"):
        store.audit.append("x", "y", {"v": float("nan")})
    with pytest.raises(ValueError, match="must be a dict"):
        store.audit.append("x", "y", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an action"):
        store.audit.append("", "y", {})
    assert len(store.audit.entries()) == 1


def _tamper(store: CaseStore, *statements: str) -> None:
    store.db.conn.execute("DROP TRIGGER audit_log_append_only_update")
    store.db.conn.execute("DROP TRIGGER audit_log_append_only_delete")
    for sql in statements:
        store.db.conn.execute(sql)
    store.db.conn.commit()


def _build(store: CaseStore) -> None:
    for n in range(4):
        store.audit.append("note", f"n{n}", {"n": n})


def test_verify_reports_edited_details(store: CaseStore) -> None:
    _build(store)
    _tamper(store, "UPDATE audit_log SET details = '{\"n\":99}' WHERE seq = 3")
    problems = store.audit.verify()
    assert any("audit entry 3 (note n1) was altered" in p for p in problems)
    assert any("append-only guard" in p for p in problems)


def test_verify_reports_a_deleted_entry(store: CaseStore) -> None:
    _build(store)
    _tamper(store, "DELETE FROM audit_log WHERE seq = 2")
    problems = store.audit.verify()
    assert any("seq 2 was deleted" in p for p in problems)
    assert any("audit entry 3 (note n1) does not link to entry 1" in p for p in problems)


def test_verify_reports_a_deleted_tail(store: CaseStore) -> None:
    _build(store)
    _tamper(store, "DELETE FROM audit_log WHERE seq >= 4")
    problems = store.audit.verify()
    assert any("newest audit entries were deleted: seq 4 to 5" in p for p in problems)
    # Appends continue after the gap, and the gap stays visible.
    store.db.execute(
        "CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )
    store.db.execute(
        "CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )
    entry = store.audit.append("note", "later", {})
    assert entry.seq == 6
    assert store.audit.verify() == ["audit entries are missing before entry 6: seq 4 to 5 was deleted."]


def test_verify_reports_reordered_entries(store: CaseStore) -> None:
    _build(store)
    _tamper(
        store,
        "UPDATE audit_log SET seq = 100 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 100",
    )
    problems = store.audit.verify()
    assert any("audit entry 2 (note n1) was altered" in p for p in problems)
    assert any("audit entry 3 (note n0) was altered" in p for p in problems)
    assert any("does not link" in p for p in problems)
