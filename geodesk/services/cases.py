"""Case use cases: summary, verification, sealed export and re-import of archives.

``verify_case`` (geodesk.services.verify) re-hashes every original and checks the audit chain, the
record digests and the workspace anchor: what an investigator runs before trusting (or handing over) a
case. ``export_case`` seals a case into one zip: a consistent database snapshot whose audit chain ends
with a ``case.seal`` entry, the originals and thumbnails, and ``manifest.json`` with the SHA-256 of
every file and the sealed head (signed with the workspace key). ``open_archive`` treats an archive as
hostile input: it checks sizes, layout, hashes, schema and chain before a case enters the workspace.
See docs/security.md for what each check covers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from geodesk import __version__
from geodesk.digest import CHUNK_SIZE as CHUNK
from geodesk.digest import sha256_file
from geodesk.domain import AuditEntry, Case
from geodesk.services.verify import VerifyReport, verify_case, verify_report
from geodesk.store import CaseStore, StoreError, Workspace
from geodesk.store._codec import now_utc, to_text
from geodesk.store._files import write_json_atomic
from geodesk.store._staging import own_file, remove_stale, remove_tree, staging_name
from geodesk.store.anchor import CaseAnchor, restrict_folder
from geodesk.store.case_store import (
    CASE_JSON,
    DB_NAME,
    EXPORT_STAGING_PREFIX,
    PARTIAL_ARCHIVE_SUFFIX,
    case_document,
)
from geodesk.store.migrations import schema_differences
from geodesk.store.workspace import MAX_TITLE, is_case_id, new_case_id

__all__ = [
    "ArchiveError",
    "ExportResult",
    "OpenedArchive",
    "VerifyReport",
    "case_summary",
    "clean_imported_title",
    "export_case",
    "open_archive",
    "verify_case",
    "verify_report",
]

ARCHIVE_FORMAT = "geodesk-case-archive"
ARCHIVE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# What an archive carries, relative to the case folder: exports/ stays out (earlier archives and
# reports would nest and grow without end).
_ARCHIVED_FOLDERS = ("evidence", "thumbs", "layers")  # layers: the case's map layers (case_layers)
IMPORT_STAGING_PREFIX = ".import-"

# Limits on what an archive may ask of the disk and memory, checked from the zip's directory before
# a single byte is extracted (zipfile never returns more than a member's declared size, and a member
# that inflates to more fails its CRC, so declared sizes bound what is written).
MAX_MANIFEST_BYTES = 32 << 20  # a manifest lists ~150 bytes per file: 200,000 originals fit
MAX_MEMBER_BYTES = 8 << 30  # one original or the database
MAX_RATIO = 200  # declared size / compressed size, for members over RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 1 << 20
DISK_RESERVE_BYTES = 512 << 20  # left free after extraction, for the database's WAL and the OS


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


# ------------------------------------------------------------------------------------------------ export


@dataclass(frozen=True, slots=True)
class ExportResult:
    archive: Path
    sha256: str
    files: int
    audit_head: str
    problems: list[str] = field(default_factory=list)
    redacted: dict[str, Any] = field(default_factory=dict)


def export_case(
    store: CaseStore,
    out: Path,
    allow_problems: bool = False,
    force: bool = False,
    redact_paths: bool = False,
) -> ExportResult:
    """Seal ``store`` into the zip ``out``.

    A case that fails verification is refused unless ``allow_problems``; then the problems are written
    into the manifest and the audit entries, so the archive says what was wrong when it was sealed.
    An existing ``out`` is refused unless ``force``. ``redact_paths`` leaves the analyst's local paths
    (evidence source paths, model folders) out of the archive's database.

    The snapshot and its ``case.seal`` entry are built in a staging folder inside the case, the zip
    in a ``.geodesk-partial`` file beside ``out``; only after ``out`` is complete does the live case
    record ``case.export`` (with the archive's SHA-256). A killed export therefore records nothing,
    and its leftovers are removed by the next export or open of the case.
    """
    out = Path(out).absolute()
    if out.suffix.lower() != ".zip":
        raise ArchiveError(f"the archive name must end in .zip; got {out.name}")
    if not out.parent.is_dir():
        raise ArchiveError(f"the folder {out.parent} does not exist; create it or choose another path")
    if (out.exists() or out.is_symlink()) and not force:
        raise ArchiveError(f"{out} already exists; choose another name, or pass --force to replace it")
    if out.is_dir():
        raise ArchiveError(f"{out} is a folder; choose a file name for the archive")
    problems = verify_case(store)
    if problems and not allow_problems:
        raise ArchiveError(
            f"case {store.case.id} fails verification ({len(problems)} problem(s), first: {problems[0]}) "
            "Run `geodesk case verify` for the list, or export with --allow-problems to seal it as it is."
        )
    remove_stale(store.path, EXPORT_STAGING_PREFIX, owned_suffix=PARTIAL_ARCHIVE_SUFFIX)
    remove_stale(out.parent, f".{out.name}.", file_suffix=PARTIAL_ARCHIVE_SUFFIX)

    scratch = store.path / staging_name(EXPORT_STAGING_PREFIX)
    restrict_folder(scratch)
    tmp = out.parent / f"{staging_name(f'.{out.name}.')}{PARTIAL_ARCHIVE_SUFFIX}"
    own_file(scratch, tmp)
    try:
        snapshot = scratch / DB_NAME
        store.backup_to(snapshot)
        redacted = _seal_snapshot(snapshot, out.name, problems, redact_paths)
        head_seq, head_hash = _audit_head(snapshot)
        sealed_head: dict[str, Any] = {"seq": head_seq, "hash": head_hash}
        if store.anchor is not None:
            sealed_head.update(
                key_id=store.anchor.key.key_id,
                mac=store.anchor.key.mac(["seal", store.case.id, head_seq, head_hash]),
            )
        hashes: dict[str, str] = {}
        # Owner-only like the case it holds (0600 under any umask); the analyst decides who gets it.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
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
                "audit_head": sealed_head,
                "problems": problems,
                "redacted": redacted,
                "files": dict(sorted(hashes.items())),
            }
            zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        archive_sha256 = sha256_file(tmp)
        tmp.replace(out)
        # Recorded only now that the archive exists: the entry names it by its SHA-256.
        store.audit.append(
            "case.export",
            f"case:{store.case.id}",
            {
                "archive": out.name,
                "archive_sha256": archive_sha256,
                "sealed_head": {"seq": head_seq, "hash": head_hash},
                "problems": problems,
                "redacted": redacted,
            },
        )
    finally:
        tmp.unlink(missing_ok=True)
        remove_tree(scratch)
    return ExportResult(out, archive_sha256, len(hashes), head_hash, problems, redacted)


def _seal_snapshot(
    snapshot: Path, archive_name: str, problems: list[str], redact_paths: bool
) -> dict[str, Any]:
    """Redact the snapshot if asked, then end its chain with ``case.seal``; return what was redacted."""
    with CaseStore.open(snapshot.parent) as sealed:
        redacted: dict[str, Any] = {}
        with sealed.transaction():
            if redact_paths:
                # secure_delete: the old values must not survive in the pages' free space.
                sealed.db.conn.execute("PRAGMA secure_delete = ON")
                evidence = sealed.db.execute(
                    "UPDATE evidence SET source_path = NULL WHERE source_path IS NOT NULL"
                ).rowcount
                sessions = sealed.db.execute(
                    "UPDATE sessions SET model_path = NULL WHERE model_path IS NOT NULL"
                ).rowcount
                # Older geodesk versions wrote the source path into the evidence.add entry itself,
                # where the hash chain covers it: it cannot be removed without breaking the chain.
                left = sealed.db.execute(
                    "SELECT count(*) FROM audit_log WHERE action = 'evidence.add' "
                    "AND json_extract(details, '$.source_path') IS NOT NULL"
                ).fetchone()[0]
                redacted = {
                    "evidence_source_paths": int(evidence),
                    "session_model_paths": int(sessions),
                    "paths_left_in_audit_entries": int(left),
                }
            sealed.audit.append(
                "case.seal",
                f"case:{sealed.case.id}",
                {"archive": archive_name, "problems": problems, "redacted": redacted},
            )
        if redact_paths:
            sealed.db.conn.execute("VACUUM")  # rewrite every page: nothing of the old rows stays
    return redacted


def _audit_head(db_path: Path) -> tuple[int, str]:
    conn = sqlite3.connect(str(db_path))
    try:
        row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        conn.execute("PRAGMA journal_mode = DELETE")
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
    seal: str = "unsigned"  # "checked" (sealed by this workspace), "other workspace" or "unsigned"
    original_title: str | None = None  # set when the archived title had to be cleaned


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


# The only files an archive may put into a case folder: the database, case.json, originals at their
# content address and thumbnails. Anything else a manifest lists is refused, whatever its hash.
_EVIDENCE_MEMBER = re.compile(r"evidence/([0-9a-f]{2})/([0-9a-f]{64})(\.[a-z0-9]{1,10})?")
_THUMB_MEMBER = re.compile(r"thumbs/[0-9a-f]{64}\.jpg")
# A case's map layers (geodesk/services/case_layers.py): the index and one GeoJSON per imported file.
_LAYER_MEMBER = re.compile(r"layers/(layers\.json|[0-9a-f]{64}\.geojson)")


def _is_case_member(rel: str) -> bool:
    """Whether ``rel`` (an already safe relative path) belongs to a case folder's layout."""
    if rel in (DB_NAME, CASE_JSON) or _THUMB_MEMBER.fullmatch(rel) or _LAYER_MEMBER.fullmatch(rel):
        return True
    match = _EVIDENCE_MEMBER.fullmatch(rel)
    return match is not None and match.group(2).startswith(match.group(1))


def _read_manifest(zf: zipfile.ZipFile, zip_path: Path) -> dict[str, Any]:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise ArchiveError(f"{zip_path.name} is not a geodesk case archive: it has no {MANIFEST}") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveError(
            f"the {MANIFEST} of {zip_path.name} declares {_size(info.file_size)}; a geodesk manifest is "
            f"at most {_size(MAX_MANIFEST_BYTES)}. Refusing to read it (the archive is damaged or hostile)"
        )
    try:
        with zf.open(info) as fh:
            raw = json.loads(fh.read(MAX_MANIFEST_BYTES + 1))
    except (ValueError, RecursionError, zipfile.BadZipFile):
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
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ArchiveError(f"the manifest of {zip_path.name} lists files in a shape geodesk does not write")
    return raw


def _size(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB" if n < 1 << 30 else f"{n / (1 << 30):,.1f} GiB"


def _check_sizes(members: dict[str, zipfile.ZipInfo], listed: dict[str, str], cases_dir: Path) -> None:
    """Refuse a zip bomb from the zip's directory alone: per-member size and ratio, total against disk."""
    total = 0
    for rel in listed:
        info = members[rel]
        if info.file_size > MAX_MEMBER_BYTES:
            raise ArchiveError(
                f"{rel} declares {_size(info.file_size)}, more than the {_size(MAX_MEMBER_BYTES)} geodesk "
                "accepts for one file of a case; refusing to open the archive"
            )
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ArchiveError(
                f"{rel} would inflate {info.file_size // max(info.compress_size, 1):,} times "
                f"({_size(info.compress_size)} to {_size(info.file_size)}); geodesk archives never "
                f"compress more than {MAX_RATIO} times. Refusing to open it (a zip bomb)"
            )
        total += info.file_size
    free = shutil.disk_usage(cases_dir).free
    if total + DISK_RESERVE_BYTES > free:
        raise ArchiveError(
            f"the archive unpacks to {_size(total)}, but {cases_dir} has only {_size(free)} free "
            f"(geodesk keeps {_size(DISK_RESERVE_BYTES)} spare). Free some space and try again"
        )


def _check_database(db_path: Path) -> None:
    """Refuse an archived database whose schema holds anything geodesk's migrations did not create.

    Opened read-only with trusted_schema off, before any geodesk code writes to it: a hostile trigger
    (say, one that strips GPS from evidence added later) must never get to run.
    """
    try:
        conn = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ArchiveError(f"the archived case database cannot be opened ({exc}); it is damaged") from None
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        differences = schema_differences(conn)
    except sqlite3.Error as exc:
        raise ArchiveError(f"the archived case database cannot be read ({exc}); it is damaged") from None
    finally:
        conn.close()
    if differences:
        raise ArchiveError(
            "the archived case database holds a schema geodesk did not create, so it is not opened: "
            + " ".join(differences[:5])
        )


def clean_imported_title(title: str) -> str:
    """An archived title made fit for display: control characters (terminal escapes, new lines) become
    U+FFFD, surrounding space goes, at most :data:`MAX_TITLE` characters, never empty.

    Cleaned rather than refused: the analyst can still open a case someone else titled badly, sees
    that something was replaced, and the ``case.import`` entry keeps the original title.
    """
    cleaned = "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in title).strip()
    return cleaned[:MAX_TITLE].strip() or "Untitled imported case"


def open_archive(workspace: Workspace, zip_path: Path, as_copy: bool = False) -> OpenedArchive:
    """Check a case archive and unpack it into ``workspace`` as a case.

    Before extracting: a size-capped manifest; only the case layout's members (case.db, case.json,
    content-addressed originals, thumbnails), no links, no traversal, nothing unlisted or missing; member
    sizes, compression ratios and free disk. After extracting into a hidden staging folder: every hash,
    the database schema (geodesk's own only), the chain head against the sealed one (and the seal's
    signature when this workspace made it), and a full verification. A case id that is not geodesk's
    shape, or is taken (with ``as_copy``), gets a fresh id. Nothing stays on disk unless every check
    passes; a killed open leaves a staging folder the next open removes.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise ArchiveError(f"{zip_path} does not exist or is not a file")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError):
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
            if not _is_case_member(rel):
                raise ArchiveError(
                    f"the manifest lists {rel!r}, which is not part of a geodesk case folder (only case.db, "
                    "case.json, evidence/ originals and thumbs/ thumbnails are); refusing to open it"
                )
            if rel not in members:
                raise ArchiveError(
                    f"{rel} is listed in the manifest but missing from the archive; it is damaged"
                )
        unlisted = sorted(set(members) - set(listed) - {MANIFEST})
        if unlisted:
            raise ArchiveError(
                f"the archive holds files its manifest does not list ({', '.join(unlisted[:5])})"
            )
        case_doc = manifest.get("case")
        original_id = case_doc.get("id") if isinstance(case_doc, dict) else None
        if not isinstance(original_id, str) or not original_id:
            raise ArchiveError(f"the manifest of {zip_path.name} names no case id; the archive is damaged")
        existing = {c.id for c in workspace.list_cases()}
        if original_id in existing and not as_copy:
            raise ArchiveError(
                f"a case with id {original_id} is already in the workspace; open the archive with --as-copy "
                "to add it under a new id"
            )
        workspace.prepare()
        remove_stale(workspace.cases_dir, IMPORT_STAGING_PREFIX)
        _check_sizes(members, listed, workspace.cases_dir)

        staging = workspace.cases_dir / staging_name(IMPORT_STAGING_PREFIX)
        restrict_folder(staging)
        try:
            for rel, expected in listed.items():
                _extract(zf, members[rel], staging, rel, expected, zip_path)
            for sub in ("evidence", "thumbs", "exports"):
                (staging / sub).mkdir(exist_ok=True)
            _check_database(staging / DB_NAME)
            opened = _adopt(workspace, staging, manifest, original_id, existing, as_copy, zip_path)
        except BaseException:
            remove_tree(staging)
            raise
    return opened


def _extract(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, staging: Path, rel: str, expected: str, zip_path: Path
) -> None:
    target = staging.joinpath(*PurePosixPath(rel).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:  # zipfile stops at the declared size; never rely on it alone
                    raise ArchiveError(f"{rel} in {zip_path.name} is larger than it declares; it is damaged")
                digest.update(chunk)
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error) as exc:
        raise ArchiveError(
            f"{rel} in {zip_path.name} cannot be unpacked ({exc}); the archive is damaged"
        ) from None
    if digest.hexdigest() != expected:
        raise ArchiveError(f"{rel} in {zip_path.name} does not match its manifest hash: it was altered")
    if rel.startswith("evidence/"):
        target.chmod(0o400)  # originals are read-only in a case


def _adopt(
    workspace: Workspace,
    staging: Path,
    manifest: dict[str, Any],
    original_id: str,
    existing: set[str],
    as_copy: bool,
    zip_path: Path,
) -> OpenedArchive:
    """Check the unpacked case in ``staging``, give it its id, anchor it, and move it into ``cases/``."""
    anchor: CaseAnchor | None = None
    case_id = original_id
    try:
        with CaseStore.open(staging) as store:
            head, sealed, seal = _check_sealed_head(store, manifest, original_id)
            # No anchor check here: this workspace's anchor (if any) is for a case of that id it
            # holds or held, not for this copy; the sealed head above plays its part.
            report = verify_report(store, anchored=False)
            problems = [p for p in report.problems if p not in manifest.get("problems", [])]
            if problems:
                raise ArchiveError(f"the archived case fails verification: {' '.join(problems[:5])}")
            archived_title = store.case.title
            title = clean_imported_title(archived_title)
            # An id that is not geodesk's shape (a path, "../..", an absolute name) never becomes a
            # folder name: the case gets a fresh id, as a copy would; the entry below keeps the original.
            if as_copy or not is_case_id(original_id):
                case_id = new_case_id()
                while case_id in existing or (workspace.cases_dir / case_id).exists():
                    case_id = new_case_id()
            if as_copy:
                title = f"{title[: MAX_TITLE - 7]} (copy)"
            archive_sha256 = sha256_file(zip_path)
            anchor = store.anchor
            if anchor is not None:
                # The case enters this workspace here: anchor it at the checked sealed head.
                anchor.start_from_archive(
                    case_id,
                    (head.seq, head.hash),
                    {
                        "archive": zip_path.name,
                        "archive_sha256": archive_sha256,
                        "sealed_by": sealed.get("key_id"),
                        "seal": seal,
                    },
                )
            with store.transaction():
                if case_id != original_id or title != archived_title:
                    store.db.execute("UPDATE case_info SET id = ?, title = ?", (case_id, title))
                details: dict[str, Any] = {
                    "id": case_id,
                    "title": title,
                    "archive": zip_path.name,
                    "archive_sha256": archive_sha256,
                    "original_id": original_id,
                    "sealed_head": sealed.get("hash"),
                    "seal": seal,
                }
                if clean_imported_title(archived_title) != archived_title:
                    details["original_title"] = archived_title
                store.audit.append("case.import", f"case:{case_id}", details)
            created_at = store.case.created_at
        # Renamed only once the database is closed: SQLite finds its WAL and SHM files by path.
        final = _inside_cases_dir(workspace, case_id)
        case = Case(id=case_id, title=title, path=str(final), created_at=created_at)
        write_json_atomic(staging / CASE_JSON, case_document(case))
        if final.exists():
            raise ArchiveError(f"{final} appeared while the archive was being opened; try again")
        staging.rename(final)
    except BaseException:
        if anchor is not None:
            anchor.forget(case_id)  # nothing of a failed open stays, its anchor included
            anchor.close()
        raise
    cleaned = archived_title if clean_imported_title(archived_title) != archived_title else None
    return OpenedArchive(case, original_id, list(manifest.get("problems", [])), seal, cleaned)


def _check_sealed_head(
    store: CaseStore, manifest: dict[str, Any], original_id: str
) -> tuple[AuditEntry, dict[str, Any], str]:
    """The archived chain must end at the sealed head; its seal is checked when this workspace made it.

    Returns the head, the manifest's sealed-head record and how far the seal could be checked.
    """
    if store.case.id != original_id:
        raise ArchiveError(
            f"the manifest names case {original_id!r} but the archived database is case {store.case.id!r}"
        )
    head = store.audit.head()
    sealed = manifest.get("audit_head")
    sealed = sealed if isinstance(sealed, dict) else {}
    if head is None or head.hash != sealed.get("hash") or head.seq != sealed.get("seq"):
        raise ArchiveError(
            "the archived audit log does not end at the head sealed in the manifest: the archive was altered"
        )
    seal = "unsigned"
    if store.anchor is not None and sealed.get("key_id") is not None:
        if sealed.get("key_id") != store.anchor.key.key_id:
            seal = "other workspace"
        elif store.anchor.key.checks(["seal", original_id, head.seq, head.hash], sealed.get("mac")):
            seal = "checked"
        else:
            raise ArchiveError(
                "the archive claims to be sealed by this workspace, but its seal does not check: "
                "the archive was altered after it was sealed"
            )
    return head, sealed, seal


def _inside_cases_dir(workspace: Workspace, case_id: str) -> Path:
    """The folder of ``case_id``, checked to be a direct child of the cases folder once resolved."""
    cases_dir = workspace.cases_dir.resolve()
    final = (cases_dir / case_id).resolve()
    if not is_case_id(case_id) or final.parent != cases_dir:
        raise ArchiveError(f"the case id {case_id!r} would leave the cases folder; refusing it")
    return final
