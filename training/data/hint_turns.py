"""Hint-turn dialogs: the app's session loop (first answer, then hints, each answered) as training data.

The desktop session sends a first turn (``prompts.first_turn``) and answers every analyst hint with
a follow-up turn (``prompts.hint_turn``); the model repeats its JSON location, updated. GaGA's Dialog
part ends with coordinates only, so a model trained on it alone has never seen that follow-up turn.
This module writes it: from one image's truth, a first direct-mode answer and the question-answer
rounds the Dialog teacher produced, it plans one or more hint turns and the answer to each.

Every user text comes from the same two functions the sessions service calls, with the same
arguments (``mode``, no region crops: one image per sample); only the wording is drawn from the
sample's generator, as for every other part. With ``rng=None`` the wording is the canonical one and
the conversation is, message for message, what ``geodesk.services.sessions`` sends to the model
(tests/training/data/test_hint_turns.py runs both and compares).

Which hints, in what order (each answer must be consistent with what the analyst just said):

- a *correction* ("your prediction is incorrect") only right after a first answer more than 25 km
  from the truth (the Dialog part's own threshold), and an *exclusion* of the first answer's country
  only when that country is wrong: both speak about the previous answer, so they come first;
- a *prior* (the true country, or region and country), a *question* (+Q: one of the teacher's
  questions; the model answers it in a few sentences, then gives the JSON) and a *question with its
  answer* (+QA: the teacher's answer as the analyst's) at any point.

After a hint the answer is the truth (names and coordinates of the row): every hint here is true, so
the truth is consistent with all of them, and the model learns to move to what the hint implies.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from geodesk.domain import Hint, HintKind, SessionMode
from geodesk.engine import prompts
from geodesk.geo.distance import haversine_km

WRONG_KM = 25.0  # the Dialog part's threshold: a first answer farther than this is "incorrect"
MAX_REPLY_SENTENCES = 3  # FOLLOW_UP_QUESTION asks for one to three sentences
HINT_KINDS = (HintKind.CORRECT, HintKind.EXCLUDE, HintKind.PRIOR, HintKind.QUESTION, HintKind.QA)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Location:
    """A place as the answer JSON gives it."""

    country: str | None
    region: str | None
    city: str | None
    lat: float
    lon: float

    def answer(self) -> str:
        return prompts.format_answer(country=self.country, region=self.region, city=self.city,
                                     lat=self.lat, lon=self.lon)


@dataclass(frozen=True, slots=True)
class HintStep:
    """One follow-up turn: the hints the analyst sends and the model's reply (prose, then JSON)."""

    hints: tuple[Hint, ...]
    reply: str


def short_reply(text: str, limit: int = MAX_REPLY_SENTENCES) -> str:
    """A teacher answer cut to ``limit`` sentences, on one line (the +Q reply before the JSON)."""
    flat = " ".join(text.split())
    return " ".join(_SENTENCE_END.split(flat)[:limit])


def plan_hints(
    truth: Location,
    first: Location,
    rounds: Sequence[tuple[str, str]],
    rng: random.Random,
    *,
    turns: int = 2,
    kinds: Sequence[HintKind] = HINT_KINDS,
) -> list[HintStep]:
    """Up to ``turns`` hint turns after the answer ``first``, each answered with ``truth``.

    ``rounds`` are (question, answer) pairs about this image (the Dialog teacher's rounds, without
    the final coordinates round); +Q and +QA draw from them without repeating one.
    """
    unknown = set(kinds) - set(HINT_KINDS)
    if unknown:
        raise ValueError(f"hint turns cannot be made for {sorted(k.value for k in unknown)}; "
                         f"choose from {', '.join(k.value for k in HINT_KINDS)}")
    pool = [(q.strip(), a.strip()) for q, a in rounds if q.strip() and a.strip()]
    rng.shuffle(pool)
    first_wrong = haversine_km(first.lat, first.lon, truth.lat, truth.lon) > WRONG_KM
    wrong_country = bool(first.country and truth.country and first.country != truth.country)
    steps: list[HintStep] = []
    used: set[HintKind] = set()
    for index in range(turns):
        # Correction and exclusion refer to the previous answer: only the first hint turn may use them.
        options = [k for k in kinds if k not in used and (
            (k is HintKind.CORRECT and index == 0 and first_wrong)
            or (k is HintKind.EXCLUDE and index == 0 and wrong_country)
            or (k is HintKind.PRIOR and truth.country)
            or (k in (HintKind.QUESTION, HintKind.QA) and pool)
        )]
        if not options:
            break
        kind = options[rng.randrange(len(options))]
        used.add(kind)
        answer = truth.answer()
        if kind is HintKind.CORRECT:
            hint = Hint(HintKind.CORRECT)
        elif kind is HintKind.EXCLUDE:
            hint = Hint(HintKind.EXCLUDE, text=str(first.country))
        elif kind is HintKind.PRIOR:
            wide = truth.region is None or rng.random() < 0.5
            place = str(truth.country) if wide else f"{truth.region}, {truth.country}"
            hint = Hint(HintKind.PRIOR, text=place)
        else:
            question, said = pool.pop()
            if kind is HintKind.QUESTION:
                hint = Hint(HintKind.QUESTION, text=question)
                answer = f"{short_reply(said)}\n{answer}"
            else:
                hint = Hint(HintKind.QA, text=question, answer=short_reply(said))
        steps.append(HintStep((hint,), answer))
    return steps


def hint_dialog(
    first: Location,
    steps: Sequence[HintStep],
    *,
    mode: SessionMode = SessionMode.DIRECT,
    rng: random.Random | None = None,
) -> list[tuple[str, str]]:
    """(user text, answer) pairs: the first turn, then one follow-up turn per step.

    The user texts are ``prompts.first_turn`` / ``prompts.hint_turn`` called as the sessions service
    calls them; ``rng=None`` gives the canonical wording the app sends.
    """
    if mode is not SessionMode.DIRECT:
        raise ValueError("hint-turn dialogs from real data are direct-mode sessions (no verified clues)")
    exchanges = [(prompts.first_turn(mode, rng=rng).text, first.answer())]
    for step in steps:
        exchanges.append((prompts.hint_turn(step.hints, mode=mode, rng=rng).text, step.reply))
    return exchanges
