"""Model packages: an HF model folder of one of geodesk's families plus ``geodesk-model.json``.

The manifest names the package (name, version), says what it is (architecture, the prompt protocol
version it was trained on, provenance, whether it is untrained), lists the SHA-256 of every other file
in the folder, and estimates the memory it needs per dtype / quantization. The package identity is one
SHA-256 over the sorted file list (``"<sha256>  <relative path>\\n"`` lines, sorted by path, the format
``sha256sum`` prints), so renaming, adding, removing or changing any file changes the identity.

No torch here: sizes come from the safetensors headers, which are plain JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_text
from geodesk.digest import sha256_file as sha256_file  # re-exported for the registry and training
from geodesk.domain.model import ModelIdentity

MANIFEST_NAME = "geodesk-model.json"
FORMAT_VERSION = 1
# Memory estimates assume this many tokens of KV cache (one image + a long multi-turn session).
MEMORY_CONTEXT_TOKENS = 4096
QUANTIZATIONS = ("fp32", "bf16", "fp16", "int8", "nf4")
# Files the manifest never lists: the manifest itself and OS litter.
_IGNORED_NAMES = frozenset({MANIFEST_NAME, ".DS_Store", "Thumbs.db"})


class PackageError(Exception):
    """A model package is missing, malformed or does not match its manifest (a sentence to act on)."""


@dataclass(frozen=True, slots=True)
class PackageManifest:
    name: str
    version: str
    architecture: str
    protocol_version: str | None  # None: not trained on any geodesk prompt protocol (e.g. tiny models)
    provenance: dict[str, Any]
    untrained: bool
    files: dict[str, str]  # relative POSIX path -> SHA-256 (hex)
    memory_bytes: dict[str, int]  # "bf16" / "fp16" / "fp32" / "int8" / "nf4" -> estimated bytes to run
    max_images_per_message: int = 1
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    family: str = ""  # geodesk.engine.families name; "" in manifests written before families existed
    profile: str = ""  # geodesk.engine.profiles name; "" means the family's default

    @property
    def family_name(self) -> str:
        """The model family, from the manifest or (older manifests) from the architecture class."""
        from geodesk.engine.families import family_from_architecture

        return self.family or family_from_architecture(self.architecture).name

    @property
    def profile_name(self) -> str:
        """The prompt profile sessions use with this package (the family's default when unset)."""
        from geodesk.engine.families import family_by_name

        return self.profile or family_by_name(self.family_name).default_profile

    @property
    def identity_sha256(self) -> str:
        return identity_from_hashes(self.files)

    @property
    def synthetic(self) -> bool:
        """Trained on synthetic scenes only (the provenance says so): not for real photographs."""
        data = self.provenance.get("training_data")
        return isinstance(data, Mapping) and data.get("synthetic") is True

    @property
    def caveat(self) -> str | None:
        """What every screen must say about this model's answers: untrained, synthetic, or nothing."""
        return model_caveat(untrained=self.untrained, synthetic=self.synthetic)

    def identity(self, path: str | Path | None = None) -> ModelIdentity:
        where = None if path is None else str(path)
        return ModelIdentity(self.name, self.version, self.identity_sha256, where, self.caveat)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "protocol_version": self.protocol_version,
            "untrained": self.untrained,
            "provenance": self.provenance,
            "max_images_per_message": self.max_images_per_message,
            **({"family": self.family} if self.family else {}),
            **({"profile": self.profile} if self.profile else {}),
            "memory_bytes": dict(sorted(self.memory_bytes.items())),
            "identity_sha256": self.identity_sha256,
            "created_at": self.created_at,
            "files": dict(sorted(self.files.items())),
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = MANIFEST_NAME) -> PackageManifest:
        def need(key: str, kind: type | tuple[type, ...]) -> Any:
            if key not in data:
                raise PackageError(f"{source} has no {key!r} field; rewrite it with `geodesk model install`")
            value = data[key]
            if not isinstance(value, kind):
                raise PackageError(f"{source}: field {key!r} has the wrong type ({type(value).__name__})")
            return value

        version = need("format_version", int)
        if version > FORMAT_VERSION:
            raise PackageError(
                f"{source} uses package format {version}; this geodesk reads up to "
                f"{FORMAT_VERSION}: update geodesk"
            )
        files = need("files", dict)
        for rel, digest in files.items():
            if not (isinstance(digest, str) and len(digest) == 64):
                raise PackageError(f"{source}: the hash for {rel!r} is not a SHA-256 hex string")
            check_relative_path(rel, source)
        manifest = cls(
            name=need("name", str),
            version=need("version", str),
            architecture=need("architecture", str),
            protocol_version=need("protocol_version", (str, type(None))),
            provenance=need("provenance", dict),
            untrained=need("untrained", bool),
            files={str(k): str(v) for k, v in files.items()},
            memory_bytes={str(k): int(v) for k, v in need("memory_bytes", dict).items()},
            max_images_per_message=int(data.get("max_images_per_message", 1)),
            created_at=str(data.get("created_at", "")),
            format_version=version,
            extra=dict(data.get("extra", {})),
            family=str(data.get("family", "")),
            profile=str(data.get("profile", "")),
        )
        stated = data.get("identity_sha256")
        if stated is not None and stated != manifest.identity_sha256:
            raise PackageError(
                f"{source}: identity_sha256 does not match its file list; the manifest was edited"
            )
        return manifest


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of checking a folder against its manifest; ``ok`` when nothing differs."""

    folder: str
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unlisted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.mismatched or self.missing or self.unlisted)

    def describe(self) -> str:
        if self.ok:
            return f"{self.folder}: every file matches its manifest"
        parts = []
        if self.mismatched:
            parts.append("changed: " + ", ".join(self.mismatched))
        if self.missing:
            parts.append("missing: " + ", ".join(self.missing))
        if self.unlisted:
            parts.append("not in the manifest: " + ", ".join(self.unlisted))
        return f"{self.folder} does not match its manifest ({'; '.join(parts)}); reinstall the package"


def check_relative_path(rel: str, source: str) -> None:
    """A path a manifest, index or registry names must be relative and stay inside the package."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise PackageError(f"{source}: file path {rel!r} must be a relative POSIX path inside the package")
    parts = Path(rel).parts
    if Path(rel).is_absolute() or rel.startswith("/") or ".." in parts or not parts or ":" in parts[0]:
        raise PackageError(f"{source}: file path {rel!r} must be relative and stay inside the package")


