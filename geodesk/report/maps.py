"""Static map figures for reports and exports: inline SVG from the map page's own border data.

A report must read with no script and no external reference, so its maps cannot be the Leaflet page.
They are drawn here from the same Natural Earth borders the page draws and the same points it shows
(turns, EXIF point, finding with its radius, a demo scene's truth), in an equirectangular projection
(x = longitude, y = −latitude, both in degrees). The border paths are emitted once per document as an
SVG ``<symbol>`` and every map figure ``<use>``\\ s it with its own view box, so a 200-image report does
not repeat the world 400 times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WORLD_SYMBOL_ID = "geodesk-world"
# Degrees of padding around the points of a view, and the smallest spans of the two views.
_PAD = 0.25
_OVERVIEW_MIN_SPAN = 40.0
_DETAIL_MIN_SPAN = 0.5
_DETAIL_MAX_SPAN = 8.0
_KM_PER_DEGREE = 111.32


@dataclass(frozen=True, slots=True)
class MapPoint:
    kind: str  # "turn", "exif", "finding", "truth"
    lat: float
    lon: float
    label: str  # plain text; escaped when drawn
    radius_km: float | None = None


@dataclass(frozen=True, slots=True)
class View:
    west: float
    south: float
    east: float
    north: float

    @property
    def width(self) -> float:
        return self.east - self.west

    @property
    def height(self) -> float:
        return self.north - self.south


_STYLE = {
    "turn": ("#c92a2a", "#fff"),
    "exif": ("#1971c2", "#fff"),
    "finding": ("#2b8a3e", "#fff"),
    "truth": ("#e67700", "#fff"),
}


def _ring_path(ring: Sequence[Sequence[float]]) -> str:
    # One decimal of a degree (~11 km) is finer than the 1:110m borders themselves.
    points = [f"{lon:.2f} {-lat:.2f}" for lon, lat, *_ in ring]
    return "M" + "L".join(points) + "Z" if points else ""


def world_symbol(borders: dict[str, Any] | None) -> str:
    """The borders as one SVG ``<symbol>`` (hidden), referenced by every map figure."""
    paths: list[str] = []
    for feature in (borders or {}).get("features", []):
        geometry = feature.get("geometry") or {}
        polygons = geometry.get("coordinates", [])
        if geometry.get("type") == "Polygon":
            polygons = [polygons]
        elif geometry.get("type") != "MultiPolygon":
            continue
        d = "".join(_ring_path(ring) for polygon in polygons for ring in polygon)
        if d:
            paths.append(f'<path d="{d}"/>')
    return (
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true">'
        f'<symbol id="{WORLD_SYMBOL_ID}" overflow="visible">'
        '<rect x="-180" y="-90" width="360" height="180" fill="#dbe9f4"/>'
        '<g fill="#f4f1ea" stroke="#8a8a8a" stroke-width="0.6" vector-effect="non-scaling-stroke">'
        + "".join(paths) + "</g></symbol></svg>"
    )


def _bounds(points: Iterable[MapPoint]) -> tuple[float, float, float, float] | None:
    pts = list(points)
    if not pts:
        return None
    lons, lats = [p.lon for p in pts], [p.lat for p in pts]
    return min(lons), min(lats), max(lons), max(lats)


def _view_around(west: float, south: float, east: float, north: float, min_span: float,
                 max_span: float | None = None) -> View:
    cx, cy = (west + east) / 2, (south + north) / 2
    span = max(east - west, north - south) * (1 + 2 * _PAD)
    span = max(span, min_span)
    if max_span is not None:
        span = min(span, max_span)
    # Keep a 3:2 figure; clamp to the world.
    half_w, half_h = span * 0.75, span * 0.5
    west, east = max(-180.0, cx - half_w), min(180.0, cx + half_w)
    south, north = max(-90.0, cy - half_h), min(90.0, cy + half_h)
    return View(west, south, east, north)


def overview_view(points: Sequence[MapPoint]) -> View:
    bounds = _bounds(points)
    if bounds is None:
        return View(-180.0, -90.0, 180.0, 90.0)
    return _view_around(*bounds, min_span=_OVERVIEW_MIN_SPAN)


def detail_view(points: Sequence[MapPoint], focus: MapPoint | None) -> View | None:
    """A close view around the focus (finding, else EXIF point, else the last turn) and its neighbours."""
    if focus is None:
        return None
    near = [p for p in points if abs(p.lat - focus.lat) < _DETAIL_MAX_SPAN / 2
            and abs(p.lon - focus.lon) < _DETAIL_MAX_SPAN / 2]
    bounds = _bounds(near) or (focus.lon, focus.lat, focus.lon, focus.lat)
    if focus.radius_km:
        r = focus.radius_km / _KM_PER_DEGREE
        bounds = (min(bounds[0], focus.lon - r), min(bounds[1], focus.lat - r),
                  max(bounds[2], focus.lon + r), max(bounds[3], focus.lat + r))
    return _view_around(*bounds, min_span=_DETAIL_MIN_SPAN, max_span=_DETAIL_MAX_SPAN)


def map_figure(view: View, points: Sequence[MapPoint], *, title: str, width_px: int = 480) -> str:
    """One map as inline SVG: the shared borders, then the points, each with its label as a tooltip."""
    unit = view.width / 90  # marker size in degrees, so markers look the same at every zoom
    marks: list[str] = []
    for p in points:
        stroke, fill = _STYLE.get(p.kind, ("#333", "#fff"))
        x, y = p.lon, -p.lat
        label = escape(p.label)
        if p.kind == "finding" and p.radius_km:
            rx = p.radius_km / (_KM_PER_DEGREE * max(0.05, math.cos(math.radians(p.lat))))
            ry = p.radius_km / _KM_PER_DEGREE
            marks.append(f'<ellipse cx="{x:.5f}" cy="{y:.5f}" rx="{rx:.5f}" ry="{ry:.5f}" fill="{stroke}" '
                         f'fill-opacity="0.15" stroke="{stroke}" stroke-width="1.2" '
                         'vector-effect="non-scaling-stroke"/>')
        shape = (f'<rect x="{x - unit:.5f}" y="{y - unit:.5f}" width="{2 * unit:.5f}" height="{2 * unit:.5f}"'
                 if p.kind in ("exif", "truth") else f'<circle cx="{x:.5f}" cy="{y:.5f}" r="{unit:.5f}"')
        marks.append(f'<g><title>{label}</title>{shape} fill="{fill}" stroke="{stroke}" stroke-width="2" '
                     'vector-effect="non-scaling-stroke"/></g>')
        if p.kind == "turn":
            number = escape(p.label.split(":", 1)[0].removeprefix("Turn ").strip())
            marks.append(f'<text x="{x + 1.3 * unit:.5f}" y="{y + 0.5 * unit:.5f}" '
                         f'font-size="{1.6 * unit:.5f}" fill="{stroke}" font-family="sans-serif">'
                         f"{number}</text>")
    height_px = round(width_px * view.height / view.width) if view.width else width_px // 2
    return (
        f'<svg class="map" role="img" aria-label="{escape(title)}" width="{width_px}" height="{height_px}" '
        f'viewBox="{view.west:.5f} {-view.north:.5f} {view.width:.5f} {view.height:.5f}" '
        'xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title><use href="#{WORLD_SYMBOL_ID}"/>' + "".join(marks) + "</svg>"
    )
