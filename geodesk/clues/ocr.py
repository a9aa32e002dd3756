"""OCR with boxes, through two engines behind one interface (ADR 0037):

- ``rapidocr``: PP-OCR detection + recognition ONNX models shipped inside the rapidocr wheel, run by
  onnxruntime on the CPU. Fast; reads Latin and Chinese / Japanese, not the other scripts.
- ``tesseract``: Debian's Tesseract 5 with its language packs (``tesseract-ocr-*``) through
  pytesseract. Slower; reads every script whose pack is installed, but takes photo texture for text.
- ``hybrid``: both; rapidocr's lines are kept for Latin and Chinese / Japanese, Tesseract's lines in
  every other script replace whatever rapidocr made of the same place.

Every image goes through :func:`bounded` first: its long side is brought to at most ``MAX_SIDE``
pixels (and a tiny image up to ``MIN_SIDE``), so no photo makes OCR run away in memory, and each
engine call has a time limit (``TIME_LIMIT_S``), so none makes it run away in time. Boxes are
returned in the original image's pixels. An analyst's region is OCR'd alone by cropping first.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from geodesk.clues.model import TextLine
from geodesk.domain.model import Region

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 1600
MIN_SIDE = 480
TIME_LIMIT_S = 120.0
# Tesseract packs tried together; a pack that is not installed is left out (and reported).
# "Latin" is the script pack (every Latin-script language, diacritics included); "eng" stands in when
# it is not installed.
TESSERACT_LANGUAGES = ("Latin", "rus", "ell", "ara", "heb", "hin", "tha", "kor", "jpn", "chi_sim")
ENGINES = ("hybrid", "rapidocr", "tesseract")
# Scripts rapidocr's bundled recogniser reads well; for the others the hybrid engine takes Tesseract's
# reading of the line rapidocr found.
RAPIDOCR_SCRIPTS = frozenset({"Latn", "Hans", "Jpan"})


RAPIDOCR_MIN_SCORE = 0.5
MIN_WORD_CONFIDENCE = 55.0  # Tesseract's per-word confidence, 0..100
_UNSPACED_CLASS = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"


def meaningful(text: str) -> bool:
    """Whether a read line can be a clue: at least 3 letters or digits (2 in CJK / Hangul / Thai)."""
    text = text.strip()
    dense = sum(1 for ch in text if re.match(f"[{_UNSPACED_CLASS}]", ch))
    return sum(1 for ch in text if ch.isalnum()) >= 3 or dense >= 2


class OcrError(Exception):
    """An OCR engine could not run on an image; the sentence says why and what to do."""


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image) -> list[TextLine]: ...

    def provenance(self) -> dict[str, Any]: ...


def bounded(image: Image.Image) -> tuple[Image.Image, float]:
    """The image in RGB with its long side within MIN_SIDE..MAX_SIDE, and the scale applied."""
    from PIL import Image as PILImage

    rgb = image.convert("RGB") if image.mode != "RGB" else image
    long_side = max(rgb.size)
    scale = 1.0
    if long_side > MAX_SIDE:
        scale = MAX_SIDE / long_side
    elif long_side < MIN_SIDE:
        scale = MIN_SIDE / long_side
    if scale != 1.0:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, PILImage.Resampling.LANCZOS)
    return rgb, scale


def read_image(engine: OcrEngine, image: Image.Image, region: Region | None = None) -> list[TextLine]:
    """OCR ``image`` (or only ``region`` of it) with boxes in the original image's pixels."""
    offset = (0, 0)
    if region is not None:
        x1, y1 = min(region.x1, image.width), min(region.y1, image.height)
        if region.x0 >= x1 or region.y0 >= y1:
            raise OcrError(f"region {region.as_list()} lies outside the {image.width}x{image.height} image")
        image = image.crop((region.x0, region.y0, x1, y1))
        offset = (region.x0, region.y0)
    small, scale = bounded(image)
    lines = engine.read(small)
    out: list[TextLine] = []
    for line in lines:
        box = None
        if line.region is not None:
            r = line.region
            x0, y0 = offset[0] + int(r.x0 / scale), offset[1] + int(r.y0 / scale)
            x1, y1 = (
                offset[0] + max(int(r.x0 / scale) + 1, round(r.x1 / scale)),
                offset[1] + max(int(r.y0 / scale) + 1, round(r.y1 / scale)),
            )
            box = Region(x0, y0, x1, y1)
        out.append(TextLine(line.text, box, line.score))
    return out


