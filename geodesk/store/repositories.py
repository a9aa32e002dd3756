"""Repositories: domain objects in, rows out, and back. Every write is one transaction with its audit entry.

Each ``add`` / ``update`` / ``save`` runs inside :meth:`CaseStore.transaction` (joining the caller's
transaction when there is one) and appends its audit entry in that same transaction, so an action and
its audit record commit or roll back together. Lookups that find nothing raise :class:`LookupError`
with a sentence; values SQLite would mangle (NaN becomes NULL) are refused with :class:`ValueError`.
"""

from __future__ import annotations

import builtins
import re
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from sqlite_utils import Database

from geodesk.domain import (
    Candidate,
    Clue,
    ClueSource,
    ClueStatus,
    Evidence,
    Finding,
    FindingStatus,
    GpsPoint,
    GroundTruth,
    Hint,
    HintKind,
    ModelIdentity,
    Place,
    Prediction,
    Region,
    Session,
    SessionMode,
    Turn,
    TurnStatus,
)
from geodesk.store._codec import canonical_json, finite, from_text, load_json, now_utc, to_text
from geodesk.store.audit import AuditLog
from geodesk.store.digests import DIGEST_VERSION, record_digest, text_sha256
from geodesk.store.errors import AlreadyExistsError

Transaction = Callable[[], AbstractContextManager[None]]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]+")
MIN_PREFIX = 4


def check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"{sha256!r} is not a SHA-256 (64 lowercase hex digits)")
    return sha256


def _region_columns(region: Region | None) -> list[int | None]:
    if region is None:
        return [None, None, None, None]
    return [region.x0, region.y0, region.x1, region.y1]


def _region_from(x0: int | None, y0: int | None, x1: int | None, y1: int | None) -> Region | None:
    if x0 is None or y0 is None or x1 is None or y1 is None:
        return None
    return Region(int(x0), int(y0), int(x1), int(y1))


def _dt(text: str | None) -> Any:
    return from_text(text)


class _Repository:
    def __init__(self, db: Database, transaction: Transaction, audit: AuditLog) -> None:
        self._db = db
        self._transaction = transaction
        self._audit = audit

    def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        rows = list(self._db.query(sql, params))
        return rows[0] if rows else None

    def _evidence_must_exist(self, sha256: str) -> None:
        check_sha256(sha256)
        if self._db.execute("SELECT 1 FROM evidence WHERE sha256 = ?", (sha256,)).fetchone() is None:
            raise LookupError(f"evidence {sha256[:12]}… is not in this case; import it first")


# --------------------------------------------------------------------------------------------- evidence


