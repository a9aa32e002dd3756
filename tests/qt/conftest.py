"""Qt test fixtures: a main window on a fresh workspace, and images to import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6 import QtWebEngineWidgets  # noqa: F401  (WebEngine must be imported before the QApplication)
from pytestqt.qtbot import QtBot

from geodesk.qt.main_window import MainWindow


def make_jpeg(
    path: Path,
    colour: tuple[int, int, int],
    size: tuple[int, int] = (320, 240),
    gps: tuple[float, float] | None = None,
) -> Path:
    from PIL import Image

    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    if gps is not None:

        def dms(value: float) -> tuple[float, float, float]:
            value = abs(value)
            d = int(value)
            m = int((value - d) * 60)
            return (float(d), float(m), round((value - d - m / 60) * 3600, 4))

        exif[0x8825] = {
            1: "N" if gps[0] >= 0 else "S",
            2: dms(gps[0]),
            3: "E" if gps[1] >= 0 else "W",
            4: dms(gps[1]),
        }
    image.save(path, "JPEG", quality=80, exif=exif)
    return path


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "incoming"
    folder.mkdir()
    good = [
        make_jpeg(folder / "harbour.jpg", (30, 90, 160), gps=(59.9139, 10.7522)),
        make_jpeg(folder / "street.jpg", (160, 120, 40)),
    ]
    broken = folder / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return [*good, broken]


@pytest.fixture
def window(qtbot: QtBot, workspace: Path) -> Iterator[MainWindow]:
    w = MainWindow(workspace, restore_layout=False)
    w.app.evidence.import_workers = 0  # import in the job's thread: no process start-up in tests
    qtbot.addWidget(w)
    w.show()
    yield w
    w.runner.cancel_all()
    w.runner.wait(20000)


@pytest.fixture
def said(window: MainWindow) -> list[str]:
    """Every error message the window was told to show, newest last."""
    seen: list[str] = []
    window.state.message.connect(lambda m: seen.append(m.text) if m.error else None)
    return seen


def import_and_wait(qtbot: QtBot, window: MainWindow, paths: list[Path]) -> object:
    outcomes: list[object] = []
    window.state.import_finished.connect(outcomes.append)
    assert window.app.evidence.import_paths(paths)
    qtbot.waitUntil(lambda: bool(outcomes) and "import" not in window.state.busy, timeout=30000)
    return outcomes[0]


def writes_done(qtbot: QtBot, window: MainWindow) -> None:
    """Wait until the analyst's writes (clue reviews, findings: jobs, in order) have ended and been shown.

    The views drawn from all of a selection's rows (map, history) draw a write's result once the
    selection's own read is in, so a write made while that read is on its way waits for it too."""
    qtbot.waitUntil(
        lambda: window.app.ctx.writes_pending == 0 and not window.state.selection_loading, timeout=10000
    )


def wait_image(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(window.viewer.has_image, timeout=10000)


def install_model(window: MainWindow, folder: Path) -> str:
    """Install a model package through the registry (the first one becomes active); returns its ref."""
    from geodesk.engine.registry import ModelRegistry

    model = ModelRegistry(window.app.workspace_path).install(folder)
    window.app.models.changed()
    return model.ref


def wait_model_idle(qtbot: QtBot, window: MainWindow, timeout: int = 120000) -> None:
    qtbot.waitUntil(lambda: not window.state.model_running, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The untrained tiny LLaVA package, built once per test session (geodesk.engine.tiny)."""
    from geodesk.engine.tiny import create_tiny_model

    folder = tmp_path_factory.mktemp("models") / "tiny-llava-untrained"
    create_tiny_model(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _delete_web_pages_before_the_profile(qapp: object) -> Iterator[None]:
    """Qt WebEngine crashes at exit when a page outlives its profile: delete every page first."""
    yield
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    from geodesk.qt import map_view

    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    map_view.release_offline_profile()
