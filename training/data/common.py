"""What every data builder shares: the sample format, atomic writes, checkpoints, manifests, reports.

Sample format (LLaVA / XTuner conversation JSON)::

    {"id": "meta-123", "image": "00/123.jpg",
     "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": "..."}]}

``image`` is relative to an image root that the manifest records; a training config names the same
folder (XTuner's ``image_folder``). Samples carry nothing else, because ``datasets.Dataset.from_list``
(XTuner's loader) infers one schema from the rows and chokes on per-part extras; what a builder knows
about how a sample came about (teacher answers, the decision path, offered clues) goes into the
builder's trace file instead.

A file ending in ``.jsonl`` holds one sample per line, anything else one JSON list (see ADR 0010).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from geodesk.atomic import atomic_open, atomic_write_json
from geodesk.engine import prompts

Sample = dict[str, Any]
HUMAN = "human"
GPT = "gpt"
MANIFEST_FORMAT = "geodesk-training-data/1"
MANIFEST_SUFFIX = ".manifest.json"
TRACE_SUFFIX = ".trace.jsonl"
MAX_REPORTED_PROBLEMS = 200  # per report; the counts always cover everything


class DataError(Exception):
    """Bad input or a failed build step, worded so a person can act on it."""


# --------------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------------


def make_sample(sample_id: str, image: str | None, turns: Sequence[tuple[str, str]]) -> Sample:
    """A LLaVA sample from (human, gpt) pairs; the first human text carries the ``<image>`` placeholder."""
    if not turns:
        raise ValueError(f"sample {sample_id}: a conversation needs at least one exchange")
    conversations: list[dict[str, str]] = []
    for human, gpt in turns:
        conversations.append({"from": HUMAN, "value": human})
        conversations.append({"from": GPT, "value": gpt})
    sample: Sample = {"id": sample_id}
    if image is not None:
        sample["image"] = image
    sample["conversations"] = conversations
    return sample


def first_human(text_without_image: str) -> str:
    """The first user text in LLaVA's layout: the image placeholder, a newline, then the text."""
    return f"{prompts.IMAGE_PLACEHOLDER}\n{text_without_image}"


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() == ".jsonl"


def read_samples(path: Path) -> list[Sample]:
    """Samples from a ``.json`` list or a ``.jsonl`` file; DataError naming the line when it is broken."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; give the samples file a builder wrote")
    if is_jsonl(path):
        out: list[Sample] = []
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}, line {number}: not JSON ({exc.msg})") from None
                out.append(item)
        return out
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(document, list):
        raise DataError(f"{path} must hold a JSON list of samples, found a {type(document).__name__}")
    return document


def write_samples(path: Path, samples: Iterable[Sample]) -> int:
    """Write samples atomically (JSON list, or JSONL for ``.jsonl``); returns how many."""
    count = 0
    with atomic_open(path) as fh:
        if is_jsonl(path):
            for sample in samples:
                fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
                count += 1
        else:
            # One sample per line inside the list: diffable, and still one JSON document.
            fh.write("[")
            for sample in samples:
                fh.write(("\n" if count == 0 else ",\n") + json.dumps(sample, ensure_ascii=False))
                count += 1
            fh.write("\n]\n" if count else "]\n")
    return count


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with atomic_open(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json(path: Path, document: Any) -> None:
    atomic_write_json(path, document, sort_keys=True)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (a crash mid-append) is ignored, other bad lines raise."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break  # the last append was interrupted; that id is simply redone
            raise DataError(f"{path}, line {number}: not JSON ({exc.msg}); fix or remove that line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object")
        out.append(record)
    return out


class Checkpoint:
    """An append-only JSONL log of finished items (the builder's trace): what makes a build resumable.

    Each line is flushed and fsynced before the next item starts, so an interruption loses at most the
    item in progress. The last record per id wins; ids whose status is in ``final`` are not redone.
    """

    def __init__(self, path: Path, final: frozenset[str]) -> None:
        self.path = path
        self.final = final
        self.records: dict[str, dict[str, Any]] = {}
        for record in read_jsonl(path):
            if "id" in record:
                self.records[str(record["id"])] = record
        self._fh: IO[str] | None = None

    def finished(self, item_id: str) -> bool:
        record = self.records.get(item_id)
        return record is not None and record.get("status") in self.final

    def append(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[str(record["id"])] = record

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def samples(self, order: Sequence[str] | None = None) -> list[Sample]:
        """The samples of finished records: those of ``order`` (the ids of the current input, so rows
        removed from the table since an earlier run drop out), or all of them in log order."""
        seen: set[str] = set()
        out: list[Sample] = []
        ids = list(order) if order is not None else list(self.records)
        for item_id in ids:
            if item_id in seen:
                continue
            seen.add(item_id)
            record = self.records.get(item_id)
            if record and record.get("status") in self.final and isinstance(record.get("sample"), dict):
                out.append(record["sample"])
        return out


# --------------------------------------------------------------------------------------------------
# Hashes, manifest, report
# --------------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + MANIFEST_SUFFIX)


def trace_path(out: Path) -> Path:
    return out.with_name(out.name + TRACE_SUFFIX)


def write_manifest(
    out: Path,
    *,
    part: str,
    seed: int | None,
    counts: Mapping[str, int],
    outputs: Sequence[Path],
    sources: Mapping[str, Path | None],
    image_root: Path | None,
    command: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """``OUT.manifest.json``: hashes of every output and source, counts, seed and command line.

    Model packages copy these hashes into their provenance, so a package names the exact data it saw.
    """
    from geodesk import __version__ as geodesk_version

    document: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "part": part,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(command if command is not None else sys.argv),
        "seed": seed,
        "protocol_version": prompts.PROTOCOL_VERSION,
        "geodesk_version": geodesk_version,
        "image_root": None if image_root is None else str(image_root.resolve()),
        "counts": dict(counts),
        "outputs": {
            p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in outputs if p.is_file()
        },
        "sources": {
            name: None if p is None else {"path": str(p.resolve()), "sha256": sha256_file(p)}
            for name, p in sources.items()
            if p is None or p.is_file()
        },
    }
    if extra:
        document.update(extra)
    target = manifest_path(out)
    write_json(target, document)
    return target


@dataclass(slots=True)
class Report:
    """What one build did: counts and the problems (id + reason) a person should look at."""

    part: str
    out: Path | None = None
    manifest: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def problem(self, item_id: str, reason: str, key: str | None = None) -> None:
        if key is not None:
            self.count(key)
        self.count("problems")
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append({"id": item_id, "reason": reason})

    def as_document(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "out": None if self.out is None else str(self.out),
            "manifest": None if self.manifest is None else str(self.manifest),
            "counts": dict(sorted(self.counts.items())),
            "problems": self.problems,
            **self.extra,
        }

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        lines = [f"{self.part}: {counts}"]
        if self.out is not None:
            lines.append(f"{'checked' if self.part == 'validate' else 'wrote'} {self.out}")
        lines.extend(f"  {p['id']}: {p['reason']}" for p in self.problems[:20])
        if len(self.problems) > 20:
            lines.append(f"  ... {len(self.problems) - 20} more problems (--json lists up to "
                         f"{MAX_REPORTED_PROBLEMS})")
        return "\n".join(lines)


def progress(items: Sequence[Any], *, enabled: bool, desc: str) -> Iterable[Any]:
    """A tqdm bar on stderr when enabled (a terminal, no --json), else the items as they are."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)
