"""UTC offset on a date -> the time zones and countries that used it (IANA tz history via zoneinfo).

A photo's EXIF time with its offset (``OffsetTimeOriginal``: ``+05:30``) says which offset the camera
clock kept. The zones that had that offset at that instant (daylight saving included, and every
historical change the tz database records) and the countries of those zones (``zone.tab`` in the
``tzdata`` package) are where the camera could have been set to local time. A camera left on home
time or UTC gives a wrong offset, so this is a strong clue, not proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, available_timezones


@cache
def zone_countries() -> dict[str, tuple[str, ...]]:
    """IANA zone -> ISO alpha-2 countries, from tzdata's zone.tab and zone1970.tab."""
    table: dict[str, set[str]] = {}
    for name in ("zone.tab", "zone1970.tab"):
        text = resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            for code in fields[0].split(","):
                table.setdefault(fields[2], set()).add(code)
    return {zone: tuple(sorted(codes)) for zone, codes in table.items()}


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
