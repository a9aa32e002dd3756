"""The prompt protocol: every word geodesk (and training) sends to a geolocation model.

This module is the single source of truth for prompt wording. The desktop sessions, the evaluation
protocols and the training data builders all import it, so a model trained on these templates is asked
in exactly the words it learned. Any change to a canonical template, a format instruction or a hint
wording is a protocol change: bump ``PROTOCOL_VERSION`` (every stored turn records it, and a model
package's manifest names the protocol it was trained on).

The three conversation modes follow GaGA (seed 000, section III-D):

- direct: the model answers with one JSON object ``{"country", "region", "city", "lat", "lon"}``;
- clues: the same object plus ``"clues": [{"category", "text"}]`` and optionally ``"reasoning"``;
- interactive: any later user turn carries analyst hints (``geodesk.domain.HintKind``); the model
  answers (in a sentence or two when asked a question) and repeats the JSON object, updated.

Image placeholder convention: user texts contain the literal ``IMAGE_PLACEHOLDER`` (``"<image>"``)
where an image goes, one per image, in the order the images are passed to the backend. The first user
turn starts with ``"<image>\\n"`` (the LLaVA / XTuner layout GaGA was trained with); a region hint may
add a second placeholder for the region's crop when the caller sets ``attach_region_crops``. A backend
maps each placeholder to its chat template's image token (or to an ``image_url`` content part for an
OpenAI-compatible server) and must refuse a mismatch between placeholders and images.

Everything here is deterministic: a function given the same arguments (and the same seeded
``random.Random`` where it takes one) returns the same text.
"""

from __future__ import annotations

import enum
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from geodesk.domain import Clue, ClueStatus, Hint, HintKind, Region, SessionMode

PROTOCOL_VERSION = "geodesk-gaga/1"
IMAGE_PLACEHOLDER = "<image>"
OTHER_CATEGORY = "other"


# --------------------------------------------------------------------------------------------------
# Clue categories
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClueCategory:
    """One kind of geographic clue. ``id`` is stable (stored in case files); ``label`` is shown."""

    id: str
    label: str
    synonyms: tuple[str, ...] = ()


# The paper's clue types (Fig. 4b and the Dialog Part examples), one list. The ids are stored in
# case databases and training data: never rename one, only add. Synonyms are what models actually
# write as a category; the parser maps them (lower-cased, punctuation-insensitive) onto the ids.
CLUE_CATEGORIES: tuple[ClueCategory, ...] = (
    ClueCategory(
        "architecture", "architecture",
        ("building", "buildings", "architectural style", "houses", "housing", "roof", "roofs",
         "construction", "building style", "urban design"),
    ),
    ClueCategory(
        "vegetation", "vegetation",
        ("plants", "flora", "trees", "foliage", "crops", "agriculture", "nature", "greenery"),
    ),
    ClueCategory(
        "climate", "climate",
        ("weather", "sky", "season", "snow", "sun", "sun position", "environment", "lighting"),
    ),
    ClueCategory(
        "terrain", "terrain",
        ("landscape", "topography", "geography", "soil", "geology", "mountains", "relief", "land",
         "natural features", "water", "coast"),
    ),
    ClueCategory(
        "road_markings", "road markings",
        ("road", "roads", "road marking", "lane markings", "road lines", "driving side", "bollards",
         "road infrastructure", "pavement", "street", "streets", "traffic direction"),
    ),
    ClueCategory(
        "signage_language", "signage and language",
        ("signage", "signs", "sign", "language", "script", "text", "writing", "road signs",
         "street signs", "signs and language", "language and signage", "license plates",
         "licence plates", "number plates", "alphabet"),
    ),
    ClueCategory(
        "vehicles", "vehicles",
        ("vehicle", "cars", "car", "traffic", "transport", "transportation", "buses", "trucks"),
    ),
    ClueCategory(
        "landmarks", "landmarks",
        ("landmark", "monument", "monuments", "famous building", "point of interest", "poi"),
    ),
    ClueCategory(
        "infrastructure", "infrastructure",
        ("utility poles", "poles", "power lines", "street lights", "streetlights", "utilities",
         "railway", "bridges", "urban infrastructure"),
    ),
    ClueCategory(
        "people_culture", "people and culture",
        ("people", "culture", "clothing", "religion", "cultural", "cultural elements", "customs",
         "society", "food", "people and clothing", "history", "historical context"),
    ),
)

