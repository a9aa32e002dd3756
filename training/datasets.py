"""LLaVA conversation JSON -> token ids, labels and pixel values; a collator; length-grouped batches.

Input format (what ``training/data`` writes, LLaVA / XTuner's layout)::

    [{"id": "osv-123", "image": "images/123.jpg",            # or a list of paths, or absent
      "system": "...",                                       # optional; see ``system_prompt`` below
      "conversations": [{"from": "human", "value": "<image>\\nWhere was this photo taken? ..."},
                        {"from": "gpt", "value": "{\\"country\\": \\"France\\", ...}"}, ...]}]

Each sample is rendered with the model's own chat template, exactly as the ``hf`` backend renders a
session at inference (system prompt, user turns with one image part per ``<image>`` placeholder,
assistant turns), so the training ids of the prompt part equal the ids the model sees when it is
asked (a test checks this against ``processor(full_text, images)``). Images are padded to a square
with the processor's mean colour (:func:`geodesk.engine.imaging.prepare_image`) before the processor.

Labels are ``-100`` everywhere except the assistant answers and their end-of-turn token: the question
stays in the sample as context but is not trained on. ``train_on="last"`` (for a whole data set, or
per file: ``{"path": ..., "train_on": "last"}``) trains on the last answer only: closed-case dialogs
keep the model's own intermediate answers as context for the analyst's hints, and should not teach
them (ADR 0010). (XTuner's LLaVA pretraining, which GaGA's stage 1
used, drops the question and trains on the caption alone; we keep it, see docs/adr/0011.)

Length: a sample is at most ``max_length`` tokens *including* the image tokens (2048 with 576 image
tokens leaves GaGA's 1472 text tokens). Longer samples are cut at the end and counted as truncated; a
sample whose image block, or whose first answer token, lies beyond the limit is dropped and counted.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from geodesk.engine.backends.base import template_messages
from geodesk.engine.families import LLAVA, Family
from geodesk.engine.imaging import bounded_rgb, prepare_image

IGNORE_INDEX = -100
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
SYSTEM_PROMPT_CHOICES = ("auto", "direct", "clues", "none")
TRAIN_ON_CHOICES = ("all", "last")  # which assistant answers carry labels


class DatasetError(Exception):
    """The training data cannot be used as is; the message names the file / sample and what to fix."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One conversation, as read from the JSON file (images not opened yet)."""

    id: str
    images: tuple[Path, ...]
    messages: tuple[tuple[str, str], ...]  # (role, text with <image> placeholders)
    source: str  # the JSON file it came from
    train_on: str = "all"  # "all" answers labelled, or only the "last" one


@dataclass(slots=True)
class DatasetReport:
    """What reading the data did: kept, truncated and dropped samples (with reasons)."""

    files: list[str] = field(default_factory=list)
    samples: int = 0
    truncated: int = 0
    dropped: int = 0
    dropped_examples: list[str] = field(default_factory=list)  # "id: reason", the first 20
    longest: int = 0
    image_tokens_per_image: int = 0

    def drop(self, sample_id: str, reason: str) -> None:
        self.dropped += 1
        if len(self.dropped_examples) < 20:
            self.dropped_examples.append(f"{sample_id}: {reason}")

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "samples": self.samples,
            "truncated": self.truncated,
            "dropped": self.dropped,
            "dropped_examples": self.dropped_examples,
            "longest": self.longest,
            "image_tokens_per_image": self.image_tokens_per_image,
        }


def builder_manifest(path: Path) -> Path | None:
    """The ``<file>.manifest.json`` that ``training/data`` writes beside each part, if there is one."""
    candidate = path.with_name(path.name + ".manifest.json")
    return candidate if candidate.is_file() else None


def _default_image_root(file: Path) -> Path:
    """The image root the builder's manifest records, else the data file's folder."""
    manifest = builder_manifest(file)
    if manifest is not None:
        try:
            root = json.loads(manifest.read_text(encoding="utf-8")).get("image_root")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DatasetError(f"{manifest} is not valid JSON; rebuild the data part") from None
        if isinstance(root, str) and root:
            return Path(root)
    return file.parent


