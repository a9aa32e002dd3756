"""``geodesk serve``: an OpenAI-compatible chat-completions server in front of one :class:`Backend`.

Field teams run it on a GPU workstation and point other geodesk installs (the ``remote`` backend) or
any OpenAI client at it. Endpoints:

- ``POST /v1/chat/completions``: messages whose content is a string or a list of parts
  (``{"type": "text"}``, ``{"type": "image_url", "image_url": {"url": "data:image/...;base64,..."}}``);
  each image part becomes an ``<image>`` placeholder + a PIL image in a :class:`ChatMessage`. Remote
  and ``file:`` image URLs are refused (geodesk is offline). ``stream: true`` answers with server-sent
  events in OpenAI's ``chat.completion.chunk`` format ending with ``data: [DONE]``; otherwise one JSON
  document with usage counts.
- ``GET /v1/models``: the served model, with geodesk's package identity (version, SHA-256).
- ``GET /health``: liveness and queue occupancy (no authentication, no model details).

Transport (docs/adr/0022-serve-asgi.md): a Starlette app under uvicorn's h11 protocol on one asyncio
event loop, so a connection costs a small object, not a thread. Connection and time limits: at most
``max_connections`` open connections (more get 503), request headers complete within
``header_timeout_s`` and at most ``max_header_bytes`` (431), a body within ``body_timeout_s`` (408),
idle keep-alive connections closed after ``keep_alive_s``.

Every request passes, in this order and before its body is read: the Host check (loopback names, the
configured host, ``allowed_hosts``: a page on another site that rebinds its DNS name to this machine is
refused), the API key (timing-safe), ``Content-Type: application/json`` (so a web page's plain-text or
form post, which a browser sends without asking, never reaches the model), then the body limits
(411 / 413). No CORS headers are sent, so browsers keep other sites from reading answers.

The model runs one generation at a time: requests take a place in a bounded queue served by a single
worker thread (a full queue answers 503 with ``Retry-After``); JSON parsing, the prompt-length check and
image decoding run in a small thread pool, images only once the request holds its queue place. A client
that goes away cancels its generation through the backend's cancel event, also while it is queued.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import hmac
import io
import ipaddress
import json
import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import h11
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from geodesk.engine.backends.base import (
    IMAGE_PLACEHOLDER,
    Backend,
    BackendError,
    ChatMessage,
    GenerationResult,
    GenerationSettings,
    PromptTooLongError,
    Role,
)
from geodesk.services.serve_config import (
    API_KEY_VARIABLE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServeConfig,
    ServeLimits,
)

log = logging.getLogger("geodesk.serve")

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
# torch.manual_seed takes a 64-bit value; OpenAI clients send small integers.
MAX_SEED = 2**63 - 1
_T = TypeVar("_T")


class UnsafeServeConfigError(ValueError):
    """The configuration would expose the model to other machines without a key."""


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_header_name(value: str) -> str | None:
    """The host part of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), lowercased."""
    value = value.strip().lower()
    if not value or any(c.isspace() or c in "/@?#\\" for c in value):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
    else:
        name, sep, port = value.partition(":")
        rest = sep + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name.rstrip(".") or None


class HostPolicy:
    """Which ``Host`` headers a request may carry (the DNS-rebinding defence).

    Always: loopback names and addresses. Plus the configured listen address and ``allowed_hosts``.
    Listening on every interface (0.0.0.0 / ::) also admits this machine's host names and any IP
    literal: a browser sends an IP-literal Host only to a page served from that address itself, so an
    address cannot be rebound the way a DNS name can.
    """

    def __init__(self, bind_host: str, allowed: Sequence[str] = ()) -> None:
        self.wildcard = bind_host in WILDCARD_HOSTS
        names = {n.lower().rstrip(".") for n in allowed if n}
        if not self.wildcard:
            names.add(bind_host.lower().strip("[]"))
        else:
            with contextlib.suppress(OSError):
                names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
        self.names = frozenset(names)

    def allows(self, header: str | None) -> bool:
        name = host_header_name(header or "")
        if name is None:
            return False
        if name in self.names or is_loopback_host(name):
            return True
        if self.wildcard:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False


class RequestError(Exception):
    """A request the server refuses; becomes an OpenAI-style error document.

    ``close``: answer with ``Connection: close`` (the body was not read, so the connection cannot carry
    another request).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        if close:
            self.headers["Connection"] = "close"

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


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image part checked for form and size but not decoded yet (decoding costs memory and CPU)."""

    where: str
    payload: str  # the base64 text of the data URL


@dataclass(frozen=True, slots=True)
class PendingMessage:
    role: Role
    parts: tuple[str | ImageRef, ...]  # text pieces and images, in order

    @property
    def text(self) -> str:
        # The hf backend drops one newline after a placeholder (its chat template writes "<image>\n");
        # adding it here makes the round trip exact whatever text follows.
        return "".join(IMAGE_PLACEHOLDER + "\n" if isinstance(p, ImageRef) else p for p in self.parts)

    @property
    def images(self) -> tuple[ImageRef, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImageRef))


@dataclass(frozen=True, slots=True)
class PendingChatRequest:
    """A validated request whose images are still base64 text: what the queue check needs."""

    messages: tuple[PendingMessage, ...]
    settings: GenerationSettings
    stream: bool
    include_usage: bool
    model: str

    @property
    def image_count(self) -> int:
        return sum(len(m.images) for m in self.messages)

    def conversation(self) -> list[tuple[Role, str]]:
        """(role, text with ``<image>`` placeholders): enough to count the prompt's tokens."""
        return [(m.role, m.text) for m in self.messages]

    def decode(self, limits: ServeLimits) -> ChatRequest:
        """Decode every image (within the limits) into the :class:`ChatRequest` the worker runs."""
        messages = []
        for i, pending in enumerate(self.messages):
            images = tuple(decode_image_payload(ref.payload, limits, ref.where) for ref in pending.images)
            try:
                messages.append(ChatMessage(pending.role, pending.text, images))
            except BackendError as exc:
                raise RequestError(400, f"messages[{i}]: {exc}", param=f"messages[{i}]") from None
        return ChatRequest(
            tuple(messages), self.settings, self.stream, self.include_usage, self.model, self.image_count
        )


