"""Evaluation metrics over many answers: the numbers GaGA, OSV-5M, GeoAgent and GLOBE print.

Built on :mod:`geodesk.geo.distance` (haversine with R = 6371 km, GeoScore = 5000 * exp(-d / 1492.7),
accuracy counts d < r strictly). Everything is computed over ALL samples, as the papers do:

- ``recall``: the share of answers that are valid (GaGA section V-B: an MLLM does not always answer).
- ``accuracy_km[r]``: percent of ALL samples whose prediction lies strictly closer than r km. An invalid
  answer, or a valid one without coordinates (a names-only HIER answer that stopped early), is a miss
  at every threshold and scores 0 GeoScore; so the denominators are always ``n``.
- ``geoscore``: the mean over ALL samples (invalid -> 0).
- ``median_km``: the median distance over the answers that have one (valid, with coordinates); None
  when there are none. A median over misses would need a distance that does not exist.
- ``admin_accuracy``: percent of samples whose answer names the true country / region / city,
  compared by :meth:`Gazetteer.same_place` (aliases, ISO codes, suffixes such as "City" or "市").
- ``admin_accuracy_reverse``: as OSV-5M computes it (``metrics/utils.py::reverse``): the PREDICTED
  coordinates are reverse-geocoded and the resulting names compared with the truth's names.

Both admin-level accuracies are hierarchical. OSV-5M compares keys that include every level above
(region key ``admin1_cc``, city key ``name_admin2_admin1_cc``), and GaGA's HIER rule makes a wrong
level wrong all the levels below; so a region counts only with the country right, a city only with the
country and region right. A level the truth does not name (empty) is left out of that level's
denominator and of the chain below it (OSV-5M drops "nan" truths the same way). Reverse geocoding uses
geodesk's offline gazetteer (GeoNames cities1000 + Natural Earth borders, ADR 0003) rather than the
``reverse_geocoder`` package OSV-5M calls: the same GeoNames admin1 / city names, plus borders.

No torch, no Qt: vectorised numpy; names are compared once per distinct (level, answer, truth) pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from geodesk.geo.distance import ACCURACY_THRESHOLDS_KM, geoscore_np, haversine_km_np
from geodesk.geo.gazetteer import LEVELS, Gazetteer, default_gazetteer

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
THRESHOLD_KEYS: tuple[str, ...] = tuple(str(int(r)) for r in ACCURACY_THRESHOLDS_KM)
SUMMARY_KEYS = (
    "n",
    "recall",
    "accuracy_km",
    "geoscore",
    "median_km",
    "admin_accuracy",
    "admin_accuracy_reverse",
)


@dataclass(frozen=True, slots=True)
class TruthRow:
    """One ground-truth sample: its coordinates and, where known, its admin names."""

    id: str
    lat: float
    lon: float
    country: str | None = None
    region: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One model answer as evaluation reads it; ``valid`` is the paper's recall criterion."""

    id: str
    lat: float | None = None
    lon: float | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    valid: bool = False


def invalid_prediction(sample_id: str) -> PredictionRow:
    """What a missing answer counts as: invalid, a miss everywhere."""
    return PredictionRow(sample_id)


# ------------------------------------------------------------------------------------------------
# Distances
# ------------------------------------------------------------------------------------------------


def distances_km(
    pred_lat: Sequence[float | None] | FloatArray,
    pred_lon: Sequence[float | None] | FloatArray,
    valid: Sequence[bool] | BoolArray,
    true_lat: Sequence[float] | FloatArray,
    true_lon: Sequence[float] | FloatArray,
) -> FloatArray:
    """(N,) great-circle errors in km; NaN where the answer is invalid or has no coordinates."""
    plat = np.asarray([np.nan if v is None else v for v in pred_lat], dtype=np.float64)
    plon = np.asarray([np.nan if v is None else v for v in pred_lon], dtype=np.float64)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(plat) & np.isfinite(plon)
    d = np.full(plat.shape[0], np.nan)
    if ok.any():
        tlat = np.asarray(true_lat, dtype=np.float64)
        tlon = np.asarray(true_lon, dtype=np.float64)
        d[ok] = haversine_km_np(plat[ok], plon[ok], tlat[ok], tlon[ok])
    return d


