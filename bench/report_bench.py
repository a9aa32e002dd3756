"""Report time and memory for a 200-image case, against `case export` of the same case in the same run.

The case: N JPEGs (1600×1200, EXIF GPS) imported, each with a session of two turns (a first answer and
a +QA hint turn, stored records as a finished session leaves them), an accepted clue with a region and
a finding. Measured as fresh processes (what an analyst runs): `geodesk report CASE OUT.html`,
`geodesk report CASE OUT.pdf` and the baseline `geodesk case export CASE OUT.zip`, repetitions
interleaved; peak RSS of each child process. Target: the HTML report under 30 s on two cores.

    .venv/bin/python -m bench.report_bench [--n 200] [--repeats 2]
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

TARGET_S = 30.0


def build_case(root: Path, n: int) -> tuple[Path, str]:
    import random

    from PIL import Image

    from geodesk.domain import (
        Clue,
        ClueSource,
        ClueStatus,
        Finding,
        FindingStatus,
        Hint,
        HintKind,
        ModelIdentity,
        Prediction,
        Region,
        Session,
        SessionMode,
        Turn,
        TurnStatus,
    )
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into
    from geodesk.store import Workspace
    from tests.evidence.fixtures import exif_bytes, gps_ifd

    rng = random.Random(5)
    images = root / "images"
    images.mkdir(parents=True)
    paths = []
    for i in range(n):
        lat, lon = rng.uniform(-50, 60), rng.uniform(-120, 140)
        path = images / f"photo_{i:04d}.jpg"
        Image.effect_noise((1600, 1200), 40).convert("RGB").save(
            path, quality=85, exif=exif_bytes(gps=gps_ifd(lat, lon))
        )
        paths.append(path)
    ws = Workspace(root / "ws")
    case = ws.create_case("Report benchmark")
    model = ModelIdentity("bench-model", "1", "0" * 64, None)
    with ws.open_case(case) as store:
        import_into(store, [str(p) for p in paths], options=ImportOptions(workers=2), locate=None)
        for e in store.evidence.list():
            assert e.gps is not None
            session = store.sessions.add(
                Session(None, e.sha256, SessionMode.DIRECT, model, "hf", {"seed": 1}, "gaga-1")
            )
            for index, (dlat, hint) in enumerate(
                ((2.0, ()), (0.1, (Hint(HintKind.QA, "Script?", "Latin"),)))
            ):
                p = Prediction(
                    country="Somewhere",
                    city="Town",
                    lat=e.gps.lat + dlat,
                    lon=e.gps.lon,
                    valid=True,
                    reasoning="the road signs and the vegetation",
                )
                turn = store.turns.add(
                    Turn(
                        None,
                        session.id or 0,
                        index,
                        "prompt",
                        "{}",
                        Prediction(),
                        hint,
                        TurnStatus.RUNNING,
                        "gaga-1",
                    )
                )
                store.turns.update(
                    Turn(turn.id, session.id or 0, index, "prompt", "{}", p, hint, TurnStatus.DONE, "gaga-1")
                )
            clue = store.clues.add(
                Clue(None, e.sha256, "sign", "Main St", ClueSource.ANALYST, region=Region(100, 100, 600, 400))
            )
            store.clues.update_status(clue.id or 0, ClueStatus.ACCEPTED)
            store.findings.save(
                Finding(None, e.sha256, e.gps.lat, e.gps.lon, 1.5, FindingStatus.PROBABLE, "ok")
            )
    return ws.path, case.id


# A fresh parent per measurement, so RUSAGE_CHILDREN's peak is that one command's peak RSS.
_WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], capture_output=True).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)"
)


def timed(argv: list[str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in bytes, exit code) of ``geodesk ARGV`` in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "geodesk", *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    seconds = time.perf_counter() - start
    peak_kb, code = (int(x) for x in done.stdout.split()[-2:])
    return seconds, peak_kb * 1024, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="geodesk-report-bench-") as scratch:
        root = Path(scratch)
        t0 = time.perf_counter()
        ws, case_id = build_case(root, args.n)
        build_s = time.perf_counter() - t0
        runs: dict[str, list[float]] = {"case export (baseline)": [], "report html": [], "report pdf": []}
        peaks: dict[str, int] = {}
        sizes: dict[str, int] = {}
        codes: dict[str, int] = {}
        for r in range(args.repeats):
            for name, out in (
                ("case export (baseline)", root / f"case{r}.zip"),
                ("report html", root / f"r{r}.html"),
                ("report pdf", root / f"r{r}.pdf"),
            ):
                command = [
                    "--workspace",
                    str(ws),
                    *(
                        ["case", "export", case_id, str(out)]
                        if name.startswith("case")
                        else ["report", case_id, str(out)]
                    ),
                ]
                seconds, peak, code = timed(command)
                runs[name].append(seconds)
                peaks[name] = max(peaks.get(name, 0), peak)
                codes[name] = code
                sizes[name] = out.stat().st_size if out.exists() else 0
    baseline = median(runs["case export (baseline)"])
    rows: dict[str, Any] = {
        name: {
            "median_s": round(median(v), 2),
            "min_s": round(min(v), 2),
            "ratio_to_baseline": round(median(v) / baseline, 2),
            "peak_rss_mb_upper_bound": round(peaks[name] / 2**20),
            "output_mb": round(sizes[name] / 2**20, 1),
            "exit_code": codes[name],
        }
        for name, v in runs.items()
    }
    document = {
        "benchmark": "report_bench",
        "machine": machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "n_images": args.n,
        "case": "1600×1200 JPEGs with GPS; one session of 2 turns, one accepted clue, one finding each",
        "build_case_s": round(build_s, 1),
        "repeats": args.repeats,
        "target": f"report html under {TARGET_S:.0f} s",
        "baseline": "geodesk case export of the same case, same run",
        "runs": rows,
        "html_under_target": rows["report html"]["median_s"] < TARGET_S,
    }
    path = write_result("report.json", document)
    for name, row in rows.items():
        print(
            f"{name:<24} {row['median_s']:7.2f} s  ×{row['ratio_to_baseline']:<5} "
            f"≤{row['peak_rss_mb_upper_bound']} MB  {row['output_mb']} MB out"
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
