"""The lmdeploy export names what to do for families it does not rewrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodesk.services.lmdeploy_server import LmdeployError, export_for_lmdeploy


def test_export_explains_how_lmdeploy_serves_other_families(
    tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(LmdeployError, match=r"Qwen2\.5-VL model: lmdeploy loads its folder as it is"):
        export_for_lmdeploy(tiny_family_dirs["qwen2_5_vl"], tmp_path / "qwen")
    with pytest.raises(LmdeployError, match="does not serve in this format; serve it with `geodesk serve`"):
        export_for_lmdeploy(tiny_family_dirs["internvl"], tmp_path / "internvl")
    assert not (tmp_path / "qwen").exists() and not (tmp_path / "internvl").exists()
