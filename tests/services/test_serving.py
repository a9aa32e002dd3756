"""``geodesk serve`` on 127.0.0.1 (ephemeral ports) with the tiny model: protocol, limits, queue, cancel.

The server runs in a thread (``ChatServer.start``) around one hf backend loaded once for the module;
one test runs the real ``geodesk serve`` command in a subprocess. Where a test needs the model to be
busy at a known moment, :class:`GatedBackend` wraps the real hf backend and holds a call at a gate:
the answers still come from the tiny model.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from geodesk.engine.backends.base import (
    ChatMessage,
    GenerationResult,
    GenerationSettings,
    TokenCallback,
)
from geodesk.engine.backends.hf import HFBackend
from geodesk.services.serving import ChatServer, ServeConfig, ServeLimits, UnsafeServeConfigError

WAIT_S = 60.0  # upper bound for waiting on a condition; never a speed assertion


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def photo(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (90, 60)) -> Image.Image:
    image = Image.new("RGB", size, colour)
    image.paste((20, 160, 40), (10, 10, 40, 30))
    return image


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def first_turn(image: Image.Image | None = None) -> list[ChatMessage]:
    return [
        ChatMessage("system", "You are a geolocation expert."),
        ChatMessage("user", "<image>\nWhere is this photo taken? Answer in json.", (image or photo(),)),
    ]


def openai_body(max_tokens: int = 12, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": "tiny-llava",
        "messages": [
            {"role": "system", "content": "You are a geolocation expert."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": data_url(photo())}},
                    {"type": "text", "text": "Where is this photo taken? Answer in json."},
                ],
            },
        ],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }


class GatedBackend:
    """The real hf backend with two gates, so a test knows what the model is doing when.

    ``start_gate``: a call waits here before it reaches the model. ``hold_after_first_token``: after
    the first streamed piece the call waits until its cancel event is set (or ``release`` is set).
    Every result is recorded.
    """

    def __init__(self, inner: HFBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.identity = inner.identity
        self.max_images_per_message = inner.max_images_per_message
        self.start_gate = threading.Event()
        self.start_gate.set()
        self.entered = threading.Event()
        self.hold_after_first_token = False
        self.release = threading.Event()
        self.results: list[GenerationResult] = []
        self.cancels: list[threading.Event | None] = []

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        self.cancels.append(cancel)
        self.entered.set()
        assert self.start_gate.wait(WAIT_S), "the test never opened the start gate"
        seen = 0

        def forward(piece: str) -> None:
            nonlocal seen
            seen += 1
            if on_token is not None:
                on_token(piece)
            if seen == 1 and self.hold_after_first_token:
                deadline = time.monotonic() + WAIT_S
                while not self.release.is_set() and not (cancel is not None and cancel.is_set()):
                    assert time.monotonic() < deadline, "nobody cancelled or released the held call"
                    time.sleep(0.005)

        result = self.inner.generate(messages, settings, forward, cancel)
        self.results.append(result)
        return result

    def close(self) -> None:
        """The inner backend belongs to the module fixture."""


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path) -> HFBackend:
    return HFBackend(tiny_model_dir)


@pytest.fixture
def serve(hf: HFBackend) -> Iterator[Callable[..., ChatServer]]:
    servers: list[ChatServer] = []

    def start(backend: Any = None, **config: Any) -> ChatServer:
        limits = config.pop("limits", ServeLimits())
        server = ChatServer(backend or hf, ServeConfig(host="127.0.0.1", port=0, limits=limits, **config))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.shutdown(abort_connections=True)


def request(
    server: ChatServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_S)
    try:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def sse_documents(raw: bytes) -> list[Any]:
    """The data payloads of a server-sent event stream ("[DONE]" kept as a string)."""
    out: list[Any] = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


# ---------------------------------------------------------------- protocol


def test_chat_completion_with_an_image_matches_the_backend(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    server = serve()
    status, _, body = request(server, "POST", "/v1/chat/completions", openai_body(max_tokens=12))
    assert status == 200, body
    document = json.loads(body)
    direct = hf.generate(first_turn(), GenerationSettings(max_new_tokens=12))
    assert document["object"] == "chat.completion" and document["model"] == "tiny-llava"
    choice = document["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": direct.text}
    assert choice["finish_reason"] == "length"  # the tiny model never emits its end token
    assert document["usage"] == {
        "prompt_tokens": direct.prompt_tokens,
        "completion_tokens": 12,
        "total_tokens": direct.prompt_tokens + 12,
    }
    assert server.stats.as_dict()["completed"] == 1


def test_streamed_chunks_concatenate_to_the_non_streamed_answer(serve: Callable[..., ChatServer]) -> None:
    server = serve()
    _, _, whole = request(server, "POST", "/v1/chat/completions", openai_body(max_tokens=20))
    expected = json.loads(whole)["choices"][0]["message"]["content"]
    body = openai_body(max_tokens=20, stream=True, stream_options={"include_usage": True})
    status, headers, raw = request(server, "POST", "/v1/chat/completions", body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = sse_documents(raw)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == expected
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "length" and set(finishes[:-1]) == {None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 20


def test_models_and_health(serve: Callable[..., ChatServer], hf: HFBackend) -> None:
    server = serve()
    status, _, body = request(server, "GET", "/v1/models")
    assert status == 200
    (entry,) = json.loads(body)["data"]
    assert entry["id"] == "tiny-llava" and entry["object"] == "model"
    assert entry["geodesk"]["sha256"] == hf.identity.sha256
    assert entry["geodesk"]["version"] == hf.identity.version
    assert entry["geodesk"]["max_images_per_message"] == hf.max_images_per_message
    status, _, body = request(server, "GET", "/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["queue"]["capacity"] == 8
    status, _, body = request(server, "GET", "/v2/nothing")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_api_key_is_enforced(serve: Callable[..., ChatServer]) -> None:
    server = serve(api_key="s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        status, got, body = request(server, "GET", "/v1/models", headers=headers)
        assert status == 401 and got["www-authenticate"] == "Bearer"
        assert json.loads(body)["error"]["type"] == "authentication_error"
        status, _, _ = request(server, "POST", "/v1/chat/completions", openai_body(), headers=headers)
        assert status == 401
    good = {"Authorization": "Bearer s3cret"}
    assert request(server, "GET", "/v1/models", headers=good)[0] == 200
    assert request(server, "POST", "/v1/chat/completions", openai_body(max_tokens=2), headers=good)[0] == 200
    assert request(server, "GET", "/health")[0] == 200  # liveness stays open, without model details


def _with_image(url: str) -> dict[str, Any]:
    body = openai_body()
    body["messages"][1]["content"][0]["image_url"]["url"] = url
    return body


def _with_images(n: int) -> dict[str, Any]:
    body = openai_body()
    parts = [{"type": "image_url", "image_url": {"url": data_url(photo())}} for _ in range(n)]
    body["messages"][1]["content"] = [*parts, {"type": "text", "text": "Where?"}]
    return body


@pytest.mark.parametrize(
    ("name", "make_body", "status", "code"),
    [
        ("too many pixels", lambda: _with_image(data_url(photo(size=(120, 100)))), 400, "image_too_large"),
        (
            "too many bytes",
            lambda: _with_image(data_url(photo(size=(100, 100)), "BMP")),
            400,
            "image_too_large",
        ),
        ("more images than the model takes", lambda: _with_images(3), 400, "too_many_images"),
        ("max_tokens above the limit", lambda: openai_body(max_tokens=65), 400, "max_tokens_too_large"),
        ("a remote image URL", lambda: _with_image("https://example.com/a.jpg"), 400, "remote_image_url"),
        ("a file: image URL", lambda: _with_image("file:///etc/passwd"), 400, "remote_image_url"),
        ("an unknown model", lambda: {**openai_body(), "model": "gpt-4o"}, 404, "model_not_found"),
    ],
)
def test_limits_and_bad_requests_get_openai_errors(
    serve: Callable[..., ChatServer],
    name: str,
    make_body: Callable[[], dict[str, Any]],
    status: int,
    code: str,
) -> None:
    limits = ServeLimits(max_image_pixels=100 * 100, max_image_bytes=20_000, max_tokens=64, max_images=4)
    server = serve(limits=limits)
    got, _, body = request(server, "POST", "/v1/chat/completions", make_body())
    error = json.loads(body)["error"]
    assert got == status, (name, error)
    assert error["code"] == code and error["message"]
    assert server.stats.as_dict()["completed"] == 0


def test_body_size_json_and_conversation_checks(serve: Callable[..., ChatServer]) -> None:
    server = serve(limits=ServeLimits(max_body_bytes=4096))
    status, _, body = request(server, "POST", "/v1/chat/completions", raw=b"{" + b" " * 5000 + b"}")
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    status, _, body = request(server, "POST", "/v1/chat/completions", raw=b"{not json")
    assert status == 400 and "not valid JSON" in json.loads(body)["error"]["message"]
    ends_with_answer = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    }
    status, _, body = request(server, "POST", "/v1/chat/completions", ends_with_answer)
    assert status == 400 and "end with a user message" in json.loads(body)["error"]["message"]
    placeholder = {"messages": [{"role": "user", "content": "look: <image>"}]}
    status, _, body = request(server, "POST", "/v1/chat/completions", placeholder)
    assert status == 400 and "reserved" in json.loads(body)["error"]["message"]


# ---------------------------------------------------------------- queue and cancel


def _post_in_thread(server: ChatServer, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(
        target=lambda: out.append(request(server, "POST", "/v1/chat/completions", body))
    )
    thread.start()
    return thread, out


def test_a_full_queue_answers_503_with_retry_after(serve: Callable[..., ChatServer], hf: HFBackend) -> None:
    gated = GatedBackend(hf)
    gated.start_gate.clear()
    server = serve(gated, limits=ServeLimits(queue_size=1), retry_after_s=3)
    running, running_out = _post_in_thread(server, openai_body(max_tokens=3))
    assert gated.entered.wait(WAIT_S)  # the worker holds request 1 at the gate
    queued, queued_out = _post_in_thread(server, openai_body(max_tokens=3))
    wait_until(lambda: server.worker.waiting == 1, "the second request to be queued")
    status, headers, body = request(server, "POST", "/v1/chat/completions", openai_body(max_tokens=3))
    assert status == 503 and headers["retry-after"] == "3"
    assert json.loads(body)["error"]["code"] == "server_busy"
    health = json.loads(request(server, "GET", "/health")[2])
    assert health["busy"] is True and health["queue"]["waiting"] == 1
    gated.start_gate.set()
    running.join(WAIT_S)
    queued.join(WAIT_S)
    assert running_out[0][0] == 200 and queued_out[0][0] == 200
    assert server.stats.as_dict()["rejected_busy"] == 1


def test_client_disconnect_mid_stream_cancels_the_generation(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    gated = GatedBackend(hf)
    gated.hold_after_first_token = True
    server = serve(gated)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
    payload = json.dumps(openai_body(max_tokens=40, stream=True)).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    received = b""
    while b'"content": "' not in received.split(b"\r\n\r\n", 1)[-1].replace(b'"content": ""', b""):
        chunk = sock.recv(4096)
        assert chunk, "the server closed the stream before the first token"
        received += chunk
    sock.close()  # the client goes away after the first token
    wait_until(lambda: len(gated.results) == 1, "the generation to end")
    result = gated.results[0]
    assert result.cancelled and result.finish_reason == "cancelled"
    assert 1 <= result.answer_tokens < 40
    wait_until(lambda: server.stats.as_dict()["cancelled"] == 1, "the server to count the cancel")


def test_binding_beyond_loopback_needs_a_key_or_an_explicit_override(
    hf: HFBackend, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(UnsafeServeConfigError, match="without an API key"):
        ChatServer(hf, ServeConfig(host="0.0.0.0", port=0))
    with caplog.at_level(logging.WARNING, logger="geodesk.serve"):
        server = ChatServer(hf, ServeConfig(host="0.0.0.0", port=0, allow_no_api_key=True))
    server.shutdown()
    assert any("WITHOUT an API key" in r.getMessage() for r in caplog.records)
    keyed = ChatServer(hf, ServeConfig(host="0.0.0.0", port=0, api_key="k"))
    keyed.shutdown()


# ---------------------------------------------------------------- the real command


def test_geodesk_serve_command_serves_and_a_killed_server_is_reported(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """``geodesk serve`` as a subprocess; the remote backend reads from it; then the process is killed
    mid-answer (SIGSTOP at the first token, so it cannot finish first, then SIGKILL)."""
    from geodesk.engine.backends.remote import (
        EndpointUnavailableError,
        RemoteBackend,
        RemoteOptions,
        ServerGoneError,
    )

    env = {**os.environ, "GEODESK_WORKSPACE": str(tmp_path / "ws"), "PYTHONUNBUFFERED": "1"}
    code = "import sys; from geodesk.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "serve", "--model", str(tiny_model_dir), "--port", "0", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        started = json.loads(line)
        assert started["url"].startswith("http://127.0.0.1:") and started["model"] == "tiny-llava"
        remote = RemoteBackend(started["url"], RemoteOptions(retries=0))
        assert remote.identity.sha256 == started["sha256"]
        short = remote.generate(first_turn(), GenerationSettings(max_new_tokens=5))
        assert short.answer_tokens == 5

        pieces: list[str] = []

        def freeze_server(piece: str) -> None:
            pieces.append(piece)
            if len(pieces) == 1:
                os.kill(proc.pid, signal.SIGSTOP)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(WAIT_S)

        with pytest.raises(ServerGoneError, match="went away in the middle of the answer") as caught:
            remote.generate(first_turn(), GenerationSettings(max_new_tokens=1000), on_token=freeze_server)
        assert caught.value.partial_text == "".join(pieces) and caught.value.partial_text
        with pytest.raises(EndpointUnavailableError, match="did not answer after 1 attempt"):
            remote.generate(first_turn(), GenerationSettings(max_new_tokens=5))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT_S)
