"""Great-circle distance, GeoScore and accuracy thresholds: the one implementation of geodesk's metrics.

They must match the references exactly (GaGA / OSV-5M evaluation): haversine on a sphere of radius
6371 km, GeoScore = 5000 * exp(-d / 1492.7), and accuracy at 1 / 25 / 200 / 750 / 2500 km counting
d < r strictly. Evaluation, rewards and the reverse geocoder all call these functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0
GEOSCORE_MAX = 5000.0
GEOSCORE_SCALE_KM = 1492.7
ACCURACY_THRESHOLDS_KM: tuple[float, ...] = (1, 25, 200, 750, 2500)
MAX_DISTANCE_KM = math.pi * EARTH_RADIUS_KM  # half the circumference: the antipode

FloatArray = npt.NDArray[np.float64]
ArrayLike = Sequence[float] | FloatArray | float


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in decimal degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dphi = p2 - p1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    # Rounding can push a a hair above 1 for antipodes; clamp so asin stays defined.
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def haversine_km_np(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> FloatArray:
    """Vectorised :func:`haversine_km`; inputs broadcast like numpy arrays, result in km (same shape)."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    out: FloatArray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def geoscore(d_km: float) -> float:
    """GeoScore of one prediction at distance ``d_km`` from the truth: 5000 at 0 km, decaying."""
    if d_km < 0 or math.isnan(d_km):
        raise ValueError(f"a distance must be zero or more km, got {d_km}")
    return GEOSCORE_MAX * math.exp(-d_km / GEOSCORE_SCALE_KM)


def geoscore_np(d_km: ArrayLike) -> FloatArray:
    """Vectorised :func:`geoscore` (no validation: callers pass haversine output)."""
    out: FloatArray = GEOSCORE_MAX * np.exp(-np.asarray(d_km, dtype=np.float64) / GEOSCORE_SCALE_KM)
    return out


def within_threshold(d_km: float, r_km: float) -> bool:
    """Accuracy at radius ``r_km``: strictly closer than r (d == r does not count), as the references do."""
    return d_km < r_km


def accuracy_at_thresholds(
    distances_km: Sequence[float] | FloatArray, thresholds_km: Sequence[float] = ACCURACY_THRESHOLDS_KM
) -> dict[float, float]:
    """Share of distances strictly below each threshold; an empty input gives 0.0 for every threshold."""
    d = np.asarray(distances_km, dtype=np.float64)
    if d.size == 0:
        return {r: 0.0 for r in thresholds_km}
    return {r: float(np.mean(d < r)) for r in thresholds_km}
