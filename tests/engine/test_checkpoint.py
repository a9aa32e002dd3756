"""Key namings of LLaVA checkpoints: detection, conversion, and identical models from every naming."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import LlavaForConditionalGeneration

from geodesk.engine.backends.base import BackendError
from geodesk.engine.checkpoint import (
    CheckpointError,
    KeyNaming,
    checkpoint_keys,
    checkpoint_naming,
    convert_key,
    detect_naming,
    export_checkpoint,
    export_legacy,
    flat_key,
    weight_files,
)
from geodesk.engine.package import read_manifest, verify_package

LEGACY_PREFIXES = ("language_model.model.", "language_model.lm_head.", "vision_tower.vision_model.",
                   "multi_modal_projector.")


def _logits(folder: Path) -> torch.Tensor:
    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
    model.eval()
    config = model.config
    gen = torch.Generator().manual_seed(7)
    size = config.vision_config.image_size
    pixel_values = torch.randn(1, 3, size, size, generator=gen)
    n_image = (size // config.vision_config.patch_size) ** 2
    ids = [0, 2, 10, 11, 3, *([config.image_token_id] * n_image), 20, 21, 22, 23]
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), pixel_values=pixel_values).logits


def test_the_tiny_model_is_saved_in_the_transformers_5_naming(tiny_model_dir: Path) -> None:
    keys = checkpoint_keys(tiny_model_dir)
    assert checkpoint_naming(tiny_model_dir) is KeyNaming.SAVED_V5
    assert any(k.startswith("vision_tower.embeddings.") for k in keys)
    assert any(k.startswith("language_model.model.layers.") for k in keys)


def test_key_conversion_matches_the_in_memory_state_dict(tiny_model_dir: Path) -> None:
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir, use_safetensors=True)
    in_memory = set(model.state_dict())
    on_disk = checkpoint_keys(tiny_model_dir)
    assert {flat_key(k) for k in on_disk} == in_memory
    for naming in KeyNaming:
        converted = [convert_key(k, naming) for k in on_disk]
        assert detect_naming(converted) is naming
        assert {flat_key(k) for k in converted} == in_memory  # round trip


@pytest.mark.parametrize("naming", list(KeyNaming))
def test_every_naming_loads_to_identical_logits(
    tiny_model_dir: Path, tmp_path: Path, naming: KeyNaming
) -> None:
    reference = _logits(tiny_model_dir)
    out = export_checkpoint(tiny_model_dir, tmp_path / naming.value, naming)
    assert checkpoint_naming(out) is naming
    assert torch.equal(_logits(out), reference)


def test_hand_converted_legacy_and_flattened_files_load_identically(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Independent of export_checkpoint: rename the keys with plain string edits."""
    with safe_open(str(tiny_model_dir / "model.safetensors"), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    renames = {
        "legacy": lambda k: k.replace("vision_tower.", "vision_tower.vision_model.", 1)
        if k.startswith("vision_tower.") else k,
        "flat": lambda k: "lm_head.weight" if k == "language_model.lm_head.weight"
        else k.replace("language_model.model.", "model.language_model.", 1) if k.startswith("language_model.")
        else "model." + k,
    }
    reference = _logits(tiny_model_dir)
    for label, rename in renames.items():
        folder = tmp_path / label
        shutil.copytree(tiny_model_dir, folder)
        save_file({rename(k): v for k, v in tensors.items()}, str(folder / "model.safetensors"),
                  metadata={"format": "pt"})
        assert torch.equal(_logits(folder), reference), label


def test_export_legacy_writes_lmdeploy_names_and_a_valid_manifest(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = export_legacy(tiny_model_dir, tmp_path / "legacy")
    keys = checkpoint_keys(out)
    assert all(k.startswith(LEGACY_PREFIXES) for k in keys)
    assert any(k.startswith("vision_tower.vision_model.encoder.layers.") for k in keys)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (out / name).read_bytes() == (tiny_model_dir / name).read_bytes()
    manifest = read_manifest(out)
    assert verify_package(out).ok
    assert manifest.provenance["from"] == read_manifest(tiny_model_dir).identity_sha256
    assert manifest.identity_sha256 != read_manifest(tiny_model_dir).identity_sha256


def test_sharded_checkpoints_export_shard_by_shard(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir, use_safetensors=True)
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_model_dir, sharded)
    (sharded / "model.safetensors").unlink()
    model.save_pretrained(sharded, max_shard_size="300KB")
    assert len(weight_files(sharded)) > 1
    out = export_legacy(sharded, tmp_path / "legacy")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(checkpoint_keys(out))
    assert all(k.startswith(LEGACY_PREFIXES) for k in index["weight_map"])
    assert torch.equal(_logits(out), _logits(tiny_model_dir))


def test_mixed_and_foreign_namings_are_refused() -> None:
    with pytest.raises(CheckpointError, match="mixes key namings"):
        detect_naming(["vision_tower.vision_model.embeddings.x", "model.vision_tower.encoder.y"])
    with pytest.raises(CheckpointError, match="unknown prefix"):
        detect_naming(["transformer.h.0.attn.weight"])
    with pytest.raises(CheckpointError, match="no vision tower"):
        detect_naming(["language_model.model.embed_tokens.weight"])


def test_pickled_weights_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(CheckpointError, match="pickled weights"):
        weight_files(folder)
    from geodesk.engine.backends.hf import HFBackend

    with pytest.raises(BackendError, match=r"pickled weights \(pytorch_model.bin\)"):
        HFBackend(folder)


def test_export_refuses_a_non_empty_destination(tiny_model_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "busy"
    dst.mkdir()
    (dst / "keep.txt").write_text("x")
    with pytest.raises(CheckpointError, match="not empty"):
        export_legacy(tiny_model_dir, dst)
    assert (dst / "keep.txt").read_text() == "x"
