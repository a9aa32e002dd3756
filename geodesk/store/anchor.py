"""Audit anchors: the head of each case's audit chain, signed with a per-workspace key, kept outside the case.

The audit chain inside ``case.db`` shows edits, deletions and reordering, but someone who rewrites the
whole chain (or cuts its tail and fixes ``sqlite_sequence``) leaves a consistent chain behind. The
anchor is what the case itself cannot rewrite::

    <workspace>/integrity/audit.key     32 random bytes (hex), owner-only (0600) in an 0700 folder
    <workspace>/integrity/anchors.db    SQLite (WAL): one row per case id, the newest chain head of
                                        that case as a JSON document with an HMAC-SHA256 under the key

(SQLite rather than one JSON file per case: replacing a file costs ~3 ms on ext4, twice per write
transaction; an UPDATE in WAL mode costs a fraction of a millisecond.)

Every write transaction that adds audit entries records its new head twice: as ``pending`` just before
COMMIT (while the SQLite write lock is held, so writers never race on the file) and as ``head`` after
COMMIT. A process killed in between leaves the chain at ``head`` or at ``pending``, both vouched for.
A write that finds the chain somewhere else (changed outside geodesk since its last anchor) records a
``break`` in the document, which ``case verify`` reports for good. Since the head's hash covers every
earlier entry through the previous-hash links, one head vouches for the whole chain up to it.

What it cannot do: anyone who can read the key (the workspace owner's account) can forge anchors, and a
case opened in a workspace without the key (an archive from another team) can only be checked for
internal consistency. See docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geodesk.store._codec import canonical_json, now_utc, to_text
from geodesk.store.errors import StoreError

INTEGRITY_DIR = "integrity"
KEY_FILE = "audit.key"
ANCHORS_DB = "anchors.db"
CASES_DIR = "cases"
_BUSY_TIMEOUT_S = 10.0


def restrict_folder(path: Path) -> None:
    """Create ``path`` (and parents) and make it owner-only (0700) whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


@dataclass(frozen=True, slots=True)
class WorkspaceKey:
    """The secret of one workspace; ``key_id`` names it without revealing it."""

    secret: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"geodesk audit key id\x00" + self.secret).hexdigest()[:16]

    def mac(self, value: Any) -> str:
        payload = canonical_json(value, "anchored value").encode("utf-8")
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    def checks(self, value: Any, mac: object) -> bool:
        return isinstance(mac, str) and hmac.compare_digest(self.mac(value), mac)


def key_path(workspace: Path) -> Path:
    return Path(workspace) / INTEGRITY_DIR / KEY_FILE


def load_key(workspace: Path) -> WorkspaceKey | None:
    """The workspace's key, or None when it has none (or it is unreadable: then nothing is anchored)."""
    try:
        text = key_path(workspace).read_text(encoding="ascii").strip()
        return WorkspaceKey(bytes.fromhex(text)) if len(text) == 64 else None
    except (OSError, ValueError):
        return None


def ensure_key(workspace: Path) -> WorkspaceKey:
    """The workspace's key, created (owner-only, exclusively: two processes never make two) if missing."""
    existing = load_key(workspace)
    if existing is not None:
        return existing
    path = key_path(workspace)
    restrict_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        found = load_key(workspace)
        if found is None:
            raise StoreError(
                f"the workspace key {path} is damaged; move it away to start a new one "
                "(cases anchored with it can then only be checked for internal consistency)"
            ) from None
        return found
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    key = load_key(workspace)
    assert key is not None
    return key


def workspace_of(case_dir: Path) -> Path | None:
    """The workspace holding ``case_dir`` when it sits in a workspace's ``cases/`` folder."""
    parent = Path(case_dir).absolute().parent
    return parent.parent if parent.name == CASES_DIR else None


Head = tuple[int, str]  # (seq, hash) of an audit entry


def _head_doc(head: Head | None) -> dict[str, Any] | None:
    return None if head is None else {"seq": head[0], "hash": head[1]}


def _head_of(doc: object) -> Head | None:
    if isinstance(doc, dict) and isinstance(doc.get("seq"), int) and isinstance(doc.get("hash"), str):
        return int(doc["seq"]), str(doc["hash"])
    return None


@dataclass(slots=True)
class AnchorState:
    """One case's anchor document, checked against the key."""

    head: Head | None
    pending: Head | None
    anchored_from: int  # the first seq this workspace vouched for as it was written (1 = all of them)
    breaks: list[dict[str, Any]]
    origin: dict[str, Any] | None  # set when the case came from an archive


