"""ScriptedTeacher: a test double for a teacher model's *answers*, not a model.

It implements the engine's ``Backend`` protocol and returns pre-written answer texts (in order, or
computed from the conversation by a rule), so tests can drive the builders through exact teacher
answers (e.g. a deduction exactly 24.9 km from the truth). It records every conversation it was sent.
Runs on the real tiny model live in test_tiny_teacher.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from geodesk.domain import ModelIdentity
from geodesk.engine.backends.base import ChatMessage, GenerationResult, GenerationSettings, TokenCallback

Script = Callable[[Sequence[ChatMessage]], str]


class ScriptedTeacher:
    name = "scripted"
    identity = ModelIdentity(name="scripted-teacher", version="0", sha256="")
    max_images_per_message = 1

    def __init__(self, answers: Sequence[str] | Script, *, interrupt_after: int | None = None) -> None:
        self._answers = answers
        self._interrupt_after = interrupt_after
        self.calls: list[list[ChatMessage]] = []

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        if self._interrupt_after is not None and len(self.calls) >= self._interrupt_after:
            raise KeyboardInterrupt  # what Ctrl-C during a long teacher run looks like to the builder
        self.calls.append(list(messages))
        answers = self._answers
        text = answers(messages) if callable(answers) else answers[len(self.calls) - 1]
        return GenerationResult(text=text, prompt_tokens=0, answer_tokens=0, time_to_first_token_s=None,
                                total_time_s=0.0, cancelled=False, finish_reason="stop")

    def close(self) -> None:
        pass
