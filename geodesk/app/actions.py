"""The app's actions as data: built once here, shown by the Qt window as menu items, buttons, shortcuts.

An :class:`ActionSpec` names an action, its text, shortcut and tip, the handler it runs and the
condition under which it is enabled (a function of :class:`~geodesk.app.state.AppState`). The window
makes one QAction per spec and re-evaluates ``enabled_when`` whenever the state changes; nothing else
enables or disables actions. Actions that need the analyst's input (a title, files, a dialog) call the
:class:`Prompts` the view provides. A new feature adds its spec to :func:`app_actions` (and, when it
needs a dialog, a method to :class:`Prompts`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from geodesk.app.state import AppState

if TYPE_CHECKING:
    from geodesk.app.application import Application


class Prompts(Protocol):
    """What the view asks the analyst (dialogs); the Qt window implements it."""

    def ask_case_title(self) -> str | None: ...

    def ask_image_files(self) -> list[Path]: ...

    def ask_image_folder(self) -> Path | None: ...

    def selected_case(self) -> str | None: ...

    def show_replay(self) -> None: ...

    def show_model_manager(self) -> None: ...

    def show_map_sources(self) -> None: ...

    def show_settings(self) -> None: ...

    def show_report(self) -> None: ...

    def ask_export_path(self) -> Path | None: ...


def always(_state: AppState) -> bool:
    return True


@dataclass(frozen=True)
class ActionSpec:
    name: str  # stable id: the window's acts[name]
    text: str  # with & for the mnemonic
    handler: Callable[[], object]
    shortcut: str | None = None  # a QKeySequence string ("Ctrl+I") or a standard key name ("New")
    tip: str = ""
    enabled_when: Callable[[AppState], bool] = always
    disabled_tip: str = ""  # the tip while disabled, when it says why
    menu: str = ""  # File, View, Models, Help
    checkable: bool = False
    toolbar: bool = False


def app_actions(app: Application, prompts: Prompts) -> list[ActionSpec]:
    """The actions that act on the application (the view adds its own: zoom, draw, layout, quit)."""
    from geodesk.services.models import NO_MODEL

    def ask_new_case() -> None:
        title = prompts.ask_case_title()
        if title and title.strip():
            app.cases.create(title)

    def open_selected() -> None:
        ref = prompts.selected_case()
        if ref is None:
            app.ctx.status("Choose a case in the Cases list first")
        else:
            app.cases.open(ref)

    def import_files() -> None:
        files = prompts.ask_image_files()
        if files:
            app.evidence.import_paths(files)

    def import_folder() -> None:
        folder = prompts.ask_image_folder()
        if folder is not None:
            app.evidence.import_paths([folder])

    def export_gis() -> None:
        out = prompts.ask_export_path()
        if out is not None:
            app.deliverables.export(out)

    def started(s: AppState) -> bool:
        return s.started

    def can_import(s: AppState) -> bool:
        return s.has_case and "import" not in s.busy

    def can_start(s: AppState) -> bool:
        return s.has_evidence and not s.model_running

    def has_model(s: AppState) -> bool:
        return s.started and s.model is not None

    return [
        ActionSpec("open_demo", "Open the &demo case", lambda: app.demo.open_case(),
                   tip="Build (or reuse) the demo case of synthetic GeoSynth scenes and the demo model, "
                   "then open it; a demonstration, not casework",
                   enabled_when=lambda s: s.started and "demo" not in s.busy,
                   disabled_tip="the demo case is being built", menu="Help"),
        ActionSpec("new_case", "&New case…", ask_new_case, "New", enabled_when=started, menu="File",
                   toolbar=True),
        ActionSpec("open_case", "&Open case", open_selected, "Open", enabled_when=started, menu="File"),
        ActionSpec("close_case", "&Close case", app.cases.close, "Close",
                   enabled_when=lambda s: s.has_case, menu="File"),
        ActionSpec("import_files", "&Import images…", import_files, "Ctrl+I", enabled_when=can_import,
                   disabled_tip="Open a case first (or wait for the running import)", menu="File",
                   toolbar=True),
        ActionSpec("import_folder", "Import &folder…", import_folder, "Ctrl+Shift+I",
                   enabled_when=can_import, menu="File"),
        ActionSpec("report", "&Report…", prompts.show_report, "Ctrl+P",
                   tip="Preview the case report, then save it as HTML or PDF",
                   enabled_when=lambda s: s.has_case and "report" not in s.busy,
                   disabled_tip="Open a case first", menu="File"),
        ActionSpec("export_gis", "&Export for GIS…", export_gis, "Ctrl+E",
                   tip="Findings, predictions and EXIF points as GeoJSON, KML, KMZ or CSV",
                   enabled_when=lambda s: s.has_case, disabled_tip="Open a case first", menu="File"),
        ActionSpec("cancel_jobs", "Cancel &running work", app.cancel_work, "Esc",
                   enabled_when=lambda s: bool(s.busy & {"import", "turn", "replay", "batch", "load"}),
                   menu="File"),
        ActionSpec("load_model", "&Load model", app.models.load, tip="Load the model now (in the background)",
                   enabled_when=lambda s: has_model(s) and not s.model_running, disabled_tip=NO_MODEL,
                   menu="Models"),
        ActionSpec("start_session", "&Start session", app.sessions.start, "Ctrl+Return",
                   enabled_when=can_start, disabled_tip="choose an image first", menu="Models", toolbar=True),
        ActionSpec("stop_session", "S&top", app.sessions.stop, "Ctrl+.",
                   enabled_when=lambda s: bool(s.busy & {"turn", "replay", "batch"}), menu="Models",
                   toolbar=True),
        ActionSpec("replay_session", "&Replay session…", prompts.show_replay,
                   tip="Run this session's turns again on the active or another model and compare",
                   enabled_when=lambda s: s.session is not None and not s.model_running, menu="Models"),
        ActionSpec("locate_all", "Locate &all", app.batch.locate_all, "Ctrl+Shift+Return",
                   tip="Locate every image of the case that has no finished session on this model yet",
                   enabled_when=lambda s: s.has_case and has_model(s) and not s.model_running
                   and "import" not in s.busy,
                   disabled_tip=NO_MODEL, menu="Models", toolbar=True),
        *clue_actions(app),
        ActionSpec("model_manager", "&Model manager…", prompts.show_model_manager, enabled_when=started,
                   menu="Models"),
        ActionSpec("settings", "&Settings…", prompts.show_settings, "Preferences", enabled_when=started,
                   menu="Models"),
        ActionSpec("map_sources", "Map &layers and tile sets…", prompts.show_map_sources,
                   tip="Install, verify and remove tile sets; import, show, hide and remove case layers",
                   enabled_when=started, menu="File"),
    ]


def clue_actions(app: Application) -> list[ActionSpec]:
    """The clue engine's actions (menu Clues): run it, mark the sun, send the accepted clues."""
    from geodesk.app.controllers.clue_engine import ENGINE_JOB, REVIEWED

    def can_run(s: AppState) -> bool:
        return s.has_evidence and ENGINE_JOB not in s.busy

    def can_send(s: AppState) -> bool:
        accepted = any(c.clue.status in REVIEWED for c in s.engine_clues)
        return s.session is not None and accepted and not s.model_running

    return [
        ActionSpec("run_clue_engine", "Run &clue engine", app.clue_engine.run, "Ctrl+K",
                   tip="Read the selected image's text, numbers, addresses and time zone (in the background)",
                   enabled_when=can_run,
                   disabled_tip="choose an image first (or wait for the running engine)",
                   menu="Clues", toolbar=True),
        ActionSpec("run_clue_engine_region", "Run clue engine on the drawn &region",
                   lambda: app.clue_engine.run(app.state.pending_region),
                   enabled_when=lambda s: can_run(s) and s.pending_region is not None,
                   disabled_tip="draw a region on the image first (View → Draw region)", menu="Clues"),
        ActionSpec("run_clue_engine_all", "Run clue engine on &all images", app.clue_engine.run_all,
                   enabled_when=lambda s: s.has_case and ENGINE_JOB not in s.busy and "import" not in s.busy,
                   disabled_tip="open a case first (or wait for the running engine)", menu="Clues"),
        ActionSpec("mark_sun", "Mark &sun and shadow", lambda: app.clue_engine.set_sun_marking(
                       not app.state.sun_marking),
                   tip="On the image: drag a box over a vertical object, then click the tip of its shadow",
                   enabled_when=lambda s: s.has_evidence, disabled_tip="choose an image first", menu="Clues"),
        ActionSpec("send_clues", "Send accepted clues as &hint", app.clue_engine.send_accepted,
                   "Ctrl+Shift+K",
                   tip="The accepted engine clues become the next turn's +QA hint; the model answers again",
                   enabled_when=can_send,
                   disabled_tip="accept engine clues and start a session first", menu="Clues"),
    ]
