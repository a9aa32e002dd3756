"""The sun constraint: where on Earth did the sun stand at this elevation at this UTC time?

An upright object of height h casting a shadow of length s on level ground means the sun's apparent
elevation was ``atan(h / s)``. At one instant the sun stands at elevation e on the small circle of
angular radius ``90° − e`` around the subsolar point (where it is overhead), so the places that fit
form a band; the measurement's uncertainty (the ratio, ± ``ratio_error``) and the time's (±
``time_error_min``, which turns the subsolar point by 0.25° a minute) widen it. Bellingcat's
ShadowFinder draws the same band; here the solar position comes from astral's NOAA algorithm
(declination, equation of time) and the apparent elevation includes astral's refraction model.

The band is rasterised on a ``GRID_DEG`` grid and merged into a (Multi)Polygon with shapely, so the
map can draw it and the countries it crosses can be listed. Image-based ratios assume the camera sees
object and shadow side-on on flat ground: perspective makes them approximate, hence the default ±15 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from geodesk.domain.model import Region

GRID_DEG = 0.5
DEFAULT_RATIO_ERROR = 0.15  # relative error of a height / shadow ratio measured on a photo
DEFAULT_TIME_ERROR_MIN = 10.0


def _julian_century(when: datetime) -> float:
    from astral.julian import julianday, julianday_to_juliancentury

    when = when.astimezone(UTC)
    day = julianday(when.date())
    fraction = (when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6) / 86400.0
    return float(julianday_to_juliancentury(day + fraction))


def subsolar_point(when: datetime) -> tuple[float, float]:
    """(lat, lon) in degrees where the sun is overhead at ``when`` (NOAA formulas through astral)."""
    from astral.sun import eq_of_time, sun_declination

    jc = _julian_century(when)
    declination = float(sun_declination(jc))
    utc = when.astimezone(UTC)
    minutes = utc.hour * 60 + utc.minute + utc.second / 60 + utc.microsecond / 6e7
    lon = -(minutes - 720.0 + float(eq_of_time(jc))) / 4.0
    lon = (lon + 180.0) % 360.0 - 180.0
    return declination, lon


def _refraction(elevation_deg: float) -> float:
    """Atmospheric refraction in degrees at a true elevation (astral's NOAA-style model)."""
    from astral import refraction_at_zenith

    return float(refraction_at_zenith(90.0 - elevation_deg))


def true_elevation(lat: float, lon: float, when: datetime) -> float:
    """Geometric solar elevation (degrees) at a point, from the subsolar point."""
    slat, slon = subsolar_point(when)
    return float(np.degrees(_elevation_grid(np.array([lat]), np.array([lon]), slat, slon))[0])


def apparent_elevation(lat: float, lon: float, when: datetime) -> float:
    """The elevation a shadow shows: geometric elevation plus refraction."""
    e = true_elevation(lat, lon, when)
    return e + _refraction(e)


def _elevation_grid(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], slat: float, slon: float
) -> npt.NDArray[np.float64]:
    """Geometric elevation in radians for points (same shape as ``lat`` / ``lon``)."""
    phi, lam = np.radians(lat), np.radians(lon)
    d, s = math.radians(slat), math.radians(slon)
    return np.arcsin(np.clip(np.sin(phi) * math.sin(d) + np.cos(phi) * math.cos(d) * np.cos(lam - s), -1, 1))


def elevation_from_ratio(height_over_shadow: float) -> float:
    if not (height_over_shadow > 0 and math.isfinite(height_over_shadow)):
        raise ValueError("the object height / shadow length ratio must be a positive number")
    return math.degrees(math.atan(height_over_shadow))


def ratio_from_marks(object_box: Region, shadow_tip: tuple[float, float]) -> float:
    """Height / shadow length from an upright object's box and the tip of its shadow (image pixels).

    The object stands on the middle of the box's bottom edge; its height is the box height; its shadow
    runs from that foot to the tip.
    """
    foot = ((object_box.x0 + object_box.x1) / 2.0, float(object_box.y1))
    length = math.hypot(shadow_tip[0] - foot[0], shadow_tip[1] - foot[1])
    if length < 1.0:
        raise ValueError("the shadow tip is at the object's foot: mark where the shadow ends")
    return (object_box.y1 - object_box.y0) / length


