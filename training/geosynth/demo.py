"""Build the GeoSynth demo model: data -> stage 0 -> stage 1 -> stage 2 -> export -> evaluate.

    python -m training.geosynth.demo --out runs/geosynth-demo             (GPU when present, else CPU)
    python -m training.geosynth.demo --out runs/geosynth-demo --publish   (also copy the package to
                                                                           resources/demo-model/)
    python -m training.geosynth.demo --out runs/x --plan                  (print the steps, run nothing)

The defaults are the from-scratch budget: about 25 minutes on 2 quiet CPU cores with stage 0b on Meta +
Dialog, longer now that the Clue part and the clue-mode sessions join it (docs/adr/0015-demo-model.md
and docs/adr/0047-demo-model-session-formats.md give the reasons). ``--init-package DIR`` rebuilds
incrementally from a published package; bench/results/demo_model.json records the command that built
the published model and its figures.

Steps, each a folder under ``--out`` (a step whose output exists is skipped, and an interrupted
training stage resumes from its newest checkpoint, so a rerun continues):

1. ``data/``: ``--train-n`` GeoSynth scenes of ``--seed``, their MG-Geo parts (meta, clue, dialog) and
   the hint-text part.
2. ``base/``: a small LLaVA of the real architecture, random weights (``build_demo_base``): CLIP
   112 px / patch 14 (64 image tokens, hidden 192, 4 layers) -> 2-layer GELU projector -> Llama
   (hidden 256, 4 layers, 8 heads, 4 KV heads) with a byte-level BPE tokenizer trained on the data's
   texts. About 6.6 M parameters, 13 MB in bf16.
3. ``vision/`` (stage 0a, ``pretrain_vision``): the CLIP tower alone classifies the training scenes
   (country, city) for ``--vision-steps`` steps, standing in for CLIP's pretraining.
   ``stage0/`` (stage 0b): projector and language model, tower frozen, trained on ``--parts0``
   (default Meta + Clue + Dialog: a random language model learns the clue-mode answer here, as it does
   the direct one; stage 2's LoRA alone left clue mode answering in the direct format) for at most
   ``--steps0`` steps at peak rate ``--lr0`` (``DemoWarmupRecipe``, the recipes' lifecycle), standing in
   for the LLM's pretraining. GaGA starts from a pretrained CLIP and LLM; nothing can be downloaded
   here, so stage 0 carries most of the learning. Without it
   stage 1 would fit a projector between two random frozen networks.
   ``hints/`` (stage 0c): projector and language model on ``--hint-parts`` (default the hint-text part,
   which has no images, with the Meta part so the image stays in use) for ``--hint-steps`` steps at
   ``--hint-lr``: read the town off a quoted sign, know whose landmark is described, and write the
   answer JSON from that. A pretrained LLM brings this skill; without it the demo model answers from
   the image and leaves the analyst's hint unread (docs/adr/0015-demo-model.md).
4. ``stage1/``: ``training.recipes.pretrain_projector`` on the Meta part (GaGA's stage 1), at most
   ``--steps1`` steps; it refines stage 0's projector (lr ``STAGE1_LR``) rather than starting one.
5. ``stage2/``: ``training.recipes.finetune_qlora`` on the Meta + Clue + Dialog parts (GaGA's stage 2;
   NF4 on CUDA, unquantized LoRA on CPU where bitsandbytes' 4-bit path is slow), ``--steps2`` steps.
6. ``package/``: ``training.recipes.export`` -> a geodesk model package ``geosynth-demo`` (bf16), its
   provenance saying it was trained on synthetic GeoSynth scenes only, not for casework.
7. ``eval/``: ``--eval-n`` scenes of a fresh seed, ``geodesk-train evaluate`` with their dialogs
   (direct, +Q, +QA; ``--direct-only`` skips the hints), and ``results.json``: country / region / city
   accuracy, GeoScore and recall per variant, on all scenes and separately on those whose decisive cue
   is hidden or visible (GaGA Table III in miniature), with the time per step.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_directory
from training.geosynth.mggeo import PARTS as MGGEO_PARTS
from training.recipes._common import BASE_DEFAULTS, Recipe, RecipeError, atomic_write_json, load_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "training" / "configs" / "tiny"
DEMO_MODEL_DIR = REPO / "resources" / "demo-model"
DEMO_NAME = "geosynth-demo"
MAX_PACKAGE_BYTES = 25 * 1024 * 1024
PROVENANCE_NOTE = ("trained on synthetic GeoSynth street scenes only (training/geosynth); a demonstration "
                   "of the interactive loop, not for casework")

# Shapes of the demo base (see the module docstring).
DEMO_SHAPES: dict[str, int] = {
    "image_size": 112, "patch_size": 14, "vision_hidden": 192, "vision_layers": 4, "vision_heads": 4,
    "text_hidden": 256, "text_intermediate": 768, "text_layers": 4, "text_heads": 8, "text_kv_heads": 4,
    "vocab_size": 3072,
}


# ------------------------------------------------------------------------------------------ base


def _corpus(data_files: Sequence[Path]) -> list[str]:
    """Every text of the training samples plus the protocol's fixed texts, for the tokenizer."""
    from geodesk.domain import SessionMode
    from geodesk.engine import prompts

    texts: list[str] = [prompts.system_prompt(m) for m in SessionMode]
    texts.extend(t for family in prompts.TEMPLATES.values() for t in family)
    for path in data_files:
        for sample in json.loads(Path(path).read_text(encoding="utf-8")):
            texts.extend(t["value"].replace(prompts.IMAGE_PLACEHOLDER, "") for t in sample["conversations"])
    return texts


