"""lmdeploy as the fast local engine: export a model for it, start / health-check / stop its server.

lmdeploy 0.18 needs CUDA and pins ``torch<=2.12.1`` and ``peft<=0.14.0``, so it lives in its own
virtual environment (``installers/lmdeploy/install.sh``; default ``~/.local/share/geodesk/lmdeploy-env``,
or ``$GEODESK_LMDEPLOY_ENV``) and runs as a separate process::

    lmdeploy serve api_server MODEL --server-name 127.0.0.1 --server-port P --backend pytorch ...

bound to loopback (lmdeploy's own default is 0.0.0.0). geodesk then talks to it through the ``remote``
backend. The running server is recorded in ``<workspace>/lmdeploy/server.json`` (pid, port, model,
command, log file), so ``geodesk lmdeploy status`` / ``stop`` work from any later shell.

lmdeploy serves LLaVA only on its PyTorch engine and only in HF llava format with the legacy key names
(``language_model.model.*``, ``vision_tower.vision_model.*``): :func:`export_for_lmdeploy` writes that,
with the Llama-3 chat template and a generation config that ends a turn on both ``<|eot_id|>`` and
``<|end_of_text|>``, plus the config keys lmdeploy's (older) transformers reads.

Qwen2.5-VL (``Family.lmdeploy == "folder"``) needs no export: transformers 5 saves it with the
published key layout (``model.*``, ``visual.*``, ``lm_head.*``) that lmdeploy's own Qwen2.5-VL model
loads, so the installed package folder is served as it is, with ``--chat-template hf`` (lmdeploy then
renders prompts with the folder's own chat template, the one geodesk's hf backend uses).
:func:`lmdeploy_launch` decides, per family, which folder is served and with which template, and
refuses what lmdeploy cannot load. Before starting, :func:`probe_environment` runs lmdeploy's own Python
once to see that lmdeploy imports and that its torch has a usable CUDA device.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_directory, atomic_write_json
from geodesk.engine.checkpoint import (
    CheckpointError,
    KeyNaming,
    checkpoint_keys,
    checkpoint_naming,
    export_legacy,
)
from geodesk.processes import pid_alive as _pid_alive

LMDEPLOY_VERSION = "0.18.0"
ENV_VARIABLE = "GEODESK_LMDEPLOY_ENV"
DEFAULT_ENV = Path("~/.local/share/geodesk/lmdeploy-env")
DEFAULT_PORT = 23333  # lmdeploy's own default port
INSTALL_HINT = "run installers/lmdeploy/install.sh (it creates lmdeploy's own environment)"
# lmdeploy's built-in Llama-3 template: <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>,
# stop words <|eot_id|> and <|end_of_text|>. Named in a small JSON file next to the export, because
# lmdeploy picks templates by matching the model path otherwise (a "llava" path gets Vicuna's).
CHAT_TEMPLATE_FILE = "lmdeploy_chat_template.json"
LLAMA3_EOT = "<|eot_id|>"
LLAMA3_END_OF_TEXT = "<|end_of_text|>"
LLAMA3_TEMPLATE_MARKERS = ("<|start_header_id|>", "<|end_header_id|>", LLAMA3_EOT)


class LmdeployError(Exception):
    """Something about lmdeploy a person can act on; the message says what."""


# ---------------------------------------------------------------- environment and GPU


@dataclass(frozen=True, slots=True)
class GpuReport:
    present: bool
    detail: str  # what was found, or why nothing was


def detect_nvidia_gpu(proc_path: Path = Path("/proc/driver/nvidia/version")) -> GpuReport:
    """Is an NVIDIA GPU with a driver present? ``nvidia-smi -L`` first, then the driver's /proc file."""
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return GpuReport(False, f"nvidia-smi is installed but did not run ({exc})")
        gpus = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
        if out.returncode == 0 and gpus:
            return GpuReport(True, "; ".join(gpus))
        message = (out.stderr or out.stdout).strip().splitlines()
        return GpuReport(False, f"nvidia-smi finds no GPU ({message[0] if message else 'no output'})")
    if proc_path.is_file():
        first = proc_path.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        return GpuReport(True, f"NVIDIA driver loaded ({first[0] if first else proc_path})")
    return GpuReport(False, "no nvidia-smi on PATH and no NVIDIA driver (/proc/driver/nvidia) here")


