"""Screenshots of the desktop app on a demo case, for docs/screenshots/ and the README.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshots.py [--out docs/screenshots]

(or under Xvfb with the xcb platform: ``xvfb-run -a .venv/bin/python tools/screenshots.py``).
It builds a demo workspace in a temp folder: a case with three generated photos (two with EXIF GPS),
a real session on the *untrained* tiny model (geodesk.engine.tiny, installed through the model registry:
its answers are noise, and the app labels it so), a hint turn, an analyst clue pinned to a region and a
finding placed on the map, a replay of the session, "Locate all" over the case, and the model manager.
Then it grabs the main window and the dialogs in their main states. A web view grabs blank offscreen,
so the map page is written to HTML and rendered with headless Chromium (Debian ``chromium``) when one
is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def demo_images(folder: Path) -> list[Path]:
    import numpy as np
    from PIL import Image, ImageDraw

    specs = [
        ("harbour.jpg", (59.9075, 10.7530), (40, 90, 150)),
        ("market.jpg", (41.0082, 28.9784), (170, 110, 60)),
        ("ridge.jpg", None, (60, 120, 60)),
    ]
    paths = []
    rng = np.random.default_rng(1)
    for name, gps, colour in specs:
        pixels = (np.array(colour) + rng.normal(0, 18, (600, 900, 3))).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        draw.rectangle((520, 120, 820, 230), fill=(240, 240, 235))
        draw.text((540, 160), "GATE 12 / KAI 3", fill=(20, 20, 20))
        exif = Image.Exif()
        if gps is not None:

            def dms(v: float) -> tuple[float, float, float]:
                v = abs(v)
                d, m = int(v), int((abs(v) - int(v)) * 60)
                return (float(d), float(m), round((v - d - m / 60) * 3600, 3))

            exif[0x8825] = {1: "N", 2: dms(gps[0]), 3: "E", 4: dms(gps[1])}
        path = folder / name
        image.save(path, "JPEG", quality=88, exif=exif)
        paths.append(path)
    return paths


def pump(app: object, seconds: float, until: object = None) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        app.processEvents()  # type: ignore[attr-defined]
        if until is not None and until():  # type: ignore[operator]
            return
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6 import QtWebEngineWidgets  # noqa: F401
    from PySide6.QtWidgets import QApplication

    from geodesk.domain.model import Hint, HintKind, Region
    from geodesk.engine.registry import ModelRegistry
    from geodesk.engine.tiny import create_tiny_model
    from geodesk.qt.app import create_app
    from geodesk.qt.dialogs.models import ModelManagerDialog
    from geodesk.qt.main_window import MainWindow
    from geodesk.report.map_page import write_map_page

    app = create_app()
    assert isinstance(app, QApplication)
    work = Path(tempfile.mkdtemp(prefix="geodesk-shots-"))
    try:
        (work / "in").mkdir()
        demo_model = ROOT / "resources" / "demo-model"
        use_demo = (demo_model / "geodesk-model.json").is_file()
        truth: list[dict[str, str]] = []
        if use_demo:
            # GeoSynth scenes and the demo model trained on them (synthetic, not for casework).
            import csv

            from training.geosynth.generator import generate

            generate(work / "scenes", n=3, seed=20261121, size=336, hidden_share=0.0)
            with (work / "scenes" / "metadata.csv").open(encoding="utf-8") as fh:
                truth = list(csv.DictReader(fh))
            images = sorted((work / "scenes" / "images").glob("*.png"))
        else:
            images = demo_images(work / "in")
        window = MainWindow(work / "workspace", restore_layout=False)
        window.show()
        # The window fits the screen it opens on (offscreen: 800x800); the pictures are taken at 1600x1000.
        window.resize(1600, 1000)
        window.apply_default_sizes()
        pump(app, 30, lambda: window.docks["map"].view.is_ready)
        window.grab().save(str(args.out / "01-empty-workspace.png"))

        window.app.cases.create("Demo: GeoSynth scenes (synthetic)" if use_demo else "Demo: harbour photos")
        done: list[object] = []
        window.state.import_finished.connect(done.append)
        window.app.evidence.import_paths(images)
        pump(app, 120, lambda: bool(done))
        pump(app, 2, lambda: window.viewer.has_image())
        window.grab().save(str(args.out / "02-case-imported.png"))

        # The demo model when built, else the untrained tiny model, installed as the model manager does.
        if use_demo:
            installed = ModelRegistry(window.app.workspace_path).install(demo_model)
        else:
            create_tiny_model(work / "tiny-llava")
            installed = ModelRegistry(window.app.workspace_path).install(work / "tiny-llava")
        state, controllers = window.state, window.app
        controllers.models.changed()
        controllers.sessions.max_new_tokens = 48
        controllers.sessions.start("direct")
        pump(app, 300, lambda: not state.model_running and bool(state.turns))
        question = "Which side of the road do the cars drive on?"
        controllers.sessions.send_hint(Hint(HintKind.QUESTION, question))
        pump(app, 300, lambda: not state.model_running and len(state.turns) >= 2)
        assert state.evidence is not None
        controllers.clues.add(
            "signage",
            "place-name sign at the roadside" if use_demo else "bilingual gate sign 'GATE 12 / KAI 3'",
            Region(40, 40, 200, 120) if use_demo else Region(520, 120, 820, 230),
        )
        pump(app, 10, lambda: controllers.ctx.writes_pending == 0)  # the clue is stored in a job
        clue = next((c for c in state.clues if c.category == "signage"), None)
        if use_demo and truth:
            name = state.evidence.original_name
            shown = next((row for row in truth if row["image"].endswith(name)), truth[0])
            point = float(shown["latitude"]), float(shown["longitude"])
        else:
            point = 59.9075, 10.7530
        controllers.findings.propose_point(*point)  # a map click: the form fills in
        window.docks["finding"].editor.save_button.click()  # Save records it (in a job)
        pump(app, 10, lambda: controllers.ctx.writes_pending == 0)
        # an analyst's own map layer (GeoJSON): drawn on the map, listed in the map sources dialog
        lat0, lon0 = point
        route = work / "witness-route.geojson"
        route.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": "route the witness describes"},
             "geometry": {"type": "LineString", "coordinates": [
                 [lon0 - 0.35, lat0 - 0.25], [lon0 - 0.15, lat0 - 0.05], [lon0 + 0.02, lat0 + 0.01]]}},
            {"type": "Feature", "properties": {"name": "where the witness started"},
             "geometry": {"type": "Point", "coordinates": [lon0 - 0.35, lat0 - 0.25]}},
        ]}), encoding="utf-8")
        window.app.maps.import_layer(route, "Witness route (analyst layer)")
        state.selected_clue = None if clue is None else clue.id
        pump(app, 1.0)
        window.grab().save(str(args.out / "03-session-and-clues.png"))
        window.docks["history"].raise_()
        state.selected_turn = state.turns[-1].index
        window.docks["finding"].raise_()
        pump(app, 0.5)
        window.grab().save(str(args.out / "04-history-and-finding.png"))

        # Replay the session on the same model: the per-turn comparison and the new session.
        window.docks["history"].raise_()
        window.acts["replay_session"].trigger()
        replay = window.prompts.dialog
        assert replay is not None
        replayed: list[object] = []
        state.replay_finished.connect(replayed.append)
        replay.run()  # type: ignore[attr-defined]
        pump(app, 300, lambda: bool(replayed) and not state.model_running)
        pump(app, 0.3)
        replay.grab().save(str(args.out / "06-replay.png"))
        replay.close()

        # Locate all: the third image gets its session; the grid marks located items.
        controllers.batch.locate_all()
        pump(app, 300, lambda: controllers.batch.last_report is not None and not state.model_running)
        pump(app, 0.5)
        window.grab().save(str(args.out / "07-located-all.png"))
        for dialog in app.topLevelWidgets():
            if dialog.objectName() == "batchSummary":
                dialog.grab().save(str(args.out / "08-batch-summary.png"))
                dialog.close()

        manager = ModelManagerDialog(window.app, window)
        manager.show()
        manager.select(installed.ref)
        pump(app, 0.3)
        manager.grab().save(str(args.out / "09-model-manager.png"))
        manager.close()

        from geodesk.qt.dialogs.map_sources import MapSourcesDialog

        sources = MapSourcesDialog(window.app, window)
        sources.show()
        pump(app, 0.3)
        sources.grab().save(str(args.out / "12-map-sources.png"))
        sources.close()

        page = write_map_page(work / "map.html", window.docks["map"].view.state())
        from tools.map_screenshots import render_if_possible  # the one headless Chromium capture

        render_if_possible(page, args.out / "05-map.png")
        window.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
