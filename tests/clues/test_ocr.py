"""OCR engines on real models (rapidocr's bundled ONNX files, Debian's Tesseract): boxes in original
pixels, bounded resize, region OCR, and the hybrid merge."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from geodesk.clues.ocr import (
    MAX_SIDE,
    MIN_LINE_TEXT_HEIGHT,
    MIN_SIDE,
    OcrError,
    RapidOcr,
    best_reading,
    bounded,
    consistent_readings,
    line_crop,
    ocr_engine,
    read_image,
)
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


def test_the_most_confident_pack_reading_wins_and_noise_is_dropped() -> None:
    readings = [
        ("Latin", "EkaTepnH6ypr 22 KM", 81.0),
        ("rus", "Екатеринбург 22 км", 95.0),
        ("tha", "ป [1๐6๒๐ ทอ", 64.0),
    ]
    assert best_reading(readings) == ("rus", "Екатеринбург 22 км", 95.0)
    # a tie goes to the earlier pack; texture read at low confidence is no line at all
    assert best_reading([("Latin", "www.info.eg", 90.0), ("jpn", "wwwr.info.eg", 90.0)]) == (
        "Latin",
        "www.info.eg",
        90.0,
    )
    assert best_reading([("Latin", "Tel. 12", 30.0), ("ara", "", 0.0)]) is None


def test_a_weak_reading_in_a_script_the_image_does_not_hold_is_read_again() -> None:
    sign = [
        [("heb", "בית מרקחת פתוח כל יום", 92.0), ("Latin", "TPN NXXNI DITN", 46.0)],
        [("Latin", "Tel. +972 2-123-4567", 93.0), ("rus", "Те|. +972 2-123-4567", 88.0)],
        # a small web address that the Thai pack reads more confidently than the Latin one
        [("tha", "พหหหพห.ะหล่งอ|-1 1.1", 74.0), ("Latin", "www.travel-11.il", 49.0)],
    ]
    picked = consistent_readings(sign)
    assert [p[1] if p else None for p in picked] == [
        "בית מרקחת פתוח כל יום",
        "Tel. +972 2-123-4567",
        "www.travel-11.il",
    ]
    # a strong line in a script keeps the script's weaker lines too
    thai = [[("tha", "ร้านขายยาเปิดทุกวัน", 93.0)], [("tha", "ภูเก็ต 26 กม.", 70.0), ("Latin", "pa D0", 59.0)]]
    assert [p[0] for p in consistent_readings(thai) if p] == ["tha", "tha"]


def test_small_lines_are_enlarged_before_reading() -> None:
    image = Image.new("RGB", (400, 200), "white")
    crop = line_crop(image, Region(10, 10, 110, 30))
    assert crop.height >= MIN_LINE_TEXT_HEIGHT and crop.width > 100


@pytest.mark.slow
def test_hybrid_reads_each_line_in_its_own_script(tmp_path: Path) -> None:
    from tests.clues.conftest import sign_photo

    path = sign_photo(tmp_path / "mixed.jpg", ("Москва 12 км", "Добро пожаловать", "+7 495 123 45 67"))
    lines = read_image(ocr_engine("hybrid"), Image.open(path).convert("RGB"))
    texts = [line.text for line in lines]
    # the Cyrillic lines in Cyrillic, not their Latin look-alikes ("MockBa"); the number in digits
    assert "Москва 12 км" in texts and "Добро пожаловать" in texts
    assert "+7 495 123 45 67" in texts
    provenance = ocr_engine("hybrid").provenance()
    assert provenance["reader"]["models"] and provenance["detector"]["models"]


def test_cyrillic_read_as_latin_lookalikes_stays_cyrillic_on_a_cyrillic_sign() -> None:
    sign = [
        [("rus", "Пушенето тук е строго забранено", 92.0), ("ell", "ΠΥΙΙΙΕΗΕΤΟ ΤΥΚ", 73.0)],
        [("Latin", "Pyce 27 KM", 93.0), ("rus", "Русе 27 км", 93.0)],
        [("Latin", "Tel. 02 123 456", 95.0), ("rus", "Те|. 02 123 456", 94.5)],
    ]
    assert [p[1] if p else None for p in consistent_readings(sign)] == [
        "Пушенето тук е строго забранено",
        "Русе 27 км",
        "Tel. 02 123 456",
    ]
    # with no Cyrillic line in the image, the same tie stays Latin
    assert consistent_readings([sign[1]]) == [("Latin", "Pyce 27 KM", 93.0)]


def test_detection_alone_leaves_rapidocr_reading_text(sign_jpeg: Path) -> None:
    image = Image.open(sign_jpeg).convert("RGB")
    rapid = ocr_engine("rapidocr")
    assert isinstance(rapid, RapidOcr)
    boxes = rapid.detect(bounded(image)[0])
    assert len(boxes) >= 3
    texts = {line.text.replace(" ", "") for line in read_image(rapid, image)}
    assert "www.toshkent.uz" in texts


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


def test_letters_only_cyrillic_has_keep_a_line_cyrillic_that_the_latin_pack_won() -> None:
    """On a Cyrillic sign, a Ukrainian town the Russian pack reads with letters no Latin letter looks
    like ("Кигв": и, г, в) is Cyrillic, though the Latin pack read "KnïB" a little more confidently; a
    web address the Russian pack garbles into such letters far less confidently stays Latin."""
    sign = [
        [("rus", "Стоянку заборонено", 89.0), ("Latin", "CTOAHKY 3a60pOHEeHO", 75.0)],
        [("jpn", "KMiB 33 KM", 85.0), ("Latin", "KnïB 33 KM", 84.0), ("rus", "Кигв 33 км", 77.0)],
        [("Latin", "www.shop-23.ru", 89.0), ("rus", "млллм/.зпор-23.ги", 45.0)],
        [("Latin", "Tel. +380 3112 34567", 96.0), ("rus", "Те|. +380 3112 34567", 92.0)],
    ]
    assert [p[1] if p else None for p in consistent_readings(sign)] == [
        "Стоянку заборонено",
        "Кигв 33 км",
        "www.shop-23.ru",
        "Tel. +380 3112 34567",
    ]
    # Hangul syllables are never Latin shapes either: "대전" beats the Latin pack's "HN".
    korean = [
        [("kor", "매일 아침 신선한 빵", 93.0)],
        [("Latin", "HN 37 km", 82.0), ("kor", "대전 37 07", 78.0)],
    ]
    assert [p[0] for p in consistent_readings(korean) if p] == ["kor", "kor"]
    # with no Cyrillic line in the image, the Latin reading stands
    assert consistent_readings([sign[1][1:]]) == [("Latin", "KnïB 33 KM", 84.0)]


def test_a_line_is_cut_out_as_dark_letters_on_its_own_ground() -> None:
    """Light letters on a dark sign come out dark on light, and the margin is the line's own ground,
    not the sign's frame beside the line."""
    from PIL import ImageDraw

    image = Image.new("RGB", (400, 200), (200, 30, 30))  # the photo around the sign
    draw = ImageDraw.Draw(image)
    draw.rectangle((50, 60, 350, 140), fill=(255, 255, 255))  # the sign's white frame
    draw.rectangle((60, 70, 340, 130), fill=(20, 60, 140))  # the dark sign
    draw.rectangle((80, 88, 120, 112), fill=(255, 255, 255))  # a light "letter"
    crop = line_crop(image, Region(70, 80, 330, 120))
    assert crop.mode == "L"
    edge = {crop.getpixel((0, y)) for y in range(crop.height)}
    edge |= {crop.getpixel((x, 0)) for x in range(crop.width)}
    assert len(edge) == 1 and int(edge.pop()) > 128  # one light ground all round: no frame, no photo
    letter = crop.getpixel((crop.width // 2 - 100, crop.height // 2))
    assert int(letter) < 64  # type: ignore[arg-type]


@pytest.mark.slow
def test_hybrid_reads_a_light_arabic_sign(tmp_path: Path) -> None:
    """White Arabic letters on a green sign: Tesseract's layout analysis found no line in the crop of
    this sentence, in any pack, so it was never read."""
    from geodesk.clues.languages import line_script
    from tests.clues.conftest import sign_photo

    path = sign_photo(
        tmp_path / "ar.jpg",
        ("التدخين ممنوع منعا باتا", "الأقصر 8 كم"),
        font_path="/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
        size=40,
    )
    lines = read_image(ocr_engine("hybrid"), Image.open(path).convert("RGB"))
    scripts = [s.script for s in (line_script(line.text) for line in lines) if s is not None]
    assert scripts.count("Arab") == 2, [line.text for line in lines]
