"""Keep the cyclic garbage collector's full passes short on the UI thread.

Python's collector now and then walks every object it tracks (a generation-2 pass). In the desktop
app that is everything the libraries made at import (Qt bindings, pyqtgraph, numpy, SQLite
helpers): about 80 ms of UI-thread time per pass on a 2-core machine, one click in twenty or so
(bench/gui_responsiveness.py). Those objects live as long as the process, so walking them finds
nothing. :func:`settle` collects once and then moves every object alive at that moment out of the
collector's sight (``gc.freeze``), so later passes walk only what was made afterwards. Objects freed
by their reference counts are freed as before; only cyclic garbage made before a settle would stay,
and a settle collects that first.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect now, then leave the objects alive now out of every later pass (see the module)."""
    gc.collect()
    gc.freeze()
