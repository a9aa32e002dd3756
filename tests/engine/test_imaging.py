"""Images are padded to a square with the CLIP mean colour before the processor (LLaVA / XTuner)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import AutoProcessor

from geodesk.engine.imaging import CLIP_MEAN, mean_fill, pad_to_square, prepare_image

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
