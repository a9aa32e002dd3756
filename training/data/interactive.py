"""From reviewed clues on real photos: the +Q / +QA evaluation set, and GRPO prompts with clue entities.

GaGA evaluates its interactive mode (Table III) on dialogs built from clues: a guiding question about
what the photo shows (+Q), and the same question with its answer (+QA). The Clue part's review queue
holds exactly that material for real geotagged photos: per image, the repository clues a teacher kept
and rephrased as observations, approved (and possibly edited) by people. From the approved entries:

- ``dialogs.jsonl``: one dialog per image (``id``, ``question``, ``answer``: the format
  ``geodesk-train evaluate --dialogs`` reads): the question is the protocol-neutral question of the
  chosen clue's topic (``TOPIC_QUESTIONS``), the answer is that clue's reviewed text. The clue is drawn
  with ``Random("{seed}:interactive:{id}")`` among the image's clues whose topic has a question,
  preferring topics that narrow the place down most (``TOPIC_ORDER``);
- ``truth.csv``: the images' true locations (``id, latitude, longitude, country, region, city``), the
  evaluator's truth file for the same ids;
- ``grpo.json``: clue-mode prompts for stage 3 with ``truth`` and ``clue_entities``: the visible
  entities the kept clues name, taken from the repository's facts for their topics (the script's
  name, the language, the calling code, the domain, the currency, the driving side). GLOBE's visual
  grounding reward scores how many of them the answer mentions.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_open
from training.data.clues import APPROVED, REVIEW_STATUSES, ClueRepository, clue_sample, load_clue_repository
from training.data.common import DataError, Report, read_jsonl, write_jsonl, write_manifest, write_samples

PART = "interactive"
# Questions an analyst asks about what a photo shows, per clue topic (none names a place).
TOPIC_QUESTIONS: dict[str, str] = {
    "signs": "What do the road signs look like?",
    "script": "Which writing system is used on the signs?",
    "language": "What language is the text in the photo written in?",
    "plates": "What do the licence plates look like?",
    "phone": "How do the phone numbers on the signs begin?",
    "domain": "What do the web addresses on signs end in?",
    "currency": "What currency are the prices in?",
    "driving_side": "On which side of the road does the traffic drive?",
    "road_lines": "What colour are the road markings?",
    "bollards": "What do the roadside bollards look like?",
    "poles": "What do the utility poles look like?",
    "infrastructure": "What does the street infrastructure look like?",
    "architecture": "What style are the buildings?",
    "vegetation": "What plants and trees grow here?",
    "terrain": "What is the landscape like?",
    "climate": "What does the climate look like?",
    "sun": "Where is the sun, and what season does it look like?",
    "vehicles": "What vehicles can be seen?",
}
TOPIC_ORDER = ("signs", "script", "language", "plates", "phone", "domain", "currency", "road_lines",
               "bollards", "driving_side", "poles", "architecture", "infrastructure", "vegetation",
               "terrain", "climate", "sun", "vehicles")
# Which facts of a country name the visible entity of a clue of that topic.
ENTITY_FACTS = {"script": "scripts", "language": "languages", "phone": "calling_code", "domain": "tld",
                "currency": "currencies", "driving_side": "driving_side"}


def clue_entities(repository: ClueRepository, clue_ids: list[str]) -> list[str]:
    """The entities the kept clues name, from their country's facts (``["Cyrillic", "+7", "left"]``)."""
    out: list[str] = []
    for clue_id in clue_ids:
        clue = repository.clue(clue_id)
        entry = repository.get(clue_id[:2])
        if clue is None or entry is None or clue.topic not in ENTITY_FACTS:
            continue
        value = entry.facts.get(ENTITY_FACTS[clue.topic])
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item and item not in out:
                out.append(item)
    return out


