"""Attacks on model packages, each reproduced: shard names outside the package, symlinked weights,
installed weights changed behind the registry's back (also with the mtime set back), the identity a
session records, and concurrent installs / activations losing registry records (F7)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodesk.engine.backends.base import BackendError
from geodesk.engine.backends.hf import HFBackend
from geodesk.engine.checkpoint import INDEX_NAME, CheckpointError, weight_files
from geodesk.engine.package import (
    MANIFEST_NAME,
    PackageError,
    check_files,
    file_stamp,
    hash_files,
    package_identity,
    read_manifest,
)
from geodesk.engine.registry import STAGING_PREFIX, ModelRegistry, RegistryError
from geodesk.services.models import BackendRequest, ModelNotFoundError, open_backend

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def package(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "pkg"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def write_index(folder: Path, shard: str) -> None:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as fh:
        keys = list(fh.keys())
    index = {"metadata": {}, "weight_map": dict.fromkeys(keys, shard)}
    (folder / INDEX_NAME).write_text(json.dumps(index), encoding="utf-8")


def flip_byte_keeping_times(path: Path) -> None:
    """Change one byte and set the mtime back, as someone hiding an edit would (``touch -d``)."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


# ---------------------------------------------------------------- shard names


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_an_index_naming_shards_outside_the_package_is_refused(
    package: Path, tmp_path: Path, workspace: Path, where: str
) -> None:
    outside = tmp_path / "elsewhere" / "evil.safetensors"
    outside.parent.mkdir()
    shutil.copy(package / "model.safetensors", outside)
    shard = str(outside) if where == "absolute" else "../elsewhere/evil.safetensors"
    write_index(package, shard)
    with pytest.raises(CheckpointError, match="inside the package"):
        weight_files(package)
    with pytest.raises(BackendError, match="inside the package"):
        HFBackend(package)
    with pytest.raises(RegistryError, match="inside the package"):
        ModelRegistry(workspace).install(package, name="evil", version="1")


def test_an_index_naming_a_shard_the_manifest_does_not_list_is_refused(
    package: Path, workspace: Path
) -> None:
    shutil.copy(package / "model.safetensors", package / "extra.safetensors")
    write_index(package, "extra.safetensors")
    with pytest.raises(BackendError, match=r"extra\.safetensors are not in geodesk-model\.json"):
        HFBackend(package)
    with pytest.raises(RegistryError, match="not in its manifest"):
        ModelRegistry(workspace).install(package, name="extra", version="1")


# ---------------------------------------------------------------- symlinks


def test_a_symlinked_weight_file_is_refused_not_left_out_of_the_identity(
    package: Path, tmp_path: Path, workspace: Path
) -> None:
    real = tmp_path / "real.safetensors"
    shutil.move(package / "model.safetensors", real)
    (package / "model.safetensors").symlink_to(real)
    with pytest.raises(PackageError, match="symbolic link"):
        hash_files(package)
    with pytest.raises(PackageError, match="symbolic link"):
        package_identity(package)
    with pytest.raises((BackendError, CheckpointError), match="symbolic link"):
        HFBackend(package)
    with pytest.raises(RegistryError, match="symbolic link"):
        ModelRegistry(workspace).install(package, name="linked", version="1")


def test_a_symlinked_folder_inside_a_package_is_refused(package: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (package / "extra").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(PackageError, match="extra is a symbolic link"):
        hash_files(package)


# ---------------------------------------------------------------- loading an installed model


def test_loading_an_installed_model_checks_its_files_even_with_the_mtime_set_back(
    tiny_model_dir: Path, workspace: Path
) -> None:
    registry = ModelRegistry(workspace)
    model = registry.install(tiny_model_dir)
    assert registry.check_for_loading(model).sha256 == model.identity_sha256
    flip_byte_keeping_times(model.path / "model.safetensors")
    with pytest.raises(RegistryError, match=r"changed: model\.safetensors"):
        registry.check_for_loading(model)
    with pytest.raises(ModelNotFoundError, match=r"changed: model\.safetensors"):
        open_backend(workspace, BackendRequest(model=model.ref))


def test_loading_refuses_added_missing_resized_and_linked_files(
    tiny_model_dir: Path, workspace: Path
) -> None:
    registry = ModelRegistry(workspace)
    model = registry.install(tiny_model_dir)
    (model.path / "notes.txt").write_text("added", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"not in the manifest: notes\.txt"):
        registry.check_for_loading(model)
    (model.path / "notes.txt").unlink()
    tokenizer = model.path / "tokenizer.json"
    tokenizer.chmod(0o644)
    with tokenizer.open("ab") as fh:
        fh.write(b" ")
    with pytest.raises(RegistryError, match=r"changed: tokenizer\.json"):
        registry.check_for_loading(model)
    shutil.copy(tiny_model_dir / "tokenizer.json", tokenizer)
    (model.path / "generation_config.json").unlink()
    with pytest.raises(RegistryError, match=r"missing: generation_config\.json"):
        registry.check_for_loading(model)


def test_a_rewritten_manifest_stops_the_load(tiny_model_dir: Path, workspace: Path) -> None:
    registry = ModelRegistry(workspace)
    model = registry.install(tiny_model_dir)
    manifest = model.path / MANIFEST_NAME
    manifest.chmod(0o644)
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace('"untrained": true', '"untrained": false')
    )
    with pytest.raises(RegistryError, match="changed since it was installed"):
        registry.check_for_loading(model)


