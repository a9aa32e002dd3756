"""The map dock: markers in the page's JS state, model text as text, map clicks through QWebChannel.

Turns are written with the case store (the same rows a session writes), so these tests do not need a
model; the whole loop with the tiny model is in test_session_loop.py.
"""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from geodesk.domain.model import Candidate, ModelIdentity, Prediction, Session, SessionMode, Turn
from geodesk.qt.main_window import MainWindow
from tests.qt.conftest import import_and_wait
from tests.qt.helpers import js, wait_summary

EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><b>bold</b>'


def add_session(window: MainWindow, predictions: list[Prediction]) -> None:
    assert window.app.ctx.store is not None and window.state.evidence is not None
    identity = ModelIdentity("test-rows", "0", "0" * 64)
    session = window.app.ctx.store.sessions.add(
        Session(None, window.state.evidence.sha256, SessionMode.DIRECT, identity, "hf", {}, "test")
    )
    assert session.id is not None
    for i, p in enumerate(predictions):
        window.app.ctx.store.turns.add(Turn(None, session.id, i, f"prompt {i}", f"answer {i}", p))
    window.state.session = session
    window.app.evidence.reload()


def test_turn_markers_path_and_exif_point_in_js_state(
    qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    window.app.cases.create("Map")
    import_and_wait(qtbot, window, images[:1])  # harbour.jpg carries a GPS point
    assert window.state.evidence is not None and window.state.evidence.gps is not None
    add_session(
        window,
        [
            Prediction(country="Sweden", lat=59.33, lon=18.07, valid=True),
            Prediction(
                country="Norway",
                lat=59.91,
                lon=10.75,
                valid=True,
                candidates=(
                    Candidate(59.9, 10.7, 0.7, 20.0, country="Norway"),
                    Candidate(60.4, 5.3, 0.3, 35.0, country="Norway"),
                ),
            ),
        ],
    )
    state = wait_summary(qtbot, window.docks["map"].view, lambda s: s["turnMarkers"] == [0, 1])
    assert state["pathPoints"] == 2 and state["exif"] is True
    assert state["selected"] == 1 and state["candidates"] == 2  # the latest turn's clusters
    # the history table and plot show the same turns
    assert window.docks["history"].panel.model.rowCount() == 2
    xs, ys = window.docks["history"].panel.plotted()["moved"]
    assert xs == [2.0] and 380 < ys[0] < 480  # Stockholm -> Oslo, at turn 2 (turns count from 1)
    assert window.docks["history"].panel.plotted()["reference"][0] == [1.0, 2.0]  # km from the EXIF point
    # selecting a turn in the table selects it on the map
    window.docks["history"].panel.select_turn(0)
    wait_summary(qtbot, window.docks["map"].view, lambda s: s["selected"] == 0 and s["candidates"] == 0)


def test_model_text_with_html_and_script_ends_up_as_text(
    qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    window.app.cases.create("Escaping")
    import_and_wait(qtbot, window, images[:1])
    add_session(
        window, [Prediction(country=EVIL, city="{{ 7*7 }}", lat=10.0, lon=20.0, valid=True, reasoning=EVIL)]
    )
    wait_summary(qtbot, window.docks["map"].view, lambda s: s["turnMarkers"] == [0])
    window.docks["map"].view.select_turn(0)  # opens the turn's popup
    qtbot.waitUntil(
        lambda: (
            js(qtbot, window.docks["map"].view, "document.querySelectorAll('.leaflet-popup-content').length")
            == 1
        ),
        timeout=10000,
    )
    text = js(qtbot, window.docks["map"].view, "document.querySelector('.leaflet-popup-content').textContent")
    assert "<script>window.pwned=1</script>" in text and "<b>bold</b>" in text and "{{ 7*7 }}" in text
    tags = js(
        qtbot,
        window.docks["map"].view,
        "document.querySelectorAll('.leaflet-popup-content script, "
        ".leaflet-popup-content img, .leaflet-popup-content b').length",
    )
    assert tags == 0
    assert js(qtbot, window.docks["map"].view, "typeof window.pwned") == "undefined"
    from PySide6.QtWebEngineCore import QWebEngineSettings

    remote = QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls
    assert (
        not window.docks["map"].view.page().settings().testAttribute(remote)
    )  # the page cannot fetch from the network