CLUE_CATEGORY_IDS: tuple[str, ...] = tuple(c.id for c in CLUE_CATEGORIES)


def _category_key(text: str) -> str:
    """Lower-case and keep letters and digits only, single-spaced: 'Road-Markings' -> 'road markings'."""
    cleaned = "".join(ch if ch.isalnum() else " " for ch in text.casefold())
    return " ".join(cleaned.split())


_CATEGORY_LOOKUP: dict[str, str] = {}
for _cat in CLUE_CATEGORIES:
    for _name in (_cat.id, _cat.label, *_cat.synonyms):
        _CATEGORY_LOOKUP[_category_key(_name)] = _cat.id


def clue_category_id(name: str) -> str:
    """Map a category as written (id, label or synonym, any case) to its id; anything else -> 'other'."""
    key = _category_key(name)
    if key in _CATEGORY_LOOKUP:
        return _CATEGORY_LOOKUP[key]
    # "Architecture / buildings", "Road markings & signs": the first whole part that is known.
    for part in re.split(r"\s*(?:/|&|,|;|\+|\band\b|\bor\b)\s*", name.casefold()):
        part_key = _category_key(part)
        if part_key in _CATEGORY_LOOKUP:
            return _CATEGORY_LOOKUP[part_key]
    return OTHER_CATEGORY


# --------------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------------


class TemplateKind(enum.StrEnum):
    """Every family of interchangeable wordings. Index 0 of each family is canonical (inference)."""

    DIRECT = "direct"
    CLUE_MODE = "clue_mode"
    QUESTION = "question"
    QA = "qa"
    PRIOR = "prior"
    EXCLUDE = "exclude"
    CORRECT = "correct"
    CORRECT_KNOWN = "correct_known"
    REGION = "region"
    CLUES = "clues"


# Placeholders per family (str.format fields). Values are inserted with str.format, so braces inside
# analyst text are safe: only the template is parsed for fields.
TEMPLATES: Mapping[TemplateKind, tuple[str, ...]] = {
    TemplateKind.DIRECT: (
        "Where was this photo taken? Give the country, the region, the city and your best estimate "
        "of the coordinates.",
        "Work out where this picture was taken.",
        "Locate this image: which country, region and city does it show, and at what coordinates?",
        "Study the photo and name the place it comes from, down to the city, with latitude and "
        "longitude.",
        "Geolocate this photograph.",
        "In which part of the world was this picture taken? Be as precise as you can.",
    ),
    TemplateKind.CLUE_MODE: (
        "List the clues in this photo that show where it was taken, then combine them to locate it.",
        "What in this image tells you where it is? Name each clue, then turn them into a location.",
        "Look for geographic evidence in this picture (buildings, plants, roads, signs and so on) "
        "and reason from it to a place.",
        "Find the details that help geolocate this photo, say what each one suggests, then give "
        "the location.",
        "Go through the image clue by clue and conclude where it was taken.",
        "Which visible features point to a particular part of the world here? Collect them and "
        "finish with a location.",
    ),
    TemplateKind.QUESTION: (
        "A question to consider: {question}",
        "Think about this: {question}",
        "Here is a question that may help: {question}",
        "Before answering again, consider: {question}",
    ),
    TemplateKind.QA: (
        "Question: {question} Answer from the analyst: {answer}",
        "Take this question and its answer into account. Q: {question} A: {answer}",
        "Someone asked: {question} The answer they got: {answer}",
    ),
    TemplateKind.PRIOR: (
        "The photo was taken in {place}.",
        "We know that this image comes from {place}.",
        "Prior information: the location is in {place}.",
    ),
    TemplateKind.EXCLUDE: (
        "The photo was not taken in {place}.",
        "Rule out {place}: the image does not come from there.",
        "It is known that the location is not in {place}.",
    ),
    TemplateKind.CORRECT: (
        "Your prediction is incorrect.",
        "That location is wrong.",
        "Your last answer is not correct.",
    ),
    TemplateKind.CORRECT_KNOWN: (
        "Your prediction is incorrect. What is known: {known}",
        "That location is wrong. For reference: {known}",
        "Your last answer is not correct. One thing we do know: {known}",
    ),
    TemplateKind.REGION: (
        "Look at the part of the image inside the box {box}: {note}",
        "In the marked region {box} of the image: {note}",
        "A note on the area at {box} in the photo: {note}",
    ),
    TemplateKind.CLUES: (
        "Feedback on your clues. Confirmed: {accepted} Wrong, ignore these: {rejected}",
        "The analyst checked your clues. Correct: {accepted} Incorrect: {rejected}",
        "Clue review. Keep: {accepted} Drop: {rejected}",
    ),
}

