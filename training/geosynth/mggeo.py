"""MG-Geo style training data from a GeoSynth folder, written from the generator's own truth.

No teacher model is needed: the generator knows what every scene shows, so each part is exact.

- Meta part (``meta-<id>``): a direct-mode question (``prompts.first_turn`` with a drawn wording) and
  the JSON answer (``prompts.format_answer``), as ``training.data.meta`` builds it for real photos.
- Clue part (``clue-<id>``): a clue-mode question; the answer lists one clue per visible cue, written
  from the facts drawn (category from ``prompts.CLUE_CATEGORIES``), the reasoning line of
  ``training.data.clues`` and the location.
- Dialog part (``dialog-<id>-q``, ``dialog-<id>-qa`` and ``dialog-<id>-verdict``): a +Q and a +QA
  exchange about the scene's decisive cue, with the protocol's hint wording (``HintKind.QUESTION`` /
  ``HintKind.QA``), and a clue verdict. Each +Q / +QA sample takes one of three layouts (``LAYOUTS``,
  drawn per sample): the hint in the first direct-mode turn (as ``geodesk-train evaluate --dialogs``
  asks), or a follow-up turn after a first answer in direct mode or in clue mode, exactly as the
  app's session sends it (``prompts.first_turn`` then ``prompts.hint_turn`` with the session's mode).
  When the decisive cue is hidden, the first answer is a guess among the places consistent with what
  is visible (the truth only by chance), a +Q turn cannot improve it (the question points at something
  out of frame), and the +QA turn, whose answer supplies the cue, moves the answer to the truth. A
  clue-mode reply repeats the clues it sees and puts the hint's consequence in its reasoning. The
  verdict sample is a clue-mode session whose second turn is the analyst's verdict on the clues
  (``HintKind.CLUES``, rendered from ``Clue`` records as the session renders the stored ones): some
  clues that do not decide the place are rejected, and the reply keeps the accepted clues and the place;
  a third turn then brings the scene's +QA (or +Q) hint, answered over the accepted clues, as the app's
  session goes on after a verdict.
- Hint-text part (``hints-<id>``): a +QA exchange with the image withheld, so the hint alone settles the
  place: read the town off the quoted sign, or know which town a described landmark belongs to, then
  write the answer JSON from that. Half of the samples carry the hint in the first turn, half as a
  follow-up turn after a first answer that names another place, so the hint must override what the
  conversation already says (the app's path). A pretrained LLM brings this text skill (copying a name
  it was given, world knowledge about places) to GaGA's training; the demo's language model starts from
  random weights and, without this part, learns to answer from the image alone and leaves the hint
  unread (docs/adr/0015-demo-model.md, docs/adr/0047-demo-model-session-formats.md). It is text-only and
  not an MG-Geo part.

Samples are the LLaVA conversation JSON of ``training.data.common``; image paths are relative to the
GeoSynth folder, which each part's manifest records as its image root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from geodesk.domain import Clue, ClueSource, ClueStatus, Hint, HintKind, SessionMode
from geodesk.engine import prompts
from training.data.clues import clue_reasoning
from training.data.common import Sample, make_sample, write_manifest, write_samples
from training.data.meta import sample_rng
from training.data.metadata import place_text
from training.geosynth.cues import BOLLARD_STYLES, BY_CODE, Biome
from training.geosynth.generator import read_scenes
from training.geosynth.world import World, load_world

PARTS = ("meta", "clue", "dialog", "hints")
# Where a +Q / +QA hint goes, and its share of the dialog samples: in the first direct-mode turn (the
# paper's protocol), or as a follow-up turn in a direct-mode or a clue-mode session (the app's path).
LAYOUTS: tuple[tuple[str, float], ...] = (("first_turn", 0.3), ("follow_up_direct", 0.4),
                                          ("follow_up_clues", 0.3))
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
                                         f"{value} lane."))
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
            out.append(("climate", "Snow on the ground: a place with cold winters."))
        elif cue == "landmark":
            out.append(("landmarks", f"A landmark, {value['glyph']}, stands on the skyline."))
    return out


def meta_sample(record: dict[str, Any], seed: int) -> Sample:
    sample_id = f"meta-{record['id']}"
    question = prompts.first_turn(SessionMode.DIRECT, rng=sample_rng(seed, "meta", record["id"])).text
    return make_sample(sample_id, record["image"], [(question, _answer(_location(record)))])


def _clue_answer(location: dict[str, Any], clues: Sequence[tuple[str, str]],
                 reasoning: str | None = None) -> str:
    """A clue-mode answer JSON: the clues, the reasoning (default: the Clue part's line), the place."""
    return prompts.format_answer(country=location["country"], region=location["region"],
                                 city=location["city"], lat=location["lat"], lon=location["lon"],
                                 clues=clues, reasoning=reasoning or clue_reasoning(_place(location)))


def clue_sample(record: dict[str, Any], seed: int) -> Sample:
    sample_id = f"clue-{record['id']}"
    question = prompts.first_turn(SessionMode.CLUES, rng=sample_rng(seed, "clue", record["id"])).text
    return make_sample(sample_id, record["image"], [(question, _clue_answer(_location(record),
                                                                            clue_texts(record)))])


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


def _layout(rng: Any) -> str:
    draw = rng.random()
    for name, share in LAYOUTS:
        if draw < share:
            return name
        draw -= share
    return LAYOUTS[-1][0]


def hint_of(record: dict[str, Any], variant: str) -> Hint:
    """The scene's +Q (``variant="q"``) or +QA (``"qa"``) hint about its decisive cue."""
    if variant == "q":
        return Hint(HintKind.QUESTION, text=record["question"])
    return Hint(HintKind.QA, text=record["question"], answer=record["answer"])


def _hint_outcome(record: dict[str, Any], variant: str,
                  first: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The place after the hint and the reply's prose line: a question about a cue out of frame
    cannot settle anything (the answer stays ``first``); the analyst's answer moves it to the truth."""
    if variant == "q":
        return first, _question_reply(record)
    return _location(record), _qa_reply(record)


def follow_up_exchanges(record: dict[str, Any], variant: str, mode: SessionMode, first: dict[str, Any],
                        rng: Any = None) -> list[tuple[str, str]]:
    """A session of ``mode``: its first turn answered with ``first``, then the +Q / +QA hint as the next
    turn, answered (``rng=None``: the canonical wording, what the app's session sends).

    +Q cannot settle a hidden cue, so its answer keeps ``first``; +QA supplies the cue, so its answer is
    the truth. In clue mode the +Q reply is prose then the clue JSON (FOLLOW_UP_QUESTION asks for prose
    first); the +QA reply is the clue JSON, whose reasoning says what the analyst's answer settles."""
    hint = hint_of(record, variant)
    final, reply = _hint_outcome(record, variant, first)
    opening = prompts.first_turn(mode, rng=rng).text
    follow = prompts.hint_turn([hint], mode=mode, rng=rng).text
    if mode is SessionMode.DIRECT:
        return [(opening, _answer(first)), (follow, f"{reply}\n{_answer(final)}")]
    clues = clue_texts(record)
    answer = f"{reply}\n{_clue_answer(final, clues)}" if variant == "q" else _clue_answer(final, clues, reply)
    return [(opening, _clue_answer(first, clues)), (follow, answer)]


def dialog_samples(record: dict[str, Any], seed: int, world: World) -> list[Sample]:
    hidden = bool(record["decisive_hidden"])
    out: list[Sample] = []
    for variant in ("q", "qa"):
        sample_id = f"dialog-{record['id']}-{variant}"
        rng = sample_rng(seed, "dialog", f"{record['id']}-{variant}")
        first = _guess(record, world, rng) if hidden else _location(record)
        layout = _layout(rng)
        if layout == "first_turn":
            final, reply = _hint_outcome(record, variant, first)
            turn = prompts.first_turn(SessionMode.DIRECT, [hint_of(record, variant)], rng=rng)
            exchanges = [(turn.text, f"{reply}\n{_answer(final)}")]
        else:
            mode = SessionMode.DIRECT if layout == "follow_up_direct" else SessionMode.CLUES
            exchanges = follow_up_exchanges(record, variant, mode, first, rng)
        out.append(make_sample(sample_id, record["image"], exchanges))
    verdict = verdict_sample(record, seed, world)
    if verdict is not None:
        out.append(verdict)
    return out


def verdict_clues(record: dict[str, Any], rng: Any) -> list[Clue]:
    """The clues of a scene's first clue-mode answer, judged by the analyst: the ones that do not
    decide the place may be rejected (each with probability 1/3), at least one stays accepted, and the
    decisive cue's clue is never rejected (rejecting it would have to move the place). Ids count from 1
    in answer order, as the store numbers the clues of a new case's first turn."""
    judged: list[Clue] = []
    for number, (cue, (category, text)) in enumerate(zip(record["cues"], clue_texts(record), strict=True),
                                                     start=1):
        keep = cue == record["decisive"] or rng.random() >= 1 / 3
        judged.append(Clue(id=number, evidence_sha256=str(record.get("sha256", "")), category=category,
                           text=text, source=ClueSource.MODEL,
                           status=ClueStatus.ACCEPTED if keep else ClueStatus.REJECTED))
    if judged and all(c.status is ClueStatus.REJECTED for c in judged):
        judged[0] = replace(judged[0], status=ClueStatus.ACCEPTED)
    return judged


def verdict_exchanges(record: dict[str, Any], first: dict[str, Any], judged: Sequence[Clue],
                      rng: Any = None, then: str | None = None) -> list[tuple[str, str]]:
    """A clue-mode session answered with ``first`` and the scene's clues, then the analyst's verdict
    on them (``HintKind.CLUES``) as the next turn; the reply keeps the accepted clues and the place.

    ``then`` (``"q"`` or ``"qa"``): the scene's +Q / +QA hint as a third turn, answered as a clue-mode
    follow-up (:func:`follow_up_exchanges`) over the accepted clues only, which is how the app's
    session goes on after a verdict."""
    hint = Hint(HintKind.CLUES, clue_ids=tuple(c.id for c in judged if c.id is not None))
    opening = prompts.first_turn(SessionMode.CLUES, rng=rng).text
    follow = prompts.hint_turn([hint], mode=SessionMode.CLUES, rng=rng,
                               clues={c.id: c for c in judged if c.id is not None}).text
    kept = [(c.category, c.text) for c in judged if c.status is ClueStatus.ACCEPTED]
    exchanges = [(opening, _clue_answer(first, clue_texts(record))), (follow, _clue_answer(first, kept))]
    if then is not None:
        final, reply = _hint_outcome(record, then, first)
        third = prompts.hint_turn([hint_of(record, then)], mode=SessionMode.CLUES, rng=rng).text
        answer = f"{reply}\n{_clue_answer(final, kept)}" if then == "q" else _clue_answer(final, kept, reply)
        exchanges.append((third, answer))
    return exchanges


def verdict_sample(record: dict[str, Any], seed: int, world: World) -> Sample | None:
    """The verdict session of a scene (None for a scene that shows no clue). Every one goes on with
    the scene's +QA hint (two in three) or +Q hint as a third turn: the verdict turn is trained the
    same either way (each assistant turn is a target, and the later turn cannot change what comes
    before it), and without the third turn a hint after a verdict is a layout the model never saw."""
    if not record["cues"]:
        return None
    rng = sample_rng(seed, "dialog", f"{record['id']}-verdict")
    first = _guess(record, world, rng) if record["decisive_hidden"] else _location(record)
    judged = verdict_clues(record, rng)
    # a separate draw, so that the first two turns stay what earlier builds wrote for the same seed
    then = "qa" if sample_rng(seed, "dialog", f"{record['id']}-verdict-then").random() < 2 / 3 else "q"
    exchanges = verdict_exchanges(record, first, judged, rng, then=then)
    return make_sample(f"dialog-{record['id']}-verdict", record["image"], exchanges)


def _elsewhere(record: dict[str, Any], world: World, rng: Any) -> dict[str, Any]:
    """A place of the world other than the scene's town: a first answer the hint has to overturn."""
    others = [p for p in world.places if p.city_name != record["city"] or p.country_name != record["country"]]
    place = others[rng.randrange(len(others))]
    return {"country": place.country_name, "region": place.region, "city": place.city_name,
            "lat": place.lat, "lon": place.lon}


def hint_text_sample(record: dict[str, Any], seed: int, world: World) -> Sample:
    """The +QA hint of a scene without its image; the answer names the place the hint settles. Half of
    the samples ask in the first turn, half after a first answer that names another place."""
    rng = sample_rng(seed, "hints", record["id"])
    hint = Hint(HintKind.QA, text=record["question"], answer=record["answer"])
    reply = f"{_qa_reply(record)}\n{_answer(_location(record))}"
    if rng.random() < 0.5:
        text = prompts.first_turn(SessionMode.DIRECT, [hint], rng=rng).text
        text = text.removeprefix(f"{prompts.IMAGE_PLACEHOLDER}\n")
        return make_sample(f"hints-{record['id']}", None, [(text, reply)])
    opening = prompts.first_turn(SessionMode.DIRECT, rng=rng).text
    opening = opening.removeprefix(f"{prompts.IMAGE_PLACEHOLDER}\n")
    follow = prompts.hint_turn([hint], mode=SessionMode.DIRECT, rng=rng).text
    return make_sample(f"hints-{record['id']}", None, [(opening, _answer(_elsewhere(record, world, rng))),
                                                       (follow, reply)])


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
            return [hint_text_sample(record, seed, resolved)]
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
