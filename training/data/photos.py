"""Photos with GPS -> the metadata table every builder reads (OSV-5M's layout).

An admin's starting point is a folder of geotagged photos. For each image under it: the GPS point
from its EXIF or XMP (``geodesk.evidence.metadata.read_metadata``, the app's own import reader), and
the country (ISO code), first-level region and city by the gazetteer's reverse geocoding (GeoNames
cities1000 + Natural Earth borders, offline). The row id is the file's stem, which is how the
builders find an image (``<id>.<ext>`` under ``--images``). Images without a usable GPS point,
unreadable files and repeated stems are reported and left out; one bad file never stops the table.
"""

from __future__ import annotations

import csv
from pathlib import Path

from geodesk.atomic import atomic_open
from training.data.common import DataError, Report, write_manifest
from training.data.metadata import IMAGE_EXTENSIONS, REQUIRED_COLUMNS, PlaceNamer

PART = "table"


def build_table(photos: Path, out: Path, *, namer: PlaceNamer | None = None) -> Report:
    """Write ``out`` (CSV: id, latitude, longitude, country, region, sub-region, city) for ``photos``."""
    from PIL import Image, UnidentifiedImageError

    from geodesk.evidence.metadata import read_metadata

    if not photos.is_dir():
        raise DataError(f"the photo folder {photos} does not exist")
    namer = namer or PlaceNamer()
    report = Report(PART, out=out)
    rows: list[list[str]] = []
    seen: dict[str, Path] = {}
    for path in sorted(p for p in photos.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
        report.count("images")
        rel = path.relative_to(photos).as_posix()
        if path.stem in seen:
            other = seen[path.stem].relative_to(photos)
            report.problem(rel, f"the name {path.stem} is also used by {other}; rename one (the builders "
                                "find images by name)", "repeated_names")
            continue
        seen[path.stem] = path
        try:
            with Image.open(path) as image:
                gps = read_metadata(image).gps
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            report.problem(rel, f"cannot be read ({exc})", "unreadable")
            continue
        if gps is None:
            report.problem(rel, "no GPS position in its EXIF or XMP", "without_gps")
            continue
        code, _, region, city = namer.reverse(gps.lat, gps.lon)
        if code is None:
            report.problem(rel, f"({gps.lat:.5f}, {gps.lon:.5f}) is in no country (at sea?)",
                           "outside_countries")
            continue
        rows.append([path.stem, f"{gps.lat:.7f}", f"{gps.lon:.7f}", code, region or "", "", city or ""])
    with atomic_open(out) as fh:
        writer = csv.writer(fh)
        writer.writerow(list(REQUIRED_COLUMNS))
        writer.writerows(rows)
    report.counts["rows"] = len(rows)
    report.manifest = write_manifest(out, part=PART, seed=None, counts=report.counts, outputs=[out],
                                     sources={}, image_root=photos)
    return report
