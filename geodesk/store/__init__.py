"""The case store: workspace and case folders, SQLite (sqlite-utils), migrations, repositories, audit chain.

See docs/adr/0002-case-store.md. Qt-free; others use these names::

    ws = Workspace(path); case = ws.create_case("Harbour photos")
    with ws.open_case(case.id) as store:
        with store.transaction():
            store.evidence.add(evidence)

The names load on first use (PEP 562): sqlite-utils imports pandas (about 0.45 s), and the desktop
app resolves its workspace (:func:`geodesk.store.locations.workspace_path`) before it needs a case.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geodesk.store.audit import GENESIS_HASH, AuditLog
    from geodesk.store.case_store import CaseStore
    from geodesk.store.errors import (
        AlreadyExistsError,
        MigrationError,
        NewerSchemaError,
        NotACaseError,
        SettingsError,
        StoreError,
    )
    from geodesk.store.locations import workspace_path
    from geodesk.store.repositories import (
        ClueRepository,
        EvidenceRepository,
        FindingRepository,
        SessionRepository,
        TurnRepository,
    )
    from geodesk.store.settings import Settings
    from geodesk.store.workspace import Workspace

_WHERE = {
    "GENESIS_HASH": "audit",
    "AuditLog": "audit",
    "CaseStore": "case_store",
    "AlreadyExistsError": "errors",
    "MigrationError": "errors",
    "NewerSchemaError": "errors",
    "NotACaseError": "errors",
    "SettingsError": "errors",
    "StoreError": "errors",
    "workspace_path": "locations",
    "ClueRepository": "repositories",
    "EvidenceRepository": "repositories",
    "FindingRepository": "repositories",
    "SessionRepository": "repositories",
    "TurnRepository": "repositories",
    "Settings": "settings",
    "Workspace": "workspace",
}

__all__ = [
    "GENESIS_HASH",
    "AlreadyExistsError",
    "AuditLog",
    "CaseStore",
    "ClueRepository",
    "EvidenceRepository",
    "FindingRepository",
    "MigrationError",
    "NewerSchemaError",
    "NotACaseError",
    "SessionRepository",
    "Settings",
    "SettingsError",
    "StoreError",
    "TurnRepository",
    "Workspace",
    "workspace_path",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'geodesk.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"geodesk.store.{module}"), name)
    globals()[name] = value
    return value
