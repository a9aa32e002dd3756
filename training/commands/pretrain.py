"""``geodesk-train pretrain``: stage 1, projector pretraining (training/recipes/pretrain_projector.py)."""

from __future__ import annotations

import argparse
from typing import Any

from training.recipes._cli import add_config_arguments, emit_stage, run_stage


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="stage 1: train the projector (vision tower and LLM frozen)",
        description="Stage 1: projector pretraining on the Meta part. Launch command in each config header.",
    )
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.set_defaults(handler=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from training.recipes import pretrain_projector

    summary = run_stage(args, pretrain_projector, [])
    emit_stage(args, summary)
    return 0
