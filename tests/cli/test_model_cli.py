"""`geodesk model install | list | activate | deactivate | rollback | verify | remove` via cli.main."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from geodesk.cli import main
from geodesk.engine.package import MANIFEST_NAME, read_manifest
from tests.engine.xtuner_layout import make_xtuner_export


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code, out, err = run(capsys, *argv, "--json")
    assert out.count("\n") == 1, out  # exactly one JSON document
    return code, json.loads(out), err


def test_install_list_activate_rollback_remove(
    workspace: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = run_json(
        capsys, "model", "install", str(tiny_model_dir), "--name", "geo", "--version", "1"
    )
    assert code == 0 and first["changed"] is True and first["active"] is True
    assert first["ref"] == "geo@1" and first["sha256"] == read_manifest(tiny_model_dir).identity_sha256
    assert Path(first["path"]) == workspace / "models" / "geo" / "1"
    code, again, _ = run_json(
        capsys, "model", "install", str(tiny_model_dir), "--name", "geo", "--version", "1"
    )
    assert code == 0 and again["changed"] is False
    code, second, _ = run_json(
        capsys, "model", "install", str(tiny_model_dir), "--name", "geo", "--version", "2"
    )
    assert second["active"] is False

    code, listed, _ = run_json(capsys, "model", "list")
    assert [m["ref"] for m in listed["models"]] == ["geo@1", "geo@2"] and listed["active"] == "geo@1"
    code, out, _ = run(capsys, "model", "list")
    assert "geo@1" in out and "[active, UNTRAINED]" in out and "active model: geo@1" in out

    code, activated, _ = run_json(capsys, "model", "activate", "geo@2")
    assert code == 0 and activated["active"] is True and activated["version"] == "2"
    code, out, _ = run(capsys, "model", "rollback", "geo")
    assert code == 0 and "active: geo@1" in out

    code, out, err = run(capsys, "model", "remove", "geo@1")
    assert code == 1 and out == ""
    assert "geo@1 is the active version of geo" in err and "geodesk model activate geo@2" in err
    code, removed, _ = run_json(capsys, "model", "remove", "geo@2")
    assert code == 0 and removed["removed"] is True and not Path(removed["path"]).exists()

    code, _, err = run(capsys, "model", "activate", "nope")
    assert code == 1 and "no model named 'nope' is installed (installed: geo)" in err
    code, doc, _ = run_json(capsys, "model", "deactivate", "geo")
    assert code == 0 and doc == {"name": "geo", "active": None}
    code, out, _ = run(capsys, "model", "remove", "geo@1")
    assert code == 0 and "removed geo@1" in out
    code, out, _ = run(capsys, "model", "list")
    assert "no models installed" in out


def test_verify_exits_non_zero_naming_every_file(
    workspace: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, installed, _ = run_json(capsys, "model", "install", str(tiny_model_dir))
    code, report, _ = run_json(capsys, "model", "verify", "tiny-llava@0.0.0")
    assert code == 0 and report["ok"] is True and report["problems"] == []
    code, out, _ = run(capsys, "model", "verify")  # the active model by default
    assert code == 0 and "every file matches" in out

    folder = Path(installed["path"])
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0x01
    (folder / "model.safetensors").write_bytes(bytes(data))
    (folder / "tokenizer.json").unlink()
    code, report, err = run_json(capsys, "model", "verify", "tiny-llava")
    assert code == 1 and report["ok"] is False
    assert report["mismatched"] == ["model.safetensors"] and report["missing"] == ["tokenizer.json"]
    assert report["problems"] == ["model.safetensors: changed", "tokenizer.json: missing"]
    assert "model.safetensors: changed" in err and "tokenizer.json: missing" in err
    code, out, err = run(capsys, "model", "verify", "tiny-llava")
    assert code == 1 and "2 file(s) do not match" in out and "install it again" in err


def test_install_refusals_are_sentences(
    workspace: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pickled = tmp_path / "old-llava"
    shutil.copytree(tiny_model_dir, pickled)
    (pickled / MANIFEST_NAME).unlink()
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    code, out, err = run(capsys, "model", "install", str(pickled))
    assert code == 1 and out == ""
    assert err.startswith("geodesk: ") and "safetensors" in err and "pickle" in err
    code, _, err = run(capsys, "model", "install", str(tmp_path / "missing"))
    assert code == 1 and "is not a folder" in err
    code, _, err = run(capsys, "model", "remove", "tiny-llava")
    assert code == 1 and "no model named 'tiny-llava'" in err
    assert not (workspace / "models" / "registry.json").exists()


def test_install_an_xtuner_export_with_its_base_folder(
    workspace: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = make_xtuner_export(tiny_model_dir, tmp_path / "xt", visual_lora=True)
    assert export.base_clip is not None
    code, _, err = run(capsys, "model", "install", str(export.export), "--name", "gaga", "--version", "1")
    assert code == 1 and "--visual-encoder PATH" in err
    code, doc, _ = run_json(
        capsys,
        "model",
        "install",
        str(export.export),
        "--name",
        "gaga",
        "--version",
        "1",
        "--visual-encoder",
        str(export.base_clip),
        "--activate",
    )
    assert code == 0 and doc["source_kind"] == "xtuner" and doc["active"] is True
    code, report, _ = run_json(capsys, "model", "verify", "gaga")
    assert code == 0 and report["ok"] is True
