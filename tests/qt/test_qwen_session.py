"""A session with a Qwen2.5-VL model, run from the window: a tiny untrained qwen2_5_vl package installed
in the test's workspace, the session started with the Start button, the answer streamed and shown in
the conversation, a hint turn (text only: the family reuses its KV cache), and the model manager
listing the package's family and profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from geodesk.domain.model import TurnStatus
from geodesk.qt.main_window import MainWindow
from tests.qt.conftest import import_and_wait, install_model
from tests.qt.test_session_loop import wait_turns


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The untrained tiny Qwen2.5-VL package (geodesk.engine.families.tiny), built once per session."""
    from geodesk.engine.families.tiny import create_tiny_family_model

    folder = tmp_path_factory.mktemp("models") / "tiny-qwen2_5_vl"
    create_tiny_family_model(folder, "qwen2_5_vl", seed=0)
    return folder


def test_a_session_with_a_qwen_model_from_the_window(
    said: list[str], qtbot: QtBot, window: MainWindow, images: list[Path], tiny_qwen: Path
) -> None:
    window.app.cases.create("Qwen loop")
    import_and_wait(qtbot, window, images[:1])
    ref = install_model(window, tiny_qwen)
    assert ref == "tiny-qwen2-5-vl@0.0.0"
    panel = window.docks["session"].panel
    assert "tiny-qwen" in panel.model_label.text() and "UNTRAINED" in panel.model_label.text()
    window.app.sessions.max_new_tokens = 24

    qtbot.waitUntil(panel.start_button.isEnabled, timeout=10000)
    panel.start_button.click()
    wait_turns(qtbot, window, 1)
    assert not said, said
    first = window.state.turns[0]
    assert first.status == TurnStatus.DONE, first.error
    assert window.state.session is not None and window.state.session.model.name == "tiny-qwen2-5-vl"
    answer = first.raw_answer.strip()
    assert answer  # 24 tokens of the untrained model's text
    assert panel.stream.toPlainText().strip() == answer  # streamed as it was written
    shown = panel.conversation.toPlainText()
    assert shown.count("Turn 1") == 1 and answer.splitlines()[0].strip() in shown

    window.docks["hints"].composer.text.setText("Is the sea to the west?")
    window.docks["hints"].composer.send_button.click()
    wait_turns(qtbot, window, 2)
    second = window.state.turns[1]
    assert second.status == TurnStatus.DONE, second.error
    assert second.hints[0].text == "Is the sea to the west?"
    shown = panel.conversation.toPlainText()
    assert "Turn 2" in shown and second.raw_answer.strip().splitlines()[0].strip() in shown
    assert window.docks["history"].panel.model.rowCount() == 2
    assert not said, said


def test_the_model_manager_lists_a_qwen_package_with_family_and_profile(
    qtbot: QtBot, window: MainWindow, tiny_qwen: Path
) -> None:
    from geodesk.qt.dialogs.models import MODEL_COLUMNS, ModelManagerDialog

    install_model(window, tiny_qwen)
    dialog = ModelManagerDialog(window.app, window)
    qtbot.addWidget(dialog)
    row = {MODEL_COLUMNS[c]: dialog.table.item(0, c).text() for c in range(len(MODEL_COLUMNS))}
    assert row["Name"] == "tiny-qwen2-5-vl" and row["Family"] == "qwen2_5_vl" and row["Profile"] == "generic"
