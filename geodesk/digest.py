"""SHA-256 of files and streams: the one implementation for evidence, model packages, archives and
training provenance. A primitive every layer may use (like geodesk.atomic).

Reads go in 1 MiB chunks into one reused buffer, so memory stays flat whatever the file size.
:func:`copy_hashing` copies and hashes in one read pass, so the bytes hashed are the bytes written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from hashlib import sha256
from io import BufferedIOBase, RawIOBase
from pathlib import Path
from typing import IO, Any

CHUNK_SIZE = 1 << 20  # 1 MiB: large enough that syscall overhead vanishes, small enough to stay flat


def sha256_stream(stream: BufferedIOBase | RawIOBase | IO[bytes]) -> str:
    """Hex SHA-256 of everything left in ``stream``."""
    digest = sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while n := stream.readinto(view):  # type: ignore[union-attr]
        digest.update(view[:n])
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file at ``path``."""
    with Path(path).open("rb") as stream:
        return sha256_stream(stream)


def copy_hashing(
    source: IO[bytes] | Any, target: IO[bytes] | Any, on_bytes: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Copy the rest of ``source`` into ``target`` (open binary streams); ``(sha256, bytes copied)``."""
    digest = sha256()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
    return digest.hexdigest(), size
