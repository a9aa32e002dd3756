"""What ``geodesk serve`` may be asked and how it listens: limits and configuration.

Kept apart from :mod:`geodesk.services.serving` so that building the command line (which shows these
defaults) does not import the HTTP stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
API_KEY_VARIABLE = "GEODESK_API_KEY"  # where `geodesk serve` and the remote backend look for a key


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
    max_connections: int = 64  # open connections (idle keep-alive ones count); more get 503
    max_header_bytes: int = 16 * 1024  # request line + headers; more get 431
    header_timeout_s: float = 10.0  # from connection (or previous answer) to the end of the headers
    body_timeout_s: float = 120.0  # to receive the whole body once the headers are in (408 after)
    keep_alive_s: int = 5  # an idle keep-alive connection is closed after this long

    def __post_init__(self) -> None:
        for name in (
            "max_image_pixels",
            "max_image_bytes",
            "max_images",
            "max_tokens",
            "max_messages",
            "queue_size",
            "max_connections",
            "keep_alive_s",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.max_header_bytes < 1024:
            raise ValueError("max_header_bytes must be at least 1024")
        if not (self.header_timeout_s > 0 and self.body_timeout_s > 0):
            raise ValueError("header_timeout_s and body_timeout_s must be positive")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: an ephemeral port (see ChatServer.port)
    api_key: str | None = None  # when set, every endpoint but /health needs "Authorization: Bearer KEY"
    limits: ServeLimits = field(default_factory=ServeLimits)
    model_name: str | None = None  # the id clients send as "model"; default: the package name
    retry_after_s: int = 2  # the Retry-After a 503 carries
    # Host names clients may use beyond loopback and ``host`` itself (a DNS alias of this machine).
    allowed_hosts: tuple[str, ...] = ()
    # Listening beyond loopback without an API key is refused unless this is set (an isolated lab net).
    allow_no_api_key: bool = False
    decode_threads: int = 2  # threads that parse bodies and decode images (the model has its own)
