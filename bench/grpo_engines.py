"""GRPO engines: geodesk's own loop against TRL's GRPOTrainer, same tiny model, prompts and rewards.

    .venv/bin/python -m bench.grpo_engines [--steps 2] [--prompts 4] [--group 4] [--tokens 32]

Both run ``--steps`` optimizer steps of ``--prompts`` prompts x ``--group`` completions of at most
``--tokens`` tokens on the tiny LLaVA (geodesk.engine.tiny) with LoRA r 8 on CPU in fp32, the same
synthetic prompts (training.recipes.synthetic) and geodesk's rewards (format, distance, admin,
semantic/string): the own loop through ``training/recipes/grpo.py``, TRL through a reward function
that calls the same ``RewardSet`` (TRL's GRPO loss, beta 0.04, ``scale_rewards="group"``). The two
alternate (own, TRL, own, TRL) and the medians are reported; on a shared 2-core machine single
timings vary a lot, so the ratio is what to read. Writes bench/results/grpo_engines.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, write_result

STEP_SECONDS: list[float] = []  # geodesk loop: seconds of its steps, from its grpo_metrics.csv


def own_loop(model_dir: Path, data: dict[str, Path], out: Path, steps: int, prompts: int, group: int,
             tokens: int) -> float:
    from training.recipes import grpo
    from training.recipes._common import load_config

    config = load_config(Path(grpo.__file__).resolve().parents[1] / "configs" / "tiny" / "grpo.yaml",
                         grpo.DEFAULTS, [
        f"model.path={model_dir}", f"output_dir={out}", f"data.files=[{data['meta']}]", "seed=0",
        "device=cpu", "model.dtype=fp32", "model.quantization=none", "lora.r=8",
        f"train.batch_size={prompts}", f"train.max_steps={steps}", "train.lr=1e-3",
        f"grpo.group_size={group}",
        f"grpo.max_completion_length={tokens}", "rewards.similarity=string", "log.tensorboard=false",
        "checkpoint.every=0", "train.gradient_checkpointing=false",
    ])
    started = time.perf_counter()
    grpo.run(config)
    total = time.perf_counter() - started
    with (out / grpo.GRPO_METRICS).open(encoding="utf-8") as fh:
        last = list(csv.DictReader(fh))[-1]
    STEP_SECONDS.append(float(last["elapsed_s"]))  # the loop's own clock: steps only, no setup
    return total


def trl_loop(model_dir: Path, data: dict[str, Path], out: Path, steps: int, prompts: int, group: int,
             tokens: int) -> float:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration
    from trl import GRPOConfig, GRPOTrainer

    from geodesk.engine.imaging import prepare_image
    from training.recipes.grpo import GRPOPromptDataset
    from training.rewards import RewardSet, make_similarity

    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(model_dir)
    source = GRPOPromptDataset([data["meta"]], processor, max_length=2048, system_prompt="auto")
    mean = tuple(processor.image_processor.image_mean)
    rows = []
    for i, sample in enumerate(source.samples):
        system, user = sample.messages[0][1], sample.messages[1][1].replace("<image>\n", "")
        with Image.open(sample.images[0]) as img:
            image = prepare_image(img, mean)  # padded to a square, as the app does
        user_parts = [{"type": "image"}, {"type": "text", "text": user}]
        rows.append({"prompt": [{"role": "system", "content": [{"type": "text", "text": system}]},
                                {"role": "user", "content": user_parts}],
                     "image": image, "truth_index": i})
    dataset = Dataset.from_list(rows)
    rewards = RewardSet({"format": 0.2, "distance": 1.0, "admin": 1.0, "semantic": 0.5},
                        similarity=make_similarity("string"))
    truths = [s.truth for s in source.samples]

    def geodesk_reward(completions: list[Any], truth_index: list[int], **_: Any) -> list[float]:
        texts = [c[0]["content"] if isinstance(c, list) else str(c) for c in completions]
        return list(rewards.score(texts, [truths[i] for i in truth_index]).total)

    model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    config = GRPOConfig(
        output_dir=str(out), per_device_train_batch_size=prompts * group, num_generations=group,
        max_completion_length=tokens, max_steps=steps, learning_rate=1e-3, beta=0.04, use_cpu=True,
        report_to=[], logging_steps=1, save_strategy="no", bf16=False, seed=0, temperature=1.0,
        top_p=1.0, loss_type="grpo", scale_rewards="group", lr_scheduler_type="constant",
    )
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                      target_modules=r".*language_model.*\.(q|k|v|o|gate|up|down)_proj")
    trainer = GRPOTrainer(model=model, reward_funcs=geodesk_reward, args=config, train_dataset=dataset,
                          processing_class=processor, peft_config=lora)
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    from geodesk.engine.tiny import create_tiny_model
    from training.recipes.synthetic import write_synthetic_dataset

    root = Path(tempfile.mkdtemp(prefix="grpo-engines-"))
    create_tiny_model(root / "model", seed=0)
    data = write_synthetic_dataset(root / "data", per_country=2, seed=0)
    shape = (args.steps, args.prompts, args.group, args.tokens)
    times: dict[str, list[float]] = {"own": [], "trl": []}
    errors: dict[str, str] = {}
    for r in range(args.rounds):
        times["own"].append(own_loop(root / "model", data, root / f"own{r}", *shape))
        try:
            times["trl"].append(trl_loop(root / "model", data, root / f"trl{r}", *shape))
        except Exception as exc:  # a TRL failure is a result here, recorded with its message
            errors["trl"] = f"{type(exc).__name__}: {exc}"
            break
    own = statistics.median(times["own"])
    document: dict[str, Any] = {
        "benchmark": "grpo_engines", "machine": machine(),
        "size": {"steps": args.steps, "prompts_per_step": args.prompts, "group": args.group,
                 "max_completion_tokens": args.tokens, "model": "geodesk tiny LLaVA, LoRA r 8, fp32 CPU"},
        "seconds": times, "own_median_s": round(own, 2), "errors": errors,
        "own_steps_only_s": STEP_SECONDS,
        "note": "own: grpo.run() including model load and data encoding; own_steps_only_s: its steps "
                "alone; trl: trainer.train() after the model and dataset are built",
    }
    if times["trl"]:
        trl = statistics.median(times["trl"])
        document.update(trl_median_s=round(trl, 2), trl_over_own=round(trl / own, 3))
    path = write_result("grpo_engines.json", document)
    print(json.dumps({k: v for k, v in document.items() if k != "machine"}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
