"""The one interface every model backend implements (``hf`` in-process, ``remote`` over HTTP, ...).

The sessions service, ``geodesk serve`` and the GUI talk to a :class:`Backend` only. A conversation is
a list of :class:`ChatMessage`; user texts carry one ``<image>`` placeholder per attached image
(``geodesk.engine.prompts.IMAGE_PLACEHOLDER``), in the order of ``images``. ``generate`` blocks the
calling thread (run it in a worker), streams text pieces to ``on_token`` from that same thread, and
stops within one token once ``cancel`` is set, keeping the text generated so far.

No torch here: this module is imported by code that must start without the model stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from geodesk.domain.model import ModelIdentity

if TYPE_CHECKING:
    from PIL import Image

IMAGE_PLACEHOLDER = "<image>"  # the same literal as geodesk.engine.prompts.IMAGE_PLACEHOLDER

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]
TokenCallback = Callable[[str], None]


class BackendError(Exception):
    """A failure a person can act on: the message says what went wrong and what to try."""


class PromptTooLongError(BackendError):
    """The prompt plus the answer budget does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, max_new_tokens: int, context_window: int) -> None:
        super().__init__(
            f"the prompt has {prompt_tokens} tokens and asks for up to {max_new_tokens} more, but the "
            f"model's context holds {context_window}; shorten the conversation (a new session) or ask "
            "for fewer tokens"
        )
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.context_window = context_window


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    text: str
    images: tuple[Image.Image, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant"):
            raise BackendError(f"unknown chat role {self.role!r}; use system, user or assistant")
        placeholders = self.text.count(IMAGE_PLACEHOLDER)
        if placeholders != len(self.images):
            raise BackendError(
                f"a {self.role} message has {placeholders} {IMAGE_PLACEHOLDER} placeholder(s) but "
                f"{len(self.images)} image(s); put one placeholder where each image goes"
            )
        if self.images and self.role != "user":
            raise BackendError("only user messages can carry images")


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """Decoding settings. ``temperature == 0`` is greedy; sampling is reproducible when ``seed`` is set."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise BackendError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if not self.temperature >= 0.0:
            raise BackendError(f"temperature must be 0 (greedy) or positive, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise BackendError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """One answer with its accounting. ``text`` excludes special tokens; on cancel it is the partial text."""

    text: str
    prompt_tokens: int
    answer_tokens: int
    time_to_first_token_s: float | None  # None when no token was produced (cancelled before the first)
    total_time_s: float
    cancelled: bool
    finish_reason: FinishReason
    prompt_text: str = ""  # the rendered prompt, image placeholders as the chat template writes them
    cached_prompt_tokens: int = 0  # prompt tokens whose KV cache was reused from the previous call
    extra: dict[str, float | int | str] = field(default_factory=dict)


def template_messages(messages: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Chat-template messages (list content with image / text parts) for ``(role, text)`` pairs.

    Each ``<image>`` placeholder becomes an image part. LLaVA chat templates write ``<image>\\n`` for
    an image part, so a newline right after a placeholder is that one and is dropped from the text.
    The hf backend and the training dataset both render through this, so training sees exactly the
    tokens inference sends.
    """
    out: list[dict[str, Any]] = []
    for role, text in messages:
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(text.split(IMAGE_PLACEHOLDER)):
            if i > 0:
                parts.append({"type": "image"})
                chunk = chunk.removeprefix("\n")
            if chunk:
                parts.append({"type": "text", "text": chunk})
        out.append({"role": role, "content": parts})
    return out


@runtime_checkable
class Backend(Protocol):
    """What sessions, ``geodesk serve`` and the GUI need from a model."""

    name: str  # "hf", "remote", ...
    identity: ModelIdentity
    max_images_per_message: int
    profile: str  # the prompt profile (geodesk.engine.profiles) sessions use with this model

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult: ...

    def close(self) -> None: ...
