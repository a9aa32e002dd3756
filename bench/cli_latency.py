"""How long the quick command-line answers take, against ``geodesk --version`` in the same run.

Quick answers are the ones that need no model: ``--help``, ``geo lookup``, ``geo reverse``, listing an
empty workspace, and the errors that say no model or case is there. Target: each under 1.5 s of wall
time on the 2-core reference machine. Each command runs as a fresh process (what an analyst types),
repetitions interleaved, medians reported, with the machine's load average beside them (a shared
machine's timings are only comparable when its load is). ``geo lookup`` answers from the name index
and ``geo reverse`` from the prepared borders, both kept in the cache folder (ADR 0046, 0049): the run
starts with a fresh cache, times ``geo prepare`` (which ``make install`` runs) on its own, and times
the rest as an analyst meets them, with the cache in place.

    .venv/bin/python -m bench.cli_latency [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._engine_common import machine, median, write_result

TARGET_S = 1.5


def commands(workspace: Path) -> dict[str, list[str]]:
    ws = ["--workspace", str(workspace)]
    return {
        "--version (baseline)": ["--version"],
        "--help": ["--help"],
        "locate --help": ["locate", "--help"],
        "geo lookup Bergen": ["geo", "lookup", "Bergen"],
        "geo reverse 48.8584 2.2945": ["geo", "reverse", "48.8584", "2.2945"],
        "case list (empty workspace)": [*ws, "case", "list"],
        "locate: no such case": [*ws, "locate", "nocase", "abc"],
        "model list (none installed)": [*ws, "model", "list"],
    }


def run_once(argv: list[str], cache: Path) -> tuple[float, int]:
    start = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GEODESK_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-m", "geodesk", *argv], capture_output=True, check=False, env=env)
    return time.perf_counter() - start, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="geodesk-cli-bench-") as scratch:
        table = commands(Path(scratch) / "ws")
        # A fresh cache, filled by `geo prepare` as `make install` does (ADR 0046, 0049).
        cache = Path(scratch) / "cache"
        times: dict[str, list[float]] = {name: [] for name in table}
        codes: dict[str, int] = {}
        load_before = os.getloadavg()
        first_lookup_s, first_code = run_once(["geo", "prepare"], cache)
        for _ in range(args.repeats):
            for name, command in table.items():  # interleaved: load drifts affect every command alike
                seconds, code = run_once(command, cache)
                times[name].append(seconds)
                codes[name] = code
        load_after = os.getloadavg()
    baseline = median(times["--version (baseline)"])
    rows: dict[str, Any] = {}
    for name, values in times.items():
        m = median(values)
        rows[name] = {"median_s": round(m, 3), "min_s": round(min(values), 3), "exit_code": codes[name],
                      "ratio_to_version": round(m / baseline, 2), "under_target": m < TARGET_S}
    document = {
        "benchmark": "cli_latency",
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "repeats": args.repeats,
        "target_s": TARGET_S,
        "baseline": "geodesk --version in the same run",
        "geo_prepare_on_an_empty_cache": {"seconds": round(first_lookup_s, 3),
                                                 "exit_code": first_code},
        "commands": rows,
        "all_under_target": all(r["under_target"] for r in rows.values()),
    }
    path = write_result("cli_latency.json", document)
    width = max(len(n) for n in rows)
    for name, row in rows.items():
        mark = "ok" if row["under_target"] else "SLOW"
        print(f"{name:<{width}}  {row['median_s']:6.2f} s  ×{row['ratio_to_version']:<5}  {mark}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
