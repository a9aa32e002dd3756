"""The audit log: an append-only hash chain inside ``case.db``.

Entry ``n`` stores ``hash = sha256(canonical_json([seq, at, action, subject, details, prev_hash]))``
where ``prev_hash`` is entry ``n-1``'s hash (64 zeros for the first). Editing an entry breaks its own
hash; deleting or reordering entries breaks the next entry's link; deleting the newest entries leaves
``sqlite_sequence`` ahead of the last seq. Triggers refuse UPDATE and DELETE, so only someone who
drops them can tamper, and :meth:`AuditLog.verify` reports that too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlite_utils import Database

from geodesk.domain import AuditEntry
from geodesk.store._codec import canonical_json, now_utc, to_text
from geodesk.store.migrations import AUDIT_GUARD_TRIGGERS

GENESIS_HASH = "0" * 64


def entry_hash(seq: int, at: str, action: str, subject: str, details: dict[str, Any], prev_hash: str) -> str:
    payload = canonical_json([seq, at, action, subject, details, prev_hash], "audit entry")
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class AuditLog:
    """Appends to and checks the chain. Appends join the caller's transaction (see CaseStore)."""

    def __init__(self, db: Database, transaction: Callable[[], AbstractContextManager[None]]) -> None:
        self._db = db
        self._transaction = transaction

    def append(self, action: str, subject: str, details: dict[str, Any]) -> AuditEntry:
        if not action or not isinstance(action, str):
            raise ValueError("an audit entry needs an action such as 'evidence.add'")
        if not isinstance(details, dict):
            raise ValueError("an audit entry's details must be a dict")
        # Round-trip through canonical JSON so the stored text and the hashed value are the same data
        # (tuples become lists, keys are sorted) and verify() recomputes exactly this hash.
        details_text = canonical_json(details, f"details of audit action {action!r}")
        stored_details: dict[str, Any] = json.loads(details_text)
        with self._transaction():
            last = self._db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            prev_hash = GENESIS_HASH if last is None else str(last[1])
            # Continue after the highest seq ever used, so a deleted tail stays visible as a gap.
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
            seq = max(int(row[0]) if row else 0, int(last[0]) if last else 0) + 1
            at = to_text(now_utc())
            digest = entry_hash(seq, at, action, subject, stored_details, prev_hash)
            self._db.execute(
                "INSERT INTO audit_log (seq, at, action, subject, details, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, at, action, subject, details_text, prev_hash, digest),
            )
        return AuditEntry(seq, at, action, subject, stored_details, prev_hash, digest)

    def entries(self) -> list[AuditEntry]:
        rows = self._db.execute(
            "SELECT seq, at, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq"
        ).fetchall()
        return [AuditEntry(int(s), a, act, sub, json.loads(d), p, h) for s, a, act, sub, d, p, h in rows]

    def head(self) -> AuditEntry | None:
        """The newest entry (the chain head an export seals), or None for an empty log."""
        entries = self._db.execute(
            "SELECT seq, at, action, subject, details, prev_hash, "
            "hash FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchall()
        if not entries:
            return None
        s, a, act, sub, d, p, h = entries[0]
        return AuditEntry(int(s), a, act, sub, json.loads(d), p, h)

    def verify(self) -> list[str]:
        """Every break in the chain, each as a sentence; empty when the chain is intact."""
        problems: list[str] = []
        rows = self._db.execute(
            "SELECT seq, at, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq"
        ).fetchall()
        expected_seq = 1
        previous_hash = GENESIS_HASH
        previous_seq: int | None = None
        for seq, at, action, subject, details_text, prev_hash, stored_hash in rows:
            seq = int(seq)
            label = f"audit entry {seq} ({action} {subject})"
            if seq > expected_seq:
                missing = f"{expected_seq}" if seq - expected_seq == 1 else f"{expected_seq} to {seq - 1}"
                problems.append(f"audit entries are missing before entry {seq}: seq {missing} was deleted.")
            try:
                details = json.loads(details_text)
                recomputed = entry_hash(seq, at, action, subject, details, prev_hash)
            except (ValueError, TypeError):
                recomputed = None
            if recomputed != stored_hash:
                problems.append(f"{label} was altered: its stored hash does not match its content.")
            if prev_hash != previous_hash:
                after = "the start of the log" if previous_seq is None else f"entry {previous_seq}"
                problems.append(
                    f"{label} does not link to {after}: its previous-hash differs "
                    "(an entry was deleted, inserted or reordered)."
                )
            previous_hash = str(stored_hash)
            previous_seq = seq
            expected_seq = seq + 1
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
        highest_used = int(row[0]) if row else 0
        last_seq = previous_seq or 0
        if highest_used > last_seq:
            span = f"{last_seq + 1}" if highest_used == last_seq + 1 else f"{last_seq + 1} to {highest_used}"
            problems.append(f"the newest audit entries were deleted: seq {span} is gone.")
        triggers = {
            name
            for (name,) in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            ).fetchall()
        }
        for trigger in AUDIT_GUARD_TRIGGERS:
            if trigger not in triggers:
                problems.append(f"the audit log's append-only guard (trigger {trigger}) was removed.")
        return problems
