"""The session dock (model, mode, sessions of the item, the prediction card, the streamed answer and
the conversation) and the hint composer. Both show the selected item's session only."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from geodesk.app import Application
from geodesk.qt.docks.base import Dock
from geodesk.qt.hint_composer import HintComposer
from geodesk.qt.session_panel import SessionPanel

NO_IMAGE = "choose an image first"


class SessionDock(Dock):
    title, name = "Session", "sessionDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.panel = panel = SessionPanel(self)
        self.setWidget(panel)
        panel.start_requested.connect(lambda mode: app.sessions.start(mode))
        panel.stop_requested.connect(app.sessions.stop)
        panel.session_chosen.connect(app.sessions.choose)
        panel.model_chosen.connect(app.models.choose)
        panel.mode.currentIndexChanged.connect(
            lambda _i: setattr(self.state, "session_mode", str(panel.mode.currentData()))
        )
        panel.samples.valueChanged.connect(lambda value: setattr(self.state, "samples", int(value)))
        self.watch_all(("turns", "session"), self._show_turns)
        self.watch_all(("sessions", "session"), self._show_sessions)
        self.watch("answer_stream", self._show_stream)
        self.watch_all(("session_status", "evidence"), self._show_status)
        self.watch_all(("model", "installed_models", "model_ref", "model_loaded"), self._show_model)
        self.watch_all(("busy", "evidence", "session", "started"), self._update_buttons)
        self._show_model()
        self._show_status()
        self._update_buttons()

    def _show_sessions(self) -> None:
        items = [
            (
                s.id,
                f"session {s.id}: {s.mode.value}, {s.model.name} {s.model.version}"
                + ("" if s.replay_of is None else f" (replay of {s.replay_of})"),
            )
            for s in self.state.sessions
            if s.id is not None
        ]
        self.panel.set_sessions(items, None if self.state.session is None else self.state.session.id)

    def _show_turns(self) -> None:
        # the card carries the caveat of the model the session ran on, whatever model is chosen now
        session = self.state.session
        self.panel.show_turns(list(self.state.turns), None if session is None else session.model.caveat)

    def _show_stream(self, text: str) -> None:
        stream = self.panel.stream
        shown = stream.toPlainText()
        if text.startswith(shown) and shown:
            self.panel.append_token(text[len(shown):])  # plain text: markup stays visible as characters
        else:
            stream.setPlainText(text)

    def _show_status(self) -> None:
        line = self.state.session_status
        if not line.text and self.state.evidence is None:
            self.panel.show_status(NO_IMAGE)
        else:
            self.panel.show_status(line.text, line.error)

    def _show_model(self) -> None:
        from geodesk.services.models import NO_MODEL

        panel, choice = self.panel, self.state.model
        panel.set_models(
            [(m.ref, f"{m.name} {m.version}"
              + (" (UNTRAINED)" if m.untrained else " (SYNTHETIC demo)" if m.synthetic else ""))
             for m in self.state.installed_models],
            self.state.model_ref,
        )
        if choice is None:
            panel.set_model(NO_MODEL, False)
        else:
            panel.set_model(choice.describe() + (" (loaded)" if self.state.model_loaded else ""),
                            choice.untrained, choice.synthetic)

    def _update_buttons(self) -> None:
        s, panel = self.state, self.panel
        running = s.model_running
        panel.set_available(s.has_evidence and not running, "" if s.has_evidence else NO_IMAGE)
        panel.stop_button.setEnabled(bool(s.busy & {"turn", "replay", "batch"}))
        panel.replay_button.setEnabled(s.session is not None and not running)


class HintsDock(Dock):
    title, name = "Hints", "hintsDock"

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        super().__init__(app, parent)
        self.composer = composer = HintComposer(self)
        self.setWidget(composer)
        composer.hint_requested.connect(self._send)
        self.watch("clues", lambda clues: composer.set_clues(list(clues)))
        self.watch("pending_region", composer.set_region)
        self.watch("evidence", lambda _e: composer.clear())
        self.watch_all(("session", "busy"), self._update_buttons)
        self._update_buttons()

    def _send(self, hint: object) -> None:
        from geodesk.domain.model import Hint

        assert isinstance(hint, Hint)
        if self.state.session is None:
            self.composer.show_error("start a session first: a hint refines an existing session")
            return
        if self.app.sessions.send_hint(hint):
            self.composer.clear()
            self.state.pending_region = None

    def _update_buttons(self) -> None:
        self.composer.send_button.setEnabled(self.state.session is not None and not self.state.model_running)
