"""Wiring tests per dock: each shows the state and forwards its widget's actions to a controller."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from geodesk.qt.main_window import MainWindow
from tests.qt.conftest import import_and_wait, writes_done

EVIL_NAME = "<img src=x onerror=alert(1)><b>bold.jpg"


def test_a_map_click_proposes_the_finding_and_only_save_records_it(
    qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    window.app.cases.create("Finding")
    import_and_wait(qtbot, window, images[1:2])  # street.jpg: no GPS
    editor = window.docks["finding"].editor
    assert editor.isEnabled() and editor.lat.text() == "" and editor.lon.text() == ""  # empty, not 0, 0
    editor.save_button.click()
    assert window.app.ctx.store is not None and window.state.evidence is not None
    sha = window.state.evidence.sha256
    assert window.app.ctx.store.findings.history(sha) == []  # no point: nothing saved
    assert "Give the point first" in editor.hint.text()

    window.docks["map"].view.finding_clicked.emit(48.8566, 2.3522)  # what the page's click sends
    assert (editor.lat.text(), editor.lon.text()) == ("48.856600", "2.352200")
    assert window.app.ctx.store.findings.history(sha) == []  # a click proposes only
    editor.reasoning.setPlainText("the river bend")
    editor.save_button.click()
    writes_done(qtbot, window)
    [saved] = window.app.ctx.store.findings.history(sha)
    assert (saved.lat, saved.lon, saved.reasoning, saved.version) == (48.8566, 2.3522, "the river bend", 1)
    assert editor.history.count() == 1 and window.docks["map"].view.state().finding == saved


def test_the_session_dock_forwards_mode_samples_and_model_choice(window: MainWindow) -> None:
    panel = window.docks["session"].panel
    panel.mode.setCurrentIndex(panel.mode.findData("clues"))
    panel.samples.setValue(3)
    assert (window.state.session_mode, window.state.samples) == ("clues", 3)
    panel.model_chosen.emit("tiny-llava@9.9.9")
    assert window.state.model_ref == "tiny-llava@9.9.9"
    assert not panel.start_button.isEnabled() and panel.status.text() == "choose an image first"


def test_clue_and_hint_docks_share_the_drawn_region(
    qtbot: QtBot, window: MainWindow, images: list[Path]
) -> None:
    from geodesk.domain.model import Region

    window.app.cases.create("Regions")
    import_and_wait(qtbot, window, images[:1])
    window.viewer.region_drawn.emit(Region(5, 6, 50, 60))  # what a drag on the image sends
    assert window.docks["hints"].composer.region == Region(5, 6, 50, 60)
    clues = window.docks["clues"].panel
    assert clues.pin.isChecked()
    clues.text.setText("a kiosk")
    clues.add_button.click()
    writes_done(qtbot, window)
    [clue] = window.state.clues
    assert clue.region == Region(5, 6, 50, 60) and window.state.pending_region is None
    assert not clues.pin.isChecked()


def test_untrusted_text_is_plain_in_the_status_bar_lists_and_tooltips(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    from tests.qt.conftest import make_jpeg

    folder = tmp_path / "odd"
    folder.mkdir()
    photo = make_jpeg(folder / EVIL_NAME, (10, 20, 30))
    window.app.cases.create("Names")
    import_and_wait(qtbot, window, [photo])
    window.app.ctx.status(f"Imported {EVIL_NAME}")
    assert window.status_label.textFormat() == Qt.TextFormat.PlainText
    assert EVIL_NAME in window.status_label.text()
    grid = window.docks["evidence"].grid
    tip = grid.model_.item(0).toolTip()
    assert "<img" not in tip and "&lt;img" in tip  # escaped: shown as the characters it has
    metadata = window.docks["metadata"].panel
    assert metadata.topLevelItem(0).text(1) == EVIL_NAME
    assert "<b>" not in metadata.topLevelItem(0).toolTip(1)
    assert window.docks["session"].panel.status.textFormat() == Qt.TextFormat.PlainText
    assert window.docks["session"].panel.model_label.textFormat() == Qt.TextFormat.PlainText


def test_the_window_fits_its_screen_and_keeps_values_readable_at_1366x768(
    qtbot: QtBot, workspace: Path
) -> None:
    screen = QGuiApplication.primaryScreen().availableGeometry()
    window = MainWindow(workspace, restore_layout=False)
    qtbot.addWidget(window)
    window.show()
    least = window.minimumSizeHint()
    assert least.width() <= 1366 and least.height() <= 768  # the layout fits a 1366×768 laptop
    assert window.width() <= max(screen.width(), least.width())
    assert window.height() <= max(screen.height(), least.height())
    window.resize(1366, 768)
    window.apply_default_sizes()
    qtbot.waitUntil(lambda: window.docks["metadata"].width() > 0)
    metadata = window.docks["metadata"]
    window.docks["metadata"].raise_()
    assert metadata.width() >= 220  # the left column leaves room for the values, not only the names
    table = window.docks["history"].panel.table
    header = table.horizontalHeader()
    assert header.sectionSize(2) >= 100  # the prediction column stays readable
    window.close()


def test_report_preview_then_save_writes_what_was_previewed(
    qtbot: QtBot, window: MainWindow, images: list[Path], tmp_path: Path
) -> None:
    import hashlib

    from geodesk.qt.dialogs.report import ReportDialog

    window.app.cases.create("Report case")
    import_and_wait(qtbot, window, images[:1])
    dialog = ReportDialog(window.app, window)
    dialog.reference.setText("REF-42")
    assert not dialog.save_button.isEnabled()  # nothing to save before the preview
    assert dialog.build()
    qtbot.waitUntil(lambda: dialog.draft is not None, timeout=60000)
    assert dialog.draft is not None and dialog.save_button.isEnabled()
    assert "REF-42" in dialog.draft.html and dialog.draft.items == 1
    out = tmp_path / "report.html"
    assert dialog.save(out)
    assert out.read_text(encoding="utf-8") == dialog.draft.html
    store = window.app.ctx.store
    assert store is not None
    head = store.audit.head()
    assert head is not None and head.action == "report.write"
    assert head.details["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    # A report built for one case is never shown or saved as another's.
    window.app.cases.create("Another case")
    assert dialog.draft is None and not dialog.save_button.isEnabled()
    assert not dialog.save(tmp_path / "other.html") and not (tmp_path / "other.html").exists()
    dialog.close()


def test_export_for_gis_writes_the_open_cases_layers(
    qtbot: QtBot, window: MainWindow, images: list[Path], tmp_path: Path
) -> None:
    import json

    assert not window.app.deliverables.export(tmp_path / "none.geojson")  # no case open
    window.app.cases.create("Export case")
    import_and_wait(qtbot, window, images[:1])  # harbour.jpg: EXIF GPS
    out = tmp_path / "case.geojson"
    assert window.app.deliverables.export(out)
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [f["properties"]["kind"] for f in document["features"]] == ["exif"]
