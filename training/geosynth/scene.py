"""One GeoSynth street scene: planned from a seed, then drawn with Pillow.

Planning and drawing are separate so that a scene can be drawn again without one of its elements
(the tests check that leaving an element out changes pixels only inside that element's box, and that
a hidden decisive cue is really absent). Every random choice is made in ``plan_scene`` from
``random.Random("geosynth/1:{seed}:{index}")``, in a fixed order that does not depend on which fonts
the machine has: scene *i* of a seed is the same whatever ``n`` is, and the same seed gives the same
PNG bytes on a machine with the same fonts and Pillow.

The view: a two-lane road from the bottom of the frame to a vanishing point on the horizon at y = 100
(all geometry is laid out on a 224-pixel square and scaled to the requested size). Cars driving away
from the viewer show their backs (red tail lights, rear plate) and keep to the country's side;
oncoming cars show their fronts (headlights, front plate) on the other lane. The place-name sign
stands on the driving side, the landmark on the skyline opposite it.

Elements (drawn in this order) and the cue kinds they show:

- ``landmark`` -> landmark; ``snow`` -> snow (white ground, snow on trees); ``vegetation`` -> vegetation
  (trees of the city's biome); ``poles`` -> poles; ``edge_lines`` / ``centre_line`` -> the line cues;
  ``bollards`` -> bollards; ``sign`` -> sign; ``cars`` -> driving_side and plates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from training.geosynth.cues import (
    LANDMARK_RGB,
    RGB,
    VARIES_PALETTE,
    Biome,
    Country,
)
from training.geosynth.fonts import FontBook
from training.geosynth.world import Place, World

PLAN_VERSION = "geosynth/1"
BASE = 224.0  # layout square
HORIZON = 100.0
VANISH_X = 112.0
ROAD_HALF_BOTTOM = 104.0

ELEMENTS = ("landmark", "snow", "vegetation", "poles", "edge_lines", "centre_line", "bollards", "sign",
            "cars")
ELEMENT_CUES: dict[str, tuple[str, ...]] = {"cars": ("driving_side", "plates")}
# Cue kinds in the order they are listed in metadata.csv.
CUE_KINDS = ("driving_side", "plates", "centre_line", "edge_lines", "sign", "bollards", "poles", "vegetation",
             "snow", "landmark")
DECISIVE_KINDS = ("sign", "landmark")

Box = tuple[int, int, int, int]
Colour = tuple[int, int, int]


def cues_of(elements: Iterable[str]) -> tuple[str, ...]:
    shown = {cue for e in elements for cue in ELEMENT_CUES.get(e, (e,))}
    return tuple(k for k in CUE_KINDS if k in shown)


@dataclass(frozen=True, slots=True)
class Car:
    oncoming: bool  # True: front view on the far lane; False: back view on the driving lane
    depth: float  # y of the wheels on the 224 layout
    colour: Colour
    plate: str  # plate background colour drawn, or "none"


@dataclass(frozen=True, slots=True)
class Tree:
    x: float
    base: float
    height: float
    variant: float  # 0..1, picks between the biome's tree kinds


@dataclass(frozen=True, slots=True)
class ScenePlan:
    id: str
    place: Place
    month: int
    decisive: str  # "sign" | "landmark": the cue that settles the city
    hidden: bool  # the decisive cue (and the other city cue) is out of frame
    elements: tuple[str, ...]  # what is drawn, in ELEMENTS order
    sky: Colour
    ground: Colour
    asphalt: Colour
    centre_colour: str | None
    centre_dashed: bool
    edge_colour: str | None
    cars: tuple[Car, ...]
    sign_distance: int
    landmark_x: float
    pole_side: str
    pole_depths: tuple[float, ...]
    bollard_depths: tuple[float, ...]
    trees: tuple[Tree, ...]
    not_rendered: tuple[str, ...] = ()  # cues planned but not drawable here (missing font)

    @property
    def country(self) -> Country:
        return self.place.country

    @property
    def cues(self) -> tuple[str, ...]:
        return cues_of(self.elements)

    @property
    def snow(self) -> bool:
        return "snow" in self.elements

    @property
    def sign_lines(self) -> tuple[str, ...]:
        city = self.place.city
        unit = self.country.distance_unit
        lines = [city.sign]
        if city.sign_second:
            lines.append(city.sign_second)
        lines.append(f"{self.sign_distance} {unit}")
        return tuple(lines)

    @property
    def facts(self) -> dict[str, Any]:
        """What each visible cue shows (cue kind -> value): the scene's observable truth."""
        out: dict[str, Any] = {}
        country, city = self.country, self.place.city
        if "cars" in self.elements:
            out["driving_side"] = country.driving_side
            front = next((c.plate for c in self.cars if c.oncoming), None)
            rear = next((c.plate for c in self.cars if not c.oncoming), None)
            out["plates"] = {"front": front, "rear": rear, "band": country.plates.band}
        if "centre_line" in self.elements:
            out["centre_line"] = self.centre_colour
        if "edge_lines" in self.elements:
            out["edge_lines"] = self.edge_colour
        if "sign" in self.elements:
            out["sign"] = {"place": self.place.key, "lines": list(self.sign_lines),
                           "colours": [country.sign_style.board, country.sign_style.text]}
        if "bollards" in self.elements:
            out["bollards"] = country.bollard
        if "poles" in self.elements:
            out["poles"] = country.pole
        if "vegetation" in self.elements:
            out["vegetation"] = city.biome.value
        if "snow" in self.elements:
            out["snow"] = True
        if "landmark" in self.elements:
            out["landmark"] = {"place": self.place.key, "glyph": self.place.glyph.description}
        return out


