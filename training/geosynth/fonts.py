"""Fonts for sign text, found on the system (Debian's Noto packages), never downloaded or bundled.

Each sign script has a font key. A key resolves to the first candidate file that exists at a known
Debian path, else to what ``fc-list`` reports for the font family. A key that resolves to nothing is
*missing*: the generator then leaves the sign out of scenes that need it (the cue is marked not
rendered) and its report names the Debian package that brings the font.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import ImageFont


@dataclass(frozen=True, slots=True)
class FontSpec:
    key: str
    family: str  # fontconfig family name, for the fc-list fallback
    paths: tuple[str, ...]  # known Debian locations, tried in order
    index: int  # face index inside a .ttc collection
    package: str  # the Debian package that ships it


_NOTO = "/usr/share/fonts/truetype/noto/"
_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"

FONT_SPECS: dict[str, FontSpec] = {
    # Noto Sans covers Latin (with the diacritics of every table language) and Cyrillic; DejaVu Sans,
    # which CI installs as well, is the fallback.
    "sans": FontSpec("sans", "Noto Sans", (_NOTO + "NotoSans-Regular.ttf",
                                           "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"), 0,
                     "fonts-noto-core"),
    "cjk-jp": FontSpec("cjk-jp", "Noto Sans CJK JP", (_CJK,), 0, "fonts-noto-cjk"),
    "cjk-kr": FontSpec("cjk-kr", "Noto Sans CJK KR", (_CJK,), 1, "fonts-noto-cjk"),
    "thai": FontSpec("thai", "Noto Sans Thai", (_NOTO + "NotoSansThai-Regular.ttf",), 0, "fonts-noto-core"),
    "devanagari": FontSpec("devanagari", "Noto Sans Devanagari",
                           (_NOTO + "NotoSansDevanagari-Regular.ttf",), 0, "fonts-noto-core"),
}


@dataclass(frozen=True, slots=True)
class FontFile:
    path: Path
    index: int


def _fc_list(family: str) -> FontFile | None:
    """The Regular face of ``family`` as fontconfig lists it (exact family matches only)."""
    if shutil.which("fc-list") is None:
        return None
    try:
        out = subprocess.run(["fc-list", family, "file", "index", "style"], capture_output=True, text=True,
                             timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    best: FontFile | None = None
    for line in sorted(out.splitlines()):
        path, _, rest = line.partition(": ")
        fields = dict(part.split("=", 1) for part in rest.strip(": ").split(":") if "=" in part)
        try:
            found = FontFile(Path(path), int(fields.get("index", "0")))
        except ValueError:
            continue
        if "Regular" in fields.get("style", "").split(","):
            return found
        best = best or found
    return best


def locate(spec: FontSpec) -> FontFile | None:
    for candidate in spec.paths:
        if Path(candidate).is_file():
            return FontFile(Path(candidate), spec.index)
    return _fc_list(spec.family)


@dataclass(slots=True)
class FontBook:
    """Resolved font files per key; ``missing`` lists the keys with no file. Loaded faces are cached."""

    files: dict[str, FontFile]
    missing: dict[str, str] = field(default_factory=dict)  # key -> Debian package to install
    _faces: dict[tuple[str, int], ImageFont.FreeTypeFont] = field(default_factory=dict)

    @classmethod
    def system(cls, keys: tuple[str, ...] | None = None, *, exclude: tuple[str, ...] = ()) -> FontBook:
        """Look every key up on this machine. ``exclude`` pretends keys are missing (tests, and
        ``--without-font`` to check what a machine without a package would generate)."""
        files: dict[str, FontFile] = {}
        missing: dict[str, str] = {}
        for key in keys or tuple(FONT_SPECS):
            spec = FONT_SPECS[key]
            found = None if key in exclude else _locate_cached(spec)
            if found is None:
                missing[key] = spec.package
            else:
                files[key] = found
        return cls(files, missing)

    def has(self, key: str) -> bool:
        return key in self.files

    def face(self, key: str, size: int) -> ImageFont.FreeTypeFont:
        from PIL import ImageFont

        cached = self._faces.get((key, size))
        if cached is None:
            font = self.files[key]
            cached = ImageFont.truetype(str(font.path), size=size, index=font.index)
            self._faces[(key, size)] = cached
        return cached

    def describe(self) -> dict[str, object]:
        return {
            "files": {k: {"path": str(v.path), "index": v.index} for k, v in sorted(self.files.items())},
            "missing": dict(sorted(self.missing.items())),
        }


@cache
def _locate_cached(spec: FontSpec) -> FontFile | None:
    return locate(spec)


def install_hint(missing: dict[str, str]) -> str:
    """One sentence naming the packages to install, e.g. for the generator's report."""
    packages = sorted(set(missing.values()))
    keys = ", ".join(sorted(missing))
    return (f"no font for {keys}: signs in those scripts are not drawn (install with "
            f"`apt-get install {' '.join(packages)}`)")
