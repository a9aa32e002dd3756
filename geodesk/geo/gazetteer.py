"""The gazetteer: coordinates -> place (reverse geocoding) and names -> places (lookup, comparison).

Reverse geocoding, per point (vectorised over many):
1. nearest GeoNames place by great-circle distance (unit-sphere KD-tree, exact);
2. the country is the Natural Earth polygon that contains the point, with two corrections for what
   1:110m polygons cannot show (ADR 0003):
   - no polygon contains the point (sea, or a coastline the generalised polygon cuts off, or an
     island too small to draw): the nearest place's country if it is within ``COAST_SNAP_KM``,
     else no country (at sea);
   - the point lies in country A's polygon but the nearest place, within ``TERRITORY_SNAP_KM``,
     belongs to a country with no polygon of its own (Andorra, Singapore, Hong Kong, Svalbard, French
     Guiana...): that country;
   - the border tie-break (ADR 0055): within ``BORDER_BAND_KM`` of a land border, where the 1:10m
     line is generalised, the time-zone polygon at the point decides between the countries whose
     polygons are that near, when its zone covers exactly one of them (``timezones.zone_cover``);
     never in or beside a disputed area, whose answer names its claimants;
3. region and city are those of the nearest place *in the decided country*, so a Place never mixes
   countries; ``distance_km`` is the distance to that place. At sea: no country, region or city,
   and ``distance_km`` is the distance to the nearest place of any country.

Every index is built on first use and kept: ``default_gazetteer()`` returns one shared instance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geodesk.domain.model import Place
from geodesk.geo import timezones
from geodesk.geo.borders import CountryBorders
from geodesk.geo.distance import haversine_km_np
from geodesk.geo.names import (
    CityNames,
    CityRef,
    CountryNames,
    CountryRef,
    NameMatch,
    RegionNames,
    RegionRef,
    country_display_names,
    rank_lookup,
)
from geodesk.geo.places import PlaceIndex
from geodesk.geo.sources import (
    PlaceTable,
    load_countries_geojson,
    load_geonames_countries,
    load_places,
    paused_gc,
)
from geodesk.geo.text import keys_for

COAST_SNAP_KM = 10.0
TERRITORY_SNAP_KM = 50.0
# A point whose nearest place is in another country than its own looks for its country's nearest
# place among this many nearest places first (exact when one is there), then in that country's tree.
OTHER_COUNTRY_NEIGHBOURS = 4
LEVELS = ("country", "region", "city")


@dataclass(frozen=True, slots=True)
class ReverseColumns:
    """Reverse geocoding of N points as parallel columns: entry i is what ``reverse_many`` puts in
    its i-th Place. Strings are shared with the gazetteer's tables (no copy per point)."""

    country_code: list[str | None]
    country: list[str | None]
    region: list[str | None]
    city: list[str | None]
    distance_km: npt.NDArray[np.float64]  # (N,)
    place_index: npt.NDArray[np.int64]  # (N,) row of the reported place in the place table, -1: none
    dispute: list[str | None]  # Natural Earth's note naming the claimants of a disputed area, else None
    border_zone: list[str | None]  # the time zone that overrode the 1:10m answer at a border, else None

    def __len__(self) -> int:
        return len(self.country_code)

    def place(self, i: int) -> Place:
        return Place(
            self.country_code[i], self.country[i], self.region[i], self.city[i], float(self.distance_km[i])
        )


@dataclass(frozen=True, slots=True)
class _ReverseTables:
    """Lookup arrays for reverse geocoding; object arrays end with None so that index -1 gives None."""

    codes: list[str]  # (C,) every country code: place countries and polygon countries
    code_obj: npt.NDArray[np.object_]  # (C + 1,)
    name_obj: npt.NDArray[np.object_]  # (C + 1,) display names
    place_cid: npt.NDArray[np.int64]  # (N,) country id of each place
    polygon_cid: npt.NDArray[np.int64]  # (P,) country id of each border polygon, -1: no country
    dispute_obj: npt.NDArray[np.object_]  # (P + 1,) dispute note of each border polygon
    disputed: npt.NDArray[np.bool_]  # (P + 1,) whether each border polygon has a dispute note
    has_polygon: npt.NDArray[np.bool_]  # (C,) whether the country has a border polygon
    region_obj: npt.NDArray[np.object_]  # (N + 1,) GeoNames admin1 name of each place
    city_obj: npt.NDArray[np.object_]  # (N + 1,) name of each place


