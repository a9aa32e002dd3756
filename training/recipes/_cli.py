"""Command-line glue shared by ``geodesk-train pretrain`` / ``finetune`` / ``export`` / ``smoke``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit, progress_enabled


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="YAML", help="the recipe's config file")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. train.lr=2e-4 output_dir=runs/x (values are read as YAML)",
    )
    add_json_argument(parser)


def stage_summary_text(summary: dict[str, Any]) -> str:
    losses = summary["losses"]
    data = summary["data"]
    lines = [
        f"{summary['recipe']}: {summary['steps']} step(s) on {data['samples']} sample(s) "
        f"({data['truncated']} truncated, {data['dropped']} dropped) x {summary['world_size']} process(es)",
        f"loss: first {losses[0]:.4f}, final {losses[-1]:.4f}" if losses else "loss: no step was run",
        f"output: {summary['output_dir']}",
    ]
    return "\n".join(lines)


def run_stage(args: argparse.Namespace, module: Any, overrides: list[str]) -> dict[str, Any]:
    """Load the config with the overrides and run the recipe; recipe / data errors become CliErrors."""
    from training.datasets import DatasetError
    from training.recipes._common import RecipeError, load_config

    try:
        config = load_config(args.config, module.DEFAULTS, [*args.overrides, *overrides])
        if config.get("recipe") != module.DEFAULTS["recipe"]:
            raise RecipeError(
                f"{args.config} is a {config.get('recipe')!r} config; "
                f"this command runs {module.DEFAULTS['recipe']!r}"
            )
        result: dict[str, Any] = module.run(config, resume=bool(args.resume), progress=progress_enabled(args))
        return result
    except (RecipeError, DatasetError) as exc:
        raise CliError(str(exc)) from None


def emit_stage(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Print the summary once: under torchrun / accelerate only rank 0 speaks."""
    if int(os.environ.get("RANK", "0")) == 0:
        emit(args, summary, stage_summary_text(summary))
