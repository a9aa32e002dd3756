"""Answering many conversations at once: a left-padded batched ``generate`` on an in-process model, or
concurrent calls to any engine backend (remote endpoints, test doubles).

The ``hf`` backend answers one conversation per call (sessions need streaming, cancel and KV reuse).
Evaluation needs none of that, only throughput, so :class:`HFBatchGenerator` borrows the backend's
loaded model and processor and runs B conversations through one ``model.generate``: the prompts are
rendered by the same chat template, the images padded to square by the same
:func:`~geodesk.engine.imaging.prepare_image`, and the batch is LEFT-padded so every row's last prompt
token sits in the last column, where generation continues. Positions come from the attention mask
(transformers derives ``position_ids = cumsum(mask) - 1``), so a padded row sees the same positions as
it would alone, and greedy answers equal one-at-a-time answers (tested).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from geodesk.engine.backends.base import (
    IMAGE_PLACEHOLDER,
    Backend,
    BackendError,
    ChatMessage,
    GenerationSettings,
)

Conversation = Sequence[ChatMessage]


class BatchGenerator(Protocol):
    """Answers a list of conversations; answer i belongs to conversation i."""

    batch_size: int

    def generate_batch(
        self, conversations: Sequence[Conversation], settings: GenerationSettings
    ) -> list[str]: ...


class SequentialGenerator:
    """One conversation at a time through ``backend.generate`` (the baseline, and any backend)."""

    def __init__(self, backend: Backend, batch_size: int = 1) -> None:
        self.backend = backend
        self.batch_size = batch_size

    def generate_batch(
        self, conversations: Sequence[Conversation], settings: GenerationSettings
    ) -> list[str]:
        return [self.backend.generate(list(c), settings).text for c in conversations]


class ConcurrentGenerator:
    """Up to ``workers`` calls in flight at once: for remote backends, whose EndpointPool spreads them."""

    def __init__(self, backend: Backend, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.backend = backend
        self.batch_size = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geodesk-eval")

    def generate_batch(
        self, conversations: Sequence[Conversation], settings: GenerationSettings
    ) -> list[str]:
        futures = [self._pool.submit(self.backend.generate, list(c), settings) for c in conversations]
        return [f.result().text for f in futures]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _template_conversation(messages: Conversation) -> tuple[list[dict[str, Any]], list[Any]]:
    """Chat-template messages with image parts, and the images in order (as the hf backend renders)."""
    out: list[dict[str, Any]] = []
    images: list[Any] = []
    for message in messages:
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(message.text.split(IMAGE_PLACEHOLDER)):
            if i > 0:
                parts.append({"type": "image"})
                images.append(message.images[i - 1])
                chunk = chunk.removeprefix("\n")  # the template writes "<image>\n" itself
            if chunk:
                parts.append({"type": "text", "text": chunk})
        out.append({"role": message.role, "content": parts})
    return out, images


class HFBatchGenerator:
    """Left-padded batched greedy / sampled generation on an :class:`HFBackend`'s model.

    ``backend`` is a ``geodesk.engine.backends.hf.HFBackend`` (typed as Any: importing it loads torch).
    """

    def __init__(self, backend: Any, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.backend = backend
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def generate_batch(
        self, conversations: Sequence[Conversation], settings: GenerationSettings
    ) -> list[str]:
        out: list[str] = []
        for start in range(0, len(conversations), self.batch_size):
            out.extend(self._generate(conversations[start : start + self.batch_size], settings))
        return out

    def _generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[str]:
        import torch

        b = self.backend
        if b.model is None:
            raise BackendError("this model was closed; open it again")
        texts: list[str] = []
        images: list[Any] = []
        for conversation in conversations:
            if not conversation or conversation[-1].role != "user":
                raise BackendError("each conversation must end with a user message")
            rendered, imgs = _template_conversation(conversation)
            texts.append(
                str(b.processor.apply_chat_template(rendered, add_generation_prompt=True, tokenize=False))
            )
            images.extend(b.prepare_model_image(img) for img in imgs)  # the family's preprocessing
        tokenizer = b.processor.tokenizer
        with self._lock:
            previous_side = tokenizer.padding_side
            tokenizer.padding_side = "left"
            try:
                encoded = b.processor(
                    text=texts,
                    images=images or None,
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                )
            finally:
                tokenizer.padding_side = previous_side
            input_ids = encoded["input_ids"].to(b.device)  # [B, L], left-padded with pad_id
            attention_mask = encoded["attention_mask"].to(b.device)  # [B, L], 0 on the padding
            kwargs: dict[str, Any] = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "max_new_tokens": settings.max_new_tokens,
                "do_sample": not settings.greedy,
                "eos_token_id": b.eos_ids,
                "pad_token_id": b.pad_id,
                "use_cache": True,
            }
            if images:
                kwargs["pixel_values"] = encoded["pixel_values"].to(b.device, b.dtype)  # [n_images, 3, H, W]
                # Qwen2.5-VL: image_grid_thw [n_images, 3] and mm_token_type_ids [B, L] place its images.
                skip = ("input_ids", "attention_mask", "pixel_values")
                kwargs.update({k: v.to(b.device) for k, v in encoded.items() if k not in skip})
            if settings.greedy:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=None)
            devices = [b.device.index or 0] if b.device.type == "cuda" else []
            with torch.inference_mode(), torch.random.fork_rng(devices=devices):
                if settings.seed is not None:
                    torch.manual_seed(settings.seed)
                sequences = b.model.generate(**kwargs)  # [B, L + T]; finished rows padded with pad_id
        answers = sequences[:, input_ids.shape[1] :].tolist()
        out = []
        for row in answers:
            # cut at the first end-of-turn id: what follows is padding for the rows still running
            end = next((k for k, t in enumerate(row) if t in b.eos_ids), len(row))
            out.append(
                str(tokenizer.decode(row[:end], skip_special_tokens=True, clean_up_tokenization_spaces=False))
            )
        return out


def batch_generator(backend: Backend, batch_size: int) -> BatchGenerator:
    """The fastest way to answer many conversations on ``backend``: batched for hf, concurrent for remote."""
    if getattr(backend, "name", "") == "hf" and hasattr(backend, "processor"):
        return HFBatchGenerator(backend, batch_size)
    if getattr(backend, "name", "") == "remote" and batch_size > 1:
        return ConcurrentGenerator(backend, batch_size)
    return SequentialGenerator(backend, batch_size)
