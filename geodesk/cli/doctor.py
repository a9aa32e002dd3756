"""``geodesk doctor``: check this machine for what geodesk needs and print what to fix."""

from __future__ import annotations

import argparse
from typing import Any

from geodesk.cli._common import add_json_argument, emit, workspace_path

_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the system libraries, Qt, fonts, GPU, disk and workspace, and say what to fix",
        description="Check this machine for what geodesk needs. Exits 1 when a check fails.",
    )
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU check (it imports torch)")
    add_json_argument(parser)
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from geodesk.services.doctor import run_doctor

    report = run_doctor(workspace_path(args), gpu=not args.no_gpu)
    lines = []
    for check in report.checks:
        lines.append(f"{_MARKS[check.status.value]}  {check.name}: {check.message}")
        if check.fix:
            lines.append(f"      fix: {check.fix}")
    lines.append("geodesk can run here" if report.ok
                 else "fix the FAIL lines above, then run `geodesk doctor` again")
    emit(args, report.as_document(), "\n".join(lines))
    return 0 if report.ok else 1
