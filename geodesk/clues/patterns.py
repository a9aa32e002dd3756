"""Phone numbers, web and e-mail domains and currencies found in text, and the countries they name.

- Phone numbers go through ``phonenumbers`` (Google's libphonenumber data): an international number
  (``+998 …``, ``00 47 …``) names its country by its calling code; a national one (``0412 345 678``)
  names every country whose numbering plan accepts it as a valid number.
- Domains go through ``tldextract`` with its bundled public-suffix snapshot and fetching disabled
  (``suffix_list_urls=()``): a country-code TLD names its country; ``.com`` names none.
- Currencies: symbols that belong to few currencies (``₽``, ``₹``, ``zł``) and ISO 4217 codes next to
  an amount (``120 CZK``); the countries are those using the currency (CLDR, through babel).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

# ccTLDs that are not the ISO code of their country, and those that name no single country.
_TLD_COUNTRY = {"uk": "GB", "su": "RU"}
_TLD_NOT_A_COUNTRY = frozenset({"eu", "ac", "tv", "io", "me", "co", "ai", "fm", "ly", "cc", "ws", "to", "nu"})

_PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ()./-]{5,18}\d(?!\w)")
_URL = re.compile(
    r"(?:(?:https?://)?(?:www\.)|https?://|[\w.+-]+@)?((?:[\w-]+\.)+[a-z\u00c0-\uffff]{2,}(?:\.[a-z]{2,})?)(?![\w.])",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PhoneReading:
    text: str  # as written
    e164: str | None  # +CC… when the number is international (or valid in exactly one country)
    countries: tuple[str, ...]  # ISO alpha-2
    international: bool


def find_phones(text: str) -> list[PhoneReading]:
    """Phone numbers in ``text``; each with the countries whose numbering plan it fits."""
    import phonenumbers

    found: list[PhoneReading] = []
    for match in _PHONE_CANDIDATE.finditer(text):
        raw = match.group(0).strip()
        digits = re.sub(r"\D", "", raw)
        if not 6 <= len(digits) <= 15:
            continue
        international = raw.startswith(("+", "00"))
        if international:
            number_text = "+" + digits[2:] if raw.startswith("00") else "+" + digits
            try:
                number = phonenumbers.parse(number_text, None)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_possible_number(number):
                continue
            regions = _regions_for(number)
            if not regions:
                continue
            found.append(
                PhoneReading(
                    raw,
                    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                    regions,
                    True,
                )
            )
            continue
        regions_national = _national_regions(digits)
        if regions_national:
            found.append(PhoneReading(raw, None, regions_national, False))
    return found


def _regions_for(number: Any) -> tuple[str, ...]:
    import phonenumbers

    code = number.country_code
    regions = [r for r in phonenumbers.region_codes_for_country_code(code) if r != "001"]
    valid = [r for r in regions if phonenumbers.is_valid_number_for_region(number, r)]
    return tuple(valid or regions)


@cache
def _national_regions(digits: str) -> tuple[str, ...]:
    """Regions whose national plan accepts ``digits`` (written without the international prefix)."""
    import phonenumbers

    if not digits.startswith("0") and len(digits) < 7:
        return ()
    out: list[str] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        try:
            number = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number_for_region(number, region):
            out.append(region)
    return tuple(out)


# --------------------------------------------------------------------------------------------- domains


@cache
def _extractor() -> Any:
    import tldextract

    # suffix_list_urls=() and no cache folder: the bundled snapshot only, never the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)


@dataclass(frozen=True, slots=True)
class DomainReading:
    text: str
    domain: str  # registered domain, e.g. mos.ru
    suffix: str  # public suffix, e.g. ru, co.uk
    country: str | None  # ISO alpha-2 of the ccTLD, None for generic TLDs
    email: bool


def find_domains(text: str) -> list[DomainReading]:
    out: list[DomainReading] = []
    for match in _URL.finditer(text):
        whole = match.group(0)
        # The host as written ("www." kept: "www.gov.il" is domain "www" under the suffix "gov.il").
        host = re.sub(r"^(?:https?://|[\w.+-]+@)", "", whole, flags=re.IGNORECASE).lower().rstrip(".")
        parts = _extractor()(host)
        if not parts.suffix or not parts.domain:
            continue
        tld = parts.suffix.rsplit(".", 1)[-1]
        has_scheme = bool(re.match(r"(?:https?://|www\.)", whole, re.IGNORECASE)) or "@" in whole
        if not has_scheme and len(parts.domain) < 2:
            continue
        country = None
        if len(tld) == 2 and tld.isascii() and tld not in _TLD_NOT_A_COUNTRY:
            country = _TLD_COUNTRY.get(tld, tld.upper())
        out.append(
            DomainReading(whole, f"{parts.domain}.{parts.suffix}", parts.suffix, country, "@" in whole)
        )
    return out


# ------------------------------------------------------------------------------------------ currencies


@cache
def currency_countries(code: str, on: date | None = None) -> tuple[str, ...]:
    """Territories using currency ``code`` (legal tender) on ``on`` (default: today)."""
    from babel.core import get_global

    day = on or date.today()
    out: list[str] = []
    for territory, entries in get_global("territory_currencies").items():
        if not (len(territory) == 2 and territory.isalpha()) or territory in ("EU", "ZZ"):
            continue
        for cur, start, end, tender in entries:
            if cur != code or not tender:
                continue
            if start and date(*start) > day:
                continue
            if end and date(*end) < day:
                continue
            out.append(territory)
    return tuple(sorted(out))


# Symbols that narrow the place down; "$" and "¥" are used by many currencies (the code says which).
CURRENCY_SYMBOLS: dict[str, tuple[str, ...]] = {
    "€": ("EUR",),
    "£": ("GBP",),
    "₽": ("RUB",),
    "₹": ("INR",),
    "₩": ("KRW",),
    "₺": ("TRY",),
    "₴": ("UAH",),
    "₪": ("ILS",),
    "฿": ("THB",),
    "₫": ("VND",),
    "₱": ("PHP",),
    "₦": ("NGN",),
    "₸": ("KZT",),
    "₾": ("GEL",),
    "₼": ("AZN",),
    "₮": ("MNT",),
    "zł": ("PLN",),
    "Kč": ("CZK",),
    "Ft": ("HUF",),
    "лв": ("BGN",),
    "R$": ("BRL",),
    "¥": ("JPY", "CNY"),
    "円": ("JPY",),
    "元": ("CNY",),
    "US$": ("USD",),
    "C$": ("CAD",),
    "A$": ("AUD",),
    "NZ$": ("NZD",),
    "HK$": ("HKD",),
    "S$": ("SGD",),
    "руб": ("RUB",),
    "грн": ("UAH",),
    "ден": ("MKD",),
    "дин": ("RSD",),
    "kr": ("SEK", "NOK", "DKK", "ISK"),
}
_AMOUNT = r"\d+(?:[.,' ]\d+)*"


@dataclass(frozen=True, slots=True)
class CurrencyReading:
    text: str
    codes: tuple[str, ...]


@cache
def _iso_codes() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def find_currencies(text: str) -> list[CurrencyReading]:
    out: list[CurrencyReading] = []
    seen: set[str] = set()
    for symbol in sorted(CURRENCY_SYMBOLS, key=len, reverse=True):
        pattern = re.escape(symbol)
        if symbol[0].isalpha():
            pattern = rf"(?<!\w){pattern}(?!\w)"
        for m in re.finditer(rf"(?:{_AMOUNT}\s?{pattern}|{pattern}\s?{_AMOUNT})", text):
            span = m.group(0).strip()
            if any(span in s for s in seen):
                continue
            seen.add(span)
            out.append(CurrencyReading(span, CURRENCY_SYMBOLS[symbol]))
    for m in re.finditer(rf"(?:{_AMOUNT}\s?([A-Z]{{3}})|([A-Z]{{3}})\s?{_AMOUNT})(?![A-Za-z])", text):
        code = m.group(1) or m.group(2)
        if code in _iso_codes() and m.group(0).strip() not in seen:
            seen.add(m.group(0).strip())
            out.append(CurrencyReading(m.group(0).strip(), (code,)))
    return out
