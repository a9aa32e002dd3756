"""Import worker processes: they start from any current folder and die with the importing process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

# Finds geodesk the way an editable install does (a meta path finder, not a sys.path entry), so a
# ./geodesk/ folder in the current directory can shadow it exactly as it does on an analyst's machine.
EDITABLE_SITECUSTOMIZE = '''
import importlib.machinery, importlib.util, os, sys
ROOT = os.environ["GEODESK_TEST_ROOT"]
class EditableFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "geodesk":
            return None
        return importlib.util.spec_from_file_location(
            name, os.path.join(ROOT, "geodesk", "__init__.py"),
            submodule_search_locations=[os.path.join(ROOT, "geodesk")])
index = next(i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder)
sys.meta_path.insert(index + 1, EditableFinder)
'''
ENTRY_POINT = 'import sys\nfrom geodesk.cli import main\nif __name__ == "__main__":\n    sys.exit(main())\n'


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"street-{i:03d}.png"
        Image.new("RGB", (900, 700), (i % 256, 80, 160)).save(path, compress_level=0)
        paths.append(path)
    return paths


def test_workers_start_from_the_folder_that_holds_a_checkout(tmp_path: Path, workspace: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(EDITABLE_SITECUSTOMIZE)
    entry = tmp_path / "geodesk-entry.py"
    entry.write_text(ENTRY_POINT)
    holder = tmp_path / "src"
    (holder / "geodesk").mkdir(parents=True)  # the checkout: a folder named geodesk, here a namespace
    (holder / "geodesk" / "README.md").write_text("a checkout\n")
    [image] = _images(holder, 1)
    env = {**os.environ, "PYTHONPATH": str(site), "GEODESK_TEST_ROOT": str(ROOT),
           "GEODESK_WORKSPACE": str(workspace)}

    def geodesk(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(entry), *argv], cwd=holder, env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    created = geodesk("case", "new", "Checkout", "--json")
    assert created.returncode == 0, created.stderr
    case_id = json.loads(created.stdout)["id"]
    added = geodesk("evidence", "add", case_id, image.name, "--workers", "2", "--json")
    assert added.returncode == 0, added.stderr
    assert "Traceback" not in added.stderr and "ImportError" not in added.stderr
    document = json.loads(added.stdout)
    assert len(document["imported"]) == 1 and document["notes"] == []  # no silent fall-back to one process


def _tagged_processes(tag: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"GEODESK_TEST_TAG={tag}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_killed_import_leaves_no_worker_behind(tmp_path: Path, workspace: Path) -> None:
    tag = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GEODESK_WORKSPACE": str(workspace)}
    env["GEODESK_TEST_TAG"] = tag  # inherited by the forkserver and every worker
    cli = [sys.executable, "-c", "import sys; from geodesk.cli import main; sys.exit(main())"]
    created = subprocess.run([*cli, "case", "new", "Pool", "--json"], env=env, capture_output=True, text=True,
                             timeout=120, check=True)
    images = _images(tmp_path / "in", 60)
    case_id = json.loads(created.stdout)["id"]
    command = [*cli, "evidence", "add", case_id, *map(str, images), "--workers", "2"]
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(_tagged_processes(tag)) < 4 and time.monotonic() < deadline:  # parent, forkserver, 2 workers
        time.sleep(0.05)
    assert parent.poll() is None, "the import finished before the workers could be seen; use more files"
    assert len(_tagged_processes(tag)) >= 4
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _tagged_processes(tag)
    for pid in left:  # never leave them running for the rest of the test session
        os.kill(pid, signal.SIGKILL)
    assert left == []
