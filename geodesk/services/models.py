"""Which model a command or the desktop app runs on, and opening a backend for it.

``--model`` takes a package folder path or a registered ``NAME[@VERSION]``; with neither, the
workspace's active model is used, except for a session's later turns: those run on the model the
session started with (:func:`resolve_session_model`), so ``geodesk hint`` needs no ``--model``.
Opening loads the weights (seconds to minutes), so the CLI opens a backend once per command and the
desktop app keeps one open.

The desktop app runs on the workspace's active model, or on another installed ``NAME@VERSION``
chosen in its session dock, through the backend the settings name: ``hf`` (in-process; device, dtype
and quantization from the settings) or ``remote`` (OpenAI-compatible endpoints and an API key from the
settings): :func:`current_choice` says which, :func:`backend_request` turns it into a request, and
:func:`open_backend_for_job` opens it (blocking, in a worker) with errors as sentences.

Before the registry existed the app kept a model folder in ``settings.extra["desktop_model_path"]``.
:func:`migrate_legacy_model` reads it once: a folder that the registry has installed is dropped (the
registry's active model takes over), a folder that exists and is not registered keeps being used in
place (the CLI's ``--model DIR``), a folder that is gone is dropped.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geodesk.engine.errors import ModelNotFoundError as ModelNotFoundError  # the one class, re-exported

if TYPE_CHECKING:
    from geodesk.domain.model import ModelIdentity, Session
    from geodesk.engine.backends.base import Backend
    from geodesk.engine.registry import InstalledModel
    from geodesk.store import Settings

BackendKind = Literal["hf", "remote"]

NO_MODEL_HELP = (
    "no model is installed in this workspace. An admin installs one with "
    "`geodesk model install SRC`; for a trial run, `geodesk model create-tiny DIR` writes an untrained "
    "tiny model and `--model DIR` uses it"
)


@dataclass(frozen=True, slots=True)
class BackendRequest:
    """Everything needed to open a backend, as the CLI flags and the app's settings give it."""

    model: str | None = None
    backend: BackendKind = "hf"
    dtype: str = "auto"
    device: str = "auto"
    quantization: str = "none"
    adapter: str | None = None
    endpoints: tuple[str, ...] = ()
    api_key: str | None = None
    profile: str | None = None  # remote backend: the served model's prompt profile (None: reported/gaga)


def resolve_model_folder(workspace: Path, ref: str | None) -> Path:
    """A package folder for ``ref``: a registered ``NAME[@VERSION]``, a folder path, or the active model."""
    from geodesk.engine.registry import ModelRegistry, RegistryError

    try:
        registry = ModelRegistry(workspace)
        return Path(registry.resolve(ref).path)
    except RegistryError as exc:
        if ref is None:
            raise ModelNotFoundError(NO_MODEL_HELP) from None
        raise ModelNotFoundError(str(exc)) from None


def resolve_checked_model(workspace: Path, ref: str | None) -> tuple[Path, ModelIdentity | None]:
    """The folder for ``ref`` and, for an installed version, the identity its files were just checked
    to have (:meth:`ModelRegistry.check_for_loading`); None for a folder used in place."""
    from geodesk.engine.registry import ModelRegistry, RegistryError

    try:
        registry = ModelRegistry(workspace)
        model = registry.resolve(ref)
    except RegistryError as exc:
        if ref is None:
            raise ModelNotFoundError(NO_MODEL_HELP) from None
        raise ModelNotFoundError(str(exc)) from None
    if not model.installed:
        return Path(model.path), None
    try:
        return Path(model.path), registry.check_for_loading(model)
    except RegistryError as exc:
        raise ModelNotFoundError(str(exc)) from None


def open_backend(workspace: Path, request: BackendRequest) -> Backend:
    """Load the requested model in-process (``hf``) or connect to OpenAI-compatible endpoints (``remote``)."""
    if request.backend == "remote":
        from geodesk.engine.backends import remote

        if not request.endpoints:
            raise ModelNotFoundError("the remote backend needs at least one --endpoint URL")
        return remote.open_remote(
            list(request.endpoints), model=request.model, api_key=request.api_key, profile=request.profile
        )
    from geodesk.engine.backends.hf import HFBackend, HFOptions

    folder, verified = resolve_checked_model(workspace, request.model)
    options = HFOptions(
        dtype=request.dtype,  # type: ignore[arg-type]
        device=request.device,
        quantization=request.quantization,  # type: ignore[arg-type]
        adapter=request.adapter,
        verified_identity=verified,
    )
    return HFBackend(folder, options)