def require_gpu(report: GpuReport | None = None) -> GpuReport:
    report = report or detect_nvidia_gpu()
    if not report.present:
        raise LmdeployError(
            f"no NVIDIA GPU is present ({report.detail}). lmdeploy needs CUDA; on this machine use the "
            "hf backend (geodesk serve / --backend hf), or run lmdeploy on a GPU workstation and connect "
            "with --backend remote --endpoint URL"
        )
    return report


def lmdeploy_env(path: str | Path | None = None) -> Path:
    """The lmdeploy environment folder: ``path``, else ``$GEODESK_LMDEPLOY_ENV``, else the default."""
    chosen = path or os.environ.get(ENV_VARIABLE) or DEFAULT_ENV
    return Path(chosen).expanduser()


def lmdeploy_executable(env: str | Path | None = None) -> Path:
    """``<env>/bin/lmdeploy``, or a clear error naming the installer."""
    folder = lmdeploy_env(env)
    exe = folder / "bin" / "lmdeploy"
    if not folder.is_dir():
        raise LmdeployError(f"lmdeploy's environment was not found at {folder}: {INSTALL_HINT}")
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise LmdeployError(
            f"{folder} has no runnable bin/lmdeploy (the install did not finish?): {INSTALL_HINT}"
        )
    return exe


