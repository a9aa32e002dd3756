"""A street-sign photo for clue-engine tests: a sign over one of scikit-image's sample photographs,
with an EXIF capture time and its UTC offset."""

from __future__ import annotations

from pathlib import Path

import piexif
import pytest
from PIL import Image, ImageDraw, ImageFont

NOTO = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"
SIGN_LINES = ("Tashkent 12 km", "+998 71 123 45 67", "www.toshkent.uz")
SIGN_BOX = (100, 100, 760, 400)


def sign_photo(
    path: Path, lines: tuple[str, ...] = SIGN_LINES, offset: bytes = b"+05:00", font_path: str = NOTO,
    size: int = 54,
) -> Path:
    from skimage import data

    photo = Image.fromarray(data.coffee()).convert("RGB").resize((900, 600))
    draw = ImageDraw.Draw(photo)
    draw.rectangle(SIGN_BOX, fill=(20, 110, 60))
    font = ImageFont.truetype(font_path, size)
    for i, text in enumerate(lines):
        draw.text((130, 120 + 90 * i), text, font=font, fill="white")
    exif = {"Exif": {piexif.ExifIFD.DateTimeOriginal: b"2024:01:15 12:30:00", 0x9011: offset}}
    photo.save(path, exif=piexif.dump(exif), quality=92)
    return path


@pytest.fixture
def sign_jpeg(tmp_path: Path) -> Path:
    return sign_photo(tmp_path / "sign.jpg")
