"""Screenshots of the clue engine in the desktop app, for docs/screenshots/ and the README.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/clue_screenshots.py [--out docs/screenshots]

It builds a workspace in a temp folder with one street-sign photo (a sign drawn over scikit-image's
coffee photograph, EXIF time 12:30 at +05:00), runs the real clue engine on it through the app's
controller, accepts the phone-prefix, script and domain clues, marks a pole and its shadow on the
viewer's state and adds the sun clue, accepts it, and grabs the window (22-clue-engine.png). The map
page with the combined constraint is written to HTML and rendered with headless Chromium (Debian
``chromium``) as 23-clue-constraint-map.png, since a web view grabs blank offscreen.
"""

from __future__ import annotations

import argparse
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

NOTO = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"


def sign_photo(path: Path) -> Path:
    import piexif
    from PIL import Image, ImageDraw, ImageFont
    from skimage import data

    photo = Image.fromarray(data.coffee()).convert("RGB").resize((900, 600))
    draw = ImageDraw.Draw(photo)
    draw.rectangle((100, 100, 760, 400), fill=(20, 110, 60))
    font = ImageFont.truetype(NOTO, 54)
    for i, text in enumerate(("Тошкент 12 км", "+998 71 123 45 67", "www.toshkent.uz")):
        draw.text((130, 120 + 90 * i), text, font=font, fill="white")
    draw.line((820, 330, 820, 530), fill=(40, 40, 40), width=6)  # a pole...
    draw.line((820, 530, 480, 560), fill=(60, 45, 30), width=5)  # ...and its shadow
    exif = {"Exif": {piexif.ExifIFD.DateTimeOriginal: b"2024:01:15 12:30:00", 0x9011: b"+05:00"}}
    photo.save(path, exif=piexif.dump(exif), quality=92)
    return path


def pump(app: object, seconds: float, until: object = None) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        if callable(until) and until():
            return
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6 import QtWebEngineWidgets  # noqa: F401  (before the QApplication)
    from PySide6.QtWidgets import QApplication

    from geodesk.domain.model import Region
    from geodesk.qt.main_window import MainWindow
    from geodesk.report.map_page import constraint_json, write_map_page

    app = QApplication.instance() or QApplication(sys.argv)
    work = Path(tempfile.mkdtemp(prefix="geodesk-clue-shots-"))
    try:
        window = MainWindow(work / "workspace", restore_layout=False)
        window.app.evidence.import_workers = 0
        window.resize(1500, 950)
        window.show()
        state, engine = window.state, window.app.clue_engine
        pump(app, 1.0)
        window.app.cases.create("Street sign")
        window.app.evidence.import_paths([sign_photo(work / "street-sign.jpg")])
        pump(app, 60, lambda: bool(state.evidence_items) and "import" not in state.busy)
        window.app.evidence.select(state.evidence_items[0].sha256)
        engine.run()
        pump(app, 600, lambda: "clue engine" not in state.busy and bool(state.engine_clues))
        for clue in state.engine_clues:
            if clue.clue.category in ("phone", "script", "domain") and clue.clue.id is not None:
                window.app.clues.accept(clue.clue.id)
        # The pole (820, 330)-(820, 530) and its shadow to (480, 560): height / shadow ≈ 0.59.
        engine.set_sun_marking(True)
        engine.mark_object(Region(810, 330, 830, 530))
        engine.mark_shadow_tip(480.0, 560.0)
        pump(app, 0.5)
        marked = window.grab()
        engine.add_sun()
        pump(app, 120, lambda: any(c.clue.category == "sun" for c in state.engine_clues))
        sun = next(c for c in state.engine_clues if c.clue.category == "sun")
        window.app.clues.accept(sun.clue.id or 0)
        pump(app, 120, lambda: bool(state.clue_constraint and state.clue_constraint["leading"]))
        window.docks["engine_clues"].raise_()
        window.docks["leading"].raise_()
        pump(app, 1.0)
        marked.save(str(args.out / "22-sun-marks.png"))
        window.grab().save(str(args.out / "22-clue-engine.png"))

        page = write_map_page(work / "map.html", window.docks["map"].view.state())  # type: ignore[attr-defined]
        call = f"<script>window.geodesk.setConstraint({constraint_json(state.clue_constraint)});</script>"
        html = page.read_text(encoding="utf-8")
        # after the page's own script, which runs geodesk.init at the end of the document
        end = html.rindex("</html>")
        page.write_text(html[:end] + call + html[end:], encoding="utf-8")
        from tools.map_screenshots import render_if_possible  # the one headless Chromium capture

        render_if_possible(page, args.out / "23-clue-constraint-map.png")
        window.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
