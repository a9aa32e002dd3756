"""Candidates and uncertainty: cluster k sampled answers of one turn into ranked candidates.

A turn's greedy answer is one guess; k sampled answers show how sure the model is. Valid points are
grouped by complete-linkage clustering on great-circle distance (no two members of a cluster further
apart than ``link_km``), so a cluster is a set of answers that agree to within that distance. Each
candidate carries its share of *all* samples (invalid answers count in the denominator: they are
votes for nothing), the medoid as its centre (a real answer, never a point between two countries),
and its spread: the mean distance of its members from that centre.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from geodesk.domain.model import Candidate, Prediction
from geodesk.geo.distance import haversine_km_np

DEFAULT_LINK_KM = 250.0


def cluster_candidates(
    samples: Sequence[Prediction], link_km: float = DEFAULT_LINK_KM
) -> tuple[Candidate, ...]:
    """Rank clusters of the samples' points, largest share first (ties: smaller spread first)."""
    if link_km <= 0:
        raise ValueError("link_km must be positive")
    located = [p for p in samples if p.valid and p.lat is not None and p.lon is not None]
    if not samples or not located:
        return ()
    lats = np.array([p.lat for p in located], dtype=np.float64)
    lons = np.array([p.lon for p in located], dtype=np.float64)
    # (n, n) pairwise great-circle distances in km.
    distances = haversine_km_np(lats[:, None], lons[:, None], lats[None, :], lons[None, :])
    labels = _complete_linkage(distances, link_km)
    candidates: list[Candidate] = []
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        sub = distances[np.ix_(members, members)]  # (m, m)
        medoid = members[int(np.argmin(sub.sum(axis=1)))]
        spread = float(distances[medoid, members].mean())
        centre = located[medoid]
        candidates.append(
            Candidate(
                lat=float(lats[medoid]),
                lon=float(lons[medoid]),
                share=len(members) / len(samples),
                spread_km=spread,
                country=_majority([located[i].country for i in members]) or centre.country,
                region=_majority([located[i].region for i in members]) or centre.region,
                city=_majority([located[i].city for i in members]) or centre.city,
            )
        )
    candidates.sort(key=lambda c: (-c.share, c.spread_km))
    return tuple(candidates)


def _complete_linkage(distances: np.ndarray, link_km: float) -> list[int]:
    """Cluster labels for an (n, n) distance matrix; scipy's linkage when there are two or more points."""
    n = distances.shape[0]
    if n == 1:
        return [0]
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    condensed = squareform(distances, checks=False)
    tree = linkage(condensed, method="complete")
    # fcluster's "distance" criterion keeps merges with height <= t; answers exactly link_km apart join.
    return [int(x) for x in fcluster(tree, t=link_km, criterion="distance")]


def _majority(names: Sequence[str | None]) -> str | None:
    counted = Counter(n for n in names if n)
    if not counted:
        return None
    return counted.most_common(1)[0][0]
