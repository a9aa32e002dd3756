"""``geodesk layer ...``: map layers of a case, from KML, KMZ, GeoJSON or GPX files.

geodesk layer import CASE FILE [--name NAME] [--json]
geodesk layer list CASE [--json]
geodesk layer show|hide CASE LAYER [--json]
geodesk layer remove CASE LAYER [--json]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit, errors_as_sentences, workspace_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "layer", help="map layers of a case: import KML/KMZ/GeoJSON/GPX, list, toggle"
    )
    sub = parser.add_subparsers(dest="layer_command", metavar="SUBCOMMAND", required=True)
    imp = sub.add_parser(
        "import",
        help="import a KML, KMZ, GeoJSON or GPX file as a map layer of the case",
        description="Read the file's points, lines and polygons with their names and descriptions (as "
        "plain text) into the case; nothing the file references is fetched or opened. The layer is "
        "stored in the case folder and in its archive.",
    )
    imp.add_argument("case", metavar="CASE")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--name", help="a name for the layer (default: the file name)")
    add_json_argument(imp)
    imp.set_defaults(handler=_import)
    listing = sub.add_parser("list", help="the case's layers")
    listing.add_argument("case", metavar="CASE")
    add_json_argument(listing)
    listing.set_defaults(handler=_list)
    for name, visible in (("show", True), ("hide", False)):
        toggle = sub.add_parser(name, help=f"{name} a layer on the case's map")
        toggle.add_argument("case", metavar="CASE")
        toggle.add_argument("layer", metavar="LAYER", help="layer id (a unique prefix) or name")
        add_json_argument(toggle)
        toggle.set_defaults(handler=_toggle, visible=visible)
    remove = sub.add_parser("remove", help="remove a layer from the case")
    remove.add_argument("case", metavar="CASE")
    remove.add_argument("layer", metavar="LAYER", help="layer id (a unique prefix) or name")
    add_json_argument(remove)
    remove.set_defaults(handler=_remove)


def _case_path(args: argparse.Namespace) -> Path:
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        return Path(store.path)


def _human(layer: Any) -> str:
    state = "shown" if layer.visible else "hidden"
    return f"{layer.id}  {layer.name}  {layer.features} features from {layer.source_name} ({state})"


def _run(fn: Any, *a: Any) -> Any:
    from geodesk.services.case_layers import LayerError

    try:
        return fn(*a)
    except LayerError as exc:
        raise CliError(str(exc)) from None


def _import(args: argparse.Namespace) -> int:
    from geodesk.services.case_layers import import_layer

    layer = _run(import_layer, _case_path(args), Path(args.file).expanduser(), args.name)
    emit(args, layer.as_dict(), "imported " + _human(layer))
    return 0


def _list(args: argparse.Namespace) -> int:
    from geodesk.services.case_layers import list_layers

    layers = _run(list_layers, _case_path(args))
    emit(args, {"layers": [x.as_dict() for x in layers]}, "\n".join(map(_human, layers)) or "no layers")
    return 0


def _toggle(args: argparse.Namespace) -> int:
    from geodesk.services.case_layers import set_visible

    layer = _run(set_visible, _case_path(args), args.layer, args.visible)
    emit(args, layer.as_dict(), _human(layer))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from geodesk.services.case_layers import remove_layer

    layer = _run(remove_layer, _case_path(args), args.layer)
    emit(args, {"removed": layer.as_dict()}, "removed " + _human(layer))
    return 0
