"""``geodesk serve`` (an OpenAI-compatible server for field teams) and ``geodesk lmdeploy ...``.

``geodesk serve`` loads a model with the hf backend and serves it on loopback unless told otherwise.
``geodesk lmdeploy export|start|status|stop|check`` manages a local lmdeploy server (its own
environment, CUDA only), which geodesk then uses through ``--backend remote --endpoint URL``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from geodesk.cli._backend import (
    add_api_key_arguments,
    add_backend_arguments,
    api_key_from_args,
    open_backend_from_args,
)
from geodesk.cli._common import CliError, add_json_argument, emit, workspace_path


def register(subparsers: Any) -> None:
    _register_serve(subparsers)
    _register_lmdeploy(subparsers)


# ---------------------------------------------------------------- geodesk serve


def _register_serve(subparsers: Any) -> None:
    from geodesk.services.serve_config import DEFAULT_HOST, DEFAULT_PORT, ServeLimits

    defaults = ServeLimits()
    parser = subparsers.add_parser(
        "serve",
        help="serve the model over an OpenAI-compatible HTTP API (for other geodesk installs)",
        description=(
            "Serve a model package with the in-process hf backend as an OpenAI-compatible chat-completions "
            "endpoint (POST /v1/chat/completions with images as data URLs, streaming; GET /v1/models; "
            "GET /health). Listens on 127.0.0.1 unless --host says otherwise. Other machines connect with "
            "`geodesk locate ... --backend remote --endpoint http://HOST:PORT`."
        ),
    )
    parser.add_argument("--model", default=None, help="model folder or NAME[@VERSION] (default: active)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free")
    add_api_key_arguments(parser, "the key clients must send as 'Authorization: Bearer KEY'")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients may use for this machine besides loopback and --host (repeat); "
        "requests naming any other Host are refused (DNS rebinding)",
    )
    parser.add_argument(
        "--allow-no-api-key",
        action="store_true",
        help="listen beyond loopback without an API key (refused otherwise); only on an isolated network",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="open connections at once; more are answered 503",
    )
    parser.add_argument("--model-name", default=None, help="model id clients use (default: the package name)")
    parser.add_argument("--max-image-pixels", type=int, default=defaults.max_image_pixels)
    parser.add_argument("--max-image-bytes", type=int, default=defaults.max_image_bytes)
    parser.add_argument("--max-images", type=int, default=defaults.max_images, help="images per request")
    parser.add_argument("--max-tokens", type=int, default=defaults.max_tokens, help="largest max_tokens")
    parser.add_argument(
        "--queue", type=int, default=defaults.queue_size, help="requests that may wait; more get 503"
    )
    add_backend_arguments(parser, remote=False)
    add_json_argument(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from geodesk.services.serving import (
        ChatServer,
        ServeConfig,
        ServeLimits,
        UnsafeServeConfigError,
        is_loopback_host,
    )

    try:
        limits = ServeLimits(
            max_image_pixels=args.max_image_pixels,
            max_image_bytes=args.max_image_bytes,
            max_images=args.max_images,
            max_tokens=args.max_tokens,
            default_max_tokens=min(ServeLimits().default_max_tokens, args.max_tokens),
            queue_size=args.queue,
            max_connections=args.max_connections,
        )
    except ValueError as exc:
        raise CliError(f"invalid limit: {exc}") from None
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be between 0 and 65535, got {args.port}")
    api_key = api_key_from_args(args)
    config = ServeConfig(
        host=args.host,
        port=args.port,
        api_key=api_key,
        limits=limits,
        model_name=args.model_name,
        allowed_hosts=tuple(args.allow_host),
        allow_no_api_key=args.allow_no_api_key,
    )
    if not is_loopback_host(args.host) and not api_key and not args.allow_no_api_key:
        # Refused before the weights load (minutes for a large model); ChatServer checks again.
        raise CliError(
            f"refusing to listen on {args.host} without an API key: other machines could use the model. "
            "Give one with --api-key-file FILE (or $GEODESK_API_KEY), listen on 127.0.0.1, or pass "
            "--allow-no-api-key on an isolated network"
        )
    backend = open_backend_from_args(args, args.model)
    try:
        server = ChatServer(backend, config)
    except UnsafeServeConfigError as exc:
        backend.close()
        raise CliError(str(exc)) from None
    except OSError as exc:
        backend.close()
        raise CliError(f"{exc}; choose another --port or stop what uses it") from None
    if not is_loopback_host(args.host):
        banner = "!" * 78
        sys.stderr.write(
            f"{banner}\ngeodesk serve: listening on {args.host}: OTHER MACHINES CAN REACH THIS MODEL.\n"
            + (
                "An API key is required.\n"
                if api_key
                else "NO API KEY IS SET (--allow-no-api-key): anyone who can reach this port can use it.\n"
            )
            + f"{banner}\n"
        )
    identity = backend.identity
    document = {
        "url": server.url,
        "model": server.model_name,
        "version": identity.version,
        "sha256": identity.sha256,
        "backend": backend.name,
        "api_key_required": bool(api_key),
        "limits": {
            "max_image_pixels": limits.max_image_pixels,
            "max_image_bytes": limits.max_image_bytes,
            "max_images": limits.max_images,
            "max_tokens": limits.max_tokens,
            "queue": limits.queue_size,
            "max_connections": limits.max_connections,
        },
    }
    emit(
        args,
        document,
        f"geodesk serve: {server.url} serves {server.model_name} {identity.version} "
        f"(sha256 {identity.sha256[:12]}…); Ctrl+C stops it",
    )

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stderr.write("geodesk serve: stopping\n")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.shutdown()
        backend.close()
    return 0


# ---------------------------------------------------------------- geodesk lmdeploy


def _register_lmdeploy(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lmdeploy",
        help="the fast local engine: export a model for lmdeploy, start / stop its server (NVIDIA GPU)",
        description=(
            "lmdeploy runs in its own environment (installers/lmdeploy/install.sh) and needs an NVIDIA GPU. "
            "`start` serves the model on 127.0.0.1; use it with --backend remote --endpoint URL."
        ),
    )
    sub = parser.add_subparsers(dest="lmdeploy_command", metavar="SUBCOMMAND", required=True)

    export = sub.add_parser("export", help="write a model in the form lmdeploy loads (legacy key names)")
    export.add_argument("out_dir", metavar="OUT_DIR", help="new (or empty) folder")
    export.add_argument("--model", default=None, help="model folder or NAME[@VERSION] (default: active)")
    add_json_argument(export)
    export.set_defaults(handler=_lmdeploy_export)

    start = sub.add_parser("start", help="start a local lmdeploy api_server on 127.0.0.1")
    start.add_argument("--model", default=None, help="model folder or NAME[@VERSION] (default: active)")
    start.add_argument("--port", type=int, default=None, help="port (default 23333)")
    start.add_argument("--model-name", default=None, help="model id clients use (default: the package name)")
    start.add_argument("--wait", type=float, default=900.0, help="seconds to wait for the model to load")
    start.add_argument(
        "--lmdeploy-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for lmdeploy serve api_server (repeat; e.g. --lmdeploy-arg=--tp=2)",
    )
    _env_argument(start)
    add_json_argument(start)
    start.set_defaults(handler=_lmdeploy_start)

    status = sub.add_parser("status", help="is the local lmdeploy server running and answering?")
    _env_argument(status)
    add_json_argument(status)
    status.set_defaults(handler=_lmdeploy_status)

    stop = sub.add_parser("stop", help="stop the local lmdeploy server")
    _env_argument(stop)
    add_json_argument(stop)
    stop.set_defaults(handler=_lmdeploy_stop)

    check = sub.add_parser("check", help="report whether lmdeploy can run here (environment, NVIDIA GPU)")
    _env_argument(check)
    add_json_argument(check)
    check.set_defaults(handler=_lmdeploy_check)


def _env_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        default=None,
        metavar="DIR",
        help="lmdeploy's environment (default: $GEODESK_LMDEPLOY_ENV or ~/.local/share/geodesk/lmdeploy-env)",
    )


def _model_folder(args: argparse.Namespace) -> Path:
    from geodesk.services.models import ModelNotFoundError, resolve_model_folder

    try:
        return resolve_model_folder(workspace_path(args), args.model)
    except (ModelNotFoundError, LookupError) as exc:
        raise CliError(str(exc)) from None


def _lmdeploy_export(args: argparse.Namespace) -> int:
    from geodesk.services.lmdeploy_server import LmdeployError, export_for_lmdeploy

    src = _model_folder(args)
    try:
        result = export_for_lmdeploy(src, args.out_dir)
    except LmdeployError as exc:
        raise CliError(str(exc)) from None
    document = {
        "source": str(src),
        "path": str(result.path),
        "eos_token_ids": list(result.eos_token_ids),
        "chat_template": str(result.chat_template_file),
    }
    emit(args, document, f"exported {src.name} for lmdeploy to {result.path}")
    return 0


def _lmdeploy_start(args: argparse.Namespace) -> int:
    from geodesk.services.lmdeploy_server import (
        DEFAULT_PORT,
        LmdeployError,
        LmdeployServer,
        lmdeploy_executable,
        probe_environment,
        require_gpu,
        require_usable_environment,
        served_folder,
    )

    workspace = workspace_path(args)
    try:
        # The cheap checks first, before exporting gigabytes: the environment, the GPU, CUDA inside it.
        lmdeploy_executable(args.env)
        require_gpu()
        environment = require_usable_environment(probe_environment(args.env), args.env)
        launch = served_folder(workspace, _model_folder(args))
        server = LmdeployServer(workspace, args.env)
        record = server.start(
            launch.model_dir,
            port=args.port or DEFAULT_PORT,
            model_name=args.model_name,
            extra_args=args.lmdeploy_arg,
            environment=environment,
            wait_s=args.wait,
        )
    except LmdeployError as exc:
        raise CliError(str(exc)) from None
    document = {
        "endpoint": record.endpoint,
        "pid": record.pid,
        "model": record.model,
        "model_name": record.model_name,
        "family": record.family,
        "log": record.log,
    }
    emit(
        args,
        document,
        f"lmdeploy serves {record.model_name} ({record.family}) at {record.endpoint} (pid {record.pid}, "
        f"log {record.log})\nuse it with: --backend remote --endpoint {record.endpoint}",
    )
    return 0


def _lmdeploy_status(args: argparse.Namespace) -> int:
    from geodesk.services.lmdeploy_server import LmdeployError, LmdeployServer

    try:
        status = LmdeployServer(workspace_path(args), args.env).status()
    except LmdeployError as exc:
        raise CliError(str(exc)) from None
    if status.running and status.record is not None:
        human = (
            f"lmdeploy {'answers' if status.healthy else 'is running but not answering'} at "
            f"{status.record.endpoint} (pid {status.record.pid}): {status.detail}"
        )
    else:
        human = f"lmdeploy is not running: {status.detail}"
    emit(args, status.as_dict(), human)
    return 0


def _lmdeploy_stop(args: argparse.Namespace) -> int:
    from geodesk.services.lmdeploy_server import LmdeployError, LmdeployServer

    try:
        stopped = LmdeployServer(workspace_path(args), args.env).stop()
    except LmdeployError as exc:
        raise CliError(str(exc)) from None
    emit(args, {"stopped": stopped}, "lmdeploy stopped" if stopped else "no lmdeploy server was running")
    return 0


def _lmdeploy_check(args: argparse.Namespace) -> int:
    from geodesk.services.lmdeploy_server import (
        EnvironmentReport,
        LmdeployError,
        detect_nvidia_gpu,
        lmdeploy_env,
        lmdeploy_executable,
        probe_environment,
        require_usable_environment,
    )

    gpu = detect_nvidia_gpu()
    env_problem = None
    report: EnvironmentReport | None = None
    exe: Path | None = None
    try:
        exe = lmdeploy_executable(args.env)
        report = probe_environment(args.env)
        require_usable_environment(report, args.env)
    except LmdeployError as exc:
        env_problem = str(exc)
    document = {
        "gpu": {"present": gpu.present, "detail": gpu.detail},
        "env": str(lmdeploy_env(args.env)),
        "executable": str(exe) if exe else None,
        "environment": report.as_dict() if report else None,
        "env_problem": env_problem,
        "ready": gpu.present and env_problem is None,
    }
    lines = [
        f"NVIDIA GPU: {'yes' if gpu.present else 'NO'} ({gpu.detail})",
        f"lmdeploy environment: {env_problem or exe}",
    ]
    if report is not None:
        lines.append(
            f"  lmdeploy {report.lmdeploy}, transformers {report.transformers}, torch {report.torch} "
            f"(CUDA {report.torch_cuda or 'none'}, {report.devices} device(s) usable)"
        )
    if not document["ready"]:
        lines.append("lmdeploy cannot run on this machine; use the hf backend (geodesk serve) here.")
    emit(args, document, "\n".join(lines))
    return 0 if document["ready"] else 1
