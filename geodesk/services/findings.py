"""The analyst's finding for an evidence item: save a new version, read the current one and its history.

Findings are versioned (the store never edits or deletes one): every save is a new version with an
audit entry. A finding has a point; there is no finding until the analyst gives one (a map click only
proposes a point: nothing is recorded until the finding is saved).
"""

from __future__ import annotations

import math

from geodesk.domain.model import Finding, FindingStatus
from geodesk.store import CaseStore

MAX_REASONING = 20000


class FindingError(ValueError):
    """A finding the rules refuse; the message says what to fix."""


def save_finding(
    store: CaseStore,
    evidence_ref: str,
    lat: float,
    lon: float,
    radius_km: float,
    status: FindingStatus | str = FindingStatus.UNVERIFIED,
    reasoning: str = "",
) -> Finding:
    """Record a new version of the evidence item's finding."""
    evidence = store.evidence.get(evidence_ref)
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise FindingError(f"{lat}, {lon} is not a point: latitude is -90..90 and longitude -180..180")
    if not (math.isfinite(radius_km) and radius_km >= 0):
        raise FindingError("the radius is a distance in km, zero or more")
    try:
        wanted = FindingStatus(status)
    except ValueError:
        choices = ", ".join(s.value for s in FindingStatus)
        raise FindingError(f"{status!r} is not a finding status; use one of {choices}") from None
    text = reasoning.strip()
    if len(text) > MAX_REASONING:
        raise FindingError(f"the reasoning is {len(text)} characters; keep it under {MAX_REASONING}")
    return store.findings.save(Finding(None, evidence.sha256, lat, lon, radius_km, wanted, text))


def current_finding(store: CaseStore, evidence_ref: str) -> Finding | None:
    return store.findings.current(store.evidence.get(evidence_ref).sha256)


def finding_history(store: CaseStore, evidence_ref: str) -> list[Finding]:
    """Every version, oldest first."""
    return store.findings.history(store.evidence.get(evidence_ref).sha256)


def finding_document(finding: Finding) -> dict[str, object]:
    return {
        "id": finding.id,
        "evidence": finding.evidence_sha256,
        "version": finding.version,
        "lat": finding.lat,
        "lon": finding.lon,
        "radius_km": finding.radius_km,
        "status": finding.status.value,
        "reasoning": finding.reasoning,
        "created_at": None if finding.created_at is None else finding.created_at.isoformat(),
    }
