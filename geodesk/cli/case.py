"""``geodesk case``: new, list, show, verify, export, open-archive."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geodesk.cli._common import add_json_argument, emit, errors_as_sentences, workspace_path
from geodesk.store import Workspace
from geodesk.store._codec import to_text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("case", help="create, list, inspect, verify, export and import cases")
    commands = parser.add_subparsers(dest="case_command", metavar="COMMAND", required=True)

    new = commands.add_parser("new", help="create a case")
    new.add_argument("title", metavar="TITLE", help="a few words saying what the case is about")
    add_json_argument(new)
    new.set_defaults(handler=_new)

    listing = commands.add_parser("list", help="list the cases of the workspace")
    add_json_argument(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="a case with the counts of what it holds")
    show.add_argument("case", metavar="CASE", help="case id or the start of its title")
    add_json_argument(show)
    show.set_defaults(handler=_show)

    verify = commands.add_parser(
        "verify", help="re-hash every original and check the audit chain (exit 1 on any problem)"
    )
    verify.add_argument("case", metavar="CASE", help="case id or the start of its title")
    add_json_argument(verify)
    verify.set_defaults(handler=_verify)

    export = commands.add_parser("export", help="seal a case into a zip archive with a manifest")
    export.add_argument("case", metavar="CASE", help="case id or the start of its title")
    export.add_argument("out", metavar="OUT.zip", type=Path, help="the archive to write")
    export.add_argument(
        "--allow-problems",
        action="store_true",
        help="seal a case that fails verification, recording its problems in the manifest",
    )
    export.add_argument("--force", action="store_true", help="replace OUT.zip if it already exists")
    export.add_argument(
        "--redact-paths",
        action="store_true",
        help="leave the analyst's local paths (evidence source paths, model folders) out of the archive",
    )
    add_json_argument(export)
    export.set_defaults(handler=_export)

    archive = commands.add_parser("open-archive", help="check a case archive and add it to the workspace")
    archive.add_argument("zip", metavar="ZIP", type=Path, help="an archive written by `geodesk case export`")
    archive.add_argument("--as-copy", action="store_true", help="give the case a new id if its id is taken")
    add_json_argument(archive)
    archive.set_defaults(handler=_open_archive)


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace(workspace_path(args))


def _case_fields(case: Any) -> dict[str, Any]:
    return {"id": case.id, "title": case.title, "path": case.path, "created_at": to_text(case.created_at)}


def _handler(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        with errors_as_sentences():
            return run(args)

    return wrapped


@_handler
def _new(args: argparse.Namespace) -> int:
    case = _workspace(args).create_case(args.title)
    document = {"id": case.id, "title": case.title, "path": case.path}
    emit(args, document, f"created case {case.id} “{case.title}”\n  {case.path}")
    return 0


@_handler
def _list(args: argparse.Namespace) -> int:
    workspace = _workspace(args)
    cases = workspace.list_cases()
    if cases:
        width = max(len(c.id) for c in cases)
        human = "\n".join(f"{c.id:<{width}}  {c.created_at:%Y-%m-%d}  {c.title}" for c in cases)
    else:
        human = f"no cases in {workspace.path}; create one with `geodesk case new TITLE`"
    emit(args, {"cases": [_case_fields(c) for c in cases]}, human)
    return 0


@_handler
def _show(args: argparse.Namespace) -> int:
    from geodesk.services.cases import case_summary

    with _workspace(args).open_case(args.case) as store:
        summary = case_summary(store)
    counts = summary["counts"]
    human = "\n".join(
        [
            f"{summary['id']}  “{summary['title']}”",
            f"  path      {summary['path']}",
            f"  created   {summary['created_at']}",
            *(f"  {name:<9} {count}" for name, count in counts.items()),
        ]
    )
    emit(args, summary, human)
    return 0


@_handler
def _verify(args: argparse.Namespace) -> int:
    from geodesk.services.cases import verify_report

    with _workspace(args).open_case(args.case) as store:
        report = verify_report(store)
        case_id = store.case.id
    ok = not report.problems
    if ok:
        lines = [f"case {case_id} is intact:"]
    else:
        lines = [f"case {case_id} has {len(report.problems)} problem(s):"]
        lines += [f"  - {p}" for p in report.problems]
        if report.proves:
            lines.append("what still holds:")
    lines += [f"  + {p}" for p in report.proves]
    lines.append("what verify cannot prove here:")
    lines += [f"  ? {p}" for p in report.limits]
    document = {"ok": ok, "problems": report.problems, "proves": report.proves, "limits": report.limits}
    emit(args, document, "\n".join(lines))
    return 0 if ok else 1


@_handler
def _export(args: argparse.Namespace) -> int:
    from geodesk.services.cases import export_case

    with _workspace(args).open_case(args.case) as store:
        result = export_case(
            store,
            args.out,
            allow_problems=args.allow_problems,
            force=args.force,
            redact_paths=args.redact_paths,
        )
    document = {
        "archive": str(result.archive),
        "sha256": result.sha256,
        "files": result.files,
        "audit_head": result.audit_head,
        "problems": result.problems,
        "redacted": result.redacted,
    }
    human = f"sealed {result.files} file(s) into {result.archive}\n  sha256 {result.sha256}"
    if result.problems:
        human += f"\n  with {len(result.problems)} recorded problem(s)"
    if result.redacted:
        human += (
            f"\n  redacted {result.redacted['evidence_source_paths']} source path(s) and "
            f"{result.redacted['session_model_paths']} model path(s)"
        )
        if result.redacted["paths_left_in_audit_entries"]:
            human += (
                f"\n  warning: {result.redacted['paths_left_in_audit_entries']} audit entries written by an "
                "older geodesk still name source paths; the hash chain covers them, so they stay"
            )
    emit(args, document, human)
    return 0


@_handler
def _open_archive(args: argparse.Namespace) -> int:
    from geodesk.services.cases import open_archive

    opened = open_archive(_workspace(args), args.zip, as_copy=args.as_copy)
    case = opened.case
    document = {
        "id": case.id,
        "title": case.title,
        "path": case.path,
        "original_id": opened.original_id,
        "seal": opened.seal,
        "original_title": opened.original_title,
    }
    seal = {
        "checked": "sealed by this workspace (seal checked)",
        "other workspace": "sealed by another workspace: its hashes and chain were checked, not who wrote it",
        "unsigned": (
            "sealed without a workspace signature: its hashes and chain were checked, not who wrote it"
        ),
    }[opened.seal]
    human = f"opened case {case.id} “{case.title}” from {args.zip.name}\n  {case.path}\n  {seal}"
    if opened.original_id != case.id:
        human += f"\n  the archive's case id {opened.original_id!r} was replaced"
    if opened.original_title is not None:
        human += "\n  control characters in the archived title were replaced with \ufffd"
    emit(args, document, human)
    return 0