class EvidenceRepository(_Repository):
    _COLUMNS = (
        "sha256, original_name, source_path, size_bytes, format, width, height, gps_lat, gps_lon, gps_alt, "
        "taken_at, camera, orientation, place, metadata, imported_at"
    )

    def add(self, e: Evidence) -> None:
        check_sha256(e.sha256)
        if e.size_bytes < 0:
            raise ValueError(f"evidence {e.sha256[:12]}…: size_bytes must not be negative")
        gps = e.gps
        place = None
        if e.place is not None:
            place = canonical_json(
                {**e.place.as_dict(), "distance_km": finite(e.place.distance_km, "place distance_km")},
                "place",
            )
        values = (
            e.sha256,
            e.original_name,
            e.source_path,
            int(e.size_bytes),
            e.format,
            int(e.width),
            int(e.height),
            None if gps is None else gps.lat,
            None if gps is None else gps.lon,
            None if gps is None else finite(gps.alt, "GPS altitude"),
            e.taken_at,
            e.camera,
            int(e.orientation),
            place,
            canonical_json(e.metadata, f"metadata of {e.original_name!r}"),
            to_text(e.imported_at),
        )
        with self._transaction():
            if self.exists(e.sha256):
                raise AlreadyExistsError(
                    f"evidence {e.sha256[:12]}… ({e.original_name}) is already in this case"
                )
            self._db.execute(f"INSERT INTO evidence ({self._COLUMNS}) VALUES ({', '.join('?' * 16)})", values)
            # The metadata an investigator relies on is in the chain itself, and the record digest
            # covers every column (the source path by its own digest, so an export may redact it).
            self._audit.append(
                "evidence.add",
                f"evidence:{e.sha256}",
                {
                    "original_name": e.original_name,
                    "source_path_sha256": None if e.source_path is None else text_sha256(e.source_path),
                    "size_bytes": int(e.size_bytes),
                    "format": e.format,
                    "width": int(e.width),
                    "height": int(e.height),
                    "gps": None if gps is None else {"lat": values[7], "lon": values[8], "alt": values[9]},
                    "camera": e.camera,
                    "taken_at": e.taken_at,
                    "record_sha256": record_digest(self._db, "evidence", e.sha256),
                    "record_digest_version": DIGEST_VERSION,
                },
            )

    def get(self, sha_or_prefix: str) -> Evidence:
        ref = sha_or_prefix.strip().lower()
        if len(ref) < MIN_PREFIX or not _HEX.fullmatch(ref):
            raise LookupError(
                f"{sha_or_prefix!r} does not name evidence: give its SHA-256 or a prefix of at least "
                f"{MIN_PREFIX} hex digits"
            )
        # GLOB is safe here: ref is only hex digits, so it holds no wildcard.
        rows = list(
            self._db.query(
                f"SELECT {self._COLUMNS} FROM evidence WHERE sha256 GLOB ? ORDER BY sha256 LIMIT 6",
                (ref + "*",),
            )
        )
        if not rows:
            raise LookupError(f"no evidence in this case has a SHA-256 starting with {ref!r}")
        if len(rows) > 1:
            names = ", ".join(f"{r['sha256'][:12]}… ({r['original_name']})" for r in rows[:5])
            more = " and more" if len(rows) > 5 else ""
            raise LookupError(f"{ref!r} matches several evidence items: {names}{more}; give more hex digits")
        return self._from_row(rows[0])

    def list(self) -> list[Evidence]:
        rows = self._db.query(f"SELECT {self._COLUMNS} FROM evidence ORDER BY imported_at, sha256")
        return [self._from_row(r) for r in rows]

    def exists(self, sha256: str) -> bool:
        return self._db.execute("SELECT 1 FROM evidence WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM evidence").fetchone()[0])

    def located(self, model_sha256: str | None = None, mode: SessionMode | str | None = None) -> set[str]:
        """Evidence hashes that are **located**: at least one session on them has a finished turn.

        The one definition of "located": the evidence grid's check mark (any model, any mode) and the
        batch's "already done" (``model_sha256`` and ``mode`` given: only sessions of that model
        identity and mode count). A session whose turns all failed or were cancelled does not locate
        its image, so a batch runs it again; a session whose first turn failed but whose hint turn
        finished does (the image has an answer). One query (the sessions_evidence index and the
        turns' (session_id, idx) key), never one per session.
        """
        sql = (
            "SELECT DISTINCT s.evidence_sha256 FROM sessions s "
            "WHERE EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id AND t.status = ?)"
        )
        params: list[Any] = [TurnStatus.DONE.value]
        if model_sha256 is not None:
            sql += " AND s.model_sha256 = ?"
            params.append(model_sha256)
        if mode is not None:
            sql += " AND s.mode = ?"
            params.append(SessionMode(mode).value)
        return {str(row[0]) for row in self._db.execute(sql, params).fetchall()}

    @staticmethod
    def _from_row(r: dict[str, Any]) -> Evidence:
        gps = None if r["gps_lat"] is None else GpsPoint(r["gps_lat"], r["gps_lon"], r["gps_alt"])
        place = None
        if r["place"] is not None:
            p = load_json(r["place"], {})
            place = Place(p["country_code"], p["country"], p["region"], p["city"], p["distance_km"])
        return Evidence(
            sha256=r["sha256"],
            original_name=r["original_name"],
            size_bytes=r["size_bytes"],
            format=r["format"],
            width=r["width"],
            height=r["height"],
            imported_at=_dt(r["imported_at"]),
            source_path=r["source_path"],
            gps=gps,
            taken_at=r["taken_at"],
            camera=r["camera"],
            orientation=r["orientation"],
            place=place,
            metadata=load_json(r["metadata"], {}),
        )


# ------------------------------------------------------------------------------------------------ clues


