"""The model options every command that runs a model shares, and opening the backend they describe."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.cli._common import CliError, workspace_path
from geodesk.domain.precision import DTYPES, QUANTIZATIONS

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
        parser.add_argument("--api-key", default=None)
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
        api_key=getattr(args, "api_key", None),
        profile=getattr(args, "profile", None),
    )
    try:
        if session is not None:
            request = session_backend_request(workspace_path(args), session, request)
        return open_backend(workspace_path(args), request)
    except (ModelNotFoundError, BackendError, LookupError) as exc:
        raise CliError(str(exc)) from None
