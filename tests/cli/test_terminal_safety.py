"""Untrusted strings (EXIF, titles, file names, model answers) never reach the terminal as raw escapes."""

from __future__ import annotations

import json
from pathlib import Path

import piexif
import pytest
from PIL import Image

from geodesk.cli import main
from geodesk.cli._common import terminal_safe

HOSTILE = "Canon\x1b]0;owned\x07\x1b[2J\u202eevil\x9b31m"


def test_terminal_safe_escapes_controls_and_keeps_lines() -> None:
    assert terminal_safe("a\nb\tc") == "a\nb\tc"
    assert terminal_safe(HOSTILE) == "Canon\\x1b]0;owned\\x07\\x1b[2J\\u202eevil\\x9b31m"
    assert terminal_safe("Zürich 合肥") == "Zürich 合肥"


def test_evidence_show_escapes_exif_and_json_stays_exact(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.jpg"
    make = "Canon\x1b]0;owned\x07\x1b[2J"  # EXIF ASCII: a title rewrite and a screen clear
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: make.encode("ascii"), piexif.ImageIFD.Model: b"X"}})
    Image.new("RGB", (32, 24), (10, 20, 30)).save(image, exif=exif)
    assert main(["case", "new", "Escapes", "--json"]) == 0
    case_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["evidence", "add", case_id, str(image), "--json"]) == 0
    sha = json.loads(capsys.readouterr().out)["imported"][0]["sha256"]

    assert main(["evidence", "show", case_id, sha]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;owned\\x07\\x1b[2J" in text

    assert main(["evidence", "show", case_id, sha, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["camera"] == f"{make} X"  # exact: JSON escapes controls itself


def test_errors_naming_hostile_files_are_escaped(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["case", "new", "Names", "--json"]) == 0
    case_id = json.loads(capsys.readouterr().out)["id"]
    main(["evidence", "show", case_id, "\x1b[31mdead"])
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[31m" in err
