"""build-data table: geotagged photos -> the metadata table (GPS from EXIF, names by reverse geocoding)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.evidence.fixtures import exif_bytes, gps_ifd
from training.cli import main as train_main
from training.data.meta import build_meta
from training.data.metadata import PlaceNamer, read_metadata
from training.data.photos import build_table


def test_photos_with_gps_become_rows_and_the_rest_is_reported(
    tmp_path: Path, namer: PlaceNamer, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    lyon, kyoto = exif_bytes(gps=gps_ifd(45.764, 4.8357)), exif_bytes(gps=gps_ifd(35.0116, 135.7681))
    Image.new("RGB", (32, 24), (90, 120, 90)).save(photos / "lyon.jpg", exif=lyon)
    Image.new("RGB", (32, 24)).save(photos / "trip" / "kyoto.jpg", exif=kyoto)
    Image.new("RGB", (32, 24)).save(photos / "nogps.jpg")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (8, 8)).save(photos / "trip" / "lyon.png")  # the same name as another photo
    out = tmp_path / "table.csv"
    report = build_table(photos, out, namer=namer)
    assert report.counts["rows"] == 2 and report.counts["images"] == 5
    assert report.counts["without_gps"] == 1 and report.counts["unreadable"] == 1
    assert report.counts["repeated_names"] == 1
    rows, bad = read_metadata(out)
    assert not bad
    by_id = {r.id: r for r in rows}
    # GeoNames names the nearest populated place: an arrondissement ("Lyon 01") in a big city.
    lyon = by_id["lyon"]
    assert lyon.country == "FR" and str(lyon.city).startswith("Lyon") and lyon.region
    assert by_id["kyoto"].country == "JP" and abs(by_id["kyoto"].lat - 35.0116) < 1e-6
    # The other builders read the table as is, finding the images by name under the photo folder.
    meta = build_meta(out, photos, tmp_path / "meta.json", namer=namer)
    assert meta.counts["samples"] == 2
    assert train_main(["build-data", "table", "--photos", str(photos), "--out", str(tmp_path / "t2.csv"),
                       "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["rows"] == 2
