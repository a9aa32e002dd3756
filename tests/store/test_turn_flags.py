"""Contradiction flags in the store: recorded once per (turn, clue, kind), append-only, audited with
their record digest (so verify notices an edit made with plain SQL), and counted by the clue's status."""

from __future__ import annotations

import sqlite3

import pytest

from geodesk.domain import ModelIdentity, Prediction, Turn
from geodesk.domain.model import ClueStatus, Session, SessionMode
from geodesk.services.verify import verify_case
from geodesk.store import CaseStore
from geodesk.store.migrations import MIGRATIONS
from tests.store.conftest import add_engine_clue, add_evidence


def _turn(store: CaseStore, sha: str) -> int:
    session = store.sessions.add(
        Session(None, sha, SessionMode.DIRECT, ModelIdentity("tiny", "1", "0" * 64), "hf", {}, "1")
    )
    assert session.id is not None
    turn = store.turns.add(
        Turn(
            None,
            session.id,
            0,
            "Where?",
            '{"country": "Brazil"}',
            Prediction(country="Brazil", country_code="BR", valid=True),
        )
    )
    assert turn.id is not None
    return turn.id


def test_flags_are_recorded_once_audited_and_counted_by_clue_status(store: CaseStore) -> None:
    assert MIGRATIONS[-1].name == "contradiction flags between turns and engine clues"
    sha = add_evidence(store, b"flag photo").sha256
    turn_id = _turn(store, sha)
    clue = add_engine_clue(store, sha)
    clue_id = clue.clue.id  # type: ignore[attr-defined]
    added = store.turn_flags.add_missing([(turn_id, clue_id, "country", "BR is ruled out by clue 1")])
    assert [(f.turn_id, f.clue_id, f.kind) for f in added] == [(turn_id, clue_id, "country")]
    assert not added[0].counts  # the clue is only proposed
    assert store.turn_flags.add_missing([(turn_id, clue_id, "country", "again")]) == []
    store.clues.update_status(clue_id, ClueStatus.ACCEPTED)
    [flag] = store.turn_flags.list(evidence_sha256=sha)
    assert flag.counts and flag.text == "BR is ruled out by clue 1"
    assert store.turn_flags.list(session_id=999) == []
    entry = [e for e in store.audit.entries() if e.subject == f"flag:{flag.id}"]
    assert entry and entry[0].action == "turn.flag" and "record_sha256" in entry[0].details
    assert store.audit.verify() == []
    with pytest.raises(ValueError, match="kind"):
        store.turn_flags.add_missing([(turn_id, clue_id, "colour", "x")])


def test_flags_cannot_be_changed_and_a_bypass_is_caught_by_verify(store: CaseStore) -> None:
    sha = add_evidence(store, b"flag photo 2").sha256
    turn_id = _turn(store, sha)
    clue_id = add_engine_clue(store, sha).clue.id  # type: ignore[attr-defined]
    [flag] = store.turn_flags.add_missing([(turn_id, clue_id, "country", "BR is ruled out")])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE turn_flags SET text = 'nothing' WHERE id = ?", (flag.id,))
    assert verify_case(store) == []
    store.db.execute("DROP TRIGGER turn_flags_append_only_update")
    store.db.execute("UPDATE turn_flags SET text = 'nothing to see' WHERE id = ?", (flag.id,))
    problems = " ".join(verify_case(store))
    assert f"contradiction flag {flag.id} was changed outside geodesk" in problems