class ClueRepository(_Repository):
    def add(self, clue: Clue) -> Clue:
        source = ClueSource(clue.source)
        status = ClueStatus(clue.status)
        created = clue.created_at or now_utc()
        updated = clue.updated_at or created
        with self._transaction():
            self._evidence_must_exist(clue.evidence_sha256)
            if clue.turn_id is not None:
                _turn_must_exist(self._db, clue.turn_id)
            cursor = self._db.execute(
                "INSERT INTO clues (evidence_sha256, category, text, source, status, region_x0, region_y0, "
                "region_x1, region_y1, turn_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?)",
                (
                    clue.evidence_sha256,
                    clue.category,
                    clue.text,
                    source.value,
                    status.value,
                    *_region_columns(clue.region),
                    clue.turn_id,
                    to_text(created),
                    to_text(updated),
                ),
            )
            clue_id = int(cursor.lastrowid or 0)
            self._audit.append(
                "clue.add",
                f"clue:{clue_id}",
                {
                    "evidence": clue.evidence_sha256,
                    "category": clue.category,
                    "text": clue.text,
                    "source": source.value,
                    "status": status.value,
                    "turn_id": clue.turn_id,
                    "record_sha256": record_digest(self._db, "clues", clue_id),
                    "record_digest_version": DIGEST_VERSION,
                },
            )
        return replace(clue, id=clue_id, source=source, status=status, created_at=created, updated_at=updated)

    def update_status(self, id: int, status: ClueStatus | str, text: str | None = None) -> Clue:
        new_status = ClueStatus(status)
        with self._transaction():
            old = self.get(id)
            new_text = old.text if text is None else text
            updated = now_utc()
            self._db.execute(
                "UPDATE clues SET status = ?, text = ?, updated_at = ? WHERE id = ?",
                (new_status.value, new_text, to_text(updated), id),
            )
            details: dict[str, Any] = {"old_status": old.status.value, "status": new_status.value}
            if new_text != old.text:
                details.update(old_text=old.text, text=new_text)
            details["record_sha256"] = record_digest(self._db, "clues", id)
            details["record_digest_version"] = DIGEST_VERSION
            self._audit.append("clue.status", f"clue:{id}", details)
        return replace(old, status=new_status, text=new_text, updated_at=updated)

    def get(self, id: int) -> Clue:
        row = self._one("SELECT * FROM clues WHERE id = ?", (id,))
        if row is None:
            raise LookupError(f"there is no clue {id} in this case")
        return self._from_row(row)

    def list(self, evidence_sha256: str | None = None, turn_id: int | None = None) -> list[Clue]:
        where: list[str] = []
        params: list[Any] = []
        if evidence_sha256 is not None:
            where.append("evidence_sha256 = ?")
            params.append(evidence_sha256)
        if turn_id is not None:
            where.append("turn_id = ?")
            params.append(turn_id)
        sql = "SELECT * FROM clues" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._from_row(r) for r in self._db.query(sql, params)]

    @staticmethod
    def _from_row(r: dict[str, Any]) -> Clue:
        return Clue(
            id=r["id"],
            evidence_sha256=r["evidence_sha256"],
            category=r["category"],
            text=r["text"],
            source=ClueSource(r["source"]),
            status=ClueStatus(r["status"]),
            region=_region_from(r["region_x0"], r["region_y0"], r["region_x1"], r["region_y1"]),
            turn_id=r["turn_id"],
            created_at=_dt(r["created_at"]),
            updated_at=_dt(r["updated_at"]),
        )


def _turn_must_exist(db: Database, turn_id: int) -> None:
    if db.execute("SELECT 1 FROM turns WHERE id = ?", (turn_id,)).fetchone() is None:
        raise LookupError(f"there is no turn {turn_id} in this case")


# ---------------------------------------------------------------------------------------- ground truth


