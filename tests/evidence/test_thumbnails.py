"""Thumbnails: upright, small, from the embedded EXIF thumbnail or a reduced-scale decode; atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from geodesk.evidence.thumbnails import (
    THUMB_SIZE,
    decoded_thumbnail,
    embedded_thumbnail,
    make_thumbnail,
    to_rgb,
    write_jpeg_atomic,
)
from tests.evidence.fixtures import jpeg_thumbnail, pattern, write_image, write_jpeg


def _left_is_red(image: Image.Image) -> bool:
    r, _, b = image.convert("RGB").getpixel((2, image.height // 2))  # type: ignore[misc]
    return bool(r > 150 and b < 100)


def _top_is_red(image: Image.Image) -> bool:
    r, _, b = image.convert("RGB").getpixel((image.width // 2, 2))  # type: ignore[misc]
    return bool(r > 150 and b < 100)


@pytest.mark.parametrize("prefer_embedded", [True, False])
def test_orientation_6_turns_the_picture_upright(tmp_path: Path, prefer_embedded: bool) -> None:
    picture = pattern(800, 600)  # stored landscape: red left, blue right
    path = write_jpeg(tmp_path / "a.jpg", picture, orientation=6, thumbnail=jpeg_thumbnail(picture))
    with Image.open(path) as image:
        thumb, source = make_thumbnail(image, 6, prefer_embedded=prefer_embedded)
    assert source == ("exif-embedded" if prefer_embedded else "decoded")
    # Orientation 6 = rotate 90° clockwise to display: the left (red) edge becomes the top.
    assert thumb.height > thumb.width
    assert _top_is_red(thumb)
    assert max(thumb.size) <= THUMB_SIZE


def test_decoded_jpeg_uses_reduced_scale(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "big.jpg", pattern(4000, 3000))
    with Image.open(path) as image:
        thumb = decoded_thumbnail(image, 256)
        # draft() made libjpeg decode at 1/8 scale: the decoded image is 500×375, not 4000×3000.
        assert image.size == (500, 375)
    assert thumb.size == (256, 192)
    assert _left_is_red(thumb)


def test_letterboxed_embedded_thumbnail_is_cropped_to_the_picture(tmp_path: Path) -> None:
    picture = pattern(1600, 900)  # 16:9
    boxed = Image.new("RGB", (160, 120), (0, 0, 0))
    boxed.paste(picture.resize((160, 90)), (0, 15))  # black bars top and bottom, as cameras write
    path = write_jpeg(tmp_path / "wide.jpg", picture, thumbnail=jpeg_thumbnail(boxed, (160, 120)))
    with Image.open(path) as image:
        thumb = embedded_thumbnail(image)
    assert thumb is not None and thumb.size == (160, 90)
    assert thumb.getpixel((80, 2)) != (0, 0, 0)


def test_tiny_or_missing_embedded_thumbnail_means_decoding(tmp_path: Path) -> None:
    picture = pattern(640, 480)
    path = write_jpeg(tmp_path / "a.jpg", picture, thumbnail=jpeg_thumbnail(picture, (80, 60)))
    with Image.open(path) as image:
        assert embedded_thumbnail(image) is None
        _, source = make_thumbnail(image, 1)
    assert source == "decoded"


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "I;16", "1"])
def test_every_mode_becomes_rgb(mode: str) -> None:
    image = pattern(40, 30).convert("RGBA" if mode in ("RGBA", "LA") else "RGB")
    if mode == "I;16":
        converted = Image.new("I;16", (40, 30))
        converted.putdata([i * 50 for i in range(40 * 30)])
    else:
        converted = image.convert(mode)
    rgb = to_rgb(converted)
    assert rgb.mode == "RGB" and rgb.size == (40, 30)


def test_transparent_png_is_composited_on_white(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", "PNG", Image.new("RGBA", (50, 50), (0, 0, 0, 0)))
    with Image.open(path) as image:
        thumb, _ = make_thumbnail(image, 1)
    assert thumb.getpixel((10, 10)) == (255, 255, 255)


def test_truncated_pixel_data_raises_on_decode(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", pattern(800, 600))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as image, pytest.raises(OSError, match="truncated"):
        decoded_thumbnail(image)


def test_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "t.jpg"
    write_jpeg_atomic(pattern(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["t.jpg"]
    with Image.open(target) as image:
        assert image.format == "JPEG"


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "t.jpg"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        write_jpeg_atomic(Image.new("RGBA", (4, 4)), target)  # JPEG cannot hold alpha
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.jpg"]
