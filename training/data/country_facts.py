"""Country facts from structured offline sources, for every country with places in GeoNames.

The hand-written repository (``resources/clues/clues.json``) covers the countries its authors know
well. GaGA's clue set spans about 210 countries, and an image from a country without clues yields no
Clue sample. This module derives, for every country code that has populated places in the gazetteer
(GeoNames cities1000), the facts structured data can state, each with the source it came from:

- scripts and official languages: Unicode CLDR (``babel``): the territory's official and de-facto
  official languages (``babel.languages.get_official_languages``) and each language's likely script
  (CLDR likely subtags);
- the international calling code: libphonenumber's metadata (``phonenumbers``);
- the country-code top-level domain: the IANA root zone's rule (the ISO 3166-1 alpha-2 code; .uk for
  GB), left out for codes without a delegated domain in use;
- currencies legal tender on ``AS_OF``: CLDR currency data (``babel.numbers``);
- time zones and their UTC offsets in January and July: CLDR's territory zones with the IANA tz
  database (``zoneinfo``);
- hemisphere, the midday sun's side and the seasons: the latitudes of the country's GeoNames places;
- the driving side: a list of left-hand-traffic countries written for geodesk (no registry package
  carries it), every other country drives on the right.

Every fact becomes one clue (id ``<cc>-cldr-script``, ``<cc>-phone`` ...) phrased as what an image
may show. The output is committed as ``resources/clues/structured.json`` and rebuilt with
``geodesk-train build-data repository --rebuild-structured``: a test checks that the file is what the
sources give today, so a library update that changes a fact shows up as a diff.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

STRUCTURED_FORMAT = "geodesk-country-facts/1"
DEFAULT_STRUCTURED = Path(__file__).resolve().parents[2] / "resources" / "clues" / "structured.json"
AS_OF = date(2026, 1, 1)  # the date currencies and UTC offsets are read for (reproducible output)
TROPIC_DEG = 23.44
MIN_PLACES, TARGET_FACTS = 10, 5  # coverage target: every country with >= 10 places has >= 5 clues

SOURCE_CLDR = "Unicode CLDR via babel {version}"
SOURCE_PHONE = "libphonenumber metadata via phonenumbers {version}"
SOURCE_TLD = "IANA root zone: country-code TLD = ISO 3166-1 alpha-2 code"
SOURCE_TZ = "CLDR territory zones via babel {version}, IANA tz database {tz}"
SOURCE_GEONAMES = "GeoNames cities1000 latitudes (geodesk gazetteer)"
SOURCE_DRIVING = "geodesk hand-written list of left-hand-traffic countries"

# Left-hand traffic (ISO 3166-1 alpha-2). Everywhere else traffic keeps right.
_LEFT = (
    "AG AI AU BB BD BM BN BS BT BW CC CK CX CY DM FJ FK GB GD GG GY HK ID IE IM IN JE JM JP KE KI KN "
    "KY LC LK LS MO MS MT MU MV MW MY MZ NA NF NP NR NU NZ PG PK PN SB SC SG SH SR SZ TC TH TK TL TO TT "
    "TV TZ UG VC VG VI WS ZA ZM ZW"
)
LEFT_HAND_TRAFFIC = frozenset(_LEFT.split(" "))
# ISO codes whose ccTLD is not delegated or not in use; GB's domain is .uk.
NO_TLD = frozenset({"EH", "BL", "MF", "BQ", "UM"})
TLD_EXCEPTIONS = {"GB": ".uk"}


def _versions() -> dict[str, str]:
    import babel
    import phonenumbers

    try:
        import tzdata

        tz = str(tzdata.IANA_VERSION)
    except ImportError:
        tz = "system"
    return {"babel": babel.__version__, "phonenumbers": phonenumbers.__version__, "tz": tz}


def _names_list(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


# CLDR's English script names for Han variants are bare ("Traditional"); say what they are.
SCRIPT_NAMES = {"Hans": "Simplified Chinese", "Hant": "Traditional Chinese",
                "Jpan": "Japanese (kanji and kana)", "Kore": "Korean (Hangul and Hanja)"}


def _offset_minutes(zone: str, when: datetime) -> int:
    from zoneinfo import ZoneInfo

    delta = when.astimezone(ZoneInfo(zone)).utcoffset()
    return int(delta.total_seconds() // 60) if delta is not None else 0


def _utc(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def country_latitudes(gazetteer: Any) -> dict[str, list[float]]:
    """Latitudes of the gazetteer's places per country code."""
    table = gazetteer.places.table
    out: dict[str, list[float]] = defaultdict(list)
    for cc, lat in zip(table.country_code, table.lat.tolist(), strict=True):
        if cc:
            out[str(cc)].append(float(lat))
    return dict(out)


