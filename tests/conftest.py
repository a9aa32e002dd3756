"""Test-wide guards: no network beyond loopback, offline model hubs, a fresh workspace per test."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests import network_guard

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")
# The prepared-geography cache (ADR 0049) lives outside the user's cache folder in tests; it is keyed by
# its sources' hash, so test sessions can share it safely.
os.environ.setdefault("GEODESK_CACHE", str(Path(tempfile.gettempdir()) / f"geodesk-test-geo-{os.getuid()}"))

GUARD_SITE = Path(__file__).resolve().parent / "netguard_site"


def _guarded_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """``env`` (or this process's) with the network guard's sitecustomize first on PYTHONPATH."""
    out = dict(os.environ if env is None else env)
    parts = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(GUARD_SITE)]
    out["PYTHONPATH"] = os.pathsep.join([str(GUARD_SITE), *parts])
    out[network_guard.ENV_FLAG] = "1"
    return out


# Children started any way (multiprocessing's forkserver execs directly) inherit the guard from here.
os.environ.update(_guarded_env(None))
_real_popen_init = subprocess.Popen.__init__


def _guarded_popen_init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
    # A test that passes its own env= still gets the guard in its child.
    kwargs["env"] = _guarded_env(kwargs.get("env"))
    _real_popen_init(self, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """TCP, UDP and DNS beyond loopback are refused here and in every Python child (tests/network_guard)."""
    for (owner, name), guard in network_guard.GUARDS.items():
        monkeypatch.setattr(owner, name, guard)
    monkeypatch.setattr(subprocess.Popen, "__init__", _guarded_popen_init)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty workspace folder, also exported as GEODESK_WORKSPACE for CLI tests."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    monkeypatch.setenv("GEODESK_WORKSPACE", str(ws))
    yield ws


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except Exception:
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained LLaVA model package (geodesk.engine.tiny), built once per test session.

    Treat it as read-only: tests that change files copy it first (shutil.copytree).
    """
    from geodesk.engine.tiny import create_tiny_model

    out = tmp_path_factory.mktemp("tiny-model") / "tiny-llava"
    create_tiny_model(out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_family_dirs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    """One tiny untrained package per model family (llava, qwen2_5_vl, qwen3_vl, internvl), built once per
    test session with ``geodesk.engine.families.tiny``. Read-only, like ``tiny_model_dir``."""
    from geodesk.engine.families.tiny import create_tiny_family_model

    root = tmp_path_factory.mktemp("tiny-families")
    dirs = {"llava": tiny_model_dir}
    for family in ("qwen2_5_vl", "qwen3_vl", "internvl"):
        create_tiny_family_model(root / family, family, seed=0)
        dirs[family] = root / family
    return dirs


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave as soon as the results are reported.

    The import tests deliberately crash decoder worker processes; a process pool broken that way can
    leave its manager thread for the interpreter to join at exit, and Qt WebEngine tears down its
    profile late. Either can keep a finished run from exiting, which on CI looks like a hang. The
    report is complete by now, so end the process with pytest's own exit status.
    """
    if _exit_status and os.environ.get("GEODESK_TEST_HARD_EXIT", "1") == "1":
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[0])
