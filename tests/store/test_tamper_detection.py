"""Tampering that a consistent-looking case used to hide from `case verify`, and what catches it now.

Each test edits a case the way someone with the case folder and a SQLite shell would: with the
append-only triggers dropped and put back, and hashes recomputed where the attack needs them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from geodesk.domain import (
    Clue,
    ClueSource,
    ClueStatus,
    Finding,
    FindingStatus,
    ModelIdentity,
    Prediction,
    Session,
    SessionMode,
    Turn,
)
from geodesk.services.cases import export_case
from geodesk.services.verify import verify_case, verify_report
from geodesk.store import CaseStore, NotACaseError, Workspace
from geodesk.store._codec import canonical_json
from geodesk.store.anchor import CaseAnchor
from geodesk.store.audit import entry_hash
from geodesk.store.digests import record_digest
from tests.store.conftest import add_evidence


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def store(ws: Workspace) -> Iterator[CaseStore]:
    case = ws.create_case("Harbour")
    with ws.open_case(case) as s:
        yield s


def _fill(store: CaseStore) -> dict[str, int | str]:
    evidence = add_evidence(store, b"\xff\xd8 photo " * 300, "a.jpg")
    session = store.sessions.add(
        Session(
            None, evidence.sha256, SessionMode.DIRECT, ModelIdentity("tiny", "1", "0" * 64), "hf", {}, "1"
        )
    )
    assert session.id is not None
    turn = store.turns.add(
        Turn(
            None,
            session.id,
            0,
            "Where was this taken?",
            '{"country": "France", "lat": 43.3, "lon": 5.4}',
            Prediction(country="France", country_code="FR", lat=43.3, lon=5.4, valid=True),
        )
    )
    clue = store.clues.add(
        Clue(None, evidence.sha256, "sign", "French road sign", ClueSource.MODEL, ClueStatus.PROPOSED)
    )
    finding = store.findings.save(
        Finding(None, evidence.sha256, 43.3, 5.4, 2.0, FindingStatus.PROBABLE, "harbour crane")
    )
    assert turn.id is not None and clue.id is not None and finding.id is not None
    assert verify_case(store) == []
    return {"sha": evidence.sha256, "turn": turn.id, "clue": clue.id, "finding": finding.id}


def _sql(store: CaseStore, *statements: str) -> None:
    """Run SQL as an outsider would: triggers dropped, then restored exactly, committed."""
    conn = store.db.conn
    guards = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name LIKE 'audit_log_append_only_%'"
    ).fetchall()
    conn.execute("DROP TRIGGER audit_log_append_only_update")
    conn.execute("DROP TRIGGER audit_log_append_only_delete")
    for statement in statements:
        conn.execute(statement)
    for (sql,) in guards:
        conn.execute(sql)
    conn.commit()


def _rehash_chain(store: CaseStore) -> None:
    """Recompute every entry's prev_hash and hash, so the chain is consistent again."""
    conn = store.db.conn
    rows = conn.execute("SELECT seq, at, action, subject, details FROM audit_log ORDER BY seq").fetchall()
    prev = "0" * 64
    updates = []
    for seq, at, action, subject, details in rows:
        digest = entry_hash(seq, at, action, subject, json.loads(details), prev)
        updates.append((prev, digest, seq))
        prev = digest
    guards = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name LIKE 'audit_log_append_only_%'"
    ).fetchall()
    conn.execute("DROP TRIGGER audit_log_append_only_update")
    conn.execute("DROP TRIGGER audit_log_append_only_delete")
    # Two passes: hash is UNIQUE, so park every row on a temporary value first.
    conn.executemany("UPDATE audit_log SET hash = 'tmp' || seq WHERE seq = ?", [(u[2],) for u in updates])
    conn.executemany("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", updates)
    for (sql,) in guards:
        conn.execute(sql)
    conn.commit()