class TruthRepository(_Repository):
    """Known true locations of evidence items (one each, fixed once recorded)."""

    def add(self, truth: GroundTruth) -> None:
        with self._transaction():
            self._evidence_must_exist(truth.evidence_sha256)
            if self.get(truth.evidence_sha256) is not None:
                raise ValueError(f"evidence {truth.evidence_sha256[:12]}… already has a recorded truth")
            self._db.execute(
                "INSERT INTO evidence_truth (evidence_sha256, source, lat, lon, country, country_code, "
                "region, city, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (truth.evidence_sha256, truth.source, truth.lat, truth.lon, truth.country,
                 truth.country_code, truth.region, truth.city, to_text(now_utc())),
            )
            self._audit.append("truth.add", f"truth:{truth.evidence_sha256}", {
                "evidence": truth.evidence_sha256, "source": truth.source, "lat": truth.lat, "lon": truth.lon,
                "country": truth.country, "country_code": truth.country_code, "region": truth.region,
                "city": truth.city,
                "record_sha256": record_digest(self._db, "evidence_truth", truth.evidence_sha256),
                "record_digest_version": DIGEST_VERSION,
            })

    def get(self, evidence_sha256: str) -> GroundTruth | None:
        row = self._one("SELECT * FROM evidence_truth WHERE evidence_sha256 = ?", (evidence_sha256,))
        return None if row is None else self._from_row(row)

    def all(self) -> dict[str, GroundTruth]:
        rows = self._db.query("SELECT * FROM evidence_truth")
        return {r["evidence_sha256"]: self._from_row(r) for r in rows}

    @staticmethod
    def _from_row(r: dict[str, Any]) -> GroundTruth:
        return GroundTruth(r["evidence_sha256"], r["source"], r["lat"], r["lon"], r["country"],
                           r["country_code"], r["region"], r["city"])


# --------------------------------------------------------------------------------------------- sessions


class SessionRepository(_Repository):
    def add(self, session: Session) -> Session:
        mode = SessionMode(session.mode)
        created = session.created_at or now_utc()
        decoding = canonical_json(session.decoding, "decoding settings")
        with self._transaction():
            self._evidence_must_exist(session.evidence_sha256)
            if session.replay_of is not None:
                self.get(session.replay_of)
            m = session.model
            cursor = self._db.execute(
                "INSERT INTO sessions (evidence_sha256, mode, model_name, model_version, "
                "model_sha256, model_path, model_caveat, "
                "backend, decoding, protocol_version, replay_of, created_at) VALUES (?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?)",
                (
                    session.evidence_sha256,
                    mode.value,
                    m.name,
                    m.version,
                    m.sha256,
                    m.path,
                    m.caveat,
                    session.backend,
                    decoding,
                    session.protocol_version,
                    session.replay_of,
                    to_text(created),
                ),
            )
            session_id = int(cursor.lastrowid or 0)
            self._audit.append(
                "session.add",
                f"session:{session_id}",
                {
                    "evidence": session.evidence_sha256,
                    "mode": mode.value,
                    "model": {"name": m.name, "version": m.version, "sha256": m.sha256,
                              **({"caveat": m.caveat} if m.caveat else {})},
                    "backend": session.backend,
                    "decoding": load_json(decoding, {}),
                    "protocol_version": session.protocol_version,
                    "replay_of": session.replay_of,
                    "record_sha256": record_digest(self._db, "sessions", session_id),
                    "record_digest_version": DIGEST_VERSION,
                },
            )
        return replace(
            session, id=session_id, mode=mode, created_at=created, decoding=load_json(decoding, {})
        )

    def get(self, id: int) -> Session:
        row = self._one("SELECT * FROM sessions WHERE id = ?", (id,))
        if row is None:
            raise LookupError(f"there is no session {id} in this case")
        return self._from_row(row)

    def list(self, evidence_sha256: str | None = None) -> list[Session]:
        if evidence_sha256 is None:
            rows = self._db.query("SELECT * FROM sessions ORDER BY id")
        else:
            rows = self._db.query(
                "SELECT * FROM sessions WHERE evidence_sha256 = ? ORDER BY id", (evidence_sha256,)
            )
        return [self._from_row(r) for r in rows]

    @staticmethod
    def _from_row(r: dict[str, Any]) -> Session:
        return Session(
            id=r["id"],
            evidence_sha256=r["evidence_sha256"],
            mode=SessionMode(r["mode"]),
            model=ModelIdentity(r["model_name"], r["model_version"], r["model_sha256"], r["model_path"],
                                r["model_caveat"]),
            backend=r["backend"],
            decoding=load_json(r["decoding"], {}),
            protocol_version=r["protocol_version"],
            created_at=_dt(r["created_at"]),
            replay_of=r["replay_of"],
        )


# ------------------------------------------------------------------------------------------------ turns


_sha = text_sha256


