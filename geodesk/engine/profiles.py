"""Prompt profiles: how a session talks to a model and reads its answers, per the model's training.

A profile is chosen when a model is installed (``geodesk model install SRC --profile ...``) and kept in
the package manifest; every session records it through its protocol version, so later hint turns and
replays keep asking in the same format. All wording lives in :mod:`geodesk.engine.prompts`.

- ``gaga``: geodesk's protocol (GaGA's): a JSON answer, clue mode, interactive hints.
- ``globe``: GLOBE's format: reasoning in ``<think>``, an ``<answer>`` with ``country:`` / ``city:``
  lines, temperature 0.1 and 512 new tokens by default. The answer has no coordinates: the gazetteer
  places the named city and the prediction records that (problem ``coordinates_from_names``).
- ``generic``: instruction-tuned models without geolocation training: a plain request for geodesk's
  JSON answer; a missing point is taken from the named city, recorded the same way.

Hint turns exist in every profile: the hint wordings are the protocol's, followed by the profile's
answer format, and the reply is parsed by the same profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from geodesk.domain.model import Clue, Hint, SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import NameNormalizer, ParsedAnswer, parse_answer

ProfileName = Literal["gaga", "globe", "generic"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("gaga", "globe", "generic")

_ANSWER = re.compile(r"<answer>(?P<body>.*?)(?:</answer>|$)", re.I | re.S)
_THINK = re.compile(r"<think>(?P<body>.*?)(?:</think>|$)", re.I | re.S)


class ProfileError(ValueError):
    """An unknown profile name; the message lists the known ones."""


@dataclass(frozen=True, slots=True)
class PromptProfile:
    name: ProfileName
    protocol_version: str
    description: str
    default_max_new_tokens: int | None = None  # None: the caller's default
    default_temperature: float | None = None

    def system_prompt(self, mode: SessionMode) -> str:
        if self.name == "globe":
            return prompts.GLOBE_SYSTEM_PROMPT
        return prompts.system_prompt(mode)

    def first_turn(
        self,
        mode: SessionMode,
        hints: Sequence[Hint] = (),
        *,
        clues: Mapping[int, Clue] | None = None,
        attach_region_crops: bool = False,
        image_size: tuple[int, int] | None = None,
    ) -> prompts.UserTurn:
        if self.name == "globe":
            return prompts.globe_first_turn(
                hints, clues=clues, attach_region_crops=attach_region_crops, image_size=image_size
            )
        if self.name == "generic":
            return prompts.generic_first_turn(
                mode, hints, clues=clues, attach_region_crops=attach_region_crops, image_size=image_size
            )
        return prompts.first_turn(
            mode, hints, clues=clues, attach_region_crops=attach_region_crops, image_size=image_size
        )

    def hint_turn(
        self,
        hints: Sequence[Hint],
        *,
        mode: SessionMode,
        clues: Mapping[int, Clue] | None = None,
        attach_region_crops: bool = False,
        image_size: tuple[int, int] | None = None,
    ) -> prompts.UserTurn:
        if self.name == "globe":
            return prompts.globe_hint_turn(
                hints, clues=clues, attach_region_crops=attach_region_crops, image_size=image_size
            )
        turn = prompts.hint_turn(
            hints, mode=mode, clues=clues, attach_region_crops=attach_region_crops, image_size=image_size
        )
        return replace(turn, protocol_version=self.protocol_version)

    def parse(
        self, raw: object, normalizer: NameNormalizer | None, mode: SessionMode | str = SessionMode.DIRECT
    ) -> ParsedAnswer:
        """The answer as this profile's models write it; never raises (as ``parse_answer``)."""
        if self.name == "globe":
            return parse_globe(raw, normalizer)
        return parse_answer(raw, normalizer, mode, fill_coordinates_from_names=self.name == "generic")


PROFILES: dict[str, PromptProfile] = {
    "gaga": PromptProfile("gaga", prompts.PROTOCOL_VERSION, "GaGA's JSON answers, clue mode and hints"),
    "globe": PromptProfile(
        "globe",
        prompts.GLOBE_PROTOCOL_VERSION,
        "GLOBE's <think>/<answer> format with country and city lines; the point comes from the gazetteer",
        default_max_new_tokens=prompts.GLOBE_MAX_NEW_TOKENS,
        default_temperature=prompts.GLOBE_TEMPERATURE,
    ),
    "generic": PromptProfile(
        "generic",
        prompts.GENERIC_PROTOCOL_VERSION,
        "instruction-tuned models asked for geodesk's JSON answer",
    ),
}


def profile(name: str) -> PromptProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILE_NAMES)
        raise ProfileError(f"unknown prompt profile {name!r}; use one of {known}") from None


def profile_for_protocol(protocol_version: str) -> PromptProfile:
    """The profile a session was asked in, from the protocol version it recorded (gaga when unknown)."""
    for candidate in PROFILES.values():
        if candidate.protocol_version == protocol_version:
            return candidate
    return PROFILES["gaga"]


def parse_globe(raw: object, normalizer: NameNormalizer | None) -> ParsedAnswer:
    """A GLOBE answer: the ``<answer>`` block's ``country:`` / ``city:`` lines (the whole text when the
    tags are missing), the ``<think>`` block as reasoning, the point from the gazetteer. Never raises."""
    text = raw if isinstance(raw, str) else ""
    try:
        answer = _ANSWER.search(text)
        body = answer.group("body") if answer else text
        parsed = parse_answer(body if isinstance(raw, str) else raw, normalizer, SessionMode.DIRECT,
                              fill_coordinates_from_names=True)
        think = _THINK.search(text)
        reasoning = think.group("body").strip() if think and think.group("body").strip() else None
        prediction = replace(parsed.prediction, reasoning=reasoning or parsed.prediction.reasoning)
        return replace(parsed, raw=text, prediction=prediction)
    except Exception:  # the parser's own guard covers parse_answer; this covers the regex step
        return parse_answer(raw, normalizer, SessionMode.DIRECT, fill_coordinates_from_names=True)
