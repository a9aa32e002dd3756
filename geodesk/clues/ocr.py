"""OCR with boxes, through three engines behind one interface (ADR 0037, 0051):

- ``rapidocr``: PP-OCR detection + recognition ONNX models shipped inside the rapidocr wheel, run by
  onnxruntime on the CPU. Fast; reads Latin and Chinese / Japanese, not the other scripts.
- ``tesseract``: Debian's Tesseract 5 with its language packs (``tesseract-ocr-*``) through
  pytesseract. Slower; reads every script whose pack is installed, but takes photo texture for text.
- ``hybrid`` (the default): rapidocr's detector finds the lines, each line is read by Tesseract in
  every script pack (tesserocr, one loaded model per pack), in two views (:func:`line_in_photo`,
  :func:`line_crop`), and the most confident reading is kept, consistent across the image
  (:func:`consistent_readings`; ADR 0056).

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
            # Every step named on every call: rapidocr keeps the flags of the last call, so a
            # detection-only call (detect) would otherwise leave later reads without recognition.
            result = _TimeLimit(TIME_LIMIT_S).run(
                "rapidocr", lambda: self._engine(array, use_det=True, use_cls=True, use_rec=True)
            )
        if result is None or result.boxes is None or result.txts is None:
            return []
        return [
            TextLine(str(t).strip(), _box(b), float(s))
            for b, t, s in zip(result.boxes, result.txts, result.scores, strict=True)
            if meaningful(str(t)) and float(s) >= RAPIDOCR_MIN_SCORE
        ]

    def detect(self, image: Image.Image) -> list[Region]:
        """The boxes of the text lines in ``image``, found by the detector alone (any script)."""
        import numpy as np

        array = np.asarray(image)[:, :, ::-1].copy()
        with self._lock:
            result = _TimeLimit(TIME_LIMIT_S).run(
                "rapidocr", lambda: self._engine(array, use_det=True, use_cls=False, use_rec=False)
            )
        if result is None or result.boxes is None:
            return []
        return [box for box in (_box(b) for b in result.boxes) if box is not None]

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


# Tesseract packs the line reader tries on every line, in the order that breaks ties (Latin first: a
# line of digits and Latin letters reads the same in most packs).
LINE_PACKS = ("Latin", "rus", "ell", "ara", "heb", "hin", "tha", "kor", "jpn", "chi_sim")
MAX_LINES = 40  # lines read per image (the largest boxes first): no photo makes the sweep run away
MIN_LINE_HEIGHT = 8  # pixels in the bounded image; smaller boxes are specks, not text
MIN_PACK_CONFIDENCE = 50.0  # Tesseract's mean word confidence (0..100) below which a reading is noise


# The script group each pack reads (jpn and chi_sim both read Han).
PACK_GROUPS = {
    "Latin": "Latn",
    "eng": "Latn",
    "rus": "Cyrl",
    "ell": "Grek",
    "ara": "Arab",
    "heb": "Hebr",
    "hin": "Deva",
    "tha": "Thai",
    "kor": "Kore",
    "jpn": "Han",
    "chi_sim": "Han",
}
# A line won by a pack with at least this confidence shows that the image holds the pack's script;
# lines won by other packs with less are read again with only the packs of the image's scripts
# (chosen on the development split of bench/clue_textset.py).
STRONG_PACK_CONFIDENCE = 80.0
MIN_LINE_TEXT_HEIGHT = 48  # pixels: smaller line images are enlarged first (Tesseract reads them badly)

Reading = tuple[str, str, float]  # (pack, text, Tesseract's mean word confidence 0..100)


def best_reading(
    readings: list[Reading], groups: set[str] | None = None, min_confidence: float = MIN_PACK_CONFIDENCE
) -> Reading | None:
    """The reading to keep for one line: the most confident one that is meaningful text (only packs
    whose script group is in ``groups`` when given), the earlier pack winning a tie; None when no pack
    read anything real."""
    best: Reading | None = None
    for pack, text, confidence in readings:
        if groups is not None and PACK_GROUPS.get(pack, pack) not in groups:
            continue
        if confidence < min_confidence or not meaningful(text):
            continue
        if best is None or confidence > best[2]:
            best = (pack, text, confidence)
    return best


def consistent_readings(per_line: list[list[Reading]]) -> list[Reading | None]:
    """One reading per line, consistent across the image: a pack that wins a line only weakly (a Thai
    reading of a small web address, kana read into Hangul) is not believed unless some line of the
    image is strongly in its script; such lines are read again among Latin and the image's scripts."""
    first = [best_reading(readings) for readings in per_line]
    groups = {"Latn"} | {
        PACK_GROUPS.get(best[0], best[0]) for best in first if best and best[2] >= STRONG_PACK_CONFIDENCE
    }
    out: list[Reading | None] = []
    for readings, best in zip(per_line, first, strict=True):
        if best is not None and PACK_GROUPS.get(best[0], best[0]) not in groups:
            best = best_reading(readings, groups, min_confidence=MIN_PACK_CONFIDENCE - 10)
        if best is not None and PACK_GROUPS.get(best[0], best[0]) == "Latn":
            best = _lookalike(best, readings, groups) or best
        if best is not None and _latin_letters_only(best[1]):  # whichever pack read them
            best = _own_letters(best, readings, groups) or best
        out.append(best)
    return out


