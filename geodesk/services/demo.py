"""``geodesk demo``: a demo case of synthetic GeoSynth scenes and a model to try the interactive loop.

The scenes come from the training module's GeoSynth generator, run as ``python -m training.cli
geosynth`` in a child process: geodesk never imports ``training`` (the layer rule), and the command
line with ``--json`` is the generator's public contract. Each first run draws a fresh seed, so two
workspaces get different scenes; the seed is kept in ``WORKSPACE/demo.json`` with the case id and
the model, and a rerun reuses all three (it only tops the case up when ``--n`` asks for more).

The model is the demo model package in ``resources/demo-model/`` when it has been built (a small
LLaVA trained on GeoSynth scenes only, named ``geosynth-demo``), else the untrained tiny model, which
answers in the right format with meaningless content. Both are labelled as what they are wherever
the demo reports them; neither is fit for casework, which needs GaGA-class weights installed by an
administrator (``geodesk model install``).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geodesk
from geodesk.atomic import atomic_write_json
from geodesk.domain import Case, GroundTruth
from geodesk.engine.package import MANIFEST_NAME, PackageError, read_manifest
from geodesk.engine.registry import InstalledModel, ModelRegistry, RegistryError
from geodesk.store import StoreError, Workspace
from geodesk.store.case_store import CaseStore

DEMO_TITLE = "GeoSynth demo - synthetic scenes, not casework"
DEMO_MODEL_NAME = "geosynth-demo"
DEMO_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "demo-model"
STATE_FILE = "demo.json"
DEFAULT_N = 12
MAX_N = 500
SYNTHETIC_LABEL = "trained on synthetic GeoSynth scenes only; a demonstration, not for casework"
UNTRAINED_LABEL = "untrained tiny model: answers have the right format but mean nothing; not for casework"
BUILD_HINT = ("build it with `python -m training.geosynth.demo --out runs/geosynth-demo` "
              "(see training/geosynth/demo.py), then rerun `geodesk demo`")

# (out_dir, n, seed) -> the PNG files written, in scene order.
SceneGenerator = Callable[[Path, int, int], list[Path]]
# out_dir -> a tiny model package written there.
TinyBuilder = Callable[[Path], None]


class DemoError(Exception):
    """The demo cannot be set up; the message says what to do."""


@dataclass(frozen=True, slots=True)
class DemoModel:
    ref: str
    name: str
    version: str
    trained: bool
    label: str
    installed_now: bool
    workspace_default: bool


@dataclass(slots=True)
class DemoResult:
    workspace: Path
    case_id: str
    case_title: str
    case_path: str
    seed: int
    images: int
    created_case: bool
    imported: int
    model: DemoModel
    notes: list[str] = field(default_factory=list)

    def as_document(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "case": {"id": self.case_id, "title": self.case_title, "path": self.case_path,
                     "created": self.created_case},
            "seed": self.seed,
            "images": self.images,
            "imported": self.imported,
            "model": {"ref": self.model.ref, "name": self.model.name, "version": self.model.version,
                      "trained": self.model.trained, "label": self.model.label,
                      "installed_now": self.model.installed_now,
                      "workspace_default": self.model.workspace_default},
            "synthetic": True,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------------------- scenes


def generate_with_training_cli(out: Path, n: int, seed: int) -> list[Path]:
    """Run ``geodesk-train geosynth`` in a child process and return its images.

    The child is isolated from the current folder: ``-P`` keeps the working directory off its
    ``sys.path`` (a ``training/cli.py`` there would otherwise run), it works in ``out`` (a folder this
    command owns), and the only extra import path it gets is the folder this very ``geodesk`` package
    was loaded from, so it runs the training module that belongs to this geodesk or none.
    """
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-P", "-m", "training.cli", "geosynth", "--n", str(n), "--seed", str(seed),
               "--out", str(out.resolve()), "--no-data", "--json"]
    env = dict(os.environ)
    source_root = str(Path(geodesk.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONSTARTUP", None)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900,
                              cwd=out, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DemoError(f"could not run the GeoSynth generator ({exc})") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        if "No module named training" in done.stderr:
            raise DemoError("the GeoSynth generator comes with geodesk's training module, which is not "
                            "installed in this environment; install geodesk from its source tree "
                            "(`pip install -e .`) and rerun `geodesk demo`")
        detail = message[-1] if message else f"exit status {done.returncode}"
        raise DemoError(f"the GeoSynth generator failed: {detail}")
    try:
        document = json.loads(done.stdout)
        warnings = [str(w) for w in document.get("warnings", [])]
    except (json.JSONDecodeError, AttributeError):
        raise DemoError("the GeoSynth generator did not print its JSON report") from None
    images = sorted((out / "images").glob("*.png"))
    if len(images) != n:
        raise DemoError(f"the GeoSynth generator wrote {len(images)} images instead of {n}")
    for warning in warnings:
        sys.stderr.write(f"geodesk: GeoSynth: {warning}\n")
    return images


def _record_truth(store: CaseStore, out: Path) -> int:
    """Keep each imported scene's true place (from the generator's scenes.jsonl); return how many."""
    from geodesk.services.sessions import GEOSYNTH_TRUTH

    path = out / "scenes.jsonl"
    if not path.is_file():
        return 0
    known = store.truth.all()
    present = {e.sha256 for e in store.evidence.list()}
    added = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        scene = json.loads(line)
        sha = scene.get("sha256")
        if sha not in present or sha in known:
            continue
        store.truth.add(GroundTruth(
            evidence_sha256=sha, source=GEOSYNTH_TRUTH, lat=float(scene["latitude"]),
            lon=float(scene["longitude"]), country=scene.get("country"),
            country_code=scene.get("country_code"), region=scene.get("region"), city=scene.get("city"),
        ))
        added += 1
    return added


# ---------------------------------------------------------------------------------------- state


def _read_state(ws: Workspace) -> dict[str, Any]:
    path = ws.path / STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged record only costs a new demo case
    return state if isinstance(state, dict) else {}


def _write_state(ws: Workspace, state: dict[str, Any]) -> None:
    atomic_write_json(ws.path / STATE_FILE, state, sort_keys=True)


def _demo_case(ws: Workspace, state: dict[str, Any]) -> tuple[Case, bool]:
    """The demo case of an earlier run (by recorded id, else by title), or a new one."""
    cases = ws.list_cases()
    for case in cases:
        if case.id == state.get("case_id"):
            return case, False
    for case in cases:
        if case.title == DEMO_TITLE:
            return case, False
    return ws.create_case(DEMO_TITLE), True


# ---------------------------------------------------------------------------------------- model


def _tiny_builder(out: Path) -> None:
    from geodesk.engine.tiny import create_tiny_model

    create_tiny_model(out, seed=0)


def _installed(registry: ModelRegistry, name: str) -> InstalledModel | None:
    return next((m for m in registry.list() if m.name == name), None)


def _install_model(ws: Workspace, demo_model_dir: Path, tiny_builder: TinyBuilder,
                   notes: list[str]) -> DemoModel:
    registry = ModelRegistry(ws.path)
    if (demo_model_dir / MANIFEST_NAME).is_file():
        try:
            manifest = read_manifest(demo_model_dir)
        except PackageError as exc:
            raise DemoError(f"the demo model in {demo_model_dir} is damaged ({exc}); rebuild it: "
                            f"{BUILD_HINT}") from None
        before = {m.ref for m in registry.list()}
        model = registry.install(demo_model_dir)
        label = SYNTHETIC_LABEL
        if manifest.untrained:
            label = UNTRAINED_LABEL
            notes.append(f"{demo_model_dir} holds an untrained package; {BUILD_HINT}")
    else:
        notes.append(f"The demo model has not been built yet ({demo_model_dir} does not exist); "
                     f"{BUILD_HINT}. "
                     "Until then the demo uses the untrained tiny model: its answers are noise.")
        from geodesk.engine.tiny import TINY_NAME

        before = {m.ref for m in registry.list()}
        existing = _installed(registry, TINY_NAME)
        if existing is None:
            with tempfile.TemporaryDirectory(prefix=".demo-tiny-", dir=ws.path) as scratch:
                folder = Path(scratch) / "tiny-llava"
                tiny_builder(folder)
                existing = registry.install(folder)
        model = existing
        label = UNTRAINED_LABEL
    default = registry.active()
    return DemoModel(ref=model.ref, name=model.name, version=model.version, trained=not model.untrained,
                     label=label, installed_now=model.ref not in before,
                     workspace_default=default is not None and default.ref == model.ref)


# ----------------------------------------------------------------------------------------- demo


def run_demo(
    workspace: Workspace | Path,
    *,
    n: int = DEFAULT_N,
    seed: int | None = None,
    generator: SceneGenerator = generate_with_training_cli,
    demo_model_dir: Path = DEMO_MODEL_DIR,
    tiny_builder: TinyBuilder = _tiny_builder,
) -> DemoResult:
    """Create (or reuse) the demo case with ``n`` GeoSynth scenes and install the demo model."""
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into

    if not 1 <= n <= MAX_N:
        raise DemoError(f"--n must be between 1 and {MAX_N}, got {n}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(Path(workspace))
    ws.path.mkdir(parents=True, exist_ok=True)
    state = _read_state(ws)
    notes: list[str] = []
    try:
        case, created = _demo_case(ws, state)
    except StoreError as exc:
        raise DemoError(f"could not create the demo case: {exc}") from None
    if created or state.get("case_id") != case.id or not isinstance(state.get("seed"), int):
        # A fresh seed per demo case: the scenes are new to whoever runs it.
        state = {"case_id": case.id, "seed": seed if seed is not None else secrets.randbelow(2**31)}
    elif seed is not None and seed != state["seed"]:
        notes.append(f"the demo case already holds scenes of seed {state['seed']}; --seed {seed} is ignored")
    scene_seed = int(state["seed"])
    imported = 0
    with ws.open_case(case) as store:
        have = store.evidence.count()
        untruthed = have - len(store.truth.all())
        if have < n or untruthed > 0:
            # Scenes are prefix-stable: scene i of a seed never changes, so topping up re-imports the
            # first ones as duplicates (skipped by hash) and adds the rest; regenerating also recovers
            # the truth of scenes imported before the case kept it.
            with tempfile.TemporaryDirectory(prefix=".demo-scenes-", dir=ws.path) as scratch:
                out = Path(scratch) / "geosynth"
                images = generator(out, max(n, have), scene_seed)
                report = import_into(store, [str(p) for p in images], options=ImportOptions(workers=0),
                                     locate=None)
                _record_truth(store, out)
            imported = len(report.imported)
            if report.errors:
                raise DemoError(f"{len(report.errors)} demo image(s) could not be imported: "
                                f"{report.errors[0].path}: {report.errors[0].error}")
        elif have > n:
            notes.append(f"the demo case already holds {have} scenes (more than --n {n}); nothing was added")
        total = store.evidence.count()
    try:
        model = _install_model(ws, demo_model_dir, tiny_builder, notes)
    except RegistryError as exc:
        raise DemoError(f"could not install the demo model: {exc}") from None
    state.update(n=max(n, int(state.get("n", 0))), model=model.ref)
    _write_state(ws, state)
    if not model.workspace_default:
        notes.append(f"{model.ref} is installed but is not the workspace's default model; pick it in the "
                     f"session panel or run `geodesk model activate {model.ref}`")
    return DemoResult(workspace=ws.path, case_id=case.id, case_title=case.title, case_path=case.path,
                      seed=scene_seed, images=total, created_case=created, imported=imported, model=model,
                      notes=notes)


def demo_model_folder(demo_model_dir: Path = DEMO_MODEL_DIR) -> Path | None:
    """The built demo model package (what `geodesk demo` installs), or None when it has not been built
    (``BUILD_HINT`` says how)."""
    return demo_model_dir if (demo_model_dir / MANIFEST_NAME).is_file() else None
