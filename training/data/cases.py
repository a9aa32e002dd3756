"""Closed cases: a site's confirmed findings, with their verified clues and hint dialogs, as training data.

For every evidence item whose current finding is ``confirmed``:

- one dialog per session on it (replays excluded: they repeat another session's user turns). The
  human turns are the session's user messages exactly as sent (same protocol as inference); the
  assistant turns are the model's recorded answers, except that
  - in a clue-mode session the first answer's clue list is replaced by the analyst's verdict: the
    accepted clues and the edited ones with their new text (rejected and unjudged ones dropped), and
  - the last answer is the confirmed finding: its point, with country / region / city from the
    gazetteer's reverse geocoding of that point (and the verified clues in clue mode).
  Hint turns that asked for a region crop as a second image lose that sentence: a sample has one image.
- without any session, one direct (or clue-mode, when verified clues exist) question and the
  confirmed answer.

The intermediate answers are kept as the model gave them, because the analyst's next hint answers
them; a recipe that should not learn from them masks all but the last assistant turn (ADR 0010).
Images are copied into ``IMAGE_ROOT/<sha[:2]>/<sha><ext>`` (content-addressed, so a rerun copies
nothing new).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from geodesk.domain import ClueStatus, FindingStatus, SessionMode, TurnStatus
from geodesk.engine import prompts
from training.data.common import DataError, Report, Sample, make_sample, write_manifest, write_samples
from training.data.meta import sample_rng
from training.data.metadata import PlaceNamer

if TYPE_CHECKING:
    from geodesk.domain import Finding, Session, Turn
    from geodesk.store import CaseStore, Workspace

PART = "case"


def _verified_clues(store: CaseStore, sha: str) -> list[tuple[str, str]]:
    return [
        (c.category, c.text)
        for c in store.clues.list(evidence_sha256=sha)
        if c.status in (ClueStatus.ACCEPTED, ClueStatus.EDITED) and c.text.strip()
    ]


def _without_crops(text: str) -> str:
    """A hint turn's text with the region-crop image sentence removed (one image per sample)."""
    return text.replace(" " + prompts.REGION_CROP_SENTENCE, "").replace(prompts.REGION_CROP_SENTENCE, "")


def _confirmed_answer(
    finding: Finding, names: tuple[str | None, str | None, str | None], clues: list[tuple[str, str]] | None
) -> str:
    country, region, city = names
    return prompts.format_answer(
        country=country, region=region, city=city, lat=finding.lat, lon=finding.lon, clues=clues,
        reasoning=finding.reasoning.strip() or None,
    )


def _session_dialog(
    session: Session,
    turns: list[Turn],
    finding: Finding,
    names: tuple[str | None, str | None, str | None],
    verified: list[tuple[str, str]],
) -> list[tuple[str, str]]:
    clue_mode = session.mode is SessionMode.CLUES
    exchanges: list[tuple[str, str]] = []
    last = len(turns) - 1
    for i, turn in enumerate(turns):
        human = turn.prompt if i == 0 else _without_crops(turn.prompt)
        if i == last:
            gpt = _confirmed_answer(finding, names, verified if clue_mode else None)
        elif i == 0 and clue_mode:
            p = turn.prediction
            gpt = prompts.format_answer(country=p.country, region=p.region, city=p.city, lat=p.lat, lon=p.lon,
                                        clues=verified, reasoning=p.reasoning)
        else:
            gpt = turn.raw_answer
        exchanges.append((human, gpt))
    return exchanges


def case_samples(
    store: CaseStore, image_root: Path, namer: PlaceNamer, report: Report, seed: int = 0
) -> list[Sample]:
    """The samples of one open case; copies the images it uses into ``image_root``."""
    case_id = store.case.id
    samples: list[Sample] = []
    for evidence in store.evidence.list():
        report.count("evidence")
        finding = store.findings.current(evidence.sha256)
        if finding is None or finding.status is not FindingStatus.CONFIRMED:
            continue
        report.count("confirmed")
        item = f"{case_id}/{evidence.sha256[:12]}"
        try:
            source = store.evidence_file(evidence.sha256)
        except LookupError as exc:
            report.problem(item, str(exc), "missing_images")
            continue
        rel = f"{evidence.sha256[:2]}/{evidence.sha256}{source.suffix.lower()}"
        target = image_root / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
        _, country, region, city = namer.reverse(finding.lat, finding.lon)
        names = (country, region, city)
        verified = _verified_clues(store, evidence.sha256)
        sessions = [s for s in store.sessions.list(evidence_sha256=evidence.sha256) if s.replay_of is None]
        made = 0
        for session in sessions:
            assert session.id is not None
            turns = [t for t in store.turns.list(session.id) if t.status is TurnStatus.DONE]
            if not turns or not turns[0].prompt.startswith(prompts.IMAGE_PLACEHOLDER):
                continue
            exchanges = _session_dialog(session, turns, finding, names, verified)
            sample_id = f"{PART}-{case_id}-{evidence.sha256[:16]}-s{session.id}"
            samples.append(make_sample(sample_id, rel, exchanges))
            made += 1
        if made == 0:
            mode = SessionMode.CLUES if verified else SessionMode.DIRECT
            sample_id = f"{PART}-{case_id}-{evidence.sha256[:16]}"
            question = prompts.first_turn(mode, rng=sample_rng(seed, PART, sample_id)).text
            answer = _confirmed_answer(finding, names, verified if verified else None)
            samples.append(make_sample(sample_id, rel, [(question, answer)]))
            made = 1
        report.count("samples_from_sessions" if sessions else "samples_without_session", made)
    return samples


def build_cases(
    workspace: Workspace,
    out: Path,
    *,
    cases: list[str] | None = None,
    image_root: Path | None = None,
    seed: int = 0,
    namer: PlaceNamer | None = None,
) -> Report:
    """Export confirmed findings of the workspace's cases (all, or those named) as training dialogs."""
    image_root = image_root or out.with_name(out.stem + "-images")
    namer = namer or PlaceNamer()
    report = Report(PART, out=out)
    try:
        chosen = [workspace.resolve_case(ref) for ref in cases] if cases else workspace.list_cases()
    except LookupError as exc:
        raise DataError(str(exc)) from None
    if not chosen:
        raise DataError(f"the workspace {workspace.path} has no cases; pass --workspace to pick another")
    samples: list[Sample] = []
    for case in chosen:
        report.count("cases")
        with workspace.open_case(case) as store:
            samples.extend(case_samples(store, image_root, namer, report, seed))
    report.counts["samples"] = write_samples(out, samples)
    report.manifest = write_manifest(
        out, part=PART, seed=seed, counts=report.counts, outputs=[out], sources={}, image_root=image_root,
        extra={"workspace": str(workspace.path), "cases": [c.id for c in chosen]},
    )
    report.extra["image_root"] = str(image_root)
    return report
