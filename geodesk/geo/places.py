"""Nearest populated place by true great-circle distance: a KD-tree on 3-D unit-sphere vectors.

A KD-tree over (lat, lon) degrees measures the wrong distance (a degree of longitude shrinks with
cos(lat), and the date line splits neighbours), so it picks the wrong place for many points. On the
unit sphere the straight-line chord between two points is 2*sin(theta/2) for the central angle theta,
which grows monotonically with theta on [0, pi]: the nearest point by chord is the nearest by arc,
exactly, and scipy's cKDTree finds it in O(log N).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from geodesk.geo.distance import haversine_km_np
from geodesk.geo.sources import PlaceTable

# KD-tree queries split the points over all cores (-1); results do not depend on it.
QUERY_WORKERS = -1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def unit_vectors(lat: FloatArray, lon: FloatArray) -> FloatArray:
    """(N,) degrees -> (N, 3) points on the unit sphere (x towards 0°E, z towards the north pole)."""
    phi = np.radians(lat)
    lmb = np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lmb), cos_phi * np.sin(lmb), np.sin(phi)))


class PlaceIndex:
    """GeoNames places with a unit-sphere KD-tree over all of them and, lazily, one per country."""

    def __init__(self, table: PlaceTable) -> None:
        if len(table) == 0:
            raise ValueError("the place table is empty")
        self.table = table
        self._xyz = unit_vectors(table.lat, table.lon)  # (N, 3)
        # An unbalanced tree with loose node boxes queries 2-3x faster here: most query points
        # (random, or at sea) are far from every place, and tight boxes cost more than they prune.
        self._tree = cKDTree(self._xyz, balanced_tree=False, compact_nodes=False)
        # integer country ids, so that comparisons over many points stay in numpy
        self.country_ids: dict[str, int] = {cc: k for k, cc in enumerate(sorted(set(table.country_code)))}
        self.place_country_id = np.fromiter(
            (self.country_ids[cc] for cc in table.country_code), dtype=np.int64, count=len(table)
        )  # (N,)
        self._country_codes = np.asarray(table.country_code)
        self._by_country: dict[str, tuple[cKDTree, IntArray]] = {}

    def nearest(self, lat: FloatArray, lon: FloatArray, k: int = 1) -> tuple[FloatArray, IntArray]:
        """(M,) points -> distances in km and place indices, each (M,) for k=1 or (M, k) otherwise."""
        _, idx = self._tree.query(unit_vectors(lat, lon), k=k, workers=QUERY_WORKERS)
        idx = np.asarray(idx, dtype=np.int64)
        if k == 1:
            d = haversine_km_np(lat, lon, self.table.lat[idx], self.table.lon[idx])
        else:
            d = haversine_km_np(lat[:, None], lon[:, None], self.table.lat[idx], self.table.lon[idx])
        return d, idx

    def nearest_in_country(
        self, lat: FloatArray, lon: FloatArray, country_code: str
    ) -> tuple[FloatArray, IntArray]:
        """Nearest place of one country for each of (M,) points; index -1 when it has no place at all."""
        entry = self._by_country.get(country_code)
        if entry is None:
            members = np.flatnonzero(self._country_codes == country_code).astype(np.int64)
            entry = (cKDTree(self._xyz[members]) if members.size else cKDTree(np.zeros((0, 3))), members)
            self._by_country[country_code] = entry
        tree, members = entry
        if members.size == 0:
            return np.full(lat.shape[0], np.nan), np.full(lat.shape[0], -1, dtype=np.int64)
        _, local = tree.query(unit_vectors(lat, lon), k=1)
        idx = members[np.asarray(local, dtype=np.int64)]
        return haversine_km_np(lat, lon, self.table.lat[idx], self.table.lon[idx]), idx

    def country_of(self, indices: Sequence[int] | IntArray) -> list[str]:
        return [self.table.country_code[i] for i in indices]
