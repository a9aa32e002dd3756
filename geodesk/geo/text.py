"""Name folding for gazetteer keys: case, accents, punctuation, abbreviations and generic suffixes.

Both the indexed names and every query go through the same functions, so a key is equal exactly when
two spellings differ only in what we choose to ignore ("Côte d'Ivoire" == "cote d ivoire",
"St. Petersburg" == "Saint Petersburg", "Hefei City" -> "hefei", "合肥市" -> "合肥").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Abbreviations spelled out so that "St. Gallen" and "Saint Gallen" share a key.
_TOKEN_EXPANSIONS = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort", "pt": "port"}
_EXPANDABLE = frozenset(_TOKEN_EXPANSIONS)

# Generic words around a proper name: "X City", "State of X", "X Oblast". Stripped only when
# something of at least _MIN_REMAINDER letters stays (so "Shi" alone, or "Province" alone, survive).
# Longer phrases first: the first that matches wins.
_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        (
            "special administrative region",
            "autonomous region",
            "autonomous province",
            "autonomous oblast",
            "autonomous okrug",
            "uygur zizhiqu",
            "zhuangzu zizhiqu",
            "huizu zizhiqu",
            "zizhiqu",
            "sar",
            "city",
            "shi",
            "municipality",
            "metropolitan city",
            "prefecture",
            "province",
            "sheng",
            "state",
            "oblast",
            "oblast'",
            "krai",
            "kray",
            "region",
            "district",
            "county",
            "governorate",
            "department",
            "departamento",
            "voivodeship",
            "raion",
            "rayon",
            "canton",
            "ken",
            "to",
            "fu",
            "gun",
            "si",
            "do",
            "capital district",
            "federal district",
            "territory",
        ),
        key=len,
        reverse=True,
    )
)
_PREFIXES: tuple[str, ...] = (
    "state of",
    "province of",
    "city of",
    "municipality of",
    "region of",
    "department of",
    "canton of",
    "county of",
    "oblast of",
    "greater",
    "the",
)
# CJK administrative suffixes (city, province, county, autonomous region, SAR, prefecture, metropolis).
# 州 and 道 are left alone: they are part of many names (广州, 北海道).
_CJK_SUFFIXES = ("特别行政区", "特別行政區", "自治区", "自治區", "市", "省", "县", "縣", "県", "都", "府")
_MIN_REMAINDER = 3
_MIN_CJK_REMAINDER = 2

_PUNCT = re.compile(r"[\s\-‐‑‒–—_.,;:/\\()\[\]{}'’`\"“”«»!?&+*#|]+")


# Stripping looks phrases up by their last (suffix) or first (prefix) word: one dict probe per word
# instead of one endswith() per phrase.
_SUFFIX_BY_LAST: dict[str, tuple[str, ...]] = {}
for _s in _SUFFIXES:
    _SUFFIX_BY_LAST[_s.rsplit(" ", 1)[-1]] = (*_SUFFIX_BY_LAST.get(_s.rsplit(" ", 1)[-1], ()), _s)
_PREFIX_BY_FIRST: dict[str, tuple[str, ...]] = {}
for _p in _PREFIXES:
    _PREFIX_BY_FIRST[_p.split(" ", 1)[0]] = (*_PREFIX_BY_FIRST.get(_p.split(" ", 1)[0], ()), _p)


@lru_cache(maxsize=1)
def _combining_marks() -> dict[int, None]:
    """str.translate table deleting every combining mark (accents) of the BMP and SMP (~30 ms, once)."""
    return {cp: None for cp in range(0x300, 0x20000) if unicodedata.combining(chr(cp))}


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a name; abbreviations such as St. expanded."""
    if text.isascii():  # fast path: most names; nothing to decompose
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKD", text).translate(_combining_marks())
        text = text.casefold().replace("ß", "ss").replace("ø", "o").replace("đ", "d").replace("ł", "l")
        text = text.replace("æ", "ae").replace("œ", "oe").replace("ı", "i")
    tokens = _PUNCT.sub(" ", text).split()
    if _EXPANDABLE.isdisjoint(tokens):
        return " ".join(tokens)
    return " ".join([_TOKEN_EXPANSIONS.get(tok, tok) for tok in tokens])


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF


@lru_cache(maxsize=65536)
def strip_generic(key: str) -> str:
    """Remove generic prefixes and suffixes from a folded key, repeatedly (idempotent)."""
    changed = True
    while changed and key:
        changed = False
        first = key.split(" ", 1)[0]
        for prefix in _PREFIX_BY_FIRST.get(first, ()):
            if key.startswith(prefix + " ") and len(key) - len(prefix) - 1 >= _MIN_REMAINDER:
                key, changed = key[len(prefix) + 1 :], True
                break
        last = key.rsplit(" ", 1)[-1]
        for suffix in _SUFFIX_BY_LAST.get(last, ()):
            if key.endswith(" " + suffix) and len(key) - len(suffix) - 1 >= _MIN_REMAINDER:
                key, changed = key[: -len(suffix) - 1], True
                break
        if key and _is_cjk(key[-1]):
            for suffix in _CJK_SUFFIXES:
                if key.endswith(suffix) and len(key) - len(suffix) >= _MIN_CJK_REMAINDER:
                    key, changed = key[: -len(suffix)].rstrip(), True
                    break
    return key


def keys_for(name: str) -> tuple[str, str]:
    """``(exact, stripped)`` keys of a name; they are equal when the name has no generic words."""
    exact = fold(name)
    return exact, strip_generic(exact)
