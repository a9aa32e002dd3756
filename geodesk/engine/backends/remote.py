"""The ``remote`` backend: a model behind an OpenAI-compatible chat-completions server.

It talks to ``geodesk serve``, ``lmdeploy serve api_server`` and vLLM alike: each ``<image>``
placeholder becomes an ``image_url`` content part holding the image as a data URL (PNG up to 2 MP:
lossless, so a greedy answer equals the in-process one; JPEG q95 above, or always with
``image_format="jpeg"``, for CPU time and bandwidth), the answer is always
streamed (server-sent events) so tokens reach ``on_token`` as they come and time to first token is
measured here, and the last chunk's ``usage`` gives the token counts (``stream_options.include_usage``).

Failures, and what happens:

- connection refused / reset, HTTP 429 / 5xx, a stream that dies BEFORE the first token: retried with
  exponential backoff (``backoff_s``, doubling, capped; a 503's ``Retry-After`` is honoured), then
  :class:`EndpointUnavailableError`;
- the connection lost AFTER tokens arrived: :class:`ServerGoneError`, carrying the partial text. It is
  not retried: the text already went to ``on_token``. The caller (sessions) keeps every finished turn;
- no byte for ``read_timeout_s``: :class:`BackendError` (not retried: the server accepted the work);
- ``cancel`` set: the socket is shut down from a watcher thread and the partial result is returned.

Identity: ``ModelIdentity(name=<the server's model id>, version=<reported version or "remote">,
sha256=<reported SHA-256 or "">, path=<endpoint URL>)``. ``geodesk serve`` reports its package's
version and SHA-256 in ``/v1/models``; lmdeploy and vLLM report neither, so sessions on them record an
empty SHA-256: the model behind such a server cannot be verified from here.

:class:`EndpointPool` spreads calls over several servers for batch work (least busy first, round robin
among equals), skips an endpoint that failed until a health check finds it back, and fails over.
Everything here is the standard library (``http.client``): no torch, no extra dependency.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from geodesk.domain.model import ModelIdentity
from geodesk.engine.backends.base import (
    IMAGE_PLACEHOLDER,
    BackendError,
    ChatMessage,
    FinishReason,
    GenerationResult,
    GenerationSettings,
    TokenCallback,
)
from geodesk.engine.imaging import ImageRefusedError, bounded_rgb

REMOTE_VERSION = "remote"  # ModelIdentity.version when the server does not report one
# "auto" sends PNG (lossless: the server sees exactly our pixels) up to this size and JPEG above: a
# 12 MP photo takes seconds to PNG-encode and ~25 MB on the wire, while the model sees it at 336 px.
AUTO_PNG_MAX_PIXELS = 2_000_000
ImageFormat = Literal["auto", "png", "jpeg"]


class EndpointUnavailableError(BackendError):
    """The server could not be reached (or kept answering 5xx) and no token had arrived."""


class ServerGoneError(BackendError):
    """The server went away in the middle of an answer; ``partial_text`` is what had arrived."""

    def __init__(self, message: str, partial_text: str, answer_chunks: int) -> None:
        super().__init__(message)
        self.partial_text = partial_text
        self.answer_chunks = answer_chunks


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    model: str | None = None  # the served model id; None: the first one GET /v1/models lists
    api_key: str | None = None  # sent as "Authorization: Bearer KEY"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 300.0  # longest silence while waiting for a byte (queue + prefill included)
    retries: int = 4  # extra attempts after the first, before any token arrived
    backoff_s: float = 0.5  # wait before the first retry; doubles each time
    max_backoff_s: float = 8.0
    image_format: ImageFormat = "auto"  # auto: PNG up to AUTO_PNG_MAX_PIXELS, JPEG (quality 95) above
    jpeg_quality: int = 95
    max_images_per_message: int | None = None  # None: what the server reports (geodesk serve), else 1
    verify_tls: bool = True
    profile: str | None = None  # prompt profile; None: what geodesk serve reports, else gaga

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise BackendError("retries and backoff times must not be negative")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise BackendError("timeouts must be positive")
        if self.image_format not in ("auto", "png", "jpeg"):
            raise BackendError(f"image_format must be auto, png or jpeg, got {self.image_format!r}")


@dataclass(frozen=True, slots=True)
class RetryInfo:
    """Handed to ``on_retry`` before each wait: which attempt failed, why, how long until the next."""

    endpoint: str
    attempt: int  # 1-based number of the attempt that failed
    attempts: int  # how many attempts there will be at most
    reason: str
    wait_s: float


RetryCallback = Callable[[RetryInfo], None]


def parse_endpoint(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, base path) of an endpoint URL; ``/v1`` at the end is optional."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise BackendError(
            f"endpoint {url!r} is not an http(s) URL; give one like http://127.0.0.1:8000 or http://gpu1:8000/v1"
        )
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise BackendError(f"endpoint {url!r} has an invalid port") from None
    base = parsed.path.rstrip("/")
    base = base.removesuffix("/v1")
    return parsed.scheme, parsed.hostname, port, base


def encode_image(image: Image.Image, fmt: ImageFormat = "auto", quality: int = 95) -> str:
    """``image`` as a data URL, through the one bounded preparation step (orientation applied, at most
    MODEL_MAX_EDGE px; the server pads it). Raises BackendError for a picture no model should get."""
    try:
        upright = bounded_rgb(image)
    except (ImageRefusedError, OSError) as exc:
        raise BackendError(f"an image cannot be given to the model: {exc}") from None
    buffer = io.BytesIO()
    if fmt == "auto":
        fmt = "png" if upright.width * upright.height <= AUTO_PNG_MAX_PIXELS else "jpeg"
    if fmt == "png":
        if upright.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            upright = upright.convert("RGB")
        upright.save(buffer, format="PNG", compress_level=1)  # fast; the size matters less than the time
        mime = "image/png"
    else:
        if upright.mode != "RGB":
            upright = upright.convert("RGB")
        upright.save(buffer, format="JPEG", quality=quality)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def openai_messages(
    messages: Sequence[ChatMessage], fmt: ImageFormat = "auto", quality: int = 95
) -> list[dict[str, Any]]:
    """OpenAI chat messages: text parts and ``image_url`` parts in placeholder order.

    One newline right after a placeholder is dropped: LLaVA chat templates (and ``geodesk serve``)
    write ``<image>\\n`` for an image part themselves.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if not message.images:
            out.append({"role": message.role, "content": message.text})
            continue
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(message.text.split(IMAGE_PLACEHOLDER)):
            if i > 0:
                url = encode_image(message.images[i - 1], fmt, quality)
                parts.append({"type": "image_url", "image_url": {"url": url}})
                chunk = chunk.removeprefix("\n")
            if chunk:
                parts.append({"type": "text", "text": chunk})
        out.append({"role": message.role, "content": parts})
    return out


