"""LLaVA checkpoint files: which weight files to read, the three key namings, and conversion.

Three namings of the same ``LlavaForConditionalGeneration`` weights exist in the wild (checked against
transformers 5.23, whose ``conversion_mapping["llava"]`` plus CLIP's ``PrefixChange("vision_model")``
map the first two onto the third at load time):

- legacy (published llava-hf checkpoints, what lmdeploy loads): ``language_model.model.*``,
  ``language_model.lm_head.*``, ``vision_tower.vision_model.*``, ``multi_modal_projector.*``;
- saved-v5 (what transformers 5 ``save_pretrained`` writes by default): as legacy, but the CLIP keys
  lose ``vision_model``: ``vision_tower.embeddings.*``, ``vision_tower.encoder.*``;
- flattened (transformers 5 ``state_dict()``, and ``save_pretrained(save_original_format=False)``):
  ``model.language_model.*``, ``model.vision_tower.*``, ``model.multi_modal_projector.*``, ``lm_head.*``.

transformers 5 loads all three; lmdeploy (0.18, PyTorch engine) wants legacy, hence
:func:`export_legacy`. Pickled weights (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) are refused: loading
them runs arbitrary code.
"""

from __future__ import annotations

import enum
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_directory
from geodesk.engine.package import (
    MANIFEST_NAME,
    PackageError,
    check_relative_path,
    read_manifest,
    safetensors_header,
    write_manifest,
)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
INDEX_NAME = "model.safetensors.index.json"


class CheckpointError(Exception):
    """A model folder cannot be used as is; the message says what to do."""


class KeyNaming(enum.StrEnum):
    LEGACY = "legacy"
    SAVED_V5 = "saved-v5"
    FLATTENED = "flattened"


