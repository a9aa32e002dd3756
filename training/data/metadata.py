"""Metadata tables in OSV-5M's layout, the image folder beside them, and place names.

OSV-5M's ``train.csv`` has ``id, latitude, longitude, ..., country, region, sub-region, city`` (plus
columns we ignore: thumbnail, land cover, climate ...). ``country`` is an ISO 3166-1 alpha-2 code;
region and city are names. Images are ``<id>.<ext>`` somewhere under the image folder (OSV-5M shards
them into numbered sub-folders), so the folder is indexed once by file stem.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from training.data.common import DataError

REQUIRED_COLUMNS = ("id", "latitude", "longitude", "country", "region", "sub-region", "city")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class MetaRow:
    """One row of the metadata table. ``line`` is its line number in the CSV (for messages)."""

    id: str
    lat: float
    lon: float
    country: str  # as written: an ISO code in OSV-5M
    region: str | None
    sub_region: str | None
    city: str | None
    line: int

    def as_location(self) -> dict[str, object]:
        return {"country": self.country, "region": self.region, "city": self.city, "lat": self.lat,
                "lon": self.lon}


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    id: str
    reason: str


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def read_metadata(path: Path) -> tuple[list[MetaRow], list[BadRow]]:
    """Rows of an OSV-5M style CSV. Rows with unusable coordinates or no id are returned as bad rows
    (reported, not fatal); a missing column or an unreadable file raises DataError."""
    if not path.is_file():
        raise DataError(f"the metadata table {path} does not exist")
    rows: list[MetaRow] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"{path} lacks the column(s) {', '.join(missing)}; an OSV-5M style table needs "
                    f"{', '.join(REQUIRED_COLUMNS)} (other columns are ignored)"
                )
            reader.fieldnames = header
            for raw in reader:
                line = reader.line_num
                row_id = (raw.get("id") or "").strip()
                if not row_id:
                    bad.append(BadRow(line, "", "no id"))
                    continue
                if row_id in seen:
                    bad.append(BadRow(line, row_id, "duplicate id (the first row with it is used)"))
                    continue
                try:
                    lat = float(raw.get("latitude") or "nan")
                    lon = float(raw.get("longitude") or "nan")
                except ValueError:
                    bad.append(BadRow(line, row_id, "latitude/longitude are not numbers"))
                    continue
                if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
                    bad.append(BadRow(line, row_id, f"coordinates ({lat}, {lon}) are not a point on Earth"))
                    continue
                country = _text(raw.get("country"))
                if country is None:
                    bad.append(BadRow(line, row_id, "no country"))
                    continue
                seen.add(row_id)
                rows.append(MetaRow(row_id, lat, lon, country, _text(raw.get("region")),
                                    _text(raw.get("sub-region")), _text(raw.get("city")), line))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason}); save the table as UTF-8 CSV") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a readable CSV ({exc})") from None
    return rows, bad


def index_images(root: Path) -> dict[str, str]:
    """``{file stem: path relative to root}`` for every image under ``root`` (first in sorted order wins)."""
    if not root.is_dir():
        raise DataError(f"the image folder {root} does not exist")
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            stem, ext = Path(name).stem, Path(name).suffix
            if ext.lower() in IMAGE_EXTENSIONS and not name.startswith(".") and stem not in found:
                found[stem] = Path(folder, name).relative_to(root).as_posix()
    return found


def iter_with_images(
    rows: list[MetaRow], images: dict[str, str], on_missing: Callable[[MetaRow], None]
) -> Iterator[tuple[MetaRow, str]]:
    for row in rows:
        rel = images.get(row.id)
        if rel is None:
            on_missing(row)
            continue
        yield row, rel


class PlaceNamer:
    """Country codes and spellings to the gazetteer's names (``FR`` -> ``France``); unknown ones kept."""

    def __init__(self, gazetteer: object | None = None) -> None:
        if gazetteer is None:
            from geodesk.geo import default_gazetteer

            gazetteer = default_gazetteer()
        self._gazetteer = gazetteer
        self.unknown: set[str] = set()

    def country(self, name_or_code: str) -> tuple[str | None, str]:
        """(ISO code or None, display name)."""
        ref = self._gazetteer.country(name_or_code)  # type: ignore[attr-defined]
        if ref is None:
            self.unknown.add(name_or_code)
            return None, name_or_code
        return str(ref.code), str(ref.name)

    def reverse(self, lat: float, lon: float) -> tuple[str | None, str | None, str | None, str | None]:
        """(code, country, region, city) of a point by the gazetteer's reverse geocoding."""
        place = self._gazetteer.reverse(lat, lon)  # type: ignore[attr-defined]
        return place.country_code, place.country, place.region, place.city


def place_text(city: str | None, region: str | None, country: str | None) -> str:
    """'Lyon, Auvergne-Rhône-Alpes, France' without empty or repeated parts."""
    parts: list[str] = []
    for part in (city, region, country):
        if part and part not in parts:
            parts.append(part)
    return ", ".join(parts)
