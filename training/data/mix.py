"""The stage-2 mixture: MG-Geo's parts in the paper's proportions (or a given recipe), deduplicated.

GaGA fine-tunes on "Mix240k": 240k image-text pairs drawn from the three parts (seed 000, section
III-C and Table VIII). The paper gives the total and two part sizes, the Clue part's 73k samples and
the Dialog part's ~73k Google Landmarks images; the Meta part's share is what remains (94k). That is
``PAPER_RECIPE``; ``--recipe part=weight,...`` replaces it (extra parts such as closed cases or
GeoSynth data take a weight like any other).

What the mixer does, in order:

1. reads every part (a builder's samples file; image paths are made absolute from the part's manifest
   image root, so the mixture reads from the parts' own image folders);
2. drops duplicates: the same image with the same conversation, within a part or across parts (the
   first occurrence, in the order the parts are given, stays);
3. keeps the city-grouped split: with ``--val`` files (the parts built from ``val.csv``), every
   training sample whose place group (``split.sample_key``: country | region | city, else a grid
   cell) also occurs in validation is dropped, so no city is on both sides;
4. draws ``round(total * weight / sum(weights))`` samples per part with a seeded generator
   (``Random("{seed}:mix:{part}")``); ``total`` defaults to the largest mixture every part can fill
   at its proportion; a part with too few samples gives all it has and the manifest says so;
5. shuffles the union (seeded) and writes it with a manifest of what went in: per part the source
   file's hash, how many samples it had, how many were duplicates or validation cities, how many were
   taken.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.data.common import DataError, Report, Sample, read_samples, write_manifest, write_samples
from training.data.split import sample_key

PART = "mix"
PAPER_TOTAL = 240_000
PAPER_RECIPE: Mapping[str, float] = {"meta": 94_000, "clue": 73_000, "dialog": 73_000}


def parse_recipe(text: str) -> dict[str, float]:
    """``meta=94,clue=73,dialog=73`` -> weights; DataError with the fix when it is malformed."""
    recipe: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            raise DataError(f"recipe entry {item!r} must be NAME=WEIGHT, e.g. meta=94") from None
        if not name.strip() or weight < 0:
            raise DataError(f"recipe entry {item!r} must be NAME=WEIGHT with a weight of 0 or more")
        recipe[name.strip()] = weight
    if not recipe or not any(recipe.values()):
        raise DataError("the recipe gives no part a weight; write e.g. meta=94,clue=73,dialog=73")
    return recipe


def _image_root(path: Path) -> Path:
    from training.datasets import _default_image_root

    return _default_image_root(path)


def _absolute(sample: Sample, root: Path) -> Sample:
    image = sample.get("image")
    if isinstance(image, str):
        return {**sample, "image": str((root / image).resolve())}
    if isinstance(image, list):
        return {**sample, "image": [str((root / name).resolve()) for name in image]}
    return sample


def _content_key(sample: Sample) -> str:
    body = json.dumps([sample.get("image"), sample.get("conversations")], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def build_mix(
    parts: Mapping[str, Path],
    out: Path,
    *,
    recipe: Mapping[str, float] | None = None,
    total: int | None = None,
    val: Sequence[Path] = (),
    seed: int = 0,
) -> Report:
    """Write the mixture of ``parts`` (name -> samples file) into ``out`` with its manifest."""
    recipe = dict(recipe if recipe is not None else PAPER_RECIPE)
    missing = sorted(set(recipe) - set(parts))
    if missing and any(recipe[m] > 0 for m in missing):
        raise DataError(f"the recipe weighs part(s) {', '.join(missing)} but no file was given for them; "
                        f"pass --part {missing[0]}=FILE or change the recipe")
    unweighted = sorted(set(parts) - set(recipe))
    if unweighted:
        raise DataError(f"part(s) {', '.join(unweighted)} have no weight in the recipe; add NAME=WEIGHT")
    if total is not None and total < 1:
        raise DataError("--total must be at least 1")
    report = Report(PART, out=out)
    val_keys = {sample_key(s) for file in val for s in read_samples(file)}
    seen: set[str] = set()
    pools: dict[str, list[Sample]] = {}
    details: dict[str, dict[str, Any]] = {}
    for name, file in parts.items():
        root = _image_root(file)
        samples = read_samples(file)
        kept: list[Sample] = []
        duplicates = held_out = 0
        for raw in samples:
            sample = _absolute(raw, root)
            key = _content_key(sample)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            if val_keys and sample_key(sample) in val_keys:
                held_out += 1
                continue
            kept.append(sample)
        pools[name] = kept
        details[name] = {"file": str(file), "samples": len(samples), "duplicates": duplicates,
                         "validation_cities": held_out, "available": len(kept), "weight": recipe[name]}
        report.count("duplicates", duplicates)
        report.count("validation_city_samples", held_out)
    weight_sum = sum(recipe[name] for name in parts)
    shares = {name: recipe[name] / weight_sum for name in parts}
    if total is None:
        total = min(int(len(pools[name]) / share) for name, share in shares.items() if share > 0)
        if total == 0:
            raise DataError("a weighted part has no usable sample; check the part files")
    chosen: list[Sample] = []
    for name, share in shares.items():
        wanted = round(total * share)
        pool = list(pools[name])
        random.Random(f"{seed}:mix:{name}").shuffle(pool)
        taken = pool[:wanted]
        details[name].update(wanted=wanted, taken=len(taken), short_by=max(wanted - len(taken), 0))
        if len(taken) < wanted:
            report.problem(name, f"asked for {wanted} samples, the part has {len(taken)} usable",
                           "short_parts")
        chosen.extend(taken)
        report.count(f"taken_{name}", len(taken))
    random.Random(f"{seed}:mix").shuffle(chosen)
    report.counts["samples"] = write_samples(out, chosen)
    report.manifest = write_manifest(
        out, part=PART, seed=seed, counts=report.counts, outputs=[out],
        sources={**{f"part_{name}": file for name, file in parts.items()},
                 **{f"val_{i}": file for i, file in enumerate(val)}},
        image_root=None,
        extra={"recipe": recipe, "total": total, "parts": details,
               "paper_recipe": dict(PAPER_RECIPE), "paper_total": PAPER_TOTAL},
    )
    return report
