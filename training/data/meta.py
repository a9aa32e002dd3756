"""Meta Part (GaGA section IV-A): one direct-mode question and its JSON answer per geotagged image.

The question is one of the protocol's direct-mode wordings (``prompts.first_turn`` draws it with
``pick_template``) followed by the protocol's fixed format sentence, exactly what the app sends at
inference except for the drawn wording. The answer is ``prompts.format_answer`` of the row's location,
with the country code turned into the gazetteer's name (``FR`` -> ``France``), since the parser and the
metrics compare names.

Rows without a region or a city are left out (counted as ``incomplete_rows``): GaGA removed "a small
number of samples with incomplete location" information, so its model never learns to answer null.
``keep_incomplete=True`` (``--keep-incomplete``) keeps them, answering null for the missing level.

The wording is drawn from ``random.Random(f"{seed}:meta:{id}")``: a sample does not change when rows
are added, removed or reordered.
"""

from __future__ import annotations

import random
from pathlib import Path

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from training.data.common import Report, Sample, make_sample, progress, write_manifest, write_samples
from training.data.metadata import MetaRow, PlaceNamer, index_images, iter_with_images, read_metadata

PART = "meta"


def sample_rng(seed: int, part: str, item_id: str) -> random.Random:
    """A per-sample generator: the same sample whatever else is in the table."""
    return random.Random(f"{seed}:{part}:{item_id}")


def meta_sample(row: MetaRow, image: str, namer: PlaceNamer, seed: int) -> Sample:
    _, country = namer.country(row.country)
    question = prompts.first_turn(SessionMode.DIRECT, rng=sample_rng(seed, PART, row.id)).text
    answer = prompts.format_answer(country=country, region=row.region, city=row.city, lat=row.lat,
                                   lon=row.lon)
    return make_sample(f"{PART}-{row.id}", image, [(question, answer)])


def build_meta(
    metadata: Path,
    images: Path,
    out: Path,
    *,
    seed: int = 0,
    namer: PlaceNamer | None = None,
    show_progress: bool = False,
    keep_incomplete: bool = False,
) -> Report:
    """Write the Meta Part samples for every complete row whose image exists; missing images are
    reported, incomplete rows (no region or no city) counted and left out unless ``keep_incomplete``."""
    report = Report(PART, out=out)
    rows, bad = read_metadata(metadata)
    for b in bad:
        report.problem(b.id or f"line {b.line}", f"line {b.line}: {b.reason}", "bad_rows")
    report.count("rows", len(rows))
    if not keep_incomplete:
        complete = [row for row in rows if row.region and row.city]
        report.count("incomplete_rows", len(rows) - len(complete))
        rows = complete
    index = index_images(images)
    namer = namer or PlaceNamer()

    def missing(row: MetaRow) -> None:
        report.problem(row.id, f"no image named {row.id}.<ext> under {images}", "missing_images")

    samples = [
        meta_sample(row, rel, namer, seed)
        for row, rel in progress(list(iter_with_images(rows, index, missing)), enabled=show_progress,
                                 desc="meta")
    ]
    for code in sorted(namer.unknown):
        report.problem(code, "country not known to the gazetteer; kept as written", "unknown_countries")
    report.counts["samples"] = write_samples(out, samples)
    report.manifest = write_manifest(
        out, part=PART, seed=seed, counts=report.counts, outputs=[out], sources={"metadata": metadata},
        image_root=images, extra={"keep_incomplete": keep_incomplete},
    )
    return report
