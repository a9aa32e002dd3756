"""Asking a teacher model: any engine ``Backend`` (hf in-process, remote OpenAI-compatible server).

The builders only need "this image, this conversation, give me the next answer"; everything about
loading, quantization and serving stays in geodesk's engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.engine import prompts
from training.data.common import Checkpoint, DataError, Report, progress, trace_path
from training.data.metadata import index_images, read_metadata

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend, GenerationSettings
    from training.data.metadata import MetaRow


TEACHER_TEMPERATURE = 1.0  # GaGA's teacher decoding: temperature 1, top-p 1
TEACHER_TOP_P = 1.0


def default_settings(max_new_tokens: int, seed: int | None, *, greedy: bool = False) -> GenerationSettings:
    """The paper's teacher decoding (temperature 1, top-p 1), seeded so a rerun draws the same answers
    on the same backend; ``greedy`` (temperature 0) is the named deviation for reproducibility across
    backends."""
    from geodesk.engine.backends.base import GenerationSettings

    temperature = 0.0 if greedy else TEACHER_TEMPERATURE
    return GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, top_p=TEACHER_TOP_P,
                              seed=seed)


def teacher_name(teacher: Backend) -> dict[str, Any]:
    ident = teacher.identity
    return {"backend": teacher.name, "name": ident.name, "version": ident.version, "sha256": ident.sha256}


def open_image(path: Path) -> Any:
    """The image upright and in RGB; DataError when it cannot be decoded."""
    from geodesk.engine.imaging import open_rgb

    try:
        return open_rgb(path)  # bounded: a teacher model gets what every geodesk model gets
    except (OSError, ValueError) as exc:
        raise DataError(f"the image {path} cannot be decoded ({exc})") from None


def ask_teacher(
    teacher: Backend, image_path: Path, turns: Sequence[str], settings: GenerationSettings
) -> str:
    """The teacher's next answer. ``turns`` alternate user, assistant, ..., user; the first user text
    holds the one ``<image>`` placeholder. Backend failures become DataError (the item is retried later)."""
    from geodesk.engine.backends.base import BackendError, ChatMessage

    if len(turns) % 2 != 1:
        raise ValueError("turns must alternate user/assistant and end with a user text")
    image = open_image(image_path)
    messages = []
    for i, text in enumerate(turns):
        if i % 2:
            messages.append(ChatMessage("assistant", text))
        else:
            images = (image,) if prompts.IMAGE_PLACEHOLDER in text else ()
            messages.append(ChatMessage("user", text, images))
    try:
        result = teacher.generate(messages, settings)
    except BackendError as exc:
        raise DataError(f"the teacher failed: {exc}") from None
    return result.text


RowStep = Callable[["MetaRow", str, str], dict[str, Any]]  # (row, sample id, image path) -> trace record


def run_rows(
    part: str,
    metadata: Path,
    images: Path,
    out: Path,
    report: Report,
    final: frozenset[str],
    step: RowStep,
    *,
    show_progress: bool = False,
) -> tuple[Checkpoint, list[str]]:
    """Drive a teacher part over every metadata row that has an image, resumably.

    Rows without an image and unreadable rows are reported; rows whose trace record is already final
    (``final`` statuses) are skipped, so a rerun continues where an interrupted one stopped. Each
    new record is appended to the trace as soon as it exists. Returns the trace checkpoint (closed)
    and the sample ids in table order.
    """
    rows, bad = read_metadata(metadata)
    for b in bad:
        report.problem(b.id or f"line {b.line}", f"line {b.line}: {b.reason}", "bad_rows")
    report.count("rows", len(rows))
    index = index_images(images)
    checkpoint = Checkpoint(trace_path(out), final)
    order: list[str] = []
    try:
        for row in progress(rows, enabled=show_progress, desc=part):
            sample_id = f"{part}-{row.id}"
            order.append(sample_id)
            rel = index.get(row.id)
            if rel is None:
                report.problem(row.id, f"no image named {row.id}.<ext> under {images}", "missing_images")
                continue
            if checkpoint.finished(sample_id):
                report.count("resumed")
                continue
            record = step(row, sample_id, rel)
            checkpoint.append(record)
            if record["status"] == "failed":
                report.problem(sample_id, record["reason"], "teacher_failures")
    finally:
        checkpoint.close()
    for record in checkpoint.records.values():
        report.count(f"status_{record['status']}")
    return checkpoint, order
