"""Location-aware train / validation split: no city on both sides.

Rows are grouped by place: ``country | region | city`` (case- and space-insensitive) when the city is
known, else a grid cell of ``cell_deg`` degrees, else the row alone. A group goes to validation when
``sha256(seed:key)`` falls below ``val_fraction``. Hashing the key (rather than shuffling the groups)
keeps every city on its side when rows are added later, so a rebuilt data set never moves a
validation city into training; the price is that the sizes are near, not exactly at, the fraction.

Two inputs: a metadata table (split before building, so every part built from ``train.csv`` shares
the same held-out cities) or a samples file (groups from each sample's final JSON answer).
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from geodesk.atomic import atomic_open
from geodesk.engine.parsing import parse_answer
from training.data.common import (
    GPT,
    DataError,
    Report,
    Sample,
    read_samples,
    write_manifest,
    write_samples,
)
from training.data.metadata import read_metadata

PART = "split"
DEFAULT_CELL_DEG = 0.25  # ~28 km of latitude: about a city's extent, and beyond the 25 km accuracy step
T = TypeVar("T")


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


def location_key(
    country: str | None,
    region: str | None,
    city: str | None,
    lat: float | None,
    lon: float | None,
    *,
    cell_deg: float = DEFAULT_CELL_DEG,
    fallback: str = "",
) -> str:
    """The group a row belongs to (see the module docstring)."""
    if _norm(city):
        return f"city:{_norm(country)}|{_norm(region)}|{_norm(city)}"
    if lat is not None and lon is not None and math.isfinite(lat) and math.isfinite(lon):
        return f"cell:{math.floor(lat / cell_deg)}:{math.floor(lon / cell_deg)}"
    return f"row:{fallback}"


def _unit(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_groups(keys: Sequence[str], val_fraction: float, seed: int) -> dict[str, str]:
    """``{key: "train" | "val"}``. With two or more groups and 0 < fraction < 1 both sides get one."""
    if not 0.0 <= val_fraction <= 1.0:
        raise DataError(f"the validation fraction must be between 0 and 1, got {val_fraction}")
    unique = sorted(set(keys))
    draws = {k: _unit(seed, k) for k in unique}
    sides = {k: ("val" if draws[k] < val_fraction else "train") for k in unique}
    if len(unique) >= 2 and 0.0 < val_fraction < 1.0:
        if "val" not in sides.values():
            sides[min(unique, key=draws.__getitem__)] = "val"
        if "train" not in sides.values():
            sides[max(unique, key=draws.__getitem__)] = "train"
    return sides


def split_items(
    items: Sequence[T], key: Callable[[T], str], val_fraction: float, seed: int
) -> tuple[list[T], list[T]]:
    """(train, val), each in input order, with every key on one side only."""
    keys = [key(item) for item in items]
    sides = assign_groups(keys, val_fraction, seed)
    train = [item for item, k in zip(items, keys, strict=True) if sides[k] == "train"]
    val = [item for item, k in zip(items, keys, strict=True) if sides[k] == "val"]
    return train, val


def split_metadata(
    metadata: Path, out_dir: Path, *, val_fraction: float = 0.05, seed: int = 0,
    cell_deg: float = DEFAULT_CELL_DEG,
) -> Report:
    """Write ``train.csv`` and ``val.csv`` (all original columns) into ``out_dir``."""
    report = Report(PART, out=out_dir)
    rows, bad = read_metadata(metadata)  # validates the header and coordinates
    for b in bad:
        report.problem(b.id or f"line {b.line}", f"line {b.line}: {b.reason} (left out of both sides)",
                       "bad_rows")
    good = {r.line for r in rows}
    with metadata.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        records: list[tuple[int, list[str]]] = []
        for record in reader:
            if reader.line_num in good:
                records.append((reader.line_num, record))
    by_line = {r.line: r for r in rows}

    def key(item: tuple[int, list[str]]) -> str:
        r = by_line[item[0]]
        return location_key(r.country, r.region, r.city, r.lat, r.lon, cell_deg=cell_deg, fallback=r.id)

    train, val = split_items(records, key, val_fraction, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for name, part in (("train.csv", train), ("val.csv", val)):
        target = out_dir / name
        _write_csv(target, header, [r for _, r in part])
        outputs.append(target)
    report.counts.update(train=len(train), val=len(val),
                         groups_train=len({key(r) for r in train}), groups_val=len({key(r) for r in val}))
    report.manifest = write_manifest(
        out_dir / "split", part=PART, seed=seed, counts=report.counts, outputs=outputs,
        sources={"metadata": metadata}, image_root=None,
        extra={"val_fraction": val_fraction, "cell_deg": cell_deg},
    )
    return report


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with atomic_open(path) as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def sample_key(sample: Sample, cell_deg: float = DEFAULT_CELL_DEG) -> str:
    """A sample's group from its final answer's country / region / city, else its coordinates."""
    conversations: list[dict[str, Any]] = sample.get("conversations") or []
    answers = [t.get("value", "") for t in conversations if t.get("from") == GPT]
    p = parse_answer(answers[-1] if answers else "").prediction
    return location_key(p.country, p.region, p.city, p.lat, p.lon, cell_deg=cell_deg,
                        fallback=str(sample.get("id")))


def split_samples(
    samples_path: Path, out_dir: Path, *, val_fraction: float = 0.05, seed: int = 0,
    cell_deg: float = DEFAULT_CELL_DEG,
) -> Report:
    """Write ``<stem>.train<suffix>`` and ``<stem>.val<suffix>`` into ``out_dir``."""
    report = Report(PART, out=out_dir)
    samples = read_samples(samples_path)
    keys = {id(s): sample_key(s, cell_deg) for s in samples}
    train, val = split_items(samples, lambda s: keys[id(s)], val_fraction, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem, suffix = samples_path.stem, samples_path.suffix or ".json"
    outputs = [out_dir / f"{stem}.train{suffix}", out_dir / f"{stem}.val{suffix}"]
    write_samples(outputs[0], train)
    write_samples(outputs[1], val)
    report.counts.update(train=len(train), val=len(val),
                         groups_train=len({keys[id(s)] for s in train}),
                         groups_val=len({keys[id(s)] for s in val}))
    report.manifest = write_manifest(
        out_dir / f"{stem}.split", part=PART, seed=seed, counts=report.counts, outputs=outputs,
        sources={"samples": samples_path}, image_root=None,
        extra={"val_fraction": val_fraction, "cell_deg": cell_deg},
    )
    return report