def list_package_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` except the manifest, as sorted relative POSIX paths.

    A symbolic link anywhere in the folder is refused, never skipped: a skipped link to a weight file
    would still be loaded by transformers while being left out of the package identity.
    """
    root = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for entry in (*dirnames, *filenames):
            path = here / entry
            mode = path.lstat().st_mode
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(mode):
                raise PackageError(
                    f"{root}: {rel} is a symbolic link; geodesk model folders hold real files only (copy "
                    "the folder with `cp -rL` to replace links by the files they point to)"
                )
            if stat.S_ISDIR(mode) or entry in _IGNORED_NAMES:
                continue
            if not stat.S_ISREG(mode):
                raise PackageError(f"{root}: {rel} is not a regular file; remove it from the model folder")
            out.append(rel)
    return sorted(out)


def file_stamp(path: Path) -> list[int]:
    """[size, mtime_ns, ctime_ns] of a file: what changes when its bytes may have changed. The ctime
    cannot be set back by the file's owner (``touch -d`` moves only the mtime)."""
    info = path.lstat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns]


@dataclass(frozen=True, slots=True)
class LoadCheck:
    """A folder checked against known file hashes before loading (see :func:`check_files`)."""

    report: VerifyReport
    rehashed: tuple[str, ...]  # files whose stamps had changed, so they were hashed again
    stamps: dict[str, list[int]]  # fresh stamps of every file that matched


def check_files(
    folder: str | Path, expected: Mapping[str, str], stamps: Mapping[str, Sequence[int]]
) -> LoadCheck:
    """Check ``folder`` against ``expected`` hashes cheaply: file set, sizes and stamps always; the full
    SHA-256 only of files whose stamp differs from ``stamps`` (or that have none)."""
    root = Path(folder)
    present = set(list_package_files(root))
    listed = set(expected)
    mismatched: list[str] = []
    rehashed: list[str] = []
    fresh: dict[str, list[int]] = {}
    for rel in sorted(listed & present):
        stamp = file_stamp(root / rel)
        known = list(stamps.get(rel, ()))
        if known == stamp:
            fresh[rel] = stamp
            continue
        if known and known[0] != stamp[0]:
            mismatched.append(rel)  # another size: no need to read it
            continue
        rehashed.append(rel)
        if sha256_file(root / rel) == expected[rel]:
            fresh[rel] = stamp
        else:
            mismatched.append(rel)
    report = VerifyReport(
        folder=str(root),
        mismatched=tuple(mismatched),
        missing=tuple(sorted(listed - present)),
        unlisted=tuple(sorted(present - listed)),
    )
    return LoadCheck(report, tuple(rehashed), fresh)


def hash_files(folder: str | Path) -> dict[str, str]:
    root = Path(folder)
    return {rel: sha256_file(root / rel) for rel in list_package_files(root)}


def model_caveat(*, untrained: bool, synthetic: bool) -> str | None:
    """One rule for the label: an untrained model's answers mean nothing, whatever it was fed."""
    if untrained:
        return "untrained"
    return "synthetic" if synthetic else None


def identity_from_hashes(files: Mapping[str, str]) -> str:
    lines = "".join(f"{files[rel]}  {rel}\n" for rel in sorted(files))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > 100 * 1024 * 1024:
            raise PackageError(f"{path.name} has an implausible safetensors header; the file is damaged")
        header = json.loads(fh.read(length))
    if not isinstance(header, dict):
        raise PackageError(f"{path.name} has no safetensors header; the file is damaged")
    header.pop("__metadata__", None)
    return header


def parameter_counts(folder: str | Path) -> dict[str, int]:
    """Parameters by role, read from the safetensors headers (no tensor is loaded).

    ``quantizable``: 2-D ``*_proj`` weights of the language model (what bitsandbytes replaces);
    ``other``: everything else (vision tower, projector, embeddings, norms, lm_head), which stays in the
    compute dtype under the geodesk skip list.
    """
    counts = {"quantizable": 0, "other": 0}
    files = sorted(Path(folder).glob("*.safetensors"))
    for path in files:
        for key, info in safetensors_header(path).items():
            n = 1
            for dim in info["shape"]:
                n *= int(dim)
            is_llm = "language_model" in key and "vision" not in key and "lm_head" not in key
            if is_llm and key.endswith("_proj.weight") and len(info["shape"]) == 2:
                counts["quantizable"] += n
            else:
                counts["other"] += n
    return counts


def estimate_memory(folder: str | Path) -> dict[str, int]:
    """Estimated bytes to run the model per dtype / quantization: weights + a 4096-token KV cache.

    NF4 stores 4 bits per quantized weight plus one absmax per 64 weights (8-bit with double
    quantization, ~0.127 bit/weight); int8 stores 1 byte per weight plus fp32 row scales (ignored).
    The KV cache and the unquantized rest use the compute dtype (bf16 for the quantized forms).
    """
    root = Path(folder)
    counts = parameter_counts(root)
    kv_per_token_elems = 0
    config_path = root / "config.json"
    if config_path.is_file():
        text = json.loads(config_path.read_text(encoding="utf-8")).get("text_config", {})
        layers = int(text.get("num_hidden_layers", 0))
        heads = int(text.get("num_attention_heads", 1))
        kv_heads = int(text.get("num_key_value_heads", heads))
        head_dim = int(text.get("head_dim") or int(text.get("hidden_size", 0)) // max(heads, 1))
        kv_per_token_elems = 2 * layers * kv_heads * head_dim  # keys + values
    kv = kv_per_token_elems * MEMORY_CONTEXT_TOKENS
    q, other = counts["quantizable"], counts["other"]
    return {
        "fp32": 4 * (q + other + kv),
        "bf16": 2 * (q + other + kv),
        "fp16": 2 * (q + other + kv),
        "int8": q + 2 * (other + kv),
        "nf4": (q * 4 + q * 8 // 64 + 32 * q // (64 * 256)) // 8 + 2 * (other + kv),
    }


def _architecture(folder: Path) -> str:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise PackageError(f"{folder} has no config.json: it is not an HF llava-format model folder")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    archs = config.get("architectures") or [config.get("model_type", "unknown")]
    return str(archs[0])


def build_manifest(
    folder: str | Path,
    *,
    name: str,
    version: str,
    protocol_version: str | None,
    provenance: Mapping[str, Any],
    untrained: bool = False,
    max_images_per_message: int = 1,
    extra: Mapping[str, Any] | None = None,
    profile: str | None = None,
) -> PackageManifest:
    """Compute a manifest for ``folder`` (hashes every file; for an 8B model this reads ~16 GB).

    The family comes from ``config.json``; ``profile`` (None: the family's default) is checked by name.
    """
    from geodesk.engine.families import FamilyError, detect_family
    from geodesk.engine.profiles import PROFILE_NAMES

    root = Path(folder)
    if not root.is_dir():
        raise PackageError(f"model folder {root} does not exist")
    if not name.strip() or not version.strip():
        raise PackageError("a model package needs a non-empty name and version")
    if max_images_per_message < 1:
        raise PackageError("max_images_per_message must be at least 1")
    try:
        family = detect_family(root)
    except FamilyError as exc:
        raise PackageError(str(exc)) from None
    if profile is not None and profile not in PROFILE_NAMES:
        raise PackageError(f"unknown prompt profile {profile!r}; use one of {', '.join(PROFILE_NAMES)}")
    return PackageManifest(
        name=name,
        version=version,
        architecture=_architecture(root),
        protocol_version=protocol_version,
        provenance=dict(provenance),
        untrained=untrained,
        files=hash_files(root),
        memory_bytes=estimate_memory(root),
        max_images_per_message=max_images_per_message,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        extra=dict(extra or {}),
        family=family.name,
        profile=profile or family.default_profile,
    )


def write_manifest(folder: str | Path, **fields: Any) -> PackageManifest:
    """Build the manifest for ``folder`` (see :func:`build_manifest`) and write it atomically."""
    manifest = build_manifest(folder, **fields)
    save_manifest(folder, manifest)
    return manifest


def save_manifest(folder: str | Path, manifest: PackageManifest) -> None:
    text = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(Path(folder) / MANIFEST_NAME, text)


def read_manifest(folder: str | Path) -> PackageManifest:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise PackageError(f"{Path(folder)} has no {MANIFEST_NAME}: it is not a geodesk model package")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"{path} is not valid JSON ({exc}); reinstall the package") from None
    if not isinstance(data, dict):
        raise PackageError(f"{path} must hold a JSON object")
    return PackageManifest.from_json(data, source=str(path))


def verify_package(folder: str | Path, manifest: PackageManifest | None = None) -> VerifyReport:
    """Re-hash every file and compare with the manifest: changed, missing and unlisted files."""
    root = Path(folder)
    manifest = manifest or read_manifest(root)
    present = set(list_package_files(root))
    listed = set(manifest.files)
    mismatched = tuple(
        rel for rel in sorted(listed & present) if sha256_file(root / rel) != manifest.files[rel]
    )
    return VerifyReport(
        folder=str(root),
        mismatched=mismatched,
        missing=tuple(sorted(listed - present)),
        unlisted=tuple(sorted(present - listed)),
    )


def package_identity(folder: str | Path) -> ModelIdentity:
    """The identity of a model folder: from its manifest, or computed for a plain llava-hf folder."""
    root = Path(folder).resolve()
    if (root / MANIFEST_NAME).is_file():
        list_package_files(root)  # refuses links (cheap: no file is read)
        return read_manifest(root).identity(root)
    return ModelIdentity(root.name, "unversioned", identity_from_hashes(hash_files(root)), str(root))
