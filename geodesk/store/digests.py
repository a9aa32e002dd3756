"""Record digests: what each audit entry says a record looked like when geodesk wrote it.

Every write of evidence, a session, a turn (with its hints and prediction), a clue or a finding puts
``record_sha256`` into its audit entry: the SHA-256 of the record's columns as stored, in canonical JSON.
``case verify`` recomputes them, so a record edited, inserted or deleted with plain SQL no longer
matches the newest audit entry of its subject (or has none). Paths an export may redact
(``evidence.source_path``, ``sessions.model_path``) are left out of the digest; the evidence entry
carries the source path's own digest instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from geodesk.store._codec import canonical_json

# Columns left out of a record digest because `case export --redact-paths` may clear them.
REDACTABLE = {"evidence": ("source_path",), "sessions": ("model_path",)}


@dataclass(frozen=True, slots=True)
class RecordKind:
    table: str
    key: str  # primary key column
    prefix: str  # audit subject prefix: "<prefix>:<key>"
    label: str  # how a sentence names one


KINDS = (
    RecordKind("evidence", "sha256", "evidence", "evidence"),
    RecordKind("sessions", "id", "session", "session"),
    RecordKind("turns", "id", "turn", "turn"),
    RecordKind("clues", "id", "clue", "clue"),
    RecordKind("findings", "id", "finding", "finding"),
)
_BY_TABLE = {k.table: k for k in KINDS}


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _row(db: Database, table: str, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    # table and where come from this module only; values are parameters.
    return list(db.query(f"SELECT * FROM {table} WHERE {where}", params))


def record_content(db: Database, table: str, key: Any) -> dict[str, Any] | None:
    """The stored content of one record as the digest sees it; None when the record does not exist."""
    kind = _BY_TABLE[table]
    rows = _row(db, table, f"{kind.key} = ?", (key,))
    if not rows:
        return None
    content: dict[str, Any] = {k: v for k, v in rows[0].items() if k not in REDACTABLE.get(table, ())}
    if table == "turns":
        predictions = _row(db, "predictions", "turn_id = ?", (key,))
        content["prediction"] = predictions[0] if predictions else None
        content["hints"] = sorted(_row(db, "hints", "turn_id = ?", (key,)), key=lambda h: h["position"])
    return content


def record_digest(db: Database, table: str, key: Any) -> str:
    content = record_content(db, table, key)
    if content is None:
        raise LookupError(f"there is no {_BY_TABLE[table].label} {key} in this case")
    return text_sha256(canonical_json(content, f"{table} record"))


def all_records(db: Database, kind: RecordKind) -> Iterator[tuple[Any, str]]:
    """``(key, digest)`` of every record of ``kind``."""
    for (key,) in db.execute(f"SELECT {kind.key} FROM {kind.table} ORDER BY {kind.key}").fetchall():
        yield key, record_digest(db, kind.table, key)
