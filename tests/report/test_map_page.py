"""The offline map page and the history rows, without Qt."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from geodesk.domain.model import (
    Candidate,
    Evidence,
    Finding,
    FindingStatus,
    GpsPoint,
    Hint,
    HintKind,
    Prediction,
    Region,
    Turn,
    TurnStatus,
)
from geodesk.report.history import describe_hint, history_rows, km_moved, point_distance_km, reference_point
from geodesk.report.map_page import (
    MapState,
    build_map_page,
    default_borders_path,
    map_state,
    state_document,
    state_json,
    write_map_page,
)

EVIL = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">{{ 7*7 }}\u2028'


def turn(index: int, lat: float | None, lon: float | None, **kw: object) -> Turn:
    prediction = Prediction(
        country=kw.pop("country", None),
        lat=lat,
        lon=lon,
        valid=lat is not None,  # type: ignore[arg-type]
        reasoning=kw.pop("reasoning", None),
        candidates=kw.pop("candidates", ()),
    )  # type: ignore[arg-type]
    return Turn(
        id=index,
        session_id=1,
        index=index,
        prompt="p",
        raw_answer="a",
        prediction=prediction,
        hints=kw.pop("hints", ()),
        status=kw.pop("status", TurnStatus.DONE),
    )  # type: ignore[arg-type]


def evidence(gps: GpsPoint | None) -> Evidence:
    return Evidence("a" * 64, "photo<b>.jpg", 10, "JPEG", 100, 80, datetime(2026, 1, 1, tzinfo=UTC), gps=gps)


def test_haversine_matches_a_known_distance() -> None:
    # Paris -> London, 343.5 km on a 6371 km sphere
    assert point_distance_km(GpsPoint(48.8566, 2.3522), GpsPoint(51.5074, -0.1278)) == pytest.approx(
        343.5, abs=0.5
    )
    half_way_round = point_distance_km(GpsPoint(0, 0), GpsPoint(0, 180))
    assert half_way_round == pytest.approx(6371 * 3.141592653589793, rel=1e-9)


def test_km_moved_skips_turns_without_a_point() -> None:
    turns = [turn(0, 0.0, 0.0), turn(1, None, None), turn(2, 0.0, 1.0)]
    moved = km_moved(turns)
    assert moved[0] is None and moved[1] is None
    assert moved[2] == pytest.approx(111.195, abs=0.01)  # one degree of longitude at the equator


def test_history_rows_measure_from_the_finding_before_the_exif_point() -> None:
    ev = evidence(GpsPoint(0.0, 2.0))
    turns = [turn(1, 0.0, 1.0, hints=(Hint(HintKind.QA, "script?", answer="Latin"),)), turn(0, 0.0, 0.0)]
    rows = history_rows(turns, ev)
    assert [r.turn_index for r in rows] == [0, 1]
    assert rows[0].km_from_reference == pytest.approx(222.39, abs=0.01)
    assert rows[1].hint == "+QA: script? → Latin"
    finding = Finding(None, ev.sha256, 0.0, 1.0, 5.0, FindingStatus.PROBABLE)
    assert reference_point(ev, finding).label == "finding"  # type: ignore[union-attr]
    assert history_rows(turns, ev, finding)[1].km_from_reference == pytest.approx(0.0)
    assert history_rows(turns)[0].km_from_reference is None


def test_every_hint_kind_has_a_description() -> None:
    for kind in HintKind:
        text = describe_hint(Hint(kind, "x", answer="y", region=Region(1, 2, 3, 4), clue_ids=(1, 2)))
        assert text and "x" in text


def test_map_state_keeps_turns_with_points_and_the_exif_point() -> None:
    state = map_state(
        [turn(0, 10.0, 20.0), turn(1, None, None), turn(2, 11.0, 21.0)], evidence(GpsPoint(1, 2))
    )
    assert [t.index for t in state.turns] == [0, 2]
    assert state.exif == GpsPoint(1, 2)
    assert "photo<b>.jpg" in state.exif_label  # plain text here; escaped in the document


def test_state_json_escapes_model_text_and_cannot_close_the_script() -> None:
    cand = Candidate(1.0, 2.0, 0.5, 30.0, city=EVIL)
    state = map_state([turn(0, 10.0, 20.0, reasoning=EVIL, country=EVIL, candidates=(cand,))], evidence(None))
    text = state_json(state)
    assert "<" not in text and ">" not in text and "&" not in text.replace("\\u0026", "")
    assert "\u2028" not in text and "{{" not in text
    doc = json.loads(text)
    label = doc["turns"][0]["label_html"]
    assert "<script" not in label and "&lt;script&gt;" in label and "&lt;img src=x" in label
    assert "&lt;" in doc["turns"][0]["candidates"][0]["label_html"]


def test_page_is_offline_and_model_text_stays_data(tmp_path: Path) -> None:
    state = map_state([turn(0, 10.0, 20.0, reasoning=EVIL)], evidence(GpsPoint(1, 2)))
    page = build_map_page(state, borders=None, basemap=None)
    # No resource is fetched from anywhere: outside the inlined scripts, no tag points at a host.
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)
    assert "<script>" in page and not re.findall(r"<(?:script|link|img)[^>]*(?:src|href)=", markup)
    assert "L.map(" in page or "L.map (" in page  # Leaflet is inlined
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    # branca re-renders element output as Jinja: the model's {{ 7*7 }} must arrive as text, not 49.
    init = re.findall(r"window\.geodesk\.init\([^\n]*", page)[0]
    assert "\\u007b{ 7*7 }}" in init and "\\u0026gt;49" not in init


def test_bundled_borders_are_used_when_present(tmp_path: Path) -> None:
    borders = default_borders_path()
    if borders is None:
        pytest.skip("resources/geo has no borders GeoJSON in this checkout")
    page = build_map_page(MapState(), basemap=None)
    assert '"FeatureCollection"' in page


def test_a_basemap_replaces_the_outlines_and_inlines_the_renderer(tmp_path: Path) -> None:
    tiles = tmp_path / "base.pmtiles"
    tiles.write_bytes(b"PMTiles")  # the page only names the file; the Qt test reads real tiles
    page = build_map_page(MapState(), basemap=tiles, view=(48.5, 7.7, 8))
    assert tiles.resolve().as_uri() in page and "var protomapsL=" in page
    assert "Natural Earth 1:10m (public domain)" in page and "protomaps-leaflet (BSD-3)" in page
    init = re.findall(r"window\.geodesk\.init\([^\n]*", page)[0]
    assert ', null, {"url":' in init  # no 1:110m outlines under a basemap
    assert init.rstrip().endswith("[48.5,7.7,8], []);")  # the view, then no tile sets
    # no renderer without a basemap: the page stays small
    assert "var protomapsL=" not in build_map_page(MapState(), basemap=None, borders=None)


def test_a_missing_basemap_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"build it with tools/build_basemap\.py"):
        build_map_page(MapState(), basemap=tmp_path / "none.pmtiles")


def test_bad_borders_and_tiles_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot be read as GeoJSON"):
        build_map_page(MapState(), borders=bad)
    with pytest.raises(ValueError, match="tile folder"):
        build_map_page(MapState(), borders=None, tiles_dir=tmp_path / "missing")


def test_local_tiles_are_file_urls(tmp_path: Path) -> None:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    page = build_map_page(MapState(), borders=None, tiles_dir=tiles)
    assert tiles.as_uri() + "/{z}/{x}/{y}.png" in page


def test_write_map_page_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "map.html"
    write_map_page(target, MapState(title="t"), borders=None)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["map.html"]


def test_finding_document_carries_radius_and_status() -> None:
    f = Finding(None, "a" * 64, 1.0, 2.0, 12.5, FindingStatus.CONFIRMED, reasoning="<b>sure</b>", version=3)
    doc = state_document(MapState(finding=f))
    assert doc["finding"]["radius_km"] == 12.5 and doc["finding"]["status"] == "confirmed"
    assert "&lt;b&gt;sure&lt;/b&gt;" in doc["finding"]["label_html"]


def test_a_turn_against_an_accepted_clue_is_marked_and_its_popup_names_the_clue() -> None:
    from geodesk.domain.model import ClueStatus
    from geodesk.store.turn_flags import TurnFlag

    def flag(turn_id: int, clue_id: int, status: ClueStatus) -> TurnFlag:
        return TurnFlag(clue_id, turn_id, clue_id, "country", f"BR is ruled out by clue {clue_id}: {EVIL}",
                        "2026-05-01T10:00:00+00:00", status, "phone", EVIL)

    flags = [flag(0, 7, ClueStatus.ACCEPTED), flag(1, 8, ClueStatus.REJECTED),
             flag(1, 9, ClueStatus.PROPOSED)]
    state = map_state([turn(0, 10.0, 20.0), turn(1, 11.0, 21.0)], evidence(None), flags=flags)
    expected = f"against accepted clue 7 (phone: {EVIL}): BR is ruled out by clue 7: {EVIL}"
    assert state.turns[0].flags == (expected,)
    assert state.turns[1].flags == ()  # a rejected or unreviewed clue flags nothing
    text = state_json(state)
    assert "<" not in text and ">" not in text  # the clue's text stays text
    doc = json.loads(text)
    first, second = doc["turns"]
    assert first["flagged"] and not second["flagged"] and second["flags_html"] == ""
    assert first["flags_html"].startswith("⚠ Contradicts 1 accepted clue(s):<br>• against accepted clue 7")
    assert "&lt;/script&gt;" in first["flags_html"] and "<script" not in first["flags_html"]
    page = build_map_page(state, borders=None, basemap=None)
    assert "gd-flagged" in page and "turn against an accepted clue" in page
