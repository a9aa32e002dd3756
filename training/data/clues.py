"""Clue Part (GaGA section IV-B): the country clue repository, the teacher's selection, human review.

1. ``resources/clues/clues.json`` holds geolocation facts per country written by hand, each with a
   stable id, a topic and a clue category of the prompt protocol (format: resources/clues/README.md);
   ``resources/clues/structured.json`` (``training.data.country_facts``) adds, for every country with
   places in GeoNames, the facts structured sources give (CLDR scripts and languages, calling codes,
   ccTLDs, currencies, time zones, hemisphere, driving side), each with its source. The loader merges
   them: a hand-written clue on a topic wins over the structured one.
2. For each image, a teacher (any engine ``Backend``) sees the image and its country's clue texts
   (``prompts.clue_rephrase_prompt``), keeps the ones it can see and rephrases them;
   ``parsing.parse_clue_selection`` reads its answer. The kept clues become a clue-mode training
   sample (``prompts.format_answer`` with clues, then the location) and an entry of a review queue.
3. People review the queue (JSONL, one entry per image, ``"status": "pending"``): they set ``status``
   to ``approved`` or ``rejected`` and may edit the rephrased texts or drop clues. ``accept_reviewed``
   then rebuilds the samples from approved entries only.

The build is resumable: every finished image is appended to ``OUT.trace.jsonl`` before the next one
starts, and a rerun skips the ids found there (teacher failures are retried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import parse_clue_selection
from training.data.common import (
    Checkpoint,
    DataError,
    Report,
    Sample,
    make_sample,
    read_jsonl,
    sha256_file,
    write_jsonl,
    write_manifest,
    write_samples,
)
from training.data.meta import sample_rng
from training.data.metadata import MetaRow, PlaceNamer, place_text
from training.data.teacher import ask_teacher, default_settings, run_rows, teacher_name

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend, GenerationSettings

PART = "clue"
FORMAT = "geodesk-clues/1"
DEFAULT_REPOSITORY = Path(__file__).resolve().parents[2] / "resources" / "clues" / "clues.json"
TOPICS = (
    "driving_side", "road_lines", "bollards", "script", "language", "signs", "plates", "domain", "poles",
    "infrastructure", "climate", "vegetation", "terrain", "architecture", "vehicles",
)
LINE_COLOURS = ("white", "yellow", None)
PLATE_COLOURS = ("white", "yellow", "blue", "black", "varies")
_ID = re.compile(r"^[a-z]{2}-[a-z0-9-]+$")

# Review queue statuses. "reviewed" is read as approved: reviewers write either.
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
REVIEW_STATUSES = {PENDING: PENDING, APPROVED: APPROVED, "reviewed": APPROVED, REJECTED: REJECTED}
# Trace statuses that end an image's processing (a rerun skips them); "failed" is retried.
FINAL = frozenset({"done", "no_selection", "no_clues"})


# --------------------------------------------------------------------------------------------------
# Repository
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CountryClue:
    id: str
    topic: str
    category: str
    text: str
    source: str = "geodesk hand-written"


@dataclass(frozen=True, slots=True)
class CountryEntry:
    code: str
    name: str
    facts: dict[str, Any]
    clues: tuple[CountryClue, ...]


@dataclass(frozen=True, slots=True)
class ClueRepository:
    path: Path
    sha256: str
    countries: dict[str, CountryEntry]
    structured_path: Path | None = None  # the merged structured-facts file, when one was merged

    def get(self, code: str | None) -> CountryEntry | None:
        return None if code is None else self.countries.get(code.upper())

    def clue(self, clue_id: str) -> CountryClue | None:
        entry = self.countries.get(clue_id[:2].upper())
        if entry is None:
            return None
        return next((c for c in entry.clues if c.id == clue_id), None)

    @property
    def clue_count(self) -> int:
        return sum(len(e.clues) for e in self.countries.values())


class ClueRepositoryError(DataError):
    """The repository file breaks its format; the message lists every problem found."""


def _check_facts(where: str, facts: Any, problems: list[str]) -> None:
    if not isinstance(facts, dict):
        problems.append(f"{where}: facts must be an object")
        return
    if facts.get("driving_side") not in ("left", "right"):
        problems.append(f"{where}: facts.driving_side must be 'left' or 'right'")
    for key in ("scripts", "languages"):
        value = facts.get(key)
        if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
            problems.append(f"{where}: facts.{key} must be a non-empty list of names")
    if not re.fullmatch(r"\.[a-z]{2}", str(facts.get("tld"))):
        problems.append(f"{where}: facts.tld must look like '.fr'")
    if not re.fullmatch(r"\+[0-9]{1,4}", str(facts.get("calling_code"))):
        problems.append(f"{where}: facts.calling_code must look like '+33'")
    for key in ("centre_line", "edge_line"):
        if key not in facts or facts[key] not in LINE_COLOURS:
            problems.append(f"{where}: facts.{key} must be 'white', 'yellow' or null")
    plates = facts.get("plates")
    if not isinstance(plates, dict):
        problems.append(f"{where}: facts.plates must be an object with front, rear, eu_band")
    else:
        if plates.get("front") not in (*PLATE_COLOURS, "none"):
            problems.append(f"{where}: facts.plates.front must be one of {', '.join(PLATE_COLOURS)}, none")
        if plates.get("rear") not in PLATE_COLOURS:
            problems.append(f"{where}: facts.plates.rear must be one of {', '.join(PLATE_COLOURS)}")
        if not isinstance(plates.get("eu_band"), bool):
            problems.append(f"{where}: facts.plates.eu_band must be true or false")
    known = {"driving_side", "scripts", "languages", "tld", "calling_code", "centre_line", "edge_line",
             "plates"}
    extra = sorted(set(facts) - known)
    if extra:
        problems.append(f"{where}: unknown facts {', '.join(extra)}")


def parse_clue_repository(document: Any, path: Path, sha256: str = "") -> ClueRepository:
    """Validate a parsed repository document; ClueRepositoryError lists every problem."""
    problems: list[str] = []
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ClueRepositoryError(f"{path}: not a clue repository (expected \"format\": \"{FORMAT}\")")
    raw_countries = document.get("countries")
    if not isinstance(raw_countries, list) or not raw_countries:
        raise ClueRepositoryError(f"{path}: \"countries\" must be a non-empty list")
    countries: dict[str, CountryEntry] = {}
    ids: set[str] = set()
    for n, raw in enumerate(raw_countries):
        if not isinstance(raw, dict):
            problems.append(f"countries[{n}]: must be an object")
            continue
        code = raw.get("code")
        where = f"countries[{n}] ({code})"
        if not (isinstance(code, str) and re.fullmatch(r"[A-Z]{2}", code)):
            problems.append(f"{where}: code must be an upper-case ISO 3166-1 alpha-2 code")
            continue
        if code in countries:
            problems.append(f"{where}: the country appears twice")
        name = raw.get("name")
        if not (isinstance(name, str) and name.strip()):
            problems.append(f"{where}: name is missing")
        extra = sorted(set(raw) - {"code", "name", "facts", "clues"})
        if extra:
            problems.append(f"{where}: unknown fields {', '.join(extra)}")
        _check_facts(where, raw.get("facts"), problems)
        clues: list[CountryClue] = []
        raw_clues = raw.get("clues")
        if not isinstance(raw_clues, list) or not raw_clues:
            problems.append(f"{where}: clues must be a non-empty list")
            raw_clues = []
        for k, item in enumerate(raw_clues):
            cw = f"{where} clue {k}"
            if not isinstance(item, dict):
                problems.append(f"{cw}: must be an object")
                continue
            clue_id, topic, category, text = (item.get(f) for f in ("id", "topic", "category", "text"))
            if not (isinstance(clue_id, str) and _ID.fullmatch(clue_id)):
                problems.append(f"{cw}: id {clue_id!r} must look like 'fr-driving-side'")
                continue
            cw = f"{where} clue {clue_id}"
            if not clue_id.startswith(code.lower() + "-"):
                problems.append(f"{cw}: the id must start with '{code.lower()}-'")
            if clue_id in ids:
                problems.append(f"{cw}: the id is used twice")
            ids.add(clue_id)
            if topic not in TOPICS:
                problems.append(f"{cw}: topic {topic!r} is not one of {', '.join(TOPICS)}")
            if category not in prompts.CLUE_CATEGORY_IDS:
                problems.append(f"{cw}: category {category!r} is not one of "
                                f"{', '.join(prompts.CLUE_CATEGORY_IDS)}")
            if not (isinstance(text, str) and 8 <= len(text.strip()) <= 300):
                problems.append(f"{cw}: text must be a sentence of 8 to 300 characters")
                continue
            extra = sorted(set(item) - {"id", "topic", "category", "text"})
            if extra:
                problems.append(f"{cw}: unknown fields {', '.join(extra)}")
            clues.append(CountryClue(clue_id, str(topic), str(category), text.strip()))
        facts = raw.get("facts") if isinstance(raw.get("facts"), dict) else {}
        side = facts.get("driving_side") if isinstance(facts, dict) else None
        side_clues = [c for c in clues if c.topic == "driving_side"]
        if not side_clues:
            problems.append(f"{where}: needs a driving_side clue")
        if not any(c.topic in ("script", "language") for c in clues):
            problems.append(f"{where}: needs a script or language clue")
        elif side in ("left", "right") and not all(side in c.text.lower() for c in side_clues):
            problems.append(f"{where}: the driving_side clue contradicts facts.driving_side = {side}")
        countries[code] = CountryEntry(code, str(name or code), dict(facts or {}), tuple(clues))
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise ClueRepositoryError(f"{path} has {len(problems)} problem(s):\n  {shown}{more}")
    return ClueRepository(path, sha256, countries)


STRUCTURED_TOPICS = frozenset({*TOPICS, "phone", "currency", "time_zone", "sun"})


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ClueRepositoryError(f"the {what} {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ClueRepositoryError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def merge_structured(repository: ClueRepository, document: Any, path: Path) -> ClueRepository:
    """The repository plus the structured facts of ``document`` (``geodesk-country-facts/1``).

    A country the hand-written file covers keeps its clues and gains the structured clues on topics
    it has no clue for; any other country gets the structured clues alone."""
    from training.data.country_facts import STRUCTURED_FORMAT

    if not isinstance(document, dict) or document.get("format") != STRUCTURED_FORMAT:
        raise ClueRepositoryError(f"{path}: not a structured-facts file (format {STRUCTURED_FORMAT})")
    countries = dict(repository.countries)
    problems: list[str] = []
    for raw in document.get("countries") or []:
        code = str(raw.get("code", ""))
        structured: list[CountryClue] = []
        for item in raw.get("clues") or []:
            clue = CountryClue(str(item.get("id")), str(item.get("topic")), str(item.get("category")),
                               str(item.get("text", "")).strip(), str(item.get("source") or ""))
            if (not _ID.fullmatch(clue.id) or not clue.id.startswith(code.lower() + "-")
                    or clue.topic not in STRUCTURED_TOPICS or not clue.source
                    or clue.category not in (*prompts.CLUE_CATEGORY_IDS, prompts.OTHER_CATEGORY)):
                problems.append(f"{code}: clue {clue.id!r} breaks the format (id, topic, category, source)")
                continue
            structured.append(clue)
        existing = countries.get(code)
        if existing is None:
            if structured:
                name = str(raw.get("name") or code)
                countries[code] = CountryEntry(code, name, dict(raw.get("facts") or {}), tuple(structured))
            continue
        covered = {c.topic for c in existing.clues}
        ids = {c.id for c in existing.clues}
        extra = tuple(c for c in structured if c.topic not in covered and c.id not in ids)
        countries[code] = CountryEntry(existing.code, existing.name, existing.facts, existing.clues + extra)
    if problems:
        raise ClueRepositoryError(f"{path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems[:50]))
    return ClueRepository(repository.path, repository.sha256, countries, path)


def load_clue_repository(
    path: Path | None = None, structured: Path | bool | None = True
) -> ClueRepository:
    """Read and validate the repository (default: resources/clues/clues.json), merged with the
    structured facts (``structured``: True for resources/clues/structured.json, a path, or False)."""
    from training.data.country_facts import DEFAULT_STRUCTURED

    path = Path(path) if path is not None else DEFAULT_REPOSITORY
    document = _read_json(path, "clue repository")
    repository = parse_clue_repository(document, path, sha256_file(path))
    if structured is False or structured is None:
        return repository
    facts_path = DEFAULT_STRUCTURED if structured is True else Path(structured)
    return merge_structured(repository, _read_json(facts_path, "structured-facts file"), facts_path)


# --------------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------------


def clue_reasoning(place: str) -> str:
    """The answer's reasoning line: the clues are listed just before it, the place follows it."""
    return f"Taken together, these clues point to {place}."


