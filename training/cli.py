"""``geodesk-train``: the training module's command line.

Each subcommand lives in ``training/commands/<name>.py`` with a ``register(subparsers)`` that sets
``handler=`` on its parser. Like ``geodesk``, every subcommand takes ``--json`` for its summary and
honours ``--workspace`` / ``GEODESK_WORKSPACE``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from geodesk.cli._common import CliError, add_workspace_argument, fail

# Module names under training.commands, in the order they appear in --help.
COMMANDS = (
    "build_data",
    "pretrain",
    "finetune",
    "export",
    "smoke",
    "evaluate",
    "gws_sample",
    "grpo",
    "geosynth",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geodesk-train", description="Rebuild and evaluate the geodesk model."
    )
    add_workspace_argument(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"training.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"training.commands.{name}":
                continue  # not part of this build yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args) or 0)
    except CliError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted; checkpoints written before the interruption are kept", 130)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
