"""``geodesk-train export``: merge the adapter into a bf16 base and write (and install) a model package."""

from __future__ import annotations

import argparse
from typing import Any

from geodesk.cli._common import CliError, emit, workspace_path
from training.recipes._cli import add_config_arguments


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="merge base + projector + adapter into a model package; optionally install it",
        description="Write a geodesk model package from the two stages' outputs (recipes/export.py).",
    )
    add_config_arguments(parser)
    parser.add_argument("--install", action="store_true", help="install the package into the workspace")
    parser.add_argument("--name", help="registry name (default: the config's name)")
    parser.add_argument("--version", help="registry version (default: the config's version)")
    parser.set_defaults(handler=_export)


def install_package(workspace: Any, package: str, name: str | None, version: str | None) -> dict[str, Any]:
    from geodesk.engine.registry import ModelRegistry, RegistryError

    try:
        installed = ModelRegistry(workspace).install(package, name, version)
    except RegistryError as exc:
        raise CliError(str(exc)) from None
    document: dict[str, Any] = installed.to_json()
    return document


def _export(args: argparse.Namespace) -> int:
    from geodesk.engine.checkpoint import CheckpointError
    from geodesk.engine.package import PackageError
    from training.recipes import export
    from training.recipes._common import RecipeError, load_config

    overrides = list(args.overrides)
    if args.name:
        overrides.append(f"name={args.name}")
    if args.version:
        overrides.append(f"version={args.version}")
    try:
        config = load_config(args.config, export.DEFAULTS, overrides)
        result = export.export_package(config)
    except (RecipeError, CheckpointError, PackageError) as exc:
        raise CliError(str(exc)) from None
    if args.install:
        result["installed"] = install_package(
            workspace_path(args), result["package"], result["name"], result["version"]
        )
    human = f"package {result['name']}@{result['version']} written to {result['package']}"
    if args.install:
        human += f"\ninstalled as {result['installed']['ref']} in {workspace_path(args)}"
    emit(args, result, human)
    return 0
