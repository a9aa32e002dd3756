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
    from geodesk.services.cases import verify_case

    with _workspace(args).open_case(args.case) as store:
        problems = verify_case(store)
        case_id = store.case.id
        counts = store.counts()
    ok = not problems
    if ok:
        human = (
            f"case {case_id} is intact: {counts['evidence']} original(s) match their SHA-256 and "
            f"{counts['audit_entries']} audit entries form an unbroken chain"
        )
    else:
        human = f"case {case_id} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)
    emit(args, {"ok": ok, "problems": problems}, human)
    return 0 if ok else 1


@_handler
def _export(args: argparse.Namespace) -> int:
    from geodesk.services.cases import export_case

    with _workspace(args).open_case(args.case) as store:
        result = export_case(store, args.out, allow_problems=args.allow_problems)
    document = {
        "archive": str(result.archive),
        "sha256": result.sha256,
        "files": result.files,
        "audit_head": result.audit_head,
        "problems": result.problems,
    }
    human = f"sealed {result.files} file(s) into {result.archive}\n  sha256 {result.sha256}"
    if result.problems:
        human += f"\n  with {len(result.problems)} recorded problem(s)"
    emit(args, document, human)
    return 0


@_handler
def _open_archive(args: argparse.Namespace) -> int:
    from geodesk.services.cases import open_archive

    opened = open_archive(_workspace(args), args.zip, as_copy=args.as_copy)
    case = opened.case
    document = {"id": case.id, "title": case.title, "path": case.path, "original_id": opened.original_id}
    human = f"opened case {case.id} “{case.title}” from {args.zip}\n  {case.path}"
    emit(args, document, human)
    return 0
