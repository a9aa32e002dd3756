"""``geodesk doctor``: check a machine for what geodesk needs and say what to fix.

Each check looks at one thing an analyst or admin can act on (Qt's platform plugins and the system
libraries they load, WebEngine, a display, fonts for the scripts signs are drawn in, the GPU, disk
space, the workspace) and returns a :class:`Check` with a status and, when it is not ``ok``, the fix.
Nothing here imports Qt: the plugins are inspected with ``ldd``, so a machine whose Qt libraries are
broken still gets a diagnosis instead of Qt's own abort (which names the plugin, not the library).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from geodesk import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_LIST = REPO_ROOT / "installers" / "debian" / "packages.txt"
# A 7-8B model package in bf16 is about 16 GB; below this a model install will not fit.
DISK_WARN_BYTES = 20 * 1024**3
DISK_FAIL_BYTES = 2 * 1024**3
# fontconfig language tags for the scripts GeoSynth draws signs in (and that evidence photos show).
SCRIPT_LANGUAGES: dict[str, str] = {
    "Latin": "en", "Cyrillic": "ru", "Greek": "el", "Arabic": "ar", "Hebrew": "he",
    "Devanagari": "hi", "Thai": "th", "Japanese": "ja", "Korean": "ko", "Chinese": "zh-cn",
}
FONT_PACKAGES = "fonts-noto-core fonts-noto-cjk"
_LDD_TIMEOUT_S = 20


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str | None = None

    def as_document(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "message": self.message, "fix": self.fix}


@dataclass(frozen=True, slots=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.status is not Status.FAIL for c in self.checks)

    def as_document(self) -> dict[str, Any]:
        return {"geodesk": __version__, "python": sys.version.split()[0], "ok": self.ok,
                "checks": [c.as_document() for c in self.checks]}


# ----------------------------------------------------------------------------- system packages


def wanted_packages(path: Path = PACKAGE_LIST) -> list[str]:
    """The Debian package names in the one package list (comments and blank lines dropped)."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def missing_packages(names: Sequence[str]) -> list[str] | None:
    """The names dpkg does not report installed; None where dpkg is not available (not Debian)."""
    if shutil.which("dpkg-query") is None:
        return None
    missing = []
    for name in names:
        done = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", name],
                              capture_output=True, text=True, check=False)
        if done.stdout.strip() != "installed":
            missing.append(name)
    return missing


def install_command(packages: Iterable[str]) -> str:
    return "sudo apt-get install -y --no-install-recommends " + " ".join(packages)


def check_system_packages(path: Path = PACKAGE_LIST) -> Check:
    if not path.is_file():
        return Check("system packages", Status.WARN,
                     f"the package list {path} is not there (geodesk was not installed from its source tree)")
    missing = missing_packages(wanted_packages(path))
    if missing is None:
        return Check("system packages", Status.WARN,
                     "not a Debian/Ubuntu system: dpkg cannot say which libraries are installed",
                     f"install the equivalents of the packages in {path}")
    if missing:
        return Check("system packages", Status.FAIL, f"missing: {' '.join(missing)}",
                     f"`make system-packages`, or `{install_command(missing)}`")
    return Check("system packages", Status.OK, f"all {len(wanted_packages(path))} listed packages installed")


# ------------------------------------------------------------------------------------- Qt, ldd


def unresolved_libraries(binary: Path) -> list[str] | None:
    """The shared libraries ``ldd`` cannot find for ``binary``; None when ldd cannot run."""
    if shutil.which("ldd") is None:
        return None
    try:
        done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False,
                              timeout=_LDD_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted({line.split("=>", 1)[0].strip() for line in done.stdout.splitlines()
                   if "not found" in line})


def _pyside_dir() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _library_check(name: str, binary: Path, purpose: str) -> Check:
    if not binary.is_file():
        return Check(name, Status.FAIL, f"{binary} is missing: the PySide6 install is incomplete",
                     "reinstall the Python environment (`make clean && make install`)")
    unresolved = unresolved_libraries(binary)
    if unresolved is None:
        return Check(name, Status.WARN, f"cannot inspect {binary.name} (no ldd)")
    if unresolved:
        return Check(name, Status.FAIL,
                     f"{binary.name} ({purpose}) cannot load: {', '.join(unresolved)} not found",
                     "`make system-packages` installs the libraries Qt needs "
                     "(installers/debian/packages.txt)")
    return Check(name, Status.OK, f"{binary.name} finds every library it needs")


def check_qt(pyside: Path | None = None) -> list[Check]:
    pyside = pyside or _pyside_dir()
    if pyside is None:
        return [Check("Qt", Status.FAIL, "PySide6 is not installed in this Python environment",
                      "`make install` (or `pip install -e .`) installs it")]
    qt = pyside / "Qt"
    checks = [
        _library_check("Qt platform xcb", qt / "plugins" / "platforms" / "libqxcb.so",
                       "the X11 window plugin"),
        _library_check("Qt platform offscreen", qt / "plugins" / "platforms" / "libqoffscreen.so",
                       "the headless plugin tests use"),
        _library_check("Qt WebEngine", qt / "lib" / "libQt6WebEngineCore.so.6", "the map page"),
    ]
    process = qt / "libexec" / "QtWebEngineProcess"
    if not process.is_file():
        checks.append(Check("Qt WebEngine process", Status.FAIL, f"{process} is missing",
                            "install the pinned pyside6-webengine (`make install`)"))
    return checks