# --- the desktop app's model: which one, how it is opened -------------------------------------

LEGACY_MODEL_PATH_KEY = "desktop_model_path"
APP_BACKENDS = ("hf", "remote")
NO_MODEL = (
    "No model is active. Install one in Models → Model manager (a geodesk package, a llava-hf folder "
    "or an XTuner export) and activate it, or create the untrained tiny model there for a trial run."
)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What the next model call will run on, as the session panel shows it."""

    kind: str  # "registry", "folder" (a legacy folder used in place) or "remote"
    ref: str | None  # what services.models.open_backend gets as the model (NAME@VERSION, a path, a name)
    label: str
    untrained: bool = False
    endpoints: tuple[str, ...] = ()
    synthetic: bool = False  # trained on GeoSynth scenes only (the demo model)

    def describe(self) -> str:
        if self.kind == "remote":
            server = f" (server model {self.ref})" if self.ref else ""
            return f"Remote: {', '.join(self.endpoints)}{server}"
        if self.kind == "folder":
            return f"Model folder (not in the registry, not verified): {self.label}"
        return f"Model: {self.label}"


def registry_models(workspace: Path) -> list[InstalledModel]:
    from geodesk.engine.registry import ModelRegistry

    return ModelRegistry(workspace).list()


def migrate_legacy_model(workspace: Path, settings: Settings) -> tuple[Settings, Path | None]:
    """(settings without a stale legacy key, the legacy folder to keep using or None); see the module doc."""
    extra = settings.extra if isinstance(settings.extra, dict) else {}
    value = extra.get(LEGACY_MODEL_PATH_KEY)
    if not value:
        return settings, None
    folder = Path(str(value)).expanduser()
    registered = False
    if folder.is_dir():
        try:
            resolved = folder.resolve()
            registered = any(m.path.resolve() == resolved for m in registry_models(workspace))
        except (OSError, ValueError):
            registered = False
        if not registered:
            return settings, folder
    cleaned = {k: v for k, v in extra.items() if k != LEGACY_MODEL_PATH_KEY}
    return replace(settings, extra=cleaned), None


def remote_endpoints(settings: Settings) -> tuple[str, ...]:
    endpoints = tuple(e for e in settings.remote_endpoints if e.strip())
    if not endpoints and settings.remote_url:
        endpoints = (settings.remote_url,)
    return endpoints


def current_choice(
    workspace: Path, settings: Settings, legacy_folder: Path | None, chosen: str | None
) -> ModelChoice | None:
    """The model the app would open now; None when nothing is installed or active (hf backend)."""
    from geodesk.engine.registry import ModelRegistry, RegistryError

    if settings.backend == "remote":
        return ModelChoice("remote", settings.remote_model, "remote", endpoints=remote_endpoints(settings))
    registry = ModelRegistry(workspace)
    if chosen is None and legacy_folder is not None:
        # Read only the manifest: resolving a folder without one would hash every weight file here.
        from geodesk.engine.package import MANIFEST_NAME, PackageError, read_manifest

        folder = legacy_folder.absolute()
        if (folder / MANIFEST_NAME).is_file():
            try:
                manifest = read_manifest(folder)
            except PackageError:
                return ModelChoice("folder", str(folder), str(folder))
            label = f"{manifest.name} {manifest.version} in {folder}"
            return ModelChoice("folder", str(folder), label, manifest.untrained,
                               synthetic=manifest.synthetic)
        return ModelChoice("folder", str(folder), str(folder))
    try:
        model = registry.resolve(chosen) if chosen is not None else registry.active()
    except RegistryError:
        return None
    if model is None:
        return None
    return ModelChoice("registry", model.ref, f"{model.name} {model.version}", model.untrained,
                       synthetic=model.synthetic)


def backend_request(settings: Settings, choice: ModelChoice) -> BackendRequest:
    """The request for ``choice`` with the workspace's engine settings."""
    if settings.backend not in APP_BACKENDS:
        raise ValueError(
            f"the settings name the {settings.backend!r} backend; the desktop app runs 'hf' or 'remote' "
            "(an lmdeploy server is used as 'remote'): change it in Models → Settings"
        )
    if choice.kind == "remote":
        return BackendRequest(
            model=choice.ref,
            backend="remote",
            endpoints=choice.endpoints,
            api_key=settings.remote_api_key or None,
        )
    return BackendRequest(
        model=choice.ref,
        backend="hf",
        dtype=settings.dtype,  # settings, CLI and backends share one vocabulary (domain.precision)
        device=settings.device or "auto",
        quantization=settings.quantization,
    )


