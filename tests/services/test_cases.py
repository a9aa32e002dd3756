"""case verify (tamper cases), sealed export and open-archive."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from geodesk.domain import Finding, FindingStatus
from geodesk.services.cases import ArchiveError, case_summary, export_case, open_archive, verify_case
from geodesk.store import CaseStore, Workspace
from tests.store.conftest import add_evidence


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def store(ws: Workspace) -> Iterator[CaseStore]:
    case = ws.create_case("Harbour")
    with ws.open_case(case) as s:
        yield s


def _two_photos(store: CaseStore) -> tuple[str, str]:
    a = add_evidence(store, b"\xff\xd8 first photo " * 1000, "a.jpg")
    b = add_evidence(store, b"\xff\xd8 second photo " * 1000, "b.jpg")
    return a.sha256, b.sha256


def test_intact_case_verifies(store: CaseStore) -> None:
    _two_photos(store)
    assert verify_case(store) == []
    summary = case_summary(store)
    assert summary["counts"]["evidence"] == 2
    assert summary["id"] == store.case.id


def test_edited_file_is_reported(store: CaseStore) -> None:
    sha, _ = _two_photos(store)
    path = store.evidence_file(sha)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"!")
    problems = verify_case(store)
    assert len(problems) == 1
    assert f"evidence file evidence/{sha[:2]}/{sha}.jpg (a.jpg) was altered" in problems[0]


def test_deleted_file_is_reported(store: CaseStore) -> None:
    _, sha = _two_photos(store)
    store.evidence_file(sha).unlink()
    assert verify_case(store) == [f"evidence {sha} (b.jpg) is missing: no file evidence/{sha[:2]}/{sha}.*"]


def test_stray_file_is_reported(store: CaseStore) -> None:
    _two_photos(store)
    stray = store.evidence_dir / "zz" / "dropped-in.jpg"
    stray.parent.mkdir()
    stray.write_bytes(b"x")
    assert verify_case(store) == [
        "evidence/zz/dropped-in.jpg is in evidence/ but not recorded in the case database."
    ]


def _drop_guards(store: CaseStore) -> None:
    store.db.conn.execute("DROP TRIGGER audit_log_append_only_update")
    store.db.conn.execute("DROP TRIGGER audit_log_append_only_delete")


def test_edited_audit_details_are_reported(store: CaseStore) -> None:
    _two_photos(store)
    _drop_guards(store)
    store.db.conn.execute(
        "UPDATE audit_log SET details = replace(details, 'a.jpg', 'innocent.jpg') WHERE seq = 2"
    )
    store.db.conn.commit()
    problems = verify_case(store)
    assert any(p.startswith("audit entry 2 (evidence.add evidence:") and "was altered" in p for p in problems)
    assert any("append-only guard" in p for p in problems)


def test_deleted_audit_row_is_reported(store: CaseStore) -> None:
    a, _ = _two_photos(store)
    _drop_guards(store)
    store.db.conn.execute("DELETE FROM audit_log WHERE seq = 2")
    store.db.conn.commit()
    problems = verify_case(store)
    assert "audit entries are missing before entry 3: seq 2 was deleted." in problems
    assert any("audit entry 3" in p and "does not link to entry 1" in p for p in problems)
    assert f"evidence {a} (a.jpg) has no audit entry: it was added outside geodesk." in problems


def test_case_json_disagreeing_with_the_database_is_reported(store: CaseStore) -> None:
    doc = json.loads((store.path / "case.json").read_text())
    (store.path / "case.json").write_text(json.dumps({**doc, "title": "Something else"}))
    assert verify_case(store) == [
        "case.json gives the title 'Something else', but the database says 'Harbour'."
    ]


# ------------------------------------------------------------------------------------------- archives


def _manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as zf:
        return json.loads(zf.read("manifest.json"))


def test_export_seals_and_open_archive_restores(store: CaseStore, ws: Workspace, tmp_path: Path) -> None:
    a, b = _two_photos(store)
    store.findings.save(Finding(None, a, 43.3, 5.4, 2.0, FindingStatus.PROBABLE, "harbour crane"))
    (store.thumbs_dir / f"{a}.jpg").write_bytes(b"thumb")
    (store.exports_dir / "old-report.html").write_text("not archived")
    out = tmp_path / "harbour.zip"
    result = export_case(store, out)
    manifest = _manifest(out)
    assert manifest["case"]["id"] == store.case.id
    assert set(manifest["files"]) == {
        "case.db",
        "case.json",
        f"evidence/{a[:2]}/{a}.jpg",
        f"evidence/{b[:2]}/{b}.jpg",
        f"thumbs/{a}.jpg",
    }
    assert manifest["files"][f"evidence/{a[:2]}/{a}.jpg"] == a
    # The live case records the export after the archive is complete, naming it by its hash and
    # the head sealed inside it (the archive's chain ends with its own case.seal entry).
    head = store.audit.head()
    assert head is not None and head.action == "case.export"
    assert head.details["archive_sha256"] == result.sha256
    sealed = manifest["audit_head"]
    assert head.details["sealed_head"] == {"seq": sealed["seq"], "hash": sealed["hash"]}
    assert sealed["seq"] == head.seq and sealed["hash"] != head.hash
    assert sealed["key_id"] == store.anchor.key.key_id and len(sealed["mac"]) == 64
    assert result.audit_head == sealed["hash"]
    assert not list(tmp_path.glob(".harbour.zip.*"))  # the temp file was moved into place
    assert not list(store.path.glob(".export-*"))  # and the snapshot folder removed

    with pytest.raises(ArchiveError, match="already in the workspace; open the archive with --as-copy"):
        open_archive(ws, out)
    opened = open_archive(ws, out, as_copy=True)
    assert opened.original_id == store.case.id
    assert opened.case.id != store.case.id
    assert opened.case.title == "Harbour (copy)"
    with ws.open_case(opened.case.id) as copy:
        assert copy.case == opened.case
        assert verify_case(copy) == []
        assert copy.findings.current(a) == store.findings.current(a)
        assert copy.evidence.list() == store.evidence.list()
        assert copy.evidence_file(a).read_bytes() == store.evidence_file(a).read_bytes()
        entries = copy.audit.entries()
        assert entries[: head.seq - 1] == store.audit.entries()[: head.seq - 1]
        assert [e.action for e in entries[head.seq - 1 :]] == ["case.seal", "case.import"]
        assert entries[-1].details["seal"] == "checked"  # sealed by this very workspace
    assert not (Path(opened.case.path) / "exports" / "old-report.html").exists()


def test_open_archive_into_another_workspace_keeps_the_id(store: CaseStore, tmp_path: Path) -> None:
    _two_photos(store)
    out = tmp_path / "case.zip"
    export_case(store, out)
    other = Workspace(tmp_path / "other")
    opened = open_archive(other, out)
    assert opened.case.id == store.case.id
    assert other.resolve_case("Harbour").id == store.case.id


def test_export_snapshot_includes_committed_wal_pages(store: CaseStore, tmp_path: Path) -> None:
    # A second connection commits; its pages sit in case.db-wal, which a plain file copy would miss.
    with CaseStore.open(store.path) as writer:
        add_evidence(writer, b"committed by another connection", "late.jpg")
        assert (store.path / "case.db-wal").stat().st_size > 0
        export_case(store, tmp_path / "snap.zip")
    with zipfile.ZipFile(tmp_path / "snap.zip") as zf:
        (tmp_path / "snap.db").write_bytes(zf.read("case.db"))
    conn = sqlite3.connect(tmp_path / "snap.db")
    names = {n for (n,) in conn.execute("SELECT original_name FROM evidence")}
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert "late.jpg" in names


def test_export_refuses_a_tampered_case_unless_allowed(store: CaseStore, tmp_path: Path) -> None:
    sha, _ = _two_photos(store)
    store.evidence_file(sha).unlink()
    with pytest.raises(ArchiveError, match=r"fails verification .*--allow-problems"):
        export_case(store, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
    result = export_case(store, tmp_path / "x.zip", allow_problems=True)
    assert result.problems and "is missing" in result.problems[0]
    assert _manifest(tmp_path / "x.zip")["problems"] == result.problems
    opened = open_archive(Workspace(tmp_path / "elsewhere"), tmp_path / "x.zip")
    assert opened.manifest_problems == result.problems


def _rewrite(
    src: Path, dst: Path, change: dict[str, bytes | None], extra: dict[str, bytes] | None = None
) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change.get(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)


@pytest.fixture
def archive(store: CaseStore, tmp_path: Path) -> tuple[Path, str]:
    sha, _ = _two_photos(store)
    out = tmp_path / "sealed.zip"
    export_case(store, out)
    return out, sha


def _no_cases_added(ws: Workspace) -> None:
    assert [p.name for p in ws.cases_dir.iterdir() if p.name.startswith(".")] == []


def test_altered_file_in_archive_is_refused(archive: tuple[Path, str], tmp_path: Path) -> None:
    out, sha = archive
    bad = tmp_path / "bad.zip"
    _rewrite(out, bad, {f"evidence/{sha[:2]}/{sha}.jpg": b"swapped image"})
    target = Workspace(tmp_path / "t")
    with pytest.raises(ArchiveError, match="does not match its manifest hash: it was altered"):
        open_archive(target, bad)
    _no_cases_added(target)
    assert target.list_cases() == []


def test_altered_manifest_head_is_refused(archive: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = archive
    manifest = _manifest(out)
    manifest["audit_head"]["hash"] = "0" * 64
    bad = tmp_path / "bad.zip"
    _rewrite(out, bad, {"manifest.json": json.dumps(manifest).encode()})
    target = Workspace(tmp_path / "t")
    with pytest.raises(ArchiveError, match="does not end at the head sealed in the manifest"):
        open_archive(target, bad)
    assert target.list_cases() == []


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/evil", "evidence/../../evil", "C:/evil", "a\\..\\evil"]
)
def test_path_traversal_is_refused(archive: tuple[Path, str], tmp_path: Path, name: str) -> None:
    out, _ = archive
    manifest = _manifest(out)
    manifest["files"][name] = "0" * 64
    bad = tmp_path / "bad.zip"
    _rewrite(out, bad, {"manifest.json": json.dumps(manifest).encode()}, {name: b"payload"})
    target = Workspace(tmp_path / "t")
    with pytest.raises(ArchiveError, match=r"leaves the case folder|unsafe file name"):
        open_archive(target, bad)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "t" / "evil").exists()


def test_unlisted_and_missing_members_are_refused(archive: tuple[Path, str], tmp_path: Path) -> None:
    out, sha = archive
    extra = tmp_path / "extra.zip"
    _rewrite(out, extra, {}, {"evidence/zz/smuggled.jpg": b"x"})
    with pytest.raises(ArchiveError, match="manifest does not list"):
        open_archive(Workspace(tmp_path / "t1"), extra)
    missing = tmp_path / "missing.zip"
    _rewrite(out, missing, {f"evidence/{sha[:2]}/{sha}.jpg": None})
    with pytest.raises(ArchiveError, match="listed in the manifest but missing"):
        open_archive(Workspace(tmp_path / "t2"), missing)


def test_symlink_member_is_refused(archive: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = archive
    bad = tmp_path / "link.zip"
    _rewrite(out, bad, {})
    with zipfile.ZipFile(bad, "a") as zf:
        info = zipfile.ZipInfo("thumbs/link.jpg")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        open_archive(Workspace(tmp_path / "t"), bad)


def test_files_that_are_not_archives(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "t")
    not_zip = tmp_path / "photo.zip"
    not_zip.write_bytes(b"\xff\xd8 not a zip")
    with pytest.raises(ArchiveError, match="not a zip file"):
        open_archive(ws, not_zip)
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ArchiveError, match=r"not a geodesk case archive: it has no manifest\.json"):
        open_archive(ws, plain)
    with pytest.raises(ArchiveError, match="does not exist"):
        open_archive(ws, tmp_path / "absent.zip")


def test_export_path_is_checked(store: CaseStore, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=r"must end in \.zip"):
        export_case(store, tmp_path / "case.tar")
    with pytest.raises(ArchiveError, match="does not exist"):
        export_case(store, tmp_path / "no" / "such" / "case.zip")