def _hint_key(h: Hint) -> tuple[Any, ...]:
    return (HintKind(h.kind), h.text, h.answer, h.region, tuple(h.clue_ids))


class TurnRepository(_Repository):
    """Turns with their hints (stored with the turn, fixed after) and their parsed prediction (1:1)."""

    def add(self, turn: Turn) -> Turn:
        status = TurnStatus(turn.status)
        created = turn.created_at or now_utc()
        turn_values = self._turn_values(turn)
        prediction_values = _prediction_values(turn.prediction)
        hints = [
            replace(h, kind=HintKind(h.kind), clue_ids=tuple(int(c) for c in h.clue_ids)) for h in turn.hints
        ]
        with self._transaction():
            if self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (turn.session_id,)).fetchone() is None:
                raise LookupError(f"there is no session {turn.session_id} in this case")
            try:
                cursor = self._db.execute(
                    "INSERT INTO turns (session_id, idx, prompt, raw_answer, status, error, "
                    "protocol_version, "
                    "prompt_tokens, answer_tokens, time_to_first_token_s, total_time_s, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (turn.session_id, *turn_values, to_text(created)),
                )
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc):
                    raise AlreadyExistsError(
                        f"session {turn.session_id} already has a turn with index {turn.index}"
                    ) from None
                raise
            turn_id = int(cursor.lastrowid or 0)
            stored_hints = []
            for position, hint in enumerate(hints):
                hint_cursor = self._db.execute(
                    "INSERT INTO hints (turn_id, position, kind, text, answer, region_x0, region_y0, "
                    "region_x1, "
                    "region_y1, clue_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        turn_id,
                        position,
                        hint.kind.value,
                        hint.text,
                        hint.answer,
                        *_region_columns(hint.region),
                        canonical_json(list(hint.clue_ids)),
                    ),
                )
                stored_hints.append(replace(hint, id=int(hint_cursor.lastrowid or 0)))
            self._db.execute(
                f"INSERT INTO predictions ({_PREDICTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                f"?, ?, ?)",
                (turn_id, *prediction_values),
            )
            details = self._audit_details(turn, status, hints)
            details["record_sha256"] = record_digest(self._db, "turns", turn_id)
            details["record_digest_version"] = DIGEST_VERSION
            self._audit.append("turn.add", f"turn:{turn_id}", details)
        return replace(turn, id=turn_id, status=status, hints=tuple(stored_hints), created_at=created)

    def update(self, turn: Turn) -> Turn:
        """Store a turn's later state (answer, prediction, status, timings). Its hints cannot change."""
        if turn.id is None:
            raise ValueError("only a stored turn (with an id) can be updated; add it first")
        status = TurnStatus(turn.status)
        turn_values = self._turn_values(turn)
        prediction_values = _prediction_values(turn.prediction)
        with self._transaction():
            old = self.get(turn.id)
            if old.session_id != turn.session_id or old.index != turn.index:
                raise ValueError(
                    f"turn {turn.id} belongs to session {old.session_id} at index {old.index}; "
                    "a turn cannot move"
                )
            if [_hint_key(h) for h in old.hints] != [_hint_key(h) for h in turn.hints]:
                raise ValueError(f"turn {turn.id}'s hints cannot change after it is stored; start a new turn")
            self._db.execute(
                "UPDATE turns SET prompt = ?, raw_answer = ?, status = ?, error = ?, protocol_version = ?, "
                "prompt_tokens = ?, answer_tokens = ?, time_to_first_token_s = ?, "
                "total_time_s = ? WHERE id = ?",
                (*turn_values[1:], turn.id),
            )
            self._db.execute(
                "UPDATE predictions SET country = ?, country_code = ?, region = ?, city = ?, "
                "lat = ?, lon = ?, "
                "valid = ?, problems = ?, clues = ?, reasoning = ?, candidates = ? WHERE turn_id = ?",
                (*prediction_values, turn.id),
            )
            details = self._audit_details(turn, status, list(old.hints))
            details["record_sha256"] = record_digest(self._db, "turns", turn.id)
            details["record_digest_version"] = DIGEST_VERSION
            self._audit.append("turn.update", f"turn:{turn.id}", details)
        return replace(turn, status=status, hints=old.hints, created_at=old.created_at)

    def get(self, id: int) -> Turn:
        row = self._one(f"SELECT {_TURN_SELECT} WHERE t.id = ?", (id,))
        if row is None:
            raise LookupError(f"there is no turn {id} in this case")
        return self._from_row(row, self._hints_of([id]).get(id, ()))

    def latest(self) -> dict[int, Turn]:
        """Each session's newest turn, keyed by session id, in one query (turn indices count up)."""
        rows = list(self._db.query(
            f"SELECT {_TURN_SELECT} WHERE t.idx = "
            "(SELECT MAX(idx) FROM turns WHERE session_id = t.session_id)"
        ))
        hints = self._hints_of([r["id"] for r in rows])
        return {r["session_id"]: self._from_row(r, hints.get(r["id"], ())) for r in rows}

    def list(self, session_id: int) -> list[Turn]:
        rows = list(
            self._db.query(f"SELECT {_TURN_SELECT} WHERE t.session_id = ? ORDER BY t.idx", (session_id,))
        )
        hints = self._hints_of([r["id"] for r in rows])
        return [self._from_row(r, hints.get(r["id"], ())) for r in rows]

    def _hints_of(self, turn_ids: builtins.list[int]) -> dict[int, tuple[Hint, ...]]:
        if not turn_ids:
            return {}
        marks = ", ".join("?" * len(turn_ids))
        out: dict[int, builtins.list[Hint]] = {}
        for r in self._db.query(
            f"SELECT * FROM hints WHERE turn_id IN ({marks}) ORDER BY turn_id, position", turn_ids
        ):
            out.setdefault(r["turn_id"], []).append(
                Hint(
                    kind=HintKind(r["kind"]),
                    text=r["text"],
                    answer=r["answer"],
                    region=_region_from(r["region_x0"], r["region_y0"], r["region_x1"], r["region_y1"]),
                    clue_ids=tuple(load_json(r["clue_ids"], [])),
                    id=r["id"],
                )
            )
        return {k: tuple(v) for k, v in out.items()}

    @staticmethod
    def _turn_values(turn: Turn) -> tuple[Any, ...]:
        return (
            int(turn.index),
            turn.prompt,
            turn.raw_answer,
            TurnStatus(turn.status).value,
            turn.error,
            turn.protocol_version,
            turn.prompt_tokens,
            turn.answer_tokens,
            finite(turn.time_to_first_token_s, "time to first token"),
            finite(turn.total_time_s, "total time"),
        )

    @staticmethod
    def _audit_details(turn: Turn, status: TurnStatus, hints: builtins.list[Hint]) -> dict[str, Any]:
        # Digests, not the texts: the chain then vouches for the prompt and answer without copying them.
        p = turn.prediction
        return {
            "session_id": turn.session_id,
            "index": turn.index,
            "status": status.value,
            "hints": [HintKind(h.kind).value for h in hints],
            "prompt_sha256": _sha(turn.prompt),
            "answer_sha256": _sha(turn.raw_answer),
            "prediction": {"country_code": p.country_code, "lat": p.lat, "lon": p.lon, "valid": p.valid},
            "error": turn.error,
        }

    @staticmethod
    def _from_row(r: dict[str, Any], hints: tuple[Hint, ...]) -> Turn:
        prediction = Prediction(
            country=r["p_country"],
            country_code=r["p_country_code"],
            region=r["p_region"],
            city=r["p_city"],
            lat=r["p_lat"],
            lon=r["p_lon"],
            valid=bool(r["p_valid"]),
            problems=tuple(load_json(r["p_problems"], [])),
            clues=tuple((str(c[0]), str(c[1])) for c in load_json(r["p_clues"], [])),
            reasoning=r["p_reasoning"],
            candidates=tuple(Candidate(**c) for c in load_json(r["p_candidates"], [])),
        )
        return Turn(
            id=r["id"],
            session_id=r["session_id"],
            index=r["idx"],
            prompt=r["prompt"],
            raw_answer=r["raw_answer"],
            prediction=prediction,
            hints=hints,
            status=TurnStatus(r["status"]),
            protocol_version=r["protocol_version"],
            prompt_tokens=r["prompt_tokens"],
            answer_tokens=r["answer_tokens"],
            time_to_first_token_s=r["time_to_first_token_s"],
            total_time_s=r["total_time_s"],
            error=r["error"],
            created_at=_dt(r["created_at"]),
        )


