"""Run geodesk's end-to-end tests with no network at all, and count every attempt to leave the machine.

``unshare -n`` puts the run in a network namespace of its own that holds only a loopback device
(brought up here, so the serve tests still talk to their servers over 127.0.0.1). A packet for any
other address fails there with "network is unreachable", and the kernel counts each such attempt in
that namespace's ``OutNoRoutes`` (IPv4: /proc/net/snmp, IPv6: /proc/net/snmp6), whichever process
made it: Python or not (Qt WebEngine's Chromium, tesseract, pdftotext), guarded or started with
``python -I``. The tests' in-process guard (tests/network_guard.py) stays on beside it and names the
target of any Python attempt; the counters catch what it cannot see.

    .venv/bin/python tools/egress_netns.py            # the end-to-end set, result in bench/results/
    .venv/bin/python tools/egress_netns.py --out /tmp/e.json -- tests/cli -x   # other pytest arguments

The check passes when pytest passes and both counters are 0. Exit status: pytest's, or 3 when the
tests passed but something tried to reach the network, or 2 when this machine cannot make a
namespace (it needs root, or unprivileged user namespaces for ``unshare -rn``; ``--if-possible``
makes that 0 with a note, for CI machines that do not allow it).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "egress_netns.json"
# The end-to-end part of the suite: every CLI command, the analyst loop through the app layer, the GUI
# (main window, docks, the WebEngine map page), the services (serve and its attacks, archives, the
# isolated demo), reports, and the reliability suite's reduced form. tests/installers is left out: its
# bundle test builds from the package registries (install-time work) and cuts the network itself.
END_TO_END = ["tests/cli", "tests/app", "tests/qt", "tests/services", "tests/report", "tests/bench"]
NO_NAMESPACE = 2
REACHED_OUT = 3


class NoNamespaceError(RuntimeError):
    """This machine does not let geodesk make a network namespace."""


@dataclass
class OfflineRun:
    """What one command did inside a loopback-only namespace."""

    returncode: int
    interfaces: list[str]  # the namespace's network devices: only "lo" when the cut worked
    ipv4_out_no_routes: int  # packets the kernel could not route: attempts to leave the machine
    ipv6_out_no_routes: int
    seconds: float
    unshare: list[str] = field(default_factory=list)

    @property
    def outbound_attempts(self) -> int:
        return self.ipv4_out_no_routes + self.ipv6_out_no_routes


def namespace_command() -> list[str] | None:
    """The ``unshare`` invocation this machine allows (root: ``-n``; otherwise ``-rn``), or None."""
    if shutil.which("unshare") is None:
        return None
    for command in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*command, "true"], capture_output=True, check=False).returncode == 0:
            return command
    return None


def _out_no_routes() -> tuple[int, int]:
    """This namespace's IPv4 and IPv6 ``OutNoRoutes`` counters."""
    lines = Path("/proc/net/snmp").read_text(encoding="ascii").splitlines()
    ip_rows = [line.split()[1:] for line in lines if line.startswith("Ip:")]  # a header row, a value row
    ipv4 = int(dict(zip(ip_rows[0], ip_rows[1], strict=True))["OutNoRoutes"])
    ipv6 = 0
    snmp6 = Path("/proc/net/snmp6")
    if snmp6.exists():
        for line in snmp6.read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == "Ip6OutNoRoutes":
                ipv6 = int(value.strip())
    return ipv4, ipv6


