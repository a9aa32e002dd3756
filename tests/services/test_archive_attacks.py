"""Reproductions of attacks on `case open-archive`, each with the defence that stops it.

The attacker here knows the archive format: they rebuild a sealed archive with their own content and
recompute every hash the manifest lists, so only checks that do not rely on those hashes can stop them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from geodesk.services.cases import (
    MAX_MANIFEST_BYTES,
    ArchiveError,
    export_case,
    open_archive,
    verify_case,
    verify_report,
)
from geodesk.store import Workspace
from geodesk.store._codec import canonical_json
from geodesk.store.audit import entry_hash
from geodesk.store.digests import record_digest
from geodesk.store.workspace import is_case_id
from tests.store.conftest import add_evidence


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "home" / "analyst" / "ws")


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[Path]:
    """A genuine archive of a small case, made in a workspace of its own."""
    source = Workspace(tmp_path / "sender")
    case = source.create_case("Harbour")
    with source.open_case(case) as store:
        add_evidence(store, b"\xff\xd8 first photo " * 500, "a.jpg")
        out = tmp_path / "sealed.zip"
        export_case(store, out)
    yield out


def reseal(
    src: Path,
    dst: Path,
    *,
    db_sql: Callable[[sqlite3.Connection], None] | None = None,
    case_doc: dict[str, str] | None = None,
    extra: dict[str, bytes] | None = None,
    manifest_edit: Callable[[dict], None] | None = None,
    deflate: bool = False,
) -> None:
    """Rebuild ``src`` as an attacker would: change the database / case.json, add members, and
    recompute every hash in the manifest so that they all match again."""
    work = dst.parent / (dst.name + ".work")
    work.mkdir()
    with zipfile.ZipFile(src) as zin:
        members = {i.filename: zin.read(i) for i in zin.infolist()}
    manifest = json.loads(members.pop("manifest.json"))
    if db_sql is not None:
        db = work / "case.db"
        db.write_bytes(members["case.db"])
        conn = sqlite3.connect(db)
        guards = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name LIKE 'audit_log_append_only_%'"
        ).fetchall()
        for trigger in ("audit_log_append_only_update", "audit_log_append_only_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        db_sql(conn)
        conn.commit()
        for (sql,) in guards:  # put the guards back exactly as geodesk wrote them
            conn.execute(sql)
        conn.commit()
        seq, head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        manifest["audit_head"].update(seq=seq, hash=head)  # the forger reseals the new head
        conn.close()
        members["case.db"] = db.read_bytes()
    if case_doc is not None:
        members["case.json"] = json.dumps(case_doc).encode()
        manifest["case"] = case_doc
    members.update(extra or {})
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    if manifest_edit is not None:
        manifest_edit(manifest)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zout:
        for name, data in members.items():
            zout.writestr(name, data)
        zout.writestr("manifest.json", json.dumps(manifest))


def _case_doc(src: Path, **changes: str) -> dict[str, str]:
    with zipfile.ZipFile(src) as zf:
        doc = json.loads(zf.read("case.json"))
    return {**doc, **changes}


def _rehash(conn: sqlite3.Connection, edit: Callable[[str, str, dict], None] | None = None) -> None:
    """Recompute the whole chain after ``edit(action, subject, details)`` changed entries in place."""
    rows = conn.execute("SELECT seq, at, action, subject, details FROM audit_log ORDER BY seq").fetchall()
    prev = "0" * 64
    conn.execute("UPDATE audit_log SET hash = 'tmp' || seq")  # hash is UNIQUE: park them first
    for seq, at, action, subject, details_text in rows:
        details = json.loads(details_text)
        if edit is not None:
            edit(action, subject, details)
        digest = entry_hash(seq, at, action, subject, details, prev)
        conn.execute(
            "UPDATE audit_log SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (canonical_json(details), prev, digest, seq),
        )
        prev = digest


def _set_id(case_id: str) -> Callable[[sqlite3.Connection], None]:
    """A forger's id change: the case record and the case.create entry, with the chain recomputed."""

    def forge(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE case_info SET id = ?", (case_id,))

        def edit(action: str, _subject: str, details: dict) -> None:
            if action == "case.create":
                details["id"] = case_id

        _rehash(conn, edit)

    return forge


def _nothing_outside(ws: Workspace, tmp_path: Path) -> None:
    """Nothing was written in the analyst's home folder outside the workspace's own folders."""
    allowed = [ws.path / name for name in ("cases", "integrity")]
    for path in (tmp_path / "home").rglob("*"):
        if not path.is_dir():
            assert any(a in path.resolve().parents for a in allowed), f"stray file {path}"


@pytest.mark.parametrize(
    "hostile_id", ["../../../../.ssh", "/tmp/planted-case", "..", "c20260509-abc/../../x", "C:\\evil"]
)
def test_hostile_case_id_never_becomes_a_folder_name(
    sealed: Path, ws: Workspace, tmp_path: Path, hostile_id: str
) -> None:
    bad = tmp_path / "bad.zip"
    reseal(sealed, bad, db_sql=_set_id(hostile_id), case_doc=_case_doc(sealed, id=hostile_id))
    opened = open_archive(ws, bad)
    # The case got a fresh id of geodesk's own shape; the hostile one is only remembered.
    assert is_case_id(opened.case.id) and opened.case.id != hostile_id
    assert opened.original_id == hostile_id
    assert Path(opened.case.path).parent == ws.cases_dir.resolve()
    with ws.open_case(opened.case.id) as store:
        assert store.case.id == opened.case.id
        assert store.audit.entries()[-1].details["original_id"] == hostile_id
    assert not (tmp_path / "home" / ".ssh").exists()
    assert not Path("/tmp/planted-case").exists()
    _nothing_outside(ws, tmp_path)


@pytest.mark.parametrize("as_copy", [False, True])
def test_ssh_key_plant_through_the_case_id_is_refused(
    sealed: Path, ws: Workspace, tmp_path: Path, as_copy: bool
) -> None:
    # The reported attack: id "../../../../.ssh" plus an extra listed file "authorized_keys".
    hostile_id = "../../../.ssh"
    bad = tmp_path / "plant.zip"
    reseal(
        sealed,
        bad,
        db_sql=_set_id(hostile_id),
        case_doc=_case_doc(sealed, id=hostile_id),
        extra={"authorized_keys": b"ssh-ed25519 AAAA attacker"},
    )
    with pytest.raises(ArchiveError, match="'authorized_keys', which is not part of a geodesk case folder"):
        open_archive(ws, bad, as_copy=as_copy)
    assert not (tmp_path / "home" / ".ssh").exists()
    assert not ws.cases_dir.exists() or [p.name for p in ws.cases_dir.iterdir()] == []
    _nothing_outside(ws, tmp_path)


@pytest.mark.parametrize(
    "member",
    [
        "evidence/ab/not-a-hash.jpg",
        "evidence/00/" + "ab" * 32 + ".jpg",  # the folder must be the hash's first two digits
        "thumbs/x.png",
        "exports/report.html",
        "case.db-wal",
        ".bashrc",
    ],
)
def test_only_the_case_layout_is_extracted(sealed: Path, ws: Workspace, tmp_path: Path, member: str) -> None:
    bad = tmp_path / "extra.zip"
    reseal(sealed, bad, extra={member: b"payload"})
    with pytest.raises(ArchiveError, match="not part of a geodesk case folder"):
        open_archive(ws, bad)
    assert not ws.cases_dir.exists() or list(ws.cases_dir.iterdir()) == []


def _no_leftovers(ws: Workspace) -> None:
    """A refused open leaves nothing in the cases folder: no staging folder, no case."""
    assert not ws.cases_dir.exists() or list(ws.cases_dir.iterdir()) == []


# ------------------------------------------------------------------------------------------ zip bombs


def test_a_member_that_inflates_too_much_is_refused_before_extraction(
    sealed: Path, ws: Workspace, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.zip"
    # 64 MiB of zeros deflate to about 64 KB: a thumbnail that would fill the disk.
    reseal(sealed, bomb, extra={"thumbs/" + "ab" * 32 + ".jpg": bytes(64 << 20)}, deflate=True)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ArchiveError, match=r"would inflate .* times .*zip bomb"):
        open_archive(ws, bomb)
    _no_leftovers(ws)


def test_an_oversized_manifest_is_not_read(sealed: Path, ws: Workspace, tmp_path: Path) -> None:
    big = tmp_path / "big-manifest.zip"
    padding = " " * (MAX_MANIFEST_BYTES + 1)
    reseal(sealed, big, manifest_edit=lambda m: m.update(padding=padding), deflate=True)
    assert big.stat().st_size < 1 << 20
    with pytest.raises(ArchiveError, match=r"manifest\.json of big-manifest\.zip declares 32\.0 MiB"):
        open_archive(ws, big)
    _no_leftovers(ws)


def test_an_archive_larger_than_the_free_disk_is_refused(
    sealed: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geodesk.services.cases as cases

    monkeypatch.setattr(cases.shutil, "disk_usage", lambda _: shutil_usage(total=1 << 30, free=100 << 20))
    with pytest.raises(ArchiveError, match=r"has only 100\.0 MiB free .*Free some space"):
        open_archive(ws, sealed)
    _no_leftovers(ws)


def shutil_usage(total: int, free: int) -> object:
    import shutil

    return shutil._ntuple_diskusage(total, total - free, free)  # type: ignore[attr-defined]


def test_a_failed_open_leaves_nothing_and_a_killed_one_is_cleaned(
    sealed: Path, ws: Workspace, tmp_path: Path
) -> None:
    bad = tmp_path / "bad-hash.zip"
    reseal(sealed, bad, manifest_edit=lambda m: m["files"].update({"case.json": "0" * 64}))
    with pytest.raises(ArchiveError, match="does not match its manifest hash"):
        open_archive(ws, bad)
    _no_leftovers(ws)
    # A process killed mid-open leaves its staging folder; the next open removes it (pid is gone).
    leftover = ws.cases_dir / ".import-999999999-deadbeef"
    (leftover / "evidence").mkdir(parents=True)
    (leftover / "case.db").write_bytes(b"half")
    opened = open_archive(ws, sealed)
    assert not leftover.exists()
    assert [p.name for p in ws.cases_dir.iterdir()] == [opened.case.id]


# ---------------------------------------------------------------------------------- imported databases


@pytest.mark.parametrize(
    "sql",
    [
        # The reported attack: new evidence silently loses its GPS.
        "CREATE TRIGGER strip_gps AFTER INSERT ON evidence BEGIN "
        "UPDATE evidence SET gps_lat = NULL, gps_lon = NULL WHERE sha256 = new.sha256; END",
        "CREATE VIEW everything AS SELECT * FROM evidence",
        "CREATE TABLE notes (x TEXT)",
        "CREATE INDEX evidence_names ON evidence(original_name)",
    ],
)
def test_an_imported_database_with_a_foreign_schema_is_refused(
    sealed: Path, ws: Workspace, tmp_path: Path, sql: str
) -> None:
    bad = tmp_path / "schema.zip"
    reseal(sealed, bad, db_sql=lambda conn: conn.execute(sql))
    with pytest.raises(ArchiveError, match="holds a schema geodesk did not create"):
        open_archive(ws, bad)
    _no_leftovers(ws)


def test_a_changed_geodesk_trigger_is_refused(sealed: Path, ws: Workspace, tmp_path: Path) -> None:
    def weaken(conn: sqlite3.Connection) -> None:
        conn.execute("DROP TRIGGER findings_keep_history_update")
        conn.execute(
            "CREATE TRIGGER findings_keep_history_update BEFORE UPDATE ON findings BEGIN SELECT 1; END"
        )

    bad = tmp_path / "weak.zip"
    reseal(sealed, bad, db_sql=weaken)
    with pytest.raises(
        ArchiveError, match="trigger 'findings_keep_history_update' is not the one geodesk creates"
    ):
        open_archive(ws, bad)


def test_imported_titles_lose_their_control_characters(sealed: Path, ws: Workspace, tmp_path: Path) -> None:
    hostile = "\x1b]0;owned\x07Harbour\x1b[2J\nsecond line"
    bad = tmp_path / "title.zip"

    def retitle(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE case_info SET title = ?", (hostile,))
        _rehash(conn, lambda action, _s, d: d.update(title=hostile) if action == "case.create" else None)

    reseal(sealed, bad, db_sql=retitle, case_doc=_case_doc(sealed, title=hostile))
    opened = open_archive(ws, bad)
    assert opened.case.title == "\ufffd]0;owned\ufffdHarbour\ufffd[2J\ufffdsecond line"
    assert opened.original_title == hostile
    assert [c.title for c in ws.list_cases()] == [opened.case.title]
    with ws.open_case(opened.case.id) as store:
        assert store.case.title == opened.case.title
        assert store.audit.entries()[-1].details["original_title"] == hostile
        assert verify_case(store) == []


# ------------------------------------------------------------------------------------ rewritten chains


def _rewrite_chain(conn: sqlite3.Connection) -> None:
    """Edit the first evidence's recorded name and recompute the whole chain, as a forger would."""
    conn.execute("UPDATE evidence SET original_name = 'innocent.jpg'")

    def edit(action: str, subject: str, details: dict) -> None:
        if action == "evidence.add":
            details["original_name"] = "innocent.jpg"
            sha = subject.split(":", 1)[1]
            details["record_sha256"] = record_digest(Database(conn), "evidence", sha)

    _rehash(conn, edit)


def _forge(sealed: Path, tmp_path: Path) -> Path:
    """An archive whose chain was rewritten consistently and whose manifest head was updated."""
    forged = tmp_path / "forged.zip"
    reseal(sealed, forged, db_sql=_rewrite_chain)
    return forged


def test_a_rewritten_chain_is_refused_by_the_workspace_that_sealed_it(tmp_path: Path) -> None:
    home = Workspace(tmp_path / "home-ws")
    case = home.create_case("Harbour")
    with home.open_case(case) as store:
        add_evidence(store, b"\xff\xd8 photo " * 300, "evil.jpg")
        export_case(store, tmp_path / "sealed.zip")
    forged = _forge(tmp_path / "sealed.zip", tmp_path)
    with pytest.raises(ArchiveError, match="its seal does not check"):
        open_archive(home, forged, as_copy=True)


def test_a_rewritten_chain_from_another_workspace_is_flagged_as_unprovable(
    sealed: Path, ws: Workspace, tmp_path: Path
) -> None:
    forged = _forge(sealed, tmp_path)
    opened = open_archive(ws, forged)
    # Nothing inside the archive can tell: geodesk says so instead of calling it proven.
    assert opened.seal == "other workspace"
    with ws.open_case(opened.case.id) as store:
        report = verify_report(store)
    assert report.problems == []
    assert any(
        "sealed by another workspace" in limit and "not who wrote them" in limit for limit in report.limits
    )


def test_an_open_failing_at_the_last_step_leaves_no_anchor(
    sealed: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geodesk.services.cases as cases

    def refuse(_ws: Workspace, case_id: str) -> Path:
        raise ArchiveError(f"refused {case_id} for the test")

    monkeypatch.setattr(cases, "_inside_cases_dir", refuse)
    with pytest.raises(ArchiveError, match="for the test"):
        open_archive(ws, sealed)
    _no_leftovers(ws)
    conn = sqlite3.connect(ws.path / "integrity" / "anchors.db")
    assert conn.execute("SELECT count(*) FROM anchors").fetchone()[0] == 0
    conn.close()
