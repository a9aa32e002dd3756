"""What the desktop app's process needs before Qt starts: the WebEngine sandbox rule for root.

Chromium, inside Qt WebEngine, refuses to start its sandbox as root ("Running as root without
--no-sandbox is not supported") and the map then never appears. Field machines and containers often
run as root, so geodesk turns the sandbox off itself in that one case and says so on stderr, rather
than leaving the analyst with a window whose map is blank.
"""

from __future__ import annotations

from collections.abc import Mapping

FLAGS_VARIABLE = "QTWEBENGINE_CHROMIUM_FLAGS"
# The app's own default when the variable is unset (software rendering: no GPU process to crash).
DEFAULT_FLAGS = "--disable-gpu"
ROOT_NOTE = (
    "running as root: Qt WebEngine's sandbox is turned off (Chromium does not start it as root); "
    "run geodesk as an ordinary user to keep the sandbox"
)


def webengine_flags(euid: int, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The value ``QTWEBENGINE_CHROMIUM_FLAGS`` must take, or None to leave it; and a note to print."""
    if euid != 0:
        return None, None
    current = environ.get(FLAGS_VARIABLE)
    words = (current if current is not None else DEFAULT_FLAGS).split()
    if "--no-sandbox" in words:
        return None, None
    return " ".join([*words, "--no-sandbox"]), ROOT_NOTE
