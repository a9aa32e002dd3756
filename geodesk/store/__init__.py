"""The case store: workspace and case folders, SQLite (sqlite-utils), migrations, repositories, audit chain.

See docs/adr/0002-case-store.md. Qt-free; others use these names::

    ws = Workspace(path); case = ws.create_case("Harbour photos")
    with ws.open_case(case.id) as store:
        with store.transaction():
            store.evidence.add(evidence)
"""

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
from geodesk.store.repositories import (
    ClueRepository,
    EvidenceRepository,
    FindingRepository,
    SessionRepository,
    TurnRepository,
)
from geodesk.store.settings import Settings
from geodesk.store.workspace import Workspace

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
]
