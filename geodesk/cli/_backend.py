"""The model options every command that runs a model shares, and opening the backend they describe."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.cli._common import CliError, workspace_path
from geodesk.domain.precision import DTYPES, QUANTIZATIONS
from geodesk.services.serve_config import API_KEY_VARIABLE

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend


def add_backend_arguments(parser: Any, *, remote: bool = True, adapter: bool = True) -> None:
    """The backend options: ``--backend/--endpoint/--api-key`` (with ``remote``), ``--dtype``,
    ``--device``, ``--quantization`` and ``--adapter`` (with ``adapter``).

    ``parser`` is an ArgumentParser or an argument group; the model reference itself (``--model``,
    ``--teacher``) is each command's own option.
    """
    if remote:
        parser.add_argument("--backend", choices=["hf", "remote"], default="hf")
        parser.add_argument(
            "--endpoint",
            action="append",
            default=[],
            metavar="URL",
            help="OpenAI-compatible server for --backend remote (repeat for several)",
        )
        add_api_key_arguments(parser, "the server's API key")
        parser.add_argument(
            "--profile", choices=["gaga", "globe", "generic"], default=None,
            help="--backend remote: the served model's prompt profile (default: what the server reports, "
            "else gaga)",
        )
    parser.add_argument("--dtype", choices=DTYPES, default="auto")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--quantization", choices=QUANTIZATIONS, default="none")
    if adapter:
        parser.add_argument("--adapter", default=None, help="LoRA adapter folder (hf backend)")


def add_api_key_arguments(parser: Any, what: str) -> None:
    """``--api-key-file FILE`` (preferred) and ``--api-key KEY``; ``$GEODESK_API_KEY`` when neither."""
    parser.add_argument(
        "--api-key-file",
        default=None,
        metavar="FILE",
        help=f"read {what} from FILE (first line; keep it owner-only: chmod 600)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help=f"{what} on the command line: other users see it in `ps`; prefer --api-key-file or "
        f"${API_KEY_VARIABLE}",
    )


def api_key_from_args(args: argparse.Namespace) -> str | None:
    """The API key from ``--api-key-file``, ``--api-key`` or ``$GEODESK_API_KEY``, in that order."""
    path = getattr(args, "api_key_file", None)
    if path:
        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(
                f"cannot read the API key file {file}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        key = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not key:
            raise CliError(f"the API key file {file} is empty; write the key on its first line")
        if os.name == "posix" and file.stat().st_mode & 0o077:
            sys.stderr.write(
                f"geodesk: warning: {file} can be read by other users; restrict it with `chmod 600 {file}`\n"
            )
        return key
    given = getattr(args, "api_key", None)
    if given:
        sys.stderr.write(
            "geodesk: warning: --api-key puts the key in the process list (`ps`); use --api-key-file FILE "
            f"or ${API_KEY_VARIABLE} instead\n"
        )
        return str(given)
    return os.environ.get(API_KEY_VARIABLE) or None


def open_backend_from_args(
    args: argparse.Namespace, model: str | Path | None, session: Any = None
) -> Backend:
    """Open the backend the parsed options describe; failures become one actionable CLI error.

    ``session``: a later turn of that session: without ``--model`` it runs on the session's own model.
    """
    from geodesk.engine.backends.base import BackendError
    from geodesk.services.models import (
        BackendRequest,
        ModelNotFoundError,
        open_backend,
        session_backend_request,
    )

    request = BackendRequest(
        model=None if model is None else str(model),
        backend=getattr(args, "backend", "hf"),
        dtype=args.dtype,
        device=args.device,
        quantization=args.quantization,
        adapter=getattr(args, "adapter", None),
        endpoints=tuple(getattr(args, "endpoint", ())),
        api_key=api_key_from_args(args) if hasattr(args, "api_key") else None,
        profile=getattr(args, "profile", None),
    )
    try:
        if session is not None:
            request = session_backend_request(workspace_path(args), session, request)
        return open_backend(workspace_path(args), request)
    except (ModelNotFoundError, BackendError, LookupError) as exc:
        raise CliError(str(exc)) from None
