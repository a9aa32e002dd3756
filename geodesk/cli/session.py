"""``geodesk locate``, ``geodesk hint`` and ``geodesk session show|replay``: model sessions."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from geodesk.cli._backend import add_backend_arguments, open_backend_from_args
from geodesk.cli._common import CliError, add_json_argument, emit, terminal_safe, workspace_path
from geodesk.domain.model import Hint, HintKind, Region, SessionMode

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend
    from geodesk.services.sessions import TurnOutcome
    from geodesk.store.case_store import CaseStore

HINT_KINDS = ("question", "qa", "prior", "exclude", "correct", "region", "clues")


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
    hint.add_argument("--text", default="", help="the question, region name, correction or note "
                      "(--kind clues: an optional note with the verdict)")
    hint.add_argument("--answer", default=None, help="the answer, for --kind qa")
    hint.add_argument("--region", default=None, metavar="x0,y0,x1,y1", help="image region in pixels")
    _model_arguments(hint)
    hint.set_defaults(handler=_hint)

    session = subparsers.add_parser("session", help="list, show or replay sessions")
    sub = session.add_subparsers(dest="session_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", help="a case's sessions (or one evidence item's) and their answers")
    listing.add_argument("case", metavar="CASE", help="case id or unique title prefix")
    listing.add_argument("evidence", metavar="EVIDENCE", nargs="?", default=None,
                         help="only this evidence item's sessions (SHA-256 or a unique prefix)")
    add_json_argument(listing)
    listing.set_defaults(handler=_list)
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
    parser.add_argument(
        "--max-new-tokens", type=int, default=None,
        help="answer length limit (default 256; the globe profile's 512)",
    )
    parser.add_argument(
        "--temperature", type=float, default=None,
        help="0 is greedy (the default; the globe profile's is GLOBE's 0.1)",
    )
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


def _turn_options(args: argparse.Namespace, profile: Any = None) -> Any:
    """Decoding from the flags; unset ones take the prompt profile's defaults (GLOBE: 0.1, 512)."""
    from geodesk.engine.backends.base import BackendError, GenerationSettings
    from geodesk.services.sessions import TurnOptions

    max_new = args.max_new_tokens
    temperature = args.temperature
    if max_new is None:
        max_new = (profile.default_max_new_tokens if profile is not None else None) or 256
    if temperature is None:
        default = profile.default_temperature if profile is not None else None
        temperature = default if default is not None else 0.0
    try:
        settings = GenerationSettings(max_new_tokens=max_new, temperature=temperature, seed=args.seed)
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
        raise CliError(f"no case has a session {args.session}; list them with `geodesk session list CASE`")
    titles = ", ".join(repr(s.case.title) for s in holders)
    raise CliError(f"several cases have a session {args.session} ({titles}); name one with --case")


def _report(args: argparse.Namespace, outcome: TurnOutcome) -> int:
    document = outcome.as_document()
    p = outcome.turn.prediction
    where = ", ".join(x for x in (p.city, p.region, p.country) if x) or "no place named"
    coords = f"{p.lat:.4f}, {p.lon:.4f}" if p.lat is not None and p.lon is not None else "no coordinates"
    lines = [
        f"session {outcome.session.id} turn {outcome.turn.number} [{outcome.turn.status.value}] on "
        f"{outcome.session.model.name}@{outcome.session.model.version}",
        f"  {where} ({coords}){'' if p.valid else '  — not a valid answer'}",
    ]
    for c in p.candidates:
        lines.append(
            f"  candidate {c.share:.0%}: {c.lat:.3f}, {c.lon:.3f} ±{c.spread_km:.0f} km {c.country or ''}"
        )
    if outcome.truth_km is not None:
        lines.append(f"  {outcome.truth_km:.1f} km from the scene's true place")
    if outcome.turn.error:
        lines.append(f"  error: {outcome.turn.error}")
    lines += [f"  warning: {w}" for w in outcome.warnings]
    emit(args, document, "\n".join(lines))
    return 0 if outcome.turn.error is None else 1