def _clue(code: str, key: str, topic: str, category: str, text: str, source: str) -> dict[str, str]:
    return {"id": f"{code.lower()}-{key}", "topic": topic, "category": category, "text": text,
            "source": source}


def country_entry(code: str, latitudes: list[float], versions: dict[str, str]) -> dict[str, Any]:
    """The structured facts and clues of one country (``code``: ISO 3166-1 alpha-2)."""
    import phonenumbers
    from babel import Locale
    from babel.core import get_global
    from babel.languages import get_official_languages
    from babel.numbers import get_currency_name, get_territory_currencies

    english = Locale("en")
    cldr = SOURCE_CLDR.format(version=versions["babel"])
    clues: list[dict[str, str]] = []
    facts: dict[str, Any] = {}

    side = "left" if code in LEFT_HAND_TRAFFIC else "right"
    facts["driving_side"] = side
    clues.append(_clue(code, "traffic-side", "driving_side", "road_markings",
                       f"Traffic drives on the {side}.", SOURCE_DRIVING))

    likely = get_global("likely_subtags")
    scripts: list[str] = []
    language_names: list[str] = []

    def add_script(subtag: str | None) -> None:
        parts = str(subtag or "").split("_")
        script = next((p for p in parts[1:] if len(p) == 4 and p.istitle()), None)
        if script and script not in scripts:
            scripts.append(script)

    # CLDR writes a language with a script subtag where the territory's usage differs ("sr_Latn").
    for tag in get_official_languages(code, de_facto=True):
        base, _, script_tag = str(tag).partition("_")
        name = english.languages.get(base, base)
        if name not in language_names:
            language_names.append(name)
        add_script(f"{base}_{script_tag}" if script_tag else likely.get(f"{base}_{code}") or likely.get(base))
    add_script(likely.get(f"und_{code}"))  # the territory's own most likely script
    script_names = [SCRIPT_NAMES.get(s) or english.scripts.get(s, s) for s in scripts]
    if language_names:
        facts["languages"] = language_names
        clues.append(_clue(code, "cldr-language", "language", "signage_language",
                           f"Official text and signs are likely in {_names_list(language_names)}.", cldr))
    if script_names:
        facts["scripts"] = script_names
        plural = "scripts" if len(script_names) > 1 else "script"
        clues.append(_clue(code, "cldr-script", "script", "signage_language",
                           f"Signs are written in the {_names_list(script_names)} {plural}.", cldr))

    calling = phonenumbers.country_code_for_region(code)
    if calling:
        facts["calling_code"] = f"+{calling}"
        clues.append(_clue(code, "phone", "phone", "signage_language",
                           f"Phone numbers on signs and shopfronts may start with +{calling}.",
                           SOURCE_PHONE.format(version=versions["phonenumbers"])))
    if code not in NO_TLD:
        tld = TLD_EXCEPTIONS.get(code, f".{code.lower()}")
        facts["tld"] = tld
        clues.append(_clue(code, "cctld", "domain", "signage_language",
                           f"Web addresses on signs and vehicles may end in {tld}.", SOURCE_TLD))

    currencies = list(get_territory_currencies(code, start_date=AS_OF, end_date=AS_OF, tender=True))
    if currencies:
        named = [f"{get_currency_name(c, locale='en')} ({c})" for c in currencies]
        facts["currencies"] = currencies
        clues.append(_clue(code, "currency", "currency", "people_culture",
                           f"Prices on signs and in shop windows would be in {_names_list(named)}.", cldr))

    zones = list(get_global("territory_zones").get(code, ()))
    if zones:
        winter = datetime(AS_OF.year, 1, 15, 12, tzinfo=UTC)
        summer = datetime(AS_OF.year, 7, 15, 12, tzinfo=UTC)
        minutes: set[int] = set()
        shifts = False
        for zone in zones:
            try:
                jan, jul = _offset_minutes(zone, winter), _offset_minutes(zone, summer)
            except (KeyError, ValueError, OSError):
                continue
            shifts = shifts or jan != jul
            minutes.add(min(jan, jul))  # standard time: daylight saving only ever adds
        offsets = [_utc(m) for m in sorted(minutes)]
        if offsets:
            facts["utc_offsets"] = offsets
            span = (f"one time zone, {offsets[0]}" if len(offsets) == 1
                    else f"{len(offsets)} time zones, from {offsets[0]} to {offsets[-1]}")
            dst = " with daylight saving time in summer" if shifts else ", with no daylight saving time"
            clues.append(_clue(code, "time-zone", "time_zone", "other",
                               f"Clocks and timestamps follow {span}{dst}.",
                               SOURCE_TZ.format(version=versions["babel"], tz=versions["tz"])))

    if latitudes:
        middle = statistics.median(latitudes)
        south = sum(1 for lat in latitudes if lat < 0) / len(latitudes)
        facts["median_latitude"] = round(middle, 2)
        if abs(middle) < TROPIC_DEG:
            clues.append(_clue(code, "tropics", "climate", "climate",
                               "Between the tropics: the midday sun stands high all year and day length "
                               "barely changes; seasons are wet and dry rather than warm and cold.",
                               SOURCE_GEONAMES))
        if south >= 0.9:
            facts["hemisphere"] = "south"
            clues.append(_clue(code, "hemisphere", "sun", "climate",
                               "Southern hemisphere: outside the tropics the midday sun is in the north, "
                               "and summer falls in December to February.", SOURCE_GEONAMES))
        elif south <= 0.1:
            facts["hemisphere"] = "north"
            clues.append(_clue(code, "hemisphere", "sun", "climate",
                               "Northern hemisphere: outside the tropics the midday sun is in the south, "
                               "and summer falls in June to August.", SOURCE_GEONAMES))
    return {"code": code, "facts": facts, "clues": clues}