def test_deleting_the_newest_audit_rows_and_fixing_the_sequence_is_detected(store: CaseStore) -> None:
    _fill(store)
    last = store.audit.head()
    assert last is not None
    _sql(
        store,
        f"DELETE FROM audit_log WHERE seq >= {last.seq - 1}",
        f"UPDATE sqlite_sequence SET seq = {last.seq - 2} WHERE name = 'audit_log'",
    )
    problems = verify_case(store)
    assert (
        f"the newest audit entries were removed: this workspace anchored entry {last.seq}, but the chain "
        f"ends at entry {last.seq - 2}."
    ) in problems


def test_rewriting_the_chain_with_recomputed_hashes_is_detected(store: CaseStore) -> None:
    ids = _fill(store)
    # Change the finding's reasoning in its row and in its audit entry (record digest recomputed),
    # then rehash the chain: inside the case everything is consistent again.
    conn = store.db.conn
    (guard,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'findings_keep_history_update'"
    ).fetchone()
    conn.execute("DROP TRIGGER findings_keep_history_update")
    conn.execute("UPDATE findings SET reasoning = 'planted' WHERE id = ?", (ids["finding"],))
    conn.execute(guard)
    conn.commit()
    digest = record_digest(store.db, "findings", ids["finding"])
    seq, details = conn.execute("SELECT seq, details FROM audit_log WHERE action = 'finding.save'").fetchone()
    forged = canonical_json({**json.loads(details), "reasoning": "planted", "record_sha256": digest})
    _sql(store, f"UPDATE audit_log SET details = '{forged}' WHERE seq = {seq}")
    _rehash_chain(store)
    report = verify_report(store)
    # Only the workspace anchor can tell.
    assert len(report.problems) == 1, report.problems
    assert report.problems[0].startswith("the audit chain was rewritten: entry ")


@pytest.mark.parametrize(
    ("table", "statement", "label"),
    [
        ("turn", "UPDATE turns SET prompt = 'a different question' WHERE id = {turn}", "turn {turn}"),
        ("turn", "UPDATE turns SET raw_answer = 'edited' WHERE id = {turn}", "turn {turn}"),
        ("prediction", "UPDATE predictions SET lat = 10.0 WHERE turn_id = {turn}", "turn {turn}"),
        ("clue", "UPDATE clues SET status = 'accepted' WHERE id = {clue}", "clue {clue}"),
        (
            "gps",
            "UPDATE evidence SET gps_lat = 51.5, gps_lon = -0.1 WHERE sha256 = '{sha}'",
            "evidence {sha}",
        ),
        ("camera", "UPDATE evidence SET camera = 'Nikon' WHERE sha256 = '{sha}'", "evidence {sha}"),
        (
            "time",
            "UPDATE evidence SET taken_at = '2020-01-01T00:00:00' WHERE sha256 = '{sha}'",
            "evidence {sha}",
        ),
    ],
)
def test_edited_records_no_longer_match_their_audit_digest(
    store: CaseStore, table: str, statement: str, label: str
) -> None:
    ids = _fill(store)
    _sql(store, statement.format(**ids))
    problems = verify_case(store)
    expected = label.format(**ids)
    assert any(p.startswith(expected) and "was changed outside geodesk" in p for p in problems), problems


def test_evidence_metadata_is_in_its_audit_entry(store: CaseStore) -> None:
    evidence = add_evidence(store, b"photo with gps")
    entry = store.audit.entries()[-1]
    assert entry.action == "evidence.add"
    assert entry.details["gps"] == {"lat": 48.8584, "lon": 2.2945, "alt": 35.0}
    assert entry.details["camera"] == "Canon EOS"
    assert entry.details["taken_at"] == "2026-05-01T10:00:00+02:00"
    assert "source_path" not in entry.details and len(entry.details["source_path_sha256"]) == 64
    assert entry.subject == f"evidence:{evidence.sha256}"


def test_a_finding_inserted_without_an_audit_entry_is_reported(store: CaseStore) -> None:
    ids = _fill(store)
    _sql(
        store,
        "INSERT INTO findings (evidence_sha256, version, lat, lon, radius_km, status, reasoning, created_at) "
        f"VALUES ('{ids['sha']}', 2, 1.0, 1.0, 1.0, 'confirmed', 'planted', '2026-01-01T00:00:00')",
    )
    problems = verify_case(store)
    planted = store.db.execute("SELECT max(id) FROM findings").fetchone()[0]
    assert f"finding {planted} has no audit entry: it was added outside geodesk." in problems


