"""Case use cases: summary, verification, sealed export and re-import of archives.

``verify_case`` re-hashes every original and checks the audit chain: what an investigator runs before
trusting (or handing over) a case. ``export_case`` seals a case into one zip: a consistent database
snapshot, the originals and thumbnails, and ``manifest.json`` with the SHA-256 of every file and the
audit chain head. ``open_archive`` checks all of that before a case enters the workspace.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from geodesk import __version__
from geodesk.domain import Case
from geodesk.store import CaseStore, StoreError, Workspace
from geodesk.store._codec import now_utc, to_text
from geodesk.store._files import CHUNK, sha256_file, write_json_atomic
from geodesk.store.case_store import CASE_JSON, DB_NAME, case_document
from geodesk.store.workspace import new_case_id, read_case_json

ARCHIVE_FORMAT = "geodesk-case-archive"
ARCHIVE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# What an archive carries, relative to the case folder: exports/ stays out (earlier archives and
# reports would nest and grow without end).
_ARCHIVED_FOLDERS = ("evidence", "thumbs", "layers")  # layers: the case's map layers (case_layers)


class ArchiveError(StoreError):
    """An archive that cannot be exported or opened; the message says why and what to do."""


def case_summary(store: CaseStore) -> dict[str, Any]:
    """``{"id", "title", "path", "created_at", "schema_version", "counts": {...}}`` for ``case show``."""
    case = store.case
    return {
        "id": case.id,
        "title": case.title,
        "path": case.path,
        "created_at": to_text(case.created_at),
        "schema_version": store.schema_version(),
        "counts": store.counts(),
    }


# ------------------------------------------------------------------------------------------------ verify


def verify_case(store: CaseStore) -> list[str]:
    """Every problem found in the case, each as a sentence; an empty list means the case is intact.

    Checks: each original exists and still hashes to its SHA-256; no file in ``evidence/`` is unknown
    to the database; the audit chain is unbroken and guarded; every evidence row has its audit entry;
    ``case.json`` agrees with the database; SQLite's own integrity and foreign-key checks.
    """
    problems: list[str] = []
    recorded = {e.sha256: e.original_name for e in store.evidence.list()}

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

    problems.extend(store.audit.verify())

    audited = {
        subject.removeprefix("evidence:")
        for (subject,) in store.db.execute(
            "SELECT subject FROM audit_log WHERE action = 'evidence.add'"
        ).fetchall()
    }
    for sha256, name in recorded.items():
        if sha256 not in audited:
            problems.append(f"evidence {sha256} ({name}) has no audit entry: it was added outside geodesk.")

    problems.extend(_case_json_problems(store))
    for (line,) in store.db.execute("PRAGMA quick_check").fetchall():
        if line != "ok":
            problems.append(f"the case database is damaged: {line}.")
    for table, rowid, parent, _ in store.db.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"row {rowid} of table {table} points to a missing row of {parent}.")
    return problems


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


# ------------------------------------------------------------------------------------------------ export


@dataclass(frozen=True, slots=True)
class ExportResult:
    archive: Path
    sha256: str
    files: int
    audit_head: str
    problems: list[str] = field(default_factory=list)


def export_case(store: CaseStore, out: Path, allow_problems: bool = False) -> ExportResult:
    """Seal ``store`` into the zip ``out`` (written to a temp file, then moved into place).

    A case that fails verification is refused unless ``allow_problems``; then the problems are written
    into the manifest and the audit entry, so the archive says what was wrong when it was sealed.
    """
    out = Path(out).absolute()
    if out.suffix.lower() != ".zip":
        raise ArchiveError(f"the archive name must end in .zip; got {out.name}")
    if not out.parent.is_dir():
        raise ArchiveError(f"the folder {out.parent} does not exist; create it or choose another path")
    problems = verify_case(store)
    if problems and not allow_problems:
        raise ArchiveError(
            f"case {store.case.id} fails verification ({len(problems)} problem(s), first: {problems[0]}) "
            "Run `geodesk case verify` for the list, or export with --allow-problems to seal it as it is."
        )
    # The export is itself an action: record it first so the sealed chain ends with it.
    store.audit.append("case.export", f"case:{store.case.id}", {"archive": out.name, "problems": problems})

    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory(prefix="geodesk-export-") as scratch:
            snapshot = Path(scratch) / DB_NAME
            store.backup_to(snapshot)
            head_seq, head_hash = _audit_head(snapshot)
            hashes: dict[str, str] = {}
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                hashes[DB_NAME] = _add_file(zf, snapshot, DB_NAME, compress=True)
                hashes[CASE_JSON] = _add_file(zf, store.path / CASE_JSON, CASE_JSON, compress=True)
                for folder in _ARCHIVED_FOLDERS:
                    root = store.path / folder
                    if not root.is_dir():
                        continue
                    for path in sorted(p for p in root.rglob("*") if p.is_file()):
                        arcname = path.relative_to(store.path).as_posix()
                        # Images are compressed already: storing them saves time and nothing else.
                        hashes[arcname] = _add_file(zf, path, arcname, compress=False)
                manifest = {
                    "format": ARCHIVE_FORMAT,
                    "format_version": ARCHIVE_FORMAT_VERSION,
                    "geodesk_version": __version__,
                    "exported_at": to_text(now_utc()),
                    "case": case_document(store.case),
                    "schema_version": store.schema_version(),
                    "audit_head": {"seq": head_seq, "hash": head_hash},
                    "problems": problems,
                    "files": dict(sorted(hashes.items())),
                }
                zf.writestr(
                    MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
                )
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(out, sha256_file(out), len(hashes), head_hash, problems)


def _audit_head(db_path: Path) -> tuple[int, str]:
    import sqlite3

    conn = sqlite3.connect(str(db_path))
    try:
        row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    if row is None:
        raise ArchiveError("the case has no audit entries; it cannot be sealed")
    return int(row[0]), str(row[1])


def _add_file(zf: zipfile.ZipFile, path: Path, arcname: str, compress: bool) -> str:
    """Stream ``path`` into the zip as ``arcname`` and return its SHA-256 (one read of the file)."""
    digest = hashlib.sha256()
    info = zipfile.ZipInfo.from_file(path, arcname, strict_timestamps=False)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with path.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------- open archive


@dataclass(frozen=True, slots=True)
class OpenedArchive:
    case: Case
    original_id: str
    manifest_problems: list[str]


def _safe_member(name: str) -> PurePosixPath:
    """The relative path of a zip member, or ArchiveError when it could escape the case folder."""
    if "\\" in name or "\x00" in name:
        raise ArchiveError(f"the archive holds an unsafe file name {name!r}; refusing to open it")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]) or not path.parts:
        raise ArchiveError(
            f"the archive holds a path that leaves the case folder ({name!r}); refusing to open it"
        )
    return path


def _read_manifest(zf: zipfile.ZipFile, zip_path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise ArchiveError(f"{zip_path.name} is not a geodesk case archive: it has no {MANIFEST}") from None
    except ValueError:
        raise ArchiveError(
            f"the {MANIFEST} of {zip_path.name} is not valid JSON; the archive is damaged"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{zip_path.name} is not a geodesk case archive (its manifest has another format)")
    if raw.get("format_version") != ARCHIVE_FORMAT_VERSION:
        raise ArchiveError(
            f"{zip_path.name} uses archive format version {raw.get('format_version')!r}; "
            f"geodesk {__version__} reads version {ARCHIVE_FORMAT_VERSION}. "
            "Open it with the geodesk that wrote it."
        )
    files = raw.get("files")
    if not isinstance(files, dict) or DB_NAME not in files or CASE_JSON not in files:
        raise ArchiveError(f"the manifest of {zip_path.name} does not list the case database; it is damaged")
    return raw


def open_archive(workspace: Workspace, zip_path: Path, as_copy: bool = False) -> OpenedArchive:
    """Check a case archive against its manifest and unpack it into ``workspace`` as a case.

    Refuses members that would land outside the case folder, files missing from or not listed in the
    manifest, any hash mismatch, a broken audit chain or a chain head other than the sealed one, and a
    case id already in the workspace (unless ``as_copy``, which gives the case a new id and marks its
    title as a copy). Nothing enters the workspace unless every check passes.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise ArchiveError(f"{zip_path} does not exist or is not a file")
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise ArchiveError(f"{zip_path.name} is not a zip file (or it is damaged)") from None
    with zf:
        manifest = _read_manifest(zf, zip_path)
        listed: dict[str, str] = manifest["files"]
        members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if info.is_dir():
                _safe_member(info.filename)
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ArchiveError(
                    f"the archive holds a symbolic link ({info.filename}); refusing to open it"
                )
            rel = _safe_member(info.filename).as_posix()
            if rel in members:
                raise ArchiveError(f"the archive holds {rel} twice; refusing to open it")
            members[rel] = info
        for rel in listed:
            _safe_member(rel)
            if rel not in members:
                raise ArchiveError(
                    f"{rel} is listed in the manifest but missing from the archive; it is damaged"
                )
        unlisted = sorted(set(members) - set(listed) - {MANIFEST})
        if unlisted:
            raise ArchiveError(
                f"the archive holds files its manifest does not list ({', '.join(unlisted[:5])})"
            )

        original_id = str(manifest["case"]["id"])
        existing = {c.id for c in workspace.list_cases()}
        if original_id in existing and not as_copy:
            raise ArchiveError(
                f"a case with id {original_id} is already in the workspace; open the archive with --as-copy "
                "to add it under a new id"
            )
        workspace.cases_dir.mkdir(parents=True, exist_ok=True)
        staging = workspace.cases_dir / f".import-{secrets.token_hex(6)}"
        staging.mkdir()
        try:
            for rel, expected in listed.items():
                target = staging.joinpath(*PurePosixPath(rel).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with zf.open(members[rel]) as src, target.open("xb") as dst:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
                if digest.hexdigest() != expected:
                    raise ArchiveError(
                        f"{rel} in {zip_path.name} does not match its manifest hash: it was altered"
                    )
                if rel.startswith("evidence/"):
                    target.chmod(0o444)  # originals are read-only in a case
            for sub in ("evidence", "thumbs", "exports"):
                (staging / sub).mkdir(exist_ok=True)
            opened = _adopt(workspace, staging, manifest, original_id, existing, as_copy, zip_path)
        except BaseException:
            _remove_tree(staging)
            raise
    return opened


def _adopt(
    workspace: Workspace,
    staging: Path,
    manifest: dict[str, Any],
    original_id: str,
    existing: set[str],
    as_copy: bool,
    zip_path: Path,
) -> OpenedArchive:
    """Check the unpacked case in ``staging``, give it its id, and move it into ``cases/``."""
    with CaseStore.open(staging) as store:
        if store.case.id != original_id:
            raise ArchiveError(
                f"the manifest names case {original_id} but the archived database is case {store.case.id}"
            )
        head = store.audit.head()
        sealed = manifest.get("audit_head", {})
        if head is None or head.hash != sealed.get("hash") or head.seq != sealed.get("seq"):
            raise ArchiveError(
                "the archived audit log does not end at the head sealed in the manifest: "
                "the archive was altered"
            )
        problems = [p for p in verify_case(store) if p not in manifest.get("problems", [])]
        if problems:
            raise ArchiveError(f"the archived case fails verification: {' '.join(problems[:5])}")
        case_id = original_id
        title = store.case.title
        if as_copy:
            while case_id in existing or (workspace.cases_dir / case_id).exists():
                case_id = new_case_id()
            title = f"{title} (copy)"
        with store.transaction():
            if as_copy:
                store.db.execute("UPDATE case_info SET id = ?, title = ?", (case_id, title))
            store.audit.append(
                "case.import",
                f"case:{case_id}",
                {
                    "archive": zip_path.name,
                    "archive_sha256": sha256_file(zip_path),
                    "original_id": original_id,
                    "sealed_head": sealed.get("hash"),
                },
            )
        created_at = store.case.created_at
    final = workspace.cases_dir / case_id
    case = Case(id=case_id, title=title, path=str(final), created_at=created_at)
    write_json_atomic(staging / CASE_JSON, case_document(case))
    if final.exists():
        raise ArchiveError(f"{final} appeared while the archive was being opened; try again")
    staging.rename(final)
    return OpenedArchive(case, original_id, list(manifest.get("problems", [])))


def _remove_tree(path: Path) -> None:
    """Remove a staging folder. On POSIX read-only originals go with their writable folder; on Windows
    a read-only file refuses deletion, so make it writable and retry."""

    def make_writable(func: Any, target: str, _exc: Any) -> None:
        Path(target).chmod(stat.S_IWRITE | stat.S_IREAD)
        func(target)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable)
    else:
        shutil.rmtree(path, onerror=make_writable)