# Fixed sentences that are part of the protocol but not varied in training.
REGION_DEFAULT_NOTE = "this area may hold a clue."
REGION_CROP_SENTENCE = f"The next image is an enlarged crop of that region: {IMAGE_PLACEHOLDER}"
NO_CLUES_TEXT = "none."

_DIRECT_FIELDS = (
    '"country": "<country name>", "region": "<state, province or other first-level region>", '
    '"city": "<city or town>", "lat": <latitude>, "lon": <longitude>'
)
_COORDINATE_NOTE = "lat and lon are decimal degrees; south and west are negative."

DIRECT_FORMAT = (
    "Reply with one JSON object and nothing else: {" + _DIRECT_FIELDS + "}. " + _COORDINATE_NOTE
)
CLUE_FORMAT = (
    'Reply with one JSON object and nothing else: {"clues": [{"category": "<category>", '
    '"text": "<what you see and what it suggests>"}], "reasoning": "<one or two sentences>", '
    + _DIRECT_FIELDS + "}. The category is one of: " + ", ".join(CLUE_CATEGORY_IDS) + ", "
    + OTHER_CATEGORY + ". " + _COORDINATE_NOTE
)
# After a hint: the model may first write a short answer (to a question) in prose, then the JSON.
FOLLOW_UP_FORMAT: Mapping[SessionMode, str] = {
    SessionMode.DIRECT: "Then give your updated answer as one JSON object with the same fields as "
    "before: country, region, city, lat, lon.",
    SessionMode.CLUES: "Then give your updated answer as one JSON object with the same fields as "
    "before: clues, reasoning, country, region, city, lat, lon.",
}
FOLLOW_UP_QUESTION = "Answer the question in one to three sentences, using what you see in the image."
FOLLOW_UP_NO_QUESTION = "Take this into account and revise your answer if needed."

SYSTEM_PROMPT: Mapping[SessionMode, str] = {
    SessionMode.DIRECT: (
        "You are a geolocation analyst. You work out where photographs were taken from what is "
        "visible in them, and you answer in the JSON format you are asked for. When you are given "
        "new information about a photo, you reconsider and update your answer."
    ),
    SessionMode.CLUES: (
        "You are a geolocation analyst. You point out the visible clues that reveal where a "
        "photograph was taken (buildings, plants, climate, terrain, roads, signs, vehicles, "
        "landmarks, infrastructure, people), reason from them to a location, and answer in the "
        "JSON format you are asked for. When you are given new information, you update your answer."
    ),
}


def _template_kind(mode: TemplateKind | SessionMode | HintKind) -> TemplateKind:
    # SessionMode.CLUES and HintKind.CLUES are both the string "clues": resolve by type, not value.
    if isinstance(mode, TemplateKind):
        return mode
    if isinstance(mode, SessionMode):
        return TemplateKind.DIRECT if mode is SessionMode.DIRECT else TemplateKind.CLUE_MODE
    if isinstance(mode, HintKind):
        return TemplateKind(mode.value)
    raise TypeError(f"expected a TemplateKind, SessionMode or HintKind, got {mode!r}")


def templates(mode: TemplateKind | SessionMode | HintKind) -> tuple[str, ...]:
    """All wordings of one family; index 0 is the canonical one."""
    return TEMPLATES[_template_kind(mode)]


def canonical_template(mode: TemplateKind | SessionMode | HintKind) -> str:
    """The wording used at inference time."""
    return templates(mode)[0]


