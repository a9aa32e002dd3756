"""Clue engine use cases: run it on evidence (one item or a batch), review what it found, combine the
accepted clues into one constraint, measure the sun, and send the accepted clues to the model.

The functions a front end calls (the CLI does, and the desktop app's clue panel, viewer, map and
session panel are meant to):

- :func:`run_engine` / :func:`run_engine_batch`: OCR + analysers on one item (optionally one region)
  or on every item; each item's failure is a message in its :class:`EngineRun`, never a lost batch;
- :func:`engine_clues` / :func:`engine_clues_document`: the stored engine clues of an item;
- :func:`add_sun_clue`: an object box and its shadow tip (or a ratio) and a time -> a sun clue;
- :func:`constraint` / :func:`constraint_for`: the combined view (leading countries with their reason,
  GeoJSON for the map);
- :func:`accepted_clues_hint` / :func:`send_accepted_clues`: the accepted engine clues as the next
  turn's +QA hint; the outcome carries the clues the new prediction contradicts;
- :func:`record_turn_flags` / :func:`turn_flags`: the contradictions between an item's turns and its
  engine clues, recorded once (table ``turn_flags``, ADR 0050), and per turn of a session the accepted
  clues its prediction contradicts. The engine run, a new sun clue and a sent hint record them.

Review (accept / reject / edit) uses the clue status services as for any clue
(:func:`geodesk.services.sessions.set_clue_status`); only accepted and edited clues count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from geodesk.clues import engine as clue_engine
from geodesk.clues.constraint import Labelled, constraint_document, contradictions
from geodesk.clues.model import Finding
from geodesk.clues.ocr import ENGINES, OcrError, ocr_engine, read_image
from geodesk.domain.model import Clue, ClueStatus, Hint, HintKind, Region
from geodesk.services.sessions import (
    SessionError,
    TurnOptions,
    TurnOutcome,
    _evidence,
    _open_image,
    _session,
    add_hints,
)

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend
    from geodesk.store.case_store import CaseStore
    from geodesk.store.engine_clues import EngineClue
    from geodesk.store.turn_flags import TurnFlag

DEFAULT_OCR = "hybrid"  # the best reading on the text test set (ADR 0051, bench/results/clue_engine.json)
REVIEWED = (ClueStatus.ACCEPTED, ClueStatus.EDITED)


class ClueEngineError(SessionError):
    """A clue-engine use case that cannot go on; the sentence says what to do."""


@dataclass(slots=True)
class EngineRun:
    """What one run on one evidence item produced: the clues stored now, those already there, messages."""

    evidence: str
    added: list[EngineClue] = field(default_factory=list)
    skipped: int = 0  # findings identical to a clue the item already has
    messages: list[str] = field(default_factory=list)
    ok: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)

    def as_document(self) -> dict[str, Any]:
        return {
            "evidence": self.evidence,
            "ok": self.ok,
            "added": [engine_clue_document(c) for c in self.added],
            "skipped_existing": self.skipped,
            "messages": self.messages,
            "provenance": self.provenance,
        }


@cache
def _gazetteer() -> Any:
    from geodesk.geo import default_gazetteer

    return default_gazetteer()


def run_engine(
    store: CaseStore,
    evidence_ref: str,
    *,
    ocr: str = DEFAULT_OCR,
    region: Region | None = None,
    read_metadata: bool = True,
) -> EngineRun:
    """Run the clue engine on one evidence item (only ``region`` of it when given) and store its clues.

    Never raises for what goes wrong with the image or an engine: that is a message in the run, with
    ``ok`` false, and whatever the other analysers found is still stored.
    """
    if ocr not in ENGINES:
        raise ClueEngineError(f"unknown OCR engine {ocr!r}; choose one of {', '.join(ENGINES)}")
    evidence = _evidence(store, evidence_ref)
    run = EngineRun(evidence.sha256)
    findings: list[Finding] = []
    provenance: dict[str, Any] = {"engine_version": clue_engine.ENGINE_VERSION}
    if read_metadata and region is None:
        meta = clue_engine.metadata_findings(evidence)
        findings.extend(meta.findings)
        run.messages.extend(meta.warnings)
    try:
        image = _open_image(store, evidence)
        reader = ocr_engine(ocr)
        provenance["ocr"] = reader.provenance()
        lines = read_image(reader, image, region)
        provenance["lines"] = len(lines)
        findings.extend(clue_engine.text_findings(lines, _gazetteer()))
    except (SessionError, OcrError) as exc:
        run.ok = False
        run.messages.append(str(exc))
    except Exception as exc:  # a decoder / onnxruntime / Tesseract failure or a decompression bomb
        run.ok = False
        run.messages.append(f"the clue engine failed on {evidence.original_name}: {exc}")
    run.provenance = provenance
    existing = {
        (c.category, c.text, None if c.region is None else tuple(c.region.as_list()))
        for c in store.clues.list(evidence_sha256=evidence.sha256)
    }
    for f in findings:
        key = (f.category, f.text, None if f.region is None else tuple(f.region.as_list()))
        if key in existing:
            run.skipped += 1
            continue
        existing.add(key)
        run.added.append(_store_finding(store, evidence.sha256, f, provenance))
    if run.added:
        record_turn_flags(store, evidence.sha256)  # the item's earlier turns against the new clues
    return run


def _store_finding(store: CaseStore, sha256: str, f: Finding, provenance: dict[str, Any]) -> EngineClue:
    clue = Clue(
        id=None, evidence_sha256=sha256, category=f.category, text=f.text, source=f.source, region=f.region
    )
    prov = {k: v for k, v in provenance.items() if k != "lines"}
    return store.engine_clues.add(
        clue,
        confidence=f.confidence,
        countries=f.countries,
        others=f.others,
        area=f.area,
        details=f.details,
        engine_version=clue_engine.ENGINE_VERSION,
        provenance=prov,
    )


def run_engine_batch(
    store: CaseStore, *, ocr: str = DEFAULT_OCR, on_item: Callable[[EngineRun], None] | None = None
) -> list[EngineRun]:
    """Run the engine on every evidence item of the case; one item's failure never stops the others."""
    runs: list[EngineRun] = []
    for evidence in store.evidence.list():
        try:
            run = run_engine(store, evidence.sha256, ocr=ocr)
        except ClueEngineError:
            raise
        except Exception as exc:  # anything unforeseen on one item becomes that item's message
            run = EngineRun(evidence.sha256, ok=False, messages=[f"the clue engine failed: {exc}"])
        runs.append(run)
        if on_item is not None:
            on_item(run)
    return runs


