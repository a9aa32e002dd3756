"""The GeoSynth world: the cue table's cities resolved through geodesk's gazetteer.

Ground truth (country name, region, city, coordinates) comes from the gazetteer's city entry, the
same data the answer parser and the metrics normalise names with, so a correct answer scores as
correct. ``consistent`` says whether a place could have produced what a scene shows; the generator
uses it to count how ambiguous a scene is and the dialog data to pick a plausible first guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from training.geosynth.cues import (
    CITIES,
    VARIES_PALETTE,
    City,
    Country,
    Glyph,
    landmark_glyph,
)


class GeoSynthError(Exception):
    """Bad input or an unusable setup, worded so a person can act on it."""


@dataclass(frozen=True, slots=True)
class Place:
    country: Country
    city: City
    country_name: str  # the gazetteer's name: what answers say ("United Kingdom")
    region: str | None
    city_name: str  # the gazetteer's spelling
    lat: float
    lon: float
    glyph: Glyph

    @property
    def key(self) -> str:
        return f"{self.country.code}:{self.city.name}"

    @property
    def north(self) -> bool:
        return self.lat >= 0.0

    def winter(self, month: int) -> bool:
        return month in ((12, 1, 2) if self.north else (6, 7, 8))


@dataclass(frozen=True, slots=True)
class World:
    places: tuple[Place, ...]

    def by_country(self, code: str) -> tuple[Place, ...]:
        return tuple(p for p in self.places if p.country.code == code)

    def place(self, code: str, city_name: str) -> Place:
        for p in self.places:
            if p.country.code == code and p.city.name == city_name:
                return p
        raise KeyError(f"{city_name} ({code}) is not part of the GeoSynth world")

    def candidates(self, facts: Mapping[str, Any]) -> tuple[Place, ...]:
        """Every place consistent with the facts a scene shows."""
        return tuple(p for p in self.places if consistent(p, facts))


def load_world(gazetteer: Any | None = None) -> World:
    """Resolve every table city through the gazetteer; GeoSynthError names any city it does not know."""
    if gazetteer is None:
        from geodesk.geo import default_gazetteer

        gazetteer = default_gazetteer()
    places: list[Place] = []
    unknown: list[str] = []
    for country, city in CITIES:
        ref = gazetteer.city(city.name, country.code)
        country_ref = gazetteer.country(country.code)
        if ref is None or country_ref is None:
            unknown.append(f"{city.name} ({country.code})")
            continue
        places.append(Place(country, city, str(country_ref.name), ref.region, str(ref.name), float(ref.lat),
                            float(ref.lon), landmark_glyph(country.code, city.name)))
    if unknown:
        raise GeoSynthError(f"the gazetteer does not know {', '.join(unknown)}; fix the GeoSynth cue table "
                            "(training/geosynth/cues.py) or the gazetteer data")
    return World(tuple(places))


def _plate_matches(spec: str, drawn: str | None) -> bool:
    if drawn is None:  # that side of a car was not in view
        return True
    if spec == "varies":
        return drawn in VARIES_PALETTE or drawn == "none"
    return spec == drawn


def consistent(place: Place, facts: Mapping[str, Any]) -> bool:
    """Could ``place`` have produced these drawn facts? (cue kind -> value, as ``ScenePlan.facts``)."""
    country, city = place.country, place.city
    for cue, value in facts.items():
        if cue == "driving_side" and value != country.driving_side:
            return False
        if cue == "plates" and not (_plate_matches(country.plates.front, value.get("front"))
                                    and _plate_matches(country.plates.rear, value.get("rear"))
                                    and value.get("band") == country.plates.band):
            return False
        if cue == "centre_line" and country.centre_line not in (None, value):
            return False
        if cue == "edge_lines" and country.edge_line not in (None, value):
            return False
        if cue in ("sign", "landmark") and value.get("place") != place.key:
            return False
        if cue == "bollards" and value != country.bollard:
            return False
        if cue == "poles" and value != country.pole:
            return False
        if cue == "vegetation" and value != city.biome.value:
            return False
        if cue == "snow" and not city.snow > 0.0:
            return False
    return True
