"""Selection is state: after a session on image A, selecting image B (same case) and then opening
another case leaves every dock showing only B's data, then nothing's: at once (while B's rows are
still being read by a job), and after they arrived. Clicking A then B before A's rows arrive shows
only B's (A's late result is dropped).

The session on A is written with the case store (the rows a session writes), so no model is needed;
the answer pane's streamed text and the status line are set as a finished turn leaves them.
"""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from geodesk.app.state import StatusLine
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
from geodesk.qt.main_window import MainWindow
from tests.app.test_selection_loading import READ, HeldRunner, a_worked_item
from tests.qt.conftest import import_and_wait
from tests.qt.helpers import wait_summary


def selection_loaded(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.app.evidence.loading, timeout=10000)


def a_session_on(qtbot: QtBot, window: MainWindow, sha: str) -> None:
    store = window.app.ctx.store
    assert store is not None
    identity = ModelIdentity("rows", "0", "0" * 64)
    session = store.sessions.add(Session(None, sha, SessionMode.DIRECT, identity, "hf", {}, "test"))
    assert session.id is not None
    store.turns.add(
        Turn(
            None,
            session.id,
            0,
            "where?",
            "Lyon",
            Prediction(country="France", city="Lyon", lat=45.76, lon=4.84, valid=True),
        )
    )
    store.clues.add(Clue(None, sha, "architecture", "Haussmann facades", ClueSource.MODEL))
    store.findings.save(Finding(None, sha, 45.76, 4.84, 5.0, FindingStatus.PROBABLE, "river bend"))
    window.app.evidence.select(sha, session_id=session.id)
    selection_loaded(qtbot, window)
    window.state.answer_stream = "Lyon, France"  # what the streamed answer left in the pane
    window.state.session_status = StatusLine("Turn 1: done")


def docks_show_nothing_of_a(window: MainWindow, a_name: str) -> None:
    d = window.docks
    session = d["session"].panel
    assert "Lyon" not in session.card.toPlainText()  # prediction card
    assert session.stream.toPlainText() == ""  # answer pane
    assert session.status.text() in ("", "choose an image first")  # status line: not "Turn 1: done"
    assert "Lyon" not in session.conversation.toPlainText()
    assert session.sessions.count() == 0  # session list
    assert d["history"].panel.model.rowCount() == 0  # history table
    assert d["history"].panel.plotted()["moved"] == ([], [])
    assert d["history"].panel.plot_range() == ((0.0, 1.0), (0.0, 1.0))  # plot axes of nothing
    assert not d["history"].panel.plot_shown()  # the "no turns" label stands in for the plot
    assert d["clues"].panel.tree.topLevelItemCount() == 0  # clue list
    finding = d["finding"].editor
    assert finding.lat.text() == "" and finding.lon.text() == "" and finding.history.count() == 0
    assert window.docks["map"].view.state().turns == ()  # map view
    assert window.docks["map"].view.state().title != a_name


