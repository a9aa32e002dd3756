"""What both training stages share: configs, the train loop, logging, resumable checkpoints, DDP.

A recipe (``pretrain_projector.py``, ``finetune_qlora.py``) is a subclass of :class:`Recipe` that says
how to build its model and which parameters it trains; this module runs the torchtune lifecycle:

- ``setup()``: config, seed, device, process group, model (the subclass), data, optimizer, schedule;
- ``train()``: AdamW steps with gradient accumulation, clipping, warmup + cosine learning rate, a tqdm
  bar, loss and learning rate logged to ``metrics.csv`` (and TensorBoard when it is installed) every
  ``log.every`` steps, a checkpoint every ``checkpoint.every`` steps;
- ``save_checkpoint()``: trainable weights (safetensors), optimizer state (safetensors + JSON), schedule,
  RNG states (torch, CUDA, Python, NumPy), data-sampler position and step, written into a temporary
  folder and renamed into place: a checkpoint is complete or absent. No pickle anywhere.
- ``cleanup()``: close the loggers and the process group.

``resume=True`` continues from the newest checkpoint in ``output_dir/checkpoints`` exactly: the next
batches, dropout masks and learning rates are those an uninterrupted run would have used, so the losses
after resuming equal the uninterrupted run's (tested on CPU in fp32).

Multi-process: started by ``torchrun`` (or ``accelerate launch``), which set ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK``: the model is wrapped in DistributedDataParallel (NCCL on GPUs, gloo on CPUs), each rank
takes every ``world_size``-th batch, rank 0 logs and saves.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import csv
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from geodesk import atomic as geodesk_atomic
from geodesk.digest import sha256_file
from training.datasets import (
    Collator,
    LengthGroupedBatchSampler,
    LlavaConversationDataset,
    builder_manifest,
)

CHECKPOINTS = "checkpoints"
SUMMARY = "summary.json"
METRICS = "metrics.csv"
StepHook = Callable[[int, float], None]


class RecipeError(Exception):
    """A recipe cannot run as configured; the message says what to change."""


# ---------------------------------------------------------------------------------------- configs

# Keys every training config has, with defaults; a recipe adds its own (``Recipe.DEFAULTS``).
BASE_DEFAULTS: dict[str, Any] = {
    "recipe": None,
    "seed": 0,
    "output_dir": None,
    "device": "auto",  # auto: cuda:LOCAL_RANK when CUDA is there, else cpu
    "model": {"path": None, "dtype": "auto"},  # auto: bf16 weights + bf16 autocast on CUDA, fp32 on CPU
    # train_on: "all" assistant answers labelled, or the "last" only (also settable per file entry).
    "data": {"files": [], "max_length": 2048, "system_prompt": "auto", "num_workers": 0, "train_on": "all"},
    "train": {
        "epochs": 1,
        "max_steps": None,  # cap on optimizer steps (the schedule is laid out over the capped total)
        # End the run after this optimizer step, its schedule still laid out over the whole total: the
        # weights are those the whole run has at that step (a run that has to end within a time budget).
        "stop_at": None,
        "batch_size": 4,  # per process and micro-batch (an upper bound when total_batch is set)
        "grad_accum": 1,  # ignored when total_batch is set: derived from it and the world size
        "total_batch": None,  # samples per optimizer step over all processes (GaGA: 16); see batch_plan
        "group_by_length": True,
        "lr": 1.0e-3,
        "weight_decay": 0.0,
        "betas": [0.9, 0.999],
        "warmup_ratio": 0.03,
        "grad_clip": 1.0,
        "gradient_checkpointing": False,
    },
    "log": {"every": 1, "tensorboard": True},
    "checkpoint": {"every": 100, "keep": 2},
}


def batch_plan(total_batch: int, batch_size: int, world_size: int) -> tuple[int, int]:
    """(micro-batch per process, gradient accumulation steps) that make ``total_batch`` exactly.

    total_batch = micro x accum x world_size. The micro-batch is the largest size up to ``batch_size``
    for which that holds, so the same config gives the paper's total of 16 on 1, 2, 4, 8 or 16 GPUs:
    with batch_size 4, one process accumulates 4 micro-batches, four processes accumulate 1, eight
    processes run micro-batches of 2.
    """
    if total_batch < 1 or batch_size < 1 or world_size < 1:
        raise RecipeError("train.total_batch, train.batch_size and the process count must be at least 1")
    if total_batch % world_size:
        raise RecipeError(
            f"train.total_batch={total_batch} cannot be split evenly over {world_size} processes; launch a "
            f"number of processes that divides {total_batch}, or change train.total_batch"
        )
    per_process = total_batch // world_size
    micro = max(m for m in range(1, min(batch_size, per_process) + 1) if per_process % m == 0)
    return micro, per_process // micro


def _merge(base: Mapping[str, Any], update: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        name = f"{where}{key}"
        if key not in out:
            raise RecipeError(f"unknown config key {name!r}; known here: {', '.join(sorted(out))}")
        if isinstance(out[key], dict) and value is not None:
            if not isinstance(value, Mapping):
                raise RecipeError(f"config key {name!r} must be a mapping")
            out[key] = _merge(out[key], value, f"{name}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``train.lr=2e-4`` -> ``{"train": {"lr": 0.0002}}`` (the value is read as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {text!r} must look like key.sub=value")
    value = yaml.safe_load(raw) if raw.strip() else None
    if isinstance(value, str) and _looks_like_float(value):
        value = float(value)  # YAML 1.1 reads "2e-4" as a string
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(c in text for c in "eE.") and text.strip().lower() not in ("nan", "inf", "-inf")


def _floats(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_floats(v) for v in node]
    if isinstance(node, str) and _looks_like_float(node):
        return float(node)
    return node


def load_config(
    source: str | Path | Mapping[str, Any],
    defaults: Mapping[str, Any],
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Defaults <- YAML file (or mapping) <- ``key=value`` overrides; unknown keys are errors.

    Relative paths in a YAML file stay relative to the working directory (the launch command in each
    config header runs from the repository root).
    """
    if isinstance(source, Mapping):
        loaded: Any = dict(source)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise RecipeError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise RecipeError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise RecipeError(f"{path} must hold a YAML mapping")
    config = _merge(defaults, _floats(loaded))
    for text in overrides or []:
        config = _merge(config, parse_override(text))
    return config


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the config, without the keys that may change between a run and its resumption."""
    stable = copy.deepcopy(dict(config))
    stable.get("checkpoint", {}).pop("every", None)
    stable.get("checkpoint", {}).pop("keep", None)
    stable.get("data", {}).pop("num_workers", None)
    stable.get("log", {}).pop("tensorboard", None)
    stable.get("train", {}).pop("stop_at", None)  # a run stopped early is the whole run's prefix
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ misc


def file_sha256(path: str | Path) -> str:
    return sha256_file(path)  # the one implementation (geodesk.digest)


def data_manifest(files: list[Any]) -> list[dict[str, Any]]:
    """The data files a run read, with SHA-256 (provenance): each file, and the builder's manifest
    (``<file>.manifest.json``, written by ``training/data``) when there is one."""
    out = []
    for entry in files:
        path = Path(entry["path"] if isinstance(entry, Mapping) else entry).expanduser()
        record: dict[str, Any] = {"path": str(path), "sha256": file_sha256(path)}
        manifest = builder_manifest(path)
        if manifest is not None:
            record["manifest"] = {"path": str(manifest), "sha256": file_sha256(manifest)}
        out.append(record)
    return out


def code_version() -> dict[str, Any]:
    """geodesk's version and, when the code is a git checkout, its commit and whether it was modified."""
    import geodesk

    info: dict[str, Any] = {"geodesk": geodesk.__version__}
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            info["git_dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def atomic_write_json(path: Path, document: Any) -> None:
    """Run files (summaries, checkpoint state): anything not JSON-native (paths) written as text."""
    geodesk_atomic.atomic_write_json(path, document, default=str)


def warmup_cosine(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """LR multiplier for optimizer step ``s`` (0-based): linear warmup over ``ceil(ratio * total)`` steps
    from 1/warmup to 1, then cosine from 1 to 0 at ``total`` (XTuner's LinearLR + CosineAnnealingLR)."""
    warmup = math.ceil(warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class MetricLogger:
    """``metrics.csv`` (step, epoch, loss, lr, grad_norm, tokens, seconds) + TensorBoard if installed.

    On resume, rows after the checkpoint's step are dropped first: they belong to the interrupted
    continuation, which the resumed run repeats.
    """

    FIELDS = ("step", "epoch", "loss", "lr", "grad_norm", "tokens", "elapsed_s")

    def __init__(self, out_dir: Path, *, tensorboard: bool, resume_step: int | None) -> None:
        self.path = out_dir / METRICS
        rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(encoding="utf-8", newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        self._fh = self.path.open("w", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.FIELDS)
        self._writer.writeheader()
        self._writer.writerows(rows)
        self._fh.flush()
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional (the "training" extra)
                self._tb = None

    def log(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({k: row.get(k) for k in self.FIELDS})
        self._fh.flush()
        if self._tb is not None:
            for key in ("loss", "lr", "grad_norm"):
                if row.get(key) is not None:
                    self._tb.add_scalar(f"train/{key}", row[key], row["step"])

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


# ------------------------------------------------------------------------------- checkpoint files


def _save_tensors(tensors: Mapping[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


def _load_tensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


def optimizer_to_files(optimizer: Any, folder: Path) -> None:
    """AdamW state as safetensors (``state.<param index>.<name>``) + param groups as JSON."""
    state = optimizer.state_dict()
    tensors = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if hasattr(value, "shape"):
                tensors[f"state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    _save_tensors(tensors, folder / "optimizer.safetensors")
    atomic_write_json(folder / "optimizer.json", {"param_groups": state["param_groups"], "scalars": scalars})


def optimizer_from_files(optimizer: Any, folder: Path) -> None:
    meta = json.loads((folder / "optimizer.json").read_text(encoding="utf-8"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in _load_tensors(folder / "optimizer.safetensors").items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_state() -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, JSON) capturing every random generator a training step uses."""
    import numpy as np
    import torch

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
    }
    return tensors, meta


def set_rng_state(tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def latest_checkpoint(out_dir: Path) -> Path | None:
    folder = out_dir / CHECKPOINTS
    if not folder.is_dir():
        return None
    done = sorted(p for p in folder.glob("step-*") if (p / "state.json").is_file())
    return done[-1] if done else None


# ------------------------------------------------------------------------------------ the recipe


class Recipe(abc.ABC):
    """The shared lifecycle; subclasses set ``NAME``, ``DEFAULTS`` and implement ``build_model``."""

    NAME = "recipe"
    DEFAULTS: Mapping[str, Any] = BASE_DEFAULTS

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        resume: bool = False,
        progress: bool = False,
        on_step: StepHook | None = None,
    ) -> None:
        self.cfg = dict(config)
        self.resume = resume
        self.progress = progress
        self.on_step = on_step  # called after each optimizer step with (step, loss); tests interrupt here
        self.losses: list[float] = []

    # ---- subclass hooks

    @abc.abstractmethod
    def build_model(self) -> Any:
        """Load the model, freeze what the stage freezes; return it (trainable params requires_grad)."""

    def trainable_state(self) -> dict[str, Any]:
        """Trainable weights by name (what a checkpoint stores and resume loads back)."""
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def load_trainable_state(self, tensors: Mapping[str, Any]) -> None:
        import torch

        params = dict(self.model.named_parameters())
        missing = set(self.trainable_state()) - set(tensors)
        if missing:
            raise RecipeError(f"the checkpoint lacks {len(missing)} trainable tensor(s), e.g. {min(missing)}")
        with torch.no_grad():
            for name, value in tensors.items():
                params[name].copy_(value)

    @abc.abstractmethod
    def save_outputs(self) -> dict[str, Any]:
        """Write the stage's result into output_dir; return what the summary should say about it."""

    # ---- setup

    def setup(self) -> None:
        import torch

        cfg = self.cfg
        if not cfg.get("output_dir"):
            raise RecipeError("output_dir is not set (the folder for checkpoints, logs and results)")
        if not cfg["model"].get("path"):
            raise RecipeError("model.path is not set (the base model folder, HF llava format)")
        self.out_dir = Path(cfg["output_dir"]).expanduser().resolve()
        self._setup_distributed()
        train_cfg = cfg["train"]
        if train_cfg.get("total_batch") is not None:
            micro, accum = batch_plan(int(train_cfg["total_batch"]), int(train_cfg["batch_size"]),
                                      self.world_size)
            cfg["train"] = {**train_cfg, "batch_size": micro, "grad_accum": accum}
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self._start_checkpoint = latest_checkpoint(self.out_dir) if self.resume else None
        if self.resume and self._start_checkpoint is None and self.is_main:
            print(f"no checkpoint in {self.out_dir / CHECKPOINTS}; starting from step 0", file=sys.stderr)
        if not self.resume and latest_checkpoint(self.out_dir) is not None:
            raise RecipeError(
                f"{self.out_dir} already holds checkpoints of a run: pass --resume to continue it, or "
                "choose another output_dir"
            )
        torch.manual_seed(int(cfg["seed"]))
        random.seed(int(cfg["seed"]))
        self.autocast_dtype = self._resolve_dtype()
        from geodesk.engine.backends.hf import load_processor
        from geodesk.engine.families import FamilyError, detect_family

        try:
            self.family = detect_family(Path(cfg["model"]["path"]).expanduser())
        except FamilyError as exc:
            raise RecipeError(str(exc)) from None
        self.processor = load_processor(Path(cfg["model"]["path"]).expanduser(), self.family)
        self.model = self.build_model()
        self.model.config.use_cache = False  # no KV cache in training
        if cfg["train"]["gradient_checkpointing"]:
            # Non-reentrant: works with a frozen embedding layer (its output needs no grad).
            self.model.activation_checkpointing_enable(
                activation_checkpointing_kwargs={"use_reentrant": False}
            )
        # Dropout (LoRA) draws from here on: ranks draw different masks.
        torch.manual_seed(int(cfg["seed"]) + self.rank)
        self.ddp_model = self._wrap_ddp(self.model)
        self._setup_data()
        self._setup_optimizer()
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        if self._start_checkpoint is not None:
            self._load_checkpoint(self._start_checkpoint)
        self.logger = (
            MetricLogger(
                self.out_dir,
                tensorboard=bool(cfg["log"]["tensorboard"]),
                resume_step=self.step if self.resume else None,
            )
            if self.is_main
            else None
        )

    def _setup_distributed(self) -> None:
        import torch

        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.is_main = self.rank == 0
        wanted = self.cfg["device"]
        if wanted == "auto":
            wanted = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(wanted)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world_size > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)

    def _resolve_dtype(self) -> Any:
        import torch

        choice = self.cfg["model"]["dtype"]
        if choice == "auto":
            return torch.bfloat16 if self.device.type == "cuda" else torch.float32
        table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
        if choice not in table:
            raise RecipeError(f"model.dtype must be auto, bf16, fp16 or fp32, not {choice!r}")
        return table[choice]

    def _wrap_ddp(self, model: Any) -> Any:
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _setup_data(self) -> None:
        import torch

        cfg = self.cfg
        data = cfg["data"]
        self.dataset = LlavaConversationDataset(
            data["files"],
            self.processor,
            max_length=int(data["max_length"]),
            system_prompt=str(data["system_prompt"]),
            family=self.family,
            train_on=str(data["train_on"]),
        )
        train = cfg["train"]
        self.sampler = LengthGroupedBatchSampler(
            self.dataset.lengths,
            int(train["batch_size"]),
            seed=int(cfg["seed"]),
            group_by_length=bool(train["group_by_length"]),
            world_size=self.world_size,
            rank=self.rank,
        )
        pad = self.processor.tokenizer.pad_token_id
        if pad is None:
            pad = self.processor.tokenizer.eos_token_id
        dataset: Any = self.dataset  # map-style: __len__ + __getitem__
        self.loader: Any = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=Collator(int(pad)),
            num_workers=int(data["num_workers"]),
            # The loader draws its workers' base seed when an iterator starts; a private generator keeps
            # that draw off the global stream, so a resumed run's dropout masks match the original's.
            generator=torch.Generator().manual_seed(int(cfg["seed"])),
        )
        accum = int(train["grad_accum"])
        self.steps_per_epoch = len(self.sampler) // accum
        if self.steps_per_epoch == 0:
            raise RecipeError(
                f"{len(self.dataset)} samples make {len(self.sampler)} batch(es) per process, fewer than "
                f"grad_accum={accum}: lower batch_size / grad_accum or add data"
            )
        self.total_steps = self.steps_per_epoch * int(train["epochs"])
        if train["max_steps"] is not None:
            self.total_steps = min(self.total_steps, int(train["max_steps"]))
        self._check_stop_at()

    def _check_stop_at(self) -> None:
        stop = self.cfg["train"].get("stop_at")
        if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int) or stop < 1):
            raise RecipeError(f"train.stop_at must be a step number of at least 1 (or null), got {stop!r}")

    @property
    def stop_step(self) -> int:
        """The step the run ends after: ``train.stop_at`` when set and sooner, else the schedule's total."""
        stop = self.cfg["train"].get("stop_at")
        return self.total_steps if stop is None else min(self.total_steps, int(stop))

    def _setup_optimizer(self) -> None:
        import torch

        train = self.cfg["train"]
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise RecipeError("the model has no trainable parameters")
        self.optimizer = torch.optim.AdamW(
            params,
            lr=float(train["lr"]),
            betas=(float(train["betas"][0]), float(train["betas"][1])),
            weight_decay=float(train["weight_decay"]),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(self.total_steps, float(train["warmup_ratio"]))
        )

    # ---- train

    def _autocast(self) -> Any:
        import torch

        if self.device.type == "cuda" and self.autocast_dtype != torch.float32:
            return torch.autocast("cuda", dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def _batches(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(epoch, micro-batch) from the resume position on; each epoch's tail that cannot fill a
        whole accumulation group is skipped (every optimizer step sees grad_accum micro-batches)."""
        usable = self.steps_per_epoch * int(self.cfg["train"]["grad_accum"])
        for epoch in range(self.epoch, int(self.cfg["train"]["epochs"])):
            start = self.batch_in_epoch if epoch == self.epoch else 0
            self.sampler.set_epoch(epoch, start)
            for offset, batch in enumerate(self.loader):
                if start + offset >= usable:
                    break
                yield epoch, batch

    def train(self) -> None:
        import torch
        from tqdm import tqdm

        train = self.cfg["train"]
        accum = int(train["grad_accum"])
        clip = train["grad_clip"]
        log_every = max(1, int(self.cfg["log"]["every"]))
        ckpt_every = int(self.cfg["checkpoint"]["every"])
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=self.NAME,
            unit="step",
            disable=not (self.progress and self.is_main),
            file=sys.stderr,
        )
        self.ddp_model.train()
        self.set_train_modes()
        started = time.perf_counter()
        micro_losses: list[Any] = []
        tokens = 0
        for epoch, batch in self._batches():
            if self.step >= self.stop_step:
                break
            batch = {k: v.to(self.device) for k, v in batch.items()}
            if "pixel_values" in batch:
                batch["pixel_values"] = batch["pixel_values"].to(self.pixel_dtype())
            last_micro = len(micro_losses) + 1 == accum
            # DDP: all-reduce gradients only on the micro-batch that completes the step.
            sync = (
                contextlib.nullcontext() if last_micro or self.world_size == 1 else self.ddp_model.no_sync()
            )
            with sync, self._autocast():
                loss = self.ddp_model(**batch).loss  # mean over this micro-batch's answer tokens
                (loss / accum).backward()
            micro_losses.append(loss.detach())
            tokens += int(batch["attention_mask"].sum())
            self.batch_in_epoch += 1
            self.epoch = epoch
            if not last_micro:
                continue
            params = [p for p in self.model.parameters() if p.requires_grad]
            norm = torch.nn.utils.clip_grad_norm_(params, float(clip) if clip else float("inf"))
            lr = float(self.scheduler.get_last_lr()[0])
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            step_loss = torch.stack(micro_losses).mean()
            if self.world_size > 1:
                torch.distributed.all_reduce(step_loss, op=torch.distributed.ReduceOp.AVG)
            value = float(step_loss)
            micro_losses = []
            self.losses.append(value)
            if self.batch_in_epoch >= self.steps_per_epoch * accum:  # epoch done: next one starts at 0
                self.epoch, self.batch_in_epoch = epoch + 1, 0
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}")
            if self.logger is not None and (self.step % log_every == 0 or self.step == self.total_steps):
                self.logger.log(
                    {
                        "step": self.step,
                        "epoch": epoch,
                        "loss": value,
                        "lr": lr,
                        "grad_norm": float(norm),
                        "tokens": tokens,
                        "elapsed_s": round(time.perf_counter() - started, 3),
                    }
                )
            if ckpt_every > 0 and self.step < self.total_steps and (
                    self.step % ckpt_every == 0 or self.step == self.stop_step):
                self.save_checkpoint()  # a run stopped early can be resumed to the whole schedule
            if self.on_step is not None:
                self.on_step(self.step, value)
        bar.close()

    @abc.abstractmethod
    def set_train_modes(self) -> None:
        """Put the stage's modules in train / eval mode: frozen towers stay in eval (no dropout)."""

    def pixel_dtype(self) -> Any:
        """The dtype of the vision tower's weights (bf16 on CUDA, fp32 on CPU)."""
        return self.autocast_dtype

    # ---- save

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-NNNNNNN`` atomically (rank 0), then drop checkpoints beyond ``keep``."""
        path = None
        if self.is_main:
            folder = self.out_dir / CHECKPOINTS
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"step-{self.step:07d}"
            staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=folder))
            try:
                _save_tensors(self.trainable_state(), staging / "trainable.safetensors")
                optimizer_to_files(self.optimizer, staging)
                tensors, meta = rng_state()
                _save_tensors(tensors, staging / "rng.safetensors")
                atomic_write_json(
                    staging / "state.json",
                    {
                        "recipe": self.NAME,
                        "step": self.step,
                        "epoch": self.epoch,
                        "batch_in_epoch": self.batch_in_epoch,
                        "total_steps": self.total_steps,
                        "world_size": self.world_size,
                        "config_sha256": config_hash(self.cfg),
                        "scheduler": self.scheduler.state_dict(),
                        "rng": meta,
                        "losses": self.losses,
                    },
                )  # written last: a folder with state.json is complete
                if path.exists():
                    shutil.rmtree(path)
                staging.replace(path)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            keep = max(1, int(self.cfg["checkpoint"]["keep"]))
            done = sorted(p for p in folder.glob("step-*") if (p / "state.json").is_file())
            for old in done[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        self._barrier()
        return path

    def _load_checkpoint(self, path: Path) -> None:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        if state["config_sha256"] != config_hash(self.cfg):
            raise RecipeError(
                f"{path} was written with a different config; resume with the same config (only "
                "checkpoint.*, log.tensorboard and data.num_workers may change) or use a new output_dir"
            )
        if state["world_size"] != self.world_size:
            raise RecipeError(
                f"{path} was written by {state['world_size']} process(es); resume with the same number"
            )
        self.load_trainable_state(_load_tensors(path / "trainable.safetensors"))
        optimizer_from_files(self.optimizer, path)
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.losses = [float(x) for x in state["losses"]]
        # Each rank restores the generator states rank 0 saved: exact for one process; with DDP the
        # dropout masks of ranks > 0 differ from the uninterrupted run's (the data order does not).
        set_rng_state(_load_tensors(path / "rng.safetensors"), state["rng"])

    def _barrier(self) -> None:
        import torch

        if self.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def cleanup(self) -> None:
        import torch

        if getattr(self, "logger", None) is not None:
            assert self.logger is not None
            self.logger.close()
            self.logger = None
        if self.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # ---- the whole run

    def run(self) -> dict[str, Any]:
        """setup -> train -> save -> cleanup; returns the summary (also written to summary.json)."""
        try:
            self.setup()
            self.train()
            outputs = self.save_outputs() if self.is_main else {}
            self._barrier()
            summary = {
                "recipe": self.NAME,
                "output_dir": str(self.out_dir),
                "steps": self.step,
                "total_steps": self.total_steps,
                "stopped_at": self.step if self.step < self.total_steps else None,
                "world_size": self.world_size,
                "losses": self.losses,
                "first_loss": self.losses[0] if self.losses else None,
                "final_loss": self.losses[-1] if self.losses else None,
                "data": self.dataset.report.to_json(),
                "data_manifest": data_manifest(self.cfg["data"]["files"]) if self.is_main else [],
                "config": self.cfg,
                "config_sha256": config_hash(self.cfg),
                "code": code_version(),
                "outputs": outputs,
            }
            if self.is_main:
                atomic_write_json(self.out_dir / SUMMARY, summary)
            return summary
        finally:
            self.cleanup()
