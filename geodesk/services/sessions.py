"""Sessions: one multi-turn conversation with a model about one evidence item.

The use cases the CLI and the desktop app share:

- :func:`locate` starts a session (direct or clue mode) and runs its first turn;
- :func:`add_hints` turns analyst hints into the next user turn and runs it;
- :func:`replay_session` runs a session's user turns again on the same or another model and reports
  how each prediction moved.

A turn is stored as ``running`` *before* the model is asked, then updated with the answer, so a crash
or a cancel leaves a consistent record (``failed`` / ``cancelled``, partial text kept) and never
touches the turns before it. Only ``done`` turns make up the conversation history sent to the model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from geodesk._crashpoints import crash_point
from geodesk.domain.model import (
    Clue,
    ClueSource,
    ClueStatus,
    Evidence,
    GroundTruth,
    Hint,
    HintKind,
    Prediction,
    Session,
    SessionMode,
    Turn,
    TurnStatus,
)
from geodesk.engine import profiles, prompts
from geodesk.engine.backends.base import (
    Backend,
    BackendError,
    ChatMessage,
    GenerationResult,
    GenerationSettings,
    TokenCallback,
)
from geodesk.engine.parsing import NameNormalizer, ParsedAnswer, Problem
from geodesk.geo.distance import haversine_km
from geodesk.services.candidates import DEFAULT_LINK_KM, cluster_candidates
from geodesk.store.recovery import turn_marker

if TYPE_CHECKING:
    from PIL import Image

    from geodesk.store.case_store import CaseStore

# Sampling settings for candidate draws: enough temperature to show disagreement, seeds fixed per draw
# so a turn's candidates can be reproduced.
SAMPLE_TEMPERATURE = 0.8
SAMPLE_TOP_P = 0.95


# The truth source of GeoSynth demo scenes (`geodesk demo` records one per scene).
GEOSYNTH_TRUTH = "geosynth"


class SessionError(Exception):
    """A use-case failure a person can act on (unknown session, empty hint, evidence file missing...)."""


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What one turn produced; ``turn`` is the stored record (status done / cancelled / failed)."""

    session: Session
    turn: Turn
    parsed: ParsedAnswer
    result: GenerationResult | None
    samples: tuple[Prediction, ...] = ()
    clues: tuple[Clue, ...] = ()
    truth: GroundTruth | None = None  # the evidence's known location (GeoSynth demo scenes)

    @property
    def warnings(self) -> list[str]:
        return turn_warnings(self.session, self.truth)

    @property
    def truth_km(self) -> float | None:
        return truth_km(self.turn.prediction, self.truth)

    def as_document(self) -> dict[str, Any]:
        return {
            "session": self.session.id,
            "turn": self.turn.number,
            "status": self.turn.status.value,
            "prediction": prediction_document(self.turn.prediction),
            "raw": self.turn.raw_answer,
            "timing": {
                "time_to_first_token_s": self.turn.time_to_first_token_s,
                "total_time_s": self.turn.total_time_s,
                "prompt_tokens": self.turn.prompt_tokens,
                "answer_tokens": self.turn.answer_tokens,
                "cached_prompt_tokens": self.result.cached_prompt_tokens if self.result else 0,
            },
            "model": model_document(self.session),
            "protocol_version": self.turn.protocol_version,
            "clues": [{"id": c.id, "category": c.category, "text": c.text} for c in self.clues],
            "error": self.turn.error,
            "warnings": self.warnings,
            "truth_km": self.truth_km,
        }


@dataclass(slots=True)
class TurnOptions:
    """How to run one turn: decoding, candidate sampling, streaming and cancel."""

    settings: GenerationSettings = field(default_factory=GenerationSettings)
    samples: int = 0  # k extra sampled answers clustered into candidates (0: none)
    link_km: float = DEFAULT_LINK_KM
    on_token: TokenCallback | None = None
    cancel: threading.Event | None = None
    normalizer: NameNormalizer | None = None


