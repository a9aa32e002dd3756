"""The selected item's rows are read by a job and applied in steps; a result or a step that belongs to
a selection that is no longer current is dropped, so the state never holds another item's data.

A held runner keeps every job and every ``call_soon`` step until the test releases it, so the order
in which results arrive is the test's choice (as a slow disk or a busy machine would make it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from geodesk.app import Application
from geodesk.app.jobs import CallbackContext, JobEnd, SyncJob, run_job
from geodesk.domain.model import (
    Clue,
    ClueSource,
    Finding,
    FindingStatus,
    ModelIdentity,
    Prediction,
    Session,
    SessionMode,
    Turn,
)


class HeldRunner:
    """Runs nothing until told: ``release(name)`` runs the oldest held job of that name, ``steps()``
    runs the queued ``call_soon`` calls (and those they queue)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, Callable[[], None]]] = []
        self.soon: list[Callable[[], None]] = []

    def start(self, fn: Any, name: str, **callbacks: Any) -> SyncJob:
        get = callbacks.get
        context = CallbackContext(on_progress=get("on_progress"), on_token=get("on_token"))
        end = JobEnd(callbacks.get("on_result"), callbacks.get("on_failed"), callbacks.get("on_cancelled"),
                     callbacks.get("on_finished"))
        self.jobs.append((name, lambda: run_job(fn, context, name, end)))
        return SyncJob(name, context)

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.soon.append(fn)

    def cancel_all(self) -> None:
        self.jobs.clear()

    def release(self, name: str) -> None:
        index = next(i for i, (n, _) in enumerate(self.jobs) if n == name)
        self.jobs.pop(index)[1]()

    def run_all(self) -> None:
        while self.jobs:
            self.jobs.pop(0)[1]()
            self.steps()

    def steps(self) -> None:
        while self.soon:
            self.soon.pop(0)()


READ = "read the selected item"
WRITE = "save a finding"


def a_worked_item(app: Application, sha: str, city: str) -> int:
    """A session with one turn, a clue and a finding on ``sha``, written as a session writes them."""
    store = app.ctx.case_store()
    identity = ModelIdentity("rows", "0", "0" * 64)
    session = store.sessions.add(Session(None, sha, SessionMode.DIRECT, identity, "hf", {}, "test"))
    assert session.id is not None
    prediction = Prediction(country="France", city=city, lat=45.76, lon=4.84, valid=True)
    store.turns.add(Turn(None, session.id, 0, "where?", city, prediction))
    store.clues.add(Clue(None, sha, "architecture", f"facades of {city}", ClueSource.MODEL))
    store.findings.save(Finding(None, sha, 45.76, 4.84, 5.0, FindingStatus.PROBABLE, f"near {city}"))
    return session.id


def shows_nothing_but(app: Application, sha: str) -> None:
    s = app.state
    assert s.evidence is not None and s.evidence.sha256 == sha
    assert all(c.evidence_sha256 == sha for c in s.clues)
    assert all(x.evidence_sha256 == sha for x in s.sessions)
    assert s.session is None or s.session.evidence_sha256 == sha
    assert s.finding is None or s.finding.evidence_sha256 == sha
    assert all(f.evidence_sha256 == sha for f in s.finding_history)
    session_ids = {x.id for x in s.sessions}
    assert all(t.session_id in session_ids for t in s.turns)


def open_case_with_two_items(workspace: Path, photos: list[Path]) -> tuple[Application, HeldRunner, str, str]:
    runner = HeldRunner()
    app = Application(workspace, runner)
    app.evidence.import_workers = 0
    app.start()
    app.cases.create("Held")
    app.evidence.import_paths(photos[:2])
    runner.run_all()  # the import, then the read of the first item it selects
    a, b = (e.sha256 for e in app.state.evidence_items)
    a_worked_item(app, a, "Lyon")
    return app, runner, a, b


