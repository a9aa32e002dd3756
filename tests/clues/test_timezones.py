"""UTC offsets across DST changes -> the zones and countries that used them on that date."""

from __future__ import annotations

from datetime import datetime

import pytest

from geodesk.clues.timezones import parse_local_time, reading_for, zone_countries


def _countries(text: str) -> set[str]:
    local = parse_local_time(text)
    assert local is not None
    reading = reading_for(local)
    assert reading is not None
    return set(reading.countries)


def test_plus_0530_in_january_is_india_and_sri_lanka() -> None:
    assert _countries("2024-01-15T12:00:00+05:30") == {"IN", "LK"}


def test_minus_0300_in_july_and_january() -> None:
    july = _countries("2024-07-15T12:00:00-03:00")
    january = _countries("2024-01-15T12:00:00-03:00")
    assert {"AR", "BR", "UY"} <= july and {"AR", "BR", "UY"} <= january
    assert "CA" in july and "CA" not in january  # Atlantic Canada's summer time is -03:00
    assert "PY" in january and "PY" not in july  # Paraguay's summer time (2024, before it went permanent)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("2024-01-10T09:00:00+01:00", {"DE", "FR", "NO"}, {"GB", "PT"}),
        ("2024-07-10T09:00:00+01:00", {"GB", "IE", "PT"}, {"DE", "FR"}),
        ("2024-07-10T09:00:00+02:00", {"DE", "FR", "NO"}, {"GB", "FI"}),
        ("2024-07-10T09:00:00+09:00", {"JP", "KR"}, {"CN"}),
    ],
)
def test_daylight_saving_moves_countries_between_offsets(
    text: str, inside: set[str], outside: set[str]
) -> None:
    found = _countries(text)
    assert inside <= found
    assert not (outside & found)


def test_time_without_offset_gives_no_reading() -> None:
    assert reading_for(datetime(2024, 1, 1, 12, 0)) is None
    assert parse_local_time("not a time") is None


def test_zone_table_covers_link_countries() -> None:
    table = zone_countries()
    assert "LK" in table["Asia/Colombo"] and "IN" in table["Asia/Kolkata"]
