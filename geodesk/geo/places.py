"""Nearest populated place by true great-circle distance: a KD-tree on 3-D unit-sphere vectors.

A KD-tree over (lat, lon) degrees measures the wrong distance (a degree of longitude shrinks with
cos(lat), and the date line splits neighbours), so it picks the wrong place for many points. On the
unit sphere the straight-line chord between two points is 2*sin(theta/2) for the central angle theta,
which grows monotonically with theta on [0, pi]: the nearest point by chord is the nearest by arc,
exactly, and scipy's cKDTree finds it in O(log N).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from geodesk.geo.distance import haversine_km_np
from geodesk.geo.sources import PlaceTable

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

# KD-tree queries split the points over all cores (-1); results do not depend on it.
QUERY_WORKERS = -1
# Cell candidate lists (see PlaceIndex._cells) are at most this long; wider cells use the KD-tree.
# A power of two (the candidate comparison runs in widths 2, 4, 8, ...). 32 answers 67 % of uniform
# random points from the lists (16: 56 %) for ~0.5 s more build time; 64 gains nothing more.
CELL_CANDIDATES = 32
# Cells whose candidate list would be longer (dense land) are split into 2 x 2 subcells with lists of
# their own, and the subcells that are still too dense once more, twice (0.5, 0.25, then 0.125
# degree): 96 % of those points are answered without the KD-tree (two levels: 84 %), for ~2 s more
# build time and 50 MiB of int32 lists (two levels: 28 MiB), built only for big batches (ADR 0059).
SUBCELL_LEVELS = 3
SUBCELLS_PER_SIDE = 2
# Batches at least this big are queried in spatial order (see locality_order); smaller ones as given.
SORT_QUERIES_FROM = 512
# Smaller batches stay on the calling thread: starting the workers costs more than they save.
THREAD_QUERIES_FROM = 4096
# The named place (ADR 0033): a place of P people reaches REACH_KM_PER_SQRT_PERSON * sqrt(P) km
# (a city's area grows about with its population, so its radius with the square root): Paris
# (2.1 M) 7.3 km, a town of 40,000 1 km; never less than MIN_REACH_KM. Candidates lie within
# NAMED_SEARCH_KM; the one with the smallest distance / reach is the place a person would name.
REACH_KM_PER_SQRT_PERSON = 0.005
MIN_REACH_KM = 1.0
NAMED_SEARCH_KM = 30.0
# Batches of fewer points are answered by comparing with every place, (M, N) dot products, instead of
# building a KD-tree first (importing scipy and building the tree cost ~0.4 s; a one-point
# ``geo reverse`` compares with 155k places in ~2 ms). Ties go to the lowest place index.
BRUTE_FORCE_BELOW = 8

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def unit_vectors(lat: FloatArray, lon: FloatArray) -> FloatArray:
    """(N,) degrees -> (N, 3) points on the unit sphere (x towards 0°E, z towards the north pole)."""
    phi = np.radians(lat)
    lmb = np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lmb), cos_phi * np.sin(lmb), np.sin(phi)))


def locality_order(lat: FloatArray, lon: FloatArray) -> IntArray:
    """(N,) permutation that visits the points 1-degree cell by cell (row-major in lat, lon).

    Consecutive KD-tree queries for nearby points walk the same nodes, which then stay in the CPU
    cache: querying 100k random points in this order takes about half the time of a random order,
    and the sort costs a tenth of that.
    """
    key = np.floor(lat + 90.0) * 361.0 + np.floor(lon + 180.0)  # (N,) cell number, exact in float64
    return np.argsort(key)


def cell_of(lat: FloatArray, lon: FloatArray) -> IntArray:
    """(N,) 1-degree cell number, row * 360 + col, with the north pole and 180°E in the last row/col."""
    row = np.minimum(np.floor(lat + 90.0), 179.0)
    col = np.minimum(np.floor(lon + 180.0), 359.0)
    return np.asarray(row * 360.0 + col, dtype=np.int64)


class PlaceIndex:
    """GeoNames places with a unit-sphere KD-tree over all of them and, lazily, one per country."""

    def __init__(self, table: PlaceTable) -> None:
        if len(table) == 0:
            raise ValueError("the place table is empty")
        self.table = table
        self._xyz = unit_vectors(table.lat, table.lon)  # (N, 3)
        # the same coordinates as three contiguous (N,) columns, for gathering candidates (below)
        self._x, self._y, self._z = (np.ascontiguousarray(self._xyz[:, axis]) for axis in range(3))
        # integer country ids, so that comparisons over many points stay in numpy
        self._country_codes = np.asarray(table.country_code)  # (N,) '<U2'
        codes, inverse = np.unique(self._country_codes, return_inverse=True)  # sorted codes
        self.country_ids: dict[str, int] = {str(cc): k for k, cc in enumerate(codes.tolist())}
        self.place_country_id = np.asarray(inverse, dtype=np.int64).reshape(-1)  # (N,)
        self._members: dict[str, IntArray] = {}
        self._by_country: dict[str, cKDTree] = {}

    @cached_property
    def _tree(self) -> cKDTree:
        """The unit-sphere KD-tree over every place, built on the first big batch (~0.1 s)."""
        from scipy.spatial import cKDTree

        # An unbalanced tree with loose node boxes queries 2-3x faster here: most query points
        # (random, or at sea) are far from every place, and tight boxes cost more than they prune.
        return cKDTree(self._xyz, balanced_tree=False, compact_nodes=False)

    def _small(self, lat: FloatArray, built: str) -> bool:
        """Whether (M,) points are few enough for the brute-force path, and ``built`` is not there yet."""
        return lat.shape[0] < BRUTE_FORCE_BELOW and built not in self.__dict__

    def _brute(self, lat: FloatArray, lon: FloatArray, members: IntArray | None, k: int) -> IntArray:
        """Indices (into ``members``, or the places) of the k nearest: (M,) for k=1, else (M, k)."""
        xyz = self._xyz if members is None else self._xyz[members]  # (N', 3)
        dots = unit_vectors(lat, lon) @ xyz.T  # (M, N'); nearest = largest dot product
        if k == 1:
            return np.asarray(dots.argmax(axis=1), dtype=np.int64)  # first of equals: lowest index
        return np.asarray(np.argsort(-dots, axis=1, kind="stable")[:, :k], dtype=np.int64)

    @cached_property
    def _cells(self) -> tuple[IntArray, IntArray]:
        """Per 1-degree cell, the only places that can be nearest to a point in it, when few enough.

        Returns (count, candidates): (64800,) and (64800, CELL_CANDIDATES); cell c = row * 360 + col
        as in :func:`cell_of`. count 0: too many candidates, ask the KD-tree. Otherwise the nearest
        place to any point of the cell is among candidates[c, :count[c]] (ascending place index, so
        ties go to the lowest index), and the row is padded with its last candidate.

        Why: with c the cell's centre, rho an upper bound of the chord from c to any point x of the
        cell, and p_0, p_1, ... the places by chord from c, the nearest place to x is within
        |c p_0| + rho of x, while every p_j with |c p_j| > |c p_0| + 2 rho is farther than that from x
        (triangle inequality). So the places nearer to c than that are all the candidates there are.
        Over open sea and empty land that is one to a few places, where the KD-tree (which does not
        know this) walks many nodes: it is what makes a batch of random points cheap. Built once,
        about 0.2 s.
        """
        lat0, lon0 = np.meshgrid(np.arange(-90.0, 90.0), np.arange(-180.0, 180.0), indexing="ij")
        return self._candidate_lists(lat0.ravel(), lon0.ravel(), 1.0)

    @cached_property
    def _subcells(self) -> list[tuple[IntArray, IntArray, npt.NDArray[np.int32]]]:
        """Candidate lists for the subcells of the cells whose list is too long (count 0), level by
        level: each level splits the previous level's dense cells (the 1-degree cells first) into
        SUBCELLS_PER_SIDE² subcells.

        Per level: (base, count, candidates): (P,) for the P cells of the level above, the first of
        each dense cell's subcells (-1: the cell has its own list), then (S,) and (S, CELL_CANDIDATES)
        as :attr:`_cells` describes (row-major from the cell's south-west corner; int32 indices).
        Built on the first batch of SORT_QUERIES_FROM or more points that has such points (~2 s)."""
        count, _ = self._cells
        per = SUBCELLS_PER_SIDE
        k = np.arange(per * per)
        cells = np.arange(count.size)
        lat0 = (cells // 360 - 90.0).astype(np.float64)  # (C,) south-west corners of the level above
        lon0 = (cells % 360 - 180.0).astype(np.float64)
        size = 1.0
        levels: list[tuple[IntArray, IntArray, npt.NDArray[np.int32]]] = []
        for _ in range(SUBCELL_LEVELS):
            dense = np.flatnonzero(count == 0)  # (D,)
            base = np.full(count.size, -1, dtype=np.int64)
            base[dense] = np.arange(dense.size) * per * per
            step = size / per
            lat0 = (lat0[dense][:, None] + (k // per)[None, :] * step).ravel()  # (D * per²,)
            lon0 = (lon0[dense][:, None] + (k % per)[None, :] * step).ravel()
            count, cand = self._candidate_lists(lat0, lon0, step)
            levels.append((base, count, cand.astype(np.int32)))
            size = step
        return levels

    def _candidate_lists(self, lat0: FloatArray, lon0: FloatArray, size: float) -> tuple[IntArray, IntArray]:
        """(count, candidates) for the lat/lon cells of side ``size`` degrees with these south-west
        corners: (C,) and (C, CELL_CANDIDATES), as :attr:`_cells` describes."""
        centre = unit_vectors(lat0 + size / 2.0, lon0 + size / 2.0)  # (C, 3)
        # The corners are the points of a lat/lon cell farthest from its centre; the 1e-6 margin keeps
        # rounding from ever making rho too small.
        rho = (
            np.max(
                [
                    np.linalg.norm(unit_vectors(lat0 + a, lon0 + b) - centre, axis=1)
                    for a in (0.0, size)
                    for b in (0.0, size)
                ],
                axis=0,
            )
            * (1.0 + 1e-6)
            + 1e-12
        )  # (C,)
        chord, near = self._tree.query(centre, k=CELL_CANDIDATES + 1, workers=QUERY_WORKERS)  # (C, K+1)
        reach = chord[:, :1] + 2.0 * rho[:, None]  # (C, 1)
        outside = chord > reach  # (C, K+1), each row False...False True...True (sorted by chord)
        count = np.where(outside.any(axis=1), outside.argmax(axis=1), 0).astype(np.int64)  # (C,)
        cand = np.sort(np.where(outside[:, :-1], np.iinfo(np.int64).max, near[:, :-1]), axis=1)
        last = cand[np.arange(cand.shape[0]), np.maximum(count, 1) - 1]  # (C,)
        cand = np.where(np.arange(CELL_CANDIDATES)[None, :] < count[:, None], cand, last[:, None])
        return count, np.asarray(cand, dtype=np.int64)

    def nearest(self, lat: FloatArray, lon: FloatArray, k: int = 1) -> tuple[FloatArray, IntArray]:
        """(M,) points -> distances in km and place indices, each (M,) for k=1 or (M, k) otherwise."""
        if k == 1:
            idx = self._nearest_one(lat, lon)
        elif self._small(lat, "_tree"):
            idx = self._brute(lat, lon, None, k)
        else:
            idx = self._query(lat, lon, self._tree, k)
        if k == 1:
            d = haversine_km_np(lat, lon, self.table.lat[idx], self.table.lon[idx])
        else:
            d = haversine_km_np(lat[:, None], lon[:, None], self.table.lat[idx], self.table.lon[idx])
        return d, idx

    def nearest_in_country(
        self, lat: FloatArray, lon: FloatArray, country_code: str
    ) -> tuple[FloatArray, IntArray]:
        """Nearest place of one country for each of (M,) points; index -1 when it has no place at all."""
        members = self._members.get(country_code)
        if members is None:
            members = np.flatnonzero(self._country_codes == country_code).astype(np.int64)
            self._members[country_code] = members
        if members.size == 0:
            return np.full(lat.shape[0], np.nan), np.full(lat.shape[0], -1, dtype=np.int64)
        tree = self._by_country.get(country_code)
        if tree is None and lat.shape[0] < BRUTE_FORCE_BELOW:
            idx = members[self._brute(lat, lon, members, 1)]
        else:
            if tree is None:
                from scipy.spatial import cKDTree

                tree = self._by_country[country_code] = cKDTree(self._xyz[members])
            idx = members[self._query(lat, lon, tree, 1)]
        return haversine_km_np(lat, lon, self.table.lat[idx], self.table.lon[idx]), idx

    def _nearest_one(self, lat: FloatArray, lon: FloatArray) -> IntArray:
        """(M,) index of the nearest place: from the cell's candidates where it has few, else the tree.

        A small batch goes to the tree directly: building the cell lists (~0.2 s) pays off only over
        many points, and a one-point ``geo reverse`` should not wait for them."""
        if self._small(lat, "_tree"):
            return self._brute(lat, lon, None, 1)
        if lat.shape[0] < SORT_QUERIES_FROM and "_cells" not in self.__dict__:
            return self._query(lat, lon, self._tree, 1)
        count, cand = self._cells
        cell = cell_of(lat, lon)  # (M,)
        n_cand = count[cell]  # (M,)
        out = np.empty(lat.shape[0], dtype=np.int64)
        dense = np.flatnonzero(n_cand == 0)  # (H,) cells with too many candidates: their subcells
        self._pick_from_lists(out, np.flatnonzero(n_cand > 0), n_cand, cand, cell, lat, lon)
        if dense.size and lat.shape[0] < SORT_QUERIES_FROM and "_subcells" not in self.__dict__:
            out[dense] = self._query(lat[dense], lon[dense], self._tree, 1)  # not worth building them
            return out
        per = SUBCELLS_PER_SIDE
        # each dense point's cell at the level above: its index and south-west corner (cell_of puts
        # 90°N and 180°E in the last row / column, hence the clip below)
        at, size = cell[dense], 1.0
        corner_lat = (at // 360 - 90).astype(np.float64)
        corner_lon = (at % 360 - 180).astype(np.float64)
        for base, sub_count, sub_cand in self._subcells if dense.size else ():
            step = size / per
            sub_row = np.clip(np.floor((lat[dense] - corner_lat) / step), 0, per - 1)
            sub_col = np.clip(np.floor((lon[dense] - corner_lon) / step), 0, per - 1)
            at = base[at] + (sub_row * per + sub_col).astype(np.int64)
            corner_lat, corner_lon, size = corner_lat + sub_row * step, corner_lon + sub_col * step, step
            n_sub = np.zeros(lat.shape[0], dtype=np.int64)
            n_sub[dense] = sub_count[at]
            list_of = np.zeros(lat.shape[0], dtype=np.int64)
            list_of[dense] = at
            self._pick_from_lists(out, dense[n_sub[dense] > 0], n_sub, sub_cand, list_of, lat, lon)
            still = n_sub[dense] == 0
            dense, at, corner_lat, corner_lon = dense[still], at[still], corner_lat[still], corner_lon[still]
            if dense.size == 0:
                break
        if dense.size:
            out[dense] = self._query(lat[dense], lon[dense], self._tree, 1)
        return out

    def _pick_from_lists(
        self,
        out: IntArray,
        rows: IntArray,
        n_cand: IntArray,
        cand: npt.NDArray[np.integer],
        list_of: IntArray,
        lat: FloatArray,
        lon: FloatArray,
    ) -> None:
        """out[rows] = the nearest of each point's candidates cand[list_of[r], :n_cand[r]] (n_cand >= 1),
        compared in groups of similar list length to keep the padding small."""
        n = n_cand[rows]  # (M,)
        single = rows[n == 1]
        out[single] = cand[list_of[single], 0]
        width = 2
        while width <= CELL_CANDIDATES:
            group = rows[(n > width // 2) & (n <= width)]  # n > 1 from width 2 on
            if group.size:
                c = cand[list_of[group], :width]  # (R, w) place indices
                xyz = unit_vectors(lat[group], lon[group])  # (R, 3)
                # nearest = largest dot product of unit vectors; argmax takes the first of equals.
                # One coordinate at a time, in place: three (R, w) gathers from contiguous columns
                # and two multiply-adds, about twice as fast as gathering (R, w, 3) and a batched
                # matmul, and as exact (three products summed).
                dots = self._x.take(c)
                dots *= xyz[:, 0:1]
                part = self._y.take(c)
                part *= xyz[:, 1:2]
                dots += part
                part = self._z.take(c, out=part)
                part *= xyz[:, 2:3]
                dots += part  # (R, w)
                out[group] = c[np.arange(group.size), dots.argmax(axis=1)]
            width *= 2

    @staticmethod
    def _query(lat: FloatArray, lon: FloatArray, tree: cKDTree, k: int) -> IntArray:
        """Indices of the k nearest tree points for (M,) points: (M,) for k=1, else (M, k)."""
        m = lat.shape[0]
        workers = QUERY_WORKERS if m >= THREAD_QUERIES_FROM else 1
        if m < SORT_QUERIES_FROM:
            _, idx = tree.query(unit_vectors(lat, lon), k=k, workers=workers)
            return np.asarray(idx, dtype=np.int64)
        # query in spatial order, then put the answers back in the caller's order
        order = locality_order(lat, lon)  # (M,)
        _, sorted_idx = tree.query(unit_vectors(lat[order], lon[order]), k=k, workers=workers)
        out = np.empty((m,) if k == 1 else (m, k), dtype=np.int64)
        out[order] = sorted_idx
        return out

    @cached_property
    def reach_km(self) -> FloatArray:
        """(N,) how far each place's name reaches, in km: max(MIN_REACH_KM, k * sqrt(population))."""
        pop = np.maximum(self.table.population, 0).astype(np.float64)
        return np.maximum(MIN_REACH_KM, REACH_KM_PER_SQRT_PERSON * np.sqrt(pop))

    def named(
        self, lat: FloatArray, lon: FloatArray, nearest_idx: IntArray, country_ids: IntArray
    ) -> IntArray:
        """(M,) the place a person would name for each point: among the places of the same country
        (``country_ids``, ids as in ``place_country_id``; -1 keeps the nearest) within
        NAMED_SEARCH_KM, the smallest distance / reach; ``nearest_idx`` (the nearest-place answer,
        -1: none) is always a candidate, so the answer is never farther in these units than it."""
        out = np.asarray(nearest_idx, dtype=np.int64).copy()
        rows = np.flatnonzero((out >= 0) & (country_ids >= 0))
        if rows.size == 0:
            return out
        chord = 2.0 * np.sin(NAMED_SEARCH_KM / 6371.0 / 2.0)
        xyz = unit_vectors(lat[rows], lon[rows])  # (R, 3)
        if self._small(xyz[:, 0], "_tree"):
            # chord <= r  <=>  dot >= 1 - r^2 / 2 for unit vectors: the same set query_ball_point gives
            hits = [np.flatnonzero(self._xyz @ q >= 1.0 - chord * chord / 2.0) for q in xyz]
        else:
            workers = QUERY_WORKERS if rows.size >= THREAD_QUERIES_FROM else 1
            hits = self._tree.query_ball_point(xyz, r=chord, workers=workers)  # (R,) lists of place indices
        reach = self.reach_km
        for r, cand_list in zip(rows.tolist(), hits, strict=True):
            cand = np.asarray(cand_list, dtype=np.int64)
            cand = cand[self.place_country_id[cand] == country_ids[r]] if cand.size else cand
            if cand.size == 0:
                continue
            cand = np.sort(cand)  # ties go to the lowest place index
            d = haversine_km_np(lat[r], lon[r], self.table.lat[cand], self.table.lon[cand])  # (C,)
            score = d / reach[cand]
            best = int(cand[int(np.argmin(score))])
            nearest = int(out[r])
            d_near = float(haversine_km_np(lat[r], lon[r], self.table.lat[nearest], self.table.lon[nearest]))
            if float(score.min()) < d_near / float(reach[nearest]):
                out[r] = best
        return out

    def country_of(self, indices: Sequence[int] | IntArray) -> list[str]:
        return [self.table.country_code[i] for i in indices]
