"""Script, language and the countries that write them, from Unicode and CLDR (through babel).

- :func:`line_script`: the script of a line from its characters' Unicode names (letters only; digits
  and punctuation are common to every script). Han with kana is Japanese, Han alone Chinese.
- :func:`identify_language`: lingua-language-detector (its n-gram models ship inside the wheel; no
  network), restricted to the languages written in the line's script, and only for lines whose words
  have at least ``MIN_LETTERS`` letters and a clear winner: text that is no language gets no language
  rather than a wrong one (ADR 0051).
- :func:`language_countries` / :func:`script_countries`: CLDR's territory-language table (population
  share and official status per territory) turned into likelihoods, not a hard list.
"""

from __future__ import annotations

import re
import threading
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
# lingua's confidence of the winner among the script's languages, and its lead over the runner-up
# (chosen on the development split of bench/clue_textset.py, never on the scored split).
MIN_LANGUAGE_CONFIDENCE = 0.15
MIN_LEAD = 1.2
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
    language: str  # ISO 639-1
    probability: float  # the winner's confidence among the languages written in the line's script

    @property
    def name(self) -> str:
        from babel import Locale

        try:
            return str(Locale.parse(self.language).english_name)
        except (ValueError, LookupError):
            return self.language


@cache
def _script_languages() -> dict[str, tuple[Any, ...]]:
    """Script -> lingua's languages written in it that CLDR places in some country (so Latin and
    Esperanto, which no sign is expected in, are never an answer)."""
    from lingua import Language

    by_script: dict[str, list[Any]] = {}
    for language in Language.all():
        code = language.iso_code_639_1.name.lower()
        script = language_script(code)
        if script is not None and language_countries(code):
            by_script.setdefault(script, []).append(language)
    return {script: tuple(sorted(langs, key=lambda lang: lang.name)) for script, langs in by_script.items()}


_detectors: dict[str, Any] = {}
_detectors_lock = threading.Lock()


def _detector(script: str) -> Any:
    """lingua's detector over the languages of ``script``, built once (its n-gram models load lazily,
    in high-accuracy mode: short sign text needs the longer n-grams)."""
    from lingua import LanguageDetectorBuilder

    with _detectors_lock:
        detector = _detectors.get(script)
        if detector is None:
            detector = LanguageDetectorBuilder.from_languages(*_script_languages()[script]).build()
            _detectors[script] = detector
        return detector


# Scripts that only one language lingua knows (and CLDR places) is written in; Han alone is Chinese.
_SINGLE_LANGUAGE = {"Kore": "ko", "Jpan": "ja", "Thai": "th", "Hebr": "he", "Grek": "el", "Hans": "zh"}
# Words that are codes, numbers, web or e-mail addresses say nothing about the language.
_NOT_A_WORD = re.compile(r"\S*[\d@/]\S*|\S*\.\S+|www\S*", re.IGNORECASE)


def language_words(text: str) -> str:
    """``text`` without the tokens that are no words of a language (numbers, addresses, codes)."""
    return " ".join(_NOT_A_WORD.sub(" ", text).split())


def identify_language(text: str) -> LanguageReading | None:
    """The language of ``text`` when it is long enough and clear; None otherwise (never a guess).

    Only the line's words count (numbers and addresses removed); they need ``MIN_LETTERS`` letters
    (``MIN_LETTERS_DENSE`` in scripts where a character is a syllable or a word), and lingua's winner
    among the script's languages needs ``MIN_LANGUAGE_CONFIDENCE`` and a lead of ``MIN_LEAD`` over the
    runner-up.
    """
    words = language_words(text)
    script = line_script(words) if words else None
    if script is None or script.share < 0.8:
        return None
    if letters(words) < (MIN_LETTERS_DENSE if script.script in _DENSE_SCRIPTS else MIN_LETTERS):
        return None
    if script.script in _SINGLE_LANGUAGE:
        return LanguageReading(_SINGLE_LANGUAGE[script.script], 1.0)
    candidates = _script_languages().get(script.script, ())
    if not candidates:
        return None
    if len(candidates) == 1:
        return LanguageReading(candidates[0].iso_code_639_1.name.lower(), 1.0)
    ranked = _detector(script.script).compute_language_confidence_values(words)
    if not ranked:
        return None
    top, runner_up = ranked[0].value, (ranked[1].value if len(ranked) > 1 else 0.0)
    if top < MIN_LANGUAGE_CONFIDENCE or top < MIN_LEAD * runner_up:
        return None
    return LanguageReading(ranked[0].language.iso_code_639_1.name.lower(), float(top))