def test_a_deleted_turn_is_reported(store: CaseStore) -> None:
    ids = _fill(store)
    _sql(store, "DELETE FROM clues", "DELETE FROM predictions", "DELETE FROM turns")
    problems = verify_case(store)
    assert any(
        p.startswith(f"turn {ids['turn']} (audit entry") and "deleted outside geodesk" in p for p in problems
    )


def test_entries_appended_outside_geodesk_are_reported_and_a_later_write_remembers_it(
    store: CaseStore,
) -> None:
    ids = _fill(store)
    # Someone appends a consistent entry (with a matching record) through a connection that has no
    # workspace key: the chain is fine, the anchor is not.
    with CaseStore.open(store.path) as outsider:
        outsider.anchor = None
        outsider.findings.save(Finding(None, str(ids["sha"]), 1.0, 1.0, 1.0, FindingStatus.CONFIRMED, "x"))
    problems = verify_case(store)
    assert any("were added outside geodesk: this workspace anchored the chain" in p for p in problems)
    # The analyst's next write must not make that history look clean.
    add_evidence(store, b"next photo", "b.jpg")
    problems = verify_case(store)
    assert any("the case was changed outside geodesk before that write" in p for p in problems), problems


def test_a_kill_between_commit_and_confirmation_is_not_tampering(
    store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(store)
    monkeypatch.setattr(CaseAnchor, "after_commit", lambda self, case_id, new: None)
    add_evidence(store, b"committed, never confirmed", "late.jpg")
    assert verify_case(store) == []  # the pending head was recorded before COMMIT
    monkeypatch.undo()
    add_evidence(store, b"the next write", "later.jpg")
    assert verify_case(store) == []


def test_an_altered_anchor_is_reported(store: CaseStore, ws: Workspace) -> None:
    _fill(store)
    db = ws.path / "integrity" / "anchors.db"
    conn = sqlite3.connect(db)
    doc = json.loads(conn.execute("SELECT doc FROM anchors").fetchone()[0])
    doc["head"]["seq"] = 1
    conn.execute("UPDATE anchors SET doc = ?", (json.dumps(doc),))
    conn.commit()
    conn.close()
    assert any("does not carry this workspace's signature" in p for p in verify_case(store))


def test_a_foreign_trigger_in_the_schema_is_reported(store: CaseStore) -> None:
    _fill(store)
    store.db.conn.execute(
        "CREATE TRIGGER strip_gps AFTER INSERT ON evidence BEGIN "
        "UPDATE evidence SET gps_lat = NULL, gps_lon = NULL WHERE sha256 = new.sha256; END"
    )
    store.db.conn.commit()
    assert "the database holds a trigger 'strip_gps' that geodesk did not create." in verify_case(store)


def test_without_a_workspace_key_verify_says_it_checks_consistency_only(tmp_path: Path) -> None:
    loose = tmp_path / "loose-case"
    with CaseStore.create(loose, "c20260101-abcdef", "Loose") as store:
        add_evidence(store, b"photo")
        report = verify_report(store)
    assert report.problems == []
    assert any(
        "no anchor could be checked" in limit and "internal consistency" in limit for limit in report.limits
    )


def test_case_files_are_owner_only_whatever_the_umask(ws: Workspace) -> None:
    old = os.umask(0o002)
    try:
        case = ws.create_case("Private")
        with ws.open_case(case) as store:
            add_evidence(store, b"private photo")
    finally:
        os.umask(old)
    folder = Path(case.path)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(ws.cases_dir) == 0o700 and mode(folder) == 0o700
    for name in ("case.db", "case.db-wal", "case.db-shm", "case.json"):
        if (folder / name).exists():
            assert mode(folder / name) == 0o600, name
    assert mode(ws.path / "integrity") == 0o700
    assert mode(ws.path / "integrity" / "audit.key") == 0o600
    assert mode(ws.path / "integrity" / "anchors.db") == 0o600
    old = os.umask(0o002)
    try:
        with ws.open_case(case) as store:
            archive = export_case(store, ws.path / "out.zip").archive
    finally:
        os.umask(old)
    assert mode(archive) == 0o600


def test_an_existing_world_readable_case_is_tightened_on_open(ws: Workspace) -> None:
    case = ws.create_case("Older")
    folder = Path(case.path)
    folder.chmod(0o755)
    (folder / "case.db").chmod(0o644)
    with ws.open_case(case):
        pass
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "case.db").stat().st_mode) == 0o600


