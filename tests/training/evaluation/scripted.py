"""ScriptedModel: a test double for a model's *answers*, not a model.

It implements the engine's ``Backend`` protocol and answers each conversation with a pre-written text
computed by a rule from the conversation (for HIER: which list is being asked, which image), so tests
drive the evaluation flows through exact answers. It records every conversation it was sent. Real
model runs are in test_tiny_model.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from geodesk.domain import ModelIdentity
from geodesk.engine.backends.base import ChatMessage, GenerationResult, GenerationSettings, TokenCallback

Rule = Callable[[Sequence[ChatMessage]], str]


class ScriptedModel:
    name = "scripted"
    identity = ModelIdentity(name="scripted-model", version="0", sha256="")
    max_images_per_message = 1

    def __init__(self, rule: Rule) -> None:
        self._rule = rule
        self.calls: list[list[ChatMessage]] = []
        self._lock = threading.Lock()

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        with self._lock:
            self.calls.append(list(messages))
        text = self._rule(messages)
        return GenerationResult(
            text=text,
            prompt_tokens=0,
            answer_tokens=0,
            time_to_first_token_s=None,
            total_time_s=0.0,
            cancelled=False,
            finish_reason="stop",
        )

    def close(self) -> None:
        pass
