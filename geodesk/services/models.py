"""Which model a command runs on, and opening a backend for it.

``--model`` takes a package folder path or a registered ``NAME[@VERSION]``; with neither, the
workspace's active model is used, except for a session's later turns: those run on the model the
session started with (:func:`resolve_session_model`), so ``geodesk hint`` needs no ``--model``.
Opening loads the weights (seconds to minutes), so the CLI opens a backend once per command and the
desktop app keeps one open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from geodesk.domain.model import ModelIdentity, Session
    from geodesk.engine.backends.base import Backend

BackendKind = Literal["hf", "remote"]

NO_MODEL_HELP = (
    "no model is installed in this workspace. An admin installs one with "
    "`geodesk model install SRC`; for a trial run, `geodesk model create-tiny DIR` writes an untrained "
    "tiny model and `--model DIR` uses it"
)


class ModelNotFoundError(Exception):
    """The model reference names nothing usable; the message says what to do."""


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

    folder = resolve_model_folder(workspace, request.model)
    options = HFOptions(
        dtype=request.dtype,  # type: ignore[arg-type]
        device=request.device,
        quantization=request.quantization,  # type: ignore[arg-type]
        adapter=request.adapter,
    )
    return HFBackend(folder, options)


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
