"""``geodesk model ...``: model packages: ``create-tiny``, and the registry commands (install, list, ...)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from geodesk.cli._common import CliError, add_json_argument, emit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("model", help="model packages: create, install, list, activate, verify")
    model_sub = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)

    tiny = model_sub.add_parser(
        "create-tiny",
        help="write a tiny untrained model package of one family (for tests and smoke runs)",
        description=(
            "Write a tiny random model of a real architecture (llava: CLIP vision tower, projector, "
            "Llama-3 style LLM; qwen2_5_vl: Qwen2.5-VL; qwen3_vl: Qwen3-VL; internvl: InternVL3 in the -hf "
            "format), with its "
            "family's chat template and a tokenizer trained in-process, as a model package whose "
            "manifest says it is untrained. Same seed, same files."
        ),
    )
    tiny.add_argument(
        "--family", choices=["llava", "qwen2_5_vl", "qwen3_vl", "internvl"], default="llava",
        help="model family (default llava)",
    )
    tiny.add_argument("out_dir", metavar="OUT_DIR", help="new (or empty) folder to write the package into")
    tiny.add_argument("--seed", type=int, default=0, help="random seed for the weights (default 0)")
    add_json_argument(tiny)
    tiny.set_defaults(handler=_create_tiny)
    install_tiny = model_sub.add_parser(
        "install-tiny",
        help="build the untrained tiny model and install it in the workspace (for a trial run)",
        description="Build the untrained tiny model and install it through the registry (once per "
        "workspace); it becomes the active model when none is active. Labelled UNTRAINED everywhere.",
    )
    install_tiny.add_argument("--seed", type=int, default=0, help="random seed for the weights (default 0)")
    add_json_argument(install_tiny)
    install_tiny.set_defaults(handler=_install_tiny)
    convert_internvl = model_sub.add_parser(
        "convert-internvl",
        help="convert an original InternVL checkpoint (model_type internvl_chat) into the -hf format",
        description=(
            "Read an original OpenGVLab InternVL folder (InternVLChatModel, which needs the publisher's "
            "Python code) as files only, and write the transformers-native -hf form of it "
            "(InternVLForConditionalGeneration) into OUT_DIR; then install OUT_DIR with "
            "`geodesk model install`. No code from SRC runs."
        ),
    )
    convert_internvl.add_argument("src", metavar="SRC", help="the original InternVL model folder")
    convert_internvl.add_argument("out_dir", metavar="OUT_DIR", help="new (or empty) folder for the -hf form")
    add_json_argument(convert_internvl)
    convert_internvl.set_defaults(handler=_convert_internvl)
    _register_registry_commands(model_sub)


def _convert_internvl(args: argparse.Namespace) -> int:
    from geodesk.engine.checkpoint import CheckpointError, checkpoint_keys
    from geodesk.engine.internvl_original import convert_original_internvl

    src = Path(args.src).expanduser().resolve()
    started = time.perf_counter()
    try:
        out = convert_original_internvl(src, args.out_dir)
        weights = len(checkpoint_keys(out))
    except (CheckpointError, OSError) as exc:
        raise CliError(f"{src.name} could not be converted: {exc}") from None
    document = {"source": str(src), "path": str(out), "family": "internvl", "weights": weights,
                "seconds": round(time.perf_counter() - started, 3)}
    human = (
        f"wrote the -hf form of {src.name} to {out} ({weights} weights)\n"
        f"install it with: geodesk model install {out} [--profile globe|generic]"
    )
    emit(args, document, human)
    return 0


def _install_tiny(args: argparse.Namespace) -> int:
    from geodesk.cli._common import workspace_path
    from geodesk.engine.registry import RegistryError
    from geodesk.services.models import install_tiny_model

    try:
        model = install_tiny_model(workspace_path(args), seed=args.seed)
    except (RegistryError, OSError, ValueError) as exc:
        raise CliError(f"the tiny model could not be installed: {exc}") from None
    document = {"ref": model.ref, "active": model.active, "untrained": model.untrained}
    how = (
        "it is the active model" if model.active
        else f"activate it with `geodesk model activate {model.ref}`"
    )
    emit(args, document, f"installed {model.ref} — UNTRAINED, for trial runs only; {how}")
    return 0


def _create_tiny(args: argparse.Namespace) -> int:
    from geodesk.engine.families.tiny import create_tiny_family_model
    from geodesk.engine.tiny import create_tiny_model

    out = Path(args.out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CliError(f"{out} already exists and is not an empty folder; choose a new folder")
    started = time.perf_counter()
    try:
        if args.family == "llava":
            manifest = create_tiny_model(out, seed=args.seed)
        else:
            manifest = create_tiny_family_model(out, args.family, seed=args.seed)
    except (OSError, ValueError) as exc:
        raise CliError(f"could not write the tiny model to {out}: {exc}") from None
    size = sum((out / rel).stat().st_size for rel in manifest.files)
    document = {
        "path": str(out),
        "name": manifest.name,
        "version": manifest.version,
        "sha256": manifest.identity_sha256,
        "untrained": manifest.untrained,
        "family": manifest.family_name,
        "profile": manifest.profile_name,
        "seed": args.seed,
        "files": len(manifest.files),
        "size_bytes": size,
        "seconds": round(time.perf_counter() - started, 3),
    }
    human = (
        f"wrote tiny untrained model {manifest.name} {manifest.version} to {out}\n"
        f"  {len(manifest.files)} files, {size / 1e6:.1f} MB, sha256 {manifest.identity_sha256[:16]}…"
    )
    emit(args, document, human)
    return 0


# --- the model registry: install, list, activate, deactivate, rollback, verify, remove -------------


def _register_registry_commands(model_sub: Any) -> None:
    install = model_sub.add_parser(
        "install",
        help="install a model package, HF model folder or XTuner LLaVA export into the workspace",
        description=(
            "Install SRC into the workspace's model registry: a geodesk package (hashes checked before "
            "copying), a plain HF folder of a supported family (LLaVA, Qwen2.5-VL, InternVL3 in the -hf "
            "format; sharded or single-file safetensors; manifest computed) or an XTuner LLaVA export "
            "(converted into one llava checkpoint). --profile picks how sessions prompt the model. "
            "Checks free space, copies, re-hashes the copy and installs "
            "atomically. The first version of a name becomes its active version. Pickled weights are "
            "refused."
        ),
    )
    install.add_argument("src", metavar="SRC", help="model folder to install")
    install.add_argument("--name", default=None, help="model name (default: from the manifest or folder)")
    install.add_argument("--version", default=None, help="version (default: from the manifest or folder)")
    install.add_argument(
        "--llm",
        default=None,
        metavar="DIR",
        help="XTuner export: the base LLM folder its llm_adapter was trained on",
    )
    install.add_argument(
        "--visual-encoder",
        default=None,
        metavar="DIR",
        help="XTuner export: the CLIP folder it used (when it has no visual_encoder/)",
    )
    install.add_argument(
        "--profile", choices=["gaga", "globe", "generic"], default=None,
        help="prompt profile: gaga (JSON, clue mode; LLaVA default), globe (GLOBE's <think>/<answer> "
        "format), generic (instruction-tuned models asked for JSON; Qwen2.5-VL and InternVL default)",
    )
    install.add_argument("--activate", action="store_true", help="make the new version active")
    add_json_argument(install)
    install.set_defaults(handler=_install)

    listing = model_sub.add_parser("list", help="list installed models and which version is active")
    add_json_argument(listing)
    listing.set_defaults(handler=_list)

    activate = model_sub.add_parser("activate", help="make NAME[@VERSION] the active model")
    activate.add_argument("ref", metavar="NAME[@VERSION]")
    add_json_argument(activate)
    activate.set_defaults(handler=_activate)

    deactivate = model_sub.add_parser("deactivate", help="leave NAME without an active version")
    deactivate.add_argument("name", metavar="NAME")
    add_json_argument(deactivate)
    deactivate.set_defaults(handler=_deactivate)

    rollback = model_sub.add_parser("rollback", help="activate the version of NAME that was active before")
    rollback.add_argument("name", metavar="NAME")
    add_json_argument(rollback)
    rollback.set_defaults(handler=_rollback)

    verify = model_sub.add_parser(
        "verify",
        help="re-hash an installed model's files; exits 1 naming every file that does not match",
    )
    verify.add_argument(
        "ref",
        metavar="NAME[@VERSION]",
        nargs="?",
        default=None,
        help="model to check (default: the active model); a package folder also works",
    )
    add_json_argument(verify)
    verify.set_defaults(handler=_verify)

    remove = model_sub.add_parser("remove", help="delete NAME@VERSION from the workspace (not the active)")
    remove.add_argument("ref", metavar="NAME@VERSION")
    add_json_argument(remove)
    remove.set_defaults(handler=_remove)


def _registry(args: argparse.Namespace) -> Any:
    from geodesk.cli._common import workspace_path
    from geodesk.engine.registry import ModelRegistry, RegistryError

    try:
        return ModelRegistry(workspace_path(args))
    except RegistryError as exc:
        raise CliError(str(exc)) from None


def _registry_call(fn: Any, *fn_args: Any, **fn_kwargs: Any) -> Any:
    """Run a registry operation, turning its errors into the sentence the CLI prints."""
    from geodesk.engine.checkpoint import CheckpointError
    from geodesk.engine.package import PackageError
    from geodesk.engine.registry import RegistryError

    try:
        return fn(*fn_args, **fn_kwargs)
    except (RegistryError, PackageError, CheckpointError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise CliError(f"{exc.strerror or exc}{where}") from None


def _model_line(model: Any) -> str:
    flags = [f for f, on in (("active", model.active), ("UNTRAINED", model.untrained),
                             ("SYNTHETIC: GeoSynth scenes only, not for casework", model.synthetic)) if on]
    extra = f"  [{', '.join(flags)}]" if flags else ""
    return (
        f"{model.ref:<32} {model.size_bytes / 1e9:7.2f} GB  sha256 {model.identity_sha256[:12]}  "
        f"{model.family or model.architecture:<10} {model.profile or '-':<7}{extra}"
    )


def _install(args: argparse.Namespace) -> int:
    import sys

    from geodesk.cli._common import progress_enabled

    registry = _registry(args)
    before = {m.ref for m in _registry_call(registry.list)}
    bar: Any = None
    if progress_enabled(args):
        from tqdm import tqdm

        sys.stderr.write(f"installing {args.src} …\n")
        bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, desc="copying", leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        model = _registry_call(
            registry.install,
            Path(args.src),
            name=args.name,
            version=args.version,
            progress=progress,
            base_llm=args.llm,
            base_visual_encoder=args.visual_encoder,
            activate=True if args.activate else None,
            profile=args.profile,
        )
    finally:
        if bar is not None:
            bar.close()
    changed = model.ref not in before
    document = {**model.to_json(), "changed": changed}
    verb = "installed" if changed else "already installed (same files, nothing to do):"
    human = f"{verb} {_model_line(model)}\n  {model.path}"
    emit(args, document, human)
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    models = _registry_call(registry.list)
    active = _registry_call(registry.active)
    document = {
        "models": [m.to_json() for m in models],
        "active": None if active is None else active.ref,
    }
    if not models:
        human = "no models installed; install one with `geodesk model install SRC`"
    else:
        lines = [_model_line(m) for m in models]
        lines.append(f"active model: {active.ref if active else 'none'}")
        human = "\n".join(lines)
    emit(args, document, human)
    return 0


def _activate(args: argparse.Namespace) -> int:
    model = _registry_call(_registry(args).activate, args.ref)
    emit(args, model.to_json(), f"active: {_model_line(model)}")
    return 0


def _deactivate(args: argparse.Namespace) -> int:
    _registry_call(_registry(args).deactivate, args.name)
    emit(args, {"name": args.name, "active": None}, f"{args.name} has no active version now")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    model = _registry_call(_registry(args).rollback, args.name)
    emit(args, model.to_json(), f"rolled back; active: {_model_line(model)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    import sys

    registry = _registry(args)
    model = _registry_call(registry.resolve, args.ref)
    report = _registry_call(registry.verify, args.ref)
    problems = [f"{rel}: changed" for rel in report.mismatched]
    problems += [f"{rel}: missing" for rel in report.missing]
    problems += [f"{rel}: not in the manifest" for rel in report.unlisted]
    document = {
        "ok": report.ok,
        "model": model.ref,
        "path": str(model.path),
        "mismatched": list(report.mismatched),
        "missing": list(report.missing),
        "unlisted": list(report.unlisted),
        "problems": problems,
    }
    if report.ok:
        emit(args, document, f"{model.ref}: every file matches ({model.path})")
        return 0
    emit(args, document, f"{model.ref}: {len(problems)} file(s) do not match\n  " + "\n  ".join(problems))
    sys.stderr.write(
        f"geodesk: {model.ref} does not match what was installed ({'; '.join(problems)}); install it again\n"
    )
    return 1


def _remove(args: argparse.Namespace) -> int:
    model = _registry_call(_registry(args).remove, args.ref)
    emit(args, {**model.to_json(), "removed": True}, f"removed {model.ref} ({model.path})")
    return 0
