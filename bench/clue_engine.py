"""Clue engine on the text test set: OCR character accuracy, script / language / country-in-top-3
accuracy per script and per OCR engine, and time per image.

    python -m bench.clue_engine --n 102 --engines hybrid,rapidocr,tesseract     # the scored split
    python -m bench.clue_engine --n 102 --split dev --seed 1001 --engines hybrid --out clue_engine_dev.json

The text set has two disjoint pools of towns and sentences (bench/clue_textset.py): ``test`` is the
scored split; ``dev`` is the development split, the only one thresholds and engine choices were tuned
on. The result file says which split it measured.

Targets (per engine): script right on >= 98 % of lines, language right on >= 90 % of lines of >= 10
letters, the true country in the top 3 on >= 80 % of images. The "truth text" columns run the same
analysers on the true line texts, so OCR errors and analyser errors can be told apart. ``--loop N``
adds the whole loop on GeoSynth hidden-sign scenes (see bench/clue_loop.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter, defaultdict
from typing import Any

from bench._engine_common import write_result
from bench.clue_textset import LANGUAGES, SPLITS, Sample, make_sample

TARGETS = {"script_line_accuracy": 0.98, "language_line_accuracy": 0.90, "country_top3_accuracy": 0.80}


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _squash(text: str) -> str:
    return "".join(text.split())


def _best_match(truth: str, texts: list[str]) -> tuple[str | None, float]:
    """The read line closest to ``truth`` and its character error rate against it."""
    t = _squash(truth)
    best, best_cer = None, 1.0
    for text in texts:
        cer = min(1.0, levenshtein(t, _squash(text)) / max(1, len(t)))
        if cer < best_cer:
            best, best_cer = text, cer
    return best, best_cer


def _top3(findings: list[Any]) -> list[str]:
    from geodesk.clues.constraint import Labelled, combine
    from geodesk.services.clue_engine import _countries

    names, _ = _countries()
    labelled = [Labelled(i, f.category, f.text, f) for i, f in enumerate(findings) if f.category != "text"]
    if not labelled:
        return []
    return [v.code for v in combine(labelled, names)[:3]]


def read_all(samples: list[Sample], engines: list[str]) -> dict[str, Any]:
    """Each engine's lines per sample and seconds per image; a failure is counted per image."""
    from geodesk.clues.model import TextLine
    from geodesk.clues.ocr import ocr_engine, read_image

    readings: dict[str, list[list[TextLine]]] = {e: [] for e in engines}
    seconds: dict[str, list[float]] = {e: [] for e in engines}
    cpu: dict[str, list[float]] = {e: [] for e in engines}  # process CPU seconds: less load-dependent
    failures: dict[str, list[str]] = {e: [] for e in engines}
    for sample in samples:
        for name in engines:
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                lines = read_image(ocr_engine(name), sample.image)
            except Exception as exc:  # a per-image failure is counted, never the end of the run
                failures[name].append(f"{sample.id}: {exc}")
                lines = []
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            readings[name].append(lines)
        print(sample.id, {k: round(v[-1], 1) for k, v in seconds.items()}, flush=True)
    provenance = {}
    for name in readings:
        try:
            provenance[name] = ocr_engine(name).provenance()
        except Exception as exc:
            provenance[name] = {"error": str(exc)}
    return {
        "readings": readings,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "failures": failures,
        "provenance": provenance,
    }


