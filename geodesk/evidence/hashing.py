"""SHA-256 of evidence files, streamed in 1 MiB chunks so memory stays flat whatever the file size.

``copy_and_hash`` copies and hashes in one read pass: the import pipeline stages the original into the
case with it, so the bytes that get hashed are exactly the bytes that get stored (and then probed).
"""

from __future__ import annotations

import os
from pathlib import Path

from geodesk.digest import CHUNK_SIZE, copy_hashing, sha256_file, sha256_stream

__all__ = ["CHUNK_SIZE", "copy_and_hash", "sha256_file", "sha256_stream"]


def copy_and_hash(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, fsync: bool = True
) -> tuple[str, int]:
    """Copy ``source`` to a new file ``target`` and return ``(sha256, size_bytes)`` of the bytes copied.

    ``target`` must not exist (``x`` mode): a stale staging file is never silently overwritten. With
    ``fsync`` the copy is on disk before the caller moves it into place, so a power cut cannot leave a
    stored original whose bytes differ from its recorded hash.
    """
    with Path(source).open("rb") as src, Path(target).open("xb") as dst:
        sha, size = copy_hashing(src, dst)
        if fsync:
            dst.flush()
            os.fsync(dst.fileno())
    return sha, size