def check_display(environ: dict[str, str] | None = None) -> Check:
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal")):
        return Check("display", Status.OK, f"QT_QPA_PLATFORM={platform}: windows are drawn off screen")
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        shown = env.get("WAYLAND_DISPLAY") or env.get("DISPLAY")
        return Check("display", Status.OK, f"a display is set ({shown})")
    return Check("display", Status.WARN,
                 "no DISPLAY or WAYLAND_DISPLAY: the desktop app cannot open a window",
                 "run geodesk inside a desktop session (or over `ssh -X`); every command works without one")


def check_user(euid: int | None = None) -> Check:
    uid = os.geteuid() if euid is None else euid
    if uid == 0:
        return Check("user", Status.WARN,
                     "running as root: the app turns Qt WebEngine's sandbox off "
                     "(Chromium refuses it as root)",
                     "run geodesk as an ordinary user to keep the sandbox")
    return Check("user", Status.OK, f"running as uid {uid}")


# -------------------------------------------------------------------------------------- fonts


def fonts_for_language(language: str) -> list[str] | None:
    if shutil.which("fc-list") is None:
        return None
    done = subprocess.run(["fc-list", f":lang={language}", "family"], capture_output=True, text=True,
                          check=False, timeout=_LDD_TIMEOUT_S)
    return sorted({line.split(",")[0].strip() for line in done.stdout.splitlines() if line.strip()})


def check_fonts() -> Check:
    if shutil.which("fc-list") is None:
        return Check("fonts", Status.WARN, "fontconfig's fc-list is missing: cannot check the fonts",
                     "`make system-packages`")
    uncovered = [script for script, lang in SCRIPT_LANGUAGES.items() if not fonts_for_language(lang)]
    if uncovered:
        return Check("fonts", Status.FAIL, f"no font for {', '.join(uncovered)} text",
                     f"`sudo apt-get install {FONT_PACKAGES}`")
    listed = ", ".join(SCRIPT_LANGUAGES)
    return Check("fonts", Status.OK, f"fonts for {len(SCRIPT_LANGUAGES)} scripts ({listed})")


# ---------------------------------------------------------------------------------------- GPU


def check_gpu() -> list[Check]:
    try:
        import torch
    except ImportError:
        return [Check("torch", Status.FAIL, "torch is not installed", "`make install`")]
    if not torch.cuda.is_available():
        return [Check("GPU", Status.OK,
                      f"no CUDA GPU (torch {torch.__version__}): models run on the CPU; a 7-8B model needs a "
                      "GPU workstation or `--backend remote`")]
    names = [f"{torch.cuda.get_device_name(i)} "
             f"({torch.cuda.get_device_properties(i).total_memory / 1024**3:.0f} GiB)"
             for i in range(torch.cuda.device_count())]
    checks = [Check("GPU", Status.OK, f"CUDA {torch.version.cuda}: {'; '.join(names)}")]
    try:
        import bitsandbytes

        version = bitsandbytes.__version__
        checks.append(Check("bitsandbytes", Status.OK, f"bitsandbytes {version} (NF4, int8)"))
    except Exception as exc:  # a broken CUDA setup raises all sorts of errors at import
        checks.append(Check("bitsandbytes", Status.WARN, f"bitsandbytes does not load: {exc}",
                            "NF4/int8 quantisation is unavailable; run in bf16 or reinstall bitsandbytes"))
    return checks


# --------------------------------------------------------------------------- disk and workspace


def check_disk(workspace: Path) -> Check:
    probe = workspace
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    gib = free / 1024**3
    if free < DISK_FAIL_BYTES:
        return Check("disk", Status.FAIL, f"{gib:.1f} GiB free under {probe}",
                     "free space: imports and case exports need room beside the case")
    if free < DISK_WARN_BYTES:
        return Check("disk", Status.WARN, f"{gib:.1f} GiB free under {probe}: too little for a 7-8B model",
                     "free at least 20 GiB before installing a full-size model package")
    return Check("disk", Status.OK, f"{gib:.0f} GiB free under {probe}")


def check_workspace(workspace: Path) -> Check:
    if not workspace.exists():
        parent = workspace.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if os.access(parent, os.W_OK):
            return Check("workspace", Status.OK, f"{workspace} will be created on first use")
        return Check("workspace", Status.FAIL, f"{workspace} does not exist and {parent} is not writable",
                     "pick another folder with --workspace or GEODESK_WORKSPACE")
    if not workspace.is_dir():
        return Check("workspace", Status.FAIL, f"{workspace} is not a folder",
                     "pick another with --workspace")
    try:
        with tempfile.NamedTemporaryFile(dir=workspace, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("workspace", Status.FAIL, f"cannot write in {workspace}: {exc.strerror or exc}",
                     "fix its permissions or pick another folder with --workspace")
    mode = workspace.stat().st_mode & 0o777
    if mode & 0o077:
        return Check("workspace", Status.WARN,
                     f"{workspace} is readable by other users (mode {mode:o}); cases hold evidence",
                     f"`chmod 700 {workspace}`")
    return Check("workspace", Status.OK, f"{workspace} is writable and private")


# ------------------------------------------------------------------------------------- doctor


def run_doctor(workspace: Path, *, gpu: bool = True) -> DoctorReport:
    """Every check, in the order a person fixes them (system first, then Python, then data)."""
    steps: list[Callable[[], Check | list[Check]]] = [
        check_system_packages, check_qt, check_display, check_user, check_fonts,
    ]
    if gpu:
        steps.append(check_gpu)
    steps += [lambda: check_disk(workspace), lambda: check_workspace(workspace)]
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return DoctorReport(tuple(checks))
