"""``geodesk-train evaluate``: score predictions against a truth set, or run a model on one first.

From files::

    geodesk-train evaluate --predictions P.jsonl --truth T.csv [--json]

With a model (writes predictions.jsonl, metrics.json, report.md and plots into --out; resumable)::

    geodesk-train evaluate --model NAME[@VERSION]|FOLDER --truth T.csv --images DIR [--out DIR]
        [--mode dire|hier] [--backend hf|remote --endpoint URL ...] [--limit N] [--batch-size B]
        [--dialogs D.jsonl] [--candidates COUNTRIES.txt] [--json]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geodesk.cli._backend import add_backend_arguments, open_backend_from_args
from geodesk.cli._common import CliError, add_json_argument, emit, progress_enabled, workspace_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, GeoScore, admin-level accuracy of predictions or of a model",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument(
        "--truth",
        required=True,
        metavar="T.csv",
        help="truth CSV: id, latitude, longitude, country, region, city (others ignored)",
    )
    parser.add_argument(
        "--predictions",
        metavar="P.jsonl",
        help="score this predictions file (id, lat, lon, country, region, city, valid)",
    )
    parser.add_argument("--model", metavar="NAME[@VERSION]|FOLDER", help="run this model on --images first")
    parser.add_argument(
        "--images", metavar="DIR", help="folder of images named <id>.<ext> (or an image column)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: WORKSPACE/evaluations/<truth>-<mode>); rerun to resume",
    )
    parser.add_argument(
        "--mode",
        choices=("dire", "hier"),
        default="dire",
        help="GaGA's DIRE (free answer, default) or HIER (pick from lists, level by level)",
    )
    add_backend_arguments(parser, adapter=False)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N truth rows")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        metavar="B",
        help="images per batched generate (hf) or requests in flight (remote); default 8",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="answer length limit (default 256 in DIRE, 32 in HIER)",
    )
    parser.add_argument(
        "--dialogs",
        metavar="D.jsonl",
        help="id, question, answer per line: also run +Q and +QA (GaGA Table III), with the hint in the "
        "first turn (the paper's protocol) and, in DIRE mode, as a follow-up turn after the direct answer "
        "(the app's)",
    )
    parser.add_argument(
        "--no-follow-up", action="store_true",
        help="with --dialogs: only the paper's first-turn protocol, not the app's follow-up turns",
    )
    parser.add_argument(
        "--candidates",
        metavar="FILE",
        help="HIER candidate countries, one per line (default: every country, as the paper)",
    )
    parser.add_argument(
        "--candidates-from-truth", action="store_true",
        help="HIER: offer only the truth set's countries (a deviation from the paper; an easier question)",
    )
    parser.add_argument(
        "--max-cities", type=int, default=None,
        help="HIER: list only the N most populous cities of a region (default: all, as the paper)",
    )
    parser.add_argument(
        "--protocol",
        choices=("papers", "globe"),
        default="papers",
        help="papers: GaGA / OSV-5M metrics (default); globe: also GLOBE's country / city name matching "
        "(case-insensitive substring, length ratio >= 0.7). The question follows the model's prompt "
        "profile either way",
    )
    parser.add_argument("--no-report", action="store_true", help="skip report.md and the plots")
    add_json_argument(parser)
    parser.set_defaults(handler=_evaluate)


def _from_files(args: argparse.Namespace) -> int:
    from geodesk.geo.metrics import align, summarize
    from training.evaluation.io import EvaluationInputError, read_predictions, read_truth, truth_rows

    try:
        truths = truth_rows(read_truth(args.truth))
        predictions = read_predictions(args.predictions)
    except EvaluationInputError as exc:
        raise CliError(str(exc)) from None
    aligned, unknown = align(predictions, truths)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        sys.stderr.write(
            f"geodesk: {len(unknown)} prediction id(s) are not in the truth file and were ignored: {shown}\n"
        )
    answered = {p.id for p in predictions}
    missing = sum(1 for t in truths if t.id not in answered)
    if missing:
        sys.stderr.write(
            f"geodesk: {missing} truth id(s) have no prediction; they count as invalid answers\n"
        )
    summary = summarize(aligned, truths)
    emit(args, summary, _human(summary))
    return 0


def _human(s: dict[str, Any]) -> str:
    acc = "  ".join(f"{k} km {v:.2f}%" for k, v in s["accuracy_km"].items())
    median = "-" if s["median_km"] is None else f"{s['median_km']:.1f} km"
    names = "  ".join(f"{k} {v:.2f}%" for k, v in s["admin_accuracy"].items())
    rev = "  ".join(f"{k} {v:.2f}%" for k, v in s["admin_accuracy_reverse"].items())
    return (
        f"n {s['n']}  recall {s['recall']:.4f}  GeoScore {s['geoscore']:.1f}  median {median}\n"
        f"accuracy  {acc}\nadmin (names)    {names}\nadmin (reverse)  {rev}"
    )


def _read_lines(path: str) -> list[str]:
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the candidates file {path}: {exc}") from None
    names = [line for line in lines if line and not line.startswith("#")]
    if not names:
        raise CliError(f"{path} lists no candidate country")
    return names


def _with_model(args: argparse.Namespace) -> int:
    from geodesk.engine.backends.base import BackendError
    from training.evaluation.generation import batch_generator
    from training.evaluation.io import EvaluationInputError, read_dialogs, read_truth
    from training.evaluation.modes import DEFAULT_MAX_CITIES
    from training.evaluation.runner import EvalOptions, evaluate_model

    if not args.images:
        raise CliError("--model needs --images DIR, the folder holding the truth set's images")
    images = Path(args.images).expanduser()
    if not images.is_dir():
        raise CliError(f"--images {images} is not a folder")
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    try:
        samples = read_truth(args.truth)
        dialogs = read_dialogs(args.dialogs) if args.dialogs else None
    except EvaluationInputError as exc:
        raise CliError(str(exc)) from None
    out = (
        Path(args.out).expanduser()
        if args.out
        else (workspace_path(args) / "evaluations" / f"{Path(args.truth).stem}-{args.mode}")
    )
    backend = open_backend_from_args(args, args.model)
    identity = backend.identity
    from geodesk.services.sessions import backend_profile

    profile = backend_profile(backend)
    options = EvalOptions(
        mode=args.mode,
        batch_size=args.batch_size,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        candidates=_read_lines(args.candidates) if args.candidates else None,
        candidates_from_truth=args.candidates_from_truth,
        max_cities=args.max_cities or DEFAULT_MAX_CITIES,
        dialogs=dialogs,
        follow_up=not args.no_follow_up,
        report=not args.no_report,
        model_label=f"{identity.name}@{identity.version}",
        extra={
            "backend": backend.name,
            "model_sha256": identity.sha256,
            "profile": profile.name,
            "protocol": args.protocol,
        },
        profile=profile,
        globe_metrics=args.protocol == "globe",
    )
    bar = None
    progress: Callable[[int], None] | None = None
    if progress_enabled(args):
        from tqdm import tqdm

        rounds = 1 if not dialogs else (5 if args.mode == "dire" and not args.no_follow_up else 3)
        total = min(len(samples), args.limit or len(samples)) * rounds
        bar = tqdm(total=total, unit="img", desc=f"evaluate {args.mode}", file=sys.stderr)

        def progress(k: int) -> None:
            assert bar is not None
            bar.update(k)

    try:
        document = evaluate_model(
            batch_generator(backend, args.batch_size),
            samples,
            images,
            out,
            options,
            progress=progress,
        )
    except (ValueError, BackendError) as exc:
        raise CliError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
        backend.close()
    document["out_dir"] = str(out)
    human = _human(document["summary"])
    if "globe" in document:
        g = document["globe"]["direct"]
        human += f"\nGLOBE matching  country {g['country_accuracy']:.2f}%  city {g['city_accuracy']:.2f}%"
    emit(args, document, f"{human}\nreport and predictions in {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.predictions and args.model:
        raise CliError("give either --predictions (score a file) or --model (run a model), not both")
    if args.predictions:
        return _from_files(args)
    if args.model or args.backend == "remote":
        return _with_model(args)
    raise CliError("nothing to evaluate: give --predictions P.jsonl, or --model NAME --images DIR")