# -------------------------------------------------------------------------------------------- planning

_SKY = {Biome.ARID: (168, 198, 228), Biome.SAVANNA: (150, 190, 230), Biome.TROPICAL: (110, 170, 228)}
_GROUND: dict[Biome, Colour] = {
    Biome.TROPICAL: (70, 140, 58), Biome.SAVANNA: (188, 168, 98), Biome.ARID: (210, 180, 128),
    Biome.MEDITERRANEAN: (168, 160, 92), Biome.TEMPERATE: (98, 148, 70), Biome.BOREAL: (78, 112, 68),
    Biome.SUBPOLAR: (138, 148, 118),
}
SNOW_GROUND: Colour = (236, 240, 244)
_CAR_COLOURS: tuple[Colour, ...] = ((200, 200, 204), (40, 40, 44), (170, 30, 30), (30, 60, 140),
                                    (230, 230, 226), (110, 110, 116), (60, 110, 70), (200, 160, 40))


def _jitter(rng: random.Random, colour: Colour, amount: int) -> Colour:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)
    return (r, g, b)


def _plate_colour(rng: random.Random, spec: str) -> str:
    # Always consume one draw so the plan's random stream does not depend on the country's plates.
    pick = VARIES_PALETTE[rng.randrange(len(VARIES_PALETTE))]
    return pick if spec == "varies" else spec


