"""Evidence images made by the tests: Pillow pixels, piexif metadata, and a corpus of broken files."""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import piexif
from PIL import Image

Rational = tuple[int, int]


def dms_rationals(value: float) -> tuple[Rational, Rational, Rational]:
    """|value| in degrees as EXIF (degrees, minutes, seconds) rationals; seconds with 1e-4" resolution."""
    value = abs(value)
    total = Fraction(round(value * 3600 * 10000), 10000)  # arc-seconds, exact
    degrees = int(total // 3600)
    minutes = int((total - degrees * 3600) // 60)
    seconds = total - degrees * 3600 - minutes * 60
    return (degrees, 1), (minutes, 1), (seconds.numerator, seconds.denominator)


def gps_ifd(lat: float, lon: float, alt: float | None = None) -> dict[int, Any]:
    ifd: dict[int, Any] = {
        piexif.GPSIFD.GPSLatitudeRef: b"S" if lat < 0 else b"N",
        piexif.GPSIFD.GPSLatitude: dms_rationals(lat),
        piexif.GPSIFD.GPSLongitudeRef: b"W" if lon < 0 else b"E",
        piexif.GPSIFD.GPSLongitude: dms_rationals(lon),
    }
    if alt is not None:
        ifd[piexif.GPSIFD.GPSAltitudeRef] = 1 if alt < 0 else 0
        ifd[piexif.GPSIFD.GPSAltitude] = (round(abs(alt) * 100), 100)
    return ifd


def exif_bytes(
    *,
    gps: dict[int, Any] | None = None,
    taken: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
    orientation: int | None = None,
    thumbnail: bytes | None = None,
) -> bytes:
    zeroth: dict[int, Any] = {}
    if make is not None:
        zeroth[piexif.ImageIFD.Make] = make.encode()
    if model is not None:
        zeroth[piexif.ImageIFD.Model] = model.encode()
    if orientation is not None:
        zeroth[piexif.ImageIFD.Orientation] = orientation
    exif: dict[int, Any] = {}
    if taken is not None:
        exif[piexif.ExifIFD.DateTimeOriginal] = taken.encode()
    if offset is not None:
        exif[piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    document: dict[str, Any] = {"0th": zeroth, "Exif": exif, "GPS": gps or {}}
    if thumbnail is not None:
        document["1st"] = {piexif.ImageIFD.Compression: 6}
        document["thumbnail"] = thumbnail
    return bytes(piexif.dump(document))


def pattern(width: int = 64, height: int = 48) -> Image.Image:
    """An RGB picture whose left half is red and right half blue, so orientation can be checked."""
    image = Image.new("RGB", (width, height), (220, 20, 20))
    image.paste((20, 20, 220), (width // 2, 0, width, height))
    return image


def jpeg_thumbnail(image: Image.Image, size: tuple[int, int] = (160, 120)) -> bytes:
    buffer = io.BytesIO()
    image.resize(size).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def write_jpeg(path: Path, image: Image.Image | None = None, **exif: Any) -> Path:
    """A JPEG with the given EXIF fields (see :func:`exif_bytes`)."""
    image = image or pattern()
    image.save(path, "JPEG", quality=90, exif=exif_bytes(**exif) if exif else b"")
    return path


def write_image(path: Path, fmt: str, image: Image.Image | None = None, **exif: Any) -> Path:
    """PNG / TIFF / WEBP (Pillow writes the EXIF block into each)."""
    image = image or pattern()
    params: dict[str, Any] = {"exif": exif_bytes(**exif)} if exif else {}
    image.save(path, fmt, **params)
    return path


def png_bomb(path: Path, width: int = 60_000, height: int = 60_000) -> Path:
    """A 100-byte PNG that claims 3.6 gigapixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    data += chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def broken_corpus(folder: Path, *, outside: Path) -> dict[str, str]:
    """Broken files in ``folder``; returns {file name: a phrase its import error must contain}.

    ``outside`` is a folder outside ``folder`` for the escaping symlink's target.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    # A truncated JPEG is damaged but readable: it is imported and flagged (tests/evidence/test_hostile.py).
    tiff = io.BytesIO()
    pattern(40, 30).save(tiff, "TIFF")
    (folder / "damaged.tif").write_bytes(tiff.getvalue()[:8] + b"\x00" * 24)  # first directory zeroed
    expected["damaged.tif"] = "damaged TIFF"

    (folder / "controls.bin").write_bytes(bytes(range(1, 32)) * 4)  # decodes as UTF-8, but it is not text
    expected["controls.bin"] = "not an image"

    # Seeded, and starting with a byte no image format starts with, so the test cannot flake.
    (folder / "random.jpg").write_bytes(b"\x07" + random.Random(7).randbytes(4095))
    expected["random.jpg"] = "not an image"

    (folder / "empty.jpg").write_bytes(b"")
    expected["empty.jpg"] = "empty (0 bytes)"

    (folder / "notes.txt").write_text("harbour at dusk, seen from the ferry\n")
    expected["notes.txt"] = "text file"

    png_bomb(folder / "bomb.png")
    expected["bomb.png"] = "decompression bomb"

    (folder / "anim.gif").write_bytes(b"GIF89a" + b"\x00" * 64)
    expected["anim.gif"] = "GIF"

    secret = outside / "secret.jpg"
    write_jpeg(secret)
    (folder / "escape.jpg").symlink_to(secret)
    expected["escape.jpg"] = "outside the imported folder"
    return expected


def crashing_worker(source: Any, settings: Any) -> Any:
    """A worker that dies like a segfaulting decoder on files named crash*.jpg (runs in the pool)."""
    from geodesk.evidence.pipeline import prepare_file

    if Path(source.path).name.startswith("crash"):
        os._exit(11)
    return prepare_file(source, settings)
