"""``geodesk finding``: set (save a new version), show the current one, list its history."""

from __future__ import annotations

import argparse

from geodesk.cli._common import add_json_argument, emit, errors_as_sentences, workspace_path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("finding", help="the analyst's finding for an evidence item (versioned)")
    commands = parser.add_subparsers(dest="finding_command", metavar="COMMAND", required=True)

    set_ = commands.add_parser("set", help="save a new version of the finding")
    set_.add_argument("case", metavar="CASE", help="case id or the start of its title")
    set_.add_argument("evidence", metavar="EVIDENCE", help="SHA-256 or a unique prefix of it")
    set_.add_argument("lat", type=float, metavar="LAT")
    set_.add_argument("lon", type=float, metavar="LON")
    set_.add_argument("--radius", type=float, default=25.0, metavar="KM", help="uncertainty (default 25 km)")
    set_.add_argument("--status", default="unverified", choices=("unverified", "probable", "confirmed"))
    set_.add_argument("--reasoning", default="", help="why you conclude this")
    add_json_argument(set_)
    set_.set_defaults(handler=_set)

    for name, what in (("show", "the current version"), ("history", "every version, oldest first")):
        command = commands.add_parser(name, help=what)
        command.add_argument("case", metavar="CASE", help="case id or the start of its title")
        command.add_argument("evidence", metavar="EVIDENCE", help="SHA-256 or a unique prefix of it")
        add_json_argument(command)
        command.set_defaults(handler=_show if name == "show" else _history)


def _line(finding: object) -> str:
    from geodesk.domain.model import Finding

    assert isinstance(finding, Finding)
    return (
        f"v{finding.version}  {finding.lat:.5f}, {finding.lon:.5f} ±{finding.radius_km:g} km  "
        f"{finding.status.value}" + (f"  {finding.reasoning}" if finding.reasoning else "")
    )


def _set(args: argparse.Namespace) -> int:
    from geodesk.services.findings import finding_document, save_finding
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        finding = save_finding(
            store, args.evidence, args.lat, args.lon, args.radius, args.status, args.reasoning
        )
    emit(args, {"finding": finding_document(finding)}, _line(finding))
    return 0


def _show(args: argparse.Namespace) -> int:
    from geodesk.services.findings import current_finding, finding_document
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        finding = current_finding(store, args.evidence)
    if finding is None:
        emit(args, {"finding": None}, "no finding yet: save one with `geodesk finding set`")
        return 0
    emit(args, {"finding": finding_document(finding)}, _line(finding))
    return 0


def _history(args: argparse.Namespace) -> int:
    from geodesk.services.findings import finding_document, finding_history
    from geodesk.store import Workspace

    with errors_as_sentences(), Workspace(workspace_path(args)).open_case(args.case) as store:
        versions = finding_history(store, args.evidence)
    emit(
        args,
        {"history": [finding_document(f) for f in versions]},
        "\n".join(_line(f) for f in versions) or "no finding yet",
    )
    return 0
