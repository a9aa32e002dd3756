"""``geodesk-train build-data {table,meta,clues,dialog,cases,validate,split,interactive,mix,repository}``.

MG-Geo style data, from photos with GPS to the stage-2 mixture.

Every subcommand prints one JSON document with ``--json`` (counts, problems, output paths) and exits
non-zero with a sentence on stderr when its input is unusable; ``validate`` also exits 1 when any
sample fails. Teacher models (clues, dialog) are any engine backend: ``--teacher`` names a package
folder or a registered ``NAME[@VERSION]`` (``--backend hf``, the default), or the served model name
for ``--backend remote --endpoint URL``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.cli._backend import add_backend_arguments, open_backend_from_args
from geodesk.cli._common import CliError, add_json_argument, emit, progress_enabled, workspace_path

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend, GenerationSettings
    from training.data.common import Report


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "build-data", help="build, check and split training data (Meta / Clue / Dialog parts, closed cases)",
        description=__doc__,
    )
    sub = parser.add_subparsers(dest="part", metavar="PART", required=True)

    table = sub.add_parser("table", help="photos with GPS -> the metadata table the other parts read")
    table.add_argument("--photos", type=Path, required=True, metavar="DIR", help="folder of geotagged photos")
    table.add_argument("--out", type=Path, required=True, metavar="CSV")
    add_json_argument(table)
    table.set_defaults(handler=_table)

    meta = sub.add_parser("meta", help="Meta Part: direct-mode questions and JSON answers from a table")
    _table_arguments(meta)
    meta.add_argument("--keep-incomplete", action="store_true",
                      help="keep rows without a region or city (GaGA removed them; the answer says null)")
    meta.set_defaults(handler=_meta)

    clues = sub.add_parser("clues", help="Clue Part: a teacher selects and rephrases country clues")
    clues.add_argument("--metadata", type=Path, metavar="CSV", help="OSV-5M style table")
    clues.add_argument("--images", type=Path, metavar="DIR", help="image folder (files named <id>.<ext>)")
    clues.add_argument("--out", type=Path, required=True, metavar="FILE", help="samples (.json or .jsonl)")
    clues.add_argument("--queue", type=Path, default=None, metavar="FILE",
                       help="review queue to write (default: OUT.review.jsonl)")
    clues.add_argument("--repository", type=Path, default=None, metavar="FILE",
                       help="clue repository (default: resources/clues/clues.json)")
    clues.add_argument("--accept-reviewed", type=Path, default=None, metavar="QUEUE",
                       help="samples from the approved entries of an edited review queue (no teacher)")
    clues.add_argument("--seed", type=int, default=0)
    clues.add_argument("--no-structured", action="store_true",
                       help="offer only the hand-written clues, not the structured country facts")
    _teacher_arguments(clues, max_new_tokens=512)
    add_json_argument(clues)
    clues.set_defaults(handler=_clues)

    dialog = sub.add_parser("dialog", help="Dialog Part: CoT Deduction, and Introspection beyond 25 km")
    _table_arguments(dialog)
    dialog.add_argument("--rounds", type=int, default=3, help="question-answer rounds before the coordinates")
    dialog.add_argument("--hint-turns", type=int, default=2, metavar="N",
                        help="hint turns per hint-turn sample in the app's session format (default 2; "
                             "0 writes the paper's Dialog part alone)")
    dialog.add_argument("--hint-kinds", default=",".join(k.value for k in _hint_kinds()), metavar="KINDS",
                        help="comma-separated hint kinds to draw from (default: all of them)")
    _teacher_arguments(dialog, max_new_tokens=1024)
    dialog.set_defaults(handler=_dialog)

    cases = sub.add_parser("cases", help="closed cases: confirmed findings as training dialogs")
    cases.add_argument("--out", type=Path, required=True, metavar="FILE")
    cases.add_argument("--case", action="append", default=[], metavar="CASE",
                       help="case id or title prefix (repeat; default: every case in the workspace)")
    cases.add_argument("--image-root", type=Path, default=None, metavar="DIR",
                       help="where the evidence images are copied (default: OUT's stem + '-images')")
    cases.add_argument("--seed", type=int, default=0)
    _workspace_argument(cases)
    add_json_argument(cases)
    cases.set_defaults(handler=_cases)

    validate = sub.add_parser("validate", help="check a samples file; exit 1 when any sample fails")
    validate.add_argument("samples", type=Path, metavar="SAMPLES")
    validate.add_argument("--images", type=Path, default=None, metavar="DIR",
                          help="image root (default: the image_root of SAMPLES' manifest)")
    validate.add_argument("--model", default=None,
                          help="model package folder or NAME[@VERSION]: check token lengths")
    validate.add_argument("--max-length", type=int, default=None, help="token limit (default: the model's)")
    validate.add_argument("--no-system", action="store_true",
                          help="do not count the protocol's system prompt in the token length")
    _workspace_argument(validate)
    add_json_argument(validate)
    validate.set_defaults(handler=_validate)

    split = sub.add_parser("split", help="location-aware train/validation split (no city on both sides)")
    source = split.add_mutually_exclusive_group(required=True)
    source.add_argument("--metadata", type=Path, metavar="CSV", help="split a table into train/val CSVs")
    source.add_argument("--samples", type=Path, metavar="FILE", help="split a samples file by its answers")
    split.add_argument("--out-dir", type=Path, required=True, metavar="DIR")
    split.add_argument("--val-fraction", type=float, default=0.05)
    split.add_argument("--cell-deg", type=float, default=None,
                       help="grid cell size in degrees for rows without a city (default 0.25)")
    split.add_argument("--seed", type=int, default=0)
    add_json_argument(split)
    split.set_defaults(handler=_split)

    inter = sub.add_parser("interactive",
                           help="+Q/+QA evaluation dialogs and GRPO prompts from reviewed clues")
    inter.add_argument("--queue", type=Path, required=True, metavar="QUEUE",
                       help="the Clue part's review queue (approved entries are used)")
    inter.add_argument("--images", type=Path, required=True, metavar="DIR",
                       help="the Clue part's image folder")
    inter.add_argument("--out-dir", type=Path, required=True, metavar="DIR")
    inter.add_argument("--seed", type=int, default=0)
    add_json_argument(inter)
    inter.set_defaults(handler=_interactive)

    mix = sub.add_parser("mix", help="the stage-2 mixture: parts in the paper's proportions, deduplicated")
    mix.add_argument("--part", action="append", default=[], required=True, metavar="NAME=FILE",
                     help="a part's samples file (repeat): meta=..., clue=..., dialog=..., any other name")
    mix.add_argument("--recipe", default="paper", metavar="NAME=WEIGHT,...",
                     help="weights per part (default 'paper': meta 94k, clue 73k, dialog 73k of Mix240k)")
    mix.add_argument("--total", type=int, default=None,
                     help="samples in the mixture (default: the most every part can fill at its share)")
    mix.add_argument("--val", action="append", default=[], type=Path, metavar="FILE",
                     help="validation samples (repeat): training samples of their cities are dropped")
    mix.add_argument("--out", type=Path, required=True, metavar="FILE")
    mix.add_argument("--seed", type=int, default=0)
    add_json_argument(mix)
    mix.set_defaults(handler=_mix)

    repo = sub.add_parser("repository", help="check the clue repository, count its clues, report coverage")
    repo.add_argument("--repository", type=Path, default=None, metavar="FILE")
    repo.add_argument("--rebuild-structured", action="store_true",
                      help="rebuild resources/clues/structured.json from CLDR, libphonenumber, tz, GeoNames")
    repo.add_argument("--no-structured", action="store_true", help="the hand-written clues alone")
    add_json_argument(repo)
    repo.set_defaults(handler=_repository)


def _table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metadata", type=Path, required=True, metavar="CSV",
                        help="OSV-5M style table: id, latitude, longitude, country, region, sub-region, city")
    parser.add_argument("--images", type=Path, required=True, metavar="DIR",
                        help="image folder (files named <id>.<ext>, sub-folders allowed)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="samples (.json or .jsonl)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the question wordings")
    add_json_argument(parser)


def _workspace_argument(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: when absent here, the value given before the subcommand (or the environment) stands.
    parser.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace folder (default: $GEODESK_WORKSPACE, else the per-user data folder)")


def _teacher_arguments(parser: argparse.ArgumentParser, *, max_new_tokens: int) -> None:
    group = parser.add_argument_group("teacher")
    group.add_argument("--teacher", default=None, metavar="MODEL",
                       help="package folder or NAME[@VERSION] (hf), or the served model name (remote)")
    add_backend_arguments(group, adapter=False)
    group.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    group.add_argument("--temperature", type=float, default=1.0,
                       help="sampling temperature (default 1, GaGA's setting; 0 is greedy and reproducible)")
    group.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (default 1, GaGA's)")
    _workspace_argument(parser)


# --------------------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------------------


def _finish(args: argparse.Namespace, report: Report, exit_code: int = 0) -> int:
    emit(args, report.as_document(), report.summary())
    return exit_code


def _data_errors() -> tuple[type[Exception], ...]:
    from geodesk.geo import GeoDataError
    from training.data.common import DataError

    return (DataError, GeoDataError)


def _table(args: argparse.Namespace) -> int:
    from training.data.photos import build_table

    try:
        report = build_table(args.photos, args.out)
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _meta(args: argparse.Namespace) -> int:
    from training.data.meta import build_meta

    try:
        report = build_meta(args.metadata, args.images, args.out, seed=args.seed,
                            show_progress=progress_enabled(args), keep_incomplete=args.keep_incomplete)
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _settings(args: argparse.Namespace, seed: int) -> GenerationSettings:
    from geodesk.engine.backends.base import BackendError, GenerationSettings

    try:
        return GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                  top_p=args.top_p, seed=seed)
    except BackendError as exc:
        raise CliError(str(exc)) from None


def _open_teacher(args: argparse.Namespace) -> Backend:
    from geodesk.services.models import ModelNotFoundError, resolve_model_folder

    if args.backend == "hf" and not args.teacher:
        raise CliError("name the teacher model: --teacher FOLDER or NAME[@VERSION] (a package the registry "
                       "knows), or --backend remote --endpoint URL")
    model = args.teacher
    if args.backend == "hf":
        try:
            model = str(resolve_model_folder(workspace_path(args), args.teacher))
        except ModelNotFoundError as exc:
            raise CliError(str(exc)) from None
    return open_backend_from_args(args, model)


def _clues(args: argparse.Namespace) -> int:
    from training.data.clues import accept_reviewed, build_clues, load_clue_repository

    try:
        repository = load_clue_repository(args.repository, structured=not args.no_structured)
        if args.accept_reviewed is not None:
            report = accept_reviewed(args.accept_reviewed, args.out, repository=repository, seed=args.seed,
                                     images=args.images)
            return _finish(args, report)
        if args.metadata is None or args.images is None:
            raise CliError("clues needs --metadata CSV and --images DIR (or --accept-reviewed QUEUE)")
        settings = _settings(args, args.seed)
        teacher = _open_teacher(args)
        try:
            report = build_clues(args.metadata, args.images, args.out, teacher, queue=args.queue,
                                 repository=repository, seed=args.seed, settings=settings,
                                 show_progress=progress_enabled(args))
        finally:
            teacher.close()
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _hint_kinds() -> tuple[Any, ...]:
    from training.data.hint_turns import HINT_KINDS

    return HINT_KINDS


def _parse_hint_kinds(text: str) -> tuple[Any, ...]:
    known = {k.value: k for k in _hint_kinds()}
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise CliError(f"--hint-kinds takes a comma-separated list of {', '.join(known)}; "
                       f"got {text!r}")
    return tuple(known[n] for n in names)


def _dialog(args: argparse.Namespace) -> int:
    from training.data.dialog import build_dialog

    settings = _settings(args, args.seed)
    kinds = _parse_hint_kinds(args.hint_kinds)
    try:
        teacher = _open_teacher(args)
        try:
            report = build_dialog(args.metadata, args.images, args.out, teacher, rounds=args.rounds,
                                  seed=args.seed, settings=settings, show_progress=progress_enabled(args),
                                  hint_turns=args.hint_turns, hint_kinds=kinds)
        finally:
            teacher.close()
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _cases(args: argparse.Namespace) -> int:
    from geodesk.store import StoreError, Workspace
    from training.data.cases import build_cases

    errors: tuple[type[Exception], ...] = (*_data_errors(), StoreError)
    workspace = workspace_path(args)
    if not workspace.is_dir():
        raise CliError(f"the workspace {workspace} does not exist; pass --workspace DIR")
    try:
        report = build_cases(Workspace(workspace), args.out, cases=args.case or None,
                             image_root=args.image_root, seed=args.seed)
    except errors as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _validate(args: argparse.Namespace) -> int:
    import json

    from training.data.common import manifest_path
    from training.data.validate import load_budget, validate_samples

    images = args.images
    if images is None:
        manifest = manifest_path(args.samples)
        if manifest.is_file():
            root = json.loads(manifest.read_text(encoding="utf-8")).get("image_root")
            images = Path(root) if root else None
        if images is None:
            raise CliError(f"give --images DIR: {args.samples} has no manifest naming its image root")
    try:
        budget = None
        if args.model is not None:
            from geodesk.services.models import ModelNotFoundError, resolve_model_folder

            try:
                folder = resolve_model_folder(workspace_path(args), args.model)
            except ModelNotFoundError as exc:
                raise CliError(str(exc)) from None
            budget = load_budget(folder, args.max_length, include_system=not args.no_system)
        report = validate_samples(args.samples, images, budget=budget)
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report, 1 if report.counts.get("failed_samples") else 0)


def _split(args: argparse.Namespace) -> int:
    from training.data.split import DEFAULT_CELL_DEG, split_metadata, split_samples

    cell = args.cell_deg if args.cell_deg is not None else DEFAULT_CELL_DEG
    if not cell > 0:
        raise CliError(f"--cell-deg must be positive, got {cell}")
    try:
        if args.metadata is not None:
            report = split_metadata(args.metadata, args.out_dir, val_fraction=args.val_fraction,
                                    seed=args.seed, cell_deg=cell)
        else:
            report = split_samples(args.samples, args.out_dir, val_fraction=args.val_fraction, seed=args.seed,
                                   cell_deg=cell)
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _interactive(args: argparse.Namespace) -> int:
    from training.data.interactive import build_interactive

    try:
        report = build_interactive(args.queue, args.images, args.out_dir, seed=args.seed)
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _mix(args: argparse.Namespace) -> int:
    from training.data.mix import build_mix, parse_recipe

    parts: dict[str, Path] = {}
    for item in args.part:
        name, _, file = str(item).partition("=")
        if not name or not file:
            raise CliError(f"--part {item!r} must be NAME=FILE, e.g. --part meta=data/meta.json")
        parts[name] = Path(file)
    try:
        recipe = None if args.recipe == "paper" else parse_recipe(args.recipe)
        report = build_mix(parts, args.out, recipe=recipe, total=args.total, val=args.val, seed=args.seed)
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    return _finish(args, report)


def _repository(args: argparse.Namespace) -> int:
    from training.data.clues import load_clue_repository
    from training.data.common import Report
    from training.data.country_facts import coverage, write_structured

    try:
        if args.rebuild_structured:
            write_structured()
        repository = load_clue_repository(args.repository, structured=not args.no_structured)
        covered = coverage(repository)
    except _data_errors() as exc:
        raise CliError(str(exc)) from None
    report = Report("repository", out=repository.path)
    report.counts.update(countries=len(repository.countries), clues=repository.clue_count)
    structured = repository.structured_path
    report.extra.update(sha256=repository.sha256, countries=sorted(repository.countries), coverage=covered,
                        structured=None if structured is None else str(structured))
    for code in covered["below_target"]:
        places = covered["per_country"][code]["places"]
        report.problem(code, f"fewer than 5 clues for a country with {places} GeoNames places")
    return _finish(args, report)
