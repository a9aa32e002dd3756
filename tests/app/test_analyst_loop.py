"""The whole analyst loop through the controllers, no display: open a case, import (one broken file),
locate, hint, accept/reject/edit clues, save a finding, replay, batch; every step checked in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodesk.app import Application
from geodesk.app.state import Message
from geodesk.domain.model import ClueStatus, Hint, HintKind, Region, TurnStatus
from tests.app.conftest import install_tiny


def messages(app: Application) -> list[Message]:
    seen: list[Message] = []
    app.state.message.connect(seen.append)
    return seen


def test_the_analyst_loop_with_the_tiny_model(
    app: Application, photos: list[Path], tiny_model_dir: Path
) -> None:
    said = messages(app)
    case_id = app.cases.create("Harbour photos")
    assert case_id is not None and app.state.case is not None and app.state.case.id == case_id
    assert app.state.cases[0].id == case_id and app.state.recent_cases[0] == case_id

    assert app.evidence.import_paths(photos)
    assert len(app.state.evidence_items) == 2  # the broken file did not stop the others
    assert any("c-broken.jpg" in m.text and m.error for m in said), said
    first, second = (e.sha256 for e in app.state.evidence_items)
    assert app.state.evidence is not None and app.state.evidence.sha256 == first  # selected after import

    install_tiny(app, tiny_model_dir)
    assert app.state.model is not None and app.state.model.untrained
    app.sessions.max_new_tokens = 12
    assert app.sessions.start("direct")
    assert app.state.model_loaded and "load" not in app.state.busy
    assert [t.status for t in app.state.turns] == [TurnStatus.DONE], app.state.turns
    assert app.state.answer_stream  # streamed tokens of this item's turn
    assert app.state.session_status.text == "Turn 1: done"
    assert first in app.state.located

    assert app.sessions.send_hint(Hint(HintKind.QUESTION, "Which side of the road do cars drive on?"))
    assert [t.index for t in app.state.turns] == [0, 1]
    store = app.ctx.case_store()
    session_id = app.state.session.id if app.state.session else None
    assert session_id is not None and len(store.turns.list(session_id)) == 2

    # Clues: the analyst's own (accepted), then reject, accept and edit; an empty edit is refused.
    clue = app.clues.add("road", "yellow centre line", Region(1, 2, 30, 40))
    assert clue is not None and store.clues.get(clue.id or 0).status is ClueStatus.ACCEPTED
    assert app.clues.reject(clue.id or 0) is not None
    assert store.clues.get(clue.id or 0).status is ClueStatus.REJECTED
    assert app.clues.accept(clue.id or 0) is not None
    assert app.clues.edit(clue.id or 0, "   ") is None
    assert "an edit needs text" in said[-1].text
    assert store.clues.get(clue.id or 0).text == "yellow centre line"
    assert app.clues.edit(clue.id or 0, "white centre line") is not None
    assert [c.text for c in app.state.clues] == ["white centre line"]
    assert app.state.clues[0].status is ClueStatus.EDITED

    # A map click proposes; only save records a version.
    assert app.findings.propose_point(59.91, 10.75)
    assert app.state.proposed_point == (59.91, 10.75) and store.findings.current(first) is None
    saved = app.findings.save(59.91, 10.75, 5.0, "probable", "harbour cranes")
    assert saved is not None and saved.version == 1 and app.state.proposed_point is None
    assert app.findings.save(59.92, 10.76, 2.0, "confirmed", "ferry timetable") is not None
    assert [f.version for f in store.findings.history(first)] == [1, 2]
    assert app.state.finding is not None and app.state.finding.version == 2
    assert app.findings.save(95.0, 0.0, 1.0) is None and "not a point" in said[-1].text

    # Replay the session: a new session on the same item, one step per finished turn.
    replays: list[object] = []
    app.state.replay_finished.connect(replays.append)
    assert app.sessions.replay()
    replayed, steps = replays[0]  # type: ignore[misc]
    assert replayed.replay_of == session_id and len(steps) == 2
    assert len(store.sessions.list(evidence_sha256=first)) == 2

    # Locate all: the second image is located, the first is skipped (already located on this model).
    assert app.batch.locate_all()
    report = app.batch.last_report
    assert [d["evidence"] for d in report.located] == [second] and report.skipped == [first]
    assert app.state.located == {first, second} == store.evidence.located()
    assert not app.state.busy


def test_a_hint_needs_a_session_and_actions_need_a_case(app: Application) -> None:
    from geodesk.app.actions import app_actions

    class NoPrompts:
        def ask_case_title(self) -> str | None:
            return "Asked"

        def ask_image_files(self) -> list[Path]:
            return []

        def ask_image_folder(self) -> Path | None:
            return None

        def selected_case(self) -> str | None:
            return None

        def show_replay(self) -> None: ...

        def show_model_manager(self) -> None: ...

        def show_map_sources(self) -> None: ...

        def show_settings(self) -> None: ...

        def show_report(self) -> None: ...

        def ask_export_path(self) -> Path | None:
            return None

    actions = {a.name: a for a in app_actions(app, NoPrompts())}
    assert not actions["report"].enabled_when(app.state) and not actions["export_gis"].enabled_when(app.state)
    assert actions["new_case"].enabled_when(app.state)
    assert not actions["import_files"].enabled_when(app.state)
    assert not actions["start_session"].enabled_when(app.state)
    assert not app.sessions.send_hint(Hint(HintKind.QUESTION, "where?"))
    actions["new_case"].handler()
    assert app.state.case is not None and app.state.case.title == "Asked"
    assert actions["report"].enabled_when(app.state) and actions["export_gis"].enabled_when(app.state)
    assert actions["import_files"].enabled_when(app.state)
    assert not actions["start_session"].enabled_when(app.state)  # no image selected


def test_no_model_is_a_message_not_a_crash(app: Application, photos: list[Path]) -> None:
    said = messages(app)
    app.cases.create("No model")
    app.evidence.import_paths(photos[:1])
    assert not app.sessions.start("direct")
    assert "No model is active" in said[-1].text
    assert app.state.turns == () and not app.state.busy


@pytest.mark.parametrize("status", ["accepted", "rejected"])
def test_clue_status_through_the_controller_is_audited(
    app: Application, photos: list[Path], status: str
) -> None:
    app.cases.create("Clues")
    app.evidence.import_paths(photos[:1])
    clue = app.clues.add("sign", "bilingual street sign")
    assert clue is not None
    app.clues.set_status(clue.id or 0, status)
    store = app.ctx.case_store()
    assert store.clues.get(clue.id or 0).status.value == status
    assert any(e.action == "clue.status" for e in store.audit.entries())
