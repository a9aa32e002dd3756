"""`geodesk evidence add | list | show` through the real entry point (and once as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from geodesk.cli import main
from tests.evidence.fixtures import gps_ifd, pattern, write_jpeg

GEODESK = Path(sys.executable).parent / "geodesk"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    assert main(argv) == code
    out = capsys.readouterr().out
    return json.loads(out)


@pytest.fixture
def case_id(workspace: Path, capsys: pytest.CaptureFixture[str]) -> str:
    return str(_json(capsys, ["case", "new", "Harbour", "--json"])["id"])


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    write_jpeg(
        folder / "oslo.jpg",
        gps=gps_ifd(59.9139, 10.7522, 5.0),
        taken="2023:05:01 12:34:56",
        offset="+02:00",
        make="Canon",
        model="Canon EOS 5D",
    )
    write_jpeg(folder / "nogps.jpg", pattern(32, 32))
    return folder


def test_add_list_show(case_id: str, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    added = _json(capsys, ["evidence", "add", case_id, str(photos), "--json"])
    assert added["errors"] == [] and added["duplicates"] == []
    imported = {e["original_name"]: e for e in added["imported"]}
    assert set(imported) == {"oslo.jpg", "nogps.jpg"}

    listed = _json(capsys, ["evidence", "list", "Harb", "--json"])
    assert sorted(e["sha256"] for e in listed["evidence"]) == sorted(e["sha256"] for e in imported.values())

    oslo = imported["oslo.jpg"]
    shown = _json(capsys, ["evidence", "show", case_id, oslo["sha256"][:12], "--json"])
    assert shown["sha256"] == oslo["sha256"]
    assert shown["gps"] == {"lat": pytest.approx(59.9139), "lon": pytest.approx(10.7522), "alt": 5.0}
    assert shown["taken_at"] == "2023-05-01T12:34:56+02:00"
    assert shown["camera"] == "Canon EOS 5D"
    assert shown["place"]["country_code"] == "NO"
    assert (shown["width"], shown["height"], shown["format"]) == (64, 48, "JPEG")

    nogps = _json(capsys, ["evidence", "show", case_id, imported["nogps.jpg"]["sha256"], "--json"])
    assert nogps["gps"] is None and nogps["place"] is None

    assert main(["evidence", "show", case_id, oslo["sha256"][:12]]) == 0  # readable text
    text = capsys.readouterr().out
    assert "Oslo" in text and "Canon EOS 5D" in text and "59.913900" in text


def test_add_exits_2_when_some_files_fail_and_reports_duplicates(
    case_id: str, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    first = _json(capsys, ["evidence", "add", case_id, str(photos), "--json"], code=2)
    assert len(first["imported"]) == 2
    [error] = first["errors"]
    assert error["path"] == str(photos / "broken.jpg") and "JPEG" in error["error"]

    (photos / "broken.jpg").unlink()
    again = _json(capsys, ["evidence", "add", case_id, str(photos), "--json"])
    assert again["imported"] == [] and len(again["duplicates"]) == 2

    assert main(["evidence", "add", case_id, str(photos)]) == 0
    assert "duplicates 2" in capsys.readouterr().out


def test_errors_are_sentences(case_id: str, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evidence", "add", "no-such-case", str(photos)]) == 1
    assert "no case matches" in capsys.readouterr().err
    assert main(["evidence", "show", case_id, "abcdef12"]) == 1
    assert "no evidence" in capsys.readouterr().err
    assert main(["evidence", "show", case_id, "xyz"]) == 1
    assert "SHA-256" in capsys.readouterr().err
    assert main(["evidence", "list", case_id]) == 0
    assert "no evidence yet" in capsys.readouterr().out


def test_installed_entry_point(case_id: str, photos: Path, workspace: Path) -> None:
    if not GEODESK.exists():
        pytest.skip(f"{GEODESK} is not installed (run `make install`)")
    env = {**os.environ, "GEODESK_WORKSPACE": str(workspace)}
    done = subprocess.run(
        [str(GEODESK), "evidence", "add", case_id, str(photos / "oslo.jpg"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [e["original_name"] for e in document["imported"]] == ["oslo.jpg"]
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
