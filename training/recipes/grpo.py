"""Stage 3: GRPO with geographic rewards (GeoAgent, seed 001; GLOBE, seed 002) on a stage-2 model.

A compact own GRPO loop (docs/adr/0013-grpo.md says why not TRL's GRPOTrainer), on the shared recipe
lifecycle of ``_common.Recipe`` (setup / train / save / cleanup, safetensors checkpoints with optimizer,
schedule, RNG, data position; exact resume). One step:

1. take ``train.batch_size`` prompts (B) from the data, in a seeded order that resumes mid-epoch;
2. render each prompt exactly as the app asks (system prompt of its mode, chat template, image padded
   to a square with the processor's mean colour) and sample G = ``grpo.group_size`` completions of at
   most ``grpo.max_completion_length`` tokens (``temperature``, ``top_p``; top-k off);
3. score every completion with the weighted rewards (``training/rewards.py``):
   r_i = sum_k w_k r_k(o_i, truth);
4. group-normalised advantages per prompt: A_i = (r_i - mean_G(r)) / (std_G(r) + 1e-4) (std unbiased,
   as TRL; ``grpo.scale_rewards: false`` drops the division, Dr. GRPO);
5. ``grpo.iterations`` (mu) AdamW updates on that batch of the GRPO objective (DeepSeekMath eq. 3):
   L = 1/(B G) sum_i 1/|o_i| sum_t [ -min(rho_it A_i, clip(rho_it, 1 - eps, 1 + eps) A_i) + beta KL_it ]
   rho_it = pi(o_it | .) / pi_old(o_it | .) (1 when mu = 1: pi_old is the policy that sampled),
   KL_it = exp(ref - logp) - (ref - logp) - 1 (the k3 estimator) against the reference policy, which
   is the same model with the LoRA adapter disabled (no second copy of the weights).

Log-probabilities use the logits divided by the sampling temperature, so they are those of the
distribution that was sampled (exact when top_p = 1). The model: the stage-2 model package (a merged
folder, HF llava format) in NF4 with double quantization (skip modules ``model.vision_tower``,
``model.multi_modal_projector``, ``lm_head``) or unquantized (``model.quantization: none``), LoRA on the
LLM's projections; only LoRA weights train.

Logs: ``grpo_metrics.csv`` (step, epoch, loss, kl, lr, grad_norm, reward mean/std, each reward's
mean/std, completion length, clip ratio, seconds) and the shared ``metrics.csv`` (loss, lr, grad_norm,
completion tokens). Output: ``<output_dir>/adapter/`` (peft, safetensors), ``summary.json``.

    geodesk-train grpo --config training/configs/tiny/grpo.yaml
"""

from __future__ import annotations

import copy
import csv
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from geodesk.engine.backends.base import template_messages
from geodesk.engine.parsing import parse_answer
from training.datasets import (
    DatasetError,
    DatasetReport,
    LengthGroupedBatchSampler,
    Sample,
    default_system_prompt,
    read_llava_json,
)
from training.recipes._common import BASE_DEFAULTS, Recipe, RecipeError, warmup_cosine
from training.recipes.finetune_qlora import (
    LORA_TARGET,
    build_lora_model,
    save_adapter,
    set_lora_train_modes,
)
from training.rewards import GroundTruth, RewardError, RewardSet, make_similarity

GRPO_METRICS = "grpo_metrics.csv"
STD_EPS = 1e-4  # TRL's epsilon in the advantage denominator

