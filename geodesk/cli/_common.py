"""Shared pieces of the command line: workspace option, JSON output, errors, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class CliError(Exception):
    """An error the person can act on; its text is printed to stderr as is."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_workspace_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace",
        metavar="DIR",
        default=None,
        help="workspace folder (default: $GEODESK_WORKSPACE, else the per-user data folder)",
    )


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def workspace_path(args: argparse.Namespace) -> Path:
    """The workspace folder the command names (geodesk.store.workspace.workspace_path's rule)."""
    from geodesk.store.locations import workspace_path as resolve

    return resolve(getattr(args, "workspace", None))


# Bidirectional-text controls reorder what a terminal shows ("Trojan Source"): escaped like C0/C1 controls.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escaped(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\u202e``), so untrusted strings
    (EXIF fields, titles, file names, model answers) cannot move the cursor, recolour, retitle or
    rewrite the analyst's terminal. Line breaks and tabs stay: multi-line answers remain readable."""
    if text.isprintable():
        return text  # the common case: nothing to escape
    return "".join(
        _escaped(ch)
        if (ch not in "\n\t" and unicodedata.category(ch) == "Cc") or ch in _BIDI_CONTROLS
        else ch
        for ch in text
    )


def emit(args: argparse.Namespace, document: Any, human: str | None = None) -> None:
    """Print ``document`` as JSON with ``--json``, else ``human`` (or an indented JSON fallback).

    This is the one place text reaches the terminal: human text goes through :func:`terminal_safe`;
    JSON stays exact (its encoder already escapes every control character).
    """
    if getattr(args, "json", False) or human is None:
        indent = None if getattr(args, "json", False) else 2
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=indent) + "\n")
    else:
        sys.stdout.write(terminal_safe(human.rstrip("\n")) + "\n")
    sys.stdout.flush()


def fail(message: str, exit_code: int = 1) -> int:
    sys.stderr.write(f"geodesk: {terminal_safe(message)}\n")
    sys.stderr.flush()
    return exit_code


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars go to stderr, only when it is a terminal and no JSON is asked for."""
    return sys.stderr.isatty() and not getattr(args, "json", False)


@contextlib.contextmanager
def errors_as_sentences() -> Iterator[None]:
    """Store and file errors are already sentences a person can act on: pass them on as CLI errors."""
    from geodesk.store import StoreError

    try:
        yield
    except LookupError as exc:
        raise CliError(str(exc.args[0]) if exc.args else str(exc)) from None
    except (StoreError, ValueError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None


def register_commands(subparsers: Any, package: str, names: Sequence[str]) -> None:
    """Import ``package.<name>`` for each command module and let it add its parsers."""
    for name in names:
        importlib.import_module(f"{package}.{name}").register(subparsers)


def run_handler(args: argparse.Namespace, interrupted: str) -> int:
    """Run the parsed command's handler; CLI errors and Ctrl-C become a sentence and an exit code."""
    if not progress_enabled(args):
        # transformers and huggingface_hub read this when first imported (their "Loading weights"
        # bars): with --json, or when stderr is no terminal, nothing but the document is printed.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail(f"interrupted; {interrupted}", 130)
