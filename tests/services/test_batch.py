"""Batch geolocation over a case with a broken original: the rest go on, reruns resume."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from PIL import Image

from geodesk.cli import main
from geodesk.engine.backends.base import GenerationSettings
from geodesk.engine.backends.hf import HFBackend
from geodesk.evidence.pipeline import ImportOptions
from geodesk.services.batch import run_batch
from geodesk.services.importing import import_into
from geodesk.services.sessions import TurnOptions
from geodesk.store.workspace import Workspace


@pytest.fixture
def case_dir(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, colour in enumerate([(200, 10, 10), (10, 200, 10), (10, 10, 200)]):
        Image.new("RGB", (48, 40), colour).save(folder / f"p{i}.png")
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Batch")
    with ws.open_case(case) as store:
        report = import_into(store, [folder], options=ImportOptions(workers=0), locate=None)
        shas = [e.sha256 for e in report.imported]
        broken = store.evidence_file(shas[1])
    # The original is read-only in the store; damage it as a failing disk would.
    broken.chmod(stat.S_IWUSR | stat.S_IRUSR)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return Path(case.path), shas


def test_batch_skips_done_items_and_collects_errors(
    tiny_model_dir: Path, case_dir: tuple[Path, list[str]]
) -> None:
    path, shas = case_dir
    backend = HFBackend(tiny_model_dir)
    options = TurnOptions(GenerationSettings(max_new_tokens=6))
    seen: list[tuple[int, int]] = []
    first = run_batch(path, backend, options=options, progress=lambda d, t, s: seen.append((d, t)))
    assert first.total == 3
    assert len(first.located) == 2
    assert [f["evidence"] for f in first.failed] == [shas[1]]
    assert "cannot be decoded" in first.failed[0]["error"]
    assert seen[-1] == (3, 3)

    again = run_batch(path, backend, options=options)
    assert sorted(again.skipped) == sorted([shas[0], shas[2]])
    assert again.located == [] and [f["evidence"] for f in again.failed] == [shas[1]]
    backend.close()


def test_batch_cli_exit_code_and_summary(
    tiny_model_dir: Path, case_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = case_dir
    workspace = path.parent.parent
    code = main(
        [
            "--workspace",
            str(workspace),
            "batch",
            "Batch",
            "--model",
            str(tiny_model_dir),
            "--max-new-tokens",
            "4",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    import json

    document = json.loads(out)
    assert code == 2
    assert document["located"] == 2 and len(document["failed"]) == 1