class _RetryableError(Exception):
    """One attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


class _CloseOnCancel:
    """Shuts the connection's socket down when ``cancel`` is set, unblocking a pending read."""

    def __init__(self, conn: http.client.HTTPConnection, cancel: threading.Event | None) -> None:
        self.conn = conn
        self.cancel = cancel
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _CloseOnCancel:
        if self.cancel is not None:
            self.thread = threading.Thread(target=self._watch, name="geodesk-remote-cancel", daemon=True)
            self.thread.start()
        return self

    def _watch(self) -> None:
        assert self.cancel is not None
        while not self.done.is_set():
            if self.cancel.wait(0.05):
                sock = self.conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()


@dataclass
class _Stream:
    """What one attempt at a streamed completion gathered."""

    pieces: list[str] = field(default_factory=list)
    first_token_s: float | None = None
    finish: str | None = None
    usage: dict[str, Any] | None = None
    done: bool = False
    completion_id: str = ""

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class RemoteBackend:
    """One OpenAI-compatible server. Thread-safe: every call opens its own connection."""

    name = "remote"

    def __init__(
        self,
        endpoint: str,
        options: RemoteOptions | None = None,
        *,
        on_retry: RetryCallback | None = None,
        probe: bool = True,
    ) -> None:
        self.options = options or RemoteOptions()
        self.endpoint = endpoint.rstrip("/")
        self.scheme, self.host, self.port, self.base_path = parse_endpoint(endpoint)
        self.on_retry = on_retry
        self.server_model: str = self.options.model or ""
        self.max_images_per_message = self.options.max_images_per_message or 1
        self.profile = self.options.profile or "gaga"
        self.identity = ModelIdentity(self.server_model, REMOTE_VERSION, "", self.endpoint)
        if probe:
            self.probe()

    # ------------------------------------------------ HTTP plumbing

    def _connection(self) -> http.client.HTTPConnection:
        timeout = self.options.connect_timeout_s
        if self.scheme == "https":
            context = ssl.create_default_context()
            if not self.options.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream", "User-Agent": "geodesk-remote"}
        if body:
            headers["Content-Type"] = "application/json"
        if self.options.api_key:
            headers["Authorization"] = f"Bearer {self.options.api_key}"
        return headers

    def _open(
        self, method: str, path: str, payload: Any | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request; return the open response (status < 400), or raise.

        Raises _RetryableError for refused / reset connections and 429 / 5xx answers, BackendError for the
        rest (4xx, read timeout).
        """
        conn = self._connection()
        body = json.dumps(payload).encode("utf-8") if payload is not None else None
        try:
            conn.connect()
        except (TimeoutError, OSError) as exc:
            conn.close()
            raise _RetryableError(f"cannot connect ({_reason(exc)})") from None
        assert conn.sock is not None
        conn.sock.settimeout(self.options.read_timeout_s)
        with contextlib.suppress(OSError):  # headers and body go out as separate writes
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn.request(method, self.base_path + path, body=body, headers=self._headers(body is not None))
            response = conn.getresponse()
        except TimeoutError:
            conn.close()
            raise BackendError(
                f"{self.endpoint} accepted the request but sent nothing for "
                f"{self.options.read_timeout_s:g} s; "
                "the server is overloaded or stuck (raise the read timeout or check the server)"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _RetryableError(f"the connection broke before an answer ({_reason(exc)})") from None
        if response.status < 400:
            return conn, response
        detail = _error_text(response)
        conn.close()
        status = response.status
        if status == 429 or status >= 500:
            wait = _retry_after(response.getheader("Retry-After"))
            raise _RetryableError(f"HTTP {status}: {detail}", wait)
        if status == 401:
            hint = "the API key was refused"
            if not self.options.api_key:
                hint = "the server needs an API key (--api-key-file FILE or $GEODESK_API_KEY)"
            raise BackendError(f"{self.endpoint}: {hint} ({detail})")
        raise BackendError(f"{self.endpoint} refused the request (HTTP {status}): {detail}")

    def _with_retries(self, attempt: Callable[[], Any], cancel: threading.Event | None = None) -> Any:
        attempts = self.options.retries + 1
        delay = self.options.backoff_s
        for number in range(1, attempts + 1):
            try:
                return attempt()
            except _RetryableError as exc:
                if number == attempts:
                    hint = "Is it running (geodesk serve / geodesk lmdeploy start) and reachable?"
                    if exc.reason.startswith("HTTP"):
                        hint = "The server is overloaded or failing: try again later or check its log."
                    raise EndpointUnavailableError(
                        f"the model server at {self.endpoint} did not answer after {attempts} attempt(s): "
                        f"{exc.reason}. {hint}"
                    ) from None
                wait = min(exc.wait_s if exc.wait_s is not None else delay, self.options.max_backoff_s)
                if self.on_retry is not None:
                    self.on_retry(RetryInfo(self.endpoint, number, attempts, exc.reason, wait))
                if cancel is not None:
                    if cancel.wait(wait):
                        return None
                else:
                    time.sleep(wait)
                delay = min(delay * 2, self.options.max_backoff_s)
        raise AssertionError("unreachable")

    def _get_json(self, path: str, retries: bool = True) -> Any:
        def attempt() -> Any:
            conn, response = self._open("GET", path, None)
            try:
                return json.loads(response.read())
            except (OSError, http.client.HTTPException) as exc:
                raise _RetryableError(f"the answer was cut off ({_reason(exc)})") from None
            except json.JSONDecodeError:
                raise BackendError(
                    f"{self.endpoint}{path} did not answer JSON: is it an OpenAI-compatible server?"
                ) from None
            finally:
                conn.close()

        if retries:
            return self._with_retries(attempt)
        try:
            return attempt()
        except _RetryableError as exc:
            raise EndpointUnavailableError(f"{self.endpoint}: {exc.reason}") from None

    # ------------------------------------------------ identity and health

    def probe(self, retries: bool = True) -> ModelIdentity:
        """Ask ``GET /v1/models`` which model is served; set :attr:`identity` from the answer."""
        document = self._get_json("/v1/models", retries)
        models = document.get("data") if isinstance(document, dict) else None
        if not isinstance(models, list) or not models:
            raise BackendError(f"{self.endpoint}/v1/models lists no model")
        chosen = None
        for entry in models:
            if isinstance(entry, dict) and (not self.options.model or entry.get("id") == self.options.model):
                chosen = entry
                break
        if chosen is None:
            names = ", ".join(str(m.get("id")) for m in models if isinstance(m, dict))
            raise BackendError(f"{self.endpoint} does not serve {self.options.model!r} (it serves: {names})")
        self.server_model = str(chosen.get("id"))
        reported_extra = chosen.get("geodesk")
        extra: dict[str, Any] = reported_extra if isinstance(reported_extra, dict) else {}
        self.identity = ModelIdentity(
            name=self.server_model,
            version=str(extra.get("version") or REMOTE_VERSION),
            sha256=str(extra.get("sha256") or ""),
            path=self.endpoint,
        )
        reported = extra.get("max_images_per_message")
        self.max_images_per_message = self.options.max_images_per_message or (
            int(reported) if isinstance(reported, int) and reported > 0 else 1
        )
        reported_profile = extra.get("profile")
        reported_name = reported_profile if isinstance(reported_profile, str) else "gaga"
        self.profile = self.options.profile or reported_name
        return self.identity

    def health(self) -> bool:
        """One quick check (no retries): ``GET /health`` (or ``/v1/models`` where there is none) answers."""
        for path in ("/health", "/v1/models"):
            try:
                conn, _ = self._open("GET", path, None)
            except (_RetryableError, BackendError):
                if path == "/health":
                    continue
                return False
            conn.close()
            return True
        return False

    # ------------------------------------------------ generation

    def request_body(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.server_model,
            "messages": openai_messages(messages, self.options.image_format, self.options.jpeg_quality),
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if settings.greedy:
            body["top_k"] = 1  # lmdeploy and vLLM read it; greedy on every server
        if settings.seed is not None:
            body["seed"] = settings.seed
        return body

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        if not messages or messages[-1].role != "user":
            raise BackendError("the conversation must end with a user message")
        if not self.server_model:
            raise BackendError(f"the model served at {self.endpoint} is not known yet: call probe() first")
        for message in messages:
            if len(message.images) > self.max_images_per_message:
                raise BackendError(
                    f"a message carries {len(message.images)} images; the model at {self.endpoint} takes at "
                    f"most {self.max_images_per_message} per message"
                )
        body = self.request_body(messages, settings)
        started = time.perf_counter()
        attempts = 0

        def attempt() -> _Stream:
            nonlocal attempts
            attempts += 1
            return self._stream_once(body, started, on_token, cancel)

        stream: _Stream | None = self._with_retries(attempt, cancel)
        total = time.perf_counter() - started
        if stream is None or (cancel is not None and cancel.is_set() and not stream.done):
            partial = stream.text if stream is not None else ""
            first = stream.first_token_s if stream is not None else None
            chunks = len(stream.pieces) if stream is not None else 0
            extra = self._extra(attempts)
            return GenerationResult(partial, 0, chunks, first, total, True, "cancelled", extra=extra)
        usage = stream.usage or {}
        finish: FinishReason = "length" if stream.finish == "length" else "stop"
        extra = self._extra(attempts)
        extra["completion_id"] = stream.completion_id
        extra["usage_reported"] = int(bool(stream.usage))
        return GenerationResult(
            text=stream.text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            # Without reported usage, count streamed chunks: servers send about one token per chunk.
            answer_tokens=int(usage.get("completion_tokens") or len(stream.pieces)),
            time_to_first_token_s=stream.first_token_s,
            total_time_s=total,
            cancelled=False,
            finish_reason=finish,
            extra=extra,
        )

    def _extra(self, attempts: int) -> dict[str, float | int | str]:
        return {"endpoint": self.endpoint, "server_model": self.server_model, "attempts": attempts}

    def _stream_once(
        self,
        body: dict[str, Any],
        started: float,
        on_token: TokenCallback | None,
        cancel: threading.Event | None,
    ) -> _Stream:
        stream = _Stream()
        conn, response = self._open("POST", "/v1/chat/completions", body)
        try:
            with _CloseOnCancel(conn, cancel):
                content_type = response.getheader("Content-Type", "")
                if "text/event-stream" not in content_type:  # a server that ignored stream: true
                    self._whole_answer(response, stream, started, on_token)
                    return stream
                for event in _sse_events(response):
                    if event == "[DONE]":
                        stream.done = True
                        with contextlib.suppress(OSError, http.client.HTTPException):
                            response.read()  # the end of the chunked body: closing unread would reset
                        break
                    self._apply_chunk(event, stream, started, on_token)
        except (OSError, http.client.HTTPException) as exc:
            if cancel is not None and cancel.is_set():
                return stream
            if not stream.pieces:
                raise _RetryableError(f"the stream broke before the first token ({_reason(exc)})") from None
            raise self._gone(stream, _reason(exc)) from None
        finally:
            conn.close()
        if cancel is not None and cancel.is_set():
            return stream
        if not stream.done and stream.finish is None:
            if not stream.pieces:
                raise _RetryableError("the server closed the stream before the first token")
            raise self._gone(stream, "the connection closed before the end of the answer")
        return stream

    def _gone(self, stream: _Stream, reason: str) -> ServerGoneError:
        return ServerGoneError(
            f"the model server at {self.endpoint} went away in the middle of the answer ({reason}) after "
            f"{len(stream.pieces)} piece(s) of text; the partial answer is kept with this error and earlier "
            "turns are unaffected. Check the server, then ask again.",
            stream.text,
            len(stream.pieces),
        )

    def _apply_chunk(
        self, event: str, stream: _Stream, started: float, on_token: TokenCallback | None
    ) -> None:
        try:
            chunk = json.loads(event)
        except json.JSONDecodeError:
            raise BackendError(f"{self.endpoint} sent a malformed stream event: {event[:200]!r}") from None
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:  # vLLM / geodesk serve report a failure inside the stream
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            if stream.pieces:
                raise ServerGoneError(
                    f"the model server at {self.endpoint} failed mid-answer: {message}",
                    stream.text,
                    len(stream.pieces),
                )
            raise BackendError(f"the model server at {self.endpoint} failed: {message}")
        stream.completion_id = str(chunk.get("id") or stream.completion_id)
        if isinstance(chunk.get("usage"), dict):
            stream.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                if stream.first_token_s is None:
                    stream.first_token_s = time.perf_counter() - started
                stream.pieces.append(piece)
                if on_token is not None:
                    on_token(piece)
            if choice.get("finish_reason"):
                stream.finish = str(choice["finish_reason"])

    def _whole_answer(
        self,
        response: http.client.HTTPResponse,
        stream: _Stream,
        started: float,
        on_token: TokenCallback | None,
    ) -> None:
        try:
            document = json.loads(response.read())
            choice = document["choices"][0]
            text = choice["message"]["content"] or ""
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise BackendError(f"{self.endpoint} sent an answer that is not a chat completion") from None
        stream.first_token_s = time.perf_counter() - started
        stream.pieces.append(text)
        stream.finish = choice.get("finish_reason") or "stop"
        stream.usage = document.get("usage") if isinstance(document.get("usage"), dict) else None
        stream.done = True
        stream.completion_id = str(document.get("id") or "")
        if on_token is not None and text:
            on_token(text)

    def close(self) -> None:
        """Nothing is held open between calls."""


def _sse_events(response: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data`` payload of each server-sent event (multi-line data joined with newlines)."""
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:  # EOF: the connection closed
            if data:
                yield "\n".join(data)
            return
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):  # comment / keep-alive
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value.removeprefix(" "))


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _error_text(response: http.client.HTTPResponse) -> str:
    try:
        raw = response.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        return response.reason
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")[:300] or response.reason
    if isinstance(document, dict):
        error = document.get("error", document)
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "detail"):
            if key in document:
                return str(document[key])
    return json.dumps(document)[:300]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# ---------------------------------------------------------------- several endpoints


