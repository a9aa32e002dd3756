"""Models: which one the next model call runs on, the loaded backend, and the registry's operations.

The backend is opened once (geodesk.services.models.open_backend_for_job, in a job: torch is
imported there) and reused while (backend, model, dtype, device, quantization, endpoints, key) stay
the same; a change of settings or choice closes a backend that no longer fits. Registry changes
(install, activate, roll back, verify, remove, the untrained tiny model) go through
geodesk.engine.registry, whose refusals are sentences shown as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.app.controllers.base import Controller
from geodesk.app.jobs import JobCancelled, JobContext
from geodesk.app.state import StatusLine

if TYPE_CHECKING:
    from geodesk.engine.registry import InstalledModel
    from geodesk.services.models import BackendRequest, ModelChoice

log = logging.getLogger(__name__)
Callback = Callable[[Any], None] | None
Failed = Callable[[str], None] | None


class ModelsController(Controller):
    backend: Any = None  # the open engine backend (geodesk.engine.backends), if any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backend = None
        self._backend_key: tuple[Any, ...] | None = None

    # -- which model
    def migrate_legacy(self) -> None:
        """The pre-registry ``extra["desktop_model_path"]``: keep an unregistered folder, drop the rest."""
        from geodesk.services.models import migrate_legacy_model

        settings = self.ctx.settings()
        try:
            migrated, folder = migrate_legacy_model(self.ctx.workspace_path, settings)
        except Exception as exc:  # a damaged registry.json: say so, keep the setting as it is
            self.ctx.say("Models", str(exc))
            return
        self.state.legacy_model_folder = folder
        if migrated != settings:
            try:
                self.ctx.workspace.save_settings(migrated)
            except (ValueError, OSError) as exc:
                log.warning("the old model setting was not cleaned up: %s", exc)

    def installed(self) -> list[InstalledModel]:
        from geodesk.services.models import registry_models

        try:
            return registry_models(self.ctx.workspace_path)
        except Exception as exc:  # RegistryError: registry.json damaged; the message says what to do
            self.ctx.say("Models", str(exc))
            return []

    def current(self) -> ModelChoice | None:
        """What the next model call runs on: remote endpoints, the chosen or active model, a legacy folder."""
        from geodesk.services.models import current_choice

        try:
            return current_choice(
                self.ctx.workspace_path, self.ctx.settings(), self.state.legacy_model_folder,
                self.state.model_ref,
            )
        except Exception as exc:
            self.ctx.say("Models", str(exc))
            return None

    def request(self, choice: ModelChoice) -> BackendRequest:
        """The backend request for ``choice`` with the workspace's settings; ValueError says what to fix."""
        from geodesk.services.models import backend_request

        return backend_request(self.ctx.settings(), choice)

    def refresh(self) -> None:
        with self.state.batch():
            self.state.installed_models = tuple(self.installed())
            self.state.model = self.current()
            self.state.model_loaded = self.backend is not None

    def choose(self, ref: str | None) -> None:
        """The model for new sessions: NAME@VERSION, or None / "" for the workspace's active one."""
        self.state.model_ref = ref or None
        self.changed()

    def changed(self) -> None:
        """The registry, the settings or the choice changed: close a backend that no longer fits."""
        from geodesk.services.models import backend_key

        choice = self.current()
        if self.backend is not None and not self.state.model_busy:
            try:
                wanted = None if choice is None else backend_key(self.request(choice))
            except ValueError:
                wanted = None
            if wanted != self._backend_key:
                self.close_backend()
        self.refresh()
        self.state.models_changed.emit()

    def is_stale(self) -> bool:
        """No backend, or the settings or the chosen model changed since it was opened."""
        from geodesk.services.models import backend_key

        choice = self.current()
        if self.backend is None or choice is None:
            return True
        try:
            return backend_key(self.request(choice)) != self._backend_key
        except ValueError:
            return True

    # -- the backend
    def load(self, then: Callable[[], object] | None = None) -> bool:
        """Open the backend for the current model in a job; ``then()`` runs once it is open."""
        from geodesk.services.models import NO_MODEL, backend_key, open_backend_for_job

        choice = self.current()
        if choice is None:
            self.ctx.say("Model", NO_MODEL)
            return False
        if "load" in self.state.busy:
            return False
        try:
            request = self.request(choice)
        except ValueError as exc:
            self.ctx.say("Model", str(exc))
            return False
        key = backend_key(request)
        if self.backend is not None and key == self._backend_key:
            if then is not None:
                then()
            return True
        self.close_backend()
        workspace = self.ctx.workspace_path

        def job(ctx: JobContext) -> Any:
            return open_backend_for_job(workspace, request, ctx.cancel)

        def done(backend: Any) -> None:
            self.backend = backend
            self._backend_key = key
            self.refresh()
            identity = backend.identity
            self.ctx.status(f"Model ready: {identity.name} {identity.version} ({backend.name})")
            self.state.models_changed.emit()
            if then is not None:
                then()

        def failed(message: str) -> None:
            self.state.session_status = StatusLine(message, True)
            self.ctx.say("Model", message)

        self.state.session_status = StatusLine(
            "Connecting to the remote endpoint…" if request.backend == "remote" else "Loading the model…"
        )
        self.ctx.start_job("load", job, "load model", on_result=done, on_failed=failed)
        return True

    def loaded_for(self, request: BackendRequest) -> Any:
        """The open backend when it was opened for ``request`` (so a replay can reuse it), else None."""
        from geodesk.services.models import backend_key

        same = self.backend is not None and backend_key(request) == self._backend_key
        return self.backend if same else None

    def close_backend(self) -> None:
        if self.backend is not None:
            self.backend.close()
        self.backend = None
        self._backend_key = None
        self.state.model_loaded = False

    # -- the registry
    def activate(self, ref: str) -> InstalledModel:
        """Make NAME@VERSION the workspace's active model; RegistryError carries the registry's sentence."""
        from geodesk.engine.registry import ModelRegistry

        model = ModelRegistry(self.ctx.workspace_path).activate(ref)
        self.forget_legacy()
        self.changed()
        return model

    def rollback(self, name: str) -> InstalledModel:
        from geodesk.engine.registry import ModelRegistry

        previous = ModelRegistry(self.ctx.workspace_path).rollback(name)
        self.forget_legacy()
        self.changed()
        return previous

    def forget_legacy(self) -> None:
        """Stop using the pre-registry model folder: the registry's active model takes over."""
        from geodesk.services.models import LEGACY_MODEL_PATH_KEY

        self.state.legacy_model_folder = None
        settings = self.ctx.settings()
        if LEGACY_MODEL_PATH_KEY in settings.extra:
            extra = {k: v for k, v in settings.extra.items() if k != LEGACY_MODEL_PATH_KEY}
            self.ctx.workspace.save_settings(replace(settings, extra=extra))

    def _registry_job(
        self, fn: Callable[[JobContext], Any], name: str, on_result: Callback, on_failed: Failed,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> bool:
        if "models" in self.state.busy:
            (on_failed or (lambda m: self.ctx.say("Models", m)))("the model manager is still working; wait")
            return False

        def done(value: Any) -> None:
            self.changed()
            if on_result is not None:
                on_result(value)

        self.ctx.start_job(
            "models", fn, name, on_result=done,
            on_failed=on_failed or (lambda m: self.ctx.say("Models", m)),
            on_progress=on_progress, on_cancelled=on_cancelled,
        )
        return True

    def install(self, source: Path, on_result: Callback = None, on_failed: Failed = None,
                on_progress: Callable[[int, int, str], None] | None = None,
                on_cancelled: Callable[[], None] | None = None) -> bool:
        """Install ``source`` through the registry in a job (copy with progress, verify, commit);
        cancelling raises from the progress callback and the registry puts the folder tree back."""
        workspace = self.ctx.workspace_path

        def job(ctx: JobContext) -> InstalledModel:
            from geodesk.engine.registry import ModelRegistry

            def progress(done: int, total: int) -> None:
                ctx.progress(done, total)
                if ctx.cancel.is_set():
                    raise JobCancelled

            return ModelRegistry(workspace).install(source, progress=progress)

        return self._registry_job(job, "install", on_result, on_failed, on_progress, on_cancelled)

    def verify(self, ref: str, on_result: Callback = None, on_failed: Failed = None) -> bool:
        workspace = self.ctx.workspace_path

        def job(ctx: JobContext) -> Any:
            from geodesk.engine.registry import ModelRegistry

            return ModelRegistry(workspace).verify(ref)

        return self._registry_job(job, "verify", on_result, on_failed)

    def remove(self, ref: str, on_result: Callback = None, on_failed: Failed = None) -> bool:
        workspace = self.ctx.workspace_path

        def job(ctx: JobContext) -> InstalledModel:
            from geodesk.engine.registry import ModelRegistry

            return ModelRegistry(workspace).remove(ref)

        return self._registry_job(job, "remove", on_result, on_failed)

    def install_tiny(self, on_result: Callback = None, on_failed: Failed = None) -> bool:
        """Build the untrained tiny model and install it (geodesk.services.models.install_tiny_model)."""
        workspace = self.ctx.workspace_path

        def job(ctx: JobContext) -> InstalledModel:
            from geodesk.services.models import install_tiny_model

            return install_tiny_model(workspace, check=ctx.check)

        def done(model: InstalledModel) -> None:
            if model.active:
                self.forget_legacy()
                self.changed()
            if on_result is not None:
                on_result(model)

        return self._registry_job(job, "create tiny model", done, on_failed)