def clue_sample(
    sample_id: str,
    image: str,
    location: dict[str, Any],
    clues: Sequence[tuple[str, str]],
    seed: int,
) -> Sample:
    """A clue-mode sample: the protocol's clue-mode question, answer = verified clues + location."""
    question = prompts.first_turn(SessionMode.CLUES, rng=sample_rng(seed, PART, sample_id)).text
    place = place_text(location.get("city"), location.get("region"), location.get("country"))
    answer = prompts.format_answer(
        country=location.get("country"), region=location.get("region"), city=location.get("city"),
        lat=float(location["lat"]), lon=float(location["lon"]), clues=list(clues),
        reasoning=clue_reasoning(place),
    )
    return make_sample(sample_id, image, [(question, answer)])


def _location(row: MetaRow, country_name: str) -> dict[str, Any]:
    return {"country": country_name, "region": row.region, "city": row.city, "lat": row.lat, "lon": row.lon}


def queue_path(out: Path) -> Path:
    return out.with_name(out.name + ".review.jsonl")


def build_clues(
    metadata: Path,
    images: Path,
    out: Path,
    teacher: Backend,
    *,
    queue: Path | None = None,
    repository: ClueRepository | None = None,
    seed: int = 0,
    settings: GenerationSettings | None = None,
    namer: PlaceNamer | None = None,
    show_progress: bool = False,
) -> Report:
    """Ask the teacher to select and rephrase clues for every image; write samples, queue and manifest."""
    repository = repository or load_clue_repository()
    queue = queue or queue_path(out)
    settings = settings or default_settings(512, seed)
    namer = namer or PlaceNamer()
    report = Report(PART, out=out)
    checkpoint, order = run_rows(
        PART, metadata, images, out, report, FINAL,
        lambda row, sample_id, rel: _select_one(
            row, sample_id, rel, images, teacher, repository, namer, settings, seed
        ),
        show_progress=show_progress,
    )
    samples = checkpoint.samples(order)
    report.counts["samples"] = write_samples(out, samples)
    report.counts["queue_entries"] = _write_queue(queue, checkpoint, order)
    report.manifest = write_manifest(
        out, part=PART, seed=seed, counts=report.counts, outputs=[out, queue, checkpoint.path],
        sources={"metadata": metadata, "clue_repository": repository.path,
                 "country_facts": repository.structured_path}, image_root=images,
        extra={"teacher": teacher_name(teacher), "reviewed": False, "settings": settings.as_dict()},
    )
    report.extra["queue"] = str(queue)
    return report