def backend_profile(backend: Backend) -> profiles.PromptProfile:
    """The prompt profile of the model behind ``backend`` (gaga for doubles that name none)."""
    return profiles.profile(getattr(backend, "profile", "gaga"))


def session_profile(session: Session) -> profiles.PromptProfile:
    """The profile a session was started in, from its protocol version: later turns keep it."""
    return profiles.profile_for_protocol(session.protocol_version)


def default_normalizer() -> NameNormalizer:
    from geodesk.geo import default_gazetteer

    return default_gazetteer()


# ------------------------------------------------------------------------------------------------
# Use cases
# ------------------------------------------------------------------------------------------------


def locate(
    store: CaseStore,
    evidence_ref: str,
    backend: Backend,
    mode: SessionMode = SessionMode.DIRECT,
    options: TurnOptions | None = None,
    hints: Sequence[Hint] = (),
) -> TurnOutcome:
    """Start a session about one evidence item and run its first turn."""
    options = options or TurnOptions()
    evidence = _evidence(store, evidence_ref)
    image = _open_image(store, evidence)  # an undecodable original fails here, before any session exists
    session = store.sessions.add(
        Session(
            id=None,
            evidence_sha256=evidence.sha256,
            mode=SessionMode(mode),
            model=backend.identity,
            backend=backend.name,
            decoding={**options.settings.as_dict(), "samples": options.samples},
            protocol_version=backend_profile(backend).protocol_version,
        )
    )
    return _run_turn(store, session, evidence, backend, tuple(hints), options, first=True, image=image)


def add_hints(
    store: CaseStore,
    session_id: int,
    hints: Sequence[Hint],
    backend: Backend,
    options: TurnOptions | None = None,
) -> TurnOutcome:
    """Send one or more hints as the next user turn of a session and run it."""
    options = options or TurnOptions()
    if not hints:
        raise SessionError("a hint turn needs at least one hint")
    session = _session(store, session_id)
    evidence = _evidence(store, session.evidence_sha256)
    if backend.identity.sha256 and session.model.sha256 and backend.identity.sha256 != session.model.sha256:
        raise SessionError(
            f"session {session_id} runs on {session.model.name}@{session.model.version}; "
            f"continue it with that model, or replay it on {backend.identity.name}"
        )
    return _run_turn(store, session, evidence, backend, tuple(hints), options, first=False)


def session_document(store: CaseStore, session_id: int) -> dict[str, Any]:
    """A session with all its turns, hints and predictions, as the CLI prints it."""
    session = _session(store, session_id)
    turns = store.turns.list(session_id)
    truth = store.truth.get(session.evidence_sha256)
    return {
        "session": session.id,
        "evidence": session.evidence_sha256,
        "warnings": turn_warnings(session, truth),
        "truth": truth_document(truth),
        "mode": session.mode.value,
        "backend": session.backend,
        "decoding": session.decoding,
        "protocol_version": session.protocol_version,
        "model": model_document(session),
        "replay_of": session.replay_of,
        "created_at": session.created_at.isoformat() if session.created_at else None,
        "turns": [{**turn_document(t), "truth_km": truth_km(t.prediction, truth)} for t in turns],
    }


def session_list_document(store: CaseStore, evidence_ref: str | None = None) -> dict[str, Any]:
    """The sessions of a case (or of one evidence item), each with its newest turn's answer."""
    evidence = None if evidence_ref is None else _evidence(store, evidence_ref)
    names = {e.sha256: e.original_name for e in store.evidence.list()}
    latest = store.turns.latest()
    rows = []
    for session in store.sessions.list(None if evidence is None else evidence.sha256):
        last = latest.get(session.id) if session.id is not None else None
        rows.append({
            "session": session.id,
            "evidence": session.evidence_sha256,
            "original_name": names.get(session.evidence_sha256),
            "mode": session.mode.value,
            "model": model_document(session),
            "replay_of": session.replay_of,
            "turns": 0 if last is None else last.number,
            "last_turn": None if last is None else {
                "turn": last.number, "status": last.status.value,
                "prediction": prediction_document(last.prediction),
            },
            "created_at": session.created_at.isoformat() if session.created_at else None,
        })
    return {"case": store.case.id, "title": store.case.title,
            "evidence": None if evidence is None else evidence.sha256, "sessions": rows}


