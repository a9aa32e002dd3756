"""The no-network run (tools/egress_netns.py): loopback works inside, and every attempt to leave counts.

The counters are the kernel's, so they see children the in-process guard cannot: a shell's
/dev/tcp and /dev/udp, and Python started with ``-I`` (which skips the guard's sitecustomize).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("egress_netns", ROOT / "tools" / "egress_netns.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["egress_netns"] = module
    spec.loader.exec_module(module)
    if module.namespace_command() is None:
        pytest.skip("this machine cannot make a network namespace (unshare -n)")
    return module

LOOPBACK_ROUND_TRIP = """
import socket
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
client.sendall(b"ping")
assert peer.recv(4) == b"ping"
"""

UNGUARDED_PYTHON_REACHES_OUT = """
import socket
for family, kind, target in ((socket.AF_INET, socket.SOCK_STREAM, ("192.0.2.1", 443)),
                             (socket.AF_INET6, socket.SOCK_STREAM, ("2001:db8::1", 443))):
    try:
        socket.socket(family, kind).connect(target)
    except OSError:
        pass
"""


def test_loopback_works_and_nothing_else_is_there(tool: ModuleType) -> None:
    run = tool.run_offline([sys.executable, "-I", "-c", LOOPBACK_ROUND_TRIP])
    assert run.returncode == 0
    assert run.interfaces == ["lo"]
    assert run.outbound_attempts == 0


def test_a_shell_child_reaching_out_is_counted(tool: ModuleType) -> None:
    shell = "echo x > /dev/udp/192.0.2.1/9; exec 3<>/dev/tcp/192.0.2.1/80; true"
    run = tool.run_offline(["bash", "-c", shell])
    assert run.ipv4_out_no_routes == 2
    assert run.ipv6_out_no_routes == 0


def test_python_without_the_guard_reaching_out_is_counted_for_both_families(tool: ModuleType) -> None:
    run = tool.run_offline([sys.executable, "-I", "-c", UNGUARDED_PYTHON_REACHES_OUT])
    assert run.returncode == 0
    assert (run.ipv4_out_no_routes, run.ipv6_out_no_routes) == (1, 1)