# What lmdeploy's own interpreter reports about itself: one JSON line. Each import is tried alone so a
# broken torch still names the lmdeploy version (and the other way round).
_PROBE_SCRIPT = """\
import json, sys
out = {"python": sys.version.split()[0], "cuda": False, "devices": 0, "torch_cuda": None, "errors": {}}
for name in ("lmdeploy", "transformers", "torch"):
    try:
        out[name] = __import__(name).__version__
    except Exception as exc:
        out[name] = None
        out["errors"][name] = type(exc).__name__ + ": " + str(exc)
if out["torch"]:
    import torch
    out["torch_cuda"] = torch.version.cuda
    try:
        out["cuda"] = bool(torch.cuda.is_available())
        out["devices"] = torch.cuda.device_count() if out["cuda"] else 0
    except Exception as exc:
        out["errors"]["cuda"] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""


@dataclass(frozen=True, slots=True)
class EnvironmentReport:
    """What lmdeploy's environment says about itself (``probe_environment``)."""

    python: str | None
    lmdeploy: str | None
    transformers: str | None
    torch: str | None
    torch_cuda: str | None  # the CUDA version torch was built for (None: a CPU build)
    cuda: bool  # torch.cuda.is_available() inside the environment
    devices: int
    errors: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_environment(env: str | Path | None = None, timeout_s: float = 180.0) -> EnvironmentReport:
    """Run lmdeploy's own Python once: versions of lmdeploy, transformers and torch, and whether CUDA works.

    Importing torch with CUDA takes seconds; starting a server takes minutes, so it is worth asking.
    """
    exe = lmdeploy_executable(env)
    python = exe.parent / "python"
    if not python.is_file():
        raise LmdeployError(
            f"{exe.parent} has no python beside lmdeploy (the install did not finish?): {INSTALL_HINT}"
        )
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE_SCRIPT],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env={**os.environ, "PYTHONNOUSERSITE": "1"},
        )
    except subprocess.TimeoutExpired:
        raise LmdeployError(
            f"lmdeploy's environment at {exe.parent.parent} did not answer within {timeout_s:g} s "
            "(importing torch hung?); check the GPU driver with nvidia-smi"
        ) from None
    except OSError as exc:
        raise LmdeployError(f"lmdeploy's Python at {python} did not run ({exc}): {INSTALL_HINT}") from None
    lines = done.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        data = None
    if done.returncode != 0 or not isinstance(data, dict):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise LmdeployError(
            f"lmdeploy's Python at {python} failed to report its versions (exit {done.returncode}: "
            f"{' / '.join(tail) or 'no output'}): {INSTALL_HINT}"
        )
    errors = data.get("errors")
    return EnvironmentReport(
        python=_text_or_none(data.get("python")),
        lmdeploy=_text_or_none(data.get("lmdeploy")),
        transformers=_text_or_none(data.get("transformers")),
        torch=_text_or_none(data.get("torch")),
        torch_cuda=_text_or_none(data.get("torch_cuda")),
        cuda=data.get("cuda") is True,
        devices=int(data.get("devices") or 0),
        errors={str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def require_usable_environment(report: EnvironmentReport, env: str | Path | None = None) -> EnvironmentReport:
    """Refuse, with what to do, an environment where lmdeploy cannot import or torch sees no CUDA device."""
    where = lmdeploy_env(env)
    for name in ("lmdeploy", "torch", "transformers"):
        if getattr(report, name) is None:
            why = report.errors.get(name, "not installed")
            raise LmdeployError(
                f"{name} does not import in lmdeploy's environment at {where} ({why}): {INSTALL_HINT}"
            )
    if not report.cuda:
        if report.torch_cuda is None:
            detail = f"its torch {report.torch} is a CPU build"
        else:
            cuda_error = report.errors.get("cuda")
            detail = f"its torch {report.torch} (CUDA {report.torch_cuda}) finds no usable GPU" + (
                f" ({cuda_error})" if cuda_error else ""
            )
        raise LmdeployError(
            f"lmdeploy cannot run here: {detail}. lmdeploy needs CUDA; check the driver with nvidia-smi, "
            "reinstall with installers/lmdeploy/install.sh, or use the hf backend (geodesk serve)"
        )
    return report


# ---------------------------------------------------------------- export


@dataclass(frozen=True, slots=True)
class LmdeployExport:
    path: Path
    eos_token_ids: tuple[int, ...]
    chat_template_file: Path


def _atomic_json(path: Path, document: Any) -> None:
    atomic_write_json(path, document, sort_keys=True)

def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LmdeployError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LmdeployError(f"{path} is not a JSON object")
    return data


def _chat_template(folder: Path) -> str:
    for name in ("chat_template.jinja",):
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            template = _read_json(folder / name).get("chat_template")
            if isinstance(template, str):
                return template
    raise LmdeployError(f"{folder} has no chat template (chat_template.jinja); it cannot be served")


def _token_id(tokenizer_json: dict[str, Any], token: str) -> int | None:
    for added in tokenizer_json.get("added_tokens", ()):
        if isinstance(added, dict) and added.get("content") == token:
            return int(added["id"])
    vocab = tokenizer_json.get("model", {}).get("vocab", {})
    value = vocab.get(token) if isinstance(vocab, dict) else None
    return int(value) if isinstance(value, int) else None


def _compat_config(config: dict[str, Any]) -> dict[str, Any]:
    """Add the transformers-4 names of settings transformers 5 writes differently (both load it).

    lmdeploy's environment has an older transformers: it reads ``rope_theta`` (v5 nests it in
    ``rope_parameters``; without it v4 silently uses 10000 and the answers degrade), ``torch_dtype``
    (v5: ``dtype``) and ``image_token_index`` (v5: ``image_token_id``).
    """
    out = dict(config)
    text = dict(out.get("text_config") or {})
    rope = text.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope:
        text.setdefault("rope_theta", rope["rope_theta"])
        if rope.get("rope_type", "default") != "default":
            text.setdefault("rope_scaling", {k: v for k, v in rope.items() if k != "rope_theta"})
    if "dtype" in text:
        text.setdefault("torch_dtype", text["dtype"])
    out["text_config"] = text
    if "dtype" in out:
        out.setdefault("torch_dtype", out["dtype"])
    if "image_token_id" in out:
        out.setdefault("image_token_index", out["image_token_id"])
    return out


def _refuse_other_families(src: Path) -> None:
    """The export rewrites LLaVA checkpoints; other families get a sentence saying what to run instead."""
    from geodesk.engine.families import FamilyError, detect_family

    try:
        family = detect_family(src)
    except FamilyError as exc:
        raise LmdeployError(str(exc)) from None
    if family.lmdeploy == "export":
        return
    if family.lmdeploy == "folder":
        raise LmdeployError(
            f"{src.name} is a {family.label} model: lmdeploy loads its folder as it is, without a geodesk "
            "export. `geodesk lmdeploy start --model NAME` serves the installed package directly; use it "
            "with --backend remote (docs/serving-families.md)"
        )
    raise _not_served(src, family.label)


def _not_served(src: Path, label: str) -> LmdeployError:
    return LmdeployError(
        f"{src.name} is a {label} model, which geodesk does not start on lmdeploy; serve it with "
        "`geodesk serve` or vLLM and use --backend remote (docs/serving-families.md)"
    )


def export_for_lmdeploy(src_dir: str | Path, dst_dir: str | Path) -> LmdeployExport:
    """Write the model in ``src_dir`` as lmdeploy loads it into ``dst_dir`` (new or empty folder)."""
    src = Path(src_dir).expanduser().resolve()
    dst = Path(dst_dir).expanduser().resolve()
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise LmdeployError(f"{dst} already exists and is not empty; choose a new folder")
    _refuse_other_families(src)
    template = _chat_template(src)
    missing = [m for m in LLAMA3_TEMPLATE_MARKERS if m not in template]
    if missing:
        raise LmdeployError(
            f"{src}: the chat template is not Llama-3's (it lacks {', '.join(missing)}); geodesk exports "
            "LLaVA-Llama-3 models for lmdeploy"
        )
    tokenizer_path = src / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise LmdeployError(f"{src} has no tokenizer.json (a fast tokenizer is needed)")
    tokenizer = _read_json(tokenizer_path)
    eot, eos = _token_id(tokenizer, LLAMA3_EOT), _token_id(tokenizer, LLAMA3_END_OF_TEXT)
    if eot is None or eos is None:
        raise LmdeployError(f"{src}: the tokenizer lacks {LLAMA3_EOT} or {LLAMA3_END_OF_TEXT}")
    # The export is assembled in a staging folder (export_legacy is atomic itself) and moved at the end.
    # Assembled in a staging folder beside dst (export_legacy writes into its "model" subfolder, atomic
    # itself) and renamed into place when complete (geodesk.atomic.atomic_directory).
    with atomic_directory(dst) as staging_root:
        staging = staging_root / "model"
        try:
            export_legacy(src, staging)
        except CheckpointError as exc:
            raise LmdeployError(str(exc)) from None
        (staging / "chat_template.jinja").write_text(template, encoding="utf-8")
        # Older transformers read the template from tokenizer_config.json / chat_template.json.
        tok_config = _read_json(staging / "tokenizer_config.json")
        tok_config["chat_template"] = template
        tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
        _atomic_json(staging / "tokenizer_config.json", tok_config)
        _atomic_json(staging / "chat_template.json", {"chat_template": template})
        generation = (
            _read_json(staging / "generation_config.json")
            if (staging / "generation_config.json").is_file()
            else {}
        )
        generation["eos_token_id"] = [eot, eos]
        generation.setdefault("pad_token_id", eos)
        _atomic_json(staging / "generation_config.json", generation)
        _atomic_json(staging / "config.json", _compat_config(_read_json(staging / "config.json")))
        _atomic_json(
            staging / CHAT_TEMPLATE_FILE,
            {"model_name": "llama3", "stop_words": [LLAMA3_EOT, LLAMA3_END_OF_TEXT]},
        )
        _rehash_manifest(staging)  # the files above changed: the manifest must describe them
        for part in staging.iterdir():  # the export becomes dst itself, not dst/model
            part.rename(staging_root / part.name)
        staging.rmdir()
    return LmdeployExport(dst, (eot, eos), dst / CHAT_TEMPLATE_FILE)


# ---------------------------------------------------------------- what is served, per family


@dataclass(frozen=True, slots=True)
class LmdeployLaunch:
    """What ``lmdeploy serve api_server`` is given for one model: the folder and its chat template."""

    family: str
    model_dir: Path
    chat_template: str  # a template JSON file (the LLaVA export) or "hf" (the folder's own template)


# Families served from their installed folder: the key prefixes lmdeploy's model loads (the published
# layout, which transformers 5 save_pretrained writes), and transformers 5's in-memory names, which
# lmdeploy's loader does not know (a folder written with save_original_format=False has them).
_FOLDER_LAYOUTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "qwen2_5_vl": (("model.", "visual.", "lm_head."), ("model.language_model.", "model.visual.")),
}


def lmdeploy_launch(model_dir: str | Path) -> LmdeployLaunch:
    """How lmdeploy serves ``model_dir``, or a refusal saying what to do; reads headers only."""
    from geodesk.engine.families import FamilyError, detect_family

    model = Path(model_dir).expanduser().resolve()
    try:
        family = detect_family(model)
    except FamilyError as exc:
        raise LmdeployError(str(exc)) from None
    if family.lmdeploy == "export":
        try:
            naming = checkpoint_naming(model)
        except CheckpointError as exc:
            raise LmdeployError(str(exc)) from None
        if naming is not KeyNaming.LEGACY:
            raise LmdeployError(
                f"{model} uses {naming.value} key names; lmdeploy loads the legacy llava-hf names. "
                "Export it first: geodesk lmdeploy export"
            )
        template = model / CHAT_TEMPLATE_FILE
        if not template.is_file():
            # Without it lmdeploy picks a template by matching the path ("llava" gets Vicuna's).
            raise LmdeployError(
                f"{model} has no {CHAT_TEMPLATE_FILE}, so it is not an lmdeploy export; export it first: "
                "geodesk lmdeploy export"
            )
        return LmdeployLaunch(family.name, model, str(template))
    if family.lmdeploy == "folder":
        published, in_memory = _FOLDER_LAYOUTS[family.name]
        try:
            keys = checkpoint_keys(model)
        except CheckpointError as exc:
            raise LmdeployError(str(exc)) from None
        renamed = [k for k in keys if k.startswith(in_memory)]
        layout = ", ".join(prefix + "*" for prefix in published)
        if renamed:
            raise LmdeployError(
                f"{model.name} stores its {family.label} weights under transformers' in-memory names "
                f"({renamed[0]!r}); lmdeploy loads the published layout ({layout}). "
                "Load the folder with transformers 5 and save_pretrained() it again (that writes the "
                "published layout), then install the new folder"
            )
        foreign = [k for k in keys if not k.startswith(published)]
        if foreign:
            raise LmdeployError(
                f"weight {foreign[0]!r} in {model.name} is not part of a {family.label} checkpoint ({layout})"
            )
        _chat_template(model)  # lmdeploy renders with the folder's own template: it must have one
        if not (model / "tokenizer.json").is_file():
            raise LmdeployError(f"{model} has no tokenizer.json (a fast tokenizer is needed)")
        return LmdeployLaunch(family.name, model, "hf")
    raise _not_served(model, family.label)


def served_folder(workspace: str | Path, src_dir: str | Path) -> LmdeployLaunch:
    """The folder lmdeploy serves for the model package in ``src_dir``.

    LLaVA: its lmdeploy export, written once per package identity into ``<workspace>/lmdeploy/exports/``
    (or ``src_dir`` itself when it already is one). Qwen2.5-VL: ``src_dir`` as it is.
    """
    from geodesk.engine.families import FamilyError, detect_family
    from geodesk.engine.package import PackageError, package_identity

    src = Path(src_dir).expanduser().resolve()
    try:
        family = detect_family(src)
    except FamilyError as exc:
        raise LmdeployError(str(exc)) from None
    if family.lmdeploy != "export":
        return lmdeploy_launch(src)
    try:
        if (src / CHAT_TEMPLATE_FILE).is_file() and checkpoint_naming(src) is KeyNaming.LEGACY:
            return lmdeploy_launch(src)  # already an lmdeploy export
        identity = package_identity(src)
    except (CheckpointError, PackageError) as exc:
        raise LmdeployError(str(exc)) from None
    key = identity.sha256 or hashlib.sha256(str(src).encode()).hexdigest()
    out = Path(workspace).expanduser().resolve() / "lmdeploy" / "exports" / (
        f"{identity.name}-{identity.version}-{key[:12]}"
    )
    if not (out.is_dir() and (out / CHAT_TEMPLATE_FILE).is_file()):
        sys.stderr.write(f"geodesk: exporting {identity.name} {identity.version} for lmdeploy into {out}\n")
        export_for_lmdeploy(src, out)
    return lmdeploy_launch(out)


def require_readable_config(launch: LmdeployLaunch, report: EnvironmentReport) -> None:
    """A folder served as it is must be read right by the transformers in lmdeploy's environment.

    transformers 5 writes the rope settings (Qwen2.5-VL's M-RoPE sections among them) under
    ``text_config.rope_parameters``; transformers 4 reads only ``rope_scaling`` / ``rope_theta`` and would
    silently run plain 1-D positions. Published Qwen2.5-VL folders carry ``rope_scaling`` and pass.
    """
    if launch.chat_template != "hf" or report.transformers is None:
        return
    major = report.transformers.split(".", 1)[0]
    if not major.isdigit() or int(major) >= 5:
        return
    config = _read_json(launch.model_dir / "config.json")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    assert isinstance(text, dict)
    if "rope_parameters" in text and "rope_scaling" not in text and "rope_scaling" not in config:
        raise LmdeployError(
            f"{launch.model_dir.name} was saved by transformers 5 (rope settings under rope_parameters), "
            f"which the transformers {report.transformers} in lmdeploy's environment misreads; install a "
            "transformers 5 release that lmdeploy accepts into that environment (its bin/pip), then start "
            "again"
        )


# ---------------------------------------------------------------- the server process


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """What ``server.json`` holds about the running lmdeploy server."""

    pid: int
    host: str
    port: int
    model: str  # the model folder it serves
    model_name: str  # the id clients send
    command: list[str]
    log: str
    started_at: float
    family: str = "llava"  # records written before families existed served LLaVA

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServerStatus:
    running: bool
    healthy: bool
    record: ServerRecord | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "healthy": self.healthy,
            "endpoint": self.record.endpoint if self.record else None,
            "server": asdict(self.record) if self.record else None,
            "detail": self.detail,
        }


