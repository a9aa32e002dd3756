"""The whole loop with the untrained tiny model: case, import (with a broken file), session, hint,
second turn in the table, the plot and the map's JavaScript state; stop keeps the turns before it."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from geodesk.domain.model import TurnStatus
from geodesk.qt.main_window import MainWindow
from tests.qt.conftest import import_and_wait, install_model
from tests.qt.helpers import wait_summary


def wait_turns(qtbot: QtBot, window: MainWindow, count: int) -> None:
    qtbot.waitUntil(
        lambda: "turn" not in window.state.busy and len(window.state.turns) >= count, timeout=120000
    )


def test_session_with_the_tiny_model(
    said: list[str], qtbot: QtBot, window: MainWindow, images: list[Path], tiny_model: Path
) -> None:
    window.app.cases.create("Loop")
    report = import_and_wait(qtbot, window, images)
    assert len(report.imported) == 2 and len(report.errors) == 1  # type: ignore[attr-defined]
    install_model(window, tiny_model)
    assert "UNTRAINED" in window.docks["session"].panel.model_label.text()
    assert "UNTRAINED" in window.windowTitle()
    window.app.sessions.max_new_tokens = 24

    window.app.sessions.start("direct")
    wait_turns(qtbot, window, 1)
    assert window.app.models.backend is not None, said
    assert window.state.turns[0].status == TurnStatus.DONE, window.state.turns[0].error
    streamed = window.docks["session"].panel.stream.toPlainText()
    assert streamed and streamed.strip() in window.state.turns[0].raw_answer.strip() + streamed.strip()
    assert window.docks["session"].panel.conversation.toPlainText().count("Turn 1") == 1

    window.docks["hints"].composer.text.setText("Which side of the road do cars drive on?")
    window.docks["hints"].composer.send_button.click()
    wait_turns(qtbot, window, 2)
    assert [t.status for t in window.state.turns] == [TurnStatus.DONE, TurnStatus.DONE]
    assert window.state.turns[1].hints[0].text == "Which side of the road do cars drive on?"
    assert window.docks["history"].panel.model.rowCount() == 2
    assert window.docks["history"].panel.model.rows[1].hint.startswith("+Q: Which side")
    state = wait_summary(qtbot, window.docks["map"].view, lambda s: s["turnCount"] == 2)
    assert state["turnMarkers"] == [t.index for t in window.state.turns if t.prediction.point is not None]
    xs, _ = window.docks["history"].panel.plotted()[
        "reference"
    ]  # harbour.jpg has EXIF GPS: every placed turn is measured
    assert xs == [float(t.number) for t in window.state.turns if t.prediction.point is not None]


def test_stop_keeps_a_cancelled_turn_and_the_turns_before(
    qtbot: QtBot, window: MainWindow, images: list[Path], tiny_model: Path
) -> None:
    window.app.cases.create("Stop")
    import_and_wait(qtbot, window, images[:1])
    install_model(window, tiny_model)
    window.app.sessions.max_new_tokens = 16
    window.app.sessions.start("direct")
    wait_turns(qtbot, window, 1)
    # Long enough to be stopped part way, short enough for the tiny model's 2,048-token context.
    window.app.sessions.max_new_tokens = 1500
    window.docks["hints"].composer.text.setText("Is this in Europe?")
    window.docks["hints"].composer.send_button.click()
    qtbot.waitUntil(lambda: bool(window.docks["session"].panel.stream.toPlainText()), timeout=60000)
    window.app.sessions.stop()
    wait_turns(qtbot, window, 2)
    assert [t.status for t in window.state.turns] == [TurnStatus.DONE, TurnStatus.CANCELLED]
    assert window.acts["start_session"].isEnabled()
