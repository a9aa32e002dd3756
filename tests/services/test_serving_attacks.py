"""Attacks on ``geodesk serve`` that a security review reproduced, each kept as a test (tiny model).

A web page driving the keyless loopback server (plain-text and form posts, DNS rebinding, CORS), a
non-loopback bind without a key, prompts longer than the model's context, parser crashes (deep JSON,
huge numbers and seeds), internal error text, images decoded before the queue check, slow clients
(slowloris headers and bodies), oversized headers, chunked bodies, and the API key taken from a file
or the environment instead of the process list.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from geodesk.cli import main as cli_main
from geodesk.cli._backend import api_key_from_args
from geodesk.cli._common import CliError
from geodesk.engine.backends.base import (
    BackendError,
    ChatMessage,
    GenerationResult,
    GenerationSettings,
    Role,
    TokenCallback,
)
from geodesk.engine.backends.hf import HFBackend
from geodesk.services.serving import ChatServer, HostPolicy, ServeLimits, host_header_name
from tests.services import test_serving
from tests.services.test_serving import WAIT_S, GatedBackend, openai_body, request, wait_until

# The tiny model and the server factory of the protocol tests.
hf = test_serving.hf
serve = test_serving.serve


class CountingBackend:
    """The hf backend, recording whether the model was ever asked to generate."""

    def __init__(self, inner: HFBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.identity = inner.identity
        self.max_images_per_message = inner.max_images_per_message
        self.calls = 0

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    def count_prompt_tokens(self, conversation: Sequence[tuple[Role, str]]) -> int:
        return self.inner.count_prompt_tokens(conversation)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        self.calls += 1
        return self.inner.generate(messages, settings, on_token, cancel)

    def close(self) -> None:
        """The inner backend belongs to the module fixture."""


class FailingBackend(CountingBackend):
    """Raises an error whose text must never reach the client."""

    def generate(self, *args: Any, **kwargs: Any) -> GenerationResult:
        raise RuntimeError("Overflow at /home/analyst/secret/weights.safetensors line 42")


def raw_exchange(server: ChatServer, data: bytes, wait_s: float = WAIT_S) -> bytes:
    """Send raw bytes, return everything the server sends until it closes (or ``wait_s``)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait_s) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


# ---------------------------------------------------------------- web pages driving the server


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_posts_a_browser_sends_without_asking_are_refused(
    serve: Callable[..., ChatServer], hf: HFBackend, content_type: str | None
) -> None:
    backend = CountingBackend(hf)
    server = serve(backend)
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    status, got, body = request(server, "POST", "/v1/chat/completions", openai_body(), headers=headers)
    assert status == 415 and json.loads(body)["error"]["code"] == "unsupported_media_type"
    assert backend.calls == 0 and "access-control-allow-origin" not in got


def test_dns_rebinding_host_names_are_refused(serve: Callable[..., ChatServer], hf: HFBackend) -> None:
    backend = CountingBackend(hf)
    server = serve(backend)
    for path, method, body in (("/v1/models", "GET", None), ("/v1/chat/completions", "POST", openai_body())):
        status, _, raw = request(
            server, method, path, body, headers={"Host": f"attacker.example:{server.port}"}
        )
        assert status == 421 and json.loads(raw)["error"]["code"] == "invalid_host"
    assert backend.calls == 0
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        assert request(server, "GET", "/v1/models", headers={"Host": host})[0] == 200
    aliased = serve(backend, allowed_hosts=("gpu1.lab",))
    assert request(aliased, "GET", "/v1/models", headers={"Host": "GPU1.lab:8000"})[0] == 200


def test_host_policy_and_header_parsing() -> None:
    assert host_header_name("[::1]:8000") == "::1" and host_header_name("Example.COM.") == "example.com"
    assert host_header_name("a b") is None and host_header_name("x:80:90") is None
    assert host_header_name("user@evil:80") is None
    loopback = HostPolicy("127.0.0.1")
    assert loopback.allows("127.0.0.1:1") and loopback.allows("[::1]:1") and loopback.allows("LOCALHOST")
    assert not loopback.allows("10.0.0.5:8000") and not loopback.allows(None) and not loopback.allows("")
    everywhere = HostPolicy("0.0.0.0")
    assert everywhere.allows("10.0.0.5:8000") and everywhere.allows("[fe80::1]:8000")
    assert not everywhere.allows("rebind.attacker.example")
    assert HostPolicy("10.0.0.5").allows("10.0.0.5:8000") and not HostPolicy("10.0.0.5").allows("10.0.0.6")


