"""Model package manifests: write, read, verify, tamper detection, identity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geodesk.engine.package import (
    MANIFEST_NAME,
    PackageError,
    estimate_memory,
    package_identity,
    read_manifest,
    verify_package,
    write_manifest,
)


@pytest.fixture
def package(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "pkg"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_write_then_read_round_trips(package: Path) -> None:
    written = write_manifest(package, name="geo", version="1.2", protocol_version="geodesk-gaga/1",
                             provenance={"kind": "test"}, max_images_per_message=2)
    read = read_manifest(package)
    assert read == written
    assert verify_package(package).ok
    assert package_identity(package).sha256 == written.identity_sha256
    assert MANIFEST_NAME not in written.files and "model.safetensors" in written.files


@pytest.mark.parametrize("change", ["modify", "delete", "add", "add_nested"])
def test_any_change_to_the_files_is_detected(package: Path, change: str) -> None:
    before = read_manifest(package)
    if change == "modify":
        data = bytearray((package / "model.safetensors").read_bytes())
        data[-1] ^= 1  # one flipped bit in the last weight
        (package / "model.safetensors").write_bytes(bytes(data))
    elif change == "delete":
        (package / "tokenizer.json").unlink()
    elif change == "add":
        (package / "pytorch_model.bin").write_bytes(b"x")
    else:
        (package / "extra").mkdir()
        (package / "extra" / "notes.txt").write_text("hi")
    report = verify_package(package)
    assert not report.ok
    expected = {"modify": report.mismatched, "delete": report.missing, "add": report.unlisted,
                "add_nested": report.unlisted}[change]
    assert expected == {"modify": ("model.safetensors",), "delete": ("tokenizer.json",),
                        "add": ("pytorch_model.bin",), "add_nested": ("extra/notes.txt",)}[change]
    assert "reinstall" in report.describe()
    rewritten = write_manifest(package, name="x", version="1", protocol_version=None, provenance={})
    assert rewritten.identity_sha256 != before.identity_sha256


def test_an_edited_manifest_is_refused(package: Path) -> None:
    path = package / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["files"]["config.json"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(PackageError, match="identity_sha256 does not match"):
        read_manifest(package)
    data["files"] = {"../outside": "0" * 64}
    data.pop("identity_sha256")
    path.write_text(json.dumps(data))
    with pytest.raises(PackageError, match="stay inside"):
        read_manifest(package)
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(PackageError, match="update geodesk"):
        read_manifest(package)
    path.write_text("{not json")
    with pytest.raises(PackageError, match="not valid JSON"):
        read_manifest(package)
    path.unlink()
    with pytest.raises(PackageError, match="not a geodesk model package"):
        read_manifest(package)


def test_identity_of_a_plain_folder_is_computed(package: Path) -> None:
    manifest = read_manifest(package)
    (package / MANIFEST_NAME).unlink()
    identity = package_identity(package)
    assert identity.version == "unversioned"
    assert identity.sha256 == manifest.identity_sha256  # same files, same identity


def test_memory_estimates_are_ordered(package: Path) -> None:
    memory = estimate_memory(package)
    assert memory["fp32"] == 2 * memory["bf16"] == 2 * memory["fp16"]
    assert memory["bf16"] > memory["int8"] > memory["nf4"] > 0
    assert read_manifest(package).memory_bytes == memory


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="does not exist"):
        write_manifest(tmp_path / "none", name="a", version="1", protocol_version=None, provenance={})
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackageError, match=r"no config\.json"):
        write_manifest(tmp_path / "empty", name="a", version="1", protocol_version=None, provenance={})
