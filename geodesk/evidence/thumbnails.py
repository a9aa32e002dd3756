"""Thumbnails of evidence images, upright (EXIF orientation applied), written atomically as JPEG.

Two ways to a thumbnail, both fast on 12-megapixel JPEGs:
- the JPEG's own EXIF thumbnail (IFD1, typically 160×120), which costs no pixel decoding at all; the
  import's integrity check is then the marker-chain check of :func:`formats.check_jpeg_structure`;
- decoding the image itself through :func:`geodesk.pixels.decode_bounded`: JPEGs at reduced scale
  with ``Image.draft`` (libjpeg skips most of the inverse DCT work: 1/8 scale for 256 px thumbnails),
  every picture shrunk before it is converted (a 13000×13000 16-bit PNG never becomes a float copy),
  and a decode budget checked before any pixel is decoded; this also proves every scan decodes.
docs/adr/0004-evidence-import.md explains when each is used.
"""

from __future__ import annotations

import io
import os

from PIL import ExifTags, Image

from geodesk.atomic import atomic_open
from geodesk.pixels import DEFAULT_DECODE_BUDGET_BYTES, TRANSPOSE, decode_bounded

JPEG_FORMATS = ("JPEG", "MPO")  # MPO (multi-picture, 3-D and some phone cameras) is JPEG plus previews
THUMB_SIZE = 256  # longest edge, pixels: an evidence-grid cell on a high-DPI screen
THUMB_QUALITY = 85
MIN_EMBEDDED_EDGE = 120  # smaller EXIF thumbnails (some write 80×60) look too poor in the grid

_TRANSPOSE = TRANSPOSE  # EXIF orientation -> the transposition that makes the picture upright


def thumbnail_name(sha256: str) -> str:
    """File name of an evidence item's thumbnail inside the case's ``thumbs/`` folder."""
    return f"{sha256}.jpg"


def apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for any mode Pillow opens: alpha composited on white, 16/32-bit scaled down.

    Call it on a small image (a thumbnail): 16/32-bit pictures go through a float64 copy.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        import numpy as np  # only 16/32-bit images need it; keeps worker start-up light

        # (H, W) integer or float samples -> (H, W) uint8 spread over the image's own range.
        samples = np.asarray(image, dtype=np.float64)
        low, high = float(samples.min()), float(samples.max())
        scaled = (samples - low) * (255.0 / (high - low)) if high > low else np.zeros_like(samples)
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa")
    if has_alpha or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def embedded_thumbnail(image: Image.Image) -> Image.Image | None:
    """The decoded EXIF (IFD1) JPEG thumbnail of a JPEG, cropped to the image's aspect ratio, or None.

    Cameras letterbox 16:9 pictures into a 4:3 (160×120) thumbnail; the black bars are cut off so the
    thumbnail shows exactly the picture's frame.
    """
    raw = image.info.get("exif")
    if image.format not in JPEG_FORMATS or not isinstance(raw, bytes) or not raw.startswith(b"Exif\x00\x00"):
        return None
    try:
        ifd1 = image.getexif().get_ifd(ExifTags.IFD.IFD1)
        offset, length = int(ifd1[0x0201]), int(ifd1[0x0202])
    except (KeyError, TypeError, ValueError):
        return None
    start = 6 + offset  # IFD1 offsets count from the TIFF header, which follows "Exif\0\0"
    if offset <= 0 or length <= 0 or start + length > len(raw):
        return None
    try:
        opened = Image.open(io.BytesIO(raw[start : start + length]), formats=["JPEG"])
        opened.load()
    except Exception:  # a damaged embedded thumbnail only means decoding the image instead
        return None
    thumb: Image.Image = opened
    full_w, full_h = image.size
    thumb_w, thumb_h = thumb.size
    if thumb_w <= 0 or thumb_h <= 0:
        return None
    full_ratio, thumb_ratio = full_w / full_h, thumb_w / thumb_h
    if abs(full_ratio / thumb_ratio - 1.0) > 0.03:
        if full_ratio > thumb_ratio:  # letterboxed: bars at top and bottom
            keep = round(thumb_w / full_ratio)
            top = (thumb_h - keep) // 2
            thumb = thumb.crop((0, top, thumb_w, top + keep))
        else:  # pillarboxed: bars left and right
            keep = round(thumb_h * full_ratio)
            left = (thumb_w - keep) // 2
            thumb = thumb.crop((left, 0, left + keep, thumb_h))
    if max(thumb.size) < MIN_EMBEDDED_EDGE or min(thumb.size) < 1:
        return None
    return to_rgb(thumb)


def decoded_thumbnail(
    image: Image.Image,
    size: int = THUMB_SIZE,
    *,
    budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
    allow_truncated: bool = False,
) -> Image.Image:
    """Decode ``image`` (bounded: JPEGs at reduced scale) and shrink it to ``size`` px on its longest edge.

    The decoder runs over the whole file, so truncated or corrupt pixel data raises here (unless
    ``allow_truncated``); :class:`geodesk.pixels.ImageTooLargeError` when the picture would not fit the
    decode budget. Orientation is left to the caller.
    """
    return to_rgb(decode_bounded(image, size, budget_bytes=budget_bytes, upright=False,
                                 allow_truncated=allow_truncated))


def make_thumbnail(image: Image.Image, orientation: int, *, size: int = THUMB_SIZE,
                   prefer_embedded: bool = True, budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
                   allow_truncated: bool = False) -> tuple[Image.Image, str]:
    """An upright RGB thumbnail and where it came from: ``"exif-embedded"`` or ``"decoded"``."""
    thumb = embedded_thumbnail(image) if prefer_embedded else None
    source = "exif-embedded"
    if thumb is None:
        decoded = decoded_thumbnail(image, size, budget_bytes=budget_bytes, allow_truncated=allow_truncated)
        thumb, source = decoded, "decoded"
    elif max(thumb.size) > size:
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return apply_orientation(thumb, orientation), source


def write_jpeg_atomic(
    image: Image.Image, target: str | os.PathLike[str], quality: int = THUMB_QUALITY
) -> None:
    """Save ``image`` as JPEG at ``target`` atomically (temp file in the same folder, then rename)."""
    with atomic_open(target, binary=True) as fh:
        image.save(fh, "JPEG", quality=quality, optimize=False)
