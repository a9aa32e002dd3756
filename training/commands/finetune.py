"""``geodesk-train finetune``: stage 2, QLoRA fine-tuning (training/recipes/finetune_qlora.py)."""

from __future__ import annotations

import argparse
from typing import Any

from training.recipes._cli import add_config_arguments, emit_stage, run_stage


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="stage 2: QLoRA on the LLM (projector and vision tower frozen)",
        description="Stage 2: LoRA on an NF4 LLM over the mix of parts. Launch commands: config headers.",
    )
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument(
        "--no-quant",
        action="store_true",
        help="train LoRA on the unquantized model (machines without bitsandbytes support)",
    )
    parser.set_defaults(handler=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    from training.recipes import finetune_qlora

    extra = ["model.quantization=none"] if args.no_quant else []
    summary = run_stage(args, finetune_qlora, extra)
    emit_stage(args, summary)
    return 0
