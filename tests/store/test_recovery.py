"""Crash recovery on open: a kill -9 inside an import's commit or a model turn leaves nothing behind.

Every test kills a real ``geodesk`` process with SIGKILL at the named crash point
(``GEODESK_CRASH_AT``, geodesk/_crashpoints.py), so no clean-up code of the killed process runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from geodesk.domain.model import ModelIdentity, Prediction, Session, SessionMode, Turn, TurnStatus
from geodesk.store import CaseStore
from geodesk.store.recovery import INTERRUPTED_ERROR, JOURNAL_DIR, turn_marker
from tests.store.conftest import add_evidence

ROOT = Path(__file__).resolve().parents[2]


def geodesk(workspace: Path, *argv: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEODESK_WORKSPACE": str(workspace), "PYTHONPATH": str(ROOT)}
    env.pop("GEODESK_CRASH_AT", None)
    if crash_at:
        env["GEODESK_CRASH_AT"] = crash_at
    command = [sys.executable, "-c", "import sys; from geodesk.cli import main; sys.exit(main())", *argv]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def case(workspace: Path, tmp_path: Path) -> tuple[str, Path]:
    created = geodesk(workspace, "case", "new", "Killed", "--json")
    assert created.returncode == 0, created.stderr
    case_id = json.loads(created.stdout)["id"]
    image = tmp_path / "quay.jpg"
    Image.new("RGB", (64, 48), (40, 90, 160)).save(image)
    return case_id, image


def test_a_kill_inside_the_import_commit_leaves_no_stray(workspace: Path, case: tuple[str, Path]) -> None:
    case_id, image = case
    killed = geodesk(workspace, "evidence", "add", case_id, str(image), "--workers", "0",
                     crash_at="import-commit")
    assert killed.returncode == -signal.SIGKILL
    case_dir = workspace / "cases" / case_id
    placed = list((case_dir / "evidence").rglob("*.jpg"))
    assert len(placed) == 1  # the original was moved in, the row was not committed: a stray, for now
    assert list((case_dir / JOURNAL_DIR).glob("place-*"))

    verified = geodesk(workspace, "case", "verify", case_id, "--json")  # opening the case recovers it
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert not list((case_dir / "evidence").rglob("*.jpg"))
    assert not list((case_dir / JOURNAL_DIR).glob("place-*"))
    exported = geodesk(workspace, "case", "export", case_id, str(workspace.parent / "out.zip"))
    assert exported.returncode == 0, exported.stderr
    again = geodesk(workspace, "evidence", "add", case_id, str(image), "--json")
    assert again.returncode == 0 and len(json.loads(again.stdout)["imported"]) == 1


def test_a_kill_after_the_commit_keeps_the_evidence(workspace: Path, case: tuple[str, Path]) -> None:
    case_id, image = case
    assert geodesk(workspace, "evidence", "add", case_id, str(image)).returncode == 0
    with CaseStore.open(workspace / "cases" / case_id) as store:
        [evidence] = store.evidence.list()
        assert store.recovered.removed_strays == []
        assert store.evidence_file(evidence.sha256).is_file()


def test_a_turn_killed_mid_answer_is_marked_interrupted(
    workspace: Path, case: tuple[str, Path], tiny_model_dir: Path
) -> None:
    case_id, image = case
    added = geodesk(workspace, "evidence", "add", case_id, str(image), "--json")
    sha = json.loads(added.stdout)["imported"][0]["sha256"]
    killed = geodesk(workspace, "locate", case_id, sha[:12], "--model", str(tiny_model_dir),
                     "--max-new-tokens", "4", crash_at="turn-running")
    assert killed.returncode == -signal.SIGKILL
    with CaseStore.open(workspace / "cases" / case_id) as store:
        [session] = store.sessions.list()
        [turn] = store.turns.list(session.id)  # type: ignore[arg-type]
        assert turn.status is TurnStatus.INTERRUPTED and turn.error == INTERRUPTED_ERROR
        assert store.recovered.interrupted_turns == [turn.id]
        entries = [e.action for e in store.audit.entries()]
        assert entries[-1] == "turn.update"  # the change is on the record
    shown = geodesk(workspace, "session", "show", str(session.id), "--json")
    assert json.loads(shown.stdout)["turns"][0]["status"] == "interrupted"
    text = geodesk(workspace, "session", "show", str(session.id)).stdout
    assert "[interrupted]" in text and "killed or crashed" in text


def test_a_running_turn_of_a_live_process_is_left_alone(store: CaseStore) -> None:
    """Another connection (the GUI while the CLI answers) must not see live work as dead."""
    evidence = add_evidence(store, b"quay")
    session = store.sessions.add(
        Session(id=None, evidence_sha256=evidence.sha256, mode=SessionMode.DIRECT,
                model=ModelIdentity("m", "1", ""), backend="scripted", decoding={}, protocol_version="1")
    )
    assert session.id is not None
    with turn_marker(store.path, session.id, 0):
        turn = store.turns.add(Turn(id=None, session_id=session.id, index=0, prompt="p", raw_answer="",
                                    prediction=Prediction(), status=TurnStatus.RUNNING))
        with CaseStore.open(store.path) as other:
            assert other.recovered.interrupted_turns == []
            assert other.turns.get(turn.id or 0).status is TurnStatus.RUNNING
    with CaseStore.open(store.path) as later:  # the marker is gone but the row still says running
        assert later.recovered.interrupted_turns == [turn.id]
        assert later.turns.get(turn.id or 0).status is TurnStatus.INTERRUPTED