def _select_one(
    row: MetaRow,
    sample_id: str,
    rel: str,
    images: Path,
    teacher: Backend,
    repository: ClueRepository,
    namer: PlaceNamer,
    settings: GenerationSettings,
    seed: int,
) -> dict[str, Any]:
    code, country_name = namer.country(row.country)
    record: dict[str, Any] = {"id": sample_id, "row": row.id, "image": rel, "country": code or row.country}
    entry = repository.get(code)
    if entry is None:
        return {**record, "status": "no_clues", "reason": f"the repository has no clues for {row.country}"}
    # Shuffle the offered list per sample: a teacher that favours the first items must not always
    # favour the same clue.
    offered = list(entry.clues)
    sample_rng(seed, "offer", sample_id).shuffle(offered)
    text = prompts.clue_rephrase_prompt(country_name, [c.text for c in offered])
    record["offered"] = [c.id for c in offered]
    try:
        answer = ask_teacher(teacher, images / rel, [text], settings)
    except DataError as exc:
        return {**record, "status": "failed", "reason": str(exc)}
    record["raw"] = answer
    selection = parse_clue_selection(answer, len(offered))
    rephrased = [
        {"clue_id": offered[s.index - 1].id, "category": offered[s.index - 1].category, "text": s.text}
        for s in selection
        if s.text
    ]
    record["selected"] = [r["clue_id"] for r in rephrased]
    record["rephrased"] = rephrased
    if not rephrased:
        return {**record, "status": "no_selection", "reason": "the teacher kept no clue"}
    location = _location(row, country_name)
    record["location"] = location
    record["sample"] = clue_sample(sample_id, rel, location, [(r["category"], r["text"]) for r in rephrased],
                                   seed)
    record["status"] = "done"
    return record


