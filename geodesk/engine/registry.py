"""The model registry: installed model packages in the workspace, one active version per name.

::

    <workspace>/models/
      registry.json            what is installed, the active version per name, activation history
      <name>/<version>/        one model package each (HF model folder + geodesk-model.json)
      .staging-<pid>-<hex>/    an install in progress (moved into place when complete)
      .trash-<pid>-<hex>/      a removal in progress

``registry.json`` is the commit point: a version exists for geodesk when its record is there, and the
file is only ever replaced whole (temp file + ``os.replace``). An install fills a staging folder,
re-hashes it, moves it to ``<name>/<version>`` and writes ``registry.json`` last; any exception or
KeyboardInterrupt before that write puts the folder tree back as it was. Staging and trash folders of a
process that no longer runs are removed the next time a registry is opened.

The record of each version keeps the SHA-256 of every file and of the manifest as installed, so
``verify`` names every changed file even when someone rewrote ``geodesk-model.json`` to match.

Install sources, detected by :func:`detect_source_kind`: a geodesk package (its hashes are checked
before anything is copied), a plain HF folder of any family in :mod:`geodesk.engine.families`
(LLaVA, Qwen2.5-VL, InternVL3 ``-hf``; the manifest is computed) and an XTuner LLaVA export
(converted by :mod:`geodesk.engine.xtuner`). Pickled weights are refused (see
:mod:`geodesk.engine.checkpoint`).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypedDict, TypeVar, cast

from filelock import FileLock, Timeout

from geodesk.atomic import atomic_write_text
from geodesk.digest import copy_hashing
from geodesk.domain.model import ModelIdentity
from geodesk.engine.checkpoint import PICKLE_SUFFIXES, CheckpointError, unlisted_weight_files, weight_files
from geodesk.engine.errors import ModelNotFoundError as ModelNotFoundError  # re-exported
from geodesk.engine.errors import RegistryError as RegistryError  # re-exported
from geodesk.engine.package import (
    MANIFEST_NAME,
    PackageError,
    PackageManifest,
    VerifyReport,
    build_manifest,
    check_files,
    check_relative_path,
    file_stamp,
    identity_from_hashes,
    list_package_files,
    model_caveat,
    package_identity,
    read_manifest,
    save_manifest,
    sha256_file,
    verify_package,
)
from geodesk.processes import pid_alive as _pid_alive

REGISTRY_FILE = "registry.json"
REGISTRY_FORMAT = 1
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
# Free space wanted beyond the package size: 5 % for file-system overhead, at least 256 MiB so the
# workspace is not filled to the last byte (the case databases live on the same disk).
DISK_MARGIN_FRACTION = 0.05
DISK_MARGIN_MIN_BYTES = 256 * 1024 * 1024
# Where the pid of a staging folder's owner cannot be checked (Windows), a folder this old is stale.
STALE_AGE_SECONDS = 24 * 3600
HISTORY_LIMIT = 50
_COPY_CHUNK = 8 * 1024 * 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
# "gaga-1.2", "gaga_v2", "llava-llama3-8b-0.3.1": a trailing version number split off a folder name.
_FOLDER_VERSION_RE = re.compile(r"^(?P<name>.+?)[-_]v?(?P<version>\d+(?:\.\d+)*)$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")

LOCK_FILE = "registry.json.lock"
# How long a registry change waits for another process's change (an install holds the lock only for
# its final move + write, never while copying gigabytes).
LOCK_TIMEOUT_S = 120.0

Progress = Callable[[int, int], None]


class VersionRecord(TypedDict, total=False):
    """One installed version in registry.json (what was installed, and the proof of it)."""

    identity_sha256: str
    architecture: str
    untrained: bool
    protocol_version: str | None
    size_bytes: int
    installed_at: str
    source: str
    source_kind: str
    files: dict[str, str]  # relative path -> SHA-256, as installed
    manifest_sha256: str
    # relative path -> [size, mtime_ns, ctime_ns] when the files last matched ``files`` (see stamps())
    stamps: dict[str, list[int]]
    synthetic: bool  # trained on GeoSynth scenes only (the package's provenance)
    family: str  # geodesk.engine.families name
    profile: str  # geodesk.engine.profiles name


class ModelEntry(TypedDict):
    active: str | None
    history: list[str]
    versions: dict[str, VersionRecord]


class RegistryState(TypedDict):
    format_version: int
    default: str | None
    models: dict[str, ModelEntry]


def _empty_state() -> RegistryState:
    return {"format_version": REGISTRY_FORMAT, "default": None, "models": {}}


def _check_state(data: Any, where: Path) -> RegistryState:
    """registry.json's document, its shape checked so that later code can trust the types."""
    damaged = RegistryError(
        f"{where} is not a geodesk model registry (or is damaged); restore it from a backup, or move it "
        "away and reinstall the models"
    )
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise damaged
    version = data.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise damaged
    if version > REGISTRY_FORMAT:
        raise RegistryError(f"{where} was written by a newer geodesk; update geodesk")
    default = data.setdefault("default", None)
    if default is not None and not isinstance(default, str):
        raise damaged
    for name, entry in data["models"].items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("versions"), dict)
            or not _NAME_RE.match(name)
        ):
            raise damaged
        entry.setdefault("active", None)
        entry.setdefault("history", [])
        if not isinstance(entry["history"], list) or not all(isinstance(v, str) for v in entry["history"]):
            raise damaged
        for version_name, record in entry["versions"].items():
            if not (_NAME_RE.match(version_name) and isinstance(record, dict)):
                raise damaged
            files = record.get("files")
            if not isinstance(record.get("identity_sha256"), str) or not isinstance(files, dict):
                raise damaged
            for rel in files:
                try:
                    check_relative_path(rel, str(where))
                except PackageError:
                    raise damaged from None
    return cast("RegistryState", data)