@dataclass(frozen=True, slots=True)
class SunBand:
    when: datetime  # UTC
    elevation_deg: float  # apparent, from the ratio
    elevation_range: tuple[float, float]
    time_error_min: float
    subsolar: tuple[float, float]
    geometry: dict[str, Any] | None  # GeoJSON (Multi)Polygon, None when the band is empty
    area_share: float  # share of the Earth's surface inside the band

    def as_dict(self) -> dict[str, Any]:
        return {
            "utc": self.when.isoformat(),
            "elevation_deg": round(self.elevation_deg, 3),
            "elevation_range_deg": [round(x, 3) for x in self.elevation_range],
            "time_error_min": self.time_error_min,
            "subsolar_point": [round(self.subsolar[0], 4), round(self.subsolar[1], 4)],
            "area_share": round(self.area_share, 5),
        }


def sun_band(
    when: datetime,
    ratio: float,
    *,
    ratio_error: float = DEFAULT_RATIO_ERROR,
    time_error_min: float = DEFAULT_TIME_ERROR_MIN,
    grid_deg: float = GRID_DEG,
) -> SunBand:
    """The band of places where the sun's apparent elevation matched ``atan(ratio)`` at ``when``."""
    if when.tzinfo is None:
        raise ValueError("the time must carry its UTC offset (for example 2024-06-21T12:00:00+02:00)")
    if not 0 <= ratio_error < 1:
        raise ValueError("the ratio error is a fraction between 0 and 1")
    if time_error_min < 0:
        raise ValueError("the time error must be zero or more minutes")
    elevation = elevation_from_ratio(ratio)
    low = elevation_from_ratio(ratio * (1 - ratio_error)) if ratio_error else elevation
    high = elevation_from_ratio(ratio * (1 + ratio_error)) if ratio_error else elevation
    # Compare geometric elevations: take refraction off the apparent bounds.
    low_true, high_true = low - _refraction(low), high - _refraction(high)
    lats = np.arange(-90 + grid_deg / 2, 90, grid_deg)
    lons = np.arange(-180 + grid_deg / 2, 180, grid_deg)
    lat_grid, lon_grid = np.meshgrid(lats, lons, indexing="ij")  # (R, C)
    inside = np.zeros(lat_grid.shape, dtype=bool)
    steps = max(1, math.ceil(time_error_min / 2.0))  # one subsolar point every 2 minutes or closer
    for k in range(-steps, steps + 1):
        t = when + timedelta(minutes=time_error_min * k / steps)
        slat, slon = subsolar_point(t)
        e = np.degrees(_elevation_grid(lat_grid, lon_grid, slat, slon))
        inside |= (e >= low_true - grid_deg / 2) & (e <= high_true + grid_deg / 2)
    weights = np.cos(np.radians(lat_grid))
    share = float((weights * inside).sum() / weights.sum())
    return SunBand(
        when.astimezone(UTC),
        elevation,
        (low, high),
        time_error_min,
        subsolar_point(when),
        _mask_geometry(inside, lats, lons, grid_deg),
        share,
    )


def _mask_geometry(
    mask: npt.NDArray[np.bool_], lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64], step: float
) -> dict[str, Any] | None:
    """A grid mask (R, C) as a GeoJSON geometry: one box per run of cells in a row, merged."""
    from shapely.geometry import box, mapping
    from shapely.ops import unary_union

    boxes = []
    half = step / 2
    for r in range(mask.shape[0]):
        row = mask[r]
        if not row.any():
            continue
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            boxes.append(box(lons[start] - half, lats[r] - half, lons[end - 1] + half, lats[r] + half))
    if not boxes:
        return None
    merged = unary_union(boxes).simplify(step / 4)
    return dict(mapping(merged))
