"""Record digests: what each audit entry says a record looked like when geodesk wrote it.

Every write of evidence, a session, a turn (with its hints and prediction), a clue or a finding puts
``record_sha256`` into its audit entry: the SHA-256 of the record's columns as stored, in canonical JSON.
``case verify`` recomputes them, so a record edited, inserted or deleted with plain SQL no longer
matches the newest audit entry of its subject (or has none). Paths an export may redact
(``evidence.source_path``, ``sessions.model_path``) are left out of the digest; the evidence entry
carries the source path's own digest instead.

The digest covers a fixed, versioned list of columns (:data:`DIGEST_COLUMNS`), never ``SELECT *``: a
later migration that adds a column (with a default) must not turn every earlier digest into a
mismatch. To cover a new column, add a new version to the list; entries name the version they used
(``record_digest_version``, 1 when absent) and verify recomputes with that version's columns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from geodesk.store._codec import canonical_json

DIGEST_VERSION = 4
_REGION = ("region_x0", "region_y0", "region_x1", "region_y1")
# Per digest version, per table, the columns a record digest covers (the schema of migration 1).
# evidence.source_path and sessions.model_path are left out: `case export --redact-paths` clears them.
DIGEST_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    1: {
        "evidence": (
            "sha256",
            "original_name",
            "size_bytes",
            "format",
            "width",
            "height",
            "gps_lat",
            "gps_lon",
            "gps_alt",
            "taken_at",
            "camera",
            "orientation",
            "place",
            "metadata",
            "imported_at",
        ),
        "sessions": (
            "id",
            "evidence_sha256",
            "mode",
            "model_name",
            "model_version",
            "model_sha256",
            "backend",
            "decoding",
            "protocol_version",
            "replay_of",
            "created_at",
        ),
        "turns": (
            "id",
            "session_id",
            "idx",
            "prompt",
            "raw_answer",
            "status",
            "error",
            "protocol_version",
            "prompt_tokens",
            "answer_tokens",
            "time_to_first_token_s",
            "total_time_s",
            "created_at",
        ),
        "predictions": (
            "turn_id",
            "country",
            "country_code",
            "region",
            "city",
            "lat",
            "lon",
            "valid",
            "problems",
            "clues",
            "reasoning",
            "candidates",
        ),
        "hints": ("id", "turn_id", "position", "kind", "text", "answer", *_REGION, "clue_ids"),
        "clues": (
            "id",
            "evidence_sha256",
            "category",
            "text",
            "source",
            "status",
            *_REGION,
            "turn_id",
            "created_at",
            "updated_at",
        ),
        "findings": (
            "id",
            "evidence_sha256",
            "version",
            "lat",
            "lon",
            "radius_km",
            "status",
            "reasoning",
            "created_at",
        ),
    }
}
# Version 2 (migration 2): the session's model caveat, and each evidence item's recorded ground truth.
DIGEST_COLUMNS[2] = {
    **DIGEST_COLUMNS[1],
    "sessions": (*DIGEST_COLUMNS[1]["sessions"], "model_caveat"),
    "evidence_truth": ("evidence_sha256", "source", "lat", "lon", "country", "country_code", "region", "city",
                       "created_at"),
}
# Version 3 (migration 4): the contradiction flags between turns and engine clues.
DIGEST_COLUMNS[3] = {
    **DIGEST_COLUMNS[2],
    "turn_flags": ("id", "turn_id", "clue_id", "kind", "text", "created_at"),
}
# Version 4 (no migration: the table is migration 3's): a clue's record also holds its clue engine row
# (confidence, country likelihoods, area, details, engine version, model hashes), NULL for a clue that
# did not come from the engine, and the engine's ``clue.engine`` entry carries the digest, so an engine
# clue nobody has reviewed yet is covered from the moment it is written (ADR 0056).
DIGEST_COLUMNS[4] = {
    **DIGEST_COLUMNS[3],
    "clue_engine": (
        "clue_id",
        "confidence",
        "countries",
        "others",
        "area",
        "details",
        "engine_version",
        "provenance",
    ),
}


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
    RecordKind("evidence_truth", "evidence_sha256", "truth", "ground truth of evidence"),
    RecordKind("turn_flags", "id", "flag", "contradiction flag"),
)
_BY_TABLE = {k.table: k for k in KINDS}


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _rows(
    db: Database, table: str, version: int, where: str, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    # Table, columns and where come from this module only; values are parameters.
    columns = ", ".join(DIGEST_COLUMNS[version][table])
    return list(db.query(f"SELECT {columns} FROM {table} WHERE {where}", params))


def record_content(
    db: Database, table: str, key: Any, version: int = DIGEST_VERSION
) -> dict[str, Any] | None:
    """The stored content of one record as the digest sees it; None when the record does not exist."""
    kind = _BY_TABLE[table]
    rows = _rows(db, table, version, f"{kind.key} = ?", (key,))
    if not rows:
        return None
    content = rows[0]
    if table == "turns":
        predictions = _rows(db, "predictions", version, "turn_id = ?", (key,))
        content["prediction"] = predictions[0] if predictions else None
        hints = _rows(db, "hints", version, "turn_id = ? ORDER BY position", (key,))
        content["hints"] = hints
    if table == "clues" and "clue_engine" in DIGEST_COLUMNS[version]:
        engine = _rows(db, "clue_engine", version, "clue_id = ?", (key,))
        content["engine"] = engine[0] if engine else None
    return content


def record_digest(db: Database, table: str, key: Any, version: int = DIGEST_VERSION) -> str:
    content = record_content(db, table, key, version)
    if content is None:
        raise LookupError(f"there is no {_BY_TABLE[table].label} {key} in this case")
    return text_sha256(canonical_json(content, f"{table} record"))


def record_keys(db: Database, kind: RecordKind) -> list[Any]:
    """The keys of every record of ``kind``."""
    return [k for (k,) in db.execute(f"SELECT {kind.key} FROM {kind.table} ORDER BY {kind.key}").fetchall()]
