"""Which country contains a point: Natural Earth 1:110m polygons in a shapely STRtree.

The polygons are split at the antimeridian (Fiji, Russia, the USA), so plain lon/lat containment is
right on both sides of the date line. Points on a shared border match several polygons; the first
in file order wins, which is as good as any choice at 110m resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape

from geodesk.geo.sources import load_countries_geojson

MIXED = -2  # grid cell where several polygons, or a polygon's edge, pass


class CountryBorders:
    """Point-in-polygon country lookup over the bundled Natural Earth borders."""

    def __init__(self, geojson: dict[str, Any] | None = None) -> None:
        doc = geojson if geojson is not None else load_countries_geojson()
        features = doc["features"]
        self.codes: list[str] = [f["properties"]["iso_a2"] for f in features]
        self.names: list[str] = [f["properties"]["name"] for f in features]
        self.geometries = [shape(f["geometry"]) for f in features]
        self._tree = shapely.STRtree(self.geometries)
        self._grid = self._build_grid()

    def _build_grid(self) -> npt.NDArray[np.int64]:
        """(180, 360) answer per 1-degree cell: polygon index, -1 (no polygon touches it), or MIXED.

        A cell whose closed box lies within one polygon and touches no other gives the same answer
        as the exact test for every point in it, so only points in MIXED cells (coasts and borders,
        a small share of the sphere) need the polygon test. Built once, ~0.3 s.
        """
        lat0, lon0 = np.meshgrid(
            np.arange(-90.0, 90.0), np.arange(-180.0, 180.0), indexing="ij"
        )  # (180, 360)
        boxes = shapely.box(lon0.ravel(), lat0.ravel(), lon0.ravel() + 1.0, lat0.ravel() + 1.0)  # (64800,)
        touching = np.bincount(self._tree.query(boxes, predicate="intersects")[0], minlength=boxes.size)
        within = self._tree.query(boxes, predicate="within")  # (2, M): [box, polygon containing it]
        grid = np.full(boxes.size, MIXED, dtype=np.int64)
        grid[touching == 0] = -1
        pure = within[0][touching[within[0]] == 1]
        grid[pure] = within[1][touching[within[0]] == 1]
        return grid.reshape(180, 360)

    @property
    def country_codes(self) -> frozenset[str]:
        return frozenset(self.codes)

    def country_indices(
        self, lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]:
        """Polygon index containing each point (or on its edge), -1 where none does. Shapes: (N,) -> (N,)."""
        lat = np.asarray(lats, dtype=np.float64)
        lon = np.asarray(lons, dtype=np.float64)
        out = np.full(lat.shape[0], -1, dtype=np.int64)
        if lat.shape[0] == 0:
            return out
        row = np.clip(np.floor(lat + 90.0).astype(np.int64), 0, 179)
        col = np.clip(np.floor(lon + 180.0).astype(np.int64), 0, 359)
        out[:] = self._grid[row, col]
        exact = np.flatnonzero(out == MIXED)  # (K,) points that need the polygon test
        out[exact] = -1
        points = shapely.points(lon[exact], lat[exact])
        # pairs: (2, M) rows = [point index, polygon index]; "intersects" counts points on an edge.
        pairs = self._tree.query(points, predicate="intersects")
        pairs[0] = exact[pairs[0]]
        if pairs.shape[1]:
            # keep the lowest polygon index per point: sort by (point, polygon), take each point's first
            order = np.lexsort((pairs[1], pairs[0]))
            pts, polys = pairs[0][order], pairs[1][order]
            first_pts, first_at = np.unique(pts, return_index=True)
            out[first_pts] = polys[first_at]
        return out

    def country_codes_at(
        self, lats: Sequence[float] | npt.NDArray[np.float64], lons: Sequence[float] | npt.NDArray[np.float64]
    ) -> list[str | None]:
        return [self.codes[i] if i >= 0 else None for i in self.country_indices(lats, lons)]
