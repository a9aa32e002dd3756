"""The vocabulary of geodesk as plain dataclasses (see CONTEXT.md).

Nothing here touches the disk, SQLite, Qt or torch: the store turns rows into these objects, the
engine and services produce and consume them, and the Qt layer presents them.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class ClueSource(enum.StrEnum):
    MODEL = "model"
    METADATA = "metadata"
    ANALYST = "analyst"
    OCR = "ocr"  # the clue engine read it off the image (text, script, language, phone, domain, ...)
    SUN = "sun"  # the clue engine's sun constraint from an object and its shadow


class ClueStatus(enum.StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EDITED = "edited"


class HintKind(enum.StrEnum):
    """What the analyst feeds back into a session; each becomes part of a user turn."""

    QUESTION = "question"  # guiding question (+Q)
    QA = "qa"  # question with its answer (+QA)
    PRIOR = "prior"  # prior region: "it is in ..."
    EXCLUDE = "exclude"  # exclusion: "it is not in ..."
    CORRECT = "correct"  # "your prediction is incorrect", optionally with what is known
    REGION = "region"  # a note pinned to an image region
    CLUES = "clues"  # accepted / rejected clues sent back to the model


class SessionMode(enum.StrEnum):
    DIRECT = "direct"
    CLUES = "clues"


class TurnStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its process was killed mid-answer; found and marked on the next open


class FindingStatus(enum.StrEnum):
    UNVERIFIED = "unverified"
    PROBABLE = "probable"
    CONFIRMED = "confirmed"


@dataclass(frozen=True, slots=True)
class GpsPoint:
    """A WGS84 point in signed decimal degrees; altitude in metres above sea level when known."""

    lat: float
    lon: float
    alt: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and math.isfinite(self.lon)):
            raise ValueError(f"coordinates must be finite numbers, got ({self.lat}, {self.lon})")
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"latitude {self.lat} is outside -90..90")
        if not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"longitude {self.lon} is outside -180..180")


class Place(NamedTuple):
    """Where a point lies: the country by polygon, the nearest populated place for region and city.

    A NamedTuple, not a frozen dataclass like the other records: reverse geocoding makes one per
    point (100k in a batch), and a tuple is filled in C from a row of columns, in about a third of the
    time a dataclass's __init__ takes (ADR 0059). It is as immutable, and compares by its fields."""

    country_code: str | None
    country: str | None
    region: str | None
    city: str | None
    distance_km: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "country_code": self.country_code,
            "country": self.country,
            "region": self.region,
            "city": self.city,
            "distance_km": None if self.distance_km is None else round(self.distance_km, 3),
        }


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle on an image in original-pixel coordinates (orientation applied), x0 < x1, y0 < y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(
                f"region ({self.x0},{self.y0},{self.x1},{self.y1}) has no area: need x0<x1, y0<y1"
            )
        if min(self.x0, self.y0) < 0:
            raise ValueError("region coordinates must not be negative")

    @classmethod
    def parse(cls, text: str) -> Region:
        """Parse ``"x0,y0,x1,y1"`` as the CLI takes it."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise ValueError(f"a region is four integers x0,y0,x1,y1; got {text!r}")
        try:
            x0, y0, x1, y1 = (round(float(p)) for p in parts)
        except ValueError:
            raise ValueError(f"a region is four integers x0,y0,x1,y1; got {text!r}") from None
        return cls(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    title: str
    path: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Evidence:
    """One imported image. ``sha256`` is its identity; the original bytes are never modified."""

    sha256: str
    original_name: str
    size_bytes: int
    format: str
    width: int
    height: int
    imported_at: datetime
    source_path: str | None = None
    gps: GpsPoint | None = None
    taken_at: str | None = None  # ISO 8601, with its UTC offset when the file records one
    camera: str | None = None
    orientation: int = 1
    place: Place | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Clue:
    id: int | None
    evidence_sha256: str
    category: str
    text: str
    source: ClueSource
    status: ClueStatus = ClueStatus.PROPOSED
    region: Region | None = None
    turn_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None  # last status / text change; set by the store


@dataclass(frozen=True, slots=True)
class Hint:
    """One piece of analyst feedback. ``text`` is the question / region name / note; ``answer`` for +QA."""

    kind: HintKind
    text: str = ""
    answer: str | None = None
    region: Region | None = None
    clue_ids: tuple[int, ...] = ()
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One cluster of sampled answers: its centre, the share of samples in it and their spread (km)."""

    lat: float
    lon: float
    share: float
    spread_km: float
    country: str | None = None
    region: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """What one model answer says, after parsing; ``valid`` is the paper's recall criterion."""

    country: str | None = None
    country_code: str | None = None
    region: str | None = None
    city: str | None = None
    lat: float | None = None
    lon: float | None = None
    valid: bool = False
    problems: tuple[str, ...] = ()
    clues: tuple[tuple[str, str], ...] = ()  # (category, text) from clue-mode answers
    reasoning: str | None = None
    candidates: tuple[Candidate, ...] = ()

    @property
    def point(self) -> GpsPoint | None:
        if self.lat is None or self.lon is None:
            return None
        return GpsPoint(self.lat, self.lon)


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """Which model package a session ran on."""

    name: str
    version: str
    sha256: str
    path: str | None = None
    # What the package says it is not fit for: "untrained" (random weights) or "synthetic" (trained on
    # GeoSynth scenes only); None for a model trained on real photos, or one whose package is unknown.
    caveat: str | None = None


