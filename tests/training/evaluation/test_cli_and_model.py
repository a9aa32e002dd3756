"""``geodesk-train evaluate`` from files and with the tiny model; batched == one-at-a-time greedy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from geodesk.domain import SessionMode
from geodesk.engine import prompts
from geodesk.engine.backends.base import ChatMessage, GenerationSettings
from geodesk.geo.metrics import SUMMARY_KEYS, PredictionRow, align, summarize
from training.cli import main
from training.evaluation.generation import HFBatchGenerator
from training.evaluation.io import read_truth, truth_rows

from .test_flows import TRUTH, write_set


def test_evaluate_from_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth, _ = write_set(tmp_path)
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "\n".join(
            json.dumps(o)
            for o in [
                {
                    "id": "paris",
                    "lat": 48.85,
                    "lon": 2.35,
                    "country": "FR",
                    "region": "Ile-de-France",
                    "city": "Paris",
                    "valid": True,
                    "raw": "kept, ignored",
                },
                {
                    "id": "tokyo",
                    "lat": 34.69,
                    "lon": 135.50,
                    "country": "Japan",
                    "region": "Osaka",
                    "city": "Osaka",
                    "valid": True,
                },
                {"id": "elsewhere", "lat": 0, "lon": 0, "valid": True},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert main(["evaluate", "--predictions", str(preds), "--truth", str(truth), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert tuple(doc) == SUMMARY_KEYS
    truths = truth_rows(read_truth(truth))
    expected = summarize(
        align(
            [
                PredictionRow("paris", 48.85, 2.35, "FR", "Ile-de-France", "Paris", True),
                PredictionRow("tokyo", 34.69, 135.50, "Japan", "Osaka", "Osaka", True),
            ],
            truths,
        )[0],
        truths,
    )
    assert doc == expected
    assert doc["n"] == 3 and doc["recall"] == pytest.approx(2 / 3)  # nairobi missing -> invalid
    assert doc["admin_accuracy"]["country"] == pytest.approx(200 / 3)
    assert doc["admin_accuracy"]["city"] == pytest.approx(100 / 3)
    assert "1 prediction id(s) are not in the truth file" in err and "elsewhere" in err
    assert "1 truth id(s) have no prediction" in err


def test_evaluate_from_files_names_a_malformed_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth, _ = write_set(tmp_path)
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "paris", "valid": false}\nnot json\n', encoding="utf-8")
    assert main(["evaluate", "--predictions", str(preds), "--truth", str(truth), "--json"]) == 1
    assert "p.jsonl line 2 is not valid JSON" in capsys.readouterr().err


def test_evaluate_with_the_tiny_model_end_to_end(
    tiny_model_dir: Path, tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*TRUTH, ("lima", -12.0464, -77.0428, "Peru", "Lima region", "Lima")]
    truth, images = write_set(tmp_path, rows)
    out = tmp_path / "eval"
    argv = [
        "evaluate",
        "--model",
        str(tiny_model_dir),
        "--truth",
        str(truth),
        "--images",
        str(images),
        "--out",
        str(out),
        "--batch-size",
        "2",
        "--max-new-tokens",
        "8",
        "--json",
    ]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["n"] == 4 and doc["mode"] == "dire" and doc["model"].startswith("tiny-llava@")
    for name in (
        "predictions.jsonl",
        "metrics.json",
        "report.md",
        "accuracy_by_threshold.svg",
        "error_histogram.svg",
        "error_map.svg",
    ):
        assert (out / name).is_file(), name
    first = (out / "predictions.jsonl").read_bytes()
    assert [json.loads(x)["id"] for x in first.splitlines()] == ["paris", "nairobi", "tokyo", "lima"]
    # rerun: every id is there, nothing is answered again
    assert main(argv) == 0
    capsys.readouterr()
    assert (out / "predictions.jsonl").read_bytes() == first
    # drop the last answer: the rerun answers exactly that one, greedily the same
    (out / "predictions.jsonl").write_bytes(b"".join(first.splitlines(keepends=True)[:3]))
    assert main(argv) == 0
    assert (out / "predictions.jsonl").read_bytes() == first


def test_batched_greedy_equals_one_at_a_time(tiny_model_dir: Path) -> None:
    from geodesk.engine.backends.hf import HFBackend, HFOptions

    backend = HFBackend(tiny_model_dir, HFOptions(reuse_cache=False))
    system = ChatMessage("system", prompts.system_prompt(SessionMode.DIRECT))
    conversations = []
    for i in range(4):  # different image sizes and prompt lengths: the batch is really padded
        image = Image.new("RGB", (60 + 20 * i, 40 + 10 * i), (60 * i, 200 - 40 * i, 90))
        text = (
            prompts.first_turn(SessionMode.DIRECT).text
            if i % 2 == 0
            else prompts.hier_country_prompt(["France", "Kenya", "Peru", "Japan"][: i + 1])
        )
        conversations.append([system, ChatMessage("user", text, (image,))])
    settings = GenerationSettings(max_new_tokens=12)
    one_at_a_time = [backend.generate(c, settings).text for c in conversations]
    batched = HFBatchGenerator(backend, batch_size=4).generate_batch(conversations, settings)
    assert batched == one_at_a_time
    assert len(set(one_at_a_time)) > 1  # the rows really differ: padding could have mixed them up
