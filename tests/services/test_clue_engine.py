"""Clue engine use cases on a real case: run (one item, a region, a batch with a broken file), storage
with provenance, review, the combined constraint, the sun clue and the accepted clues as a hint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from geodesk.domain.model import ClueStatus, HintKind, Region, SessionMode
from geodesk.evidence.pipeline import ImportOptions
from geodesk.services.clue_engine import (
    ClueEngineError,
    accepted_clues_hint,
    add_sun_clue,
    constraint_for,
    engine_clues,
    run_engine,
    run_engine_batch,
    send_accepted_clues,
    turn_flags,
)
from geodesk.services.importing import import_into
from geodesk.services.sessions import locate, set_clue_status
from geodesk.store.case_store import CaseStore
from geodesk.store.workspace import Workspace
from tests.clues.conftest import sign_photo
from tests.scripted import ScriptedAnswers

ANSWER_BR = json.dumps(
    {"country": "Brazil", "region": "São Paulo", "city": "São Paulo", "lat": -23.55, "lon": -46.63}
)
ANSWER_UZ = json.dumps(
    {"country": "Uzbekistan", "region": "Tashkent", "city": "Tashkent", "lat": 41.31, "lon": 69.28}
)


@pytest.fixture
def case(tmp_path: Path) -> Iterator[tuple[CaseStore, str]]:
    photo = sign_photo(tmp_path / "sign.jpg")
    ws = Workspace(tmp_path / "ws")
    store = ws.open_case(ws.create_case("Sign photo"))
    report = import_into(store, [photo], options=ImportOptions(workers=0), locate=None)
    assert not report.errors
    yield store, report.imported[0].sha256
    store.close()


def test_run_stores_clues_with_provenance_and_is_idempotent(case: tuple[CaseStore, str]) -> None:
    store, sha = case
    run = run_engine(store, sha, ocr="rapidocr")
    assert run.ok, run.messages
    categories = {c.clue.category for c in run.added}
    assert {"timezone", "text", "phone", "domain", "place", "script"} <= categories
    phone = next(c for c in run.added if c.clue.category == "phone")
    assert phone.countries == {"UZ": 1.0} and phone.clue.source.value == "ocr"
    assert phone.clue.region is not None and phone.clue.status is ClueStatus.PROPOSED
    assert phone.provenance["ocr"]["engine"] == "rapidocr" and phone.provenance["ocr"]["models"]
    assert phone.engine_version == "1"
    # Stored beside the clue table, read back the same; the audit chain records it.
    again = engine_clues(store, sha)
    assert [c.clue.id for c in again] == [c.clue.id for c in run.added]
    assert store.audit.verify() == []
    rerun = run_engine(store, sha, ocr="rapidocr")
    assert rerun.added == [] and rerun.skipped == len(run.added)


def test_region_run_reads_only_that_region(case: tuple[CaseStore, str]) -> None:
    store, sha = case
    run = run_engine(store, sha, ocr="rapidocr", region=Region(100, 280, 760, 400))
    assert {c.clue.category for c in run.added} == {"text", "domain", "script"}


def test_batch_survives_a_broken_image(case: tuple[CaseStore, str], tmp_path: Path) -> None:
    store, sha = case
    second = sign_photo(tmp_path / "second.jpg", ("Samarkand 5 km",))
    broken = import_into(store, [second], options=ImportOptions(workers=0), locate=None).imported[0].sha256
    # An original that no longer decodes (a disk fault): the batch reports it and goes on.
    victim = store.evidence_file(broken)
    victim.chmod(0o644)
    victim.write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    runs = run_engine_batch(store, ocr="rapidocr")
    assert len(runs) == 2
    bad = next(r for r in runs if r.evidence == broken)
    assert not bad.ok and "cannot be decoded" in bad.messages[-1]
    assert any(c.clue.category == "timezone" for c in bad.added)  # its metadata is still read
    assert next(r for r in runs if r.evidence == sha).ok


def test_constraint_counts_only_accepted_clues(case: tuple[CaseStore, str]) -> None:
    store, sha = case
    run = run_engine(store, sha, ocr="rapidocr")
    assert constraint_for(store, sha)["leading"] == []
    for c in run.added:
        if c.clue.category in ("phone", "timezone") and c.clue.id is not None:
            set_clue_status(store, c.clue.id, ClueStatus.ACCEPTED)
    document = constraint_for(store, sha, geometry=False)
    assert document["leading"][0]["country_code"] == "UZ"
    assert document["leading"][0]["reason"].startswith("supported by: +998 phone prefix")
    brazil = next(f for f in document["geojson"]["features"] if f["properties"].get("country_code") == "BR")
    assert brazil["properties"]["status"] == "ruled_out"
    with_proposed = constraint_for(store, sha, include_proposed=True)
    assert len(with_proposed["clues"]) > len(document["clues"])


def test_sun_clue_from_marks_and_its_errors(case: tuple[CaseStore, str]) -> None:
    store, sha = case
    clue = add_sun_clue(store, sha, object_box=Region(400, 100, 420, 300), shadow_tip=(550.0, 300.0))
    assert clue.clue.category == "sun" and clue.area is not None
    assert clue.details["utc"].startswith("2024-01-15T07:30")  # 12:30 at +05:00
    # 57° at 07:30 UTC in January: only south of the Tropic of Cancer, never in Uzbekistan's winter.
    assert clue.countries and "UZ" not in clue.countries and "AU" in clue.countries
    with pytest.raises(ClueEngineError, match="shadow tip"):
        add_sun_clue(store, sha, object_box=Region(400, 100, 420, 300), shadow_tip=(410.0, 300.0))
    with pytest.raises(ClueEngineError, match="UTC offset"):
        add_sun_clue(store, sha, ratio=1.0, when=datetime(2024, 1, 1, 12, 0))
    noon = add_sun_clue(store, sha, ratio=1.0, when=datetime(2024, 3, 20, 12, 0, tzinfo=UTC))
    assert noon.details["elevation_deg"] == pytest.approx(45.0)


def test_accepted_clues_go_to_the_model_as_a_qa_hint(case: tuple[CaseStore, str]) -> None:
    store, sha = case
    run = run_engine(store, sha, ocr="rapidocr")
    backend = ScriptedAnswers([ANSWER_BR, ANSWER_BR])
    first = locate(store, sha, backend, SessionMode.DIRECT)
    session_id = first.session.id
    assert session_id is not None
    with pytest.raises(ClueEngineError, match="accept"):
        accepted_clues_hint(store, session_id)
    for c in run.added:
        if c.clue.category in ("text", "phone") and c.clue.id is not None:
            set_clue_status(store, c.clue.id, ClueStatus.ACCEPTED)
    hint = accepted_clues_hint(store, session_id)
    assert hint.kind is HintKind.QA
    assert hint.answer is not None and "A sign in the photo reads" in hint.answer and "+998" in hint.answer
    sent = send_accepted_clues(store, session_id, backend)
    assert sent.outcome.turn.index == 1
    assert "+998" in backend.calls[-1][-1].text
    assert sent.flags and "BR is ruled out" in sent.flags[0]
    flags = turn_flags(store, session_id)
    assert [bool(t["flags"]) for t in flags] == [True, True]


def test_a_matching_prediction_is_not_flagged(case: tuple[CaseStore, str]) -> None:
    store, sha = case
    run = run_engine(store, sha, ocr="rapidocr")
    for c in run.added:
        if c.clue.category == "phone" and c.clue.id is not None:
            set_clue_status(store, c.clue.id, ClueStatus.ACCEPTED)
    backend = ScriptedAnswers([ANSWER_UZ, ANSWER_UZ])
    first = locate(store, sha, backend, SessionMode.DIRECT)
    assert first.session.id is not None
    assert send_accepted_clues(store, first.session.id, backend).flags == []


def test_unknown_engine_is_refused(case: tuple[CaseStore, str]) -> None:
    store, sha = case
    with pytest.raises(ClueEngineError, match="choose one of"):
        run_engine(store, sha, ocr="paddle")


def test_flags_are_recorded_for_earlier_turns_and_count_once_the_clue_is_accepted(
    case: tuple[CaseStore, str],
) -> None:
    from geodesk.services.clue_engine import record_turn_flags
    from tests.store.conftest import add_engine_clue

    store, sha = case
    first = locate(store, sha, ScriptedAnswers([ANSWER_BR]), SessionMode.DIRECT)
    assert first.session.id is not None
    clue = add_engine_clue(store, sha)  # +998: Uzbekistan, every other country ruled out
    added = record_turn_flags(store, sha)
    assert [(f.turn_id, f.kind) for f in added] == [(first.turn.id, "country")]
    assert record_turn_flags(store, sha) == []  # a pair is checked once
    # Proposed: recorded, but it does not flag the turn yet; accepted: it does, with no new check.
    assert turn_flags(store, first.session.id) == [
        {"turn": 1, "turn_id": first.turn.id, "country_code": "BR", "flags": [], "flag_ids": []}
    ]
    set_clue_status(store, clue.clue.id, ClueStatus.ACCEPTED)  # type: ignore[attr-defined]
    [turn] = turn_flags(store, first.session.id)
    assert turn["turn"] == 1 and turn["flags"] == [added[0].text] and "BR is ruled out" in added[0].text
    set_clue_status(store, clue.clue.id, ClueStatus.REJECTED)  # type: ignore[attr-defined]
    assert turn_flags(store, first.session.id)[0]["flags"] == []
    assert store.audit.verify() == []
