"""Application-layer fixtures: an Application on a fresh workspace with the synchronous job runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from geodesk.app import Application, SyncRunner


def write_photo(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (96, 72)) -> Path:
    Image.new("RGB", size, colour).save(path, "JPEG", quality=85)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    """Two good photos and one broken file, in one folder."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    good = [
        write_photo(folder / "a-harbour.jpg", (30, 90, 160)),
        write_photo(folder / "b-street.jpg", (160, 120, 40)),
    ]
    broken = folder / "c-broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return [*good, broken]


@pytest.fixture
def app(workspace: Path) -> Application:
    application = Application(workspace, SyncRunner())
    application.evidence.import_workers = 0  # import in this thread: no process pool in tests
    application.start()
    return application


def install_tiny(app: Application, folder: Path) -> str:
    from geodesk.engine.registry import ModelRegistry

    model = ModelRegistry(app.workspace_path).install(folder)
    app.models.changed()
    return model.ref
