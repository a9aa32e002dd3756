"""MG-Geo style training data from a GeoSynth folder, written from the generator's own truth.

No teacher model is needed: the generator knows what every scene shows, so each part is exact.

- Meta part (``meta-<id>``): a direct-mode question (``prompts.first_turn`` with a drawn wording) and
  the JSON answer (``prompts.format_answer``), as ``training.data.meta`` builds it for real photos.
- Clue part (``clue-<id>``): a clue-mode question; the answer lists one clue per visible cue, written
  from the facts drawn (category from ``prompts.CLUE_CATEGORIES``), the reasoning line of
  ``training.data.clues`` and the location.
- Dialog part (``dialog-<id>-q`` and ``dialog-<id>-qa``): a +Q and a +QA exchange about the scene's
  decisive cue, with the protocol's hint wording (``HintKind.QUESTION`` / ``HintKind.QA``). Half of the
  samples carry the hint in the first turn (as ``geodesk-train evaluate --dialogs`` asks), half as a
  follow-up turn after a first answer (as the app's hint composer sends it). When the decisive cue
  is hidden, the first answer is a guess among the places consistent with what is visible (the truth
  only by chance), a +Q turn cannot improve it (the question points at something out of frame), and
  the +QA turn, whose answer supplies the cue, moves the answer to the truth.
- Hint-text part (``hints-<id>``): the first-turn +QA exchange of the dialog part with the image
  withheld, so the hint alone settles the place: read the town off the quoted sign, or know which town
  a described landmark belongs to, then write the answer JSON from that. A pretrained LLM brings this
  text skill (copying a name it was given, world knowledge about places) to GaGA's training; the demo's
  language model starts from random weights and, without this part, learns to answer from the image
  alone and leaves the hint unread (docs/adr/0015-demo-model.md). It is text-only and not an MG-Geo part.

Samples are the LLaVA conversation JSON of ``training.data.common``; image paths are relative to the
GeoSynth folder, which each part's manifest records as its image root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodesk.domain import Hint, HintKind, SessionMode
from geodesk.engine import prompts
from training.data.clues import clue_reasoning
from training.data.common import Sample, make_sample, write_manifest, write_samples
from training.data.meta import sample_rng
from training.data.metadata import place_text
from training.geosynth.cues import BOLLARD_STYLES, BY_CODE, Biome
from training.geosynth.generator import read_scenes
from training.geosynth.world import World, load_world

PARTS = ("meta", "clue", "dialog", "hints")
_SCRIPT_NAMES = {"sans": None, "cjk-jp": "Japanese kanji", "cjk-kr": "Korean Hangul", "thai": "Thai",
                 "devanagari": "Devanagari"}
_VEGETATION: dict[str, str] = {
    Biome.TROPICAL: "Palm trees on lush green ground suggest a tropical climate.",
    Biome.SAVANNA: "Dry grassland with flat-topped acacia trees: a savanna landscape.",
    Biome.ARID: "Sandy ground with cacti and low scrub points to a dry climate.",
    Biome.MEDITERRANEAN: "Olive trees and cypresses on dry ground suggest a Mediterranean climate.",
    Biome.TEMPERATE: "Green fields and round deciduous trees suggest a temperate climate.",
    Biome.BOREAL: "Conifer and birch forest points to a cold northern climate.",
    Biome.SUBPOLAR: "Sparse, stunted conifers on grey-green ground suggest a subpolar climate.",
}


def _location(record: dict[str, Any]) -> dict[str, Any]:
    return {"country": record["country"], "region": record["region"], "city": record["city"],
            "lat": float(record["latitude"]), "lon": float(record["longitude"])}


def _answer(location: dict[str, Any]) -> str:
    return prompts.format_answer(country=location["country"], region=location["region"],
                                 city=location["city"], lat=location["lat"], lon=location["lon"])


def _place(location: dict[str, Any]) -> str:
    return place_text(location.get("city"), location.get("region"), location.get("country"))


def _sign_reading(lines: Sequence[str]) -> str:
    return " / ".join(lines[:-1]) + f" ({lines[-1]})"


def clue_texts(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(category, text) for every visible cue of a scene, in the cue order of metadata.csv."""
    facts: dict[str, Any] = record["facts"]
    country = BY_CODE[record["country_code"]]
    out: list[tuple[str, str]] = []
    for cue in record["cues"]:
        value: Any = facts[cue]  # every listed cue has its drawn fact
        if cue == "driving_side":
            out.append(("road_markings", f"Traffic keeps to the {value}: the car driving away is in the "
                                         f"{value} lane and oncoming cars use the other one."))
        elif cue == "plates":
            parts = []
            if value.get("front") == "none":
                parts.append("the oncoming car has no front plate")
            elif value.get("front"):
                parts.append(f"the front plate is {value['front'].replace('_', ' ')}")
            if value.get("rear"):
                parts.append(f"the rear plate is {value['rear'].replace('_', ' ')}")
            band = {"eu": " with the blue EU band on the left", "national": " with a blue national band on "
                    "the left", "mercosur": " with a blue band along the top (the Mercosur design)"}.get(
                        value.get("band") or "", "")
            text = "; ".join(parts) + band + "."
            out.append(("signage_language", text[:1].upper() + text[1:]))
        elif cue == "centre_line":
            double = " and doubled" if country.centre_double else ""
            out.append(("road_markings", f"The centre line is {value}{double}."))
        elif cue == "edge_lines":
            out.append(("road_markings", f"The edge lines are {value}."))
        elif cue == "sign":
            script = _SCRIPT_NAMES.get(country.sign_script)
            written = f" in {script} script" if script else ""
            unit = " Distances are in miles." if country.distance_unit == "mi" else ""
            board, text = value["colours"]
            out.append(("signage_language", f"A {board} road sign with {text} letters reads "
                                            f"{_sign_reading(value['lines'])}{written}.{unit}"))
        elif cue == "bollards":
            out.append(("road_markings", f"Roadside bollards: {BOLLARD_STYLES[value]}."))
        elif cue == "poles":
            material = "Wooden" if value == "wood" else "Concrete"
            out.append(("infrastructure", f"{material} utility poles carry overhead wires."))
        elif cue == "vegetation":
            out.append(("vegetation", _VEGETATION[Biome(value)]))
        elif cue == "snow":
            out.append(("climate", "Snow covers the ground: this is winter in a place with cold winters."))
        elif cue == "landmark":
            out.append(("landmarks", f"A landmark, {value['glyph']}, stands on the skyline."))
    return out


