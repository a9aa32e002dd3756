"""The cue table: internally sound, resolvable in the gazetteer, and in agreement with the clue repository."""

from __future__ import annotations

import pytest

from training.data.clues import load_clue_repository
from training.geosynth.cues import BY_CODE, CITIES, COUNTRIES, check_table, landmark_glyph
from training.geosynth.world import World


def test_table_is_internally_consistent() -> None:
    assert check_table() == []
    assert 24 <= len(COUNTRIES) <= 30
    glyphs = {landmark_glyph(c.code, city.name) for c, city in CITIES}
    assert len(glyphs) == len(CITIES)  # one distinct landmark per city


def test_cues_overlap_and_separate_countries() -> None:
    # Left-hand traffic in the Commonwealth / Japan / Thailand group, yellow centre lines in the Americas.
    left = {c.code for c in COUNTRIES if c.driving_side == "left"}
    assert {"GB", "IE", "JP", "TH", "IN", "AU", "ZA", "KE"} <= left
    assert "US" not in left and "FR" not in left
    assert BY_CODE["US"].centre_line == "yellow" and BY_CODE["FR"].centre_line == "white"
    # No single cue separates all countries: every value of every shared cue occurs in 2+ countries,
    # except scripts unique to one country (which real signs also give away).
    for attribute in ("driving_side", "centre_line", "edge_line"):
        values = [getattr(c, attribute) for c in COUNTRIES]
        assert all(values.count(v) >= 2 for v in values), attribute


@pytest.fixture(scope="module")
def repository():  # type: ignore[no-untyped-def]
    return load_clue_repository()


def test_every_table_country_is_in_the_clue_repository(repository) -> None:  # type: ignore[no-untyped-def]
    missing = [c.code for c in COUNTRIES if repository.get(c.code) is None]
    assert missing == []


@pytest.mark.parametrize("country", COUNTRIES, ids=lambda c: c.code)
def test_table_facts_agree_with_the_clue_repository(repository, country) -> None:  # type: ignore[no-untyped-def]
    facts = repository.get(country.code).facts
    assert country.driving_side == facts["driving_side"]
    assert country.centre_line == facts["centre_line"]
    assert country.edge_line == facts["edge_line"]
    assert tuple(country.scripts) == tuple(facts["scripts"])
    plates = facts["plates"]
    assert (country.plates.front, country.plates.rear, country.plates.eu_band) == (
        plates["front"], plates["rear"], plates["eu_band"])


@pytest.mark.parametrize("country", COUNTRIES, ids=lambda c: c.code)
def test_every_drawn_fact_kind_has_a_repository_clue_where_the_repository_names_one(
    repository, country  # type: ignore[no-untyped-def]
) -> None:
    topics = {c.topic for c in repository.get(country.code).clues}
    if country.bollard is not None:
        assert "bollards" in topics, f"{country.code}: bollards drawn without a repository clue"
    if country.pole is not None:
        assert "poles" in topics, f"{country.code}: utility poles drawn without a repository clue"


def test_every_city_resolves_with_distinct_regions(world: World) -> None:
    assert len(world.places) == len(CITIES)
    for country in COUNTRIES:
        places = world.by_country(country.code)
        assert all(p.region for p in places), country.code
        assert len({p.region for p in places}) >= 2, f"{country.code}: cities should span regions"
        for place in places:
            assert -90 <= place.lat <= 90 and -180 <= place.lon <= 180
