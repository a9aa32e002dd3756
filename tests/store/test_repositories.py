"""Round trips: domain object -> row -> domain object, equal, for every repository (Hypothesis)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geodesk.domain import (
    Candidate,
    Clue,
    ClueSource,
    ClueStatus,
    Evidence,
    Finding,
    FindingStatus,
    GpsPoint,
    Hint,
    HintKind,
    ModelIdentity,
    Place,
    Prediction,
    Region,
    Session,
    SessionMode,
    Turn,
    TurnStatus,
)
from geodesk.store import AlreadyExistsError, CaseStore, Workspace

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(max_size=40)
opt_texts = st.none() | texts
finite = st.floats(allow_nan=False, allow_infinity=False)
latitudes = st.floats(-90, 90)
longitudes = st.floats(-180, 180)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.none() | st.just(UTC)
)
shas = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(texts, json_values, max_size=5)


@st.composite
def regions(draw: st.DrawFn) -> Region:
    x0 = draw(st.integers(0, 10_000))
    y0 = draw(st.integers(0, 10_000))
    return Region(x0, y0, x0 + draw(st.integers(1, 10_000)), y0 + draw(st.integers(1, 10_000)))


places = st.builds(Place, opt_texts, opt_texts, opt_texts, opt_texts, st.none() | finite)
gps_points = st.builds(GpsPoint, latitudes, longitudes, st.none() | finite)


@st.composite
def evidences(draw: st.DrawFn) -> Evidence:
    return Evidence(
        sha256=draw(shas),
        original_name=draw(texts),
        size_bytes=draw(st.integers(0, 2**62)),
        format=draw(texts),
        width=draw(st.integers(0, 2**31)),
        height=draw(st.integers(0, 2**31)),
        imported_at=draw(moments),
        source_path=draw(opt_texts),
        gps=draw(st.none() | gps_points),
        taken_at=draw(opt_texts),
        camera=draw(opt_texts),
        orientation=draw(st.integers(1, 8)),
        place=draw(st.none() | places),
        metadata=draw(json_objects),
    )


candidates = st.builds(Candidate, finite, finite, finite, finite, opt_texts, opt_texts, opt_texts)
predictions = st.builds(
    Prediction,
    country=opt_texts,
    country_code=opt_texts,
    region=opt_texts,
    city=opt_texts,
    lat=st.none() | finite,
    lon=st.none() | finite,
    valid=st.booleans(),
    problems=st.lists(texts, max_size=3).map(tuple),
    clues=st.lists(st.tuples(texts, texts), max_size=3).map(tuple),
    reasoning=opt_texts,
    candidates=st.lists(candidates, max_size=3).map(tuple),
)
hints = st.builds(
    Hint,
    kind=st.sampled_from(HintKind),
    text=texts,
    answer=opt_texts,
    region=st.none() | regions(),
    clue_ids=st.lists(st.integers(1, 2**40), max_size=3).map(tuple),
)


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaseStore]:
    ws = Workspace(tmp_path_factory.mktemp("repos"))
    with ws.open_case(ws.create_case("Round trips")) as store:
        yield store


_names = itertools.count()


def _some_evidence(store: CaseStore) -> Evidence:
    """A fresh evidence row (unique SHA-256) to hang clues, sessions and findings on."""
    import hashlib

    sha = hashlib.sha256(f"evidence {next(_names)}".encode()).hexdigest()
    e = Evidence(sha, "x.jpg", 1, "JPEG", 1, 1, datetime(2026, 1, 1, tzinfo=UTC))
    store.evidence.add(e)
    return e


def _session(store: CaseStore, **overrides: Any) -> Session:
    fields: dict[str, Any] = {
        "id": None,
        "evidence_sha256": _some_evidence(store).sha256,
        "mode": SessionMode.DIRECT,
        "model": ModelIdentity("tiny", "0.1", "f" * 64, None),
        "backend": "hf",
        "decoding": {},
        "protocol_version": "1",
    }
    fields.update(overrides)
    return store.sessions.add(Session(**fields))


# ----------------------------------------------------------------------------------------- evidence


@SETTINGS
@given(e=evidences())
def test_evidence_round_trip(module_store: CaseStore, e: Evidence) -> None:
    assume(not module_store.evidence.exists(e.sha256))
    module_store.evidence.add(e)
    assert module_store.evidence.get(e.sha256) == e
    assert e in module_store.evidence.list()


def test_evidence_prefix_lookup_and_errors(store: CaseStore) -> None:
    a = _evidence_with("ab12" + "0" * 60)
    b = _evidence_with("ab12" + "1" * 60)
    store.evidence.add(a)
    store.evidence.add(b)
    assert store.evidence.get("ab120").sha256 == a.sha256
    assert store.evidence.get("AB121").sha256 == b.sha256
    assert store.evidence.count() == 2
    with pytest.raises(LookupError, match="matches several evidence items"):
        store.evidence.get("ab12")
    with pytest.raises(LookupError, match="at least 4 hex digits"):
        store.evidence.get("ab")
    with pytest.raises(LookupError, match="at least 4 hex digits"):
        store.evidence.get("zzzz")
    with pytest.raises(LookupError, match="no evidence in this case"):
        store.evidence.get("ffff")
    with pytest.raises(AlreadyExistsError, match="already in this case"):
        store.evidence.add(a)


def _evidence_with(sha: str, **kw: Any) -> Evidence:
    return Evidence(sha, "n.jpg", 3, "JPEG", 2, 2, datetime(2026, 1, 1, tzinfo=UTC), **kw)


def test_values_sqlite_would_mangle_are_refused(store: CaseStore) -> None:
    with pytest.raises(ValueError, match="finite"):
        store.evidence.add(_evidence_with("1" * 64, gps=GpsPoint(1.0, 2.0, float("nan"))))
    with pytest.raises(ValueError, match="not finite"):
        store.evidence.add(_evidence_with("2" * 64, metadata={"x": float("inf")}))
    with pytest.raises(ValueError, match="plain JSON data"):
        store.evidence.add(_evidence_with("3" * 64, metadata={"x": b"bytes"}))
    with pytest.raises(ValueError, match="SHA-256"):
        store.evidence.add(_evidence_with("ABC"))
    assert store.evidence.count() == 0


def test_evidence_path_is_content_addressed(store: CaseStore) -> None:
    sha = "ab" + "c" * 62
    path = store.evidence_path(sha, "JPG")
    assert path == store.evidence_dir / "ab" / f"{sha}.jpg"
    assert path.parent.is_dir()
    assert store.evidence_path(sha, "") == store.evidence_dir / "ab" / sha
    with pytest.raises(ValueError, match="file extension"):
        store.evidence_path(sha, "../x")
    with pytest.raises(ValueError, match="SHA-256"):
        store.evidence_path("../../etc", ".jpg")


# -------------------------------------------------------------------------------------------- clues


@SETTINGS
@given(
    category=texts,
    text=texts,
    source=st.sampled_from(ClueSource),
    status=st.sampled_from(ClueStatus),
    region=st.none() | regions(),
    created=st.none() | moments,
)
def test_clue_round_trip(
    module_store: CaseStore,
    category: str,
    text: str,
    source: ClueSource,
    status: ClueStatus,
    region: Region | None,
    created: datetime | None,
) -> None:
    e = _some_evidence(module_store)
    clue = Clue(None, e.sha256, category, text, source, status, region, None, created)
    stored = module_store.clues.add(clue)
    assert stored.id is not None
    assert stored == replace(clue, id=stored.id, created_at=stored.created_at, updated_at=stored.updated_at)
    assert module_store.clues.get(stored.id) == stored
    assert module_store.clues.list(evidence_sha256=e.sha256) == [stored]


def test_clue_status_update_and_filters(store: CaseStore) -> None:
    session = _session(store)
    turn = store.turns.add(Turn(None, session.id or 0, 0, "p", "a", Prediction()))
    clue = store.clues.add(
        Clue(None, session.evidence_sha256, "signage", "Cyrillic", ClueSource.MODEL, turn_id=turn.id)
    )
    edited = store.clues.update_status(clue.id or 0, ClueStatus.EDITED, text="Latin script")
    assert (edited.status, edited.text) == (ClueStatus.EDITED, "Latin script")
    assert store.clues.get(clue.id or 0) == edited
    assert store.clues.list(turn_id=turn.id) == [edited]
    assert store.clues.list(turn_id=(turn.id or 0) + 1) == []
    last = store.audit.entries()[-1]
    assert (last.action, last.details["old_text"], last.details["text"]) == (
        "clue.status",
        "Cyrillic",
        "Latin script",
    )
    with pytest.raises(LookupError, match="no clue 999"):
        store.clues.update_status(999, ClueStatus.ACCEPTED)
    with pytest.raises(LookupError, match="import it first"):
        store.clues.add(Clue(None, "e" * 64, "c", "t", ClueSource.ANALYST))
    with pytest.raises(ValueError):
        store.clues.update_status(clue.id or 0, "maybe")


# ----------------------------------------------------------------------------------------- sessions


@SETTINGS
@given(
    mode=st.sampled_from(SessionMode),
    model=st.builds(ModelIdentity, texts, texts, texts, opt_texts),
    backend=texts,
    decoding=json_objects,
    protocol=texts,
    created=st.none() | moments,
)
def test_session_round_trip(
    module_store: CaseStore,
    mode: SessionMode,
    model: ModelIdentity,
    backend: str,
    decoding: dict[str, Any],
    protocol: str,
    created: datetime | None,
) -> None:
    e = _some_evidence(module_store)
    session = Session(None, e.sha256, mode, model, backend, decoding, protocol, created)
    stored = module_store.sessions.add(session)
    assert stored == replace(session, id=stored.id, created_at=stored.created_at)
    assert module_store.sessions.get(stored.id or 0) == stored
    assert module_store.sessions.list(evidence_sha256=e.sha256) == [stored]


def test_replay_session_links_to_its_source(store: CaseStore) -> None:
    source = _session(store)
    replay = _session(store, evidence_sha256=source.evidence_sha256, replay_of=source.id)
    assert store.sessions.get(replay.id or 0).replay_of == source.id
    assert [s.id for s in store.sessions.list(source.evidence_sha256)] == [source.id, replay.id]
    with pytest.raises(LookupError, match="no session 12345"):
        _session(store, replay_of=12345)


# -------------------------------------------------------------------------------------------- turns


@SETTINGS
@given(
    prompt=texts,
    raw=texts,
    prediction=predictions,
    hint_list=st.lists(hints, max_size=3),
    status=st.sampled_from(TurnStatus),
    tokens=st.none() | st.integers(0, 2**40),
    timing=st.none() | finite,
    error=opt_texts,
)
def test_turn_round_trip(
    module_store: CaseStore,
    prompt: str,
    raw: str,
    prediction: Prediction,
    hint_list: list[Hint],
    status: TurnStatus,
    tokens: int | None,
    timing: float | None,
    error: str | None,
) -> None:
    session = _session(module_store)
    turn = Turn(
        None,
        session.id or 0,
        0,
        prompt,
        raw,
        prediction,
        tuple(hint_list),
        status,
        "proto-1",
        tokens,
        tokens,
        timing,
        timing,
        error,
    )
    stored = module_store.turns.add(turn)
    assert [h.id for h in stored.hints] == sorted(h.id for h in stored.hints if h.id is not None)
    assert stored == replace(turn, id=stored.id, hints=stored.hints, created_at=stored.created_at)
    assert [replace(h, id=None) for h in stored.hints] == hint_list
    assert module_store.turns.get(stored.id or 0) == stored
    assert module_store.turns.list(session.id or 0) == [stored]


def test_turn_update_and_ordering(store: CaseStore) -> None:
    session = _session(store)
    sid = session.id or 0
    second = store.turns.add(
        Turn(
            None,
            sid,
            1,
            "hint prompt",
            "",
            Prediction(),
            (Hint(HintKind.QUESTION, "coast?"),),
            TurnStatus.RUNNING,
        )
    )
    first = store.turns.add(Turn(None, sid, 0, "first", "answer", Prediction(country="France", valid=True)))
    assert [t.index for t in store.turns.list(sid)] == [0, 1]
    done = replace(
        second,
        raw_answer='{"lat": 43.3, "lon": 5.4}',
        prediction=Prediction(lat=43.3, lon=5.4, valid=True),
        status=TurnStatus.DONE,
        total_time_s=1.5,
    )
    assert store.turns.update(done) == done
    assert store.turns.get(second.id or 0) == done
    assert store.turns.list(sid) == [first, done]
    with pytest.raises(ValueError, match="hints cannot change"):
        store.turns.update(replace(done, hints=(Hint(HintKind.PRIOR, "Spain"),)))
    with pytest.raises(AlreadyExistsError, match="already has a turn with index 0"):
        store.turns.add(Turn(None, sid, 0, "again", "", Prediction()))
    with pytest.raises(LookupError, match="no session 999"):
        store.turns.add(Turn(None, 999, 0, "p", "", Prediction()))
    with pytest.raises(ValueError, match="add it first"):
        store.turns.update(replace(done, id=None))
    with pytest.raises(ValueError, match="finite"):
        store.turns.update(replace(done, prediction=Prediction(lat=float("nan"))))
    assert store.turns.get(second.id or 0) == done


# ----------------------------------------------------------------------------------------- findings


@SETTINGS
@given(
    versions=st.lists(
        st.tuples(latitudes, longitudes, st.floats(0, 1e300), st.sampled_from(FindingStatus), texts),
        min_size=1,
        max_size=3,
    )
)
def test_finding_versions_round_trip(
    module_store: CaseStore, versions: list[tuple[float, float, float, FindingStatus, str]]
) -> None:
    e = _some_evidence(module_store)
    saved = []
    for lat, lon, radius, status, reasoning in versions:
        finding = Finding(None, e.sha256, lat, lon, radius, status, reasoning)
        stored = module_store.findings.save(finding)
        assert stored == replace(finding, id=stored.id, version=len(saved) + 1, created_at=stored.created_at)
        saved.append(stored)
    assert module_store.findings.history(e.sha256) == saved
    assert module_store.findings.current(e.sha256) == saved[-1]


def test_findings_keep_history(store: CaseStore) -> None:
    e = _some_evidence(store)
    assert store.findings.current(e.sha256) is None
    store.findings.save(Finding(None, e.sha256, 1.0, 2.0, 5.0, FindingStatus.UNVERIFIED))
    store.findings.save(Finding(None, e.sha256, 1.5, 2.5, 1.0, FindingStatus.PROBABLE, "church tower"))
    assert [f.version for f in store.findings.history(e.sha256)] == [1, 2]
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError, match="keep their history"):
        store.db.execute("UPDATE findings SET lat = 0")
    with pytest.raises(sqlite3.IntegrityError, match="keep their history"):
        store.db.execute("DELETE FROM findings")


def test_everything_survives_reopening(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    case = ws.create_case("Persist")
    with ws.open_case(case.id) as store:
        session = _session(store)
        turn = store.turns.add(
            Turn(None, session.id or 0, 0, "p", "r", Prediction(candidates=(Candidate(1.0, 2.0, 0.5, 3.0),)))
        )
        clue = store.clues.add(Clue(None, session.evidence_sha256, "vegetation", "palms", ClueSource.MODEL))
        finding = store.findings.save(
            Finding(None, session.evidence_sha256, 10.0, 20.0, 2.0, FindingStatus.CONFIRMED)
        )
        entries = store.audit.entries()
    with ws.open_case(case.id) as store:
        assert store.sessions.get(session.id or 0) == session
        assert store.turns.get(turn.id or 0) == turn
        assert store.clues.get(clue.id or 0) == clue
        assert store.findings.current(session.evidence_sha256) == finding
        assert store.audit.entries() == entries
        assert store.audit.verify() == []


def test_located_is_one_rule_for_the_grid_and_the_batch(tmp_path: Path) -> None:
    """Located: a session with a finished turn; the batch's variant also filters by model and mode."""
    from geodesk.domain.model import ModelIdentity, Prediction, Session, SessionMode, Turn, TurnStatus
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into
    from geodesk.store import Workspace
    from tests.evidence.fixtures import pattern, write_jpeg

    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Located")
    photos = [write_jpeg(tmp_path / f"p{i}.jpg", pattern(64 + i, 48)) for i in range(3)]
    with ws.open_case(case.id) as store:
        import_into(store, photos, options=ImportOptions(workers=0))
        a, b, c = (e.sha256 for e in store.evidence.list())
        model = ModelIdentity("m", "1", "f" * 64)
        other = ModelIdentity("n", "1", "e" * 64)

        def session(sha: str, identity: ModelIdentity, statuses: list[TurnStatus]) -> None:
            s = store.sessions.add(Session(None, sha, SessionMode.DIRECT, identity, "hf", {}, "t"))
            assert s.id is not None
            for i, status in enumerate(statuses):
                store.turns.add(Turn(None, s.id, i, "p", "a", Prediction(), status=status))

        session(a, model, [TurnStatus.DONE])
        session(b, model, [TurnStatus.FAILED, TurnStatus.DONE])  # the hint turn finished: located
        session(c, other, [TurnStatus.FAILED])  # nothing finished: not located
        assert store.evidence.located() == {a, b}
        assert store.evidence.located(model.sha256, SessionMode.DIRECT) == {a, b}
        assert store.evidence.located(other.sha256) == set()
        assert store.evidence.located(model.sha256, SessionMode.CLUES) == set()