# --------------------------------------------------------------------------------------------- review


def engine_clues(store: CaseStore, evidence_ref: str) -> list[EngineClue]:
    return store.engine_clues.list(_evidence(store, evidence_ref).sha256)


def engine_clue_document(c: EngineClue) -> dict[str, Any]:
    clue = c.clue
    top = sorted(c.countries.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "id": clue.id,
        "category": clue.category,
        "text": clue.text,
        "source": clue.source.value,
        "status": clue.status.value,
        "box": None if clue.region is None else clue.region.as_list(),
        "confidence": round(c.confidence, 4),
        "supports": [{"country_code": k, "likelihood": round(v, 4)} for k, v in top[:15]],
        "supports_count": len(c.countries),
        "others": round(c.others, 4),
        "area": c.area,
        "details": c.details,
        "engine_version": c.engine_version,
        "provenance": c.provenance,
    }


def engine_clues_document(store: CaseStore, evidence_ref: str) -> dict[str, Any]:
    evidence = _evidence(store, evidence_ref)
    return {
        "evidence": evidence.sha256,
        "clues": [engine_clue_document(c) for c in engine_clues(store, evidence.sha256)],
    }


# ------------------------------------------------------------------------------------------------ sun


def add_sun_clue(
    store: CaseStore,
    evidence_ref: str,
    *,
    object_box: Region | None = None,
    shadow_tip: tuple[float, float] | None = None,
    ratio: float | None = None,
    when: datetime | None = None,
    ratio_error: float | None = None,
    time_error_min: float | None = None,
) -> EngineClue:
    """Store a sun clue from an object's box and shadow tip (or a height / shadow ratio) and a time.

    The time defaults to the EXIF capture time; it must carry its UTC offset.
    """
    from geodesk.clues import sun

    evidence = _evidence(store, evidence_ref)
    if ratio is None:
        if object_box is None or shadow_tip is None:
            raise ClueEngineError("mark the object (x0,y0,x1,y1) and its shadow tip (x,y), or give the ratio")
        try:
            ratio = sun.ratio_from_marks(object_box, shadow_tip)
        except ValueError as exc:
            raise ClueEngineError(str(exc)) from None
    if when is None:
        from geodesk.clues.timezones import parse_local_time

        when = parse_local_time(evidence.taken_at) if evidence.taken_at else None
        if when is None or when.utcoffset() is None:
            raise ClueEngineError(
                "this photo has no capture time with a UTC offset; give the time with --time "
                "(for example 2024-06-21T14:05:00+02:00)"
            )
    if when.utcoffset() is None:
        raise ClueEngineError("the time needs its UTC offset (for example 2024-06-21T14:05:00+02:00)")
    try:
        finding = clue_engine.sun_finding(
            when,
            ratio,
            _gazetteer().borders,
            object_box=object_box,
            shadow_tip=shadow_tip,
            ratio_error=sun.DEFAULT_RATIO_ERROR if ratio_error is None else ratio_error,
            time_error_min=sun.DEFAULT_TIME_ERROR_MIN if time_error_min is None else time_error_min,
        )
    except ValueError as exc:
        raise ClueEngineError(str(exc)) from None
    stored = _store_finding(
        store,
        evidence.sha256,
        finding,
        {"engine_version": clue_engine.ENGINE_VERSION, "solar_position": "astral NOAA"},
    )
    record_turn_flags(store, evidence.sha256)
    return stored