# Cyrillic and Greek letters drawn like Latin ones: "Русе" and "Pyce" are the same shapes.
_LOOKALIKES = str.maketrans(
    "АВЕКМНОРСТУХаеорсухкмтнΑΒΕΖΗΙΚΜΝΟΡΤΥΧοικν",
    "ABEKMHOPCTYXaeopcyxkmthABEZHIKMNOPTYXoikv",
)
LOOKALIKE_MARGIN = 1.0  # confidence points within which the image's own script wins a lookalike tie


# Letters that only one script has: no Latin letter is drawn like them, so the Latin pack cannot read
# them right. A Cyrillic or Greek pack's reading made of them is that script's letters, not look-alikes
# ("Київ" read as "KnïB" by the Latin pack and as "Кигв" by the Russian one). Hangul syllables are
# never Latin shapes. Thai is left out: its pack reads "www" as "พพพ".
OWN_LETTERS = {
    "Cyrl": frozenset("бвгдёжзийлпфцчшщъыьэюяБГДЁЖЗИЙЛПФЦЧШЩЪЫЬЭЮЯґєїҐЄЇ"),
    "Grek": frozenset("γδζηθλμξπρσςφχψωΓΔΘΛΞΠΣΦΨΩάέήίόύώ"),
    "Kore": frozenset(chr(c) for c in range(0xAC00, 0xD7A4)),
}
MIN_OWN_LETTERS = 2
# Confidence points within which such a reading beats the Latin one (chosen on the development split:
# there the script's lines lost to Latin by at most 3 points, web addresses read by the Cyrillic or
# Greek pack by at least 41).
OWN_LETTERS_MARGIN = 20.0


def _latin_letters_only(text: str) -> bool:
    """Whether every letter of ``text`` is a Latin one (and there is one)."""
    import unicodedata

    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(unicodedata.name(ch, "").startswith("LATIN") for ch in letters)


def _own_letters(latin: Reading, readings: list[Reading], groups: set[str]) -> Reading | None:
    """For a line read as Latin letters (by any pack: the Japanese one also reads "KMiB"), the most
    confident reading in one of the image's other scripts that has at least ``MIN_OWN_LETTERS``
    letters only that script has, within ``OWN_LETTERS_MARGIN`` of the Latin reading."""
    best: Reading | None = None
    for pack, text, confidence in readings:
        group = PACK_GROUPS.get(pack, pack)
        own = OWN_LETTERS.get(group)
        if own is None or group not in groups or confidence < max(MIN_PACK_CONFIDENCE,
                                                                   latin[2] - OWN_LETTERS_MARGIN):
            continue
        if sum(ch in own for ch in text) >= MIN_OWN_LETTERS and (best is None or confidence > best[2]):
            best = (pack, text, confidence)
    return best


def _lookalike(latin: Reading, readings: list[Reading], groups: set[str]) -> Reading | None:
    """A reading of the same line in one of the image's other scripts, as confident as the Latin one
    within LOOKALIKE_MARGIN, whose letters are the Latin reading's shapes: on a Cyrillic sign, "Русе"
    read as "Pyce" is Cyrillic."""
    shapes = latin[1].casefold()
    for pack, text, confidence in readings:
        group = PACK_GROUPS.get(pack, pack)
        if group == "Latn" or group not in groups or confidence < latin[2] - LOOKALIKE_MARGIN:
            continue
        if text != latin[1] and text.translate(_LOOKALIKES).casefold() == shapes:
            return (pack, text, confidence)
    return None