MODEL_CAVEATS = ("untrained", "synthetic")
# What a screen or a report says beside every answer of a model with that caveat.
CAVEAT_TEXT = {
    "untrained": "UNTRAINED model: random weights; its answers mean nothing.",
    "synthetic": ("SYNTHETIC demo model: trained on GeoSynth scenes only; its answers say nothing about "
                  "real photographs. Not for casework."),
}


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """The known true location of an evidence item (a GeoSynth demo scene's), for measuring answers."""

    evidence_sha256: str
    source: str
    lat: float
    lon: float
    country: str | None = None
    country_code: str | None = None
    region: str | None = None
    city: str | None = None

    def __post_init__(self) -> None:
        GpsPoint(self.lat, self.lon)  # validates the coordinates


@dataclass(frozen=True, slots=True)
class Session:
    id: int | None
    evidence_sha256: str
    mode: SessionMode
    model: ModelIdentity
    backend: str
    decoding: dict[str, Any]
    protocol_version: str
    created_at: datetime | None = None
    replay_of: int | None = None  # the session whose user turns this one re-ran, when it is a replay


@dataclass(frozen=True, slots=True)
class Turn:
    id: int | None
    session_id: int
    index: int
    prompt: str
    raw_answer: str
    prediction: Prediction
    hints: tuple[Hint, ...] = ()
    status: TurnStatus = TurnStatus.DONE
    protocol_version: str = ""
    prompt_tokens: int | None = None
    answer_tokens: int | None = None
    time_to_first_token_s: float | None = None
    total_time_s: float | None = None
    error: str | None = None
    created_at: datetime | None = None

    @property
    def number(self) -> int:
        """The turn as people count it, from 1 like sessions: what every screen, the CLI and JSON show.

        ``index`` (from 0) is the storage order only; no view shows it.
        """
        return self.index + 1


@dataclass(frozen=True, slots=True)
class Finding:
    """The analyst's own conclusion for one evidence item; every change is kept as a new version."""

    id: int | None
    evidence_sha256: str
    lat: float
    lon: float
    radius_km: float
    status: FindingStatus
    reasoning: str = ""
    version: int = 1
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        GpsPoint(self.lat, self.lon)  # validates the coordinates
        if not (self.radius_km >= 0 and math.isfinite(self.radius_km)):
            raise ValueError("a finding's radius must be a finite number of km, zero or more")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the append-only audit chain: ``hash`` covers ``prev_hash`` and the entry itself."""

    seq: int
    at: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str