def meta_sample(record: dict[str, Any], seed: int) -> Sample:
    sample_id = f"meta-{record['id']}"
    question = prompts.first_turn(SessionMode.DIRECT, rng=sample_rng(seed, "meta", record["id"])).text
    return make_sample(sample_id, record["image"], [(question, _answer(_location(record)))])


def clue_sample(record: dict[str, Any], seed: int) -> Sample:
    sample_id = f"clue-{record['id']}"
    location = _location(record)
    question = prompts.first_turn(SessionMode.CLUES, rng=sample_rng(seed, "clue", record["id"])).text
    answer = prompts.format_answer(country=location["country"], region=location["region"],
                                   city=location["city"], lat=location["lat"], lon=location["lon"],
                                   clues=clue_texts(record), reasoning=clue_reasoning(_place(location)))
    return make_sample(sample_id, record["image"], [(question, answer)])


def _guess(record: dict[str, Any], world: World, rng: Any) -> dict[str, Any]:
    """A first answer for a hidden-cue scene: one of the places consistent with what is visible."""
    options = world.candidates(record["facts"])
    if not options:  # cannot happen for generated scenes; the truth keeps the sample valid
        return _location(record)
    place = options[rng.randrange(len(options))]
    return {"country": place.country_name, "region": place.region, "city": place.city_name,
            "lat": place.lat, "lon": place.lon}


