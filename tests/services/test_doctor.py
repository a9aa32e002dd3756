"""``geodesk doctor`` checks: each one on this machine and on a case built to fail it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from geodesk.services import doctor
from geodesk.services.doctor import Status

REPO = Path(__file__).resolve().parents[2]


def test_the_package_list_is_the_one_make_and_ci_use() -> None:
    names = doctor.wanted_packages()
    assert "libxcb-icccm4" in names and "fonts-noto-cjk" in names and "python3-venv" in names
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "installers/debian/ensure-packages.sh" in ci
    # No second copy of the list: CI names no library package itself.
    assert not any(name in ci for name in names if name.startswith("lib"))
    dry_run = subprocess.run(["make", "-n", "run", "test"], cwd=REPO, capture_output=True, text=True,
                             check=False)
    assert dry_run.stdout.count("installers/debian/ensure-packages.sh") == 1  # one prerequisite, run once


def test_a_missing_package_fails_with_the_command_that_installs_it(tmp_path: Path) -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian system")
    listing = tmp_path / "packages.txt"
    listing.write_text("# comment\nlibc6  # present everywhere\ngeodesk-no-such-package\n", encoding="utf-8")
    check = doctor.check_system_packages(listing)
    assert check.status is Status.FAIL
    assert check.message == "missing: geodesk-no-such-package"
    assert check.fix is not None
    assert "apt-get install -y --no-install-recommends geodesk-no-such-package" in check.fix


def test_ensure_packages_check_mode_names_what_is_missing() -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian system")
    done = subprocess.run(["bash", str(REPO / "installers/debian/ensure-packages.sh"), "--check"],
                          capture_output=True, text=True, check=False)
    missing = doctor.missing_packages(doctor.wanted_packages()) or []
    assert done.returncode == (1 if missing else 0)
    for name in missing:
        assert name in done.stderr


def test_a_plugin_whose_libraries_are_missing_is_named(tmp_path: Path) -> None:
    pyside = doctor._pyside_dir()
    assert pyside is not None
    plugin = pyside / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    # Copied away from Qt's lib folder, the plugin's $ORIGIN-relative search path finds nothing.
    copy = tmp_path / "plugins" / "platforms" / "libqxcb.so"
    copy.parent.mkdir(parents=True)
    shutil.copy2(plugin, copy)
    unresolved = doctor.unresolved_libraries(copy)
    assert unresolved is not None and any(name.startswith("libQt6") for name in unresolved)
    assert doctor.unresolved_libraries(plugin) == []
    checks = doctor.check_qt(tmp_path / "nowhere")
    assert all(c.status is Status.FAIL for c in checks)


def test_qt_on_this_machine_loads() -> None:
    assert [c.status for c in doctor.check_qt()] == [Status.OK, Status.OK, Status.OK]


def test_display_rules() -> None:
    assert doctor.check_display({}).status is Status.WARN
    assert doctor.check_display({"DISPLAY": ":0"}).status is Status.OK
    assert doctor.check_display({"QT_QPA_PLATFORM": "offscreen"}).status is Status.OK


def test_root_is_warned_about_the_sandbox() -> None:
    assert doctor.check_user(0).status is Status.WARN
    assert doctor.check_user(1000).status is Status.OK


def test_workspace_permissions(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    assert doctor.check_workspace(private).status is Status.OK
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    check = doctor.check_workspace(shared)
    assert check.status is Status.WARN and check.fix == f"`chmod 700 {shared}`"
    assert doctor.check_workspace(tmp_path / "new" / "ws").status is Status.OK
    afile = tmp_path / "file"
    afile.write_text("x", encoding="utf-8")
    assert doctor.check_workspace(afile).status is Status.FAIL


def test_fonts_for_every_sign_script_are_found() -> None:
    check = doctor.check_fonts()
    assert check.status is Status.OK, check.message


def test_the_cli_reports_json_and_exits_by_the_worst_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from geodesk.cli import main

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["--workspace", str(tmp_path / "ws"), "doctor", "--no-gpu", "--json"]) == 0
    import json

    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert {c["name"] for c in document["checks"]} >= {"system packages", "Qt WebEngine", "fonts", "disk",
                                                       "workspace"}
    afile = tmp_path / "not-a-folder"
    afile.write_text("x", encoding="utf-8")
    assert main(["--workspace", str(afile), "doctor", "--no-gpu"]) == 1
    assert "FAIL  workspace" in capsys.readouterr().out