def test_another_image_then_another_case_shows_only_their_data(
    qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    window.app.cases.create("First")
    import_and_wait(qtbot, window, images[:2])
    by_name = {e.original_name: e.sha256 for e in window.state.evidence_items}
    selection_loaded(qtbot, window)
    a_session_on(qtbot, window, by_name["harbour.jpg"])
    assert window.docks["history"].panel.model.rowCount() == 1
    assert window.docks["session"].panel.stream.toPlainText() == "Lyon, France"
    assert window.docks["finding"].editor.lat.text() == "45.760000"
    wait_summary(qtbot, window.docks["map"].view, lambda s: s["turnMarkers"] == [0])

    # image B of the same case: only B's data (B has none yet), and B is what the panes describe
    window.docks["evidence"].grid.select_sha(by_name["street.jpg"])
    assert window.state.evidence is not None and window.state.evidence.original_name == "street.jpg"
    docks_show_nothing_of_a(window, "harbour.jpg")  # at once, B's rows still on their way
    selection_loaded(qtbot, window)
    docks_show_nothing_of_a(window, "harbour.jpg")
    assert window.docks["map"].view.state().title == "street.jpg"
    assert window.docks["metadata"].panel.topLevelItem(0).text(1) == "street.jpg"
    assert window.docks["session"].panel.start_button.isEnabled()
    assert window.docks["session"].panel.status.text() == ""  # not "choose an image first"
    assert window.docks["finding"].editor.isEnabled()
    wait_summary(qtbot, window.docks["map"].view, lambda s: s["turnMarkers"] == [])

    # A then B at once: A's rows, read by a job, arrive after B was selected and are dropped
    window.docks["evidence"].grid.select_sha(by_name["harbour.jpg"])
    window.docks["evidence"].grid.select_sha(by_name["street.jpg"])
    selection_loaded(qtbot, window)
    qtbot.wait(50)  # any late step of A's would have run by now
    assert window.state.evidence is not None and window.state.evidence.original_name == "street.jpg"
    docks_show_nothing_of_a(window, "harbour.jpg")

    # back to A: all of A's data again
    window.docks["evidence"].grid.select_sha(by_name["harbour.jpg"])
    selection_loaded(qtbot, window)
    assert "Lyon" in window.docks["session"].panel.card.toPlainText()
    assert window.docks["history"].panel.model.rowCount() == 1
    assert window.docks["clues"].panel.tree.topLevelItemCount() > 0
    window.docks["evidence"].grid.select_sha(by_name["street.jpg"])
    selection_loaded(qtbot, window)

    # another case: nothing is selected, nothing of the first case is shown
    window.app.cases.create("Second")
    assert window.state.evidence is None and window.state.case is not None
    assert window.state.case.title == "Second"
    docks_show_nothing_of_a(window, "harbour.jpg")
    assert window.docks["evidence"].grid.shas() == []
    assert window.docks["metadata"].panel.topLevelItemCount() == 0
    assert not window.docks["finding"].editor.isEnabled()
    assert not window.docks["session"].panel.start_button.isEnabled()
    assert not window.viewer.has_image()


def held_window_with_a_worked_item(
    qtbot: QtBot, workspace: Path, images: list[Path], title: str
) -> tuple[MainWindow, HeldRunner, str, str]:
    """A window whose jobs run only when the test says so, on a new case with two items: A
    (harbour.jpg, with a clue, a finding and a turn) and B (street.jpg, nothing)."""
    runner = HeldRunner()
    window = MainWindow(workspace, restore_layout=False, runner=runner)
    qtbot.addWidget(window)
    window.show()
    window.app.evidence.import_workers = 0
    window.app.cases.create(title)
    window.app.evidence.import_paths(images[:2])
    runner.run_all()
    by_name = {e.original_name: e.sha256 for e in window.state.evidence_items}
    a, b = by_name["harbour.jpg"], by_name["street.jpg"]
    a_worked_item(window.app, a, "Lyon")
    return window, runner, a, b


def test_a_write_that_ends_under_another_selection_never_shows(
    qtbot: QtBot, workspace: Path, images: list[Path]
) -> None:
    """The held runner decides when each job runs: the analyst accepts a clue and saves a finding on
    A, clicks B before either write has run, and the writes end after that: the docks show only B's
    data; back on A they show what was stored."""
    window, runner, a, b = held_window_with_a_worked_item(qtbot, workspace, images, "Held")
    grid, clues = window.docks["evidence"].grid, window.docks["clues"].panel
    editor = window.docks["finding"].editor
    grid.select_sha(b)
    runner.run_all()
    grid.select_sha(a)
    runner.run_all()
    (clue,) = window.state.clues
    assert clue.id is not None
    clues.select_clue(clue.id)
    clues.accept_button.click()
    editor.lat.setText("48.85")
    editor.lon.setText("2.35")
    editor.save_button.click()
    assert [name for name, _ in runner.jobs] == ["mark a clue accepted"]  # the save waits its turn
    assert window.state.clues[0].status.value == "proposed"  # nothing is shown before it is stored

    grid.select_sha(b)
    runner.run_all()  # both writes end (in order) and B's read arrives
    assert window.app.ctx.writes_pending == 0
    docks_show_nothing_of_a(window, "harbour.jpg")

    grid.select_sha(a)
    runner.run_all()
    assert [c.status.value for c in window.state.clues] == ["accepted"]
    assert editor.lat.text() == "48.850000" and editor.history.count() == 2


def test_writes_asked_for_just_before_closing_are_stored_in_order(
    qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    window.app.cases.create("Closing")
    import_and_wait(qtbot, window, images[:1])
    selection_loaded(qtbot, window)
    store, evidence = window.app.ctx.store, window.state.evidence
    assert store is not None and evidence is not None
    clue = store.clues.add(Clue(None, evidence.sha256, "road", "yellow line", ClueSource.MODEL))
    assert clue.id is not None
    window.app.clues.accept(clue.id)
    window.app.clues.reject(clue.id)  # waits for the accept, which is still running
    case_dir = store.path
    window.close()  # the running write ends, the waiting one runs before the case closes
    from geodesk.store import CaseStore

    with CaseStore.open(case_dir) as reopened:
        assert reopened.clues.get(clue.id).status.value == "rejected"


def test_the_history_and_the_map_draw_the_rows_once_they_are_all_in(
    qtbot: QtBot, workspace: Path, images: list[Path]
) -> None:
    window, runner, a, b = held_window_with_a_worked_item(qtbot, workspace, images, "Steps")
    grid, history = window.docks["evidence"].grid, window.docks["history"].panel
    view = window.docks["map"].view
    grid.select_sha(b)
    runner.run_all()
    grid.select_sha(a)
    assert view.state().title == "harbour.jpg" and view.state().turns == ()  # A, with nothing yet
    runner.release(READ)  # the clues
    runner.soon.pop(0)()  # the finding: the finding form shows it; history and map wait for the turns
    assert window.docks["finding"].editor.lat.text() == "45.760000"
    assert history.model.rowCount() == 0 and view.state().finding is None and not history.plot_shown()
    runner.steps()  # the turns, and the end of loading: the history and the map draw everything once
    assert history.model.rowCount() == 1 and history.plotted()["moved"][0] == []  # one turn: no move yet
    assert history.plot_shown()
    assert history.plotted()["reference"][0] == [1.0]
    assert view.state().finding is not None and len(view.state().turns) == 1
