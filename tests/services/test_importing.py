"""The import use case: case by reference, the real gazetteer for places, the JSON documents."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from geodesk.evidence.pipeline import ImportOptions
from geodesk.services.importing import evidence_details, import_evidence, import_into, report_document
from geodesk.store import Workspace
from tests.evidence.fixtures import gps_ifd, pattern, write_jpeg


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "ws")
    workspace.create_case("Oslo harbour")
    return workspace


def test_import_by_case_reference_with_real_places(tmp_path: Path, ws: Workspace) -> None:
    oslo = write_jpeg(
        tmp_path / "oslo.jpg",
        gps=gps_ifd(59.9139, 10.7522),
        taken="2023:05:01 12:34:56",
        offset="+02:00",
        make="Apple",
        model="iPhone 12",
    )
    sea = write_jpeg(tmp_path / "sea.jpg", pattern(30, 30), gps=gps_ifd(-30.0, -140.0))  # South Pacific
    bare = write_jpeg(tmp_path / "bare.jpg", pattern(20, 20))
    report = import_evidence(ws, "Oslo", [oslo, sea, bare], options=ImportOptions(workers=2))
    by_name = {e.original_name: e for e in report.imported}
    place = by_name["oslo.jpg"].place
    assert place is not None and place.country_code == "NO" and place.city == "Oslo"
    sea_place = by_name["sea.jpg"].place
    assert sea_place is None or sea_place.country_code is None  # at sea: no country
    assert by_name["bare.jpg"].place is None and by_name["bare.jpg"].gps is None


def test_report_document_shape(tmp_path: Path, ws: Workspace) -> None:
    good = write_jpeg(tmp_path / "good.jpg", gps=gps_ifd(48.8584, 2.2945, 35.0))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with ws.open_case("Oslo") as store:
        report = import_into(store, [good, bad, tmp_path / "missing.jpg"])
        document = report_document(report)
        json.dumps(document, allow_nan=False)
        [item] = document["imported"]
        assert set(item) >= {
            "sha256",
            "original_name",
            "size_bytes",
            "width",
            "height",
            "format",
            "gps",
            "taken_at",
            "camera",
            "place",
        }
        assert item["gps"] == {"lat": pytest.approx(48.8584), "lon": pytest.approx(2.2945), "alt": 35.0}
        assert set(item["place"]) == {"country_code", "country", "region", "city", "distance_km"}
        assert item["place"]["country_code"] == "FR"
        assert [e["path"] for e in document["errors"]] == [str(tmp_path / "missing.jpg"), str(bad)]
        assert all(set(e) == {"path", "error"} for e in document["errors"])
        details = evidence_details(store.evidence.get(item["sha256"][:10]))
        assert details["sha256"] == item["sha256"] and "exif" in details["metadata"]


def test_cancel_before_start_imports_nothing(tmp_path: Path, ws: Workspace) -> None:
    path = write_jpeg(tmp_path / "a.jpg")
    cancel = threading.Event()
    cancel.set()
    report = import_evidence(ws, "Oslo", [path], cancel=cancel)
    assert report.imported == [] and report.cancelled and report.not_processed == 1


def test_unknown_case_is_a_lookup_error(tmp_path: Path, ws: Workspace) -> None:
    with pytest.raises(LookupError, match="no case matches"):
        import_evidence(ws, "Nowhere", [tmp_path])
