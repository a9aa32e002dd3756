"""`geodesk clues run | show | constraint | check` and `geodesk sun` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from geodesk.cli import main
from tests.clues.conftest import sign_photo


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def sha(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    _json(capsys, ["case", "new", "Signs", "--json"])
    photo = sign_photo(tmp_path / "sign.jpg")
    return str(_json(capsys, ["evidence", "add", "Signs", str(photo), "--json"])["imported"][0]["sha256"])


def test_run_show_constraint_and_sun(sha: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = _json(capsys, ["clues", "run", "Signs", sha[:8], "--ocr", "rapidocr", "--json"])
    assert run["failed"] == 0 and run["ocr"] == "rapidocr"
    categories = {c["category"] for c in run["runs"][0]["added"]}
    assert {"phone", "domain", "timezone"} <= categories
    shown = _json(capsys, ["clues", "show", "Signs", sha[:8], "--json"])
    assert len(shown["clues"]) == len(run["runs"][0]["added"])
    assert all(c["status"] == "proposed" for c in shown["clues"])
    empty = _json(capsys, ["clues", "constraint", "Signs", sha[:8], "--json"])
    assert empty["leading"] == []
    layer = tmp_path / "layer.geojson"
    combined = _json(
        capsys,
        [
            "clues",
            "constraint",
            "Signs",
            sha[:8],
            "--include-proposed",
            "--no-geometry",
            "--out",
            str(layer),
            "--json",
        ],
    )
    assert combined["leading"][0]["country_code"] == "UZ"
    assert json.loads(layer.read_text())["type"] == "FeatureCollection"
    sun = _json(
        capsys, ["sun", "Signs", sha[:8], "--object", "400,100,420,300", "--shadow-tip", "550,300", "--json"]
    )
    assert sun["category"] == "sun" and sun["area"] is not None and sun["box"] == [400, 100, 420, 300]


def test_bad_input_gets_a_sentence(sha: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sun", "Signs", sha[:8]]) == 1
    assert "--shadow-tip" in capsys.readouterr().err
    assert main(["sun", "Signs", sha[:8], "--ratio", "1", "--time", "noon"]) == 1
    assert "ISO time" in capsys.readouterr().err
    assert main(["clues", "run", "Signs", "--region", "1,2,3,4"]) == 1
    assert "EVIDENCE" in capsys.readouterr().err
    assert main(["clues", "show", "Signs", "ffff0000"]) == 1
    assert capsys.readouterr().err.startswith("geodesk: ")