def test_a_read_for_an_older_selection_is_dropped(workspace: Path, photos: list[Path]) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    app.evidence.select(b)
    app.evidence.select(a)  # A's rows are read by a job: until it ends, A is shown with nothing
    shows_nothing_but(app, a)
    assert app.state.clues == () and app.state.turns == () and app.evidence.loading
    app.evidence.select(b)  # the analyst moves on before A's rows arrive
    runner.release(READ)  # B's first read (already superseded)
    runner.release(READ)  # A's read arrives late
    runner.steps()
    shows_nothing_but(app, b)
    assert app.state.clues == () and app.state.turns == () and app.state.finding is None
    runner.release(READ)  # B's own read
    shows_nothing_but(app, b)
    assert not app.state.clues  # B has no clue, no session, no finding: still nothing
    runner.steps()
    assert not app.evidence.loading


def test_steps_apply_in_order_and_stop_when_the_selection_changes(
    workspace: Path, photos: list[Path]
) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    app.evidence.select(b)
    runner.run_all()
    app.evidence.select(a)
    runner.release(READ)
    # the first step came with the result; the finding and the sessions wait for the event loop
    assert [c.text for c in app.state.clues] == ["facades of Lyon"]
    assert app.state.finding is None and app.state.turns == ()
    runner.soon.pop(0)()  # the finding step
    assert app.state.finding is not None and app.state.finding.reasoning == "near Lyon"
    app.evidence.select(b)  # a click between two steps: the rest of A's steps do nothing
    runner.steps()
    shows_nothing_but(app, b)
    assert app.state.turns == () and app.state.sessions == ()
    runner.run_all()
    shows_nothing_but(app, b)
    assert app.state.turns == ()


def test_a_read_for_a_closed_case_is_dropped(workspace: Path, photos: list[Path]) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    app.evidence.select(b)
    runner.run_all()
    app.evidence.select(a)
    app.cases.create("Another")  # opened before A's rows arrive
    runner.run_all()
    assert app.state.evidence is None and app.state.clues == () and app.state.turns == ()
    assert app.state.case is not None and app.state.case.title == "Another"


def test_what_the_analyst_saved_while_reading_is_not_overwritten(
    workspace: Path, photos: list[Path]
) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    app.evidence.select(b)
    runner.run_all()
    app.evidence.select(a)  # A's read starts: its finding is v1
    assert app.findings.save(48.85, 2.35, 2.0, FindingStatus.CONFIRMED, "the quay") is None  # on its way
    runner.release(WRITE)  # v2 is stored and shown
    saved = app.state.finding
    assert saved is not None and saved.version == 2 and saved.reasoning == "the quay"
    runner.run_all()  # the read (with v1) arrives after v2 was saved
    assert app.state.finding == saved
    assert [f.version for f in app.state.finding_history] == [1, 2]
    assert [t.raw_answer for t in app.state.turns] == ["Lyon"]  # the rest of A's rows did arrive


# -- the analyst's writes (a clue's review, a finding) run as jobs, one at a time, in order

def a_shown(app: Application, runner: HeldRunner, a: str, b: str) -> None:
    """A selected with all its rows in (the import selected it before they were written)."""
    app.evidence.select(b)
    app.evidence.select(a)
    runner.run_all()
    assert [c.status.value for c in app.state.clues] == ["proposed"]


def clue_of(app: Application, sha: str) -> Clue:
    """The item's one clue, as stored now (with its id)."""
    store = app.ctx.case_store()
    (clue,) = store.clues.list(evidence_sha256=sha)
    assert clue.id is not None
    return clue