def check_data_url(url: str, limits: ServeLimits, where: str) -> str:
    """The base64 payload of a ``data:image/...;base64,...`` URL, refused when remote or too large."""
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    if scheme in ("http", "https", "ftp", "file") or url.lstrip().startswith("//"):
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
    return payload


def decode_image_payload(payload: str, limits: ServeLimits, where: str) -> Image.Image:
    """Base64 image bytes as a loaded PIL image, within the byte and pixel limits."""
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
    except Exception:  # any decoder failure; its text names library internals, so it is not echoed
        log.info("%s: image decoding failed", where, exc_info=True)
        raise RequestError(
            400, f"{where}: the image cannot be decoded (damaged, or not a supported format)", param=where
        ) from None
    return image


def decode_data_url(url: str, limits: ServeLimits, where: str) -> Image.Image:
    """A ``data:image/...;base64,...`` URL as a loaded PIL image, within the size limits."""
    return decode_image_payload(check_data_url(url, limits, where), limits, where)


def _message_parts(content: Any, where: str, limits: ServeLimits, seen_images: int) -> list[str | ImageRef]:
    """Text pieces and (undecoded) images from OpenAI content."""
    if content is None:
        return []
    if isinstance(content, str):
        raw_parts: list[Any] = [{"type": "text", "text": content}]
    elif isinstance(content, list):
        raw_parts = content
    else:
        raise RequestError(400, f"{where}.content must be a string or a list of parts", param=where)
    out: list[str | ImageRef] = []
    for j, part in enumerate(raw_parts):
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
            out.append(piece)
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str):
                raise RequestError(400, f"{at}.image_url.url must be a string", param=at)
            if seen_images + sum(isinstance(p, ImageRef) for p in out) >= limits.max_images:
                raise RequestError(
                    400,
                    f"the request carries more than {limits.max_images} images, the server's limit",
                    code="too_many_images",
                    param=at,
                )
            out.append(ImageRef(at, check_data_url(url, limits, at)))
        else:
            raise RequestError(
                400,
                f"{at}: content parts of type {str(kind)[:40]!r} are not supported (use text, image_url)",
                param=at,
            )
    return out