_PREDICTION_COLUMNS = (
    "turn_id, country, country_code, region, city, lat, lon, valid, problems, clues, reasoning, candidates"
)
_TURN_SELECT = (
    "t.*, p.country AS p_country, p.country_code AS p_country_code, p.region AS p_region, p.city AS p_city, "
    "p.lat AS p_lat, p.lon AS p_lon, p.valid AS p_valid, p.problems AS p_problems, p.clues AS p_clues, "
    "p.reasoning AS p_reasoning, "
    "p.candidates AS p_candidates FROM turns t JOIN predictions p ON p.turn_id = t.id"
)


def _prediction_values(p: Prediction) -> tuple[Any, ...]:
    candidates = [
        {
            "lat": finite(c.lat, "candidate latitude"),
            "lon": finite(c.lon, "candidate longitude"),
            "share": finite(c.share, "candidate share"),
            "spread_km": finite(c.spread_km, "candidate spread"),
            "country": c.country,
            "region": c.region,
            "city": c.city,
        }
        for c in p.candidates
    ]
    return (
        p.country,
        p.country_code,
        p.region,
        p.city,
        finite(p.lat, "predicted latitude"),
        finite(p.lon, "predicted longitude"),
        1 if p.valid else 0,
        canonical_json(list(p.problems), "prediction problems"),
        canonical_json([list(c) for c in p.clues], "prediction clues"),
        p.reasoning,
        canonical_json(candidates, "prediction candidates"),
    )


