"""Image preparation before the model's processor: bounded decode, orientation, RGB, pad to square.

``CLIPImageProcessor`` resizes the short side and center-crops, which cuts off the edges of a wide
street photo, often where the signs are. LLaVA and XTuner (and so GaGA) instead pad the image to a
square first with the CLIP normalisation mean as background (``expand2square(img,
tuple(int(x * 255) for x in image_processor.image_mean))``): after normalisation the border is exactly
zero, "no signal". We do the same, so the model sees the whole picture, as it did in training.

Padding a hostile picture to ``max(w, h)²`` is the danger: a 12000×3000 PNG becomes a 432 MB canvas, a
36,000,000×1 PNG asks for 1.3e15 pixels. So :func:`prepare_image` is the ONE bounded step every path
that feeds a model uses (serve, locate, batch, the app's "Locate all", training data sets, evaluation):
it refuses pictures more than :data:`MAX_ASPECT` times wider than high (or higher than wide), decodes
through :func:`geodesk.pixels.decode_bounded` (JPEG at reduced scale, a byte budget checked before
decoding) to at most :data:`MODEL_MAX_EDGE` px on the longest side, and only then pads: the canvas is
never larger than ``MODEL_MAX_EDGE²``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from geodesk.pixels import DEFAULT_DECODE_BUDGET_BYTES, ImageTooLargeError, decode_bounded

# OpenAI CLIP's normalisation mean (also LLaVA's default background): (122, 116, 104).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)

# The longest side a model is given. CLIP-family processors resize to 224-448 px anyway; Qwen2.5-VL's
# default ``max_pixels`` (12,845,056 = 3584²) is the largest any supported family takes, so nothing a
# model could use is lost. A 3584² RGB canvas is 38 MB.
MODEL_MAX_EDGE = 3584
# Wider (or taller) than this is a strip, not a photograph: 360° panoramas are about 8:1. After padding
# to a square a 32:1 strip covers 1/32 of the model's view; refusing says so instead of answering blind.
MAX_ASPECT = 32.0


class ImageRefusedError(ValueError):
    """The picture cannot be given to a model; the message is a sentence a person can act on."""


def mean_fill(image_mean: Sequence[float] | None = None) -> tuple[int, int, int]:
    """The RGB background colour for a processor's ``image_mean`` (0..1 floats), as LLaVA computes it."""
    mean = tuple(image_mean) if image_mean is not None else CLIP_MEAN
    if len(mean) != 3:
        raise ValueError(f"image_mean must have 3 channels, got {len(mean)}")
    r, g, b = (int(x * 255) for x in mean)
    return (r, g, b)


def to_rgb(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Convert an (already upright) image to RGB; transparent pixels become ``fill``."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*fill, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I", "F"):  # 16/32-bit greyscale: spread the picture's own range over 0..255
        extrema = image.getextrema()
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        scale = 255.0 / (high - low) if high > low else 0.0
        image = image.point(lambda v: (v - low) * scale).convert("L")
    return image.convert("RGB") if image.mode != "RGB" else image


def pad_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Centre ``image`` on a square canvas of side ``max(w, h)`` filled with ``fill`` (LLaVA's layout).

    Only ever called on a picture already bounded to :data:`MODEL_MAX_EDGE` by :func:`prepare_image`.
    """
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def check_shape(size: tuple[int, int], max_aspect: float = MAX_ASPECT) -> None:
    """Refuse empty pictures and strips more than ``max_aspect`` times longer than wide."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageRefusedError("the image has no pixels")
    ratio = max(width, height) / min(width, height)
    if ratio > max_aspect:
        raise ImageRefusedError(
            f"the image is {width}×{height} pixels, {ratio:,.0f} times longer than it is wide; a model is "
            f"given pictures up to {max_aspect:g}:1. Crop the part that matters and use that instead"
        )


def bounded_rgb(
    image: Image.Image,
    image_mean: Sequence[float] | None = None,
    *,
    max_edge: int = MODEL_MAX_EDGE,
    max_aspect: float = MAX_ASPECT,
    budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
    allow_truncated: bool = False,
) -> Image.Image:
    """The picture upright, RGB (alpha over the mean colour) and at most ``max_edge`` px, not padded.

    For backends that pad on their side (an OpenAI-compatible server). Raises :class:`ImageRefusedError`.
    ``allow_truncated``: decode what a damaged file holds (evidence imported as damaged).
    """
    check_shape(image.size, max_aspect)
    try:
        small = decode_bounded(image, max_edge, budget_bytes=budget_bytes, allow_truncated=allow_truncated)
    except ImageTooLargeError as exc:
        raise ImageRefusedError(str(exc)) from None
    return to_rgb(small, mean_fill(image_mean))


def prepare_image(
    image: Image.Image,
    image_mean: Sequence[float] | None = None,
    *,
    max_edge: int = MODEL_MAX_EDGE,
    max_aspect: float = MAX_ASPECT,
    budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
) -> Image.Image:
    """Bounded decode, orientation, RGB and mean-colour square padding: what the processor receives.

    The result is a square RGB image of side at most ``max_edge``. Raises :class:`ImageRefusedError`
    (a ``ValueError``) for a picture that cannot be given to a model, and Pillow's ``OSError`` for
    undecodable pixel data.
    """
    fill = mean_fill(image_mean)
    return pad_to_square(
        bounded_rgb(image, image_mean, max_edge=max_edge, max_aspect=max_aspect, budget_bytes=budget_bytes),
        fill,
    )


def open_rgb(
    path: str | Path,
    image_mean: Sequence[float] | None = None,
    *,
    max_edge: int = MODEL_MAX_EDGE,
    allow_truncated: bool = False,
) -> Image.Image:
    """A file's picture, bounded, upright and RGB (not padded), for callers that keep it: a session's
    cached original, a teacher's or an evaluation's input. Raises ``OSError`` / ImageRefusedError."""
    with Image.open(path) as img:
        return bounded_rgb(img, image_mean, max_edge=max_edge, allow_truncated=allow_truncated)


__all__ = [
    "CLIP_MEAN",
    "MAX_ASPECT",
    "MODEL_MAX_EDGE",
    "ImageRefusedError",
    "ImageTooLargeError",
    "bounded_rgb",
    "check_shape",
    "mean_fill",
    "open_rgb",
    "pad_to_square",
    "prepare_image",
    "to_rgb",
]