def build_demo_base(out: Path, data_files: Sequence[Path], *, seed: int = 0) -> Path:
    """Write the random demo base (HF llava folder + processor + manifest marked untrained)."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from geodesk.engine.package import write_manifest
    from geodesk.engine.tiny import (
        BEGIN_OF_TEXT,
        CHAT_TEMPLATE,
        END_OF_TEXT,
        EOT,
        IMAGE_TOKEN,
        SPECIAL_TOKENS,
    )

    hf: Any = transformers
    s = DEMO_SHAPES
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=s["vocab_size"], min_frequency=2,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(data_files), trainer=trainer)
    tokenizer = hf.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BEGIN_OF_TEXT, eos_token=EOT, pad_token=END_OF_TEXT,
        extra_special_tokens={"image_token": IMAGE_TOKEN}, model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in (BEGIN_OF_TEXT, END_OF_TEXT, EOT, IMAGE_TOKEN)}
    vision = hf.CLIPVisionConfig(
        image_size=s["image_size"], patch_size=s["patch_size"], hidden_size=s["vision_hidden"],
        intermediate_size=4 * s["vision_hidden"], num_hidden_layers=s["vision_layers"],
        num_attention_heads=s["vision_heads"], projection_dim=s["vision_hidden"],
    )
    text = hf.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s["text_hidden"], intermediate_size=s["text_intermediate"],
        num_hidden_layers=s["text_layers"], num_attention_heads=s["text_heads"],
        num_key_value_heads=s["text_kv_heads"], max_position_embeddings=2048, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, tie_word_embeddings=False,
        pad_token_id=ids[END_OF_TEXT],
    )
    config = hf.LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=ids[IMAGE_TOKEN],
        image_seq_length=(s["image_size"] // s["patch_size"]) ** 2, projector_hidden_act="gelu",
        vision_feature_select_strategy="default", vision_feature_layer=-2, tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = hf.LlavaForConditionalGeneration(config)
    model.generation_config = hf.GenerationConfig(
        bos_token_id=ids[BEGIN_OF_TEXT], eos_token_id=[ids[EOT], ids[END_OF_TEXT]],
        pad_token_id=ids[END_OF_TEXT], do_sample=False, max_new_tokens=160,
    )
    size = s["image_size"]
    processor = hf.LlavaProcessor(
        image_processor=hf.CLIPImageProcessorPil(size={"shortest_edge": size},
                                                 crop_size={"height": size, "width": size}),
        tokenizer=tokenizer, patch_size=s["patch_size"], vision_feature_select_strategy="default",
        image_token=IMAGE_TOKEN, num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )
    with atomic_directory(out) as staging:
        _save_llava_folder(model, processor, staging)
        write_manifest(staging, name=f"{DEMO_NAME}-base", version="0", protocol_version=None, untrained=True,
                       provenance={"kind": "geosynth-demo-base", "seed": seed, "shapes": DEMO_SHAPES,
                                   "built_by": "training.geosynth.demo.build_demo_base"})
    return out


def _save_llava_folder(model: Any, processor: Any, folder: Path) -> None:
    """An HF llava folder (safetensors weights, processor, JSON normalised) that ``load_llava`` reads."""
    from geodesk.engine.tiny import normalise_json_files

    model.save_pretrained(str(folder), safe_serialization=True)
    processor.save_pretrained(str(folder))
    normalise_json_files(folder)


# --------------------------------------------------------------------------------------- stage 0

STAGE0_DEFAULTS: dict[str, Any] = copy.deepcopy(BASE_DEFAULTS)
STAGE0_DEFAULTS["recipe"] = "geosynth_warmup"
STAGE0_DEFAULTS["train"].update({"lr": 1.0e-3, "weight_decay": 0.01, "warmup_ratio": 0.03})
# After stage 0a the tower already encodes the cues; a random language model's first gradients would
# only blur them, so stage 0b keeps it frozen (as LLaVA and GaGA keep CLIP frozen in every stage).
STAGE0_DEFAULTS["model"]["train_vision_tower"] = False
# Stage 1 starts from stage 0's projector (already fitted), so it refines it at a fifth of XTuner's 1e-3
# instead of relearning it; stage 2's LoRA starts from zero and takes a higher rate than GaGA's 2e-5.
STAGE1_LR = 2.0e-4
STAGE2_LR = 5.0e-4
STAGE2_PARTS = ("meta", "clue", "dialog")  # GaGA's stage 2 trains on the three MG-Geo parts


class DemoWarmupRecipe(Recipe):
    """Stage 0b: projector and language model learn from random weights (the vision tower too when
    ``model.train_vision_tower`` is true, as it must be without stage 0a).

    The recipes' lifecycle (data, AdamW + warmup/cosine, checkpoints, resume, DDP) with a model that
    trains everything; the result is a full HF llava folder that stage 1 loads as its base.
    """

    NAME = "geosynth_warmup"
    DEFAULTS = STAGE0_DEFAULTS

    def build_model(self) -> Any:
        import torch

        from training.recipes.pretrain_projector import load_llava

        model = load_llava(self.cfg["model"]["path"], dtype=torch.float32, device=self.device)
        model.requires_grad_(True)
        if not self.cfg["model"]["train_vision_tower"]:
            model.model.vision_tower.requires_grad_(False)
        model.train()
        return model

    def set_train_modes(self) -> None:
        if not self.cfg["model"]["train_vision_tower"]:
            self.model.model.vision_tower.eval()

    def save_outputs(self) -> dict[str, Any]:
        final = self.out_dir / "model"
        with atomic_directory(final) as staging:
            _save_llava_folder(self.model, self.processor, staging)
        return {"model": str(final)}


# ------------------------------------------------------------------------------- vision warm-up

VISION_DIR = "vision"
HINTS_DIR = "hints"  # stage 0c: the language model learns to read the analyst's hints


def pretrain_vision(base: Path, data: Path, out: Path, *, steps: int, batch_size: int, lr: float,
                    seed: int, places: Sequence[str]) -> dict[str, Any]:
    """Stage 0a: the CLIP tower learns GeoSynth's cues by classifying scenes (country and city).

    GaGA's CLIP was pretrained on hundreds of millions of pairs; ours is random. Trained only through
    the language model's answer tokens (stage 0b), a random tower stays out of use for thousands of
    steps: the LM first learns the answers' text prior and the loss with shuffled images equals the
    loss with the right ones. A supervised warm-up gives the tower features worth reading, as
    pretraining does. The features are those the projector reads (``vision_feature_layer``, patch
    tokens without CLS, ``[B, 64, 192]``), mean-pooled into two linear heads (26 countries, 90
    cities) that are thrown away afterwards. Writes ``out/model`` (the base with the trained tower).
    """
    import csv
    import random

    import torch
    from PIL import Image

    from geodesk.engine.imaging import prepare_image
    from training.recipes._common import warmup_cosine
    from training.recipes.pretrain_projector import load_llava

    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with (data / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = sorted(places)  # "CC:City" for every world place
    countries = sorted({k.split(":", 1)[0] for k in keys})
    country_of = {c: i for i, c in enumerate(countries)}
    city_of = {k: i for i, k in enumerate(keys)}
    from transformers import AutoProcessor

    auto: Any = AutoProcessor
    processor = auto.from_pretrained(str(base))
    mean = processor.image_processor.image_mean
    pixels: list[Any] = []
    for start in range(0, len(rows), 256):  # [N, 3, 112, 112] fp16: 75 KB per scene
        chunk = []
        for row in rows[start : start + 256]:
            with Image.open(data / row["image"]) as img:
                chunk.append(prepare_image(img, mean))
        pixels.append(processor.image_processor(chunk, return_tensors="pt")["pixel_values"].half())
    images = torch.cat(pixels)
    y_country = torch.tensor([country_of[r["country"]] for r in rows])
    y_city = torch.tensor([city_of[f"{r['country']}:{r['city']}"] for r in rows])
    torch.manual_seed(seed)
    model = load_llava(str(base), dtype=torch.float32, device=device)
    tower = model.model.vision_tower
    layer = int(model.config.vision_feature_layer)
    width = int(model.config.vision_config.hidden_size)
    heads = torch.nn.ModuleDict({"country": torch.nn.Linear(width, len(countries)),
                                 "city": torch.nn.Linear(width, len(keys))}).to(device)
    params = [*tower.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, 0.05))
    order = random.Random(seed)
    index: list[int] = []
    losses: list[float] = []
    hits: list[float] = []
    tower.train()
    for _ in range(steps):
        if len(index) < batch_size:
            more = list(range(len(rows)))
            order.shuffle(more)
            index.extend(more)
        pick = torch.tensor(index[:batch_size])
        del index[:batch_size]
        x = images[pick].to(device, torch.float32)
        states = tower(pixel_values=x, output_hidden_states=True).hidden_states[layer]  # [B, 65, 192]
        pooled = states[:, 1:].mean(dim=1)  # patch tokens only, as the "default" feature strategy
        logits_country = heads["country"](pooled)  # [B, 26]
        loss: Any = (torch.nn.functional.cross_entropy(logits_country, y_country[pick].to(device))
                + torch.nn.functional.cross_entropy(heads["city"](pooled), y_city[pick].to(device)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        hits.append(float((logits_country.argmax(-1).cpu() == y_country[pick]).float().mean()))
    final = out / "model"
    with atomic_directory(final) as staging:
        _save_llava_folder(model, processor, staging)
    tail = slice(-max(1, min(50, steps)), None)
    summary = {
        "recipe": "geosynth_vision_warmup", "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "scenes": len(rows), "first_loss": losses[0] if losses else None,
        "final_loss_mean50": sum(losses[tail]) / len(losses[tail]) if losses else None,
        "train_country_accuracy_last50": sum(hits[tail]) / len(hits[tail]) if hits else None,
        "losses": losses, "seconds": round(time.perf_counter() - started, 1),
        "outputs": {"model": str(final)},
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


# ------------------------------------------------------------------------------------- pipeline


def _device_defaults() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {"cuda": cuda, "quantization": "nf4" if cuda else "none", "batch_size": 32 if cuda else 16}


def plan(args: argparse.Namespace) -> list[str]:
    """The steps as shell-equivalent lines (what ``--plan`` prints)."""
    out = args.out
    warm = f"{HINTS_DIR}/model" if args.hint_steps else "stage0/model"
    if args.init_package is not None:
        start = str(args.init_package)
        opening = [f"base and stage 0a: those of {args.init_package} (--init-package)"]
    else:
        start = f"{out}/{'vision/model' if args.vision_steps else 'base'}"
        opening = [
            f"python -c 'training.geosynth.demo.build_demo_base({out}/base, data parts)'",
            f"stage 0a: pretrain_vision({out}/base -> {out}/vision, steps={args.vision_steps}, "
            f"batch={args.vision_batch_size}, lr={args.vision_lr})",
        ]
    return [
        f"geodesk-train geosynth --n {args.train_n} --seed {args.seed} --out {out}/data",
        *opening,
        f"stage 0b: DemoWarmupRecipe(model.path={start}, "
        f"data = {args.parts0}, epochs={args.epochs0}, max_steps={args.steps0}, lr={args.lr0}"
        f"{f', stop_at={args.stop0}' if args.stop0 else ''})",
        *([f"stage 0c: DemoWarmupRecipe(model.path={out}/stage0/model, data = {args.hint_parts}, "
           f"max_steps={args.hint_steps}, lr={args.hint_lr})"] if args.hint_steps else []),
        f"geodesk-train pretrain --config {CONFIGS}/pretrain.yaml model.path={out}/{warm} "
        f"output_dir={out}/stage1 data.files=[{out}/data/mggeo/meta.json] train.max_steps={args.steps1} "
        f"train.lr={STAGE1_LR}",
        f"geodesk-train finetune --config {CONFIGS}/finetune.yaml model.path={out}/{warm} "
        f"model.stage1_run={out}/stage1 output_dir={out}/stage2 data.files=[meta, clue, dialog] "
        f"train.max_steps={args.steps2} train.lr={STAGE2_LR}",
        f"geodesk-train export --config {CONFIGS}/export.yaml base_model={out}/{warm} "
        f"stage1_run={out}/stage1 stage2_run={out}/stage2 output_dir={out}/package name={DEMO_NAME} "
        "dtype=bf16",
        f"geodesk-train geosynth --n {args.eval_n} --seed {args.eval_seed} --out {out}/eval/data --no-data",
        f"geodesk-train evaluate --model {out}/package --truth {out}/eval/data/metadata.csv "
        f"--images {out}/eval/data --dialogs {out}/eval/data/dialogs.jsonl --out {out}/eval/run "
        f"--batch-size {args.eval_batch_size} --max-new-tokens {args.max_new_tokens}",
        f"results: {out}/results.json (all scenes, and decisive_hidden true / false separately)",
    ]


def _stage(module: Any, config_file: Path | None, defaults: dict[str, Any], overrides: list[str],
           recipe: type[Recipe] | None = None) -> dict[str, Any]:
    """One training stage; an interrupted stage resumes from its newest checkpoint (same config)."""
    config = load_config(config_file if config_file is not None else {"recipe": defaults["recipe"]}, defaults,
                         overrides)
    if recipe is not None:
        return recipe(config, resume=True).run()
    result: dict[str, Any] = module.run(config, resume=True)
    return result


def subset_results(eval_dir: Path, truth_csv: Path) -> dict[str, Any]:
    """Metrics per variant (direct, +Q, +QA) on all scenes and on the hidden / visible subsets."""
    import csv

    from geodesk.geo.metrics import align, summarize
    from training.evaluation.io import read_predictions, read_truth, truth_rows

    truths = truth_rows(read_truth(truth_csv))
    with truth_csv.open(encoding="utf-8", newline="") as fh:
        hidden = {row["id"]: row["decisive_hidden"] == "true" for row in csv.DictReader(fh)}
    from training.evaluation.runner import PREDICTION_FILES

    out: dict[str, Any] = {}
    for variant, name in PREDICTION_FILES.items():
        path = eval_dir / name
        if not path.is_file():
            continue
        predictions = read_predictions(path)
        for subset, keep in (("all", None), ("decisive_hidden", True), ("decisive_visible", False)):
            chosen = [t for t in truths if keep is None or hidden.get(t.id) == keep]
            ids = {t.id for t in chosen}
            if not chosen:
                continue
            aligned, _ = align([p for p in predictions if p.id in ids], chosen)
            summary = summarize(aligned, chosen)
            out.setdefault(subset, {})[variant] = {
                "n": summary["n"], "geoscore": summary["geoscore"], "recall": summary["recall"],
                "admin_accuracy": summary["admin_accuracy"], "accuracy_km": summary["accuracy_km"],
            }
    return out


def build(args: argparse.Namespace) -> dict[str, Any]:
    from training.geosynth.generator import generate
    from training.geosynth.mggeo import build_mggeo
    from training.geosynth.world import load_world
    from training.recipes import export, finetune_qlora, pretrain_projector

    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = _device_defaults()
    batch = args.batch_size or device["batch_size"]
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    world = load_world()
    data = out / "data"
    if not all((data / "mggeo" / f"{p}.json").is_file() for p in MGGEO_PARTS):
        generate(data, n=args.train_n, seed=args.seed, world=world)
        build_mggeo(data, seed=args.seed, world=world)
    parts = [data / "mggeo" / f"{p}.json" for p in STAGE2_PARTS]
    lap("data")
    if args.init_package is not None:
        # An incremental rebuild: stage 0b continues from a published package (its tokenizer, trained
        # tower, projector and language model); the base and stage 0a are that package's.
        base = Path(args.init_package).expanduser().resolve()
        if not (base / "config.json").is_file() or not (base / "geodesk-model.json").is_file():
            raise RecipeError(f"--init-package {base} is not a model package folder (no config.json "
                              "and geodesk-model.json); pass a demo package such as resources/demo-model")
        lap("base")
        lap("vision")
    else:
        base = out / "base"
        if not base.is_dir():
            build_demo_base(base, parts, seed=args.seed)
        lap("base")
        if args.vision_steps:
            vision = out / VISION_DIR
            if not (vision / "summary.json").is_file():
                pretrain_vision(base, data, vision, steps=args.vision_steps,
                                batch_size=args.vision_batch_size, lr=args.vision_lr, seed=args.seed,
                                places=[p.key for p in world.places])
            base = vision / "model"
        lap("vision")
    common = [f"seed={args.seed}", f"train.batch_size={batch}", f"checkpoint.every={args.checkpoint_every}",
              "log.tensorboard=false", f"data.max_length={args.max_length}"]

    def steps(cap: int | None) -> list[str]:
        """A stage's step cap: its own option, lowered by --max-steps (smoke runs)."""
        caps = [c for c in (cap, args.max_steps) if c]
        return [f"train.max_steps={min(caps)}"] if caps else []

    files = "[" + ", ".join(str(p) for p in parts) + "]"
    files0 = _part_files(data, args.parts0)
    stage0 = out / "stage0"
    if not (stage0 / "summary.json").is_file():
        # A random tower must learn here; a tower from stage 0a or from --init-package is kept.
        tower = "false" if args.vision_steps or args.init_package is not None else "true"
        _stage(None, None, STAGE0_DEFAULTS, [*common, *steps(args.steps0), f"model.path={base}",
                                               f"model.train_vision_tower={tower}",
                                               f"output_dir={stage0}", f"data.files={files0}",
                                               f"train.epochs={args.epochs0}", f"train.lr={args.lr0}",
                                               *([f"train.stop_at={args.stop0}"] if args.stop0 else [])],
               recipe=DemoWarmupRecipe)
    warm = stage0 / "model"
    lap("stage0")
    if args.hint_steps:
        hints = out / HINTS_DIR
        if not (hints / "summary.json").is_file():
            _stage(None, None, STAGE0_DEFAULTS, [*common, *steps(args.hint_steps),
                                                   f"model.path={warm}", "model.train_vision_tower=false",
                                                   f"output_dir={hints}",
                                                   f"data.files={_part_files(data, args.hint_parts)}",
                                                   "train.epochs=10", f"train.lr={args.hint_lr}"],
                   recipe=DemoWarmupRecipe)
        warm = hints / "model"
    lap("hints")
    stage1 = out / "stage1"
    if not (stage1 / "summary.json").is_file():
        _stage(pretrain_projector, CONFIGS / "pretrain.yaml", pretrain_projector.DEFAULTS,
               [*common, *steps(args.steps1), f"model.path={warm}", f"output_dir={stage1}",
                f"data.files=[{parts[0]}]", "train.epochs=1", f"train.lr={STAGE1_LR}"])
    lap("stage1")
    stage2 = out / "stage2"
    if not (stage2 / "summary.json").is_file():
        _stage(finetune_qlora, CONFIGS / "finetune.yaml", finetune_qlora.DEFAULTS,
               [*common, *steps(args.steps2), f"model.path={warm}", f"model.stage1_run={stage1}",
                f"output_dir={stage2}", f"data.files={files}", f"model.quantization={device['quantization']}",
                f"train.epochs={args.epochs2}", f"train.lr={STAGE2_LR}",
                "train.gradient_checkpointing=false"])
    lap("stage2")
    package = out / "package"
    if not (package / "geodesk-model.json").is_file():
        config = load_config(CONFIGS / "export.yaml", export.DEFAULTS, [
            f"base_model={warm}", f"stage1_run={stage1}", f"stage2_run={stage2}", f"output_dir={package}",
            f"name={DEMO_NAME}", f"version={args.version}", "dtype=bf16"])
        export.export_package(config)
        _label_synthetic(package, args)
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    if size > MAX_PACKAGE_BYTES:
        raise RecipeError(f"the demo package is {size / 2**20:.1f} MiB, over the 25 MiB limit: "
                          "shrink DEMO_SHAPES")
    lap("export")
    eval_data = out / "eval" / "data"
    if not (eval_data / "metadata.csv").is_file():
        generate(eval_data, n=args.eval_n, seed=args.eval_seed, world=world)
    run_dir = out / "eval" / "run"
    from training.cli import main as train_cli

    dialogs = [] if args.direct_only else ["--dialogs", str(eval_data / "dialogs.jsonl")]
    code = train_cli(["evaluate", "--model", str(package), "--truth", str(eval_data / "metadata.csv"),
                      "--images", str(eval_data), *dialogs, "--out", str(run_dir),
                      "--batch-size", str(args.eval_batch_size), "--max-new-tokens", str(args.max_new_tokens),
                      "--json"])
    if code != 0:
        raise RecipeError(f"geodesk-train evaluate failed (exit {code}); see the message above")
    lap("evaluate")
    results = {
        "command": getattr(args, "command", None),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                      if k not in ("command", "plan")},
        "model": DEMO_NAME, "version": args.version, "package_bytes": size, "train_n": args.train_n,
        "train_seed": args.seed, "eval_n": args.eval_n, "eval_seed": args.eval_seed,
        "chance_country": 1 / len({p.country.code for p in world.places}),
        "device": "cuda" if device["cuda"] else "cpu", "timings_s": timings,
        "stages": {name: _stage_summary(out / name) for name in ("stage0", HINTS_DIR, "stage1", "stage2")}
        | {"vision": _vision_summary(out / VISION_DIR)},
        "metrics": subset_results(run_dir, eval_data / "metadata.csv"),
    }
    atomic_write_json(out / "results.json", results)
    if args.publish:
        with atomic_directory(DEMO_MODEL_DIR) as staging:  # complete before the published folder changes
            shutil.copytree(package, staging, dirs_exist_ok=True)
        results["published"] = str(DEMO_MODEL_DIR)
    return results


