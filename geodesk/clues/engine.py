"""The clue engine: from an image's text lines and its metadata to findings (ADR 0036).

:func:`text_findings` turns OCR lines into findings: one ``text`` finding per line (its box, its
script and language in the details), then per image one ``script`` finding per script and one
``language`` finding per language, and one finding per phone number, domain, currency and place name
found in a line. :func:`metadata_findings` reads the EXIF capture time with its offset into a
``timezone`` finding and warns when the offset and the GPS point disagree. :func:`sun_finding` turns a
measured shadow into a ``sun`` finding with its band. Each finding says which countries it supports or
excludes (see :class:`geodesk.clues.model.Finding`); nothing here touches the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from geodesk.clues import languages, patterns, places, sun, timezones
from geodesk.clues.model import Finding, TextLine
from geodesk.domain.model import ClueSource, Evidence, Region

if TYPE_CHECKING:
    from geodesk.geo.gazetteer import Gazetteer

ENGINE_VERSION = "1"
MIN_LINE_SCORE = 0.5  # OCR lines read with less confidence are dropped
PHONE_FLOOR = 0.03  # an international number is strong evidence, but a sign can show a foreign number
DOMAIN_FLOOR = 0.1
CURRENCY_FLOOR = 0.05
PLACE_FLOOR = 0.05
TIMEZONE_FLOOR = 0.0  # the camera's offset: countries without that offset on that date are ruled out


def _union(boxes: Sequence[Region | None]) -> Region | None:
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return Region(
        min(b.x0 for b in real), min(b.y0 for b in real), max(b.x1 for b in real), max(b.y1 for b in real)
    )


def _uniform(codes: Sequence[str]) -> dict[str, float]:
    return {c: 1.0 for c in codes if len(c) == 2 and c.isalpha() and c.isupper()}


def text_findings(
    lines: Sequence[TextLine], gazetteer: Gazetteer, source: ClueSource = ClueSource.OCR
) -> list[Finding]:
    """Everything the engine reads off the text lines of one image."""
    kept = [line for line in lines if line.text.strip() and line.score >= MIN_LINE_SCORE]
    out: list[Finding] = []
    by_script: dict[str, list[tuple[TextLine, float]]] = defaultdict(list)
    by_language: dict[str, list[tuple[TextLine, float]]] = defaultdict(list)
    for line in kept:
        text = line.text.strip()
        script = languages.line_script(text)
        language = languages.identify_language(text)
        details: dict[str, Any] = {"ocr_score": round(line.score, 4)}
        if script is not None:
            details["script"] = script.script
            details["script_name"] = script.name
            by_script[script.script].append((line, script.share))
        if language is not None:
            details["language"] = language.language
            details["language_name"] = language.name
            details["language_probability"] = round(language.probability, 4)
            by_language[language.language].append((line, language.probability))
        out.append(Finding("text", text, source, min(1.0, line.score), region=line.region, details=details))
        out.extend(_pattern_findings(text, line, source))
        out.extend(_place_findings(text, line, gazetteer, source))
    for code, hits in by_script.items():
        name = languages.SCRIPT_NAMES.get(code, code)
        confidence = min(1.0, sum(line.score * share for line, share in hits) / len(hits))
        out.append(
            Finding(
                "script",
                f"script is {name}",
                source,
                confidence,
                countries=languages.script_countries(code),
                others=languages.SCRIPT_FLOOR,
                region=_union([line.region for line, _ in hits]),
                details={"script": code, "lines": [line.text for line, _ in hits]},
            )
        )
    for code, hits in by_language.items():
        reading = languages.LanguageReading(code, max(p for _, p in hits))
        confidence = min(1.0, max(line.score * p for line, p in hits))
        out.append(
            Finding(
                "language",
                f"language is {reading.name}",
                source,
                confidence,
                countries=languages.language_countries(code),
                others=languages.LANGUAGE_FLOOR,
                region=_union([line.region for line, _ in hits]),
                details={"language": code, "lines": [line.text for line, _ in hits]},
            )
        )
    return out


def _pattern_findings(text: str, line: TextLine, source: ClueSource) -> list[Finding]:
    out: list[Finding] = []
    for phone in patterns.find_phones(text):
        if phone.international:
            prefix = phone.e164 or phone.text
            code = _calling_code(phone.e164)
            label = f"+{code} phone prefix" if code else "phone number"
            out.append(
                Finding(
                    "phone",
                    f"{label}: {phone.text}",
                    source,
                    line.score,
                    countries=_uniform(phone.countries),
                    others=PHONE_FLOOR,
                    region=line.region,
                    details={"number": prefix, "international": True, "countries": list(phone.countries)},
                )
            )
        elif len(phone.countries) <= 40:
            out.append(
                Finding(
                    "phone",
                    f"national phone number {phone.text}",
                    source,
                    line.score * 0.5,
                    countries=_uniform(phone.countries),
                    others=0.3,
                    region=line.region,
                    details={
                        "number": phone.text,
                        "international": False,
                        "countries": list(phone.countries),
                    },
                )
            )
    for domain in patterns.find_domains(text):
        if domain.country is None:
            continue
        kind = "e-mail domain" if domain.email else "web address"
        out.append(
            Finding(
                "domain",
                f"{kind} {domain.domain} (.{domain.suffix})",
                source,
                line.score,
                countries={domain.country: 1.0},
                others=DOMAIN_FLOOR,
                region=line.region,
                details={"domain": domain.domain, "suffix": domain.suffix, "country": domain.country},
            )
        )
    for currency in patterns.find_currencies(text):
        countries = sorted({c for code in currency.codes for c in patterns.currency_countries(code)})
        if not countries:
            continue
        out.append(
            Finding(
                "currency",
                f"currency {'/'.join(currency.codes)}: {currency.text}",
                source,
                line.score,
                countries=_uniform(countries),
                others=CURRENCY_FLOOR,
                region=line.region,
                details={"codes": list(currency.codes), "text": currency.text},
            )
        )
    return out


def _calling_code(e164: str | None) -> int | None:
    if not e164:
        return None
    import phonenumbers

    try:
        code = phonenumbers.parse(e164, None).country_code
    except phonenumbers.NumberParseException:
        return None
    return None if code is None else int(code)


def _place_findings(text: str, line: TextLine, gazetteer: Gazetteer, source: ClueSource) -> list[Finding]:
    matches = places.find_places(text, gazetteer)
    by_words: dict[str, list[places.PlaceMatch]] = defaultdict(list)
    for m in matches:
        by_words[m.words].append(m)
    out: list[Finding] = []
    for words, found in by_words.items():
        top = max(m.population for m in found) or 1
        countries: dict[str, float] = {}
        for m in found:
            # Namesakes share the support by size: the big Bergen outweighs the small ones.
            weight = max(0.05, (max(m.population, 1) / top) ** 0.3)
            countries[m.country_code] = max(countries.get(m.country_code, 0.0), weight)
        best = found[0]
        area = {"type": "MultiPoint", "coordinates": [[round(m.lon, 5), round(m.lat, 5)] for m in found]}
        named = ", ".join(dict.fromkeys(f"{m.name} ({m.country_code})" for m in found))
        out.append(
            Finding(
                "place",
                f"place name {words!r}: {named}",
                source,
                line.score * 0.9,
                countries=countries,
                others=PLACE_FLOOR,
                area=area,
                region=line.region,
                details={
                    "words": words,
                    "best": {
                        "name": best.name,
                        "country_code": best.country_code,
                        "lat": best.lat,
                        "lon": best.lon,
                    },
                    "places": [
                        {
                            "name": m.name,
                            "country_code": m.country_code,
                            "region": m.region,
                            "lat": m.lat,
                            "lon": m.lon,
                            "population": m.population,
                        }
                        for m in found
                    ],
                },
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class MetadataReading:
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)


def metadata_findings(evidence: Evidence) -> MetadataReading:
    """The time-zone finding from the EXIF time with its offset, and a warning when GPS disagrees."""
    if not evidence.taken_at:
        return MetadataReading([])
    local = timezones.parse_local_time(evidence.taken_at)
    if local is None:
        return MetadataReading([], [f"the capture time {evidence.taken_at!r} could not be read"])
    reading = timezones.reading_for(local)
    if reading is None:
        return MetadataReading(
            [], ["the capture time has no UTC offset (EXIF OffsetTimeOriginal missing): no time-zone clue"]
        )
    warnings: list[str] = []
    gps_country = evidence.place.country_code if evidence.place is not None else None
    gps_zone = timezones.point_zone(evidence.gps.lat, evidence.gps.lon) if evidence.gps is not None else None
    zone_minutes = timezones.offset_minutes_in(gps_zone, reading.utc) if gps_zone else None
    if zone_minutes is not None:
        # the GPS point's own zone (its polygon): exact where a country spans several offsets
        if zone_minutes != reading.offset_minutes:
            warnings.append(
                f"the capture time's offset {reading.offset_text} was not the time in {gps_zone} (the GPS "
                f"point's time zone) on {reading.utc.date().isoformat()}: the camera clock or the GPS point "
                "is wrong"
            )
    elif gps_country and gps_country not in reading.countries:
        warnings.append(
            f"the capture time's offset {reading.offset_text} was not used in {gps_country} (the GPS point's "
            f"country) on {reading.utc.date().isoformat()}: the camera clock or the GPS point is wrong"
        )
    text = (
        f"capture time offset {reading.offset_text} on {local.date().isoformat()}: used in "
        f"{len(reading.countries)} countries"
    )
    finding = Finding(
        "timezone",
        text,
        ClueSource.METADATA,
        0.9,
        countries=_uniform(reading.countries),
        others=TIMEZONE_FLOOR,
        details={
            "offset_minutes": reading.offset_minutes,
            "utc": reading.utc.isoformat(),
            "zones": list(reading.zones),
            "countries": list(reading.countries),
            "gps_country": gps_country,
            "gps_zone": gps_zone,
            "warnings": warnings,
        },
    )
    return MetadataReading([finding], warnings)


def sun_finding(
    when: datetime,
    ratio: float,
    borders: Any,
    *,
    object_box: Region | None = None,
    shadow_tip: tuple[float, float] | None = None,
    ratio_error: float = sun.DEFAULT_RATIO_ERROR,
    time_error_min: float = sun.DEFAULT_TIME_ERROR_MIN,
) -> Finding:
    """A sun-band finding; ``borders`` (geodesk.geo.CountryBorders) lists the countries it crosses."""
    band = sun.sun_band(when, ratio, ratio_error=ratio_error, time_error_min=time_error_min)
    countries = _band_countries(band.geometry, borders)
    low, high = band.elevation_range
    text = (
        f"sun at {band.elevation_deg:.1f}° ({low:.1f}–{high:.1f}°) at {band.when:%Y-%m-%d %H:%M} UTC: "
        f"a band over {len(countries)} countries"
    )
    details = {
        **band.as_dict(),
        "ratio": ratio,
        "ratio_error": ratio_error,
        "shadow_tip": None if shadow_tip is None else [round(shadow_tip[0], 1), round(shadow_tip[1], 1)],
    }
    return Finding(
        "sun",
        text,
        ClueSource.SUN,
        0.8,
        countries=_uniform(countries),
        others=0.0,
        area=band.geometry,
        region=object_box,
        details=details,
    )


def _band_countries(geometry: dict[str, Any] | None, borders: Any) -> list[str]:
    if geometry is None:
        return []
    from shapely.geometry import shape

    band = shape(geometry)
    return sorted(
        {
            code
            for code, geom in zip(borders.codes, borders.geometries, strict=True)
            if code and len(code) == 2 and code.isalpha() and geom.intersects(band)
        }
    )
