"""``geodesk-train geosynth``: write N GeoSynth scenes with their truth, cues and hint dialogs.

Output folder layout::

    DIR/images/<id>.png      the scenes (RGB PNG, size x size)
    DIR/metadata.csv         id, image, latitude, longitude, country, region, city, cues, decisive_hidden
                             (serves as --truth for ``geodesk-train evaluate --images DIR``)
    DIR/dialogs.jsonl        id, question, answer: the +Q / +QA hint about each scene's decisive cue
                             (``geodesk-train evaluate --dialogs``)
    DIR/scenes.jsonl         everything known about each scene: the drawn facts per cue, the decisive
                             cue and whether it is hidden, how many world places fit what is visible
    DIR/geosynth.json        the run: seed, n, size, hidden share, fonts, counts, file hashes

``country`` is the ISO code (as OSV-5M), ``region`` and ``city`` the gazetteer's names, ``cues`` the
visible cue kinds joined by ``;`` and ``decisive_hidden`` ``true`` / ``false``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_bytes, atomic_write_text
from training.geosynth import cues as cue_table
from training.geosynth.fonts import FontBook, install_hint
from training.geosynth.scene import PLAN_VERSION, ScenePlan, plan_scene, render
from training.geosynth.world import GeoSynthError, World, load_world

FORMAT = "geodesk-geosynth/1"
METADATA_COLUMNS = ("id", "image", "latitude", "longitude", "country", "region", "city", "cues",
                    "decisive_hidden")
DEFAULT_SIZE = 224
DEFAULT_HIDDEN_SHARE = 0.3
MAX_N = 1_000_000

# Hint wordings per decisive cue. The question guides (+Q); the answer supplies the cue (+QA).
QUESTIONS: dict[str, tuple[str, ...]] = {
    "sign": ("What place name is written on the road sign?", "Which town does the direction sign name?",
             "Is there a road sign naming a place, and what does it say?"),
    "landmark": ("Which landmark rises on the skyline, and which city is it in?",
                 "What landmark can be seen here?", "Is there a landmark that identifies the town?"),
}


def sign_reading(plan: ScenePlan) -> str:
    """How a person would report the sign: the words as written, with the romanised line if any."""
    lines = plan.sign_lines
    words = " / ".join(lines[:-1])
    return f"{words} ({lines[-1]})"


def hint_answer(plan: ScenePlan) -> str:
    """The analyst's answer to the decisive question: it supplies the decisive cue, seen or not."""
    if plan.decisive == "sign":
        where = "just out of frame" if plan.hidden else "in the photo"
        return f"A road sign {where} reads {sign_reading(plan)}."
    where = "just outside the frame" if plan.hidden else "on the skyline"
    return f"The town's landmark {where} is {plan.place.glyph.description}."


def hint_question(plan: ScenePlan) -> str:
    rng = random.Random(f"{PLAN_VERSION}:question:{plan.id}")
    options = QUESTIONS[plan.decisive]
    return options[rng.randrange(len(options))]


def scene_record(plan: ScenePlan, image: str, candidates: int, sha256: str) -> dict[str, Any]:
    place = plan.place
    return {
        "id": plan.id, "image": image, "sha256": sha256,
        "country_code": place.country.code, "country": place.country_name, "region": place.region,
        "city": place.city_name, "latitude": place.lat, "longitude": place.lon, "month": plan.month,
        "cues": list(plan.cues), "facts": plan.facts, "decisive": plan.decisive,
        "decisive_hidden": plan.hidden, "not_rendered": list(plan.not_rendered),
        "candidates": candidates, "question": hint_question(plan), "answer": hint_answer(plan),
        # The city cues whether drawn or not: what a hint about them supplies.
        "sign_lines": list(plan.sign_lines), "glyph": place.glyph.description,
    }


