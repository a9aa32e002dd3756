"""GaGA's two evaluation modes (section V-A3) and the interactive prompts of its Table III.

DIRE: the model answers freely; the first turn is the session's direct-mode turn
(``prompts.first_turn(SessionMode.DIRECT)``), parsed by ``parse_answer`` with the gazetteer as the
name normaliser. +Q / +QA (Table III) put the dialog's guiding question, or the question and its
effective answer, into that same first turn as a QUESTION / QA hint (``prompts.first_turn(hints=...)``):
one turn, the answer is scored like any DIRE answer. That is the paper's protocol ("first turn").

The follow-up protocol (variants ``q_followup`` / ``qa_followup``) is the path the desktop session
takes: the model first answers the direct-mode first turn, then gets the hint as the next user turn
(``prompts.hint_turn``, what ``geodesk.services.sessions`` sends), and that second answer is scored.
Both are reported side by side.

HIER: the model picks names from lists, level by level (``prompts.hier_*_prompt``, parsed by
``parse_choice``). Country among the candidate countries; when it is right, the regions of that
country; when that is right, the cities of that region. "If the model's prediction at the country
level is incorrect, all lower-level predictions, such as regions or cities, are automatically
considered incorrect": the flow stops at the first wrong level and the answer carries no name below
it. The paper's appendix pseudocode is not in our copy of the paper; what is fixed here:

- candidate countries: every country with places in the gazetteer (GeoNames cities1000), by their
  gazetteer names, alphabetical; the paper gives "candidate administrative boundary names at each
  level". Named deviations: a --candidates file, or --candidates-from-truth (the truth set's
  countries only, a much easier question);
- regions of a country: "the names of all regions within that country": the GeoNames admin1 names of
  its populated places (the names reverse geocoding reports), alphabetical; the truth's region name
  is added when none of them is the same place (so the question is always answerable);
- cities of a region: all its GeoNames places, alphabetical, with the truth city added the same way.
  A region can hold thousands of places: ``max_cities`` (--max-cities N, a named deviation for
  models with a short context) keeps the N most populous;
- an answer is valid when the country choice parses to a candidate (``parse_choice``); coordinates,
  for the distance metrics, are those of the chosen city when the flow reaches it, else none (a
  names-only answer is a miss at every distance threshold, see ``geodesk.geo.metrics``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from geodesk.domain import Hint, HintKind, SessionMode
from geodesk.engine import prompts
from geodesk.engine.backends.base import ChatMessage, GenerationSettings
from geodesk.engine.parsing import parse_answer, parse_choice
from geodesk.engine.profiles import PromptProfile
from geodesk.geo.gazetteer import Gazetteer
from geodesk.geo.metrics import PredictionRow, TruthRow
from training.evaluation.generation import BatchGenerator
from training.evaluation.io import Dialog

DEFAULT_MAX_CITIES: int | None = None  # None: every city of the region, as the paper
VARIANTS = ("direct", "q", "qa")  # GaGA Table III: direct inquiry, + Q, + QA (hint in the first turn)
FOLLOW_UP_VARIANTS = ("q_followup", "qa_followup")  # the app's path: direct answer first, hint second


def _system() -> ChatMessage:
    return ChatMessage("system", prompts.system_prompt(SessionMode.DIRECT))


# ------------------------------------------------------------------------------------------------
# DIRE (+Q / +QA)
# ------------------------------------------------------------------------------------------------


def dialog_hints(dialog: Dialog | None, variant: str) -> list[Hint]:
    """The hints of one Table III variant: none, the guiding question, or the question and answer."""
    known = VARIANTS + FOLLOW_UP_VARIANTS
    if variant not in known:
        raise ValueError(f"variant must be one of {', '.join(known)}; got {variant!r}")
    if variant == "direct":
        return []
    if dialog is None:
        raise ValueError(f"the {variant} variant needs a dialog for every sample")
    if variant in ("q", "q_followup"):
        return [Hint(HintKind.QUESTION, text=dialog.question)]
    return [Hint(HintKind.QA, text=dialog.question, answer=dialog.answer)]


def dire_conversation(
    image: Any, hints: Sequence[Hint] = (), profile: PromptProfile | None = None
) -> list[ChatMessage]:
    """The DIRE question in ``profile``'s wording (gaga by default; globe asks GLOBE's question)."""
    if profile is None:
        turn = prompts.first_turn(SessionMode.DIRECT, hints)
        return [_system(), ChatMessage("user", turn.text, (image,))]
    turn = profile.first_turn(SessionMode.DIRECT, hints)
    system = ChatMessage("system", profile.system_prompt(SessionMode.DIRECT))
    return [system, ChatMessage("user", turn.text, (image,))]


def dire_predict(
    generator: BatchGenerator,
    ids: Sequence[str],
    images: Sequence[Any],
    settings: GenerationSettings,
    gazetteer: Gazetteer,
    hints: Sequence[Sequence[Hint]] | None = None,
    profile: PromptProfile | None = None,
    *,
    follow_up: bool = False,
) -> list[tuple[PredictionRow, dict[str, Any]]]:
    """DIRE answers for one batch: (prediction, extra fields for the predictions file) per sample.

    ``profile``: the model's prompt profile (None: gaga), which also parses the answers.
    ``follow_up``: the hints go into a second user turn after the model's own direct answer (the
    session's path) instead of into the first turn; the second answer is scored, the first kept as
    ``first_raw``."""
    if not follow_up:
        conversations = [
            dire_conversation(img, hints[i] if hints else (), profile) for i, img in enumerate(images)
        ]
        texts = generator.generate_batch(conversations, settings)
        firsts: list[str | None] = [None] * len(texts)
    else:
        if not hints or any(not h for h in hints):
            raise ValueError("the follow-up protocol needs hints for every sample")
        openings = [dire_conversation(img, (), profile) for img in images]
        first_texts = generator.generate_batch(openings, settings)

        def hint_text(i: int) -> str:
            if profile is None:
                return prompts.hint_turn(list(hints[i]), mode=SessionMode.DIRECT).text
            return profile.hint_turn(list(hints[i]), mode=SessionMode.DIRECT).text

        conversations = [
            [*opening, ChatMessage("assistant", first), ChatMessage("user", hint_text(i))]
            for i, (opening, first) in enumerate(zip(openings, first_texts, strict=True))
        ]
        texts = generator.generate_batch(conversations, settings)
        firsts = list(first_texts)
    out = []
    for sample_id, text, first_text in zip(ids, texts, firsts, strict=True):
        if profile is None:
            p = parse_answer(text, gazetteer, SessionMode.DIRECT).prediction
        else:
            p = profile.parse(text, gazetteer, SessionMode.DIRECT).prediction
        row = PredictionRow(sample_id, p.lat, p.lon, p.country, p.region, p.city, p.valid)
        extra: dict[str, Any] = {"raw": text, "problems": list(p.problems)}
        if first_text is not None:
            extra["first_raw"] = first_text
        out.append((row, extra))
    return out


# ------------------------------------------------------------------------------------------------
# HIER
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CityOption:
    name: str
    lat: float
    lon: float
    population: int


class HierCandidates:
    """Candidate names per level, from the gazetteer's GeoNames places (built once, cached per key)."""

    def __init__(
        self,
        gazetteer: Gazetteer,
        countries: Sequence[str] | None = None,
        max_cities: int | None = DEFAULT_MAX_CITIES,
    ) -> None:
        """``countries``: the candidate countries; None: every country with places in the gazetteer."""
        if countries is not None and not countries:
            raise ValueError("HIER needs at least one candidate country")
        if max_cities is not None and max_cities < 1:
            raise ValueError("max_cities must be at least 1 (or None for every city)")
        self.gazetteer = gazetteer
        self.max_cities = max_cities
        if countries is None:
            known = gazetteer.countries.names
            countries = [known.get(cc, cc) for cc in sorted(set(gazetteer.places.table.country_code)) if cc]
        names: list[str] = []
        for name in countries:
            ref = gazetteer.country(name)
            canonical = ref.name if ref is not None else name.strip()
            if canonical and canonical not in names:
                names.append(canonical)
        self.countries = sorted(names)
        table = gazetteer.places.table
        by_region: dict[str, dict[str, list[CityOption]]] = defaultdict(lambda: defaultdict(list))
        for cc, region, name, lat, lon, pop in zip(
            table.country_code,
            table.region,
            table.name,
            table.lat.tolist(),
            table.lon.tolist(),
            table.population.tolist(),
            strict=True,
        ):
            if region:
                by_region[cc][region].append(CityOption(name, lat, lon, pop))
        self._by_region = by_region

    def code(self, country: str | None) -> str | None:
        ref = self.gazetteer.country(country or "")
        return ref.code if ref is not None else None

    def regions(self, country_code: str, truth_region: str | None) -> list[str]:
        options = sorted(self._by_region.get(country_code, {}))
        return self._with_truth("region", options, truth_region, country_code)

    def cities(self, country_code: str, region: str, truth_city: str | None) -> list[CityOption]:
        places = self._by_region.get(country_code, {}).get(region, [])
        if not places:  # the region was the truth's own spelling: find the GeoNames one it names
            for name, rows in self._by_region.get(country_code, {}).items():
                if self.gazetteer.same_place("region", name, region, country_code):
                    places = rows
                    break
        top = sorted(places, key=lambda c: -c.population)[: self.max_cities]  # [:None] keeps all
        names = [c.name for c in top]
        if truth_city and not any(
            self.gazetteer.same_place("city", n, truth_city, country_code) for n in names
        ):
            ref = self.gazetteer.city(truth_city, country_code)
            top.append(
                CityOption(truth_city, ref.lat, ref.lon, ref.population)
                if ref is not None
                else CityOption(truth_city, float("nan"), float("nan"), 0)
            )
        unique = {c.name: c for c in top}
        return sorted(unique.values(), key=lambda c: c.name)

    def _with_truth(self, level: str, options: list[str], truth: str | None, cc: str) -> list[str]:
        if truth and not any(self.gazetteer.same_place(level, o, truth, cc) for o in options):
            options = sorted([*options, truth])
        return options


