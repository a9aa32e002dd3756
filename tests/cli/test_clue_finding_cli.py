"""`geodesk clue list|add|accept|reject|edit` and `geodesk finding set|show|history` (--json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from geodesk.cli import main
from tests.evidence.fixtures import write_jpeg


def run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    assert main(argv) == code
    captured = capsys.readouterr()
    return json.loads(captured.out) if code == 0 else captured.err


@pytest.fixture
def item(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    case = run(capsys, ["case", "new", "Clues", "--json"])["id"]
    photo = write_jpeg(tmp_path / "street.jpg")
    report = run(capsys, ["evidence", "add", case, str(photo), "--workers", "0", "--json"])
    return case, report["imported"][0]["sha256"][:12]


def test_clue_add_accept_reject_edit_and_list(
    item: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    case, sha = item
    added = run(
        capsys,
        [
            "clue",
            "add",
            case,
            sha,
            "yellow road markings",
            "--category",
            "Road",
            "--region",
            "1,2,30,40",
            "--json",
        ],
    )["clue"]
    assert added["status"] == "accepted" and added["source"] == "analyst" and added["category"] == "road"
    assert added["region"] == [1, 2, 30, 40]
    clue_id = str(added["id"])
    assert run(capsys, ["clue", "reject", case, clue_id, "--json"])["clue"]["status"] == "rejected"
    assert run(capsys, ["clue", "accept", case, clue_id, "--json"])["clue"]["status"] == "accepted"
    err = run(capsys, ["clue", "edit", case, clue_id, "  ", "--json"], code=1)
    assert "an edit needs text" in err
    edited = run(capsys, ["clue", "edit", case, clue_id, "white markings", "--json"])["clue"]
    assert (edited["status"], edited["text"]) == ("edited", "white markings")
    listed = run(capsys, ["clue", "list", case, sha, "--json"])["clues"]
    assert [(c["id"], c["text"]) for c in listed] == [(added["id"], "white markings")]
    assert "no clue 999" in run(capsys, ["clue", "accept", case, "999"], code=1)
    assert "not a rectangle" in run(capsys, ["clue", "add", case, sha, "x", "--region", "9,9,1,1"], code=1)


def test_finding_set_show_and_history(item: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    case, sha = item
    assert run(capsys, ["finding", "show", case, sha, "--json"]) == {"finding": None}
    first = run(
        capsys,
        [
            "finding",
            "set",
            case,
            sha,
            "48.85",
            "2.35",
            "--radius",
            "3",
            "--status",
            "probable",
            "--reasoning",
            "river bend",
            "--json",
        ],
    )["finding"]
    assert (first["version"], first["status"], first["radius_km"]) == (1, "probable", 3.0)
    run(capsys, ["finding", "set", case, sha, "48.86", "2.34", "--json"])
    shown = run(capsys, ["finding", "show", case, sha, "--json"])["finding"]
    assert (shown["version"], shown["lat"], shown["status"]) == (2, 48.86, "unverified")
    history = run(capsys, ["finding", "history", case, sha, "--json"])["history"]
    assert [f["version"] for f in history] == [1, 2] and history[0]["reasoning"] == "river bend"
    assert "not a point" in run(capsys, ["finding", "set", case, sha, "91", "0"], code=1)
