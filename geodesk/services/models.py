"""Which model a command runs on, and opening a backend for it.

``--model`` takes a package folder path or a registered ``NAME[@VERSION]``; with neither, the
workspace's active model is used. Opening loads the weights (seconds to minutes), so the CLI opens a
backend once per command and the desktop app keeps one open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from geodesk.domain.model import ModelIdentity
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
        return remote.open_remote(list(request.endpoints), model=request.model, api_key=request.api_key)
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
