"""Evaluation files: the truth CSV, predictions JSONL (resumable, appended per batch), dialogs JSONL.

Truth CSV: columns ``id, latitude, longitude, country, region, city`` (extra columns ignored; an
``image`` column, when present, names each sample's image file relative to the images folder).
Predictions JSONL: one object per line with ``id, lat, lon, country, region, city, valid`` (extra keys
such as ``raw`` are kept in the file and ignored here). Dialogs JSONL: ``id, question, answer``.

Appending: each batch of answers is written with ONE ``write`` on a file opened with O_APPEND and then
fsynced, so a crash leaves whole lines plus at most one torn last line. On resume a torn last line
(no newline at the end) is cut off and its sample answered again; every complete line is kept.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_json, atomic_write_text
from geodesk.geo.metrics import PredictionRow, TruthRow

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic")
TRUTH_COLUMNS = ("id", "latitude", "longitude")


class EvaluationInputError(ValueError):
    """A file the evaluation reads is malformed; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class TruthSample:
    row: TruthRow
    image: str | None  # the ``image`` column, when the file has one


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _coordinate(value: str | None, what: str, where: str, limit: float) -> float:
    try:
        number = float(value or "")
    except ValueError:
        raise EvaluationInputError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise EvaluationInputError(f"{where}: {what} {number} is outside -{limit:g}..{limit:g}")
    return number


def read_truth(path: str | Path) -> list[TruthSample]:
    """The truth rows in file order. Raises EvaluationInputError naming the file and line."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise EvaluationInputError(f"cannot read the truth file {path}: {exc.strerror or exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in TRUTH_COLUMNS if c not in columns]
        if missing:
            raise EvaluationInputError(
                f"{path}: the header lacks column(s) {', '.join(missing)}; a truth file needs "
                "id, latitude, longitude and, for admin-level accuracy, country, region, city"
            )
        reader.fieldnames = columns
        out: list[TruthSample] = []
        seen: set[str] = set()
        for record in reader:
            where = f"{path} line {reader.line_num}"
            sample_id = _text(record.get("id"))
            if sample_id is None:
                raise EvaluationInputError(f"{where}: the id is empty")
            if sample_id in seen:
                raise EvaluationInputError(f"{where}: id {sample_id!r} appears twice")
            seen.add(sample_id)
            row = TruthRow(
                sample_id,
                _coordinate(record.get("latitude"), "latitude", where, 90.0),
                _coordinate(record.get("longitude"), "longitude", where, 180.0),
                _text(record.get("country")),
                _text(record.get("region")),
                _text(record.get("city")),
            )
            out.append(TruthSample(row, _text(record.get("image"))))
    if not out:
        raise EvaluationInputError(f"{path} has a header but no rows")
    return out


def _optional_float(value: Any, what: str, where: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EvaluationInputError(f"{where}: {what} must be a number or null, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise EvaluationInputError(f"{where}: {what} {value!r} is not a number") from None
    return number if math.isfinite(number) else None


def prediction_from_json(obj: Any, where: str) -> PredictionRow:
    if not isinstance(obj, dict):
        raise EvaluationInputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    sample_id = _text(obj.get("id"))
    if sample_id is None:
        raise EvaluationInputError(f"{where}: the object has no id")
    valid = obj.get("valid", False)
    if not isinstance(valid, bool):
        raise EvaluationInputError(f"{where}: valid must be true or false, got {valid!r}")
    return PredictionRow(
        sample_id,
        _optional_float(obj.get("lat"), "lat", where),
        _optional_float(obj.get("lon"), "lon", where),
        _text(obj.get("country")),
        _text(obj.get("region")),
        _text(obj.get("city")),
        valid,
    )


def read_predictions(path: str | Path, *, allow_torn_tail: bool = False) -> list[PredictionRow]:
    """Predictions in file order. A malformed line raises EvaluationInputError naming it.

    ``allow_torn_tail``: a last line without its newline (an interrupted append) is skipped, not an error.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvaluationInputError(
            f"cannot read the predictions file {path}: {exc.strerror or exc}"
        ) from None
    lines = data.split(b"\n")
    torn = lines[-1] != b""
    out: list[PredictionRow] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if number == len(lines) and torn and allow_torn_tail:
            break
        where = f"{path} line {number}"
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EvaluationInputError(f"{where} is not valid JSON ({exc})") from None
        out.append(prediction_from_json(obj, where))
    return out


def prediction_record(row: PredictionRow, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": row.id,
        "lat": row.lat,
        "lon": row.lon,
        "country": row.country,
        "region": row.region,
        "city": row.city,
        "valid": row.valid,
    }
    record.update(extra)
    return record


class PredictionsFile:
    """An append-only predictions JSONL that a rerun resumes: ids already answered are skipped."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self.done: set[str] = {p.id for p in read_predictions(self.path)} if self.path.exists() else set()

    def _repair_tail(self) -> None:
        """Cut a torn last line (an append interrupted mid-write) so the file is whole lines again."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Write a batch of records with one write call, then fsync (see the module docstring)."""
        if not records:
            return
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, payload)
            while written < len(payload):  # a short write (rare, e.g. a signal): finish the batch
                written += os.write(fd, payload[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done.update(str(r["id"]) for r in records)

    def rows(self) -> list[PredictionRow]:
        return read_predictions(self.path) if self.path.exists() else []


def find_image(images_dir: Path, sample: TruthSample) -> Path | None:
    """The image of a sample: the ``image`` column (relative to ``images_dir``), else ``<id>.<ext>``."""
    if sample.image:
        candidate = images_dir / sample.image
        return candidate if candidate.is_file() else None
    for ext in IMAGE_EXTENSIONS:
        for name in (sample.row.id + ext, sample.row.id + ext.upper()):
            candidate = images_dir / name
            if candidate.is_file():
                return candidate
    return None


@dataclass(frozen=True, slots=True)
class Dialog:
    """One +Q / +QA prompt: a guiding question about the image and its effective answer (GaGA V-C)."""

    id: str
    question: str
    answer: str


def read_dialogs(path: str | Path) -> list[Dialog]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationInputError(f"cannot read the dialogs file {path}: {exc}") from None
    out: list[Dialog] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path} line {number}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EvaluationInputError(f"{where} is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise EvaluationInputError(f"{where}: expected a JSON object")
        fields = {k: _text(obj.get(k)) for k in ("id", "question", "answer")}
        empty = [k for k, v in fields.items() if v is None]
        if empty:
            raise EvaluationInputError(f"{where}: {', '.join(empty)} missing or empty")
        out.append(Dialog(str(fields["id"]), str(fields["question"]), str(fields["answer"])))
    if not out:
        raise EvaluationInputError(f"{path} holds no dialogs")
    return out


def write_json_atomic(path: Path, document: Any) -> None:
    atomic_write_json(path, document)


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def truth_rows(samples: Iterable[TruthSample]) -> list[TruthRow]:
    return [s.row for s in samples]
