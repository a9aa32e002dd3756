"""Dialog Part (GaGA section IV-C): CoT Deduction, and CoT Introspection when the deduction is wrong.

Per image, through any teacher backend:

1. Deduction. The teacher gets the image and ``prompts.cot_deduction_prompt(rounds)``: it plays
   questioner and player for ``rounds`` question-answer rounds, then a final round that commits to
   coordinates (JSON ``{"lat", "lon"}`` at the end of the last answer).
2. Decision rule (the paper's, exactly): d = haversine distance (R = 6371 km) between the deduced
   point and the true one. Introspect iff d > 25 km. A deduction without readable coordinates also
   introspects (there is nothing to keep: the paper's rule presumes a point; ADR 0010).
3. Introspection. The teacher is told its prediction is incorrect and given the true coordinates
   and place (``prompts.cot_introspection_prompt``), in the same conversation; it rewrites the
   answers. The revised answers replace the deduced ones; the questions stay the deduction's (the
   paper keeps the question setup fixed so the revision slots in).

A sample is a multi-turn conversation ``<image>\\nQ1 -> A1, Q2 -> A2, ..., Q(n+1) -> A(n+1)``. Samples
whose final answer is still more than 25 km off (or has no coordinates) are not written: the point
of introspection is a correct reasoning chain.

Beyond the paper (``hint_turns``, default 2; 0 writes the paper's part alone): for every written
chain a second sample, ``<id>-hints``, in the app's session format (``training.data.hint_turns``):
the direct-mode first turn answered with the teacher's deduced point (named by reverse geocoding),
then hint turns (correction, exclusion, prior, +Q / +QA from the chain's own rounds) each answered
with the true location. It is how a model trained on real data learns the follow-up turn the app
sends. Every image's path (deduction / introspection), the
distances and the raw teacher answers go to ``OUT.trace.jsonl``, which is also the resume checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.domain import HintKind
from geodesk.engine import prompts
from geodesk.engine.parsing import parse_answer
from geodesk.geo.distance import haversine_km
from training.data.common import (
    DataError,
    Report,
    Sample,
    first_human,
    make_sample,
    write_manifest,
    write_samples,
)
from training.data.hint_turns import HINT_KINDS, Location, hint_dialog, plan_hints
from training.data.meta import sample_rng
from training.data.metadata import MetaRow, PlaceNamer, place_text
from training.data.teacher import ask_teacher, default_settings, run_rows, teacher_name

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend, GenerationSettings

PART = "dialog"
INTROSPECTION_KM = 25.0
DEDUCTION, INTROSPECTION = "deduction", "introspection"
FINAL = frozenset({"done", "rejected"})

# "Q1:", "**A2.**", "Q3)", "- A4 -": a round label at the start of a line or after a sentence.
_LABEL = re.compile(r"(?:^|(?<=[\s>*_#(\[]))[*_]*(?P<kind>[QA])\s?(?P<n>[1-9])[*_]*\s*[:：.)\]-]", re.M)


def needs_introspection(distance_km: float | None) -> bool:
    """The decision criterion: introspect iff d > 25 km (strict), or when there is no deduced point."""
    return distance_km is None or distance_km > INTROSPECTION_KM


@dataclass(frozen=True, slots=True)
class Rounds:
    """Parsed rounds: ``questions[i]`` / ``answers[i]`` for round i+1 (None where a label is missing)."""

    questions: tuple[str | None, ...]
    answers: tuple[str | None, ...]

    def complete_answers(self) -> bool:
        return all(a for a in self.answers)

    def complete_questions(self) -> bool:
        return all(q for q in self.questions)


def parse_rounds(text: str, count: int) -> Rounds:
    """Split a teacher answer into Q1..Qcount / A1..Acount by their labels (first occurrence wins)."""
    labels = [m for m in _LABEL.finditer(text) if 1 <= int(m.group("n")) <= count]
    questions: list[str | None] = [None] * count
    answers: list[str | None] = [None] * count
    for i, m in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        # A bullet or markdown marker before the next label belongs to that label, not to this body.
        body = text[m.end():end].rstrip().rstrip("-*•#>_ \t\n").strip().strip("*_").strip()
        slot = questions if m.group("kind") == "Q" else answers
        n = int(m.group("n")) - 1
        if slot[n] is None and body:
            slot[n] = body
    return Rounds(tuple(questions), tuple(answers))


def deduced_point(text: str) -> tuple[float, float] | None:
    """The coordinates the teacher committed to (its last complete JSON answer), when readable."""
    prediction = parse_answer(text).prediction
    if prediction.lat is None or prediction.lon is None:
        return None
    return prediction.lat, prediction.lon


def distance_to(point: tuple[float, float] | None, lat: float, lon: float) -> float | None:
    return None if point is None else haversine_km(point[0], point[1], lat, lon)


def dialog_sample(sample_id: str, image: str, questions: list[str], answers: list[str]) -> Sample:
    pairs = zip(questions, answers, strict=True)
    turns = [(first_human(q) if i == 0 else q, a) for i, (q, a) in enumerate(pairs)]
    return make_sample(sample_id, image, turns)


def hint_sample(
    record: dict[str, Any], namer: PlaceNamer, seed: int, turns: int, kinds: tuple[HintKind, ...] = HINT_KINDS
) -> Sample | None:
    """The hint-turn sample of a finished chain (None when its trace has no deduced point or place)."""
    place, sample = record.get("place"), record.get("sample")
    point = deduced_point(str(record.get("deduction", "")))
    if point is None or not isinstance(place, list) or not isinstance(sample, dict):
        return None
    lat, lon = (float(v) for v in record["truth"])
    truth = Location(place[0], place[1], place[2], lat, lon)
    _, country, region, city = namer.reverse(*point)
    first = Location(country, region, city, *point)
    values = [str(turn["value"]) for turn in sample["conversations"]]
    questions = [v.removeprefix(f"{prompts.IMAGE_PLACEHOLDER}\n") for v in values[0::2]]
    rounds = list(zip(questions[:-1], values[1::2][:-1], strict=True))  # without the coordinates round
    sample_id = f"{record['id']}-hints"
    rng = sample_rng(seed, PART, sample_id)
    steps = plan_hints(truth, first, rounds, rng, turns=turns, kinds=kinds)
    if not steps:
        return None
    return make_sample(sample_id, str(record["image"]), hint_dialog(first, steps, rng=rng))


def run_dialog(
    row: MetaRow,
    sample_id: str,
    image: str,
    image_path: Path,
    teacher: Backend,
    settings: GenerationSettings,
    place: str,
    rounds: int = 3,
    names: tuple[str | None, str | None, str | None] | None = None,
) -> dict[str, Any]:
    """Deduce, decide, maybe introspect, for one image; returns the trace record (with its sample).

    ``names``: the row's (country, region, city) as the answer JSON writes them, kept in the record
    for the hint-turn sample."""
    count = rounds + 1
    record: dict[str, Any] = {"id": sample_id, "row": row.id, "image": image, "truth": [row.lat, row.lon],
                              "place": list(names) if names else None}
    deduction_prompt = prompts.cot_deduction_prompt(rounds)
    try:
        deduction = ask_teacher(teacher, image_path, [deduction_prompt], settings)
    except DataError as exc:
        return {**record, "status": "failed", "path": None, "reason": str(exc)}
    record["deduction"] = deduction
    deduced = distance_to(deduced_point(deduction), row.lat, row.lon)
    record["deduced_km"] = deduced
    parsed = parse_rounds(deduction, count)
    if not needs_introspection(deduced):
        record["path"] = DEDUCTION
        if not (parsed.complete_questions() and parsed.complete_answers()):
            return {**record, "status": "rejected",
                    "reason": f"the deduction does not have all of Q1..Q{count} and A1..A{count}"}
        final_km = deduced
        questions = [q for q in parsed.questions if q]
        answers = [a for a in parsed.answers if a]
    else:
        record["path"] = INTROSPECTION
        correction = prompts.cot_introspection_prompt(row.lat, row.lon, place or None, rounds=rounds)
        try:
            revision = ask_teacher(teacher, image_path, [deduction_prompt, deduction, correction], settings)
        except DataError as exc:
            return {**record, "status": "failed", "reason": str(exc)}
        record["revision"] = revision
        revised = parse_rounds(revision, count)
        # The deduction's questions stay; the revision may repeat them (it is asked to) or not.
        question_source = parsed if parsed.complete_questions() else revised
        if not question_source.complete_questions():
            return {**record, "status": "rejected", "reason": f"no complete set of questions Q1..Q{count}"}
        if not revised.complete_answers():
            return {**record, "status": "rejected",
                    "reason": f"the revision does not have all of A1..A{count}"}
        questions = [q for q in question_source.questions if q]
        answers = [a for a in revised.answers if a]
        final_km = distance_to(deduced_point(answers[-1]), row.lat, row.lon)
        record["revised_km"] = final_km
        if needs_introspection(final_km):
            return {**record, "status": "rejected",
                    "reason": "after introspection the final answer is still more than 25 km off or has "
                              "no coordinates"}
    record["final_km"] = final_km
    record["sample"] = dialog_sample(sample_id, image, questions, answers)
    record["status"] = "done"
    return record


def build_dialog(
    metadata: Path,
    images: Path,
    out: Path,
    teacher: Backend,
    *,
    rounds: int = 3,
    seed: int = 0,
    settings: GenerationSettings | None = None,
    namer: PlaceNamer | None = None,
    show_progress: bool = False,
    hint_turns: int = 2,
    hint_kinds: tuple[HintKind, ...] = HINT_KINDS,
) -> Report:
    """CoT Deduction / Introspection for every row with an image; resumable through OUT.trace.jsonl.

    ``hint_turns``: follow-up turns per hint-turn sample (0: no hint-turn samples, the paper's part)."""
    if rounds < 1:
        raise DataError("the dialog needs at least one question-answer round before the coordinates")
    if hint_turns < 0:
        raise DataError("--hint-turns must be 0 (no hint-turn samples) or more")
    settings = settings or default_settings(1024, seed)
    namer = namer or PlaceNamer()
    report = Report(PART, out=out)

    def deduce(row: MetaRow, sample_id: str, rel: str) -> dict[str, Any]:
        _, country = namer.country(row.country)
        return run_dialog(row, sample_id, rel, images / rel, teacher, settings,
                          place_text(row.city, row.region, country), rounds, (country, row.region, row.city))

    checkpoint, order = run_rows(
        PART, metadata, images, out, report, FINAL, deduce, show_progress=show_progress
    )
    for record in checkpoint.records.values():
        if record.get("status") == "done":
            report.count(f"path_{record.get('path')}")
    samples = checkpoint.samples(order)
    if hint_turns:
        chains = {str(s["id"]) for s in samples}
        for sample_id in order:
            chain = checkpoint.records.get(sample_id)
            if chain is None or sample_id not in chains:
                continue
            extra = hint_sample(chain, namer, seed, hint_turns, hint_kinds)
            if extra is None:
                report.count("hint_samples_skipped")
                continue
            samples.append(extra)
            report.count("hint_samples")
    report.counts["samples"] = write_samples(out, samples)
    report.manifest = write_manifest(
        out, part=PART, seed=seed, counts=report.counts, outputs=[out, checkpoint.path],
        sources={"metadata": metadata}, image_root=images,
        extra={"teacher": teacher_name(teacher), "rounds": rounds, "introspection_km": INTROSPECTION_KM,
               "settings": settings.as_dict(), "hint_turns": hint_turns,
               "hint_kinds": [k.value for k in hint_kinds]},
    )
    return report
