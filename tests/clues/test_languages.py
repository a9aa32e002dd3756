"""Script per line from Unicode, language identification, CLDR country likelihoods."""

from __future__ import annotations

import pytest

from geodesk.clues.languages import (
    identify_language,
    language_countries,
    language_script,
    language_words,
    line_script,
    script_countries,
)

SCRIPT_LINES = [
    ("Düsseldorf 35 km", "Latn"),
    ("Łódź — Gdańsk", "Latn"),
    ("Москва 12 км", "Cyrl"),
    ("Αθήνα 27 χλμ", "Grek"),
    ("القاهرة 17 كم", "Arab"),
    ("ירושלים", "Hebr"),
    ("दिल्ली में आपका स्वागत है", "Deva"),
    ("ยินดีต้อนรับสู่เมือง", "Thai"),
    ("서울 12 km", "Kore"),  # Hangul beats the Latin unit
    ("私たちの町へようこそ", "Jpan"),  # kana make Han Japanese
    ("欢迎来到我们的城市", "Hans"),  # Han alone
]


@pytest.mark.parametrize(("text", "script"), SCRIPT_LINES)
def test_script_of_a_line_from_its_characters(text: str, script: str) -> None:
    reading = line_script(text)
    assert reading is not None
    assert reading.script == script


def test_no_letters_no_script() -> None:
    assert line_script("12 - 45 / 2024") is None


LANGUAGE_LINES = [
    ("Willkommen in der Stadt", "de"),
    ("Bienvenue dans notre ville", "fr"),
    ("Farmacia abierta todos los días", "es"),
    ("Witamy w naszym mieście", "pl"),
    ("Добро пожаловать в город", "ru"),
    ("Καλώς ήρθατε στην πόλη", "el"),
    ("مرحبا بكم في المدينة", "ar"),
    ("ברוכים הבאים לעיר", "he"),
    ("शहर में आपका स्वागत है", "hi"),
    ("ยินดีต้อนรับสู่เมือง", "th"),
    ("우리 도시에 오신 것을 환영합니다", "ko"),
    ("ここに駐車しないでください", "ja"),
    ("欢迎来到我们的城市", "zh"),
]


@pytest.mark.parametrize(("text", "language"), LANGUAGE_LINES)
def test_language_of_sentences(text: str, language: str) -> None:
    reading = identify_language(text)
    assert reading is not None
    assert reading.language == language


@pytest.mark.parametrize(
    "text",
    ["A7X-99 QZ 12", "Bergen", "www.centrum-4.de", "XJ 4471 KB 9", "info@hotel-berlin.de 030 1234"],
)
def test_text_that_is_no_language_gets_no_language(text: str) -> None:
    assert identify_language(text) is None


def test_only_words_count_towards_a_language() -> None:
    assert language_words("Tel. +49 30 1234 www.stadt-berlin.de Willkommen") == "Tel. Willkommen"
    # short Cyrillic sentences: Russian and Ukrainian told apart
    assert (
        reading := identify_language("Вход только для сотрудников")
    ) is not None and reading.language == "ru"
    assert (
        reading := identify_language("Зупинка громадського транспорту")
    ) is not None and reading.language == "uk"


def test_language_to_countries_is_a_likelihood_not_a_list() -> None:
    russian = language_countries("ru")
    assert max(russian, key=lambda c: russian[c]) in {"RU", "BY", "KZ"}
    assert russian["RU"] > 0.8 and 0 < russian.get("UA", 0) < russian["RU"]
    assert set(language_countries("th")) >= {"TH"}
    assert language_script("sr") == "Cyrl" and language_script("sr_Latn") == "Latn"


def test_script_countries() -> None:
    cyrillic = script_countries("Cyrl")
    assert {"RU", "BG", "RS", "UA", "BY", "KZ", "MK", "MN"} <= set(cyrillic)
    assert cyrillic.get("DE", 0.0) <= 0.05 and "BR" not in cyrillic
    assert set(script_countries("Kore")) >= {"KR", "KP"}
    assert set(script_countries("Jpan")) == {"JP"}
