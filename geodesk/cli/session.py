"""``geodesk locate``, ``geodesk hint`` and ``geodesk session show|replay``: model sessions."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from geodesk.cli._backend import add_backend_arguments, open_backend_from_args
from geodesk.cli._common import CliError, add_json_argument, emit, terminal_safe, workspace_path
from geodesk.domain.model import Hint, HintKind, Region, SessionMode

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend
    from geodesk.services.sessions import TurnOutcome
    from geodesk.store.case_store import CaseStore

HINT_KINDS = ("question", "qa", "prior", "exclude", "correct", "region")


def register(subparsers: Any) -> None:
    locate = subparsers.add_parser(
        "locate", help="start a model session about one evidence item and run its first turn"
    )
    locate.add_argument("case", metavar="CASE", help="case id or unique title prefix")
    locate.add_argument("evidence", metavar="EVIDENCE", help="evidence SHA-256 or a unique prefix")
    locate.add_argument("--mode", choices=[m.value for m in SessionMode], default="direct")
    _model_arguments(locate)
    locate.set_defaults(handler=_locate)

    hint = subparsers.add_parser("hint", help="send an analyst hint as the next turn of a session")
    hint.add_argument("session", metavar="SESSION", type=int, help="session number")
    hint.add_argument(
        "--case",
        required=False,
        help="case id or title prefix (default: the case holding SESSION when only one case has it)",
    )
    hint.add_argument("--kind", choices=HINT_KINDS, required=True)
    hint.add_argument("--text", default="", help="the question, region name, correction or note")
    hint.add_argument("--answer", default=None, help="the answer, for --kind qa")
    hint.add_argument("--region", default=None, metavar="x0,y0,x1,y1", help="image region in pixels")
    _model_arguments(hint)
    hint.set_defaults(handler=_hint)

    session = subparsers.add_parser("session", help="show or replay a session")
    sub = session.add_subparsers(dest="session_command", metavar="SUBCOMMAND", required=True)
    show = sub.add_parser("show", help="all turns of a session with hints and predictions")
    show.add_argument("session", metavar="SESSION", type=int)
    show.add_argument("--case", required=False)
    add_json_argument(show)
    show.set_defaults(handler=_show)
    replay = sub.add_parser("replay", help="run a session's user turns again, on the same or another model")
    replay.add_argument("session", metavar="SESSION", type=int)
    replay.add_argument("--case", required=False)
    _model_arguments(replay)
    replay.set_defaults(handler=_replay)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, help="model package folder or NAME[@VERSION] (default: active)"
    )
    add_backend_arguments(parser)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--samples",
        type=int,
        default=0,
        metavar="K",
        help="draw K sampled answers and cluster them into candidates",
    )
    parser.add_argument("--stream", action="store_true", help="print the answer to stderr as it is generated")
    add_json_argument(parser)


def _open_backend(args: argparse.Namespace) -> Backend:
    return open_backend_from_args(args, args.model)


def _turn_options(args: argparse.Namespace) -> Any:
    from geodesk.engine.backends.base import BackendError, GenerationSettings
    from geodesk.services.sessions import TurnOptions

    try:
        settings = GenerationSettings(
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed
        )
    except BackendError as exc:
        raise CliError(str(exc)) from None
    if args.samples < 0:
        raise CliError("--samples must be zero or more")

    def stream(piece: str) -> None:
        sys.stderr.write(terminal_safe(piece))  # model text is untrusted: no raw escapes
        sys.stderr.flush()

    return TurnOptions(settings=settings, samples=args.samples, on_token=stream if args.stream else None)


def _open_case(args: argparse.Namespace, ref: str) -> CaseStore:
    from geodesk.store.workspace import Workspace

    try:
        return Workspace(workspace_path(args)).open_case(ref)
    except LookupError as exc:
        raise CliError(str(exc)) from None


def _case_of_session(args: argparse.Namespace) -> CaseStore:
    """The case named by --case, or the only case that holds the session number."""
    if getattr(args, "case", None):
        return _open_case(args, args.case)
    from geodesk.store.workspace import Workspace

    workspace = Workspace(workspace_path(args))
    holders = []
    for case in workspace.list_cases():
        store = workspace.open_case(case)
        try:
            store.sessions.get(args.session)
        except LookupError:
            store.close()
            continue
        holders.append(store)
    if len(holders) == 1:
        return holders[0]
    for store in holders:
        store.close()
    if not holders:
        raise CliError(f"no case has a session {args.session}; check the number with `geodesk case show`")
    titles = ", ".join(repr(s.case.title) for s in holders)
    raise CliError(f"several cases have a session {args.session} ({titles}); name one with --case")


def _report(args: argparse.Namespace, outcome: TurnOutcome) -> int:
    document = outcome.as_document()
    p = outcome.turn.prediction
    where = ", ".join(x for x in (p.city, p.region, p.country) if x) or "no place named"
    coords = f"{p.lat:.4f}, {p.lon:.4f}" if p.lat is not None and p.lon is not None else "no coordinates"
    lines = [
        f"session {outcome.session.id} turn {outcome.turn.index} [{outcome.turn.status.value}] on "
        f"{outcome.session.model.name}@{outcome.session.model.version}",
        f"  {where} ({coords}){'' if p.valid else '  — not a valid answer'}",
    ]
    for c in p.candidates:
        lines.append(
            f"  candidate {c.share:.0%}: {c.lat:.3f}, {c.lon:.3f} ±{c.spread_km:.0f} km {c.country or ''}"
        )
    if outcome.turn.error:
        lines.append(f"  error: {outcome.turn.error}")
    emit(args, document, "\n".join(lines))
    return 0 if outcome.turn.error is None else 1


def _locate(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, locate

    store = _open_case(args, args.case)
    with store:
        backend = _open_backend(args)
        try:
            outcome = locate(store, args.evidence, backend, SessionMode(args.mode), _turn_options(args))
        except SessionError as exc:
            raise CliError(str(exc)) from None
        finally:
            backend.close()
        return _report(args, outcome)


def _hint(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, add_hints

    try:
        region = Region.parse(args.region) if args.region else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    kind = HintKind(args.kind)
    if kind is HintKind.REGION and region is None:
        raise CliError("--kind region needs --region x0,y0,x1,y1")
    if kind is HintKind.QA and not args.answer:
        raise CliError("--kind qa needs --answer")
    if kind is not HintKind.CORRECT and not args.text.strip():
        raise CliError(f"--kind {args.kind} needs --text")
    hint = Hint(kind=kind, text=args.text, answer=args.answer, region=region)
    store = _case_of_session(args)
    with store:
        backend = _open_backend(args)
        try:
            outcome = add_hints(store, args.session, [hint], backend, _turn_options(args))
        except SessionError as exc:
            raise CliError(str(exc)) from None
        finally:
            backend.close()
        return _report(args, outcome)


def _show(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, session_document

    store = _case_of_session(args)
    with store:
        try:
            document = session_document(store, args.session)
        except SessionError as exc:
            raise CliError(str(exc)) from None
    lines = [
        f"session {document['session']} ({document['mode']}) on {document['model']['name']}"
        f"@{document['model']['version']}, evidence {document['evidence'][:12]}"
    ]
    for t in document["turns"]:
        p = t["prediction"]
        hints = "; ".join(f"{h['kind']}: {h['text']}" for h in t["hints"]) or "first turn"
        where = ", ".join(x for x in (p["city"], p["region"], p["country"]) if x) or "-"
        lines.append(f"  turn {t['turn']} [{t['status']}] {hints} -> {where} ({p['lat']}, {p['lon']})")
        if t["status"] != "done" and t.get("error"):
            lines.append(f"    {t['status']}: {t['error']}")
    emit(args, document, "\n".join(lines))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, replay_session

    store = _case_of_session(args)
    with store:
        backend = _open_backend(args)
        try:
            replay, steps = replay_session(store, args.session, backend, _turn_options(args))
        except SessionError as exc:
            raise CliError(str(exc)) from None
        finally:
            backend.close()
    document = {
        "session": args.session,
        "replay": replay.id,
        "model": {"name": replay.model.name, "version": replay.model.version, "sha256": replay.model.sha256},
        "turns": [s.as_document() for s in steps],
    }
    lines = [f"replayed session {args.session} as session {replay.id}"]
    for s in document["turns"]:
        lines.append(f"  turn {s['turn']}: moved {s['moved_km']} km, same country {s['same_country']}")
    emit(args, document, "\n".join(lines))
    return 0
