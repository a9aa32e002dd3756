"""The LLaVA-JSON dataset, collator and length-grouped sampler."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from training.datasets import (
    IGNORE_INDEX,
    Collator,
    DatasetError,
    LengthGroupedBatchSampler,
    LlavaConversationDataset,
)


@pytest.fixture(scope="module")
def processor(tiny_model_dir: Path) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def _write(path: Path, samples: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(samples), encoding="utf-8")
    return path


def _dialog_sample(image: str) -> dict[str, Any]:
    """A two-round dialog: direct question, answer, a hint, revised answer."""
    first = prompts.first_turn(SessionMode.DIRECT).text
    return {
        "id": "dialog-1",
        "image": image,
        "conversations": [
            {"from": "human", "value": first},
            {"from": "gpt", "value": '{"country": "Japan", "lat": 35.6, "lon": 139.6}'},
            {"from": "human", "value": "The photo was not taken in Japan. Revise your answer."},
            {"from": "gpt", "value": '{"country": "France", "lat": 48.8, "lon": 2.3}'},
        ],
    }


def test_training_ids_are_the_inference_ids(
    tiny_data: dict[str, Path], processor: Any, tiny_model_dir: Path
) -> None:
    """The ids and pixels equal the processor's on the whole text, and the prompt part equals what
    the hf backend builds for the same question at inference."""
    import torch
    from PIL import Image

    from geodesk.engine.backends.base import ChatMessage
    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from training.datasets import template_messages

    ds = LlavaConversationDataset([tiny_data["meta"]], processor)
    sample, item = ds.samples[0], ds[0]
    text = processor.apply_chat_template(template_messages(ds.messages_for(sample)), tokenize=False)
    whole = processor(
        text=[text], images=ds.load_images(sample), return_tensors="pt", add_special_tokens=False
    )
    assert torch.equal(whole["input_ids"][0], item["input_ids"])
    assert torch.equal(whole["pixel_values"], item["pixel_values"])

    backend = HFBackend(tiny_model_dir, HFOptions(device="cpu", dtype="fp32"))
    with Image.open(sample.images[0]) as img:
        image = img.convert("RGB")
    system, user = ds.messages_for(sample)[:2]
    prompt = backend._build_prompt([ChatMessage("system", system[1]), ChatMessage("user", user[1], (image,))])
    answer_start = int((item["labels"] != IGNORE_INDEX).nonzero()[0])
    assert torch.equal(prompt.input_ids[0], item["input_ids"][:answer_start])
    assert torch.equal(prompt.pixel_values, item["pixel_values"])


def test_only_assistant_answers_are_labelled(
    tmp_path: Path, tiny_data: dict[str, Path], processor: Any
) -> None:
    import torch

    image = sorted((tiny_data["meta"].parent / "images").glob("*.png"))[0]
    shutil.copy(image, tmp_path / "a.png")
    path = _write(tmp_path / "dialog.json", [_dialog_sample("a.png")])
    ds = LlavaConversationDataset([path], processor)
    item = ds[0]
    labels = item["labels"]
    trained = labels != IGNORE_INDEX
    assert bool((labels[trained] == item["input_ids"][trained]).all())
    # Two answer spans, each ending with <|eot_id|>; nothing of the questions or headers.
    spans, start = [], None
    for i, flag in enumerate([*trained.tolist(), False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append(processor.tokenizer.decode(item["input_ids"][start:i]))
            start = None
    assert spans == [
        '{"country": "Japan", "lat": 35.6, "lon": 139.6}<|eot_id|>',
        '{"country": "France", "lat": 48.8, "lon": 2.3}<|eot_id|>',
    ]
    # The question stays in the sample as context.
    assert "Revise your answer." in processor.tokenizer.decode(item["input_ids"])

    # Closed-case data: only the last answer is learnt, the first stays as context (per file or for all).
    for last_only in (LlavaConversationDataset([{"path": path, "train_on": "last"}], processor),
                      LlavaConversationDataset([path], processor, train_on="last")):
        masked = last_only[0]
        assert torch.equal(masked["input_ids"], item["input_ids"])
        labelled = processor.tokenizer.decode(masked["input_ids"][masked["labels"] != IGNORE_INDEX])
        assert labelled == '{"country": "France", "lat": 48.8, "lon": 2.3}<|eot_id|>'
    with pytest.raises(DatasetError, match="train_on"):
        LlavaConversationDataset([{"path": path, "train_on": "first"}], processor)


def test_system_prompt_follows_the_mode(tiny_data: dict[str, Path], processor: Any) -> None:
    ds = LlavaConversationDataset([tiny_data["meta"], tiny_data["clues"]], processor)
    by_id = {s.id: s for s in ds.samples}
    direct = ds.messages_for(by_id["meta-france-0"])
    clues = ds.messages_for(by_id["clue-france-0"])
    assert direct[0] == ("system", prompts.system_prompt(SessionMode.DIRECT))
    assert clues[0] == ("system", prompts.system_prompt(SessionMode.CLUES))
    none = LlavaConversationDataset([tiny_data["meta"]], processor, system_prompt="none")
    assert none.messages_for(none.samples[0])[0][0] == "user"


def test_truncation_and_drops_are_reported(
    tmp_path: Path, tiny_data: dict[str, Path], processor: Any
) -> None:
    shutil.copy(sorted((tiny_data["meta"].parent / "images").glob("*.png"))[0], tmp_path / "a.png")
    long_answer = "{" + '"reasoning": "' + "forest " * 300 + '"}'
    path = _write(
        tmp_path / "mix.json",
        [
            {
                "id": "short",
                "image": "a.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nWhere?"},
                    {"from": "gpt", "value": '{"lat": 1}'},
                ],
            },
            {
                "id": "long",
                "image": "a.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nWhere?"},
                    {"from": "gpt", "value": long_answer},
                ],
            },
            {
                "id": "missing",
                "image": "nope.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nWhere?"},
                    {"from": "gpt", "value": "{}"},
                ],
            },
        ],
    )
    ds = LlavaConversationDataset([path], processor, max_length=64, system_prompt="none")
    report = ds.report.to_json()
    assert report["samples"] == 2 and report["truncated"] == 1 and report["dropped"] == 1
    assert report["dropped_examples"][0].startswith("missing: image")
    assert ds.lengths[1] == 64 and int(ds[1]["input_ids"].shape[0]) == 64 and ds.lengths[0] < 64
    # A limit that cuts into the image block (header + 16 image tokens > 12) drops everything.
    with pytest.raises(DatasetError, match="no usable samples"):
        LlavaConversationDataset([path], processor, max_length=12, system_prompt="none")


def test_malformed_samples_get_a_clear_error(tmp_path: Path, processor: Any) -> None:
    path = _write(
        tmp_path / "bad.json",
        [
            {
                "id": "x",
                "image": "a.png",
                "conversations": [{"from": "human", "value": "Where?"}, {"from": "gpt", "value": "{}"}],
            }
        ],
    )
    with pytest.raises(DatasetError, match=r"0 <image> placeholder\(s\) but 1 image"):
        LlavaConversationDataset([path], processor)
    _write(path, [{"id": "y", "conversations": [{"from": "human", "value": "Where?"}]}])
    with pytest.raises(DatasetError, match="no 'gpt' turn"):
        LlavaConversationDataset([path], processor)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DatasetError, match="not valid JSON"):
        LlavaConversationDataset([path], processor)


def test_collator_pads_and_concatenates_images(tiny_data: dict[str, Path], processor: Any) -> None:
    ds = LlavaConversationDataset([tiny_data["meta"], tiny_data["clues"]], processor)
    short, long = (
        min(range(len(ds)), key=ds.lengths.__getitem__),
        max(range(len(ds)), key=ds.lengths.__getitem__),
    )
    batch = Collator(pad_token_id=1)([ds[short], ds[long]])
    n_short, n_long = ds.lengths[short], ds.lengths[long]
    assert batch["input_ids"].shape == (2, n_long) and batch["pixel_values"].shape == (2, 3, 56, 56)
    assert int(batch["attention_mask"][0].sum()) == n_short
    assert bool((batch["input_ids"][0, n_short:] == 1).all())
    assert bool((batch["labels"][0, n_short:] == IGNORE_INDEX).all())


def test_length_grouped_sampler_groups_and_resumes() -> None:
    lengths = [(i * 37) % 101 for i in range(40)]
    sampler = LengthGroupedBatchSampler(lengths, 4, seed=3, group_factor=5)
    batches = sampler.epoch_batches(0)
    assert sorted(i for b in batches for i in b) == list(range(40))  # every sample once per epoch
    # Within a mega-batch of 20, batches are cut from a length-sorted run: a batch spans a narrow range.
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    unsorted = LengthGroupedBatchSampler(lengths, 4, seed=3, group_by_length=False).epoch_batches(0)
    plain = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in unsorted) / len(unsorted)
    assert spread < plain / 2
    assert sampler.epoch_batches(1) != batches  # reshuffled each epoch
    sampler.set_epoch(0, start=3)
    assert list(sampler) == batches[3:]  # resuming skips exactly the batches already seen
    ranks = [LengthGroupedBatchSampler(lengths, 4, seed=3, world_size=3, rank=r) for r in range(3)]
    seen = [i for s in ranks for b in s for i in b]
    assert len(seen) == len(set(seen)) == 36 and all(len(s) == 3 for s in ranks)


def test_jsonl_parts_and_the_builders_image_root(
    tmp_path: Path, tiny_data: dict[str, Path], processor: Any
) -> None:
    """``training/data`` writes ``.jsonl`` parts and records the image root in ``<file>.manifest.json``."""
    from training.recipes._common import data_manifest

    samples = json.loads(tiny_data["meta"].read_text(encoding="utf-8"))[:3]
    part = tmp_path / "parts" / "meta.jsonl"
    part.parent.mkdir()
    part.write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    manifest = part.with_name("meta.jsonl.manifest.json")
    manifest.write_text(json.dumps({"image_root": str(tiny_data["meta"].parent)}), encoding="utf-8")
    ds = LlavaConversationDataset([part], processor)
    assert len(ds) == 3 and ds.samples[0].images[0].is_file()
    assert data_manifest([part])[0]["manifest"]["path"] == str(manifest)
