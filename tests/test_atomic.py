"""geodesk.atomic: a folder built under atomic_directory replaces the old one whole, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodesk.atomic import atomic_directory


def test_a_finished_block_replaces_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with atomic_directory(target) as staging:
        assert staging.parent == tmp_path and staging != target
        (staging / "new.bin").write_text("new")
        assert (target / "old.bin").is_file()  # readers still see the old folder meanwhile
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left


def test_an_error_keeps_the_old_folder_and_removes_the_staging(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "half.bin").write_text("half")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["old.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_new_folder_is_created_with_its_parents(tmp_path: Path) -> None:
    target = tmp_path / "run" / "stage0" / "model"
    with atomic_directory(target) as staging:
        (staging / "config.json").write_text("{}")
    assert (target / "config.json").is_file()