DEFAULTS: dict[str, Any] = copy.deepcopy(BASE_DEFAULTS)
DEFAULTS["recipe"] = "grpo"
DEFAULTS["model"].update({"quantization": "nf4"})
DEFAULTS["lora"] = {"r": 64, "alpha": 16, "dropout": 0.05, "target": LORA_TARGET}
DEFAULTS["data"] = {"files": [], "max_length": 2048, "system_prompt": "auto", "num_workers": 0}
DEFAULTS["train"] = {
    "epochs": 1,
    "max_steps": None,
    "batch_size": 4,  # prompts per step (B); each gets group_size completions
    "lr": 1.0e-6,
    "weight_decay": 0.0,
    "betas": [0.9, 0.99],
    "warmup_ratio": 0.0,
    "grad_clip": 1.0,
    "gradient_checkpointing": True,
}
DEFAULTS["grpo"] = {
    "group_size": 8,  # G: completions per prompt
    "beta": 0.04,  # KL weight (DeepSeekMath's value)
    "epsilon": 0.2,  # ratio clip
    "iterations": 1,  # mu: updates per generated batch
    "max_completion_length": 512,
    "temperature": 1.0,
    "top_p": 1.0,
    "scale_rewards": True,
    "micro_batch_size": None,  # completions per forward pass in the loss (None: the whole group)
}
DEFAULTS["rewards"] = {
    "weights": {"format": 0.2, "distance": 1.0, "admin": 1.0, "semantic": 0.5, "grounding": 0.0,
                "consistency": 0.0, "localizability": 0.0},
    "distance": "geoagent",  # or geoscore
    "similarity": "auto",  # auto | embedding | string
    "region_credit": 0.5,
    "judge": {  # the consistency and localizability rewards' judge, opened by geodesk's open_backend
        "backend": None,  # hf (a local package, in-process) | remote (any OpenAI-compatible endpoint)
        "workspace": None,  # where NAME[@VERSION] is resolved (default: $GEODESK_WORKSPACE / per-user)
        "model": None,  # hf: a package folder or NAME[@VERSION]; remote: the served model id (optional)
        "endpoints": [],
        "api_key": None,
        "quantization": "none",
        "device": "auto",
        "dtype": "auto",
        "max_new_tokens": 128,
    },
}


# -------------------------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class PromptSample:
    """One GRPO prompt: the conversation up to the answer to generate, its images and its truth."""

    id: str
    images: tuple[Path, ...]
    messages: tuple[tuple[str, str], ...]  # (role, text with <image> placeholders), system included
    truth: GroundTruth


def _truth_from(raw: Mapping[str, Any], sample: Sample, mode: str) -> GroundTruth | None:
    """The sample's ``truth`` object, else the parse of its last ``gpt`` answer (the stage-2 target)."""
    entities = raw.get("clue_entities") or []
    if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
        raise DatasetError(f"sample {sample.id} ({sample.source}): 'clue_entities' must be a list of strings")
    given = raw.get("truth")
    if given is not None:
        if not isinstance(given, Mapping):
            raise DatasetError(f"sample {sample.id} ({sample.source}): 'truth' must be an object")
        lat, lon = given.get("lat", given.get("latitude")), given.get("lon", given.get("longitude"))
        fields = {k: given.get(k) for k in ("country", "region", "city")}
    else:
        answers = [text for role, text in sample.messages if role == "assistant"]
        prediction = parse_answer(answers[-1], None, mode).prediction
        lat, lon = prediction.lat, prediction.lon
        fields = {"country": prediction.country, "region": prediction.region, "city": prediction.city}
    try:
        point = (float(lat), float(lon)) if lat is not None and lon is not None else (None, None)
    except (TypeError, ValueError):
        raise DatasetError(f"sample {sample.id} ({sample.source}): truth lat/lon must be numbers") from None
    names = {k: (str(v) if v not in (None, "") else None) for k, v in fields.items()}
    if point[0] is None and names["country"] is None:
        return None
    image = str(sample.images[0]) if sample.images else None
    return GroundTruth(point[0], point[1], names["country"], names["region"], names["city"],
                       tuple(entities), mode, image)


def _raw_items(file: Path) -> list[Any]:
    """The file's sample objects as read_llava_json reads them (a JSON list, or JSON lines for .jsonl),
    for the GRPO keys it does not keep (``truth``, ``clue_entities``)."""
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    items: list[Any] = json.loads(text)
    return items


