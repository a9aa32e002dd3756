"""``geodesk demo``: a demo case of synthetic GeoSynth scenes plus a model to try the interactive loop."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit, workspace_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="set up a demo case of synthetic scenes and the demo model (not for casework)",
        description=(
            "Create (or reuse) a demo case of GeoSynth street scenes, synthetic images drawn from facts "
            "about real countries, and install the demo model (trained on those scenes only) or, when it "
            "has not been built, the untrained tiny model. Rerunning reuses the case and the model. "
            "Real casework needs GaGA-class weights installed by an administrator."
        ),
    )
    # SUPPRESS: when absent here, the value given before the subcommand (or the environment) stands.
    parser.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace folder (default: $GEODESK_WORKSPACE, else the per-user data folder)")
    parser.add_argument("--n", type=int, default=12, metavar="N", help="number of scenes (default 12)")
    parser.add_argument("--seed", type=int, default=None,
                        help="scene seed for a new demo case (default: a fresh random seed)")
    add_json_argument(parser)
    parser.set_defaults(handler=_demo)


def _workspace_flag(args: argparse.Namespace) -> str:
    """` --workspace DIR` when the demo's workspace is not the one a bare `geodesk` opens."""
    if getattr(args, "workspace", None) is None:
        return ""  # $GEODESK_WORKSPACE or the default: a bare `geodesk` finds the same one
    return f" --workspace {shlex.quote(str(workspace_path(args)))}"


def _open_command(args: argparse.Namespace) -> str:
    return "geodesk" + _workspace_flag(args)


def _demo(args: argparse.Namespace) -> int:
    from geodesk.services.demo import DemoError, run_demo

    try:
        result = run_demo(workspace_path(args), n=args.n, seed=args.seed)
    except DemoError as exc:
        raise CliError(str(exc)) from None
    document = result.as_document()
    verb = "created" if result.created_case else "reused"
    lines = [
        f"{verb} demo case {result.case_id} \"{result.case_title}\": {result.images} synthetic scenes "
        f"(seed {result.seed}, {result.imported} added now)",
        f"model {result.model.ref}: {result.model.label}",
        *(f"note: {note}" for note in result.notes),
        f"Open it with `{_open_command(args)}` (the desktop app), or try the loop on the command line: "
        f"`geodesk{_workspace_flag(args)} session list {result.case_id}`.",
        "These scenes and this model are a demonstration only: the model knows nothing about real "
        "photographs; real casework needs GaGA-class weights installed by an administrator "
        "(`geodesk model install`).",
    ]
    emit(args, document, "\n".join(lines))
    return 0
