"""The prediction history of a session as plain rows: what each turn asked, answered and how far it moved.

The desktop app shows these rows in a table and a plot; tests and exports call the same functions, so
"km moved per turn" has one definition. Distances are geodesk.geo's one haversine (R = 6371 km), the
formula DESIGN.md fixes for every metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from geodesk.domain.model import Evidence, Finding, GpsPoint, Hint, HintKind, Prediction, Turn
from geodesk.geo.distance import haversine_km

if TYPE_CHECKING:
    from geodesk.store.turn_flags import TurnFlag


def point_distance_km(a: GpsPoint, b: GpsPoint) -> float:
    """Great-circle distance in km between two WGS84 points."""
    return haversine_km(a.lat, a.lon, b.lat, b.lon)


@dataclass(frozen=True, slots=True)
class Reference:
    """The point turns are measured against: the analyst's finding when there is one, else the EXIF GPS."""

    point: GpsPoint
    label: str  # "finding" or "EXIF"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    turn_index: int
    hint: str
    prediction: str
    point: GpsPoint | None
    km_moved: float | None  # from the previous turn that had a point; None for the first or pointless
    km_from_reference: float | None
    seconds: float | None
    status: str
    valid: bool


def reference_point(evidence: Evidence | None, finding: Finding | None) -> Reference | None:
    if finding is not None:
        return Reference(GpsPoint(finding.lat, finding.lon), "finding")
    if evidence is not None and evidence.gps is not None:
        return Reference(evidence.gps, "EXIF")
    return None


def describe_hint(hint: Hint) -> str:
    """One line per hint, in the words the analyst used to give it."""
    text = hint.text.strip()
    match hint.kind:
        case HintKind.QUESTION:
            return f"+Q: {text}"
        case HintKind.QA:
            return f"+QA: {text} → {(hint.answer or '').strip()}"
        case HintKind.PRIOR:
            return f"prior: in {text}"
        case HintKind.EXCLUDE:
            return f"exclude: not in {text}"
        case HintKind.CORRECT:
            return f"correction: {text}" if text else "correction: the prediction is wrong"
        case HintKind.REGION:
            where = "" if hint.region is None else " @" + ",".join(str(v) for v in hint.region.as_list())
            return f"region note{where}: {text}"
        case HintKind.CLUES:
            return f"clues: {len(hint.clue_ids)} sent back" + (f" ({text})" if text else "")
    return f"{hint.kind}: {text}"  # pragma: no cover - every kind is matched above


def describe_prediction(prediction: Prediction) -> str:
    names = [n for n in (prediction.city, prediction.region, prediction.country) if n]
    where = ", ".join(names) if names else "no place named"
    if prediction.lat is not None and prediction.lon is not None:
        where += f" ({prediction.lat:.4f}, {prediction.lon:.4f})"
    if not prediction.valid:
        where += " [invalid answer]"
    return where


def describe_flag(flag: TurnFlag) -> str:
    """One line per contradiction flag: the clue it is against (its id, category and text now) and why."""
    clue = f"clue {flag.clue_id}"
    if flag.clue_category or flag.clue_text:
        clue += f" ({flag.clue_category}: {flag.clue_text})"
    return f"against accepted {clue}: {flag.text}"


def flags_by_turn(flags: Iterable[TurnFlag]) -> dict[int, list[str]]:
    """Turn id -> the described flags that count (their clue accepted or edited), in the given order.
    The history table, the map's turn markers and the case report all read a turn's flags from here."""
    out: dict[int, list[str]] = {}
    for flag in flags:
        if flag.counts:
            out.setdefault(flag.turn_id, []).append(describe_flag(flag))
    return out


def km_moved(turns: Sequence[Turn]) -> list[float | None]:
    """For each turn, km from the last earlier turn that predicted a point (None when there is none)."""
    moved: list[float | None] = []
    last: GpsPoint | None = None
    for turn in turns:
        point = _point(turn)
        moved.append(None if point is None or last is None else point_distance_km(last, point))
        if point is not None:
            last = point
    return moved


def history_rows(
    turns: Sequence[Turn], evidence: Evidence | None = None, finding: Finding | None = None
) -> list[HistoryRow]:
    ordered = sorted(turns, key=lambda t: t.index)
    ref = reference_point(evidence, finding)
    rows: list[HistoryRow] = []
    for turn, moved in zip(ordered, km_moved(ordered), strict=True):
        point = _point(turn)
        rows.append(
            HistoryRow(
                turn_index=turn.index,
                hint="; ".join(describe_hint(h) for h in turn.hints) or "no hint",
                prediction=describe_prediction(turn.prediction)
                if turn.status == "done"
                else turn.status.value,
                point=point,
                km_moved=moved,
                km_from_reference=(
                    None if point is None or ref is None else point_distance_km(point, ref.point)
                ),
                seconds=turn.total_time_s,
                status=turn.status.value,
                valid=turn.prediction.valid,
            )
        )
    return rows


def _point(turn: Turn) -> GpsPoint | None:
    try:
        return turn.prediction.point
    except ValueError:  # a parsed answer with out-of-range coordinates has no point to plot
        return None