class GRPOPromptDataset:
    """Prompts with their truths from LLaVA conversation JSON (what ``training/data`` writes).

    Per sample: the prompt is the conversation before its last ``gpt`` turn (earlier turns stay as
    context); the truth is the sample's optional ``"truth": {"lat", "lon", "country", "region", "city"}``
    or else the parse of that last ``gpt`` answer; ``"clue_entities": [...]`` (optional) feeds the visual
    grounding reward. The mode (direct / clues) is read from the prompt's format line, as the system
    prompt is. Dropped (counted in the report): missing images, no truth location, prompts longer than
    ``max_length`` tokens (image tokens included).
    """

    def __init__(self, files: Sequence[Any], processor: Any, *, max_length: int, system_prompt: str,
                 pad_to_square: bool = True) -> None:
        if not files:
            raise DatasetError("no training data files given (data.files is empty)")
        self.processor = processor
        self.pad_to_square = pad_to_square  # LLaVA pads to square; Qwen2.5-VL resizes whole images
        self.max_length = max_length
        mean = getattr(processor.image_processor, "image_mean", None)
        self.image_mean: tuple[float, ...] | None = tuple(mean) if mean else None
        self.report = DatasetReport()
        self.samples: list[PromptSample] = []
        for entry in files:
            if isinstance(entry, Mapping):
                path, root = entry["path"], entry.get("image_root")
            else:
                path, root = entry, None
            self.report.files.append(str(path))
            samples = read_llava_json(path, root)  # validates the file; its messages name what to fix
            for raw, sample in zip(_raw_items(Path(path).expanduser()), samples, strict=True):
                self._add(raw, sample, system_prompt)
        self.report.samples = len(self.samples)
        if not self.samples:
            raise DatasetError(
                f"no usable GRPO prompts in {', '.join(self.report.files)}: {self.report.to_json()}"
            )

    def _add(self, raw: Mapping[str, Any], sample: Sample, system_prompt: str) -> None:
        last = max(i for i, (role, _) in enumerate(sample.messages) if role == "assistant")
        messages = list(sample.messages[:last])
        if not any(role == "user" for role, _ in messages):
            raise DatasetError(f"sample {sample.id} ({sample.source}): no human turn before the answer")
        first_user = next(text for role, text in messages if role == "user")
        mode = "clues" if '"clues": [' in first_user else "direct"
        if not any(role == "system" for role, _ in messages):
            system = default_system_prompt(messages, system_prompt)
            if system is not None:
                messages.insert(0, ("system", system))
        placeholders = sum(text.count("<image>") for _, text in messages)
        missing = [p for p in sample.images[:placeholders] if not p.is_file()]
        if missing:
            self.report.drop(sample.id, f"image {missing[0]} does not exist")
            return
        truth = _truth_from(raw, sample, mode)
        if truth is None:
            self.report.drop(sample.id, "no true location (neither lat/lon nor country)")
            return
        prompt = PromptSample(sample.id, sample.images[:placeholders], tuple(messages), truth)
        length = int(self.encode(prompt)["input_ids"].shape[1])
        if length > self.max_length:
            self.report.drop(sample.id, f"prompt of {length} tokens > max_length {self.max_length}")
            return
        self.report.longest = max(self.report.longest, length)
        self.samples.append(prompt)

    def __len__(self) -> int:
        return len(self.samples)

    def encode(self, prompt: PromptSample) -> dict[str, Any]:
        """``input_ids`` / ``attention_mask`` ``[1, P]`` (image tokens expanded), ``pixel_values``
        ``[n_images, 3, H, W]`` when the prompt has images: the ids the hf backend would send."""
        from PIL import Image, UnidentifiedImageError

        from geodesk.engine.imaging import bounded_rgb, prepare_image

        text = self.processor.apply_chat_template(
            template_messages(prompt.messages), tokenize=False, add_generation_prompt=True
        )
        images = []
        for path in prompt.images:
            try:
                with Image.open(path) as img:
                    if self.pad_to_square:
                        images.append(prepare_image(img, self.image_mean))
                    else:  # the family resizes on its side; the decode is bounded all the same
                        images.append(bounded_rgb(img, self.image_mean))
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise DatasetError(f"sample {prompt.id}: image {path} cannot be read ({exc})") from None
        encoded = self.processor(
            text=[text], images=images or None, return_tensors="pt", add_special_tokens=False
        )
        return dict(encoded)


