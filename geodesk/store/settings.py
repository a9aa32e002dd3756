"""Workspace settings: a typed, versioned ``settings.json`` with step-by-step migrations.

Reading upgrades older files one version at a time (``_MIGRATIONS[n]`` turns version ``n`` into
``n + 1``); a file from a newer geodesk is refused rather than half-understood and overwritten. Keys
this version does not know are kept in ``extra`` and written back, so nothing is lost. Writes are
atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_text
from geodesk.domain.precision import DTYPES, OLD_DTYPE_NAMES, OLD_QUANTIZATION_NAMES, QUANTIZATIONS
from geodesk.store._files import write_json_atomic
from geodesk.store.errors import SettingsError

SETTINGS_VERSION = 2  # 2: dtype and quantization in the one vocabulary (geodesk.domain.precision)


@dataclass(frozen=True, slots=True)
class Settings:
    version: int = SETTINGS_VERSION
    backend: str = "hf"  # engine backend name: hf, remote, lmdeploy
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    dtype: str = "auto"
    quantization: str = "none"
    remote_url: str | None = None  # OpenAI-compatible endpoint for the remote backend
    remote_model: str | None = None
    tile_folder: str | None = None  # a local map tile folder an admin configured
    recent_cases: tuple[str, ...] = ()  # case ids, most recent first
    # Several OpenAI-compatible endpoints for the remote backend (spread over by an EndpointPool); when
    # empty, remote_url alone is used.
    remote_endpoints: tuple[str, ...] = ()
    # Kept out of settings.json: saved in its own owner-only file beside it (REMOTE_KEY_FILE).
    remote_api_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys from elsewhere, kept as they are

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise SettingsError(f"setting dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}")
        if self.quantization not in QUANTIZATIONS:
            raise SettingsError(
                f"setting quantization must be one of {', '.join(QUANTIZATIONS)}; got {self.quantization!r}"
            )

    def to_json(self) -> dict[str, Any]:
        """The settings.json document: everything but the API key."""
        document = asdict(self)
        document.pop("remote_api_key")
        extra = document.pop("extra")
        document["recent_cases"] = list(self.recent_cases)
        document["remote_endpoints"] = list(self.remote_endpoints)
        return {**extra, **document}


def _from_unversioned(raw: dict[str, Any]) -> dict[str, Any]:
    # A settings.json written by hand (or before settings carried a version) uses version-1 names.
    return {**raw, "version": 1}


def _one_precision_vocabulary(raw: dict[str, Any]) -> dict[str, Any]:
    # Version 1 spelled dtype bfloat16/float16/float32 and quantization 4bit/8bit; the CLI and the
    # backends say bf16/fp16/fp32 and nf4/int8. Same meanings, one spelling.
    migrated = {**raw, "version": 2}
    dtype, quantization = raw.get("dtype"), raw.get("quantization")
    if isinstance(dtype, str):
        migrated["dtype"] = OLD_DTYPE_NAMES.get(dtype, dtype)
    if isinstance(quantization, str):
        migrated["quantization"] = OLD_QUANTIZATION_NAMES.get(quantization, quantization)
    return migrated


# version n -> n + 1
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: _from_unversioned,
    1: _one_precision_vocabulary,
}

_TYPES: dict[str, tuple[type, ...]] = {
    "backend": (str,),
    "device": (str,),
    "dtype": (str,),
    "quantization": (str,),
    "remote_url": (str, type(None)),
    "remote_model": (str, type(None)),
    "tile_folder": (str, type(None)),
    "recent_cases": (list,),
    "remote_endpoints": (list,),
    "remote_api_key": (str, type(None)),
}


def migrate_settings(raw: dict[str, Any], source: str = "settings.json") -> dict[str, Any]:
    """Upgrade a raw settings document to :data:`SETTINGS_VERSION`, one step at a time."""
    version = raw.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SettingsError(f"{source}: 'version' must be a whole number; got {version!r}")
    if version > SETTINGS_VERSION:
        raise SettingsError(
            f"{source} was written by a newer geodesk (settings version {version}; this one reads up to "
            f"{SETTINGS_VERSION}). Use that geodesk, or move the file aside to start from defaults."
        )
    while version < SETTINGS_VERSION:
        raw = _MIGRATIONS[version](raw)
        version = raw["version"]
    return raw


def settings_from_json(raw: Any, source: str = "settings.json") -> Settings:
    if not isinstance(raw, dict):
        raise SettingsError(f"{source} must hold a JSON object")
    raw = migrate_settings(dict(raw), source)
    known = {f.name for f in fields(Settings)} - {"extra"}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            continue
        allowed = _TYPES.get(key)
        if allowed is not None and not isinstance(value, allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise SettingsError(f"{source}: setting {key!r} must be {names}; got {value!r}")
        values[key] = value
    if "recent_cases" in values:
        if not all(isinstance(v, str) for v in values["recent_cases"]):
            raise SettingsError(f"{source}: setting 'recent_cases' must be a list of case ids")
        values["recent_cases"] = tuple(values["recent_cases"])
    if "remote_endpoints" in values:
        if not all(isinstance(v, str) for v in values["remote_endpoints"]):
            raise SettingsError(f"{source}: setting 'remote_endpoints' must be a list of URLs")
        values["remote_endpoints"] = tuple(values["remote_endpoints"])
    extra = {k: v for k, v in raw.items() if k not in known}
    return Settings(**values, extra=extra)


REMOTE_KEY_FILE = "remote-api-key"  # beside settings.json, mode 0600


def _key_path(settings_path: Path) -> Path:
    return settings_path.with_name(REMOTE_KEY_FILE)


def load_settings(path: Path) -> Settings:
    """The settings in ``path`` (and the API key from its key file); defaults when there are none."""
    settings = _load_settings_file(path)
    try:
        key = _key_path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return settings  # an older settings.json may still hold the key: it moves out on the next save
    return replace(settings, remote_api_key=key or None)


def _load_settings_file(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): fix it or move it aside"
        ) from None
    return settings_from_json(raw, str(path))


def save_settings(path: Path, settings: Settings) -> None:
    """settings.json without the API key; the key (if any) in an owner-only file beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key_path = _key_path(path)
    if settings.remote_api_key:
        # atomic_write_text writes through mkstemp, whose file is created 0600; chmod says so anyway.
        atomic_write_text(key_path, settings.remote_api_key + "\n")
        key_path.chmod(0o600)
    else:
        key_path.unlink(missing_ok=True)
    write_json_atomic(path, replace(settings, version=SETTINGS_VERSION).to_json())
