"""Evidence import: hashing, format checks, EXIF/XMP metadata, thumbnails and the import pipeline.

Qt-free. The use case that opens a case and looks up places is :mod:`geodesk.services.importing`;
docs/adr/0004-evidence-import.md records the decisions.
"""

from geodesk.evidence.formats import EvidenceError
from geodesk.evidence.metadata import ImageMetadata, read_metadata
from geodesk.evidence.pipeline import (
    Duplicate,
    FileError,
    ImportOptions,
    ImportReport,
    SourceFile,
    collect_sources,
    run_import,
)

__all__ = [
    "Duplicate",
    "EvidenceError",
    "FileError",
    "ImageMetadata",
    "ImportOptions",
    "ImportReport",
    "SourceFile",
    "collect_sources",
    "read_metadata",
    "run_import",
]
