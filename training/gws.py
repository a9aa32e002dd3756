"""A GWS15k-style benchmark from a pool of geotagged images: GaGA's Algorithm 1 (section V-A1).

Algorithm 1, as printed::

    COMPUTEPROB: for each country c:  P_base[c] = Area[c] / A_total,  P_adj[c] = 0.5 P_base[c] + 0.5 / |Co|
    GENVALIDLOC: V = {}
      while |V| < N_max:
        normalise P_adj; c_s ~ Co with P_adj
        S = {cities of c_s};  s_s ~ S (uniform);  coord_c = s_s.coordinates
        for each coord in Coord:  if haversine(coord_c, coord) <= R and coord not in V: add coord to V
      return V

Followed exactly where it is specific:

- the country is drawn with P_adj every iteration (P_adj sums to 1 already, so "normalise" is a no-op),
  then a city of that country uniformly;
- EVERY pool point within R = 5 km of the city (``d <= R``: inclusive, as printed) that is not yet in V
  is added: without replacement, and all of them, so the last city may push |V| past N_max. That is
  the paper's output; ``exact_n=True`` keeps the first N in the order they were added instead;
- a draw that adds nothing (no pool point near that city, or all already taken) simply goes round the
  loop again: a fresh country, then a fresh city.

Fixed where the paper is silent (documented in ADR 0012):

- Co is the Natural Earth 1:10m countries (ADR 0032: ISO alpha-2, Germany's point of view, so
  Somaliland and Northern Cyprus are in SO and CY as GeoNames files them; Singapore, Hong Kong,
  Malta, Bahrain... have their own polygons, which the 1:110m map could not draw: 212 countries with
  cities instead of 172) that have at least one city in C. France's and the Netherlands' overseas
  departments (GF, GP, MQ, RE, YT, BQ) are part of those countries' polygons in Natural Earth and
  GeoNames files their cities under their own codes, so they still cannot be drawn; a country
  without cities cannot be sampled from
  (Antarctica). Areas are geodesic: each polygon's vertices are densified to 0.25 degree steps and
  projected onto the Lambert cylindrical equal-area projection of the sphere R = 6371 km (x = R lon,
  y = R sin lat), where planar area is true spherical area; A_total sums over Co.
- C is GeoNames places with population >= 10,000 (39,487 places: the closest GeoNames cut to the
  paper's "43K cities"), from the gazetteer's table.
- Coord is the pool; distances are haversine (``geodesk.geo.distance``), candidates found with a
  unit-sphere KD-tree and then checked exactly.
- the loop stops with an error when every pool point reachable from C is in V (it could never end).

Deterministic per seed: one ``numpy.random.Generator(PCG64(seed))`` draws everything in order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geodesk.geo.distance import EARTH_RADIUS_KM, haversine_km_np

RADIUS_KM = 5.0
MIN_CITY_POPULATION = 10_000
DENSIFY_DEG = 0.25
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class SamplingError(ValueError):
    """The pool cannot give what was asked; the message says how many it can."""


@dataclass(frozen=True, slots=True)
class Cities:
    """C: cities with their country code and coordinates, as parallel arrays (M,)."""

    country: Sequence[str]
    lat: FloatArray
    lon: FloatArray
    name: Sequence[str]


@dataclass(slots=True)
class GwsResult:
    indices: list[int]  # pool row indices, in the order they were added to V
    country: list[str]  # the drawn country of each added point
    city: list[str]  # the drawn city of each added point
    probabilities: dict[str, float]  # P_adj
    draws: dict[str, int] = field(default_factory=dict)  # country draws, including those adding nothing
    empty_draws: int = 0
    overflow: int = 0  # points beyond N that the last city added (0 with exact_n)

    def summary(self, n_requested: int, seed: int) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for cc in self.country:
            counts[cc] = counts.get(cc, 0) + 1
        total_draws = sum(self.draws.values())
        n = len(self.indices)
        per_country = {
            cc: {
                "p": round(p, 8),
                "draws": self.draws.get(cc, 0),
                "draw_share": round(self.draws.get(cc, 0) / total_draws, 8) if total_draws else 0.0,
                "samples": counts.get(cc, 0),
                "share": round(counts.get(cc, 0) / n, 8) if n else 0.0,
            }
            for cc, p in sorted(self.probabilities.items(), key=lambda kv: -kv[1])
        }
        return {
            "n_requested": n_requested,
            "n": n,
            "seed": seed,
            "radius_km": RADIUS_KM,
            "countries_in_co": len(self.probabilities),
            "countries_sampled": len(counts),
            "draws": total_draws,
            "empty_draws": self.empty_draws,
            "overflow": self.overflow,
            "countries": per_country,
        }


def _ring_area_km2(ring: Sequence[Sequence[float]]) -> float:
    """Signed area of one lon/lat ring on the sphere, via the cylindrical equal-area projection."""
    import shapely

    line = shapely.segmentize(shapely.LineString(ring), DENSIFY_DEG)
    coords = np.asarray(line.coords)  # (K, 2): lon, lat in degrees
    x = EARTH_RADIUS_KM * np.radians(coords[:, 0])
    y = EARTH_RADIUS_KM * np.sin(np.radians(coords[:, 1]))
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))  # shoelace


def polygon_area_km2(geometry: Mapping[str, Any]) -> float:
    """Geodesic area of a GeoJSON Polygon / MultiPolygon in km² (holes subtracted)."""
    kind = geometry["type"]
    polygons = geometry["coordinates"] if kind == "MultiPolygon" else [geometry["coordinates"]]
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"expected a Polygon or MultiPolygon, got {kind}")
    total = 0.0
    for polygon in polygons:
        outer, *holes = polygon
        total += abs(_ring_area_km2(outer)) - sum(abs(_ring_area_km2(h)) for h in holes)
    return total


def natural_earth_areas(geojson: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Country code -> geodesic area (km²) over the Natural Earth 1:10m countries (or the features,
    with ``iso_a2`` properties, of ``geojson``). Areas without a country (Bir Tawil) are left out."""
    from shapely.geometry import mapping

    from geodesk.geo.sources import load_countries_10m

    if geojson is not None:
        pairs = [(str(f["properties"]["iso_a2"]), f["geometry"]) for f in geojson["features"]]
    else:
        pairs = [(f.code, mapping(f.geometry)) for f in load_countries_10m() if f.code is not None]
    areas: dict[str, float] = {}
    for code, geometry in pairs:
        areas[code] = areas.get(code, 0.0) + polygon_area_km2(geometry)
    return areas


