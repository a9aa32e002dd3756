"""The test suite's egress guard refuses TCP, UDP and DNS beyond loopback, here and in child processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.network_guard import NetworkRefusedError

# TEST-NET-1 (RFC 5737): never routed, so even a broken guard could not reach anyone.
OUTSIDE = "192.0.2.1"


def test_tcp_beyond_loopback_is_refused() -> None:
    with socket.socket() as s, pytest.raises(NetworkRefusedError, match="connect"):
        s.connect((OUTSIDE, 80))


def test_udp_datagrams_beyond_loopback_are_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(NetworkRefusedError, match="datagram"):
            s.sendto(b"\x00", (OUTSIDE, 53))
        with pytest.raises(NetworkRefusedError, match="datagram"):
            s.sendmsg([b"\x00"], [], 0, (OUTSIDE, 53))
        with pytest.raises(NetworkRefusedError, match="connect"):
            s.connect((OUTSIDE, 53))  # a connected UDP socket, then send()


def test_udp_on_loopback_still_works() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        tx.sendto(b"ping", rx.getsockname())
        assert rx.recv(4) == b"ping"


def test_dns_lookups_of_other_names_are_refused() -> None:
    with pytest.raises(NetworkRefusedError, match="look up"):
        socket.getaddrinfo("huggingface.co", 443)
    with pytest.raises(NetworkRefusedError, match="look up"):
        socket.gethostbyname("tile.openstreetmap.org")
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)


@pytest.mark.parametrize("env", [None, {"PATH": os.environ.get("PATH", "")}], ids=["inherited", "own env"])
def test_child_python_processes_are_guarded(env: dict[str, str] | None) -> None:
    script = (
        "import socket\n"
        "udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for attempt in (lambda: socket.create_connection(('192.0.2.1', 80), timeout=5),\n"
        "                lambda: udp.sendto(b'x', ('192.0.2.1', 53)),\n"
        "                lambda: socket.getaddrinfo('example.com', 80)):\n"
        "    try:\n"
        "        attempt()\n"
        "    except RuntimeError as exc:\n"
        "        print('refused:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("refused: tests must not touch the network") == 3, done.stdout
