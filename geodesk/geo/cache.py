"""Prepared geography on disk: the 1:10m border index and the place table, keyed by their sources' hash.

Reading the Natural Earth shapefile and building the border grid costs ~3 s, reading GeoNames' gzipped
JSON ~0.5 s: too slow for a one-point ``geodesk geo reverse``. Both results are plain arrays, so they
are saved once as a NumPy ``.npz`` (no pickle: loaded with ``allow_pickle=False``) and read back in a
few tens of milliseconds. Each file is named by what it holds and keyed by a SHA-256 over the source
files' bytes and this module's ``FORMAT``: a new wheel, a changed source or a new layout gives a new
key, and a stale or unreadable file is rebuilt, never trusted. Files are written through
``geodesk.atomic`` so a crash never leaves half a cache in place (ADR 0049).

Where: ``$GEODESK_CACHE`` when set, else the user cache folder (``platformdirs``). A folder that
cannot be written only costs the speed-up: the data is built in memory as before.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from geodesk.atomic import atomic_open

CACHE_ENV = "GEODESK_CACHE"
FORMAT = 1  # bump when what is stored changes meaning
_KEY = "cache_key"

Arrays = dict[str, npt.NDArray[np.generic]]


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("geodesk", appauthor=False)) / "geo"


def source_key(paths: Iterable[Path], *, salt: str) -> str:
    """SHA-256 over FORMAT, ``salt`` (what is built) and each source file's bytes, in order."""
    digest = hashlib.sha256(f"geodesk-geo-cache/{FORMAT}/{salt}".encode())
    for path in paths:
        with Path(path).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_arrays(name: str, key: str) -> Arrays | None:
    """The arrays saved under ``name`` with this key, or None (missing, stale or unreadable)."""
    path = cache_dir() / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz[_KEY]) != key:
                return None
            return {k: npz[k] for k in npz.files if k != _KEY}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # absent, truncated, foreign
        return None


def save_arrays(name: str, key: str, arrays: Arrays) -> bool:
    """Write the arrays atomically; False (and nothing written) when the folder is not writable."""
    buffer = io.BytesIO()
    np.savez(buffer, **{_KEY: np.asarray(key), **arrays})  # type: ignore[arg-type]
    try:
        with atomic_open(cache_dir() / f"{name}.npz", binary=True) as fh:
            fh.write(buffer.getvalue())
    except OSError:
        return False
    return True


def cached(name: str, key: str, build: Callable[[], Arrays]) -> Arrays:
    """Load ``name`` if its key matches, else build it and try to save it."""
    found = load_arrays(name, key)
    if found is not None:
        return found
    arrays = build()
    save_arrays(name, key, arrays)
    return arrays


def pack_strings(values: Iterable[str | None]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """(bytes, is_none): the strings' UTF-8 joined by NUL, and which entries are None (stored empty).

    One decode and one split read them back, ~30x faster than slicing per string. Raises ValueError
    for a string holding NUL (no place or country name does); the data is then not cached."""
    items = list(values)
    is_none = np.fromiter((v is None for v in items), dtype=np.bool_, count=len(items))
    text = [v or "" for v in items]
    if any("\x00" in t for t in text):
        raise ValueError("a string holds NUL and cannot be packed")
    return np.frombuffer("\x00".join(text).encode("utf-8"), dtype=np.uint8).copy(), is_none


def unpack_strings(blob: npt.NDArray[np.generic], is_none: npt.NDArray[np.generic]) -> list[str | None]:
    """The strings :func:`pack_strings` packed (raises ValueError when the two arrays disagree)."""
    data = np.asarray(blob, dtype=np.uint8).tobytes()
    out: list[str | None] = list(data.decode("utf-8").split("\x00")) if is_none.size else []
    if len(out) != is_none.size:
        raise ValueError(f"packed strings hold {len(out)} entries, expected {is_none.size}")
    for i in np.flatnonzero(np.asarray(is_none, dtype=bool)).tolist():
        out[i] = None
    return out