@cache
def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _box(points: Any) -> Region | None:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    x0, y0 = max(0, int(min(xs))), max(0, int(min(ys)))
    x1, y1 = max(x0 + 1, round(max(xs))), max(y0 + 1, round(max(ys)))
    return Region(x0, y0, x1, y1)


class _TimeLimit:
    """Run a call in a worker thread and give up on it after ``seconds`` (the thread is left to end)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, what: str, call: Any) -> Any:
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = call()
            except BaseException as exc:  # reported to the caller below
                box["error"] = exc

        thread = threading.Thread(target=work, daemon=True, name=f"ocr-{what}")
        thread.start()
        thread.join(self.seconds)
        if thread.is_alive():
            raise OcrError(f"{what} took longer than {self.seconds:.0f} s on this image and was given up")
        if "error" in box:
            raise box["error"]
        return box.get("value")


class RapidOcr:
    name = "rapidocr"

    def __init__(self, threads: int = 2) -> None:
        # onnxruntime (1.29 and later) sends usage events to Microsoft: its own threads look up
        # mobile.events.data.microsoft.com, below Python's socket layer. geodesk never calls out, so
        # the opt-out is set before onnxruntime initialises; it holds for the process (ADR 0054).
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        try:
            import onnxruntime
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise OcrError(f"rapidocr is not installed ({exc}); install geodesk's dependencies") from None
        onnxruntime.disable_telemetry_events()  # and the runtime events, should the variable be ignored
        self._engine = RapidOCR(
            params={
                "Global.log_level": "error",
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        self._lock = threading.Lock()  # one onnxruntime session set; calls are serialised

    def read(self, image: Image.Image) -> list[TextLine]:
        import numpy as np

        array = np.asarray(image)[:, :, ::-1].copy()  # RGB -> BGR, as OpenCV-based engines expect
        with self._lock:
            result = _TimeLimit(TIME_LIMIT_S).run("rapidocr", lambda: self._engine(array))
        if result is None or result.boxes is None or result.txts is None:
            return []
        return [
            TextLine(str(t).strip(), _box(b), float(s))
            for b, t, s in zip(result.boxes, result.txts, result.scores, strict=True)
            if meaningful(str(t)) and float(s) >= RAPIDOCR_MIN_SCORE
        ]

    def provenance(self) -> dict[str, Any]:
        import rapidocr

        models = sorted((Path(rapidocr.__file__).parent / "models").glob("*.onnx"))
        return {
            "engine": "rapidocr",
            "version": getattr(rapidocr, "__version__", "unknown"),
            "models": {p.name: _sha256(str(p)) for p in models},
        }


# Scripts written without spaces between words: Tesseract puts spaces between their characters.
_UNSPACED = r"\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff"
_SPACED_CHARS = re.compile(rf"(?<=[{_UNSPACED}]) (?=[{_UNSPACED}])")
_BIDI_MARKS = re.compile("[\u200e\u200f\u202a-\u202e]")


class Tesseract:
    name = "tesseract"

    def __init__(self, languages: tuple[str, ...] = TESSERACT_LANGUAGES) -> None:
        try:
            import pytesseract

            installed = set(pytesseract.get_languages(config=""))
            self.version = str(pytesseract.get_tesseract_version())
        except (ImportError, OSError, RuntimeError) as exc:
            raise OcrError(
                f"Tesseract is not available ({exc}); install it with `apt-get install tesseract-ocr` and "
                "the script packs (tesseract-ocr-rus, -ell, -ara, -heb, -hin, -tha, -kor, -jpn, -chi-sim)"
            ) from None
        if "Latin" in languages and "Latin" not in installed and "eng" in installed:
            languages = tuple("eng" if lang == "Latin" else lang for lang in languages)
        self.languages = tuple(lang for lang in languages if lang in installed)
        self.missing = tuple(lang for lang in languages if lang not in installed)
        if not self.languages:
            raise OcrError(
                "Tesseract has none of the language packs geodesk uses; install tesseract-ocr-eng "
                "and the script packs"
            )

    def read(
        self, image: Image.Image, psm: int = 11, min_confidence: float = MIN_WORD_CONFIDENCE
    ) -> list[TextLine]:
        """Lines with boxes; page segmentation mode 11 (sparse text) for photos, 6 for a text block."""
        import pytesseract

        try:
            data = pytesseract.image_to_data(
                image,
                lang="+".join(self.languages),
                config=f"--psm {psm}",
                output_type=pytesseract.Output.DICT,
                timeout=TIME_LIMIT_S,
            )
        except RuntimeError as exc:  # pytesseract reports its timeout as RuntimeError
            raise OcrError(f"Tesseract gave up on this image: {exc}") from None
        except pytesseract.TesseractError as exc:
            raise OcrError(f"Tesseract failed on this image: {exc}") from None
        lines: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            # Words read with low confidence are mostly texture taken for letters (with every script
            # pack loaded, a brick wall reads as Arabic or kana); drop them before building lines.
            if str(word).strip() and float(data["conf"][i]) >= min_confidence:
                lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(
                    i
                )
        out: list[TextLine] = []
        for idx in lines.values():
            text = " ".join(str(data["text"][i]).strip() for i in idx)
            text = _SPACED_CHARS.sub("", _BIDI_MARKS.sub("", text)).strip()
            if not meaningful(text):
                continue
            x0 = min(int(data["left"][i]) for i in idx)
            y0 = min(int(data["top"][i]) for i in idx)
            x1 = max(int(data["left"][i]) + int(data["width"][i]) for i in idx)
            y1 = max(int(data["top"][i]) + int(data["height"][i]) for i in idx)
            score = sum(float(data["conf"][i]) for i in idx) / (100.0 * len(idx))
            out.append(TextLine(text, Region(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), min(1.0, score)))
        return out

    def provenance(self) -> dict[str, Any]:
        import pytesseract

        folder = _tessdata_folder()
        models = {}
        for lang in self.languages:
            path = None if folder is None else folder / f"{lang}.traineddata"
            if path is not None and path.is_file():
                models[path.name] = _sha256(str(path))
        return {
            "engine": "tesseract",
            "version": self.version,
            "pytesseract": pytesseract.__version__,
            "languages": list(self.languages),
            "missing_languages": list(self.missing),
            "models": models,
        }


def _overlap(a: Region | None, b: Region | None) -> float:
    """Intersection over the smaller box's area (0 when either box is missing)."""
    if a is None or b is None:
        return 0.0
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a.x1 - a.x0) * (a.y1 - a.y0), (b.x1 - b.x0) * (b.y1 - b.y0))
    return w * h / smaller


