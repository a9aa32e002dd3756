"""Every write is one transaction with its audit entry; failures and crashes leave the case as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from geodesk.domain import Clue, ClueSource
from geodesk.store import CaseStore, Workspace
from tests.store.conftest import add_evidence


def _dump(store: CaseStore) -> list[str]:
    return list(store.db.conn.iterdump())


def test_rollback_leaves_no_audit_entry(store: CaseStore) -> None:
    before = store.audit.entries()
    with pytest.raises(RuntimeError, match="analyst cancelled"), store.transaction():
        e = add_evidence(store, b"one")
        store.clues.add(Clue(None, e.sha256, "architecture", "minaret", ClueSource.ANALYST))
        raise RuntimeError("analyst cancelled")
    assert store.audit.entries() == before
    assert store.evidence.count() == 0
    assert store.clues.list() == []


def test_failed_audit_append_rolls_back_the_action(store: CaseStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_append(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store.audit, "append", broken_append)
    with pytest.raises(OSError, match="disk full"):
        add_evidence(store, b"unaudited")
    monkeypatch.undo()
    assert store.evidence.count() == 0
    assert [e.action for e in store.audit.entries()] == ["case.create"]


def test_exception_mid_transaction_leaves_the_database_as_it_was(store: CaseStore) -> None:
    add_evidence(store, b"kept")
    before = _dump(store)
    with pytest.raises(KeyError), store.transaction():
        add_evidence(store, b"second")
        store.db.execute("UPDATE clues SET text = 'x'")
        store.audit.append("note", "case", {"n": 1})
        raise KeyError("boom")
    assert _dump(store) == before
    assert not store.db.conn.in_transaction


def test_nested_transactions_join_the_outer_one(store: CaseStore) -> None:
    with store.transaction():
        outer = add_evidence(store, b"outer")
        with store.transaction():
            add_evidence(store, b"inner")
        # Nothing is committed yet: a second connection does not see either row.
        with CaseStore.open(store.path) as other:
            assert other.evidence.count() == 0
    assert store.evidence.count() == 2
    assert store.evidence.exists(outer.sha256)


def test_failed_inner_block_undoes_only_itself(store: CaseStore) -> None:
    with store.transaction():
        add_evidence(store, b"outer")
        with pytest.raises(LookupError):
            store.clues.add(Clue(None, "0" * 64, "c", "t", ClueSource.MODEL))  # no such evidence
        try:
            with store.transaction():
                add_evidence(store, b"inner")
                raise ValueError("inner failure")
        except ValueError:
            pass
    assert store.evidence.count() == 1
    assert [e.action for e in store.audit.entries()] == ["case.create", "evidence.add"]
    assert store.audit.verify() == []


def test_a_process_killed_mid_transaction_loses_only_that_transaction(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    case = ws.create_case("Crash")
    with ws.open_case(case.id) as store:
        add_evidence(store, b"before the crash")
        before = _dump(store)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from geodesk.store import CaseStore
        from tests.store.conftest import add_evidence
        store = CaseStore.open(Path({case.path!r}))
        with store.transaction():
            add_evidence(store, b"written but never committed")
            store.audit.append("note", "case", {{"half": True}})
            os._exit(3)  # dies holding the write lock, no rollback, no close
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stderr
    with ws.open_case(case.id) as store:
        assert _dump(store) == before
        assert store.audit.verify() == []
        add_evidence(store, b"after the crash")  # the lock died with the process