@dataclass
class EndpointState:
    backend: RemoteBackend
    healthy: bool = True
    in_flight: int = 0
    completed: int = 0
    failures: int = 0
    down_since: float | None = None
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.backend.endpoint,
            "healthy": self.healthy,
            "in_flight": self.in_flight,
            "completed": self.completed,
            "failures": self.failures,
            "last_error": self.last_error,
        }


Policy = Literal["least-busy", "round-robin"]


class EndpointPool:
    """Several servers of the same model used together (batch work over several GPU machines).

    A call goes to the healthy endpoint with the fewest calls in flight (``least-busy``; ties and the
    ``round-robin`` policy rotate). An endpoint that cannot be reached is marked down and the call
    fails over to the next one; a down endpoint is health-checked again after ``recheck_s``. An
    endpoint that dies mid-answer is marked down and the :class:`ServerGoneError` goes to the caller
    (its text already went to ``on_token``); a batch retries that item.
    """

    name = "remote"

    def __init__(
        self,
        endpoints: Sequence[str],
        options: RemoteOptions | None = None,
        *,
        policy: Policy = "least-busy",
        recheck_s: float = 15.0,
        on_retry: RetryCallback | None = None,
    ) -> None:
        if not endpoints:
            raise BackendError("an endpoint pool needs at least one endpoint URL")
        if policy not in ("least-busy", "round-robin"):
            raise BackendError(f"unknown pool policy {policy!r}; use least-busy or round-robin")
        self.options = options or RemoteOptions()
        self.policy = policy
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._cursor = 0
        self.states: list[EndpointState] = []
        unique = list(dict.fromkeys(e.rstrip("/") for e in endpoints))
        # Probe each endpoint once, no retries: a down machine must not hold up the others.
        for url in unique:
            backend = RemoteBackend(url, self.options, on_retry=on_retry, probe=False)
            state = EndpointState(backend)
            try:
                backend.probe(retries=False)
            except EndpointUnavailableError as exc:
                self._mark_down(state, str(exc))
            self.states.append(state)
        alive = [s for s in self.states if s.healthy]
        if not alive:
            raise EndpointUnavailableError(
                "none of the endpoints answered: " + "; ".join(s.last_error for s in self.states)
            )
        first = alive[0].backend
        for state in alive[1:]:
            other = state.backend.identity
            same_name = other.name == first.identity.name
            same_sha = not (other.sha256 and first.identity.sha256) or other.sha256 == first.identity.sha256
            if not (same_name and same_sha):
                raise BackendError(
                    f"the endpoints serve different models: {first.endpoint} has {first.identity.name} "
                    f"{first.identity.sha256[:12]}, {state.backend.endpoint} has {other.name} "
                    f"{other.sha256[:12]}"
                )
        for state in self.states:  # endpoints that were down use the model name the others reported
            if not state.backend.server_model:
                state.backend.server_model = first.server_model
                state.backend.identity = first.identity
        self.identity = first.identity
        self.max_images_per_message = min(s.backend.max_images_per_message for s in alive)
        self.profile = first.profile

    @property
    def endpoints(self) -> list[str]:
        return [s.backend.endpoint for s in self.states]

    def stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.as_dict() for s in self.states]

    def _mark_down(self, state: EndpointState, reason: str) -> None:
        state.healthy = False
        state.failures += 1
        state.down_since = time.monotonic()
        state.last_error = reason

    def _recheck(self) -> None:
        """Health-check endpoints that have been down for ``recheck_s`` (outside the lock)."""
        now = time.monotonic()
        with self._lock:
            due = [
                s for s in self.states
                if not s.healthy and s.down_since is not None and now - s.down_since >= self.recheck_s
            ]
            for state in due:
                state.down_since = now  # one checker at a time
        for state in due:
            if state.backend.health():
                with self._lock:
                    state.healthy = True
                    state.last_error = ""

    def _pick(self, tried: set[int]) -> EndpointState | None:
        with self._lock:
            n = len(self.states)
            order = [(self._cursor + k) % n for k in range(n)]
            candidates = [i for i in order if self.states[i].healthy and i not in tried]
            if not candidates:
                return None
            if self.policy == "least-busy":
                # min() keeps the first of equals: the next one in rotation wins ties
                chosen = min(candidates, key=lambda i: self.states[i].in_flight)
            else:
                chosen = candidates[0]
            self._cursor = (chosen + 1) % n
            state = self.states[chosen]
            state.in_flight += 1
            return state

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        self._recheck()
        tried: set[int] = set()
        errors: list[str] = []
        while True:
            state = self._pick(tried)
            if state is None:
                detail = "; ".join(errors) or "all endpoints are marked down"
                raise EndpointUnavailableError(f"no endpoint of the pool could answer: {detail}")
            tried.add(self.states.index(state))
            try:
                result = state.backend.generate(messages, settings, on_token, cancel)
            except EndpointUnavailableError as exc:
                with self._lock:
                    state.in_flight -= 1
                    self._mark_down(state, str(exc))
                errors.append(str(exc))
                continue
            except ServerGoneError as exc:
                with self._lock:
                    state.in_flight -= 1
                    self._mark_down(state, str(exc))
                raise
            except BaseException:
                with self._lock:
                    state.in_flight -= 1
                raise
            with self._lock:
                state.in_flight -= 1
                state.completed += 1
            return result

    def close(self) -> None:
        for state in self.states:
            state.backend.close()