def distance_summary(d_km: FloatArray, valid: Sequence[bool] | BoolArray) -> dict[str, Any]:
    """n, recall, accuracy_km (percent of ALL samples, d < r), geoscore (invalid -> 0) and median_km.

    ``d_km``: (N,) from :func:`distances_km`, NaN for a miss without a distance.
    """
    d = np.asarray(d_km, dtype=np.float64)
    n = int(d.shape[0])
    ok = np.isfinite(d)
    if n == 0:
        return {
            "n": 0,
            "recall": 0.0,
            "accuracy_km": dict.fromkeys(THRESHOLD_KEYS, 0.0),
            "geoscore": 0.0,
            "median_km": None,
        }
    # NaN < r is False: a missing distance is a miss at every threshold, with no special case.
    with np.errstate(invalid="ignore"):
        accuracy = {
            key: 100.0 * float(np.count_nonzero(d < r)) / n
            for key, r in zip(THRESHOLD_KEYS, ACCURACY_THRESHOLDS_KM, strict=True)
        }
    scores = np.zeros(n)
    scores[ok] = geoscore_np(d[ok])
    return {
        "n": n,
        "recall": float(np.count_nonzero(np.asarray(valid, dtype=bool))) / n,
        "accuracy_km": accuracy,
        "geoscore": float(scores.mean()),
        "median_km": float(np.median(d[ok])) if ok.any() else None,
    }


# ------------------------------------------------------------------------------------------------
# Admin levels
# ------------------------------------------------------------------------------------------------


def _present(value: str | None) -> bool:
    return bool(value and value.strip())


def _level_hits(
    gazetteer: Gazetteer,
    predicted: Mapping[str, Sequence[str | None]],
    truths: Sequence[TruthRow],
    valid: BoolArray,
) -> dict[str, tuple[BoolArray, BoolArray]]:
    """Per level: (hit, counted), both (N,). Hierarchical: a level's hit needs every named level above.

    ``predicted[level]`` are the answer's names (or reverse-geocoded names) per sample.
    """
    n = len(truths)
    # the truth's country as a code (resolved once per distinct name), to narrow region / city lookups
    codes: dict[str, str | None] = {}
    true_cc: list[str | None] = []
    for t in truths:
        name = (t.country or "").strip()
        if name not in codes:
            ref = gazetteer.country(name) if name else None
            codes[name] = ref.code if ref is not None else None
        true_cc.append(codes[name])
    out: dict[str, tuple[BoolArray, BoolArray]] = {}
    chain = valid.copy()  # (N,) every level named by the truth so far was answered right
    for level in LEVELS:
        truth_names = [getattr(t, level) for t in truths]
        counted = np.fromiter((_present(v) for v in truth_names), dtype=bool, count=n)
        same = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(counted & chain).tolist():
            cc = None if level == "country" else (true_cc[i] or truths[i].country)
            same[i] = gazetteer.same_place(level, predicted[level][i], truth_names[i], cc)
        hit = same & chain & counted
        out[level] = (hit, counted)
        chain = np.where(counted, hit, chain)  # an unnamed truth level does not break the chain
    return out


def _percent(hits: Mapping[str, tuple[BoolArray, BoolArray]]) -> dict[str, float]:
    return {
        level: 100.0 * float(np.count_nonzero(hit)) / max(1, int(np.count_nonzero(counted)))
        for level, (hit, counted) in hits.items()
    }


def admin_accuracy_by_names(
    predictions: Sequence[PredictionRow], truths: Sequence[TruthRow], gazetteer: Gazetteer | None = None
) -> dict[str, float]:
    """Percent of samples whose answer names the true country / region / city (hierarchical)."""
    _check_aligned(predictions, truths)
    gaz = gazetteer or default_gazetteer()
    names = {level: [getattr(p, level) for p in predictions] for level in LEVELS}
    valid = np.fromiter((p.valid for p in predictions), dtype=bool, count=len(predictions))
    return _percent(_level_hits(gaz, names, truths, valid))


def admin_accuracy_by_reverse(
    predictions: Sequence[PredictionRow], truths: Sequence[TruthRow], gazetteer: Gazetteer | None = None
) -> dict[str, float]:
    """OSV-5M's admin accuracy: reverse-geocode the predicted coordinates, compare with the truth's names.

    An answer without usable coordinates (invalid, or names only) is a miss at every level.
    """
    _check_aligned(predictions, truths)
    gaz = gazetteer or default_gazetteer()
    n = len(predictions)
    has_point = np.fromiter(
        (
            p.valid
            and p.lat is not None
            and p.lon is not None
            and np.isfinite(p.lat)
            and np.isfinite(p.lon)
            and abs(p.lat) <= 90
            and abs(p.lon) <= 180
            for p in predictions
        ),
        dtype=bool,
        count=n,
    )
    names: dict[str, list[str | None]] = {level: [None] * n for level in LEVELS}
    rows = np.flatnonzero(has_point)
    if rows.size:
        lats = [predictions[i].lat or 0.0 for i in rows.tolist()]  # has_point: never None here
        lons = [predictions[i].lon or 0.0 for i in rows.tolist()]
        for i, place in zip(rows.tolist(), gaz.reverse_many(lats, lons), strict=True):
            # the code resolves exactly, whatever spelling the truth file uses for the country
            names["country"][i] = place.country_code
            names["region"][i] = place.region
            names["city"][i] = place.city
    return _percent(_level_hits(gaz, names, truths, has_point))


