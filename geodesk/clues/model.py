"""What the clue engine finds: plain data, shared by the analysers, the store and the services.

A :class:`Finding` is one deterministic observation before it is stored: a category, the text an
analyst reads, where on the image it was seen, which analyser produced it, how sure that analyser is,
and what it says about places. The place part is a likelihood over countries (``countries``: ISO
alpha-2 code -> how likely the observation is if the photo was taken there, 0..1, relative), the
likelihood for every country not listed (``others``: 0 means "rules them out", a small value means
"unlikely but possible", 1 means "says nothing about them"), and optionally a GeoJSON geometry
(``area``) for observations that are spatial (a sun band, a named place).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from geodesk.domain.model import ClueSource, Region


@dataclass(frozen=True, slots=True)
class Finding:
    category: str  # text, script, language, phone, domain, currency, place, timezone, sun
    text: str
    source: ClueSource
    confidence: float  # 0..1: how sure the analyser is that it read / measured this right
    countries: dict[str, float] = field(default_factory=dict)
    others: float = 1.0
    area: dict[str, Any] | None = None  # GeoJSON geometry (WGS84 lon/lat)
    region: Region | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0 or not math.isfinite(self.confidence):
            raise ValueError(f"a finding's confidence must be within 0..1, got {self.confidence}")
        if not 0.0 <= self.others <= 1.0:
            raise ValueError(
                f"a finding's likelihood for other countries must be within 0..1, got {self.others}"
            )
        for code, value in self.countries.items():
            if not (len(code) == 2 and code.isupper()) or not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"country likelihoods are ISO alpha-2 codes with values in 0..1; got {code}={value}"
                )

    def likelihood(self, country_code: str) -> float:
        return self.countries.get(country_code, self.others)

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "text": self.text,
            "source": self.source.value,
            "confidence": round(self.confidence, 4),
            "countries": {k: round(v, 4) for k, v in sorted(self.countries.items(), key=lambda kv: -kv[1])},
            "others": round(self.others, 4),
            "area": self.area,
            "box": None if self.region is None else self.region.as_list(),
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of text the OCR read: its characters, its box on the original image, its score."""

    text: str
    region: Region | None
    score: float