# -------------------------------------------------------------------------------------------- combine


@cache
def _countries() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Every country the combination ranks (code -> name) and the border geometries it can draw."""
    from babel.core import get_global

    from geodesk.geo.sources import load_countries_geojson

    gaz = _gazetteer()
    names: dict[str, str] = {}
    for code in get_global("territory_languages"):
        if len(code) == 2 and code.isalpha() and code.isupper() and code not in ("ZZ", "EU", "UN", "QO"):
            names[code] = gaz.countries.name(code) if gaz.country(code) is not None else code
    geometries: dict[str, dict[str, Any]] = {}
    for feature in load_countries_geojson()["features"]:
        code = feature["properties"].get("iso_a2")
        if isinstance(code, str) and len(code) == 2:
            geometries.setdefault(code, feature["geometry"])
            names.setdefault(code, str(feature["properties"].get("name") or code))
    return names, geometries


def _labelled(clues: Sequence[EngineClue]) -> list[Labelled]:
    return [Labelled(c.clue.id, c.clue.category, c.clue.text, c) for c in clues]


def reviewed_clues(store: CaseStore, evidence_ref: str, include_proposed: bool = False) -> list[EngineClue]:
    wanted = (*REVIEWED, ClueStatus.PROPOSED) if include_proposed else REVIEWED
    return [
        c for c in engine_clues(store, evidence_ref) if c.clue.status in wanted and c.clue.category != "text"
    ]


def constraint(clues: Sequence[EngineClue], *, geometry: bool = True) -> dict[str, Any]:
    if not clues:  # the same empty document, without loading the borders and CLDR tables
        return constraint_document([], {}, None)
    names, geometries = _countries()
    return constraint_document(_labelled(clues), names, geometries if geometry else None)


def constraint_for(
    store: CaseStore, evidence_ref: str, *, include_proposed: bool = False, geometry: bool = True
) -> dict[str, Any]:
    """The combined view of an item's accepted (and edited) engine clues; proposed ones too on request."""
    evidence = _evidence(store, evidence_ref)
    document = constraint(reviewed_clues(store, evidence.sha256, include_proposed), geometry=geometry)
    return {"evidence": evidence.sha256, "include_proposed": include_proposed, **document}


# ------------------------------------------------------------------------------------------ the model


HINT_QUESTION = "What do the time and the sun in the photo tell about the place?"
SIGN_QUESTION = "What does the writing on the sign say, and where does it point to?"


def accepted_clues_hint(store: CaseStore, session_id: int) -> Hint:
    """The accepted engine clues of the session's evidence as one +QA hint (see :func:`clues_hint`)."""
    session = _session(store, session_id)
    accepted = [c for c in engine_clues(store, session.evidence_sha256) if c.clue.status in REVIEWED]
    if not accepted:
        raise ClueEngineError("no engine clue of this photo is accepted yet; accept the clues to send first")
    return clues_hint(accepted)


def clues_hint(accepted: Sequence[EngineClue]) -> Hint:
    """Engine clues as one +QA hint, worded as an analyst would say them: the sign text with its script
    and language, the phone numbers, web addresses and places read, the capture time's offset and the
    sun band."""
    if not accepted:
        raise ClueEngineError("there are no accepted engine clues to send")
    sentences: list[str] = []
    texts = [c for c in accepted if c.clue.category == "text"]
    if texts:
        # One sentence for all the lines read, as a person reports a sign: "reads A / B (script, language)".
        scripts = list(
            dict.fromkeys(str(c.details["script_name"]) for c in texts if c.details.get("script_name"))
        )
        langs = list(
            dict.fromkeys(str(c.details["language_name"]) for c in texts if c.details.get("language_name"))
        )
        about = ", ".join([*(f"{name} script" for name in scripts), *langs])
        reading = " / ".join(c.clue.text for c in texts)
        sentences.append(f"A sign in the photo reads {reading}" + (f" ({about})." if about else "."))
    for c in accepted:
        category = c.clue.category
        if category == "text":
            continue
        if category == "place":
            best = c.details.get("best") or {}
            sentences.append(
                f"The text names {best.get('name', c.clue.text)}"
                + (f" ({best['country_code']})." if best.get("country_code") else ".")
            )
        elif category == "timezone":
            countries = c.details.get("countries", [])
            listed = ", ".join(countries[:12]) + (" and others" if len(countries) > 12 else "")
            sentences.append(f"The camera clock's UTC offset was used only in {listed}.")
        elif category in ("script", "language") and texts:
            continue  # already said with the sign's reading
        elif category == "sun":
            sentences.append(f"The shadows put the {c.clue.text}.")
        else:
            sentences.append(f"{c.clue.text[0].upper()}{c.clue.text[1:]}.")
    question = SIGN_QUESTION if texts else HINT_QUESTION
    return Hint(kind=HintKind.QA, text=question, answer=" ".join(dict.fromkeys(sentences)))


