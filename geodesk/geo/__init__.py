"""Offline geography: distances and metrics, reverse geocoding, place names (see ADR 0003).

Nothing here touches the network; indexes are built lazily on first use by :func:`default_gazetteer`.
"""

from geodesk.geo.distance import (
    ACCURACY_THRESHOLDS_KM,
    EARTH_RADIUS_KM,
    accuracy_at_thresholds,
    geoscore,
    geoscore_np,
    haversine_km,
    haversine_km_np,
    within_threshold,
)
from geodesk.geo.gazetteer import Gazetteer, ReverseColumns, default_gazetteer
from geodesk.geo.names import CityRef, CountryRef, NameMatch, RegionRef
from geodesk.geo.sources import GeoDataError

__all__ = [
    "ACCURACY_THRESHOLDS_KM",
    "EARTH_RADIUS_KM",
    "CityRef",
    "CountryRef",
    "Gazetteer",
    "GeoDataError",
    "NameMatch",
    "RegionRef",
    "ReverseColumns",
    "accuracy_at_thresholds",
    "default_gazetteer",
    "geoscore",
    "geoscore_np",
    "haversine_km",
    "haversine_km_np",
    "within_threshold",
]
