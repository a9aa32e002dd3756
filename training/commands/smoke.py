"""``geodesk-train smoke OUT_DIR``: the whole pipeline on CPU with the tiny model, in a few minutes.

tiny model -> synthetic data (a few countries whose scenes differ visibly) -> stage 1 -> stage 2 ->
export -> install into ``OUT_DIR/workspace`` -> a case in that workspace -> ``locate`` on one of the
images through the hf backend. Prints the stage losses. Everything stays under OUT_DIR (the smoke run
never touches the analyst's workspace; ``--workspace`` is ignored here).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit, progress_enabled

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "tiny"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="run data -> stage 1 -> stage 2 -> export -> install -> locate on a tiny model (CPU)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", help="folder for everything the run makes (new or empty)"
    )
    parser.add_argument("--per-country", type=int, default=6, help="synthetic images per country (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-quant", action="store_true", help="stage 2 without NF4 (no bitsandbytes)")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="only make the tiny base model and the synthetic data (what training/configs/tiny/*.yaml read)",
    )
    add_json_argument(parser)
    parser.set_defaults(handler=_smoke)


def run_smoke(
    out_dir: str | Path,
    *,
    per_country: int = 6,
    seed: int = 0,
    quantize: bool = True,
    prepare_only: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    from geodesk.engine.tiny import create_tiny_model
    from training.recipes import export, finetune_qlora, pretrain_projector
    from training.recipes._common import load_config
    from training.recipes.synthetic import write_synthetic_dataset

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} is not empty; give a new folder")
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[name] = round(now - started, 2)
        started = now

    base = out / "base"
    create_tiny_model(base, seed=seed)
    data = write_synthetic_dataset(out / "data", per_country=per_country, seed=seed)
    lap("prepare")
    document: dict[str, Any] = {
        "out_dir": str(out),
        "base_model": str(base),
        "data": {k: str(v) for k, v in data.items()},
    }
    if prepare_only:
        document["timings_s"] = timings
        return document

    common = [f"model.path={base}", "checkpoint.every=0"]
    stage1_cfg = load_config(
        CONFIGS / "pretrain.yaml",
        pretrain_projector.DEFAULTS,
        [
            *common,
            f"output_dir={out / 'stage1'}",
            f"data.files=[{data['meta']}]",
            f"seed={seed}",
        ],
    )
    stage1 = pretrain_projector.run(stage1_cfg, progress=progress)
    lap("stage1")
    stage2_cfg = load_config(
        CONFIGS / "finetune.yaml",
        finetune_qlora.DEFAULTS,
        [
            *common,
            f"output_dir={out / 'stage2'}",
            f"model.stage1_run={out / 'stage1'}",
            f"data.files=[{data['meta']}, {data['clues']}]",
            f"seed={seed}",
            f"model.quantization={'nf4' if quantize else 'none'}",
        ],
    )
    stage2 = finetune_qlora.run(stage2_cfg, progress=progress)
    lap("stage2")
    export_cfg = load_config(
        CONFIGS / "export.yaml",
        export.DEFAULTS,
        [
            f"base_model={base}",
            f"stage1_run={out / 'stage1'}",
            f"stage2_run={out / 'stage2'}",
            f"output_dir={out / 'package'}",
        ],
    )
    package = export.export_package(export_cfg)
    lap("export")

    from training.commands.export import install_package

    workspace = out / "workspace"
    installed = install_package(workspace, package["package"], package["name"], package["version"])
    lap("install")
    located = _locate(workspace, Path(data["meta"]).parent / "images", Path(installed["path"]))
    lap("locate")
    document.update(
        {
            "stage_losses": {
                "pretrain_projector": {
                    "first": stage1["first_loss"],
                    "final": stage1["final_loss"],
                    "steps": stage1["steps"],
                },
                "finetune_qlora": {
                    "first": stage2["first_loss"],
                    "final": stage2["final_loss"],
                    "steps": stage2["steps"],
                    "quantization": stage2_cfg["model"]["quantization"],
                },
            },
            "package": package,
            "installed": installed,
            "locate": located,
            "timings_s": timings,
        }
    )
    return document


def _locate(workspace: Path, images: Path, model_dir: Path) -> dict[str, Any]:
    """A case in ``workspace`` with one synthetic image, and a direct-mode session on it."""
    from geodesk.engine.backends.base import GenerationSettings
    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.services.importing import import_into
    from geodesk.services.sessions import TurnOptions, locate
    from geodesk.store.workspace import Workspace

    ws = Workspace(workspace)
    case = ws.create_case("smoke test")
    image = sorted(images.glob("*.png"))[0]
    with ws.open_case(case) as store:
        report = import_into(store, [image], locate=None)
        if not report.imported:
            raise CliError(f"the smoke image {image} could not be imported: {report.errors}")
        evidence = report.imported[0]
        backend = HFBackend(model_dir, HFOptions(device="cpu", dtype="fp32"))
        try:
            outcome = locate(
                store,
                evidence.sha256,
                backend,
                options=TurnOptions(settings=GenerationSettings(max_new_tokens=48)),
            )
        finally:
            backend.close()
    return {"case": case.id, "image": image.name, "evidence": evidence.sha256, **outcome.as_document()}


def _smoke(args: argparse.Namespace) -> int:
    document = run_smoke(
        args.out_dir,
        per_country=args.per_country,
        seed=args.seed,
        quantize=not args.no_quant,
        prepare_only=args.prepare_only,
        progress=progress_enabled(args),
    )
    if args.prepare_only:
        data_dir = Path(document["data"]["meta"]).parent
        human = f"tiny model in {document['base_model']}, synthetic data in {data_dir}"
    else:
        losses = document["stage_losses"]
        s1, s2 = losses["pretrain_projector"], losses["finetune_qlora"]
        turn = document["locate"]
        human = "\n".join(
            [
                f"stage 1 (projector): loss {s1['first']:.4f} -> {s1['final']:.4f} in {s1['steps']} steps",
                f"stage 2 (QLoRA, {s2['quantization']}): loss {s2['first']:.4f} -> {s2['final']:.4f} "
                f"in {s2['steps']} steps",
                f"package: {document['installed']['ref']} installed in "
                f"{Path(document['out_dir']) / 'workspace'}",
                f"locate: turn {turn['status']}, answer {turn['raw'][:80]!r}",
                "timings (s): " + ", ".join(f"{k} {v}" for k, v in document["timings_s"].items()),
            ]
        )
    emit(args, document, human)
    return 0