def plan_scene(world: World, seed: int, index: int, *, hidden_share: float, fonts: FontBook) -> ScenePlan:
    """Every random choice of scene ``index`` of ``seed``, in a fixed order."""
    rng = random.Random(f"{PLAN_VERSION}:{seed}:{index}")
    codes = sorted({p.country.code for p in world.places})
    code = codes[rng.randrange(len(codes))]  # countries equally likely: chance is 1 / countries
    options = world.by_country(code)
    place = options[rng.randrange(len(options))]
    country, city = place.country, place.city
    month = rng.randint(1, 12)
    decisive = "sign" if rng.random() < 0.6 else "landmark"
    hidden = rng.random() < hidden_share
    # Optional elements, each with its own draw.
    car_away, car_oncoming = rng.random() < 0.8, rng.random() < 0.6
    centre_shown, centre_coin = rng.random() < 0.9, rng.random() < 0.5
    edge_shown, edge_coin = rng.random() < 0.85, rng.random() < 0.5
    other_city_cue = rng.random() < 0.35
    bollards_shown, poles_shown = rng.random() < 0.7, rng.random() < 0.7
    snow = place.winter(month) and rng.random() < city.snow
    cars: list[Car] = []
    lanes = ((False, car_away, (186.0, 218.0)), (True, car_oncoming, (134.0, 168.0)))
    for oncoming, wanted, depth_range in lanes:
        depth = rng.uniform(*depth_range)
        colour = _jitter(rng, _CAR_COLOURS[rng.randrange(len(_CAR_COLOURS))], 10)
        spec = country.plates.front if oncoming else country.plates.rear
        plate = _plate_colour(rng, spec)
        if oncoming and spec == "varies" and rng.random() < 0.3:
            plate = "none"  # states and provinces that issue only a rear plate
        if wanted:
            cars.append(Car(oncoming, depth, colour, plate))
    sky = _jitter(rng, (186, 190, 198) if snow else _SKY.get(city.biome, (126, 176, 226)), 10)
    ground = SNOW_GROUND if snow else _jitter(rng, _GROUND[city.biome], 8)
    asphalt = _jitter(rng, (82, 82, 86), 8)
    sign_distance = rng.randint(2, 48)
    landmark_x = rng.uniform(0.12, 0.28)
    pole_side = "left" if rng.random() < 0.5 else "right"
    pole_depths = tuple(sorted(rng.uniform(112.0, 215.0) for _ in range(rng.randint(2, 3))))
    bollard_depths = tuple(sorted(rng.uniform(108.0, 216.0) for _ in range(rng.randint(3, 5))))
    trees = tuple(
        Tree(rng.uniform(0.0, 1.0), rng.uniform(102.0, 118.0), rng.uniform(18.0, 40.0), rng.random())
        for _ in range(rng.randint(3, 6))
    )
    centre_dashed = rng.random() < 0.5

    centre_colour = country.centre_line or ("white" if centre_coin else None)
    edge_colour = country.edge_line or ("white" if edge_coin else None)
    sign_drawable = fonts.has(country.sign_script) and fonts.has("sans")
    not_rendered: tuple[str, ...] = () if sign_drawable else ("sign",)
    if decisive == "sign" and not sign_drawable:
        decisive = "landmark"  # the sign cannot be drawn here: the landmark settles the city instead
    wanted_city = set()
    if not hidden:
        wanted_city.add(decisive)
        if other_city_cue:
            wanted_city.update(DECISIVE_KINDS)
    if not sign_drawable:
        wanted_city.discard("sign")
    shown = {
        "landmark": "landmark" in wanted_city,
        "snow": snow,
        "vegetation": True,
        "poles": poles_shown and country.pole is not None,
        "edge_lines": edge_shown and edge_colour is not None,
        "centre_line": centre_shown and centre_colour is not None,
        "bollards": bollards_shown and country.bollard is not None,
        "sign": "sign" in wanted_city,
        "cars": bool(cars),
    }
    return ScenePlan(
        id=f"s{seed}_{index:06d}", place=place, month=month, decisive=decisive, hidden=hidden,
        elements=tuple(e for e in ELEMENTS if shown[e]), sky=sky, ground=ground, asphalt=asphalt,
        centre_colour=centre_colour, centre_dashed=centre_dashed, edge_colour=edge_colour, cars=tuple(cars),
        sign_distance=sign_distance, landmark_x=landmark_x, pole_side=pole_side, pole_depths=pole_depths,
        bollard_depths=bollard_depths, trees=trees, not_rendered=not_rendered,
    )


# --------------------------------------------------------------------------------------------- drawing


def _half_width(y: float) -> float:
    """Half the road's width at layout row ``y`` (0 at the horizon, 104 at the bottom)."""
    return ROAD_HALF_BOTTOM * max(0.0, y - HORIZON) / (BASE - HORIZON)


@dataclass(slots=True)
class _Canvas:
    draw: ImageDraw.ImageDraw
    scale: float
    boxes: dict[str, list[Box]] = field(default_factory=dict)
    element: str = ""

    def xy(self, points: Iterable[tuple[float, float]], pad: float = 2.0) -> list[tuple[float, float]]:
        pts = [(x * self.scale, y * self.scale) for x, y in points]
        self._note(pts, pad)
        return pts

    def _note(self, pts: list[tuple[float, float]], pad: float = 2.0) -> None:
        if not self.element:
            return
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        size = BASE * self.scale
        box = (max(0, math.floor(min(xs) - pad)), max(0, math.floor(min(ys) - pad)),
               min(int(size), math.ceil(max(xs) + pad)), min(int(size), math.ceil(max(ys) + pad)))
        self.boxes.setdefault(self.element, []).append(box)

    def polygon(self, points: Iterable[tuple[float, float]], fill: Colour) -> None:
        self.draw.polygon(self.xy(points), fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: Colour) -> None:
        self.draw.rectangle(self.xy([(x0, y0), (x1, y1)]), fill=fill)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: Colour | None = None,
                outline: Colour | None = None, width: float = 1.0) -> None:
        pixels = max(1, round(width * self.scale))
        self.draw.ellipse(self.xy([(x0, y0), (x1, y1)], pad=2.0 + pixels), fill=fill, outline=outline,
                          width=pixels)

    def line(self, points: Iterable[tuple[float, float]], fill: Colour, width: float) -> None:
        pixels = max(1, round(width * self.scale))
        self.draw.line(self.xy(points, pad=2.0 + pixels / 2), fill=fill, width=pixels)


