"""Which country contains a point: Natural Earth 1:10m admin-0 polygons in a shapely STRtree.

The polygons are split at the antimeridian (Fiji, Russia, the USA), so plain lon/lat containment is
right on both sides of the date line. Points on a shared border match several polygons; the first
in file order wins (at 1:10m a shared edge is a line no real place lies on). A polygon may have no
country code (Bir Tawil, the Spratly Islands): points in it have no country, and its dispute note
names the claimants (ADR 0032).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape

from geodesk.geo import cache
from geodesk.geo.sources import NE10M_PACKAGE, NE10M_ZIP, CountryFeature, load_countries_10m, package_file

MIXED = -2  # grid cell where several polygons, or a polygon's edge, pass
# MIXED 1-degree cells are split into SUBGRID x SUBGRID cells of their own answer: 0.125 degree
# leaves half as many points for the polygon test as 0.25 (ADR 0059), 1.2 MB in the geography cache
SUBGRID = 8
NEAR_OUTLINE_KM = 10.0  # the coast snap's reach (gazetteer.COAST_SNAP_KM)
EDGE_STEP_DEG = 0.02  # outline vertices at most this far apart for nearest_outline (~2.2 km)
# The border band (ADR 0055): points within BORDER_BAND_KM of a land border, i.e. of a line two
# countries' polygons share. Measured to the shared lines' vertices, BORDER_STEP_DEG apart (~1.1 km),
# so a distance is at most ~0.6 km longer than the true one.
BORDER_BAND_KM = 5.0
BORDER_STEP_DEG = 0.01
BAND_QUERY_VERTICES = 32  # nearest border vertices asked per point in one array query


class CountryBorders:
    """Point-in-polygon country lookup over the bundled Natural Earth borders."""

    def __init__(
        self, features: Sequence[CountryFeature] | None = None, *, geojson: dict[str, Any] | None = None
    ) -> None:
        """Borders from ``features`` (default: the 1:10m countries), or from a GeoJSON document of
        features with ``iso_a2`` and ``name`` properties (tests build small worlds that way)."""
        if features is None and geojson is not None:
            features = [
                CountryFeature(f["properties"]["iso_a2"], f["properties"]["name"], shape(f["geometry"]), None)
                for f in geojson["features"]
            ]
        if features is None:
            self._sources = _sources_10m()
            self._from_arrays(_cached_10m_arrays())
            return
        self._sources = []
        feats = list(features)
        self.codes: list[str | None] = [f.code for f in feats]
        self.names: list[str] = [f.name for f in feats]
        self.disputes: list[str | None] = [f.dispute for f in feats]
        self.aliases: list[tuple[str, ...]] = [f.aliases for f in feats]
        self.geometries = [f.geometry for f in feats]
        self._index_geometries()
        self._grid, self._cell_start, self._cell_polys = self._build_grid()
        self._sub_base, self._subgrid = self._build_subgrid()

    def _index_geometries(self) -> None:
        self._tree = shapely.STRtree(self.geometries)
        for geom in self.geometries:
            shapely.prepare(geom)  # intersects_xy and contains on a prepared polygon are ~10x faster

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """Everything the lookup needs as plain arrays (WKB geometries, texts, the grid): the form the
        geography cache stores (ADR 0049); :meth:`from_arrays` rebuilds an equal index."""
        wkb = shapely.to_wkb(np.asarray(self.geometries, dtype=object))  # (P,) bytes
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "grid": self._grid,
            "sub_base": self._sub_base,
            "subgrid": self._subgrid.astype(np.int16),  # polygon index, -1 or MIXED
            "cell_start": self._cell_start,
            "cell_polys": self._cell_polys,
        }
        arrays["wkb_bytes"], arrays["wkb_offsets"] = _pack_bytes(list(wkb))
        border_xy, border_pairs = self._border_lines
        arrays["border_xy"] = border_xy.astype(np.float32)  # ~1 m at 180 degrees
        arrays["border_pairs"] = border_pairs.astype(np.int16)
        arrays["border_band_bits"] = np.packbits(self._border_band_raster.ravel())
        for name, values in (
            ("codes", self.codes),
            ("names", self.names),
            ("disputes", self.disputes),
            ("aliases", ["\x1f".join(a) for a in self.aliases]),  # unit separator: no name holds it
        ):
            arrays[f"{name}_bytes"], arrays[f"{name}_none"] = cache.pack_strings(values)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> CountryBorders:
        self = cls.__new__(cls)
        self._sources = []
        self._from_arrays(arrays)
        return self

    def source_files(self) -> list[Path]:
        """The files these borders were built from (the wheel's shapefile zip and this module), for
        the keys of what the geography cache derives from them; empty for a world built in memory."""
        return list(self._sources)

    def _from_arrays(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        def text(name: str) -> list[str | None]:
            return cache.unpack_strings(arrays[f"{name}_bytes"], arrays[f"{name}_none"])

        self.codes = text("codes")
        self.names = [str(n) for n in text("names")]
        self.disputes = text("disputes")
        self.aliases = [tuple(a.split("\x1f")) if a else () for a in map(str, text("aliases"))]
        blob = arrays["wkb_bytes"].tobytes()
        ends = arrays["wkb_offsets"].tolist()
        self.geometries = list(shapely.from_wkb([blob[a:b] for a, b in itertools.pairwise(ends)]))
        self._index_geometries()
        self._grid = np.asarray(arrays["grid"], dtype=np.int64)
        self._sub_base = np.asarray(arrays["sub_base"], dtype=np.int64)
        self._subgrid = np.asarray(arrays["subgrid"], dtype=np.int64)
        self._cell_start = np.asarray(arrays["cell_start"], dtype=np.int64)
        self._cell_polys = np.asarray(arrays["cell_polys"], dtype=np.int64)
        # what the cached properties below would build, read back instead
        self.__dict__["_border_lines"] = (
            np.asarray(arrays["border_xy"], dtype=np.float64),
            np.asarray(arrays["border_pairs"], dtype=np.int64),
        )
        bits = np.unpackbits(np.asarray(arrays["border_band_bits"], dtype=np.uint8), count=1800 * 3600)
        self.__dict__["_border_band_raster"] = bits.reshape(1800, 3600).astype(bool)

    def _build_grid(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The 1-degree answer grid, (180, 360), and which polygons touch each cell.

        Grid value per cell: polygon index, -1 (no polygon touches it), or MIXED. A cell whose closed
        box lies within one polygon and touches no other gives the same answer as the exact test for
        every point in it, so only points in MIXED cells (coasts and borders, a small share of the
        sphere) need the polygon test, and only against the polygons touching their cell: those of
        cell c are ``cell_polys[cell_start[c]:cell_start[c + 1]]``, in ascending polygon order.
        Built once, ~0.3 s.
        """
        lat0, lon0 = np.meshgrid(
            np.arange(-90.0, 90.0), np.arange(-180.0, 180.0), indexing="ij"
        )  # (180, 360)
        boxes = shapely.box(lon0.ravel(), lat0.ravel(), lon0.ravel() + 1.0, lat0.ravel() + 1.0)  # (64800,)
        # Polygon by polygon against the cells its bounding box covers, with the polygon prepared:
        # ~20x faster for 1:10m outlines than querying the tree with each cell (which prepares the cell).
        box_tree = shapely.STRtree(boxes)
        touch_cells, touch_polys, within_cells, within_polys = [], [], [], []
        for k, geom in enumerate(self.geometries):
            cand = box_tree.query(geom)  # cells whose box meets the polygon's bounding box
            hit = cand[shapely.intersects(geom, boxes[cand])]
            inside = hit[shapely.contains(geom, boxes[hit])]
            touch_cells.append(hit)
            touch_polys.append(np.full(hit.size, k, dtype=np.int64))
            within_cells.append(inside)
            within_polys.append(np.full(inside.size, k, dtype=np.int64))
        # (2, M): [cell, polygon] for every cell a polygon touches; (2, M'): the cells it contains
        pairs = np.stack([np.concatenate(touch_cells), np.concatenate(touch_polys)])
        within = np.stack([np.concatenate(within_cells), np.concatenate(within_polys)])
        touching = np.bincount(pairs[0], minlength=boxes.size)  # (64800,)
        grid = np.full(boxes.size, MIXED, dtype=np.int64)
        grid[touching == 0] = -1
        pure = within[0][touching[within[0]] == 1]
        grid[pure] = within[1][touching[within[0]] == 1]
        order = np.lexsort((pairs[1], pairs[0]))  # by cell, then polygon
        cell_polys = pairs[1][order].astype(np.int64)
        cell_start = np.zeros(boxes.size + 1, dtype=np.int64)
        np.cumsum(touching, out=cell_start[1:])
        return grid.reshape(180, 360), cell_start, cell_polys

    def _build_subgrid(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The answer grid inside each MIXED 1-degree cell: (64800,) the first of its SUBGRID² sub-cells
        (-1 for other cells) and (S,) each sub-cell's value, as the 1-degree grid's (polygon index, -1
        or MIXED; row-major from the cell's south-west corner). Most points of a coastal or border cell
        lie in a sub-cell one polygon holds alone, and skip the polygon test. Built once (~1 s for
        1:10m) and kept in the geography cache."""
        grid = self._grid.ravel()
        mixed = np.flatnonzero(grid == MIXED)  # (M,)
        base = np.full(grid.size, -1, dtype=np.int64)
        base[mixed] = np.arange(mixed.size) * SUBGRID * SUBGRID
        step = 1.0 / SUBGRID
        k = np.arange(SUBGRID * SUBGRID)
        lat0 = ((mixed // 360 - 90.0)[:, None] + (k // SUBGRID)[None, :] * step).ravel()  # (S,)
        lon0 = ((mixed % 360 - 180.0)[:, None] + (k % SUBGRID)[None, :] * step).ravel()
        boxes = shapely.box(lon0, lat0, lon0 + step, lat0 + step)  # (S,)
        touching = np.zeros(boxes.size, dtype=np.int64)
        owner = np.full(boxes.size, -1, dtype=np.int64)
        sub_of_cell = np.full(grid.size, -1, dtype=np.int64)
        sub_of_cell[mixed] = np.arange(mixed.size)
        # each polygon against the sub-cells of the MIXED cells it touches (cell_polys lists them)
        cell_of_pair = np.repeat(np.arange(grid.size), np.diff(self._cell_start))  # (Q,)
        keep = sub_of_cell[cell_of_pair] >= 0
        pair_cell, pair_poly = cell_of_pair[keep], self._cell_polys[keep]
        order = np.argsort(pair_poly, kind="stable")
        pair_cell, pair_poly = pair_cell[order], pair_poly[order]
        bounds = np.flatnonzero(np.diff(pair_poly)) + 1
        for cells in np.split(np.arange(pair_cell.size), bounds):
            if cells.size == 0:
                continue
            geom = self.geometries[int(pair_poly[cells[0]])]
            subs = (sub_of_cell[pair_cell[cells]][:, None] * SUBGRID * SUBGRID + k[None, :]).ravel()
            hit = subs[shapely.intersects(geom, boxes[subs])]
            touching[hit] += 1
            inside = hit[shapely.contains(geom, boxes[hit])]
            owner[inside] = int(pair_poly[cells[0]])
        value = np.full(boxes.size, MIXED, dtype=np.int64)
        value[touching == 0] = -1
        pure = (touching == 1) & (owner >= 0)
        value[pure] = owner[pure]
        return base, value

    @cached_property
    def _edge_points(self) -> tuple[Any, npt.NDArray[np.int64]]:
        """A unit-sphere KD-tree over the polygons' outlines, densified to a vertex every
        EDGE_STEP_DEG, and the polygon of each vertex: (V,). Built on first use, ~1 s."""
        from scipy.spatial import cKDTree

        from geodesk.geo.places import unit_vectors

        xs, ys, owner = [], [], []
        for k, geom in enumerate(self.geometries):
            coords = shapely.get_coordinates(shapely.segmentize(shapely.boundary(geom), EDGE_STEP_DEG))
            xs.append(coords[:, 0])
            ys.append(coords[:, 1])
            owner.append(np.full(coords.shape[0], k, dtype=np.int64))
        xyz = unit_vectors(np.concatenate(ys), np.concatenate(xs))  # (V, 3)
        return cKDTree(xyz, balanced_tree=False, compact_nodes=False), np.concatenate(owner)

    @cached_property
    def _near_outline_raster(self) -> npt.NDArray[np.bool_]:
        """(1800, 3600) 0.1-degree cells that may lie within NEAR_OUTLINE_KM of an outline vertex."""
        tree, _ = self._edge_points
        xyz = np.asarray(tree.data)  # (V, 3)
        lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
        lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
        return _raster_near(lat, lon, NEAR_OUTLINE_KM)

    def near_outline_cells(
        self, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_]:
        """(M,) whether each point may lie within NEAR_OUTLINE_KM of a polygon outline (a 0.1-degree
        raster; never False for a point that is): the open ocean skips the outline search."""
        row = np.clip(((lats + 90.0) * 10).astype(np.int64), 0, 1799)
        col = np.clip(((lons + 180.0) * 10).astype(np.int64), 0, 3599)
        return np.asarray(self._near_outline_raster[row, col], dtype=bool)

    def nearest_outline(
        self, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64], max_km: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """(M,) km to the nearest polygon outline and that polygon's index (ADR 0049's coast snap);
        inf and -1 where no outline lies within ``max_km``.

        Measured to the nearest outline vertex after densifying every edge to EDGE_STEP_DEG (~2.2 km),
        so the distance is at most ~1.1 km longer than the true one."""
        from geodesk.geo.places import unit_vectors

        if lats.shape[0] == 0:
            return np.empty(0), np.empty(0, dtype=np.int64)
        tree, owner = self._edge_points
        # a bound on the search prunes the tree walk for points far from every outline (open sea)
        bound = 2.0 * np.sin(max_km / 6371.0 / 2.0)
        chord, at = tree.query(unit_vectors(lats, lons), k=1, distance_upper_bound=bound)
        found = np.isfinite(chord)
        km = np.full(lats.shape[0], np.inf)
        km[found] = 2.0 * 6371.0 * np.arcsin(np.clip(np.asarray(chord)[found] / 2.0, 0.0, 1.0))
        poly = np.full(lats.shape[0], -1, dtype=np.int64)
        poly[found] = owner[np.asarray(at, dtype=np.int64)[found]]
        return km, poly

    # ---- the border band (ADR 0055) ---------------------------------------------------------------
    @cached_property
    def _border_lines(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """The land borders: (V, 2) lon/lat vertices, BORDER_STEP_DEG apart, of every line two polygons
        of different countries share, and (V, 2) the two polygons of each vertex's line. Natural Earth
        draws a border once for both sides, so the shared line is the polygons' common boundary.
        Built once (~1 s for 1:10m) and kept in the geography cache."""
        geoms = np.asarray(self.geometries, dtype=object)
        left, right = self._tree.query(geoms, predicate="intersects")
        outlines = shapely.boundary(geoms)
        coords, pairs = [np.empty((0, 2))], [np.empty((0, 2), dtype=np.int64)]
        for i, j in zip(left.tolist(), right.tolist(), strict=True):
            if i >= j or self.codes[i] == self.codes[j]:
                continue
            shared = shapely.intersection(outlines[i], outlines[j])
            xy = shapely.get_coordinates(shapely.segmentize(shared, BORDER_STEP_DEG))
            if xy.shape[0]:
                coords.append(xy)
                pairs.append(np.tile(np.asarray([[i, j]], dtype=np.int64), (xy.shape[0], 1)))
        return np.concatenate(coords), np.concatenate(pairs)

    @cached_property
    def _border_tree(self) -> Any:
        """A unit-sphere KD-tree over the land borders' vertices (~0.1 s)."""
        from scipy.spatial import cKDTree

        from geodesk.geo.places import unit_vectors

        xy, _ = self._border_lines
        return cKDTree(unit_vectors(xy[:, 1], xy[:, 0]), balanced_tree=False, compact_nodes=False)

    @cached_property
    def _border_band_raster(self) -> npt.NDArray[np.bool_]:
        """(1800, 3600) 0.1-degree cells that may lie within BORDER_BAND_KM of a land border."""
        xy, _ = self._border_lines
        return _raster_near(xy[:, 1], xy[:, 0], BORDER_BAND_KM)

    def border_band(
        self, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Which points lie within BORDER_BAND_KM of a land border, and the polygons whose shared
        lines pass that close: (rows (K,), start (K + 1,), polys (P,)), the polygons of point
        ``rows[k]`` being ``polys[start[k]:start[k + 1]]`` (ascending, no repeats).

        A 0.1-degree raster keeps all but the points near a border out of the vertex search (for
        uniform random points ~1 % are asked)."""
        from geodesk.geo.places import unit_vectors

        empty = np.empty(0, dtype=np.int64)
        if lats.shape[0] == 0:
            return empty, np.zeros(1, dtype=np.int64), empty
        row = np.clip(((lats + 90.0) * 10).astype(np.int64), 0, 1799)
        col = np.clip(((lons + 180.0) * 10).astype(np.int64), 0, 3599)
        ask = np.flatnonzero(self._border_band_raster[row, col])  # (A,)
        if ask.size == 0:
            return empty, np.zeros(1, dtype=np.int64), empty
        _, line_polys = self._border_lines
        chord = 2.0 * np.sin(BORDER_BAND_KM / 6371.0 / 2.0)
        xyz = unit_vectors(lats[ask], lons[ask])  # (A, 3)
        # The raster over-approximates. The BAND_QUERY_VERTICES nearest vertices within the band (as
        # arrays; a line has ~10 vertices that near) give each point's lines; a point with that many
        # that near asks for all of them (a list per point, rare).
        k = BAND_QUERY_VERTICES
        dist, idx = self._border_tree.query(xyz, k=k, distance_upper_bound=chord)  # (A, k)
        within = np.isfinite(dist)  # (A, k), each row True...True False...False
        owner_k, slot_k = np.nonzero(within & ~within[:, -1:])  # rows not all within: their hits
        full = np.flatnonzero(within[:, -1])  # rows with k vertices that near: ask for all
        owner_parts, vertex_parts = [owner_k], [idx[owner_k, slot_k]]
        if full.size:
            hits = self._border_tree.query_ball_point(xyz[full], r=chord)  # (F,) lists of vertex indices
            sizes = np.fromiter((len(h) for h in hits), dtype=np.int64, count=full.size)
            owner_parts.append(np.repeat(full, sizes))
            flat = np.fromiter((v for h in hits for v in h), dtype=np.int64, count=int(sizes.sum()))
            vertex_parts.append(flat)
        owner = np.concatenate(owner_parts)  # (H,) position in ``ask`` of each vertex hit
        vertex = np.concatenate(vertex_parts).astype(np.int64)  # (H,)
        if owner.size == 0:
            return empty, np.zeros(1, dtype=np.int64), empty
        # every (point, polygon) pair once: both polygons of each vertex's line
        pair = np.unique(np.concatenate([owner, owner]) * len(self.geometries) + line_polys[vertex].T.ravel())
        point, poly = np.divmod(pair, len(self.geometries))
        counts = np.bincount(point, minlength=ask.size)
        held = counts > 0
        start = np.zeros(int(held.sum()) + 1, dtype=np.int64)
        np.cumsum(counts[held], out=start[1:])
        return ask[held], start, poly

    def border_km(
        self, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64], max_km: float
    ) -> npt.NDArray[np.float64]:
        """(M,) km to the nearest land-border vertex, inf where none lies within ``max_km``."""
        from geodesk.geo.places import unit_vectors

        if lats.shape[0] == 0:
            return np.empty(0)
        bound = 2.0 * np.sin(max_km / 6371.0 / 2.0)
        chord, _ = self._border_tree.query(unit_vectors(lats, lons), k=1, distance_upper_bound=bound)
        chord = np.asarray(chord)
        km = np.full(lats.shape[0], np.inf)
        found = np.isfinite(chord)
        km[found] = 2.0 * 6371.0 * np.arcsin(np.clip(chord[found] / 2.0, 0.0, 1.0))
        return km

    def border_samples(self, reach_km: float, step_deg: float) -> tuple[npt.NDArray[np.float64], ...]:
        """(lat, lon) of a ``step_deg`` grid over the 0.1-degree cells that may lie within ``reach_km``
        of a land border (``step_deg`` must divide 0.1)."""
        xy, _ = self._border_lines
        cells = np.argwhere(_raster_near(xy[:, 1], xy[:, 0], reach_km))  # (C, 2) row, col
        sub = np.arange(step_deg / 2.0, 0.1, step_deg)  # (n,) offsets of the samples inside a cell
        shape = (cells.shape[0], sub.size, sub.size)  # (C, n, n): cell, row offset, column offset
        lat = np.broadcast_to(cells[:, 0, None, None] * 0.1 - 90.0 + sub[None, :, None], shape)
        lon = np.broadcast_to(cells[:, 1, None, None] * 0.1 - 180.0 + sub[None, None, :], shape)
        return lat.ravel().astype(np.float64), lon.ravel().astype(np.float64)

    @property
    def country_codes(self) -> frozenset[str]:
        return frozenset(c for c in self.codes if c is not None)

    def country_indices(
        self, lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]:
        """Polygon index containing each point (or on its edge), -1 where none does. Shapes: (N,) -> (N,)."""
        # 1:10m rings stop a hair short of the map's edges (Antarctica at -89.99999999999994, the
        # parts split at the date line at -179.99999999999991): points are clamped 1e-7 degrees
        # (1 cm) inside them, so the pole is land and ±180 give the same answer.
        lat = np.clip(np.asarray(lats, dtype=np.float64), -90.0 + 1e-7, 90.0 - 1e-7)
        lon = np.clip(np.asarray(lons, dtype=np.float64), -180.0 + 1e-7, 180.0 - 1e-7)
        out = np.full(lat.shape[0], -1, dtype=np.int64)
        if lat.shape[0] == 0:
            return out
        row = np.clip(np.floor(lat + 90.0).astype(np.int64), 0, 179)
        col = np.clip(np.floor(lon + 180.0).astype(np.int64), 0, 359)
        out[:] = self._grid[row, col]
        mixed = np.flatnonzero(out == MIXED)  # (K,) points in cells of several answers
        if mixed.size == 0:
            return out
        # the sub-cell's answer (row and column 179 / 359 hold the map's north and east edges)
        sub_row = np.minimum(np.floor((lat[mixed] + 90.0 - row[mixed]) * SUBGRID), SUBGRID - 1)
        sub_col = np.minimum(np.floor((lon[mixed] + 180.0 - col[mixed]) * SUBGRID), SUBGRID - 1)
        sub = self._sub_base[row[mixed] * 360 + col[mixed]] + (sub_row * SUBGRID + sub_col).astype(np.int64)
        out[mixed] = self._subgrid[sub]
        exact = mixed[out[mixed] == MIXED]  # (K',) points that need the polygon test
        if exact.size == 0:
            return out
        out[exact] = -1
        # (point, polygon) candidate pairs: each MIXED point against the polygons touching its cell
        cell = row[exact] * 360 + col[exact]  # (K,)
        start = self._cell_start[cell]
        count = self._cell_start[cell + 1] - start  # (K,) >= 1: a MIXED cell touches some polygon
        pair_point = np.repeat(np.arange(exact.size), count)  # (P,) position in ``exact``
        offset = np.arange(pair_point.size) - np.repeat(np.cumsum(count) - count, count)  # (P,)
        pair_poly = self._cell_polys[np.repeat(start, count) + offset]  # (P,)
        # one vectorised test per polygon; "intersects" counts a point on an edge as inside
        by_poly = np.argsort(pair_poly, kind="stable")
        polys_sorted = pair_poly[by_poly]
        bounds = np.flatnonzero(np.diff(polys_sorted)) + 1
        hit = np.zeros(pair_point.size, dtype=bool)  # (P,)
        x, y = lon[exact], lat[exact]
        for chunk in np.split(by_poly, bounds):
            pts = pair_point[chunk]
            hit[chunk] = shapely.intersects_xy(self.geometries[int(pair_poly[chunk[0]])], x[pts], y[pts])
        # the lowest polygon index wins: pairs are in (point, polygon) order, so take each point's first hit
        hit_point, hit_poly = pair_point[hit], pair_poly[hit]
        first_pts, first_at = np.unique(hit_point, return_index=True)
        out[exact[first_pts]] = hit_poly[first_at]
        return out

    def country_codes_at(
        self, lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
    ) -> list[str | None]:
        return [self.codes[i] if i >= 0 else None for i in self.country_indices(lats, lons)]


def _pack_bytes(values: list[bytes]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    ends = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in values], out=ends[1:])
    return np.frombuffer(b"".join(values), dtype=np.uint8).copy(), ends


def _raster_near(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], km: float
) -> npt.NDArray[np.bool_]:
    """(1800, 3600) 0.1-degree cells that may lie within ``km`` of one of the (V,) points: the cells
    holding a point, grown by enough rows and, per row, by enough columns to span that many km at the
    row's poleward edge (longitude degrees shrink with cos(latitude)). Never False for a cell that
    does."""
    held = np.zeros((1800, 3600), dtype=bool)
    row = np.clip(((lat + 90.0) * 10).astype(np.int64), 0, 1799)
    col = np.clip(((lon + 180.0) * 10).astype(np.int64), 0, 3599)
    held[row, col] = True
    grow = int(np.ceil(km / 11.1))  # rows: 0.1 degree of latitude is ~11.1 km
    rows = held.copy()
    for k in range(1, grow + 1):
        rows[k:] |= held[:-k]
        rows[:-k] |= held[k:]
    edge_lat = np.maximum(np.abs(np.arange(-90.0, 90.0, 0.1)), np.abs(np.arange(-89.9, 90.05, 0.1)))
    edge_lat = np.minimum(edge_lat + 0.1 * grow, 90.0)  # the farthest row a grown cell reaches
    span = np.ceil(km / (11.1 * np.maximum(np.cos(np.radians(edge_lat)), 1e-3)))
    out = np.zeros_like(rows)
    for r in np.flatnonzero(rows.any(axis=1)).tolist():
        k = int(min(span[r], 1800))
        padded = np.concatenate([rows[r, -k:], rows[r], rows[r, :k]]).astype(np.int64)
        csum = np.concatenate([[0], np.cumsum(padded)])
        out[r] = (csum[2 * k + 1 :] - csum[: -2 * k - 1]) > 0  # any held cell within k columns
    return out


def _sources_10m() -> list[Path]:
    return [package_file(NE10M_PACKAGE, NE10M_ZIP), Path(__file__)]


def _cached_10m_arrays() -> dict[str, npt.NDArray[np.generic]]:
    """The 1:10m border index from the geography cache, built (~4 s) and saved when it is missing or
    its key (the wheel's shapefile zip, this module's grid) no longer matches."""
    key = cache.source_key(_sources_10m(), salt="borders-10m")
    return cache.cached("borders_10m", key, lambda: CountryBorders(load_countries_10m()).to_arrays())