@dataclass(frozen=True, slots=True)
class ReplayStep:
    index: int
    original: Prediction
    replayed: Prediction
    status: TurnStatus

    def as_document(self) -> dict[str, Any]:
        moved = _km_between(self.original, self.replayed)
        return {
            "turn": self.index + 1,  # counted from 1, as Turn.number
            "status": self.status.value,
            "original": prediction_document(self.original),
            "replayed": prediction_document(self.replayed),
            "moved_km": None if moved is None else round(moved, 3),
            "same_country": _same(
                self.original.country_code or self.original.country,
                self.replayed.country_code or self.replayed.country,
            ),
            "same_region": _same(self.original.region, self.replayed.region),
            "same_city": _same(self.original.city, self.replayed.city),
        }


def replay_session(
    store: CaseStore,
    session_id: int,
    backend: Backend,
    options: TurnOptions | None = None,
    on_step: Callable[[ReplayStep], None] | None = None,
) -> tuple[Session, list[ReplayStep]]:
    """Run the user turns of a session again, as stored, on ``backend`` in a new session.

    The exact user texts are re-sent (not re-rendered from the hints), so a replay asks the same
    questions even after the prompt wording changed. Stops at the first turn that fails or is cancelled.
    """
    options = options or TurnOptions()
    original = _session(store, session_id)
    evidence = _evidence(store, original.evidence_sha256)
    source_turns = [t for t in store.turns.list(session_id) if t.status is TurnStatus.DONE]
    if not source_turns:
        raise SessionError(f"session {session_id} has no finished turn to replay")
    replay = store.sessions.add(
        Session(
            id=None,
            evidence_sha256=evidence.sha256,
            mode=original.mode,
            model=backend.identity,
            backend=backend.name,
            decoding={**options.settings.as_dict(), "samples": options.samples},
            protocol_version=original.protocol_version,
            replay_of=original.id,
        )
    )
    steps: list[ReplayStep] = []
    for source in source_turns:
        user = prompts.UserTurn(
            text=source.prompt,
            region_crops=_crop_regions(source.prompt, source.hints, first=source.index == 0),
            protocol_version=source.protocol_version,
        )
        outcome = _execute(store, replay, evidence, backend, source.hints, user, options, source.index)
        step = ReplayStep(source.index, source.prediction, outcome.turn.prediction, outcome.turn.status)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        if outcome.turn.status is not TurnStatus.DONE:
            break
    return replay, steps


def set_clue_status(store: CaseStore, clue_id: int, status: ClueStatus, text: str | None = None) -> Clue:
    """Accept, reject or edit a clue (geodesk.services.clues has the rules: an edit needs text)."""
    from geodesk.services import clues

    if status is ClueStatus.EDITED:
        return clues.edit_clue(store, clue_id, text or "")
    return clues.set_clue_status(store, clue_id, status)


def clue_verdict_hint(store: CaseStore, session_id: int) -> Hint:
    """A CLUES hint carrying every accepted, edited or rejected clue of the session's evidence."""
    session = _session(store, session_id)
    judged = [
        c
        for c in store.clues.list(evidence_sha256=session.evidence_sha256)
        if c.status is not ClueStatus.PROPOSED and c.id is not None
    ]
    if not judged:
        raise SessionError("no clue has been accepted or rejected yet; judge some clues first")
    return Hint(kind=HintKind.CLUES, clue_ids=tuple(c.id for c in judged if c.id is not None))


# ------------------------------------------------------------------------------------------------
# One turn
# ------------------------------------------------------------------------------------------------


