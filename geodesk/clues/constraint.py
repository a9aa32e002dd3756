"""The combined constraint: how the accepted clues together support or exclude each country.

Each clue gives every country a likelihood (its listed value, else its ``others`` value). A country's
score is the product over the clues (summed in logs), and its share is that score over all countries'
(a flat prior: every country equally likely before the clues). A clue whose likelihood for a country
is at most ``RULED_OUT`` rules it out; of the clues that lift a country above their baseline, the
most specific (backing the fewest countries) supports it. The result is one JSON document the map
page can draw: per-country features (Natural Earth borders) with their share and status, the spatial
clues (sun bands, named places) as their own features, and the leading countries with the clue that
supports or rules out each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

RULED_OUT = 0.05  # a likelihood at or below this rules the country out ("ruled out by: ...")
_LOG_FLOOR = math.log(1e-6)  # a hard exclusion (likelihood 0) still leaves a finite score to sort by
LEADING = 10


class WeightedClue(Protocol):
    """What the combination needs of a clue (a stored EngineClue or a fresh Finding)."""

    @property
    def countries(self) -> dict[str, float]: ...

    @property
    def others(self) -> float: ...

    @property
    def area(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Labelled:
    """A clue as the combination sees it: its id (None for an unsaved finding), label, category, weights."""

    id: int | None
    category: str
    text: str
    clue: WeightedClue

    def likelihood(self, code: str) -> float:
        return self.clue.countries.get(code, self.clue.others)

    @property
    def baseline(self) -> float:
        values = [*self.clue.countries.values(), self.clue.others]
        return max(min(values), 1e-6)


@dataclass(frozen=True, slots=True)
class CountryVerdict:
    code: str
    name: str
    share: float  # posterior share over all countries, flat prior
    log_score: float
    status: str  # "supported" | "neutral" | "ruled_out" | "contested" (backed by one, ruled out by another)
    supported_by: Labelled | None
    ruled_out_by: Labelled | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "country_code": self.code,
            "country": self.name,
            "share": round(self.share, 6),
            "status": self.status,
            "supported_by": None if self.supported_by is None else _ref(self.supported_by),
            "ruled_out_by": None if self.ruled_out_by is None else _ref(self.ruled_out_by),
            "reason": self.reason,
        }

    @property
    def reason(self) -> str:
        if self.ruled_out_by is not None and self.supported_by is not None:
            return f"supported by: {self.supported_by.text}; against: {self.ruled_out_by.text}"
        if self.ruled_out_by is not None:
            return f"ruled out by: {self.ruled_out_by.text}"
        if self.supported_by is not None:
            return f"supported by: {self.supported_by.text}"
        return "no clue speaks for or against it"


def _ref(c: Labelled) -> dict[str, Any]:
    return {"clue_id": c.id, "category": c.category, "text": c.text}


def combine(clues: Sequence[Labelled], countries: dict[str, str]) -> list[CountryVerdict]:
    """Every country (code -> display name) ranked by the clues, best first."""
    logs: dict[str, float] = {}
    for code in countries:
        total = 0.0
        for c in clues:
            p = c.likelihood(code)
            total += math.log(p) if p > 0 else _LOG_FLOOR
        logs[code] = total
    top = max(logs.values(), default=0.0)
    weights = {code: math.exp(v - top) for code, v in logs.items()}
    norm = sum(weights.values()) or 1.0
    # How many countries each clue backs (likelihood >= 0.5), the unlisted ones included.
    breadth = [sum(1 for code in countries if c.likelihood(code) >= 0.5) for c in clues]
    verdicts: list[CountryVerdict] = []
    for code, name in countries.items():
        ruled = [c for c in clues if c.likelihood(code) <= RULED_OUT]
        ruled_by = min(ruled, key=lambda c: (c.likelihood(code), c.id or 0)) if ruled else None
        # The most specific supporting clue: the one that backs the fewest countries, then the biggest lift.
        lifts = [
            (breadth[i], -c.likelihood(code) / c.baseline, c.id or 0, c)
            for i, c in enumerate(clues)
            if c.likelihood(code) > c.baseline * 1.5
        ]
        supported_by = min(lifts, key=lambda lc: lc[:3])[3] if lifts else None
        # Accepted clues can disagree (a foreign phone number on a local sign): a country both backed and
        # ruled out is "contested", and its reason names both clues.
        if ruled_by is not None:
            status = "contested" if supported_by is not None else "ruled_out"
        else:
            status = "supported" if supported_by is not None else "neutral"
        verdicts.append(
            CountryVerdict(code, name, weights[code] / norm, logs[code], status, supported_by, ruled_by)
        )
    verdicts.sort(key=lambda v: (-v.log_score, v.code))
    return verdicts


def constraint_document(
    clues: Sequence[Labelled],
    countries: dict[str, str],
    geometries: dict[str, dict[str, Any]] | None = None,
    leading: int = LEADING,
) -> dict[str, Any]:
    """The combined view: leading countries, per-country verdicts and a GeoJSON FeatureCollection.

    ``geometries`` (code -> GeoJSON geometry) gives the country features their shapes; a country
    without one gets a feature with a null geometry (valid GeoJSON) so its verdict is still there.
    """
    verdicts = combine(clues, countries)
    features: list[dict[str, Any]] = []
    for v in verdicts:
        if not clues:
            break
        geometry = (geometries or {}).get(v.code)
        features.append(
            {"type": "Feature", "geometry": geometry, "properties": {"layer": "country", **v.as_dict()}}
        )
    for c in clues:
        if c.clue.area is not None:
            features.append(
                {
                    "type": "Feature",
                    "geometry": c.clue.area,
                    "properties": {"layer": c.category, "clue_id": c.id, "text": c.text},
                }
            )
    return {
        "clues": [_ref(c) for c in clues],
        "leading": [v.as_dict() for v in verdicts[:leading]] if clues else [],
        "ruled_out": sorted(v.code for v in verdicts if v.status == "ruled_out"),
        "geojson": {"type": "FeatureCollection", "features": features},
    }


def contradictions(
    country_code: str | None, point: tuple[float, float] | None, clues: Sequence[Labelled]
) -> list[str]:
    """Sentences naming each clue a prediction contradicts: its country ruled out, or its point
    outside a clue's area (sun band)."""
    out: list[str] = []
    if country_code:
        for c in clues:
            if c.likelihood(country_code) <= RULED_OUT:
                out.append(f"{country_code} is ruled out by clue {c.id}: {c.text}")
    if point is not None:
        from shapely.geometry import Point, shape

        lat, lon = point
        for c in clues:
            area = c.clue.area
            if (
                c.category == "sun"
                and area is not None
                and not shape(area).buffer(0.5).contains(Point(lon, lat))
            ):
                out.append(
                    f"the predicted point ({lat:.3f}, {lon:.3f}) lies outside the sun band of clue {c.id}"
                )
    return out
