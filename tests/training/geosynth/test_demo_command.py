"""``geodesk demo``: a demo case of N GeoSynth scenes, the model it installs, and reruns that reuse both."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from geodesk.engine.package import read_manifest, save_manifest
from geodesk.engine.registry import ModelRegistry
from geodesk.services.demo import (
    DEMO_TITLE,
    SYNTHETIC_LABEL,
    UNTRAINED_LABEL,
    DemoError,
    run_demo,
)
from geodesk.store import Workspace
from training.geosynth.fonts import FontBook
from training.geosynth.generator import generate
from training.geosynth.world import World


@pytest.fixture
def in_process(world: World, fonts: FontBook):  # type: ignore[no-untyped-def]
    """The generator called directly (the service runs it as a child process)."""
    calls: list[tuple[int, int]] = []

    def generator(out: Path, n: int, seed: int) -> list[Path]:
        calls.append((n, seed))
        generate(out, n=n, seed=seed, world=world, fonts=fonts)
        return sorted((out / "images").glob("*.png"))

    generator.calls = calls  # type: ignore[attr-defined]
    return generator


@pytest.fixture
def copy_tiny(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    built: list[Path] = []

    def builder(out: Path) -> None:
        built.append(out)
        shutil.copytree(tiny_model_dir, out)

    builder.built = built  # type: ignore[attr-defined]
    return builder


def test_demo_creates_a_case_of_n_scenes_with_the_tiny_fallback(  # type: ignore[no-untyped-def]
    tmp_path: Path, in_process, copy_tiny
) -> None:
    ws = tmp_path / "ws"
    result = run_demo(ws, n=5, generator=in_process, demo_model_dir=tmp_path / "no-demo-model",
                      tiny_builder=copy_tiny)
    assert result.created_case and result.images == 5 and result.imported == 5
    assert result.case_title == DEMO_TITLE
    assert result.model.ref == "tiny-llava@0.0.0" and not result.model.trained
    assert result.model.label == UNTRAINED_LABEL
    assert any("has not been built yet" in note for note in result.notes)
    with Workspace(ws).open_case(result.case_id) as store:
        assert store.evidence.count() == 5
    assert [m.ref for m in ModelRegistry(ws).list()] == ["tiny-llava@0.0.0"]
    state = json.loads((ws / "demo.json").read_text())
    assert state["case_id"] == result.case_id and state["seed"] == result.seed


def test_rerun_reuses_the_case_and_the_model(tmp_path: Path, in_process, copy_tiny) -> None:  # type: ignore[no-untyped-def]
    ws = tmp_path / "ws"
    first = run_demo(ws, n=4, generator=in_process, demo_model_dir=tmp_path / "none", tiny_builder=copy_tiny)
    second = run_demo(ws, n=4, generator=in_process, demo_model_dir=tmp_path / "none", tiny_builder=copy_tiny)
    assert (second.case_id, second.seed, second.images) == (first.case_id, first.seed, 4)
    assert not second.created_case and second.imported == 0 and not second.model.installed_now
    assert len(in_process.calls) == 1 and len(copy_tiny.built) == 1
    assert len(Workspace(ws).list_cases()) == 1
    # Asking for more scenes tops the same case up with the same seed.
    third = run_demo(ws, n=6, generator=in_process, demo_model_dir=tmp_path / "none", tiny_builder=copy_tiny)
    assert (third.case_id, third.images, third.imported) == (first.case_id, 6, 2)
    assert in_process.calls[-1] == (6, first.seed)


def test_fresh_seed_per_workspace(tmp_path: Path, in_process, copy_tiny) -> None:  # type: ignore[no-untyped-def]
    common = {"n": 1, "generator": in_process, "demo_model_dir": tmp_path / "x", "tiny_builder": copy_tiny}
    a = run_demo(tmp_path / "a", **common)
    b = run_demo(tmp_path / "b", **common)
    assert a.seed != b.seed


def test_built_demo_model_is_installed_and_labelled_synthetic(tmp_path: Path, in_process, copy_tiny,
                                                               tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    # A real LLaVA package standing where the demo build publishes: relabelled as the demo model.
    package = tmp_path / "demo-model"
    shutil.copytree(tiny_model_dir, package)
    manifest = replace(read_manifest(package), name="geosynth-demo", version="0.1.0", untrained=False,
                       provenance={"training_data": {"kind": "geosynth", "synthetic": True}})
    save_manifest(package, manifest)
    result = run_demo(tmp_path / "ws", n=2, generator=in_process, demo_model_dir=package,
                      tiny_builder=copy_tiny)
    assert result.model.ref == "geosynth-demo@0.1.0" and result.model.trained
    assert result.model.label == SYNTHETIC_LABEL and "not for casework" in result.model.label
    assert copy_tiny.built == []  # no fallback needed


def test_bad_n_is_refused(tmp_path: Path, in_process, copy_tiny) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DemoError, match="--n"):
        run_demo(tmp_path / "ws", n=0, generator=in_process, tiny_builder=copy_tiny)


def test_geodesk_demo_command_end_to_end(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real command: the generator as a child process, the tiny model built for the fallback."""
    from geodesk.cli import main

    assert main(["demo", "--n", "3", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["images"] == 3 and document["synthetic"] is True
    assert document["case"]["title"] == DEMO_TITLE
    if not (Path(__file__).resolve().parents[3] / "resources" / "demo-model").is_dir():
        assert document["model"]["ref"] == "tiny-llava@0.0.0"
        assert document["model"]["label"] == UNTRAINED_LABEL
    assert main(["demo", "--n", "3", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["case"]["id"] == document["case"]["id"] and again["imported"] == 0


def test_the_demo_case_keeps_each_scenes_truth(tmp_path: Path, in_process, copy_tiny) -> None:  # type: ignore[no-untyped-def]
    ws = tmp_path / "ws"
    result = run_demo(ws, n=3, generator=in_process, demo_model_dir=tmp_path / "none", tiny_builder=copy_tiny)
    with Workspace(ws).open_case(result.case_id) as store:
        truths = store.truth.all()
        assert set(truths) == {e.sha256 for e in store.evidence.list()}
        assert all(t.source == "geosynth" and t.city and t.country_code for t in truths.values())
        # A case made before it kept the truth: the rerun regenerates the same scenes and recovers it.
        store.db.execute("DELETE FROM evidence_truth")
        store.db.conn.commit()
    again = run_demo(ws, n=3, generator=in_process, demo_model_dir=tmp_path / "none", tiny_builder=copy_tiny)
    assert again.imported == 0
    with Workspace(ws).open_case(result.case_id) as store:
        assert store.truth.all() == truths


def test_every_answer_of_the_demo_model_says_what_it_is(tmp_path: Path, in_process, copy_tiny,  # type: ignore[no-untyped-def]
                                                         tiny_model_dir: Path) -> None:
    from PIL import Image

    from geodesk.domain import SessionMode
    from geodesk.engine.backends.base import GenerationSettings
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into
    from geodesk.services.models import BackendRequest, open_backend
    from geodesk.services.sessions import (
        SYNTHETIC_ON_REAL_WARNING,
        SYNTHETIC_WARNING,
        UNTRAINED_WARNING,
        TurnOptions,
        locate,
        session_document,
    )

    package = tmp_path / "demo-model"
    shutil.copytree(tiny_model_dir, package)
    save_manifest(package, replace(read_manifest(package), name="geosynth-demo", version="0.1.0",
                                   untrained=False,
                                   provenance={"training_data": {"kind": "geosynth", "synthetic": True}}))
    ws = tmp_path / "ws"
    result = run_demo(ws, n=1, generator=in_process, demo_model_dir=package, tiny_builder=copy_tiny)
    photo = tmp_path / "street.jpg"
    Image.new("RGB", (64, 48), (120, 110, 100)).save(photo)
    options = TurnOptions(settings=GenerationSettings(max_new_tokens=24))
    with Workspace(ws).open_case(result.case_id) as store:
        scene = store.evidence.list()[0].sha256
        import_into(store, [str(photo)], options=ImportOptions(workers=0), locate=None)
        real = next(e.sha256 for e in store.evidence.list() if e.sha256 != scene)
        demo = open_backend(ws, BackendRequest(model="geosynth-demo"))
        try:
            on_scene = locate(store, scene, demo, SessionMode.DIRECT, options)
            on_photo = locate(store, real, demo, SessionMode.DIRECT, options)
        finally:
            demo.close()
        assert on_scene.session.model.caveat == "synthetic"
        assert on_scene.warnings == [SYNTHETIC_WARNING]
        assert on_photo.warnings == [SYNTHETIC_WARNING, SYNTHETIC_ON_REAL_WARNING]
        assert on_photo.truth_km is None
        if on_scene.turn.prediction.lat is not None:
            assert on_scene.truth_km is not None and on_scene.truth_km >= 0
        # The caveat is stored with the session: reading it back later still says so.
        document = session_document(store, on_photo.session.id or 0)
        assert document["model"]["caveat"] == "synthetic"
        assert document["warnings"] == [SYNTHETIC_WARNING, SYNTHETIC_ON_REAL_WARNING]
        assert document["truth"] is None and document["turns"][0]["truth_km"] is None
        assert session_document(store, on_scene.session.id or 0)["truth"]["source"] == "geosynth"
        tiny = open_backend(ws, BackendRequest(model=str(tiny_model_dir)))
        try:
            untrained = locate(store, real, tiny, SessionMode.DIRECT, options)
        finally:
            tiny.close()
        assert untrained.warnings == [UNTRAINED_WARNING]
    listed = {m.ref: m for m in ModelRegistry(ws).list()}
    assert listed["geosynth-demo@0.1.0"].synthetic and listed["geosynth-demo@0.1.0"].caveat == "synthetic"


def test_the_last_line_names_the_workspace_it_used(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, in_process, copy_tiny
) -> None:
    import geodesk.services.demo as demo_service
    from geodesk.cli import main

    monkeypatch.setattr(demo_service, "generate_with_training_cli", in_process)
    real_run = demo_service.run_demo
    monkeypatch.setattr(demo_service, "run_demo", lambda ws, **kw: real_run(
        ws, generator=in_process, demo_model_dir=tmp_path / "none", tiny_builder=copy_tiny, **kw))
    ws = tmp_path / "my ws"
    assert main(["demo", "--workspace", str(ws), "--n", "1"]) == 0
    out = capsys.readouterr().out
    assert f"Open it with `geodesk --workspace '{ws}'`" in out
    assert "knows nothing about real photographs" in out
