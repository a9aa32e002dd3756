"""Vendor the protomaps-leaflet bundle into resources/vendor/protomaps-leaflet/ (ADR 0034).

The map page inlines this one file (Canvas 2D vector-tile rendering for Leaflet, system fonts, no
glyph server, no WebGL). It comes from the npm registry at build time, checked against the SHA-256
below, and is committed with its BSD-3-Clause licence so that geodesk builds its page offline:

    .venv/bin/python tools/vendor_protomaps.py            # npm pack, verify, copy
    .venv/bin/python tools/vendor_protomaps.py --check    # verify the committed copy only
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = "5.1.0"
BUNDLE_SHA256 = "26af014f7b1af308ec120b791cff76657bb9c3383633b52033e6edf9e5e4cdb5"
TARGET = ROOT / "resources" / "vendor" / "protomaps-leaflet"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor() -> None:
    with tempfile.TemporaryDirectory(prefix="geodesk-npm-") as tmp:
        subprocess.run(["npm", "pack", f"protomaps-leaflet@{VERSION}", "--silent"], cwd=tmp, check=True)
        with tarfile.open(Path(tmp) / f"protomaps-leaflet-{VERSION}.tgz") as tar:
            tar.extractall(tmp, filter="data")
        bundle = Path(tmp) / "package" / "dist" / "protomaps-leaflet.js"
        if sha256(bundle) != BUNDLE_SHA256:
            raise SystemExit(f"protomaps-leaflet {VERSION} has SHA-256 {sha256(bundle)}, not {BUNDLE_SHA256}")
        TARGET.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle, TARGET / "protomaps-leaflet.js")
        shutil.copyfile(Path(tmp) / "package" / "LICENSE", TARGET / "LICENSE")
    note = f"protomaps-leaflet {VERSION} (npm), sha256 {BUNDLE_SHA256}\n"
    (TARGET / "VERSION").write_text(note, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only verify the vendored copy")
    args = parser.parse_args(argv)
    if not args.check:
        vendor()
    got = sha256(TARGET / "protomaps-leaflet.js")
    if got != BUNDLE_SHA256:
        print(f"vendored bundle has SHA-256 {got}, expected {BUNDLE_SHA256}", file=sys.stderr)
        return 1
    print(f"protomaps-leaflet {VERSION}: {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