def open_remote(
    endpoints: Sequence[str],
    options: RemoteOptions | None = None,
    *,
    model: str | None = None,
    api_key: str | None = None,
    on_retry: RetryCallback | None = None,
    profile: str | None = None,
) -> RemoteBackend | EndpointPool:
    """One endpoint: a :class:`RemoteBackend`; several: an :class:`EndpointPool`.

    ``model`` and ``api_key`` override the same fields of ``options`` when given.
    """
    from dataclasses import replace

    options = options or RemoteOptions()
    if model is not None:
        options = replace(options, model=model)
    if api_key is not None:
        options = replace(options, api_key=api_key)
    if profile is not None:
        options = replace(options, profile=profile)
    if not endpoints:
        raise BackendError("the remote backend needs at least one --endpoint URL")
    if len(endpoints) == 1:
        return RemoteBackend(endpoints[0], options, on_retry=on_retry)
    return EndpointPool(endpoints, options, on_retry=on_retry)


__all__ = [
    "REMOTE_VERSION",
    "EndpointPool",
    "EndpointState",
    "EndpointUnavailableError",
    "RemoteBackend",
    "RemoteOptions",
    "RetryInfo",
    "ServerGoneError",
    "encode_image",
    "open_remote",
    "openai_messages",
    "parse_endpoint",
]
