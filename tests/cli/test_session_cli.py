"""`geodesk locate`, `hint` and `session show|replay` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from geodesk.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


@pytest.fixture
def case_with_image(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    image = tmp_path / "alley.jpg"
    Image.new("RGB", (64, 48), (200, 180, 150)).save(image)
    code, created, _ = _run(capsys, "case", "new", "Alley", "--json")
    assert code == 0
    code, added, _ = _run(capsys, "evidence", "add", created["id"], str(image), "--json")
    assert code == 0, added
    return created["id"], added["imported"][0]["sha256"]


def test_locate_hint_show_replay(
    case_with_image: tuple[str, str], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id, sha = case_with_image
    model = ["--model", str(tiny_model_dir), "--max-new-tokens", "8", "--json"]
    code, located, _ = _run(capsys, "locate", case_id, sha[:10], "--mode", "direct", *model)
    assert code == 0
    assert set(located) >= {"session", "turn", "prediction", "raw", "timing", "model"}
    assert located["turn"] == 1  # turns count from 1, like sessions
    assert "turn_id" not in located
    assert located["model"]["sha256"]
    assert set(located["prediction"]) >= {"country", "region", "city", "lat", "lon", "valid"}

    session = str(located["session"])
    code, hinted, _ = _run(
        capsys, "hint", session, "--kind", "qa", "--text", "Which script?", "--answer", "Cyrillic", *model
    )
    assert code == 0 and hinted["turn"] == 2

    code, shown, _ = _run(capsys, "session", "show", session, "--json")
    assert code == 0
    assert [t["turn"] for t in shown["turns"]] == [1, 2]
    assert shown["turns"][1]["hints"] == [
        {"kind": "qa", "text": "Which script?", "answer": "Cyrillic", "region": None, "clue_ids": []}
    ]

    code, replayed, _ = _run(capsys, "session", "replay", session, *model)
    assert code == 0
    assert [t["turn"] for t in replayed["turns"]] == [1, 2]
    assert replayed["replay"] != located["session"]


def test_hint_errors_are_sentences(
    case_with_image: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hint", "1", "--kind", "region", "--text", "sign"]) != 0
    assert "--region" in capsys.readouterr().err
    assert main(["hint", "42", "--kind", "prior", "--text", "Chile"]) != 0
    assert "no case has a session 42" in capsys.readouterr().err


def test_locate_without_model_says_how_to_install_one(
    case_with_image: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    case_id, sha = case_with_image
    code = main(["locate", case_id, sha, "--json"])
    err = capsys.readouterr().err
    assert code != 0
    assert "geodesk model install" in err and "create-tiny" in err


def test_locate_through_the_installed_entry_point(
    case_with_image: tuple[str, str], tiny_model_dir: Path, workspace: Path
) -> None:
    case_id, sha = case_with_image
    geodesk = Path(sys.executable).with_name("geodesk")
    done = subprocess.run(
        [
            str(geodesk),
            "--workspace",
            str(workspace),
            "locate",
            case_id,
            sha,
            "--model",
            str(tiny_model_dir),
            "--max-new-tokens",
            "4",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["turn"] == 1
    # --json prints the document only: no "Loading weights" bar from transformers either.
    assert "Loading weights" not in done.stderr and "%|" not in done.stderr


def test_session_list_names_each_session_with_its_newest_answer(
    case_with_image: tuple[str, str], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id, sha = case_with_image
    model = ["--model", str(tiny_model_dir), "--max-new-tokens", "8", "--json"]
    code, empty, _ = _run(capsys, "session", "list", case_id, "--json")
    assert code == 0 and empty["sessions"] == []
    _, first, _ = _run(capsys, "locate", case_id, sha, *model)
    _, second, _ = _run(capsys, "locate", case_id, sha, *model)
    _run(capsys, "hint", str(second["session"]), "--kind", "question", "--text", "Which side?", *model)
    code, listed, _ = _run(capsys, "session", "list", case_id, sha[:8], "--json")
    assert code == 0
    assert listed["evidence"] == sha
    assert [(s["session"], s["turns"]) for s in listed["sessions"]] == [(first["session"], 1),
                                                                         (second["session"], 2)]
    assert listed["sessions"][1]["last_turn"]["turn"] == 2
    assert listed["sessions"][0]["original_name"] == "alley.jpg"
    code = main(["session", "list", case_id])
    text = capsys.readouterr().out
    assert code == 0
    assert f"session {second['session']}" in text and "turn 2 [" in text and "None" not in text
    assert main(["session", "list", case_id, "ffffffffff"]) == 1
    assert "ffffffffff" in capsys.readouterr().err


def test_session_show_text_never_prints_none_for_missing_coordinates(
    case_with_image: tuple[str, str], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id, sha = case_with_image
    _, located, _ = _run(capsys, "locate", case_id, sha, "--model", str(tiny_model_dir), "--max-new-tokens",
                         "4", "--json")
    assert main(["session", "show", str(located["session"])]) == 0
    out = capsys.readouterr().out
    assert "(None, None)" not in out and "turn 1 [" in out


def test_a_clue_verdict_is_a_hint_from_the_command_line(
    case_with_image: tuple[str, str], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hint --kind clues` sends every judged clue of the item, as the GUI's "Send accepted / rejected
    clues" does; with none judged yet it says how to judge them and runs no turn."""
    case_id, sha = case_with_image
    model = ["--model", str(tiny_model_dir), "--max-new-tokens", "8", "--json"]
    code, located, _ = _run(capsys, "locate", case_id, sha, "--mode", "clues", *model)
    assert code == 0
    session = str(located["session"])
    assert main(["hint", session, "--kind", "clues", *model]) != 0
    err = capsys.readouterr().err
    assert "judge some clues first" in err and "clue accept" in err
    code, added, _ = _run(capsys, "clue", "add", case_id, sha, "A shop sign in Cyrillic", "--json")
    assert code == 0, added
    code, hinted, _ = _run(capsys, "hint", session, "--kind", "clues", "--text", "the sign decides", *model)
    assert code == 0 and hinted["turn"] == 2
    code, shown, _ = _run(capsys, "session", "show", session, "--json")
    assert code == 0
    (hint,) = shown["turns"][1]["hints"]
    assert hint["kind"] == "clues" and hint["text"] == "the sign decides"
    assert hint["clue_ids"] == [added["clue"]["id"]]
