"""Which IANA time zone a point lies in, and which countries each zone covers.

Two uses, one lookup (ADR 0055):
- the border tie-break of reverse geocoding: near a land border the 1:10m admin-0 line is
  generalised by up to a few km, while the time-zone polygons follow national borders at
  OpenStreetMap resolution wherever a zone stops at one. :func:`zone_cover` says, from geometry
  alone, which countries each zone really covers, so a zone that spans two countries (Asia/Jerusalem
  over the West Bank, Europe/Belgrade over Kosovo, Asia/Bangkok over northern Vietnam) never decides
  between them;
- the clue engine's capture-time check: the GPS point's own zone and its offset on that date.

Source: the timezone-boundary-builder polygons (built from OpenStreetMap boundaries, ODbL 1.0) as
the ``timezonefinder-data`` wheel ships them, read by ``timezonefinder`` (MIT), both pinned. The
lookup reads the wheel's files only; nothing is downloaded. Zone -> countries for the clue engine
comes from tzdata's ``zone.tab`` / ``zone1970.tab`` (:func:`zone_countries`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from geodesk.geo import cache as geo_cache
from geodesk.geo.sources import GeoDataError

if TYPE_CHECKING:
    from geodesk.geo.borders import CountryBorders

TZ_DATA_PACKAGE = "timezonefinder_data"
# the files that identify the polygons (names, the polygon -> zone table, vertex counts, the index):
# hashed for the geography cache's key instead of the 60 MB of coordinates
TZ_DATA_KEY_FILES = (
    "data_version.txt",
    "timezone_names.txt",
    "zone_ids.npy",
    "shortcuts.bin",
    "boundaries/nr_vertices.npy",
    "holes/nr_vertices.npy",
)
# A zone covers a country when at least COVER_MIN_SAMPLES points of a 0.05-degree sample grid within
# COVER_REACH_KM of a land border lie in that country's 1:10m polygon, in the zone, and more than
# COVER_SLOP_KM from the border: farther than the two lines' generalisation differs. Each sample
# stands for ~25 km², so that is ~75 km² of the zone well inside the country.
COVER_SLOP_KM = 5.0
COVER_REACH_KM = 20.0
COVER_MIN_SAMPLES = 3
COVER_STEP_DEG = 0.05


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


def data_dir() -> Path:
    """The time-zone polygons' folder inside the ``timezonefinder-data`` wheel (found without
    importing it), or GeoDataError saying how to install it."""
    spec = importlib.util.find_spec(TZ_DATA_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        data = Path(folder) / "data"
        if (data / "timezone_names.txt").is_file():
            return data
    raise GeoDataError(
        "the time-zone polygons (the timezonefinder-data package) are not installed; reinstall "
        "geodesk's dependencies (pip install -e . in the checkout, or the offline bundle)"
    )


def data_key_files() -> list[Path]:
    data = data_dir()
    return [data / name for name in TZ_DATA_KEY_FILES if (data / name).is_file()]


def data_version() -> str:
    """The two pinned packages' versions, e.g. ``timezonefinder 9.0.0, data 3.2026.3.post1``."""
    try:
        code = importlib.metadata.version("timezonefinder")
        data = importlib.metadata.version("timezonefinder-data")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
    return f"timezonefinder {code}, data {data}"


