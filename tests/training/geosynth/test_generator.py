"""The generator: byte-for-byte determinism, the metadata table, and what it tells the evaluator."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.training.geosynth.conftest import SEED, N
from training.evaluation.io import read_truth
from training.geosynth.fonts import FontBook
from training.geosynth.generator import METADATA_COLUMNS, generate
from training.geosynth.scene import CUE_KINDS
from training.geosynth.world import GeoSynthError, World


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "geosynth.json"}  # the run record names its own folder


def test_same_seed_gives_identical_bytes(tmp_path: Path, world: World, fonts: FontBook,
                                         generated: Path) -> None:
    again = tmp_path / "again"
    generate(again, n=N, seed=SEED, world=world, fonts=fonts)
    first, second = _files(generated), _files(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    assert len([k for k in first if k.endswith(".png")]) == N


def test_different_seed_gives_different_scenes(tmp_path: Path, world: World, fonts: FontBook,
                                               generated: Path) -> None:
    other = tmp_path / "other"
    generate(other, n=N, seed=SEED + 1, world=world, fonts=fonts)
    ours = {p.read_bytes() for p in (generated / "images").glob("*.png")}
    theirs = {p.read_bytes() for p in (other / "images").glob("*.png")}
    assert not ours & theirs


def test_scenes_do_not_depend_on_n(tmp_path: Path, world: World, fonts: FontBook, generated: Path) -> None:
    fewer = tmp_path / "fewer"
    generate(fewer, n=7, seed=SEED, world=world, fonts=fonts)
    for png in sorted((fewer / "images").glob("*.png")):
        assert png.read_bytes() == (generated / "images" / png.name).read_bytes()


def test_metadata_table_schema_and_values(generated: Path, world: World) -> None:
    with (generated / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    assert tuple(header) == METADATA_COLUMNS
    assert len(rows) == N
    scenes = {r["id"]: r for r in map(json.loads, (generated / "scenes.jsonl").read_text().splitlines())}
    for row in rows:
        record = dict(zip(header, row, strict=True))
        assert (generated / record["image"]).is_file()
        sign = scenes[record["id"]]["facts"].get("sign")
        if sign is not None:  # the sign names the scene's own city
            assert world.place(*sign["place"].split(":", 1)).city_name == record["city"]
        cues = record["cues"].split(";")
        assert cues == [k for k in CUE_KINDS if k in cues]  # known kinds, in the table's order
        assert record["decisive_hidden"] in ("true", "false")
        assert cues == scenes[record["id"]]["cues"]
        match = [p for p in world.by_country(record["country"]) if p.city_name == record["city"]]
        assert len(match) == 1
        assert float(record["latitude"]) == pytest.approx(match[0].lat, abs=1e-5)
        assert float(record["longitude"]) == pytest.approx(match[0].lon, abs=1e-5)
        assert record["region"] == match[0].region


def test_metadata_serves_as_the_evaluators_truth(generated: Path) -> None:
    truth = read_truth(generated / "metadata.csv")
    assert len(truth) == N
    assert all(t.image and (generated / t.image).is_file() for t in truth)
    dialogs = [json.loads(line) for line in (generated / "dialogs.jsonl").read_text().splitlines()]
    assert [d["id"] for d in dialogs] == [t.row.id for t in truth]
    assert all(d["question"].endswith("?") and d["answer"] for d in dialogs)


def test_a_share_of_scenes_hide_the_decisive_cue(tmp_path: Path, world: World, fonts: FontBook) -> None:
    out = tmp_path / "share"
    report = generate(out, n=200, seed=3, world=world, fonts=fonts, hidden_share=0.3)
    hidden = report.counts.get("decisive_hidden", 0)
    assert 30 <= hidden <= 90  # binomial(200, 0.3): 60 +- 6.5; a fixed seed makes this exact anyway
    none = generate(tmp_path / "none", n=50, seed=3, world=world, fonts=fonts, hidden_share=0.0)
    assert none.counts.get("decisive_hidden", 0) == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 0}, "--n"), ({"n": 5, "size": 8}, "--size"), ({"n": 5, "hidden_share": 1.5}, "--hidden-share"),
])
def test_bad_arguments_are_refused_with_a_sentence(tmp_path: Path, world: World, fonts: FontBook,
                                                    kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(GeoSynthError, match=message):
        generate(tmp_path / "bad", seed=1, world=world, fonts=fonts, **kwargs)  # type: ignore[arg-type]


def test_cli_writes_scenes_and_training_parts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    out = tmp_path / "cli"
    assert main(["geosynth", "--n", "4", "--seed", "9", "--out", str(out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["counts"]["images"] == 4
    # dialog: a +Q, a +QA and a clue-verdict sample per scene
    assert document["mggeo"]["counts"] == {"clue": 4, "dialog": 12, "hints": 4, "meta": 4}
    assert (out / "mggeo" / "meta.json").is_file()
    assert main(["geosynth", "--n", "2", "--seed", "1", "--out", str(out), "--without-font", "nope"]) == 1
    assert "unknown font key" in capsys.readouterr().err