def build_structured(gazetteer: Any | None = None) -> dict[str, Any]:
    """The whole structured-facts document, for every country code with places in the gazetteer."""
    if gazetteer is None:
        from geodesk.geo import default_gazetteer

        gazetteer = default_gazetteer()
    versions = _versions()
    latitudes = country_latitudes(gazetteer)
    names = gazetteer.countries.names
    countries = []
    for code in sorted(latitudes):
        entry = country_entry(code, latitudes[code], versions)
        countries.append({"code": code, "name": str(names.get(code, code)), "places": len(latitudes[code]),
                          **{k: v for k, v in entry.items() if k != "code"}})
    return {"format": STRUCTURED_FORMAT, "as_of": AS_OF.isoformat(), "versions": versions,
            "about": "Generated by training/data/country_facts.py from structured offline sources; "
                     "do not edit by hand.",
            "countries": countries}


def render_structured(document: dict[str, Any]) -> str:
    """The file's text: the header keys, then one country per line (diffable, a tenth of indented JSON)."""
    import json

    head = {k: v for k, v in document.items() if k != "countries"}
    lines = [json.dumps(c, ensure_ascii=False, sort_keys=True) for c in document["countries"]]
    body = ",\n".join(lines)
    opening = json.dumps(head, ensure_ascii=False, sort_keys=True)[:-1]
    return f'{opening}, "countries": [\n{body}\n]}}\n'


def write_structured(path: Path = DEFAULT_STRUCTURED, gazetteer: Any | None = None) -> dict[str, Any]:
    """Rebuild the structured-facts file from the sources (atomically)."""
    from geodesk.atomic import atomic_open

    document = build_structured(gazetteer)
    with atomic_open(path) as fh:
        fh.write(render_structured(document))
    return document


def coverage(repository: Any, gazetteer: Any | None = None) -> dict[str, Any]:
    """Clue counts per country with places in GeoNames: hand-written, structured, total, and the
    countries with at least ``MIN_PLACES`` places that have fewer than ``TARGET_FACTS`` clues."""
    if gazetteer is None:
        from geodesk.geo import default_gazetteer

        gazetteer = default_gazetteer()
    latitudes = country_latitudes(gazetteer)
    per_country: dict[str, dict[str, int]] = {}
    for code in sorted(latitudes):
        entry = repository.countries.get(code)
        clues = list(entry.clues) if entry is not None else []
        hand = sum(1 for c in clues if c.source == "geodesk hand-written")
        per_country[code] = {"places": len(latitudes[code]), "clues": len(clues), "hand_written": hand,
                             "structured": len(clues) - hand}
    eligible = {c: v for c, v in per_country.items() if v["places"] >= MIN_PLACES}
    short = sorted(c for c, v in eligible.items() if v["clues"] < TARGET_FACTS)
    return {"countries_with_places": len(per_country), "countries_with_clues":
            sum(1 for v in per_country.values() if v["clues"]),
            f"countries_with_at_least_{MIN_PLACES}_places": len(eligible),
            f"of_those_with_at_least_{TARGET_FACTS}_clues": len(eligible) - len(short),
            "below_target": short, "per_country": per_country}