class CaseAnchor:
    """The anchors of one workspace, as seen from one case store (one connection, that store's thread)."""

    def __init__(self, workspace: Path, key: WorkspaceKey) -> None:
        self.workspace = Path(workspace)
        self.key = key
        self._conn: sqlite3.Connection | None = None

    @property
    def db_path(self) -> Path:
        return self.workspace / INTEGRITY_DIR / ANCHORS_DB

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            restrict_folder(self.db_path.parent)
            conn = sqlite3.connect(str(self.db_path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute("PRAGMA trusted_schema = OFF")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # as durable as the case databases themselves
            conn.execute("CREATE TABLE IF NOT EXISTS anchors (case_id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
            self.db_path.chmod(0o600)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def read(self, case_id: str) -> AnchorState | None:
        """The anchor of ``case_id``; None when there is none. StoreError when it fails its HMAC."""
        row = self._db().execute("SELECT doc FROM anchors WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            return None
        where = f"the audit anchor of case {case_id} in {self.db_path}"
        try:
            raw = json.loads(row[0])
        except ValueError:
            raise StoreError(f"{where} is damaged") from None
        if not isinstance(raw, dict):
            raise StoreError(f"{where} is damaged")
        mac = raw.pop("mac", None)
        if raw.get("case_id") != case_id or not self.key.checks(raw, mac):
            raise StoreError(
                f"{where} does not carry this workspace's signature: it was altered or written with "
                "another key"
            )
        breaks = raw.get("breaks")
        origin = raw.get("origin")
        return AnchorState(
            head=_head_of(raw.get("head")),
            pending=_head_of(raw.get("pending")),
            anchored_from=int(raw.get("anchored_from", 1)),
            breaks=list(breaks) if isinstance(breaks, list) else [],
            origin=origin if isinstance(origin, dict) else None,
        )

    def write(self, case_id: str, state: AnchorState) -> None:
        doc: dict[str, Any] = {
            "case_id": case_id,
            "key_id": self.key.key_id,
            "head": _head_doc(state.head),
            "pending": _head_doc(state.pending),
            "anchored_from": state.anchored_from,
            "breaks": state.breaks,
            "origin": state.origin,
        }
        doc["mac"] = self.key.mac(doc)
        self._db().execute(
            "INSERT INTO anchors (case_id, doc) VALUES (?, ?) "
            "ON CONFLICT (case_id) DO UPDATE SET doc = excluded.doc",
            (case_id, canonical_json(doc, "audit anchor")),
        )

    # ------------------------------------------------------------------------- the write protocol

    def before_commit(self, case_id: str, start: Head | None, new: Head) -> None:
        """Record ``new`` as pending. ``start`` is the chain head this transaction began from.

        Called while the case's write lock is held, so two writers of one case never interleave here.
        """
        state = self.read_or_none(case_id)
        if state is None:
            # First anchored write: vouch from here on; what came before is only consistent. The
            # starting head is accepted too, in case this transaction never commits.
            state = AnchorState(start, None, (start[0] + 1) if start else 1, [], None)
        elif start not in (state.head, state.pending):
            state.breaks.append(
                {
                    "noticed_at": to_text(now_utc()),
                    "anchored": _head_doc(state.head),
                    "pending": _head_doc(state.pending),
                    "found": _head_doc(start),
                }
            )
            state.head = start
        elif start == state.pending:
            state.head = start  # the previous writer committed but died before confirming
        state.pending = new
        self.write(case_id, state)

    def after_commit(self, case_id: str, new: Head) -> None:
        state = self.read_or_none(case_id)
        if state is None or state.pending != new:
            return  # a later writer has recorded its own pending (which builds on ``new``)
        state.head, state.pending = new, None
        self.write(case_id, state)

    def after_rollback(self, case_id: str, new: Head) -> None:
        state = self.read_or_none(case_id)
        if state is not None and state.pending == new:
            state.pending = None
            self.write(case_id, state)

    def read_or_none(self, case_id: str) -> AnchorState | None:
        """Like :meth:`read`, but a damaged anchor starts over with a break recorded, never blocks a write."""
        try:
            return self.read(case_id)
        except StoreError as exc:
            return AnchorState(None, None, 1, [{"noticed_at": to_text(now_utc()), "damaged": str(exc)}], None)

    def forget(self, case_id: str) -> None:
        """Drop the anchor of a case that never entered the workspace (an archive open that failed)."""
        self._db().execute("DELETE FROM anchors WHERE case_id = ?", (case_id,))

    def start_from_archive(self, case_id: str, head: Head, origin: dict[str, Any]) -> None:
        """Anchor a case that enters this workspace from an archive at its (checked) sealed head."""
        self.write(case_id, AnchorState(head, None, head[0] + 1, [], origin))


def anchor_for(case_dir: Path) -> CaseAnchor | None:
    """The anchor book of the workspace holding ``case_dir``, when that workspace has a key."""
    workspace = workspace_of(case_dir)
    if workspace is None:
        return None
    key = load_key(workspace)
    return None if key is None else CaseAnchor(workspace, key)


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """What the workspace anchor says about a case's chain: problems, and what is and is not proven."""

    problems: list[str]
    proves: list[str]
    limits: list[str]


def check_anchor(anchor: CaseAnchor | None, case_id: str, chain: dict[int, str]) -> AnchorCheck:
    """Compare the chain (``{seq: hash}``, already checked for internal consistency) with its anchor."""
    consistent_only = (
        "the audit chain is only checked for internal consistency: someone who rewrites the whole chain "
        "(or cuts its newest entries and fixes sqlite_sequence) with recomputed hashes is not detected"
    )
    if anchor is None:
        return AnchorCheck(
            [],
            [],
            [
                "this case is not in a workspace with an audit key, so no anchor could be checked: "
                + consistent_only
            ],
        )
    try:
        state = anchor.read(case_id)
    except StoreError as exc:
        return AnchorCheck([f"{exc}."], [], [consistent_only])
    if state is None:
        return AnchorCheck(
            [],
            [],
            [
                f"this workspace holds no anchor for case {case_id} (it was made before anchors, or its "
                "folder was copied in by hand; the next change anchors it): " + consistent_only
            ],
        )
    problems: list[str] = []
    for found in state.breaks:
        if "damaged" in found:
            problems.append(f"the audit anchor was found damaged at {found.get('noticed_at')}.")
            continue
        anchored = found.get("anchored") or {}
        now = found.get("found") or {}
        problems.append(
            f"at {found.get('noticed_at')} the audit chain no longer ended where this workspace had "
            f"anchored it (entry {anchored.get('seq')}) but at entry {now.get('seq')}: the case was "
            "changed outside geodesk before that write."
        )
    head = max(chain) if chain else 0
    accepted = [h for h in (state.head, state.pending) if h is not None]
    if not accepted:
        problems.append("the audit anchor records no chain head.")
    elif (head, chain.get(head)) not in accepted:
        seq, digest = accepted[0]
        if seq > head:
            problems.append(
                f"the newest audit entries were removed: this workspace anchored entry {seq}, but the "
                f"chain ends at entry {head}."
            )
        elif chain.get(seq) != digest:
            problems.append(
                f"the audit chain was rewritten: entry {seq} no longer has the hash this workspace "
                "anchored for it."
            )
        else:
            problems.append(
                f"audit entries {seq + 1} to {head} were added outside geodesk: this workspace anchored "
                f"the chain at entry {seq}."
            )
    proves = []
    limits = []
    if not problems:
        first = state.anchored_from
        proves.append(
            f"the audit chain up to entry {head} is the one this workspace's geodesk wrote (anchor "
            f"checked with key {anchor.key.key_id})" + (f", from entry {first} on" if first > 1 else "")
        )
        if first > 1:
            origin = state.origin or {}
            if origin.get("sealed_by") == anchor.key.key_id:
                proves.append(
                    f"entries 1 to {first - 1} came from an archive this workspace sealed (seal checked)"
                )
            elif origin:
                limits.append(
                    f"entries 1 to {first - 1} came from the archive {origin.get('archive')!r} sealed by "
                    f"another workspace (key {origin.get('sealed_by') or 'unknown'}): their consistency and "
                    "the archive's hashes were checked, but not who wrote them"
                )
            else:
                limits.append(
                    f"entries 1 to {first - 1} were written before this workspace anchored the case: "
                    "only their internal consistency is checked"
                )
    limits.append(
        "anyone who can read this workspace's key (the account that owns it) could rewrite a case and its "
        "anchor together"
    )
    return AnchorCheck(problems, proves, limits)