# ------------------------------------------------------------------------------------------------
# The summary document
# ------------------------------------------------------------------------------------------------


def _check_aligned(predictions: Sequence[PredictionRow], truths: Sequence[TruthRow]) -> None:
    if len(predictions) != len(truths):
        raise ValueError(
            f"{len(predictions)} predictions for {len(truths)} truth rows; align them by id first"
        )
    for p, t in zip(predictions, truths, strict=True):
        if p.id != t.id:
            raise ValueError(f"prediction {p.id!r} is paired with truth {t.id!r}; align them by id first")


def align(
    predictions: Sequence[PredictionRow], truths: Sequence[TruthRow]
) -> tuple[list[PredictionRow], list[str]]:
    """Predictions in truth order (a missing one becomes an invalid answer) and the unknown ids."""
    by_id: dict[str, PredictionRow] = {}
    for p in predictions:
        by_id[p.id] = p  # a repeated id: the last answer wins (a resumed run re-answered it)
    truth_ids = {t.id for t in truths}
    aligned = [by_id.get(t.id) or invalid_prediction(t.id) for t in truths]
    unknown = sorted(i for i in by_id if i not in truth_ids)
    return aligned, unknown


def summarize(
    predictions: Sequence[PredictionRow], truths: Sequence[TruthRow], gazetteer: Gazetteer | None = None
) -> dict[str, Any]:
    """The evaluation summary, exactly these keys::

        {"n", "recall", "accuracy_km": {"1", "25", "200", "750", "2500"}, "geoscore", "median_km",
         "admin_accuracy": {"country", "region", "city"},
         "admin_accuracy_reverse": {"country", "region", "city"}}

    ``predictions`` must be aligned with ``truths`` (see :func:`align`). Accuracies are percent.
    """
    _check_aligned(predictions, truths)
    gaz = gazetteer or default_gazetteer()
    valid = np.fromiter((p.valid for p in predictions), dtype=bool, count=len(predictions))
    d = distances_km(
        [p.lat for p in predictions],
        [p.lon for p in predictions],
        valid,
        [t.lat for t in truths],
        [t.lon for t in truths],
    )
    doc = distance_summary(d, valid)
    doc["admin_accuracy"] = admin_accuracy_by_names(predictions, truths, gaz)
    doc["admin_accuracy_reverse"] = admin_accuracy_by_reverse(predictions, truths, gaz)
    return {key: doc[key] for key in SUMMARY_KEYS}


# --------------------------------------------------------------------------------------------------
# GLOBE's name matching (its published evaluation): a predicted and a true name match when one,
# lower-cased, is a substring of the other and the shorter is at least 0.7 of the longer's length.
# --------------------------------------------------------------------------------------------------

GLOBE_LENGTH_RATIO = 0.7


def globe_name_match(predicted: str | None, truth: str | None, ratio: float = GLOBE_LENGTH_RATIO) -> bool:
    """GLOBE's country / city match: case-insensitive substring either way, length ratio >= ``ratio``."""
    pred = (predicted or "").strip().lower()
    true = (truth or "").strip().lower()
    if not pred or not true:
        return False
    if pred in true:
        return len(pred) / len(true) >= ratio
    if true in pred:
        return len(true) / len(pred) >= ratio
    return False


def globe_accuracy(predictions: Sequence[PredictionRow], truths: Sequence[TruthRow]) -> dict[str, Any]:
    """Country and city accuracy (percent of all samples) under GLOBE's matching; aligned rows."""
    _check_aligned(predictions, truths)
    n = len(truths)
    country = sum(globe_name_match(p.country, t.country) for p, t in zip(predictions, truths, strict=True))
    city = sum(globe_name_match(p.city, t.city) for p, t in zip(predictions, truths, strict=True))
    return {
        "samples": n,
        "country_accuracy": 100.0 * country / n if n else 0.0,
        "city_accuracy": 100.0 * city / n if n else 0.0,
        "length_ratio": GLOBE_LENGTH_RATIO,
        "matching": "case-insensitive substring either way, shorter/longer length >= 0.7 (GLOBE)",
    }