def _write_queue(queue: Path, checkpoint: Checkpoint, order: Sequence[str]) -> int:
    """Existing entries are kept exactly as people left them; new selections are appended as pending."""
    existing = read_jsonl(queue)
    known = {str(e.get("id")) for e in existing}
    entries = list(existing)
    for sample_id in order:
        record = checkpoint.records.get(sample_id)
        if record is None or record.get("status") != "done" or sample_id in known:
            continue
        known.add(sample_id)
        entries.append({
            "id": sample_id,
            "image": record["image"],
            "country": record["country"],
            "location": record["location"],
            "offered": record["offered"],
            "selected": record["selected"],
            "rephrased": record["rephrased"],
            "status": PENDING,
        })
    return write_jsonl(queue, entries)


# --------------------------------------------------------------------------------------------------
# Reviewed queue -> samples
# --------------------------------------------------------------------------------------------------


def _reviewed_clues(
    entry: dict[str, Any], repository: ClueRepository
) -> tuple[list[tuple[str, str]], str | None]:
    """(category, text) of an approved entry's clues, or an error sentence."""
    offered = entry.get("offered")
    rephrased = entry.get("rephrased")
    if not isinstance(offered, list) or not isinstance(rephrased, list):
        return [], "the entry needs 'offered' and 'rephrased' lists"
    clues: list[tuple[str, str]] = []
    for item in rephrased:
        if not isinstance(item, dict):
            return [], "each 'rephrased' item must be an object with clue_id, category and text"
        clue_id = item.get("clue_id")
        text = item.get("text")
        if clue_id not in offered:
            return [], f"clue {clue_id!r} was not offered for this image"
        if not (isinstance(text, str) and text.strip()):
            return [], f"clue {clue_id} has no text"
        known = repository.clue(str(clue_id))
        category = known.category if known else prompts.clue_category_id(str(item.get("category", "")))
        clues.append((category, text.strip()))
    if not clues:
        return [], "approved with no clue left; reject it instead"
    return clues, None


