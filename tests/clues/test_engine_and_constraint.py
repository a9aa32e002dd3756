"""Findings from text and metadata, and their combination into leading countries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from geodesk.clues.constraint import Labelled, combine, constraint_document, contradictions
from geodesk.clues.engine import metadata_findings, sun_finding, text_findings
from geodesk.clues.model import Finding, TextLine
from geodesk.domain.model import ClueSource, Evidence, GpsPoint, Place, Region
from geodesk.geo import default_gazetteer


def _lines(*texts: str) -> list[TextLine]:
    return [TextLine(t, Region(0, 40 * i, 300, 40 * i + 30), 0.95) for i, t in enumerate(texts)]


def test_text_findings_read_script_language_phone_domain_place() -> None:
    found = text_findings(
        _lines("Bergen 12 km", "Velkommen til byen vår", "+47 55 12 34 56", "www.bergen.no"),
        default_gazetteer(),
    )
    by = {f.category: f for f in found}
    assert {"text", "script", "phone", "domain", "place"} <= set(by)
    assert by["phone"].countries == {"NO": 1.0} and "+47" in by["phone"].text
    assert by["domain"].countries == {"NO": 1.0}
    place = by["place"]
    assert place.countries["NO"] == 1.0 and place.area is not None and place.area["type"] == "MultiPoint"
    assert place.region == Region(0, 0, 300, 30)


def test_no_language_clue_for_codes_and_numbers() -> None:
    found = text_findings(_lines("XJ-4471 KB", "12 34 56"), default_gazetteer())
    assert not [f for f in found if f.category == "language"]


def _evidence(taken_at: str, country: str | None) -> Evidence:
    place = None if country is None else Place(country, None, None, None, 1.0)
    return Evidence(
        "a" * 64, "x.jpg", 1, "JPEG", 10, 10, datetime(2024, 1, 1, tzinfo=UTC), taken_at=taken_at, place=place
    )


def test_timezone_finding_and_gps_warning() -> None:
    agree = metadata_findings(_evidence("2024-01-15T12:00:00+05:30", "IN"))
    assert set(agree.findings[0].countries) == {"IN", "LK"} and agree.findings[0].others == 0.0
    assert agree.warnings == []
    disagree = metadata_findings(_evidence("2024-01-15T12:00:00+05:30", "DE"))
    assert any("DE" in w for w in disagree.warnings)
    assert metadata_findings(_evidence("2024-01-15T12:00:00", None)).findings == []


def _at(taken_at: str, lat: float, lon: float) -> Evidence:
    place = default_gazetteer().reverse(lat, lon)
    return Evidence(
        "b" * 64,
        "y.jpg",
        1,
        "JPEG",
        10,
        10,
        datetime(2024, 1, 1, tzinfo=UTC),
        gps=GpsPoint(lat, lon),
        taken_at=taken_at,
        place=place,
    )


def test_the_gps_points_own_zone_judges_the_offset() -> None:
    # El Paso keeps Mountain time (America/Denver, UTC-07:00 in January). UTC-06:00 is used elsewhere
    # in the United States, so the country alone accepts it; the point's own zone does not.
    central = metadata_findings(_at("2024-01-15T12:00:00-06:00", 31.7587, -106.4869))
    assert central.findings[0].details["gps_zone"] == "America/Denver"
    assert any("America/Denver" in w for w in central.warnings)
    assert metadata_findings(_at("2024-01-15T12:00:00-07:00", 31.7587, -106.4869)).warnings == []
    # across the Rio Grande, Ciudad Juárez has its own zone: it kept US summer time when the rest of
    # Mexico dropped it in 2022, so UTC-06:00 in July
    juarez = metadata_findings(_at("2024-07-15T12:00:00-06:00", 31.72024, -106.46084))
    assert juarez.findings[0].details["gps_zone"] == "America/Ciudad_Juarez" and juarez.warnings == []
    assert metadata_findings(_at("2024-07-15T12:00:00-07:00", 31.72024, -106.46084)).warnings
    # at sea (a nautical Etc zone) the country check stays: no country, no warning
    sea = metadata_findings(_at("2024-01-15T12:00:00+01:00", 30.0, -40.0))
    assert sea.findings[0].details["gps_zone"] is None and sea.warnings == []


def _labelled(*findings: Finding) -> list[Labelled]:
    return [Labelled(i + 1, f.category, f.text, f) for i, f in enumerate(findings)]


NAMES = {"UZ": "Uzbekistan", "RU": "Russia", "KZ": "Kazakhstan", "DE": "Germany", "BR": "Brazil"}


def test_leading_countries_with_their_reasons() -> None:
    script = Finding(
        "script",
        "script is Cyrillic",
        ClueSource.OCR,
        0.9,
        countries={"RU": 1.0, "KZ": 0.8, "UZ": 0.3},
        others=0.02,
    )
    phone = Finding(
        "phone",
        "+998 phone prefix: +998 71 123 45 67",
        ClueSource.OCR,
        0.9,
        countries={"UZ": 1.0},
        others=0.03,
    )
    verdicts = combine(_labelled(script, phone), NAMES)
    assert verdicts[0].code == "UZ"
    assert verdicts[0].reason == "supported by: +998 phone prefix: +998 71 123 45 67"
    germany = next(v for v in verdicts if v.code == "DE")
    assert germany.status == "ruled_out" and germany.reason == "ruled out by: script is Cyrillic"
    assert sum(v.share for v in verdicts) == pytest.approx(1.0)
    document = constraint_document(
        _labelled(script, phone), NAMES, {"UZ": {"type": "Point", "coordinates": [69, 41]}}
    )
    assert document["leading"][0]["country_code"] == "UZ"
    layers = [f["properties"]["layer"] for f in document["geojson"]["features"]]
    assert layers.count("country") == len(NAMES)
    assert "DE" in document["ruled_out"]


def test_disagreeing_clues_make_a_country_contested() -> None:
    phone = Finding("phone", "+998 phone prefix", ClueSource.OCR, 0.9, countries={"UZ": 1.0}, others=0.03)
    script = Finding("script", "script is Arabic", ClueSource.OCR, 0.5, countries={"EG": 1.0}, others=0.02)
    uz = next(v for v in combine(_labelled(phone, script), NAMES) if v.code == "UZ")
    assert uz.status == "contested"
    assert uz.reason == "supported by: +998 phone prefix; against: script is Arabic"


def test_no_clues_no_leading_countries() -> None:
    assert constraint_document([], NAMES)["leading"] == []


def test_sun_band_finding_and_contradiction() -> None:
    borders = default_gazetteer().borders
    when = datetime(2024, 6, 21, 12, 0, tzinfo=UTC)
    finding = sun_finding(when, 1.5, borders, object_box=Region(10, 10, 20, 60), shadow_tip=(40.0, 60.0))
    assert finding.area is not None and finding.others == 0.0
    # 56° at noon UTC: the circle 34° around the subsolar point (23.4 N, 0.5 E).
    assert "GB" in finding.countries and "AO" in finding.countries
    assert "AU" not in finding.countries
    flags = contradictions("AU", (-33.9, 151.2), _labelled(finding))
    assert len(flags) == 2 and "ruled out" in flags[0] and "sun band" in flags[1]
    assert contradictions(None, None, _labelled(finding)) == []
