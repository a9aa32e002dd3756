"""Staging folders named after the process that owns them, so the next run can tell which are stale.

A staging folder ``<prefix><pid>-<random>`` belongs to a live process or to one that was killed; the
folder of a dead process is removed the next time its parent folder is used (an import, an export, an
archive open). It may list files it made elsewhere in ``owned.json`` (an export's partial archive
beside OUT.zip); those go with it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_json

OWNED = "owned.json"
_WINDOWS_STALE_S = 24 * 3600  # Windows has no harmless liveness probe (os.kill(pid, 0) kills): age it out


def staging_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"


def _pid_of(name: str, prefix: str) -> int | None:
    head = name[len(prefix) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int, path: Path) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":
        try:
            return time.time() - path.stat().st_mtime < _WINDOWS_STALE_S
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


def own_file(staging: Path, path: Path) -> None:
    """Record that ``staging``'s owner is writing ``path`` (removed with the folder if it goes stale)."""
    owned = staging / OWNED
    listed = json.loads(owned.read_text(encoding="utf-8")) if owned.exists() else []
    atomic_write_json(owned, [*listed, str(path)])


def remove_stale(folder: Path, prefix: str, owned_suffix: str = "", file_suffix: str = "") -> list[Path]:
    """Remove the staging folders ``prefix<pid>-*`` in ``folder`` whose process is gone, and such files
    when their name also ends in ``file_suffix`` (files are left alone without one).

    Files a stale folder lists in ``owned.json`` are removed too when their name ends in
    ``owned_suffix`` (never anything else, whatever the list says).
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if not path.name.startswith(prefix):
            continue
        pid = _pid_of(path.name, prefix)
        if pid is None or _alive(pid, path):
            continue
        if path.is_dir() and not path.is_symlink():
            owned = path / OWNED
            try:
                listed = json.loads(owned.read_text(encoding="utf-8")) if owned.exists() else []
            except (OSError, ValueError):
                listed = []
            for name in listed if isinstance(listed, list) else []:
                target = Path(str(name))
                if owned_suffix and target.name.endswith(owned_suffix):
                    target.unlink(missing_ok=True)
            remove_tree(path)
        elif file_suffix and path.name.endswith(file_suffix):
            path.unlink(missing_ok=True)
        else:
            continue
        removed.append(path)
    return removed


def remove_tree(path: Path) -> None:
    """Remove a staging folder. On POSIX read-only originals go with their writable folder; on Windows
    a read-only file refuses deletion, so make it writable and retry."""

    def make_writable(func: Any, target: str, _exc: Any) -> None:
        Path(target).chmod(stat.S_IWRITE | stat.S_IREAD)
        func(target)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable)
    else:
        shutil.rmtree(path, onerror=make_writable)