def _draw_landmark(c: _Canvas, plan: ScenePlan) -> None:
    sign_side = plan.country.driving_side
    fx = plan.landmark_x if sign_side == "right" else 1.0 - plan.landmark_x
    x, base = fx * BASE, HORIZON
    colour = LANDMARK_RGB[plan.place.glyph.colour]
    shape = plan.place.glyph.shape
    if shape == "tower":
        c.rect(x - 4, base - 42, x + 4, base, colour)
        c.rect(x - 8, base - 36, x + 8, base - 30, colour)
        c.line([(x, base - 42), (x, base - 52)], colour, 1.5)
    elif shape == "dome":
        c.rect(x - 13, base - 14, x + 13, base, colour)
        c.draw.pieslice(c.xy([(x - 13, base - 32), (x + 13, base - 4)]), 180, 360, fill=colour)
    elif shape == "pyramid":
        c.polygon([(x - 19, base), (x + 19, base), (x, base - 32)], colour)
    elif shape == "arch":
        c.rect(x - 14, base - 34, x - 7, base, colour)
        c.rect(x + 7, base - 34, x + 14, base, colour)
        c.rect(x - 14, base - 40, x + 14, base - 32, colour)
    elif shape == "obelisk":
        c.polygon([(x - 4, base), (x + 4, base), (x + 2.5, base - 40), (x, base - 46), (x - 2.5, base - 40)],
                  colour)
    elif shape == "wheel":
        c.ellipse(x - 16, base - 44, x + 16, base - 12, outline=colour, width=2.5)
        for k in range(4):
            a = math.pi * k / 4
            c.line([(x - 16 * math.cos(a), base - 28 - 16 * math.sin(a)),
                    (x + 16 * math.cos(a), base - 28 + 16 * math.sin(a))], colour, 1.0)
        c.polygon([(x - 9, base), (x - 7, base), (x + 1, base - 28), (x - 1, base - 28)], colour)
        c.polygon([(x + 9, base), (x + 7, base), (x - 1, base - 28), (x + 1, base - 28)], colour)
    elif shape == "pagoda":
        for k, w in enumerate((16.0, 12.0, 8.0)):
            y = base - 12 * k
            c.polygon([(x - w, y - 4), (x + w, y - 4), (x + w * 0.6, y - 12), (x - w * 0.6, y - 12)], colour)
            c.rect(x - w * 0.45, y - 4, x + w * 0.45, y, colour)
        c.line([(x, base - 36), (x, base - 44)], colour, 1.5)
    elif shape == "twin_towers":
        c.rect(x - 11, base - 44, x - 3, base, colour)
        c.rect(x + 3, base - 44, x + 11, base, colour)
        c.rect(x - 3, base - 28, x + 3, base - 25, colour)
    elif shape == "spire":
        c.rect(x - 7, base - 12, x + 7, base, colour)
        c.polygon([(x - 6, base - 12), (x + 6, base - 12), (x, base - 50)], colour)
    else:  # star on a mast
        c.line([(x, base), (x, base - 22)], colour, 2.0)
        points = []
        for k in range(10):
            r = 12.0 if k % 2 == 0 else 5.0
            a = -math.pi / 2 + math.pi * k / 5
            points.append((x + r * math.cos(a), base - 34 + r * math.sin(a)))
        c.polygon(points, colour)


def _draw_ground(c: _Canvas, plan: ScenePlan, ground: Colour) -> None:
    c.rect(0, HORIZON, BASE, BASE, ground)
    road = [(VANISH_X - ROAD_HALF_BOTTOM, BASE), (VANISH_X + ROAD_HALF_BOTTOM, BASE),
            (VANISH_X + 0.5, HORIZON), (VANISH_X - 0.5, HORIZON)]
    c.polygon(road, plan.asphalt)


