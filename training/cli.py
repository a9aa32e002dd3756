"""``geodesk-train``: the training module's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

STAGES = ("build-data", "pretrain", "finetune", "grpo", "evaluate", "export", "geosynth", "gws-sample", "smoke")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geodesk-train", description="Rebuild and evaluate the geodesk model.")
    parser.add_argument("--workspace", metavar="DIR", default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for stage in STAGES:
        sub.add_parser(stage, help=f"{stage} (not built yet)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sys.stderr.write(f"geodesk-train: '{args.command}' is not built yet in this version of geodesk.\n")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
