"""Check a samples file before training: every failure is reported with the sample id and the reason.

Checks, per sample:

- schema: an object with a non-empty unique ``id``, an optional relative ``image`` path and a
  ``conversations`` list of ``{"from": "human"|"gpt", "value": str}``;
- roles alternate human, gpt, human, ... and end with gpt; no empty turn;
- ``<image>`` placeholders: exactly one (in the first human turn) when the sample has an image, none
  otherwise, never in an answer;
- the image exists under the image root and decodes (Pillow ``verify`` then a full ``load``, since
  ``verify`` alone misses truncated pixel data);
- the final answer parses with geodesk's parser: meta / clue / case samples need a valid JSON answer
  with coordinates (meta and clue: a country too; clue: clues), dialog samples need coordinates;
- with a model package: the token length (chat template applied with the protocol's system prompt,
  each ``<image>`` counted as the model's image tokens, ``(image_size / patch_size)^2``) is within the
  model's limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import AnswerSource, parse_answer
from training.data.common import GPT, HUMAN, DataError, Report, read_samples

PART = "validate"


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """How a model counts a sample: its tokenizer, tokens per image, and its length limit."""

    tokenizer: Any
    image_tokens: int
    max_length: int
    system_text: str | None
    placeholder_tokens: int

    def length(self, conversations: Sequence[dict[str, Any]]) -> int:
        messages: list[dict[str, str]] = []
        if self.system_text:
            messages.append({"role": "system", "content": self.system_text})
        for turn in conversations:
            role = "user" if turn["from"] == HUMAN else "assistant"
            messages.append({"role": role, "content": turn["value"]})
        text: str | None = None
        if getattr(self.tokenizer, "chat_template", None):
            try:
                text = self.tokenizer.apply_chat_template(messages, tokenize=False)
            except Exception:  # a template that cannot render these messages: count the plain texts
                text = None
        if text is None:
            text = "\n".join(m["content"] for m in messages)
            ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        else:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        images: int = sum(str(t["value"]).count(prompts.IMAGE_PLACEHOLDER) for t in conversations)
        return len(ids) + images * (self.image_tokens - self.placeholder_tokens)


def load_budget(
    model_dir: Path, max_length: int | None = None, *, include_system: bool = True
) -> TokenBudget:
    """The token budget of a model package folder (tokenizer files + config.json)."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise DataError(f"{model_dir} is not a model package folder: it has no config.json")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    vision = config.get("vision_config") or {}
    try:
        side = int(vision["image_size"]) // int(vision["patch_size"])
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"{config_path} has no vision_config.image_size / patch_size; is it a LLaVA model?"
        ) from None
    # (image_size / patch)^2 patch features reach the LLM; the "full" strategy keeps CLIP's CLS token too.
    image_tokens = side * side + (1 if config.get("vision_feature_select_strategy") == "full" else 0)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot load the tokenizer of {model_dir}: {exc}") from None
    limits: list[int] = []
    if max_length is not None:
        limits.append(int(max_length))
    else:
        model_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < 1_000_000:
            limits.append(model_max)
        text_config = config.get("text_config") or {}
        if isinstance(text_config.get("max_position_embeddings"), int):
            limits.append(int(text_config["max_position_embeddings"]))
    if not limits:
        raise DataError(f"{model_dir} states no length limit; pass --max-length")
    placeholder = len(tokenizer(prompts.IMAGE_PLACEHOLDER, add_special_tokens=False)["input_ids"])
    # The longest system prompt of the protocol: a recipe may add either, so count the longer one.
    system = prompts.system_prompt(SessionMode.CLUES) if include_system else None
    return TokenBudget(tokenizer, image_tokens, min(limits), system, placeholder)