def measure(
    samples: list[Sample],
    readings: list[Any] | None,
    seconds: list[float] | None = None,
    failures: list[str] | None = None,
    provenance: dict[str, Any] | None = None,
    cpu_seconds: list[float] | None = None,
) -> dict[str, Any]:
    """Per-script figures for one engine's readings (None: the analysers on the true text)."""
    from geodesk.clues import engine as clue_engine
    from geodesk.clues.languages import identify_language, letters, line_script
    from geodesk.clues.model import TextLine
    from geodesk.geo import default_gazetteer

    gazetteer = default_gazetteer()
    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # Misses by class: truth -> what was got instead ("no line": nothing read near the line;
    # "abstained": a line was read but got no language).
    script_misses: dict[str, Counter[str]] = defaultdict(Counter)
    language_misses: dict[str, Counter[str]] = defaultdict(Counter)
    answered: list[float] = []
    for k, sample in enumerate(samples):
        lines = readings[k] if readings is not None else [TextLine(t.text, None, 1.0) for t in sample.lines]
        texts = [line.text for line in lines]
        script_key = sample.language.script
        for truth in sample.lines:
            read, cer = _best_match(truth.text, texts)
            bucket = per[truth.script if truth.kind in ("town", "sentence") else "Latn (phone, web)"]
            bucket["char_accuracy"].append(1.0 - cer)
            got = line_script(read) if read else None
            bucket["script"].append(float(got is not None and got.script == truth.script))
            if got is None or got.script != truth.script:
                script_misses[truth.script][
                    "no line" if read is None else ("no letters" if got is None else got.script)
                ] += 1
            if truth.kind == "sentence" and letters(truth.text) >= 10:
                lang = identify_language(read) if read else None
                right = lang is not None and lang.language == sample.language.code
                per[script_key]["language"].append(float(right))
                if lang is not None:
                    answered.append(float(right))
                if not right:
                    language_misses[sample.language.code][
                        "no line" if read is None else ("abstained" if lang is None else lang.language)
                    ] += 1
        findings = clue_engine.text_findings(lines, gazetteer)
        per[script_key]["country_top3"].append(float(sample.language.country in _top3(findings)))
    by_script = {
        script: {
            name: {"accuracy": round(sum(v) / len(v), 4), "n": len(v)} for name, v in sorted(values.items())
        }
        for script, values in sorted(per.items())
    }

    def pooled(name: str) -> float | None:
        values = [x for s in per.values() for x in s.get(name, [])]
        return round(sum(values) / len(values), 4) if values else None

    overall = {
        "char_accuracy": pooled("char_accuracy"),
        "script_line_accuracy": pooled("script"),
        "language_line_accuracy": pooled("language"),
        "country_top3_accuracy": pooled("country_top3"),
    }
    n_language = len([x for v in per.values() for x in v.get("language", [])])
    result: dict[str, Any] = {
        "overall": overall,
        "language_answers": {
            "lines": n_language,
            "answered_share": round(len(answered) / n_language, 4) if n_language else None,
            "right_when_answered": round(sum(answered) / len(answered), 4) if answered else None,
            "note": "language_line_accuracy counts an abstention as not right",
        },
        "script_misses": {k: dict(v) for k, v in sorted(script_misses.items())},
        "language_misses": {k: dict(v) for k, v in sorted(language_misses.items())},
        "per_script": by_script,
        "targets_met": {k: (overall[k] or 0) >= v for k, v in TARGETS.items()},
    }
    if seconds:
        ordered = sorted(seconds)
        result["seconds_per_image"] = {
            "median": round(ordered[len(ordered) // 2], 3),
            "max": round(max(seconds), 3),
            "mean": round(sum(seconds) / len(seconds), 3),
        }
        if cpu_seconds:
            ordered_cpu = sorted(cpu_seconds)
            result["cpu_seconds_per_image"] = {
                "median": round(ordered_cpu[len(ordered_cpu) // 2], 3),
                "mean": round(sum(cpu_seconds) / len(cpu_seconds), 3),
                "note": "CPU time of this process (every thread) while the engine read the image; a child "
                "process is not counted (the tesseract engine runs the Tesseract command)",
            }
        result["failures"] = failures or []
        result["provenance"] = provenance or {}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=len(LANGUAGES) * 2, help="images (default: 2 per language)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engines", default="hybrid,rapidocr,tesseract")
    parser.add_argument(
        "--loop", type=int, default=0, help="also run the GeoSynth loop on N hidden-sign scenes"
    )
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--out", default="clue_engine.json")
    args = parser.parse_args(argv)
    samples = [make_sample(i, args.seed, split=args.split) for i in range(args.n)]
    import geodesk

    document: dict[str, Any] = {
        "benchmark": "clue engine on the text test set",
        "command": f"python -m bench.clue_engine --n {args.n} --seed {args.seed} --engines {args.engines}"
        + (f" --split {args.split}" if args.split != "test" else "")
        + (f" --loop {args.loop}" if args.loop else ""),
        "split": {
            "measured": args.split,
            "scored": "test",
            "note": "test (scored) and dev (development) use disjoint towns and sentences and different "
            "seeds; the line reader's thresholds (STRONG_PACK_CONFIDENCE, MIN_LINE_TEXT_HEIGHT, "
            "OWN_LETTERS_MARGIN) and the language identifier's (MIN_LANGUAGE_CONFIDENCE, MIN_LEAD) were "
            "chosen on dev (seed 1001) only",
        },
        "size": {
            "images": args.n,
            "languages": len(LANGUAGES),
            "lines": sum(len(s.lines) for s in samples),
            "image_size": list(samples[0].image.size),
        },
        "targets": TARGETS,
        "machine": {
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "geodesk": geodesk.__version__,
        },
        "test_set": "signs in GeoSynth sign colours and Noto fonts over scikit-image's sample photographs "
        "(bench/clue_textset.py)",
        "truth_text": measure(samples, None),
        "note": "hybrid = rapidocr's detector finds the lines, each is read by Tesseract in every script "
        "pack and the most confident reading kept, consistent across the image (ADR 0051); tesseract = "
        "one Tesseract pass over the whole image with every pack loaded at once",
        "engines": {},
    }
    engines = [e for e in args.engines.split(",") if e]
    read = read_all(samples, engines)
    for name in read["readings"]:
        document["engines"][name] = measure(
            samples,
            read["readings"][name],
            read["seconds"][name],
            read["failures"][name],
            read["provenance"][name],
            read["cpu_seconds"][name],
        )
    if args.loop:
        from bench.clue_loop import run_loop

        document["loop"] = run_loop(args.loop, seed=args.seed)
    else:  # bench.clue_loop adds the loop to this file; a run without --loop keeps the last one
        from bench._engine_common import RESULTS

        earlier = RESULTS / args.out
        if earlier.is_file():
            import json

            loop = json.loads(earlier.read_text(encoding="utf-8")).get("loop")
            if loop is not None:
                document["loop"] = {
                    **loop,
                    "note": "kept from an earlier run (its command above), not measured again with this "
                    "run's engine",
                }
    document["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result(args.out, document)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
