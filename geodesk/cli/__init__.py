"""The ``geodesk`` command line. With no subcommand it opens the desktop app.

Each command group lives in its own module and registers itself in :data:`COMMAND_GROUPS`. The
contract (DESIGN.md): every reporting command takes ``--json`` and prints one JSON document; errors go
to stderr as a sentence a person can act on, with a non-zero exit. Heavy libraries are imported only
inside the commands that need them, so ``geodesk --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from geodesk import __version__
from geodesk.cli._common import add_workspace_argument, fail, register_commands, run_handler

# Module names under geodesk.cli; each defines ``register(subparsers)``.
COMMAND_GROUPS = (
    "case", "evidence", "clue", "clues", "finding", "geo", "layer", "map", "model", "session", "serve",
    "batch", "demo", "doctor", "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geodesk",
        description="Offline photo-geolocation workstation. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"geodesk {__version__}")
    add_workspace_argument(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_commands(subparsers, "geodesk.cli", COMMAND_GROUPS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        return _open_app(args)
    return run_handler(args, "work finished before the interruption was kept")


def _open_app(args: argparse.Namespace) -> int:
    import os

    from geodesk.cli._launch import FLAGS_VARIABLE, webengine_flags

    flags, note = webengine_flags(os.geteuid(), os.environ)
    if flags is not None:
        os.environ[FLAGS_VARIABLE] = flags
    if note is not None:
        sys.stderr.write(f"geodesk: {note}\n")
    try:
        from geodesk.qt.app import run_app
    except ImportError as exc:  # Qt libraries missing on a server install
        return fail(f"the desktop app cannot start: {exc}. Run `geodesk doctor` to see which system "
                    "libraries are missing (`make system-packages` installs them).", 1)
    return run_app(workspace=args.workspace)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