def _part_files(data: Path, text: str) -> str:
    """The ``data.files`` override for a comma-separated list of parts."""
    return "[" + ", ".join(str(data / "mggeo" / f"{p}.json") for p in _parts(text)) + "]"


def _parts(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in MGGEO_PARTS]
    if unknown or not chosen:
        raise RecipeError(f"--parts0 and --hint-parts take a comma-separated list of "
                          f"{', '.join(MGGEO_PARTS)}; got {text!r}")
    return chosen


def _stage_summary(folder: Path) -> dict[str, Any]:
    """A stage's steps, first / last losses and samples (from its summary.json)."""
    path = folder / "summary.json"
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text(encoding="utf-8"))
    losses: list[float] = summary.get("losses") or []
    tail = losses[-20:]
    return {"steps": summary.get("steps"), "first_loss": summary.get("first_loss"),
            "final_loss_mean20": sum(tail) / len(tail) if tail else None,
            "samples": (summary.get("data") or {}).get("samples"),
            "batch_size": summary["config"]["train"]["batch_size"], "lr": summary["config"]["train"]["lr"],
            "data_files": [Path(f).name for f in summary["config"]["data"]["files"]]}


def _vision_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in summary.items() if k not in ("losses", "outputs")}


def _label_synthetic(package: Path, args: argparse.Namespace) -> None:
    """Say in the manifest's provenance, for every reader, that this model knows synthetic scenes only."""
    from geodesk.engine.package import read_manifest, save_manifest

    manifest = read_manifest(package)
    manifest.provenance["training_data"] = {
        "kind": "geosynth", "synthetic": True, "note": PROVENANCE_NOTE, "train_n": args.train_n,
        "seed": args.seed,
    }
    manifest.provenance["not_for_casework"] = True
    if args.init_package is not None:
        parent = read_manifest(Path(args.init_package))
        manifest.provenance["initialised_from"] = {
            "name": parent.name, "version": parent.version, "identity_sha256": parent.identity_sha256,
            "note": "stage 0b continued from this package's weights (--init-package)"}
    save_manifest(package, manifest)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.geosynth.demo",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="run folder (rerun to resume)")
    parser.add_argument("--train-n", type=int, default=6000, help="training scenes (6000)")
    parser.add_argument("--eval-n", type=int, default=500, help="evaluation scenes, fresh seed (500)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-seed", type=int, default=1001)
    parser.add_argument("--init-package", type=Path, default=None,
                        help="start stage 0b from this demo package's weights and tokenizer instead of a "
                             "random base and stage 0a (an incremental rebuild; recorded in the manifest)")
    parser.add_argument("--vision-steps", type=int, default=400,
                        help="stage-0a steps: the CLIP tower classifies scenes (400; 0: skip)")
    parser.add_argument("--vision-batch-size", type=int, default=64)
    parser.add_argument("--vision-lr", type=float, default=1.0e-3)
    parser.add_argument("--parts0", default="meta,clue,dialog",
                        help="MG-Geo parts stage 0b trains on, comma-separated (meta,clue,dialog)")
    parser.add_argument("--epochs0", type=int, default=1, help="stage-0 epochs over its parts (1)")
    parser.add_argument("--steps0", type=int, default=500, help="stage-0b step cap (500; 0: none)")
    parser.add_argument("--lr0", type=float, default=1.0e-3, help="stage-0b peak learning rate (1e-3)")
    parser.add_argument("--stop0", type=int, default=None, metavar="STEP",
                        help="end stage 0b after this step of its --steps0 schedule (the learning rate "
                             "follows the whole schedule; the weights are the whole run's at that step)")
    parser.add_argument("--hint-parts", default="hints,meta",
                        help="parts stage 0c trains on, comma-separated (hints,meta: the hint-text part, "
                             "and the Meta part so that the image stays in use)")
    parser.add_argument("--hint-steps", type=int, default=400, help="stage-0c step cap (400; 0: skip)")
    parser.add_argument("--hint-lr", type=float, default=1.0e-3, help="stage-0c peak learning rate (1e-3)")
    parser.add_argument("--steps1", type=int, default=60, help="stage-1 step cap (60; 0: none)")
    parser.add_argument("--epochs2", type=int, default=1, help="stage-2 epochs (1)")
    parser.add_argument("--steps2", type=int, default=120, help="stage-2 step cap (120; 0: none)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 on CUDA, 16 on CPU")
    parser.add_argument("--eval-batch-size", type=int, default=32, help="images per generate (32)")
    parser.add_argument("--max-new-tokens", type=int, default=160,
                        help="answer length limit in evaluation (160; a +QA answer is about 80)")
    parser.add_argument("--direct-only", action="store_true",
                        help="evaluate direct answers only (no +Q / +QA runs; the CI learning test)")
    parser.add_argument("--max-length", type=int, default=1536,
                        help="token limit per sample (1536: every sample whole; the longest, a clue "
                             "verdict session with a hint as its third turn, is under 1400 tokens)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap every stage (smoke runs)")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--publish", action="store_true", help="copy the package to resources/demo-model/")
    parser.add_argument("--plan", action="store_true", help="print the steps and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.command = " ".join(["python -m training.geosynth.demo", *(sys.argv[1:] if argv is None else argv)])
    if args.plan:
        print("\n".join(plan(args)))
        return 0
    try:
        results = build(args)
    except RecipeError as exc:
        print(f"geosynth demo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