@dataclass(frozen=True, slots=True)
class SentHint:
    outcome: TurnOutcome
    hint: Hint
    flags: list[str]

    def as_document(self) -> dict[str, Any]:
        return {
            **self.outcome.as_document(),
            "hint": {"kind": self.hint.kind.value, "text": self.hint.text, "answer": self.hint.answer},
            "flags": self.flags,
        }


def send_accepted_clues(
    store: CaseStore, session_id: int, backend: Backend, options: TurnOptions | None = None
) -> SentHint:
    """Send the accepted engine clues as the next turn's +QA hint and flag what the answer contradicts."""
    hint = accepted_clues_hint(store, session_id)
    outcome = add_hints(store, session_id, [hint], backend, options)
    record_turn_flags(store, outcome.session.evidence_sha256)
    turn_id = outcome.turn.id
    recorded = store.turn_flags.list(session_id=session_id)
    flags = [f.text for f in recorded if f.counts and f.turn_id == turn_id]
    return SentHint(outcome, hint, flags)


# ----------------------------------------------------------------------------------- contradictions


def _contradictions(prediction: Any, clue: Labelled) -> list[tuple[str, str]]:
    """(kind, sentence) for each way the prediction contradicts one clue."""
    found: list[tuple[str, str]] = []
    if prediction.country_code:
        found += [("country", text) for text in contradictions(prediction.country_code, None, [clue])]
    if prediction.lat is not None and prediction.lon is not None:
        found += [("sun", text) for text in contradictions(None, (prediction.lat, prediction.lon), [clue])]
    return found


def record_turn_flags(store: CaseStore, evidence_ref: str) -> list[TurnFlag]:
    """Check every turn of the item's sessions against every engine clue of the item and record the
    contradictions not recorded yet (whatever the clue's status: a flag counts while its clue is accepted
    or edited, so accepting a clue later needs no new check). Returns the new flags."""
    evidence = _evidence(store, evidence_ref)
    # Text lines carry no place of their own (their script, language, numbers are separate clues).
    clues = [c for c in _labelled(engine_clues(store, evidence.sha256)) if c.category != "text"]
    if not clues:
        return []
    known = {(f.turn_id, f.clue_id) for f in store.turn_flags.list(evidence_sha256=evidence.sha256)}
    found: list[tuple[int, int, str, str]] = []
    for session in store.sessions.list(evidence_sha256=evidence.sha256):
        assert session.id is not None
        for turn in store.turns.list(session.id):
            if turn.id is None:
                continue
            for clue in clues:
                if clue.id is None or (turn.id, clue.id) in known:
                    continue  # both sides are fixed: a pair checked once stays checked
                found += [
                    (turn.id, clue.id, kind, text) for kind, text in _contradictions(turn.prediction, clue)
                ]
    return store.turn_flags.add_missing(found)


def turn_flags(store: CaseStore, session_id: int) -> list[dict[str, Any]]:
    """Per turn of a session (numbered from 1): the accepted engine clues its prediction contradicts.

    Records what was not checked yet first (:func:`record_turn_flags`)."""
    session = _session(store, session_id)
    record_turn_flags(store, session.evidence_sha256)
    by_turn: dict[int, list[TurnFlag]] = {}
    for f in store.turn_flags.list(session_id=session_id):
        by_turn.setdefault(f.turn_id, []).append(f)
    return [
        {
            "turn": t.number,
            "turn_id": t.id,
            "country_code": t.prediction.country_code,
            "flags": [f.text for f in by_turn.get(t.id or -1, []) if f.counts],
            "flag_ids": [f.id for f in by_turn.get(t.id or -1, []) if f.counts],
        }
        for t in store.turns.list(session_id)
    ]
