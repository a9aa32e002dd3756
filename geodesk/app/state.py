"""The application state: one evented dataclass that every view subscribes to.

:class:`AppState` holds what the analyst has open and selected (case, evidence item, session) and what
depends on the selection (clues, turns, finding, proposed point, streamed answer, session status line),
the model in use, and what is running. It is a psygnal ``@evented`` dataclass: each field has a signal
(``state.events.turns.connect(view.show_turns)``) that fires when the value changes, in whatever thread
changed it (controllers change it on the UI thread only).

**Selection is state.** The selection and everything that depends on it change together inside
:meth:`AppState.batch`: the field signals are held until every field is set, so no view can see
image B with image A's turns. Controllers set the selection through one method each
(``CasesController.open``, ``EvidenceController.select``, ``SessionsController.choose``), which reset
or reload every dependent field; a result that arrives for a selection that is no longer current
(a turn finished on image A after the analyst moved to B) is stored but never shown.

Events that are not state (a message for the analyst, an import/replay/batch that finished) are plain
signals on the state object: ``state.message``, ``state.import_finished`` and so on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from psygnal import Signal, evented

from geodesk.domain.model import Case, Clue, Evidence, Finding, Region, Session, Turn


@dataclass(frozen=True, slots=True)
class Message:
    """Something the analyst should read: a title (where it came from) and a sentence."""

    title: str
    text: str
    error: bool = False


@dataclass(frozen=True, slots=True)
class StatusLine:
    text: str = ""
    error: bool = False


@dataclass(frozen=True, slots=True)
class Progress:
    """Work with a size (``total`` 0: size not known yet)."""

    done: int
    total: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class SunMarks:
    """A vertical object's box and its shadow's tip, marked on the image (pixels of the upright image),
    not yet stored: the sun clue is made from them (geodesk.services.clue_engine.add_sun_clue)."""

    object_box: Region | None = None
    shadow_tip: tuple[float, float] | None = None

    @property
    def complete(self) -> bool:
        return self.object_box is not None and self.shadow_tip is not None


@evented
@dataclass
class AppState:
    workspace: Path = field(default_factory=Path)
    started: bool = False  # the store and the libraries it needs are loaded
    status: str = ""  # the window's status line
    tile_folder: str = ""  # a local {z}/{x}/{y} tile folder for the map ("": borders only)

    # -- the case browser
    cases: tuple[Case, ...] = ()
    recent_cases: tuple[str, ...] = ()
    case: Case | None = None
    case_dir: Path | None = None
    evidence_items: tuple[Evidence, ...] = ()
    located: frozenset[str] = frozenset()  # geodesk.store EvidenceRepository.located

    # -- the selection and what depends on it
    evidence: Evidence | None = None
    # The selected item's rows are still on their way (EvidenceController.select reads them in a job
    # and applies them in steps): views drawn from several of them (history, map, clue engine) draw
    # the item with nothing yet, then once when this turns False, not at every step.
    selection_loading: bool = False
    clues: tuple[Clue, ...] = ()
    sessions: tuple[Session, ...] = ()  # the sessions of the selected evidence item
    session: Session | None = None
    turns: tuple[Turn, ...] = ()
    answer_stream: str = ""  # the answer being written, for the selected item only
    session_status: StatusLine = field(default_factory=StatusLine)
    finding: Finding | None = None
    finding_history: tuple[Finding, ...] = ()
    proposed_point: tuple[float, float] | None = None  # a map click: fills the form, records nothing
    pending_region: Region | None = None  # drawn on the image, not yet pinned to a clue or a hint
    selected_turn: int | None = None  # the turn picked in the history table or on the map
    selected_clue: int | None = None  # the clue picked in the list or on the image
    # the clue engine's view of the selected item (geodesk.app.controllers.clue_engine)
    engine_clues: tuple[Any, ...] = ()  # geodesk.store.engine_clues.EngineClue, in clue order
    clue_constraint: dict[str, Any] | None = None  # services.clue_engine.constraint_for's document
    turn_flags: tuple[Any, ...] = ()  # geodesk.store.turn_flags.TurnFlag that count (accepted clues)
    sun_marks: SunMarks | None = None  # object and shadow tip marked on the image
    sun_marking: bool = False  # the image viewer takes clicks as sun marks

    # -- models
    installed_models: tuple[Any, ...] = ()  # geodesk.engine.registry.InstalledModel
    model_ref: str | None = None  # NAME@VERSION chosen for new sessions; None: the active model
    model: Any = None  # geodesk.services.models.ModelChoice: what the next model call runs on
    model_loaded: bool = False
    session_mode: str = "direct"  # SessionMode value for new sessions
    samples: int = 0  # extra sampled answers per turn, clustered into candidates
    legacy_model_folder: Path | None = None

    # -- work in progress
    busy: frozenset[str] = frozenset()  # job kinds running: import, load, turn, replay, batch, models
    progress: Progress | None = None

    if TYPE_CHECKING:
        events: ClassVar[Any]  # the psygnal SignalGroup @evented adds: one signal per field

    message: ClassVar[Signal] = Signal(object)  # Message
    import_finished: ClassVar[Signal] = Signal(object)  # services.importing outcome
    replay_finished: ClassVar[Signal] = Signal(object)  # (replayed Session, list[ReplayStep])
    batch_finished: ClassVar[Signal] = Signal(object)  # services.batch.BatchReport
    models_changed: ClassVar[Signal] = Signal()  # the registry, the settings or the choice changed
    map_sources_changed: ClassVar[Signal] = Signal(str)  # "tilesets" or "layers" were changed

    def watch(self, field_name: str, slot: Callable[[Any], object]) -> None:
        """Call ``slot(new value)`` whenever the field changes (the views' one way to subscribe)."""
        getattr(self.events, field_name).connect(lambda value, *_old: slot(value))

    def watch_any(self, field_names: tuple[str, ...], slot: Callable[[], object]) -> None:
        """Call ``slot()`` when any of the fields changes; within a batch, once at its end however
        many of them changed (a view that shows several fields redraws once per selection change)."""

        def changed(*_values: object) -> None:
            if _BATCH_DEPTH.get(id(self), 0):
                _PENDING.setdefault(id(self), {})[id(slot)] = slot
            else:
                slot()

        for name in field_names:
            getattr(self.events, name).connect(changed)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Change several fields as one: each changed field's signal fires once, after all are set,
        then each :meth:`watch_any` view runs once."""
        key = id(self)
        _BATCH_DEPTH[key] = _BATCH_DEPTH.get(key, 0) + 1
        try:
            with contextlib.ExitStack() as stack:
                for signal in self.events.signals.values():
                    stack.enter_context(signal.paused(reducer=_last_value))
                yield
        finally:
            _BATCH_DEPTH[key] -= 1
        if _BATCH_DEPTH[key] == 0:
            pending = _PENDING.pop(key, {})
            for slot in pending.values():
                slot()

    # -- derived facts the actions and the views use
    @property
    def model_busy(self) -> bool:
        """A turn, a replay or a batch is running (they share the loaded backend: one at a time)."""
        return bool(self.busy & {"turn", "replay", "batch"})

    @property
    def model_running(self) -> bool:
        return self.model_busy or "load" in self.busy

    @property
    def has_case(self) -> bool:
        return self.case is not None

    @property
    def has_evidence(self) -> bool:
        return self.evidence is not None

    def clear_selection(self) -> None:
        """Every field that depends on the evidence item, back to nothing (call inside :meth:`batch`)."""
        self.evidence = None
        self.selection_loading = False
        self.clues = ()
        self.sessions = ()
        self.session = None
        self.turns = ()
        self.answer_stream = ""
        self.session_status = StatusLine()
        self.finding = None
        self.finding_history = ()
        self.proposed_point = None
        self.pending_region = None
        self.selected_turn = None
        self.selected_clue = None
        self.engine_clues = ()
        self.clue_constraint = None
        self.turn_flags = ()
        self.sun_marks = None
        self.sun_marking = False


# Batches in progress and the watch_any views waiting for their end, per AppState (by id: the
# evented dataclass has no room for private fields that are not state).
_BATCH_DEPTH: dict[int, int] = {}
_PENDING: dict[int, dict[int, Callable[[], object]]] = {}


def _last_value(_old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
    return new
