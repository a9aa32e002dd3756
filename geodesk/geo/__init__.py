"""Offline geography: distances and metrics, reverse geocoding, place names (see ADR 0003, 0032).

Nothing here touches the network; indexes are built lazily on first use by :func:`default_gazetteer`.
The package imports its modules lazily too: ``from geodesk.geo import haversine_km`` loads only
``geo.distance`` (numpy), not the gazetteer's scipy and shapely (~0.6 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers and readers; at run time __getattr__ imports them
    from geodesk.geo.distance import ACCURACY_THRESHOLDS_KM as ACCURACY_THRESHOLDS_KM
    from geodesk.geo.distance import EARTH_RADIUS_KM as EARTH_RADIUS_KM
    from geodesk.geo.distance import accuracy_at_thresholds as accuracy_at_thresholds
    from geodesk.geo.distance import geoscore as geoscore
    from geodesk.geo.distance import geoscore_np as geoscore_np
    from geodesk.geo.distance import haversine_km as haversine_km
    from geodesk.geo.distance import haversine_km_np as haversine_km_np
    from geodesk.geo.distance import within_threshold as within_threshold
    from geodesk.geo.gazetteer import Gazetteer as Gazetteer
    from geodesk.geo.gazetteer import ReverseColumns as ReverseColumns
    from geodesk.geo.gazetteer import default_gazetteer as default_gazetteer
    from geodesk.geo.names import CityRef as CityRef
    from geodesk.geo.names import CountryRef as CountryRef
    from geodesk.geo.names import NameMatch as NameMatch
    from geodesk.geo.names import RegionRef as RegionRef
    from geodesk.geo.sources import GeoDataError as GeoDataError

# public name -> the submodule that defines it
_EXPORTS = {
    "ACCURACY_THRESHOLDS_KM": "distance",
    "EARTH_RADIUS_KM": "distance",
    "accuracy_at_thresholds": "distance",
    "geoscore": "distance",
    "geoscore_np": "distance",
    "haversine_km": "distance",
    "haversine_km_np": "distance",
    "within_threshold": "distance",
    "Gazetteer": "gazetteer",
    "ReverseColumns": "gazetteer",
    "default_gazetteer": "gazetteer",
    "CityRef": "names",
    "CountryRef": "names",
    "NameMatch": "names",
    "RegionRef": "names",
    "GeoDataError": "sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
