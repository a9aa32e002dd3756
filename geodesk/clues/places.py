"""Place names in text, matched against geodesk's gazetteer: a sign reading "Bergen 12 km" puts Bergen
(and the other Bergens, by population) on the map.

Every run of 1 to 4 words of a line is looked up as a city name or alternate name (GeoNames via
:class:`geodesk.geo.Gazetteer`), longest runs first, so "Saint Petersburg" wins over "Saint". Distances
("12 km", "3 mi"), numbers, short and lower-case words are skipped; a single common word is only
taken when the place it names is large (``MIN_POPULATION``), which keeps "Centre" or "Hauptbahnhof"
off the map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geodesk.geo.gazetteer import Gazetteer

MIN_POPULATION = 5000
MIN_LETTERS = 4  # a shorter word run is only a place when it is the whole line (an alternate name "Til")
MAX_WORDS = 4
MAX_PLACES = 5
_DISTANCE = re.compile(r"\d+(?:[.,]\d+)?\s*(?:km|mi|m|км|χλμ|كم|ק\"מ|ק״מ|कि\.मी\.|กม\.)(?!\w)", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’.-](?=[^\W\d_]))*")


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    words: str  # as written
    name: str  # the gazetteer's name
    country_code: str
    region: str | None
    lat: float
    lon: float
    population: int


def find_places(text: str, gazetteer: Gazetteer) -> list[PlaceMatch]:
    """The places named in one line of text: for the best-matching word run, its namesakes by population."""
    cleaned = _DISTANCE.sub(" ", text)
    words = _WORD.findall(cleaned)
    used = [False] * len(words)
    out: list[PlaceMatch] = []
    cities = gazetteer.cities
    for n in range(min(MAX_WORDS, len(words)), 0, -1):
        for start in range(len(words) - n + 1):
            if any(used[start : start + n]):
                continue
            phrase = " ".join(words[start : start + n])
            whole_line = n == len(words)
            if sum(ch.isalpha() for ch in phrase) < (2 if whole_line else MIN_LETTERS):
                continue
            if phrase[0].islower():  # cased scripts write place names with a capital ("til", "der")
                continue
            hits = [i for i, _ in cities.candidates(phrase)]
            if not hits:
                continue
            big = [i for i in hits if cities.population[i] >= MIN_POPULATION]
            keep = hits if whole_line and not big else big
            if not keep:
                continue
            for i in keep[:MAX_PLACES]:
                out.append(
                    PlaceMatch(
                        phrase,
                        cities.name[i],
                        cities.country_code[i],
                        cities.region[i],
                        cities.lat[i],
                        cities.lon[i],
                        cities.population[i],
                    )
                )
            used[start : start + n] = [True] * n
    return out
