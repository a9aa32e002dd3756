"""The whole loop on GeoSynth hidden-sign scenes: does sending the clue engine's clues as a hint move
the demo model's answer toward the truth?

For each scene whose decisive cue is a town sign just out of frame: the demo model answers the scene
(turn 0); the sign itself is a second photo (a close-up of the same sign over a real background,
bench/clue_textset.sign_photo); the clue engine reads it; every clue it proposes is accepted as is (no
analyst corrections, so this is the engine's own worth); the accepted clues go back as the next turn's
+QA hint (``clues_hint``), and the model answers again (turn 1). For comparison, a second session on
the same scene gets GeoSynth's own +QA answer (the truth as the generator writes it) instead.
Run from bench/clue_engine.py with ``--loop N``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def score(p: Any, truth: tuple[float, float]) -> dict[str, Any]:
    from geodesk.geo.distance import geoscore, haversine_km

    if p.lat is None or p.lon is None:
        return {"km": None, "geoscore": 0.0, "country": p.country_code}
    km = haversine_km(truth[0], truth[1], p.lat, p.lon)
    return {"km": round(km, 1), "geoscore": round(geoscore(km), 1), "country": p.country_code}


def pointless_answers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How often an answer named no point (its GeoScore counts as 0 in the means above), and the mean
    GeoScore over the scenes where the answers compared both named one, so that a fall in the mean can
    be told apart from answers that moved away from the truth."""
    keys = ("before", "after_clues", "after_geosynth_qa")
    out: dict[str, Any] = {
        "answers_without_a_point": {k: sum(1 for r in rows if r[k]["km"] is None) for k in keys}
    }
    both = [r for r in rows if r["before"]["km"] is not None and r["after_clues"]["km"] is not None]
    out["geoscore_mean_where_both_named_a_point"] = {
        "scenes": len(both),
        "before": round(sum(r["before"]["geoscore"] for r in both) / len(both), 2) if both else None,
        "after_engine_clues": round(sum(r["after_clues"]["geoscore"] for r in both) / len(both), 2)
        if both
        else None,
    }
    return out


def run_loop(n: int, seed: int = 1, ocr: str | None = None) -> dict[str, Any]:
    from bench.clue_textset import sign_photo
    from geodesk.domain.model import ClueStatus, Hint, HintKind
    from geodesk.engine.backends.hf import HFBackend
    from geodesk.geo import default_gazetteer
    from geodesk.services.clue_engine import DEFAULT_OCR, clues_hint, run_engine
    from geodesk.services.importing import import_into
    from geodesk.services.sessions import add_hints, locate, set_clue_status
    from geodesk.store.workspace import Workspace
    from training.geosynth.fonts import FontBook
    from training.geosynth.generator import hint_answer, hint_question
    from training.geosynth.scene import plan_scene, render
    from training.geosynth.world import load_world

    engine_name = ocr or DEFAULT_OCR
    world = load_world(default_gazetteer())
    fonts = FontBook.system()
    plans = []
    index = 0
    while len(plans) < n and index < 50 * n:
        plan = plan_scene(world, seed, index, hidden_share=1.0, fonts=fonts)
        index += 1
        if plan.decisive == "sign" and plan.hidden:
            plans.append(plan)
    model_dir = Path(__file__).resolve().parents[1] / "resources" / "demo-model"
    backend = HFBackend(model_dir)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        case = ws.create_case("clue loop")
        with ws.open_case(case.id) as store:
            for plan in plans:
                scene_path = Path(tmp) / f"{plan.id}.png"
                sign_path = Path(tmp) / f"{plan.id}-sign.png"
                render(plan, 224, fonts).image.save(scene_path)
                sign_photo(list(plan.sign_lines), plan.place.country.code, plan.id).save(sign_path)
                report = import_into(store, [scene_path, sign_path])
                scene, sign = report.imported[0].sha256, report.imported[1].sha256
                truth = (plan.place.lat, plan.place.lon)
                first = locate(store, scene, backend)
                run = run_engine(store, sign, ocr=engine_name)
                accepted = [
                    set_clue_status(store, c.clue.id, ClueStatus.ACCEPTED)
                    for c in run.added
                    if c.clue.id is not None
                ]
                reviewed = [
                    e for e in (store.engine_clues.get(c.id) for c in accepted if c.id is not None) if e
                ]
                row: dict[str, Any] = {
                    "scene": plan.id,
                    "country": plan.place.country.code,
                    "city": plan.place.city_name,
                    "sign": list(plan.sign_lines),
                    "clues": [c.clue.text for c in reviewed],
                    "messages": run.messages,
                }

                row["before"] = score(first.turn.prediction, truth)
                if reviewed:
                    hint = clues_hint(reviewed)
                    second = add_hints(store, first.session.id or 0, [hint], backend)
                    row["hint"] = hint.answer
                    row["after_clues"] = score(second.turn.prediction, truth)
                else:
                    row["hint"] = None
                    row["after_clues"] = row["before"]
                oracle_first = locate(store, scene, backend)
                oracle = add_hints(
                    store,
                    oracle_first.session.id or 0,
                    [Hint(HintKind.QA, text=hint_question(plan), answer=hint_answer(plan))],
                    backend,
                )
                row["after_geosynth_qa"] = score(oracle.turn.prediction, truth)
                rows.append(row)
                print(plan.id, row["before"], row["after_clues"], row["after_geosynth_qa"], flush=True)
    backend.close()

    def mean(key: str, field: str) -> float:
        values = [float(r[key][field] or 0.0) for r in rows]
        return round(sum(values) / len(values), 2) if values else 0.0

    def country_share(key: str) -> float:
        return round(sum(r[key]["country"] == r["country"] for r in rows) / len(rows), 4) if rows else 0.0

    closer = [
        r
        for r in rows
        if r["before"]["km"] is not None
        and r["after_clues"]["km"] is not None
        and r["after_clues"]["km"] < r["before"]["km"]
    ]
    return {
        "scenes": len(rows),
        "seed": seed,
        "ocr": engine_name,
        "model": "resources/demo-model",
        "seconds": round(time.perf_counter() - started, 1),
        "geoscore_mean": {
            "before": mean("before", "geoscore"),
            "after_engine_clues": mean("after_clues", "geoscore"),
            "after_geosynth_qa": mean("after_geosynth_qa", "geoscore"),
        },
        "country_accuracy": {
            "before": country_share("before"),
            "after_engine_clues": country_share("after_clues"),
            "after_geosynth_qa": country_share("after_geosynth_qa"),
        },
        "moved_closer_share": round(len(closer) / len(rows), 4) if rows else 0.0,
        "scenes_with_no_clue": sum(1 for r in rows if r["hint"] is None),
        **pointless_answers(rows),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """Add the loop's figures to bench/results/clue_engine.json (run bench.clue_engine first)."""
    import argparse
    import json

    from bench._engine_common import RESULTS, write_result

    parser = argparse.ArgumentParser(description="the clue-engine loop on GeoSynth hidden-sign scenes")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ocr", default=None)
    args = parser.parse_args(argv)
    path = RESULTS / "clue_engine.json"
    document = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    command = f"python -m bench.clue_loop --n {args.n} --seed {args.seed}" + (
        f" --ocr {args.ocr}" if args.ocr else ""
    )
    document["loop"] = {"command": command, **run_loop(args.n, seed=args.seed, ocr=args.ocr)}
    print(write_result("clue_engine.json", document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
