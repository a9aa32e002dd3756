"""``geodesk serve``: an OpenAI-compatible chat-completions server in front of one :class:`Backend`.

Field teams run it on a GPU workstation and point other geodesk installs (the ``remote`` backend) or
any OpenAI client at it. Endpoints:

- ``POST /v1/chat/completions``: messages whose content is a string or a list of parts
  (``{"type": "text"}``, ``{"type": "image_url", "image_url": {"url": "data:image/...;base64,..."}}``);
  each image part becomes an ``<image>`` placeholder + a PIL image in a :class:`ChatMessage`. Remote
  image URLs are refused (geodesk is offline). ``stream: true`` answers with server-sent events in
  OpenAI's ``chat.completion.chunk`` format ending with ``data: [DONE]``; otherwise one JSON document
  with usage counts.
- ``GET /v1/models``: the served model, with geodesk's package identity (version, SHA-256).
- ``GET /health``: liveness and queue occupancy (no authentication, no model details).

The model runs one generation at a time: HTTP handler threads put jobs on a bounded queue served by a
single worker thread; a full queue answers 503 with ``Retry-After``. A streaming client that goes away
(socket closed) cancels its generation through the backend's cancel event, also while it is queued.

The HTTP stack is the standard library's ``ThreadingHTTPServer`` (docs/adr/0009-serving.md): zero
dependencies, and one model worker means no need for an async server.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import io
import ipaddress
import json
import logging
import queue
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from geodesk.engine.backends.base import (
    IMAGE_PLACEHOLDER,
    Backend,
    BackendError,
    ChatMessage,
    GenerationResult,
    GenerationSettings,
    Role,
)

log = logging.getLogger("geodesk.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
_POLL_S = 0.05  # how often a waiting handler checks whether its client is still connected


@dataclass(frozen=True, slots=True)
class ServeLimits:
    """What one request may ask for. Exceeding a limit answers 400 (413 for the body size)."""

    max_image_pixels: int = 36_000_000  # width * height of one decoded image (6000 x 6000)
    max_image_bytes: int = 20 * 1024 * 1024  # one image, after base64 decoding
    max_images: int = 4  # per request (and at most the model's own per-message limit per message)
    max_tokens: int = 1024  # largest max_tokens a client may ask for
    default_max_tokens: int = 512  # when the client does not say
    max_messages: int = 64
    max_body_bytes: int = 64 * 1024 * 1024
    queue_size: int = 8  # requests waiting behind the running one; more get 503

    def __post_init__(self) -> None:
        for name in ("max_image_pixels", "max_image_bytes", "max_images", "max_tokens", "max_messages"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: an ephemeral port (see ChatServer.port)
    api_key: str | None = None  # when set, every endpoint but /health needs "Authorization: Bearer KEY"
    limits: ServeLimits = field(default_factory=ServeLimits)
    model_name: str | None = None  # the id clients send as "model"; default: the package name
    retry_after_s: int = 2  # the Retry-After a 503 carries
    socket_timeout_s: float = 60.0  # a client that sends nothing / reads nothing this long is dropped


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RequestError(Exception):
    """A request the server refuses; becomes an OpenAI-style error document."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def document(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


# ---------------------------------------------------------------- request parsing


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    settings: GenerationSettings
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk carries the usage counts
    model: str
    image_count: int


def decode_data_url(url: str, limits: ServeLimits, where: str) -> Image.Image:
    """A ``data:image/...;base64,...`` URL as a loaded PIL image, within the size limits."""
    if url.startswith(("http://", "https://", "ftp://", "file:")):
        raise RequestError(
            400,
            f"{where}: geodesk serve works offline and does not fetch image URLs; send the image inline "
            "as a data URL (data:image/jpeg;base64,...)",
            code="remote_image_url",
            param=where,
        )
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise RequestError(
            400, f"{where}: expected a data URL of the form data:image/<type>;base64,<data>", param=where
        )
    # base64 grows data by 4/3: refuse before decoding when the encoded text alone is too big.
    if len(payload) > (limits.max_image_bytes * 4) // 3 + 4:
        raise RequestError(
            400,
            f"{where}: the image is larger than the server's limit of {limits.max_image_bytes} bytes",
            code="image_too_large",
            param=where,
        )
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{where}: the image data is not valid base64", param=where) from None
    if len(raw) > limits.max_image_bytes:
        raise RequestError(
            400,
            f"{where}: the image has {len(raw)} bytes; the server's limit is {limits.max_image_bytes}",
            code="image_too_large",
            param=where,
        )
    try:
        image = Image.open(io.BytesIO(raw))
        # Image.open reads only the header: check the pixel count before decoding (decompression bombs).
        width, height = image.size
        if width * height > limits.max_image_pixels:
            raise RequestError(
                400,
                f"{where}: the image is {width}x{height} = {width * height} pixels; the server's limit is "
                f"{limits.max_image_pixels} pixels. Downscale it first.",
                code="image_too_large",
                param=where,
            )
        image.load()
    except RequestError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RequestError(400, f"{where}: the image cannot be decoded ({exc})", param=where) from None
    return image