def _locate(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, backend_profile, locate

    store = _open_case(args, args.case)
    with store:
        backend = _open_backend(args)
        try:
            options = _turn_options(args, backend_profile(backend))
            outcome = locate(store, args.evidence, backend, SessionMode(args.mode), options)
        except SessionError as exc:
            raise CliError(str(exc)) from None
        finally:
            backend.close()
        return _report(args, outcome)


def _hint(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, add_hints, clue_verdict_hint, session_profile

    try:
        region = Region.parse(args.region) if args.region else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    kind = HintKind(args.kind)
    if kind is HintKind.REGION and region is None:
        raise CliError("--kind region needs --region x0,y0,x1,y1")
    if kind is HintKind.QA and not args.answer:
        raise CliError("--kind qa needs --answer")
    if kind not in (HintKind.CORRECT, HintKind.CLUES) and not args.text.strip():
        raise CliError(f"--kind {args.kind} needs --text")
    hint = Hint(kind=kind, text=args.text, answer=args.answer, region=region)
    store = _case_of_session(args)
    with store:
        session = _stored_session(store, args.session)
        if kind is HintKind.CLUES:  # the analyst's verdict: every clue accepted, edited or rejected so far
            try:
                hint = replace(clue_verdict_hint(store, args.session), text=args.text)
            except SessionError as exc:
                raise CliError(f"{exc} (geodesk clue accept / reject ID)") from None
        backend = open_backend_from_args(args, args.model, session=session)
        try:
            options = _turn_options(args, session_profile(session))
            outcome = add_hints(store, args.session, [hint], backend, options)
        except SessionError as exc:
            raise CliError(str(exc)) from None
        finally:
            backend.close()
        return _report(args, outcome)


def _where(p: dict[str, Any]) -> str:
    place = ", ".join(x for x in (p["city"], p["region"], p["country"]) if x) or "no place named"
    if p["lat"] is None or p["lon"] is None:
        return f"{place} (no coordinates)"
    return f"{place} ({p['lat']:.4f}, {p['lon']:.4f})"


def _list(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, session_list_document

    store = _open_case(args, args.case)
    with store:
        try:
            document = session_list_document(store, args.evidence)
        except SessionError as exc:
            raise CliError(str(exc)) from None
    rows = document["sessions"]
    lines = [f"{len(rows)} session(s) in case {document['title']!r}"
             + (f" for evidence {document['evidence'][:12]}" if document["evidence"] else "")]
    for row in rows:
        last = row["last_turn"]
        answer = "no turn yet" if last is None else f"turn {last['turn']} [{last['status']}] " + _where(
            last["prediction"])
        lines.append(f"  session {row['session']}  {row['evidence'][:12]} {row['original_name'] or ''}  "
                     f"{row['mode']} on {row['model']['name']}@{row['model']['version']}: {answer}")
    emit(args, document, "\n".join(lines))
    return 0


def _stored_session(store: CaseStore, session_id: int) -> Any:
    try:
        return store.sessions.get(int(session_id))
    except LookupError:
        raise CliError(f"there is no session {session_id} in case {store.case.title!r}") from None


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
        truth = "" if t["truth_km"] is None else f", {t['truth_km']:.1f} km from the true place"
        lines.append(f"  turn {t['turn']} [{t['status']}] {hints} -> {_where(p)}{truth}")
        if t["status"] != "done" and t.get("error"):
            lines.append(f"    {t['status']}: {t['error']}")
    lines += [f"  warning: {w}" for w in document["warnings"]]
    emit(args, document, "\n".join(lines))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from geodesk.services.sessions import SessionError, replay_session, session_profile

    store = _case_of_session(args)
    with store:
        backend = _open_backend(args)
        try:
            options = _turn_options(args, session_profile(_stored_session(store, args.session)))
            replay, steps = replay_session(store, args.session, backend, options)
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