# ------------------------------------------------------------------------------------------ logging


class GRPOLog:
    """``grpo_metrics.csv``: one row per step; on resume, rows after the checkpoint's step are dropped
    (the resumed run writes them again). Columns: the fixed ones, then mean/std of each enabled reward."""

    FIXED = ("step", "epoch", "loss", "kl", "lr", "grad_norm", "reward_mean", "reward_std",
             "completion_length", "clip_ratio", "elapsed_s")

    def __init__(self, out_dir: Path, reward_names: Sequence[str], *, resume_step: int | None) -> None:
        self.path = out_dir / GRPO_METRICS
        self.fields = [*self.FIXED, *(f"{n}_{s}" for n in reward_names for s in ("mean", "std"))]
        rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(encoding="utf-8", newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        self._fh = self.path.open("w", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.fields, extrasaction="ignore")
        self._writer.writeheader()
        self._writer.writerows(rows)
        self._fh.flush()

    def log(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow(row)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def _repeat_vision(encoded: Mapping[str, Any], n: int, completion_tokens: int = 0) -> dict[str, Any]:
    """The prompt's vision inputs for ``n`` copies of it.

    LLaVA: ``pixel_values`` ``[n_img, 3, H, W]`` -> ``[n * n_img, 3, H, W]``. Qwen2.5-VL: patch rows
    ``[patches, D]`` -> ``[n * patches, D]``, ``image_grid_thw`` ``[n_img, 3]`` repeated, and
    ``mm_token_type_ids`` ``[1, P]`` -> ``[n, P + completion_tokens]`` (completion tokens are text).
    """
    import torch

    out: dict[str, Any] = {}
    pixels = encoded.get("pixel_values")
    if pixels is not None:
        out["pixel_values"] = pixels.repeat(n, *([1] * (pixels.dim() - 1)))
    if encoded.get("image_grid_thw") is not None:
        out["image_grid_thw"] = encoded["image_grid_thw"].repeat(n, 1)
    types = encoded.get("mm_token_type_ids")
    if types is not None:
        text = torch.zeros((types.shape[0], completion_tokens), dtype=types.dtype, device=types.device)
        out["mm_token_type_ids"] = torch.cat([types, text], dim=1).repeat(n, 1)
    return out


def group_advantages(rewards: Any, *, scale: bool = True) -> Any:
    """``rewards`` ``[B, G]`` -> advantages ``[B, G]``: (r - mean_G) / (std_G + 1e-4), std unbiased
    (``scale=False``: r - mean_G). A group whose completions all score the same gets 0 everywhere."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + STD_EPS)


def completion_mask(completion_ids: Any, eos_ids: Sequence[int]) -> Any:
    """``[G, T]`` -> ``[G, T]`` 1 up to and including the first end-of-turn token, 0 after it."""
    import torch

    is_eos = torch.zeros_like(completion_ids, dtype=torch.bool)
    for eos in eos_ids:
        is_eos |= completion_ids == eos
    # Tokens strictly after the first EOS: the running count of EOS *before* each position is > 0.
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return (before == 0).long()


# ------------------------------------------------------------------------------------------- recipe


class GRPORecipe(Recipe):
    NAME = "grpo"
    DEFAULTS = DEFAULTS

    # ---- setup

    def build_model(self) -> Any:
        return build_lora_model(self, "GRPO")

    def set_train_modes(self) -> None:
        set_lora_train_modes(self.model)

    def _setup_data(self) -> None:
        cfg = self.cfg
        grpo = cfg["grpo"]
        if int(grpo["group_size"]) < 2:
            raise RecipeError("grpo.group_size must be at least 2: advantages compare completions of a group")
        if int(grpo["iterations"]) < 1:
            raise RecipeError("grpo.iterations must be at least 1")
        self.prompts = GRPOPromptDataset(cfg["data"]["files"], self.processor,
                                         max_length=int(cfg["data"]["max_length"]),
                                         system_prompt=str(cfg["data"]["system_prompt"]),
                                         pad_to_square=self.family.pad_to_square)
        self.dataset = self.prompts  # type: ignore[assignment]  # Recipe.run() reads only .report
        # Several processes (torchrun): each rank takes its own prompts, batch_size per rank.
        self.sampler = LengthGroupedBatchSampler([1] * len(self.prompts), int(cfg["train"]["batch_size"]),
                                                 seed=int(cfg["seed"]), group_by_length=False,
                                                 world_size=self.world_size, rank=self.rank)
        if len(self.sampler) == 0:
            size = cfg["train"]["batch_size"]
            raise RecipeError(f"{len(self.prompts)} prompts make no full batch of {size} on each of "
                              f"{self.world_size} processes: lower train.batch_size or add data")
        self.steps_per_epoch = len(self.sampler)
        self.total_steps = self.steps_per_epoch * int(cfg["train"]["epochs"])
        if cfg["train"]["max_steps"] is not None:
            self.total_steps = min(self.total_steps, int(cfg["train"]["max_steps"]))
        self._check_stop_at()
        self.rewards = self._build_rewards()
        if self.is_main:
            print(f"grpo rewards: {json.dumps(self.rewards.describe())}", file=sys.stderr)

    def _build_rewards(self) -> RewardSet:
        spec = self.cfg["rewards"]
        weights = {k: float(v) for k, v in (spec["weights"] or {}).items() if v is not None}
        try:
            similarity = make_similarity(str(spec["similarity"])) if weights.get("semantic") else None
            needs_judge = weights.get("consistency") or weights.get("localizability")
            self.judge = self._open_judge() if needs_judge else None
            judge_settings = None
            if self.judge is not None:
                from geodesk.engine.backends.base import GenerationSettings

                judge_settings = GenerationSettings(max_new_tokens=int(spec["judge"]["max_new_tokens"]))
            return RewardSet(weights, distance_shape=spec["distance"], similarity=similarity,
                             region_credit=float(spec["region_credit"]), judge=self.judge,
                             judge_settings=judge_settings)
        except RewardError as exc:
            raise RecipeError(str(exc)) from None

    def _open_judge(self) -> Any:
        """The judge of the consistency / localizability rewards, opened the way every geodesk command
        opens a model (``geodesk.services.models.open_backend``): ``hf`` loads a local package
        (a folder or a registered NAME[@VERSION]) in-process, ``remote`` talks to any OpenAI-compatible
        endpoint (``geodesk serve``, lmdeploy, vLLM)."""
        import os

        from geodesk.engine.backends.base import BackendError
        from geodesk.services.models import BackendRequest, ModelNotFoundError, open_backend

        judge = self.cfg["rewards"]["judge"]
        if judge["backend"] not in ("hf", "remote"):
            raise RecipeError("the consistency and localizability rewards need rewards.judge.backend: "
                              "hf or remote")
        if judge["backend"] == "hf" and not judge["model"]:
            raise RecipeError("rewards.judge.model must name a model package (folder or NAME[@VERSION])")
        workspace = judge.get("workspace") or os.environ.get("GEODESK_WORKSPACE")
        if not workspace:
            import platformdirs

            workspace = platformdirs.user_data_dir("geodesk", appauthor=False)
        request = BackendRequest(
            model=None if judge["model"] is None else str(judge["model"]), backend=judge["backend"],
            dtype=str(judge["dtype"]), device=str(judge["device"]), quantization=str(judge["quantization"]),
            endpoints=tuple(str(e) for e in judge["endpoints"] or ()), api_key=judge["api_key"],
        )
        try:
            return open_backend(Path(workspace).expanduser(), request)
        except (BackendError, ModelNotFoundError) as exc:
            raise RecipeError(f"the reward judge cannot be opened: {exc}") from None

    def _setup_optimizer(self) -> None:
        import torch

        train = self.cfg["train"]
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=float(train["lr"]), betas=(float(train["betas"][0]), float(train["betas"][1])),
            weight_decay=float(train["weight_decay"]),
        )
        # The schedule counts optimizer updates: mu per step.
        updates = self.total_steps * int(self.cfg["grpo"]["iterations"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(updates, float(train["warmup_ratio"]))
        )

    def setup(self) -> None:
        self.judge = None
        self.grpo_log: GRPOLog | None = None
        super().setup()
        self.reward_history: list[dict[str, float]] = []
        if self.is_main:
            self.grpo_log = GRPOLog(self.out_dir, self.rewards.names,
                                    resume_step=self.step if self.resume else None)

    # ---- one step

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        return [int(i) for i in ids] or [int(self.processor.tokenizer.eos_token_id)]

    def _image_token_id(self) -> int:
        return int(self.model.get_base_model().config.image_token_id)

    def _generate(self, encoded: Mapping[str, Any]) -> Any:
        """G sampled completions of one prompt: ``[G, T]`` token ids (T <= max_completion_length)."""
        import torch
        from transformers import GenerationConfig

        grpo = self.cfg["grpo"]
        g = int(grpo["group_size"])
        tokenizer = self.processor.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        config = cast("Any", GenerationConfig)(  # transformers leaves its __init__ untyped
            do_sample=True, temperature=float(grpo["temperature"]), top_p=float(grpo["top_p"]), top_k=0,
            max_new_tokens=int(grpo["max_completion_length"]), eos_token_id=self._eos_ids(),
            pad_token_id=int(pad), use_cache=True,
            # A sampled image placeholder would ask the model for an image that is not there.
            suppress_tokens=[self._image_token_id()],
        )
        inputs = {
            "input_ids": encoded["input_ids"].repeat(g, 1),  # [G, P]
            "attention_mask": encoded["attention_mask"].repeat(g, 1),
        }
        inputs.update(_repeat_vision(encoded, g))
        self.model.eval()
        with torch.no_grad(), self._autocast():
            out = self.model.generate(**inputs, generation_config=config)
        self.set_train_modes()
        return out[:, inputs["input_ids"].shape[1]:]

    def _token_logps(self, encoded: Mapping[str, Any], completion: Any, *, reference: bool = False) -> Any:
        """Per-token log-probabilities ``[n, T]`` of ``completion`` ``[n, T]`` after the prompt, from
        logits / temperature; ``reference``: with the LoRA adapter disabled (no grad). A forward that
        needs gradients goes through the DDP wrapper when several processes train."""
        import contextlib

        import torch

        n, t = completion.shape
        ids = torch.cat([encoded["input_ids"].repeat(n, 1), completion], dim=1)  # [n, P + T]
        mask = torch.ones_like(ids)
        mask[:, : encoded["attention_mask"].shape[1]] = encoded["attention_mask"]
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "logits_to_keep": t + 1}
        kwargs.update(_repeat_vision(encoded, n, completion_tokens=t))
        ctx = self.model.disable_adapter() if reference else contextlib.nullcontext()
        grad = torch.no_grad() if reference else contextlib.nullcontext()
        model = self.ddp_model if torch.is_grad_enabled() and not reference else self.model
        with ctx, grad, self._autocast():
            logits = model(**kwargs).logits[:, :-1, :]  # [n, T, V]: position j predicts token j + 1
        logits = logits.float() / float(self.cfg["grpo"]["temperature"])
        logits[..., self._image_token_id()] = float("-inf")  # suppressed in sampling too: same distribution
        return torch.log_softmax(logits, dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)  # [n, T]

    def _rollout(self, index: int) -> dict[str, Any]:
        """Generate and score one prompt's group; everything the loss needs, on self.device."""
        prompt = self.prompts.samples[index]
        encoded = {k: v.to(self.device) for k, v in self.prompts.encode(prompt).items()}
        if "pixel_values" in encoded:
            encoded["pixel_values"] = encoded["pixel_values"].to(self.pixel_dtype())
        completion = self._generate(encoded)  # [G, T]
        mask = completion_mask(completion, self._eos_ids())  # [G, T]
        lengths = mask.sum(dim=1).tolist()
        rows = [row[: int(n)] for row, n in zip(completion.tolist(), lengths, strict=True)]
        texts = self.processor.tokenizer.batch_decode(rows, skip_special_tokens=True)
        scores = self.rewards.score(texts, [prompt.truth] * len(texts))
        return {"encoded": encoded, "completion": completion, "mask": mask, "scores": scores}

    def _chunks(self, n: int) -> list[slice]:
        size = self.cfg["grpo"]["micro_batch_size"]
        size = n if size is None else max(1, int(size))
        return [slice(i, min(n, i + size)) for i in range(0, n, size)]

    def _train_step(self, indices: Sequence[int]) -> dict[str, Any]:
        import contextlib

        import torch

        grpo = self.cfg["grpo"]
        beta, eps, mu = float(grpo["beta"]), float(grpo["epsilon"]), int(grpo["iterations"])
        rollouts = [self._rollout(i) for i in indices]
        rewards = torch.tensor([r["scores"].total for r in rollouts], dtype=torch.float32)  # [B, G]
        advantages = group_advantages(rewards, scale=bool(grpo["scale_rewards"])).to(self.device)
        n_seq = rewards.numel()
        # Old and reference log-probabilities are fixed for the mu updates (no grad).
        for r in rollouts:
            r["ref"] = self._token_logps(r["encoded"], r["completion"], reference=True) if beta else None
            if mu > 1:
                with torch.no_grad():
                    r["old"] = self._token_logps(r["encoded"], r["completion"])
        losses, kls, norms = [], [], []
        clipped_tokens = counted_tokens = 0.0
        # Under DDP the gradients are averaged over the ranks at the last backward of an update only:
        # every rank runs the same number of chunks (same B, G and micro-batch size).
        chunks = [(b, part) for b, r in enumerate(rollouts)
                  for part in self._chunks(int(r["completion"].shape[0]))]
        for _ in range(mu):
            step_loss = step_kl = 0.0
            for k, (b, part) in enumerate(chunks):
                r = rollouts[b]
                sync = self.world_size == 1 or k == len(chunks) - 1
                with contextlib.nullcontext() if sync else self.ddp_model.no_sync():
                    logp = self._token_logps(r["encoded"], r["completion"][part])  # [n, T]
                    old = r["old"][part] if mu > 1 else logp.detach()
                    m = r["mask"][part].to(logp.dtype)  # [n, T]
                    adv = advantages[b, part].unsqueeze(1)  # [n, 1]
                    ratio = torch.exp(logp - old)
                    clipped = torch.clamp(ratio, 1 - eps, 1 + eps)
                    per_token = -torch.min(ratio * adv, clipped * adv)
                    if beta:
                        diff = r["ref"][part] - logp
                        kl = torch.exp(diff) - diff - 1  # k3 estimator, >= 0
                        per_token = per_token + beta * kl
                        step_kl += float(((kl.detach() * m).sum(1) / m.sum(1).clamp(min=1)).sum())
                    per_seq = (per_token * m).sum(1) / m.sum(1).clamp(min=1)  # [n]
                    loss = per_seq.sum() / n_seq  # this chunk's share of the mean over B * G
                    loss.backward()
                    step_loss += float(loss.detach())
                    out_of_range = ((ratio < 1 - eps) | (ratio > 1 + eps)).to(m.dtype)
                    clipped_tokens += float((out_of_range * m).sum())
                    counted_tokens += float(m.sum())
            params = [p for p in self.model.parameters() if p.requires_grad]
            clip = self.cfg["train"]["grad_clip"]
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, float(clip) if clip else float("inf"))))
            lr = float(self.scheduler.get_last_lr()[0])
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            losses.append(step_loss)
            kls.append(step_kl / n_seq)
        flat_total = [v for r in rollouts for v in r["scores"].total]
        row: dict[str, Any] = {
            "loss": sum(losses) / mu, "kl": sum(kls) / mu, "lr": lr, "grad_norm": sum(norms) / mu,
            "clip_ratio": clipped_tokens / max(1.0, counted_tokens),
            "completion_length": float(sum(float(r["mask"].sum()) for r in rollouts) / n_seq),
            "tokens": int(sum(float(r["mask"].sum()) for r in rollouts)),
        }
        row["reward_mean"], row["reward_std"] = _mean_std(flat_total)
        for name in self.rewards.names:
            values = [v for r in rollouts for v in r["scores"].per_reward[name]]
            row[f"{name}_mean"], row[f"{name}_std"] = _mean_std(values)
        return row

    # ---- train

    def train(self) -> None:
        from tqdm import tqdm

        log_every = max(1, int(self.cfg["log"]["every"]))
        ckpt_every = int(self.cfg["checkpoint"]["every"])
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.NAME, unit="step",
                   disable=not self.progress, file=sys.stderr)
        self.set_train_modes()
        started = time.perf_counter()
        for epoch in range(self.epoch, int(self.cfg["train"]["epochs"])):
            if epoch != self.epoch:
                self.epoch, self.batch_in_epoch = epoch, 0
            self.sampler.set_epoch(epoch, self.batch_in_epoch)
            for indices in self.sampler:
                if self.step >= self.stop_step:
                    break
                row = self._train_step(indices)
                self.step += 1
                self.batch_in_epoch += 1
                if self.batch_in_epoch >= self.steps_per_epoch:  # epoch done: a resume starts the next one
                    self.epoch, self.batch_in_epoch = epoch + 1, 0
                self.losses.append(float(row["loss"]))
                elapsed = round(time.perf_counter() - started, 3)
                row.update({"step": self.step, "epoch": epoch, "elapsed_s": elapsed})
                self.reward_history.append({k: float(v) for k, v in row.items() if k.endswith("_mean")})
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}", reward=f"{row['reward_mean']:.3f}")
                if self.step % log_every == 0 or self.step == self.total_steps:
                    if self.logger is not None:
                        self.logger.log(row)
                    if self.grpo_log is not None:
                        self.grpo_log.log(row)
                if ckpt_every > 0 and self.step < self.total_steps and (
                        self.step % ckpt_every == 0 or self.step == self.stop_step):
                    self.save_checkpoint()
                if self.on_step is not None:
                    self.on_step(self.step, float(row["loss"]))
            if self.step >= self.stop_step:
                break
        bar.close()

    # ---- save / cleanup

    def save_outputs(self) -> dict[str, Any]:
        final = save_adapter(self.model, self.out_dir)
        return {
            "adapter": str(final),
            "base_model": str(self.cfg["model"]["path"]),
            "quantization": self.cfg["model"]["quantization"],
            "trainable_parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            "rewards": self.rewards.describe(),
            "reward_history": self.reward_history,
            "metrics_csv": str(self.out_dir / GRPO_METRICS),
        }

    def cleanup(self) -> None:
        if getattr(self, "grpo_log", None) is not None:
            assert self.grpo_log is not None
            self.grpo_log.close()
            self.grpo_log = None
        judge = getattr(self, "judge", None)
        if judge is not None:
            judge.close()
            self.judge = None
        super().cleanup()


def run(
    config: dict[str, Any], *, resume: bool = False, progress: bool = False, on_step: Any = None
) -> dict[str, Any]:
    """Run GRPO with a loaded config (see :func:`training.recipes._common.load_config`)."""
    return GRPORecipe(config, resume=resume, progress=progress, on_step=on_step).run()
