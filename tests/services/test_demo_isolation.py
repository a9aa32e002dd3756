"""`geodesk demo` runs the GeoSynth generator isolated from the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodesk.services.demo import generate_with_training_cli


def test_a_training_package_in_the_current_folder_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = tmp_path / "here"
    (planted / "training").mkdir(parents=True)
    marker = tmp_path / "planted-code-ran"
    (planted / "training" / "__init__.py").write_text("")
    (planted / "training" / "cli.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\nraise SystemExit(0)\n"
    )
    monkeypatch.chdir(planted)
    images = generate_with_training_cli(tmp_path / "scenes", 1, seed=3)
    assert not marker.exists()
    assert len(images) == 1 and images[0].is_file()
