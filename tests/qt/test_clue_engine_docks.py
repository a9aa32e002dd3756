"""Wiring tests of the clue engine's views: the engine clue rows with review, the leading countries,
sun marks on the viewer drawn as a band on the map, the contradiction flags on the turn, the Clues
menu; and every one of them empty again when another item is selected."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, Qt
from pytestqt.qtbot import QtBot

from geodesk.domain.model import ClueStatus, SessionMode
from geodesk.qt.main_window import MainWindow
from geodesk.services.sessions import locate
from tests.clues.conftest import sign_photo
from tests.qt.conftest import import_and_wait, make_jpeg, writes_done
from tests.qt.helpers import js, wait_summary
from tests.scripted import ScriptedAnswers
from tests.store.conftest import add_engine_clue

ANSWER_BR = json.dumps({"country": "Brazil", "city": "São Paulo", "lat": -23.55, "lon": -46.63})
EVIL = "<img src=x onerror=alert(1)><b>Toshkent</b>"


def _case(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> tuple[str, str]:
    window.app.cases.create("Signs")
    sign = sign_photo(tmp_path / "sign.jpg")
    plain = make_jpeg(tmp_path / "plain.jpg", (90, 90, 90))
    import_and_wait(qtbot, window, [sign, plain])
    names = {e.original_name: e.sha256 for e in window.state.evidence_items}
    window.app.evidence.select(names["sign.jpg"])
    return names["sign.jpg"], names["plain.jpg"]


def test_engine_clue_rows_review_leading_countries_and_reset(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    sign, plain = _case(qtbot, window, tmp_path)
    store = window.app.ctx.case_store()
    phone = add_engine_clue(store, sign).clue  # type: ignore[attr-defined]
    add_engine_clue(store, sign, category="text", text=EVIL, countries={}, others=1.0)
    window.app.evidence.reload()
    panel = window.docks["engine_clues"].panel  # type: ignore[attr-defined]
    leading = window.docks["leading"].panel  # type: ignore[attr-defined]
    rows = panel.row_texts()
    assert rows[0][:5] == ("phone", "+998 phone prefix", rows[0][2], "0.90", "proposed")
    assert "OCR rapidocr 3.10" in rows[0][2] and rows[0][5] == "UZ 1.00; rules out the rest"
    assert rows[1][1] == EVIL and rows[1][5] == "says nothing about places"  # shown as it is, as text
    assert not panel.send_button.isEnabled() and panel.run_button.isEnabled()
    assert "accept clues" in leading.summary.text()

    panel.table.selectRow(0)
    assert window.state.selected_clue == phone.id
    qtbot.mouseClick(panel.accept_button, Qt.MouseButton.LeftButton)
    writes_done(qtbot, window)  # the review is stored in a job
    assert store.clues.get(phone.id).status is ClueStatus.ACCEPTED
    qtbot.waitUntil(lambda: bool(leading.rows()), timeout=30000)  # combined in a job
    assert leading.rows()[0][0] == "Uzbekistan (UZ)" and leading.rows()[0][2] == "supported"
    assert leading.rows()[0][3] == "supported by: +998 phone prefix"
    panel.table.item(0, 1).setText("+998 71 phone prefix")  # an inline edit
    writes_done(qtbot, window)
    assert store.clues.get(phone.id).status is ClueStatus.EDITED
    assert panel.row_texts()[0][1] == "+998 71 phone prefix"

    window.app.evidence.select(plain)
    assert panel.row_texts() == [] and leading.rows() == [] and leading.flag_texts() == []
    assert "Run the clue engine" in leading.summary.text()


def test_sun_marks_on_the_image_draw_the_band_on_the_map(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    _sign, plain = _case(qtbot, window, tmp_path)
    viewer, marker = window.viewer, window.sun_marker
    panel = window.docks["engine_clues"].panel  # type: ignore[attr-defined]
    view = window.docks["map"].view  # type: ignore[attr-defined]
    qtbot.waitUntil(viewer.has_image, timeout=20000)
    qtbot.mouseClick(panel.mark_button, Qt.MouseButton.LeftButton)
    assert window.state.sun_marking

    def at(x: float, y: float) -> QPoint:
        return viewer.mapFromScene(QPointF(x, y))

    port = viewer.viewport()
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=at(410, 100))
    qtbot.mouseMove(port, at(420, 200))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=at(420, 300))
    marks = window.state.sun_marks
    assert marks is not None and marks.object_box is not None and marks.shadow_tip is None
    assert abs(marks.object_box.y1 - 300) <= 3 and abs(marks.object_box.y0 - 100) <= 3
    qtbot.mouseClick(port, Qt.MouseButton.LeftButton, pos=at(560, 300))
    marks = window.state.sun_marks
    assert marks is not None and marks.shadow_tip is not None and abs(marks.shadow_tip[0] - 560) <= 3
    assert marker.drawn() == 2 and "shadow tip" in panel.marks_label.text()

    qtbot.mouseClick(panel.add_sun_button, Qt.MouseButton.LeftButton)  # the EXIF time, in a job
    qtbot.waitUntil(lambda: any(c.clue.category == "sun" for c in window.state.engine_clues), timeout=60000)
    assert window.state.sun_marks is None and marker.drawn() == 0 and not panel.mark_button.isChecked()
    sun = next(c for c in window.state.engine_clues if c.clue.category == "sun")
    window.app.clues.accept(sun.clue.id)
    qtbot.waitUntil(lambda: view.is_ready, timeout=30000)
    seen = wait_summary(
        qtbot,
        view,
        lambda s: bool(s.get("constraint")) and s["constraint"]["counts"]["area"] >= 1,
        timeout=30000,
    )
    assert seen["constraint"]["counts"]["supported"] >= 1  # the countries inside the band
    assert js(qtbot, view, "window.geodesk.constraintLayer.getLayers().length") == 1

    window.app.evidence.select(plain)  # the map never keeps the sign's band
    wait_summary(qtbot, view, lambda s: s.get("constraint") is None, timeout=15000)


def test_a_contradicted_turn_is_flagged_in_the_history_and_the_panel(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    sign, plain = _case(qtbot, window, tmp_path)
    store = window.app.ctx.case_store()
    locate(store, sign, ScriptedAnswers([ANSWER_BR]), SessionMode.DIRECT)
    add_engine_clue(store, sign, status="accepted")
    window.app.evidence.reload()
    history = window.docks["history"].panel  # type: ignore[attr-defined]
    leading = window.docks["leading"].panel  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: bool(leading.flag_texts()), timeout=30000)
    assert leading.flag_texts()[0].startswith("Turn 1: BR is ruled out by clue")
    status = history.model.index(0, 6)
    assert "⚠ against 1 clue(s)" in history.model.data(status)
    assert "+998 phone prefix" in history.model.data(status, Qt.ItemDataRole.ToolTipRole)

    window.app.evidence.select(plain)
    assert leading.flag_texts() == [] and history.model.turn_flags == {}


def test_the_clues_menu_follows_the_state(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    acts = window.acts
    assert not acts["run_clue_engine"].isEnabled()  # no image
    _case(qtbot, window, tmp_path)
    assert acts["run_clue_engine"].isEnabled() and acts["mark_sun"].isEnabled()
    assert not acts["run_clue_engine_region"].isEnabled() and not acts["send_clues"].isEnabled()
    titles = [a.text() for a in window.menuBar().actions()]
    assert "&Clues" in titles
    acts["mark_sun"].trigger()
    assert window.state.sun_marking and window.docks["engine_clues"].panel.mark_button.isChecked()  # type: ignore[attr-defined]
    acts["mark_sun"].trigger()
    assert not window.state.sun_marking


def test_a_contradicted_turn_is_marked_on_the_map_and_its_popup_names_the_clue(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    sign, plain = _case(qtbot, window, tmp_path)
    store = window.app.ctx.case_store()
    locate(store, sign, ScriptedAnswers([ANSWER_BR]), SessionMode.DIRECT)
    clue = add_engine_clue(store, sign, text=EVIL, status="accepted").clue  # type: ignore[attr-defined]
    window.app.evidence.reload()
    view = window.docks["map"].view  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: view.is_ready, timeout=30000)
    wait_summary(qtbot, view, lambda s: s["flaggedTurns"] == [0], timeout=30000)
    assert js(qtbot, view, "document.querySelectorAll('.gd-turn.gd-flagged').length") == 1
    view.select_turn(0)  # opens the turn's popup
    popup = ".leaflet-popup-content .gd-flag-popup"
    qtbot.waitUntil(lambda: js(qtbot, view, f"document.querySelectorAll('{popup}').length") == 1,
                    timeout=10000)
    text = js(qtbot, view, f"document.querySelector('{popup}').textContent")
    assert "Contradicts 1 accepted clue(s)" in text and f"clue {clue.id} (phone: {EVIL})" in text
    assert js(qtbot, view, "document.querySelectorAll('.leaflet-popup-content img, .leaflet-popup-content b')"
                           ".length") == 0  # the clue's markup stays text

    window.app.clues.reject(clue.id)  # a rejected clue flags nothing
    wait_summary(qtbot, view, lambda s: s["flaggedTurns"] == [], timeout=30000)
    window.app.clues.accept(clue.id)
    wait_summary(qtbot, view, lambda s: s["flaggedTurns"] == [0], timeout=30000)
    window.app.evidence.select(plain)
    wait_summary(qtbot, view, lambda s: s["flaggedTurns"] == [] and s["turnMarkers"] == [], timeout=15000)
