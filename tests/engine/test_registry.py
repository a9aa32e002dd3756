"""The model registry: install from each source kind, tamper detection, pickles, interrupted installs,
activate / rollback / remove, disk-space check, reference resolution."""

from __future__ import annotations

import json
import os
import shutil
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from geodesk.engine import registry as registry_module
from geodesk.engine.package import (
    MANIFEST_NAME,
    hash_files,
    identity_from_hashes,
    read_manifest,
    write_manifest,
)
from geodesk.engine.registry import (
    LOCK_FILE,
    ModelNotFoundError,
    ModelRegistry,
    RegistryError,
    SourceKind,
    default_name_version,
    detect_source_kind,
)
from tests.engine.xtuner_layout import make_xtuner_export


def flip_byte(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: the exact state of models/ (the empty lock file,
    which stays once a change has taken it, holds no state)."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


@pytest.fixture
def registry(workspace: Path) -> ModelRegistry:
    return ModelRegistry(workspace)


@pytest.fixture
def llava_folder(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A plain llava-hf folder (no geodesk manifest) named like a release: gaga-1.2."""
    folder = tmp_path / "gaga-1.2"
    shutil.copytree(tiny_model_dir, folder)
    (folder / MANIFEST_NAME).unlink()
    return folder


# --- install from each source kind ---------------------------------------------------------------


def test_install_package_copies_verifies_and_activates_the_first_version(
    registry: ModelRegistry, tiny_model_dir: Path, workspace: Path
) -> None:
    calls: list[tuple[int, int]] = []
    model = registry.install(tiny_model_dir, progress=lambda done, total: calls.append((done, total)))
    manifest = read_manifest(tiny_model_dir)
    assert (model.name, model.version) == (manifest.name, manifest.version)
    assert model.path == workspace / "models" / "tiny-llava" / "0.0.0"
    assert model.identity_sha256 == manifest.identity_sha256
    assert model.active and model.untrained and model.installed
    assert model.architecture == "LlavaForConditionalGeneration"
    assert model.source_kind == SourceKind.PACKAGE
    assert model.size_bytes == sum((tiny_model_dir / rel).stat().st_size for rel in manifest.files)
    # Progress: starts at 0, never goes back, ends at the total byte count.
    total = calls[-1][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total) and total == model.size_bytes
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert tree(model.path) == tree(tiny_model_dir)  # byte-identical copy, manifest included
    assert registry.verify("tiny-llava").ok
    assert registry.list() == [model]
    assert registry.active() == model
    assert model.identity().sha256 == manifest.identity_sha256
    state = json.loads((workspace / "models" / "registry.json").read_text(encoding="utf-8"))
    assert state["default"] == "tiny-llava"
    assert state["models"]["tiny-llava"]["history"] == ["0.0.0"]


def test_install_llava_folder_computes_a_manifest_and_leaves_pickles_behind(
    registry: ModelRegistry, llava_folder: Path
) -> None:
    (llava_folder / "training_args.bin").write_bytes(b"\x80\x04pickle")
    (llava_folder / ".cache").mkdir()
    (llava_folder / ".cache" / "junk").write_text("x")
    expected_files = hash_files(llava_folder)
    del expected_files["training_args.bin"], expected_files[".cache/junk"]

    model = registry.install(llava_folder)
    assert (model.name, model.version) == ("gaga", "1.2")  # from the folder name
    assert model.source_kind == SourceKind.LLAVA_HF and not model.untrained
    manifest = read_manifest(model.path)
    assert manifest.files == expected_files
    assert manifest.identity_sha256 == model.identity_sha256 == identity_from_hashes(expected_files)
    assert manifest.provenance["kind"] == "llava-hf-folder"
    assert not (model.path / "training_args.bin").exists() and not (model.path / ".cache").exists()
    assert registry.verify("gaga@1.2").ok

    renamed = registry.install(llava_folder, name="geo", version="2")
    assert (renamed.ref, renamed.identity_sha256) == ("geo@2", model.identity_sha256)
    assert renamed.active  # the first version of "geo" is geo's active version ...
    assert registry.active() == registry.resolve("gaga")  # ... but the workspace still runs gaga
    assert registry.resolve("geo").ref == "geo@2"


def test_install_package_under_another_name_rewrites_only_the_manifest(
    registry: ModelRegistry, tiny_model_dir: Path
) -> None:
    model = registry.install(tiny_model_dir, name="field", version="7")
    manifest = read_manifest(model.path)
    assert (manifest.name, manifest.version) == ("field", "7")
    assert manifest.identity_sha256 == read_manifest(tiny_model_dir).identity_sha256
    assert registry.verify("field@7").ok


def test_install_xtuner_export_converts_and_packages(
    registry: ModelRegistry, tiny_model_dir: Path, tmp_path: Path
) -> None:
    export = make_xtuner_export(tiny_model_dir, tmp_path / "xt", strip_image_token=True).export
    assert detect_source_kind(export) is SourceKind.XTUNER
    model = registry.install(export, name="gaga-xt", version="0.1")
    assert model.source_kind == SourceKind.XTUNER
    assert model.architecture == "LlavaForConditionalGeneration"
    manifest = read_manifest(model.path)
    assert manifest.provenance["kind"] == "xtuner-llava"
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"} <= set(
        manifest.files
    )
    assert registry.verify("gaga-xt@0.1").ok
    assert not any(p.name.startswith(".staging-") for p in (registry.root).iterdir())


def test_an_installed_xtuner_model_runs_on_the_hf_backend_under_its_registry_identity(
    registry: ModelRegistry, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from PIL import Image

    from geodesk.engine.backends.base import IMAGE_PLACEHOLDER, ChatMessage, GenerationSettings
    from geodesk.engine.backends.hf import HFBackend

    export = make_xtuner_export(tiny_model_dir, tmp_path / "xt", strip_image_token=True).export
    registry.install(export, name="gaga-xt", version="0.1")
    model = registry.resolve("gaga-xt")
    backend = HFBackend(model.path)
    try:
        assert backend.identity.sha256 == model.identity_sha256
        assert (backend.identity.name, backend.identity.version) == ("gaga-xt", "0.1")
        image = Image.new("RGB", (64, 48), (120, 160, 200))
        message = ChatMessage("user", f"{IMAGE_PLACEHOLDER}\nwhere is this taken", (image,))
        result = backend.generate([message], GenerationSettings(max_new_tokens=4))
        assert result.text  # the converted model decodes text through the real processor and template
    finally:
        backend.close()


def test_source_kinds_are_detected_and_other_folders_refused(
    tiny_model_dir: Path, llava_folder: Path, tmp_path: Path
) -> None:
    assert detect_source_kind(tiny_model_dir) is SourceKind.PACKAGE
    assert detect_source_kind(llava_folder) is SourceKind.LLAVA_HF
    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(RegistryError, match="'llama' model, not LLaVA"):
        detect_source_kind(llama)
    with pytest.raises(RegistryError, match="is not a model"):
        detect_source_kind(tmp_path)
    assert default_name_version(Path("gaga_v2")) == ("gaga", "2")
    assert default_name_version(Path("LLaVA Llama3")) == ("LLaVA-Llama3", "1")


# --- tamper detection ----------------------------------------------------------------------------


def test_tampered_source_package_is_refused_naming_the_files(
    registry: ModelRegistry, tiny_model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "pkg"
    shutil.copytree(tiny_model_dir, source)
    flip_byte(source / "model.safetensors")
    (source / "generation_config.json").unlink()
    (source / "README.md").write_text("not listed, not copied")
    with pytest.raises(RegistryError) as info:
        registry.install(source)
    message = str(info.value)
    assert "changed: model.safetensors" in message and "missing: generation_config.json" in message
    assert "README.md" not in message
    assert registry.list() == []
    assert not registry.root.exists() or not any(registry.root.iterdir())


def test_verify_names_every_changed_missing_or_added_file(
    registry: ModelRegistry, tiny_model_dir: Path
) -> None:
    model = registry.install(tiny_model_dir)
    flip_byte(model.path / "model.safetensors", offset=-5)
    flip_byte(model.path / "tokenizer.json", offset=10)
    (model.path / "generation_config.json").unlink()
    (model.path / "notes.txt").write_text("added")
    report = registry.verify(None)
    assert not report.ok
    assert report.mismatched == ("model.safetensors", "tokenizer.json")
    assert report.missing == ("generation_config.json",)
    assert report.unlisted == ("notes.txt",)


def test_verify_catches_a_manifest_rewritten_to_hide_a_change(
    registry: ModelRegistry, tiny_model_dir: Path
) -> None:
    model = registry.install(tiny_model_dir)
    flip_byte(model.path / "model.safetensors")
    write_manifest(model.path, name=model.name, version=model.version, protocol_version=None, provenance={})
    report = registry.verify(model.ref)
    assert report.mismatched == (MANIFEST_NAME, "model.safetensors")
    with pytest.raises(RegistryError, match="is damaged"):
        registry.activate(model.ref)  # the quick check on activation sees the rewritten manifest


# --- pickles -------------------------------------------------------------------------------------


def test_pickled_weights_are_refused_with_advice(registry: ModelRegistry, llava_folder: Path) -> None:
    (llava_folder / "model.safetensors").rename(llava_folder / "pytorch_model.bin")
    with pytest.raises(RegistryError) as info:
        registry.install(llava_folder)
    assert "pickled weights (pytorch_model.bin)" in str(info.value)
    assert "Convert the weights to safetensors" in str(info.value)
    assert registry.list() == []


def test_a_package_listing_a_pickle_is_refused(
    registry: ModelRegistry, tiny_model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "pkg"
    shutil.copytree(tiny_model_dir, source)
    (source / "extra.pt").write_bytes(b"\x80\x04pickle")
    write_manifest(source, name="p", version="1", protocol_version=None, provenance={})
    with pytest.raises(RegistryError, match=r"pickled files \(extra.pt\)"):
        registry.install(source)


# --- atomic installs -----------------------------------------------------------------------------


@pytest.mark.parametrize("error", [OSError("disk unplugged"), KeyboardInterrupt()])
def test_an_interrupted_copy_leaves_the_registry_as_it_was(
    registry: ModelRegistry,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
) -> None:
    registry.install(tiny_model_dir)
    before = tree(registry.root)
    real_copy = registry_module._copy_file
    copied: list[Path] = []

    def copy_then_fail(src: Path, dst: Path, on_bytes: Any) -> str:
        if len(copied) == 2:
            dst.write_bytes(b"half a file")
            raise error
        copied.append(src)
        return real_copy(src, dst, on_bytes)

    monkeypatch.setattr(registry_module, "_copy_file", copy_then_fail)
    with pytest.raises(type(error)):
        registry.install(tiny_model_dir, version="0.0.1")
    assert tree(registry.root) == before  # registry.json byte-identical, no staging, no new folder
    assert [m.ref for m in registry.list()] == ["tiny-llava@0.0.0"]


@pytest.mark.parametrize("error", [OSError("read-only file system"), KeyboardInterrupt()])
def test_an_interrupted_registry_write_moves_the_new_folder_back_out(
    registry: ModelRegistry,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
) -> None:
    before = tree(registry.root)

    def fail(self: ModelRegistry, state: Any) -> None:
        assert (self.root / "tiny-llava" / "0.0.0").is_dir()  # the folder was already in place
        raise error

    monkeypatch.setattr(ModelRegistry, "_write_state", fail)
    with pytest.raises(type(error)):
        registry.install(tiny_model_dir)
    assert tree(registry.root) == before
    assert not (registry.root / "tiny-llava").exists()
    assert not any(p.name.startswith(".staging-") for p in registry.root.iterdir())


def test_leftovers_of_a_killed_process_are_cleaned_or_replaced(workspace: Path, tiny_model_dir: Path) -> None:
    models = workspace / "models"
    dead = models / ".staging-999999999-abcd1234"  # no such pid
    mine = models / f".staging-{os.getpid()}-abcd1234"  # an install running in this process
    dead_trash = models / ".trash-999999999-00000000"
    for folder in (dead, mine, dead_trash):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"partial")
    # Killed between moving the folder into place and writing registry.json: not registered.
    orphan = models / "tiny-llava" / "0.0.0"
    orphan.mkdir(parents=True)
    (orphan / "partial.bin").write_bytes(b"x")

    registry = ModelRegistry(workspace)
    assert not dead.exists() and not dead_trash.exists() and mine.exists()
    assert registry.list() == []
    model = registry.install(tiny_model_dir)
    assert not (model.path / "partial.bin").exists() and registry.verify(model.ref).ok


def test_disk_space_is_checked_before_copying(
    registry: ModelRegistry, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 10**6, 10**6))
    copies: list[Path] = []
    monkeypatch.setattr(registry_module, "_copy_file", lambda src, dst, cb: copies.append(src) or "")
    with pytest.raises(RegistryError, match="not enough free disk space") as info:
        registry.install(tiny_model_dir)
    assert "0.00 GiB is free" in str(info.value) and "another --workspace" in str(info.value)
    assert copies == [] and registry.list() == []


def test_reinstalling_the_same_files_is_a_no_op_and_other_files_are_refused(
    registry: ModelRegistry, tiny_model_dir: Path, llava_folder: Path
) -> None:
    first = registry.install(tiny_model_dir)
    state = (registry.root / "registry.json").read_bytes()
    assert registry.install(tiny_model_dir) == first
    assert (registry.root / "registry.json").read_bytes() == state
    generation = json.loads((llava_folder / "generation_config.json").read_text(encoding="utf-8"))
    generation["max_new_tokens"] = 64
    (llava_folder / "generation_config.json").write_text(json.dumps(generation), encoding="utf-8")
    with pytest.raises(RegistryError, match="already installed with different files"):
        registry.install(llava_folder, name="tiny-llava", version="0.0.0")
    assert (registry.root / "registry.json").read_bytes() == state
    assert not any(p.name.startswith(".staging-") for p in registry.root.iterdir())


@pytest.mark.parametrize("bad", ["../evil", "a/b", "", "x@y", ".hidden"])
def test_unsafe_names_and_versions_are_refused(
    registry: ModelRegistry, tiny_model_dir: Path, bad: str
) -> None:
    with pytest.raises(RegistryError, match="cannot be a model"):
        registry.install(tiny_model_dir, name=bad or " ", version="1")
    with pytest.raises(RegistryError, match="cannot be a model"):
        registry.install(tiny_model_dir, version=bad or " ")


# --- activate / rollback / remove ----------------------------------------------------------------


def test_activate_rollback_remove(registry: ModelRegistry, tiny_model_dir: Path) -> None:
    v1 = registry.install(tiny_model_dir, name="geo", version="1")
    v2 = registry.install(tiny_model_dir, name="geo", version="2")
    assert v1.active and not v2.active  # a new version waits for activation
    assert registry.activate("geo@2").active
    assert registry.resolve("geo").version == "2" and registry.resolve(None).ref == "geo@2"
    v3 = registry.install(tiny_model_dir, name="geo", version="3", activate=True)
    assert v3.active and registry.active() == v3

    assert registry.rollback("geo").version == "2"
    assert registry.rollback("geo").version == "1"
    with pytest.raises(RegistryError, match="no earlier active version"):
        registry.rollback("geo")

    with pytest.raises(RegistryError) as info:
        registry.remove("geo@1")
    assert "is the active version of geo" in str(info.value)
    assert "geodesk model activate geo@3" in str(info.value)
    with pytest.raises(RegistryError, match="say which version"):
        registry.remove("geo")

    registry.activate("geo@3")
    removed = registry.remove("geo@2")
    assert not removed.path.exists()
    registry.activate("geo@1")
    assert registry.rollback("geo").version == "3"  # geo@2 left the history when it was removed
    assert [m.ref for m in registry.list()] == ["geo@1", "geo@3"]

    registry.remove("geo@1")
    with pytest.raises(RegistryError, match=r"only version of geo.*deactivate"):
        registry.remove("geo@3")
    registry.deactivate("geo")
    assert registry.active() is None
    registry.remove("geo@3")
    assert registry.list() == [] and not (registry.root / "geo").exists()
    with pytest.raises(ModelNotFoundError, match="no model is active"):
        registry.resolve(None)


def test_activate_name_alone_takes_the_newest_version_when_none_is_active(
    registry: ModelRegistry, tiny_model_dir: Path
) -> None:
    registry.install(tiny_model_dir, name="geo", version="1", activate=False)
    registry.install(tiny_model_dir, name="geo", version="2", activate=False)
    with pytest.raises(ModelNotFoundError, match="say which: geo@VERSION"):
        registry.resolve("geo")
    assert registry.activate("geo").version == "2"


# --- resolve -------------------------------------------------------------------------------------


def test_resolve_accepts_names_versions_and_folders(
    registry: ModelRegistry, tiny_model_dir: Path, llava_folder: Path
) -> None:
    with pytest.raises(LookupError):
        registry.resolve(None)
    installed = registry.install(tiny_model_dir)
    assert registry.resolve("tiny-llava") == installed
    assert registry.resolve("tiny-llava@0.0.0") == installed
    with pytest.raises(ModelNotFoundError, match=r"tiny-llava@9 is not installed .*0\.0\.0"):
        registry.resolve("tiny-llava@9")
    with pytest.raises(ModelNotFoundError, match=r"no model named 'other' is installed \(installed: tiny"):
        registry.resolve("other")

    folder = registry.resolve(str(tiny_model_dir))  # a package folder used in place
    assert not folder.installed and not folder.active
    assert folder.identity_sha256 == installed.identity_sha256 and folder.path == tiny_model_dir.resolve()
    plain = registry.resolve(llava_folder)
    assert plain.identity_sha256 == identity_from_hashes(hash_files(llava_folder))
    assert registry.verify(str(tiny_model_dir)).ok
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        registry.resolve(str(llava_folder.parent))


def test_a_damaged_registry_file_gives_a_sentence(workspace: Path) -> None:
    (workspace / "models").mkdir()
    (workspace / "models" / "registry.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"registry\.json is damaged"):
        ModelRegistry(workspace).list()