def build_interactive(
    queue: Path, images: Path, out_dir: Path, *, repository: ClueRepository | None = None, seed: int = 0,
) -> Report:
    """Write ``dialogs.jsonl``, ``truth.csv`` and ``grpo.json`` into ``out_dir`` from approved entries
    (``images``: the image folder the Clue part was built from; the entries' paths are relative to it)."""
    repository = repository or load_clue_repository()
    entries = read_jsonl(queue)
    if not entries:
        raise DataError(f"{queue} holds no review entries; build the Clue part first (build-data clues)")
    report = Report(PART, out=out_dir)
    dialogs: list[dict[str, str]] = []
    truths: list[list[str]] = []
    prompts_out: list[dict[str, Any]] = []
    for entry in entries:
        status = REVIEW_STATUSES.get(str(entry.get("status")))
        if status != APPROVED:
            report.count("not_approved")
            continue
        sample_id = str(entry.get("id"))
        row_id = sample_id.removeprefix("clue-")
        location = entry.get("location") or {}
        rephrased = [r for r in entry.get("rephrased") or []
                     if isinstance(r, dict) and str(r.get("text", "")).strip()]
        try:
            lat, lon = float(location["lat"]), float(location["lon"])
        except (KeyError, TypeError, ValueError):
            report.problem(sample_id, "the entry has no location with lat and lon", "bad_entries")
            continue
        topics = []
        for item in rephrased:
            clue = repository.clue(str(item.get("clue_id")))
            if clue is not None and clue.topic in TOPIC_QUESTIONS:
                topics.append((TOPIC_ORDER.index(clue.topic), clue.topic, str(item["text"]).strip()))
        if topics:
            best = min(t[0] for t in topics)
            choices = [t for t in topics if t[0] == best]
            _, topic, text = choices[random.Random(f"{seed}:{PART}:{row_id}").randrange(len(choices))]
            dialogs.append({"id": row_id, "question": TOPIC_QUESTIONS[topic], "answer": text})
            truths.append([row_id, f"{lat}", f"{lon}", str(location.get("country") or ""),
                           str(location.get("region") or ""), str(location.get("city") or "")])
            report.count(f"topic_{topic}")
        else:
            report.count("no_question_topic")
        kept_ids = [str(r.get("clue_id")) for r in rephrased]
        sample = clue_sample(sample_id, str(entry.get("image")), location,
                             [(str(r.get("category")), str(r.get("text")).strip()) for r in rephrased], seed)
        sample["truth"] = {k: location.get(k) for k in ("country", "region", "city", "lat", "lon")}
        sample["clue_entities"] = clue_entities(repository, kept_ids)
        prompts_out.append(sample)
    out_dir.mkdir(parents=True, exist_ok=True)
    report.counts["dialogs"] = write_jsonl(out_dir / "dialogs.jsonl", dialogs)
    with atomic_open(out_dir / "truth.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "latitude", "longitude", "country", "region", "city"])
        writer.writerows(truths)
    report.counts["grpo_prompts"] = write_samples(out_dir / "grpo.json", prompts_out)
    report.counts["grpo_prompts_with_entities"] = sum(1 for s in prompts_out if s["clue_entities"])
    sources = {"review_queue": queue, "clue_repository": repository.path,
               "country_facts": repository.structured_path}
    report.manifest = write_manifest(
        out_dir / "interactive", part=PART, seed=seed, counts=report.counts,
        outputs=[out_dir / "dialogs.jsonl", out_dir / "truth.csv", out_dir / "grpo.json"],
        sources=sources, image_root=images,
    )
    # The GRPO recipe finds the image root in the samples file's own manifest.
    write_manifest(out_dir / "grpo.json", part="grpo", seed=seed, counts=report.counts,
                   outputs=[out_dir / "grpo.json"], sources=sources, image_root=images)
    report.extra["evaluate"] = (f"geodesk-train evaluate MODEL {out_dir / 'truth.csv'} --images {images} "
                                f"--dialogs {out_dir / 'dialogs.jsonl'}")
    return report
