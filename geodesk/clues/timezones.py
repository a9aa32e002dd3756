"""UTC offset on a date -> the time zones and countries that used it (IANA tz history via zoneinfo).

A photo's EXIF time with its offset (``OffsetTimeOriginal``: ``+05:30``) says which offset the camera
clock kept. The zones that had that offset at that instant (daylight saving included, and every
historical change the tz database records) and the countries of those zones (``zone.tab`` in the
``tzdata`` package) are where the camera could have been set to local time. A camera left on home
time or UTC gives a wrong offset, so this is a strong clue, not proof. The GPS point's own zone comes
from the time-zone polygons that reverse geocoding uses at borders (:mod:`geodesk.geo.timezones`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from geodesk.geo.timezones import zone_at, zone_countries

__all__ = [
    "OffsetReading",
    "offset_minutes_in",
    "parse_local_time",
    "point_zone",
    "reading_for",
    "zone_countries",
    "zones_with_offset",
]


@dataclass(frozen=True, slots=True)
class OffsetReading:
    offset_minutes: int
    utc: datetime
    zones: tuple[str, ...]
    countries: tuple[str, ...]

    @property
    def offset_text(self) -> str:
        sign = "+" if self.offset_minutes >= 0 else "−"
        minutes = abs(self.offset_minutes)
        return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_local_time(text: str) -> datetime | None:
    """An ISO 8601 time as the import stores it; None when unreadable."""
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def zones_with_offset(utc: datetime, offset: timedelta) -> OffsetReading:
    """The zones whose UTC offset at instant ``utc`` was ``offset``, and their countries."""
    if utc.tzinfo is None:
        raise ValueError("the instant must carry a time zone (use UTC)")
    zones = sorted(z for z in _zones() if utc.astimezone(ZoneInfo(z)).utcoffset() == offset)
    table = zone_countries()
    countries = sorted({c for z in zones for c in table.get(z, ())})
    return OffsetReading(
        int(offset.total_seconds() // 60), utc.astimezone(UTC), tuple(zones), tuple(countries)
    )


def reading_for(local: datetime) -> OffsetReading | None:
    """The zones for a local time that carries its offset; None for a time without one."""
    offset = local.utcoffset()
    if offset is None:
        return None
    return zones_with_offset(local.astimezone(UTC), offset)


@cache
def _zones() -> tuple[str, ...]:
    table = zone_countries()
    # Only zones with a country: "Etc/GMT-5" and the like are not places.
    return tuple(sorted(z for z in available_timezones() if z in table))


def point_zone(lat: float, lon: float) -> str | None:
    """The IANA zone a point lies in (the time-zone polygons; ADR 0055), None at sea or where no
    zone covers it: the nautical ``Etc/GMT±N`` zones are no camera's local time."""
    zone = zone_at(lat, lon)
    return None if zone is None or zone.startswith("Etc/") else zone


def offset_minutes_in(zone: str, utc: datetime) -> int | None:
    """The UTC offset, in minutes, that ``zone`` kept at instant ``utc``; None for a zone the tz
    database does not know."""
    try:
        offset = utc.astimezone(ZoneInfo(zone)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return None if offset is None else int(offset.total_seconds() // 60)
