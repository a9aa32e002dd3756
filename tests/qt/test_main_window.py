"""The main window: cases, import, regions, clues, layout, model errors (pytest-qt, offscreen)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QDockWidget
from pytestqt.qtbot import QtBot

from geodesk.domain.model import Clue, ClueSource, ClueStatus, Hint, HintKind, Region
from geodesk.qt.hint_composer import HintComposer
from geodesk.qt.main_window import MainWindow
from geodesk.qt.session_panel import conversation_html, prediction_card_html
from tests.qt.conftest import import_and_wait, wait_image, writes_done


def test_window_opens_with_its_docks(window: MainWindow) -> None:
    names = {d.objectName() for d in window.findChildren(QDockWidget)}
    assert {
        "casesDock",
        "evidenceDock",
        "mapDock",
        "sessionDock",
        "hintsDock",
        "historyDock",
        "cluesDock",
        "findingDock",
        "metadataDock",
    } <= names
    assert window.state.started and window.docks["history"].panel.plot is not None
    assert not window.acts["close_case"].isEnabled()
    assert window.acts["new_case"].isEnabled()


def test_create_close_and_reopen_a_case(window: MainWindow) -> None:
    case_id = window.app.cases.create("Harbour photos")
    assert case_id is not None and window.app.ctx.store is not None
    assert window.docks["cases"].case_list.count() == 1 and "Harbour photos" in window.windowTitle()
    window.app.cases.close()
    assert window.app.ctx.store is None and not window.acts["close_case"].isEnabled()
    assert window.app.cases.open("Harb")  # a unique title prefix is enough, as on the command line
    assert window.app.ctx.store is not None and window.app.ctx.store.case.id == case_id
    assert window.app.ctx.workspace.load_settings().recent_cases[0] == case_id
    assert window.recent_menu.actions()[0].text().startswith("Harbour photos")


def test_bad_case_title_and_unknown_case_are_messages(said: list[str], window: MainWindow) -> None:
    assert window.app.cases.create("   ") is None
    assert "title" in said[-1]
    assert not window.app.cases.open("nothing-like-this")
    assert "no case matches" in said[-1]


def test_import_with_a_broken_image_imports_the_rest(
    said: list[str], qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    window.app.cases.create("Import test")
    report = import_and_wait(qtbot, window, images)
    assert len(report.imported) == 2  # type: ignore[attr-defined]
    assert len(window.docks["evidence"].grid.shas()) == 2
    assert any("broken.jpg" in e for e in said), said
    assert "could not be imported" in said[-1]
    # the first image is selected and shown, with its GPS in the metadata panel
    wait_image(qtbot, window)
    assert window.state.evidence is not None


def test_region_drawing_with_the_mouse_pins_a_clue(
    qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    window.app.cases.create("Regions")
    import_and_wait(qtbot, window, images[:1])
    wait_image(qtbot, window)
    viewer = window.viewer
    window.acts["draw_region"].setChecked(True)
    assert viewer.draw_mode()
    start, end = QPointF(40, 30), QPointF(200, 150)  # image pixels
    p0 = viewer.mapFromScene(start)
    p1 = viewer.mapFromScene(end)
    with qtbot.waitSignal(viewer.region_drawn) as drawn:
        qtbot.mousePress(viewer.viewport(), Qt.MouseButton.LeftButton, pos=p0)
        qtbot.mouseMove(viewer.viewport(), pos=QPoint((p0.x() + p1.x()) // 2, (p0.y() + p1.y()) // 2))
        qtbot.mouseMove(viewer.viewport(), pos=p1)
        qtbot.mouseRelease(viewer.viewport(), Qt.MouseButton.LeftButton, pos=p1)
    region: Region = drawn.args[0]
    tolerance = 2 / viewer.zoom() + 1  # one view pixel is 1/zoom image pixels
    assert abs(region.x0 - 40) <= tolerance and abs(region.y0 - 30) <= tolerance
    assert abs(region.x1 - 200) <= tolerance and abs(region.y1 - 150) <= tolerance
    assert window.docks["hints"].composer.region == region and window.docks["clues"].panel.pin.isChecked()

    window.docks["clues"].panel.category.setCurrentText("signage")
    window.docks["clues"].panel.text.setText("bilingual <b>street</b> sign")
    window.docks["clues"].panel.add_button.click()
    writes_done(qtbot, window)
    assert window.app.ctx.store is not None and window.state.evidence is not None
    clue = window.app.ctx.store.clues.list(evidence_sha256=window.state.evidence.sha256)[0]
    assert clue.region == region and clue.source == ClueSource.ANALYST
    assert [r.key for r in viewer.regions()] == [f"clue:{clue.id}"]
    window.docks["clues"].panel.select_clue(clue.id)  # type: ignore[arg-type]
    assert viewer.selected_key() == f"clue:{clue.id}"  # selecting the clue highlights its region


def test_start_up_sets_the_interpreter_for_the_ui_thread(window: MainWindow) -> None:
    import gc
    import sys

    from geodesk.qt.interpreter import SWITCH_INTERVAL_S

    assert window.state.started and gc.get_freeze_count() > 10000  # geodesk/qt/interpreter.py
    assert sys.getswitchinterval() == SWITCH_INTERVAL_S  # set when geodesk.qt is imported


def test_clue_accept_reject_and_edit(qtbot: QtBot, window: MainWindow, images: list[Path]) -> None:
    window.app.cases.create("Clues")
    import_and_wait(qtbot, window, images[:1])
    assert window.app.ctx.store is not None and window.state.evidence is not None
    sha = window.state.evidence.sha256
    a = window.app.ctx.store.clues.add(Clue(None, sha, "vegetation", "birch trees", ClueSource.MODEL))
    b = window.app.ctx.store.clues.add(Clue(None, sha, "road", "drives on the left", ClueSource.MODEL))
    window.app.evidence.reload()
    panel = window.docks["clues"].panel
    assert panel.tree.topLevelItemCount() == 2  # grouped by category
    panel.select_clue(a.id)  # type: ignore[arg-type]
    panel.accept_button.click()
    panel.select_clue(b.id)  # type: ignore[arg-type]
    panel.reject_button.click()
    writes_done(qtbot, window)
    statuses = {c.id: c.status for c in window.app.ctx.store.clues.list(evidence_sha256=sha)}
    assert statuses == {a.id: ClueStatus.ACCEPTED, b.id: ClueStatus.REJECTED}
    panel.edit_requested.emit(a.id, "silver birch trees")  # what editing the item in the tree sends
    writes_done(qtbot, window)
    edited = window.app.ctx.store.clues.get(a.id)  # type: ignore[arg-type]
    assert edited.text == "silver birch trees" and edited.status == ClueStatus.EDITED
    assert "2 accepted or edited, 1 rejected" not in window.docks["hints"].composer.clues_label.text()
    assert window.docks["hints"].composer.clues_label.text() == "1 accepted or edited, 1 rejected"


def test_layout_is_remembered_per_workspace(qtbot: QtBot, workspace: Path) -> None:
    first = MainWindow(workspace, restore_layout=True)
    qtbot.addWidget(first)
    first.show()
    first.docks["history"].hide()
    first.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, first.docks["map"])
    first.close()
    assert (workspace / "desktop.ini").is_file()
    second = MainWindow(workspace, restore_layout=True)
    qtbot.addWidget(second)
    second.show()
    assert not second.docks["history"].isVisible()
    assert second.dockWidgetArea(second.docks["map"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    second.reset_layout()
    assert second.docks["history"].isVisible()
    second.close()


def test_failing_model_load_is_a_message_not_a_crash(
    said: list[str], qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "llava"}), encoding="utf-8")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    # A folder chosen before the registry existed keeps being used in place (settings migration).
    settings = window.app.ctx.workspace.load_settings()
    window.app.ctx.workspace.save_settings(replace(settings, extra={"desktop_model_path": str(broken)}))
    window.app.models.migrate_legacy()
    window.app.models.changed()
    assert "broken-model" in window.docks["session"].panel.model_label.text()
    window.app.models.load()
    qtbot.waitUntil(lambda: bool(said) and not window.state.model_running, timeout=60000)
    assert "could not be loaded" in said[-1]
    assert window.app.models.backend is None and window.isVisible()
    assert window.acts["load_model"].isEnabled()  # the analyst can fix the folder and try again


def test_hint_composer_checks_what_each_kind_needs(qtbot: QtBot) -> None:
    composer = HintComposer()
    qtbot.addWidget(composer)
    sent: list[Hint] = []
    composer.hint_requested.connect(sent.append)
    assert composer.kind.count() == len(HintKind)
    composer.set_kind(HintKind.QA)
    composer.text.setText("What script is on the sign?")
    composer.send()
    assert not sent and "answer" in composer.message.text()
    composer.answer.setText("Cyrillic")
    composer.send()
    assert sent[-1] == Hint(HintKind.QA, "What script is on the sign?", answer="Cyrillic")
    composer.set_kind(HintKind.REGION)
    composer.text.setText("a kiosk")
    composer.send()
    assert "draw a region" in composer.message.text()
    composer.set_region(Region(1, 2, 30, 40))
    composer.send()
    assert sent[-1].region == Region(1, 2, 30, 40)
    composer.set_kind(HintKind.CORRECT)
    composer.text.clear()
    composer.send()
    assert sent[-1] == Hint(HintKind.CORRECT, "")


def test_model_text_is_escaped_in_the_session_panel() -> None:
    from geodesk.domain.model import Prediction, Turn

    evil = "<script>alert(1)</script><img src=x>"
    card = prediction_card_html(Prediction(country=evil, valid=True))
    assert "<script>" not in card and "&lt;script&gt;" in card
    html = conversation_html(
        [Turn(1, 1, 0, evil, evil, Prediction(), hints=(Hint(HintKind.QUESTION, evil),))]
    )
    assert "<img" not in html and html.count("&lt;script&gt;") == 3