class SourceKind(enum.StrEnum):
    PACKAGE = "geodesk-package"
    LLAVA_HF = "llava-hf"
    HF_FOLDER = "hf-folder"  # a transformers folder of another family (Qwen2.5-VL, InternVL3 -hf)
    XTUNER = "xtuner"


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """One model version: installed in the registry, or a package folder used in place."""

    name: str
    version: str
    path: Path
    active: bool
    identity_sha256: str
    architecture: str
    untrained: bool
    size_bytes: int
    protocol_version: str | None = None
    installed: bool = True  # False: a folder outside the registry (development use through --model DIR)
    installed_at: str = ""
    source_kind: str = ""
    synthetic: bool = False  # trained on synthetic GeoSynth scenes only (the package's provenance)
    family: str = ""  # geodesk.engine.families name
    profile: str = ""  # geodesk.engine.profiles name

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def caveat(self) -> str | None:
        return model_caveat(untrained=self.untrained, synthetic=self.synthetic)

    def identity(self) -> ModelIdentity:
        """What a session records about the model it ran on."""
        return ModelIdentity(self.name, self.version, self.identity_sha256, str(self.path), self.caveat)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "path": str(self.path),
            "active": self.active,
            "sha256": self.identity_sha256,
            "architecture": self.architecture,
            "untrained": self.untrained,
            "synthetic": self.synthetic,
            "caveat": self.caveat,
            "size_bytes": self.size_bytes,
            "protocol_version": self.protocol_version,
            "installed": self.installed,
            "installed_at": self.installed_at,
            "source_kind": self.source_kind,
            "family": self.family,
            "profile": self.profile,
        }


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"NAME"`` -> (NAME, None); ``"NAME@VERSION"`` -> (NAME, VERSION). Raises on malformed input."""
    name, sep, version = ref.strip().partition("@")
    if not _NAME_RE.match(name) or (sep and not _NAME_RE.match(version)):
        raise ModelNotFoundError(
            f"{ref!r} is not a model reference: write NAME or NAME@VERSION (letters, digits, '.', '_', "
            "'+', '-'), or give a model folder path"
        )
    return name, (version if sep else None)


def check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise RegistryError(
            f"{value!r} cannot be a model {what}: use 1-100 letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit"
        )
    return value


def _is_pickle(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def detect_source_kind(src: Path) -> SourceKind:
    """What an install source is: geodesk package, plain llava-hf folder, or XTuner LLaVA export."""
    if not src.is_dir():
        raise RegistryError(f"{src} is not a folder; give a model package, llava-hf folder or XTuner export")
    if (src / MANIFEST_NAME).is_file():
        return SourceKind.PACKAGE
    from geodesk.engine.xtuner import is_xtuner_export

    if is_xtuner_export(src):
        return SourceKind.XTUNER
    config = src / "config.json"
    if config.is_file():
        try:
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            raise RegistryError(f"{config} is not valid JSON; the model folder is damaged") from None
        if model_type == "llava":
            return SourceKind.LLAVA_HF
        from geodesk.engine.families import FamilyError, detect_family

        try:
            detect_family(src)
        except FamilyError as exc:
            raise RegistryError(
                f"{exc}. geodesk installs HF folders of those families, geodesk packages and XTuner LLaVA "
                "exports (a folder with projector/)"
            ) from None
        return SourceKind.HF_FOLDER
    raise RegistryError(
        f"{src} is not a model: it has neither {MANIFEST_NAME}, nor a config.json, nor an XTuner "
        "projector/ folder"
    )


def default_name_version(folder: Path) -> tuple[str, str]:
    """Name and version from a folder name: ``gaga-1.2`` -> (gaga, 1.2); ``gaga`` -> (gaga, 1)."""
    raw = re.sub(r"[^A-Za-z0-9._+-]+", "-", folder.name).strip("-._+") or "model"
    match = _FOLDER_VERSION_RE.match(raw)
    if match:
        return match["name"], match["version"]
    return raw, "1"


def _copy_file(src: Path, dst: Path, on_bytes: Callable[[int], None]) -> str:
    """Copy one file in chunks, returning the SHA-256 of the bytes read (one read of the source)."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        sha, _size = copy_hashing(fin, fout, on_bytes)
        fout.flush()
        os.fsync(fout.fileno())
    return sha