def _run_turn(
    store: CaseStore,
    session: Session,
    evidence: Evidence,
    backend: Backend,
    hints: tuple[Hint, ...],
    options: TurnOptions,
    *,
    first: bool,
    image: Image.Image | None = None,
) -> TurnOutcome:
    assert session.id is not None
    # A session locate() has just created has no turns: no need to ask the database.
    previous = [] if first else store.turns.list(session.id)
    index = len(previous)
    clues = _clues_for(store, hints)
    attach = backend.max_images_per_message > 1
    size = (evidence.width, evidence.height)
    profile = session_profile(session)
    try:
        if first:
            user = profile.first_turn(
                session.mode, hints, clues=clues, attach_region_crops=attach, image_size=size
            )
        else:
            user = profile.hint_turn(
                hints, mode=session.mode, clues=clues, attach_region_crops=attach, image_size=size
            )
    except ValueError as exc:
        raise SessionError(str(exc)) from None
    history = [t for t in previous if t.status is TurnStatus.DONE]
    return _execute(store, session, evidence, backend, hints, user, options, index, image, history)


def _execute(
    store: CaseStore,
    session: Session,
    evidence: Evidence,
    backend: Backend,
    hints: tuple[Hint, ...],
    user: prompts.UserTurn,
    options: TurnOptions,
    index: int,
    image: Image.Image | None = None,
    history: Sequence[Turn] | None = None,
) -> TurnOutcome:
    assert session.id is not None
    if history is None:
        history = [t for t in store.turns.list(session.id) if t.status is TurnStatus.DONE]
    if image is None:
        image = _open_image(store, evidence)
    profile = session_profile(session)
    messages = _conversation(session.mode, history, user, image, profile,
                             (evidence.width, evidence.height))
    # The turn exists before the model runs: a crash mid-answer leaves a 'running' record, never a gap,
    # and its work marker lets the next open of the case mark it 'interrupted' (geodesk/store/recovery).
    with turn_marker(store.path, session.id, index):
        return _ask_model(store, session, evidence, backend, hints, user, options, index, messages, profile)


def _ask_model(
    store: CaseStore,
    session: Session,
    evidence: Evidence,
    backend: Backend,
    hints: tuple[Hint, ...],
    user: prompts.UserTurn,
    options: TurnOptions,
    index: int,
    messages: list[ChatMessage],
    profile: profiles.PromptProfile,
) -> TurnOutcome:
    assert session.id is not None
    turn = store.turns.add(
        Turn(
            id=None,
            session_id=session.id,
            index=index,
            prompt=user.text,
            raw_answer="",
            prediction=Prediction(),
            hints=hints,
            status=TurnStatus.RUNNING,
            protocol_version=user.protocol_version,
        )
    )
    crash_point("turn-running")
    normalizer = options.normalizer if options.normalizer is not None else default_normalizer()
    result: GenerationResult | None = None
    try:
        result = backend.generate(
            messages, options.settings, on_token=options.on_token, cancel=options.cancel
        )
    except BackendError as exc:
        failed = store.turns.update(replace(turn, status=TurnStatus.FAILED, error=str(exc)))
        return TurnOutcome(session, failed, profile.parse("", normalizer, session.mode), None,
                           truth=store.truth.get(evidence.sha256))
    except BaseException as exc:  # KeyboardInterrupt, unexpected bugs: record, then let it propagate
        store.turns.update(replace(turn, status=TurnStatus.FAILED, error=f"{type(exc).__name__}: {exc}"))
        raise

    parsed = profile.parse(result.text, normalizer, session.mode)
    prediction = parsed.prediction
    samples: tuple[Prediction, ...] = ()
    if options.samples > 0 and not result.cancelled:
        samples = _draw_samples(backend, messages, options, normalizer, session.mode, profile)
        prediction = replace(
            prediction, candidates=cluster_candidates((prediction, *samples), options.link_km)
        )
    status = (
        TurnStatus.CANCELLED
        if result.cancelled or (options.cancel and options.cancel.is_set())
        else (TurnStatus.DONE)
    )
    with store.transaction():
        done = store.turns.update(
            replace(
                turn,
                raw_answer=result.text,
                prediction=prediction,
                status=status,
                prompt_tokens=result.prompt_tokens,
                answer_tokens=result.answer_tokens,
                time_to_first_token_s=result.time_to_first_token_s,
                total_time_s=result.total_time_s,
            )
        )
        created: list[Clue] = []
        if status is TurnStatus.DONE and session.mode is SessionMode.CLUES:
            for category, text in prediction.clues:
                created.append(
                    store.clues.add(
                        Clue(
                            id=None,
                            evidence_sha256=evidence.sha256,
                            category=category,
                            text=text,
                            source=ClueSource.MODEL,
                            status=ClueStatus.PROPOSED,
                            turn_id=done.id,
                        )
                    )
                )
    return TurnOutcome(session, done, parsed, result, samples, tuple(created),
                       truth=store.truth.get(evidence.sha256))