def _draw_snow_on_road(c: _Canvas) -> None:
    # Snow banks along both road edges, widening towards the viewer.
    for sign in (-1.0, 1.0):
        outer = VANISH_X + sign * ROAD_HALF_BOTTOM
        inner = VANISH_X + sign * (ROAD_HALF_BOTTOM - 14)
        c.polygon([(outer, BASE), (inner, BASE), (VANISH_X + sign * 0.5, HORIZON)], SNOW_GROUND)


def _tree(c: _Canvas, biome: Biome, x: float, base: float, h: float, variant: float, snow: bool) -> None:
    trunk: Colour = (96, 66, 40)
    caps: list[tuple[float, float, float, float]] = []  # snow caps: ellipse boxes
    if biome is Biome.TROPICAL:
        c.line([(x, base), (x + h * 0.12, base - h)], trunk, max(1.0, h * 0.06))
        top = (x + h * 0.12, base - h)
        for k in range(6):
            a = math.pi * (0.1 + 0.16 * k)
            c.line([top, (top[0] + math.cos(a) * h * 0.45 * (1 if k < 3 else -1),
                          top[1] + math.sin(a) * h * 0.25)], (40, 130, 50), max(1.0, h * 0.05))
    elif biome is Biome.SAVANNA:
        c.line([(x, base), (x, base - h * 0.7)], trunk, max(1.0, h * 0.05))
        c.ellipse(x - h * 0.6, base - h, x + h * 0.6, base - h * 0.68, fill=(104, 132, 48))
        caps.append((x - h * 0.5, base - h * 1.02, x + h * 0.5, base - h * 0.85))
    elif biome is Biome.ARID:
        if variant < 0.5:  # saguaro-like cactus
            g: Colour = (70, 120, 60)
            c.rect(x - h * 0.07, base - h * 0.8, x + h * 0.07, base, g)
            c.rect(x - h * 0.25, base - h * 0.5, x - h * 0.07, base - h * 0.42, g)
            c.rect(x - h * 0.25, base - h * 0.65, x - h * 0.18, base - h * 0.42, g)
        else:
            c.ellipse(x - h * 0.3, base - h * 0.3, x + h * 0.3, base, fill=(130, 128, 80))
            caps.append((x - h * 0.25, base - h * 0.32, x + h * 0.25, base - h * 0.2))
    elif biome is Biome.MEDITERRANEAN:
        if variant < 0.35:  # cypress
            c.ellipse(x - h * 0.1, base - h, x + h * 0.1, base, fill=(40, 80, 44))
        else:  # olive
            c.line([(x, base), (x, base - h * 0.4)], trunk, max(1.0, h * 0.07))
            c.ellipse(x - h * 0.35, base - h * 0.75, x + h * 0.35, base - h * 0.3, fill=(128, 140, 96))
            caps.append((x - h * 0.3, base - h * 0.78, x + h * 0.3, base - h * 0.62))
    elif biome is Biome.TEMPERATE:
        c.line([(x, base), (x, base - h * 0.45)], trunk, max(1.0, h * 0.07))
        c.ellipse(x - h * 0.3, base - h, x + h * 0.3, base - h * 0.38, fill=(46, 104, 46))
        caps.append((x - h * 0.25, base - h * 1.01, x + h * 0.25, base - h * 0.85))
    else:  # boreal and subpolar: conifers (subpolar ones shorter and sparser), some birches
        if biome is Biome.BOREAL and variant > 0.7:
            c.line([(x, base), (x, base - h * 0.6)], (236, 236, 230), max(1.0, h * 0.05))
            c.ellipse(x - h * 0.18, base - h, x + h * 0.18, base - h * 0.5, fill=(120, 160, 70))
            caps.append((x - h * 0.15, base - h * 1.01, x + h * 0.15, base - h * 0.88))
        else:
            hh = h * (0.6 if biome is Biome.SUBPOLAR else 1.0)
            for k in range(3):
                w = hh * (0.28 - 0.07 * k)
                y0 = base - hh * (0.2 + 0.27 * k)
                c.polygon([(x - w, y0), (x + w, y0), (x, y0 - hh * 0.4)], (30, 74, 44))
            caps.append((x - hh * 0.06, base - hh * 1.02, x + hh * 0.06, base - hh * 0.88))
    if snow and caps:
        element, c.element = c.element, "snow"
        for box in caps:
            c.ellipse(*box, fill=SNOW_GROUND)
        c.element = element


