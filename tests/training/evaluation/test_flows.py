"""HIER, DIRE and +Q / +QA flows driven by a ScriptedModel (pre-written answers), resume, file I/O."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from geodesk.engine.backends.base import ChatMessage
from training.evaluation.generation import SequentialGenerator
from training.evaluation.io import (
    EvaluationInputError,
    PredictionsFile,
    read_dialogs,
    read_predictions,
    read_truth,
)
from training.evaluation.runner import EvalOptions, evaluate_model

from .scripted import ScriptedModel

TRUTH = [
    ("paris", 48.8566, 2.3522, "France", "Île-de-France", "Paris"),
    ("nairobi", -1.2921, 36.8219, "Kenya", "Nairobi County", "Nairobi"),
    ("tokyo", 35.6762, 139.6503, "Japan", "Tokyo", "Tokyo"),
]


def write_set(root: Path, rows: Sequence[tuple[object, ...]] = TRUTH) -> tuple[Path, Path]:
    images = root / "images"
    images.mkdir(parents=True)
    truth = root / "truth.csv"
    with truth.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "latitude", "longitude", "country", "region", "city", "source"])
        for i, row in enumerate(rows):
            w.writerow([*row, "test"])
            Image.new("RGB", (40, 30), (10 * i, 0, 0)).save(images / f"{row[0]}.png")
    return truth, images


def which(messages: Sequence[ChatMessage]) -> str:
    """The sample a conversation is about, from its image's colour."""
    red = messages[-1].images[0].getpixel((0, 0))[0]
    return str(TRUTH[red // 10][0])


def hier_rule(messages: Sequence[ChatMessage]) -> str:
    text, sample = messages[-1].text, which(messages)
    if "In which country" in text:
        return {"paris": "1", "nairobi": "Japan", "tokyo": "I think it is Japan."}[sample]  # 1 = France
    if "In which of its regions" in text:
        return {"paris": "Île-de-France", "tokyo": "Osaka"}[sample]
    assert "In which city" in text
    return "Paris"


def test_hier_stops_at_the_first_wrong_level(tmp_path: Path) -> None:
    truth, images = write_set(tmp_path)
    model = ScriptedModel(hier_rule)
    doc = evaluate_model(
        SequentialGenerator(model),
        read_truth(truth),
        images,
        tmp_path / "out",
        EvalOptions(mode="hier", batch_size=2, candidates_from_truth=True),
    )
    # 3 country questions, 2 region questions (France and Japan right), 1 city question (Paris)
    asked = [m[-1].text.split("?")[0].split("\n")[-1] for m in model.calls]
    assert sorted(asked) == sorted(
        ["In which country was this photo taken"] * 3
        + [
            "This photo was taken in France. In which of its regions",
            "This photo was taken in Japan. In which of its regions",
            "This photo was taken in Île-de-France, France. In which city or town",
        ]
    )
    country_prompt = model.calls[0][-1].text
    assert "1. France\n2. Japan\n3. Kenya" in country_prompt
    rows = {p.id: p for p in read_predictions(tmp_path / "out" / "predictions.jsonl")}
    assert (rows["nairobi"].country, rows["nairobi"].region, rows["nairobi"].city) == ("Japan", None, None)
    assert (rows["tokyo"].region, rows["tokyo"].city) == ("Osaka", None)
    assert rows["paris"].city == "Paris" and rows["paris"].lat is not None  # the chosen city's point
    s = doc["summary"]
    assert s["recall"] == 1.0
    assert s["admin_accuracy"] == pytest.approx({"country": 200 / 3, "region": 100 / 3, "city": 100 / 3})
    assert s["accuracy_km"]["25"] == pytest.approx(100 / 3)  # only Paris has coordinates


def test_hier_candidates_default_to_every_country_and_every_city_as_the_paper() -> None:
    from geodesk.geo.gazetteer import default_gazetteer
    from training.evaluation.modes import HierCandidates

    gaz = default_gazetteer()
    every = HierCandidates(gaz)
    assert len(every.countries) > 200 and {"France", "Kenya", "Japan", "Fiji"} <= set(every.countries)
    all_cities = every.cities("FR", "Île-de-France", "Paris")
    capped = HierCandidates(gaz, ["France"], max_cities=100).cities("FR", "Île-de-France", "Paris")
    assert len(capped) <= 101 < len(all_cities)
    assert "Paris" in {c.name for c in capped} and "Paris" in {c.name for c in all_cities}


def dire_rule(messages: Sequence[ChatMessage]) -> str:
    text = messages[-1].text
    if "Answer from the analyst" in text:  # +QA
        return json.dumps(
            {"country": "France", "region": "Île-de-France", "city": "Paris", "lat": 48.86, "lon": 2.35}
        )
    if "A question to consider" in text:  # +Q
        return (
            'The roofs look French. {"country": "France", "region": "Auvergne-Rhône-Alpes", '
            '"city": "Lyon", "lat": 45.76, "lon": 4.84}'
        )
    return "I cannot tell where this is."


def test_interactive_direct_q_qa_rows(tmp_path: Path) -> None:
    truth, images = write_set(tmp_path, TRUTH[:1])
    dialogs = tmp_path / "dialogs.jsonl"
    dialogs.write_text(
        json.dumps({"id": "paris", "question": "What style are the roofs?", "answer": "Zinc mansard roofs."})
        + "\n",
        encoding="utf-8",
    )
    model = ScriptedModel(dire_rule)
    out = tmp_path / "out"
    doc = evaluate_model(
        SequentialGenerator(model), read_truth(truth), images, out, EvalOptions(dialogs=read_dialogs(dialogs))
    )
    rows = doc["interactive"]
    assert rows["direct"]["recall"] == 0.0
    assert rows["q"]["admin_accuracy"] == {"country": 100.0, "region": 0.0, "city": 0.0}
    assert rows["qa"]["admin_accuracy"] == {"country": 100.0, "region": 100.0, "city": 100.0}
    assert rows["qa"]["accuracy_km"]["25"] == 100.0
    for name in (
        "predictions.jsonl",
        "predictions_q.jsonl",
        "predictions_qa.jsonl",
        "metrics.json",
        "report.md",
        "accuracy_by_threshold.svg",
        "error_histogram.svg",
        "error_map.svg",
    ):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "+ QA" in report and "(NOT this model)" in report and "| GaGA | DIRE | qa | 1 | 74.77" in report
    # the hint goes into the first (and only) turn
    assert any(
        "What style are the roofs?" in c[-1].text and "Zinc mansard" in c[-1].text for c in model.calls
    )


def test_the_follow_up_protocol_sends_the_hint_as_the_sessions_next_turn(tmp_path: Path) -> None:
    from geodesk.domain import Hint, HintKind, SessionMode
    from geodesk.engine import prompts

    truth, images = write_set(tmp_path, TRUTH[:1])
    dialogs = tmp_path / "dialogs.jsonl"
    question, answer = "What style are the roofs?", "Zinc mansard roofs."
    dialogs.write_text(json.dumps({"id": "paris", "question": question, "answer": answer}) + "\n",
                       encoding="utf-8")
    model = ScriptedModel(dire_rule)
    out = tmp_path / "out"
    doc = evaluate_model(SequentialGenerator(model), read_truth(truth), images, out,
                         EvalOptions(dialogs=read_dialogs(dialogs)))
    first_turn, follow_up = doc["protocols"]["first_turn"], doc["protocols"]["follow_up"]
    assert follow_up["qa"]["admin_accuracy"] == {"country": 100.0, "region": 100.0, "city": 100.0}
    assert follow_up["q"]["admin_accuracy"]["region"] == 0.0
    assert first_turn["qa"] == doc["interactive"]["qa"] and follow_up["direct"] == doc["summary"]
    for name in ("predictions_q_followup.jsonl", "predictions_qa_followup.jsonl"):
        assert (out / name).is_file(), name
    qa_hint = prompts.hint_turn([Hint(HintKind.QA, text=question, answer=answer)], mode=SessionMode.DIRECT)
    follow_ups = [c for c in model.calls if len(c) == 4]
    assert len(follow_ups) == 2  # +Q and +QA, one sample each
    conversation = next(c for c in follow_ups if c[-1].text == qa_hint.text)
    assert [m.role for m in conversation] == ["system", "user", "assistant", "user"]
    assert conversation[1].text == prompts.first_turn(SessionMode.DIRECT).text
    assert conversation[2].text == "I cannot tell where this is."  # the model's own direct answer
    assert len(conversation[1].images) == 1 and not conversation[3].images
    assert "follow-up turn" in (out / "report.md").read_text(encoding="utf-8")
    paper = EvalOptions(dialogs=read_dialogs(dialogs), follow_up=False)
    only_paper = evaluate_model(SequentialGenerator(ScriptedModel(dire_rule)), read_truth(truth), images,
                                tmp_path / "paper", paper)
    assert "follow_up" not in only_paper["protocols"]


def test_rerun_resumes_and_a_torn_line_is_answered_again(tmp_path: Path) -> None:
    truth, images = write_set(tmp_path)
    out = tmp_path / "out"
    model = ScriptedModel(dire_rule)

    def run() -> None:
        evaluate_model(
            SequentialGenerator(model),
            read_truth(truth),
            images,
            out,
            EvalOptions(batch_size=2, report=False),
        )

    run()
    assert len(model.calls) == 3
    run()
    assert len(model.calls) == 3  # nothing left to answer
    lines = (out / "predictions.jsonl").read_bytes().splitlines(keepends=True)
    (out / "predictions.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][:10])  # a torn last append
    run()
    assert len(model.calls) == 4
    assert [p.id for p in read_predictions(out / "predictions.jsonl")] == ["paris", "nairobi", "tokyo"]


def test_a_missing_image_is_an_invalid_answer_not_a_crash(tmp_path: Path) -> None:
    truth, images = write_set(tmp_path)
    (images / "tokyo.png").unlink()
    doc = evaluate_model(
        SequentialGenerator(ScriptedModel(dire_rule)),
        read_truth(truth),
        images,
        tmp_path / "out",
        EvalOptions(report=False),
    )
    records = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert records[-1]["error"] == "no image file for this id" and records[-1]["valid"] is False
    assert doc["summary"]["n"] == 3


def test_malformed_files_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "a", "valid": true}\n{"id": "b", "lat": \n', encoding="utf-8")
    with pytest.raises(EvaluationInputError, match=r"p.jsonl line 2 is not valid JSON"):
        read_predictions(p)
    p.write_text('{"id": "a", "valid": "yes"}\n', encoding="utf-8")
    with pytest.raises(EvaluationInputError, match="line 1: valid must be true or false"):
        read_predictions(p)
    t = tmp_path / "t.csv"
    t.write_text("id,lat,lon\na,1,2\n", encoding="utf-8")
    with pytest.raises(EvaluationInputError, match="lacks column"):
        read_truth(t)
    t.write_text("id,latitude,longitude\na,1,2\nb,95,2\n", encoding="utf-8")
    with pytest.raises(EvaluationInputError, match=r"line 3: latitude 95\.0 is outside"):
        read_truth(t)


def test_predictions_file_appends_whole_batches(tmp_path: Path) -> None:
    f = PredictionsFile(tmp_path / "p.jsonl")
    f.append([{"id": "a", "valid": False}, {"id": "b", "valid": True, "lat": 1, "lon": 2}])
    assert f.done == {"a", "b"}
    assert PredictionsFile(tmp_path / "p.jsonl").done == {"a", "b"}
    assert [p.valid for p in f.rows()] == [False, True]
