"""Solar positions against pvlib's NREL SPA within 0.1°, and the sun band."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pvlib
import pytest
from shapely.geometry import Point, shape

from geodesk.clues.sun import apparent_elevation, ratio_from_marks, subsolar_point, sun_band
from geodesk.domain.model import Region

CASES = [
    (51.4779, -0.0015, datetime(2024, 6, 21, 12, 0, tzinfo=UTC)),  # Greenwich, solstice noon
    (40.7128, -74.0060, datetime(2024, 12, 21, 17, 0, tzinfo=UTC)),  # New York, winter noon
    (-33.8688, 151.2093, datetime(2024, 3, 20, 2, 30, tzinfo=UTC)),  # Sydney, equinox morning
    (28.6139, 77.2090, datetime(2023, 10, 5, 9, 15, tzinfo=UTC)),  # Delhi, afternoon
    (64.1466, -21.9426, datetime(2025, 8, 1, 20, 45, tzinfo=UTC)),  # Reykjavik, low evening sun
    (-1.2921, 36.8219, datetime(2022, 2, 14, 6, 5, tzinfo=UTC)),  # Nairobi, morning
]


@pytest.mark.parametrize(("lat", "lon", "when"), CASES)
def test_apparent_elevation_matches_pvlib_within_a_tenth_of_a_degree(
    lat: float, lon: float, when: datetime
) -> None:
    reference = pvlib.solarposition.get_solarposition(pd.DatetimeIndex([when]), lat, lon)
    expected = 90.0 - float(reference["apparent_zenith"].iloc[0])
    assert abs(apparent_elevation(lat, lon, when) - expected) < 0.1


def test_subsolar_point_at_the_june_solstice() -> None:
    lat, lon = subsolar_point(datetime(2024, 6, 21, 12, 0, tzinfo=UTC))
    assert abs(lat - 23.44) < 0.05
    assert abs(lon) < 1.0  # the equation of time is under two minutes then


def test_band_holds_the_place_the_shadow_came_from() -> None:
    when = datetime(2024, 6, 21, 14, 5, tzinfo=timezone(timedelta(hours=2)))  # 12:05 UTC
    lat, lon = 48.8566, 2.3522  # Paris
    ratio = math.tan(math.radians(apparent_elevation(lat, lon, when)))
    band = sun_band(when, ratio, ratio_error=0.05, time_error_min=5)
    assert band.geometry is not None
    area = shape(band.geometry)
    assert area.buffer(0.5).contains(Point(lon, lat))
    assert not area.contains(Point(151.2, -33.9))  # Sydney is in the night
    assert 0 < band.area_share < 0.2
    wider = sun_band(when, ratio, ratio_error=0.2, time_error_min=30)
    assert wider.area_share > band.area_share


def test_ratio_from_marks_and_bad_marks() -> None:
    # A 100 px tall object whose shadow runs 100 px from its foot: 45°.
    ratio = ratio_from_marks(Region(90, 0, 110, 100), (200.0, 100.0))
    assert ratio == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shadow tip"):
        ratio_from_marks(Region(90, 0, 110, 100), (100.0, 100.0))
    with pytest.raises(ValueError, match="UTC offset"):
        sun_band(datetime(2024, 6, 21, 12, 0), 1.0)