def _question_reply(record: dict[str, Any]) -> str:
    """The model's own answer to the +Q question: what the image shows about the decisive cue."""
    facts = record["facts"]
    if record["decisive"] == "sign":
        if "sign" in facts:
            return f"The road sign reads {_sign_reading(facts['sign']['lines'])}."
        return "No road sign with a place name is in view, so the other clues have to decide."
    if "landmark" in facts:
        return f"The skyline shows {facts['landmark']['glyph']}, the landmark of {record['city']}."
    return "No landmark is visible on the skyline, so the other clues have to decide."


def _qa_reply(record: dict[str, Any]) -> str:
    place = _place(_location(record))
    if record["decisive"] == "sign":
        return f"The sign names {record['city']}, so the photo was taken near {place}."
    glyph = str(record["glyph"])
    return f"{glyph[0].upper()}{glyph[1:]} is the landmark of {record['city']}, so this is {place}."


def dialog_samples(record: dict[str, Any], seed: int, world: World) -> list[Sample]:
    hidden = bool(record["decisive_hidden"])
    truth = _location(record)
    out: list[Sample] = []
    for variant in ("q", "qa"):
        sample_id = f"dialog-{record['id']}-{variant}"
        rng = sample_rng(seed, "dialog", f"{record['id']}-{variant}")
        first = _guess(record, world, rng) if hidden else truth
        if variant == "q":
            hint = Hint(HintKind.QUESTION, text=record["question"])
            # A question about a cue out of frame cannot settle anything: the answer stays the guess.
            final, reply = first, _question_reply(record)
        else:
            hint = Hint(HintKind.QA, text=record["question"], answer=record["answer"])
            final, reply = truth, _qa_reply(record)
        answer = f"{reply}\n{_answer(final)}"
        if rng.random() < 0.5:
            turn = prompts.first_turn(SessionMode.DIRECT, [hint], rng=rng)
            out.append(make_sample(sample_id, record["image"], [(turn.text, answer)]))
        else:
            opening = prompts.first_turn(SessionMode.DIRECT, rng=rng).text
            follow = prompts.hint_turn([hint], mode=SessionMode.DIRECT, rng=rng).text
            out.append(make_sample(sample_id, record["image"], [(opening, _answer(first)), (follow, answer)]))
    return out


def hint_text_sample(record: dict[str, Any], seed: int) -> Sample:
    """The +QA question of a scene without its image; the answer names the place the hint settles."""
    rng = sample_rng(seed, "hints", record["id"])
    hint = Hint(HintKind.QA, text=record["question"], answer=record["answer"])
    text = prompts.first_turn(SessionMode.DIRECT, [hint], rng=rng).text
    text = text.removeprefix(f"{prompts.IMAGE_PLACEHOLDER}\n")
    reply = f"{_qa_reply(record)}\n{_answer(_location(record))}"
    return make_sample(f"hints-{record['id']}", None, [(text, reply)])


@dataclass(slots=True)
class DataReport:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def as_document(self) -> dict[str, Any]:
        return {"out": str(self.out), "counts": dict(sorted(self.counts.items())), "files": self.files}


def build_mggeo(folder: Path, out: Path | None = None, *, seed: int = 0, world: World | None = None,
                parts: Sequence[str] = PARTS) -> DataReport:
    """Write ``meta.json``, ``clue.json``, ``dialog.json`` and ``hints.json`` (default: ``folder/mggeo``)."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder / "mggeo"
    records = read_scenes(folder)
    world = world or load_world()
    report = DataReport(out)
    resolved = world

    def samples_of(part: str, record: dict[str, Any]) -> list[Sample]:
        if part == "meta":
            return [meta_sample(record, seed)]
        if part == "clue":
            return [clue_sample(record, seed)]
        if part == "hints":
            return [hint_text_sample(record, seed)]
        return dialog_samples(record, seed, resolved)

    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown MG-Geo part {part!r}; choose from {', '.join(PARTS)}")
        samples = [s for record in records for s in samples_of(part, record)]
        path = out / f"{part}.json"
        report.counts[part] = write_samples(path, samples)
        write_manifest(path, part=part, seed=seed, counts={"samples": report.counts[part]}, outputs=[path],
                       sources={"scenes": folder / "scenes.jsonl"}, image_root=folder,
                       extra={"generator": "geosynth"})
        report.files[part] = str(path)
    return report
