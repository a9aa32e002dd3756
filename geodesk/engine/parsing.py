"""Turn a model's raw answer into a ``Prediction``: lenient, explicit about what it repaired, never raising.

Models do not always follow the format they were asked for. Real answers wrap the JSON in prose or
code fences, write Python dicts, trailing commas, unquoted keys, numbers as strings, "48°51'N",
swapped or impossible coordinates, nested objects, or no JSON at all. ``parse_answer`` recovers what it
can, lists every repair and doubt as a *problem* (``"code: detail"``, codes in ``Problem``), and
decides ``valid``.

``valid`` reproduces the "recall" of the GaGA paper (section V-B, Tables I and III): recall is the share
of the model's answers that are usable for evaluation, because an MLLM is not guaranteed to answer the
question at all. An answer is **valid** when, from the answer itself (not from names filled in later):

1. it gives a coordinate pair that is finite and inside lat -90..90, lon -180..180 (after undoing an
   obvious lat/lon swap and applying hemisphere letters), or
2. a structured answer (JSON, or ``Country: ...`` lines) names a country that is not a placeholder
   ("unknown", "N/A", "<country name>" ...). With a normalizer the name need not resolve: an
   unrecognised country is a wrong answer, scored as such, not a missing one; or
3. a free-text answer (no structure) mentions a country that the normalizer confirms. Without a
   normalizer free text never counts: its place names are guesses from capitalised words.

Every other answer (empty, refusals, placeholders, only a city, coordinates out of range) is not valid.
Admin-level accuracy and distances are computed elsewhere (metrics) for valid answers only.

The parser never raises, for any input (the property tests feed it arbitrary text); the raw text is
always kept in ``ParsedAnswer.raw``.
"""

from __future__ import annotations

import enum
import itertools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from geodesk.domain import Prediction, SessionMode
from geodesk.engine.prompts import OTHER_CATEGORY, clue_category_id

# Long answers: only the last part can hold the final JSON; bounds the quadratic worst case of the
# brace scanner on adversarial input (thousands of unmatched '{').
MAX_SCAN_CHARS = 100_000
MAX_START_ATTEMPTS = 200
MAX_DEPTH = 40
MAX_CLUES = 100


class Problem(enum.StrEnum):
    """Stable codes that start every problem string (``"code: detail"``)."""

    EMPTY = "empty"  # nothing but whitespace
    NO_ANSWER = "no_answer"  # no JSON, no key/value lines, no place found in the text
    FREE_TEXT = "free_text"  # fields taken from prose, not from a structured answer
    REPAIRED_JSON = "repaired_json"  # JSON needed repairs (quotes, commas, keys, literals)
    TRUNCATED = "truncated"  # JSON cut off (max tokens): the incomplete last value was dropped
    SEVERAL_ANSWERS = "several_answers"  # more than one answer object: the last complete one was used
    SEVERAL_VALUES = "several_values"  # a list where one name was expected: the first was used
    SWAPPED_COORDINATES = "swapped_coordinates"
    COORDINATES_OUT_OF_RANGE = "coordinates_out_of_range"
    COORDINATES_NOT_FINITE = "coordinates_not_finite"
    INCOMPLETE_COORDINATES = "incomplete_coordinates"  # only one of lat / lon
    UNREADABLE_COORDINATE = "unreadable_coordinate"  # a lat / lon value that is not a number
    HEMISPHERE_CONFLICT = "hemisphere_conflict"  # e.g. lat "2.35 E", or "-48.8 N"
    MISSING_COORDINATES = "missing_coordinates"
    COORDINATES_FROM_NAMES = "coordinates_from_names"  # filled from the named city (option)
    MISSING_COUNTRY = "missing_country"
    UNKNOWN_COUNTRY = "unknown_country"  # the normalizer did not recognise it; spelling kept
    UNKNOWN_REGION = "unknown_region"
    UNKNOWN_CITY = "unknown_city"
    NORMALIZER_ERROR = "normalizer_error"  # the normalizer raised; names kept as written
    MISSING_CLUES = "missing_clues"  # clue mode answer without clues
    NOT_TEXT = "not_text"  # the raw answer was not a str


class AnswerSource(enum.StrEnum):
    JSON = "json"
    KEY_VALUE = "key_value"
    FREE_TEXT = "free_text"
    NONE = "none"


# --------------------------------------------------------------------------------------------------
# The normalizer protocol (geodesk.geo's gazetteer satisfies it)
# --------------------------------------------------------------------------------------------------


class CountryLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...


class RegionLike(Protocol):
    @property
    def name(self) -> str: ...


class CityLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...


class NameNormalizer(Protocol):
    """Resolves place names as models write them to canonical ones; None when unknown."""

    def country(self, name_or_code: str, /) -> CountryLike | None: ...
    def region(self, name: str, country_code: str, /) -> RegionLike | None: ...
    def city(self, name: str, country_code: str, /) -> CityLike | None: ...


