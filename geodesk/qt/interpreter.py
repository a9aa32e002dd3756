"""Two interpreter settings that keep the desktop app's UI thread responsive.

**The GIL switch interval.** The selection's rows are read, and the analyst's writes stored, by jobs
on worker threads; while one runs Python (building rows, the audit chain), the UI thread waits for the
interpreter lock whenever it wakes for an event, up to the switch interval (5 ms by default) each
time, and a repaint wakes it many times. :func:`share_the_gil` makes that 1 ms, applied once when
:mod:`geodesk.qt` is imported. On a 2-core machine at load 6–9 it cut the selections over 50 ms in
a 30-click run from 6–10 to 0–7 (bench/gui_responsiveness.py, same run, same case).

**The collector's full passes.** Python's collector now and then walks every object it tracks (a
generation-2 pass). In the desktop app that is everything the libraries made at import (Qt bindings,
pyqtgraph, numpy, SQLite helpers): about 80 ms of UI-thread time per pass on a 2-core machine, one
click in twenty or so. Those objects live as long as the process, so walking them finds nothing.
:func:`settle` collects once and then moves every object alive at that moment out of the
collector's sight (``gc.freeze``), so later passes walk only what was made afterwards. Objects freed
by their reference counts are freed as before. The app settles again after each case opens (what
opening loaded lives on too); each settle first gives the frozen objects back to the collector
(``gc.unfreeze``), so what an earlier settle froze and has become cyclic garbage since (the previous
case's objects) is collected then rather than kept for the life of the process.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.001


def share_the_gil() -> None:
    """A thread running Python hands the interpreter lock on after 1 ms, not 5 (see the module)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def settle() -> None:
    """Collect now (what earlier settles froze included), then leave the objects alive now out of
    every later pass (see the module)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
