"""The tests' network guard: nothing but loopback, for TCP, UDP, DNS look-ups and child processes.

Installed in the test process by tests/conftest.py and, through tests/netguard_site/sitecustomize.py
(put first on every child's PYTHONPATH), in every Python process the tests start. Refusals raise
:class:`NetworkRefusedError` with the address in the message, so a test that reaches out fails loudly
instead of timing out. Non-Python children (a browser, exiftool) are not covered by this guard.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

ENV_FLAG = "GEODESK_NETWORK_GUARD"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}
_UNSPECIFIED = {"0.0.0.0", "::"}  # binding on every interface is local; connecting there is loopback

_real = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "sendto": socket.socket.sendto,
    "sendmsg": socket.socket.sendmsg,
    "getaddrinfo": socket.getaddrinfo,
    "gethostbyname": socket.gethostbyname,
    "gethostbyname_ex": socket.gethostbyname_ex,
}


class NetworkRefusedError(RuntimeError):
    """A test (or a process it started) tried to reach something other than this machine."""


def is_local_host(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", errors="replace")
    host = str(host).strip("[]").lower()
    if host in _LOOPBACK_NAMES or host in _UNSPECIFIED or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_local_address(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX paths
        return True
    return is_local_host(address[0])


def _refuse(what: str, target: Any) -> NetworkRefusedError:
    return NetworkRefusedError(f"tests must not touch the network ({what} {target!r})")


def _connect(self: socket.socket, address: Any) -> Any:
    if not _is_local_address(address):
        raise _refuse("tried to connect to", address)
    return _real["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local_address(address):
        raise _refuse("tried to connect to", address)
    return _real["connect_ex"](self, address)


def _sendto(self: socket.socket, data: Any, *args: Any) -> Any:
    address = args[-1]  # sendto(data, address) or sendto(data, flags, address)
    if not _is_local_address(address):
        raise _refuse("tried to send a datagram to", address)
    return _real["sendto"](self, data, *args)


def _sendmsg(
    self: socket.socket, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None
) -> Any:
    if address is not None and not _is_local_address(address):
        raise _refuse("tried to send a datagram to", address)
    if address is None:
        return _real["sendmsg"](self, buffers, ancdata, flags)
    return _real["sendmsg"](self, buffers, ancdata, flags, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not is_local_host(host):
        raise _refuse("tried to look up the name", host)
    return _real["getaddrinfo"](host, *args, **kwargs)


def _gethostbyname(host: str) -> str:
    if not is_local_host(host):
        raise _refuse("tried to look up the name", host)
    return _real["gethostbyname"](host)  # type: ignore[no-any-return]


def _gethostbyname_ex(host: str) -> Any:
    if not is_local_host(host):
        raise _refuse("tried to look up the name", host)
    return _real["gethostbyname_ex"](host)


GUARDS: dict[tuple[Any, str], Any] = {
    (socket.socket, "connect"): _connect,
    (socket.socket, "connect_ex"): _connect_ex,
    (socket.socket, "sendto"): _sendto,
    (socket.socket, "sendmsg"): _sendmsg,
    (socket, "getaddrinfo"): _getaddrinfo,
    (socket, "gethostbyname"): _gethostbyname,
    (socket, "gethostbyname_ex"): _gethostbyname_ex,
}


def install() -> None:
    """Install every guard for the rest of this process (child processes: from sitecustomize)."""
    for (owner, name), guard in GUARDS.items():
        setattr(owner, name, guard)
