"""The workspace: a folder of cases plus settings and the model registry.

::

    <workspace>/
      settings.json      typed, versioned settings (geodesk.store.settings)
      cases/<case id>/   one self-contained case folder each (geodesk.store.case_store)
      models/            installed model packages (the registry owns this folder)

Case ids look like ``c20260509-k3x9q2``: ``c``, the UTC creation date, and six random base-32
characters, so they sort by creation day, stay short enough to type, and never collide in practice
(30 random bits per day; creation also refuses an existing folder). Cases are addressed by id or by a
unique prefix of their title (or of their id).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import unicodedata
from pathlib import Path

from geodesk.domain import Case
from geodesk.store._codec import from_text, now_utc
from geodesk.store.anchor import ensure_key, restrict_folder
from geodesk.store.case_store import CASE_JSON, CaseStore
from geodesk.store.errors import StoreError
from geodesk.store.locations import workspace_path
from geodesk.store.settings import Settings, load_settings, save_settings

__all__ = ["Workspace", "new_case_id", "read_case_json", "workspace_path"]

log = logging.getLogger(__name__)

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base 32: no i, l, o, u
MAX_TITLE = 200
# What new_case_id() makes. A case id becomes a folder name, so anything else (an archive's
# "../../.ssh", an absolute path) must never reach the file system as one.
CASE_ID_PATTERN = re.compile(rf"c[0-9]{{8}}-[{_ID_ALPHABET}]{{6}}")


def new_case_id() -> str:
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
    return f"c{now_utc():%Y%m%d}-{suffix}"


def is_case_id(text: object) -> bool:
    """Whether ``text`` has the shape of a geodesk case id (and so is safe as a folder name)."""
    return isinstance(text, str) and CASE_ID_PATTERN.fullmatch(text) is not None


def check_title(title: str) -> str:
    """A case title: one line of visible text, at most :data:`MAX_TITLE` characters."""
    cleaned = title.strip()
    if not cleaned:
        raise ValueError("a case needs a title: give a few words that say what the case is about")
    if len(cleaned) > MAX_TITLE:
        raise ValueError(f"a case title has at most {MAX_TITLE} characters; this one has {len(cleaned)}")
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise ValueError("a case title must be one line without control characters")
    return cleaned


def read_case_json(case_dir: Path) -> Case:
    """The case a folder describes through its ``case.json``."""
    try:
        raw = json.loads((case_dir / CASE_JSON).read_text(encoding="utf-8"))
        created = from_text(raw["created_at"])
        if created is None:
            raise ValueError("created_at is null")
        return Case(id=str(raw["id"]), title=str(raw["title"]), path=str(case_dir), created_at=created)
    except FileNotFoundError:
        raise StoreError(f"{case_dir} has no {CASE_JSON}: it is not a geodesk case folder") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{case_dir / CASE_JSON} is damaged ({exc}); the case cannot be listed") from None


class Workspace:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"the workspace {self.path} is a file, not a folder; choose another --workspace")

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @property
    def cases_dir(self) -> Path:
        return self.path / "cases"

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    @property
    def settings_path(self) -> Path:
        return self.path / "settings.json"

    def load_settings(self) -> Settings:
        return load_settings(self.settings_path)

    def save_settings(self, settings: Settings) -> None:
        save_settings(self.settings_path, settings)

    # ----------------------------------------------------------------------------------- cases

    def create_case(self, title: str) -> Case:
        """Create a case folder with its migrated database; the folder appears complete or not at all."""
        title = check_title(title)
        self.prepare()
        for _ in range(20):
            case_id = new_case_id()
            final = self.cases_dir / case_id
            if not final.exists():
                break
        else:  # pragma: no cover - 20 collisions in 2**30 do not happen
            raise StoreError("could not find a free case id; try again")
        # Build under a hidden name, then rename: an interrupted create never leaves a half case.
        staging = self.cases_dir / f".new-{case_id}-{secrets.token_hex(4)}"
        try:
            with CaseStore.create(staging, case_id, title) as store:
                created_at = store.case.created_at
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Case(id=case_id, title=title, path=str(final), created_at=created_at)

    def list_cases(self) -> list[Case]:
        """The cases in this workspace by id (oldest first); unreadable case folders are skipped (logged)."""
        if not self.cases_dir.is_dir():
            return []
        cases = []
        for folder in sorted(self.cases_dir.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                cases.append(read_case_json(folder))
            except StoreError as exc:
                log.warning("%s", exc)
        return cases

    def resolve_case(self, ref: str) -> Case:
        """The case whose id is ``ref``, else the one whose title (or id) starts with ``ref``.

        Raises LookupError naming the candidates when nothing or more than one case matches.
        """
        needle = ref.strip()
        if not needle:
            raise LookupError("give a case id or the start of its title")
        cases = self.list_cases()
        for case in cases:
            if case.id == needle:
                return case
        folded = needle.casefold()
        matches = [c for c in cases if c.title.casefold().startswith(folded) or c.id.startswith(needle)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            exact = [c for c in matches if c.title.casefold() == folded]
            if len(exact) == 1:
                return exact[0]
            listed = "; ".join(f"{c.id} ({c.title})" for c in matches[:10])
            more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise LookupError(f"{ref!r} matches several cases: {listed}{more}. Use the case id")
        if not cases:
            raise LookupError(
                f"no case matches {ref!r}: the workspace {self.path} has no cases yet; "
                "create one with `geodesk case new TITLE`"
            )
        listed = "; ".join(f"{c.id} ({c.title})" for c in cases[:10])
        more = f" and {len(cases) - 10} more" if len(cases) > 10 else ""
        raise LookupError(f"no case matches {ref!r}; the cases are: {listed}{more}")

    def open_case(self, case_or_ref: Case | str) -> CaseStore:
        case = self.resolve_case(case_or_ref) if isinstance(case_or_ref, str) else case_or_ref
        try:
            self.prepare()
        except OSError as exc:  # a read-only workspace still opens its cases, unanchored
            log.warning("cannot prepare the workspace %s for audit anchors: %s", self.path, exc)
        return CaseStore.open(Path(case.path))

    def prepare(self) -> None:
        """Make the cases folder owner-only and the audit key exist (docs/adr/0016), before a case is
        created, opened or imported: from then on every write to its cases is anchored."""
        restrict_folder(self.cases_dir)
        ensure_key(self.path)
