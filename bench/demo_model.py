"""The GeoSynth demo model: its GeoSynth results (GaGA Table III in miniature) and the time to build it.

    .venv/bin/python -m bench.demo_model --run runs/geosynth-demo        # tabulate a finished build
    .venv/bin/python -m bench.demo_model --run runs/geosynth-demo --build [-- demo options]
    .venv/bin/python -m bench.demo_model --run runs/demo-eval --reevaluate   # the published package only
    .venv/bin/python -m bench.demo_model --run runs/demo-eval --sessions 24  # the app's session loop

``--build`` first runs ``python -m training.geosynth.demo --out RUN`` (options after ``--`` are passed
on; a finished step is skipped, so a rerun only tabulates). The build writes ``RUN/results.json``;
this script adds the machine, the build's wall time per step and the package size, and lays the
metrics out as rows: variant (direct, +Q, +QA) x subset (all scenes, decisive cue hidden, decisive cue
visible) -> country / region / city accuracy, GeoScore, recall, with chance (1 / countries) beside.
Writes bench/results/demo_model.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, write_result

# +Q / +QA with the hint in the first turn (GaGA's protocol) and as a follow-up turn after the direct
# answer (the app's session protocol).
VARIANTS = {"direct": "direct", "q": "+Q", "qa": "+QA", "q_followup": "+Q follow-up",
            "qa_followup": "+QA follow-up"}
SUBSETS = ("all", "decisive_hidden", "decisive_visible")


def rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for subset in SUBSETS:
        for variant, label in VARIANTS.items():
            m = metrics.get(subset, {}).get(variant)
            if m is None:
                continue
            admin = m["admin_accuracy"]
            out.append({
                "subset": subset, "variant": label, "n": m["n"], "country": admin["country"],
                "region": admin["region"], "city": admin["city"], "geoscore": m["geoscore"],
                "recall": m["recall"], "accuracy_km": m["accuracy_km"],
            })
    return out


def hint_gain(metrics: dict[str, Any], subset: str) -> dict[str, Any]:
    """How much +Q and +QA move city / country accuracy and GeoScore over direct answers on a subset."""
    base = metrics.get(subset, {}).get("direct")
    if base is None:
        return {}
    gain: dict[str, Any] = {}
    for variant in ("q", "qa", "q_followup", "qa_followup"):
        m = metrics[subset].get(variant)
        if m is None:
            continue
        gain[VARIANTS[variant]] = {
            level: round(m["admin_accuracy"][level] - base["admin_accuracy"][level], 4)
            for level in ("country", "region", "city")
        } | {"geoscore": round(m["geoscore"] - base["geoscore"], 2)}
    return gain


def tabulate(run: Path, reused: dict[str, float] | None = None) -> dict[str, Any]:
    """The bench document; ``reused``: seconds of steps this run found done (copied from an identical
    earlier invocation), measured there, counted into the training time."""
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    metrics = results["metrics"]
    timings = dict(results["timings_s"])
    timings.update(reused or {})
    steps = ("data", "base", "vision", "stage0", "hints", "stage1", "stage2", "export")
    training = sum(timings.get(k, 0.0) for k in steps)
    return {
        "benchmark": "demo_model",
        "machine": machine(),
        "loadavg_at_tabulation": list(os.getloadavg()),  # the build's own load is in its notes
        "command": results.get("command"),
        "run": str(run),
        "model": results["model"], "version": results["version"],
        "package_bytes": results["package_bytes"],
        "package_mib": round(results["package_bytes"] / 2**20, 2),
        "device": results["device"],
        "train": {"scenes": results["train_n"], "seed": results["train_seed"],
                  "stages": results.get("stages")},
        "eval": {"scenes": results["eval_n"], "seed": results["eval_seed"]},
        "timings_s": timings,
        "reused_step_timings_s": reused or {},
        "training_wall_s": round(training, 1),
        "chance_country": round(results["chance_country"], 4),
        "chance_country_percent": round(100 * results["chance_country"], 2),  # accuracies are percent
        "rows": rows(metrics),
        "hint_gain_on_hidden": hint_gain(metrics, "decisive_hidden"),
        "hint_gain_on_visible": hint_gain(metrics, "decisive_visible"),
        "metrics": metrics,
    }


def reevaluate(run: Path, *, eval_n: int = 500, eval_seed: int = 1001, batch_size: int = 32,
               max_new_tokens: int = 160) -> dict[str, Any]:
    """Evaluate the published package (resources/demo-model) again, on the build's evaluation scenes
    (same count and seed), with every protocol, and put the figures into the committed result: the
    training figures stay those of the build that made the package."""
    from training.cli import main as train_cli
    from training.geosynth.demo import DEMO_MODEL_DIR, subset_results
    from training.geosynth.generator import generate
    from training.geosynth.world import load_world

    eval_data = run / "eval" / f"data-{eval_n}"
    if not (eval_data / "metadata.csv").is_file():
        generate(eval_data, n=eval_n, seed=eval_seed, world=load_world())
    out = run / "eval" / f"run-{eval_n}"
    started = time.perf_counter()
    code = train_cli(["evaluate", "--model", str(DEMO_MODEL_DIR), "--truth", str(eval_data / "metadata.csv"),
                      "--images", str(eval_data), "--dialogs", str(eval_data / "dialogs.jsonl"),
                      "--out", str(out), "--batch-size", str(batch_size),
                      "--max-new-tokens", str(max_new_tokens), "--json"])
    if code != 0:
        raise SystemExit(f"bench.demo_model: geodesk-train evaluate failed (exit {code})")
    seconds = round(time.perf_counter() - started, 1)
    metrics = subset_results(out, eval_data / "metadata.csv")
    path = Path(__file__).resolve().parent / "results" / "demo_model.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    # The build's own figures (training and its evaluation) stay; the re-evaluation goes beside them.
    document["protocols"] = {
        "first_turn": "+Q / +QA: the hint in the first user turn (GaGA's Table III protocol)",
        "follow_up": "+Q follow-up / +QA follow-up: the model answers the direct question first, the "
                     "hint comes as the next user turn (prompts.hint_turn, what the app's session sends)",
    }
    document["reevaluation"] = {
        "machine": machine(), "package": str(DEMO_MODEL_DIR), "scenes": eval_n, "seed": eval_seed,
        "batch_size": batch_size, "max_new_tokens": max_new_tokens, "evaluate_wall_s": seconds,
        "metrics": metrics, "rows": rows(metrics),
        "hint_gain_on_hidden": hint_gain(metrics, "decisive_hidden"),
        "hint_gain_on_visible": hint_gain(metrics, "decisive_visible"),
    }
    write_result("demo_model.json", document)
    return document


def session_check(run: Path, *, scenes: int = 24, seed: int = 2002) -> dict[str, Any]:
    """The published package in the app's session loop (geodesk.services.sessions), on fresh scenes.

    Per scene: a clue-mode session (first turn, the analyst's verdict on its clues as the next turn:
    the first clue accepted, the others rejected, then the scene's +QA hint) and a direct-mode session
    (first turn, then the +QA hint). Counts the turns whose answer parses with no problem (valid JSON
    in the session's mode, clues present in clue mode), and the city accuracy of the direct answer and
    of the +QA follow-up on all scenes and on those whose decisive cue is hidden. Written into the
    committed result as ``sessions``; the build's figures stay."""
    import tempfile

    from geodesk.domain import ClueStatus, Hint, HintKind, SessionMode
    from geodesk.engine.backends.hf import HFBackend, HFOptions
    from geodesk.engine.registry import ModelRegistry
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into
    from geodesk.services.sessions import TurnOptions, add_hints, clue_verdict_hint, locate, set_clue_status
    from geodesk.store.workspace import Workspace
    from training.geosynth.demo import DEMO_MODEL_DIR
    from training.geosynth.generator import generate, read_scenes
    from training.geosynth.world import load_world

    folder = run / "sessions" / f"scenes-{scenes}-{seed}"
    if not (folder / "metadata.csv").is_file():
        generate(folder, n=scenes, seed=seed, world=load_world())
    records = read_scenes(folder)
    load = os.getloadavg()
    started = time.perf_counter()
    counts: dict[str, dict[str, int]] = {}
    cities: dict[str, dict[str, int]] = {}

    def count(turn: str, outcome: Any) -> bool:
        parsed = outcome.parsed
        clean = bool(parsed.prediction.valid and not parsed.problems)
        if outcome.session.mode is SessionMode.CLUES:
            clean = clean and bool(parsed.prediction.clues)
        entry = counts.setdefault(turn, {"turns": 0, "clean": 0})
        entry["turns"] += 1
        entry["clean"] += clean
        return clean

    def city(subset: str, variant: str, outcome: Any, record: dict[str, Any]) -> None:
        entry = cities.setdefault(f"{subset}/{variant}", {"n": 0, "city": 0})
        entry["n"] += 1
        entry["city"] += outcome.parsed.prediction.city == record["city"]

    with tempfile.TemporaryDirectory(prefix="demo-sessions-") as tmp:
        installed = ModelRegistry(Path(tmp) / "ws").install(DEMO_MODEL_DIR)
        backend = HFBackend(installed.path, HFOptions(device="cpu", dtype="fp32"))
        ws = Workspace(Path(tmp) / "ws")
        store = ws.open_case(ws.create_case("Demo model sessions"))
        try:
            report = import_into(store, [folder / r["image"] for r in records],
                                 options=ImportOptions(workers=0), locate=None)
            for record, item in zip(records, report.imported, strict=True):
                qa = Hint(HintKind.QA, text=record["question"], answer=record["answer"])
                subsets = ["all", "decisive_hidden" if record["decisive_hidden"] else "decisive_visible"]
                first = locate(store, item.sha256, backend, SessionMode.CLUES, TurnOptions())
                if count("clues/first", first) and first.clues:
                    session = first.session.id or 0
                    for index, clue in enumerate(first.clues):
                        set_clue_status(store, clue.id or 0,
                                        ClueStatus.ACCEPTED if index == 0 else ClueStatus.REJECTED)
                    count("clues/verdict", add_hints(store, session, [clue_verdict_hint(store, session)],
                                                     backend, TurnOptions()))
                    count("clues/+QA follow-up", add_hints(store, session, [qa], backend, TurnOptions()))
                direct = locate(store, item.sha256, backend, SessionMode.DIRECT, TurnOptions())
                count("direct/first", direct)
                follow = add_hints(store, direct.session.id or 0, [qa], backend, TurnOptions())
                count("direct/+QA follow-up", follow)
                for subset in subsets:
                    city(subset, "direct", direct, record)
                    city(subset, "+QA follow-up", follow, record)
        finally:
            store.close()
    document: dict[str, Any] = json.loads((Path(__file__).resolve().parent / "results" /
                                           "demo_model.json").read_text(encoding="utf-8"))
    document["sessions"] = {
        "machine": machine(), "package": str(DEMO_MODEL_DIR), "scenes": scenes, "seed": seed,
        "wall_s": round(time.perf_counter() - started, 1), "loadavg_before": list(load),
        "loadavg_after": list(os.getloadavg()),
        "protocol": "geodesk.services.sessions locate + add_hints, max_new_tokens 256 (the app's); clue "
                    "mode: first turn, verdict (first clue accepted, the rest rejected), +QA; direct: "
                    "first turn, +QA. 'clean': valid answer, no parse problem, clues present in clue mode",
        "turns": counts,
        "city_accuracy": {k: {**v, "percent": round(100 * v["city"] / v["n"], 1)} for k, v in cities.items()},
    }
    write_result("demo_model.json", document)
    return document


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passed = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the demo build's --out folder")
    parser.add_argument("--build", action="store_true", help="run (or resume) the build first")
    parser.add_argument("--reevaluate", action="store_true",
                        help="evaluate the published package (all protocols) into the committed result")
    parser.add_argument("--eval-n", type=int, default=500, help="--reevaluate: scenes (the build's 500)")
    parser.add_argument("--sessions", type=int, default=0, metavar="N",
                        help="run N fresh scenes through the app's session loop (clue mode, verdict, +QA "
                             "follow-ups) with the published package, into the committed result")
    parser.add_argument("--note", action="append", default=[], help="a sentence recorded with the figures")
    parser.add_argument("--reused", action="append", default=[], metavar="STEP=SECONDS",
                        help="a step the run found done, with its time measured where it was computed")
    args = parser.parse_args(argv)
    reused: dict[str, float] = {}
    for item in args.reused:
        step, sep, seconds = item.partition("=")
        try:
            reused[step] = float(seconds)
        except ValueError:
            sep = ""
        if not sep:
            print(f"bench.demo_model: --reused {item!r} must look like vision=187.7", file=sys.stderr)
            return 2
    if args.sessions:
        document = session_check(args.run.resolve(), scenes=args.sessions)
        print(json.dumps(document["sessions"], indent=2))
        return 0
    if args.reevaluate:
        document = reevaluate(args.run.resolve(), eval_n=args.eval_n)
        for row in document["reevaluation"]["rows"]:
            print(f"{row['subset']:17} {row['variant']:14} n={row['n']:4} country {row['country']:.1f} "
                  f"city {row['city']:.1f} GeoScore {row['geoscore']:7.1f} recall {row['recall']:.3f}")
        return 0
    if args.build:
        command = [sys.executable, "-m", "training.geosynth.demo", "--out", str(args.run), *passed]
        if subprocess.run(command, check=False).returncode != 0:
            print("bench.demo_model: the demo build failed; see its messages above", file=sys.stderr)
            return 1
    if not (args.run / "results.json").is_file():
        print(f"bench.demo_model: {args.run / 'results.json'} does not exist: run the build first "
              "(add --build)", file=sys.stderr)
        return 1
    document = tabulate(args.run.resolve(), reused)
    document["notes"] = list(args.note)
    path = write_result("demo_model.json", document)
    for row in document["rows"]:
        print(f"{row['subset']:17} {row['variant']:6} n={row['n']:4} country {row['country']:.3f} "
              f"region {row['region']:.3f} city {row['city']:.3f} GeoScore {row['geoscore']:7.1f} "
              f"recall {row['recall']:.3f}")
    print(f"accuracies in percent; chance (country) {document['chance_country_percent']:.2f} %; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