def test_a_retitled_case_record_is_reported(store: CaseStore) -> None:
    _fill(store)
    store.db.conn.execute("UPDATE case_info SET title = 'Nothing to see'")
    store.db.conn.commit()
    doc = json.loads((store.path / "case.json").read_text())
    (store.path / "case.json").write_text(json.dumps({**doc, "title": "Nothing to see"}))
    with CaseStore.open(store.path) as reopened:
        problems = verify_case(reopened)
    assert any("the case record was changed outside geodesk" in p for p in problems), problems


def test_a_case_without_anchor_is_anchored_from_its_next_write(store: CaseStore, ws: Workspace) -> None:
    _fill(store)
    conn = sqlite3.connect(ws.path / "integrity" / "anchors.db")
    conn.execute("DELETE FROM anchors")  # as for a case made before anchors
    conn.commit()
    conn.close()
    report = verify_report(store)
    assert report.problems == []
    assert any("holds no anchor for case" in limit for limit in report.limits)
    before = store.audit.head()
    assert before is not None

    # The first anchored write dies before its COMMIT: its pending head is recorded, never committed.
    assert store.anchor is not None
    store.anchor.before_commit(store.case.id, (before.seq, before.hash), (before.seq + 1, "f" * 64))
    report = verify_report(store)
    assert report.problems == [], report.problems
    assert any(f"from entry {before.seq + 1} on" in p for p in report.proves)
    add_evidence(store, b"committed", "kept.jpg")
    assert verify_case(store) == []


def test_a_removed_model_caveat_or_an_edited_truth_is_reported(store: CaseStore) -> None:
    from geodesk.domain import GroundTruth

    evidence = add_evidence(store, b"\xff\xd8 scene " * 300, "scene.png")
    session = store.sessions.add(Session(
        None, evidence.sha256, SessionMode.DIRECT,
        ModelIdentity("geosynth-demo", "1", "0" * 64, None, "synthetic"), "hf", {}, "1"))
    store.truth.add(GroundTruth(evidence.sha256, "geosynth", 59.91, 10.75, "Norway", "NO", None, "Oslo"))
    assert verify_case(store) == []
    # Hiding that a session ran on the synthetic demo model would make its answers look like casework.
    _sql(store, f"UPDATE sessions SET model_caveat = NULL WHERE id = {session.id}")
    assert any(p.startswith(f"session {session.id}") and "changed outside geodesk" in p
               for p in verify_case(store))
    _sql(store, f"UPDATE sessions SET model_caveat = 'synthetic' WHERE id = {session.id}",
         f"UPDATE evidence_truth SET lat = 1.0 WHERE evidence_sha256 = '{evidence.sha256}'")
    problems = verify_case(store)
    assert any("ground truth of evidence" in p and "changed outside geodesk" in p for p in problems), problems
    assert not any(p.startswith(f"session {session.id}") for p in problems)


