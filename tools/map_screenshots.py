"""Screenshots of the offline map page over the default basemap, rendered with headless Chromium.

    .venv/bin/python tools/map_screenshots.py [--out docs/screenshots]

Writes 10-map-western-europe.png (zoom 5: countries, big cities, rivers) and 11-map-city-view.png
(zoom 9 around Strasbourg: places, the Rhine, the Grand Est / Baden-Württemberg border) with a small
session drawn over them (two model turns, the EXIF point, a finding with its radius). Needs the built
basemap (tools/build_basemap.py) and Debian ``chromium``; Chromium reads the local PMTiles file
because it is started with ``--allow-file-access-from-files`` (the page reads it whole there).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from geodesk.domain.model import Finding, FindingStatus, GpsPoint
from geodesk.report.map_page import MapState, MapTurn, default_basemap_path, write_map_page

ROOT = Path(__file__).resolve().parents[1]
VIEWS = {
    "10-map-western-europe.png": (48.3, 6.0, 5),
    "11-map-city-view.png": (48.57, 7.76, 9),
}


def session_state() -> MapState:
    turns = (
        MapTurn(0, 48.78, 9.18, "Turn 0: Germany, Baden-Württemberg, Stuttgart", True),
        MapTurn(1, 48.60, 7.72, "Turn 1: France, Grand Est, Strasbourg", True),
    )
    reason = "tram livery, bilingual sign"
    finding = Finding(None, "0" * 64, 48.5839, 7.7455, 6.0, FindingStatus.PROBABLE, reason)
    return MapState(
        title="street.jpg",
        turns=turns,
        exif=GpsPoint(48.5734, 7.7521),
        exif_label="EXIF GPS of street.jpg",
        finding=finding,
        selected_turn=1,
        turn_count=2,
    )


def render(chromium: str, page: Path, out: Path) -> None:
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            "--virtual-time-budget=20000",
            "--window-size=1200,800",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        check=True,
        timeout=180,
        capture_output=True,
    )



def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render_if_possible(page: Path, out: Path) -> bool:
    """Render ``page`` to ``out`` when a Chromium is installed; else say how to get one (False)."""
    chromium = find_chromium()
    if chromium is None:
        print("no chromium found: the map page was not rendered (apt-get install chromium)", file=sys.stderr)
        return False
    render(chromium, page, out)
    return True

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    basemap = default_basemap_path()
    if basemap is None:
        raise SystemExit("no basemap: build it first with tools/build_basemap.py")
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no chromium found: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geodesk-map-") as tmp:
        for name, view in VIEWS.items():
            page = write_map_page(Path(tmp) / f"{name}.html", session_state(), basemap=basemap, view=view)
            render(chromium, page, args.out / name)
            print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
