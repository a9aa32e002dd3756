"""Images are padded to a square with the CLIP mean colour before the processor (LLaVA / XTuner)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from transformers import AutoProcessor

from geodesk.engine.imaging import (
    CLIP_MEAN,
    MODEL_MAX_EDGE,
    ImageRefusedError,
    mean_fill,
    pad_to_square,
    prepare_image,
)

FILL = (122, 116, 104)


def test_mean_fill_is_llavas_background() -> None:
    assert mean_fill() == FILL == mean_fill(CLIP_MEAN)
    assert mean_fill([0.5, 0.5, 0.5]) == (127, 127, 127)
    with pytest.raises(ValueError, match="3 channels"):
        mean_fill([0.5])


@pytest.mark.parametrize(("size", "offset"), [((100, 40), (0, 30)), ((40, 100), (30, 0))])
def test_pad_centres_the_image(size: tuple[int, int], offset: tuple[int, int]) -> None:
    image = Image.new("RGB", size, (255, 0, 0))
    square = pad_to_square(image, FILL)
    assert square.size == (100, 100)
    assert square.getpixel((0, 0)) == FILL and square.getpixel((99, 99)) == FILL
    assert square.getpixel(offset) == (255, 0, 0)
    assert square.getpixel((offset[0] + size[0] - 1, offset[1] + size[1] - 1)) == (255, 0, 0)
    same = Image.new("RGB", (50, 50))
    assert pad_to_square(same, FILL) is same


def test_transparency_orientation_and_mode() -> None:
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    out = prepare_image(rgba)
    assert out.mode == "RGB" and out.size == (20, 20) and out.getpixel((10, 10)) == FILL
    gray = prepare_image(Image.new("L", (10, 10), 200))
    assert gray.mode == "RGB" and gray.getpixel((0, 0)) == (200, 200, 200)
    stored = Image.new("RGB", (30, 10), (0, 255, 0))  # stored wide, displayed tall
    exif = stored.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif)
    shown = prepare_image(Image.open(buffer))
    assert shown.size == (30, 30)
    assert shown.getpixel((15, 0)) == (0, 255, 0)  # the strip now runs top to bottom
    assert shown.getpixel((0, 15)) == FILL  # padded left and right, not above and below


def test_the_processor_sees_the_whole_wide_image(tiny_model_dir: Path) -> None:
    """Without padding CLIP's center crop drops the edges; with padding the red edges survive."""
    processor = AutoProcessor.from_pretrained(tiny_model_dir).image_processor
    wide = Image.new("RGB", (300, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (0, 0, 30, 100))  # a red sign at the left edge
    cropped = processor(images=[wide], return_tensors="np")["pixel_values"][0]
    square = prepare_image(wide, processor.image_mean)
    padded = processor(images=[square], return_tensors="np")["pixel_values"][0]
    assert cropped[0].max() < 0  # no red anywhere after the center crop
    assert padded[0, 28, 1] > 1.5  # red at the left edge, mid height
    assert np.allclose(padded[:, 0, 28], 0.0, atol=0.02)  # the top border normalises to ~zero


# --- hostile pictures: the one bounded preparation step -------------------------------------------------


def _png(path: Path, size: tuple[int, int], mode: str = "L") -> Path:
    Image.new(mode, size, 90).save(path, "PNG", optimize=True)
    return path


def _canvas_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every canvas ``Image.new`` makes while preparing (the pad canvas among them)."""
    sizes: list[tuple[int, int]] = []
    real_new = Image.new

    def recording_new(mode: str, size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
        sizes.append(tuple(size))  # type: ignore[arg-type]
        return real_new(mode, size, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "new", recording_new)
    return sizes


def test_a_12000x3000_png_is_resized_before_padding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _png(tmp_path / "wide.png", (12000, 3000))
    assert path.stat().st_size < 200_000  # small on disk, 36 MP once decoded
    sizes = _canvas_sizes(monkeypatch)
    with Image.open(path) as img:
        out = prepare_image(img)
    assert out.size == (MODEL_MAX_EDGE, MODEL_MAX_EDGE) and out.mode == "RGB"
    assert sizes and max(w * h for w, h in sizes) <= MODEL_MAX_EDGE**2
    assert out.getpixel((0, 0)) == FILL and out.getpixel((MODEL_MAX_EDGE // 2,) * 2) == (90, 90, 90)


def test_a_36000000x1_png_is_refused_by_shape_and_bounded_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _png(tmp_path / "line.png", (36_000_000, 1))
    with Image.open(path) as img, pytest.raises(ImageRefusedError, match=r"36000000×1 pixels.*Crop"):
        prepare_image(img)  # refused from the header, before a pixel is decoded
    sizes = _canvas_sizes(monkeypatch)
    with Image.open(path) as img:
        out = prepare_image(img, max_aspect=float("inf"))  # even a caller that allows strips stays bounded
    assert out.size == (MODEL_MAX_EDGE, MODEL_MAX_EDGE)
    assert max(w * h for w, h in sizes) <= MODEL_MAX_EDGE**2


def test_a_20000x2000_jpeg_is_decoded_at_reduced_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (20000, 2000), (200, 30, 30)).save(path, "JPEG", quality=50)
    loaded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def recording_load(self: ImageFile.ImageFile) -> object:
        loaded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    sizes = _canvas_sizes(monkeypatch)
    with Image.open(path) as img:
        out = prepare_image(img)
    assert out.size == (MODEL_MAX_EDGE, MODEL_MAX_EDGE)
    assert loaded and loaded[0] == (5000, 500)  # libjpeg decoded at 1/4 scale, not 40 MP
    assert max(w * h for w, h in sizes) <= MODEL_MAX_EDGE**2


def test_the_decode_budget_refuses_before_decoding(tmp_path: Path) -> None:
    path = _png(tmp_path / "deep.png", (4000, 3000), mode="I;16")
    with Image.open(path) as img, pytest.raises(ImageRefusedError, match="MiB once decoded"):
        prepare_image(img, budget_bytes=10 * 2**20)
    with Image.open(path) as img:
        out = prepare_image(img, max_edge=64)  # 16-bit greyscale resamples through mode I
    assert out.size == (64, 64) and out.mode == "RGB"


def test_every_model_path_uses_the_bounded_step() -> None:
    """No code that feeds a model pads or converts an image on its own (the one step is prepare_image)."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("geodesk/engine", "geodesk/services", "training"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "imaging.py" and ("exif_transpose" in text or "pad_to_square(" in text):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
