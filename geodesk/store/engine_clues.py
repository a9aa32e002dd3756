"""The clue engine's rows: each engine clue is a clue (``clues`` table, reviewed as any other) plus one
``clue_engine`` row with what the engine knows about it (confidence, country likelihoods, area,
details, engine version and model file hashes). Both rows and the audit entry commit together; the
entry's record digest covers both rows (digest version 4), so ``case verify`` reports either one edited
before anyone reviewed the clue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geodesk.domain.model import Clue
from geodesk.store._codec import canonical_json, finite, load_json
from geodesk.store.digests import DIGEST_VERSION, record_digest
from geodesk.store.repositories import ClueRepository, _Repository


@dataclass(frozen=True, slots=True)
class EngineClue:
    """A stored clue with its engine part."""

    clue: Clue
    confidence: float
    countries: dict[str, float]
    others: float
    area: dict[str, Any] | None
    details: dict[str, Any]
    engine_version: str
    provenance: dict[str, Any]

    def likelihood(self, country_code: str) -> float:
        return self.countries.get(country_code, self.others)


class EngineClueRepository(_Repository):
    def __init__(self, clues: ClueRepository, *args: Any) -> None:
        super().__init__(*args)
        self._clues = clues

    def add(
        self,
        clue: Clue,
        *,
        confidence: float,
        countries: dict[str, float],
        others: float,
        area: dict[str, Any] | None,
        details: dict[str, Any],
        engine_version: str,
        provenance: dict[str, Any],
    ) -> EngineClue:
        conf = finite(confidence, "clue confidence")
        other = finite(others, "likelihood of other countries")
        assert conf is not None and other is not None
        with self._transaction():
            stored = self._clues.add(clue)
            self._db.execute(
                "INSERT INTO clue_engine (clue_id, confidence, countries, others, area, details, "
                "engine_version, "
                "provenance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.id,
                    conf,
                    canonical_json(countries, "clue country likelihoods"),
                    other,
                    None if area is None else canonical_json(area, "clue area"),
                    canonical_json(details, "clue details"),
                    engine_version,
                    canonical_json(provenance, "clue provenance"),
                ),
            )
            self._audit.append(
                "clue.engine",
                f"clue:{stored.id}",
                {
                    "engine_version": engine_version,
                    "confidence": conf,
                    "provenance": provenance,
                    # The clue with its engine row: an unreviewed engine clue is covered by verify too.
                    "record_sha256": record_digest(self._db, "clues", stored.id),
                    "record_digest_version": DIGEST_VERSION,
                },
            )
        return EngineClue(
            stored, conf, dict(countries), other, area, dict(details), engine_version, dict(provenance)
        )

    def list(self, evidence_sha256: str) -> list[EngineClue]:
        """The engine clues of one evidence item, in clue order, with their current review status."""
        rows = self._db.query(
            "SELECT e.clue_id, e.confidence, e.countries, e.others, e.area, e.details, e.engine_version, "
            "e.provenance FROM clue_engine e JOIN clues c ON c.id = e.clue_id WHERE c.evidence_sha256 = ? "
            "ORDER BY e.clue_id",
            (evidence_sha256,),
        )
        return [self._from_row(r) for r in rows]

    def get(self, clue_id: int) -> EngineClue | None:
        row = self._one(
            "SELECT clue_id, confidence, countries, others, area, details, engine_version, provenance "
            "FROM clue_engine WHERE clue_id = ?",
            (clue_id,),
        )
        return None if row is None else self._from_row(row)

    def _from_row(self, r: dict[str, Any]) -> EngineClue:
        return EngineClue(
            clue=self._clues.get(int(r["clue_id"])),
            confidence=float(r["confidence"]),
            countries={str(k): float(v) for k, v in load_json(r["countries"], {}).items()},
            others=float(r["others"]),
            area=load_json(r["area"], None),
            details=load_json(r["details"], {}),
            engine_version=str(r["engine_version"]),
            provenance=load_json(r["provenance"], {}),
        )
