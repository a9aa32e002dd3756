"""``geodesk map ...``: an administrator's tile sets for street level (ADR 0035).

geodesk map install FILE.pmtiles|FILE.mbtiles [--name NAME] [--json]
geodesk map list [--json]
geodesk map verify [ID] [--json]
geodesk map remove ID [--json]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit, workspace_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "map", help="tile sets drawn over the default basemap: install, list, verify, remove"
    )
    sub = parser.add_subparsers(dest="map_command", metavar="SUBCOMMAND", required=True)
    install = sub.add_parser(
        "install",
        help="install a PMTiles or MBTiles file (vector or raster tiles)",
        description="Check a PMTiles v3 file (vector tiles in the Protomaps basemap schema, or PNG / JPEG / "
        "WebP raster tiles) or an MBTiles file (converted once to PMTiles), hash it and install it into "
        "the workspace. The map draws it over the default basemap where it has tiles. Nothing is "
        "downloaded.",
    )
    install.add_argument("file", metavar="FILE", help="a .pmtiles or .mbtiles file")
    install.add_argument("--name", help="a name for the set (default: the file name)")
    add_json_argument(install)
    install.set_defaults(handler=_install)
    listing = sub.add_parser("list", help="the installed tile sets")
    add_json_argument(listing)
    listing.set_defaults(handler=_list)
    verify = sub.add_parser("verify", help="re-hash installed tile sets (all, or one)")
    verify.add_argument("ref", nargs="?", metavar="ID", help="tile set id (a unique prefix) or name")
    add_json_argument(verify)
    verify.set_defaults(handler=_verify)
    remove = sub.add_parser("remove", help="remove an installed tile set")
    remove.add_argument("ref", metavar="ID", help="tile set id (a unique prefix) or name")
    add_json_argument(remove)
    remove.set_defaults(handler=_remove)


def _human(t: Any) -> str:
    west, south, east, north = t.bounds
    return (
        f"{t.id}  {t.name}  {t.kind} ({t.tile_format}), zoom {t.min_zoom}-{t.max_zoom}, "
        f"bounds {west:.3f},{south:.3f},{east:.3f},{north:.3f}, {t.bytes / 1e6:.1f} MB from {t.source_name}"
    )


def _install(args: argparse.Namespace) -> int:
    from geodesk.services.map_tiles import TileSetError, install_tileset

    try:
        tileset = install_tileset(workspace_path(args), Path(args.file).expanduser(), args.name)
    except TileSetError as exc:
        raise CliError(str(exc)) from None
    emit(args, tileset.as_dict(), "installed " + _human(tileset))
    return 0


def _list(args: argparse.Namespace) -> int:
    from geodesk.services.map_tiles import TileSetError, list_tilesets

    try:
        sets = list_tilesets(workspace_path(args))
    except TileSetError as exc:
        raise CliError(str(exc)) from None
    human = "\n".join(map(_human, sets)) or "no tile sets installed"
    emit(args, {"tilesets": [s.as_dict() for s in sets]}, human)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from geodesk.services.map_tiles import TileSetError, find_tileset, list_tilesets, verify_tileset

    ws = workspace_path(args)
    try:
        sets = [find_tileset(ws, args.ref)] if args.ref else list_tilesets(ws)
    except TileSetError as exc:
        raise CliError(str(exc)) from None
    problems = {s.id: verify_tileset(ws, s) for s in sets}
    bad = {k: v for k, v in problems.items() if v}
    human = "\n".join(f"{k}: {v or 'ok'}" for k, v in problems.items()) or "no tile sets installed"
    emit(args, {"verified": len(sets), "problems": bad}, human)
    if bad:
        raise CliError(
            f"{len(bad)} tile set(s) failed verification; reinstall them with `geodesk map install`", 2
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from geodesk.services.map_tiles import TileSetError, remove_tileset

    try:
        tileset = remove_tileset(workspace_path(args), args.ref)
    except TileSetError as exc:
        raise CliError(str(exc)) from None
    emit(args, {"removed": tileset.as_dict()}, "removed " + _human(tileset))
    return 0
