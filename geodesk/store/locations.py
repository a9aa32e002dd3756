"""Where the workspace is: one rule for the CLI, the desktop app and training.

Kept apart from the rest of the store (and imported without it: see ``geodesk/store/__init__.py``) so
the desktop app can find its workspace before sqlite-utils, which imports pandas, is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

WORKSPACE_ENV = "GEODESK_WORKSPACE"


def workspace_path(explicit: str | Path | None = None) -> Path:
    """``explicit`` (``--workspace``), then ``$GEODESK_WORKSPACE``, then the per-user data folder."""
    chosen = explicit or os.environ.get(WORKSPACE_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("geodesk", appauthor=False)).resolve()
