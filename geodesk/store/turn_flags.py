"""Contradiction flags: a turn's prediction against an engine clue of the same evidence item (ADR 0050).

A flag says "turn T's answer contradicts clue C": the clue rules out the predicted country, or the
predicted point lies outside the clue's sun band. Both sides are fixed once written (a turn's answer
and a clue's likelihoods and area never change; an edit changes only the clue's text and status), so a
flag is recorded once, whatever the clue's status, and never changed or deleted (triggers refuse it).
It *counts* while its clue is accepted or edited: :meth:`TurnFlagRepository.list` joins the clue's
current status. Each new flag gets an audit entry with its record digest, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from geodesk.domain.model import ClueStatus
from geodesk.store._codec import now_utc, to_text
from geodesk.store.digests import DIGEST_VERSION, record_digest
from geodesk.store.repositories import _Repository

FLAG_KINDS = ("country", "sun")


@dataclass(frozen=True, slots=True)
class TurnFlag:
    id: int
    turn_id: int
    clue_id: int
    kind: str  # "country" (the clue rules the predicted country out) | "sun" (point outside the band)
    text: str  # the sentence an analyst reads
    created_at: str
    clue_status: ClueStatus  # the clue's review status now
    clue_category: str = ""  # the clue's category and text now (an edit changes the text)
    clue_text: str = ""

    @property
    def counts(self) -> bool:
        """Only accepted (or edited) clues flag a turn."""
        return self.clue_status in (ClueStatus.ACCEPTED, ClueStatus.EDITED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "turn_id": self.turn_id,
            "clue_id": self.clue_id,
            "kind": self.kind,
            "text": self.text,
            "created_at": self.created_at,
            "clue_status": self.clue_status.value,
            "clue_category": self.clue_category,
            "clue_text": self.clue_text,
            "counts": self.counts,
        }


class TurnFlagRepository(_Repository):
    def add_missing(self, flags: Iterable[tuple[int, int, str, str]]) -> list[TurnFlag]:
        """Record each (turn id, clue id, kind, text) not recorded yet; returns the new ones."""
        wanted = list(flags)
        if not wanted:
            return []
        added: list[int] = []
        with self._transaction():
            for turn_id, clue_id, kind, text in wanted:
                if kind not in FLAG_KINDS:
                    raise ValueError(
                        f"a contradiction flag's kind is one of {', '.join(FLAG_KINDS)}; got {kind!r}"
                    )
                if not text.strip():
                    raise ValueError("a contradiction flag needs the sentence that explains it")
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO turn_flags (turn_id, clue_id, kind, text, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (int(turn_id), int(clue_id), kind, text, to_text(now_utc())),
                )
                if cursor.rowcount != 1:
                    continue  # recorded before
                flag_id = int(cursor.lastrowid or 0)
                added.append(flag_id)
                self._audit.append(
                    "turn.flag",
                    f"flag:{flag_id}",
                    {
                        "turn_id": int(turn_id),
                        "clue_id": int(clue_id),
                        "kind": kind,
                        "record_sha256": record_digest(self._db, "turn_flags", flag_id),
                        "record_digest_version": DIGEST_VERSION,
                    },
                )
        if not added:
            return []
        placeholders = ", ".join("?" * len(added))
        return self._select(f"f.id IN ({placeholders})", tuple(added))

    def _select(self, where: str, params: tuple[Any, ...]) -> list[TurnFlag]:
        # ``where`` is built in this module from fixed fragments; values are parameters.
        rows = self._db.execute(
            "SELECT f.id, f.turn_id, f.clue_id, f.kind, f.text, f.created_at, c.status, c.category, c.text "
            "FROM turn_flags f "
            "JOIN turns t ON t.id = f.turn_id JOIN clues c ON c.id = f.clue_id "
            f"WHERE {where} ORDER BY t.session_id, t.idx, f.clue_id, f.kind",
            params,
        ).fetchall()
        return [
            TurnFlag(int(i), int(t), int(c), str(k), str(x), str(at), ClueStatus(str(st)), str(cat), str(ct))
            for i, t, c, k, x, at, st, cat, ct in rows
        ]

    def list(self, *, session_id: int | None = None, evidence_sha256: str | None = None) -> list[TurnFlag]:
        """The flags of a session's turns or of an evidence item's turns (both given: both hold), in order."""
        where: list[str] = []
        params: list[Any] = []
        if session_id is not None:
            where.append("t.session_id = ?")
            params.append(session_id)
        if evidence_sha256 is not None:
            where.append("c.evidence_sha256 = ?")
            params.append(evidence_sha256)
        return self._select(" AND ".join(where) or "1", tuple(params))