# (prefix in that naming, prefix in the flattened naming), most specific first.
_TO_FLAT: tuple[tuple[str, str], ...] = (
    ("language_model.lm_head.", "lm_head."),
    ("language_model.model.", "model.language_model."),
    ("vision_tower.vision_model.", "model.vision_tower."),
    ("vision_tower.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
    ("model.vision_tower.vision_model.", "model.vision_tower."),
    ("model.language_model.", "model.language_model."),
    ("model.vision_tower.", "model.vision_tower."),
    ("model.multi_modal_projector.", "model.multi_modal_projector."),
    ("lm_head.", "lm_head."),
)
_FROM_FLAT: dict[KeyNaming, tuple[tuple[str, str], ...]] = {
    KeyNaming.LEGACY: (
        ("lm_head.", "language_model.lm_head."),
        ("model.language_model.", "language_model.model."),
        ("model.vision_tower.", "vision_tower.vision_model."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
    ),
    KeyNaming.SAVED_V5: (
        ("lm_head.", "language_model.lm_head."),
        ("model.language_model.", "language_model.model."),
        ("model.vision_tower.", "vision_tower."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
    ),
    KeyNaming.FLATTENED: (
        ("lm_head.", "lm_head."),
        ("model.language_model.", "model.language_model."),
        ("model.vision_tower.", "model.vision_tower."),
        ("model.multi_modal_projector.", "model.multi_modal_projector."),
    ),
}


def _replace_prefix(key: str, table: Iterable[tuple[str, str]]) -> str | None:
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def flat_key(key: str) -> str:
    """The transformers-5 in-memory name (``model.language_model.…``) of a key in any naming."""
    out = _replace_prefix(key, _TO_FLAT)
    if out is None:
        raise CheckpointError(f"weight {key!r} is not part of a LLaVA checkpoint (unknown prefix)")
    return out


def convert_key(key: str, naming: KeyNaming) -> str:
    """Rename ``key`` (any naming) into ``naming``."""
    out = _replace_prefix(flat_key(key), _FROM_FLAT[naming])
    assert out is not None  # every flattened key starts with one of the four prefixes
    return out


def detect_naming(keys: Iterable[str]) -> KeyNaming:
    """Which naming a checkpoint uses; a mix of namings is an error (the weights would half-load)."""
    seen: set[KeyNaming] = set()
    for key in keys:
        if key.startswith(("model.language_model.", "model.vision_tower.", "model.multi_modal_projector.")):
            seen.add(KeyNaming.FLATTENED)
        elif key.startswith("vision_tower.vision_model."):
            seen.add(KeyNaming.LEGACY)
        elif key.startswith("vision_tower."):
            seen.add(KeyNaming.SAVED_V5)
        elif key.startswith(("language_model.", "multi_modal_projector.", "lm_head.")):
            continue  # shared by several namings
        else:
            raise CheckpointError(f"weight {key!r} is not part of a LLaVA checkpoint (unknown prefix)")
    if not seen:
        raise CheckpointError("the checkpoint has no vision tower weights: it is not a LLaVA checkpoint")
    if len(seen) > 1:
        names = ", ".join(sorted(seen))
        raise CheckpointError(f"the checkpoint mixes key namings ({names}); convert it with one naming")
    return seen.pop()


def weight_files(folder: str | Path) -> list[Path]:
    """The safetensors weight files of a model folder; refuses folders with only pickled weights."""
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(f"model folder {root} does not exist")
    index = root / INDEX_NAME
    if index.is_file():
        try:
            document = json.loads(index.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{index} is not valid JSON; the model folder is damaged") from None
        weight_map = document.get("weight_map") if isinstance(document, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index} has no weight_map; the model folder is damaged")
        names = set(weight_map.values())
        for name in sorted(names, key=str):
            # transformers joins the folder with the shard name: an absolute or ../ name would load
            # weights from outside the package, past its manifest and identity.
            try:
                check_relative_path(name, str(index))
            except PackageError as exc:
                raise CheckpointError(
                    f"{exc}; refusing to load weights from outside the model folder"
                ) from None
            if (root / name).is_symlink() or not (root / name).resolve().is_relative_to(root.resolve()):
                raise CheckpointError(f"{index}: shard {name!r} is a link or lies outside the model folder")
        files = sorted({root / name for name in names})
        missing = [p.name for p in files if not p.is_file()]
        if missing:
            raise CheckpointError(
                f"{root} is incomplete: shard(s) {', '.join(missing)} listed in {INDEX_NAME} are missing"
            )
        return files
    files = sorted(p for p in root.glob("*.safetensors") if not p.name.startswith("adapter_model"))
    links = [p.name for p in files if p.is_symlink()]
    if links:
        raise CheckpointError(
            f"{root}: weight file(s) {', '.join(links)} are symbolic links; copy the real files"
        )
    if files:
        return files
    pickles = sorted(p.name for p in root.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{root} holds only pickled weights ({', '.join(pickles[:3])}); geodesk loads safetensors only, "
            "because loading a pickle can run arbitrary code. Convert the weights to safetensors on a "
            "trusted machine first (load with transformers, then save_pretrained(folder))."
        )
    raise CheckpointError(f"{root} has no *.safetensors weights: it is not a model folder")


def unlisted_weight_files(folder: str | Path, listed: Iterable[str]) -> list[str]:
    """Weight files the model would load that ``listed`` (a manifest's file list) does not name."""
    root = Path(folder)
    known = set(listed)
    return [
        p.relative_to(root).as_posix()
        for p in weight_files(root)
        if p.relative_to(root).as_posix() not in known
    ]


def checkpoint_keys(folder: str | Path) -> list[str]:
    keys: list[str] = []
    for path in weight_files(folder):
        keys.extend(safetensors_header(path))
    return keys


def checkpoint_naming(folder: str | Path) -> KeyNaming:
    return detect_naming(checkpoint_keys(folder))


def rename_shards(
    src_dir: str | Path,
    staging: Path,
    rename: Callable[[str, Any], list[tuple[str, Any]]],
) -> dict[str, str]:
    """Write every weight shard of ``src_dir`` into ``staging`` under the same file names, each tensor
    passed through ``rename(key, tensor) -> [(new_key, tensor), ...]`` (one key may become several, as
    a fused projection split in three). Shard by shard, so memory stays at one shard; the index is
    written when the source is sharded. Returns the new weight map (key -> shard file name)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    src = Path(src_dir)
    shards = weight_files(src)
    weight_map: dict[str, str] = {}
    total_size = 0
    for shard in shards:
        tensors: dict[str, Any] = {}
        with safe_open(str(shard), framework="pt") as fh:
            metadata = fh.metadata() or {"format": "pt"}
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a dict
                for new_key, tensor in rename(key, fh.get_tensor(key)):
                    if new_key in weight_map:
                        raise CheckpointError(
                            f"two weights of {src} map to {new_key!r}; the folder is damaged"
                        )
                    tensors[new_key] = tensor.contiguous()
                    weight_map[new_key] = shard.name
                    total_size += tensor.numel() * tensor.element_size()
        save_file(tensors, str(staging / shard.name), metadata=metadata)
        del tensors
    if len(shards) > 1 or (src / INDEX_NAME).is_file():
        index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
        (staging / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return weight_map


def export_checkpoint(src_dir: str | Path, dst_dir: str | Path, naming: KeyNaming) -> Path:
    """Copy a model folder into ``dst_dir`` with its weights renamed to ``naming``.

    Shard by shard (memory stays at one shard), tensors byte-identical; the other files (config,
    tokenizer, processor, chat template, generation config) are copied. A geodesk manifest in the source
    is rewritten for the new files, with provenance pointing at the source package. The result is built
    in a temporary sibling folder and moved into place, so ``dst_dir`` never holds half an export.
    """
    src = Path(src_dir).resolve()
    dst = Path(dst_dir).expanduser().resolve()
    shards = weight_files(src)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise CheckpointError(f"{dst} already exists and is not empty; choose a new folder")
    source_manifest = None
    if (src / MANIFEST_NAME).is_file():
        try:
            source_manifest = read_manifest(src)
        except PackageError as exc:
            raise CheckpointError(str(exc)) from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Written in a staging folder beside dst, renamed into place when complete (geodesk.atomic).
    with atomic_directory(dst) as staging:
        rename_shards(src, staging, lambda key, tensor: [(convert_key(key, naming), tensor)])
        weight_names = {p.name for p in shards}
        for path in sorted(src.iterdir()):
            skip = path.name in weight_names or path.name in (INDEX_NAME, MANIFEST_NAME)
            if skip or path.name.startswith("."):
                continue
            if path.is_file():
                shutil.copy2(path, staging / path.name)
            elif path.is_dir():
                shutil.copytree(path, staging / path.name)
        if source_manifest is not None:
            write_manifest(
                staging,
                name=source_manifest.name,
                version=source_manifest.version,
                protocol_version=source_manifest.protocol_version,
                untrained=source_manifest.untrained,
                max_images_per_message=source_manifest.max_images_per_message,
                provenance={
                    "kind": f"export-{naming.value}",
                    "from": source_manifest.identity_sha256,
                    "source_provenance": source_manifest.provenance,
                },
            )
    return dst


def export_legacy(src_dir: str | Path, dst_dir: str | Path) -> Path:
    """Export a model folder with the legacy llava-hf key names (what lmdeploy's loader wants)."""
    return export_checkpoint(src_dir, dst_dir, KeyNaming.LEGACY)