def _draw_vegetation(c: _Canvas, plan: ScenePlan) -> None:
    for tree in plan.trees:
        # Trees stand beside the road: map x in [0, 1] onto the verges left and right of it.
        hw = _half_width(tree.base) + 4.0
        left_span, right_span = VANISH_X - hw, BASE - (VANISH_X + hw)
        pos = tree.x * (left_span + right_span)
        x = pos if pos < left_span else VANISH_X + hw + (pos - left_span)
        _tree(c, plan.place.city.biome, x, tree.base, tree.height, tree.variant, plan.snow)


def _draw_poles(c: _Canvas, plan: ScenePlan) -> None:
    kind = plan.country.pole
    colour: Colour = (112, 76, 44) if kind == "wood" else (176, 176, 172)
    side = -1.0 if plan.pole_side == "left" else 1.0
    tops: list[tuple[float, float]] = []
    for depth in plan.pole_depths:
        k = (depth - HORIZON) / (BASE - HORIZON)
        x = VANISH_X + side * (_half_width(depth) + 6 + 14 * k)
        height = 10 + 110 * k
        c.rect(x - 0.6 - 1.6 * k, depth - height, x + 0.6 + 1.6 * k, depth, colour)
        arm = depth - height + 3 * k  # the crossarm's top
        c.rect(x - 3 - 9 * k, arm, x + 3 + 9 * k, arm + 1 + 2 * k, colour)
        tops.append((x, depth - height + 3 * k))
    wires = 5 if plan.country.code == "JP" else 2
    vanish = (VANISH_X + side * 6, HORIZON - 8)
    for w in range(wires):
        offset = (w - (wires - 1) / 2) * 3.0
        pts = [vanish, *[(x + offset, y + abs(offset) * 0.5) for x, y in tops]]
        c.line(pts, (30, 30, 30), 0.6)


def _line_quad(c: _Canvas, x_far: float, x_near: float, y_far: float, y_near: float, w_far: float,
               w_near: float, colour: Colour) -> None:
    c.polygon([(x_near - w_near, y_near), (x_near + w_near, y_near), (x_far + w_far, y_far),
               (x_far - w_far, y_far)], colour)


def _along(frac_x: float, y: float) -> float:
    """x of a line that runs at ``frac_x`` of the half width (−1 left edge, +1 right edge)."""
    return VANISH_X + frac_x * _half_width(y)


def _draw_edge_lines(c: _Canvas, plan: ScenePlan) -> None:
    colour = RGB[plan.edge_colour or "white"]
    for frac in (-0.93, 0.93):
        _line_quad(c, _along(frac, HORIZON + 3), _along(frac, BASE), HORIZON + 3, BASE, 0.15, 2.2, colour)


def _draw_centre_line(c: _Canvas, plan: ScenePlan) -> None:
    colour = RGB[plan.centre_colour or "white"]
    offsets = (-0.035, 0.035) if plan.country.centre_double else (0.0,)
    for off in offsets:
        if plan.centre_dashed and not plan.country.centre_double:
            # Dashes of equal length on the road: equal steps in 1 / (y - horizon).
            for k in range(7):
                y0 = HORIZON + 124.0 / (1.0 + 1.3 * (k + 0.55))
                y1 = HORIZON + 124.0 / (1.0 + 1.3 * k)
                w0, w1 = 2.0 * (y0 - HORIZON) / 124, 2.0 * (y1 - HORIZON) / 124
                _line_quad(c, _along(off, y0), _along(off, y1), y0, y1, max(0.2, w0), max(0.3, w1), colour)
        else:
            _line_quad(c, _along(off, HORIZON + 3), _along(off, BASE), HORIZON + 3, BASE, 0.15, 1.8, colour)