def _draw_samples(
    backend: Backend,
    messages: Sequence[ChatMessage],
    options: TurnOptions,
    normalizer: NameNormalizer,
    mode: SessionMode,
    profile: profiles.PromptProfile,
) -> tuple[Prediction, ...]:
    base_seed = options.settings.seed if options.settings.seed is not None else 0
    drawn: list[Prediction] = []
    for k in range(options.samples):
        if options.cancel is not None and options.cancel.is_set():
            break
        settings = GenerationSettings(
            max_new_tokens=options.settings.max_new_tokens,
            temperature=SAMPLE_TEMPERATURE,
            top_p=SAMPLE_TOP_P,
            seed=base_seed + 1 + k,
        )
        try:
            result = backend.generate(messages, settings, cancel=options.cancel)
        except BackendError:
            continue  # a failed draw is a vote for nothing; the turn itself stands
        drawn.append(profile.parse(result.text, normalizer, mode).prediction)
    return tuple(drawn)


# ------------------------------------------------------------------------------------------------
# Conversation assembly
# ------------------------------------------------------------------------------------------------


def _conversation(
    mode: SessionMode,
    history: Sequence[Turn],
    user: prompts.UserTurn,
    image: Image.Image,
    profile: profiles.PromptProfile,
    original_size: tuple[int, int],
) -> list[ChatMessage]:
    """System prompt, earlier (user, answer) pairs with their images re-attached, then the new user turn.

    ``original_size`` is the evidence's upright size, in which hint regions are given; ``image`` may be
    the bounded decode of it (at most MODEL_MAX_EDGE px), so region boxes are scaled to it.
    """
    messages = [ChatMessage("system", profile.system_prompt(mode))]
    for past in history:
        crops = _crop_regions(past.prompt, past.hints, first=past.index == 0)
        messages.append(
            ChatMessage(
                "user", past.prompt, _images_for(past.prompt, image, crops, past.index == 0, original_size)
            )
        )
        messages.append(ChatMessage("assistant", past.raw_answer))
    first = not history
    images = _images_for(user.text, image, user.region_crops, first, original_size)
    messages.append(ChatMessage("user", user.text, images))
    return messages


def _crop_regions(text: str, hints: Sequence[Hint], *, first: bool) -> tuple[Any, ...]:
    """The regions whose crops a stored user text carries: its placeholders beyond the evidence image."""
    extra = text.count(prompts.IMAGE_PLACEHOLDER) - (1 if first else 0)
    regions = [h.region for h in hints if h.kind is HintKind.REGION and h.region is not None]
    return tuple(regions[: max(extra, 0)])