class ZoneFinder:
    """Point -> IANA zone over the timezone-boundary-builder polygons (with the oceans' Etc zones).

    The finder (its index and a memory map of the coordinates, ~0.6 s to import and open) is made on
    the first question and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finder: Any = None

    def _tf(self) -> Any:
        if self._finder is None:
            with self._lock:
                if self._finder is None:
                    data_dir()  # a clear error when the data package is missing
                    try:
                        from timezonefinder import TimezoneFinder
                    except ImportError as exc:
                        raise GeoDataError(
                            f"the time-zone lookup (timezonefinder) cannot be imported ({exc}); reinstall "
                            "geodesk's dependencies (pip install -e . in the checkout, or the offline bundle)"
                        ) from exc
                    self._finder = TimezoneFinder()
        return self._finder

    @property
    def names(self) -> list[str]:
        """Zone names; a zone id is an index into this list."""
        return list(self._tf().timezone_names)

    def zone_ids(
        self, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]:
        """(N,) zone id of each point (an index into :attr:`names`), -1 where no zone covers it."""
        lat = np.ascontiguousarray(lats, dtype=np.float64).reshape(-1)
        lon = np.ascontiguousarray(lons, dtype=np.float64).reshape(-1)
        if lat.shape[0] == 0:
            return np.empty(0, dtype=np.int64)
        ids = self._tf().timezone_ids_at(lngs=lon, lats=lat, on_invalid="skip")
        return np.asarray(ids, dtype=np.int64)

    def zone_at(self, lat: float, lon: float) -> str | None:
        """The IANA zone at one point (at sea: an ``Etc/GMT±N`` zone), None where none covers it."""
        zid = int(self.zone_ids(np.asarray([lat]), np.asarray([lon]))[0])
        return self.names[zid] if zid >= 0 else None


_finder = ZoneFinder()


def default_zone_finder() -> ZoneFinder:
    """The shared finder (one memory map of the polygons per process)."""
    return _finder


def zone_at(lat: float, lon: float) -> str | None:
    """The IANA zone at a point (see :meth:`ZoneFinder.zone_at`)."""
    return _finder.zone_at(lat, lon)


def zone_cover(borders: CountryBorders) -> dict[str, tuple[str, ...]]:
    """Zone name -> the countries whose 1:10m polygons it covers beyond the border's slop.

    Decided from geometry only (no place votes): a 0.05-degree grid of points within COVER_REACH_KM
    of a land border is looked up in both polygon sets; the points more than COVER_SLOP_KM from every
    land border count, and a zone covers a country where at least COVER_MIN_SAMPLES of them lie in
    both. A zone that stops at a border covers one side only (its polygon and the 1:10m line differ
    by less than the slop); one that spans the border covers both. Kept in the geography cache,
    keyed by the borders' and the polygons' sources (~3 s to build)."""
    key = geo_cache.source_key(
        [*borders.source_files(), Path(__file__), *data_key_files()], salt=f"zone-cover/{data_version()}"
    )

    def build() -> geo_cache.Arrays:
        cover = _build_zone_cover(borders, default_zone_finder())
        zones = sorted(cover)
        arrays: geo_cache.Arrays = {}
        arrays["zones_bytes"], arrays["zones_none"] = geo_cache.pack_strings(zones)
        joined = (",".join(cover[z]) for z in zones)
        arrays["codes_bytes"], arrays["codes_none"] = geo_cache.pack_strings(joined)
        return arrays

    if not borders.source_files():  # a world built in memory (tests): nothing to key a file by
        return _build_zone_cover(borders, default_zone_finder())
    arrays = geo_cache.cached("zone_cover", key, build)
    zones = geo_cache.unpack_strings(arrays["zones_bytes"], arrays["zones_none"])
    codes = geo_cache.unpack_strings(arrays["codes_bytes"], arrays["codes_none"])
    return {str(z): tuple(str(c).split(",")) if c else () for z, c in zip(zones, codes, strict=True)}


def _build_zone_cover(borders: CountryBorders, finder: ZoneFinder) -> dict[str, tuple[str, ...]]:
    lat, lon = borders.border_samples(COVER_REACH_KM, COVER_STEP_DEG)  # (S,) grid points near borders
    core = borders.border_km(lat, lon, COVER_SLOP_KM) > COVER_SLOP_KM  # (S,) beyond the slop
    lat, lon = lat[core], lon[core]
    poly = borders.country_indices(lat, lon)  # (S',)
    zid = finder.zone_ids(lat, lon)  # (S',)
    code_of = {k: c for k, c in enumerate(borders.codes) if c is not None}
    keep = (zid >= 0) & np.isin(poly, list(code_of))
    names = finder.names
    pairs, counts = np.unique(np.stack([zid[keep], poly[keep]]), axis=1, return_counts=True)
    tally: dict[tuple[str, str], int] = {}
    for (z, p), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
        pair = (names[z], code_of[p])
        tally[pair] = tally.get(pair, 0) + n  # a country of several polygons counts once
    cover: dict[str, set[str]] = {}
    for (zone, code), n in tally.items():
        if n >= COVER_MIN_SAMPLES:
            cover.setdefault(zone, set()).add(code)
    return {zone: tuple(sorted(codes)) for zone, codes in cover.items()}