def gazetteer_cities(min_population: int = MIN_CITY_POPULATION) -> Cities:
    """C: GeoNames places of at least ``min_population`` people (the gazetteer's table)."""
    from geodesk.geo import default_gazetteer

    table = default_gazetteer().places.table
    keep = np.flatnonzero(table.population >= min_population)
    return Cities(
        [table.country_code[i] for i in keep.tolist()],
        table.lat[keep],
        table.lon[keep],
        [table.name[i] for i in keep.tolist()],
    )


def country_probabilities(areas: Mapping[str, float]) -> dict[str, float]:
    """COMPUTEPROB: P_adj[c] = 0.5 * Area[c] / A_total + 0.5 / |Co|."""
    if not areas:
        raise SamplingError("no country to sample from")
    total = float(sum(areas.values()))
    if total <= 0:
        raise SamplingError("the countries' total area is zero")
    k = len(areas)
    return {cc: 0.5 * a / total + 0.5 / k for cc, a in areas.items()}


def _unit(lat: FloatArray, lon: FloatArray) -> FloatArray:
    phi, lmb = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)))


def sample_gws(
    pool_lat: Sequence[float] | FloatArray,
    pool_lon: Sequence[float] | FloatArray,
    n: int,
    seed: int,
    cities: Cities,
    areas: Mapping[str, float],
    *,
    radius_km: float = RADIUS_KM,
    exact_n: bool = False,
) -> GwsResult:
    """GENVALIDLOC over a pool of N points; see the module docstring."""
    from scipy.spatial import cKDTree

    if n < 1:
        raise SamplingError("n must be at least 1")
    plat = np.asarray(pool_lat, dtype=np.float64)
    plon = np.asarray(pool_lon, dtype=np.float64)
    city_cc = np.asarray(cities.country, dtype=object)
    # Co: countries with an area and at least one city
    with_cities = set(city_cc.tolist())
    co = {cc: a for cc, a in areas.items() if cc in with_cities and a > 0}
    probs = country_probabilities(co)
    codes = sorted(co)
    p = np.asarray([probs[c] for c in codes])
    p = p / p.sum()  # "Normalize P_adj" (a no-op up to rounding)
    members = {cc: np.flatnonzero(city_cc == cc) for cc in codes}

    # Every city's pool points within R, found once: chord radius for the arc R (plus a hair), exact check.
    chord = 2.0 * math.sin(radius_km / EARTH_RADIUS_KM / 2.0) * (1 + 1e-9)
    tree = cKDTree(_unit(plat, plon))
    city_xyz = _unit(np.asarray(cities.lat, dtype=np.float64), np.asarray(cities.lon, dtype=np.float64))
    near: list[IntArray] = []
    for i, hits in enumerate(tree.query_ball_point(city_xyz, r=chord)):
        idx = np.asarray(sorted(hits), dtype=np.int64)
        if idx.size:
            d = haversine_km_np(cities.lat[i], cities.lon[i], plat[idx], plon[idx])
            idx = idx[d <= radius_km]
        near.append(idx)
    reachable = np.zeros(plat.shape[0], dtype=bool)
    for cc in codes:
        for i in members[cc].tolist():
            reachable[near[i]] = True
    available = int(reachable.sum())
    if available < n:
        raise SamplingError(
            f"only {available} pool point(s) lie within {radius_km:g} km of a city of a sampled country; "
            f"ask for at most {available}, or give a larger pool"
        )

    rng = np.random.Generator(np.random.PCG64(seed))
    taken = np.zeros(plat.shape[0], dtype=bool)
    result = GwsResult([], [], [], probs, {cc: 0 for cc in codes})
    left = available  # reachable points not yet taken: the loop can always make progress while > 0
    while len(result.indices) < n:
        cc = codes[int(rng.choice(len(codes), p=p))]
        city = int(members[cc][int(rng.integers(members[cc].size))])
        result.draws[cc] += 1
        new = near[city][~taken[near[city]]]
        if new.size == 0:
            result.empty_draws += 1
            continue
        taken[new] = True
        left -= int(new.size)
        result.indices.extend(new.tolist())
        result.country.extend([cc] * int(new.size))
        result.city.extend([cities.name[city]] * int(new.size))
        if left == 0 and len(result.indices) < n:  # unreachable given the check above; kept as a guard
            raise SamplingError("the pool ran out of reachable points")
    extra = len(result.indices) - n
    if exact_n and extra > 0:
        del result.indices[n:], result.country[n:], result.city[n:]
    else:
        result.overflow = extra
    return result