class LineReader:
    """Tesseract through tesserocr, one loaded model per script pack, reading one line image at a time.

    Each line is read by every pack and the most confident reading kept: a pack reading another
    script returns low-confidence garbage, so the winning pack identifies the line's script, where
    loading every pack into one model (the ``tesseract`` engine) mixes the scripts up.
    """

    def __init__(self, packs: tuple[str, ...] = LINE_PACKS) -> None:
        try:
            import tesserocr
        except ImportError as exc:
            raise OcrError(f"tesserocr is not installed ({exc}); install geodesk's dependencies") from None
        folder = _tessdata_folder()
        if folder is None:
            raise OcrError(
                "Tesseract's language data is not installed; install tesseract-ocr and the script packs "
                "(tesseract-ocr-script-latn, -rus, -ell, -ara, -heb, -hin, -tha, -kor, -jpn, -chi-sim)"
            )
        self.folder = folder
        installed = set(tesserocr.get_languages(str(folder) + "/")[1])
        self.packs = tuple(p for p in packs if p in installed) or (("eng",) if "eng" in installed else ())
        self.missing = tuple(p for p in packs if p not in installed)
        if not self.packs:
            raise OcrError("Tesseract has none of the script packs geodesk uses; install tesseract-ocr-eng")
        self.version = str(tesserocr.tesseract_version()).splitlines()[0]
        self._apis = {
            pack: tesserocr.PyTessBaseAPI(
                path=str(folder) + "/", lang=pack, psm=tesserocr.PSM.SINGLE_LINE, oem=tesserocr.OEM.LSTM_ONLY
            )
            for pack in self.packs
        }
        # Page segmentation modes tried in turn until some pack reads the line (see readings()).
        self._modes = (tesserocr.PSM.SINGLE_LINE, tesserocr.PSM.RAW_LINE, tesserocr.PSM.SINGLE_BLOCK)
        self._lock = threading.Lock()  # a tesserocr API object is not safe across threads

    def readings(self, line_image: Image.Image) -> list[Reading]:
        """(pack, text, mean word confidence 0..100) of every pack on one line image (greyscale)."""
        grey = line_image.convert("L")
        out: list[Reading] = []
        with self._lock:
            # "Single line" first. Tesseract's layout analysis drops some Arabic lines whole (it finds
            # no line in them: an empty page, in every pack); "raw line" skips that analysis and reads
            # the box as the one line it is. "Single block" last, for a box that also holds a sliver
            # of the next line.
            for mode in self._modes:
                out = []
                for pack, api in self._apis.items():
                    api.SetPageSegMode(mode)
                    api.SetImage(grey)
                    text = _clean(api.GetUTF8Text())
                    out.append((pack, text, float(api.MeanTextConf()) if text else 0.0))
                if best_reading(out) is not None:
                    break
        return out

    def provenance(self) -> dict[str, Any]:
        import tesserocr

        return {
            "engine": "tesseract-lines",
            "version": self.version,
            "tesserocr": tesserocr.__version__,
            "languages": list(self.packs),
            "missing_languages": list(self.missing),
            "models": {
                f"{p}.traineddata": _sha256(str(self.folder / f"{p}.traineddata"))
                for p in self.packs
                if (self.folder / f"{p}.traineddata").is_file()
            },
        }


def _clean(text: str) -> str:
    text = " ".join(text.split())
    return _SPACED_CHARS.sub("", _BIDI_MARKS.sub("", text)).strip(" |")


LINE_CROP_MARGIN = 0.05  # of the box's height: the image around the box that the clean crop keeps


def line_in_photo(image: Image.Image, box: Region) -> Image.Image:
    """The line's box with a margin of the photo around it, enlarged to ``MIN_LINE_TEXT_HEIGHT`` when
    its text is smaller: the line as it stands (see :func:`line_crop` for the other view)."""
    from PIL import Image as PILImage

    height = box.y1 - box.y0
    pad_x, pad_y = max(4, round(0.3 * height)), max(2, round(0.12 * height))
    crop = image.crop(
        (
            max(0, box.x0 - pad_x),
            max(0, box.y0 - pad_y),
            min(image.width, box.x1 + pad_x),
            min(image.height, box.y1 + pad_y),
        )
    )
    if height < MIN_LINE_TEXT_HEIGHT:
        scale = MIN_LINE_TEXT_HEIGHT / max(1, height)
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crop = crop.resize(size, PILImage.Resampling.LANCZOS)
    return crop


