"""Conversions between domain values and SQLite column values (JSON text, ISO timestamps, floats)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any


def canonical_json(value: Any, what: str = "value") -> str:
    """Compact JSON with sorted keys: the same value always gives the same text (hashes rely on it).

    Non-finite floats and values JSON cannot hold are refused with a sentence naming ``what``.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # NaN / infinity
        raise ValueError(f"{what} contains a number that is not finite (NaN or infinity): {exc}") from None
    except TypeError as exc:
        raise ValueError(
            f"{what} must be plain JSON data (dicts, lists, strings, numbers, booleans): {exc}"
        ) from None


def load_json(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


def now_utc() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """ISO 8601 with microseconds; naive datetimes stay naive so that they read back equal."""
    return moment.isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def finite(value: float | None, what: str) -> float | None:
    """SQLite stores NaN as NULL, silently: refuse it (and infinity) before it gets there."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number
