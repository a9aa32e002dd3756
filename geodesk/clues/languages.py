"""Script, language and the countries that write them, from Unicode and CLDR (through babel).

- :func:`line_script`: the script of a line from its characters' Unicode names (letters only; digits
  and punctuation are common to every script). Han with kana is Japanese, Han alone Chinese.
- :func:`identify_language`: py3langid's offline model (97 languages), restricted to the languages
  written in the line's script, and only for lines with at least ``MIN_LETTERS`` letters and a clear
  winner: text that is no language gets no language rather than a wrong one.
- :func:`language_countries` / :func:`script_countries`: CLDR's territory-language table (population
  share and official status per territory) turned into likelihoods, not a hard list.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

# Unicode name prefix -> ISO 15924 script code.
_NAME_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("LATIN", "Latn"),
    ("CYRILLIC", "Cyrl"),
    ("GREEK", "Grek"),
    ("ARABIC", "Arab"),
    ("HEBREW", "Hebr"),
    ("DEVANAGARI", "Deva"),
    ("THAI", "Thai"),
    ("HANGUL", "Hang"),
    ("HIRAGANA", "Hira"),
    ("KATAKANA", "Kana"),
    ("CJK", "Hani"),
    ("BENGALI", "Beng"),
    ("TAMIL", "Taml"),
    ("GEORGIAN", "Geor"),
    ("ARMENIAN", "Armn"),
    ("ETHIOPIC", "Ethi"),
    ("KHMER", "Khmr"),
    ("LAO", "Laoo"),
    ("MYANMAR", "Mymr"),
    ("GUJARATI", "Gujr"),
    ("GURMUKHI", "Guru"),
    ("TELUGU", "Telu"),
    ("KANNADA", "Knda"),
    ("MALAYALAM", "Mlym"),
    ("SINHALA", "Sinh"),
    ("TIBETAN", "Tibt"),
    ("MONGOLIAN", "Mong"),
)
SCRIPT_NAMES: dict[str, str] = {
    "Latn": "Latin",
    "Cyrl": "Cyrillic",
    "Grek": "Greek",
    "Arab": "Arabic",
    "Hebr": "Hebrew",
    "Deva": "Devanagari",
    "Thai": "Thai",
    "Kore": "Hangul",
    "Jpan": "Japanese",
    "Hans": "Chinese (Han)",
    "Beng": "Bengali",
    "Taml": "Tamil",
    "Geor": "Georgian",
    "Armn": "Armenian",
    "Ethi": "Ethiopic",
    "Khmr": "Khmer",
    "Laoo": "Lao",
    "Mymr": "Myanmar",
    "Gujr": "Gujarati",
    "Guru": "Gurmukhi",
    "Telu": "Telugu",
    "Knda": "Kannada",
    "Mlym": "Malayalam",
    "Sinh": "Sinhala",
    "Tibt": "Tibetan",
    "Mong": "Mongolian",
}
MIN_LETTERS = 10  # shorter lines (a town name, a code) get no language: too little text to tell
# Scripts where one character is a syllable or a word, and which one language writes: a few suffice.
MIN_LETTERS_DENSE = 4
_DENSE_SCRIPTS = frozenset({"Hans", "Jpan", "Kore", "Thai"})
MIN_LANGUAGE_PROBABILITY = 0.6  # the winner's share among the script's languages
# How much an official status counts when turning population share into a likelihood.
_STATUS_WEIGHT = {
    "official": 1.0,
    "de_facto_official": 1.0,
    "official_regional": 0.5,
    "official_minority": 0.4,
}
_NO_STATUS_WEIGHT = 0.25
SCRIPT_FLOOR = 0.02  # a country that does not write the script: unlikely (a foreign sign), not impossible
LANGUAGE_FLOOR = 0.05


def _char_script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for prefix, code in _NAME_SCRIPTS:
        if name.startswith(prefix):
            return code
    return None


def letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


@dataclass(frozen=True, slots=True)
class ScriptReading:
    script: str  # ISO 15924: Latn, Cyrl, ..., Jpan (Han + kana), Hans (Han alone), Kore (Hangul)
    share: float  # share of the line's letters in that script

    @property
    def name(self) -> str:
        return SCRIPT_NAMES.get(self.script, self.script)


def line_script(text: str) -> ScriptReading | None:
    """The dominant script of ``text``; None when it has no letters."""
    counts = Counter(s for s in (_char_script(ch) for ch in text) if s is not None)
    total = sum(counts.values())
    if not total:
        return None
    kana = counts.get("Hira", 0) + counts.get("Kana", 0)
    if kana:
        japanese = kana + counts.pop("Hani", 0)
        counts.pop("Hira", None)
        counts.pop("Kana", None)
        counts["Jpan"] = japanese
    elif "Hani" in counts:
        counts["Hans"] = counts.pop("Hani")
    if "Hang" in counts:
        counts["Kore"] = counts.pop("Hang") + counts.pop("Hani", 0)
    script, count = counts.most_common(1)[0]
    if script == "Latn" and len(counts) > 1:
        # Latin letters beside another script are mostly units, codes and brand names ("서울 12 km").
        other, other_count = next((s, c) for s, c in counts.most_common() if s != "Latn")
        if other_count >= 2:
            script, count = other, other_count
    return ScriptReading(script, count / total)


# --------------------------------------------------------------------------------------- CLDR tables


@cache
def _territory_languages() -> dict[str, dict[str, Any]]:
    from babel.core import get_global

    return dict(get_global("territory_languages"))


@cache
def language_script(language: str) -> str | None:
    """The script a language (``sr``, ``sr_Latn``, ``zh``) is written in by default (CLDR likely subtags)."""
    from babel.core import get_global

    if "_" in language:
        return {"Hani": "Hans", "Hant": "Hans"}.get(language.split("_")[1], language.split("_")[1])
    likely = get_global("likely_subtags").get(language)
    if not likely:
        return None
    parts = str(likely).split("_")
    script = parts[1] if len(parts) > 2 else None
    return {"Hani": "Hans", "Hant": "Hans"}.get(script or "", script)


def _weight(info: dict[str, Any]) -> float:
    share = float(info.get("population_percent") or 0.0) / 100.0
    return min(1.0, share) * _STATUS_WEIGHT.get(str(info.get("official_status")), _NO_STATUS_WEIGHT)


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    top = max(weights.values(), default=0.0)
    return {} if top <= 0 else {k: v / top for k, v in weights.items() if v / top >= 1e-3}


@cache
def language_countries(language: str) -> dict[str, float]:
    """Country -> likelihood (0..1, the best country 1) that a sign is in ``language`` there."""
    base = language.split("_")[0]
    weights: dict[str, float] = {}
    for territory, langs in _territory_languages().items():
        if not (len(territory) == 2 and territory.isalpha()):
            continue
        w = max((_weight(info) for code, info in langs.items() if code.split("_")[0] == base), default=0.0)
        if w > 0:
            weights[territory] = w
    return _normalised(weights)


@cache
def script_countries(script: str) -> dict[str, float]:
    """Country -> likelihood that a sign is written in ``script`` there (its languages' weights)."""
    weights: dict[str, float] = {}
    for territory, langs in _territory_languages().items():
        if not (len(territory) == 2 and territory.isalpha()):
            continue
        w = 0.0
        for code, info in langs.items():
            written = language_script(code)
            if (
                written == script
                or (script == "Kore" and written == "Kore")
                or (script == "Jpan" and written == "Jpan")
            ):
                w = max(w, _weight(info))
        if w > 0:
            weights[territory] = w
    return _normalised(weights)


# ---------------------------------------------------------------------------------- language identity


@dataclass(frozen=True, slots=True)
class LanguageReading:
    language: str  # ISO 639-1 as py3langid reports it
    probability: float

    @property
    def name(self) -> str:
        from babel import Locale

        try:
            return str(Locale.parse(self.language).english_name)
        except (ValueError, LookupError):
            return self.language


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


# Scripts only one language in py3langid's set is written in.
_SINGLE_LANGUAGE = {
    "Kore": "ko",
    "Jpan": "ja",
    "Thai": "th",
    "Hebr": "he",
    "Grek": "el",
    "Geor": "ka",
    "Armn": "hy",
    "Khmr": "km",
    "Laoo": "lo",
    "Sinh": "si",
    "Mlym": "ml",
    "Telu": "te",
    "Knda": "kn",
    "Taml": "ta",
    "Gujr": "gu",
    "Guru": "pa",
    "Hans": "zh",
}


def identify_language(text: str, script: ScriptReading | None = None) -> LanguageReading | None:
    """The language of ``text`` when it is long enough and clear; None otherwise (never a guess)."""
    script = script or line_script(text)
    if script is None or script.share < 0.8:
        return None
    if letters(text) < (MIN_LETTERS_DENSE if script.script in _DENSE_SCRIPTS else MIN_LETTERS):
        return None
    ranked: list[tuple[str, float]] = list(_identifier().rank(text))
    candidates = [(lang, p) for lang, p in ranked if language_script(lang) == script.script]
    if script.script in _SINGLE_LANGUAGE:
        only = _SINGLE_LANGUAGE[script.script]
        candidates = [(lang, p) for lang, p in ranked if lang == only] or [(only, 1.0)]
    total = sum(p for _, p in candidates)
    if not candidates or total <= 0:
        return None
    language, p = max(candidates, key=lambda lp: lp[1])
    share = p / total
    if share < MIN_LANGUAGE_PROBABILITY and script.script not in _SINGLE_LANGUAGE:
        return None
    return LanguageReading(language, share)
