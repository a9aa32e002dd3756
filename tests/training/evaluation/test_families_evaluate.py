"""``geodesk-train evaluate`` on the tiny Qwen2.5-VL and InternVL models, with GLOBE's protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from geodesk.engine.backends.base import ChatMessage, GenerationSettings
from training.cli import main
from training.evaluation.generation import HFBatchGenerator

from .test_flows import write_set


@pytest.mark.parametrize(("family", "profile"), [("qwen2_5_vl", "globe"), ("internvl", "generic")])
def test_evaluate_runs_any_family_with_globe_matching(
    family: str, profile: str, tiny_family_dirs: dict[str, Path], tmp_path: Path, workspace: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from geodesk.engine.registry import ModelRegistry

    installed = ModelRegistry(workspace).install(tiny_family_dirs[family], profile=profile)
    truth, images = write_set(tmp_path)
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", installed.ref, "--truth", str(truth), "--images", str(images),
            "--out", str(out), "--batch-size", "2", "--max-new-tokens", "6", "--protocol", "globe", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["profile"] == profile and doc["protocol"] == "globe"
    assert doc["globe"]["direct"]["samples"] == doc["summary"]["n"] == 3
    assert doc["globe"]["direct"]["length_ratio"] == 0.7
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all("raw" in r for r in rows)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "internvl"])
def test_batched_greedy_equals_one_at_a_time_for_the_new_families(
    family: str, tiny_family_dirs: dict[str, Path]
) -> None:
    from geodesk.engine.backends.hf import HFBackend, HFOptions

    backend = HFBackend(tiny_family_dirs[family], HFOptions(reuse_cache=False))
    conversations = []
    for i in range(3):  # different prompt lengths: the batch is really left-padded
        image = Image.new("RGB", (56, 56), (70 * i, 200 - 50 * i, 90))
        text = "<image>\n" + "Where was this photo taken? " * (i + 1)
        system = ChatMessage("system", "You locate photos.")
        conversations.append([system, ChatMessage("user", text, (image,))])
    settings = GenerationSettings(max_new_tokens=8)
    one_at_a_time = [backend.generate(c, settings).text for c in conversations]
    batched = HFBatchGenerator(backend, batch_size=3).generate_batch(conversations, settings)
    assert batched == one_at_a_time
    assert len(set(one_at_a_time)) > 1
