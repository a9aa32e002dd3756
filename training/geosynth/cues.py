"""The GeoSynth cue table: every fact the scene generator draws, one entry per country and city.

Each entry is a fact about the real country (or city) as far as a 224-pixel street scene can show
it: which side cars drive on, the colours of the centre and edge lines, the script and spelling of
the place names on road signs, the licence plate colours (and the EU band), roadside bollards,
utility poles, the climate zone of each city (its palette and vegetation), how often its ground is
snow-covered in winter, and one landmark glyph per city (a made-up shape and colour, so that cities
are learnable from the skyline the way real landmarks are).

The fields shared with the country clue repository (``resources/clues/clues.json``: driving side,
line colours, scripts, plates) must agree with it; ``tests/training/geosynth/test_cues.py`` checks
every country present in both. The remaining fields (sign colours, bollards, poles, biomes, snow) are
ours; their sources are summarised in docs/adr/0014-geosynth.md.

Append new cities at the end of a country's list and new countries at the end of the table: the
landmark glyph of a city is derived from its position in the table (``CITIES``), so reordering would
give existing cities new glyphs and make older datasets disagree with newer ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

Side = Literal["left", "right"]
LineColour = Literal["white", "yellow"]

# Colour names used in the table, as RGB. Plate colours follow the repository's vocabulary.
RGB: dict[str, tuple[int, int, int]] = {
    "white": (240, 240, 236),
    "yellow": (246, 200, 28),
    "blue": (22, 66, 160),
    "green": (20, 110, 60),
    "black": (22, 22, 24),
    "red": (200, 30, 36),
    "brown": (110, 70, 40),
    "light_blue": (170, 200, 232),
    "orange": (232, 120, 20),
}


class Biome(enum.StrEnum):
    """Climate zone of a city: decides ground and sky palette and the kind of trees drawn."""

    TROPICAL = "tropical"  # palms, lush green
    SAVANNA = "savanna"  # dry grass, flat-topped acacias
    ARID = "arid"  # sand-coloured ground, cacti and shrubs
    MEDITERRANEAN = "mediterranean"  # dry yellow-green ground, olive trees
    TEMPERATE = "temperate"  # green ground, round deciduous trees
    BOREAL = "boreal"  # dark conifers and birches
    SUBPOLAR = "subpolar"  # sparse low conifers, grey-green tundra


# A plate colour in the repository's vocabulary: a colour name, "varies" (by state or province) or
# "none" (no front plate).
PlateColour = Literal["white", "yellow", "blue", "black", "varies", "none"]
# What "varies" draws from: the common background colours of state and provincial plates.
VARIES_PALETTE: tuple[str, ...] = ("white", "yellow", "light_blue", "blue", "black")


@dataclass(frozen=True, slots=True)
class Plates:
    """Plate background colours and the blue band: ``eu`` (left edge, EU stars and the country
    letters), ``national`` (left edge, not the EU's: Norway) or ``mercosur`` (along the top)."""

    front: PlateColour
    rear: PlateColour
    band: Literal["eu", "national", "mercosur"] | None = None
    band_code: str | None = None
    characters: str | None = None  # character colour when it is not the usual black / white

    @property
    def eu_band(self) -> bool:
        return self.band == "eu"


@dataclass(frozen=True, slots=True)
class SignStyle:
    """The main direction / town sign of ordinary roads: board, text and border colours."""

    board: str
    text: str
    border: str | None = None


@dataclass(frozen=True, slots=True)
class City:
    """One city. ``name`` is looked up in the gazetteer (country-filtered); ``sign`` is how road signs
    write it (the country's script); ``sign_second`` is a second line: the romanised name (Japan,
    Korea, Thailand, India) or the other language of a bilingual sign (Ireland, Wales, Finland)."""

    name: str
    sign: str
    biome: Biome
    snow: float  # chance that a winter scene has snow on the ground
    sign_second: str | None = None


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166-1 alpha-2, as the repository and OSV-5M
    driving_side: Side
    centre_line: LineColour | None  # None: no reliable colour (the generator draws white or none)
    edge_line: LineColour | None
    centre_double: bool  # two parallel centre lines (North America, Korea)
    scripts: tuple[str, ...]  # the repository's script names
    sign_script: str  # font key of the sign's first line (training.geosynth.fonts)
    sign_style: SignStyle
    distance_unit: Literal["km", "mi"]
    plates: Plates
    bollard: str | None  # bollard style id (BOLLARD_STYLES), None: no typical roadside post drawn
    pole: Literal["wood", "concrete"] | None  # typical utility pole, None: no overhead lines drawn
    cities: tuple[City, ...]


# Bollard styles, each a real roadside post design (repository clues *-bollards).
BOLLARD_STYLES: dict[str, str] = {
    "band_top": "white posts with a black band at the top",
    "band_slanted": "white posts with a slanted black band near the top",
    "band_below_top": "white posts with a black band just below the top",
    "band_red_reflector": "white posts with a black band and a red reflector",
}

T, SAV, AR, MED, TEM, BOR, SUB = (Biome.TROPICAL, Biome.SAVANNA, Biome.ARID, Biome.MEDITERRANEAN,
                                  Biome.TEMPERATE, Biome.BOREAL, Biome.SUBPOLAR)
_GREEN = SignStyle("green", "white")
_BLUE = SignStyle("blue", "white")
_WHITE = SignStyle("white", "black", "black")


def _eu(code: str) -> Plates:
    return Plates("white", "white", "eu", code)


COUNTRIES: tuple[Country, ...] = (
    Country("US", "right", "yellow", "white", True, ("Latin",), "sans", _GREEN, "mi",
            Plates("varies", "varies"), None, "wood", (
                City("Seattle", "Seattle", TEM, 0.1), City("Denver", "Denver", AR, 0.5),
                City("Miami", "Miami", T, 0.0), City("Boston", "Boston", TEM, 0.6))),
    Country("CA", "right", "yellow", "white", False, ("Latin",), "sans", _GREEN, "km",
            Plates("varies", "varies"), None, "wood", (
                City("Vancouver", "Vancouver", TEM, 0.1), City("Calgary", "Calgary", TEM, 0.7),
                City("Toronto", "Toronto", TEM, 0.6), City("Montréal", "Montréal", BOR, 0.8))),
    Country("MX", "right", None, "white", False, ("Latin",), "sans", _GREEN, "km",
            Plates("varies", "varies"), None, "concrete", (
                City("Monterrey", "Monterrey", AR, 0.0), City("Guadalajara", "Guadalajara", SAV, 0.0),
                City("Mérida", "Mérida", T, 0.0))),
    Country("BR", "right", "yellow", "white", False, ("Latin",), "sans", _GREEN, "km",
            Plates("white", "white", "mercosur", "BR"), None, "concrete", (
                City("Manaus", "Manaus", T, 0.0), City("Salvador", "Salvador", T, 0.0),
                City("São Paulo", "São Paulo", T, 0.0), City("Porto Alegre", "Porto Alegre", TEM, 0.0))),
    Country("AR", "right", None, None, False, ("Latin",), "sans", _GREEN, "km",
            Plates("white", "white", "mercosur", "RA"), None, None, (
                City("Buenos Aires", "Buenos Aires", TEM, 0.0), City("Mendoza", "Mendoza", AR, 0.05),
                City("Ushuaia", "Ushuaia", SUB, 0.7))),
    Country("CL", "right", None, None, False, ("Latin",), "sans", _GREEN, "km",
            Plates("white", "white"), None, None, (
                City("Antofagasta", "Antofagasta", AR, 0.0), City("Santiago", "Santiago", MED, 0.05),
                City("Punta Arenas", "Punta Arenas", SUB, 0.5))),
    Country("GB", "left", "white", "white", False, ("Latin",), "sans", SignStyle("green", "yellow"), "mi",
            Plates("white", "yellow"), None, None, (
                City("London", "London", TEM, 0.05), City("Edinburgh", "Edinburgh", TEM, 0.15),
                City("Cardiff", "Caerdydd", TEM, 0.05, "Cardiff"), City("Belfast", "Belfast", TEM, 0.1))),
    Country("IE", "left", "white", "yellow", False, ("Latin",), "sans", _GREEN, "km",
            _eu("IRL"), None, None, (
                City("Dublin", "Baile Átha Cliath", TEM, 0.05, "Dublin"),
                City("Cork", "Corcaigh", TEM, 0.02, "Cork"),
                City("Galway", "Gaillimh", TEM, 0.03, "Galway"))),
    Country("FR", "right", "white", "white", False, ("Latin",), "sans", SignStyle("white", "black", "red"),
            "km", _eu("F"), "band_slanted", None, (
                City("Lille", "Lille", TEM, 0.1), City("Lyon", "Lyon", TEM, 0.15),
                City("Marseille", "Marseille", MED, 0.02), City("Bordeaux", "Bordeaux", TEM, 0.03))),
    Country("DE", "right", "white", "white", False, ("Latin",), "sans", SignStyle("yellow", "black", "black"),
            "km", _eu("D"), "band_top", None, (
                City("Hamburg", "Hamburg", TEM, 0.3), City("Munich", "München", TEM, 0.5),
                City("Köln", "Köln", TEM, 0.2), City("Berlin", "Berlin", TEM, 0.4))),
    Country("ES", "right", "white", "white", False, ("Latin",), "sans", _WHITE, "km",
            _eu("E"), None, None, (
                City("Madrid", "Madrid", MED, 0.05), City("Barcelona", "Barcelona", MED, 0.0),
                City("Sevilla", "Sevilla", MED, 0.0), City("Bilbao", "Bilbao", TEM, 0.02))),
    Country("PT", "right", "white", "white", False, ("Latin",), "sans", _WHITE, "km",
            _eu("P"), None, None, (
                City("Porto", "Porto", MED, 0.0), City("Lisbon", "Lisboa", MED, 0.0),
                City("Faro", "Faro", MED, 0.0))),
    Country("IT", "right", "white", "white", False, ("Latin",), "sans", _BLUE, "km",
            _eu("I"), "band_below_top", None, (
                City("Milan", "Milano", TEM, 0.2), City("Rome", "Roma", MED, 0.02),
                City("Naples", "Napoli", MED, 0.01), City("Palermo", "Palermo", MED, 0.0))),
    Country("NL", "right", "white", "white", False, ("Latin",), "sans", _BLUE, "km",
            Plates("yellow", "yellow", "eu", "NL"), None, None, (
                City("Amsterdam", "Amsterdam", TEM, 0.15), City("Rotterdam", "Rotterdam", TEM, 0.1),
                City("Groningen", "Groningen", TEM, 0.2))),
    Country("SE", "right", "white", "white", False, ("Latin",), "sans", _BLUE, "km",
            _eu("S"), None, None, (
                City("Stockholm", "Stockholm", BOR, 0.6), City("Gothenburg", "Göteborg", TEM, 0.3),
                City("Kiruna", "Kiruna", SUB, 0.95))),
    Country("NO", "right", "yellow", "white", False, ("Latin",), "sans", _BLUE, "km",
            Plates("white", "white", "national", "N"), None, None, (
                City("Oslo", "Oslo", BOR, 0.7), City("Bergen", "Bergen", TEM, 0.3),
                City("Tromsø", "Tromsø", SUB, 0.95))),
    Country("FI", "right", "yellow", "white", False, ("Latin",), "sans", _BLUE, "km",
            _eu("FIN"), None, None, (
                City("Helsinki", "Helsinki", BOR, 0.7, "Helsingfors"), City("Tampere", "Tampere", BOR, 0.8),
                City("Oulu", "Oulu", BOR, 0.9))),
    Country("PL", "right", "white", "white", False, ("Latin",), "sans", _BLUE, "km",
            _eu("PL"), "band_red_reflector", None, (
                City("Warsaw", "Warszawa", TEM, 0.5), City("Kraków", "Kraków", TEM, 0.5),
                City("Gdańsk", "Gdańsk", TEM, 0.4))),
    Country("RU", "right", "white", "white", False, ("Cyrillic",), "sans", _BLUE, "km",
            Plates("white", "white"), None, None, (
                City("Moscow", "Москва", BOR, 0.9), City("Saint Petersburg", "Санкт-Петербург", BOR, 0.8),
                City("Novosibirsk", "Новосибирск", BOR, 0.95), City("Vladivostok", "Владивосток", TEM, 0.6))),
    Country("JP", "left", "white", "white", False, ("Kanji", "Hiragana", "Katakana"), "cjk-jp", _BLUE, "km",
            Plates("white", "white", characters="green"), None, "concrete", (
                City("Sapporo", "札幌", TEM, 0.9, "Sapporo"), City("Tokyo", "東京", TEM, 0.05, "Tokyo"),
                City("Osaka", "大阪", TEM, 0.02, "Osaka"), City("Fukuoka", "福岡", TEM, 0.02, "Fukuoka"))),
    Country("KR", "right", "yellow", "white", True, ("Hangul",), "cjk-kr", _BLUE, "km",
            Plates("white", "white"), None, None, (
                City("Seoul", "서울", TEM, 0.4, "Seoul"), City("Busan", "부산", TEM, 0.05, "Busan"),
                City("Daegu", "대구", TEM, 0.1, "Daegu"))),
    Country("TH", "left", None, None, False, ("Thai",), "thai", _BLUE, "km",
            Plates("white", "white"), None, None, (
                City("Bangkok", "กรุงเทพฯ", T, 0.0, "Bangkok"),
                City("Chiang Mai", "เชียงใหม่", T, 0.0, "Chiang Mai"),
                City("Phuket", "ภูเก็ต", T, 0.0, "Phuket"))),
    Country("IN", "left", None, None, False, ("Devanagari", "Latin"), "devanagari", _GREEN, "km",
            Plates("white", "white"), None, None, (
                City("Delhi", "दिल्ली", AR, 0.0, "Delhi"), City("Mumbai", "मुंबई", T, 0.0, "Mumbai"),
                City("Jaipur", "जयपुर", AR, 0.0, "Jaipur"), City("Lucknow", "लखनऊ", SAV, 0.0, "Lucknow"))),
    Country("AU", "left", "white", "white", False, ("Latin",), "sans", _GREEN, "km",
            Plates("varies", "varies"), None, None, (
                City("Sydney", "Sydney", TEM, 0.0), City("Perth", "Perth", MED, 0.0),
                City("Darwin", "Darwin", T, 0.0), City("Melbourne", "Melbourne", TEM, 0.0))),
    Country("ZA", "left", "white", "yellow", False, ("Latin",), "sans", _GREEN, "km",
            Plates("varies", "varies"), None, None, (
                City("Johannesburg", "Johannesburg", SAV, 0.02), City("Cape Town", "Cape Town", MED, 0.0),
                City("Durban", "Durban", T, 0.0))),
    Country("KE", "left", None, None, False, ("Latin",), "sans", _GREEN, "km",
            Plates("white", "yellow"), None, None, (
                City("Nairobi", "Nairobi", SAV, 0.0), City("Mombasa", "Mombasa", T, 0.0),
                City("Kisumu", "Kisumu", SAV, 0.0))),
)

BY_CODE: dict[str, Country] = {c.code: c for c in COUNTRIES}
# Every (country, city) in table order: the index decides the landmark glyph.
CITIES: tuple[tuple[Country, City], ...] = tuple((c, city) for c in COUNTRIES for city in c.cities)

LANDMARK_SHAPES: tuple[str, ...] = (
    "tower", "dome", "pyramid", "arch", "obelisk", "wheel", "pagoda", "twin_towers", "spire", "star",
)
LANDMARK_COLOURS: tuple[str, ...] = (
    "red", "orange", "gold", "green", "teal", "blue", "purple", "magenta", "black",
)
LANDMARK_RGB: dict[str, tuple[int, int, int]] = {
    "red": (196, 32, 40), "orange": (236, 124, 24), "gold": (214, 170, 30), "green": (34, 130, 50),
    "teal": (20, 140, 140), "blue": (36, 70, 190), "purple": (112, 50, 160), "magenta": (206, 40, 150),
    "black": (30, 30, 34),
}


@dataclass(frozen=True, slots=True)
class Glyph:
    shape: str
    colour: str

    @property
    def description(self) -> str:
        return f"a {self.colour} {self.shape.replace('_', ' ')}"


def landmark_glyph(code: str, city_name: str) -> Glyph:
    """The city's landmark: shape cycles fastest, so neighbouring cities differ in shape."""
    for index, (country, city) in enumerate(CITIES):
        if country.code == code and city.name == city_name:
            return Glyph(LANDMARK_SHAPES[index % len(LANDMARK_SHAPES)],
                         LANDMARK_COLOURS[(index // len(LANDMARK_SHAPES)) % len(LANDMARK_COLOURS)])
    raise KeyError(f"{city_name} ({code}) is not in the GeoSynth cue table")


def check_table() -> list[str]:
    """Internal consistency problems of the table (empty when sound); the tests assert it is empty."""
    problems: list[str] = []
    if len(CITIES) > len(LANDMARK_SHAPES) * len(LANDMARK_COLOURS):
        problems.append("more cities than distinct landmark glyphs")
    seen_glyphs: dict[Glyph, str] = {}
    for country, city in CITIES:
        glyph = landmark_glyph(country.code, city.name)
        if glyph in seen_glyphs:
            problems.append(f"{city.name} shares its landmark with {seen_glyphs[glyph]}")
        seen_glyphs[glyph] = city.name
        if not 0.0 <= city.snow <= 1.0:
            problems.append(f"{city.name}: snow must be a probability")
    codes = [c.code for c in COUNTRIES]
    if len(set(codes)) != len(codes):
        problems.append("a country appears twice")
    for country in COUNTRIES:
        if country.bollard is not None and country.bollard not in BOLLARD_STYLES:
            problems.append(f"{country.code}: unknown bollard style {country.bollard}")
        if len(country.cities) < 3:
            problems.append(f"{country.code}: needs at least 3 cities")
    return problems
