"""GLOBE's name matching: case-insensitive substring either way with a length ratio of at least 0.7."""

from __future__ import annotations

import pytest

from geodesk.geo.metrics import PredictionRow, TruthRow, globe_accuracy, globe_name_match


@pytest.mark.parametrize(
    ("predicted", "truth", "match"),
    [
        ("France", "france", True),
        ("United States", "United States of America", False),  # 13/24 = 0.54 < 0.7
        ("New York City", "New York", False),  # 8/13 = 0.62
        ("Viet Nam", "Vietnam", False),  # not a substring
        ("Kenya", "Republic of Kenya", False),  # 5/17
        ("Brazil", "Brasil", False),
        ("Mexico City", "Mexico City, CDMX", False),  # 11/17 = 0.647
        ("Rio de Janeiro", "Rio de Janeiro City", True),  # 14/19 = 0.737
        ("Paris", "Paris", True),
        ("USA", "United States", False),  # not a substring
        ("", "France", False),
        (None, "France", False),
        ("Japan", None, False),
        ("  TOKYO ", "Tokyo", True),
        ("Saint Petersburg", "Petersburg", False),  # 10/16 = 0.625
        ("Sao Paulo", "São Paulo", False),  # accents are not folded, as in GLOBE
    ],
)
def test_globe_name_match(predicted: str | None, truth: str | None, match: bool) -> None:
    assert globe_name_match(predicted, truth) is match


def test_globe_accuracy_counts_all_samples() -> None:
    truths = [TruthRow("a", 0, 0, "France", None, "Paris"), TruthRow("b", 0, 0, "Japan", None, "Osaka")]
    predictions = [PredictionRow("a", country="france", city="paris"), PredictionRow("b", country="Japan")]
    result = globe_accuracy(predictions, truths)
    assert (result["samples"], result["country_accuracy"], result["city_accuracy"]) == (2, 100.0, 50.0)