def _message_content(
    content: Any, where: str, limits: ServeLimits, images: list[Image.Image]
) -> tuple[str, list[Image.Image]]:
    """Text with ``<image>`` placeholders and the message's images, from OpenAI content."""
    if content is None:
        return "", []
    if isinstance(content, str):
        parts: list[Any] = [{"type": "text", "text": content}]
    elif isinstance(content, list):
        parts = content
    else:
        raise RequestError(400, f"{where}.content must be a string or a list of parts", param=where)
    text: list[str] = []
    own: list[Image.Image] = []
    for j, part in enumerate(parts):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise RequestError(400, f"{at} must be an object with a 'type'", param=at)
        kind = part.get("type")
        if kind == "text":
            piece = part.get("text")
            if not isinstance(piece, str):
                raise RequestError(400, f"{at}.text must be a string", param=at)
            if IMAGE_PLACEHOLDER in piece:
                raise RequestError(
                    400,
                    f"{at}: the text contains {IMAGE_PLACEHOLDER!r}, which is reserved for images; send "
                    "images as image_url parts",
                    param=at,
                )
            text.append(piece)
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str):
                raise RequestError(400, f"{at}.image_url.url must be a string", param=at)
            if len(images) + len(own) >= limits.max_images:
                raise RequestError(
                    400,
                    f"the request carries more than {limits.max_images} images, the server's limit",
                    code="too_many_images",
                    param=at,
                )
            own.append(decode_data_url(url, limits, at))
            # The hf backend drops one newline after a placeholder (its chat template writes
            # "<image>\n"); adding it here makes the round trip exact whatever text follows.
            text.append(IMAGE_PLACEHOLDER + "\n")
        else:
            raise RequestError(
                400, f"{at}: content parts of type {kind!r} are not supported (use text, image_url)", param=at
            )
    return "".join(text), own


