"""SHA-256 of evidence files, streamed in 1 MiB chunks so memory stays flat whatever the file size.

``copy_and_hash`` copies and hashes in one read pass: the import pipeline stages the original into the
case with it, so the bytes that get hashed are exactly the bytes that get stored (and then probed).
"""

from __future__ import annotations

import hashlib
import os
from io import BufferedIOBase, RawIOBase
from pathlib import Path

CHUNK_SIZE = 1 << 20  # 1 MiB: large enough that syscall overhead vanishes, small enough to stay flat


def sha256_stream(stream: BufferedIOBase | RawIOBase) -> str:
    """Hex SHA-256 of everything left in ``stream``."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while True:
        n = stream.readinto(view)
        if not n:
            break
        digest.update(view[:n])
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file at ``path``."""
    with Path(path).open("rb") as stream:
        return sha256_stream(stream)


def copy_and_hash(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, fsync: bool = True
) -> tuple[str, int]:
    """Copy ``source`` to a new file ``target`` and return ``(sha256, size_bytes)`` of the bytes copied.

    ``target`` must not exist (``x`` mode): a stale staging file is never silently overwritten. With
    ``fsync`` the copy is on disk before the caller moves it into place, so a power cut cannot leave a
    stored original whose bytes differ from its recorded hash.
    """
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    size = 0
    with Path(source).open("rb") as src, Path(target).open("xb") as dst:
        while True:
            n = src.readinto(view)
            if not n:
                break
            chunk = view[:n]
            digest.update(chunk)
            dst.write(chunk)
            size += n
        if fsync:
            dst.flush()
            os.fsync(dst.fileno())
    return digest.hexdigest(), size
