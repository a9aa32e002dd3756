"""``geodesk clues run|show|constraint|send|check`` and ``geodesk sun``: the clue engine from the shell."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from geodesk.cli._backend import add_backend_arguments, open_backend_from_args
from geodesk.cli._common import CliError, add_json_argument, emit, errors_as_sentences, workspace_path
from geodesk.domain.model import Region

OCR_CHOICES = ("hybrid", "rapidocr", "tesseract")


def register(subparsers: Any) -> None:
    clues = subparsers.add_parser(
        "clues", help="the clue engine: text, language, phone, domain, time zone, sun"
    )
    sub = clues.add_subparsers(dest="clues_command", metavar="SUBCOMMAND", required=True)

    run = sub.add_parser("run", help="run the clue engine on one evidence item, or on every item of the case")
    run.add_argument("case", metavar="CASE", help="case id or unique title prefix")
    run.add_argument(
        "evidence",
        metavar="EVIDENCE",
        nargs="?",
        default=None,
        help="evidence SHA-256 or a unique prefix (default: every item)",
    )
    run.add_argument(
        "--ocr",
        choices=OCR_CHOICES,
        default=None,
        help="OCR engine (default: hybrid, rapidocr with Tesseract for the other scripts)",
    )
    run.add_argument("--region", default=None, metavar="x0,y0,x1,y1", help="OCR only this image region")
    add_json_argument(run)
    run.set_defaults(handler=_run)

    show = sub.add_parser("show", help="the engine clues of one evidence item")
    show.add_argument("case", metavar="CASE")
    show.add_argument("evidence", metavar="EVIDENCE")
    add_json_argument(show)
    show.set_defaults(handler=_show)

    combined = sub.add_parser("constraint", help="the accepted clues combined: leading countries, map layer")
    combined.add_argument("case", metavar="CASE")
    combined.add_argument("evidence", metavar="EVIDENCE")
    combined.add_argument(
        "--include-proposed",
        action="store_true",
        help="count clues not yet reviewed as well (default: accepted and edited only)",
    )
    combined.add_argument("--no-geometry", action="store_true", help="leave country border shapes out")
    combined.add_argument(
        "--out",
        default=None,
        metavar="FILE.geojson",
        help="also write the map layer (GeoJSON FeatureCollection) to this file",
    )
    add_json_argument(combined)
    combined.set_defaults(handler=_constraint)

    send = sub.add_parser("send", help="send the accepted engine clues as the next turn's +QA hint")
    send.add_argument("case", metavar="CASE")
    send.add_argument("session", metavar="SESSION", type=int)
    send.add_argument(
        "--model", default=None, help="model package folder or NAME[@VERSION] (default: active)"
    )
    add_backend_arguments(send)
    send.add_argument("--max-new-tokens", type=int, default=256)
    add_json_argument(send)
    send.set_defaults(handler=_send)

    check = sub.add_parser("check", help="the accepted clues each turn's prediction of a session contradicts")
    check.add_argument("case", metavar="CASE")
    check.add_argument("session", metavar="SESSION", type=int)
    add_json_argument(check)
    check.set_defaults(handler=_check)

    sun = subparsers.add_parser(
        "sun", help="the band of places where the sun stood as an object's shadow shows"
    )
    sun.add_argument("case", metavar="CASE")
    sun.add_argument("evidence", metavar="EVIDENCE")
    sun.add_argument(
        "--object", default=None, metavar="x0,y0,x1,y1", help="box of an upright object (pixels)"
    )
    sun.add_argument(
        "--shadow-tip", default=None, metavar="x,y", help="where the object's shadow ends (pixels)"
    )
    sun.add_argument(
        "--ratio", type=float, default=None, help="object height / shadow length, instead of marks"
    )
    sun.add_argument("--time", default=None, help="ISO time with offset (default: the EXIF capture time)")
    sun.add_argument("--ratio-error", type=float, default=None, help="relative error of the ratio (0.15)")
    sun.add_argument(
        "--time-error", type=float, default=None, metavar="MIN", help="time uncertainty (10 min)"
    )
    add_json_argument(sun)
    sun.set_defaults(handler=_sun)


def _open_case(args: argparse.Namespace) -> Any:
    from geodesk.store.workspace import Workspace

    try:
        return Workspace(workspace_path(args)).open_case(args.case)
    except LookupError as exc:
        raise CliError(str(exc)) from None


def _errors() -> Any:
    return errors_as_sentences()


def _clue_line(c: dict[str, Any]) -> str:
    box = "" if c["box"] is None else f" at {c['box']}"
    top = ", ".join(s["country_code"] for s in c["supports"][:5])
    return (
        f"  #{c['id']} [{c['status']}] {c['category']}: {c['text']}{box} "
        f"(confidence {c['confidence']:.2f}{'; supports ' + top if top else ''})"
    )


def _run(args: argparse.Namespace) -> int:
    from geodesk.services.clue_engine import DEFAULT_OCR, ClueEngineError, run_engine, run_engine_batch
    from geodesk.services.sessions import SessionError

    ocr = args.ocr or DEFAULT_OCR
    try:
        region = Region.parse(args.region) if args.region else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if region is not None and args.evidence is None:
        raise CliError("--region needs an EVIDENCE item: a region belongs to one image")
    with _open_case(args) as store, _errors():
        try:
            runs = (
                [run_engine(store, args.evidence, ocr=ocr, region=region)]
                if args.evidence
                else run_engine_batch(store, ocr=ocr)
            )
        except (ClueEngineError, SessionError) as exc:
            raise CliError(str(exc)) from None
    run_documents = [r.as_document() for r in runs]
    document = {"ocr": ocr, "runs": run_documents, "failed": sum(1 for r in runs if not r.ok)}
    lines = []
    for r, doc in zip(runs, run_documents, strict=True):
        lines.append(
            f"{r.evidence[:12]}: {len(r.added)} new clues, {r.skipped} already there"
            + ("" if r.ok else "  — FAILED")
        )
        lines.extend(_clue_line(c) for c in doc["added"])
        lines.extend(f"  note: {m}" for m in r.messages)
    emit(args, document, "\n".join(lines) or "the case has no evidence")
    return 0 if document["failed"] == 0 else 1


def _show(args: argparse.Namespace) -> int:
    from geodesk.services.clue_engine import engine_clues_document
    from geodesk.services.sessions import SessionError

    with _open_case(args) as store, _errors():
        try:
            document = engine_clues_document(store, args.evidence)
        except SessionError as exc:
            raise CliError(str(exc)) from None
    lines = [f"{document['evidence'][:12]}: {len(document['clues'])} engine clues"]
    lines.extend(_clue_line(c) for c in document["clues"])
    emit(args, document, "\n".join(lines))
    return 0


def _constraint(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from geodesk.atomic import atomic_write_text
    from geodesk.services.clue_engine import constraint_for
    from geodesk.services.sessions import SessionError

    with _open_case(args) as store, _errors():
        try:
            document = constraint_for(
                store, args.evidence, include_proposed=args.include_proposed, geometry=not args.no_geometry
            )
        except SessionError as exc:
            raise CliError(str(exc)) from None
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(document["geojson"], ensure_ascii=False))
    if not document["clues"]:
        human = "no accepted engine clue yet: accept some (or pass --include-proposed)"
    else:
        human = "\n".join(
            [f"{len(document['clues'])} clues combined; leading countries:"]
            + [f"  {v['country_code']} {v['share']:.1%}  {v['reason']}" for v in document["leading"]]
        )
    emit(args, document, human)
    return 0


def _send(args: argparse.Namespace) -> int:
    from geodesk.engine.backends.base import GenerationSettings
    from geodesk.services.clue_engine import send_accepted_clues
    from geodesk.services.sessions import SessionError, TurnOptions

    with _open_case(args) as store, _errors():
        backend = open_backend_from_args(args, args.model)
        try:
            sent = send_accepted_clues(
                store,
                args.session,
                backend,
                TurnOptions(settings=GenerationSettings(max_new_tokens=args.max_new_tokens)),
            )
        except SessionError as exc:
            raise CliError(str(exc)) from None
        finally:
            backend.close()
    document = sent.as_document()
    p = sent.outcome.turn.prediction
    where = ", ".join(x for x in (p.city, p.region, p.country) if x) or "no place named"
    lines = [
        f"session {args.session} turn {sent.outcome.turn.number}: sent {sent.hint.answer}",
        f"  -> {where}",
    ]
    lines.extend(f"  FLAG: {f}" for f in sent.flags)
    emit(args, document, "\n".join(lines))
    return 0 if sent.outcome.turn.error is None else 1


def _check(args: argparse.Namespace) -> int:
    from geodesk.services.clue_engine import turn_flags
    from geodesk.services.sessions import SessionError

    with _open_case(args) as store, _errors():
        try:
            turns = turn_flags(store, args.session)
        except SessionError as exc:
            raise CliError(str(exc)) from None
    document = {"session": args.session, "turns": turns}
    lines = [
        f"turn {t['turn']} ({t['country_code'] or '-'}): " + ("; ".join(t["flags"]) or "no contradiction")
        for t in turns
    ]
    emit(args, document, "\n".join(lines) or "the session has no turns")
    return 0


def _point(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise CliError(f"--shadow-tip is two numbers x,y; got {text!r}")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise CliError(f"--shadow-tip is two numbers x,y; got {text!r}") from None


def _sun(args: argparse.Namespace) -> int:
    from geodesk.services.clue_engine import add_sun_clue, engine_clue_document
    from geodesk.services.sessions import SessionError

    try:
        box = Region.parse(args.object) if args.object else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    tip = _point(args.shadow_tip) if args.shadow_tip else None
    if args.ratio is None and (box is None or tip is None):
        raise CliError(
            "mark the object with --object x0,y0,x1,y1 and its shadow with --shadow-tip x,y, "
            "or give --ratio HEIGHT/SHADOW"
        )
    when = None
    if args.time:
        try:
            when = datetime.fromisoformat(args.time.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(
                f"--time {args.time!r} is not an ISO time such as 2024-06-21T14:05:00+02:00"
            ) from None
    with _open_case(args) as store, _errors():
        try:
            clue = add_sun_clue(
                store,
                args.evidence,
                object_box=box,
                shadow_tip=tip,
                ratio=args.ratio,
                when=when,
                ratio_error=args.ratio_error,
                time_error_min=args.time_error,
            )
        except SessionError as exc:
            raise CliError(str(exc)) from None
    document = engine_clue_document(clue)
    emit(args, document, _clue_line(document))
    return 0
