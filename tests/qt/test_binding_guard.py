"""The Qt bindings lose a reference to None at every call of a method that returns nothing
(PySide6 6.12 on Python 3.11): without geodesk.qt's guard, a process that makes more such calls than
None has references aborts ("none_dealloc") as soon as the collector frees a few of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from geodesk.qt.binding_guard import needs_guard

ROOT = Path(__file__).resolve().parents[2]

STORM = """
import gc
import geodesk.qt  # the guard comes with the package
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel("x")
for _ in range(300_000):  # as many void calls as an hour of clicking through a large case
    label.setText("a")
spare = [None] * 100_000  # references taken and given back, as any list of rows does
del spare
gc.collect()
print("survived")
"""


@pytest.mark.skipif(not needs_guard(), reason="None is immortal on this Python: nothing to guard")
def test_many_void_qt_calls_do_not_abort_the_process() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", STORM], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]  # without the guard: SIGABRT, none_dealloc
    assert done.stdout.strip() == "survived"
