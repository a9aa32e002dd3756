"""The demo from the app: Help → Open the demo case builds it in a job and opens it, the model manager
offers the demo model, and the synthetic badge is on the session dock, the prediction card and the map
popups of a session on the demo model."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from geodesk.domain.model import CAVEAT_TEXT, Prediction, TurnStatus
from geodesk.engine.package import read_manifest, save_manifest
from geodesk.qt.dialogs.models import ModelManagerDialog
from geodesk.qt.main_window import MainWindow
from geodesk.qt.session_panel import SYNTHETIC_BADGE
from geodesk.services.demo import DEMO_TITLE, DemoError

SYNTHETIC = CAVEAT_TEXT["synthetic"]


@pytest.fixture
def scenes():  # type: ignore[no-untyped-def]
    """The GeoSynth generator called in the job's thread (the service runs it as a child process)."""
    from training.geosynth.fonts import FontBook
    from training.geosynth.generator import generate
    from training.geosynth.world import load_world

    world, fonts = load_world(), FontBook.system()

    def generator(out: Path, n: int, seed: int) -> list[Path]:
        generate(out, n=n, seed=seed, world=world, fonts=fonts)
        return sorted((out / "images").glob("*.png"))

    return generator


@pytest.fixture
def demo_package(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A real LLaVA package labelled as the demo model is (synthetic provenance)."""
    package = tmp_path / "demo-model"
    shutil.copytree(tiny_model_dir, package)
    manifest = replace(read_manifest(package), name="geosynth-demo", version="0.1.0", untrained=False,
                       provenance={"training_data": {"kind": "geosynth", "synthetic": True}})
    save_manifest(package, manifest)
    return package


def _menu_action(window: MainWindow, menu: str, text: str):  # type: ignore[no-untyped-def]
    (top,) = [a for a in window.menuBar().actions() if a.text().replace("&", "") == menu]
    (action,) = [a for a in top.menu().actions() if a.text().replace("&", "") == text]
    return action


def test_help_opens_the_demo_case_off_the_ui_thread_and_badges_every_answer(
    qtbot: QtBot, window: MainWindow, scenes, demo_package: Path  # type: ignore[no-untyped-def]
) -> None:
    window.app.demo.generator = scenes
    window.app.demo.demo_model_dir = demo_package
    qtbot.waitUntil(lambda: window.state.started, timeout=30000)
    action = _menu_action(window, "Help", "Open the demo case")
    assert action.isEnabled()
    action.trigger()
    # the job runs in the thread pool: the UI thread is back at once, with the work shown as progress
    assert "demo" in window.state.busy and window.state.progress is not None
    assert not action.isEnabled()
    qtbot.waitUntil(lambda: "demo" not in window.state.busy, timeout=240000)
    assert window.state.case is not None and window.state.case.title == DEMO_TITLE
    assert len(window.state.evidence_items) == 12 and window.state.progress is None
    assert SYNTHETIC_BADGE in window.docks["session"].panel.model_label.text()

    window.app.evidence.select(window.state.evidence_items[0].sha256)
    window.app.sessions.max_new_tokens = 24
    window.app.sessions.start("direct")
    qtbot.waitUntil(lambda: "turn" not in window.state.busy and len(window.state.turns) >= 1, timeout=120000)
    assert window.state.turns[0].status == TurnStatus.DONE, window.state.turns[0].error
    assert window.state.session is not None and window.state.session.model.caveat == "synthetic"
    assert SYNTHETIC in window.docks["session"].panel.card.toPlainText()
    # the tiny model seldom answers a point; the same turn with one, as the state holds it, gets a popup
    placed = replace(window.state.turns[0], prediction=Prediction(country="Norway", lat=60.39, lon=5.32))
    window.state.turns = (placed,)
    popups = [t.label for t in window.docks["map"].view.state().turns]
    assert len(popups) == 1 and popups[0].startswith(f"⚠ {SYNTHETIC}\nTurn 1: ")


def test_a_demo_that_cannot_be_built_says_why(qtbot: QtBot, window: MainWindow) -> None:
    said: list[str] = []
    window.state.message.connect(lambda m: said.append(m.text) if m.error else None)

    def broken(out: Path, n: int, seed: int) -> list[Path]:
        raise DemoError("the GeoSynth generator failed: no fonts")

    window.app.demo.generator = broken
    qtbot.waitUntil(lambda: window.state.started, timeout=30000)
    _menu_action(window, "Help", "Open the demo case").trigger()
    qtbot.waitUntil(lambda: "demo" not in window.state.busy, timeout=60000)
    assert said and "the demo case could not be built: the GeoSynth generator failed: no fonts" in said[-1]
    assert window.state.case is None and window.state.progress is None
    assert _menu_action(window, "Help", "Open the demo case").isEnabled()


def test_the_model_manager_offers_the_demo_model(
    qtbot: QtBot, window: MainWindow, demo_package: Path, tmp_path: Path
) -> None:
    window.app.demo.demo_model_dir = tmp_path / "not-built"
    dialog = ModelManagerDialog(window.app, window)
    qtbot.addWidget(dialog)
    assert not dialog.demo_button.isEnabled()
    assert "python -m training.geosynth.demo" in dialog.demo_button.toolTip()

    window.app.demo.demo_model_dir = demo_package
    dialog.refresh()
    assert dialog.demo_button.isEnabled()
    dialog.demo_button.click()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=60000)
    assert "SYNTHETIC demo model" in dialog.status.text()
    (row,) = [r for r, m in enumerate(dialog.models) if m.name == "geosynth-demo"]
    assert dialog.table.item(row, 3).text() == "SYNTHETIC (demo only)"
    dialog.select("geosynth-demo@0.1.0")
    assert "SYNTHETIC demo model" in dialog.detail.text()
