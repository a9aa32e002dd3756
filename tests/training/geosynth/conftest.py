"""Shared GeoSynth fixtures: the world (gazetteer lookups) and one small generated folder per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.geosynth.fonts import FontBook
from training.geosynth.generator import generate
from training.geosynth.world import World, load_world

SEED = 5
N = 60


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def fonts() -> FontBook:
    book = FontBook.system()
    if book.missing:
        packages = " ".join(sorted(set(book.missing.values())))
        pytest.fail(f"GeoSynth tests need the Noto fonts: apt-get install {packages}")
    return book


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory, world: World, fonts: FontBook) -> Path:
    """N scenes of SEED (treat as read-only)."""
    out = tmp_path_factory.mktemp("geosynth") / "scenes"
    generate(out, n=N, seed=SEED, world=world, fonts=fonts)
    return out
