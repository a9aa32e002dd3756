"""Whether a process is alive: one answer for stale staging folders, locks and managed servers.

A primitive every layer may use (like geodesk.atomic). On Linux the state letter in ``/proc/PID/stat``
tells a zombie (exited, not yet reaped) from a running process; elsewhere signal 0 says whether the
pid exists. The desktop's own pid is always alive.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def process_state(pid: int, *, reap: bool = False) -> str | None:
    """The /proc state letter of ``pid`` ("?" when it exists but /proc says nothing; None when it does
    not exist). ``reap``: first collect it if it is an exited child of this process."""
    if reap:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        try:
            os.kill(pid, 0)  # POSIX: signal 0 checks existence without sending anything
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"  # exists, owned by someone else
        return "?"
    # "pid (comm) S ...": the state follows the last ')' (comm may contain spaces and parentheses).
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int, *, reap: bool = False) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    if pid == os.getpid():
        return True
    state = process_state(pid, reap=reap)
    return state is not None and state not in ("Z", "X")
