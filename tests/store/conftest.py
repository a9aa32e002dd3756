"""Fixtures for store tests: a fresh case, and evidence with real files in its content-addressed store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from geodesk.domain import Evidence, GpsPoint
from geodesk.store import CaseStore, Workspace


def add_evidence(store: CaseStore, content: bytes, name: str = "photo.jpg") -> Evidence:
    """Store ``content`` as an original (read-only, content-addressed) and record it, as the importer does."""
    sha = hashlib.sha256(content).hexdigest()
    path = store.evidence_path(sha, ".jpg")
    path.write_bytes(content)
    path.chmod(0o444)
    evidence = Evidence(
        sha256=sha,
        original_name=name,
        size_bytes=len(content),
        format="JPEG",
        width=640,
        height=480,
        imported_at=datetime(2026, 5, 9, 12, 0, tzinfo=UTC),
        source_path=f"/media/card/{name}",
        gps=GpsPoint(48.8584, 2.2945, 35.0),
        taken_at="2026-05-01T10:00:00+02:00",
        camera="Canon EOS",
    )
    store.evidence.add(evidence)
    return evidence


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Test case")
    with ws.open_case(case) as s:
        yield s


def add_engine_clue(
    store: CaseStore,
    sha: str,
    *,
    category: str = "phone",
    text: str = "+998 phone prefix",
    countries: dict[str, float] | None = None,
    others: float = 0.0,
    status: str = "proposed",
    area: dict[str, object] | None = None,
) -> object:
    """An engine clue stored as the clue engine stores one (clue row + engine row + audit), without OCR:
    by default a phone prefix that backs Uzbekistan and rules every other country out."""
    from geodesk.domain.model import Clue, ClueSource, ClueStatus

    return store.engine_clues.add(
        Clue(None, sha, category, text, ClueSource.OCR, ClueStatus(status)),
        confidence=0.9,
        countries={"UZ": 1.0} if countries is None else countries,
        others=others,
        area=area,
        details={},
        engine_version="1",
        provenance={"engine_version": "1", "ocr": {"engine": "rapidocr", "version": "3.10",
                                                  "models": {"det.onnx": "ab" * 32}}},
    )