def backend_key(request: BackendRequest) -> tuple[Any, ...]:
    """Two requests with the same key open the same backend: the loaded one can be reused."""
    return (request.backend, request.model, request.dtype, request.device, request.quantization,
            request.endpoints, request.api_key)


def open_backend_for_job(workspace: Path, request: BackendRequest, cancel: threading.Event) -> Any:
    """Open the backend (blocking: call it in a worker). Errors become sentences that say what to fix."""
    from geodesk.engine.backends.base import BackendError

    path_like = bool(request.model) and ("/" in str(request.model) or "\\" in str(request.model))
    if request.backend == "hf" and path_like and not Path(str(request.model)).is_dir():
        raise ValueError(
            f"the model folder {request.model} does not exist; install a model in Models → Model manager"
        )
    try:
        backend = open_backend(workspace, request)
    except ModelNotFoundError as exc:
        raise ValueError(str(exc)) from None
    except BackendError as exc:
        what = "the remote endpoint could not be used" if request.backend == "remote" else (
            "the model could not be loaded"
        )
        raise ValueError(f"{what}: {exc}") from None
    if cancel.is_set():
        backend.close()
        raise ValueError("model loading was cancelled")
    return backend


def install_tiny_model(
    workspace: Path, seed: int = 0, check: Callable[[], None] | None = None
) -> InstalledModel:
    """Build the untrained tiny model (geodesk.engine.tiny) and install it through the registry.

    Installed once per workspace (an existing one is reused); it becomes the active model when none is
    active. Labelled UNTRAINED wherever it is listed. ``check`` may raise to cancel between the build
    and the install (nothing is installed then).
    """
    from geodesk.engine.registry import ModelRegistry
    from geodesk.engine.tiny import TINY_NAME, create_tiny_model

    registry = ModelRegistry(workspace)
    existing = next((m for m in registry.list() if m.name == TINY_NAME), None)
    if existing is None:
        workspace.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".tiny-", dir=workspace))
        try:
            create_tiny_model(scratch / "tiny-llava", seed=seed)
            if check is not None:
                check()
            existing = registry.install(scratch / "tiny-llava")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if registry.active() is None:
        existing = registry.activate(existing.ref)
    return existing


def resolve_session_model(workspace: Path, identity: ModelIdentity) -> Path:
    """The folder of the model a session ran on: the registered NAME@VERSION when its files are the
    same, else any installed version with the same identity, else the recorded folder if unchanged.

    Raises ModelNotFoundError naming the model the session needs when none of these holds.
    """
    from geodesk.engine.package import PackageError, hash_files, identity_from_hashes
    from geodesk.engine.registry import ModelRegistry, RegistryError

    needed = (
        f"this session runs on {identity.name}@{identity.version} (sha256 {identity.sha256[:12]}…)"
    )
    try:
        registry = ModelRegistry(workspace)
        installed = registry.list()
    except RegistryError:
        installed = []
    same_ref = [m for m in installed if (m.name, m.version) == (identity.name, identity.version)]
    for model in same_ref + [m for m in installed if m not in same_ref]:
        if identity.sha256 and model.identity_sha256 == identity.sha256:
            return Path(model.path)
    folder = Path(identity.path) if identity.path else None
    if folder is not None and folder.is_dir():
        try:  # the files as they are now (a manifest would only repeat what they were)
            if identity_from_hashes(hash_files(folder)) == identity.sha256:
                return folder.resolve()
        except (PackageError, OSError):
            pass
    changed = " has different files now" if same_ref or (folder is not None and folder.is_dir()) else (
        " is no longer installed"
    )
    raise ModelNotFoundError(
        f"{needed}, which{changed}; install that model again (`geodesk model install`), or continue "
        "on another model with `geodesk session replay SESSION --model NAME`"
    )


def session_backend_request(
    workspace: Path, session: Session, request: BackendRequest
) -> BackendRequest:
    """``request`` with the session's own model filled in where the caller named none."""
    from dataclasses import replace

    if request.model is not None:
        return request
    if request.backend == "remote" or session.backend == "remote":
        endpoints = request.endpoints or ((session.model.path,) if session.model.path else ())
        return replace(request, backend="remote", model=session.model.name, endpoints=endpoints)
    return replace(request, model=str(resolve_session_model(workspace, session.model)))