def test_a_write_for_an_item_no_longer_selected_is_stored_not_shown(
    workspace: Path, photos: list[Path]
) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    a_shown(app, runner, a, b)
    clue = clue_of(app, a)
    assert app.clues.accept(clue.id) is None  # the write is a job: nothing has changed yet
    assert app.state.clues[0].status.value == "proposed" and app.ctx.writes_pending == 1
    app.evidence.select(b)  # the analyst moves on before the write ends
    runner.release("mark a clue accepted")
    shows_nothing_but(app, b)
    assert app.state.clues == () and app.ctx.writes_pending == 0
    assert clue_of(app, a).status.value == "accepted"  # stored all the same
    app.evidence.select(a)
    runner.run_all()
    assert [c.status.value for c in app.state.clues] == ["accepted"]


def test_writes_run_one_at_a_time_in_the_order_asked(workspace: Path, photos: list[Path]) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    a_shown(app, runner, a, b)
    clue = clue_of(app, a)
    app.clues.accept(clue.id)
    app.clues.reject(clue.id)
    app.findings.save(48.85, 2.35, 2.0, FindingStatus.CONFIRMED, "the quay")
    # only the first write has started: the others wait for it, whatever the runner would do
    assert [name for name, _ in runner.jobs] == ["mark a clue accepted"] and app.ctx.writes_pending == 3
    runner.release("mark a clue accepted")
    assert [c.status.value for c in app.state.clues] == ["accepted"]
    assert [name for name, _ in runner.jobs] == ["mark a clue rejected"]
    runner.release("mark a clue rejected")
    assert [c.status.value for c in app.state.clues] == ["rejected"]
    runner.release(WRITE)
    assert app.state.finding is not None and app.state.finding.version == 2
    assert [f.version for f in app.state.finding_history] == [1, 2]
    assert clue_of(app, a).status.value == "rejected" and app.ctx.writes_pending == 0


def test_a_write_that_ends_after_the_item_was_selected_again_is_shown(
    workspace: Path, photos: list[Path]
) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    a_shown(app, runner, a, b)
    clue = clue_of(app, a)
    app.clues.accept(clue.id)
    app.evidence.select(b)
    app.evidence.select(a)  # back on A: its read runs before the write has stored anything
    runner.release(READ)  # B's read, superseded
    runner.release(READ)  # A's read: the clue as it was
    runner.steps()
    assert [c.status.value for c in app.state.clues] == ["proposed"]
    runner.release("mark a clue accepted")  # newer than that read: shown
    assert [c.status.value for c in app.state.clues] == ["accepted"]
    shows_nothing_but(app, a)


def test_a_refused_write_says_why_and_changes_nothing(workspace: Path, photos: list[Path]) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    a_shown(app, runner, a, b)
    said: list[str] = []
    app.state.message.connect(lambda m: said.append(m.text))
    app.findings.save(95.0, 0.0, 1.0)
    runner.release(WRITE)
    assert "not a point" in said[-1]
    assert app.state.finding is not None and app.state.finding.version == 1
    assert app.ctx.writes_pending == 0


def test_selection_loading_holds_from_the_click_until_the_last_step(
    workspace: Path, photos: list[Path]
) -> None:
    app, runner, a, b = open_case_with_two_items(workspace, photos)
    app.evidence.select(b)
    runner.run_all()
    assert not app.state.selection_loading
    changes: list[bool] = []
    app.state.watch("selection_loading", changes.append)
    app.evidence.select(a)
    assert app.state.selection_loading  # the item is shown with nothing of its rows yet
    runner.release(READ)
    runner.soon.pop(0)()  # the finding step: still loading
    assert app.state.finding is not None and app.state.selection_loading
    runner.soon.pop(0)()  # the sessions and turns: still loading
    assert [t.raw_answer for t in app.state.turns] == ["Lyon"] and app.state.selection_loading
    runner.steps()  # the end of loading, a step of its own
    assert not app.state.selection_loading
    assert changes == [True, False]
    app.evidence.select(b)
    app.evidence.select(None)  # nothing selected: nothing is loading, whatever was on its way
    assert not app.state.selection_loading
    runner.run_all()
    assert not app.state.selection_loading and app.state.evidence is None
