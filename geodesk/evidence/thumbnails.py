"""Thumbnails of evidence images, upright (EXIF orientation applied), written atomically as JPEG.

Two ways to a thumbnail, both fast on 12-megapixel JPEGs:
- the JPEG's own EXIF thumbnail (IFD1, typically 160×120), which costs no pixel decoding at all; the
  import's integrity check is then the marker-chain check of :func:`formats.check_jpeg_structure`;
- decoding the image itself, JPEGs at reduced scale with ``Image.draft`` (libjpeg skips most of the
  inverse DCT work: 1/8 scale for 256 px thumbnails), which also proves every scan decodes.
docs/adr/0004-evidence-import.md explains when each is used.
"""

from __future__ import annotations

import io
import os

from PIL import ExifTags, Image

from geodesk.atomic import atomic_open

THUMB_SIZE = 256  # longest edge, pixels: an evidence-grid cell on a high-DPI screen
THUMB_QUALITY = 85
MIN_EMBEDDED_EDGE = 120  # smaller EXIF thumbnails (some write 80×60) look too poor in the grid

# EXIF orientation -> the transposition that makes the picture upright (ImageOps.exif_transpose's table).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def thumbnail_name(sha256: str) -> str:
    """File name of an evidence item's thumbnail inside the case's ``thumbs/`` folder."""
    return f"{sha256}.jpg"


def apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for any mode Pillow opens: alpha composited on white, 16/32-bit scaled down."""
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
    if image.format != "JPEG" or not isinstance(raw, bytes) or not raw.startswith(b"Exif\x00\x00"):
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


def decoded_thumbnail(image: Image.Image, size: int = THUMB_SIZE) -> Image.Image:
    """Decode ``image`` (JPEGs at reduced scale) and shrink it to ``size`` px on its longest edge.

    ``load()`` runs the decoder over the whole file, so truncated or corrupt pixel data raises here.
    """
    if image.format == "JPEG":
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding: a 4000×3000 JPEG arrives as 500×375.
        image.draft("RGB", (size, size))
    image.load()
    small = to_rgb(image)
    if small is image:
        small = image.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return small


def make_thumbnail(image: Image.Image, orientation: int, *, size: int = THUMB_SIZE,
                   prefer_embedded: bool = True) -> tuple[Image.Image, str]:
    """An upright RGB thumbnail and where it came from: ``"exif-embedded"`` or ``"decoded"``."""
    thumb = embedded_thumbnail(image) if prefer_embedded else None
    source = "exif-embedded"
    if thumb is None:
        thumb, source = decoded_thumbnail(image, size), "decoded"
    elif max(thumb.size) > size:
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return apply_orientation(thumb, orientation), source


def write_jpeg_atomic(
    image: Image.Image, target: str | os.PathLike[str], quality: int = THUMB_QUALITY
) -> None:
    """Save ``image`` as JPEG at ``target`` atomically (temp file in the same folder, then rename)."""
    with atomic_open(target, binary=True) as fh:
        image.save(fh, "JPEG", quality=quality, optimize=False)
