"""``geodesk-train grpo``: stage 3, GRPO with geographic rewards (training/recipes/grpo.py)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from training.recipes._cli import add_config_arguments, run_stage


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "grpo", help="stage 3: GRPO with geographic rewards (LoRA / QLoRA on a stage-2 model)",
        description="Stage 3: GRPO with format, distance, admin-level, semantic, grounding and consistency "
        "rewards. Launch command in each config header (training/configs/grpo_*.yaml).",
    )
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.set_defaults(handler=_grpo)


def summary_text(summary: dict[str, Any]) -> str:
    history = summary["outputs"].get("reward_history") or []
    first, last = (history[0], history[-1]) if history else ({}, {})
    names = [k for k in last if k.endswith("_mean") and k != "reward_mean"]
    lines = [
        f"grpo: {summary['steps']} step(s) on {summary['data']['samples']} prompt(s) "
        f"({summary['data']['dropped']} dropped)",
        f"reward: first {first['reward_mean']:.4f}, final {last['reward_mean']:.4f}"
        if history else "reward: no step was run",
        *(f"  {name.removesuffix('_mean')}: {last[name]:.4f}" for name in names),
        f"adapter: {summary['outputs'].get('adapter')}",
        f"log: {summary['outputs'].get('metrics_csv')}",
    ]
    return "\n".join(lines)


def _grpo(args: argparse.Namespace) -> int:
    from geodesk.cli._common import emit
    from training.recipes import grpo

    summary = run_stage(args, grpo, [])
    if int(os.environ.get("RANK", "0")) == 0:
        emit(args, summary, summary_text(summary))
    return 0
