"""The application: the state, the job runner and one controller per area, built together.

::

    app = Application(workspace, SyncRunner())     # tests; the window passes its Qt TaskRunner
    app.start()                                    # cases, models (needs the store: sqlite-utils)
    app.cases.open("Harbour"); app.evidence.select(sha); app.sessions.start("direct")

Views get the :class:`Application` and subscribe to ``app.state``; they call the controllers.
"""

from __future__ import annotations

from pathlib import Path

from geodesk.app.controllers.base import AppContext
from geodesk.app.controllers.batch import BatchController
from geodesk.app.controllers.cases import CasesController
from geodesk.app.controllers.clue_engine import ClueEngineController
from geodesk.app.controllers.clues import CluesController
from geodesk.app.controllers.deliverables import DeliverablesController
from geodesk.app.controllers.demo import DemoController
from geodesk.app.controllers.evidence import EvidenceController
from geodesk.app.controllers.findings import FindingsController
from geodesk.app.controllers.maps import MapsController
from geodesk.app.controllers.models import ModelsController
from geodesk.app.controllers.sessions import SessionsController
from geodesk.app.jobs import JobRunner
from geodesk.app.state import AppState


class Application:
    def __init__(self, workspace: Path, runner: JobRunner) -> None:
        self.state = AppState(workspace=Path(workspace).expanduser().absolute())
        self.ctx = AppContext(workspace, runner, self.state)
        self.runner = runner
        self.evidence = EvidenceController(self.ctx)
        self.cases = CasesController(self.ctx, self.evidence)
        self.clues = CluesController(self.ctx, self.evidence)
        self.findings = FindingsController(self.ctx, self.evidence)
        self.models = ModelsController(self.ctx)
        self.sessions = SessionsController(self.ctx, self.evidence, self.models)
        self.clue_engine = ClueEngineController(self.ctx, self.evidence, self.sessions)
        self.batch = BatchController(self.ctx, self.evidence, self.models, self.sessions)
        self.deliverables = DeliverablesController(self.ctx)
        self.demo = DemoController(self.ctx, self.cases, self.models)
        self.maps = MapsController(self.ctx)

    @property
    def workspace_path(self) -> Path:
        return self.ctx.workspace_path

    def start(self) -> None:
        """The parts that need the store: the case list and the model in use."""
        if self.state.started:
            return
        self.models.migrate_legacy()
        self.cases.refresh()
        self.models.refresh()
        with self.state.batch():
            self.state.tile_folder = self.ctx.settings().tile_folder or ""
            self.state.started = True
            self.ctx.status(f"Workspace {self.workspace_path}")

    def cancel_work(self) -> None:
        if self.ctx.cancel():
            self.ctx.status("Cancelling…")

    def close(self) -> None:
        self.runner.cancel_all()
        self.ctx.finish_writes()  # the analyst's writes not started yet still land in their case
        self.cases.close()
        self.models.close_backend()
