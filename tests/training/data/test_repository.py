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
        assert all(c.category in prompts.CLUE_CATEGORY_IDS for c in entry.clues)
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


def test_not_a_repository(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"countries": []}')
    with pytest.raises(ClueRepositoryError, match="not a clue repository"):
        load_clue_repository(path)
