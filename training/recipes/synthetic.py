"""A tiny synthetic geolocation data set for smoke runs and recipe tests, made on the spot.

Each country gets a scene colour and a shape (France: a blue scene with a circle, Japan: red with a
square, ...), drawn at a jittered position on a 72x56 image (not square, so the mean-colour padding
is exercised). Samples are written in LLaVA conversation JSON with the prompt protocol's own wording:

- ``meta.json``: direct-mode questions (``prompts.first_turn(DIRECT, rng=...)``), JSON answers
  (``prompts.format_answer``): the Meta-part shape, stage 1's data;
- ``clues.json``: clue-mode questions with clue-mode answers naming the colour and the shape: a stand-in
  for the Clue part, mixed with ``meta.json`` in stage 2.

This is the minimal writer the smoke command needs; the real builders live in ``training/data``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from geodesk.atomic import atomic_write_json
from geodesk.domain import SessionMode
from geodesk.engine import prompts


@dataclass(frozen=True, slots=True)
class Place:
    country: str
    region: str
    city: str
    lat: float
    lon: float
    colour: tuple[int, int, int]
    shape: str


PLACES: tuple[Place, ...] = (
    Place("France", "Ile-de-France", "Paris", 48.8566, 2.3522, (40, 70, 200), "circle"),
    Place("Japan", "Tokyo", "Tokyo", 35.6762, 139.6503, (200, 40, 40), "square"),
    Place("Brazil", "Distrito Federal", "Brasilia", -15.7939, -47.8828, (40, 160, 60), "triangle"),
    Place("Kenya", "Nairobi", "Nairobi", -1.2921, 36.8219, (230, 190, 40), "cross"),
)
IMAGE_SIZE = (72, 56)


def draw_scene(place: Place, rng: random.Random) -> Image.Image:
    """A ``PIL.Image`` of the place's scene: its colour, its shape in white at a jittered spot."""
    from PIL import ImageDraw

    width, height = IMAGE_SIZE
    shade = rng.randint(-20, 20)
    colour = tuple(max(0, min(255, c + shade)) for c in place.colour)
    image = Image.new("RGB", IMAGE_SIZE, colour)
    draw = ImageDraw.Draw(image)
    size = rng.randint(14, 20)
    x, y = rng.randint(4, width - size - 4), rng.randint(4, height - size - 4)
    box = (x, y, x + size, y + size)
    if place.shape == "circle":
        draw.ellipse(box, fill="white")
    elif place.shape == "square":
        draw.rectangle(box, fill="white")
    elif place.shape == "triangle":
        draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill="white")
    else:
        third = size // 3
        draw.rectangle((x + third, y, x + 2 * third, y + size), fill="white")
        draw.rectangle((x, y + third, x + size, y + 2 * third), fill="white")
    return image


def _write_json(path: Path, document: object) -> None:
    atomic_write_json(path, document, indent=1)


def write_synthetic_dataset(out_dir: str | Path, per_country: int = 6, seed: int = 0) -> dict[str, Path]:
    """Write ``images/``, ``meta.json`` and ``clues.json`` under ``out_dir``; return the JSON paths."""
    root = Path(out_dir).expanduser().resolve()
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    meta: list[dict[str, object]] = []
    clues: list[dict[str, object]] = []
    for place in PLACES:
        for i in range(per_country):
            name = f"{place.country.lower()}-{i:03d}.png"
            image = draw_scene(place, rng)
            image.save(images / name)
            where = (place.country, place.region, place.city, place.lat, place.lon)
            question = prompts.first_turn(SessionMode.DIRECT, rng=rng).text
            meta.append(
                {
                    "id": f"meta-{place.country.lower()}-{i}",
                    "image": f"images/{name}",
                    "conversations": [
                        {"from": "human", "value": question},
                        {"from": "gpt", "value": prompts.format_answer(**_fields(*where))},
                    ],
                }
            )
            clue_question = prompts.first_turn(SessionMode.CLUES, rng=rng).text
            found = [
                ("terrain", f"the whole scene is {_colour_word(place)}"),
                ("landmarks", f"a white {place.shape} stands in the picture"),
            ]
            reasoning = f"A {_colour_word(place)} scene with a {place.shape} is typical of {place.country}."
            clues.append(
                {
                    "id": f"clue-{place.country.lower()}-{i}",
                    "image": f"images/{name}",
                    "conversations": [
                        {"from": "human", "value": clue_question},
                        {
                            "from": "gpt",
                            "value": prompts.format_answer(
                                **_fields(*where), clues=found, reasoning=reasoning
                            ),
                        },
                    ],
                }
            )
    paths = {"meta": root / "meta.json", "clues": root / "clues.json"}
    _write_json(paths["meta"], meta)
    _write_json(paths["clues"], clues)
    return paths


def _fields(country: str, region: str, city: str, lat: float, lon: float) -> dict[str, Any]:
    return {"country": country, "region": region, "city": city, "lat": lat, "lon": lon}


def _colour_word(place: Place) -> str:
    r, g, b = place.colour
    if r > 150 and g > 150:
        return "yellow"
    if r > max(g, b):
        return "red"
    if g > max(r, b):
        return "green"
    return "blue"