def _interfaces() -> list[str]:
    """This namespace's network devices (/proc/net/dev is per namespace; /sys/class/net is per mount)."""
    lines = Path("/proc/net/dev").read_text(encoding="ascii").splitlines()[2:]  # two header lines
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def _bring_loopback_up() -> None:
    """``ip link set lo up`` without needing iproute2: SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1  # linux/sockios.h, linux/if.h
    layout = "16sh22x"  # struct ifreq (40 bytes): the name, then ifr_flags in the union
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack(layout, b"lo", 0)
        flags = struct.unpack(layout, fcntl.ioctl(control, siocgifflags, request))[1]
        fcntl.ioctl(control, siocsifflags, struct.pack(layout, b"lo", flags | iff_up))


def _inside(report: Path, command: Sequence[str]) -> int:
    """Runs in the new namespace: bring loopback up, run ``command``, write the counters to ``report``."""
    _bring_loopback_up()
    before = _out_no_routes()
    started = time.perf_counter()
    returncode = subprocess.run(list(command), check=False).returncode
    seconds = time.perf_counter() - started
    after = _out_no_routes()
    report.write_text(json.dumps({
        "returncode": returncode,
        "interfaces": _interfaces(),
        "ipv4_out_no_routes": after[0] - before[0],
        "ipv6_out_no_routes": after[1] - before[1],
        "seconds": round(seconds, 1),
    }), encoding="utf-8")
    return returncode


def run_offline(command: Sequence[str], *, env: dict[str, str] | None = None) -> OfflineRun:
    """Run ``command`` in a fresh loopback-only network namespace and count its outbound attempts."""
    unshare = namespace_command()
    if unshare is None:
        raise NoNamespaceError("this machine cannot make a network namespace: run as root, or allow "
                           "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")
    with tempfile.TemporaryDirectory(prefix="geodesk-netns-") as tmp:
        report = Path(tmp) / "counters.json"
        subprocess.run([*unshare, sys.executable, str(Path(__file__).resolve()), "--inside", str(report),
                        "--", *command], env=env, check=False)
        if not report.exists():
            raise RuntimeError(f"the namespace run of {command[0]} ended without its counters")
        return OfflineRun(**json.loads(report.read_text(encoding="utf-8")), unshare=unshare)


# --- as a pytest plugin inside the namespace (-p egress_netns): which test made the attempts ---------

ATTEMPTS_LOG = "GEODESK_EGRESS_ATTEMPTS_LOG"
_counters_at_start: dict[str, tuple[int, int]] = {}


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    _counters_at_start[nodeid] = _out_no_routes()


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    """Counters are per namespace, so this also counts the children a test started while it ran."""
    before, after = _counters_at_start.pop(nodeid, None), _out_no_routes()
    log = os.environ.get(ATTEMPTS_LOG)
    if before is None or after == before or not log:
        return
    with open(log, "a", encoding="utf-8") as fh:
        record = {"test": nodeid, "ipv4": after[0] - before[0], "ipv6": after[1] - before[1]}
        fh.write(json.dumps(record) + "\n")


def _junit_counts(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    suites = ET.parse(path).getroot()
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites.iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, "0"))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def _junit_slowest(path: Path, count: int = 10) -> list[dict[str, Any]]:
    """The slowest tests, to size the run against the CI budget."""
    if not path.exists():
        return []
    cases = [(float(case.get("time", "0")), f"{case.get('classname', '')}::{case.get('name', '')}")
             for case in ET.parse(path).getroot().iter("testcase")]
    return [{"test": name, "seconds": round(seconds, 1)} for seconds, name in sorted(cases)[::-1][:count]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULT, help="where the JSON result goes")
    parser.add_argument("--if-possible", action="store_true",
                        help="exit 0 with a note on a machine that cannot make a namespace (CI)")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)  # the namespace side
    parser.add_argument("pytest_args", nargs="*", help="pytest arguments (default: the end-to-end set)")
    args = parser.parse_args(argv)
    if args.inside is not None:
        return _inside(args.inside, args.pytest_args)

    pytest_args = args.pytest_args or END_TO_END
    with tempfile.TemporaryDirectory(prefix="geodesk-egress-") as tmp:
        junit, attempts_log = Path(tmp) / "junit.xml", Path(tmp) / "attempts.jsonl"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "egress_netns",
                   f"--junitxml={junit}", *pytest_args]
        path = (str(ROOT), str(ROOT / "tools"), os.environ.get("PYTHONPATH", ""))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p),
               ATTEMPTS_LOG: str(attempts_log)}
        try:
            run = run_offline(command, env=env)
        except NoNamespaceError as exc:
            print(f"egress check: {exc}", file=sys.stderr)
            return 0 if args.if_possible else NO_NAMESPACE
        except RuntimeError as exc:
            print(f"egress check: {exc}", file=sys.stderr)
            return 1
        counts = _junit_counts(junit)
        slowest = _junit_slowest(junit)
        by_test = ([json.loads(line) for line in attempts_log.read_text(encoding="utf-8").splitlines()]
                   if attempts_log.exists() else [])
    passed = run.returncode == 0 and run.outbound_attempts == 0 and run.interfaces == ["lo"]
    document: dict[str, Any] = {
        "what": "the end-to-end tests inside a network namespace holding only loopback (unshare -n), "
                "beside the in-process guard; outbound attempts are the namespace's OutNoRoutes counters",
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "pytest_args": pytest_args,
        "pytest": counts,
        **asdict(run),
        "outbound_attempts": run.outbound_attempts,
        "attempts_by_test": by_test,  # the tests during which the counters rose
        "passed": passed,
        "slowest_tests": slowest,
    }
    sys.path.insert(0, str(ROOT))
    from geodesk.atomic import atomic_write_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, document)
    print(f"egress check: pytest exit {run.returncode}, {counts.get('passed', 0)} passed, "
          f"{run.outbound_attempts} outbound attempt(s), interfaces {run.interfaces} -> {args.out}")
    if run.returncode != 0:
        return run.returncode
    return 0 if passed else REACHED_OUT


if __name__ == "__main__":
    raise SystemExit(main())
