"""Meta Part: direct-mode questions from the protocol's templates, canonical JSON answers, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import parse_answer
from training.data.common import DataError, manifest_path, read_samples, sha256_file
from training.data.meta import build_meta
from training.data.metadata import PlaceNamer


def test_meta_samples_have_template_questions_and_named_answers(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    out = tmp_path / "meta.json"
    report = build_meta(csv_path, images, out, seed=3, namer=namer)
    assert report.counts["samples"] == 4
    assert report.counts["missing_images"] == 1  # n1 has no image: counted, not fatal
    assert report.counts["bad_rows"] == 1
    assert {p["id"] for p in report.problems} >= {"n1", "bad1"}
    samples = {s["id"]: s for s in read_samples(out)}
    assert set(samples) == {"meta-p1", "meta-t1", "meta-s1", "meta-b1"}
    berlin = samples["meta-b1"]
    assert berlin["image"] == "00/b1.png"
    human, gpt = berlin["conversations"]
    assert human["from"] == "human" and gpt["from"] == "gpt"
    assert human["value"].startswith("<image>\n")
    instruction = human["value"].split("\n")[1]
    assert instruction in prompts.templates(SessionMode.DIRECT)
    assert human["value"].endswith(prompts.DIRECT_FORMAT)
    answer = json.loads(gpt["value"])
    assert answer == {"country": "Germany", "region": "Berlin", "city": "Berlin", "lat": 52.52, "lon": 13.405}
    assert parse_answer(gpt["value"]).valid
    assert json.loads(samples["meta-p1"]["conversations"][1]["value"])["country"] == "France"


def test_meta_is_deterministic_per_seed_and_independent_of_row_order(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    build_meta(csv_path, images, a, seed=7, namer=namer)
    lines = csv_path.read_text().splitlines()
    reordered = tmp_path / "reordered.csv"
    reordered.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    build_meta(reordered, images, b, seed=7, namer=namer)
    by_id_a = {s["id"]: s for s in read_samples(a)}
    by_id_b = {s["id"]: s for s in read_samples(b)}
    assert by_id_a == by_id_b
    # Over many seeds the question wording varies (it is drawn, not fixed).
    questions = set()
    for seed in range(12):
        out = tmp_path / f"s{seed}.json"
        build_meta(csv_path, images, out, seed=seed, namer=namer)
        questions.add(read_samples(out)[0]["conversations"][0]["value"])
    assert len(questions) > 1


def test_manifest_records_hashes_counts_and_seed(
    table: tuple[Path, Path], tmp_path: Path, namer: PlaceNamer
) -> None:
    csv_path, images = table
    out = tmp_path / "meta.jsonl"
    report = build_meta(csv_path, images, out, seed=5, namer=namer)
    assert len(out.read_text().splitlines()) == 4  # the JSONL variant: one sample per line
    manifest = json.loads(manifest_path(out).read_text())
    assert report.manifest == manifest_path(out)
    assert manifest["outputs"]["meta.jsonl"]["sha256"] == sha256_file(out)
    assert manifest["sources"]["metadata"]["sha256"] == sha256_file(csv_path)
    assert manifest["seed"] == 5 and manifest["part"] == "meta"
    assert manifest["counts"]["samples"] == 4
    assert manifest["image_root"] == str(images.resolve())
    assert manifest["protocol_version"] == prompts.PROTOCOL_VERSION


def test_missing_column_is_a_clear_error(tmp_path: Path, namer: PlaceNamer) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,latitude,longitude,country\n1,1,2,FR\n")
    (tmp_path / "img").mkdir()
    with pytest.raises(DataError, match="lacks the column"):
        build_meta(bad, tmp_path / "img", tmp_path / "out.json", namer=namer)


def test_rows_without_region_or_city_are_left_out_unless_kept(tmp_path: Path, namer: PlaceNamer) -> None:
    from PIL import Image

    from tests.training.data.conftest import write_table

    images = tmp_path / "img"
    images.mkdir()
    for name in ("full", "nocity", "noregion"):
        Image.new("RGB", (8, 8)).save(images / f"{name}.png")
    table = write_table(tmp_path / "t.csv", [
        ("full", 48.85, 2.35, "FR", "Île-de-France", "", "Paris"),
        ("nocity", 45.76, 4.83, "FR", "Auvergne-Rhône-Alpes", "", ""),
        ("noregion", 43.3, 5.37, "FR", "", "", "Marseille"),
    ], False)
    report = build_meta(table, images, tmp_path / "m.json", namer=namer)
    assert report.counts["samples"] == 1 and report.counts["incomplete_rows"] == 2
    assert [s["id"] for s in read_samples(tmp_path / "m.json")] == ["meta-full"]
    kept = build_meta(table, images, tmp_path / "k.json", namer=namer, keep_incomplete=True)
    assert kept.counts["samples"] == 3
    answers = {s["id"]: json.loads(s["conversations"][1]["value"]) for s in read_samples(tmp_path / "k.json")}
    assert answers["meta-nocity"]["city"] is None