def test_writes_through_a_writer_connection_keep_the_chain_and_the_anchor(store: CaseStore) -> None:
    """The desktop app stores a clue's review or a finding from a worker thread through
    CaseStore.open_writer: same transactions, audit entries and workspace anchor as the case's own."""
    evidence = add_evidence(store, b"\xff\xd8 photo " * 300, "a.jpg")
    clue = store.clues.add(Clue(None, evidence.sha256, "road", "yellow line", ClueSource.MODEL))
    assert clue.id is not None
    with CaseStore.open_writer(store.path) as writer:
        assert writer.anchor is not None  # the workspace has a key
        writer.clues.update_status(clue.id, ClueStatus.ACCEPTED)
        writer.findings.save(Finding(None, evidence.sha256, 59.9, 10.7, 5.0, FindingStatus.PROBABLE, "quay"))
    assert store.clues.get(clue.id).status is ClueStatus.ACCEPTED
    assert verify_case(store) == []  # the chain is unbroken and its head is the anchored one
    store.findings.save(Finding(None, evidence.sha256, 59.8, 10.7, 2.0, FindingStatus.CONFIRMED, "ferry"))
    assert verify_case(store) == []  # the case's own store goes on from the writer's entries


def test_a_writer_connection_needs_a_case_folder(tmp_path: Path) -> None:
    with pytest.raises(NotACaseError, match="is not a geodesk case folder"):
        CaseStore.open_writer(tmp_path)


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE clue_engine SET countries = '{\"RU\": 1.0}' WHERE clue_id = {id}",
        "UPDATE clue_engine SET confidence = 0.1 WHERE clue_id = {id}",
        "DELETE FROM clue_engine WHERE clue_id = {id}",
        "UPDATE clues SET text = 'nothing here' WHERE id = {id}",
    ],
)
def test_an_unreviewed_engine_clue_edited_with_sql_is_reported(store: CaseStore, edit: str) -> None:
    from tests.store.conftest import add_engine_clue

    sha = add_evidence(store, b"\xff\xd8 engine " * 300, "sign.jpg").sha256
    clue = add_engine_clue(store, sha)  # proposed: nobody has reviewed it
    clue_id = clue.clue.id  # type: ignore[attr-defined]
    newest = [e for e in store.audit.entries() if e.subject == f"clue:{clue_id}"][-1]
    assert newest.action == "clue.engine" and newest.details["record_digest_version"] == 4
    assert verify_case(store) == []
    _sql(store, edit.replace("{id}", str(clue_id)))
    expected = f"clue {clue_id} was changed outside geodesk: it no longer matches its audit entry"
    expected += f" {newest.seq}."
    assert expected in verify_case(store)


def test_a_reviewed_engine_clue_covers_its_engine_row(store: CaseStore) -> None:
    from tests.store.conftest import add_engine_clue

    sha = add_evidence(store, b"\xff\xd8 engine 2 " * 300, "sign2.jpg").sha256
    clue_id = add_engine_clue(store, sha).clue.id  # type: ignore[attr-defined]
    assert clue_id is not None
    store.clues.update_status(clue_id, ClueStatus.ACCEPTED)
    assert verify_case(store) == []
    _sql(store, f"UPDATE clue_engine SET others = 1.0 WHERE clue_id = {clue_id}")
    assert any(p.startswith(f"clue {clue_id} was changed outside geodesk") for p in verify_case(store))


def test_digests_written_by_an_older_geodesk_still_verify(store: CaseStore) -> None:
    """A case whose entries name digest version 3 (before the engine rows were covered) still verifies:
    each entry is recomputed with its own version's columns."""
    from tests.store.conftest import add_engine_clue

    sha = add_evidence(store, b"\xff\xd8 engine 3 " * 300, "sign3.jpg").sha256
    clue_id = add_engine_clue(store, sha).clue.id  # type: ignore[attr-defined]
    old = record_digest(store.db, "clues", clue_id, 3)
    assert old != record_digest(store.db, "clues", clue_id)
    store.audit.append("clue.status", f"clue:{clue_id}", {"record_sha256": old, "record_digest_version": 3})
    assert verify_case(store) == []
    # Version 3 never covered the engine row, so an edit of it there goes unseen; the clue row does not.
    _sql(store, f"UPDATE clue_engine SET confidence = 0.2 WHERE clue_id = {clue_id}")
    assert verify_case(store) == []
    _sql(store, f"UPDATE clues SET text = 'edited' WHERE id = {clue_id}")
    assert any(p.startswith(f"clue {clue_id} was changed outside geodesk") for p in verify_case(store))
