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

from geodesk.services.cases import ArchiveError, export_case, open_archive
from geodesk.store import Workspace
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
        for trigger in ("audit_log_append_only_update", "audit_log_append_only_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        db_sql(conn)
        conn.commit()
        conn.execute(
            "CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
        conn.execute(
            "CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
        conn.commit()
        conn.close()
        members["case.db"] = db.read_bytes()
    if case_doc is not None:
        members["case.json"] = json.dumps(case_doc).encode()
        manifest["case"] = case_doc
    members.update(extra or {})
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    if manifest_edit is not None:
        manifest_edit(manifest)
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
        zout.writestr("manifest.json", json.dumps(manifest))


def _case_doc(src: Path, **changes: str) -> dict[str, str]:
    with zipfile.ZipFile(src) as zf:
        doc = json.loads(zf.read("case.json"))
    return {**doc, **changes}


def _set_id(case_id: str) -> Callable[[sqlite3.Connection], None]:
    return lambda conn: conn.execute("UPDATE case_info SET id = ?", (case_id,))


def _nothing_outside(ws: Workspace, tmp_path: Path) -> None:
    """Nothing was written in the analyst's home folder except inside the workspace's cases folder."""
    cases = ws.cases_dir.resolve()
    for path in (tmp_path / "home").rglob("*"):
        if not path.is_dir():
            assert cases in path.resolve().parents, f"stray file {path}"


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
