"""Evaluation metrics against hand-computed values and the edge cases the references care about."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geodesk.geo import default_gazetteer
from geodesk.geo.metrics import (
    SUMMARY_KEYS,
    PredictionRow,
    TruthRow,
    admin_accuracy_by_names,
    admin_accuracy_by_reverse,
    align,
    distance_summary,
    distances_km,
    summarize,
)

ONE_DEGREE_KM = 6371.0 * math.pi / 180  # 111.19492664455873 km: one degree of a great circle
ANTIPODE_KM = 6371.0 * math.pi


def gs(d: float) -> float:
    return 5000.0 * math.exp(-d / 1492.7)


def test_hand_computed_two_samples() -> None:
    # sample a: 1 degree of longitude on the equator (111.19 km); sample b: the same point (0 km)
    d = distances_km([0.0, 10.0], [1.0, 20.0], [True, True], [0.0, 10.0], [0.0, 20.0])
    assert d == pytest.approx([ONE_DEGREE_KM, 0.0])
    s = distance_summary(d, [True, True])
    assert s["n"] == 2 and s["recall"] == 1.0
    assert s["accuracy_km"] == {"1": 50.0, "25": 50.0, "200": 100.0, "750": 100.0, "2500": 100.0}
    assert s["geoscore"] == pytest.approx((gs(ONE_DEGREE_KM) + 5000.0) / 2)
    assert s["median_km"] == pytest.approx(ONE_DEGREE_KM / 2)


def test_distance_exactly_at_a_threshold_is_a_miss() -> None:
    s = distance_summary(np.array([1.0, 25.0, 200.0, 750.0, 2500.0]), [True] * 5)
    # d == r never counts: at r = 25 only d = 1 is strictly closer
    assert s["accuracy_km"] == {"1": 0.0, "25": 20.0, "200": 40.0, "750": 60.0, "2500": 80.0}


def test_antipodes_poles_and_the_date_line() -> None:
    d = distances_km(
        [0.0, 90.0, 90.0, 0.0, -45.0],
        [180.0, 123.0, 0.0, -179.5, 170.0],
        [True] * 5,
        [0.0, 90.0, -90.0, 0.0, -45.0],
        [0.0, -57.0, 0.0, 179.5, -170.0],
    )
    assert d[0] == pytest.approx(ANTIPODE_KM)  # antipodes: half the circumference
    assert d[1] == pytest.approx(0.0, abs=1e-6)  # the north pole at any longitude is one point
    assert d[2] == pytest.approx(ANTIPODE_KM)  # pole to pole
    assert d[3] == pytest.approx(ONE_DEGREE_KM)  # across the date line, not around the world
    # 20 degrees of longitude at 45 S, across the date line: haversine by hand
    a = math.cos(math.radians(45)) ** 2 * math.sin(math.radians(10)) ** 2
    assert d[4] == pytest.approx(2 * 6371.0 * math.asin(math.sqrt(a)))
    s = distance_summary(d, [True] * 5)
    assert s["geoscore"] == pytest.approx(np.mean([gs(x) for x in d]))


def test_invalid_answers_are_misses_scoring_zero_and_left_out_of_the_median() -> None:
    # the invalid answer sits exactly on the truth: it must still be a miss everywhere
    d = distances_km([5.0, 5.0, None], [5.0, 5.0, None], [True, False, True], [5.0] * 3, [5.0] * 3)
    assert np.isnan(d[1]) and np.isnan(d[2])
    s = distance_summary(d, [True, False, True])
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["accuracy_km"]["1"] == pytest.approx(100 / 3)  # denominators: all samples
    assert s["geoscore"] == pytest.approx(5000.0 / 3)
    assert s["median_km"] == 0.0


def test_no_valid_answer_has_no_median() -> None:
    s = distance_summary(distances_km([None], [None], [False], [0.0], [0.0]), [False])
    assert s["median_km"] is None and s["geoscore"] == 0.0 and s["recall"] == 0.0


PARIS = TruthRow("p", 48.8566, 2.3522, "France", "Île-de-France", "Paris")
NAIROBI = TruthRow("n", -1.2921, 36.8219, "Kenya", "Nairobi County", "Nairobi")


def test_admin_accuracy_by_names_is_alias_aware_and_hierarchical() -> None:
    gaz = default_gazetteer()
    truths = [PARIS, NAIROBI, PARIS, PARIS]
    preds = [
        PredictionRow("p", None, None, "FR", "Ile de France", "paris", True),  # code, no accents, case
        PredictionRow(
            "n", None, None, "Kenya", "Mombasa County", "Nairobi", True
        ),  # region wrong -> city too
        PredictionRow("p", None, None, "Belgium", "Île-de-France", "Paris", True),  # country wrong -> all
        PredictionRow("p", None, None, "France", "Île-de-France", "Paris", False),  # invalid -> miss
    ]
    acc = admin_accuracy_by_names(preds, truths, gaz)
    assert acc == {"country": 50.0, "region": 25.0, "city": 25.0}


def test_a_level_the_truth_does_not_name_leaves_the_denominator() -> None:
    truths = [TruthRow("a", 48.8566, 2.3522, "France", None, "Paris"), PARIS]
    preds = [
        PredictionRow("a", None, None, "France", "Bavaria", "Paris", True),
        PredictionRow("p", None, None, "France", "Bavaria", "Paris", True),
    ]
    acc = admin_accuracy_by_names(preds, truths)
    # region: only the second sample counts (and is wrong); city: the first sample's chain skips
    # its unnamed region, the second's broke at the region
    assert acc == {"country": 100.0, "region": 0.0, "city": 50.0}


def test_admin_accuracy_by_reverse_geocoding_the_prediction() -> None:
    truths = [PARIS, PARIS, NAIROBI, PARIS]
    preds = [
        PredictionRow("p", 48.8570, 2.3500, None, None, None, True),  # in Paris: all three right
        PredictionRow("p", 45.7640, 4.8357, "France", "Île-de-France", "Paris", True),  # Lyon: country only
        PredictionRow("n", -1.2921, 36.8219, None, None, None, True),  # Nairobi
        PredictionRow("p", 48.8570, 2.3500, None, None, None, False),  # invalid: nothing
    ]
    acc = admin_accuracy_by_reverse(preds, truths)
    assert acc == {"country": 75.0, "region": 50.0, "city": 50.0}


def test_summary_document_shape_and_alignment() -> None:
    truths = [PARIS, NAIROBI]
    aligned, unknown = align(
        [
            PredictionRow("p", 48.8566, 2.3522, "France", None, None, True),
            PredictionRow("zz", 0.0, 0.0, None, None, None, True),
        ],
        truths,
    )
    assert unknown == ["zz"]
    assert aligned[1] == PredictionRow("n")  # missing -> invalid
    s = summarize(aligned, truths)
    assert tuple(s) == SUMMARY_KEYS
    assert set(s["accuracy_km"]) == {"1", "25", "200", "750", "2500"}
    assert set(s["admin_accuracy"]) == set(s["admin_accuracy_reverse"]) == {"country", "region", "city"}
    assert s["n"] == 2 and s["recall"] == 0.5 and s["accuracy_km"]["1"] == 50.0
    assert s["admin_accuracy"]["country"] == 50.0 and s["admin_accuracy"]["region"] == 0.0


def test_misaligned_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="align them by id"):
        summarize([PredictionRow("n")], [PARIS])