def _number(payload: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = payload.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(400, f"{key} must be a number between {low} and {high}", param=key)
    return float(value)


def prepare_chat_request(
    payload: Any, limits: ServeLimits, model_name: str, max_images_per_message: int
) -> PendingChatRequest:
    """Validate an OpenAI chat-completions request body (already JSON-decoded); images stay undecoded."""
    if not isinstance(payload, dict):
        raise RequestError(400, "the request body must be a JSON object")
    model = payload.get("model") or model_name
    if model != model_name:
        shown = model[:80] if isinstance(model, str) else type(model).__name__
        raise RequestError(
            404,
            f"this server serves the model {model_name!r}, not {shown!r} (see GET /v1/models)",
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
    messages: list[PendingMessage] = []
    images = 0
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise RequestError(400, f"{where} must be an object", param=where)
        role = raw.get("role")
        if role == "developer":  # OpenAI's newer name for the system role
            role = "system"
        if role not in ("system", "user", "assistant"):
            shown_role = role[:40] if isinstance(role, str) else role
            raise RequestError(400, f"{where}.role {shown_role!r} is not supported (system, user, assistant)")
        parts = _message_parts(raw.get("content"), where, limits, images)
        message = PendingMessage(role, tuple(parts))
        own = len(message.images)
        if own and role != "user":
            raise RequestError(400, f"{where}: only user messages can carry images", param=where)
        if own > max_images_per_message:
            raise RequestError(
                400,
                f"{where} carries {own} images; this model takes at most {max_images_per_message} "
                "per message",
                code="too_many_images",
                param=where,
            )
        messages.append(message)
        images += own
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
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise RequestError(400, f"seed must be an integer from 0 to {MAX_SEED}", param="seed")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "stream must be true or false", param="stream")
    options = payload.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    settings = GenerationSettings(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    return PendingChatRequest(tuple(messages), settings, stream, include_usage, model)


def parse_chat_request(
    payload: Any, limits: ServeLimits, model_name: str, max_images_per_message: int
) -> ChatRequest:
    """Validate an OpenAI chat-completions request body and decode its images."""
    return prepare_chat_request(payload, limits, model_name, max_images_per_message).decode(limits)


def parse_json_body(body: bytes) -> Any:
    """The request body as JSON; every way it can fail is a 400 that names no library internals."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise RequestError(400, f"the request body is not valid JSON ({exc.msg} at {where})") from None
    except UnicodeDecodeError:
        raise RequestError(400, "the request body is not valid JSON (it is not UTF-8 text)") from None
    except RecursionError:
        raise RequestError(
            400, "the request body is not valid JSON for this server: it nests too deeply"
        ) from None
    except ValueError:  # Python's limit on integer digits (int_max_str_digits)
        raise RequestError(400, "the request body holds a number with too many digits") from None


# ---------------------------------------------------------------- prompt length


@runtime_checkable
class CountsPromptTokens(Protocol):
    """A backend that can count a prompt's tokens without running the model (the hf backend)."""

    @property
    def context_window(self) -> int: ...

    def count_prompt_tokens(self, conversation: Sequence[tuple[Role, str]]) -> int: ...


def check_prompt_length(backend: Backend, request: PendingChatRequest) -> None:
    """400 when the prompt plus ``max_tokens`` does not fit the model's context (before any generation)."""
    if not isinstance(backend, CountsPromptTokens):
        return  # the backend checks at generate time (a PromptTooLongError, also a 400)
    tokens = backend.count_prompt_tokens(request.conversation())
    window = backend.context_window
    needed = tokens + request.settings.max_new_tokens
    if needed > window:
        raise _prompt_too_long(PromptTooLongError(tokens, request.settings.max_new_tokens, window))


def _prompt_too_long(exc: PromptTooLongError) -> RequestError:
    return RequestError(400, str(exc), code="context_length_exceeded", param="messages")


# ---------------------------------------------------------------- the model worker


class QueueFullError(Exception):
    """The bounded queue has no room: the client should retry later."""


_END = None  # marks the end of a job's events (its result or error is set by then)


@dataclass(eq=False)
class Job:
    """One generation travelling from the event loop to the worker thread and back.

    The worker thread hands text pieces over with ``loop.call_soon_threadsafe``, so the request's
    coroutine awaits them without a thread of its own.
    """

    messages: Sequence[ChatMessage]
    settings: GenerationSettings
    loop: asyncio.AbstractEventLoop
    cancel: threading.Event = field(default_factory=threading.Event)
    # Pieces of text as the backend streams them; None marks the end (result or error is then set).
    events: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    result: GenerationResult | None = None
    error: BaseException | None = None
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None

    def _deliver(self, item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)

    def on_token(self, piece: str) -> None:
        self._deliver(piece)

    def finish(self) -> None:
        self._deliver(_END)


class GenerationWorker:
    """One thread runs the backend; jobs wait in a bounded FIFO queue.

    A request first takes a place (:meth:`reserve`, 503 when none is free), then does its expensive
    preparation (image decoding), then :meth:`submit`s the job into the place it holds.
    """

    def __init__(self, backend: Backend, queue_size: int) -> None:
        self.backend = backend
        self.queue_size = queue_size
        self._jobs: queue.Queue[Job | None] = queue.Queue()  # bounded by reserve()
        self._lock = threading.Lock()
        self._waiting = 0  # places taken: queued jobs + requests still preparing theirs
        self.current: Job | None = None
        self._thread = threading.Thread(target=self._run, name="geodesk-serve-worker", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Requests holding a place behind the running one."""
        with self._lock:
            return self._waiting

    @property
    def busy(self) -> bool:
        return self.current is not None

    def reserve(self) -> None:
        with self._lock:
            if self._waiting >= self.queue_size:
                raise QueueFullError
            self._waiting += 1

    def release(self) -> None:
        """Give back a place that will not be used (the request failed while preparing)."""
        with self._lock:
            self._waiting -= 1

    def submit(self, job: Job) -> None:
        """Queue ``job`` in the place :meth:`reserve` took for it."""
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
            except BaseException as exc:  # handed to the waiting request, which reports it
                job.error = exc
            finally:
                with self._lock:
                    self.current = None
                job.finish()

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
                job.finish()
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


# ---------------------------------------------------------------- HTTP: the connection protocol


def _raw_error(status: int, reason: str, error: RequestError) -> bytes:
    body = json.dumps(error.document()).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the two limits it lacks: a deadline for the request headers (a
    client that trickles a header byte every few seconds would otherwise hold its connection, and a
    place under ``max_connections``, forever) and a header size answered with 431 instead of 400."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 16 * 1024

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        handle = getattr(self, "_header_deadline", None)
        if handle is not None:
            handle.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            buffered = self.conn.trailing_data[0] + data
            limit = self.max_header_bytes
            if buffered.find(b"\r\n\r\n", 0, limit + 4) < 0 and len(buffered) > limit:
                error = RequestError(
                    431,
                    f"the request line and headers exceed the server's limit of {limit} bytes",
                    code="headers_too_large",
                )
                self.transport.write(_raw_error(431, "Request Header Fields Too Large", error))
                self.transport.close()
                self._disarm_header_deadline()
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the next request on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


def _protocol_class(limits: ServeLimits) -> type[_GuardedH11Protocol]:
    return type(
        "GeodeskH11Protocol",
        (_GuardedH11Protocol,),
        {"header_timeout_s": limits.header_timeout_s, "max_header_bytes": limits.max_header_bytes},
    )


# ---------------------------------------------------------------- HTTP: the application


class _ClientGoneError(Exception):
    """The client closed its connection."""


def _error_response(error: RequestError) -> JSONResponse:
    return JSONResponse(error.document(), status_code=error.status, headers=error.headers)


async def _wait_disconnect(receive: Receive) -> None:
    """Returns once the client has gone (the request body is already read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class _EventStream(Response):
    """Server-sent events from an async iterator of byte blocks; stops as soon as the client leaves."""

    def __init__(self, events: AsyncIterator[bytes], on_disconnect: Callable[[], None]) -> None:
        # No Content-Length (Response.__init__ would add one): the body is streamed.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
        ]
        self.events = events
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        gone = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            while True:
                step = asyncio.ensure_future(anext(self.events))
                await asyncio.wait({step, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():  # the client left while the model was thinking
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await step
                    self.on_disconnect()
                    return
                try:
                    data = step.result()
                except StopAsyncIteration:
                    break
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
            await _aclose(self.events)


async def _aclose(events: AsyncIterator[bytes]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


def _sse(document: Any) -> bytes:
    return b"data: " + json.dumps(document, ensure_ascii=False).encode("utf-8") + b"\n\n"


def _finish_reason(result: GenerationResult) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def _usage(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.answer_tokens,
        "total_tokens": result.prompt_tokens + result.answer_tokens,
    }


class _App:
    """The routes and their checks; one instance per :class:`ChatServer`."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.config = server.config
        self.hosts = HostPolicy(self.config.host, self.config.allowed_hosts)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config.decode_threads, thread_name_prefix="geodesk-serve-prepare"
        )
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
        ]
        self.starlette = Starlette(
            routes=routes,
            exception_handlers={
                RequestError: self._request_error,
                HTTPException: self._http_error,
                Exception: self._internal_error,
            },
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan, no websockets
        host = None
        for key, value in scope.get("headers", ()):
            if key == b"host":
                host = value.decode("latin-1")
                break
        if not self.hosts.allows(host):
            self.server.stats.add("rejected_invalid")
            error = RequestError(
                421,
                "this server does not answer for that Host name; use its address or a name it was started "
                "with (geodesk serve --allow-host NAME)",
                code="invalid_host",
                close=True,
            )
            await _error_response(error)(scope, receive, send)
            return
        await self.starlette(scope, receive, send)

    # ------------------------------------------------ errors

    async def _request_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        if exc.status == 503:
            self.server.stats.add("rejected_busy")
        elif exc.status >= 500:
            self.server.stats.add("failed")
        else:
            self.server.stats.add("rejected_invalid")
        return _error_response(exc)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        self.server.stats.add("rejected_invalid")
        if exc.status_code == 404:
            error = RequestError(
                404, f"no such endpoint: {request.method} {request.url.path}", code="not_found"
            )
        elif exc.status_code == 405:
            error = RequestError(
                405,
                f"{request.method} is not allowed on {request.url.path}",
                code="method_not_allowed",
                headers=exc.headers,
                close=True,
            )
        else:
            error = RequestError(exc.status_code, "the request was refused", close=True)
        return _error_response(error)

    async def _internal_error(self, request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        self.server.stats.add("failed")
        error = RequestError(
            500,
            "the server failed on this request; its log says why",
            kind="server_error",
            code="internal_error",
            close=True,
        )
        return _error_response(error)

    # ------------------------------------------------ checks before the body

    def _require_auth(self, request: Request) -> None:
        key = self.config.api_key
        if not key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        # compare_digest takes the same time wherever the first difference is.
        good = hmac.compare_digest(token.strip().encode("utf-8"), key.encode("utf-8"))
        if not (scheme.lower() == "bearer" and good):
            raise RequestError(
                401,
                "this server needs an API key: send 'Authorization: Bearer KEY' (geodesk: --api-key-file "
                f"FILE or ${API_KEY_VARIABLE})",
                kind="authentication_error",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
                close=True,
            )

    @staticmethod
    def _require_json(request: Request) -> None:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise RequestError(
                415,
                "send the request body as JSON with 'Content-Type: application/json'",
                code="unsupported_media_type",
                close=True,
            )

    def _content_length(self, request: Request) -> int:
        limits = self.config.limits
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            raise RequestError(
                411, "send the request body with a Content-Length (chunked is not accepted)", close=True
            )
        text = request.headers.get("content-length")
        if text is None or not text.strip().isdigit() or len(text.strip()) > 18:
            raise RequestError(411, "the request needs a Content-Length header", close=True)
        length = int(text)
        if length > limits.max_body_bytes:
            raise RequestError(
                413,
                f"the request body has {length} bytes; the server's limit is {limits.max_body_bytes}",
                code="request_too_large",
                close=True,
            )
        return length

    async def _read_body(self, request: Request, length: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        try:
            async with asyncio.timeout(self.config.limits.body_timeout_s):
                async for chunk in request.stream():
                    got += len(chunk)
                    if got > length:  # h11 enforces Content-Length; this is belt and braces
                        raise RequestError(400, "the body is longer than its Content-Length", close=True)
                    chunks.append(chunk)
        except TimeoutError:
            raise RequestError(
                408,
                f"the request body did not arrive within {self.config.limits.body_timeout_s:g} s",
                code="request_timeout",
                close=True,
            ) from None
        except ClientDisconnect:
            raise _ClientGoneError from None
        return b"".join(chunks)

    async def _in_pool(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # ------------------------------------------------ routes

    async def health(self, request: Request) -> Response:
        return JSONResponse(self.server.health())

    async def models(self, request: Request) -> Response:
        self._require_auth(request)
        return JSONResponse(self.server.models_document())

    async def chat(self, request: Request) -> Response:
        server = self.server
        server.stats.add("requests")
        self._require_auth(request)
        self._require_json(request)
        length = self._content_length(request)
        try:
            body = await self._read_body(request, length)
        except _ClientGoneError:
            return Response(status_code=400)  # nobody reads it
        limits = self.config.limits
        backend = server.backend

        def prepare() -> PendingChatRequest:
            pending = prepare_chat_request(
                parse_json_body(body), limits, server.model_name, backend.max_images_per_message
            )
            try:
                check_prompt_length(backend, pending)
            except BackendError:
                log.info("counting the prompt's tokens failed", exc_info=True)
                raise RequestError(
                    400, "the conversation cannot be rendered with this model's chat template"
                ) from None
            return pending

        pending = await self._in_pool(prepare)
        try:
            server.worker.reserve()
        except QueueFullError:
            raise RequestError(
                503,
                "the model is busy and its queue is full; retry after a few seconds",
                kind="server_error",
                code="server_busy",
                headers={"Retry-After": str(self.config.retry_after_s)},
            ) from None
        try:
            chat_request = await self._in_pool(pending.decode, limits)  # images only now
            job = Job(chat_request.messages, chat_request.settings, asyncio.get_running_loop())
        except BaseException:
            server.worker.release()
            raise
        server.worker.submit(job)
        gone = asyncio.ensure_future(_wait_disconnect(request.receive))
        try:
            first = await self._next_event(job, gone)
            piece = first
            while not chat_request.stream and piece is not _END:
                piece = await self._next_event(job, gone)  # the whole answer is in the result
        except _ClientGoneError:
            self._cancelled(job)
            return Response(status_code=400)  # nobody reads it
        finally:
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
        if not chat_request.stream:
            result = self._outcome(job)
            server.stats.add("completed")
            return JSONResponse(server.completion_document(result, chat_request, job))
        if first is _END:
            self._outcome(job)  # an error before the first token is a proper HTTP error
        return _EventStream(self._stream(job, chat_request, first), lambda: self._cancelled(job))

    def _cancelled(self, job: Job) -> None:
        job.cancel.set()
        self.server.stats.add("cancelled")

    @staticmethod
    async def _next_event(job: Job, gone: asyncio.Future[None]) -> str | None:
        """The job's next piece (None at its end), or _ClientGoneError once the client has left."""
        getter: asyncio.Future[str | None] = asyncio.ensure_future(job.events.get())
        waited: set[asyncio.Future[Any]] = {getter, gone}
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        raise _ClientGoneError

    def _outcome(self, job: Job) -> GenerationResult:
        if job.error is not None:
            error = job.error
            if isinstance(error, PromptTooLongError):
                raise _prompt_too_long(error)
            if isinstance(error, ConnectionAbortedError):
                raise RequestError(
                    503, "the server is shutting down", kind="server_error", code="shutting_down"
                )
            log.error("generation failed", exc_info=error)
            raise RequestError(
                500,
                "the model failed to answer this request; the server's log says why",
                kind="server_error",
                code="generation_failed",
            )
        assert job.result is not None
        return job.result

    async def _stream(self, job: Job, request: ChatRequest, first: str | None) -> AsyncIterator[bytes]:
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        yield _sse(chunk({"role": "assistant", "content": ""}, None))
        piece = first
        while piece is not _END:
            yield _sse(chunk({"content": piece}, None))
            piece = await job.events.get()
        try:
            result = self._outcome(job)
        except RequestError as exc:
            # Headers are out: report the failure in the stream, as vLLM does, and end it.
            self.server.stats.add("failed")
            yield _sse(exc.document())
            yield b"data: [DONE]\n\n"
            return
        yield _sse(chunk({}, _finish_reason(result)))
        if request.include_usage:
            usage_chunk = chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(result)
            yield _sse(usage_chunk)
        self.server.stats.add("completed")  # counted before the client can see the end
        yield b"data: [DONE]\n\n"


# ---------------------------------------------------------------- the server object


class ChatServer:
    """The server object: bind in the constructor, then :meth:`serve_forever` or :meth:`start`."""

    def __init__(self, backend: Backend, config: ServeConfig | None = None) -> None:
        self.backend = backend
        self.config = config or ServeConfig()
        self.model_name = self.config.model_name or backend.identity.name
        self.stats = ServerStats()
        self.started_at = time.time()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serving = threading.Event()
        if not is_loopback_host(self.config.host):
            if not self.config.api_key and not self.config.allow_no_api_key:
                raise UnsafeServeConfigError(
                    f"refusing to listen on {self.config.host} without an API key: other machines could use "
                    f"the model. Give a key (--api-key-file FILE or ${API_KEY_VARIABLE}), listen on "
                    "127.0.0.1, or pass --allow-no-api-key on an isolated network"
                )
            keyless = "" if self.config.api_key else " WITHOUT an API key: anyone who reaches it can use it"
            log.warning("geodesk serve listens on %s, open to other machines%s", self.config.host, keyless)
        self.socket = self._bind()
        self.worker = GenerationWorker(backend, self.config.limits.queue_size)
        self.app = _App(self)
        limits = self.config.limits
        self.uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                http=_protocol_class(limits),
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                proxy_headers=False,  # X-Forwarded-* from clients are not trusted
                limit_concurrency=limits.max_connections,
                timeout_keep_alive=limits.keep_alive_s,
                timeout_graceful_shutdown=5,
                h11_max_incomplete_event_size=limits.max_header_bytes * 2,
                ws="none",
            )
        )

    def _bind(self) -> socket.socket:
        host = self.config.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), self.config.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen on {host}:{self.config.port}: {exc.strerror or exc}") from exc
        sock.setblocking(False)
        return sock

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._serving.set()
        try:
            await self.uvicorn.serve(sockets=[self.socket])
        finally:
            self.app.close()

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`shutdown` (or, in the main thread, SIGINT / SIGTERM)."""
        asyncio.run(self._serve())

    def start(self) -> ChatServer:
        """Serve from a background thread (tests, benchmarks, embedding in the app)."""
        self._thread = threading.Thread(target=self.serve_forever, name="geodesk-serve-http", daemon=True)
        self._thread.start()
        self._serving.wait(30)
        return self

    def _on_loop(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` on the server's event loop and wait for it (from any other thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(fn())  # type: ignore[arg-type]
            return
        with contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError):
            asyncio.run_coroutine_threadsafe(fn(), loop).result(timeout=10)  # type: ignore[arg-type]

    def shutdown(self, abort_connections: bool = False) -> None:
        """Stop accepting, cancel the running generation, close everything.

        ``abort_connections`` resets every open client connection at once (what a crash looks like to
        clients); otherwise streams end with an error event and uvicorn closes the connections.
        """
        if abort_connections:
            self.abort_connections()
        self.worker.stop()
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        elif self._loop is None:
            self.socket.close()  # never served
            self.app.close()

    def abort_connections(self) -> None:
        """Reset every client connection (linger 0: close sends RST, like a process that died)."""

        async def abort() -> None:
            for connection in list(self.uvicorn.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is None:
                    continue
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                transport.abort()

        self._on_loop(abort)

    @property
    def open_connections(self) -> int:
        return len(self.uvicorn.server_state.connections)

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
        limits = self.config.limits
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
                            "max_tokens": limits.max_tokens,
                            "max_images": limits.max_images,
                            "max_image_pixels": limits.max_image_pixels,
                            "max_image_bytes": limits.max_image_bytes,
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
    "API_KEY_VARIABLE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ChatRequest",
    "ChatServer",
    "CountsPromptTokens",
    "GenerationWorker",
    "HostPolicy",
    "Job",
    "PendingChatRequest",
    "QueueFullError",
    "RequestError",
    "ServeConfig",
    "ServeLimits",
    "ServerStats",
    "UnsafeServeConfigError",
    "check_data_url",
    "check_prompt_length",
    "decode_data_url",
    "decode_image_payload",
    "host_header_name",
    "is_loopback_host",
    "parse_chat_request",
    "parse_json_body",
    "prepare_chat_request",
]