def _is_stale(folder: Path, prefix: str) -> bool:
    pid_text = folder.name[len(prefix) :].split("-", 1)[0]
    if sys.platform != "win32" and pid_text.isdigit():
        return not _pid_alive(int(pid_text))
    # On Windows os.kill(pid, 0) would send CTRL_C_EVENT; go by age instead.
    try:
        return time.time() - folder.stat().st_mtime > STALE_AGE_SECONDS
    except OSError:
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _serialised(
    method: Callable[Concatenate[ModelRegistry, _P], _R],
) -> Callable[Concatenate[ModelRegistry, _P], _R]:
    """Run a read-modify-write of registry.json under the registry's file lock."""

    def locked(self: ModelRegistry, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._locked():
            return method(self, *args, **kwargs)

    functools.update_wrapper(locked, method)
    return locked


class ModelRegistry:
    """Installed model packages under ``<workspace>/models``; see the module docstring."""

    def __init__(self, workspace_path: Path | str) -> None:
        self.workspace = Path(workspace_path).expanduser().absolute()
        self.root = self.workspace / "models"
        self.state_path = self.root / REGISTRY_FILE
        self._lock = FileLock(self.root / LOCK_FILE, timeout=LOCK_TIMEOUT_S, thread_local=False)
        if self.root.is_dir():
            self._clean_stale()

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.workspace)!r})"

    # --- registry.json -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the registry's file lock: every read-modify-write of registry.json runs inside it, so
        concurrent installs and activations (other processes, other threads) never drop a record."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                yield
        except Timeout:
            raise RegistryError(
                f"another geodesk has been changing the model registry in {self.root} for over "
                f"{LOCK_TIMEOUT_S:.0f} s; wait for it to finish and try again"
            ) from None

    def _read_state(self) -> RegistryState:
        if not self.state_path.is_file():
            return _empty_state()
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(
                f"{self.state_path} is damaged ({exc}); restore it from a backup, or move it away and "
                "reinstall the models"
            ) from None
        return _check_state(data, self.state_path)

    def _write_state(self, state: RegistryState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        atomic_write_text(self.state_path, text)

    def _clean_stale(self) -> None:
        for entry in self.root.iterdir():
            for prefix in (STAGING_PREFIX, TRASH_PREFIX):
                if entry.name.startswith(prefix) and entry.is_dir() and _is_stale(entry, prefix):
                    shutil.rmtree(entry, ignore_errors=True)

    def _scratch(self, prefix: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir()
        return path

    # --- lookups -------------------------------------------------------------------------------

    def _model(self, state: RegistryState, name: str, version: str) -> InstalledModel:
        entry = state["models"][name]
        record = entry["versions"][version]
        family = str(record.get("family") or _family_of_architecture(str(record.get("architecture", ""))))
        return InstalledModel(
            name=name,
            version=version,
            path=self.root / name / version,
            active=entry.get("active") == version,
            identity_sha256=str(record["identity_sha256"]),
            architecture=str(record.get("architecture", "")),
            untrained=bool(record.get("untrained", False)),
            size_bytes=int(record.get("size_bytes", 0)),
            protocol_version=record.get("protocol_version"),
            installed=True,
            installed_at=str(record.get("installed_at", "")),
            source_kind=str(record.get("source_kind", "")),
            synthetic=_recorded_synthetic(record, self.root / name / version),
            family=family,
            profile=str(record.get("profile") or _default_profile(family)),
        )

    def list(self) -> list[InstalledModel]:
        """Every installed version, by name then installation time."""
        state = self._read_state()
        out = []
        for name in sorted(state["models"]):
            versions = state["models"][name]["versions"]
            for version in sorted(versions, key=lambda v: (versions[v].get("installed_at", ""), v)):
                out.append(self._model(state, name, version))
        return out

    def active(self) -> InstalledModel | None:
        """The workspace's active model: the active version of the last activated name."""
        state = self._read_state()
        name = state.get("default")
        entry = state["models"].get(name) if isinstance(name, str) else None
        if not isinstance(name, str) or not entry or not entry.get("active"):
            return None
        return self._model(state, name, str(entry["active"]))

    def _lookup_entry(self, state: RegistryState, name: str) -> ModelEntry:
        entry = state["models"].get(name)
        if entry is None:
            known = ", ".join(sorted(state["models"])) or "none"
            raise ModelNotFoundError(
                f"no model named {name!r} is installed (installed: {known}); install it with "
                "`geodesk model install SRC`"
            )
        return entry

    def _lookup(self, state: RegistryState, name: str, version: str | None) -> InstalledModel:
        entry = self._lookup_entry(state, name)
        versions = entry["versions"]
        if version is None:
            if entry.get("active"):
                version = str(entry["active"])
            elif len(versions) == 1:
                version = next(iter(versions))
            else:
                raise ModelNotFoundError(
                    f"{name} has no active version and several installed ({', '.join(sorted(versions))}); "
                    f"say which: {name}@VERSION"
                )
        if version not in versions:
            raise ModelNotFoundError(
                f"{name}@{version} is not installed (installed versions of {name}: "
                f"{', '.join(sorted(versions))})"
            )
        return self._model(state, name, version)

    def resolve(self, ref: str | Path | None) -> InstalledModel:
        """``None`` -> the active model; ``NAME`` -> its active version; ``NAME@VERSION``; or a folder path.

        A registered name wins over a same-named folder in the current directory; write ``./NAME`` to
        mean the folder. A folder is used in place (``installed`` False) and is not verified.
        """
        state = self._read_state()
        if ref is None:
            model = self.active()
            if model is None:
                raise ModelNotFoundError(
                    "no model is active in this workspace; install one with `geodesk model install SRC` "
                    "and activate it with `geodesk model activate NAME@VERSION`, or pass a model folder"
                )
            return model
        text = str(ref)
        path_like = isinstance(ref, Path) or "/" in text or "\\" in text or text.startswith(("~", "."))
        if not path_like and (_NAME_RE.match(text.partition("@")[0]) or not Path(text).is_dir()):
            name, version = parse_ref(text)
            if name in state["models"] or not Path(text).is_dir():
                return self._lookup(state, name, version)
        return self._folder_model(Path(text).expanduser())

    def _folder_model(self, folder: Path) -> InstalledModel:
        if not folder.is_dir():
            raise ModelNotFoundError(f"{folder} is not a folder and not an installed model")
        root = folder.resolve()
        if not (root / "config.json").is_file():
            raise ModelNotFoundError(f"{root} has no config.json: it is not a model folder")
        try:
            if (root / MANIFEST_NAME).is_file():
                manifest = read_manifest(root)
                architecture, untrained, protocol = (
                    manifest.architecture,
                    manifest.untrained,
                    manifest.protocol_version,
                )
                synthetic = manifest.synthetic
                identity = manifest.identity(root)
                family, profile = manifest.family_name, manifest.profile_name
            else:
                config = json.loads((root / "config.json").read_text(encoding="utf-8"))
                architecture = str((config.get("architectures") or [config.get("model_type", "")])[0])
                untrained, protocol, synthetic = False, None, False
                identity = package_identity(root)
                family = _family_of_architecture(architecture)
                profile = ""
        except (PackageError, json.JSONDecodeError) as exc:
            raise ModelNotFoundError(f"{root} cannot be used as a model folder: {exc}") from None
        try:
            size = sum((root / rel).stat().st_size for rel in list_package_files(root))
        except PackageError as exc:
            raise ModelNotFoundError(f"{root} cannot be used as a model folder: {exc}") from None
        return InstalledModel(
            name=identity.name,
            version=identity.version,
            path=root,
            active=False,
            identity_sha256=identity.sha256,
            architecture=architecture,
            untrained=untrained,
            size_bytes=size,
            protocol_version=protocol,
            installed=False,
            source_kind="folder",
            synthetic=synthetic,
            family=family,
            profile=profile,
        )

    # --- install -------------------------------------------------------------------------------

    def install(
        self,
        src: Path | str,
        name: str | None = None,
        version: str | None = None,
        progress: Progress | None = None,
        *,
        base_llm: Path | str | None = None,
        base_visual_encoder: Path | str | None = None,
        activate: bool | None = None,
        profile: str | None = None,
    ) -> InstalledModel:
        """Install a model from ``src`` (package, llava-hf folder or XTuner export) as NAME@VERSION.

        ``base_llm`` / ``base_visual_encoder``: for XTuner exports that hold only LoRA adapters (or no
        visual encoder), the folders of the models they were trained on. ``activate``: None activates
        the new version only when its name has no active version yet; True / False force it.
        ``progress(done_bytes, total_bytes)`` is called while files are copied.

        Installing a NAME@VERSION that exists is a no-op when the files are identical and refused
        otherwise. ``profile``: the prompt profile sessions use (None: the package's own, else the
        family's default); it is written into the installed manifest.
        """
        from geodesk.engine.profiles import PROFILE_NAMES

        if profile is not None and profile not in PROFILE_NAMES:
            raise RegistryError(f"unknown prompt profile {profile!r}; use one of {', '.join(PROFILE_NAMES)}")
        source = Path(src).expanduser().resolve()
        kind = detect_source_kind(source)
        report = progress or (lambda _done, _total: None)
        manifest: PackageManifest | None = None
        if kind is SourceKind.PACKAGE:
            try:
                manifest = read_manifest(source)
            except PackageError as exc:
                raise RegistryError(str(exc)) from None
            name = name or manifest.name
            version = version or manifest.version
        else:
            guessed_name, guessed_version = default_name_version(source)
            name = name or guessed_name
            version = version or guessed_version
        check_name(name, "name")
        check_name(version, "version")

        state = self._read_state()
        if manifest is not None and self._same_installed(state, name, version, manifest.identity_sha256):
            self._check_same_profile(state, name, version, profile)
            return self._lookup(state, name, version)

        self.root.mkdir(parents=True, exist_ok=True)
        staging = self._scratch(STAGING_PREFIX)
        final = self.root / name / version
        name_dir_created = not final.parent.exists()
        moved = committed = False
        try:
            try:
                if kind is SourceKind.PACKAGE:
                    assert manifest is not None
                    manifest = self._stage_package(source, manifest, name, version, staging, report, profile)
                elif kind in (SourceKind.LLAVA_HF, SourceKind.HF_FOLDER):
                    manifest = self._stage_llava_folder(source, name, version, staging, report, profile)
                else:
                    manifest = self._stage_xtuner(
                        source, name, version, staging, base_llm, base_visual_encoder, profile
                    )
                    written = sum((staging / rel).stat().st_size for rel in manifest.files)
                    report(written, written)  # converted in place: nothing to copy, done in one step
            except (PackageError, CheckpointError) as exc:  # symlinks, shard names outside the package
                raise RegistryError(str(exc)) from None

            size = sum((staging / rel).stat().st_size for rel in manifest.files)
            record: VersionRecord = {
                "identity_sha256": manifest.identity_sha256,
                "architecture": manifest.architecture,
                "family": manifest.family_name,
                "profile": manifest.profile_name,
                "untrained": manifest.untrained,
                "synthetic": manifest.synthetic,
                "protocol_version": manifest.protocol_version,
                "size_bytes": size,
                "installed_at": _now(),
                "source": str(source),
                "source_kind": kind.value,
                "files": dict(sorted(manifest.files.items())),
                "manifest_sha256": sha256_file(staging / MANIFEST_NAME),
            }
            with self._locked():
                state = self._read_state()  # under the lock: what other processes committed is in it
                if self._same_installed(state, name, version, manifest.identity_sha256):
                    shutil.rmtree(staging, ignore_errors=True)
                    return self._lookup(state, name, version)
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():
                    # A folder the registry does not list: left by an install killed between the move and
                    # the registry write. It was never committed, so it is replaced.
                    leftover = self._scratch(TRASH_PREFIX)
                    final.replace(leftover / "old")
                    shutil.rmtree(leftover, ignore_errors=True)
                staging.replace(final)
                moved = True
                record["stamps"] = {rel: file_stamp(final / rel) for rel in manifest.files}
                entry = state["models"].setdefault(name, {"active": None, "history": [], "versions": {}})
                entry["versions"][version] = record
                if activate:
                    self._set_active(state, name, version)
                elif activate is None and not entry.get("active"):
                    # The first version of a name becomes its active version; the workspace's active model
                    # changes only when there was none (installing must not switch what analysts run on).
                    self._set_active(state, name, version, make_default=not state.get("default"))
                self._write_state(state)
                committed = True
        except BaseException:
            if not committed:
                if moved:
                    with contextlib.suppress(OSError):
                        final.replace(staging)
                shutil.rmtree(staging, ignore_errors=True)
                if name_dir_created:
                    with contextlib.suppress(OSError):
                        final.parent.rmdir()
            raise
        return self._lookup(self._read_state(), name, version)

    def _same_installed(self, state: RegistryState, name: str, version: str, identity: str) -> bool:
        """True when NAME@VERSION is installed with ``identity``; raises when installed with another."""
        entry = state["models"].get(name)
        record = entry["versions"].get(version) if entry else None
        if record is None:
            return False
        if record["identity_sha256"] == identity and (self.root / name / version).is_dir():
            return True
        if record["identity_sha256"] == identity:
            raise RegistryError(
                f"{name}@{version} is registered but its folder {self.root / name / version} is gone; "
                f"remove it with `geodesk model remove {name}@{version}` and install again"
            )
        raise RegistryError(
            f"{name}@{version} is already installed with different files (sha256 "
            f"{str(record['identity_sha256'])[:12]}…, this source {identity[:12]}…); install it under "
            "another --version"
        )

    def _check_same_profile(
        self, state: Mapping[str, Any], name: str, version: str, profile: str | None
    ) -> None:
        """Reinstalling identical files is a no-op, but not when it asks for another prompt profile."""
        recorded = state["models"][name]["versions"][version].get("profile")
        if profile is not None and recorded and recorded != profile:
            raise RegistryError(
                f"{name}@{version} is installed with the {recorded!r} profile; install the {profile!r} "
                "profile under another --version"
            )

    def _check_disk(self, needed: int) -> None:
        margin = max(int(needed * DISK_MARGIN_FRACTION), DISK_MARGIN_MIN_BYTES)
        free = shutil.disk_usage(self.root).free
        if free < needed + margin:
            raise RegistryError(
                f"not enough free disk space in {self.root}: the model needs {_gib(needed)} plus "
                f"{_gib(margin)} headroom, {_gib(free)} is free; free some space or use another --workspace"
            )

    def _copy_files(
        self, source: Path, rels: Iterable[str], staging: Path, report: Progress
    ) -> dict[str, str]:
        """Copy ``rels`` from ``source`` into ``staging`` after a disk-space check; their SHA-256 as read."""
        rel_list = list(rels)
        sizes = {rel: (source / rel).stat().st_size for rel in rel_list}
        total = sum(sizes.values())
        self._check_disk(total)
        done = 0
        report(0, total)

        def advance(n: int) -> None:
            nonlocal done
            done += n
            report(done, total)

        hashes = {}
        for rel in rel_list:
            dst = staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            hashes[rel] = _copy_file(source / rel, dst, advance)
        return hashes

    def _stage_package(
        self,
        source: Path,
        manifest: PackageManifest,
        name: str,
        version: str,
        staging: Path,
        report: Progress,
        profile: str | None = None,
    ) -> PackageManifest:
        pickles = sorted(rel for rel in manifest.files if _is_pickle(Path(rel)))
        if pickles:
            raise RegistryError(
                f"{source} holds pickled files ({', '.join(pickles)}); geodesk packages hold safetensors "
                "only, because loading a pickle can run arbitrary code. Rebuild the package without them."
            )
        try:
            unlisted = unlisted_weight_files(source, manifest.files)
        except CheckpointError as exc:
            raise RegistryError(str(exc)) from None
        if unlisted:
            raise RegistryError(
                f"refusing to install {source}: its weights {', '.join(unlisted)} are not in its manifest, "
                "so they would load without being checked; rebuild the package"
            )
        # Files the manifest does not list are not copied, so only changed or missing ones matter.
        checked = replace(verify_package(source, manifest), unlisted=())
        if not checked.ok:
            raise RegistryError(
                f"refusing to install {source}: it does not match its own manifest ("
                + _problems(checked)
                + "); get an intact copy of the package"
            )
        copied = self._copy_files(source, sorted(manifest.files), staging, report)
        changed = sorted(rel for rel, digest in copied.items() if digest != manifest.files[rel])
        if changed:
            raise RegistryError(
                f"{', '.join(changed)} changed in {source} while it was being installed; install again"
            )
        wanted_profile = profile or manifest.profile
        if (name, version, wanted_profile) != (manifest.name, manifest.version, manifest.profile):
            manifest = replace(manifest, name=name, version=version, profile=wanted_profile)
            save_manifest(staging, manifest)
        else:
            shutil.copyfile(source / MANIFEST_NAME, staging / MANIFEST_NAME)
        self._recheck(staging, manifest)
        return manifest

    def _stage_llava_folder(
        self, source: Path, name: str, version: str, staging: Path, report: Progress, profile: str | None
    ) -> PackageManifest:
        """A plain HF folder of any family: copied without pickles, then given a computed manifest."""
        from geodesk.engine.families import detect_family

        try:
            weights = weight_files(source)  # refuses a folder with only pickled weights
        except CheckpointError as exc:
            raise RegistryError(str(exc)) from None
        if not any((source / f).is_file() for f in _TOKENIZER_FILES):
            raise RegistryError(f"{source} has no tokenizer files ({', '.join(_TOKENIZER_FILES)})")
        if not any((source / f).is_file() for f in _PROCESSOR_FILES):
            raise RegistryError(
                f"{source} has no image processor config ({' or '.join(_PROCESSOR_FILES)}); copy it from "
                "the model's original release"
            )
        # Pickles beside safetensors (pytorch_model.bin of old releases, training_args.bin) are
        # left behind: the safetensors hold the same weights and nothing in geodesk reads pickles.
        rels = [
            rel
            for rel in list_package_files(source)
            if not _is_pickle(Path(rel)) and not any(part.startswith(".") for part in Path(rel).parts)
        ]
        missing = [w.name for w in weights if w.relative_to(source).as_posix() not in rels]
        if missing:
            raise RegistryError(f"{source}: weight files {', '.join(missing)} cannot be read")
        copied = self._copy_files(source, rels, staging, report)
        manifest = build_manifest(
            staging,
            name=name,
            version=version,
            protocol_version=None,
            provenance={"kind": f"{detect_family(source).name}-hf-folder", "source": str(source)},
            profile=profile,
        )
        differs = sorted(rel for rel, digest in copied.items() if manifest.files.get(rel) != digest)
        if differs:
            raise RegistryError(f"the copies of {', '.join(differs)} differ from the source; check the disk")
        save_manifest(staging, manifest)
        return manifest

    def _stage_xtuner(
        self,
        source: Path,
        name: str,
        version: str,
        staging: Path,
        base_llm: Path | str | None,
        base_visual_encoder: Path | str | None,
        profile: str | None = None,
    ) -> PackageManifest:
        from geodesk.engine.xtuner import XTunerError, convert_xtuner, estimate_output_bytes

        try:
            needed = estimate_output_bytes(source, base_llm=base_llm, base_visual_encoder=base_visual_encoder)
            self._check_disk(needed)
            convert_xtuner(
                source,
                staging,
                base_llm=base_llm,
                base_visual_encoder=base_visual_encoder,
            )
        except (XTunerError, CheckpointError) as exc:
            raise RegistryError(str(exc)) from None
        manifest = build_manifest(
            staging,
            name=name,
            version=version,
            protocol_version=None,
            provenance={
                "kind": "xtuner-llava",
                "source": str(source),
                "base_llm": None if base_llm is None else str(base_llm),
                "base_visual_encoder": None if base_visual_encoder is None else str(base_visual_encoder),
                "converted_by": "geodesk.engine.xtuner.convert_xtuner",
            },
            profile=profile,
        )
        save_manifest(staging, manifest)
        return manifest

    def _recheck(self, staging: Path, manifest: PackageManifest) -> None:
        """Re-hash the staged copy: a disk or copy error must not reach the registry."""
        report = verify_package(staging, manifest)
        if not report.ok:
            raise RegistryError(f"the installed copy is not intact ({_problems(report)}); check the disk")

    # --- activation ----------------------------------------------------------------------------

    def _set_active(self, state: RegistryState, name: str, version: str, make_default: bool = True) -> None:
        entry = state["models"][name]
        history: list[str] = entry.setdefault("history", [])
        if not history or history[-1] != version:
            history.append(version)
        del history[:-HISTORY_LIMIT]
        entry["active"] = version
        if make_default:
            state["default"] = name

    def _check_intact_quickly(self, model: InstalledModel, state: RegistryState) -> None:
        """Folder and manifest as installed (no weights re-hashed; `verify` does that)."""
        record = state["models"][model.name]["versions"][model.version]
        manifest_path = model.path / MANIFEST_NAME
        if not manifest_path.is_file() or sha256_file(manifest_path) != record.get("manifest_sha256"):
            raise RegistryError(
                f"{model.ref} is damaged (its folder or manifest changed since it was installed); run "
                f"`geodesk model verify {model.ref}` and install it again"
            )

    @_serialised
    def activate(self, ref: str) -> InstalledModel:
        """Make NAME@VERSION the active version of NAME and NAME the workspace's active model.

        ``NAME`` alone keeps NAME's active version, or takes its most recently installed one.
        """
        name, version = parse_ref(ref)
        state = self._read_state()
        if version is None and name in state["models"] and not state["models"][name].get("active"):
            versions = state["models"][name]["versions"]
            version = max(versions, key=lambda v: (versions[v].get("installed_at", ""), v))
        model = self._lookup(state, name, version)
        self._check_intact_quickly(model, state)
        self._set_active(state, model.name, model.version)
        self._write_state(state)
        return self._lookup(state, model.name, model.version)

    @_serialised
    def deactivate(self, name: str) -> None:
        """NAME has no active version afterwards (so its last version can be removed)."""
        name = parse_ref(name)[0]
        state = self._read_state()
        self._lookup_entry(state, name)
        state["models"][name]["active"] = None
        if state.get("default") == name:
            state["default"] = None
        self._write_state(state)

    @_serialised
    def rollback(self, name: str) -> InstalledModel:
        """Activate the version of NAME that was active before the current one."""
        name = parse_ref(name)[0]
        state = self._read_state()
        self._lookup_entry(state, name)
        entry = state["models"][name]
        history: list[str] = list(entry.get("history", []))
        if history and history[-1] == entry.get("active"):
            history.pop()
        while history and history[-1] not in entry["versions"]:
            history.pop()
        if not history:
            raise RegistryError(
                f"{name} has no earlier active version to roll back to; activate one explicitly with "
                f"`geodesk model activate {name}@VERSION`"
            )
        previous = history[-1]
        model = self._lookup(state, name, previous)
        self._check_intact_quickly(model, state)
        entry["history"] = history
        entry["active"] = previous
        state["default"] = name
        self._write_state(state)
        return self._lookup(state, name, previous)

    # --- loading -------------------------------------------------------------------------------

    def check_for_loading(self, model: InstalledModel) -> ModelIdentity:
        """Check an installed version before its weights load; the identity of the files as checked.

        Always: the manifest is byte-identical to the one installed, the folder holds exactly the
        installed files (no links, nothing missing or added) at their installed sizes. Files whose
        size / mtime / ctime stamp changed since they last matched are hashed again in full (``model
        verify`` hashes all of them); their new stamps are recorded. Anything that differs refuses the
        load, naming the files, so a session never records an identity its weights do not have.
        """
        state = self._read_state()
        record = self._record(state, model)
        manifest_path = model.path / MANIFEST_NAME
        if not manifest_path.is_file() or sha256_file(manifest_path) != record.get("manifest_sha256"):
            raise RegistryError(
                f"{model.ref} is damaged: its {MANIFEST_NAME} changed since it was installed; run "
                f"`geodesk model verify {model.ref}` and install it again"
            )
        files = dict(record["files"])
        try:
            checked = check_files(model.path, files, record.get("stamps", {}))
            unlisted = unlisted_weight_files(model.path, files)
        except (PackageError, CheckpointError) as exc:
            raise RegistryError(f"{model.ref} cannot be loaded: {exc}") from None
        if not checked.report.ok or unlisted:
            problems = _problems(replace(checked.report, unlisted=(*checked.report.unlisted, *unlisted)))
            raise RegistryError(
                f"{model.ref} does not match what was installed ({problems}); run `geodesk model verify "
                f"{model.ref}` and install it again"
            )
        if checked.stamps != record.get("stamps"):
            with self._locked():  # only the stamps are written; the hashing above ran unlocked
                fresh = self._read_state()
                entry = fresh["models"].get(model.name)
                again = entry["versions"].get(model.version) if entry else None
                if again is not None and again.get("identity_sha256") == record["identity_sha256"]:
                    again["stamps"] = checked.stamps
                    self._write_state(fresh)
        # The identity of the bytes as checked, with the package's caveat (untrained / synthetic).
        return ModelIdentity(model.name, model.version, identity_from_hashes(files), str(model.path),
                             model.caveat)

    def _record(self, state: RegistryState, model: InstalledModel) -> VersionRecord:
        try:
            return state["models"][model.name]["versions"][model.version]
        except KeyError:
            raise ModelNotFoundError(f"{model.ref} is no longer installed") from None

    # --- verify and remove ---------------------------------------------------------------------

    def verify(self, ref: str | None) -> VerifyReport:
        """Re-hash every file of an installed version against the hashes recorded at install.

        The manifest counts as a file too: a rewritten ``geodesk-model.json`` is reported as changed.
        A folder path is checked against its own manifest.
        """
        model = self.resolve(ref)
        if not model.installed:
            try:
                return verify_package(model.path)
            except PackageError as exc:
                raise RegistryError(str(exc)) from None
        if not model.path.is_dir():
            raise RegistryError(
                f"{model.ref} is registered but its folder {model.path} is gone; remove it with "
                f"`geodesk model remove {model.ref}` and install it again"
            )
        record = self._read_state()["models"][model.name]["versions"][model.version]
        recorded = PackageManifest(
            name=model.name,
            version=model.version,
            architecture=model.architecture,
            protocol_version=model.protocol_version,
            provenance={},
            untrained=model.untrained,
            files=dict(record["files"]),
            memory_bytes={},
        )
        try:
            report = verify_package(model.path, recorded)
        except PackageError as exc:  # a link or a special file in the folder
            raise RegistryError(f"{model.ref} cannot be verified: {exc}") from None
        manifest_path = model.path / MANIFEST_NAME
        manifest_ok = manifest_path.is_file() and sha256_file(manifest_path) == record["manifest_sha256"]
        if manifest_ok:
            return report
        if not manifest_path.is_file():
            return replace(report, missing=tuple(sorted((*report.missing, MANIFEST_NAME))))
        return replace(report, mismatched=tuple(sorted((*report.mismatched, MANIFEST_NAME))))

    @_serialised
    def remove(self, ref: str) -> InstalledModel:
        """Delete NAME@VERSION from the workspace; the active version is refused."""
        name, version = parse_ref(ref)
        state = self._read_state()
        if version is None:
            versions = ", ".join(sorted(self._lookup_entry(state, name)["versions"]))
            raise RegistryError(f"say which version to remove: {name}@VERSION (installed: {versions})")
        model = self._lookup(state, name, version)
        entry = state["models"][name]
        if model.active:
            others = sorted(v for v in entry["versions"] if v != version)
            if others:
                how = (
                    f"switch first with `geodesk model activate {name}@{others[-1]}` "
                    f"(or `geodesk model rollback {name}`)"
                )
            else:
                how = f"it is the only version of {name}; run `geodesk model deactivate {name}` first"
            raise RegistryError(f"{model.ref} is the active version of {name} and cannot be removed; {how}")
        trash = self._scratch(TRASH_PREFIX)
        moved = False
        try:
            if model.path.exists():
                model.path.replace(trash / "removed")
                moved = True
            del entry["versions"][version]
            entry["history"] = [v for v in entry.get("history", []) if v != version]
            if not entry["versions"]:
                del state["models"][name]
                if state.get("default") == name:
                    state["default"] = None
            self._write_state(state)
        except BaseException:
            if moved:
                with contextlib.suppress(OSError):
                    (trash / "removed").replace(model.path)
            shutil.rmtree(trash, ignore_errors=True)
            raise
        shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(OSError):
            model.path.parent.rmdir()  # only succeeds when no version of NAME is left
        return model


def _family_of_architecture(architecture: str) -> str:
    """The family name for a recorded architecture class ("" when no family loads it)."""
    from geodesk.engine.families import FamilyError, family_from_architecture

    try:
        return family_from_architecture(architecture).name
    except FamilyError:
        return ""


def _default_profile(family: str) -> str:
    from geodesk.engine.families import FamilyError, family_by_name

    try:
        return family_by_name(family).default_profile
    except FamilyError:
        return ""


def _problems(report: VerifyReport) -> str:
    parts = []
    if report.mismatched:
        parts.append("changed: " + ", ".join(report.mismatched))
    if report.missing:
        parts.append("missing: " + ", ".join(report.missing))
    if report.unlisted:
        parts.append("not in the manifest: " + ", ".join(report.unlisted))
    return "; ".join(parts)


def _recorded_synthetic(record: Mapping[str, Any], folder: Path) -> bool:
    """The record's synthetic label; installs recorded before the label existed read their manifest."""
    if "synthetic" in record:
        return bool(record["synthetic"])
    try:
        return read_manifest(folder).synthetic
    except (PackageError, OSError):
        return False
