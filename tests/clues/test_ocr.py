"""OCR engines on real models (rapidocr's bundled ONNX files, Debian's Tesseract): boxes in original
pixels, bounded resize, region OCR, and the hybrid merge."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from geodesk.clues.model import TextLine
from geodesk.clues.ocr import MAX_SIDE, MIN_SIDE, OcrError, bounded, merge_readings, ocr_engine, read_image
from geodesk.domain.model import Region


def test_bounded_resize_keeps_every_image_within_limits() -> None:
    huge, scale = bounded(Image.new("L", (12000, 300)))
    assert max(huge.size) == MAX_SIDE and huge.mode == "RGB" and scale == pytest.approx(MAX_SIDE / 12000)
    tiny, scale = bounded(Image.new("RGB", (40, 30)))
    assert max(tiny.size) == MIN_SIDE and scale == pytest.approx(MIN_SIDE / 40)


def test_rapidocr_reads_the_sign_with_boxes_in_original_pixels(sign_jpeg: Path) -> None:
    image = Image.open(sign_jpeg).convert("RGB")
    lines = read_image(ocr_engine("rapidocr"), image)
    texts = {line.text.replace(" ", "") for line in lines}
    assert "+998711234567" in texts and "www.toshkent.uz" in texts
    phone = next(line for line in lines if line.text.replace(" ", "") == "+998711234567")
    assert phone.region is not None and 100 <= phone.region.x0 <= 160 and 190 <= phone.region.y0 <= 240
    provenance = ocr_engine("rapidocr").provenance()
    assert all(len(h) == 64 for h in provenance["models"].values()) and provenance["models"]


def test_a_region_is_read_alone(sign_jpeg: Path) -> None:
    image = Image.open(sign_jpeg).convert("RGB")
    lines = read_image(ocr_engine("rapidocr"), image, Region(100, 280, 760, 400))
    assert [line.text for line in lines] == ["www.toshkent.uz"]
    assert lines[0].region is not None and lines[0].region.y0 >= 280
    with pytest.raises(OcrError, match="outside"):
        read_image(ocr_engine("rapidocr"), image, Region(2000, 2000, 2100, 2100))


def test_photo_without_text_gives_no_lines() -> None:
    from skimage import data

    assert read_image(ocr_engine("rapidocr"), Image.fromarray(data.chelsea())) == []


@pytest.mark.slow
def test_tesseract_reads_cyrillic_that_rapidocr_cannot(tmp_path: Path) -> None:
    from tests.clues.conftest import sign_photo

    path = sign_photo(tmp_path / "ru.jpg", ("Добро пожаловать", "Москва 12 км"))
    image = Image.open(path).convert("RGB")
    tesseract = read_image(ocr_engine("tesseract"), image)
    assert any("Москва" in line.text for line in tesseract)
    hybrid = read_image(ocr_engine("hybrid"), image)
    assert any("Москва" in line.text for line in hybrid)
    assert ocr_engine("tesseract").provenance()["models"]


def test_merge_prefers_tesseract_for_scripts_rapidocr_does_not_read() -> None:
    box = Region(10, 10, 200, 40)
    rapid = [TextLine("Mockba 12 km", box, 0.8), TextLine("www.mos.ru", Region(10, 60, 200, 90), 0.99)]
    tess = [
        TextLine("Москва 12 км", Region(12, 11, 198, 41), 0.9),
        TextLine("www.mos.ru", Region(10, 60, 200, 90), 0.9),
    ]
    merged = merge_readings(rapid, tess)
    assert [line.text for line in merged] == ["Москва 12 км", "www.mos.ru"]


READ_A_SIGN_IN_A_FRESH_PROCESS = """
import sys, time
from PIL import Image
from geodesk.clues.ocr import ocr_engine, read_image
read_image(ocr_engine("rapidocr"), Image.open(sys.argv[1]).convert("RGB"))
time.sleep(2)  # onnxruntime's uploader threads look their server up shortly after the first session
"""


def test_rapidocr_sends_nothing_to_microsoft(sign_jpeg: Path) -> None:
    """onnxruntime 1.29+ looks up mobile.events.data.microsoft.com from its own threads (below Python's
    socket layer, so the tests' guard cannot see it); in a loopback-only namespace the kernel counts it."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "egress_netns", Path(__file__).resolve().parents[2] / "tools" / "egress_netns.py")
    assert spec is not None and spec.loader is not None
    netns = importlib.util.module_from_spec(spec)
    sys.modules["egress_netns"] = netns
    spec.loader.exec_module(netns)
    if netns.namespace_command() is None:
        pytest.skip("this machine cannot make a network namespace (unshare -n)")
    run = netns.run_offline([sys.executable, "-c", READ_A_SIGN_IN_A_FRESH_PROCESS, str(sign_jpeg)])
    assert run.returncode == 0
    assert run.outbound_attempts == 0
