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
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_directory, atomic_write_json
from geodesk.engine.checkpoint import CheckpointError, KeyNaming, checkpoint_naming, export_legacy
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
    from geodesk.engine.families import LLAVA, FamilyError, detect_family

    try:
        family = detect_family(src)
    except FamilyError as exc:
        raise LmdeployError(str(exc)) from None
    if family is LLAVA:
        return
    if family.lmdeploy:
        raise LmdeployError(
            f"{src.name} is a {family.label} model: lmdeploy loads its folder as it is, without a geodesk "
            "export. Start `lmdeploy serve api_server` on the folder in lmdeploy's environment and use "
            "--backend remote (docs/serving-families.md)"
        )
    raise LmdeployError(
        f"{src.name} is a {family.label} model, which lmdeploy does not serve in this format; serve it "
        "with `geodesk serve` or vLLM and use --backend remote (docs/serving-families.md)"
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
        model_dir: Path,
        port: int,
        model_name: str,
        extra_args: Sequence[str] = (),
    ) -> list[str]:
        exe = lmdeploy_executable(self.env)
        cmd = [
            str(exe), "serve", "api_server", str(model_dir),
            "--server-name", self.host,
            "--server-port", str(port),
            "--backend", "pytorch",
            "--model-name", model_name,
        ]
        template = model_dir / CHAT_TEMPLATE_FILE
        if template.is_file():
            cmd += ["--chat-template", str(template)]
        return cmd + list(extra_args)

    def start(
        self,
        model_dir: str | Path,
        *,
        port: int = DEFAULT_PORT,
        model_name: str | None = None,
        extra_args: Sequence[str] = (),
        check_gpu: bool = True,
        wait_s: float = 900.0,
    ) -> ServerRecord:
        """Start the server and wait until ``GET /v1/models`` answers (loading an 8B model takes minutes).

        ``model_dir`` must be an lmdeploy export (:func:`export_for_lmdeploy`). ``check_gpu=False`` skips
        the NVIDIA check (only for tests with a stand-in executable; lmdeploy itself needs CUDA).
        """
        model = Path(model_dir).expanduser().resolve()
        current = self.status()
        if current.running and current.record is not None:
            raise LmdeployError(
                f"an lmdeploy server from this workspace is already running (pid {current.record.pid}, "
                f"{current.record.endpoint}); stop it first: geodesk lmdeploy stop"
            )
        exe_command = self.command(model, port, model_name or model.name, extra_args)  # env check first
        if check_gpu:
            require_gpu()
        try:
            naming = checkpoint_naming(model)
        except CheckpointError as exc:
            raise LmdeployError(str(exc)) from None
        if naming is not KeyNaming.LEGACY:
            raise LmdeployError(
                f"{model} uses {naming.value} key names; lmdeploy loads the legacy llava-hf names. "
                "Export it first: geodesk lmdeploy export"
            )
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
    "GpuReport",
    "LmdeployError",
    "LmdeployExport",
    "LmdeployServer",
    "ServerRecord",
    "ServerStatus",
    "detect_nvidia_gpu",
    "export_for_lmdeploy",
    "lmdeploy_env",
    "lmdeploy_executable",
    "pid_alive",
    "require_gpu",
]