def _draw_bollards(c: _Canvas, plan: ScenePlan) -> None:
    style = plan.country.bollard
    white, black, red = (238, 238, 232), (20, 20, 22), (210, 30, 30)
    for depth in plan.bollard_depths:
        k = (depth - HORIZON) / (BASE - HORIZON)
        for side in (-1.0, 1.0):
            x = VANISH_X + side * (_half_width(depth) + 3 + 4 * k)
            w, h = 0.8 + 2.2 * k, 4 + 16 * k
            top = depth - h
            c.rect(x - w, top, x + w, depth, white)
            if style == "band_slanted":
                c.polygon([(x - w, top + h * 0.12), (x + w, top), (x + w, top + h * 0.2),
                           (x - w, top + h * 0.32)], black)
            elif style == "band_below_top":
                c.rect(x - w, top + h * 0.12, x + w, top + h * 0.3, black)
            else:
                c.rect(x - w, top, x + w, top + h * 0.22, black)
            if style == "band_red_reflector":
                c.rect(x - w * 0.6, top + h * 0.27, x + w * 0.6, top + h * 0.37, red)


def _draw_sign(c: _Canvas, plan: ScenePlan, fonts: FontBook) -> None:
    country = plan.country
    style = country.sign_style
    lines = plan.sign_lines
    # Text size in output pixels: first line in the country's script, the others in Noto Sans.
    scale = c.scale
    sizes = [max(6, round(13 * scale))] + [max(5, round(10 * scale))] * (len(lines) - 1)
    keys = [country.sign_script] + ["sans"] * (len(lines) - 1)
    measured: list[tuple[float, float, float, float]] = []
    max_width = 96 * scale
    for attempt in range(6):
        measured = [c.draw.textbbox((0, 0), text, font=fonts.face(key, size))
                    for text, key, size in zip(lines, keys, sizes, strict=True)]
        if max(b[2] - b[0] for b in measured) <= max_width or attempt == 5:
            break
        sizes = [max(5, round(s * 0.85)) for s in sizes]
    pad = 3 * scale
    gap = 2 * scale
    width = max(b[2] - b[0] for b in measured) + 2 * pad
    height = sum(b[3] - b[1] for b in measured) + gap * (len(lines) - 1) + 2 * pad
    side = 1.0 if country.driving_side == "right" else -1.0
    post_depth = 146.0
    post_x = VANISH_X + side * (_half_width(post_depth) + 10)
    # The board hangs from the post's top, kept inside the frame; layout units from here on.
    w, h = width / scale, height / scale
    cx = min(max(post_x, w / 2 + 2), BASE - w / 2 - 2)
    top = 86.0 - h
    c.rect(post_x - 1.2, top + h - 1, post_x + 1.2, post_depth, (120, 120, 124))
    border = RGB[style.border] if style.border else RGB[style.board]
    c.rect(cx - w / 2, top, cx + w / 2, top + h, border)
    c.rect(cx - w / 2 + 1.2, top + 1.2, cx + w / 2 - 1.2, top + h - 1.2, RGB[style.board])
    y = top * scale + pad
    for text, key, size, box in zip(lines, keys, sizes, measured, strict=True):
        x = cx * scale - (box[2] - box[0]) / 2 - box[0]
        c.draw.text((x, y - box[1]), text, fill=RGB[style.text], font=fonts.face(key, size))
        y += (box[3] - box[1]) + gap


def _draw_plate(c: _Canvas, plan: ScenePlan, cx: float, y: float, car_w: float, plate: str) -> None:
    if plate == "none":
        return
    spec = plan.country.plates
    w, h = car_w * 0.34, car_w * 0.1
    bg = RGB[plate]
    c.rect(cx - w / 2, y - h / 2, cx + w / 2, y + h / 2, bg)
    if spec.band in ("eu", "national"):
        c.rect(cx - w / 2, y - h / 2, cx - w / 2 + w * 0.14, y + h / 2, RGB["blue"])
        dot = (246, 200, 28) if spec.band == "eu" else RGB["red"]
        c.rect(cx - w / 2 + w * 0.04, y - h * 0.3, cx - w / 2 + w * 0.1, y - h * 0.05, dot)
    elif spec.band == "mercosur":
        c.rect(cx - w / 2, y - h / 2, cx + w / 2, y - h / 2 + h * 0.28, RGB["blue"])
    ink = RGB[spec.characters] if spec.characters else (
        RGB["white"] if plate in ("black", "blue") else RGB["black"])
    x0 = cx - w / 2 + w * (0.2 if spec.band in ("eu", "national") else 0.1)
    x1 = cx + w / 2 - w * 0.08
    top = y - h / 2 + h * (0.4 if spec.band == "mercosur" else 0.25)
    chars = 6
    step = (x1 - x0) / chars
    for k in range(chars):
        c.rect(x0 + k * step + step * 0.15, top, x0 + (k + 1) * step - step * 0.15, y + h / 2 - h * 0.2, ink)