def _images_for(
    text: str, image: Image.Image, crops: Sequence[Any], first: bool, original_size: tuple[int, int]
) -> tuple[Image.Image, ...]:
    images: list[Image.Image] = [image] if first and prompts.IMAGE_PLACEHOLDER in text else []
    # Regions are in the original's pixels; the decoded image may be smaller (bounded for the model).
    sx = image.width / original_size[0] if original_size[0] > 0 else 1.0
    sy = image.height / original_size[1] if original_size[1] > 0 else 1.0
    for region in crops:
        x0, y0 = int(region.x0 * sx), int(region.y0 * sy)
        x1, y1 = round(region.x1 * sx), round(region.y1 * sy)
        box = (
            max(0, min(x0, image.width - 1)),
            max(0, min(y0, image.height - 1)),
            max(1, min(max(x1, x0 + 1), image.width)),
            max(1, min(max(y1, y0 + 1), image.height)),
        )
        images.append(image.crop(box))
    return tuple(images)


class _DecodedOriginals:
    """The last few decoded evidence originals, by SHA-256.

    Every turn of a session sends the evidence image again; a 12 MP original takes longer to decode
    than a small model takes to answer. Originals are content-addressed and read-only, so the hash
    names the pixels: a cached decode is the same image. Small (each entry is width*height*3 bytes)
    and thread-safe (batch workers share it).
    """

    def __init__(self, size: int = 2) -> None:
        self._size = size
        self._images: OrderedDict[str, Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str) -> Image.Image | None:
        with self._lock:
            image = self._images.get(sha256)
            if image is not None:
                self._images.move_to_end(sha256)
            return image

    def put(self, sha256: str, image: Image.Image) -> None:
        with self._lock:
            self._images[sha256] = image
            self._images.move_to_end(sha256)
            while len(self._images) > self._size:
                self._images.popitem(last=False)


_DECODED = _DecodedOriginals()


def _open_image(store: CaseStore, evidence: Evidence) -> Image.Image:
    """The evidence original, upright (EXIF orientation applied), RGB, decoded through the one bounded
    preparation step (at most MODEL_MAX_EDGE px on its longest side). Never modified by callers."""
    from geodesk.engine.imaging import ImageRefusedError, open_rgb

    try:
        path = store.evidence_file(evidence.sha256)  # the original must still be in the case
    except (LookupError, FileNotFoundError) as exc:
        raise SessionError(
            f"the original of {evidence.sha256[:12]} is missing from the case ({exc}); "
            "run `geodesk case verify`"
        ) from None
    cached = _DECODED.get(evidence.sha256)
    if cached is not None:
        return cached
    try:
        # Evidence imported as damaged (a truncated JPEG): the model sees the part that decodes.
        upright = open_rgb(path, allow_truncated=bool(evidence.metadata.get("damaged")))
    except ImageRefusedError as exc:
        raise SessionError(f"the image {evidence.original_name} cannot be given to a model: {exc}") from None
    except (OSError, ValueError) as exc:
        raise SessionError(f"the image {evidence.original_name} cannot be decoded: {exc}") from None
    _DECODED.put(evidence.sha256, upright)
    return upright


def _clues_for(store: CaseStore, hints: Sequence[Hint]) -> dict[int, Clue]:
    ids = {i for h in hints for i in h.clue_ids}
    found: dict[int, Clue] = {}
    for clue_id in sorted(ids):
        try:
            found[clue_id] = store.clues.get(clue_id)
        except LookupError:
            raise SessionError(f"there is no clue {clue_id} in this case") from None
    return found


def _session(store: CaseStore, session_id: int) -> Session:
    try:
        return store.sessions.get(int(session_id))
    except LookupError:
        raise SessionError(f"there is no session {session_id} in case {store.case.title!r}") from None


def _evidence(store: CaseStore, ref: str) -> Evidence:
    try:
        return store.evidence.get(ref)
    except LookupError as exc:
        raise SessionError(str(exc)) from None


# ------------------------------------------------------------------------------------------------
# Documents
# ------------------------------------------------------------------------------------------------


def prediction_document(p: Prediction) -> dict[str, Any]:
    return {
        "country": p.country,
        "country_code": p.country_code,
        "region": p.region,
        "city": p.city,
        "lat": p.lat,
        "lon": p.lon,
        "valid": p.valid,
        "problems": list(p.problems),
        "clues": [{"category": c, "text": t} for c, t in p.clues],
        "reasoning": p.reasoning,
        "point_source": point_source(p),
        "candidates": [
            {
                "lat": c.lat,
                "lon": c.lon,
                "share": round(c.share, 4),
                "spread_km": round(c.spread_km, 3),
                "country": c.country,
                "region": c.region,
                "city": c.city,
            }
            for c in p.candidates
        ],
    }


