"""Image preparation before the model's processor: orientation, RGB, pad to square.

``CLIPImageProcessor`` resizes the short side and center-crops, which cuts off the edges of a wide
street photo, often where the signs are. LLaVA and XTuner (and so GaGA) instead pad the image to a
square first with the CLIP normalisation mean as background (``expand2square(img,
tuple(int(x * 255) for x in image_processor.image_mean))``): after normalisation the border is exactly
zero, "no signal". We do the same, so the model sees the whole picture, as it did in training.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageOps

# OpenAI CLIP's normalisation mean (also LLaVA's default background): (122, 116, 104).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)


def mean_fill(image_mean: Sequence[float] | None = None) -> tuple[int, int, int]:
    """The RGB background colour for a processor's ``image_mean`` (0..1 floats), as LLaVA computes it."""
    mean = tuple(image_mean) if image_mean is not None else CLIP_MEAN
    if len(mean) != 3:
        raise ValueError(f"image_mean must have 3 channels, got {len(mean)}")
    r, g, b = (int(x * 255) for x in mean)
    return (r, g, b)


def to_rgb(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Apply the EXIF orientation and convert to RGB; transparent pixels become ``fill``."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*fill, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def pad_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Centre ``image`` on a square canvas of side ``max(w, h)`` filled with ``fill`` (LLaVA's layout)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def prepare_image(image: Image.Image, image_mean: Sequence[float] | None = None) -> Image.Image:
    """Orientation, RGB and mean-colour square padding: what the processor should receive."""
    if image.width < 1 or image.height < 1:
        raise ValueError("the image has no pixels")
    fill = mean_fill(image_mean)
    return pad_to_square(to_rgb(image, fill), fill)