def _draw_cars(c: _Canvas, plan: ScenePlan) -> None:
    drive = 1.0 if plan.country.driving_side == "right" else -1.0
    for car in sorted(plan.cars, key=lambda car: car.depth):  # far first: near cars overlap far ones
        lane = -drive if car.oncoming else drive
        hw = _half_width(car.depth)
        cx = VANISH_X + lane * hw * 0.5
        w = hw * 0.78
        h = w * 0.62
        top = car.depth - h
        c.rect(cx - w / 2 + w * 0.06, car.depth - h * 0.12, cx - w / 2 + w * 0.22, car.depth, (16, 16, 16))
        c.rect(cx + w / 2 - w * 0.22, car.depth - h * 0.12, cx + w / 2 - w * 0.06, car.depth, (16, 16, 16))
        c.polygon([(cx - w / 2, car.depth - h * 0.1), (cx + w / 2, car.depth - h * 0.1),
                   (cx + w / 2, top + h * 0.45), (cx + w * 0.36, top), (cx - w * 0.36, top),
                   (cx - w / 2, top + h * 0.45)], car.colour)
        glass: Colour = (150, 180, 200) if car.oncoming else (40, 48, 60)
        c.polygon([(cx - w * 0.4, top + h * 0.42), (cx + w * 0.4, top + h * 0.42),
                   (cx + w * 0.31, top + h * 0.08), (cx - w * 0.31, top + h * 0.08)], glass)
        lights: Colour = (250, 246, 200) if car.oncoming else (220, 20, 24)
        ly = top + h * 0.55
        c.rect(cx - w * 0.46, ly, cx - w * 0.3, ly + h * 0.1, lights)
        c.rect(cx + w * 0.3, ly, cx + w * 0.46, ly + h * 0.1, lights)
        if car.oncoming:
            c.rect(cx - w * 0.22, ly, cx + w * 0.22, ly + h * 0.1, (40, 40, 44))  # grille
        _draw_plate(c, plan, cx, top + h * 0.76, w, car.plate)


@dataclass(frozen=True, slots=True)
class Rendered:
    image: Image.Image
    boxes: dict[str, Box]  # element -> bounding box of every pixel it drew (output pixels)


def _union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes))


def render(plan: ScenePlan, size: int, fonts: FontBook, *, omit: frozenset[str] = frozenset()) -> Rendered:
    """Draw the plan at ``size`` x ``size`` pixels (RGB); ``omit`` leaves elements out (tests)."""
    scale = size / BASE
    image = Image.new("RGB", (size, size), plan.sky)
    c = _Canvas(ImageDraw.Draw(image), scale)
    drawn = [e for e in plan.elements if e not in omit]
    if "landmark" in drawn:
        c.element = "landmark"
        _draw_landmark(c, plan)
    c.element = "snow" if "snow" in drawn else ""
    _draw_ground(c, plan, plan.ground if "snow" in drawn else _bare_ground(plan))
    if "snow" in drawn:
        _draw_snow_on_road(c)
    c.element = "vegetation"
    if "vegetation" in drawn:
        snow_plan = plan if "snow" in drawn else _without_snow(plan)
        _draw_vegetation(c, snow_plan)
    for name, fn in (("poles", _draw_poles), ("edge_lines", _draw_edge_lines),
                     ("centre_line", _draw_centre_line), ("bollards", _draw_bollards)):
        if name in drawn:
            c.element = name
            fn(c, plan)
    if "sign" in drawn:
        c.element = "sign"
        _draw_sign(c, plan, fonts)
    if "cars" in drawn:
        c.element = "cars"
        _draw_cars(c, plan)
    boxes: dict[str, Box] = {k: _union(v) for k, v in c.boxes.items() if k in drawn}
    return Rendered(image, boxes)


def _bare_ground(plan: ScenePlan) -> Colour:
    """The snow-free ground of the plan: its own ground, or the biome's when the plan has snow."""
    if "snow" in plan.elements:
        return _GROUND[plan.place.city.biome]
    return plan.ground


def _without_snow(plan: ScenePlan) -> ScenePlan:
    from dataclasses import replace

    return replace(plan, elements=tuple(e for e in plan.elements if e != "snow"))
