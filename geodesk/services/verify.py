"""``case verify``: every check geodesk can make on a case, and a plain statement of what they prove.

Checks: each original exists and still hashes to its SHA-256; no file in ``evidence/`` is unknown to the
database; the audit chain is unbroken and guarded; every evidence item, session, turn (with hints and
prediction), clue and finding matches the record digest of its newest audit entry (so rows edited,
inserted or deleted with plain SQL show); the schema is exactly geodesk's own (no foreign trigger,
view, table or index); ``case.json`` agrees with the database; SQLite's integrity and foreign-key
checks; and the chain head against the workspace's anchor (docs/adr/0016), which is what detects a
chain rewritten with recomputed hashes or cut short. What cannot be checked is said in ``limits``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodesk.digest import sha256_file
from geodesk.store import CaseStore, StoreError
from geodesk.store.anchor import check_anchor
from geodesk.store.digests import DIGEST_COLUMNS, KINDS, record_digest, record_keys, text_sha256
from geodesk.store.migrations import schema_differences
from geodesk.store.workspace import read_case_json


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """``problems``: what is wrong (empty = intact); ``proves`` / ``limits``: what the checks do and do
    not establish for this case in this workspace."""

    problems: list[str]
    proves: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)


def verify_case(store: CaseStore) -> list[str]:
    """Every problem found in the case, each as a sentence; an empty list means the case is intact."""
    return verify_report(store).problems


def verify_report(store: CaseStore, anchored: bool = True) -> VerifyReport:
    """All checks; ``anchored=False`` leaves out the workspace anchor (for a case being imported)."""
    problems: list[str] = []
    proves: list[str] = []
    limits: list[str] = []

    recorded = {e.sha256: e.original_name for e in store.evidence.list()}
    file_problems = _file_problems(store, recorded)
    problems.extend(file_problems)
    if not file_problems:
        proves.append(f"{len(recorded)} original(s) are present and match their SHA-256")

    chain_problems = store.audit.verify()
    problems.extend(chain_problems)
    entries = store.db.execute("SELECT seq, hash, subject, details FROM audit_log ORDER BY seq").fetchall()
    if not chain_problems:
        proves.append(f"the {len(entries)} audit entries form an unbroken, append-only chain")

    record_problems, checked, unchecked = _record_problems(store, recorded, entries)
    problems.extend(record_problems)
    if not record_problems:
        proves.append(f"{checked} record(s) match the digests in their audit entries")
    if unchecked:
        limits.append(
            f"{unchecked} record(s) were written by a geodesk that put no record digest into the audit log: "
            "their content cannot be checked against it"
        )

    problems.extend(_identity_problems(store, entries))
    problems.extend(schema_differences(store.db.conn))
    problems.extend(_case_json_problems(store))
    for (line,) in store.db.execute("PRAGMA quick_check").fetchall():
        if line != "ok":
            problems.append(f"the case database is damaged: {line}.")
    for table, rowid, parent, _ in store.db.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"row {rowid} of table {table} points to a missing row of {parent}.")

    if anchored:
        anchor = check_anchor(store.anchor, store.case.id, {int(s): str(h) for s, h, _, _ in entries})
        problems.extend(anchor.problems)
        proves.extend(anchor.proves)
        limits.extend(anchor.limits)
    limits.append(
        "verify cannot tell whether what geodesk recorded is true (a wrong GPS tag in a photo stays wrong); "
        "it shows only whether the case changed after geodesk recorded it"
    )
    return VerifyReport(problems, proves, limits)


def _file_problems(store: CaseStore, recorded: dict[str, str]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for sha256, name in recorded.items():
        files = store.evidence_files(sha256)
        if not files:
            problems.append(
                f"evidence {sha256} ({name}) is missing: no file evidence/{sha256[:2]}/{sha256}.*"
            )
            continue
        for path in files:
            seen.add(str(path))
            actual = sha256_file(path)
            if actual != sha256:
                problems.append(
                    f"evidence file {_rel(store, path)} ({name}) was altered: it now hashes to {actual}, "
                    f"not {sha256}."
                )
        if len(files) > 1:
            names = ", ".join(_rel(store, p) for p in files)
            problems.append(f"evidence {sha256} ({name}) is stored more than once: {names}.")
    if store.evidence_dir.is_dir():
        for path in sorted(store.evidence_dir.rglob("*")):
            if path.is_dir() or str(path) in seen:
                continue
            problems.append(f"{_rel(store, path)} is in evidence/ but not recorded in the case database.")
    return problems


def _record_problems(
    store: CaseStore, recorded: dict[str, str], entries: list[tuple[Any, ...]]
) -> tuple[list[str], int, int]:
    """Records against the newest audit entry of their subject: (problems, checked, without digest)."""
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for seq, _hash, subject, details_text in entries:
        try:
            details = json.loads(details_text)
        except ValueError:
            continue  # AuditLog.verify() reports the entry as altered
        if isinstance(details, dict):
            newest[str(subject)] = (int(seq), details)
    problems: list[str] = []
    checked = unchecked = 0
    for kind in KINDS:
        present: set[str] = set()
        for key in record_keys(store.db, kind):
            subject = f"{kind.prefix}:{key}"
            present.add(subject)
            what = f"{kind.label} {key}"
            if kind.table == "evidence":
                what += f" ({recorded.get(str(key), '?')})"
            entry = newest.get(subject)
            if entry is None:
                problems.append(f"{what} has no audit entry: it was added outside geodesk.")
                continue
            seq, details = entry
            expected = details.get("record_sha256")
            if expected is None:
                unchecked += 1
                continue
            version = details.get("record_digest_version", 1)
            if version not in DIGEST_COLUMNS:
                unchecked += 1  # written by a newer geodesk with columns this one does not know
                continue
            checked += 1
            if expected != record_digest(store.db, kind.table, key, version):
                problems.append(
                    f"{what} was changed outside geodesk: it no longer matches its audit entry {seq}."
                )
            if kind.table == "evidence":
                path_digest = details.get("source_path_sha256")
                source = store.db.execute(
                    "SELECT source_path FROM evidence WHERE sha256 = ?", (key,)
                ).fetchone()[0]
                if source is not None and path_digest is not None and text_sha256(source) != path_digest:
                    problems.append(
                        f"the source path of {what} was changed outside geodesk (audit entry {seq})."
                    )
        for subject, (seq, details) in newest.items():
            if (
                subject.startswith(f"{kind.prefix}:")
                and subject not in present
                and "record_sha256" in details
            ):
                problems.append(
                    f"{kind.label} {subject.split(':', 1)[1]} (audit entry {seq}) is missing from the "
                    "database: it was deleted outside geodesk."
                )
    return problems, checked, unchecked


def _identity_problems(store: CaseStore, entries: list[tuple[Any, ...]]) -> list[str]:
    """The case record's id and title against the newest entry that set them (create or import)."""
    identity: tuple[object, object] | None = None
    for _seq, _hash, subject, details_text in entries:
        if not str(subject).startswith("case:"):
            continue
        try:
            details = json.loads(details_text)
        except ValueError:
            continue
        if isinstance(details, dict) and "id" in details and "title" in details:
            identity = (details["id"], details["title"])
    if identity is None or identity == (store.case.id, store.case.title):
        return []
    return [
        f"the case record says id {store.case.id!r}, title {store.case.title!r}, but the audit log last set "
        f"them to {identity[0]!r}, {identity[1]!r}: the case record was changed outside geodesk."
    ]


def _rel(store: CaseStore, path: Path) -> str:
    return path.relative_to(store.path).as_posix()


def _case_json_problems(store: CaseStore) -> list[str]:
    try:
        described = read_case_json(store.path)
    except StoreError as exc:
        return [f"{exc}."]
    case = store.case
    problems = []
    if described.id != case.id:
        problems.append(f"case.json names case {described.id}, but the database is case {case.id}.")
    if described.title != case.title:
        problems.append(
            f"case.json gives the title {described.title!r}, but the database says {case.title!r}."
        )
    return problems
