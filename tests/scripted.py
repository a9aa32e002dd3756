"""ScriptedAnswers: a test double for a model's *answers*, not a model.

It implements the engine's ``Backend`` protocol and returns pre-written answer texts, in order or
computed by a rule from the conversation, so tests can drive teachers, judges and evaluation flows
through exact answers (e.g. a deduction exactly 24.9 km from the truth, a HIER choice per level). It
records every conversation it was sent. Runs on the real tiny model live beside the tests that use
this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from geodesk.domain import ModelIdentity
from geodesk.engine.backends.base import ChatMessage, GenerationResult, GenerationSettings, TokenCallback

Rule = Callable[[Sequence[ChatMessage]], str]


class ScriptedAnswers:
    name = "scripted"
    max_images_per_message = 1
    profile = "gaga"

    def __init__(
        self,
        answers: Sequence[str] | Rule,
        *,
        interrupt_after: int | None = None,
        label: str = "scripted",
        profile: str = "gaga",
    ) -> None:
        self.profile = profile
        self.identity = ModelIdentity(name=label, version="0", sha256="")
        self._answers = answers
        self._interrupt_after = interrupt_after
        self._lock = threading.Lock()
        self.calls: list[list[ChatMessage]] = []

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        with self._lock:
            if self._interrupt_after is not None and len(self.calls) >= self._interrupt_after:
                raise KeyboardInterrupt  # what Ctrl-C during a long run looks like to the caller
            self.calls.append(list(messages))
            index = len(self.calls) - 1
        answers = self._answers
        text = answers(messages) if callable(answers) else answers[index]
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


class ScriptedTeacher(ScriptedAnswers):
    """A teacher (data builders) answering from a script."""

    def __init__(self, answers: Sequence[str] | Rule, *, interrupt_after: int | None = None) -> None:
        super().__init__(answers, interrupt_after=interrupt_after, label="scripted-teacher")


class ScriptedModel(ScriptedAnswers):
    """A model under evaluation answering by a rule from the conversation."""

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule, label="scripted-model")
