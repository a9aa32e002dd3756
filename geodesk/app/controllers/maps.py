"""Map sources: the workspace's tile sets (an administrator's PMTiles / MBTiles files) and the open
case's map layers (KML / KMZ / GeoJSON / GPX an analyst imported).

The rules live in geodesk.services.map_tiles and geodesk.services.case_layers, which the CLI uses too
(`geodesk map ...`, `geodesk layer ...`); their refusals are sentences and are shown as they are.
Installing a tile set hashes the whole file (and converts MBTiles), so it runs as a job; the other
operations touch a small JSON list. Every change emits ``state.map_sources_changed`` so that the map
redraws what it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.app.controllers.base import Controller

if TYPE_CHECKING:
    from geodesk.services.case_layers import CaseLayer
    from geodesk.services.map_tiles import TileSet

TILESETS = "tilesets"
LAYERS = "layers"


class MapsController(Controller):
    # -- tile sets (workspace-wide)
    def tilesets(self) -> list[TileSet]:
        from geodesk.services.map_tiles import TileSetError, list_tilesets

        try:
            return list_tilesets(self.ctx.workspace_path)
        except TileSetError as exc:
            self.ctx.say("Tile sets", str(exc))
            return []

    def install_tileset(
        self, source: Path, name: str | None = None, on_done: Callable[[TileSet | None], None] | None = None
    ) -> None:
        """Check, hash and install ``source`` in a job; ``on_done`` gets the set, or None on a refusal."""
        from geodesk.services.map_tiles import install_tileset

        workspace = self.ctx.workspace_path

        def run(_job: Any) -> TileSet:
            return install_tileset(workspace, Path(source), name)

        def done(tileset: TileSet) -> None:
            self.ctx.say("Tile sets", f"installed {tileset.name} ({tileset.id})", error=False)
            self.state.map_sources_changed.emit(TILESETS)
            if on_done is not None:
                on_done(tileset)

        def failed(message: str) -> None:
            self.ctx.say("Tile sets", message)
            if on_done is not None:
                on_done(None)

        self.ctx.start_job("tiles", run, f"Installing {Path(source).name}", on_result=done, on_failed=failed)

    def verify_tileset(self, ref: str) -> str | None:
        """None when the installed file still has its hash, else the sentence that says what is wrong."""
        from geodesk.services.map_tiles import TileSetError, find_tileset, verify_tileset

        try:
            problem = verify_tileset(self.ctx.workspace_path, find_tileset(self.ctx.workspace_path, ref))
        except TileSetError as exc:
            problem = str(exc)
        if problem:
            self.ctx.say("Tile sets", problem)
        else:
            self.ctx.say("Tile sets", f"{ref}: the file matches its SHA-256", error=False)
        return problem

    def remove_tileset(self, ref: str) -> bool:
        from geodesk.services.map_tiles import TileSetError, remove_tileset

        try:
            removed = remove_tileset(self.ctx.workspace_path, ref)
        except TileSetError as exc:
            self.ctx.say("Tile sets", str(exc))
            return False
        self.ctx.say("Tile sets", f"removed {removed.name}", error=False)
        self.state.map_sources_changed.emit(TILESETS)
        return True

    # -- case layers (the open case)
    def layers(self) -> list[CaseLayer]:
        from geodesk.services.case_layers import LayerError, list_layers

        if self.state.case_dir is None:
            return []
        try:
            return list_layers(self.state.case_dir)
        except LayerError as exc:
            self.ctx.say("Map layers", str(exc))
            return []

    def _layer_op(self, what: str, fn: Callable[..., CaseLayer], *args: Any) -> CaseLayer | None:
        from geodesk.services.case_layers import LayerError

        case_dir = self.state.case_dir
        if case_dir is None:
            self.ctx.say("Map layers", "open a case first: map layers belong to a case")
            return None
        try:
            layer = fn(case_dir, *args)
        except LayerError as exc:
            self.ctx.say("Map layers", str(exc))
            return None
        self.ctx.say("Map layers", f"{what} {layer.name}", error=False)
        self.state.map_sources_changed.emit(LAYERS)
        return layer

    def import_layer(self, source: Path, name: str | None = None) -> CaseLayer | None:
        from geodesk.services.case_layers import import_layer

        return self._layer_op("imported", import_layer, Path(source), name)

    def set_layer_visible(self, ref: str, visible: bool) -> CaseLayer | None:
        from geodesk.services.case_layers import set_visible

        return self._layer_op("showing" if visible else "hid", set_visible, ref, visible)

    def remove_layer(self, ref: str) -> CaseLayer | None:
        from geodesk.services.case_layers import remove_layer

        return self._layer_op("removed", remove_layer, ref)