# --------------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """One parsed answer: the domain ``Prediction`` plus how it was obtained.

    ``answer_text`` is the span the fields came from (the JSON object, or the key/value lines).
    """

    raw: str
    prediction: Prediction
    source: AnswerSource
    answer_text: str | None = None
    coordinates_from_names: bool = False

    @property
    def valid(self) -> bool:
        return self.prediction.valid

    @property
    def problems(self) -> tuple[str, ...]:
        return self.prediction.problems

    @property
    def problem_codes(self) -> frozenset[str]:
        return problem_codes(self.prediction.problems)

    def has_problem(self, code: Problem | str) -> bool:
        return str(code) in self.problem_codes


def problem_codes(problems: Iterable[str]) -> frozenset[str]:
    """The codes of ``"code: detail"`` problem strings."""
    return frozenset(p.split(":", 1)[0].strip() for p in problems)


# --------------------------------------------------------------------------------------------------
# Lenient JSON
# --------------------------------------------------------------------------------------------------


class _IncompleteError(Exception):
    """Reached the end of the text inside a value."""


class _BadError(Exception):
    """Not JSON-like at all from this position."""


_CLOSERS = {'"': '"', "'": "'", "“": "”", "”": "”", "‘": "’", "’": "’", "`": "`"}
_LITERALS: dict[str, Any] = {
    "true": True, "false": False, "null": None, "none": None, "nil": None,
    "nan": math.nan, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf,
    "inf": math.inf, "-inf": -math.inf,
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
_BARE_KEY = re.compile(r"[^:=,{}\[\]\n\"'“”‘’]+")
_BARE_VALUE = re.compile(r"[^,{}\[\]\n]+")


class _Lenient:
    """A forgiving JSON reader: single / curly quotes, unquoted keys and values, trailing or missing
    commas, comments, Python literals, NaN. With ``partial`` it accepts text cut off at the end and
    drops the value that was being written (a truncated "Par" must not become a city)."""

    def __init__(self, text: str, pos: int, partial: bool) -> None:
        self.text = text
        self.pos = pos
        self.partial = partial
        self.truncated = False

    def _ws(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif text.startswith("//", self.pos) or ch == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                self.pos = n if end < 0 else end + 2
            else:
                return

    def _eof(self) -> bool:
        return self.pos >= len(self.text)

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _BadError("too deep")
        self._ws()
        if self._eof():
            raise _IncompleteError
        ch = self.text[self.pos]
        if ch == "{":
            return self._object(depth)
        if ch == "[":
            return self._array(depth)
        if ch in _CLOSERS:
            return self._string(ch)
        return self._bare_value()

    def _container_end(self) -> bool:
        """In partial mode the end of the text closes every open container."""
        if self._eof():
            if self.partial:
                self.truncated = True
                return True
            raise _IncompleteError
        return False

    def _object(self, depth: int) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            self._ws()
            if self._container_end():
                return result
            ch = self.text[self.pos]
            if ch == "}":
                self.pos += 1
                return result
            if ch == ",":
                self.pos += 1
                continue
            if ch in _CLOSERS:
                try:
                    key = self._string(ch)
                except _IncompleteError:
                    if self.partial:
                        self.truncated = True
                        return result
                    raise
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if match is None:
                    raise _BadError("expected a key")
                key = match.group().strip()
                self.pos = match.end()
            self._ws()
            if self._container_end():
                return result
            if self.text[self.pos] not in ":=":
                raise _BadError("expected ':'")
            self.pos += 1
            try:
                result[str(key)] = self.value(depth + 1)
            except _IncompleteError:
                if self.partial:
                    self.truncated = True
                    return result
                raise
            self._ws()
            if self._container_end():
                return result
            ch = self.text[self.pos]
            if ch == ",":
                self.pos += 1
            elif ch != "}" and ch not in _CLOSERS:
                raise _BadError("expected ',' or '}'")

    def _array(self, depth: int) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        while True:
            self._ws()
            if self._container_end():
                return result
            ch = self.text[self.pos]
            if ch == "]":
                self.pos += 1
                return result
            if ch == ",":
                self.pos += 1
                continue
            try:
                result.append(self.value(depth + 1))
            except _IncompleteError:
                if self.partial:
                    self.truncated = True
                    return result
                raise
            self._ws()
            if self._container_end():
                return result
            ch = self.text[self.pos]
            if ch == ",":
                self.pos += 1
            elif ch != "]" and ch not in _CLOSERS and ch not in "{[":
                raise _BadError("expected ',' or ']'")

    def _string(self, opener: str) -> str:
        """A quoted string. A quote closes it only when followed by a delimiter, so apostrophes
        ('Côte d'Ivoire') and unescaped inner quotes survive."""
        closer = _CLOSERS[opener]
        closers = {closer, opener} if opener != closer else {closer}
        text, n = self.text, len(self.text)
        i = self.pos + 1
        out: list[str] = []
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                nxt = text[i + 1]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                    out.append(chr(int(text[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            if ch in closers:
                j = i + 1
                while j < n and text[j] in " \t\r":
                    j += 1
                if j >= n or text[j] in ":}]\n=" or (text[j] == "," and self._next_is_item(j + 1)):
                    self.pos = i + 1
                    return "".join(out)
            out.append(ch)
            i += 1
        raise _IncompleteError

    def _next_is_item(self, pos: int) -> bool:
        """After 'quote, comma': does a new key or item follow? ('"Ausfahrt", so German' -> no)."""
        rest = self.text[pos : pos + 200].lstrip()
        if not rest or rest[0] in "\"'“‘{[}]-+0123456789":
            return True
        return re.match(r"[^\W\d][\w -]{0,40}\s*[:=]", rest) is not None or rest[:4].casefold() in (
            "true", "fals", "null", "none", "nan,", "nan}", "nan]")

    def _bare_value(self) -> Any:
        match = _BARE_VALUE.match(self.text, self.pos)
        if match is None:
            raise _BadError("unexpected character")
        self.pos = match.end()
        if self.partial and self._eof():
            raise _IncompleteError  # a bare value at the very end may be cut short ("2.3" of "2.35")
        word = match.group().strip()
        lowered = word.casefold()
        if lowered in _LITERALS:
            return _LITERALS[lowered]
        try:
            return int(word) if re.fullmatch(r"[+-]?\d+", word) else float(word)
        except ValueError:
            return word


@dataclass(slots=True)
class _Found:
    start: int
    end: int
    obj: dict[str, Any]
    repaired: bool
    truncated: bool


def _find_objects(text: str) -> list[_Found]:
    """Every top-level JSON-like object in ``text``, in order (strict first, then lenient)."""
    found: list[_Found] = []
    decoder = json.JSONDecoder()
    pos = 0
    attempts = 0
    first_incomplete: int | None = None
    while attempts < MAX_START_ATTEMPTS:
        start = text.find("{", pos)
        if start < 0:
            break
        attempts += 1
        try:
            obj, end = decoder.raw_decode(text, start)
            if isinstance(obj, dict):
                found.append(_Found(start, end, obj, False, False))
                pos, first_incomplete = end, None
                continue
        except (ValueError, RecursionError):
            pass
        reader = _Lenient(text, start, partial=False)
        try:
            value = reader.value(0)
        except _IncompleteError:
            if first_incomplete is None:
                first_incomplete = start
            pos = start + 1
            continue
        except (_BadError, RecursionError, ValueError, OverflowError):
            pos = start + 1
            continue
        if isinstance(value, dict) and value:
            found.append(_Found(start, reader.pos, value, True, False))
            pos, first_incomplete = reader.pos, None
        else:
            pos = start + 1
    if first_incomplete is not None:
        # The text ends inside an object (generation hit its token limit): keep what was complete.
        reader = _Lenient(text, first_incomplete, partial=True)
        try:
            value = reader.value(0)
        except (_IncompleteError, _BadError, RecursionError, ValueError, OverflowError):
            value = None
        if isinstance(value, dict) and value:
            found.append(_Found(first_incomplete, len(text), value, True, reader.truncated))
    return found


# --------------------------------------------------------------------------------------------------
# Field lookup
# --------------------------------------------------------------------------------------------------


def _norm_key(key: str) -> str:
    k = re.sub(r"\(.*?\)", "", key.casefold()).strip(" \t*_:'\"`.")
    k = re.sub(r"\s*([/,&])\s*", r"\1", k)
    return re.sub(r"[\s\-]+", "_", k)


_COUNTRY_KEYS = ("country", "country_name", "countryname", "nation", "predicted_country")
_CODE_KEYS = ("country_code", "countrycode", "iso", "iso2", "iso_code", "cc", "country_iso", "iso_3166")
_REGION_KEYS = ("region", "state", "province", "admin1", "admin_1", "region_name", "state_province",
                "state/province", "state_or_province", "prefecture", "subdivision", "administrative_area",
                "predicted_region", "oblast", "county")
_CITY_KEYS = ("city", "town", "city_name", "locality", "municipality", "village", "city/town",
              "city_or_town", "predicted_city", "settlement")
_LAT_KEYS = ("lat", "latitude", "lat_deg", "latitude_deg", "predicted_lat", "predicted_latitude")
_LON_KEYS = ("lon", "lng", "long", "longitude", "lon_deg", "longitude_deg", "predicted_lon",
             "predicted_longitude")
_PAIR_KEYS = ("coordinates", "coordinate", "coords", "coord", "gps", "gps_coordinates", "latlon",
              "lat_lon", "lat/lon", "lat,lon", "latlng", "lat_lng", "lat/lng", "lat_long", "lat/long",
              "latitude/longitude", "latitude,longitude", "latitude_longitude", "position", "point", "geo",
              "location", "geolocation", "center", "predicted_coordinates", "gps_location")
_PLACE_KEYS = ("location", "place", "answer", "prediction", "predicted_location", "final_answer", "address")
_CLUE_KEYS = ("clues", "clue", "clue_list", "geographic_clues", "geographical_clues", "visual_clues",
              "key_clues", "observations", "evidence", "features", "hints", "indicators")
_REASON_KEYS = ("reasoning", "explanation", "rationale", "justification", "analysis", "answer", "reason",
                "thoughts", "thinking", "summary", "description")
_LOCATION_KEYS = frozenset(_COUNTRY_KEYS + _REGION_KEYS + _CITY_KEYS + _LAT_KEYS + _LON_KEYS + _PAIR_KEYS)


def _field_map(obj: dict[str, Any]) -> dict[str, Any]:
    """Keys of ``obj`` and of dicts nested in it (breadth first, shallow keys win), normalised."""
    fields: dict[str, Any] = {}
    queue: list[tuple[dict[str, Any], int]] = [(obj, 0)]
    while queue:
        current, depth = queue.pop(0)
        for key, value in current.items():
            fields.setdefault(_norm_key(str(key)), value)
            if isinstance(value, dict) and depth < 4:
                queue.append((value, depth + 1))
    return fields


def _first(fields: dict[str, Any], keys: Sequence[str], *, dicts: bool = False) -> tuple[str, Any] | None:
    """The first of ``keys`` present with a usable value (nested dicts are already flattened into
    ``fields``, so a dict value is skipped unless ``dicts``: {"country": {"name", "code"}})."""
    for key in keys:
        value = fields.get(key)
        if value is not None and (dicts or not isinstance(value, dict)):
            return key, value
    return None


def _is_answer_like(obj: dict[str, Any]) -> bool:
    return any(key in _LOCATION_KEYS for key in _field_map(obj))


def _is_complete(obj: dict[str, Any]) -> bool:
    fields = _field_map(obj)
    has_country = _first(fields, _COUNTRY_KEYS) is not None
    has_pair = (_first(fields, _LAT_KEYS) is not None and _first(fields, _LON_KEYS) is not None) or (
        _first(fields, _PAIR_KEYS) is not None
    )
    return has_country or has_pair


# --------------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_HEMI = r"(?:north|south|east|west|[NSEWnsew])(?![A-Za-z])"
_COORD = re.compile(
    rf"(?<![A-Za-z\d.])(?P<pre>{_HEMI})?\s*(?P<sign>[-+−–])?\s*(?P<deg>{_NUM})\s*(?:°|º|˚|deg(?:rees?)?\b|d\b)?\s*"
    rf"(?:(?P<min>{_NUM})\s*(?:'|′|’|‘|min\b|m\b)\s*)?"
    rf"(?:(?P<sec>{_NUM})\s*(?:\"|″|”|''|′′|sec\b|s\b)\s*)?"
    rf"(?P<post>{_HEMI})?"
)


@dataclass(frozen=True, slots=True)
class _Coord:
    value: float
    axis: str | None  # "lat" / "lon" when a hemisphere letter says so
    conflict: bool = False  # a minus sign disagreeing with the hemisphere letter


def _hemisphere(letter: str | None) -> tuple[str | None, int]:
    if not letter:
        return None, 1
    c = letter[0].casefold()
    return ("lat" if c in "ns" else "lon"), (-1 if c in "sw" else 1)


def _coord_from_match(m: re.Match[str]) -> _Coord | None:
    pre, post = m.group("pre"), m.group("post")
    if pre and post:
        return None
    axis, hemi_sign = _hemisphere(pre or post)
    deg = float(m.group("deg"))
    minutes = float(m.group("min")) if m.group("min") else 0.0
    seconds = float(m.group("sec")) if m.group("sec") else 0.0
    if minutes >= 60 or seconds >= 60:
        return None
    value = deg + minutes / 60 + seconds / 3600
    negative = m.group("sign") in ("-", "−", "–")
    conflict = False
    if axis is not None:
        conflict = negative and hemi_sign > 0
        value = value * hemi_sign
    elif negative:
        value = -value
    return _Coord(value, axis, conflict)


def _coord(value: Any) -> _Coord | None:
    """One coordinate from a JSON value: number, numeric string, '48.8 N', "48°51'24\\"N"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _Coord(float(value), None)
    if isinstance(value, list) and len(value) == 1:
        return _coord(value[0])
    if not isinstance(value, str):
        return None
    text = value.strip().strip("\"'`").strip()
    if not text:
        return None
    try:
        return _Coord(float(text), None)
    except ValueError:
        pass
    if re.fullmatch(r"[-+]?\d+,\d+", text):  # decimal comma: "48,8566"
        return _Coord(float(text.replace(",", ".")), None)
    m = _COORD.fullmatch(text)
    if m is not None:
        return _coord_from_match(m)
    hits = [c for c in (_coord_from_match(m) for m in _COORD.finditer(text) if m.group("deg")) if c]
    return hits[0] if len(hits) == 1 else None


def _pair_from_text(text: str) -> tuple[_Coord, _Coord] | None:
    hits = [c for c in (_coord_from_match(m) for m in _COORD.finditer(text)) if c is not None]
    if len(hits) < 2:
        return None
    return hits[0], hits[1]


def _pair(value: Any) -> tuple[_Coord, _Coord] | None:
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        a, b = _coord(value[0]), _coord(value[1])
        return (a, b) if a is not None and b is not None else None
    if isinstance(value, str):
        return _pair_from_text(value)
    return None


def _order_by_hemisphere(a: _Coord, b: _Coord, problems: list[str]) -> tuple[_Coord, _Coord]:
    """(lat, lon) given as (a, b): hemisphere letters decide when they disagree with the order."""
    if (a.axis == "lon" and b.axis in ("lat", None)) or (b.axis == "lat" and a.axis is None):
        problems.append(f"{Problem.SWAPPED_COORDINATES}: hemisphere letters put longitude first; swapped")
        return b, a
    if a.axis == "lon" or b.axis == "lat":
        problems.append(f"{Problem.HEMISPHERE_CONFLICT}: hemisphere letters contradict the lat/lon order")
    return a, b


def _check_range(lat: float, lon: float, problems: list[str]) -> tuple[float, float] | None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        problems.append(f"{Problem.COORDINATES_NOT_FINITE}: ({lat}, {lon})")
        return None
    if abs(lat) > 90 and abs(lon) <= 90 and abs(lat) <= 180:
        problems.append(
            f"{Problem.SWAPPED_COORDINATES}: lat {lat} is outside -90..90 but lon {lon} is not; swapped"
        )
        lat, lon = lon, lat
    if abs(lat) > 90 or abs(lon) > 180:
        problems.append(f"{Problem.COORDINATES_OUT_OF_RANGE}: ({lat}, {lon}) is not on the globe; dropped")
        return None
    return lat, lon


def _geojson_point(obj: Any, depth: int = 0) -> tuple[Any, Any] | None:
    if not isinstance(obj, dict) or depth > 4:
        return None
    coords = obj.get("coordinates")
    if str(obj.get("type", "")).casefold() == "point" and isinstance(coords, list) and len(coords) >= 2:
        return coords[1], coords[0]  # GeoJSON order is [lon, lat]
    for value in obj.values():
        hit = _geojson_point(value, depth + 1)
        if hit is not None:
            return hit
    return None


def _separate_fields(
    lat_item: tuple[str, Any] | None, lon_item: tuple[str, Any] | None, problems: list[str]
) -> tuple[_Coord, _Coord] | None:
    lat_c = _coord(lat_item[1]) if lat_item else None
    lon_c = _coord(lon_item[1]) if lon_item else None
    if lat_c is None and lon_c is None and lat_item is not None and lon_item is None:
        both = _pair(lat_item[1])  # "lat": "48.85, 2.35": both numbers in one field
        if both is not None:
            return both
    for item, parsed in ((lat_item, lat_c), (lon_item, lon_c)):
        if item is not None and parsed is None:
            problems.append(f"{Problem.UNREADABLE_COORDINATE}: {item[0]}={str(item[1])[:60]!r}")
    if lat_c is None or lon_c is None:
        if (lat_c is None) != (lon_c is None):
            problems.append(f"{Problem.INCOMPLETE_COORDINATES}: only one of latitude / longitude")
        return None
    if lat_c.axis == "lon" and lon_c.axis == "lat":
        problems.append(f"{Problem.SWAPPED_COORDINATES}: hemisphere letters show lat and lon swapped")
        return lon_c, lat_c
    if lat_c.axis == "lon" or lon_c.axis == "lat":
        problems.append(f"{Problem.HEMISPHERE_CONFLICT}: a hemisphere letter names the other axis")
    return lat_c, lon_c


def _coordinates(
    obj: dict[str, Any], fields: dict[str, Any], problems: list[str]
) -> tuple[float, float] | None:
    """The answer's (lat, lon): separate lat/lon fields, else a GeoJSON point, else a pair field."""
    lat_item, lon_item = _first(fields, _LAT_KEYS), _first(fields, _LON_KEYS)
    pair: tuple[_Coord, _Coord] | None = None
    if lat_item is not None or lon_item is not None:
        pair = _separate_fields(lat_item, lon_item, problems)
    if pair is None:
        geo = _geojson_point(obj)
        if geo is not None:
            a, b = _coord(geo[0]), _coord(geo[1])
            pair = (a, b) if a is not None and b is not None else None
    if pair is None:
        for key in _PAIR_KEYS:
            if key in fields and not isinstance(fields[key], dict):
                pair = _pair(fields[key])
                if pair is not None:
                    pair = _order_by_hemisphere(pair[0], pair[1], problems)
                    break
    if pair is None:
        return None
    if pair[0].conflict or pair[1].conflict:
        problems.append(
            f"{Problem.HEMISPHERE_CONFLICT}: a minus sign and a N/E letter disagree; the letter won"
        )
    return _check_range(pair[0].value, pair[1].value, problems)


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------

_PLACEHOLDERS = frozenset({
    "", "unknown", "n/a", "na", "none", "null", "nil", "-", "--", "?", "??", "...", "unsure", "not sure",
    "uncertain", "unclear", "undetermined", "not applicable", "cannot determine", "can't determine",
    "unknown country", "unknown region", "unknown city", "not specified", "unspecified", "tbd", "x",
    "country", "region", "city", "country name", "city name", "region name",
})


def _clean_name(text: str) -> str | None:
    name = " ".join(text.replace("**", "").split()).strip(" \t\"'`“”‘’.,;:")
    if name.casefold() in _PLACEHOLDERS or re.fullmatch(r"<[^>]*>|\[[^\]]*\]", name):
        return None
    return name if any(ch.isalpha() for ch in name) else None


def _name(value: Any, what: str, problems: list[str]) -> tuple[str | None, str | None]:
    """(name, code) from a JSON value: a string, a list of strings, or {"name", "code"}."""
    if isinstance(value, str):
        return _clean_name(value), None
    if isinstance(value, list):
        names = [n for n in (_name(v, what, []) for v in value) if n[0] is not None]
        if len(names) > 1:
            problems.append(f"{Problem.SEVERAL_VALUES}: {len(names)} values for {what}; used the first")
        return names[0] if names else (None, None)
    if isinstance(value, dict):
        fields = {_norm_key(str(k)): v for k, v in value.items()}
        name_v = _first(fields, ("name", "value", what, "label"))
        code_v = _first(fields, ("code", "iso", "iso2", "country_code"))
        name = _clean_name(name_v[1]) if name_v and isinstance(name_v[1], str) else None
        code = code_v[1].strip() if code_v and isinstance(code_v[1], str) else None
        return name, code
    return None, None


def _safe(call: Any, *args: str) -> tuple[Any, str | None]:
    try:
        return call(*args), None
    except Exception as exc:  # a broken normalizer must not break parsing
        return None, f"{Problem.NORMALIZER_ERROR}: {type(exc).__name__}: {str(exc)[:120]}"


@dataclass(slots=True)
class _Names:
    country: str | None = None
    country_code: str | None = None
    region: str | None = None
    city: str | None = None
    city_ref: Any = None


def _normalise(names: _Names, normalizer: NameNormalizer | None, problems: list[str]) -> _Names:
    """Canonical names through the normalizer; the model's spelling stays where nothing matches."""
    if normalizer is None:
        if names.country_code is not None:
            code = names.country_code.strip().upper()
            names.country_code = code if re.fullmatch(r"[A-Z]{2}", code) else None
        return names
    ref = None
    tried: list[str] = []
    last_part = names.country.rsplit(",", 1)[-1].strip() if names.country and "," in names.country else None
    for candidate in (names.country, names.country_code, last_part):
        if not candidate or candidate in tried:
            continue
        tried.append(candidate)
        ref, error = _safe(normalizer.country, candidate)
        if error:
            problems.append(error)
            return names
        if ref is not None:
            break
    if ref is not None:
        names.country, names.country_code = str(ref.name), str(ref.code)
    else:
        if names.country is not None:
            problems.append(
                f"{Problem.UNKNOWN_COUNTRY}: {names.country!r} was not recognised; kept as written"
            )
        names.country_code = None
        return names
    code = names.country_code
    if names.region:
        region, error = _safe(normalizer.region, names.region, code)
        if error:
            problems.append(error)
        elif region is None:
            problems.append(f"{Problem.UNKNOWN_REGION}: {names.region!r} is not a known region of {code}")
        else:
            names.region = str(region.name)
    if names.city:
        city, error = _safe(normalizer.city, names.city, code)
        if error:
            problems.append(error)
        elif city is None:
            problems.append(f"{Problem.UNKNOWN_CITY}: {names.city!r} is not a known place in {code}")
        else:
            names.city, names.city_ref = str(city.name), city
    return names


# --------------------------------------------------------------------------------------------------
# Clues and reasoning
# --------------------------------------------------------------------------------------------------

_CLUE_TEXT_KEYS = ("text", "clue", "description", "detail", "details", "observation", "evidence", "value",
                   "content", "reason", "explanation", "note")
_CLUE_CAT_KEYS = ("category", "type", "kind", "aspect", "clue_type", "class", "topic")


def _clue_from_string(text: str) -> tuple[str, str] | None:
    text = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", text).strip()
    if not text:
        return None
    head, sep, tail = text.partition(":")
    if sep and tail.strip() and len(head) <= 40:
        category = clue_category_id(head.strip(" *[]()"))
        if category != OTHER_CATEGORY:
            return category, tail.strip()
    bracket = re.match(r"\[([^\]]{1,40})\]\s*(.+)", text, re.S)
    if bracket:
        return clue_category_id(bracket.group(1)), bracket.group(2).strip()
    return OTHER_CATEGORY, text


def _clues(value: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(value, str):
        parts = [p for p in re.split(r"\n|;", value) if p.strip()]
        out = [c for c in (_clue_from_string(p) for p in parts) if c]
    elif isinstance(value, dict):
        for key, item in value.items():
            texts = item if isinstance(item, list) else [item]
            category = clue_category_id(str(key))
            out += [(category, str(t).strip()) for t in texts if isinstance(t, (str, int, float))]
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                clue = _clue_from_string(item)
                if clue:
                    out.append(clue)
            elif isinstance(item, dict):
                fields = {_norm_key(str(k)): v for k, v in item.items()}
                text_v = _first(fields, _CLUE_TEXT_KEYS)
                cat_v = _first(fields, _CLUE_CAT_KEYS)
                if text_v is not None and isinstance(text_v[1], str):
                    category = clue_category_id(str(cat_v[1])) if cat_v is not None else OTHER_CATEGORY
                    out.append((category, text_v[1].strip()))
                elif len(item) == 1:  # {"architecture": "red tile roofs"}
                    ((key, text),) = item.items()
                    if isinstance(text, str):
                        out.append((clue_category_id(str(key)), text.strip()))
    return [(c, t) for c, t in out if t][:MAX_CLUES]


_FENCE = re.compile(r"```[a-zA-Z]*")


def _prose(text: str) -> str | None:
    cleaned = re.sub(r"\n[ \t]*(?:\n[ \t]*)+", "\n\n", _FENCE.sub("", text)).strip()
    return cleaned or None


# --------------------------------------------------------------------------------------------------
# Key/value lines and free text
# --------------------------------------------------------------------------------------------------

_KV_LINE = re.compile(
    r"^\s*(?:[-*•>]\s*|\d+[.)]\s*)?(?:\*\*|__)?\s*(?P<key>[A-Za-z][A-Za-z ()/,_-]{0,40}?)\s*(?:\*\*|__)?\s*"
    r"[:=]\s*(?:\*\*|__)?\s*(?P<value>.+?)\s*(?:\*\*|__)?\s*$",
    re.M,
)


def _key_values(text: str) -> tuple[dict[str, Any], str] | None:
    """``Country: France`` / ``**Latitude:** 48.85`` lines as a dict, when they name a location field."""
    fields: dict[str, Any] = {}
    lines: list[str] = []
    for m in _KV_LINE.finditer(text):
        key = _norm_key(m.group("key"))
        if key in _LOCATION_KEYS and key not in fields:
            fields[key] = m.group("value")
            lines.append(m.group(0).strip())
    if not fields:
        return None
    return fields, "\n".join(lines)


_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
_CONNECTORS = frozenset(
    {"de", "del", "da", "do", "di", "la", "le", "of", "the", "du", "van", "von", "y", "al"}
)
_STOP = frozenset({
    "i", "i'm", "it", "it's", "in", "the", "this", "that", "these", "a", "an", "my", "based", "however",
    "there", "here", "given", "so", "and", "or", "but", "if", "on", "at", "as", "its", "we", "you", "he",
    "she", "they", "image", "photo", "picture", "latitude", "longitude", "country", "city", "region",
    "answer", "json", "note", "also", "maybe", "perhaps", "probably", "likely", "overall", "finally",
})


def _phrases(text: str) -> list[tuple[int, int, str]]:
    """Runs of capitalised words ('Rio de Janeiro', 'United States'), with their spans."""
    out: list[tuple[int, int, str]] = []
    words = list(_WORD.finditer(text))
    i = 0
    while i < len(words):
        w = words[i].group()
        if not w[0].isupper() or w.casefold().strip(".") in _STOP:
            i += 1
            continue
        start, end, j = words[i].start(), words[i].end(), i + 1
        while j < len(words) and text[end:words[j].start()] in (" ", "-"):
            nxt = words[j].group()
            if nxt[0].isupper() and nxt.casefold() not in _STOP:
                end, j = words[j].end(), j + 1
            elif nxt in _CONNECTORS and j + 1 < len(words) and words[j + 1].group()[0].isupper() \
                    and text[words[j].end():words[j + 1].start()] == " ":
                end, j = words[j + 1].end(), j + 2
            else:
                break
        phrase = text[start:end].rstrip(".")
        if len(phrase) >= 4 or re.fullmatch(r"[A-Z]{2,3}", phrase):
            out.append((start, end, phrase))
        i = j
    return out


def _free_text(text: str, normalizer: NameNormalizer | None, problems: list[str]) -> _Names:
    """Names from prose: "... in Paris, France" -> city Paris, country France (confirmed only by the
    normalizer). The first phrase the normalizer accepts as a country wins; the phrase just before
    it, separated by a comma, is the city (or region)."""
    names = _Names()
    phrases = _phrases(text)
    comma_pairs = [
        (a, b) for a, b in itertools.pairwise(phrases) if re.fullmatch(r",\s*", text[a[1]:b[0]])
    ]
    if normalizer is None:
        if comma_pairs:
            (_, _, city), (_, _, country) = comma_pairs[0]
            names.city, names.country = city, country
        return names
    for index, (_, _, phrase) in enumerate(phrases):
        ref, error = _safe(normalizer.country, phrase)
        if error:
            problems.append(error)
            return names
        if ref is None:
            continue
        names.country, names.country_code = str(ref.name), str(ref.code)
        if index > 0 and re.fullmatch(r",\s*", text[phrases[index - 1][1]:phrases[index][0]]):
            before = phrases[index - 1][2]
            city, city_error = _safe(normalizer.city, before, names.country_code)
            region, region_error = (
                (None, None) if city else _safe(normalizer.region, before, names.country_code)
            )
            for err in (city_error, region_error):
                if err:
                    problems.append(err)
            if city is not None:
                names.city, names.city_ref = str(city.name), city
            elif region is not None:
                names.region = str(region.name)
        return names
    return names


_PROSE_PAIR = re.compile(
    rf"(?P<a>[-+−]?{_NUM}\s*°?\s*{_HEMI})\s*,?\s*(?P<b>[-+−]?{_NUM}\s*°?\s*{_HEMI})"
    rf"|\(\s*(?P<c>[-+−]?\d{{1,3}}\.\d+)\s*,\s*(?P<d>[-+−]?\d{{1,3}}\.\d+)\s*\)"
)


def _prose_coordinates(text: str, problems: list[str]) -> tuple[float, float] | None:
    """Coordinates written in prose: '48.85° N, 2.35° E' or '(48.8566, 2.3522)'; the last one wins."""
    matches = list(_PROSE_PAIR.finditer(text))
    if not matches:
        return None
    m = matches[-1]
    if m.group("a"):
        a, b = _coord(m.group("a")), _coord(m.group("b"))
        if a is None or b is None:
            return None
        lat_c, lon_c = _order_by_hemisphere(a, b, problems)
        return _check_range(lat_c.value, lon_c.value, problems)
    lat, lon = (float(m.group(g).replace("−", "-")) for g in ("c", "d"))
    return _check_range(lat, lon, problems)


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def _as_text(raw: object, problems: list[str]) -> str:
    if isinstance(raw, str):
        return raw
    problems.append(f"{Problem.NOT_TEXT}: got {type(raw).__name__}")
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw).decode("utf-8", errors="replace")
    try:
        return "" if raw is None else str(raw)
    except Exception:
        return ""


def parse_answer(
    raw: object,
    normalizer: NameNormalizer | None = None,
    mode: SessionMode | str = SessionMode.DIRECT,
    *,
    fill_coordinates_from_names: bool = False,
) -> ParsedAnswer:
    """Parse one model answer. Never raises; see the module docstring for ``valid``.

    Order of sources: the last complete JSON answer object; else ``Key: value`` lines; else free
    text (coordinates with hemisphere letters or in parentheses, place names via the normalizer).
    ``mode``: in clue mode an answer without clues gets a ``missing_clues`` problem (clues are read in
    every mode). ``fill_coordinates_from_names``: when the answer has no coordinates but names a city
    the normalizer knows, use the city's coordinates and record ``coordinates_from_names``; off by
    default, because invented coordinates would flatter distance metrics.
    """
    problems: list[str] = []
    try:
        text = _as_text(raw, problems)
        return _parse(text, normalizer, mode, fill_coordinates_from_names, problems)
    except Exception as exc:  # the last line of defence: a bug here must not lose a turn
        problems.append(f"{Problem.NO_ANSWER}: parser error {type(exc).__name__}: {str(exc)[:200]}")
        safe_raw = raw if isinstance(raw, str) else ""
        return ParsedAnswer(
            raw=safe_raw, prediction=Prediction(problems=tuple(problems)), source=AnswerSource.NONE
        )


def _parse(
    text: str,
    normalizer: NameNormalizer | None,
    mode: SessionMode | str,
    fill: bool,
    problems: list[str],
) -> ParsedAnswer:
    clue_mode = str(mode) == SessionMode.CLUES.value
    if not text.strip():
        problems.append(f"{Problem.EMPTY}: the answer is empty")
        if clue_mode:
            problems.append(f"{Problem.MISSING_CLUES}: no clues in a clue-mode answer")
        return ParsedAnswer(
            raw=text, prediction=Prediction(problems=tuple(problems)), source=AnswerSource.NONE
        )
    scan_from = max(0, len(text) - MAX_SCAN_CHARS)
    scanned = text[scan_from:]
    objects = _find_objects(scanned)
    answers = [o for o in objects if _is_answer_like(o.obj)]
    complete = [o for o in answers if _is_complete(o.obj)]
    chosen = complete[-1] if complete else (answers[-1] if answers else None)

    source = AnswerSource.NONE
    answer_text: str | None = None
    names = _Names()
    coords: tuple[float, float] | None = None
    clues: list[tuple[str, str]] = []
    reasoning: str | None = None

    if chosen is not None:
        source = AnswerSource.JSON
        answer_text = scanned[chosen.start:chosen.end]
        if len(answers) > 1:
            problems.append(
                f"{Problem.SEVERAL_ANSWERS}: {len(answers)} answer objects; used the last complete one"
            )
        if chosen.truncated:
            problems.append(
                f"{Problem.TRUNCATED}: the JSON answer is cut off; its unfinished last value was dropped"
            )
        elif chosen.repaired:
            problems.append(f"{Problem.REPAIRED_JSON}: the JSON answer was not strict JSON and was repaired")
        fields = _field_map(chosen.obj)
        coords = _coordinates(chosen.obj, fields, problems)
        names = _names_from_fields(fields, problems)
        # Prose around the answer (other JSON objects removed) is the model's explanation.
        pieces, last = [], 0
        for obj in objects:
            pieces.append(scanned[last:obj.start])
            last = obj.end
        prose = _prose("\n".join([*pieces, scanned[last:]]))
        reason_v = _first(fields, _REASON_KEYS)
        reasoning = reason_v[1].strip() if reason_v and isinstance(reason_v[1], str) and reason_v[1].strip() \
            else prose
        # Clues from the chosen object, else from any earlier object (a clue list sent separately).
        for obj in [chosen, *reversed(objects)]:
            clue_v = _first(_field_map(obj.obj), _CLUE_KEYS, dicts=True)
            if clue_v is not None:
                clues = _clues(clue_v[1])
                if clues:
                    break
    else:
        kv = _key_values(scanned)
        if kv is not None:
            source = AnswerSource.KEY_VALUE
            fields, answer_text = kv
            coords = _coordinates(fields, fields, problems)
            names = _names_from_fields(fields, problems)
            reasoning = _prose(scanned)
        else:
            source = AnswerSource.FREE_TEXT
            coords = _prose_coordinates(scanned, problems)
            reasoning = _prose(scanned)
        if objects:
            clue_v = _first(_field_map(objects[-1].obj), _CLUE_KEYS, dicts=True)
            clues = _clues(clue_v[1]) if clue_v is not None else []
        if not clues:
            clues = _clue_lines(scanned)

    if source is AnswerSource.FREE_TEXT:
        names = _free_text(scanned, normalizer, problems)
        if names.country is None and coords is None:
            source = AnswerSource.NONE
            problems.append(f"{Problem.NO_ANSWER}: no JSON answer, no location fields and no place found")
        else:
            problems.append(
                f"{Problem.FREE_TEXT}: no structured answer; names and coordinates taken from prose"
            )
    else:
        names = _normalise(names, normalizer, problems)

    if source is AnswerSource.FREE_TEXT:
        country_counts = names.country_code is not None and normalizer is not None
    else:
        country_counts = names.country is not None
    valid = coords is not None or country_counts

    from_names = False
    if coords is None:
        ref = names.city_ref
        if fill and ref is not None and _finite_pair(ref):
            coords = (float(ref.lat), float(ref.lon))
            from_names = True
            problems.append(f"{Problem.COORDINATES_FROM_NAMES}: no coordinates in the answer; used those of "
                            f"{names.city} from the gazetteer")
        elif source is not AnswerSource.NONE:
            hint = f"; {names.city} is known, fill_coordinates_from_names would use it" if ref else ""
            problems.append(f"{Problem.MISSING_COORDINATES}: the answer gives no usable coordinates{hint}")
    if names.country is None and source is not AnswerSource.NONE:
        problems.append(f"{Problem.MISSING_COUNTRY}: the answer names no country")
    if clue_mode and not clues:
        problems.append(f"{Problem.MISSING_CLUES}: no clues in a clue-mode answer")

    prediction = Prediction(
        country=names.country,
        country_code=names.country_code,
        region=names.region,
        city=names.city,
        lat=None if coords is None else coords[0],
        lon=None if coords is None else coords[1],
        valid=valid,
        problems=tuple(problems),
        clues=tuple(clues),
        reasoning=reasoning,
    )
    return ParsedAnswer(raw=text, prediction=prediction, source=source, answer_text=answer_text,
                        coordinates_from_names=from_names)


def _finite_pair(ref: Any) -> bool:
    try:
        lat, lon = float(ref.lat), float(ref.lon)
    except (TypeError, ValueError, AttributeError):
        return False
    return math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180


def _names_from_fields(fields: dict[str, Any], problems: list[str]) -> _Names:
    names = _Names()
    country_v = _first(fields, _COUNTRY_KEYS, dicts=True)
    if country_v is not None:
        names.country, names.country_code = _name(country_v[1], "country", problems)
    code_v = _first(fields, _CODE_KEYS)
    if code_v is not None and isinstance(code_v[1], str) and names.country_code is None:
        names.country_code = code_v[1].strip() or None
    region_v = _first(fields, _REGION_KEYS)
    if region_v is not None:
        names.region = _name(region_v[1], "region", problems)[0]
    city_v = _first(fields, _CITY_KEYS)
    if city_v is not None:
        names.city = _name(city_v[1], "city", problems)[0]
    if names.country is None and names.city is None:
        # {"location": "Paris, Île-de-France, France"}: a place string in a location-like field.
        for key in _PLACE_KEYS:
            value = fields.get(key)
            if isinstance(value, str) and _pair_from_text(value) is None:
                parts = [p for p in (_clean_name(x) for x in value.split(",")) if p]
                if parts:
                    names.country = parts[-1]
                    names.city = parts[0] if len(parts) >= 2 else None
                    names.region = parts[1] if len(parts) >= 3 else None
                    break
    return names


def _clue_lines(text: str) -> list[tuple[str, str]]:
    """Clues written as a bullet list in prose: '- Architecture: red tile roofs'."""
    out = []
    for line in text.splitlines():
        if re.match(r"^\s*(?:[-*•]|\d+[.)])\s+", line):
            clue = _clue_from_string(line.replace("**", ""))
            if clue and clue[0] != OTHER_CATEGORY:
                out.append(clue)
    return out[:MAX_CLUES]


# --------------------------------------------------------------------------------------------------
# Evaluation and teacher answers
# --------------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def parse_choice(raw: object, candidates: Sequence[str]) -> str | None:
    """The candidate a HIER answer picks (see ``prompts.hier_*_prompt``), or None. Never raises.

    Accepts the exact name, its number in the list, a JSON object with the name, or a sentence that
    mentions it (the earliest mention wins; 'Niger' is not found inside 'Nigeria').
    """
    try:
        if not isinstance(raw, str) or not candidates:
            return None
        text = raw.strip()
        folded = {_fold(c).strip(): c for c in candidates}
        bare = _fold(text).strip(" \t\n.*\"'`“”")
        if bare in folded:
            return folded[bare]
        number = re.fullmatch(r"\(?(\d{1,4})[.)]?(?:\s+(.*))?", bare, re.S)
        if number:
            rest = (number.group(2) or "").strip(" .")
            if rest in folded:
                return folded[rest]
            index = int(number.group(1))
            if 1 <= index <= len(candidates) and not rest:
                return candidates[index - 1]
        for found in reversed(_find_objects(text)):
            for value in _field_map(found.obj).values():
                if isinstance(value, str) and _fold(value).strip() in folded:
                    return folded[_fold(value).strip()]
        haystack = _fold(text)
        best: tuple[int, int, str] | None = None
        for key, original in folded.items():
            if not key:
                continue
            m = re.search(rf"(?<!\w){re.escape(key)}(?!\w)", haystack)
            if m and (best is None or (m.start(), -len(key)) < (best[0], best[1])):
                best = (m.start(), -len(key), original)
        return best[2] if best else None
    except Exception:
        return None


@dataclass(frozen=True, slots=True)
class SelectedClue:
    """One clue kept by the rephrasing teacher: its 1-based number in the country list."""

    index: int
    category: str
    text: str


def parse_clue_selection(raw: object, count: int) -> tuple[SelectedClue, ...]:
    """The clues a teacher kept in answer to ``prompts.clue_rephrase_prompt`` (indices 1..count).
    Items with an index outside the list, or without text, are dropped. Never raises."""
    try:
        if not isinstance(raw, str):
            return ()
        for found in reversed(_find_objects(raw)):
            value = _first(_field_map(found.obj), _CLUE_KEYS)
            if value is None or not isinstance(value[1], list):
                continue
            out: list[SelectedClue] = []
            seen: set[int] = set()
            for item in value[1]:
                if not isinstance(item, dict):
                    continue
                fields = {_norm_key(str(k)): v for k, v in item.items()}
                index_v = _first(fields, ("index", "number", "id", "n"))
                text_v = _first(fields, _CLUE_TEXT_KEYS)
                cat_v = _first(fields, _CLUE_CAT_KEYS)
                try:
                    index = int(index_v[1]) if index_v is not None and not isinstance(index_v[1], bool) else 0
                except (TypeError, ValueError):
                    continue
                if not 1 <= index <= count or index in seen or text_v is None:
                    continue
                if not isinstance(text_v[1], str):
                    continue
                category = clue_category_id(str(cat_v[1])) if cat_v is not None else OTHER_CATEGORY
                seen.add(index)
                out.append(SelectedClue(index, category, text_v[1].strip()))
            return tuple(out)
        return ()
    except Exception:
        return ()


__all__ = [
    "AnswerSource",
    "CityLike",
    "CountryLike",
    "NameNormalizer",
    "ParsedAnswer",
    "Problem",
    "RegionLike",
    "SelectedClue",
    "parse_answer",
    "parse_choice",
    "parse_clue_selection",
    "problem_codes",
]
