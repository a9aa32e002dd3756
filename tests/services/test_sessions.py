"""Sessions on the real tiny model: locate, hint, history, cancel, candidates, replay."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from geodesk.domain.model import (
    ClueStatus,
    Hint,
    HintKind,
    Prediction,
    Region,
    SessionMode,
    TurnStatus,
)
from geodesk.engine.backends.base import BackendError, GenerationSettings
from geodesk.engine.backends.hf import HFBackend
from geodesk.evidence.pipeline import ImportOptions
from geodesk.services.candidates import cluster_candidates
from geodesk.services.importing import import_into
from geodesk.services.sessions import (
    SessionError,
    TurnOptions,
    add_hints,
    clue_verdict_hint,
    locate,
    replay_session,
    session_document,
    set_clue_status,
)
from geodesk.store.case_store import CaseStore
from geodesk.store.workspace import Workspace

SHORT = GenerationSettings(max_new_tokens=12)


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> Iterator[HFBackend]:
    b = HFBackend(tiny_model_dir)
    yield b
    b.close()


@pytest.fixture
def case(tmp_path: Path) -> Iterator[tuple[CaseStore, str]]:
    image = tmp_path / "street.png"
    Image.new("RGB", (80, 60), (120, 160, 90)).save(image)
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Harbour photo")
    store = ws.open_case(case)
    report = import_into(store, [image], options=ImportOptions(workers=0), locate=None)
    assert not report.errors
    yield store, report.imported[0].sha256
    store.close()


def test_locate_then_hint_stores_both_turns_with_the_hint(
    backend: HFBackend, case: tuple[CaseStore, str]
) -> None:
    store, sha = case
    first = locate(store, sha[:8], backend, SessionMode.DIRECT, TurnOptions(settings=SHORT))
    assert first.turn.status is TurnStatus.DONE
    assert first.turn.index == 0
    assert first.turn.prompt.startswith("<image>\n")
    assert first.turn.answer_tokens and first.turn.answer_tokens <= 12
    assert first.session.model == backend.identity

    hint = Hint(kind=HintKind.QA, text="Which side of the road do cars drive on?", answer="the left")
    second = add_hints(store, first.session.id or 0, [hint], backend, TurnOptions(settings=SHORT))
    assert second.turn.index == 1
    turns = store.turns.list(first.session.id or 0)
    assert [t.index for t in turns] == [0, 1]
    assert turns[1].hints[0].kind is HintKind.QA
    assert turns[1].hints[0].answer == "the left"
    assert "the left" in turns[1].prompt
    assert turns[1].protocol_version == first.turn.protocol_version
    # The second turn ran with the first exchange as history: its prompt is longer than the new text alone.
    assert second.result is not None and second.result.prompt_tokens > first.result.prompt_tokens  # type: ignore[union-attr]

    document = session_document(store, first.session.id or 0)
    assert [t["turn"] for t in document["turns"]] == [1, 2]  # counted from 1
    assert document["turns"][1]["hints"][0]["kind"] == "qa"
    actions = [e.action for e in store.audit.entries()]
    assert actions.count("turn.add") == 2


def test_greedy_turn_is_reproducible_and_matches_backend(
    backend: HFBackend, case: tuple[CaseStore, str]
) -> None:
    store, sha = case
    a = locate(store, sha, backend, SessionMode.DIRECT, TurnOptions(settings=SHORT))
    b = locate(store, sha, backend, SessionMode.DIRECT, TurnOptions(settings=SHORT))
    assert a.turn.raw_answer == b.turn.raw_answer
    assert a.session.id != b.session.id


def test_cancel_mid_stream_leaves_a_consistent_cancelled_turn(
    backend: HFBackend, case: tuple[CaseStore, str]
) -> None:
    store, sha = case
    cancel = threading.Event()
    pieces: list[str] = []

    def on_token(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()

    settings = GenerationSettings(max_new_tokens=40)
    outcome = locate(
        store, sha, backend, SessionMode.DIRECT, TurnOptions(settings, on_token=on_token, cancel=cancel)
    )
    assert outcome.turn.status is TurnStatus.CANCELLED
    stored = store.turns.get(outcome.turn.id or 0)
    assert stored.status is TurnStatus.CANCELLED
    assert stored.raw_answer == "".join(pieces)
    assert (stored.answer_tokens or 0) < 40
    # A cancelled turn is not history: the next hint turn sees only the system prompt and itself.
    nxt = add_hints(
        store,
        outcome.session.id or 0,
        [Hint(kind=HintKind.PRIOR, text="Portugal")],
        backend,
        TurnOptions(SHORT),
    )
    assert nxt.turn.index == 1
    assert nxt.result is not None and nxt.result.prompt_tokens < outcome.result.prompt_tokens + 60  # type: ignore[union-attr]


class _BrokenBackend:
    """Wraps the real backend and fails on the second call, as a server gone mid-session would."""

    name = "hf"

    def __init__(self, inner: HFBackend) -> None:
        self.inner = inner
        self.identity = inner.identity
        self.max_images_per_message = inner.max_images_per_message
        self.calls = 0

    def generate(self, messages, settings, on_token=None, cancel=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls > 1:
            raise BackendError("the model server stopped answering; start it again and resend the hint")
        return self.inner.generate(messages, settings, on_token, cancel)

    def close(self) -> None:
        pass


def test_a_failed_turn_keeps_the_turns_before_it(backend: HFBackend, case: tuple[CaseStore, str]) -> None:
    store, sha = case
    broken = _BrokenBackend(backend)
    first = locate(store, sha, broken, SessionMode.DIRECT, TurnOptions(SHORT))  # type: ignore[arg-type]
    failed = add_hints(
        store,
        first.session.id or 0,
        [Hint(kind=HintKind.CORRECT)],
        broken,
        TurnOptions(SHORT),  # type: ignore[arg-type]
    )
    assert failed.turn.status is TurnStatus.FAILED
    assert "stopped answering" in (failed.turn.error or "")
    turns = store.turns.list(first.session.id or 0)
    assert [(t.index, t.status) for t in turns] == [(0, TurnStatus.DONE), (1, TurnStatus.FAILED)]
    assert turns[0].raw_answer == first.turn.raw_answer


def test_clue_mode_answers_create_proposed_clues_and_verdicts_become_a_hint(
    backend: HFBackend, case: tuple[CaseStore, str]
) -> None:
    store, sha = case
    outcome = locate(store, sha, backend, SessionMode.CLUES, TurnOptions(SHORT))
    # An untrained model rarely writes clues; add the analyst's own and check the verdict round trip.
    for clue in outcome.clues:
        assert clue.status is ClueStatus.PROPOSED and clue.turn_id == outcome.turn.id
    from geodesk.domain.model import Clue, ClueSource

    mine = store.clues.add(Clue(None, sha, "vegetation", "eucalyptus along the road", ClueSource.ANALYST))
    with pytest.raises(SessionError):
        clue_verdict_hint(store, outcome.session.id or 0)
    set_clue_status(store, mine.id or 0, ClueStatus.ACCEPTED)
    hint = clue_verdict_hint(store, outcome.session.id or 0)
    assert hint.clue_ids == (mine.id,)
    nxt = add_hints(store, outcome.session.id or 0, [hint], backend, TurnOptions(SHORT))
    assert "eucalyptus along the road" in nxt.turn.prompt


def test_region_hint_attaches_a_crop_when_the_model_takes_several_images(
    backend: HFBackend, case: tuple[CaseStore, str]
) -> None:
    store, sha = case
    first = locate(store, sha, backend, SessionMode.DIRECT, TurnOptions(SHORT))
    region = Hint(kind=HintKind.REGION, text="a sign with Cyrillic letters", region=Region(10, 10, 40, 30))
    nxt = add_hints(store, first.session.id or 0, [region], backend, TurnOptions(SHORT))
    placeholders = nxt.turn.prompt.count("<image>")
    assert placeholders == (1 if backend.max_images_per_message > 1 else 0)
    assert "[10, 10, 40, 30]" in nxt.turn.prompt
    # A third turn re-sends the history, crop included, without tripping the placeholder check.
    third = add_hints(
        store, first.session.id or 0, [Hint(kind=HintKind.CORRECT)], backend, TurnOptions(SHORT)
    )
    assert third.turn.status is TurnStatus.DONE


def test_samples_store_candidates(backend: HFBackend, case: tuple[CaseStore, str]) -> None:
    store, sha = case
    outcome = locate(store, sha, backend, SessionMode.DIRECT, TurnOptions(SHORT, samples=3))
    stored = store.turns.get(outcome.turn.id or 0)
    assert len(outcome.samples) == 3
    # Untrained answers are rarely valid: candidates exist exactly when some answer had a point.
    located = [p for p in (outcome.turn.prediction, *outcome.samples) if p.valid and p.lat is not None]
    assert bool(stored.prediction.candidates) == bool(located)
    assert sum(c.share for c in stored.prediction.candidates) <= 1.0 + 1e-9


def test_replay_reruns_the_same_user_turns(backend: HFBackend, case: tuple[CaseStore, str]) -> None:
    store, sha = case
    first = locate(store, sha, backend, SessionMode.DIRECT, TurnOptions(SHORT))
    add_hints(
        store, first.session.id or 0, [Hint(kind=HintKind.EXCLUDE, text="Spain")], backend, TurnOptions(SHORT)
    )
    replay, steps = replay_session(store, first.session.id or 0, backend, TurnOptions(SHORT))
    assert replay.replay_of == first.session.id
    assert [s.index for s in steps] == [0, 1]
    original = store.turns.list(first.session.id or 0)
    again = store.turns.list(replay.id or 0)
    assert [t.prompt for t in again] == [t.prompt for t in original]
    # Same model, greedy: the same answers, so nothing moved.
    assert [t.raw_answer for t in again] == [t.raw_answer for t in original]
    assert all(s.as_document()["moved_km"] in (None, 0.0) for s in steps)


def test_unknown_session_and_empty_hint_are_clear_errors(
    backend: HFBackend, case: tuple[CaseStore, str]
) -> None:
    store, _ = case
    with pytest.raises(SessionError, match="no session 999"):
        add_hints(store, 999, [Hint(kind=HintKind.CORRECT)], backend)
    with pytest.raises(SessionError, match="at least one hint"):
        add_hints(store, 1, [], backend)


def test_cluster_candidates_groups_nearby_answers() -> None:
    paris = [Prediction(country="France", lat=48.85 + d, lon=2.35, valid=True) for d in (0.0, 0.1, 0.2)]
    lyon = Prediction(country="France", city="Lyon", lat=45.76, lon=4.84, valid=True)
    invalid = Prediction(valid=False)
    ranked = cluster_candidates([*paris, lyon, invalid], link_km=100)
    assert [round(c.share, 2) for c in ranked] == [0.6, 0.2]
    assert ranked[0].lat == pytest.approx(48.95)  # the medoid of the three Paris answers
    assert 0 < ranked[0].spread_km < 20
    assert ranked[1].city == "Lyon" and ranked[1].spread_km == 0
    assert cluster_candidates([invalid]) == ()
