"""`geodesk batch`: one line (or JSON row) per item with its answer and the distance to its EXIF point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from geodesk.cli import main
from tests.evidence.fixtures import exif_bytes, gps_ifd


@pytest.fixture
def case_of_two(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, str]:
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (64, 48), (90, 120, 150)).save(plain)
    located = tmp_path / "with-gps.jpg"
    Image.new("RGB", (64, 48), (150, 120, 90)).save(located, exif=exif_bytes(gps=gps_ifd(60.39, 5.32)))
    assert main(["case", "new", "Batch", "--json"]) == 0
    case_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["evidence", "add", case_id, str(plain), str(located), "--json"]) == 0
    imported = {i["original_name"]: i["sha256"] for i in json.loads(capsys.readouterr().out)["imported"]}
    return case_id, imported["plain.jpg"], imported["with-gps.jpg"]


def test_text_mode_prints_a_line_per_item(case_of_two: tuple[str, str, str], tiny_model_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    case_id, _, _ = case_of_two
    assert main(["batch", case_id, "--model", str(tiny_model_dir), "--max-new-tokens", "24"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 located, 0 already done, 0 failed of 2"
    items = lines[:-1]
    assert len(items) == 2
    assert all("session " in line for line in items)
    assert any("with-gps.jpg" in line for line in items) and any("plain.jpg" in line for line in items)


def test_json_rows_carry_the_exif_distance(case_of_two: tuple[str, str, str], tiny_model_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    case_id, _, _ = case_of_two
    assert main(["batch", case_id, "--model", str(tiny_model_dir), "--max-new-tokens", "24",
                 "--json"]) == 0
    out = capsys.readouterr().out
    document = json.loads(out)  # one document and nothing else on stdout
    rows = {row["original_name"]: row for row in document["sessions"]}
    assert set(rows) == {"plain.jpg", "with-gps.jpg"}
    assert rows["plain.jpg"]["exif_km"] is None
    gps_row = rows["with-gps.jpg"]
    if gps_row["lat"] is None:
        assert gps_row["exif_km"] is None
    else:
        from geodesk.geo.distance import haversine_km

        expected = haversine_km(gps_row["lat"], gps_row["lon"], 60.39, 5.32)
        assert gps_row["exif_km"] == pytest.approx(expected, abs=0.5)