@dataclass(slots=True)
class GenerateReport:
    out: Path
    seed: int
    n: int
    size: int
    hidden_share: float
    counts: dict[str, int] = field(default_factory=dict)
    per_country: dict[str, int] = field(default_factory=dict)
    fonts: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_document(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "out": str(self.out), "seed": self.seed, "n": self.n, "size": self.size,
            "hidden_share": self.hidden_share, "counts": dict(sorted(self.counts.items())),
            "per_country": dict(sorted(self.per_country.items())), "fonts": self.fonts,
            "warnings": self.warnings,
            "files": {name: str(self.out / name) for name in ("metadata.csv", "dialogs.jsonl", "scenes.jsonl",
                                                              "geosynth.json")},
        }

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        lines = [f"geosynth: {counts}", f"wrote {self.out / 'metadata.csv'}"]
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def png_bytes(plan: ScenePlan, size: int, fonts: FontBook) -> bytes:
    """The scene as PNG bytes. No text chunks, no timestamps: same plan, same fonts -> same bytes."""
    buffer = io.BytesIO()
    render(plan, size, fonts).image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def metadata_row(record: dict[str, Any]) -> list[str]:
    return [record["id"], record["image"], f"{record['latitude']:.5f}", f"{record['longitude']:.5f}",
            record["country_code"], record["region"] or "", record["city"], ";".join(record["cues"]),
            "true" if record["decisive_hidden"] else "false"]


def read_scenes(folder: Path) -> list[dict[str, Any]]:
    """The scene records of a generated folder, in id order; GeoSynthError if it is not one."""
    path = Path(folder) / "scenes.jsonl"
    if not path.is_file():
        raise GeoSynthError(f"{folder} is not a GeoSynth folder (no scenes.jsonl); generate one with "
                            "`geodesk-train geosynth --n N --seed S --out DIR`")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records


def generate(
    out: Path,
    *,
    n: int,
    seed: int,
    size: int = DEFAULT_SIZE,
    hidden_share: float = DEFAULT_HIDDEN_SHARE,
    fonts: FontBook | None = None,
    world: World | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerateReport:
    """Write ``n`` scenes of ``seed`` into ``out`` (created; an earlier run's files are replaced)."""
    if not 1 <= n <= MAX_N:
        raise GeoSynthError(f"--n must be between 1 and {MAX_N}, got {n}")
    if not 32 <= size <= 1024:
        raise GeoSynthError(f"--size must be between 32 and 1024 pixels, got {size}")
    if not 0.0 <= hidden_share <= 1.0:
        raise GeoSynthError(f"--hidden-share must be between 0 and 1, got {hidden_share}")
    problems = cue_table.check_table()
    if problems:
        raise GeoSynthError("the GeoSynth cue table is inconsistent: " + "; ".join(problems))
    fonts = fonts or FontBook.system()
    world = world or load_world()
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    report = GenerateReport(out, seed, n, size, hidden_share, fonts=fonts.describe())
    if fonts.missing:
        report.warnings.append(install_hint(fonts.missing))
    records: list[dict[str, Any]] = []
    for index in range(n):
        plan = plan_scene(world, seed, index, hidden_share=hidden_share, fonts=fonts)
        data = png_bytes(plan, size, fonts)
        rel = f"images/{plan.id}.png"
        atomic_write_bytes(out / rel, data)
        candidates = len(world.candidates(plan.facts))
        record = scene_record(plan, rel, candidates, hashlib.sha256(data).hexdigest())
        records.append(record)
        _tally(report, plan, candidates)
        if progress is not None:
            progress(1)
    _write_tables(out, records)
    manifest = report.as_document() | {
        "plan_version": PLAN_VERSION,
        "cue_table_sha256": hashlib.sha256(Path(cue_table.__file__).read_bytes()).hexdigest(),
        "outputs": {name: hashlib.sha256((out / name).read_bytes()).hexdigest()
                    for name in ("metadata.csv", "dialogs.jsonl", "scenes.jsonl")},
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    atomic_write_text(out / "geosynth.json", text)
    return report


def _tally(report: GenerateReport, plan: ScenePlan, candidates: int) -> None:
    counts = report.counts
    counts["images"] = counts.get("images", 0) + 1
    if plan.hidden:
        counts["decisive_hidden"] = counts.get("decisive_hidden", 0) + 1
    if candidates > 1:
        counts["ambiguous"] = counts.get("ambiguous", 0) + 1
    if plan.not_rendered:
        counts["sign_not_rendered"] = counts.get("sign_not_rendered", 0) + 1
    code = plan.place.country.code
    report.per_country[code] = report.per_country.get(code, 0) + 1


def _write_tables(out: Path, records: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METADATA_COLUMNS)
    for record in records:
        writer.writerow(metadata_row(record))
    atomic_write_text(out / "metadata.csv", buffer.getvalue())
    atomic_write_text(out / "dialogs.jsonl", "".join(
        json.dumps({k: r[k] for k in ("id", "question", "answer")}, ensure_ascii=False) + "\n"
        for r in records))
    atomic_write_text(out / "scenes.jsonl", "".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))
