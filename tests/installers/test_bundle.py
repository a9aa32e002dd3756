"""The offline bundle: built from the registries, installed and started with no network at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "installers" / "bundle" / "build.sh"
INSTALL = REPO / "installers" / "bundle" / "install.sh"


def _can_cut_the_network() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0


def test_a_damaged_bundle_is_refused_before_anything_is_installed(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "wheels").mkdir(parents=True)
    shutil.copy2(INSTALL, bundle / "install.sh")
    (bundle / "wheels" / "requirements.txt").write_text("geodesk-nothing==1\n", encoding="utf-8")
    subprocess.run(
        "find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS",
        shell=True,
        cwd=bundle,
        check=True,
    )
    (bundle / "wheels" / "requirements.txt").write_text("tampered\n", encoding="utf-8")
    prefix = tmp_path / "prefix"
    done = subprocess.run(
        ["bash", str(bundle / "install.sh"), "--prefix", str(prefix), "--no-system"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "damaged or incomplete" in done.stderr and "requirements.txt" in done.stdout + done.stderr
    assert not prefix.exists()


def test_build_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x", encoding="utf-8")
    done = subprocess.run(["bash", str(BUILD), str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "not empty" in done.stderr


@pytest.mark.slow
def test_the_bundle_installs_and_starts_without_a_network(tmp_path: Path, tiny_model_dir: Path) -> None:
    if not _can_cut_the_network():
        pytest.skip("this machine cannot make a network namespace (unshare -n needs root)")
    bundle = tmp_path / "bundle"
    # Building a bundle is install-time work: like `make install` it reaches the package registries,
    # so this one child runs without the tests' network guard. Installing and starting it below run
    # in a network namespace with no network at all.
    built = subprocess.run(
        [
            "bash",
            "-c",
            'GEODESK_NETWORK_GUARD=0 exec bash "$0" "$@"',
            str(BUILD),
            str(bundle),
            "--no-debs",
            "--model",
            str(tiny_model_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=2400,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (bundle / "SHA256SUMS").is_file() and any((bundle / "wheels").glob("torch-*.whl"))
    prefix, workspace = tmp_path / "opt-geodesk", tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["HOME"] = str(tmp_path / "home")
    offline = ["unshare", "-n"]
    installed = subprocess.run(
        [
            *offline,
            "bash",
            str(bundle / "install.sh"),
            "--prefix",
            str(prefix),
            "--no-system",
            "--workspace",
            str(workspace),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=2400,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    geodesk = prefix / "venv" / "bin" / "geodesk"
    version = subprocess.run(
        [*offline, str(geodesk), "--version"], capture_output=True, text=True, check=False, env=env
    )
    assert version.returncode == 0 and version.stdout.startswith("geodesk ")
    doctor = subprocess.run(
        [*offline, str(geodesk), "--workspace", str(workspace), "doctor", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "QT_QPA_PLATFORM": "offscreen"},
    )
    report = json.loads(doctor.stdout)
    assert {c["name"]: c["status"] for c in report["checks"]}["Qt WebEngine"] == "ok", report
    models = subprocess.run(
        [*offline, str(geodesk), "--workspace", str(workspace), "model", "list", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert [m["name"] for m in json.loads(models.stdout)["models"]] == ["tiny-llava"]
    desktop = Path(env["HOME"]) / ".local" / "share" / "applications" / "geodesk.desktop"
    assert f"Exec={prefix}/venv/bin/geodesk" in desktop.read_text(encoding="utf-8")
