"""Clues an analyst adds, edits, accepts and rejects: the rules, one place for the CLI and the app.

A clue is a geographic observation about one evidence item (category + text, optional image region).
The model, the metadata or the analyst proposes it; the analyst accepts, rejects or edits it. The rules
live here, not in a view: a clue needs a category and text, an edit needs text (an empty edit would
erase the observation; reject the clue instead), and every change is a store write with its audit entry.
"""

from __future__ import annotations

from geodesk.domain.model import Clue, ClueSource, ClueStatus, Region
from geodesk.store import CaseStore

MAX_CLUE_TEXT = 2000


class ClueError(ValueError):
    """A clue change the rules refuse; the message says what to do instead."""


def _clean_text(text: str, what: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ClueError(f"{what} needs text: write what you see (or reject the clue instead)")
    if len(cleaned) > MAX_CLUE_TEXT:
        raise ClueError(f"{what} is {len(cleaned)} characters; keep it under {MAX_CLUE_TEXT}")
    return cleaned


def list_clues(store: CaseStore, evidence_ref: str | None = None) -> list[Clue]:
    """The clues of one evidence item (hash or unique prefix), or of the whole case."""
    if evidence_ref is None:
        return store.clues.list()
    return store.clues.list(evidence_sha256=store.evidence.get(evidence_ref).sha256)


def add_clue(
    store: CaseStore, evidence_ref: str, category: str, text: str, region: Region | None = None
) -> Clue:
    """An analyst's own clue: accepted as it is written (the analyst is its source)."""
    evidence = store.evidence.get(evidence_ref)
    category = " ".join(category.split()).lower()
    if not category:
        raise ClueError("a clue needs a category (e.g. sign, vegetation, architecture, road, other)")
    clue = Clue(
        None,
        evidence.sha256,
        category,
        _clean_text(text, "a clue"),
        ClueSource.ANALYST,
        ClueStatus.ACCEPTED,
        region=region,
    )
    return store.clues.add(clue)


def set_clue_status(store: CaseStore, clue_id: int, status: ClueStatus | str) -> Clue:
    """Accept, reject or put back to proposed; an edit goes through :func:`edit_clue` (it needs text)."""
    wanted = ClueStatus(status)
    if wanted is ClueStatus.EDITED:
        raise ClueError("an edit needs the new text: use edit (geodesk clue edit CASE ID TEXT)")
    return store.clues.update_status(clue_id, wanted)


def accept_clue(store: CaseStore, clue_id: int) -> Clue:
    return set_clue_status(store, clue_id, ClueStatus.ACCEPTED)


def reject_clue(store: CaseStore, clue_id: int) -> Clue:
    return set_clue_status(store, clue_id, ClueStatus.REJECTED)


def edit_clue(store: CaseStore, clue_id: int, text: str) -> Clue:
    """The analyst's wording replaces the clue's text; the status becomes edited (the old text is audited)."""
    return store.clues.update_status(clue_id, ClueStatus.EDITED, text=_clean_text(text, "an edit"))


def clue_document(clue: Clue) -> dict[str, object]:
    region = clue.region
    return {
        "id": clue.id,
        "evidence": clue.evidence_sha256,
        "category": clue.category,
        "text": clue.text,
        "source": clue.source.value,
        "status": clue.status.value,
        "region": None if region is None else [region.x0, region.y0, region.x1, region.y1],
        "turn_id": clue.turn_id,
        "updated_at": None if clue.updated_at is None else clue.updated_at.isoformat(),
    }