def test_no_cors_headers_are_sent(serve: Callable[..., ChatServer]) -> None:
    server = serve()
    origin = {"Origin": "https://attacker.example"}
    status, got, _ = request(server, "OPTIONS", "/v1/chat/completions", headers=origin)
    assert status == 405 and not any(k.startswith("access-control-") for k in got)
    status, got, _ = request(
        server, "POST", "/v1/chat/completions", openai_body(max_tokens=2), headers=origin
    )
    assert status == 200 and not any(k.startswith("access-control-") for k in got)


# ---------------------------------------------------------------- prompt length


def _long_prompt(characters: int, stream: bool = False) -> dict[str, Any]:
    words = ("road sign pole bollard " * (characters // 23 + 1))[:characters]
    return {"messages": [{"role": "user", "content": words}], "max_tokens": 4, "stream": stream}


@pytest.mark.parametrize("stream", [False, True])
def test_a_prompt_beyond_the_context_is_refused_before_generating(
    serve: Callable[..., ChatServer], hf: HFBackend, stream: bool
) -> None:
    backend = CountingBackend(hf)
    server = serve(backend)
    status, _, body = request(server, "POST", "/v1/chat/completions", _long_prompt(600_000, stream))
    error = json.loads(body)["error"]
    assert status == 400 and error["code"] == "context_length_exceeded"
    assert str(hf.context_window) in error["message"] and backend.calls == 0
    assert request(server, "POST", "/v1/chat/completions", _long_prompt(200, stream))[0] == 200


def test_a_backend_without_a_token_count_refuses_in_generate_before_the_stream(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    gated = GatedBackend(hf)  # no count_prompt_tokens: the hf backend's own check answers
    server = serve(gated)
    status, headers, body = request(server, "POST", "/v1/chat/completions", _long_prompt(30_000, True))
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "context_length_exceeded"
    assert gated.results == []  # the hf backend raised before its model ran


# ---------------------------------------------------------------- parser crashes and leaks


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("200,000-deep JSON", b'{"messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        ("a 5000-digit number", b'{"max_tokens": ' + b"7" * 5000 + b', "messages": []}'),
        ("invalid UTF-8", b'{"messages": "\xff\xfe"}'),
        ("NaN temperature", b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}'),
        ("1e999 top_p", b'{"messages": [{"role": "user", "content": "x"}], "top_p": 1e999}'),
    ],
)
def test_hostile_bodies_get_a_400_and_the_server_stays_up(
    serve: Callable[..., ChatServer], name: str, raw: bytes
) -> None:
    server = serve(limits=ServeLimits(max_body_bytes=1_000_000))
    status, _, body = request(server, "POST", "/v1/chat/completions", raw=raw)
    error = json.loads(body)["error"]
    assert status == 400, (name, error)
    assert "Traceback" not in error["message"] and "Exceeds the limit" not in error["message"]
    assert request(server, "GET", "/health")[0] == 200


def test_a_huge_seed_is_a_400_not_a_500_with_internals(serve: Callable[..., ChatServer]) -> None:
    server = serve()
    for seed in (10**30, -1, 2**64):
        status, _, body = request(
            server, "POST", "/v1/chat/completions", openai_body(max_tokens=2, seed=seed)
        )
        error = json.loads(body)["error"]
        assert status == 400 and error["param"] == "seed" and "Overflow" not in error["message"]
    assert (
        request(server, "POST", "/v1/chat/completions", openai_body(max_tokens=2, seed=2**63 - 1))[0] == 200
    )


def test_backend_failures_never_echo_internal_text(serve: Callable[..., ChatServer], hf: HFBackend) -> None:
    server = serve(FailingBackend(hf))
    for stream in (False, True):
        status, _, body = request(server, "POST", "/v1/chat/completions", openai_body(stream=stream))
        error = json.loads(body)["error"]
        assert status == 500 and error["code"] == "generation_failed"
        assert "secret" not in body.decode() and "Overflow" not in body.decode()


def test_images_are_decoded_only_after_the_queue_check(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    gated = GatedBackend(hf)
    gated.start_gate.clear()
    server = serve(gated, limits=ServeLimits(queue_size=1))
    threads = [
        threading.Thread(target=request, args=(server, "POST", "/v1/chat/completions", openai_body(3)))
        for _ in range(2)
    ]
    threads[0].start()
    assert gated.entered.wait(WAIT_S)
    threads[1].start()
    wait_until(lambda: server.worker.waiting == 1, "a queued request")
    # Valid base64, not an image: decoding it would answer 400; the queue answers first.
    garbage = openai_body()
    garbage["messages"][1]["content"][0]["image_url"]["url"] = "data:image/png;base64," + "QUJD" * 1000
    assert request(server, "POST", "/v1/chat/completions", garbage)[0] == 503
    gated.start_gate.set()
    for thread in threads:
        thread.join(WAIT_S)
    status, _, body = request(server, "POST", "/v1/chat/completions", garbage)
    assert status == 400 and "cannot be decoded" in json.loads(body)["error"]["message"]


# ---------------------------------------------------------------- slow and oversized clients


def test_slowloris_headers_are_cut_off_and_free_their_connection_place(
    serve: Callable[..., ChatServer],
) -> None:
    limits = ServeLimits(header_timeout_s=0.5, max_connections=3)
    server = serve(limits=limits)
    slow = [socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) for _ in range(3)]
    for sock in slow:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    wait_until(lambda: server.open_connections == 3, "the slow connections to be open")
    status, _, _ = request(server, "GET", "/health")  # a fourth connection: over the limit
    assert status == 503
    for sock in slow:  # a header byte every 0.1 s does not keep the connection alive
        deadline = time.monotonic() + WAIT_S
        closed = False
        while not closed and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                sock.sendall(b"X")
            sock.settimeout(0.1)
            try:
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed, "the server kept a trickling connection open"
        sock.close()
    wait_until(lambda: server.open_connections == 0, "the slow connections to be gone")
    assert request(server, "GET", "/health")[0] == 200


def test_a_body_that_never_arrives_gets_408(serve: Callable[..., ChatServer]) -> None:
    server = serve(limits=ServeLimits(body_timeout_s=0.5))
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 5000\r\n\r\n{"messages"'
    )
    raw = raw_exchange(server, head)
    assert status_of(raw) == 408 and b"request_timeout" in raw


def test_oversized_headers_get_431_and_chunked_bodies_411(serve: Callable[..., ChatServer]) -> None:
    server = serve(limits=ServeLimits(max_header_bytes=2048))
    huge = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 10_000 + b"\r\n\r\n"
    raw = raw_exchange(server, huge)
    assert status_of(raw) == 431 and b"headers_too_large" in raw
    chunked = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    assert status_of(raw_exchange(server, chunked)) == 411
    assert request(server, "GET", "/health")[0] == 200


def test_the_key_is_checked_before_the_body_is_read(serve: Callable[..., ChatServer]) -> None:
    server = serve(api_key="s3cret")
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer wrong\r\nContent-Length: 50000000\r\n\r\n"
    )
    raw = raw_exchange(server, head)  # no body sent at all: the answer comes anyway
    assert status_of(raw) == 401 and b"connection: close" in raw.lower()


# ---------------------------------------------------------------- the API key outside the process list


def test_api_key_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n", encoding="utf-8")
    key_file.chmod(0o600)
    monkeypatch.setenv("GEODESK_API_KEY", "from-env")
    assert api_key_from_args(argparse.Namespace(api_key_file=str(key_file), api_key=None)) == "from-file"
    assert api_key_from_args(argparse.Namespace(api_key_file=None, api_key=None)) == "from-env"
    assert api_key_from_args(argparse.Namespace(api_key_file=None, api_key="cli")) == "cli"
    assert "process list" in capsys.readouterr().err
    key_file.chmod(0o644)
    api_key_from_args(argparse.Namespace(api_key_file=str(key_file), api_key=None))
    assert "chmod 600" in capsys.readouterr().err
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(CliError, match="is empty"):
        api_key_from_args(argparse.Namespace(api_key_file=str(tmp_path / "empty"), api_key=None))
    with pytest.raises(CliError, match="cannot read"):
        api_key_from_args(argparse.Namespace(api_key_file=str(tmp_path / "nope"), api_key=None))


def test_serve_refuses_an_open_bind_without_a_key_before_loading_the_model(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GEODESK_API_KEY", raising=False)
    code = cli_main(
        ["serve", "--model", str(workspace / "no-such-model"), "--host", "0.0.0.0", "--port", "0"]
    )
    assert code != 0 and "without an API key" in capsys.readouterr().err


def test_remote_backend_reads_the_key_from_the_environment(
    serve: Callable[..., ChatServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    from geodesk.services.models import BackendRequest, open_backend

    server = serve(api_key="env-key")
    monkeypatch.setenv("GEODESK_API_KEY", "env-key")
    args = argparse.Namespace(api_key_file=None, api_key=None)
    remote = open_backend(
        Path(), BackendRequest(backend="remote", endpoints=(server.url,), api_key=api_key_from_args(args))
    )
    assert remote.identity.name == "tiny-llava"
    with pytest.raises(BackendError, match="refused"):
        open_backend(Path(), BackendRequest(backend="remote", endpoints=(server.url,), api_key="bad"))
