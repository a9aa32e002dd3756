"""build-data mix: the paper's proportions (or a recipe), duplicates dropped, validation cities kept out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodesk.engine import prompts
from training.cli import main as train_main
from training.data.common import DataError, manifest_path, read_samples, write_manifest, write_samples
from training.data.mix import PAPER_RECIPE, build_mix, parse_recipe
from training.datasets import read_llava_json

CITIES = [("France", "Île-de-France", "Paris", 48.85, 2.35), ("Japan", "Tokyo", "Tokyo", 35.68, 139.65),
          ("Kenya", "Nairobi County", "Nairobi", -1.29, 36.82),
          ("Brazil", "São Paulo", "São Paulo", -23.55, -46.63)]


def _part(folder: Path, name: str, count: int, start: int = 0) -> Path:
    """``count`` samples named ``<name>-<i>`` over the four cities, images relative to ``folder``."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(start, start + count):
        country, region, city, lat, lon = CITIES[i % len(CITIES)]
        answer = prompts.format_answer(country=country, region=region, city=city, lat=lat, lon=lon)
        samples.append({"id": f"{name}-{i}", "image": f"{i}.png", "conversations": [
            {"from": "human", "value": f"<image>\n{name} question {i}"}, {"from": "gpt", "value": answer}]})
    path = folder / name / "train.json"
    write_samples(path, samples)
    write_manifest(path, part=name, seed=0, counts={}, outputs=[path], sources={}, image_root=folder / name)
    return path


def test_the_paper_recipe_keeps_its_proportions_and_the_manifest_says_what_went_in(tmp_path: Path) -> None:
    parts = {"meta": _part(tmp_path, "meta", 200), "clue": _part(tmp_path, "clue", 80),
             "dialog": _part(tmp_path, "dialog", 100)}
    out = tmp_path / "mix.json"
    report = build_mix(parts, out, seed=1)
    # The clue part is the scarcest at its share (73/240): it decides the total.
    total = int(80 / (PAPER_RECIPE["clue"] / sum(PAPER_RECIPE.values())))
    assert report.counts["samples"] == sum(report.counts[f"taken_{n}"] for n in parts)
    assert report.counts["taken_clue"] == 80
    assert report.counts["taken_meta"] == round(total * 94 / 240)
    assert report.counts["taken_dialog"] == round(total * 73 / 240)
    manifest = json.loads(manifest_path(out).read_text(encoding="utf-8"))
    assert manifest["parts"]["clue"]["available"] == 80 and manifest["total"] == total
    assert set(manifest["sources"]) == {"part_meta", "part_clue", "part_dialog"}
    # Images now point into each part's own folder, and the trainer reads them from there.
    samples = read_llava_json(out)
    assert all(s.images[0].is_absolute() and s.images[0].parent.name in parts for s in samples)
    again = build_mix(parts, tmp_path / "again.json", seed=1)
    assert read_samples(tmp_path / "again.json") == read_samples(out) and again.counts == report.counts


def test_duplicates_and_validation_cities_are_dropped(tmp_path: Path) -> None:
    meta = _part(tmp_path, "meta", 40)
    copy = tmp_path / "copy"
    copy.mkdir()
    # The same samples again (same images, same conversations) under another part name.
    write_samples(copy / "train.json", [{**s, "image": str((tmp_path / "meta" / s["image"]).resolve())}
                                        for s in read_samples(meta)])
    val = tmp_path / "val.json"
    write_samples(val, read_samples(_part(tmp_path, "held", 1, start=2)))  # Nairobi is a validation city
    report = build_mix({"meta": meta, "copy": copy / "train.json"}, tmp_path / "mix.json",
                       recipe={"meta": 1, "copy": 1}, total=20, val=[val])
    assert report.counts["duplicates"] == 40
    assert report.counts["validation_city_samples"] == 10
    mixed = read_samples(tmp_path / "mix.json")
    assert all("Nairobi" not in s["conversations"][-1]["value"] for s in mixed)
    assert report.counts["short_parts"] == 1  # the copy part had nothing left to give


def test_recipes_and_errors_are_sentences(tmp_path: Path) -> None:
    assert parse_recipe("meta=2, clue=1") == {"meta": 2.0, "clue": 1.0}
    with pytest.raises(DataError, match="NAME=WEIGHT"):
        parse_recipe("meta")
    meta = _part(tmp_path, "meta", 4)
    with pytest.raises(DataError, match="no file was given"):
        build_mix({"meta": meta}, tmp_path / "m.json")  # the paper's recipe needs clue and dialog too
    with pytest.raises(DataError, match="no weight"):
        build_mix({"meta": meta, "cases": meta}, tmp_path / "m.json", recipe={"meta": 1})


def test_cli_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta, cases = _part(tmp_path, "meta", 12), _part(tmp_path, "cases", 6)
    code = train_main(["build-data", "mix", "--part", f"meta={meta}", "--part", f"cases={cases}",
                       "--recipe", "meta=2,cases=1", "--out", str(tmp_path / "mix.json"), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["counts"]["samples"] == 18