def pick_template(mode: TemplateKind | SessionMode | HintKind, rng: random.Random | None) -> str:
    """A wording for training (uniform over the family, from ``rng``); canonical when ``rng`` is None."""
    family = templates(mode)
    return family[0] if rng is None else family[rng.randrange(len(family))]


# --------------------------------------------------------------------------------------------------
# User turns
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserTurn:
    """The text of one user message and the image crops it refers to.

    ``text`` holds one ``IMAGE_PLACEHOLDER`` per image: the evidence image first (first turn only),
    then one per entry of ``region_crops``, in order. The caller attaches those crops as extra images.
    """

    text: str
    region_crops: tuple[Region, ...] = ()
    protocol_version: str = PROTOCOL_VERSION

    @property
    def image_count(self) -> int:
        return self.text.count(IMAGE_PLACEHOLDER)


def format_box(region: Region, image_size: tuple[int, int] | None = None) -> str:
    """``[x0, y0, x1, y1]`` in pixels, with the image size when known so the box can be placed."""
    box = f"[{region.x0}, {region.y0}, {region.x1}, {region.y1}]"
    if image_size is None:
        return box + " (pixels: left, top, right, bottom)"
    return box + f" (pixels: left, top, right, bottom, of a {image_size[0]}x{image_size[1]} image)"


def _clue_list(clues: Sequence[Clue]) -> str:
    if not clues:
        return NO_CLUES_TEXT
    return " ".join(f"[{c.category}] {c.text.strip().rstrip('.')}." for c in clues)


def _clues_for(hint: Hint, clues: Mapping[int, Clue] | None) -> tuple[list[Clue], list[Clue]]:
    if not hint.clue_ids:
        raise ValueError("a clues hint needs at least one clue id (the accepted or rejected clues)")
    if clues is None:
        raise ValueError("a clues hint needs the clues themselves: pass clues={id: Clue, ...}")
    accepted: list[Clue] = []
    rejected: list[Clue] = []
    for clue_id in hint.clue_ids:
        clue = clues.get(clue_id)
        if clue is None:
            raise ValueError(f"clue {clue_id} is named by the hint but was not passed in clues=")
        if clue.status in (ClueStatus.ACCEPTED, ClueStatus.EDITED):
            accepted.append(clue)
        elif clue.status is ClueStatus.REJECTED:
            rejected.append(clue)
        else:
            raise ValueError(
                f"clue {clue_id} is still {clue.status.value}: "
                "accept, edit or reject it before sending it back"
            )
    return accepted, rejected


