"""Evaluate a model on a truth set: predictions (resumable), metrics, report.

Layout of ``out_dir``::

    predictions.jsonl            one line per answered sample (DIRE or HIER, the run's mode)
    predictions_q.jsonl          +Q answers   } only with a dialogs file (GaGA Table III);
    predictions_qa.jsonl         +QA answers  } predictions.jsonl is then the "direct inquiry" row
    predictions_q_followup.jsonl    +Q / +QA as the app sends them: the direct answer first, the
    predictions_qa_followup.jsonl   hint as the next turn (DIRE only; ``follow_up=False`` skips them)
    metrics.json                 {"mode", "model", "summary", "interactive"?: {variant: summary},
                                  "protocols"?: {"first_turn": {...}, "follow_up": {...}}}
    report.md + *.svg            the report (training.evaluation.report)

Samples are answered in chunks of ``batch_size``; each chunk's answers are appended to the predictions
file in one write (training.evaluation.io), so an interrupted run loses at most the chunk in flight and
a rerun skips every id already in the file. An image that cannot be read is an invalid answer with an
``error`` field, never the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodesk.domain import Hint
from geodesk.engine.backends.base import GenerationSettings
from geodesk.engine.profiles import PromptProfile
from geodesk.geo.gazetteer import Gazetteer, default_gazetteer
from geodesk.geo.metrics import PredictionRow, align, globe_accuracy, summarize
from training.evaluation.generation import BatchGenerator
from training.evaluation.io import (
    Dialog,
    PredictionsFile,
    TruthSample,
    find_image,
    prediction_record,
    truth_rows,
    write_json_atomic,
)
from training.evaluation.modes import (
    DEFAULT_MAX_CITIES,
    FOLLOW_UP_VARIANTS,
    HierCandidates,
    dialog_hints,
    dire_predict,
    hier_predict,
)

MODES = ("dire", "hier")
PREDICTION_FILES = {
    "direct": "predictions.jsonl", "q": "predictions_q.jsonl", "qa": "predictions_qa.jsonl",
    "q_followup": "predictions_q_followup.jsonl", "qa_followup": "predictions_qa_followup.jsonl",
}
Progress = Callable[[int], None]


@dataclass(slots=True)
class EvalOptions:
    mode: str = "dire"
    batch_size: int = 8
    limit: int | None = None
    max_new_tokens: int | None = None  # None: 256 for DIRE (a JSON answer), 32 for HIER (one name)
    candidates: Sequence[str] | None = None  # HIER countries; None: every country (the paper's)
    candidates_from_truth: bool = False  # named deviation: the truth set's countries only
    max_cities: int | None = DEFAULT_MAX_CITIES  # None: every city of the region (the paper's)
    dialogs: Sequence[Dialog] | None = None
    follow_up: bool = True  # with dialogs in DIRE mode: also the app's follow-up protocol
    report: bool = True
    model_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    profile: PromptProfile | None = None  # the model's prompt profile for DIRE (None: gaga)
    globe_metrics: bool = False  # also score country / city with GLOBE's name matching

    def settings(self) -> GenerationSettings:
        default = 256 if self.mode == "dire" else 32
        if self.mode == "dire" and self.profile is not None and self.profile.default_max_new_tokens:
            # The profile's decoding (GLOBE: 512 tokens, temperature 0.1; seeded, so reruns agree).
            temperature = self.profile.default_temperature or 0.0
            return GenerationSettings(
                max_new_tokens=self.max_new_tokens or self.profile.default_max_new_tokens,
                temperature=temperature,
                seed=0 if temperature > 0 else None,
            )
        return GenerationSettings(max_new_tokens=self.max_new_tokens or default)


def _open_image(path: Path | None) -> tuple[Any, str | None]:
    from PIL import Image

    from geodesk.engine.imaging import open_rgb

    if path is None:
        return None, "no image file for this id"
    try:
        # The one bounded preparation step: upright, RGB, at most MODEL_MAX_EDGE px (padded later).
        return open_rgb(path), None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return None, f"cannot read {path.name}: {exc}"


def answer_samples(
    generator: BatchGenerator,
    samples: Sequence[TruthSample],
    images_dir: Path,
    predictions: PredictionsFile,
    options: EvalOptions,
    gazetteer: Gazetteer,
    hints_for: Callable[[str], Sequence[Hint]] | None = None,
    candidates: HierCandidates | None = None,
    progress: Progress | None = None,
    follow_up: bool = False,
) -> int:
    """Answer every sample not yet in ``predictions``; returns how many were answered now."""
    todo = [s for s in samples if s.row.id not in predictions.done]
    if progress is not None and len(todo) < len(samples):
        progress(len(samples) - len(todo))  # resumed: count what is already there
    settings = options.settings()
    answered = 0
    for start in range(0, len(todo), options.batch_size):
        chunk = todo[start : start + options.batch_size]
        by_id: dict[str, dict[str, Any]] = {}
        ready: list[tuple[TruthSample, Any]] = []
        for sample in chunk:
            image, error = _open_image(find_image(images_dir, sample))
            if error is not None:
                by_id[sample.row.id] = prediction_record(PredictionRow(sample.row.id), error=error)
            else:
                ready.append((sample, image))
        if ready:
            images = [img for _, img in ready]
            if options.mode == "hier":
                assert candidates is not None
                hints = [list(hints_for(s.row.id)) if hints_for else [] for s, _ in ready]
                results = hier_predict(
                    generator,
                    [s.row for s, _ in ready],
                    images,
                    settings,
                    candidates,
                    hints.__getitem__ if hints_for else None,
                )
            else:
                ids = [s.row.id for s, _ in ready]
                hint_lists = [list(hints_for(i)) for i in ids] if hints_for else None
                results = dire_predict(
                    generator, ids, images, settings, gazetteer, hint_lists, options.profile,
                    follow_up=follow_up,
                )
            by_id.update((row.id, prediction_record(row, **extra)) for row, extra in results)
        predictions.append([by_id[s.row.id] for s in chunk])  # in truth order
        answered += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return answered


def select_samples(
    samples: Sequence[TruthSample], limit: int | None, ids: set[str] | None = None
) -> list[TruthSample]:
    chosen = [s for s in samples if ids is None or s.row.id in ids]
    return chosen[:limit] if limit is not None else chosen


def evaluate_model(
    generator: BatchGenerator,
    samples: Sequence[TruthSample],
    images_dir: Path,
    out_dir: Path,
    options: EvalOptions,
    gazetteer: Gazetteer | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Answer, score and report. Returns the metrics document (also written to metrics.json)."""
    if options.mode not in MODES:
        raise ValueError(f"mode must be dire or hier; got {options.mode!r}")
    if options.batch_size < 1:
        raise ValueError("batch size must be at least 1")
    gaz = gazetteer or default_gazetteer()
    out_dir.mkdir(parents=True, exist_ok=True)
    dialogs = {d.id: d for d in options.dialogs} if options.dialogs else None
    chosen = select_samples(samples, options.limit, set(dialogs) if dialogs is not None else None)
    if not chosen:
        raise ValueError("no sample to evaluate: the truth file and the dialogs file share no id")
    candidates = None
    if options.mode == "hier":
        countries: list[str] | None = None
        if options.candidates:
            countries = list(options.candidates)
        elif options.candidates_from_truth:
            countries = sorted({s.row.country for s in chosen if s.row.country})
        candidates = HierCandidates(gaz, countries, options.max_cities)
    variants: tuple[str, ...] = ("direct", "q", "qa") if dialogs is not None else ("direct",)
    if dialogs is not None and options.mode == "dire" and options.follow_up:
        variants += FOLLOW_UP_VARIANTS
    truths = truth_rows(chosen)
    summaries: dict[str, dict[str, Any]] = {}
    globe: dict[str, dict[str, Any]] = {}
    predictions_by_variant: dict[str, list[PredictionRow]] = {}
    for variant in variants:
        file = PredictionsFile(out_dir / PREDICTION_FILES[variant])
        hints_for = None
        if dialogs is not None and variant != "direct":

            def hints_for(sample_id: str, v: str = variant) -> Sequence[Hint]:
                return dialog_hints(dialogs.get(sample_id), v)

        answer_samples(generator, chosen, images_dir, file, options, gaz, hints_for, candidates, progress,
                       follow_up=variant in FOLLOW_UP_VARIANTS)
        aligned, _ = align(file.rows(), truths)
        predictions_by_variant[variant] = aligned
        summaries[variant] = summarize(aligned, truths, gaz)
        if options.globe_metrics:
            globe[variant] = globe_accuracy(aligned, truths)
    document: dict[str, Any] = {
        "mode": options.mode,
        "model": options.model_label,
        "truth_samples": len(chosen),
        "summary": summaries["direct"],
        **options.extra,
    }
    if dialogs is not None:
        document["interactive"] = summaries
        document["protocols"] = {
            "first_turn": {"description": "GaGA's: the hint is in the first user turn",
                           "direct": summaries["direct"], "q": summaries["q"], "qa": summaries["qa"]},
        }
        if "q_followup" in summaries:
            document["protocols"]["follow_up"] = {
                "description": "the app's: direct answer first, the hint as the next user turn",
                "direct": summaries["direct"], "q": summaries["q_followup"], "qa": summaries["qa_followup"],
            }
    if globe:  # GLOBE's protocol beside the papers' metrics: its name matching, per variant
        document["globe"] = globe
    write_json_atomic(out_dir / "metrics.json", document)
    if options.report:
        from training.evaluation.report import write_report

        write_report(out_dir, document, truths, predictions_by_variant["direct"])
    return document
