"""A `case export` killed with SIGKILL while it writes the archive: what it leaves, and who cleans it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodesk.services.cases import export_case, verify_case
from geodesk.store import Workspace
from tests.store.conftest import add_evidence

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")


def test_a_killed_export_records_nothing_and_its_leftovers_are_removed(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Big")
    with ws.open_case(case) as store:
        # ~96 MiB of originals, so the zip takes long enough to be caught half-written.
        for i in range(48):
            add_evidence(store, i.to_bytes(4, "big") * (512 << 10), f"photo-{i}.jpg")
        entries_before = len(store.audit.entries())
    out_dir = tmp_path / "usb"
    out_dir.mkdir()
    out = out_dir / "big.zip"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from geodesk.cli import main; sys.exit(main(sys.argv[1:]))",
            *("--workspace", str(ws.path), "case", "export", case.id, str(out)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    partial: list[Path] = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in out_dir.iterdir() if p.name.endswith(".geodesk-partial")]
            if partial and partial[0].stat().st_size > (8 << 20):
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert partial, "the export finished before it could be killed; give it more to write"

    # What the kill left: a partial archive beside OUT and the snapshot folder in the case.
    assert not out.exists()
    assert partial[0].exists()
    case_dir = Path(case.path)
    assert list(case_dir.glob(".export-*"))
    # Nothing was recorded for an archive that was never written.
    with ws.open_case(case) as store:  # opening the case removes both leftovers
        assert len(store.audit.entries()) == entries_before
        assert all(e.action != "case.export" for e in store.audit.entries())
        assert not list(case_dir.glob(".export-*"))
        assert not partial[0].exists()
        assert verify_case(store) == []
        result = export_case(store, out)  # and the next export works
        assert store.audit.entries()[-1].details["archive_sha256"] == result.sha256
    assert sorted(p.name for p in out_dir.iterdir()) == ["big.zip"]
