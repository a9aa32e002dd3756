"""Validator: every failure is reported with the sample id and the reason; token lengths use the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data.common import read_samples, write_samples
from training.data.meta import build_meta
from training.data.metadata import PlaceNamer
from training.data.validate import load_budget, validate_samples


@pytest.fixture
def meta_file(table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer) -> tuple[Path, Path]:
    csv_path, images = table
    out = tmp_path / "meta.json"
    build_meta(csv_path, images, out, namer=namer)
    return out, images


def test_a_good_file_passes_with_the_tiny_models_budget(
    meta_file: tuple[Path, Path], tiny_model_dir: Path
) -> None:
    out, images = meta_file
    budget = load_budget(tiny_model_dir)
    assert budget.image_tokens == 16  # 56 px images, 14 px patches: 4 x 4
    assert budget.max_length == 2048
    report = validate_samples(out, images, budget=budget)
    assert report.counts["failed_samples"] == 0, report.problems
    assert report.counts["samples"] == 4
    assert 16 < report.extra["tokens"]["longest"] < 2048


def test_each_failure_is_reported_with_its_id(
    meta_file: tuple[Path, Path], tmp_path: Path, tiny_model_dir: Path
) -> None:
    out, images = meta_file
    samples = {s["id"]: s for s in read_samples(out)}
    samples["meta-p1"]["image"] = "gone.png"  # missing image
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    samples["meta-t1"]["image"] = "broken.jpg"  # undecodable image
    samples["meta-s1"]["conversations"][0]["value"] += " <image>"  # two placeholders for one image
    samples["meta-b1"]["conversations"].append({"from": "gpt", "value": "again"})  # roles do not alternate
    extra = json.loads(json.dumps(samples["meta-b1"]))
    extra["id"] = "meta-x1"
    extra["conversations"] = extra["conversations"][:2]
    extra["conversations"][1]["value"] = "somewhere warm"  # not the protocol's JSON answer
    bad = tmp_path / "bad.json"
    write_samples(bad, [*samples.values(), extra])
    report = validate_samples(bad, images, budget=load_budget(tiny_model_dir))
    by_id: dict[str, str] = {}
    for p in report.problems:
        by_id[p["id"]] = by_id.get(p["id"], "") + p["reason"] + "; "
    assert report.counts["failed_samples"] == 5
    assert "does not exist" in by_id["meta-p1"]
    assert "cannot be decoded" in by_id["meta-t1"]
    assert "2 <image> placeholder(s) for 1 image(s)" in by_id["meta-s1"]
    assert "roles must alternate" in by_id["meta-b1"]
    assert "no readable coordinates" in by_id["meta-x1"]


def test_truncated_image_fails_to_decode(meta_file: tuple[Path, Path]) -> None:
    out, images = meta_file
    from PIL import Image

    path = images / "t1.png"
    Image.new("RGB", (300, 300), (1, 2, 3)).save(images / "big.png")
    path.write_bytes((images / "big.png").read_bytes()[:200])  # header intact, pixels cut off
    report = validate_samples(out, images)
    assert [p["id"] for p in report.problems] == ["meta-t1"]


def test_over_length_is_reported(meta_file: tuple[Path, Path], tiny_model_dir: Path) -> None:
    out, images = meta_file
    report = validate_samples(out, images, budget=load_budget(tiny_model_dir, max_length=40))
    assert report.counts["failed_samples"] == 4
    assert all("exceed the model's limit of 40" in p["reason"] for p in report.problems)
