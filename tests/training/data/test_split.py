"""Location-aware split: no city (or grid cell) on both sides, deterministic per seed."""

from __future__ import annotations

import csv
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.training.data.conftest import write_table
from training.data.common import read_samples, write_samples
from training.data.split import location_key, split_items, split_metadata, split_samples

CITIES = [("FR", "IDF", "Paris"), ("FR", "ARA", "Lyon"), ("JP", "Tokyo", "Tokyo"), ("US", "NY", "New York"),
          ("US", "TX", "Paris"), ("DE", "BE", "Berlin"), ("BR", "SP", "São Paulo")]

row = st.tuples(
    st.one_of(st.none(), st.sampled_from(CITIES)),
    st.floats(-89.9, 89.9),
    st.floats(-179.9, 179.9),
)


def key(r: tuple[tuple[str, str, str] | None, float, float]) -> str:
    place, lat, lon = r
    country, region, city = place if place else (None, None, None)
    return location_key(country, region, city, lat, lon)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, max_size=60), fraction=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_no_group_on_both_sides(rows: list[tuple[object, float, float]], fraction: float, seed: int) -> None:
    train, val = split_items(rows, key, fraction, seed)  # type: ignore[arg-type]
    assert {key(r) for r in train}.isdisjoint({key(r) for r in val})  # type: ignore[arg-type]
    assert len(train) + len(val) == len(rows)
    assert (train, val) == split_items(rows, key, fraction, seed)  # type: ignore[arg-type]
    groups = {key(r) for r in rows}  # type: ignore[arg-type]
    if len(groups) >= 2 and 0 < fraction < 1:
        assert train and val


def test_key_normalises_and_falls_back_to_a_grid_cell() -> None:
    assert location_key("FR", "IDF", " paris ", 1, 2) == location_key("fr", "idf", "Paris", 50, 60)
    assert location_key("US", "TX", "Paris", 0, 0) != location_key("FR", "IDF", "Paris", 0, 0)
    assert location_key("FR", None, None, 48.85, 2.35) == location_key("FR", None, "", 48.9, 2.4)
    assert location_key("FR", None, None, 48.85, 2.35).startswith("cell:")


def test_split_metadata_writes_disjoint_city_tables(tmp_path: Path) -> None:
    rows = []
    for i in range(60):
        country, region, city = CITIES[i % len(CITIES)]
        rows.append((f"r{i}", 10.0 + i % 7, 20.0 + i % 5, country, region, "", city if i % 9 else ""))
    table = write_table(tmp_path / "all.csv", rows)
    report = split_metadata(table, tmp_path / "split", val_fraction=0.3, seed=4)
    sides = {}
    for name in ("train", "val"):
        with (tmp_path / "split" / f"{name}.csv").open(encoding="utf-8") as fh:
            read = list(csv.DictReader(fh))
        assert read and "land_cover" in read[0]  # original columns kept
        sides[name] = {location_key(r["country"], r["region"], r["city"], float(r["latitude"]),
                                    float(r["longitude"])) for r in read}
    assert sides["train"].isdisjoint(sides["val"])
    assert report.counts["train"] + report.counts["val"] == 60  # the bad row is in neither
    assert report.counts["bad_rows"] == 1


def test_split_samples_groups_by_the_answer(tmp_path: Path) -> None:
    from geodesk.engine import prompts

    samples = []
    for i in range(40):
        country, region, city = CITIES[i % len(CITIES)]
        answer = prompts.format_answer(country=country, region=region, city=city, lat=1.0, lon=2.0)
        samples.append({"id": f"meta-{i}", "image": f"{i}.png",
                        "conversations": [{"from": "human", "value": "<image>\nq"},
                                          {"from": "gpt", "value": answer}]})
    path = tmp_path / "meta.json"
    write_samples(path, samples)
    split_samples(path, tmp_path / "out", val_fraction=0.3, seed=1)
    train = read_samples(tmp_path / "out" / "meta.train.json")
    val = read_samples(tmp_path / "out" / "meta.val.json")
    assert len(train) + len(val) == 40

    def cities(part: list[dict[str, object]]) -> set[str]:
        return {s["conversations"][1]["value"].split('"city": ')[1].split(",")[0] for s in part}  # type: ignore[index]

    assert cities(train).isdisjoint(cities(val))
