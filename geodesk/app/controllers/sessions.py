"""Sessions and turns of the selected evidence item: start, hint, stop, choose, replay.

Model work runs one at a time (a turn, a replay and a batch share the loaded backend). A job is bound
to the item and case it started on: its streamed tokens and its result reach the views only while that
item is still selected; otherwise the result is stored (by the sessions service) and only the grid's
located marks change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from geodesk.app.controllers.base import AppContext, Controller
from geodesk.app.controllers.evidence import EvidenceController
from geodesk.app.controllers.models import ModelsController
from geodesk.app.jobs import JobContext
from geodesk.app.state import StatusLine
from geodesk.domain.model import Hint, TurnStatus

MODEL_BUSY = "the model is still working (a turn, a replay or a batch); stop it or wait"
NO_SESSION = "choose a session to replay first (start one, or pick one in the list)"


class SessionsController(Controller):
    def __init__(self, ctx: AppContext, evidence: EvidenceController, models: ModelsController) -> None:
        super().__init__(ctx)
        self.evidence = evidence
        self.models = models
        self.max_new_tokens = 256  # per model answer

    def turn_options(self, ctx: JobContext | None = None, samples: int = 0, stream: Callable[[str], None]
                     | None = None) -> Any:
        from geodesk.engine.backends.base import GenerationSettings
        from geodesk.services.sessions import TurnOptions

        return TurnOptions(
            settings=GenerationSettings(max_new_tokens=self.max_new_tokens),
            samples=samples,
            on_token=stream,
            cancel=None if ctx is None else ctx.cancel,
        )

    def _selection(self) -> tuple[Path | None, str | None]:
        evidence = self.state.evidence
        return self.state.case_dir, None if evidence is None else evidence.sha256

    def _still_selected(self, case_dir: Path, sha: str) -> bool:
        return self._selection() == (case_dir, sha)

    # -- turns
    def start(self, mode: str | None = None) -> bool:
        """A new session on the selected item, and its first turn."""
        return self._run_turn(mode or self.state.session_mode, None)

    def send_hint(self, hint: Hint) -> bool:
        """The hint as the next user turn of the selected session."""
        if self.state.session is None:
            self.state.session_status = StatusLine(
                "start a session first: a hint refines an existing session", True
            )
            return False
        return self._run_turn(None, hint)

    def _run_turn(self, mode: str | None, hint: Hint | None) -> bool:
        case_dir, sha = self._selection()
        if self.ctx.store is None or case_dir is None or sha is None:
            self.ctx.say("Session", "open a case and choose an image first")
            return False
        if self.state.model_busy:
            self.ctx.say("Session", MODEL_BUSY)
            return False
        if self.models.is_stale():
            return self.models.load(then=lambda: self._run_turn(mode, hint))
        session_id = None if self.state.session is None else self.state.session.id
        backend = self.models.backend
        samples = self.state.samples

        def job(ctx: JobContext) -> Any:
            from geodesk.domain.model import SessionMode
            from geodesk.services.sessions import add_hints, locate
            from geodesk.store import CaseStore

            options = self.turn_options(ctx, samples, ctx.token)
            with CaseStore.open(case_dir) as store:  # this thread's own connection
                if mode is not None:
                    return locate(store, sha, backend, SessionMode(mode), options)
                assert session_id is not None and hint is not None
                return add_hints(store, session_id, [hint], backend, options)

        def token(text: str) -> None:
            if self._still_selected(case_dir, sha):
                self.state.answer_stream = self.state.answer_stream + text

        with self.state.batch():
            self.state.answer_stream = ""
            extra = f" then drawing {samples} sample(s) for candidates" if samples else ""
            self.state.session_status = StatusLine("The model is answering…" + extra)
        self.ctx.start_job(
            "turn",
            job,
            "session turn",
            on_result=lambda outcome: self._turn_finished(case_dir, sha, outcome),
            on_token=token,
            on_failed=lambda message: self._turn_failed(case_dir, sha, message),
        )
        return True

    def _turn_finished(self, case_dir: Path, sha: str, outcome: Any) -> None:
        if not self._still_selected(case_dir, sha):
            self.evidence.refresh_located()  # stored for that item; the views show another one
            return
        session_id = outcome.session.id
        turn = outcome.turn
        with self.state.batch():
            self.evidence.reload(session_id=session_id)
            text = f"Turn {turn.number}: {turn.status.value}" + (f" — {turn.error}" if turn.error else "")
            self.state.session_status = StatusLine(text, bool(turn.error))
        if turn.status is TurnStatus.FAILED:
            # The failed turn is stored with its error; the turns before it are all still there.
            self.ctx.say("Session", f"turn {turn.number} failed: {turn.error or 'the model call failed'}")

    def _turn_failed(self, case_dir: Path, sha: str, message: str) -> None:
        if self._still_selected(case_dir, sha):
            with self.state.batch():
                self.evidence.reload()  # earlier turns are all still there: show them
                self.state.session_status = StatusLine(message, True)
        self.ctx.say("Session", message)

    def stop(self) -> None:
        if self.ctx.cancel("turn", "replay"):
            self.state.session_status = StatusLine("Stopping: the partial answer is kept as a cancelled turn")
        if self.ctx.cancel("batch"):
            self.ctx.status("Stopping the batch: the images located so far keep their sessions")

    def choose(self, session_id: int) -> None:
        """Show another session of the selected item."""
        if self.state.evidence is not None:
            with self.state.batch():
                self.state.answer_stream = ""
                self.state.session_status = StatusLine()
                self.evidence.reload(session_id=session_id)

    # -- replay
    def replay(self, ref: str | None = None, on_step: Callable[[int, int, str], None] | None = None) -> bool:
        """Replay the selected session on ``ref`` (NAME@VERSION; None: the model new sessions use).

        The loaded backend is reused when it is that model; otherwise the job opens one for the replay
        and closes it afterwards. ``state.replay_finished`` carries (replayed session, steps).
        """
        from geodesk.services.models import NO_MODEL, ModelChoice, open_backend_for_job

        session = self.state.session
        case_dir = self.state.case_dir
        if self.ctx.store is None or case_dir is None or session is None or session.id is None:
            self.ctx.say("Replay", NO_SESSION)
            return False
        if self.state.model_running:
            self.ctx.say("Replay", MODEL_BUSY)
            return False
        choice = self.models.current() if ref is None else ModelChoice("registry", ref, ref)
        if choice is None:
            self.ctx.say("Replay", NO_MODEL)
            return False
        try:
            request = self.models.request(choice)
        except ValueError as exc:
            self.ctx.say("Replay", str(exc))
            return False
        shared = self.models.loaded_for(request)
        session_id = session.id
        workspace = self.ctx.workspace_path

        def job(ctx: JobContext) -> Any:
            from geodesk.services.sessions import replay_session
            from geodesk.store import CaseStore

            backend = shared if shared is not None else open_backend_for_job(workspace, request, ctx.cancel)
            try:
                with CaseStore.open(case_dir) as store:
                    total = len(store.turns.list(session_id))
                    count = [0]

                    def step(s: Any) -> None:
                        count[0] += 1
                        ctx.progress(count[0], total, f"turn {s.index + 1}: {s.status.value}")

                    return replay_session(store, session_id, backend, self.turn_options(ctx), on_step=step)
            finally:
                if shared is None:
                    backend.close()

        def done(result: Any) -> None:
            replayed, _steps = result
            if self.state.case_dir == case_dir and self.state.evidence is not None:
                self.evidence.reload()
            self.ctx.status(f"Session {session_id} replayed as session {replayed.id}")
            self.state.replay_finished.emit(result)

        def failed(message: str) -> None:
            self.ctx.say("Replay", message)
            if self.state.case_dir == case_dir:
                self.evidence.reload()

        self.state.session_status = StatusLine(f"Replaying session {session_id}…")
        self.ctx.start_job("replay", job, "replay session", on_result=done, on_failed=failed,
                           on_progress=on_step)
        return True
