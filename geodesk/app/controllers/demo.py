"""The demo from the app: builds (or reuses) the demo case through the service `geodesk demo` runs
(geodesk.services.demo.run_demo) in a job, then opens it. Synthetic scenes, never casework."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.app.controllers.base import AppContext, Controller

if TYPE_CHECKING:
    from geodesk.app.controllers.cases import CasesController
    from geodesk.app.controllers.models import ModelsController
    from geodesk.app.jobs import JobContext
    from geodesk.services.demo import DemoResult

DEMO_STEPS = 3  # drawing the scenes, importing them, installing the model


class DemoController(Controller):
    def __init__(self, ctx: AppContext, cases: CasesController, models: ModelsController) -> None:
        super().__init__(ctx)
        self.cases = cases
        self.models = models
        # The scene generator run_demo calls (default: the service's child process); tests pass the
        # in-process GeoSynth generator.
        self.generator: Callable[[Path, int, int], list[Path]] | None = None
        self.demo_model_dir: Path | None = None  # default: the service's resources/demo-model

    def open_case(self, *, on_result: Callable[[DemoResult], None] | None = None,
                  on_failed: Callable[[str], None] | None = None) -> bool:
        """Build or reuse the workspace's demo case in a job, install the demo model, open the case.
        Progress goes to ``state.progress``; a failure is a message saying what to do."""
        if "demo" in self.state.busy:
            self.ctx.say("Demo", "the demo case is still being built; wait for it")
            return False
        workspace = self.ctx.workspace_path
        generator, model_dir = self.generator, self.demo_model_dir

        def job(ctx: JobContext) -> DemoResult:
            from geodesk.services import demo

            draw = generator or demo.generate_with_training_cli

            def stepped(out: Path, n: int, seed: int) -> list[Path]:
                ctx.check()
                images = draw(out, n, seed)
                ctx.check()
                ctx.progress(1, DEMO_STEPS, f"importing {len(images)} scenes")
                return images

            ctx.progress(0, DEMO_STEPS, "drawing the GeoSynth scenes (about a minute)")
            kwargs: dict[str, Any] = {"generator": stepped}
            if model_dir is not None:
                kwargs["demo_model_dir"] = model_dir
            result = demo.run_demo(workspace, **kwargs)
            ctx.progress(DEMO_STEPS, DEMO_STEPS, "the demo case is ready")
            return result

        def done(result: DemoResult) -> None:
            self.state.progress = None
            self.models.changed()
            self.cases.refresh()
            if self.cases.open(result.case_id):
                notes = "".join(f" Note: {n}" for n in result.notes)
                self.ctx.say("Demo", f"{result.case_title}: {result.images} synthetic scenes; model "
                             f"{result.model.ref}: {result.model.label}.{notes}", error=False)
            if on_result is not None:
                on_result(result)

        def failed(message: str) -> None:
            self.state.progress = None
            text = f"the demo case could not be built: {message}"
            self.ctx.say("Demo", text)
            if on_failed is not None:
                on_failed(text)

        self._progress(0, DEMO_STEPS, "starting")
        self.ctx.start_job("demo", job, "demo case", on_result=done, on_failed=failed,
                           on_progress=self._progress,
                           on_cancelled=lambda: setattr(self.state, "progress", None))
        return True

    def _progress(self, done: int, total: int, message: str) -> None:
        from geodesk.app.state import Progress

        self.state.progress = Progress(done, total, f"Demo: {message}")
        self.ctx.status(f"Demo: {message}")

    def model_folder(self) -> Path | None:
        """The built demo model package the model manager offers, or None (not built)."""
        from geodesk.services.demo import DEMO_MODEL_DIR, demo_model_folder

        return demo_model_folder(self.demo_model_dir or DEMO_MODEL_DIR)

    @staticmethod
    def build_hint() -> str:
        from geodesk.services.demo import BUILD_HINT

        return BUILD_HINT