def point_source(p: Prediction) -> str | None:
    """Where a prediction's point came from: the model's answer, or the gazetteer (the named city's
    coordinates, for profiles whose models name places without coordinates); None without a point."""
    if p.lat is None or p.lon is None:
        return None
    codes = {problem.split(":", 1)[0] for problem in p.problems}
    return "gazetteer" if Problem.COORDINATES_FROM_NAMES.value in codes else "model"


def model_document(session: Session) -> dict[str, Any]:
    return {
        "name": session.model.name,
        "version": session.model.version,
        "sha256": session.model.sha256,
        "caveat": session.model.caveat,
        "backend": session.backend,
        "profile": session_profile(session).name,
    }


# What every answer of a model with a caveat carries, wherever it is shown (CLI, app, map, reports).
UNTRAINED_WARNING = "answer from an UNTRAINED model (random weights): it means nothing"
SYNTHETIC_WARNING = ("answer from the demo model, trained on synthetic GeoSynth scenes only: "
                     "a demonstration, not for casework")
SYNTHETIC_ON_REAL_WARNING = ("this image is not a GeoSynth scene and the demo model knows nothing but "
                             "GeoSynth scenes: this answer says nothing about where the photo was taken")


def turn_warnings(session: Session, truth: GroundTruth | None) -> list[str]:
    """The caveats every turn of ``session`` must show, given what is known of its evidence."""
    caveat = session.model.caveat
    if caveat == "untrained":
        return [UNTRAINED_WARNING]
    if caveat == "synthetic":
        on_scene = truth is not None and truth.source == GEOSYNTH_TRUTH
        return [SYNTHETIC_WARNING] if on_scene else [SYNTHETIC_WARNING, SYNTHETIC_ON_REAL_WARNING]
    return []


def truth_km(p: Prediction, truth: GroundTruth | None) -> float | None:
    """How far an answer is from the evidence's known location, when it has one."""
    if truth is None or p.lat is None or p.lon is None:
        return None
    return round(haversine_km(p.lat, p.lon, truth.lat, truth.lon), 3)


def truth_document(truth: GroundTruth | None) -> dict[str, Any] | None:
    if truth is None:
        return None
    return {"source": truth.source, "lat": truth.lat, "lon": truth.lon, "country": truth.country,
            "country_code": truth.country_code, "region": truth.region, "city": truth.city}


def hint_document(h: Hint) -> dict[str, Any]:
    return {
        "kind": h.kind.value,
        "text": h.text,
        "answer": h.answer,
        "region": h.region.as_list() if h.region else None,
        "clue_ids": list(h.clue_ids),
    }


def turn_document(t: Turn) -> dict[str, Any]:
    return {
        "turn": t.number,
        "status": t.status.value,
        "hints": [hint_document(h) for h in t.hints],
        "prompt": t.prompt,
        "raw": t.raw_answer,
        "prediction": prediction_document(t.prediction),
        "protocol_version": t.protocol_version,
        "timing": {
            "time_to_first_token_s": t.time_to_first_token_s,
            "total_time_s": t.total_time_s,
            "prompt_tokens": t.prompt_tokens,
            "answer_tokens": t.answer_tokens,
        },
        "error": t.error,
        "created_at": t.created_at.isoformat() if t.created_at else None,
    }


def _km_between(a: Prediction, b: Prediction) -> float | None:
    if a.lat is None or a.lon is None or b.lat is None or b.lon is None:
        return None
    return haversine_km(a.lat, a.lon, b.lat, b.lon)


def _same(a: str | None, b: str | None) -> bool | None:
    if a is None or b is None:
        return None
    return a.casefold() == b.casefold()
