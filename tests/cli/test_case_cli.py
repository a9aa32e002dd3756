"""`geodesk case ...` through geodesk.cli.main, and once through the installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from geodesk.cli import main
from geodesk.store import Workspace
from tests.store.conftest import add_evidence


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code, out, _err = run(capsys, *argv, "--json")
    assert out.count("\n") == 1, out  # exactly one JSON document
    return code, json.loads(out)


def test_new_list_show(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, created = run_json(capsys, "case", "new", "Harbour photos")
    assert code == 0
    assert isinstance(created, dict) and set(created) == {"id", "title", "path"}
    assert created["title"] == "Harbour photos"
    assert Path(created["path"]).parent == workspace / "cases"

    code, listed = run_json(capsys, "case", "list")
    assert code == 0
    assert [c["id"] for c in listed["cases"]] == [created["id"]]  # type: ignore[index]

    with Workspace(workspace).open_case(created["id"]) as store:
        add_evidence(store, b"photo bytes")
    code, shown = run_json(capsys, "case", "show", "harbour")
    assert code == 0
    assert {k: shown[k] for k in ("id", "title", "path")} == created  # type: ignore[index]
    assert shown["counts"] == {  # type: ignore[index]
        "evidence": 1,
        "sessions": 0,
        "turns": 0,
        "clues": 0,
        "findings": 0,
        "audit_entries": 2,
    }

    code, out, _ = run(capsys, "case", "list")
    assert created["id"] in out and "Harbour photos" in out
    code, out, _ = run(capsys, "case", "show", created["id"])
    assert "evidence  1" in out


def test_verify_exit_codes(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, created = run_json(capsys, "case", "new", "Verify me")
    with Workspace(workspace).open_case(created["id"]) as store:  # type: ignore[index]
        evidence = add_evidence(store, b"original")
        path = store.evidence_file(evidence.sha256)
    code, report = run_json(capsys, "case", "verify", "Verify")
    assert (code, report["ok"], report["problems"]) == (0, True, [])  # type: ignore[index]
    assert any("audit chain up to entry" in p for p in report["proves"])  # type: ignore[index]
    code, out, _ = run(capsys, "case", "verify", "Verify")
    assert code == 0 and "is intact" in out and "what verify cannot prove here:" in out

    path.chmod(0o644)
    path.write_bytes(b"doctored")
    code, report = run_json(capsys, "case", "verify", "Verify")
    assert code == 1
    assert report["ok"] is False  # type: ignore[index]
    assert len(report["problems"]) == 1 and "was altered" in report["problems"][0]  # type: ignore[index]
    code, out, _ = run(capsys, "case", "verify", "Verify")
    assert code == 1 and "1 problem(s)" in out


def test_export_and_open_archive(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, created = run_json(capsys, "case", "new", "Sealed")
    with Workspace(workspace).open_case(created["id"]) as store:  # type: ignore[index]
        add_evidence(store, b"evidence")
    out = tmp_path / "sealed.zip"
    code, exported = run_json(capsys, "case", "export", "Sealed", str(out))
    assert code == 0 and exported["archive"] == str(out) and exported["files"] == 3  # type: ignore[index]

    code, _, err = run(capsys, "case", "open-archive", str(out))
    assert code == 1 and "--as-copy" in err
    code, opened = run_json(capsys, "case", "open-archive", str(out), "--as-copy")
    assert code == 0
    assert opened["original_id"] == created["id"] and opened["id"] != created["id"]  # type: ignore[index]
    assert opened["title"] == "Sealed (copy)"  # type: ignore[index]
    assert opened["seal"] == "checked"  # type: ignore[index]
    code, report = run_json(capsys, "case", "verify", opened["id"])  # type: ignore[index]
    assert (code, report["problems"]) == (0, [])  # type: ignore[index]


def test_export_refuses_to_overwrite_without_force(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "case", "new", "Twice")
    out = tmp_path / "twice.zip"
    out.write_bytes(b"an archive the analyst wants to keep")
    code, _, err = run(capsys, "case", "export", "Twice", str(out))
    assert code == 1 and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"an archive the analyst wants to keep"
    code, exported = run_json(capsys, "case", "export", "Twice", str(out), "--force")
    assert code == 0 and exported["sha256"] != ""  # type: ignore[index]
    assert out.read_bytes()[:2] == b"PK"


def test_export_redact_paths(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, created = run_json(capsys, "case", "new", "Redacted")
    with Workspace(workspace).open_case(created["id"]) as store:  # type: ignore[index]
        add_evidence(store, b"evidence from a card", "IMG_0001.jpg")
    out = tmp_path / "redacted.zip"
    code, exported = run_json(capsys, "case", "export", "Redacted", str(out), "--redact-paths")
    assert code == 0
    assert exported["redacted"] == {  # type: ignore[index]
        "evidence_source_paths": 1,
        "session_model_paths": 0,
        "paths_left_in_audit_entries": 0,
    }
    with zipfile.ZipFile(out) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            assert b"/media/card" not in data, name
            assert str(workspace).encode() not in data, name


def test_errors_are_sentences_on_stderr(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "case", "show", "nothing")
    assert (code, out) == (1, "")
    assert err.startswith("geodesk: no case matches 'nothing'") and "geodesk case new TITLE" in err
    run(capsys, "case", "new", "Alpha one")
    run(capsys, "case", "new", "Alpha two")
    code, _, err = run(capsys, "case", "verify", "alpha")
    assert code == 1 and "matches several cases" in err
    code, _, err = run(capsys, "case", "new", "   ")
    assert code == 1 and "needs a title" in err
    code, _, err = run(capsys, "case", "export", "Alpha one", str(workspace / "x.txt"))
    assert code == 1 and "must end in .zip" in err
    code, _, err = run(capsys, "case", "open-archive", str(workspace / "absent.zip"))
    assert code == 1 and "does not exist" in err


def test_workspace_option_overrides_environment(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-ws"
    code, out, _ = run(capsys, "--workspace", str(other), "case", "new", "Elsewhere", "--json")
    assert code == 0 and Path(json.loads(out)["path"]).parent == other / "cases"
    assert Workspace(workspace).list_cases() == []


def test_installed_entry_point(workspace: Path) -> None:
    entry = Path(sys.executable).parent / "geodesk"
    assert entry.exists(), (
        f"the geodesk entry point is not installed next to {sys.executable}; run make install"
    )
    env = {**os.environ, "GEODESK_WORKSPACE": str(workspace)}
    new = subprocess.run(
        [str(entry), "case", "new", "From the shell", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert new.returncode == 0, new.stderr
    case_id = json.loads(new.stdout)["id"]
    verify = subprocess.run(
        [str(entry), "case", "verify", case_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(verify.stdout)
    assert (verify.returncode, report["ok"], report["problems"]) == (0, True, [])
    missing = subprocess.run(
        [str(entry), "case", "show", "nope"], env=env, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 1 and "no case matches 'nope'" in missing.stderr


def test_verify_fails_on_an_unreviewed_engine_clue_edited_in_sqlite(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from tests.store.conftest import add_engine_clue

    _, created = run_json(capsys, "case", "new", "Engine clues")
    with Workspace(workspace).open_case(created["id"]) as store:  # type: ignore[index]
        sha = add_evidence(store, b"sign photo").sha256
        clue_id = add_engine_clue(store, sha).clue.id  # type: ignore[attr-defined]
        db_path = store.path / "case.db"
    code, report = run_json(capsys, "case", "verify", "Engine clues")
    assert (code, report["problems"]) == (0, [])  # type: ignore[index]
    with sqlite3.connect(db_path) as conn:  # an edit with a plain SQLite shell: the row has no trigger
        conn.execute("UPDATE clue_engine SET countries = '{\"KZ\": 1.0}' WHERE clue_id = ?", (clue_id,))
    code, report = run_json(capsys, "case", "verify", "Engine clues")
    assert code == 1
    assert [p for p in report["problems"] if p.startswith(f"clue {clue_id} was changed")]  # type: ignore[index]
