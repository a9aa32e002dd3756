"""The published demo model (resources/demo-model): installs through the registry and answers validly.

Fast on purpose: the package is committed, so this runs in every test pass. It checks the package a
new user gets from ``geodesk demo``: small enough to ship, labelled synthetic / not for casework,
installable, answering GeoSynth scenes it has never seen with a parseable location, and moving its
answer to the town an analyst's +QA hint names when the scene hides its decisive cue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from geodesk.domain import Hint, HintKind, SessionMode
from geodesk.engine import prompts
from geodesk.engine.backends.base import ChatMessage, GenerationSettings
from geodesk.engine.package import read_manifest, verify_package
from geodesk.engine.parsing import parse_answer
from geodesk.engine.registry import ModelRegistry
from geodesk.geo import default_gazetteer
from geodesk.services.demo import DEMO_MODEL_DIR, DEMO_MODEL_NAME
from training.data.common import read_samples
from training.geosynth.fonts import FontBook
from training.geosynth.generator import generate, read_scenes
from training.geosynth.mggeo import PARTS, build_mggeo
from training.geosynth.world import World

MAX_BYTES = 25 * 1024 * 1024
SCENES = 4
SCENE_SEED = 424242  # not the training seed (1) nor the benchmark's evaluation seed (1001)
HINT_SCENES = 160  # about 25 of them hide the road sign that decides the town


@pytest.fixture(scope="module")
def package() -> Path:
    if not (DEMO_MODEL_DIR / "geodesk-model.json").is_file():
        pytest.fail(f"{DEMO_MODEL_DIR} holds no model package; rebuild and publish it with "
                    "`python -m training.geosynth.demo --out runs/geosynth-demo --publish`")
    return DEMO_MODEL_DIR


def test_package_is_small_verified_and_labelled_synthetic(package: Path) -> None:
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    assert size <= MAX_BYTES
    manifest = read_manifest(package)
    assert verify_package(package, manifest).ok  # every file's hash matches the manifest
    assert manifest.name == DEMO_MODEL_NAME and not manifest.untrained
    assert manifest.protocol_version == prompts.PROTOCOL_VERSION
    data = manifest.provenance["training_data"]
    assert data["kind"] == "geosynth" and data["synthetic"] is True
    assert "not for casework" in data["note"] and manifest.provenance["not_for_casework"] is True


def test_every_training_answer_fits_the_apps_answer_limit(package: Path, generated: Path, world: World,
                                                          tmp_path: Path) -> None:
    """Every assistant turn the builder writes, clue-mode answers and hint-turn replies included, ends
    within the session's answer limit in the published tokenizer (its end-of-turn token counted): a
    longer target would teach answers that the app cuts off and reports as truncated."""
    from transformers import AutoTokenizer

    auto: Any = AutoTokenizer
    tokenizer = auto.from_pretrained(str(package))
    limit = GenerationSettings().max_new_tokens  # what TurnOptions() sends
    build_mggeo(generated, tmp_path, seed=3, world=world)
    longest: dict[str, int] = {}
    for part in PARTS:
        for sample in read_samples(tmp_path / f"{part}.json"):
            for turn in sample["conversations"][1::2]:
                tokens = len(tokenizer(turn["value"], add_special_tokens=False)["input_ids"]) + 1
                longest[part] = max(longest.get(part, 0), tokens)
    assert set(longest) == set(PARTS)
    assert max(longest.values()) <= limit, longest


@pytest.fixture(scope="module")
def backend(package: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from geodesk.engine.backends.hf import HFBackend, HFOptions

    installed = ModelRegistry(tmp_path_factory.mktemp("ws")).install(package)
    assert installed.name == DEMO_MODEL_NAME and not installed.untrained
    return HFBackend(installed.path, HFOptions(device="cpu", dtype="fp32"))


def _ask(backend, image_path: Path, question: str) -> str:  # type: ignore[no-untyped-def]
    from PIL import Image

    with Image.open(image_path) as img:
        image = img.convert("RGB")
    system = ChatMessage("system", prompts.system_prompt(SessionMode.DIRECT))
    messages = [system, ChatMessage("user", question, (image,))]
    return str(backend.generate(messages, GenerationSettings(max_new_tokens=120)).text)


def test_a_qa_hint_moves_hidden_sign_scenes_to_the_named_town(  # type: ignore[no-untyped-def]
    backend, tmp_path: Path, world: World, fonts: FontBook
) -> None:
    """GaGA Table III's +QA effect on the published model: when the road sign that names the town is
    out of frame, the analyst's answer (what the sign reads) must move the answer to that town."""
    scenes = tmp_path / "scenes"
    generate(scenes, n=HINT_SCENES, seed=SCENE_SEED, world=world, fonts=fonts)
    hidden = [r for r in read_scenes(scenes) if r["decisive_hidden"] and r["decisive"] == "sign"]
    assert len(hidden) >= 8
    gazetteer = default_gazetteer()
    direct_hits = hint_hits = 0
    for record in hidden:
        image = scenes / record["image"]
        hint = Hint(HintKind.QA, text=record["question"], answer=record["answer"])
        questions = (prompts.first_turn(SessionMode.DIRECT, hints).text for hints in ([], [hint]))
        direct, hinted = (parse_answer(_ask(backend, image, q), gazetteer) for q in questions)
        direct_hits += direct.prediction.city == record["city"]
        hint_hits += hinted.prediction.city == record["city"]
    assert hint_hits >= len(hidden) / 2, (hint_hits, direct_hits, len(hidden))
    assert hint_hits > direct_hits, (hint_hits, direct_hits, len(hidden))


def test_installed_package_answers_demo_scenes_validly(  # type: ignore[no-untyped-def]
    backend, tmp_path: Path, world: World, fonts: FontBook
) -> None:
    scenes = tmp_path / "scenes"
    generate(scenes, n=SCENES, seed=SCENE_SEED, world=world, fonts=fonts)
    gazetteer = default_gazetteer()
    question = prompts.first_turn(SessionMode.DIRECT).text  # "<image>\n..." with one placeholder
    answers = []
    for image_path in sorted((scenes / "images").glob("*.png")):
        text = _ask(backend, image_path, question)
        answers.append((image_path.name, text, parse_answer(text, gazetteer)))
    invalid = [(name, text, parsed.problems) for name, text, parsed in answers if not parsed.valid]
    assert not invalid, f"invalid answers: {invalid}"
    # Every answer names a place of the GeoSynth world, a country the model was trained on.
    codes = {p.country.code for p in world.places}
    assert all(parsed.prediction.country_code in codes for _, _, parsed in answers), answers
