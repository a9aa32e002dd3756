"""geodesk-train build-data: one JSON document with --json, clear errors, exit codes, --workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.data.test_cases import make_case
from training.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    document = json.loads(captured.out) if captured.out.strip() else {}
    return code, document, captured.err


def test_meta_validate_split_through_the_cli(
    table: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_dir: Path
) -> None:
    csv_path, images = table
    out = tmp_path / "meta.json"
    code, doc, _ = run(capsys, "build-data", "meta", "--metadata", str(csv_path), "--images", str(images),
                       "--out", str(out), "--json")
    assert code == 0 and doc["counts"]["samples"] == 4  # type: ignore[index]
    # The validator finds the image root in the manifest.
    code, doc, _ = run(capsys, "build-data", "validate", str(out), "--model", str(tiny_model_dir), "--json")
    assert code == 0 and doc["counts"]["failed_samples"] == 0  # type: ignore[index]
    code, doc, _ = run(capsys, "build-data", "validate", str(out), "--model", str(tiny_model_dir),
                       "--max-length", "30", "--json")
    assert code == 1 and doc["counts"]["failed_samples"] == 4  # type: ignore[index]
    code, doc, _ = run(capsys, "build-data", "split", "--samples", str(out), "--out-dir", str(tmp_path / "s"),
                       "--val-fraction", "0.5", "--json")
    assert code == 0 and doc["counts"]["train"] + doc["counts"]["val"] == 4  # type: ignore[index,operator]


def test_teacher_commands_need_a_teacher(
    table: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, images = table
    code, _, err = run(capsys, "build-data", "dialog", "--metadata", str(csv_path), "--images", str(images),
                       "--out", str(tmp_path / "d.json"), "--json")
    assert code == 1 and "--teacher" in err
    code, _, err = run(capsys, "build-data", "clues", "--metadata", str(csv_path), "--images", str(images),
                       "--out", str(tmp_path / "c.json"), "--teacher", str(tmp_path / "nope"), "--json")
    assert code == 1 and "nope" in err


def test_dialog_with_a_teacher_folder(
    table: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_dir: Path
) -> None:
    csv_path, images = table
    out = tmp_path / "d.json"
    code, doc, _ = run(capsys, "build-data", "dialog", "--metadata", str(csv_path), "--images", str(images),
                       "--out", str(out), "--teacher", str(tiny_model_dir), "--max-new-tokens", "8", "--json")
    assert code == 0 and out.is_file()
    assert doc["counts"]["rows"] == 5  # type: ignore[index]
    manifest = json.loads(Path(str(doc["manifest"])).read_text())
    assert manifest["teacher"]["name"] == "tiny-llava"


def test_cases_honours_workspace_before_or_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = make_case(tmp_path)
    monkeypatch.delenv("GEODESK_WORKSPACE", raising=False)
    out = tmp_path / "cases.json"
    code, doc, _ = run(capsys, "--workspace", str(ws.path), "build-data", "cases", "--out", str(out),
                       "--json")
    assert code == 0 and doc["counts"]["samples"] == 2  # type: ignore[index]
    code, doc, _ = run(capsys, "build-data", "cases", "--workspace", str(ws.path), "--out", str(out),
                       "--case", "Closed", "--json")
    assert code == 0 and doc["counts"]["samples"] == 2  # type: ignore[index]
    code, _, err = run(capsys, "build-data", "cases", "--workspace", str(ws.path), "--out", str(out),
                       "--case", "nothing like it", "--json")
    assert code == 1 and "no case matches" in err
