"""The country clue repository: it loads, covers the countries we need, and the loader rejects errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from geodesk.engine import prompts
from training.data.clues import (
    DEFAULT_REPOSITORY,
    TOPICS,
    ClueRepositoryError,
    load_clue_repository,
    parse_clue_repository,
)

NEEDED = ["US", "CA", "MX", "BR", "AR", "CL", "GB", "IE", "FR", "DE", "ES", "PT", "IT", "NL", "SE", "NO",
          "FI", "PL", "RU", "UA", "TR", "JP", "KR", "CN", "TH", "IN", "ID", "AU", "NZ", "ZA", "KE", "NG",
          "EG", "MA"]


def test_repository_covers_the_countries_with_valid_clues() -> None:
    repo = load_clue_repository()
    assert len(repo.countries) >= 40
    assert set(NEEDED) <= set(repo.countries)
    ids = [c.id for e in repo.countries.values() for c in e.clues]
    assert len(ids) == len(set(ids))
    for entry in repo.countries.values():
        topics = {c.topic for c in entry.clues}
        assert "driving_side" in topics
        assert topics & {"script", "language"}, entry.code
        assert all(c.category in prompts.CLUE_CATEGORY_IDS for c in entry.clues if c.topic != "time_zone")
    assert repo.clue("jp-driving-side") is not None
    assert "left" in repo.clue("jp-driving-side").text  # type: ignore[union-attr]


def test_schema_file_names_the_same_vocabulary_as_the_loader() -> None:
    schema = json.loads((DEFAULT_REPOSITORY.parent / "clues.schema.json").read_text())
    clue = schema["properties"]["countries"]["items"]["properties"]["clues"]["items"]["properties"]
    assert tuple(clue["topic"]["enum"]) == TOPICS
    assert tuple(clue["category"]["enum"]) == prompts.CLUE_CATEGORY_IDS


def test_loader_lists_every_problem() -> None:
    document = json.loads(DEFAULT_REPOSITORY.read_text())
    broken = copy.deepcopy(document)
    france = next(c for c in broken["countries"] if c["code"] == "FR")
    france["clues"][0]["text"] = "Traffic drives on the left."  # contradicts facts.driving_side
    france["clues"][1]["category"] = "weather report"
    france["clues"][2]["id"] = france["clues"][3]["id"]
    france["facts"]["centre_line"] = "purple"
    with pytest.raises(ClueRepositoryError) as err:
        parse_clue_repository(broken, Path("broken.json"))
    message = str(err.value)
    assert "contradicts facts.driving_side" in message
    assert "weather report" in message
    assert "used twice" in message
    assert "centre_line" in message


def test_structured_facts_cover_every_country_and_name_their_sources() -> None:
    from training.data.country_facts import MIN_PLACES, TARGET_FACTS, coverage

    repo = load_clue_repository()
    report = coverage(repo)
    assert report["countries_with_places"] >= 240
    assert report["below_target"] == []  # every country with >= 10 places has >= 5 clues
    for code, counts in report["per_country"].items():
        if counts["places"] >= MIN_PLACES:
            assert counts["clues"] >= TARGET_FACTS, code
    assert all(c.source for e in repo.countries.values() for c in e.clues)
    # Hand-written clues win on their topic; the structured ones fill the other topics.
    japan = {c.topic: c for c in repo.countries["JP"].clues}
    assert japan["driving_side"].id == "jp-driving-side" and repo.clue("jp-traffic-side") is None
    assert "+81" in japan["phone"].text and japan["phone"].source.startswith("libphonenumber")
    # Countries the hand-written file does not know now have clues, from the sources.
    mongolia = {c.topic: c for c in repo.countries["MN"].clues}
    assert "Cyrillic" in mongolia["script"].text and "Mongolian" in mongolia["language"].text
    assert "+976" in mongolia["phone"].text and ".mn" in mongolia["domain"].text
    assert "right" in mongolia["driving_side"].text
    assert "southern hemisphere" in repo.countries["NZ"].clues[-1].text.lower() or any(
        "Southern hemisphere" in c.text for c in repo.countries["NZ"].clues)
    assert any(".uk" in c.text for c in repo.countries["GB"].clues)
    assert load_clue_repository(structured=False).clue_count < repo.clue_count


def test_the_committed_structured_file_is_what_the_sources_give() -> None:
    from training.data.country_facts import DEFAULT_STRUCTURED, build_structured, render_structured

    assert DEFAULT_STRUCTURED.read_text(encoding="utf-8") == render_structured(build_structured()), (
        "rebuild it: geodesk-train build-data repository --rebuild-structured"
    )


def test_not_a_repository(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"countries": []}')
    with pytest.raises(ClueRepositoryError, match="not a clue repository"):
        load_clue_repository(path)
