"""Bounded decoding of untrusted images: never more pixels in memory than the result needs.

Evidence, training images and requests to ``geodesk serve`` come from people the analyst does not
control. A small file can describe a huge picture (a 140 KB PNG of 36,000,000×1 pixels, a 328 KB PNG
of 13000×13000 16-bit samples), so every path that turns a file into pixels for a thumbnail or a model
goes through :func:`decode_bounded`:

1. the header gives the size; a picture whose *decoded* size (width × height × bytes per pixel of the
   mode it decodes to) is above a byte budget is refused with :class:`ImageTooLargeError` before any pixel
   is decoded;
2. JPEGs are decoded at reduced scale (``Image.draft``: libjpeg scales by 1/2, 1/4 or 1/8 while it
   decodes, so a 20000×2000 JPEG aimed at 3584 px arrives as 5000×500), and the budget is checked on
   the reduced size;
3. the decoded picture is shrunk to at most ``max_edge`` pixels on its longest side (integer
   ``reduce`` first, then a bicubic resize) *before* anything is converted or padded, so later copies
   (RGB conversion, EXIF rotation, the square canvas of LLaVA-style padding) are small.

Modes Pillow cannot resample smoothly (16-bit greyscale, palette, 1-bit) are first thinned with a
nearest-neighbour step to a few times the target size, then resampled in a mode that can be.
"""

from __future__ import annotations

import warnings

from PIL import Image, ImageFile

# A decoded picture above this many bytes is refused: 512 MiB holds a 170 MP RGB picture or a
# 13000×13000 16-bit scan, and keeps two import workers and the GUI far from a 4 GB machine's limit.
DEFAULT_DECODE_BUDGET_BYTES = 512 * 2**20

# Bytes per pixel as Pillow stores a mode once decoded (the core keeps 3-channel modes in 4 bytes).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_SMOOTH_MODES = {"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "F",
                 "PA"}

# EXIF orientation -> the transposition that makes the picture upright (ImageOps.exif_transpose's table).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageTooLargeError(ValueError):
    """A picture whose decoded size is above the budget; the message is a sentence about it."""


def bytes_per_pixel(mode: str) -> int:
    return _BYTES_PER_PIXEL.get(mode, 4)


def decoded_bytes(size: tuple[int, int], mode: str) -> int:
    """What ``size`` pixels of ``mode`` occupy once decoded, in bytes."""
    return size[0] * size[1] * bytes_per_pixel(mode)


def fit_size(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    """``size`` scaled down (never up) so its longest side is at most ``max_edge``; each side >= 1."""
    width, height = size
    longest = max(width, height)
    if longest <= max_edge:
        return width, height
    scale = max_edge / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation (1..8) without decoding pixels (1 when absent or unreadable).

    PNG keeps EXIF in an ``eXIf`` chunk; when it sits after the pixel data Pillow would decode the whole
    picture to find it (``PngImageFile.getexif`` calls ``load``), so an unloaded PNG without it in its
    header counts as upright.
    """
    if image.format == "PNG" and "exif" not in image.info and getattr(image, "_im", None) is None:
        return 1
    try:
        value = image.getexif().get(0x0112, 1)
        orientation = int(value[0] if isinstance(value, (tuple, list)) else value)
    except Exception:  # a damaged EXIF block only means "upright"
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def check_budget(image: Image.Image, budget_bytes: int, what: str = "the image") -> None:
    """Refuse ``image`` (header read, pixels not yet decoded) if decoding it would exceed the budget."""
    need = decoded_bytes(image.size, image.mode)
    if need > budget_bytes:
        width, height = image.size
        raise ImageTooLargeError(
            f"{what} is {width}×{height} pixels ({image.mode}), {need / 2**20:,.0f} MiB once decoded, above "
            f"geodesk's decoding limit of {budget_bytes / 2**20:,.0f} MiB; downscale it with an image editor "
            "first"
        )


def decode_bounded(
    image: Image.Image,
    max_edge: int,
    *,
    budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
    upright: bool = True,
    allow_truncated: bool = False,
) -> Image.Image:
    """Decode ``image`` (opened with ``Image.open``, or already loaded) to at most ``max_edge`` px.

    Returns a new image of at most ``max_edge`` pixels on its longest side, EXIF orientation applied
    when ``upright``; its mode is the decoded mode, except that modes which cannot be resampled
    smoothly come back as ``L``/``I``/``RGBA``. Raises :class:`ImageTooLargeError` before decoding when the
    picture would not fit the budget, and Pillow's own errors (``OSError`` and friends) for damaged
    pixel data. ``allow_truncated`` decodes what a truncated file holds (the rest grey) instead.
    """
    if max_edge < 1:
        raise ValueError(f"max_edge must be at least 1, got {max_edge}")
    if image.width < 1 or image.height < 1:
        raise ValueError("the image has no pixels")
    orientation = orientation_of(image) if upright else 1
    target = fit_size(image.size, max_edge)
    if image.format in ("JPEG", "MPO") and getattr(image, "_im", None) is None:
        # Ask for the target in the picture's own aspect: draft picks the largest 1/s scale that still
        # covers it in both directions (asking for (edge, edge) would never scale a wide picture).
        image.draft(image.mode if image.mode in ("L", "RGB", "CMYK", "YCbCr") else None, target)
    check_budget(image, budget_bytes)
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        if allow_truncated:
            ImageFile.LOAD_TRUNCATED_IMAGES = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    small = _shrink(image, target)
    method = TRANSPOSE.get(orientation)
    return small.transpose(method) if method is not None else small


def _shrink(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """``image`` (decoded) resampled to ``target``; always a new image the caller may change."""
    if image.mode not in _SMOOTH_MODES:
        # 16-bit, palette and 1-bit pictures: thin out (nearest neighbour, no copy at full size) to at
        # most 4× the target, then move to a mode that resamples smoothly.
        coarse = (min(image.width, 4 * target[0]), min(image.height, 4 * target[1]))
        if coarse != image.size:
            image = image.resize(coarse, Image.Resampling.NEAREST)
        if image.mode.startswith("I;16"):
            image = image.convert("I")
        elif image.mode == "1":
            image = image.convert("L")
        else:  # P (with or without transparency)
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.size == target:
        return image.copy()
    # reduce() averages fx×fy blocks: cheap, and the resize after it scales by less than 2. Each axis
    # has its own factor: a resampling filter's table grows with the scale (a 36,000,000×1 strip
    # resized straight to 3584×1 would take a gigabyte of filter coefficients).
    fx, fy = max(1, image.width // target[0]), max(1, image.height // target[1])
    if fx >= 2 or fy >= 2:
        image = image.reduce((fx, fy))
    if image.size == target:
        return image
    return image.resize(target, Image.Resampling.BICUBIC)