def merged_readings(*views: list[Reading]) -> list[Reading]:
    """Per pack, its most confident reading over several views of one line (the first view's pack
    order, which breaks ties)."""
    best: dict[str, Reading] = {}
    for view in views:
        for reading in view:
            if reading[0] not in best or reading[2] > best[reading[0]][2]:
                best[reading[0]] = reading
    return list(best.values())


def line_crop(image: Image.Image, box: Region) -> Image.Image:
    """The line's box as dark letters on a light ground, enlarged to ``MIN_LINE_TEXT_HEIGHT`` when its
    text is smaller, with a margin of its own ground colour around it (greyscale).

    Tesseract wants dark text with plain space around it. A margin cut from the photo brings in the
    sign's frame and the photo's texture beside a line, and light letters on a dark sign are read as
    they come; on such crops whole Arabic lines came out empty. The ground is the crop's median grey
    (the letters cover less of a line's box than its ground does); a dark ground is inverted. Neither
    view is always the better one (Tesseract reads some small web addresses only in the photo's
    view), so the line reader reads both and keeps each pack's more confident reading."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    height = box.y1 - box.y0
    pad = round(LINE_CROP_MARGIN * height)
    crop = image.crop(
        (
            max(0, box.x0 - pad),
            max(0, box.y0 - pad),
            min(image.width, box.x1 + pad),
            min(image.height, box.y1 + pad),
        )
    ).convert("L")
    ground, half, seen = 255, (crop.width * crop.height) / 2, 0
    for level, count in enumerate(crop.histogram()):
        seen += count
        if seen >= half:
            ground = level
            break
    if ground < 128:
        crop, ground = ImageOps.invert(crop), 255 - ground
    if height < MIN_LINE_TEXT_HEIGHT:
        scale = MIN_LINE_TEXT_HEIGHT / max(1, height)
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crop = crop.resize(size, PILImage.Resampling.LANCZOS)
    side = max(4, round(0.3 * crop.height))
    return ImageOps.expand(crop, border=(side, max(2, side // 3)), fill=ground)


class Hybrid:
    """rapidocr's detector finds the lines (it finds text in any script); each line is then read by
    Tesseract in every script pack and the most confident reading kept (ADR 0051)."""

    name = "hybrid"

    def __init__(self, rapid: RapidOcr, reader: LineReader) -> None:
        self.rapid = rapid
        self.reader = reader

    def read(self, image: Image.Image) -> list[TextLine]:
        import time

        started = time.monotonic()
        boxes = [b for b in self.rapid.detect(image) if b.y1 - b.y0 >= MIN_LINE_HEIGHT]
        boxes = sorted(boxes, key=lambda b: -(b.x1 - b.x0) * (b.y1 - b.y0))[:MAX_LINES]
        per_line: list[list[Reading]] = []
        for box in boxes:
            if time.monotonic() - started > TIME_LIMIT_S:
                raise OcrError(f"reading the lines took longer than {TIME_LIMIT_S:.0f} s and was given up")
            per_line.append(
                merged_readings(
                    self.reader.readings(line_crop(image, box)),
                    self.reader.readings(line_in_photo(image, box)),
                )
            )
        out: list[TextLine] = []
        for box, best in zip(boxes, consistent_readings(per_line), strict=True):
            if best is not None:
                out.append(TextLine(best[1], box, min(1.0, best[2] / 100.0)))
        return sorted(out, key=lambda line: (line.region.y0, line.region.x0) if line.region else (0, 0))

    def provenance(self) -> dict[str, Any]:
        return {"engine": "hybrid", "detector": self.rapid.provenance(), "reader": self.reader.provenance()}


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
            rapid = _engine("rapidocr")
            assert isinstance(rapid, RapidOcr)
            engine = Hybrid(rapid, LineReader())
        else:
            engine = RapidOcr() if name == "rapidocr" else Tesseract()
        _engines[name] = engine
    return engine