def accept_reviewed(
    queue: Path,
    out: Path,
    *,
    repository: ClueRepository | None = None,
    seed: int = 0,
    images: Path | None = None,
) -> Report:
    """Samples from the approved entries of an edited review queue (pending and rejected are left out)."""
    repository = repository or load_clue_repository()
    if not queue.is_file():
        raise DataError(f"the review queue {queue} does not exist")
    report = Report(PART, out=out)
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(queue.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{queue}, line {number}: not JSON ({exc.msg}); fix the line and rerun") from None
        status = entry.get("status") if isinstance(entry, dict) else None
        if status not in REVIEW_STATUSES:
            raise DataError(
                f"{queue}, line {number}: status {status!r} is not one of "
                f"{', '.join(REVIEW_STATUSES)}; set it to approved or rejected"
            )
        entry["_line"] = number
        entries.append(entry)
    statuses = [REVIEW_STATUSES[e["status"]] for e in entries]
    for status in (PENDING, APPROVED, REJECTED):
        report.counts[status] = statuses.count(status)
    if entries and all(s == PENDING for s in statuses):
        raise DataError(
            f"nobody has reviewed {queue} yet: every entry is pending. Set \"status\" to \"approved\" or "
            "\"rejected\" (and edit the rephrased texts where needed), then rerun --accept-reviewed"
        )
    samples: list[Sample] = []
    for entry, status in zip(entries, statuses, strict=True):
        if status != APPROVED:
            continue
        sample_id = str(entry.get("id") or f"line {entry['_line']}")
        clues, error = _reviewed_clues(entry, repository)
        location = entry.get("location")
        if error is None and not (isinstance(location, dict) and "lat" in location and "lon" in location):
            error = "the entry has no location"
        if error is None and not isinstance(entry.get("image"), str):
            error = "the entry has no image"
        if error is not None:
            report.problem(sample_id, f"{queue.name} line {entry['_line']}: {error}", "invalid_entries")
            continue
        assert isinstance(location, dict)
        samples.append(clue_sample(sample_id, str(entry["image"]), location, clues, seed))
    report.counts["samples"] = write_samples(out, samples)
    report.manifest = write_manifest(
        out, part=PART, seed=seed, counts=report.counts, outputs=[out],
        sources={"review_queue": queue, "clue_repository": repository.path,
                 "country_facts": repository.structured_path}, image_root=images,
        extra={"reviewed": True},
    )
    return report