@dataclass(slots=True, eq=False)
class _HierState:
    truth: TruthRow
    image: Any
    country: str | None = None
    region: str | None = None
    city: CityOption | None = None
    raw: dict[str, str] | None = None


def hier_predict(
    generator: BatchGenerator,
    truths: Sequence[TruthRow],
    images: Sequence[Any],
    settings: GenerationSettings,
    candidates: HierCandidates,
    prefix_hints: Callable[[int], Sequence[Hint]] | None = None,
) -> list[tuple[PredictionRow, dict[str, Any]]]:
    """HIER answers for one batch, level by level; each level is one batched generate call.

    ``prefix_hints(i)``: hints (+Q / +QA) whose text goes before sample i's country question.
    """
    gaz = candidates.gazetteer
    states = [_HierState(t, img, raw={}) for t, img in zip(truths, images, strict=True)]

    def ask(level: str, items: list[tuple[_HierState, str, list[str]]]) -> list[str | None]:
        conversations = []
        for state, text, _ in items:
            i = next(k for k, other in enumerate(states) if other is state)
            hints = prefix_hints(i) if prefix_hints is not None and level == "country" else ()
            if hints:  # the hint lines go between the image and the question, as in a first turn
                lines = [prompts.hint_text(h) for h in hints]
                text = text.replace(
                    prompts.IMAGE_PLACEHOLDER + "\n",
                    prompts.IMAGE_PLACEHOLDER + "\n" + "\n".join(lines) + "\n",
                    1,
                )
            conversations.append([_system(), ChatMessage("user", text, (state.image,))])
        answers = generator.generate_batch(conversations, settings)
        picks = []
        for (state, _, options), answer in zip(items, answers, strict=True):
            assert state.raw is not None
            state.raw[level] = answer
            picks.append(parse_choice(answer, options))
        return picks

    # level 1: the country
    country_prompt = prompts.hier_country_prompt(candidates.countries)
    items = [(s, country_prompt, candidates.countries) for s in states]
    for (s, _, _), pick in zip(items, ask("country", items), strict=True):
        s.country = pick
    # level 2: regions of the country, only where the country is right
    right = [s for s in states if s.country and gaz.same_place("country", s.country, s.truth.country)]
    region_items = []
    for s in right:
        cc = candidates.code(s.truth.country)
        options = candidates.regions(cc, s.truth.region) if cc else []
        if options:
            region_items.append((s, prompts.hier_region_prompt(str(s.country), options), options))
    for (s, _, _), pick in zip(
        region_items, ask("region", region_items) if region_items else [], strict=True
    ):
        s.region = pick
    # level 3: cities of the region, only where the region is right too
    city_items: list[tuple[_HierState, str, list[str]]] = []
    city_options: dict[int, list[CityOption]] = {}
    for s in right:
        cc = candidates.code(s.truth.country)
        if cc is None or s.region is None or not gaz.same_place("region", s.region, s.truth.region, cc):
            continue
        cities = candidates.cities(cc, s.region, s.truth.city)
        if cities:
            city_options[id(s)] = cities
            names = [c.name for c in cities]
            city_items.append((s, prompts.hier_city_prompt(str(s.country), s.region, names), names))
    for (s, _, _), pick in zip(city_items, ask("city", city_items) if city_items else [], strict=True):
        s.city = next((c for c in city_options[id(s)] if c.name == pick), None)
    out = []
    for s in states:
        lat = s.city.lat if s.city is not None and s.city.lat == s.city.lat else None  # NaN: unknown
        lon = s.city.lon if s.city is not None and lat is not None else None
        row = PredictionRow(
            s.truth.id, lat, lon, s.country, s.region, s.city.name if s.city else None, s.country is not None
        )
        out.append((row, {"raw": s.raw}))
    return out