def _number(payload: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = payload.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(400, f"{key} must be a number between {low} and {high}", param=key)
    return float(value)


def parse_chat_request(
    payload: Any, limits: ServeLimits, model_name: str, max_images_per_message: int
) -> ChatRequest:
    """Validate an OpenAI chat-completions request body (already JSON-decoded)."""
    if not isinstance(payload, dict):
        raise RequestError(400, "the request body must be a JSON object")
    model = payload.get("model") or model_name
    if model != model_name:
        raise RequestError(
            404,
            f"this server serves the model {model_name!r}, not {model!r} (see GET /v1/models)",
            code="model_not_found",
            param="model",
        )
    raw_messages = payload.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RequestError(400, "messages must be a non-empty list", param="messages")
    if len(raw_messages) > limits.max_messages:
        raise RequestError(
            400, f"the conversation has {len(raw_messages)} messages; the limit is {limits.max_messages}"
        )
    messages: list[ChatMessage] = []
    images: list[Image.Image] = []
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise RequestError(400, f"{where} must be an object", param=where)
        role = raw.get("role")
        if role == "developer":  # OpenAI's newer name for the system role
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise RequestError(400, f"{where}.role {role!r} is not supported (system, user, assistant)")
        text, own = _message_content(raw.get("content"), where, limits, images)
        if len(own) > max_images_per_message:
            raise RequestError(
                400,
                f"{where} carries {len(own)} images; this model takes at most {max_images_per_message} "
                "per message",
                code="too_many_images",
                param=where,
            )
        try:
            role_name: Role = role
            messages.append(ChatMessage(role_name, text, tuple(own)))
        except BackendError as exc:
            raise RequestError(400, f"{where}: {exc}", param=where) from None
        images.extend(own)
    if messages[-1].role != "user":
        raise RequestError(400, "the conversation must end with a user message", param="messages")
    if payload.get("n", 1) != 1:
        raise RequestError(400, "n must be 1: the server returns one answer per request", param="n")
    if payload.get("stop"):
        raise RequestError(400, "stop sequences are not supported; the model stops at its end-of-turn token")
    max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if max_tokens is None:
        max_tokens = min(limits.default_max_tokens, limits.max_tokens)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise RequestError(400, "max_tokens must be a positive integer", param="max_tokens")
    if max_tokens > limits.max_tokens:
        raise RequestError(
            400,
            f"max_tokens {max_tokens} is above the server's limit of {limits.max_tokens}",
            code="max_tokens_too_large",
            param="max_tokens",
        )
    # Greedy unless the client asks for sampling: geodesk answers should be reproducible.
    temperature = _number(payload, "temperature", 0.0, 0.0, 2.0)
    top_p = _number(payload, "top_p", 1.0, 1e-6, 1.0)
    seed = payload.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(400, "seed must be an integer", param="seed")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "stream must be true or false", param="stream")
    options = payload.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    settings = GenerationSettings(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    return ChatRequest(tuple(messages), settings, stream, include_usage, model, len(images))


# ---------------------------------------------------------------- the model worker


class QueueFullError(Exception):
    """The bounded queue has no room: the client should retry later."""


@dataclass(eq=False)
class Job:
    """One generation travelling from a handler thread to the worker and back."""

    messages: Sequence[ChatMessage]
    settings: GenerationSettings
    cancel: threading.Event = field(default_factory=threading.Event)
    # Pieces of text as the backend streams them; None marks the end (result or error is then set).
    events: queue.SimpleQueue[str | None] = field(default_factory=queue.SimpleQueue)
    result: GenerationResult | None = None
    error: BaseException | None = None
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None

    def on_token(self, piece: str) -> None:
        self.events.put(piece)


class GenerationWorker:
    """One thread runs the backend; jobs wait in a bounded FIFO queue."""

    def __init__(self, backend: Backend, queue_size: int) -> None:
        self.backend = backend
        self.queue_size = queue_size
        self._jobs: queue.Queue[Job | None] = queue.Queue()  # bounded by submit()
        self._lock = threading.Lock()
        self._waiting = 0
        self.current: Job | None = None
        self._thread = threading.Thread(target=self._run, name="geodesk-serve-worker", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Jobs queued behind the running one."""
        with self._lock:
            return self._waiting

    @property
    def busy(self) -> bool:
        return self.current is not None

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._waiting >= self.queue_size:
                raise QueueFullError
            self._waiting += 1
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
                self.current = job
            try:
                if job.cancel.is_set():  # its client left while it waited: do not run it at all
                    job.error = ConnectionAbortedError("the client disconnected before the job started")
                else:
                    job.started = time.perf_counter()
                    job.result = self.backend.generate(job.messages, job.settings, job.on_token, job.cancel)
            except BaseException as exc:  # handed to the waiting handler thread, which reports it
                job.error = exc
            finally:
                with self._lock:
                    self.current = None
                job.events.put(None)

    def stop(self) -> None:
        """Cancel the running job, drop the waiting ones, end the thread."""
        current = self.current
        if current is not None:
            current.cancel.set()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.error = ConnectionAbortedError("the server is shutting down")
                job.events.put(None)
        self._jobs.put(None)
        self._thread.join(timeout=30)


@dataclass
class ServerStats:
    requests: int = 0
    completed: int = 0
    cancelled: int = 0  # the client went away mid-answer (or while queued)
    rejected_busy: int = 0  # 503: queue full
    rejected_invalid: int = 0  # 4xx
    failed: int = 0  # 500: the backend raised
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {
                "requests": self.requests,
                "completed": self.completed,
                "cancelled": self.cancelled,
                "rejected_busy": self.rejected_busy,
                "rejected_invalid": self.rejected_invalid,
                "failed": self.failed,
            }


# ---------------------------------------------------------------- HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    app: ChatServer

    def __init__(self, address: tuple[str, int], app: ChatServer) -> None:
        self.app = app
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)


class _ClientGoneError(Exception):
    """The client closed its connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; streams use chunked transfer encoding
    server_version = "geodesk-serve"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.app.config.socket_timeout_s)
        self.server.app._track(self.connection, add=True)
        # Stream chunks are small writes: without NODELAY, Nagle + delayed ACK hold each ~40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            self.close_connection = True  # the client went away between requests: nothing to report

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    # ------------------------------------------------ plumbing

    @property
    def app(self) -> ChatServer:
        return self.server.app

    def _send_json(self, status: int, document: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, error: RequestError) -> None:
        if error.status == 503:
            self.app.stats.add("rejected_busy")
        elif error.status >= 500:
            self.app.stats.add("failed")
        else:
            self.app.stats.add("rejected_invalid")
        self._send_json(error.status, error.document(), error.headers)

    def _authorised(self) -> bool:
        key = self.app.config.api_key
        if not key:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())

    def _require_auth(self) -> None:
        if not self._authorised():
            raise RequestError(
                401,
                "this server needs an API key: send 'Authorization: Bearer KEY' (geodesk: --api-key KEY)",
                kind="authentication_error",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _client_gone(self) -> bool:
        """True once the client closed the connection (readable with nothing to read = EOF)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
            return peeked == b""
        except (OSError, ValueError):
            return True

    # ------------------------------------------------ routes

    def do_GET(self) -> None:
        try:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health":
                self._send_json(200, self.app.health())
            elif path == "/v1/models":
                self._require_auth()
                self._send_json(200, self.app.models_document())
            else:
                raise RequestError(404, f"no such endpoint: GET {path}", code="not_found")
        except RequestError as exc:
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self) -> None:
        self.app.stats.add("requests")
        try:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path != "/v1/chat/completions":
                self.close_connection = True  # the body stays unread: do not reuse the connection
                raise RequestError(404, f"no such endpoint: POST {path}", code="not_found")
            self._require_auth_before_body()
            payload = self._read_json()
            request = parse_chat_request(
                payload,
                self.app.config.limits,
                self.app.model_name,
                self.app.backend.max_images_per_message,
            )
            self._complete(request)
        except RequestError as exc:
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError, _ClientGoneError):
            self.close_connection = True

    def _require_auth_before_body(self) -> None:
        try:
            self._require_auth()
        except RequestError:
            self.close_connection = True  # the body stays unread: do not reuse the connection
            raise

    def _read_json(self) -> Any:
        limits = self.app.config.limits
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise RequestError(411, "send the request body with a Content-Length (chunked is not accepted)")
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text) if length_text is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise RequestError(411, "the request needs a Content-Length header")
        if length > limits.max_body_bytes:
            self.close_connection = True  # refuse without reading it
            raise RequestError(
                413,
                f"the request body has {length} bytes; the server's limit is {limits.max_body_bytes}",
                code="request_too_large",
            )
        body = self.rfile.read(length)
        if len(body) != length:
            raise _ClientGoneError
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(400, f"the request body is not valid JSON ({exc})") from None

    # ------------------------------------------------ generation

    def _complete(self, request: ChatRequest) -> None:
        job = Job(request.messages, request.settings)
        try:
            self.app.worker.submit(job)
        except QueueFullError:
            raise RequestError(
                503,
                "the model is busy and its queue is full; retry after a few seconds",
                kind="server_error",
                code="server_busy",
                headers={"Retry-After": str(self.app.config.retry_after_s)},
            ) from None
        try:
            if request.stream:
                self._stream(job, request)
            else:
                self._answer(job, request)
        except (BrokenPipeError, ConnectionResetError, _ClientGoneError):
            job.cancel.set()
            self.app.stats.add("cancelled")
            raise

    def _events(self, job: Job) -> Iterator[str]:
        """The job's text pieces as they come; ends when the job ends; cancels it if the client leaves."""
        while True:
            try:
                piece = job.events.get(timeout=_POLL_S)
            except queue.Empty:
                if self._client_gone():
                    raise _ClientGoneError from None
                continue
            if piece is None:
                return
            yield piece

    def _outcome(self, job: Job) -> GenerationResult:
        if job.error is not None:
            if isinstance(job.error, ConnectionAbortedError):
                raise RequestError(503, str(job.error), kind="server_error", code="shutting_down")
            message = str(job.error) if isinstance(job.error, BackendError) else repr(job.error)
            log.error("generation failed: %s", message)
            raise RequestError(
                500, f"the model failed: {message}", kind="server_error", code="generation_failed"
            )
        assert job.result is not None
        return job.result

    def _answer(self, job: Job, request: ChatRequest) -> None:
        for _ in self._events(job):
            pass
        result = self._outcome(job)
        self.app.stats.add("completed")
        self._send_json(200, self.app.completion_document(result, request, job))

    def _stream(self, job: Job, request: ChatRequest) -> None:
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        started = False

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        for piece in self._events(job):
            if not started:
                self._start_stream()
                self._sse(chunk({"role": "assistant", "content": ""}, None))
                started = True
            self._sse(chunk({"content": piece}, None))
        try:
            result = self._outcome(job)
        except RequestError as exc:
            if not started:
                raise
            # Headers are out: report the failure in the stream, as vLLM does, and end it.
            self._send_error_event(exc)
            return
        if not started:
            self._start_stream()
            self._sse(chunk({"role": "assistant", "content": ""}, None))
        self._sse(chunk({}, _finish_reason(result)))
        if request.include_usage:
            usage_chunk = chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(result)
            self._sse(usage_chunk)
        self.app.stats.add("completed")  # counted before the client can see the end
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # the terminating zero-length chunk

    def _send_error_event(self, exc: RequestError) -> None:
        self.app.stats.add("failed")
        self._sse(exc.document())
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _sse(self, document: Any) -> None:
        self._write_chunk(b"data: " + json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()


def _finish_reason(result: GenerationResult) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def _usage(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.answer_tokens,
        "total_tokens": result.prompt_tokens + result.answer_tokens,
    }


class ChatServer:
    """The server object: bind in the constructor, then :meth:`serve_forever` or :meth:`start`."""

    def __init__(self, backend: Backend, config: ServeConfig | None = None) -> None:
        self.backend = backend
        self.config = config or ServeConfig()
        self.model_name = self.config.model_name or backend.identity.name
        self.stats = ServerStats()
        self.started_at = time.time()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if not is_loopback_host(self.config.host):
            keyless = "" if self.config.api_key else " WITHOUT an API key: anyone who reaches it can use it"
            log.warning("geodesk serve listens on %s, open to other machines%s", self.config.host, keyless)
        self.worker = GenerationWorker(backend, self.config.limits.queue_size)
        try:
            self.httpd = _HTTPServer((self.config.host, self.config.port), self)
        except OSError as exc:
            self.worker.stop()
            where = f"{self.config.host}:{self.config.port}"
            raise OSError(f"cannot listen on {where}: {exc.strerror or exc}") from exc

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ChatServer:
        """Serve from a background thread (tests, benchmarks, embedding in the app)."""
        self._thread = threading.Thread(target=self.serve_forever, name="geodesk-serve-http", daemon=True)
        self._thread.start()
        return self

    def shutdown(self, abort_connections: bool = False) -> None:
        """Stop accepting, cancel the running generation, close everything.

        ``abort_connections`` resets every open client connection at once (what a crash looks like to
        clients); otherwise handler threads finish their current write and see the cancel.
        """
        self.httpd.shutdown()
        self.httpd.server_close()
        if abort_connections:
            self.abort_connections()
        self.worker.stop()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def abort_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                # linger 0: close sends RST, like a process that died
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.shutdown(socket.SHUT_RDWR)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------ documents

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "busy": self.worker.busy,
            "queue": {"waiting": self.worker.waiting, "capacity": self.config.limits.queue_size},
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    def models_document(self) -> dict[str, Any]:
        identity = self.backend.identity
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model_name,
                    "object": "model",
                    "created": int(self.started_at),
                    "owned_by": "geodesk",
                    # geodesk's extension: the package identity, so remote sessions can record it.
                    "geodesk": {
                        "name": identity.name,
                        "version": identity.version,
                        "sha256": identity.sha256,
                        "backend": self.backend.name,
                        "max_images_per_message": self.backend.max_images_per_message,
                        # the prompt profile sessions on this model use (remote clients adopt it)
                        "profile": getattr(self.backend, "profile", "gaga"),
                        "limits": {
                            "max_tokens": self.config.limits.max_tokens,
                            "max_images": self.config.limits.max_images,
                            "max_image_pixels": self.config.limits.max_image_pixels,
                            "max_image_bytes": self.config.limits.max_image_bytes,
                        },
                    },
                }
            ],
        }

    def completion_document(self, result: GenerationResult, request: ChatRequest, job: Job) -> dict[str, Any]:
        waited = (job.started or job.submitted) - job.submitted
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.text},
                    "finish_reason": _finish_reason(result),
                }
            ],
            "usage": _usage(result),
            "geodesk": {
                "time_to_first_token_s": result.time_to_first_token_s,
                "total_time_s": result.total_time_s,
                "queue_wait_s": waited,
                "cached_prompt_tokens": result.cached_prompt_tokens,
            },
        }


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ChatRequest",
    "ChatServer",
    "GenerationWorker",
    "Job",
    "QueueFullError",
    "RequestError",
    "ServeConfig",
    "ServeLimits",
    "ServerStats",
    "decode_data_url",
    "is_loopback_host",
    "parse_chat_request",
]
