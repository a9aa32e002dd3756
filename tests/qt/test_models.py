"""The model manager through the registry, the old model setting's migration, settings, and a remote
backend that dies in the middle of an answer (pytest-qt, offscreen, tiny models)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from pytestqt.qtbot import QtBot

from geodesk.domain.model import TurnStatus
from geodesk.engine.registry import ModelRegistry
from geodesk.qt.dialogs.models import ModelManagerDialog
from geodesk.qt.dialogs.settings import SettingsDialog
from geodesk.qt.main_window import MainWindow
from tests.qt.conftest import import_and_wait, install_model, wait_model_idle


def second_version(tiny_model: Path, tmp_path: Path, version: str) -> Path:
    """The tiny package under another version number (the manifest does not hash itself)."""
    copy = tmp_path / f"tiny-{version}"
    shutil.copytree(tiny_model, copy)
    manifest = copy / "geodesk-model.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["version"] = version
    manifest.write_text(json.dumps(data), encoding="utf-8")
    return copy


def wait_dialog(qtbot: QtBot, dialog: ModelManagerDialog) -> None:
    qtbot.waitUntil(lambda: not dialog.busy, timeout=60000)


def cell(dialog: ModelManagerDialog, ref: str, column: int) -> str:
    row = next(i for i, m in enumerate(dialog.models) if m.ref == ref)
    return dialog.table.item(row, column).text()


def test_model_manager_installs_activates_rolls_back_verifies_and_removes(
    qtbot: QtBot, window: MainWindow, tiny_model: Path, tmp_path: Path
) -> None:
    dialog = ModelManagerDialog(window.app, window)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 0 and "No model is installed" in dialog.detail.text()

    dialog.install(tiny_model)
    wait_dialog(qtbot, dialog)
    assert [m.ref for m in dialog.models] == ["tiny-llava@0.0.0"], dialog.status.text()
    assert cell(dialog, "tiny-llava@0.0.0", 2) == "active"
    assert cell(dialog, "tiny-llava@0.0.0", 3).startswith("UNTRAINED")
    assert "UNTRAINED" in window.docks["session"].panel.model_label.text()  # the session panel uses it now

    dialog.install(second_version(tiny_model, tmp_path, "0.0.2"))
    wait_dialog(qtbot, dialog)
    assert cell(dialog, "tiny-llava@0.0.2", 2) == ""  # installing does not switch what analysts run on
    assert "activate it" in dialog.status.text()

    assert dialog.select("tiny-llava@0.0.2")
    dialog.activate_button.click()
    assert ModelRegistry(window.app.workspace_path).active().ref == "tiny-llava@0.0.2"  # type: ignore[union-attr]
    assert window.state.model is not None and window.state.model.ref == "tiny-llava@0.0.2"
    dialog.rollback_button.click()
    assert ModelRegistry(window.app.workspace_path).active().ref == "tiny-llava@0.0.0"  # type: ignore[union-attr]

    installed = window.app.workspace_path / "models" / "tiny-llava" / "0.0.2"
    (installed / "config.json").write_text("{}", encoding="utf-8")  # someone edited the package
    dialog.select("tiny-llava@0.0.2")
    dialog.verify_button.click()
    wait_dialog(qtbot, dialog)
    assert dialog.last_verify is not None and dialog.last_verify.mismatched == ("config.json",)
    assert [dialog.problems.item(i).text() for i in range(dialog.problems.count())] == [
        "changed: config.json"
    ]
    assert "does not match" in dialog.status.text()

    dialog.select("tiny-llava@0.0.0")
    dialog.remove_button.click()  # the active version: the registry refuses and says how to switch
    wait_dialog(qtbot, dialog)
    assert "is the active version of tiny-llava and cannot be removed" in dialog.status.text()
    assert len(dialog.models) == 2
    dialog.select("tiny-llava@0.0.2")
    dialog.remove_button.click()
    wait_dialog(qtbot, dialog)
    assert [m.ref for m in dialog.models] == ["tiny-llava@0.0.0"]
    assert not installed.exists()


def test_a_bad_install_source_is_a_message(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    dialog = ModelManagerDialog(window.app, window)
    qtbot.addWidget(dialog)
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    dialog.install(folder)
    wait_dialog(qtbot, dialog)
    assert "is not a model" in dialog.status.text() and dialog.models == []


def test_the_untrained_tiny_model_is_installed_through_the_registry(qtbot: QtBot, window: MainWindow) -> None:
    dialog = ModelManagerDialog(window.app, window)
    qtbot.addWidget(dialog)
    dialog.create_tiny()
    wait_dialog(qtbot, dialog)
    [model] = ModelRegistry(window.app.workspace_path).list()
    assert model.untrained and model.active, dialog.status.text()
    assert "UNTRAINED" in dialog.status.text() and "UNTRAINED" in window.windowTitle()
    assert not any(p.name.startswith(".tiny-") for p in window.app.workspace_path.iterdir())


def test_the_old_model_setting_is_migrated(window: MainWindow, tiny_model: Path, tmp_path: Path) -> None:
    ws = window.app.ctx.workspace
    folder = tmp_path / "old-model"
    shutil.copytree(tiny_model, folder)
    # an existing folder the registry does not know: kept, used in place
    ws.save_settings(replace(ws.load_settings(), extra={"desktop_model_path": str(folder), "x": 1}))
    window.app.models.migrate_legacy()
    window.app.models.changed()
    assert window.state.legacy_model_folder == folder
    assert (
        window.state.model is not None
        and window.state.model.kind == "folder"
        and window.state.model.untrained
    )
    # installing a model and activating it ends the folder's use, and the setting goes
    ref = install_model(window, tiny_model)
    window.app.models.activate(ref)
    assert (
        window.state.legacy_model_folder is None
        and window.state.model is not None
        and window.state.model.ref == ref
    )
    assert ws.load_settings().extra == {"x": 1}
    # a folder that is gone is dropped at start
    ws.save_settings(replace(ws.load_settings(), extra={"desktop_model_path": str(tmp_path / "gone")}))
    window.app.models.migrate_legacy()
    assert window.state.legacy_model_folder is None and ws.load_settings().extra == {}


def test_settings_are_saved_and_used_for_the_backend(window: MainWindow) -> None:
    dialog = SettingsDialog(window.app, window)
    dialog.backend.setCurrentText("remote")
    dialog.endpoints.setPlainText("http://127.0.0.1:8001\nftp://nope")
    assert not dialog.save() and "ftp://nope is not an endpoint" in dialog.message.text()
    dialog.endpoints.setPlainText("http://127.0.0.1:8001\n\nhttp://127.0.0.1:8002/v1\n")
    dialog.api_key.setText("s3cret")
    dialog.remote_model.setText("gaga")
    assert dialog.save()
    saved = window.app.ctx.workspace.load_settings()
    assert saved.backend == "remote" and saved.remote_api_key == "s3cret" and saved.remote_model == "gaga"
    assert saved.remote_endpoints == ("http://127.0.0.1:8001", "http://127.0.0.1:8002/v1")
    assert window.state.model is not None and window.state.model.kind == "remote"
    assert "127.0.0.1:8002" in window.docks["session"].panel.model_label.text()

    again = SettingsDialog(window.app, window)  # what was saved is what the dialog shows next time
    assert again.endpoints.toPlainText().splitlines() == list(saved.remote_endpoints)
    assert not again.device.isEnabled() and again.api_key.text() == "s3cret"
    again.backend.setCurrentText("hf")
    again.dtype.setCurrentText("fp32")
    again.quantization.setCurrentText("none")
    assert again.save()
    saved = window.app.ctx.workspace.load_settings()
    assert (saved.backend, saved.dtype) == ("hf", "fp32")
    assert saved.remote_endpoints == ("http://127.0.0.1:8001", "http://127.0.0.1:8002/v1")  # kept for later


def test_a_remote_server_dying_mid_answer_shows_the_error_and_keeps_earlier_turns(
    said: list[str], qtbot: QtBot, window: MainWindow, images: list[Path], tiny_model: Path
) -> None:
    from geodesk.engine.backends.hf import HFBackend
    from geodesk.services.serving import ChatServer, ServeConfig
    from tests.services.test_serving import GatedBackend

    gated = GatedBackend(HFBackend(tiny_model))
    server = ChatServer(gated, ServeConfig(host="127.0.0.1", port=0)).start()
    try:
        ws = window.app.ctx.workspace
        ws.save_settings(replace(ws.load_settings(), backend="remote", remote_endpoints=(server.url,)))
        window.app.models.changed()
        window.app.cases.create("Remote")
        import_and_wait(qtbot, window, images[:1])
        window.app.sessions.max_new_tokens = 8
        window.app.sessions.start("direct")
        wait_model_idle(qtbot, window)
        assert [t.status for t in window.state.turns] == [TurnStatus.DONE], said
        assert window.app.models.backend is not None and window.app.models.backend.name == "remote"

        gated.hold_after_first_token = True  # the next answer stops after one piece...
        window.docks["session"].panel.stream.textChanged.connect(
            lambda: server.abort_connections()
        )  # ...and dies
        window.docks["hints"].composer.text.setText("Is this in Europe?")
        window.docks["hints"].composer.send_button.click()
        wait_model_idle(qtbot, window)
        gated.release.set()
        assert [t.status for t in window.state.turns] == [TurnStatus.DONE, TurnStatus.FAILED]
        assert "turn 2 failed" in said[-1], said
        assert "Turn 2: failed" in window.docks["session"].panel.status.text()
        assert window.docks["history"].panel.model.rowCount() == 2  # the first turn is still shown
    finally:
        server.shutdown(abort_connections=True)