def pid_alive(pid: int) -> bool:
    """The managed server's process runs (reaped first if it is our exited child)."""
    return _pid_alive(pid, reap=True)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _rehash_manifest(folder: Path) -> None:
    """Rewrite an export's geodesk-model.json for its final files (same name, version, provenance)."""
    from geodesk.engine.package import MANIFEST_NAME, read_manifest, write_manifest

    if not (folder / MANIFEST_NAME).is_file():
        return
    manifest = read_manifest(folder)
    write_manifest(
        folder,
        name=manifest.name,
        version=manifest.version,
        protocol_version=manifest.protocol_version,
        provenance=manifest.provenance,
        untrained=manifest.untrained,
        max_images_per_message=manifest.max_images_per_message,
        extra=manifest.extra,
    )


def _direct_opener() -> urllib.request.OpenerDirector:
    """An opener that ignores ``http_proxy`` / ``https_proxy``: the server is on this machine's loopback,
    and urllib would otherwise send the health check (and what it reveals) through a configured proxy."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LmdeployServer:
    """Start, check and stop one local ``lmdeploy serve api_server``, recorded in the workspace."""

    host = "127.0.0.1"

    def __init__(self, workspace: str | Path, env: str | Path | None = None) -> None:
        self.state_dir = Path(workspace).expanduser().resolve() / "lmdeploy"
        self.env = lmdeploy_env(env)
        self.pidfile = self.state_dir / "server.json"
        self.log_path = self.state_dir / "server.log"

    def record(self) -> ServerRecord | None:
        if not self.pidfile.is_file():
            return None
        try:
            data = json.loads(self.pidfile.read_text(encoding="utf-8"))
            return ServerRecord(**data)
        except (OSError, json.JSONDecodeError, TypeError):
            raise LmdeployError(
                f"{self.pidfile} is damaged; stop any lmdeploy process by hand, then delete the file"
            ) from None

    def _owns(self, record: ServerRecord) -> bool:
        """The pid is alive AND is still our api_server (not a recycled pid of another program)."""
        if not pid_alive(record.pid):
            return False
        cmdline = _cmdline(record.pid)
        return not cmdline or ("api_server" in cmdline and record.model in cmdline)

    def _health(self, record: ServerRecord, timeout_s: float = 3.0) -> tuple[bool, str]:
        url = f"{record.endpoint}/v1/models"
        try:
            with _direct_opener().open(url, timeout=timeout_s) as response:
                return response.status == 200, f"GET /v1/models answered {response.status}"
        except urllib.error.HTTPError as exc:
            return False, f"GET /v1/models answered {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return False, f"not answering yet ({getattr(exc, 'reason', exc)})"

    def status(self) -> ServerStatus:
        record = self.record()
        if record is None:
            return ServerStatus(False, False, None, "no lmdeploy server was started from this workspace")
        if not self._owns(record):
            self._clear()
            gone = f"the recorded server (pid {record.pid}) is gone; its record was removed"
            return ServerStatus(False, False, None, gone)
        healthy, detail = self._health(record)
        return ServerStatus(True, healthy, record, detail)

    def command(
        self,
        launch: LmdeployLaunch,
        port: int,
        model_name: str,
        extra_args: Sequence[str] = (),
    ) -> list[str]:
        exe = lmdeploy_executable(self.env)
        cmd = [
            str(exe), "serve", "api_server", str(launch.model_dir),
            "--server-name", self.host,
            "--server-port", str(port),
            "--backend", "pytorch",
            "--model-name", model_name,
            "--chat-template", launch.chat_template,
        ]
        return cmd + list(extra_args)

    def start(
        self,
        model_dir: str | Path,
        *,
        port: int = DEFAULT_PORT,
        model_name: str | None = None,
        extra_args: Sequence[str] = (),
        check_gpu: bool = True,
        environment: EnvironmentReport | None = None,
        wait_s: float = 900.0,
    ) -> ServerRecord:
        """Start the server and wait until ``GET /v1/models`` answers (loading a 7B/8B model takes minutes).

        ``model_dir``: an lmdeploy export (:func:`export_for_lmdeploy`) of a LLaVA model, or the installed
        folder of a family lmdeploy loads as it is (:func:`served_folder` gives the right one).
        ``check_gpu=False`` skips the NVIDIA check and the probe of lmdeploy's environment (only for tests
        with a stand-in executable; lmdeploy itself needs CUDA). ``environment``: a probe the caller
        already ran (:func:`probe_environment`), so it is not run twice.
        """
        model = Path(model_dir).expanduser().resolve()
        current = self.status()
        if current.running and current.record is not None:
            raise LmdeployError(
                f"an lmdeploy server from this workspace is already running (pid {current.record.pid}, "
                f"{current.record.endpoint}); stop it first: geodesk lmdeploy stop"
            )
        lmdeploy_executable(self.env)  # the environment first: the cheapest, most common problem
        launch = lmdeploy_launch(model)
        exe_command = self.command(launch, port, model_name or model.name, extra_args)
        if check_gpu:
            require_gpu()
            report = require_usable_environment(environment or probe_environment(self.env), self.env)
            require_readable_config(launch, report)
        if not _port_free(self.host, port):
            raise LmdeployError(f"port {port} on {self.host} is in use; choose another with --port")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(exe_command)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                exe_command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the whole group
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        record = ServerRecord(
            pid=process.pid,
            host=self.host,
            port=port,
            model=str(model),
            model_name=model_name or model.name,
            command=exe_command,
            log=str(self.log_path),
            started_at=time.time(),
            family=launch.family,
        )
        _atomic_json(self.pidfile, asdict(record))
        deadline = time.monotonic() + wait_s
        while True:
            code = process.poll()
            if code is not None:
                self._clear()
                tail = _log_tail(self.log_path)
                raise LmdeployError(
                    f"lmdeploy exited with code {code} while starting; the end of {self.log_path}:\n{tail}"
                )
            healthy, _ = self._health(record, timeout_s=2.0)
            if healthy:
                return record
            if time.monotonic() > deadline:
                self.stop()
                raise LmdeployError(
                    f"lmdeploy did not answer on {record.endpoint} within {wait_s:g} s; it was stopped. "
                    f"See {self.log_path}"
                )
            time.sleep(0.5)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the recorded server (SIGTERM to its process group, SIGKILL after ``timeout_s``).

        Returns False when nothing was running. The pidfile is removed either way.
        """
        record = self.record()
        if record is None:
            return False
        if not self._owns(record):
            self._clear()
            return False
        try:
            pgid = os.getpgid(record.pid)
        except ProcessLookupError:
            self._clear()
            return False
        # Only the group lmdeploy leads (start_new_session): never signal our own group.
        target_group = pgid == record.pid and pgid != os.getpgrp()
        self._signal(record.pid, target_group, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(record.pid):
            self._signal(record.pid, target_group, signal.SIGKILL)
            kill_deadline = time.monotonic() + 10
            while pid_alive(record.pid) and time.monotonic() < kill_deadline:
                time.sleep(0.1)
        self._clear()
        return True

    @staticmethod
    def _signal(pid: int, group: bool, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    def _clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()


__all__ = [
    "CHAT_TEMPLATE_FILE",
    "DEFAULT_ENV",
    "DEFAULT_PORT",
    "ENV_VARIABLE",
    "INSTALL_HINT",
    "LMDEPLOY_VERSION",
    "EnvironmentReport",
    "GpuReport",
    "LmdeployError",
    "LmdeployExport",
    "LmdeployLaunch",
    "LmdeployServer",
    "ServerRecord",
    "ServerStatus",
    "detect_nvidia_gpu",
    "export_for_lmdeploy",
    "lmdeploy_env",
    "lmdeploy_executable",
    "lmdeploy_launch",
    "pid_alive",
    "probe_environment",
    "require_gpu",
    "require_readable_config",
    "require_usable_environment",
    "served_folder",
]
