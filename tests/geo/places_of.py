"""Where GeoNames puts a named place: the points the border tests reverse-geocode."""

from __future__ import annotations

from geodesk.geo import Gazetteer


def own_point(gaz: Gazetteer, name: str, country_code: str) -> tuple[float, float]:
    """The coordinates GeoNames gives the most populous place of that name in that country."""
    table = gaz.places.table
    rows = [i for i, n in enumerate(table.name) if n == name and table.country_code[i] == country_code]
    assert rows, (name, country_code)
    best = max(rows, key=lambda i: int(table.population[i]))
    return float(table.lat[best]), float(table.lon[best])
