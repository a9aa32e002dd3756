"""``geodesk clue``: list, add, accept, reject and edit the clues of a case (geodesk.services.clues)."""

from __future__ import annotations

import argparse

from geodesk.cli._common import CliError, add_json_argument, emit, errors_as_sentences, workspace_path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("clue", help="list, add, accept, reject and edit clues")
    commands = parser.add_subparsers(dest="clue_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="the clues of a case, or of one evidence item")
    listing.add_argument("case", metavar="CASE", help="case id or the start of its title")
    listing.add_argument("evidence", metavar="EVIDENCE", nargs="?", default=None,
                         help="SHA-256 or a unique prefix of it (default: every item)")
    add_json_argument(listing)
    listing.set_defaults(handler=_list)

    add = commands.add_parser("add", help="add your own clue to an evidence item (accepted)")
    add.add_argument("case", metavar="CASE", help="case id or the start of its title")
    add.add_argument("evidence", metavar="EVIDENCE", help="SHA-256 or a unique prefix of it")
    add.add_argument("text", metavar="TEXT", help="what you see, e.g. 'yellow road markings'")
    add.add_argument("--category", default="other",
                     help="sign, vegetation, architecture, road, text, vehicle, other (default: other)")
    add.add_argument("--region", metavar="X0,Y0,X1,Y1", default=None,
                     help="the rectangle on the image it is about, in original pixels")
    add_json_argument(add)
    add.set_defaults(handler=_add)

    for name, verb in (("accept", "accept"), ("reject", "reject")):
        command = commands.add_parser(name, help=f"{verb} a clue")
        command.add_argument("case", metavar="CASE", help="case id or the start of its title")
        command.add_argument("clue", metavar="ID", type=int, help="the clue's id (clue list shows it)")
        add_json_argument(command)
        command.set_defaults(handler=_accept if name == "accept" else _reject)

    edit = commands.add_parser("edit", help="replace a clue's text with your wording (status: edited)")
    edit.add_argument("case", metavar="CASE", help="case id or the start of its title")
    edit.add_argument("clue", metavar="ID", type=int, help="the clue's id (clue list shows it)")
    edit.add_argument("text", metavar="TEXT", help="the new text (an edit needs text)")
    add_json_argument(edit)
    edit.set_defaults(handler=_edit)


def _region(text: str | None) -> object:
    if text is None:
        return None
    from geodesk.domain.model import Region

    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
        return Region(x0, y0, x1, y1)
    except ValueError:
        raise CliError(
            f"--region {text!r} is not a rectangle: give X0,Y0,X1,Y1 in pixels with X0 < X1 and Y0 < Y1"
        ) from None


def _human(clues: list[object]) -> str:
    from geodesk.domain.model import Clue

    lines = []
    for clue in clues:
        assert isinstance(clue, Clue)
        lines.append(
            f"{clue.id:>5}  {clue.evidence_sha256[:12]}  {clue.status.value:<9} {clue.source.value:<8} "
            f"{clue.category}: {clue.text}"
        )
    return "\n".join(lines) or "no clues"


def _list(args: argparse.Namespace) -> int:
    from geodesk.services.clues import clue_document, list_clues
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        clues = list_clues(store, args.evidence)
    emit(args, {"clues": [clue_document(c) for c in clues]}, _human(list(clues)))
    return 0


def _change(args: argparse.Namespace, action: str) -> int:
    from geodesk.domain.model import Region
    from geodesk.services import clues as service
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        if action == "add":
            region = _region(args.region)
            assert region is None or isinstance(region, Region)
            clue = service.add_clue(store, args.evidence, args.category, args.text, region)
        elif action == "accept":
            clue = service.accept_clue(store, args.clue)
        elif action == "reject":
            clue = service.reject_clue(store, args.clue)
        else:
            clue = service.edit_clue(store, args.clue, args.text)
    emit(args, {"clue": service.clue_document(clue)}, _human([clue]))
    return 0


def _add(args: argparse.Namespace) -> int:
    return _change(args, "add")


def _accept(args: argparse.Namespace) -> int:
    return _change(args, "accept")


def _reject(args: argparse.Namespace) -> int:
    return _change(args, "reject")


def _edit(args: argparse.Namespace) -> int:
    return _change(args, "edit")