def test_only_files_whose_stamps_changed_are_hashed_again(tiny_model_dir: Path, workspace: Path) -> None:
    registry = ModelRegistry(workspace)
    model = registry.install(tiny_model_dir)
    record = json.loads(registry.state_path.read_text(encoding="utf-8"))["models"][model.name]["versions"]
    stamps = record[model.version]["stamps"]
    files = record[model.version]["files"]
    assert check_files(model.path, files, stamps).rehashed == ()
    time.sleep(0.01)
    os.utime(model.path / "config.json")  # touched, same bytes
    checked = check_files(model.path, files, stamps)
    assert checked.rehashed == ("config.json",) and checked.report.ok
    registry.check_for_loading(model)  # records the fresh stamp
    again = json.loads(registry.state_path.read_text(encoding="utf-8"))["models"][model.name]["versions"]
    assert again[model.version]["stamps"]["config.json"] == file_stamp(model.path / "config.json")
    assert check_files(model.path, files, again[model.version]["stamps"]).rehashed == ()


def test_a_session_records_the_identity_of_the_files_loaded(package: Path) -> None:
    """A folder outside the registry is hashed as loaded: a weight changed behind a manifest that still
    claims the old identity is refused instead of being recorded under the manifest's claim."""
    claimed = read_manifest(package).identity_sha256
    assert HFBackend(package).identity.sha256 == claimed
    flip_byte_keeping_times(package / "model.safetensors")
    with pytest.raises(BackendError, match=r"changed: model\.safetensors"):
        HFBackend(package)


# ---------------------------------------------------------------- F7: concurrent registry changes

_RACER = """
import sys, time
from pathlib import Path
from geodesk.engine.registry import ModelRegistry
workspace, source, who, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
while not go.exists():
    time.sleep(0.005)
registry = ModelRegistry(workspace)
for i in range(3):
    registry.install(source, name=f"racer{who}", version=str(i))
    registry.activate(f"racer{who}@{i}")
"""


def test_racing_installs_and_activations_lose_no_record(
    tiny_model_dir: Path, workspace: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(workspace), str(tiny_model_dir), str(who), str(go)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in range(4)
    ]
    time.sleep(1.0)  # let every process import and wait at the start line
    go.touch()
    for racer in racers:
        _, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err
    registry = ModelRegistry(workspace)
    listed = {(m.name, m.version) for m in registry.list()}
    assert listed == {(f"racer{who}", str(i)) for who in range(4) for i in range(3)}
    on_disk = {(p.parent.name, p.name) for p in (workspace / "models").glob("*/*") if p.is_dir()}
    assert on_disk == listed  # no unlisted folder left behind
    assert not any(p.name.startswith(STAGING_PREFIX) for p in (workspace / "models").iterdir())
    state = json.loads(registry.state_path.read_text(encoding="utf-8"))
    for who in range(4):
        entry = state["models"][f"racer{who}"]
        assert entry["active"] == "2" and entry["history"] == ["0", "1", "2"]


def test_an_installed_model_given_an_outside_index_or_a_link_is_refused_and_verify_says_so(
    tiny_model_dir: Path, workspace: Path, tmp_path: Path
) -> None:
    registry = ModelRegistry(workspace)
    model = registry.install(tiny_model_dir)
    outside = tmp_path / "evil.safetensors"
    shutil.copy(model.path / "model.safetensors", outside)
    write_index(model.path, str(outside))
    with pytest.raises(RegistryError, match="inside the package"):
        registry.check_for_loading(model)
    assert not registry.verify(model.ref).ok  # the added index is named
    (model.path / INDEX_NAME).unlink()
    weights = model.path / "model.safetensors"
    weights.chmod(0o644)
    weights.unlink()
    weights.symlink_to(outside)
    with pytest.raises(RegistryError, match="symbolic link"):
        registry.check_for_loading(model)
    with pytest.raises(RegistryError, match="symbolic link"):
        registry.verify(model.ref)
