"""``geodesk-train``: the training module's command line.

Each subcommand lives in ``training/commands/<name>.py`` with a ``register(subparsers)`` that sets
``handler=`` on its parser. Like ``geodesk``, every subcommand takes ``--json`` for its summary and
honours ``--workspace`` / ``GEODESK_WORKSPACE``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from geodesk.cli._common import add_workspace_argument, register_commands, run_handler

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
    register_commands(sub, "training.commands", COMMANDS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return run_handler(args, "checkpoints written before the interruption are kept")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