class _ImageCheck:
    """Decodes each image once, however many samples share it."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.cache: dict[str, str | None] = {}

    def __call__(self, rel: str) -> str | None:
        if rel not in self.cache:
            self.cache[rel] = self._check(rel)
        return self.cache[rel]

    def _check(self, rel: str) -> str | None:
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            return f"image path {rel!r} must be relative to the image root, without '..'"
        if self.root is None:
            return None
        path = self.root / rel
        if not path.is_file():
            return f"image {rel} does not exist under {self.root}"
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.verify()
            with Image.open(path) as img:
                img.load()
        except Exception as exc:  # Pillow raises many types for broken files
            return f"image {rel} cannot be decoded ({type(exc).__name__}: {exc})"
        return None


def _schema_problems(sample: Any) -> list[str]:
    if not isinstance(sample, dict):
        return ["a sample must be a JSON object"]
    problems: list[str] = []
    if not (isinstance(sample.get("id"), str) and sample["id"].strip()):
        problems.append("'id' must be a non-empty string")
    if "image" in sample and not (isinstance(sample["image"], str) and sample["image"].strip()):
        problems.append("'image' must be a path string")
    conversations = sample.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        return [*problems, "'conversations' must be a non-empty list"]
    for i, turn in enumerate(conversations):
        well_formed = isinstance(turn, dict) and turn.get("from") in (HUMAN, GPT)
        if not (well_formed and isinstance(turn.get("value"), str)):
            problems.append(f"turn {i} must be {{\"from\": \"human\"|\"gpt\", \"value\": text}}")
    return problems


def _conversation_problems(sample: dict[str, Any]) -> list[str]:
    conversations: list[dict[str, str]] = sample["conversations"]
    problems: list[str] = []
    for i, turn in enumerate(conversations):
        expected = HUMAN if i % 2 == 0 else GPT
        if turn["from"] != expected:
            problems.append(f"turn {i} is from {turn['from']}, expected {expected} (roles must alternate, "
                            "starting with human)")
            break
        if not turn["value"].strip():
            problems.append(f"turn {i} ({turn['from']}) is empty")
    if conversations[-1]["from"] != GPT:
        problems.append("the conversation must end with a gpt answer")
    placeholders = [t["value"].count(prompts.IMAGE_PLACEHOLDER) for t in conversations]
    expected_images = 1 if "image" in sample else 0
    if sum(placeholders) != expected_images:
        problems.append(
            f"{sum(placeholders)} {prompts.IMAGE_PLACEHOLDER} placeholder(s) for {expected_images} image(s)"
        )
    elif expected_images and placeholders[0] != 1:
        problems.append(f"the {prompts.IMAGE_PLACEHOLDER} placeholder must be in the first human turn")
    return problems


def _answer_problem(sample_id: str, answer: str) -> str | None:
    part = sample_id.split("-", 1)[0]
    if part not in ("meta", "clue", "case", "dialog"):
        return None
    parsed = parse_answer(answer, None, SessionMode.CLUES if part == "clue" else SessionMode.DIRECT)
    p = parsed.prediction
    if p.lat is None or p.lon is None:
        return "the final answer has no readable coordinates"
    if part == "dialog":
        return None
    if parsed.source is not AnswerSource.JSON or parsed.has_problem("repaired_json"):
        return "the final answer is not the protocol's JSON object"
    if part in ("meta", "clue") and not p.country:
        return "the final answer names no country"
    if part == "clue" and not p.clues:
        return "the clue-mode answer has no clues"
    return None


def validate_samples(
    samples_path: Path,
    image_root: Path | None,
    *,
    budget: TokenBudget | None = None,
) -> Report:
    """Validate every sample; ``report.counts['failed_samples']`` is 0 when the file is fit for training."""
    report = Report(PART, out=samples_path)
    samples = read_samples(samples_path)
    if image_root is not None and not image_root.is_dir():
        raise DataError(f"the image root {image_root} does not exist")
    check_image = _ImageCheck(image_root)
    seen: set[str] = set()
    longest = 0
    for n, sample in enumerate(samples):
        report.count("samples")
        sample_id = sample.get("id") if isinstance(sample, dict) else None
        label = str(sample_id) if isinstance(sample_id, str) and sample_id else f"#{n}"
        problems = _schema_problems(sample)
        if not problems:
            if label in seen:
                problems.append("the id is used by an earlier sample")
            seen.add(label)
            problems.extend(_conversation_problems(sample))
            if "image" in sample:
                image_problem = check_image(sample["image"])
                if image_problem:
                    problems.append(image_problem)
            last = sample["conversations"][-1]
            if last["from"] == GPT:
                answer_problem = _answer_problem(label, last["value"])
                if answer_problem:
                    problems.append(answer_problem)
            if budget is not None:
                length = budget.length(sample["conversations"])
                longest = max(longest, length)
                if length > budget.max_length:
                    problems.append(f"{length} tokens (with {budget.image_tokens} per image) exceed the "
                                    f"model's limit of {budget.max_length}")
        for problem in problems:
            report.problem(label, problem)
        if problems:
            report.count("failed_samples")
    report.counts.setdefault("failed_samples", 0)
    report.counts["images_checked"] = len(check_image.cache)
    if budget is not None:
        report.extra["tokens"] = {"longest": longest, "limit": budget.max_length,
                                  "per_image": budget.image_tokens}
    return report