def _required(hint: Hint, value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValueError(f"a {hint.kind.value} hint needs {what}")
    return text


def _sentence(text: str, end: str = ".") -> str:
    """Analyst text as a sentence: the hints are joined into one message, so each must end cleanly."""
    text = text.strip()
    return text if text[-1:] in ".?!:;)\"'" else text + end


def hint_text(
    hint: Hint,
    *,
    rng: random.Random | None = None,
    clues: Mapping[int, Clue] | None = None,
    attach_region_crop: bool = False,
    image_size: tuple[int, int] | None = None,
) -> str:
    """The wording of one hint (canonical unless ``rng`` is given). Raises ValueError on an empty hint.

    ``attach_region_crop``: for a REGION hint, add a placeholder for the region's crop as an extra
    image (only for models that accept several images; see ``UserTurn.region_crops``).
    """
    kind = hint.kind
    if kind is HintKind.QUESTION:
        question = _sentence(_required(hint, hint.text, "a question"), "?")
        return pick_template(kind, rng).format(question=question)
    if kind is HintKind.QA:
        return pick_template(kind, rng).format(
            question=_sentence(_required(hint, hint.text, "a question"), "?"),
            answer=_sentence(_required(hint, hint.answer, "an answer (the analyst's answer)")),
        )
    if kind in (HintKind.PRIOR, HintKind.EXCLUDE):
        return pick_template(kind, rng).format(place=_required(hint, hint.text, "a place name"))
    if kind is HintKind.CORRECT:
        known = hint.text.strip()
        if known:
            return pick_template(TemplateKind.CORRECT_KNOWN, rng).format(known=_sentence(known))
        return pick_template(kind, rng)
    if kind is HintKind.REGION:
        if hint.region is None:
            raise ValueError("a region hint needs a region (x0,y0,x1,y1 in image pixels)")
        text = pick_template(kind, rng).format(
            box=format_box(hint.region, image_size), note=_sentence(hint.text.strip() or REGION_DEFAULT_NOTE)
        )
        return text + (" " + REGION_CROP_SENTENCE if attach_region_crop else "")
    if kind is HintKind.CLUES:
        accepted, rejected = _clues_for(hint, clues)
        text = pick_template(kind, rng).format(accepted=_clue_list(accepted), rejected=_clue_list(rejected))
        note = hint.text.strip()
        return text + (f" {_sentence(note)}" if note else "")
    raise ValueError(f"unknown hint kind {kind!r}")


def _hints_block(
    hints: Sequence[Hint],
    mode: SessionMode,
    rng: random.Random | None,
    clues: Mapping[int, Clue] | None,
    attach_region_crops: bool,
    image_size: tuple[int, int] | None,
) -> tuple[list[str], tuple[Region, ...]]:
    lines: list[str] = []
    crops: list[Region] = []
    for hint in hints:
        attach = attach_region_crops and hint.kind is HintKind.REGION
        lines.append(hint_text(hint, rng=rng, clues=clues, attach_region_crop=attach, image_size=image_size))
        if attach and hint.region is not None:
            crops.append(hint.region)
    return lines, tuple(crops)


def first_turn(
    mode: SessionMode,
    hints: Sequence[Hint] = (),
    *,
    rng: random.Random | None = None,
    clues: Mapping[int, Clue] | None = None,
    attach_region_crops: bool = False,
    image_size: tuple[int, int] | None = None,
) -> UserTurn:
    """The opening user message: image, mode instruction, optional hints (+Q / +QA), answer format.

    Layout: ``<image>\\n{instruction}\\n{hint lines...}\\n{format}``.
    """
    instruction = pick_template(mode, rng)
    lines, crops = _hints_block(hints, mode, rng, clues, attach_region_crops, image_size)
    if any(h.kind is HintKind.QUESTION for h in hints):
        lines.append(FOLLOW_UP_QUESTION)
    fmt = DIRECT_FORMAT if mode is SessionMode.DIRECT else CLUE_FORMAT
    if lines:
        # With hints the model may write a short answer first, so drop "and nothing else".
        fmt = fmt.replace("Reply with one JSON object and nothing else:", "End with one JSON object:")
    text = "\n".join([IMAGE_PLACEHOLDER, instruction, *lines, fmt])
    return UserTurn(text=text, region_crops=crops)


def hint_turn(
    hints: Sequence[Hint],
    *,
    mode: SessionMode,
    rng: random.Random | None = None,
    clues: Mapping[int, Clue] | None = None,
    attach_region_crops: bool = False,
    image_size: tuple[int, int] | None = None,
) -> UserTurn:
    """A follow-up user message carrying one or more hints, asking for the updated JSON answer.

    Layout: one line per hint, then the question follow-up (when a QUESTION hint is present) or the
    revise sentence, then the mode's follow-up format line.
    """
    if not hints:
        raise ValueError("a follow-up turn needs at least one hint")
    lines, crops = _hints_block(hints, mode, rng, clues, attach_region_crops, image_size)
    asks = any(h.kind is HintKind.QUESTION for h in hints)
    lines.append(FOLLOW_UP_QUESTION if asks else FOLLOW_UP_NO_QUESTION)
    lines.append(FOLLOW_UP_FORMAT[mode])
    return UserTurn(text="\n".join(lines), region_crops=crops)


def system_prompt(mode: SessionMode) -> str:
    return SYSTEM_PROMPT[mode]


def build_messages(
    mode: SessionMode,
    turns: Sequence[tuple[str, str]],
    new_user_text: str,
    *,
    include_system: bool = True,
) -> list[dict[str, str]]:
    """The whole conversation for the next generation: system, past (user, assistant) pairs, new user.

    ``turns`` are the earlier exchanges with the model's raw answers exactly as generated (so a backend
    can reuse its KV cache for the unchanged prefix). Content strings keep their ``<image>`` placeholders.
    """
    if not isinstance(new_user_text, str) or not new_user_text.strip():
        raise ValueError("the new user message is empty")
    messages: list[dict[str, str]] = []
    if include_system:
        messages.append({"role": "system", "content": system_prompt(mode)})
    for i, pair in enumerate(turns):
        if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise ValueError(f"turn {i} must be a (user_text, assistant_text) pair of strings")
        user, assistant = pair
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": assistant})
    messages.append({"role": "user", "content": new_user_text})
    return messages


# --------------------------------------------------------------------------------------------------
# Answer rendering (training targets, tiny-model fixtures)
# --------------------------------------------------------------------------------------------------


def format_answer(
    *,
    country: str | None,
    region: str | None,
    city: str | None,
    lat: float | None,
    lon: float | None,
    clues: Sequence[tuple[str, str]] | None = None,
    reasoning: str | None = None,
    decimals: int = 4,
) -> str:
    """The canonical answer JSON (one line). Clue mode puts clues and reasoning before the location,
    so a model generating left to right reasons before it concludes. ``lat``/``lon`` are JSON numbers
    rounded to ``decimals`` (4 decimals is about 11 m)."""
    for name, value in (("lat", lat), ("lon", lon)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    answer: dict[str, object] = {}
    if clues is not None:
        answer["clues"] = [{"category": c, "text": t} for c, t in clues]
        answer["reasoning"] = reasoning or ""
    elif reasoning:
        answer["reasoning"] = reasoning
    answer["country"] = country
    answer["region"] = region
    answer["city"] = city
    answer["lat"] = None if lat is None else round(lat, decimals)
    answer["lon"] = None if lon is None else round(lon, decimals)
    return json.dumps(answer, ensure_ascii=False)


# --------------------------------------------------------------------------------------------------
# Training and evaluation prompts
# --------------------------------------------------------------------------------------------------


def _with_image(text: str, image: bool) -> str:
    return f"{IMAGE_PLACEHOLDER}\n{text}" if image else text


def cot_deduction_prompt(rounds: int = 3, *, image: bool = True) -> str:
    """Teacher prompt for CoT Deduction (Dialog Part): a questioner and a player reason in ``rounds``
    question-answer rounds, then the player commits to coordinates in a final round."""
    if rounds < 1:
        raise ValueError("CoT deduction needs at least one question-answer round")
    last = rounds + 1
    text = "\n".join([
        "[Roles]",
        "Play two parts at once. The questioner asks probing questions about where this photo was "
        "taken. The player answers them, reasoning from what is visible (surroundings, climate, "
        "buildings, culture, people) and from world knowledge, one step closer to the place each time.",
        "[Reasoning rounds]",
        f"1. Write exactly {rounds} rounds, labelled Q1/A1 to Q{rounds}/A{rounds}.",
        "2. Each question must be hard and about the image, but must not describe the image's "
        "details to the player.",
        "3. Ask only questions that move the location estimate forward and need real reasoning and "
        "knowledge; each answer explains its reasoning step by step.",
        "[Final round]",
        f"1. In Q{last} the questioner asks for the coordinates; in A{last} the player gives the best "
        "estimate with a short justification.",
        "2. The player always commits to coordinates, however unsure.",
        f'3. End A{last} with this JSON in decimal degrees: {{"lat": <latitude>, "lon": <longitude>}}',
    ])
    return _with_image(text, image)


def cot_introspection_prompt(lat: float, lon: float, place: str | None = None, *, rounds: int = 3) -> str:
    """Follow-up teacher prompt for CoT Introspection: the deduction was wrong; here is the truth;
    rewrite the answers, fixing mistaken steps and adding missed clues, keeping the questions."""
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"true coordinates ({lat}, {lon}) are not a valid point")
    last = rounds + 1
    where = f" ({place})" if place else ""
    return "\n".join([
        "[Correction]",
        "Your prediction is incorrect.",
        "[Reflection]",
        f"The photo was really taken at ({lat:.4f}, {lon:.4f}){where}. Rewrite your answers A1 to "
        f"A{last} with this in mind: fix the reasoning steps that led you astray and add the clues "
        "you missed.",
        "[Rules]",
        "1. Keep reasoning as before, step by step.",
        f"2. A{last} must give the true coordinates.",
        f"3. Repeat the questions Q1 to Q{last} unchanged, each before its answer.",
        f'4. End A{last} with this JSON in decimal degrees: {{"lat": <latitude>, "lon": <longitude>}}',
    ])


def _options(candidates: Sequence[str]) -> str:
    if not candidates:
        raise ValueError("a hierarchical prompt needs at least one candidate")
    return "\n".join(f"{i}. {name}" for i, name in enumerate(candidates, start=1))


_HIER_REPLY = "Reply with the name exactly as written in the list, and nothing else."


def hier_country_prompt(candidates: Sequence[str], *, image: bool = True) -> str:
    """HIER evaluation, level 1: choose the country among numbered candidates."""
    text = (
        f"In which country was this photo taken? Choose one of these:\n{_options(candidates)}\n{_HIER_REPLY}"
    )
    return _with_image(text, image)


def hier_region_prompt(country: str, candidates: Sequence[str], *, image: bool = True) -> str:
    """HIER evaluation, level 2: the country is fixed (it was answered correctly); choose the region."""
    text = (
        f"This photo was taken in {country}. In which of its regions? Choose one of these:\n"
        f"{_options(candidates)}\n{_HIER_REPLY}"
    )
    return _with_image(text, image)


def hier_city_prompt(country: str, region: str, candidates: Sequence[str], *, image: bool = True) -> str:
    """HIER evaluation, level 3: country and region fixed; choose the city."""
    text = (
        f"This photo was taken in {region}, {country}. In which city or town? Choose one of these:\n"
        f"{_options(candidates)}\n{_HIER_REPLY}"
    )
    return _with_image(text, image)


def clue_rephrase_prompt(country: str, clues: Sequence[str], *, image: bool = True) -> str:
    """Teacher prompt for the Clue Part: from a country's clue list, keep the clues the image really
    shows and rephrase them as observations of this image. Answer: JSON with the clue numbers kept."""
    if not clues:
        raise ValueError(f"no clues given for {country}")
    listing = "\n".join(f"{i}. {c.strip()}" for i, c in enumerate(clues, start=1))
    text = "\n".join([
        f"This photo was taken in {country}. Here are known geolocation clues for {country}:",
        listing,
        "Look at the image carefully. Keep only the clues that you can actually see in it, and "
        "rewrite each one as a plain description of what this image shows. Leave out the rest.",
        'Reply with one JSON object and nothing else: {"clues": [{"index": <number in the list>, '
        '"category": "<category>", "text": "<the rephrased clue>"}]}. The category is one of: '
        + ", ".join(CLUE_CATEGORY_IDS) + ", " + OTHER_CATEGORY + ".",
    ])
    return _with_image(text, image)


def consistency_judge_prompt(reasoning: str) -> str:
    """GeoAgent-style consistency check: a judge re-derives the place from an answer's reasoning alone.

    Used by the GRPO consistency reward; the judge sees no image, only the text.
    """
    return (
        "Below are the clues and the reasoning a geolocation analyst wrote about a photo you cannot see.\n"
        "Using only this text, decide which country, first-level region and city it points to. Write null "
        "for a level the text does not support.\n\n"
        f"{reasoning}\n\n"
        'Reply with one JSON object and nothing else: {"country": "<country name>", '
        '"region": "<region or null>", "city": "<city or null>"}'
    )


# --------------------------------------------------------------------------------------------------
# Other prompt profiles (see geodesk.engine.profiles): GLOBE's format and a generic JSON request
# --------------------------------------------------------------------------------------------------

GLOBE_PROTOCOL_VERSION = "geodesk-globe/1"
GENERIC_PROTOCOL_VERSION = "geodesk-generic/1"

# GLOBE's checkpoints were trained and evaluated with this question, system prompt and decoding
# (temperature 0.1, 512 new tokens); a model answers best in the words it learned, so the first turn
# uses them unchanged. Its answer has no coordinates: geodesk places the named city with the gazetteer.
GLOBE_SYSTEM_PROMPT = "You are a helpful assistant."
GLOBE_QUESTION = (
    "You are participating in a geolocation challenge. Based on the provided image:\n"
    "1. Carefully analyze the image for clues about its location (architecture, signage, vegetation, "
    "terrain, etc.)\n"
    "2. Think step-by-step about what country, and city this is likely to be in and why\n"
    "Your final answer include these two lines somewhere in your response:\n"
    "country: [country name]\n"
    "city: [city name]\n"
    "\n"
    "You MUST output the thinking process in <think> </think> and give answer in <answer> </answer> tags."
)
GLOBE_MAX_NEW_TOKENS = 512
GLOBE_TEMPERATURE = 0.1
GLOBE_FOLLOW_UP = (
    "Take this into account and think again. Output the thinking process in <think> </think> and give "
    "the updated answer in <answer> </answer> tags, with the two lines:\ncountry: [country name]\n"
    "city: [city name]"
)

# Instruction-tuned models without geolocation training: the GaGA system prompt and answer formats,
# with the request spelled out and the image first, as those models' own examples put it.
GENERIC_INSTRUCTION = (
    "Look carefully at this photo and work out where it was taken, from what is visible in it."
)


def globe_first_turn(
    hints: Sequence[Hint] = (),
    *,
    clues: Mapping[int, Clue] | None = None,
    attach_region_crops: bool = False,
    image_size: tuple[int, int] | None = None,
) -> UserTurn:
    """GLOBE's question after the image, with any hint lines before its answer-format lines."""
    lines, crops = _hints_block(hints, SessionMode.DIRECT, None, clues, attach_region_crops, image_size)
    text = "\n".join([IMAGE_PLACEHOLDER, *lines, GLOBE_QUESTION])
    return UserTurn(text=text, region_crops=crops, protocol_version=GLOBE_PROTOCOL_VERSION)


def globe_hint_turn(
    hints: Sequence[Hint],
    *,
    clues: Mapping[int, Clue] | None = None,
    attach_region_crops: bool = False,
    image_size: tuple[int, int] | None = None,
) -> UserTurn:
    """A hint turn in GLOBE's answer format (GLOBE itself has none; the hint wordings are geodesk's)."""
    if not hints:
        raise ValueError("a follow-up turn needs at least one hint")
    lines, crops = _hints_block(hints, SessionMode.DIRECT, None, clues, attach_region_crops, image_size)
    if any(h.kind is HintKind.QUESTION for h in hints):
        lines.append(FOLLOW_UP_QUESTION)
    lines.append(GLOBE_FOLLOW_UP)
    return UserTurn(text="\n".join(lines), region_crops=crops, protocol_version=GLOBE_PROTOCOL_VERSION)


def generic_first_turn(
    mode: SessionMode,
    hints: Sequence[Hint] = (),
    *,
    clues: Mapping[int, Clue] | None = None,
    attach_region_crops: bool = False,
    image_size: tuple[int, int] | None = None,
) -> UserTurn:
    """The generic profile's opening turn: image, a plain request, hints, geodesk's JSON format."""
    gaga = first_turn(
        mode, hints, clues=clues, attach_region_crops=attach_region_crops, image_size=image_size
    )
    lines = gaga.text.split("\n")
    # GaGA's layout is <image>, instruction, hints..., format: keep all but the instruction.
    mode_line = canonical_template(mode) if mode is SessionMode.CLUES else GENERIC_INSTRUCTION
    text = "\n".join([lines[0], mode_line, *lines[2:]])
    return UserTurn(text=text, region_crops=gaga.region_crops, protocol_version=GENERIC_PROTOCOL_VERSION)


def localizability_judge_prompt(reasoning: str) -> str:
    """GLOBE-style localizability check: a judge that sees the photo rates how well an answer's clues
    and reasoning rest on what is visible and say where it is. Used by the GRPO localizability reward.

    The judge replies ``{"score": <0 to 10>}``; the reward is the score / 10.
    """
    return (
        f"{IMAGE_PLACEHOLDER}\n"
        "A geolocation analyst wrote the clues and the reasoning below about this photo. Rate them from 0 "
        "to 10: 10 when every clue is really visible in the photo and the clues together narrow the place "
        "down well, 0 when the clues are not in the photo or say nothing about where it is.\n\n"
        f"{reasoning}\n\n"
        'Reply with one JSON object and nothing else: {"score": <a number from 0 to 10>}'
    )