# --------------------------------------------------------------------------------------------- findings


class FindingRepository(_Repository):
    """Findings are versioned: :meth:`save` adds a version; nothing is edited or deleted (triggers say so)."""

    _SELECT = (
        "SELECT id, evidence_sha256, version, lat, lon, radius_km, status, reasoning, created_at "
        "FROM findings"
    )

    def save(self, finding: Finding) -> Finding:
        status = FindingStatus(finding.status)
        created = finding.created_at or now_utc()
        with self._transaction():
            self._evidence_must_exist(finding.evidence_sha256)
            row = self._db.execute(
                "SELECT max(version) FROM findings WHERE evidence_sha256 = ?", (finding.evidence_sha256,)
            ).fetchone()
            version = int(row[0] or 0) + 1
            cursor = self._db.execute(
                "INSERT INTO findings (evidence_sha256, version, lat, lon, radius_km, status, "
                "reasoning, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    finding.evidence_sha256,
                    version,
                    finding.lat,
                    finding.lon,
                    finding.radius_km,
                    status.value,
                    finding.reasoning,
                    to_text(created),
                ),
            )
            finding_id = int(cursor.lastrowid or 0)
            self._audit.append(
                "finding.save",
                f"finding:{finding_id}",
                {
                    "evidence": finding.evidence_sha256,
                    "version": version,
                    "lat": finding.lat,
                    "lon": finding.lon,
                    "radius_km": finding.radius_km,
                    "status": status.value,
                    "reasoning": finding.reasoning,
                    "record_sha256": record_digest(self._db, "findings", finding_id),
                    "record_digest_version": DIGEST_VERSION,
                },
            )
        return replace(finding, id=finding_id, version=version, status=status, created_at=created)

    def current(self, evidence_sha256: str) -> Finding | None:
        rows = list(
            self._db.query(
                f"{self._SELECT} WHERE evidence_sha256 = ? ORDER BY version DESC LIMIT 1", (evidence_sha256,)
            )
        )
        return self._from_row(rows[0]) if rows else None

    def history(self, evidence_sha256: str) -> list[Finding]:
        rows = self._db.query(
            f"{self._SELECT} WHERE evidence_sha256 = ? ORDER BY version", (evidence_sha256,)
        )
        return [self._from_row(r) for r in rows]

    @staticmethod
    def _from_row(r: dict[str, Any]) -> Finding:
        return Finding(
            id=r["id"],
            evidence_sha256=r["evidence_sha256"],
            lat=r["lat"],
            lon=r["lon"],
            radius_km=r["radius_km"],
            status=FindingStatus(r["status"]),
            reasoning=r["reasoning"],
            version=r["version"],
            created_at=_dt(r["created_at"]),
        )
