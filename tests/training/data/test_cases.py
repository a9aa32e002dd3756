"""Closed cases: confirmed findings with their verified clues and hint dialogs become training dialogs."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from geodesk.domain import ClueStatus, Finding, FindingStatus, Hint, HintKind, SessionMode
from geodesk.engine.backends.base import GenerationSettings
from geodesk.evidence.pipeline import ImportOptions
from geodesk.geo import default_gazetteer
from geodesk.services.importing import import_into
from geodesk.services.sessions import TurnOptions, add_hints, locate, set_clue_status
from geodesk.store import Workspace
from tests.training.data.scripted import ScriptedTeacher
from training.data.cases import build_cases
from training.data.common import read_samples
from training.data.metadata import PlaceNamer
from training.data.validate import validate_samples

FIRST = json.dumps({
    "clues": [{"category": "architecture", "text": "Haussmann facades"},
              {"category": "vegetation", "text": "palm trees"},
              {"category": "signage_language", "text": "French street signs"}],
    "reasoning": "Looks southern.", "country": "Spain", "region": "Catalonia", "city": "Barcelona",
    "lat": 41.39, "lon": 2.17,
})
SECOND = "It is in France then. " + json.dumps({
    "clues": [], "reasoning": "", "country": "France", "region": "Provence", "city": "Marseille",
    "lat": 43.3, "lon": 5.37})


def make_case(tmp_path: Path) -> tuple[Workspace, dict[str, str]]:
    paths = []
    for name, colour in (("street", (10, 20, 30)), ("harbour", (40, 50, 60)), ("square", (70, 80, 90))):
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (64, 48), colour).save(path)
        paths.append(path)
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Closed case")
    with ws.open_case(case) as store:
        report = import_into(store, paths, options=ImportOptions(workers=0), locate=None)
        shas = {Path(e.source_path or "").stem: e.sha256 for e in report.imported}
        options = TurnOptions(settings=GenerationSettings(max_new_tokens=64), normalizer=default_gazetteer())
        teacher = ScriptedTeacher([FIRST, SECOND])
        first = locate(store, shas["street"], teacher, SessionMode.CLUES, options)
        clues = {c.text: c for c in first.clues}
        set_clue_status(store, clues["Haussmann facades"].id or 0, ClueStatus.ACCEPTED)
        set_clue_status(store, clues["palm trees"].id or 0, ClueStatus.REJECTED)
        set_clue_status(store, clues["French street signs"].id or 0, ClueStatus.EDITED,
                        "Street name plates are blue enamel with white letters")
        add_hints(store, first.session.id or 0, [Hint(HintKind.PRIOR, text="France")], teacher, options)
        store.findings.save(Finding(None, shas["street"], 48.8566, 2.3522, 0.5, FindingStatus.CONFIRMED,
                                    reasoning="Matched the facade on rue de Rivoli."))
        store.findings.save(Finding(None, shas["harbour"], 43.3, 5.37, 5.0, FindingStatus.PROBABLE))
        store.findings.save(Finding(None, shas["square"], 35.6762, 139.6503, 1.0, FindingStatus.CONFIRMED))
    return ws, shas


def test_confirmed_findings_become_dialogs(tmp_path: Path, namer: PlaceNamer) -> None:
    ws, shas = make_case(tmp_path)
    out = tmp_path / "cases.json"
    report = build_cases(ws, out, namer=namer)
    assert report.counts["confirmed"] == 2  # the probable finding is left out
    assert report.counts["samples"] == 2
    samples = {s["image"].split("/")[1].split(".")[0]: s for s in read_samples(out)}
    street = samples[shas["street"]]
    conv = street["conversations"]
    assert [t["from"] for t in conv] == ["human", "gpt", "human", "gpt"]
    assert conv[0]["value"].startswith("<image>\n")
    assert "France" in conv[2]["value"]  # the analyst's prior hint, as it was sent
    first = json.loads(conv[1]["value"])
    # The analyst's verdict replaces the model's clue list: accepted + edited, rejected dropped.
    assert first["clues"] == [
        {"category": "architecture", "text": "Haussmann facades"},
        {"category": "signage_language", "text": "Street name plates are blue enamel with white letters"},
    ]
    final = json.loads(conv[3]["value"])
    assert (final["lat"], final["lon"]) == (48.8566, 2.3522)
    assert final["country"] == "France" and final["city"] == "Paris"  # reverse-geocoded finding
    assert final["reasoning"] == "Matched the facade on rue de Rivoli."
    assert final["clues"] == first["clues"]

    square = samples[shas["square"]]  # confirmed without any session: one direct exchange
    assert len(square["conversations"]) == 2
    assert json.loads(square["conversations"][1]["value"])["country"] == "Japan"

    image_root = Path(report.extra["image_root"])
    assert (image_root / street["image"]).is_file()
    check = validate_samples(out, image_root)
    assert check.counts["failed_samples"] == 0, check.problems
