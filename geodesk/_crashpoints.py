"""Named crash points for the reliability suite: ``GEODESK_CRASH_AT=<name>`` kills the process there.

The suite (tests/reliability, bench/reliability.py) proves that a ``kill -9`` at the worst moment of
an import, a model turn or an export loses nothing committed and leaves nothing half-written. Random
kill times rarely land inside the few microseconds between a rename and a commit, so those moments are
named here and the suite kills the process exactly there, with a real SIGKILL: no clean-up code runs.
Unset (always, outside the suite) this costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "GEODESK_CRASH_AT"


def crash_point(name: str) -> None:
    """Die by SIGKILL here when ``GEODESK_CRASH_AT`` names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
