"""Fetch Pillow's test-image corpus (Tests/images of its source distribution) for bench/reliability.py.

The corpus is about 1,500 real and deliberately broken images that Pillow's own tests decode. It comes
from PyPI through pip (``pip download --no-binary pillow``: the sdist, not a wheel), for the Pillow
version geodesk pins, into a cache outside git::

    .venv/bin/python tools/fetch_pillow_corpus.py            # ~/.cache/geodesk-bench/pillow-tests-images

Only the image folder is extracted; nothing from the archive is run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import PIL

CACHE = Path(os.environ.get("GEODESK_BENCH_CACHE", Path.home() / ".cache" / "geodesk-bench"))


def download(version: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    found = sorted(into.glob(f"pillow-{version}.tar.gz"))
    if found:
        return found[0]
    # pip reads the sdist's metadata, which needs Pillow's build requirements (setuptools, pybind11)
    # in an isolated build environment. "--no-binary pillow", not ":all:": with ":all:" pip would also
    # build those requirements from source, which takes many minutes.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "pillow",
               f"pillow=={version}", "-d", str(into)]
    subprocess.run(command, check=True)
    return next(into.glob(f"pillow-{version}.tar.gz"))


def extract_images(sdist: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if len(parts) < 4 or parts[1:3] != ("Tests", "images") or not member.isfile():
                continue
            relative = Path(*parts[3:])
            if ".." in relative.parts:
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            if source is None:
                continue
            target.write_bytes(source.read())
            count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default=PIL.__version__,
                        help="Pillow version (default: the installed one, which pyproject.toml pins)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    sdist = download(args.version, args.cache)
    count = extract_images(sdist, args.cache / "pillow-tests-images")
    print(f"{count} files in {args.cache / 'pillow-tests-images'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