def places_from_columns(columns: ReverseColumns) -> list[Place]:
    """One Place per row of ``columns``, in order."""
    rows = zip(columns.country_code, columns.country, columns.region, columns.city,
               columns.distance_km.tolist(), strict=True)
    # Allocating 100k GC-tracked objects triggers ~140 collections that walk them (and the older
    # generations) again and again: half the cost of building them. Places form no reference cycles.
    with paused_gc():
        # tuple.__new__(Place, row) is what Place._make does, without a Python call per row
        return list(map(tuple.__new__, repeat(Place, len(columns)), rows))


def validate_coordinates(
    lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(N,) float arrays, or ValueError naming the first bad point."""
    lat = np.asarray(lats, dtype=np.float64).reshape(-1)
    lon = np.asarray(lons, dtype=np.float64).reshape(-1)
    if lat.shape != lon.shape:
        raise ValueError(f"got {lat.shape[0]} latitudes but {lon.shape[0]} longitudes")
    bad = ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"point {i} ({lat[i]}, {lon[i]}) is not a valid coordinate: latitude must be within -90..90 "
            "and longitude within -180..180, in decimal degrees"
        )
    return lat, lon


class Gazetteer:
    """Reverse geocoding and name look-up over GeoNames places and Natural Earth borders."""

    def __init__(
        self,
        places: PlaceTable | None = None,
        borders: CountryBorders | None = None,
        *,
        border_zones: bool = True,
    ) -> None:
        """``border_zones=False`` leaves out the border tie-break by time-zone polygons (ADR 0055):
        the 1:10m answer alone, for comparison."""
        self._places_table = places
        self._borders = borders
        self._border_zones = border_zones
        self._lock = threading.RLock()

    # ---- lazily built indexes ------------------------------------------------------------------
    @cached_property
    def places(self) -> PlaceIndex:
        with self._lock, paused_gc():
            if self._places_table is None:
                self._places_table = load_places()
            return PlaceIndex(self._places_table)

    @cached_property
    def borders(self) -> CountryBorders:
        with self._lock:
            return self._borders if self._borders is not None else CountryBorders()

    @cached_property
    def countries(self) -> CountryNames:
        with self._lock, paused_gc():
            b = self.borders
            pairs = [
                (code, name)
                for code, name, aliases in zip(b.codes, b.names, b.aliases, strict=True)
                if code is not None
                for name in (name, *aliases)
            ]
            # the 1:110m short names too ("Dem. Rep. Congo"): answers written against that map use them
            outlines = load_countries_geojson()["features"]
            pairs += [(f["properties"]["iso_a2"], f["properties"]["name"]) for f in outlines]
            return CountryNames(extra_names=pairs)

    @cached_property
    def regions(self) -> RegionNames:
        with self._lock, paused_gc():
            return RegionNames(self.places.table)

    @cached_property
    def cities(self) -> CityNames:
        with self._lock, paused_gc():
            return CityNames(self.places.table)

    @cached_property
    def _country_points(self) -> dict[str, tuple[float, float]]:
        """A point inside each country (its largest polygon part's surface point), for lookup results."""
        biggest: dict[str, tuple[float, Any]] = {}
        for code, geom in zip(self.borders.codes, self.borders.geometries, strict=True):
            if code is None:
                continue
            for part in getattr(geom, "geoms", [geom]):
                if code not in biggest or part.area > biggest[code][0]:
                    biggest[code] = (part.area, part)
        out = {}
        for code, (_, part) in biggest.items():
            p = part.representative_point()
            out[code] = (round(float(p.y), 5), round(float(p.x), 5))
        return out

    # ---- reverse geocoding ---------------------------------------------------------------------
    def reverse(self, lat: float, lon: float) -> Place:
        return self.reverse_many([lat], [lon])[0]

    def reverse_many(
        self, lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
    ) -> list[Place]:
        """Places for N points, in order. Raises ValueError for an invalid coordinate."""
        return places_from_columns(self.reverse_columns(lats, lons))

    def reverse_columns(
        self, lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
    ) -> ReverseColumns:
        """What :meth:`reverse_many` answers, as columns (no object per point). Raises ValueError for
        an invalid coordinate."""
        lat, lon = validate_coordinates(lats, lons)
        if lat.shape[0] == 0:
            return ReverseColumns([], [], [], [], np.empty(0), np.empty(0, dtype=np.int64), [], [])
        index = self.places
        t = self._reverse_tables
        d_near, i_near = index.nearest(lat, lon)  # (N,), (N,)
        # Countries as ids into t.codes (the place countries and the polygon countries together);
        # -1 is "no country", and the tables end with a None entry so that id -1 indexes it.
        near = t.place_cid[i_near]  # (N,)
        poly = self.borders.country_indices(lat, lon)  # (N,), -1 outside every polygon
        in_poly = poly >= 0
        cid = np.where(in_poly, t.polygon_cid[poly], -1)  # (N,)
        # Outside every polygon, near a coast the generalised outline cut off: the country of the
        # nearest outline within COAST_SNAP_KM (ADR 0049), else that of the nearest place within it
        # (an island too small to draw). Only points in or beside a cell some polygon touches are
        # asked: the open ocean is at sea without a look at the outlines.
        outside = np.flatnonzero(~in_poly)  # (K,) only these may need the outlines (built lazily)
        if outside.size:
            outside = outside[self.borders.near_outline_cells(lat[outside], lon[outside])]
        off = outside
        snap_outline = np.zeros(lat.shape[0], dtype=bool)
        dispute_poly = poly.copy()  # (N,) whose dispute note a point carries
        if off.size:
            d_edge, edge_poly = self.borders.nearest_outline(lat[off], lon[off], COAST_SNAP_KM)
            edge_cid = np.where(edge_poly >= 0, t.polygon_cid[edge_poly], -1)
            use = (d_edge <= COAST_SNAP_KM) & (edge_cid >= 0)
            cid[off[use]] = edge_cid[use]
            snap_outline[off[use]] = True
            dispute_poly[off[use]] = edge_poly[use]
        snap_coast = ~in_poly & ~snap_outline & (d_near <= COAST_SNAP_KM)
        decided = in_poly | snap_outline  # by a polygon, or the outline next to the point
        snap_territory = decided & (near != cid) & ~t.has_polygon[near] & (d_near <= TERRITORY_SNAP_KM)
        take_near = snap_coast | snap_territory
        cid[take_near] = near[take_near]
        dispute_poly[take_near] = -1
        zone_of = np.full(lat.shape[0], -1, dtype=np.int64)  # (N,) the zone that decided, -1: none did
        if self._border_zones:
            self._border_tie_break(lat, lon, cid, dispute_poly, zone_of)
        at_sea = cid < 0  # (N,)

        # The place: the nearest one where it is in the decided country, else the nearest of that country.
        same = near == cid
        place_idx = np.where(same, i_near, -1)  # (N,)
        place_d = np.where(same, d_near, np.nan)  # (N,)
        other = np.flatnonzero(~same & ~at_sea)
        if other.size:
            # Most such points have a place of the decided country among their few nearest places: the
            # first of those is its nearest (one query for all). The rest ask that country's own tree.
            d_k, i_k = index.nearest(lat[other], lon[other], k=OTHER_COUNTRY_NEIGHBOURS)  # (K, k)
            match = t.place_cid[i_k] == cid[other][:, None]  # (K, k), in order of distance
            found = match.any(axis=1)
            first = match.argmax(axis=1)
            hit = np.flatnonzero(found)
            place_idx[other[hit]] = i_k[hit, first[hit]]
            place_d[other[hit]] = d_k[hit, first[hit]]
            other = other[~found]
            other_cid = cid[other]
            for c in np.unique(other_cid).tolist():
                rows = other[other_cid == c]
                place_d[rows], place_idx[rows] = index.nearest_in_country(lat[rows], lon[rows], t.codes[c])
        no_place = place_idx < 0  # at sea, or a country without any GeoNames place (Antarctica)
        place_d[no_place] = d_near[no_place]

        # Columns by fancy indexing into object arrays: every string is the one the tables hold.
        return ReverseColumns(
            country_code=t.code_obj[cid].tolist(),
            country=t.name_obj[cid].tolist(),
            region=t.region_obj[place_idx].tolist(),
            city=t.city_obj[place_idx].tolist(),
            distance_km=place_d,
            place_index=place_idx,
            dispute=t.dispute_obj[dispute_poly].tolist(),
            border_zone=self._zone_names_obj[zone_of].tolist() if (zone_of >= 0).any() else [None] * len(cid),
        )

    def _border_tie_break(
        self,
        lat: npt.NDArray[np.float64],
        lon: npt.NDArray[np.float64],
        cid: npt.NDArray[np.int64],
        dispute_poly: npt.NDArray[np.int64],
        zone_of: npt.NDArray[np.int64],
    ) -> None:
        """The time-zone polygon decides the country of points in the border band (ADR 0055).

        A point within BORDER_BAND_KM of a land border has as candidates the countries whose polygons'
        shared lines pass that close. Where its answer so far is one of them, no candidate polygon
        (nor the point's own) is disputed, and the point's zone covers exactly one candidate, that one
        is the answer: ``cid`` changes in place, and ``zone_of`` records the zone that decided. A zone
        that covers two candidates (it spans their border) or none (a sea zone) leaves the 1:10m
        answer as it is."""
        rows, start, polys = self.borders.border_band(lat, lon)  # (K,), (K + 1,), (P,)
        if rows.size == 0:
            return
        t = self._reverse_tables
        n_codes = len(t.codes)
        point = np.repeat(np.arange(rows.size), np.diff(start))  # (P,) position in ``rows``
        near_disputed = np.bincount(point, weights=t.disputed[polys], minlength=rows.size) > 0  # (K,)
        near_disputed |= t.disputed[dispute_poly[rows]]
        pc = t.polygon_cid[polys]  # (P,) candidate countries, -1: a polygon of no country
        pair = np.unique(point[pc >= 0] * n_codes + pc[pc >= 0])  # distinct (point, country)
        kp, kc = np.divmod(pair, n_codes)  # (Q,), (Q,)
        n_cand = np.bincount(kp, minlength=rows.size)  # (K,)
        answer_is_candidate = np.zeros(rows.size, dtype=bool)
        answer_is_candidate[kp[kc == cid[rows][kp]]] = True
        ask = np.flatnonzero((n_cand >= 2) & answer_is_candidate & ~near_disputed)  # positions in rows
        if ask.size == 0:
            return
        cover = self._zone_cover_matrix  # (Z, C) zone covers country
        zone = np.full(rows.size, -1, dtype=np.int64)
        zone[ask] = timezones.default_zone_finder().zone_ids(lat[rows[ask]], lon[rows[ask]])
        zk = zone[kp]  # (Q,)
        covered = np.zeros(kp.size, dtype=bool)
        covered[zk >= 0] = cover[zk[zk >= 0], kc[zk >= 0]]
        n_cover = np.bincount(kp[covered], minlength=rows.size)  # (K,)
        pick = np.full(rows.size, -1, dtype=np.int64)
        pick[kp[covered]] = kc[covered]  # the one covered candidate where n_cover == 1
        change = (n_cover == 1) & (pick != cid[rows])
        cid[rows[change]] = pick[change]
        zone_of[rows[change]] = zone[change]

    @cached_property
    def _zone_cover_matrix(self) -> npt.NDArray[np.bool_]:
        """(Z, C) whether zone z (the time-zone finder's ids) covers country c (``_reverse_tables``'
        ids): :func:`timezones.zone_cover` as a table (read from the geography cache)."""
        with self._lock:
            t = self._reverse_tables
            names = timezones.default_zone_finder().names
            cover = timezones.zone_cover(self.borders)
            cid = {cc: k for k, cc in enumerate(t.codes)}
            out = np.zeros((len(names), len(t.codes)), dtype=bool)
            for z, name in enumerate(names):
                for code in cover.get(name, ()):
                    if code in cid:
                        out[z, cid[code]] = True
            return out

    @cached_property
    def _zone_names_obj(self) -> npt.NDArray[np.object_]:
        """(Z + 1,) zone names by id, ending with None for id -1."""
        names = timezones.default_zone_finder().names
        out = np.empty(len(names) + 1, dtype=object)
        out[:-1] = names
        return out

    @cached_property
    def _reverse_tables(self) -> _ReverseTables:
        """Built once, on the first reverse geocoding: per-country and per-place lookup arrays."""
        with self._lock, paused_gc():
            table = self.places.table
            place_codes = self.places.country_ids  # code -> id in PlaceIndex.place_country_id
            polygon_codes = self.borders.codes
            codes = sorted(set(place_codes) | {c for c in polygon_codes if c is not None})
            cid = {cc: k for k, cc in enumerate(codes)}
            remap = np.asarray([cid[cc] for cc in sorted(place_codes, key=place_codes.__getitem__)])
            names = country_display_names()
            has_polygon = np.zeros(len(codes), dtype=bool)
            has_polygon[[cid[cc] for cc in polygon_codes if cc is not None]] = True
            interned: dict[str, str] = {}  # one string object per distinct region name

            def obj(values: Sequence[str | None]) -> npt.NDArray[np.object_]:
                out = np.empty(len(values) + 1, dtype=object)  # last entry: None, for index -1
                out[:-1] = values
                return out

            return _ReverseTables(
                codes=codes,
                code_obj=obj(codes),
                name_obj=obj([names.get(cc, cc) for cc in codes]),
                place_cid=remap[self.places.place_country_id],
                polygon_cid=np.asarray([-1 if cc is None else cid[cc] for cc in polygon_codes], np.int64),
                dispute_obj=obj(self.borders.disputes),
                disputed=np.asarray([d is not None for d in self.borders.disputes] + [False], dtype=bool),
                has_polygon=has_polygon,
                region_obj=obj([None if r is None else interned.setdefault(r, r) for r in table.region]),
                city_obj=obj(table.name),
            )

    def named_columns(
        self, lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
    ) -> ReverseColumns:
        """Like :meth:`reverse_columns`, but region and city are those of the place a person would name
        (ADR 0033): the country's place with the smallest distance / reach, where a place's reach grows
        with the square root of its population, so the Eiffel Tower is in Paris, not in the nearest
        suburb. Country and dispute are the same as :meth:`reverse_columns`'s. Evaluation keeps the
        nearest-place rule (OSV-5M parity); the desktop app and the CLI show this one."""
        lat, lon = validate_coordinates(lats, lons)
        base = self.reverse_columns(lat, lon)
        if len(base) == 0:
            return base
        index, t = self.places, self._reverse_tables
        place_country = np.full(lat.shape[0], -1, dtype=np.int64)
        has_place = base.place_index >= 0
        place_country[has_place] = index.place_country_id[base.place_index[has_place]]
        named = index.named(lat, lon, base.place_index, place_country)  # (N,)
        dist = np.where(
            named >= 0,
            haversine_km_np(lat, lon, index.table.lat[named], index.table.lon[named]),
            base.distance_km,
        )
        return dataclasses.replace(
            base,
            region=t.region_obj[named].tolist(),
            city=t.city_obj[named].tolist(),
            distance_km=dist,
            place_index=named,
        )

    def named_place(self, lat: float, lon: float) -> Place:
        """The Place a person would name for one point (see :meth:`named_columns`)."""
        return self.named_columns([lat], [lon]).place(0)

    # ---- names ---------------------------------------------------------------------------------
    def country(self, name_or_code: str) -> CountryRef | None:
        if not name_or_code or not name_or_code.strip():
            return None
        hit = self.countries.resolve(name_or_code)
        return None if hit is None else CountryRef(hit[0], self.countries.name(hit[0]))

    def region(self, name: str, country_code: str | None = None) -> RegionRef | None:
        if not name or not name.strip():
            return None
        cc = self._country_filter(country_code)
        hits = self.regions.candidates(name, cc)
        return self.regions.ref(hits[0][0]) if hits else None

    def city(self, name: str, country_code: str | None = None) -> CityRef | None:
        """The most populous city with that name or alternate name (in that country, when given)."""
        if not name or not name.strip():
            return None
        hits = self.cities.candidates(name, self._country_filter(country_code))
        return self.cities.ref(hits[0][0]) if hits else None

    def _country_filter(self, country_code: str | None) -> str | None:
        """Accept a code or a country name for the ``country_code`` filter."""
        if not country_code:
            return None
        ref = self.country(country_code)
        return ref.code if ref is not None else country_code.upper()

    def lookup(self, name: str, limit: int = 10, kind: str | None = None) -> list[NameMatch]:
        """Countries, regions and cities called ``name``, best first; prefixes fill up short lists."""
        return rank_lookup(self.countries, self.regions, self.cities, self.country_point, name, limit, kind)

    def country_point(self, code: str) -> tuple[float, float] | None:
        """The point a country match carries: inside its largest border part, else its capital."""
        point = self._country_points.get(code)
        if point is None:  # too small for the borders: use its capital
            capital_name = self._capitals.get(code)
            capital = self.city(capital_name, code) if capital_name else None
            point = (capital.lat, capital.lon) if capital is not None else None
        return point

    @cached_property
    def _capitals(self) -> dict[str, str]:
        return {c["iso"]: str(c.get("capital") or "") for c in load_geonames_countries()}

    # ---- comparison ----------------------------------------------------------------------------
    def same_place(self, level: str, a: str | None, b: str | None, country_code: str | None = None) -> bool:
        """Do two names denote the same country / region / city? Alias-, code- and suffix-aware.

        Empty or missing names are never the same as anything. ``country_code`` narrows regions and
        cities to one country (a code or a country name).
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
        if not a or not b or not a.strip() or not b.strip():
            return False
        cc = self._country_filter(country_code) if level != "country" else None
        return self._same_cached(level, a.strip(), b.strip(), cc)

    @lru_cache(maxsize=65536)  # noqa: B019 (one long-lived instance; the cache is its point)
    def _same_cached(self, level: str, a: str, b: str, cc: str | None) -> bool:
        ka, kb = keys_for(a), keys_for(b)
        if ka[0] == kb[0] or ka[1] == kb[1]:
            return True
        if level == "country":
            ra, rb = self.countries.resolve(a), self.countries.resolve(b)
            return ra is not None and rb is not None and ra[0] == rb[0]
        if level == "region":
            sa = {i for i, _ in self.regions.candidates(a, cc)}
            sb = {i for i, _ in self.regions.candidates(b, cc)}
            return bool(sa & sb)
        # city: the best reading of one name is among the readings of the other
        ca = [i for i, _ in self.cities.candidates(a, cc)]
        cb = [i for i, _ in self.cities.candidates(b, cc)]
        if not ca or not cb:
            return False
        return ca[0] in set(cb) or cb[0] in set(ca)


_default: Gazetteer | None = None
_default_lock = threading.Lock()


def default_gazetteer() -> Gazetteer:
    """The shared gazetteer; its indexes are built on first use of each and then kept."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Gazetteer()
    return _default


def prepare_cache() -> list[Path]:
    """Build (or check) the geography cache: the 1:10m borders and the place table (ADR 0049) and the
    place-name index (ADR 0046); the cache files now in place (none when the folder cannot be written)."""
    from geodesk.geo import cache, name_store

    load_places()
    timezones.zone_cover(CountryBorders())
    with contextlib.suppress(OSError):  # an unwritable folder only costs the speed-up (listed below)
        name_store.open_store().close()
    names = [f"{n}.npz" for n in ("places", "borders_10m", "zone_cover")] + [name_store.FILE_NAME]
    return [p for p in (cache.cache_dir() / n for n in names) if p.is_file()]
