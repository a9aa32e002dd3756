"""Small fixtures for the data builders: a metadata table in OSV-5M's layout and tiny images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from training.data.metadata import PlaceNamer

# id, lat, lon, country, region, sub-region, city; row 5 has no image, row 6 bad coordinates.
ROWS = [
    ("p1", 48.8566, 2.3522, "FR", "Île-de-France", "Paris", "Paris"),
    ("t1", 35.6762, 139.6503, "JP", "Tokyo", "", "Tokyo"),
    ("s1", -33.8688, 151.2093, "AU", "New South Wales", "", "Sydney"),
    ("b1", 52.52, 13.405, "DE", "Berlin", "", "Berlin"),
    ("n1", 40.7128, -74.006, "US", "New York", "", "New York City"),
]
COLOURS = {"p1": (200, 30, 30), "t1": (30, 200, 30), "s1": (30, 30, 200), "b1": (200, 200, 30)}


def write_table(path: Path, rows: list[tuple[object, ...]], extra_bad: bool = True) -> Path:
    lines = ["id,latitude,longitude,thumbnail,country,region,sub-region,city,land_cover"]
    for r in rows:
        lines.append(f"{r[0]},{r[1]},{r[2]},x,{r[3]},{r[4]},{r[5]},{r[6]},3")
    if extra_bad:
        lines.append("bad1,north,east,x,FR,,,,3")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path: Path) -> tuple[Path, Path]:
    """(metadata CSV, image folder): four images (one in a sub-folder), one row without an image."""
    images = tmp_path / "images"
    (images / "00").mkdir(parents=True)
    for row_id, colour in COLOURS.items():
        folder = images / "00" if row_id == "b1" else images
        Image.new("RGB", (40, 30), colour).save(folder / f"{row_id}.png")
    return write_table(tmp_path / "train.csv", ROWS), images


@pytest.fixture(scope="session")
def namer() -> PlaceNamer:
    return PlaceNamer()
