"""``geodesk-train geosynth --n N --seed S --out DIR``: GeoSynth scenes, their truth and MG-Geo data.

Writes DIR/images/*.png, DIR/metadata.csv (``--truth`` for ``geodesk-train evaluate --images DIR``),
DIR/dialogs.jsonl (``--dialogs``), DIR/scenes.jsonl, DIR/geosynth.json and, unless ``--no-data``,
the Meta / Clue / Dialog training parts and the text-only hint part in DIR/mggeo/. See
training/geosynth/generator.py and training/geosynth/mggeo.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit, progress_enabled


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "geosynth", help="generate GeoSynth street scenes with ground truth, hints and training data",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--n", type=int, required=True, metavar="N", help="number of scenes")
    parser.add_argument("--seed", type=int, required=True, metavar="S",
                        help="scene seed: the same seed gives the same images, byte for byte")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--size", type=int, default=224, metavar="PX", help="image side in pixels (224)")
    parser.add_argument("--hidden-share", type=float, default=0.3, metavar="P",
                        help="share of scenes whose decisive cue is out of frame (0.3)")
    parser.add_argument("--no-data", action="store_true", help="do not write the MG-Geo parts in DIR/mggeo")
    parser.add_argument("--without-font", action="append", default=[], metavar="KEY",
                        help="act as if a sign font were missing (sans, cjk-jp, cjk-kr, thai, devanagari)")
    add_json_argument(parser)
    parser.set_defaults(handler=_geosynth)


def _geosynth(args: argparse.Namespace) -> int:
    from geodesk.geo import GeoDataError
    from training.geosynth.fonts import FONT_SPECS, FontBook
    from training.geosynth.generator import generate
    from training.geosynth.mggeo import build_mggeo
    from training.geosynth.world import GeoSynthError, load_world

    unknown = [k for k in args.without_font if k not in FONT_SPECS]
    if unknown:
        raise CliError(f"unknown font key(s) {', '.join(unknown)}; use one of {', '.join(FONT_SPECS)}")
    bar = None
    if progress_enabled(args):
        from tqdm import tqdm

        bar = tqdm(total=args.n, unit="img", desc="geosynth")

    def progress(k: int) -> None:
        if bar is not None:
            bar.update(k)

    try:
        world = load_world()
        fonts = FontBook.system(exclude=tuple(args.without_font))
        report = generate(args.out, n=args.n, seed=args.seed, size=args.size, hidden_share=args.hidden_share,
                          fonts=fonts, world=world, progress=progress)
        document = report.as_document()
        if not args.no_data:
            document["mggeo"] = build_mggeo(args.out, seed=args.seed, world=world).as_document()
    except (GeoSynthError, GeoDataError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write into {args.out}: {exc.strerror or exc}") from None
    finally:
        if bar is not None:
            bar.close()
    human = report.summary()
    if "mggeo" in document:
        counts = document["mggeo"]["counts"]
        listed = ", ".join(f"{k} {v}" for k, v in counts.items())
        human += f"\nMG-Geo parts: {listed} in {args.out / 'mggeo'}"
    emit(args, document, human)
    return 0
