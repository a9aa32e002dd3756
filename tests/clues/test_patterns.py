"""Phone numbers (30 countries, international and national formats), domains and currencies."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from geodesk.clues.patterns import currency_countries, find_currencies, find_domains, find_phones

COUNTRIES = [
    "DE",
    "FR",
    "ES",
    "IT",
    "GB",
    "PL",
    "CZ",
    "NL",
    "SE",
    "NO",
    "FI",
    "RU",
    "UA",
    "TR",
    "GR",
    "IL",
    "EG",
    "IN",
    "TH",
    "JP",
    "KR",
    "CN",
    "BR",
    "AR",
    "MX",
    "US",
    "AU",
    "ZA",
    "KE",
    "UZ",
]


def _example(region: str) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, PhoneNumberType.FIXED_LINE)
    assert number is not None
    return number


@pytest.mark.parametrize("region", COUNTRIES)
def test_international_number_names_its_country(region: str) -> None:
    written = phonenumbers.format_number(_example(region), PhoneNumberFormat.INTERNATIONAL)
    found = find_phones(f"Tel. {written}")
    assert len(found) == 1, written
    assert found[0].international
    assert region in found[0].countries
    # A calling code shared by several countries (+1, +7) lists the one whose plan accepts the number.
    assert len(found[0].countries) <= 3, found[0].countries


@pytest.mark.parametrize("region", COUNTRIES)
def test_national_number_lists_the_countries_whose_plan_accepts_it(region: str) -> None:
    written = phonenumbers.format_number(_example(region), PhoneNumberFormat.NATIONAL)
    found = [p for p in find_phones(f"Tel. {written}") if not p.international]
    assert found, written
    assert region in found[0].countries


def test_double_zero_prefix_and_no_phone_in_plain_numbers() -> None:
    assert find_phones("Ring 0047 22 12 34 56")[0].countries == ("NO",)
    assert find_phones("Opening 9-17, 12 km, 2024") == []


TLDS = [
    ("www.mos.ru", "RU"),
    ("https://bbc.co.uk/news", "GB"),
    ("info@firma.de", "DE"),
    ("www.gov.il", "IL"),
    ("shop.example.com.br", "BR"),
    ("hotel.jp", "JP"),
    ("www.city.uz", "UZ"),
    ("www.centrum-4.cz", "CZ"),
]


@pytest.mark.parametrize(("text", "country"), TLDS)
def test_country_code_tlds(text: str, country: str) -> None:
    found = find_domains(f"visit {text} today")
    assert [d.country for d in found] == [country]


def test_generic_and_non_country_tlds_name_no_country() -> None:
    assert [d.country for d in find_domains("www.example.com and europa.eu")] == [None, None]
    assert find_domains("12.5 km, 3.20 EUR") == []


def test_currencies() -> None:
    found = {r.codes for r in find_currencies("Coffee 99 ₽, pivo 45 Kč, 120 CZK, 10 zł, €5")}
    assert found >= {("RUB",), ("CZK",), ("PLN",), ("EUR",)}
    assert "RU" in currency_countries("RUB")
    assert {"DE", "FR", "GR"} <= set(currency_countries("EUR"))
    assert find_currencies("THE END 120") == []