def read_llava_json(
    path: str | Path, image_root: str | Path | None = None, train_on: str = "all"
) -> list[Sample]:
    """Read one LLaVA conversation file (a JSON list, or one sample per line for ``.jsonl``).

    Image paths are relative to ``image_root``; by default the ``image_root`` recorded in the builder's
    ``<file>.manifest.json``, else the file's folder.
    """
    file = Path(path).expanduser()
    if train_on not in TRAIN_ON_CHOICES:
        choices = ", ".join(TRAIN_ON_CHOICES)
        raise DatasetError(f"train_on of {file} must be one of {choices}, not {train_on!r}")
    if not file.is_file():
        raise DatasetError(f"training data file {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".jsonl":
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{file} is not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{file} must hold a JSON list of samples (LLaVA conversation format)")
    root = Path(image_root).expanduser() if image_root is not None else _default_image_root(file)
    samples = []
    for n, item in enumerate(data):
        where = f"{file.name} sample {n}"
        if not isinstance(item, dict) or not isinstance(item.get("conversations"), list):
            raise DatasetError(f"{where}: needs a 'conversations' list")
        sample_id = str(item.get("id", n))
        image_field = item.get("image")
        names: list[str]
        if image_field is None:
            names = []
        elif isinstance(image_field, str):
            names = [image_field]
        elif isinstance(image_field, list) and all(isinstance(x, str) for x in image_field):
            names = list(image_field)
        else:
            raise DatasetError(f"{where} ({sample_id}): 'image' must be a path or a list of paths")
        messages: list[tuple[str, str]] = []
        if isinstance(item.get("system"), str):
            messages.append(("system", item["system"]))
        for turn in item["conversations"]:
            if (
                not isinstance(turn, dict)
                or turn.get("from") not in ROLES
                or not isinstance(turn.get("value"), str)
            ):
                raise DatasetError(
                    f"{where} ({sample_id}): each turn needs 'from' (human, gpt or system) "
                    "and a string 'value'"
                )
            messages.append((ROLES[turn["from"]], turn["value"]))
        placeholders = sum(text.count(prompts.IMAGE_PLACEHOLDER) for _, text in messages)
        if placeholders != len(names):
            raise DatasetError(
                f"{where} ({sample_id}): {placeholders} {prompts.IMAGE_PLACEHOLDER} placeholder(s) but "
                f"{len(names)} image(s); put one placeholder where each image goes"
            )
        if not any(role == "assistant" for role, _ in messages):
            raise DatasetError(f"{where} ({sample_id}): no 'gpt' turn, nothing to learn from")
        samples.append(
            Sample(sample_id, tuple(root / name for name in names), tuple(messages), str(file), train_on)
        )
    return samples


def default_system_prompt(messages: Sequence[tuple[str, str]], choice: str) -> str | None:
    """The system prompt for a sample that has none: the one the app uses for the sample's mode.

    ``auto``: the clue-mode prompt when the first user turn asks for clues (its format line lists the
    ``"clues"`` field), else the direct-mode prompt: at inference the sessions service always sends
    ``prompts.system_prompt(mode)``, so training does too.
    """
    if choice == "none":
        return None
    if choice == "auto":
        first_user = next((text for role, text in messages if role == "user"), "")
        choice = "clues" if '"clues": [' in first_user else "direct"
    return prompts.system_prompt(SessionMode.CLUES if choice == "clues" else SessionMode.DIRECT)


class LlavaConversationDataset:
    """A map-style dataset over one or more LLaVA JSON files (the "mix" of parts is their concatenation).

    ``__getitem__`` returns ``{"input_ids": LongTensor[L], "labels": LongTensor[L],
    "pixel_values": FloatTensor[n_images, 3, H, W] | None}``.
    """

    def __init__(
        self,
        files: Sequence[str | Path | Mapping[str, Any]],
        processor: Any,
        *,
        max_length: int = 2048,
        system_prompt: str = "auto",
        family: Family = LLAVA,
        train_on: str = "all",
    ) -> None:
        if system_prompt not in SYSTEM_PROMPT_CHOICES:
            raise DatasetError(f"system_prompt must be one of {', '.join(SYSTEM_PROMPT_CHOICES)}")
        if not files:
            raise DatasetError("no training data files given (data.files is empty)")
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.family = family  # LLaVA pads images to square; Qwen2.5-VL's image token count varies
        self.max_length = max_length
        self.system_prompt = system_prompt
        self.image_token = str(getattr(processor, "image_token", prompts.IMAGE_PLACEHOLDER))
        self.image_token_id = int(self.tokenizer.convert_tokens_to_ids(self.image_token))
        image_processor = processor.image_processor
        mean = getattr(image_processor, "image_mean", None)
        self.image_mean: tuple[float, ...] | None = tuple(mean) if mean else None
        self.tokens_per_image = self._count_image_tokens()
        self.report = DatasetReport(image_tokens_per_image=self.tokens_per_image)
        read: list[Sample] = []
        for entry in files:
            if isinstance(entry, Mapping):
                path, root = entry["path"], entry.get("image_root")
                file_train_on = str(entry.get("train_on", train_on))
            else:
                path, root, file_train_on = entry, None, train_on
            read.extend(read_llava_json(path, root, file_train_on))
            self.report.files.append(str(Path(path)))
        self.samples: list[Sample] = []
        self.lengths: list[int] = []  # tokens after truncation, for length grouping
        for sample in read:
            missing = [p for p in sample.images if not p.is_file()]
            if missing:
                self.report.drop(sample.id, f"image {missing[0]} does not exist")
                continue
            ids, labels = self._tokenize(sample)
            length = min(len(ids), max_length)
            image_end = max((i + 1 for i, t in enumerate(ids) if t == self.image_token_id), default=0)
            if image_end > max_length:
                self.report.drop(sample.id, f"its images end at token {image_end} > max_length {max_length}")
                continue
            if not any(label != IGNORE_INDEX for label in labels[:max_length]):
                self.report.drop(sample.id, f"no answer token within max_length {max_length}")
                continue
            if len(ids) > max_length:
                self.report.truncated += 1
            self.samples.append(sample)
            self.lengths.append(length)
        self.report.samples = len(self.samples)
        self.report.longest = max(self.lengths, default=0)
        if not self.samples:
            raise DatasetError(
                f"no usable samples in {', '.join(self.report.files)}: {self.report.to_json()}"
            )

    def _count_image_tokens(self) -> int:
        """How many placeholder ids the processor expands one image into (576 for CLIP-L/336, 16 tiny)."""
        from PIL import Image

        # CLIP processors crop to crop_size; Qwen2.5-VL resizes within its pixel bounds (an estimate
        # for length grouping: __getitem__ counts each image's tokens from its own grid).
        crop = getattr(self.processor.image_processor, "crop_size", None) or {"height": 336, "width": 336}
        blank = Image.new("RGB", (int(crop["width"]), int(crop["height"])))
        encoded = self.processor(text=[self.image_token], images=[blank], add_special_tokens=False)
        return sum(1 for t in encoded["input_ids"][0] if int(t) == self.image_token_id)

    def __len__(self) -> int:
        return len(self.samples)

    def messages_for(self, sample: Sample) -> list[tuple[str, str]]:
        messages = list(sample.messages)
        if not any(role == "system" for role, _ in messages):
            system = default_system_prompt(messages, self.system_prompt)
            if system is not None:
                messages.insert(0, ("system", system))
        return messages

    def render(self, sample: Sample) -> list[tuple[str, bool]]:
        """The sample's template text cut into (chunk, trained) pieces, in order; joined = full text.

        Rendering the template on growing prefixes of the conversation finds where each assistant
        answer starts and ends, whatever the template is, as long as it renders prefixes stably (Llama-3,
        Vicuna and ChatML templates do; anything else is refused).
        """
        messages = template_messages(self.messages_for(sample))
        apply = self.processor.apply_chat_template

        def text(upto: int, generation_prompt: bool = False) -> str:
            return str(apply(messages[:upto], tokenize=False, add_generation_prompt=generation_prompt))

        pieces: list[tuple[str, bool]] = []
        done = ""  # the rendered prefix so far (processors refuse to render an empty conversation)
        last_answer = max(k for k, m in enumerate(messages) if m["role"] == "assistant")
        for k, message in enumerate(messages):
            upto = text(k + 1)
            if message["role"] == "assistant":
                if k == 0:
                    raise DatasetError("a conversation cannot start with a 'gpt' turn")
                header = text(k, generation_prompt=True)
                if not (header.startswith(done) and upto.startswith(header)):
                    raise DatasetError("the chat template does not render conversation prefixes stably")
                pieces.append((header[len(done) :], False))
                trained = sample.train_on == "all" or k == last_answer
                pieces.append((upto[len(header) :], trained))  # answer + end-of-turn token
            else:
                if not upto.startswith(done):
                    raise DatasetError("the chat template does not render conversation prefixes stably")
                pieces.append((upto[len(done) :], False))
            done = upto
        return [(chunk, trained) for chunk, trained in pieces if chunk]

    def _tokenize(
        self, sample: Sample, per_image: Sequence[int] | None = None
    ) -> tuple[list[int], list[int]]:
        """Token ids and labels; ``per_image``: image tokens of each image (default tokens_per_image)."""
        ids: list[int] = []
        labels: list[int] = []
        seen = 0
        for chunk, trained in self.render(sample):
            chunk_ids = self.tokenizer(chunk, add_special_tokens=False)["input_ids"]
            for t in chunk_ids:
                # The processor expands each image token into one id per visual token.
                n = 1
                if t == self.image_token_id:
                    n = per_image[seen] if per_image is not None and seen < len(per_image) else (
                        self.tokens_per_image
                    )
                    seen += 1
                ids.extend([t] * n)
                labels.extend([t if trained and t != self.image_token_id else IGNORE_INDEX] * n)
        return ids, labels

    def load_images(self, sample: Sample) -> list[Any]:
        from PIL import Image, UnidentifiedImageError

        images = []
        for path in sample.images:
            try:
                with Image.open(path) as img:
                    if self.family.pad_to_square:
                        images.append(prepare_image(img, self.image_mean))
                    else:  # the family resizes on its side; the decode is bounded all the same
                        images.append(bounded_rgb(img, self.image_mean))
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise DatasetError(
                    f"sample {sample.id} ({sample.source}): image {path} cannot be read ({exc}); "
                    "fix or remove it (geodesk-train build-data validates data sets)"
                ) from None
        return images

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        sample = self.samples[index]
        pixel_values = None
        grid = None
        per_image: list[int] | None = None
        if sample.images:
            encoded = self.processor.image_processor(self.load_images(sample), return_tensors="pt")
            pixel_values = encoded["pixel_values"]  # LLaVA [n_images, 3, H, W]; Qwen [patches, C*T*P*P]
            grid = encoded.get("image_grid_thw")  # Qwen2.5-VL: [n_images, 3] (t, h, w) patches
            if grid is not None:
                merge = int(getattr(self.processor.image_processor, "merge_size", 1))
                per_image = [int(torch.prod(g)) // (merge * merge) for g in grid]
        ids, labels = self._tokenize(sample, per_image)
        ids, labels = ids[: self.max_length], labels[: self.max_length]
        item: dict[str, Any] = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "pixel_values": pixel_values,
        }
        if grid is not None:
            item["image_grid_thw"] = grid
            # 1 marks image tokens: Qwen2.5-VL places its 3-D M-RoPE positions from it.
            item["mm_token_type_ids"] = (item["input_ids"] == self.image_token_id).long()
        return item


class Collator:
    """Right-pads a list of samples into a batch.

    Out: ``input_ids`` / ``labels`` / ``attention_mask`` ``[B, L_max]`` (pad id / -100 / 0 on padding),
    ``pixel_values`` ``[total images in the batch, 3, H, W]`` in sample order (LLaVA fills the image
    placeholders of the flattened batch in that order), absent when no sample has an image.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(int(item["input_ids"].shape[0]) for item in batch)
        input_ids = torch.full((len(batch), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), longest), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, item in enumerate(batch):
            n = int(item["input_ids"].shape[0])
            input_ids[row, :n] = item["input_ids"]
            labels[row, :n] = item["labels"]
            attention[row, :n] = 1
        out: dict[str, Any] = {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
        pixels = [item["pixel_values"] for item in batch if item["pixel_values"] is not None]
        if pixels:
            out["pixel_values"] = torch.cat(pixels, dim=0)
        grids = [item["image_grid_thw"] for item in batch if item.get("image_grid_thw") is not None]
        if grids:  # Qwen2.5-VL: one (t, h, w) row per image, in the order of pixel_values
            out["image_grid_thw"] = torch.cat(grids, dim=0)
            types = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, item in enumerate(batch):
                if "mm_token_type_ids" in item:
                    types[row, : int(item["input_ids"].shape[0])] = item["mm_token_type_ids"]
            out["mm_token_type_ids"] = types
        return out


class LengthGroupedBatchSampler:
    """Batches of similar lengths (less padding), reshuffled each epoch, resumable mid-epoch.

    Per epoch (generator seeded with ``seed + epoch``): shuffle all indices, cut them into mega-batches
    of ``batch_size * world_size * group_factor``, sort each mega-batch by length (longest first) and cut
    it into batches, then shuffle the batch order. The epoch's batch list is the same on every rank;
    rank r takes batches r, r + world_size, ... (a trailing partial round is dropped so every rank runs
    the same number of steps). ``set_epoch(e, start=b)`` skips the first ``b`` of this rank's batches:
    with the same seed and data, resuming yields exactly the batches an uninterrupted run would.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        group_by_length: bool = True,
        group_factor: int = 50,
        world_size: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_by_length = group_by_length
        self.group_factor = group_factor
        self.world_size = world_size
        self.rank = rank
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed + epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches: list[list[int]] = []
        if self.group_by_length:
            mega = self.batch_size * self.world_size * self.group_factor
            for m in range(0, len(order), mega):
                group = sorted(order[m : m + mega], key=lambda i: -self.lengths[i])
                batches.extend(group[b : b + self.batch_size] for b in range(0, len(group), self.batch_size))
            rng.shuffle(batches)
        else:
            batches = [order[b : b + self.batch_size] for b in range(0, len(order), self.batch_size)]
        rounds = len(batches) // self.world_size
        return batches[: rounds * self.world_size]

    def __len__(self) -> int:
        """Batches per epoch for this rank (before skipping)."""
        return math.ceil(len(self.lengths) / self.batch_size) // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        mine = self.epoch_batches(self.epoch)[self.rank :: self.world_size]
        yield from mine[self.start :]
