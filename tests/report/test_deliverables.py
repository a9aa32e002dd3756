"""The case report (HTML and PDF) and the GIS exports, read back by real consumers."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from geodesk.cli import main
from geodesk.domain import (
    Clue,
    ClueSource,
    ClueStatus,
    Finding,
    FindingStatus,
    Hint,
    HintKind,
    Region,
    SessionMode,
)
from geodesk.engine.backends.base import GenerationSettings
from geodesk.evidence.pipeline import ImportOptions
from geodesk.report.case_report import ReportOptions
from geodesk.services.importing import import_into
from geodesk.services.models import BackendRequest, open_backend
from geodesk.services.reports import DeliverableError, report_html, write_export
from geodesk.services.sessions import TurnOptions, add_hints, locate
from geodesk.store import Workspace
from tests.evidence.fixtures import exif_bytes, gps_ifd

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>\x1b[31m"quoted"\u202e'


@pytest.fixture
def case_dir(tmp_path: Path, tiny_model_dir: Path) -> tuple[Path, str]:
    """A case with two images, two sessions with a hint, clues (accepted, rejected) and a finding."""
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Harbour photos")
    first = tmp_path / "harbour.jpg"
    Image.new("RGB", (320, 240), (40, 90, 140)).save(first, exif=exif_bytes(gps=gps_ifd(60.3913, 5.3221)))
    second = tmp_path / (HOSTILE.replace("/", "_").replace("\x1b", "") + ".png")
    Image.new("RGB", (200, 150), (140, 90, 40)).save(second)
    options = TurnOptions(settings=GenerationSettings(max_new_tokens=24, seed=7))
    with ws.open_case(case) as store:
        report = import_into(store, [str(first), str(second)], options=ImportOptions(workers=0), locate=None)
        assert not report.errors
        shas = [e.sha256 for e in store.evidence.list()]
        backend = open_backend(ws.path, BackendRequest(model=str(tiny_model_dir)))
        try:
            outcome = locate(store, shas[0], backend, SessionMode.DIRECT, options)
            add_hints(
                store,
                outcome.session.id or 0,
                [Hint(HintKind.QA, "Which script?", "Latin")],
                backend,
                options,
            )
            locate(store, shas[1], backend, SessionMode.DIRECT, options)
        finally:
            backend.close()
        accepted = store.clues.add(
            Clue(None, shas[0], "sign", HOSTILE, ClueSource.ANALYST, region=Region(10, 10, 120, 80))
        )
        store.clues.update_status(accepted.id or 0, ClueStatus.ACCEPTED)
        rejected = store.clues.add(Clue(None, shas[0], "plate", "rejected plate text", ClueSource.ANALYST))
        store.clues.update_status(rejected.id or 0, ClueStatus.REJECTED)
        store.findings.save(Finding(None, shas[0], 60.39, 5.32, 2.0, FindingStatus.PROBABLE, HOSTILE))
        store.findings.save(
            Finding(None, shas[0], 60.392, 5.323, 0.5, FindingStatus.CONFIRMED, "the fish market")
        )
        return Path(store.path), shas[0]


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]


def test_the_html_report_is_self_contained_and_escapes_hostile_text(case_dir: tuple[Path, str]) -> None:
    from geodesk.store.case_store import CaseStore

    with CaseStore.open(case_dir[0]) as store:
        html, items = report_html(store, ReportOptions(reference="REF-7"))
        head = store.audit.head()
        shas = [e.sha256 for e in store.evidence.list()]
    assert items == 2
    parsed = _Markup()
    parsed.feed(html)
    assert "script" not in parsed.tags and "iframe" not in parsed.tags and "object" not in parsed.tags
    assert not [k for k, _ in parsed.attrs if k.startswith("on")]  # no event-handler attributes
    assert all(u.startswith(("data:", "#")) for u in parsed.urls), parsed.urls  # nothing external
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\x1b" in html or "&#27;" in html or "\\x1b" not in html  # control text stays text
    assert head is not None and head.hash in html
    assert all(sha in html for sha in shas)
    assert "REF-7" in html and "UNTRAINED model" in html
    assert "rejected plate text" not in html  # rejected clues only with --include-rejected
    assert "the fish market" in html and "Finding" in html


def test_rejected_clues_and_redacted_paths(case_dir: tuple[Path, str], tmp_path: Path) -> None:
    from geodesk.store.case_store import CaseStore

    with CaseStore.open(case_dir[0]) as store:
        full, _ = report_html(store, ReportOptions(include_rejected=True))
        redacted, _ = report_html(store, ReportOptions(redact_paths=True, evidence=(case_dir[1][:10],)))
        with pytest.raises(DeliverableError, match="ffffff"):
            report_html(store, ReportOptions(evidence=("ffffff",)))
    assert "rejected plate text" in full
    assert str(tmp_path) in full  # import source paths are listed by default
    assert str(tmp_path) not in redacted and "[path removed]" in redacted
    assert redacted.count('class="evidence"') == 2  # one item and the appendix


def test_cli_report_is_audited_and_refuses_to_overwrite(
    case_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    from geodesk.store.case_store import CaseStore

    out = tmp_path / "report.html"
    ws = case_dir[0].parent.parent
    assert main(["--workspace", str(ws), "report", "Harbour", str(out), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    with CaseStore.open(case_dir[0]) as store:
        head = store.audit.head()
        assert head is not None and head.action == "report.write"
        assert head.details["sha256"] == written["sha256"]
    assert main(["--workspace", str(ws), "report", "Harbour", str(out)]) == 1
    assert "--force" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")
def test_the_pdf_report_holds_every_hash_and_the_chain_head(
    case_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geodesk.store.case_store import CaseStore

    with CaseStore.open(case_dir[0]) as store:
        shas = [e.sha256 for e in store.evidence.list()]
    out = tmp_path / "report.pdf"
    ws = case_dir[0].parent.parent
    assert main(["--workspace", str(ws), "report", "Harbour", str(out)]) == 0, capsys.readouterr().err
    assert out.read_bytes().startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    squeezed = "".join(text.split())
    with CaseStore.open(case_dir[0]) as store:
        entries = store.audit.entries()
    head_before_report = entries[-2].hash  # the report itself appended the last entry
    assert all(sha in squeezed for sha in shas)
    assert head_before_report in squeezed
    assert "Casereport:Harbourphotos" in squeezed


def test_geojson_and_kml_open_in_gdal_with_the_expected_features(
    case_dir: tuple[Path, str], tmp_path: Path
) -> None:
    pyogrio = pytest.importorskip("pyogrio")
    from geodesk.store.case_store import CaseStore

    with CaseStore.open(case_dir[0]) as store:
        turns_with_points = sum(
            1
            for s in store.sessions.list()
            for t in store.turns.list(s.id or 0)
            if t.prediction.lat is not None and t.prediction.lon is not None
        )
        gj = write_export(store, tmp_path / "case.geojson")
        kml = write_export(store, tmp_path / "case.kml")
        kmz = write_export(store, tmp_path / "case.kmz")
        csv_out = write_export(store, tmp_path / "case.csv")
        with pytest.raises(DeliverableError, match="exists"):
            write_export(store, tmp_path / "case.csv")
        with pytest.raises(DeliverableError, match="--what"):
            write_export(store, tmp_path / "x.geojson", ["nonsense"])
    expected_points = 1 + 1 + turns_with_points  # EXIF point, current finding, turns
    info = pyogrio.read_info(gj.path)
    assert info["features"] == expected_points + 1  # + the finding's radius polygon
    layers = {name for name, _ in pyogrio.list_layers(kml.path)}
    assert layers
    kml_features = sum(pyogrio.read_info(kml.path, layer=name)["features"] for name in layers)
    assert kml_features == expected_points + 1
    with zipfile.ZipFile(kmz.path) as zf:
        assert zf.namelist() == ["doc.kml"]
    document = json.loads(gj.path.read_text(encoding="utf-8"))
    finding = next(
        f
        for f in document["features"]
        if f["properties"]["kind"] == "finding" and f["geometry"]["type"] == "Point"
    )
    assert finding["geometry"]["coordinates"] == [5.323, 60.392]  # lon, lat (RFC 7946)
    rows = list(csv.DictReader(io.StringIO(csv_out.path.read_text(encoding="utf-8"))))
    assert len(rows) == 2
    by_sha = {r["evidence_sha256"]: r for r in rows}
    assert by_sha[case_dir[1]]["finding_status"] == "confirmed"
    assert HOSTILE.replace("\r", "") in by_sha[case_dir[1]]["clues"]


def test_the_report_marks_a_turn_that_contradicts_an_accepted_clue(tmp_path: Path) -> None:
    """The turn table says which accepted clue a turn's answer contradicts; the clue's text stays text,
    and a flag whose clue was rejected is not shown."""
    from geodesk.domain import ModelIdentity, Prediction, Session, Turn
    from geodesk.services.clue_engine import record_turn_flags
    from tests.store.conftest import add_engine_clue, add_evidence

    ws = Workspace(tmp_path / "ws")
    with ws.open_case(ws.create_case("Flags")) as store:
        sha = add_evidence(store, b"\xff\xd8 sign " * 300, "sign.jpg").sha256
        session = store.sessions.add(
            Session(None, sha, SessionMode.DIRECT, ModelIdentity("tiny", "1", "0" * 64), "hf", {}, "1")
        )
        for i, (country, code) in enumerate((("Brazil", "BR"), ("Uzbekistan", "UZ"))):
            store.turns.add(Turn(None, session.id or 0, i, "Where?", "{}", Prediction(
                country=country, country_code=code, lat=-23.5 if code == "BR" else 41.3,
                lon=-46.6 if code == "BR" else 69.2, valid=True)))
        accepted = add_engine_clue(store, sha, text=HOSTILE, status="accepted")
        rejected = add_engine_clue(store, sha, text="rejected phone clue", status="rejected")
        flags = record_turn_flags(store, sha)
        assert {f.clue_id for f in flags} == {accepted.clue.id, rejected.clue.id}  # type: ignore[attr-defined]
        html, _ = report_html(store, ReportOptions())
    assert html.count("⚠ Contradicts 1 accepted clue(s):") == 1  # turn 1 (BR); turn 2 (UZ) agrees
    clue_id = accepted.clue.id  # type: ignore[attr-defined]
    assert f"against accepted clue {clue_id} (phone: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "rejected phone clue" not in html and 'class="flagged-turn"' in html
    parsed = _Markup()
    parsed.feed(html)
    assert "script" not in parsed.tags and not [k for k, _ in parsed.attrs if k.startswith("on")]
