"""The clue engine through its controller, no display (synchronous runner): run it as a job, review,
the combined constraint and the flags of the item's turns, sun marks to a sun clue, the accepted clues
sent as the next turn's hint; a new selection never shows the previous item's clue-engine data."""

from __future__ import annotations

import json
from pathlib import Path

from geodesk.app import Application
from geodesk.app.state import Message, SunMarks
from geodesk.domain.model import ClueStatus, HintKind, Region, SessionMode
from geodesk.services.sessions import locate
from tests.app.conftest import install_tiny, write_photo
from tests.clues.conftest import sign_photo
from tests.scripted import ScriptedAnswers
from tests.store.conftest import add_engine_clue

ANSWER_BR = json.dumps({"country": "Brazil", "city": "São Paulo", "lat": -23.55, "lon": -46.63})


def _open(app: Application, tmp_path: Path) -> tuple[str, str]:
    """A case with the sign photo (EXIF time at +05:00) and a plain photo; the sign photo selected."""
    said: list[Message] = []
    app.state.message.connect(said.append)
    app.cases.create("Signs")
    sign = sign_photo(tmp_path / "sign.jpg")
    plain = write_photo(tmp_path / "plain.jpg", (90, 90, 90))
    assert app.evidence.import_paths([sign, plain]), said
    by_name = {e.original_name: e.sha256 for e in app.state.evidence_items}
    app.evidence.select(by_name["sign.jpg"])
    return by_name["sign.jpg"], by_name["plain.jpg"]


def test_review_combines_flags_and_resets_on_a_new_selection(app: Application, tmp_path: Path) -> None:
    sign, plain = _open(app, tmp_path)
    store = app.ctx.case_store()
    first = locate(store, sign, ScriptedAnswers([ANSWER_BR]), SessionMode.DIRECT)
    clue = add_engine_clue(store, sign).clue  # type: ignore[attr-defined]
    app.evidence.reload()
    assert [c.clue.id for c in app.state.engine_clues] == [clue.id]
    assert app.state.turn_flags == ()  # only proposed: nothing counts yet
    assert app.state.clue_constraint is not None and app.state.clue_constraint["leading"] == []

    app.clues.accept(clue.id)  # the ordinary clue review
    assert app.state.engine_clues[0].clue.status is ClueStatus.ACCEPTED
    document = app.state.clue_constraint
    assert document is not None and document["leading"][0]["country_code"] == "UZ"
    assert document["leading"][0]["reason"] == "supported by: +998 phone prefix"
    assert [f.turn_id for f in app.state.turn_flags] == [first.turn.id]
    assert "BR is ruled out" in app.state.turn_flags[0].text
    app.clue_engine.mark_object(Region(10, 10, 20, 60))
    assert app.state.sun_marks == SunMarks(Region(10, 10, 20, 60), None)

    app.evidence.select(plain)  # another item: none of the sign's clue-engine data survives
    s = app.state
    assert (s.engine_clues, s.clue_constraint, s.turn_flags, s.sun_marks, s.sun_marking) == (
        (),
        None,
        (),
        None,
        False,
    )
    app.evidence.select(sign)
    assert (
        app.state.clue_constraint is not None
        and app.state.clue_constraint["leading"][0]["country_code"] == "UZ"
    )
    assert len(app.state.turn_flags) == 1


def test_a_stale_check_never_reaches_the_views(app: Application, tmp_path: Path) -> None:
    """A check that finishes after the analyst moved on is dropped (a queued runner shows the order)."""
    sign, plain = _open(app, tmp_path)
    add_engine_clue(app.ctx.case_store(), sign, status="accepted")
    queued: list[tuple[object, object]] = []
    runner = app.ctx.runner

    class Later:
        def start(self, fn, name, *, on_result=None, **_: object):  # type: ignore[no-untyped-def]
            queued.append((fn, on_result))
            return runner.start(lambda ctx: None, name)

        def cancel_all(self) -> None:
            pass

    app.ctx.runner = Later()  # type: ignore[assignment]
    app.evidence.reload()  # the sign's check is queued, not run
    app.evidence.select(plain)
    app.ctx.runner = runner
    fn, on_result = queued[0]
    from geodesk.app.jobs import CallbackContext

    on_result(fn(CallbackContext()))  # type: ignore[operator]
    assert app.state.clue_constraint is None and app.state.engine_clues == ()


def test_sun_marks_become_a_sun_clue(app: Application, tmp_path: Path) -> None:
    said: list[Message] = []
    app.state.message.connect(said.append)
    _open(app, tmp_path)
    assert not app.clue_engine.add_sun()  # nothing marked, no ratio
    assert "mark the object" in said[-1].text
    app.clue_engine.mark_shadow_tip(5, 5)  # a tip before an object is refused
    assert app.state.sun_marks is None
    app.clue_engine.set_sun_marking(True)
    app.clue_engine.mark_object(Region(400, 100, 420, 300))
    app.clue_engine.mark_shadow_tip(550.0, 300.0)
    assert app.state.sun_marks is not None and app.state.sun_marks.complete
    assert not app.clue_engine.add_sun("yesterday at noon")
    assert "not a time" in said[-1].text
    assert app.clue_engine.add_sun()  # the EXIF time, 12:30 at +05:00
    [sun] = [c for c in app.state.engine_clues if c.clue.category == "sun"]
    assert (
        sun.clue.source.value == "sun"
        and sun.area is not None
        and sun.details["utc"].startswith("2024-01-15T07:30")
    )
    assert app.state.sun_marks is None and not app.state.sun_marking
    assert app.clue_engine.add_sun("2024-03-20T12:00:00+00:00", "1.0")  # a typed ratio needs no marks
    assert sum(c.clue.category == "sun" for c in app.state.engine_clues) == 2


def test_the_engine_runs_as_a_job_and_accepted_clues_go_to_the_model(
    app: Application, tmp_path: Path, tiny_model_dir: Path
) -> None:
    said: list[Message] = []
    app.state.message.connect(said.append)
    _open(app, tmp_path)
    app.clue_engine.ocr = "rapidocr"
    assert app.clue_engine.run(Region(100, 100, 760, 260))  # the sign's first two lines
    assert "clue engine" in app.ctx.runner.started[-2]  # type: ignore[attr-defined]
    categories = {c.clue.category for c in app.state.engine_clues}
    assert {"text", "phone"} <= categories, app.state.engine_clues
    assert app.state.status.startswith("Clue engine on sign.jpg:")
    assert not app.clue_engine.send_accepted()  # no session yet
    install_tiny(app, tiny_model_dir)
    app.sessions.max_new_tokens = 8
    assert app.sessions.start("direct")
    assert not app.clue_engine.send_accepted()  # nothing accepted yet
    assert "accept" in said[-1].text
    phone = next(c for c in app.state.engine_clues if c.clue.category == "phone")
    app.clues.accept(phone.clue.id)
    assert app.clue_engine.send_accepted()
    last = app.state.turns[-1]
    assert last.number == 2 and last.hints[0].kind is HintKind.QA
    assert last.hints[0].answer is not None and phone.clue.text.lower() in last.hints[0].answer.lower()