def merge_readings(rapid: list[TextLine], tesseract: list[TextLine]) -> list[TextLine]:
    """The hybrid reading: rapidocr's lines, with Tesseract's lines in scripts rapidocr does not read
    replacing whatever rapidocr made of the same place."""
    from geodesk.clues.languages import line_script

    taken: list[TextLine] = []
    for line in tesseract:
        script = line_script(line.text)
        if script is not None and script.script not in RAPIDOCR_SCRIPTS and script.share >= 0.6:
            taken.append(line)
    kept = [r for r in rapid if not any(_overlap(r.region, t.region) > 0.3 for t in taken)]
    return sorted(
        [*kept, *taken], key=lambda line: (line.region.y0, line.region.x0) if line.region else (0, 0)
    )


class Hybrid:
    name = "hybrid"

    def __init__(self, rapid: RapidOcr, tesseract: Tesseract) -> None:
        self.rapid = rapid
        self.tesseract = tesseract

    def read(self, image: Image.Image) -> list[TextLine]:
        return merge_readings(self.rapid.read(image), self.tesseract.read(image))

    def provenance(self) -> dict[str, Any]:
        return {
            "engine": "hybrid",
            "detector": self.rapid.provenance(),
            "reader": self.tesseract.provenance(),
        }


def _tessdata_folder() -> Path | None:
    for candidate in (
        "/usr/share/tesseract-ocr/5/tessdata",
        "/usr/share/tesseract-ocr/4.00/tessdata",
        "/usr/share/tessdata",
    ):
        if Path(candidate).is_dir():
            return Path(candidate)
    return None


_engines: dict[str, OcrEngine] = {}
_engines_lock = threading.Lock()


def ocr_engine(name: str) -> OcrEngine:
    """The shared engine called ``name`` (models load once per process)."""
    if name not in ENGINES:
        raise OcrError(f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINES)}")
    with _engines_lock:
        return _engine(name)


def _engine(name: str) -> OcrEngine:
    engine = _engines.get(name)
    if engine is None:
        if name == "hybrid":
            rapid, tess = _engine("rapidocr"), _engine("tesseract")
            assert isinstance(rapid, RapidOcr) and isinstance(tess, Tesseract)
            engine = Hybrid(rapid, tess)
        else:
            engine = RapidOcr() if name == "rapidocr" else Tesseract()
        _engines[name] = engine
    return engine
