"""Cue bookkeeping: what a scene lists is what was drawn, and a hidden decisive cue is really absent."""

from __future__ import annotations

import io

import numpy as np
import pytest

from training.geosynth.fonts import FontBook
from training.geosynth.scene import DECISIVE_KINDS, ELEMENT_CUES, ELEMENTS, cues_of, plan_scene, render
from training.geosynth.world import World, consistent

SIZE = 224


def _pixels(image) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _plans(world: World, fonts: FontBook, n: int = 80, share: float = 0.3):  # type: ignore[no-untyped-def]
    return [plan_scene(world, 21, i, hidden_share=share, fonts=fonts) for i in range(n)]


def test_each_listed_element_is_drawn_and_only_inside_its_box(world: World, fonts: FontBook) -> None:
    checked: set[str] = set()
    for plan in _plans(world, fonts, 40):
        full = render(plan, SIZE, fonts)
        base = _pixels(full.image)
        for element in plan.elements:
            without = _pixels(render(plan, SIZE, fonts, omit=frozenset({element})).image)
            changed = np.argwhere(np.any(base != without, axis=2))  # (k, 2) rows of (y, x)
            assert len(changed), f"{plan.id}: {element} is listed but leaves no pixel"
            x0, y0, x1, y1 = full.boxes[element]
            ys, xs = changed[:, 0], changed[:, 1]
            assert ys.min() >= y0 and ys.max() <= y1 and xs.min() >= x0 and xs.max() <= x1, (plan.id, element)
            checked.add(element)
    assert checked == set(ELEMENTS)  # every kind of element was exercised


def test_elements_not_listed_are_not_drawn(world: World, fonts: FontBook) -> None:
    for plan in _plans(world, fonts, 40):
        absent = frozenset(e for e in ELEMENTS if e not in plan.elements)
        a = render(plan, SIZE, fonts).image.tobytes()
        b = render(plan, SIZE, fonts, omit=absent).image.tobytes()
        assert a == b


def test_hidden_decisive_cue_is_not_drawn(world: World, fonts: FontBook) -> None:
    hidden = [p for p in _plans(world, fonts, 120) if p.hidden]
    assert len(hidden) >= 20
    for plan in hidden:
        assert not set(DECISIVE_KINDS) & set(plan.elements)
        assert not set(DECISIVE_KINDS) & set(plan.cues)
        assert "sign" not in plan.facts and "landmark" not in plan.facts
        # Rendering "without" the city cues is byte-identical: nothing of them was in the frame.
        a = render(plan, SIZE, fonts).image.tobytes()
        b = render(plan, SIZE, fonts, omit=frozenset(DECISIVE_KINDS)).image.tobytes()
        assert a == b


def test_visible_decisive_cue_is_drawn(world: World, fonts: FontBook) -> None:
    for plan in _plans(world, fonts, 120):
        if not plan.hidden:
            assert plan.decisive in plan.elements


def test_cues_list_follows_the_elements(world: World, fonts: FontBook) -> None:
    for plan in _plans(world, fonts, 40):
        expected = {c for e in plan.elements for c in ELEMENT_CUES.get(e, (e,))}
        assert set(plan.cues) == expected == set(plan.facts)
        assert cues_of(plan.elements) == plan.cues


def test_facts_are_consistent_with_the_true_place(world: World, fonts: FontBook) -> None:
    for plan in _plans(world, fonts, 120):
        candidates = world.candidates(plan.facts)
        assert plan.place in candidates
        assert consistent(plan.place, plan.facts)
        if not plan.hidden and plan.decisive in ("sign", "landmark"):
            assert candidates == (plan.place,)  # the city cue settles it


def test_hidden_scenes_are_often_ambiguous(world: World, fonts: FontBook) -> None:
    hidden = [p for p in _plans(world, fonts, 200) if p.hidden]
    ambiguous = [p for p in hidden if len(world.candidates(p.facts)) > 1]
    assert len(ambiguous) >= len(hidden) // 2


def test_missing_font_drops_the_sign_and_says_so(world: World) -> None:
    book = FontBook.system(exclude=("thai",))
    assert book.missing == {"thai": "fonts-noto-core"}
    thai = [p for p in (plan_scene(world, 4, i, hidden_share=0.0, fonts=book) for i in range(400))
            if p.country.code == "TH"]
    assert thai
    for plan in thai:
        assert "sign" not in plan.elements and plan.not_rendered == ("sign",)
        assert plan.decisive == "landmark" and "landmark" in plan.elements
        render(plan, SIZE, book)  # draws without touching the missing font


def test_scene_plans_do_not_depend_on_fonts_except_the_sign(world: World, fonts: FontBook) -> None:
    book = FontBook.system(exclude=("cjk-kr",))
    for i in range(60):
        a = plan_scene(world, 8, i, hidden_share=0.3, fonts=fonts)
        b = plan_scene(world, 8, i, hidden_share=0.3, fonts=book)
        assert (a.place, a.month, a.cars, a.trees) == (b.place, b.month, b.cars, b.trees)


@pytest.mark.parametrize("size", [112, 336])
def test_other_sizes_render(world: World, fonts: FontBook, size: int) -> None:
    plan = plan_scene(world, 2, 0, hidden_share=0.0, fonts=fonts)
    buffer = io.BytesIO()
    render(plan, size, fonts).image.save(buffer, format="PNG")
    assert render(plan, size, fonts).image.size == (size, size)
