"""Reliability suite: kill -9 during the commands that write, and hostile images through the import.

Two parts, both through the public CLI only (so they survive changes to the code inside):

**Kill trials.** Each trial runs one writing command in a child process, kills it with SIGKILL (at a
random moment, or at a named crash point: geodesk/_crashpoints.py), then checks the case:
``PRAGMA integrity_check`` is ``ok``; ``geodesk case verify`` passes (opening the case first settles
work the kill left half-done: geodesk/store/recovery.py); every stored original matches its SHA-256;
no stray or partial file is left (temp files of atomic writes, originals without a row, a partial
archive); every turn and every evidence item the killed command *reported done* before it died is
still there; no turn is left ``running``. Commands: ``evidence add``, ``locate`` (a session turn on
the tiny model), ``batch``, ``model install`` and ``case export``.

**Image corpus.** Every file of Pillow's own test-image corpus (``Tests/images`` of its source
distribution, fetched by ``tools/fetch_pillow_corpus.py`` into a cache outside git) and mutated
variants of valid JPEG/PNG/TIFF/WebP files go through ``geodesk evidence add``: no traceback, no file
slower than 60 s, peak memory of the import (parent and workers) under 2 GB, and exactly one
sentence for every rejected file.

    .venv/bin/python -m bench.reliability --trials 100 --mutants 3000      # full run
    .venv/bin/python -m bench.reliability --trials 10 --mutants 200 --no-corpus  # quick look
    .venv/bin/python -m bench.reliability --trials 100 --append --mutants 0 --no-corpus  # resume trials

Kill trial ``i`` runs scenario ``i mod 5`` and draws its kill moment from its own seed
(``seed*1000000+i``), so trials can run in chunks: ``--append`` keeps the trials already recorded,
runs the missing ones and saves after every trial.

The result goes to ``bench/results/reliability.json`` with the sizes it ran at.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "reliability.json"
CORPUS_CACHE = Path(os.environ.get("GEODESK_BENCH_CACHE", Path.home() / ".cache" / "geodesk-bench"))
SCENARIOS = ("import", "turn", "batch", "model-install", "export")
# Named crash points per scenario: the moments a random kill almost never hits.
CRASH_POINTS = {"import": ["import-commit"], "turn": ["turn-running"], "batch": ["turn-running"]}
PER_FILE_LIMIT_S = 60.0
MEMORY_LIMIT_BYTES = 2 * 2**30


# --- running geodesk -----------------------------------------------------------------------------------


def cli_env(workspace: Path, crash_at: str | None = None) -> dict[str, str]:
    env = {**os.environ, "GEODESK_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("GEODESK_CRASH_AT", None)
    if crash_at:
        env["GEODESK_CRASH_AT"] = crash_at
    return env


CLI = [sys.executable, "-c", "import sys; from geodesk.cli import main; sys.exit(main())"]


def geodesk(workspace: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], env=cli_env(workspace), capture_output=True, text=True,
                          timeout=timeout, check=False)


def geodesk_json(workspace: Path, *argv: str) -> Any:
    done = geodesk(workspace, *argv, "--json")
    if done.returncode not in (0, 2):
        raise RuntimeError(f"geodesk {' '.join(argv)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


@dataclass
class Killed:
    stdout: str
    returncode: int
    killed_after_s: float | None  # None: it finished (or crashed at its crash point) before the kill


def run_and_kill(workspace: Path, argv: Sequence[str], *, delay_s: float | None,
                 crash_at: str | None = None, timeout_s: float = 600) -> Killed:
    """Start ``geodesk argv``; SIGKILL it after ``delay_s`` (None: let it run or crash at its point)."""
    process = subprocess.Popen([*CLI, *argv], env=cli_env(workspace, crash_at), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(process.stdout.read() if process.stdout else ""))
    reader.start()
    killed_after: float | None = None
    try:
        process.wait(timeout=delay_s if delay_s is not None else timeout_s)
    except subprocess.TimeoutExpired:
        killed_after = delay_s
        os.killpg(process.pid, signal.SIGKILL)  # the command and every process it started
        process.wait()
    reader.join()
    return Killed("".join(out), process.returncode, killed_after)


# --- checking a case after a kill ---------------------------------------------------------------------


@dataclass
class TrialResult:
    scenario: str
    trial: int
    how: str  # "random 1.23 s", "crash point import-commit", "finished"
    corrupt: list[str] = field(default_factory=list)  # integrity, verify, hashes
    lost: list[str] = field(default_factory=list)  # reported done, now missing
    strays: list[str] = field(default_factory=list)  # partial or unexplained files


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_case(workspace: Path, case_id: str, result: TrialResult, *, exports: Path | None = None) -> None:
    case_dir = workspace / "cases" / case_id
    # Open through the CLI first: that is what runs crash recovery, as an analyst's next command would.
    verify = geodesk(workspace, "case", "verify", case_id, "--json")
    if verify.returncode != 0:
        result.corrupt.append(f"case verify: {(verify.stdout + verify.stderr).strip()[:300]}")
    with sqlite3.connect(case_dir / "case.db") as db:
        state = db.execute("PRAGMA integrity_check").fetchone()[0]
        if state != "ok":
            result.corrupt.append(f"integrity_check: {state}")
        rows = dict(db.execute("SELECT sha256, size_bytes FROM evidence").fetchall())
        running = db.execute("SELECT count(*) FROM turns WHERE status = 'running'").fetchone()[0]
    if running:
        result.corrupt.append(f"{running} turn(s) left 'running' after the case was reopened")
    for path in sorted((case_dir / "evidence").rglob("*")):
        if not path.is_file():
            continue
        sha = path.name.split(".", 1)[0]
        if sha not in rows:
            result.strays.append(f"original without a row: {path.relative_to(case_dir)}")
        elif _sha256(path) != sha:
            result.corrupt.append(f"original does not match its hash: {path.relative_to(case_dir)}")
    for path in case_dir.rglob("*.tmp"):
        result.strays.append(f"partial file: {path.relative_to(case_dir)}")
    if exports is not None:
        for path in exports.iterdir():
            if path.name.startswith(".") or path.suffix == ".tmp":
                result.strays.append(f"partial archive beside the output: {path.name}")


def check_reported(workspace: Path, case_id: str, killed: Killed, result: TrialResult) -> None:
    """What the killed command printed as done (its JSON, when it got that far) must still be there."""
    text = killed.stdout.strip()
    if not text:
        return
    try:
        document = json.loads(text.splitlines()[-1])
    except json.JSONDecodeError:
        return
    evidence = geodesk_json(workspace, "evidence", "list", case_id)
    stored = {e["sha256"] for e in evidence["evidence"]}
    for item in document.get("imported", []) if isinstance(document, dict) else []:
        if item["sha256"] not in stored:
            result.lost.append(f"evidence reported imported is gone: {item['sha256'][:12]}")
    session = document.get("session") if isinstance(document, dict) else None
    if isinstance(session, int):
        shown = geodesk_json(workspace, "session", "show", str(session))
        turns = {t["turn"]: t["status"] for t in shown["turns"]}
        if turns.get(document.get("turn")) not in ("done", "cancelled", "failed"):
            result.lost.append(f"turn reported done is not stored as done: session {session}")
    for item in document.get("sessions", []) if isinstance(document, dict) else []:
        session_id = item.get("session") if isinstance(item, dict) else item
        if isinstance(session_id, int):
            shown = geodesk_json(workspace, "session", "show", str(session_id))
            if not any(t["status"] == "done" for t in shown["turns"]):
                result.lost.append(f"batch session reported located has no done turn: {session_id}")


# --- the scenarios ------------------------------------------------------------------------------------


@dataclass
class Fixture:
    workspace: Path
    case_id: str
    images: list[Path]
    tiny_model: Path
    sha: str  # one imported evidence item, for turns


def make_images(folder: Path, count: int, seed: int) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        path = folder / f"photo-{seed}-{i:03d}.jpg"
        Image.new("RGB", (1200, 900), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(
            path, quality=90)
        paths.append(path)
    return paths


def make_fixture(base: Path, seed: int, tiny_model: Path) -> Fixture:
    workspace = base / f"ws-{seed}"
    case_id = geodesk_json(workspace, "case", "new", f"Trial {seed}")["id"]
    images = make_images(base / f"in-{seed}", 12, seed)
    added = geodesk_json(workspace, "evidence", "add", case_id, str(images[0]))
    return Fixture(workspace, case_id, images[1:], tiny_model, added["imported"][0]["sha256"])


def scenario_argv(scenario: str, fx: Fixture, out: Path) -> list[str]:
    model = ["--model", str(fx.tiny_model), "--max-new-tokens", "4"]
    if scenario == "import":
        return ["evidence", "add", fx.case_id, *map(str, fx.images), "--workers", "2", "--json"]
    if scenario == "turn":
        return ["locate", fx.case_id, fx.sha[:12], *model, "--json"]
    if scenario == "batch":
        return ["batch", fx.case_id, *model, "--json"]
    if scenario == "model-install":
        return ["model", "install", str(fx.tiny_model), "--name", "trial", "--version", str(time.time_ns()),
                "--json"]
    if scenario == "export":
        return ["case", "export", fx.case_id, str(out / "case.zip"), "--json"]
    raise ValueError(scenario)


def check_models(fx: Fixture, result: TrialResult) -> None:
    listing = geodesk(fx.workspace, "model", "list", "--json")
    if listing.returncode != 0:
        result.corrupt.append(f"model list: {listing.stderr.strip()[:300]}")
        return
    for model in json.loads(listing.stdout).get("models", []):
        if model.get("installed", True):
            ref = str(model["ref"])
            done = geodesk(fx.workspace, "model", "verify", ref, "--json")
            if done.returncode != 0:
                result.corrupt.append(f"model verify {ref}: {(done.stdout + done.stderr).strip()[:300]}")


def run_trial(base: Path, scenario: str, trial: int, tiny_model: Path, rng: random.Random,
              max_delay_s: dict[str, float]) -> TrialResult:
    fx = make_fixture(base, trial, tiny_model)
    out = base / f"out-{trial}"
    out.mkdir()
    points = CRASH_POINTS.get(scenario, [])
    if points and rng.random() < 0.3:
        point = rng.choice(points)
        killed = run_and_kill(fx.workspace, scenario_argv(scenario, fx, out), delay_s=None, crash_at=point)
        how = f"crash point {point}"
    else:
        delay = rng.uniform(0.0, max_delay_s[scenario])
        killed = run_and_kill(fx.workspace, scenario_argv(scenario, fx, out), delay_s=delay)
        how = f"random {delay:.2f} s" if killed.killed_after_s is not None else "finished before the kill"
    result = TrialResult(scenario, trial, how)
    check_case(fx.workspace, fx.case_id, result, exports=out if scenario == "export" else None)
    check_reported(fx.workspace, fx.case_id, killed, result)
    if scenario == "model-install":
        check_models(fx, result)
    return result


def timed_full_run(base: Path, scenario: str, tiny_model: Path) -> float:
    """How long the command takes when not killed: random kill moments are drawn from [0, this]."""
    fx = make_fixture(base, 10_000 + SCENARIOS.index(scenario), tiny_model)
    out = base / f"timing-{scenario}"
    out.mkdir()
    started = time.perf_counter()
    run_and_kill(fx.workspace, scenario_argv(scenario, fx, out), delay_s=None)
    return time.perf_counter() - started


def trial_seed(seed: int, trial: int) -> int:
    """Each trial draws from its own stream, so any trial can be rerun alone and a run can be split
    into chunks (``--append``) that draw exactly what one long run would."""
    return seed * 1_000_000 + trial


def summarise_trials(runs: Sequence[dict[str, Any]], seed: int, durations: dict[str, float],
                     chunks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``kill_trials`` part of the result: the counts over every recorded trial, and each trial."""
    ordered = sorted(runs, key=lambda r: int(r["trial"]))
    return {
        "trials": len(ordered),
        "seed": seed,
        "full_run_s": {s: round(d, 2) for s, d in durations.items()},
        "corrupt_cases": sum(1 for r in ordered if r["corrupt"]),
        "lost_committed_work": sum(1 for r in ordered if r["lost"]),
        "trials_with_strays": sum(1 for r in ordered if r["strays"]),
        "by_scenario": {s: sum(1 for r in ordered if r["scenario"] == s) for s in SCENARIOS},
        # A random moment past the command's end kills nothing: those trials check a finished command.
        "killed": {"at a random moment": sum(1 for r in ordered if r["how"].startswith("random")),
                   "at a crash point": sum(1 for r in ordered if r["how"].startswith("crash point")),
                   "finished before the kill": sum(1 for r in ordered if r["how"].startswith("finished"))},
        "problems": [r for r in ordered if r["corrupt"] or r["lost"] or r["strays"]],
        "chunks": list(chunks),
        "runs": ordered,
    }


def kill_trials(trials: int, tiny_model: Path, seed: int = 0, *,
                previous: dict[str, Any] | None = None,
                save: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run trials ``0 .. trials-1``, skipping those ``previous`` (an earlier result) already holds.

    ``save`` gets the summary after every trial, so a run stopped half-way keeps what it measured and
    the next ``--append`` run carries on from there.
    """
    kept = previous if previous and previous.get("seed") == seed and "runs" in previous else None
    runs: list[dict[str, Any]] = list(kept["runs"]) if kept else []
    chunks: list[dict[str, Any]] = list(kept.get("chunks", [])) if kept else []
    done = {int(r["trial"]) for r in runs}
    todo = [t for t in range(trials) if t not in done]
    started = time.perf_counter()
    chunk: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "trials": [],
             "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="geodesk-kill-") as tmp:
        base = Path(tmp)
        # The kill moments of every chunk are drawn from the same ranges: reuse the first chunk's timing.
        if kept and kept.get("full_run_s"):
            durations = {s: float(d) for s, d in kept["full_run_s"].items()}
        elif todo:
            durations = {s: timed_full_run(base, s, tiny_model) for s in SCENARIOS}
        else:
            durations = {}
        if todo:
            chunks.append(chunk)
        for trial in todo:
            scenario = SCENARIOS[trial % len(SCENARIOS)]
            trial_started = time.perf_counter()
            result = run_trial(base, scenario, trial, tiny_model, random.Random(trial_seed(seed, trial)),
                               durations)
            runs.append({**asdict(result), "seed": trial_seed(seed, trial),
                         "seconds": round(time.perf_counter() - trial_started, 1)})
            if not (result.corrupt or result.lost or result.strays):
                # A clean trial's folders are not needed any more; a failing one's stay for the run.
                for name in (f"ws-{trial}", f"in-{trial}", f"out-{trial}"):
                    shutil.rmtree(base / name, ignore_errors=True)
            chunk["trials"] = [min(chunk["trials"] or [trial]), trial]
            chunk["seconds"] = round(time.perf_counter() - started, 1)
            chunk["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            if save is not None:
                save(summarise_trials(runs, seed, durations, chunks))
    return summarise_trials(runs, seed, durations, chunks)


# --- the image corpus ---------------------------------------------------------------------------------


def _valid_seeds() -> dict[str, bytes]:
    from PIL import Image

    rng = random.Random(1)
    base = Image.new("RGB", (320, 240))
    base.putdata([(rng.randrange(256), (x * 3) % 256, (x // 7) % 256) for x in range(320 * 240)])
    exif = base.getexif()
    exif[0x010F] = "Canon"
    seeds = {}
    for fmt, ext, params in (("JPEG", "jpg", {"quality": 85, "exif": exif}), ("PNG", "png", {}),
                             ("TIFF", "tif", {"compression": "tiff_lzw"}), ("WEBP", "webp", {"quality": 80})):
        buffer = io.BytesIO()
        base.save(buffer, fmt, **params)
        seeds[ext] = buffer.getvalue()
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutated variant: flipped bytes, a cut, a splice or a repeated chunk (a fuzzer's basic moves)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        move = rng.randrange(5)
        if move == 0:  # flip a few bytes, often in the header where parsers decide sizes
            for _ in range(rng.randint(1, 16)):
                pos = rng.randrange(min(len(out), 512)) if rng.random() < 0.6 else rng.randrange(len(out))
                out[pos] = rng.randrange(256)
        elif move == 1:  # truncate
            del out[rng.randrange(8, len(out)):]
        elif move == 2:  # write a big number where a size or offset may be
            pos = rng.randrange(max(1, min(len(out) - 4, 400)))
            out[pos:pos + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00",
                                            b"\x00\x01\x00\x00"])
        elif move == 3:  # duplicate a chunk
            start = rng.randrange(len(out))
            out[start:start] = out[start:start + rng.randint(1, 4096)]
        else:  # delete a chunk
            start = rng.randrange(len(out))
            del out[start:start + rng.randint(1, 512)]
        if len(out) < 8:
            out = bytearray(data[:8])
    return bytes(out)


def write_mutants(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seeds = _valid_seeds()
    kinds = sorted(seeds)
    paths = []
    for i in range(count):
        ext = kinds[i % len(kinds)]
        path = folder / f"mutant-{i:05d}.{ext}"
        path.write_bytes(mutate(seeds[ext], rng))
        paths.append(path)
    return paths


def _peak_rss_of_tree(pid: int, stop: threading.Event, peak: list[int]) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
        except psutil.NoSuchProcess:
            break
        peak[0] = max(peak[0], total)
        time.sleep(0.05)


IMPORT_WITH_TIMINGS = r"""
import json, sys, time
from pathlib import Path
from geodesk.evidence.pipeline import ImportOptions, collect_sources, run_import
from geodesk.store import Workspace
ws = Workspace(Path(sys.argv[1])); case = ws.create_case("Corpus")
paths = [line for line in Path(sys.argv[2]).read_text().splitlines() if line]
sources, refused = collect_sources(paths)
last = [time.perf_counter()]; slowest = [0.0, ""]
def progress(done, total, path):
    now = time.perf_counter()
    if now - last[0] > slowest[0]:
        slowest[:] = [now - last[0], path or ""]
    last[0] = now
with ws.open_case(case) as store:
    report = run_import(store, sources, options=ImportOptions(workers=int(sys.argv[3])), progress=progress)
print(json.dumps({"imported": len(report.imported), "duplicates": len(report.duplicates),
                  "damaged": sum(1 for e in report.imported if e.metadata.get("damaged")),
                  "oversize": sum(1 for e in report.imported if e.metadata.get("oversize")),
                  "errors": [e.error for e in report.errors] + [e.error for e in refused],
                  "notes": report.notes, "slowest_s": slowest[0], "slowest": slowest[1]}))
"""


def import_files(files: Sequence[Path], workers: int, chunk: int = 250) -> dict[str, Any]:
    """Import ``files`` in chunks, each in a fresh process (as `evidence add` would), watching memory."""
    totals: dict[str, Any] = {"files": len(files), "imported": 0, "duplicates": 0, "damaged": 0,
                              "oversize": 0, "rejected": 0,
                              "tracebacks": 0, "hangs_over_60s": 0, "peak_rss_bytes": 0, "slowest_s": 0.0,
                              "slowest_file": "", "not_one_sentence": [], "crashed_runs": 0,
                              "generic_sentences": 0}
    with tempfile.TemporaryDirectory(prefix="geodesk-corpus-") as tmp:
        for start in range(0, len(files), chunk):
            part = files[start:start + chunk]
            listing = Path(tmp) / f"files-{start}.txt"
            listing.write_text("\n".join(map(str, part)))
            process = subprocess.Popen(
                [sys.executable, "-c", IMPORT_WITH_TIMINGS, str(Path(tmp) / f"ws-{start}"), str(listing),
                 str(workers)],
                env=cli_env(Path(tmp) / f"ws-{start}"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            stop, peak = threading.Event(), [0]
            watcher = threading.Thread(target=_peak_rss_of_tree, args=(process.pid, stop, peak))
            watcher.start()
            try:
                out, err = process.communicate(timeout=PER_FILE_LIMIT_S * len(part))
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
                totals["hangs_over_60s"] += 1
            stop.set()
            watcher.join()
            totals["peak_rss_bytes"] = max(totals["peak_rss_bytes"], peak[0])
            totals["tracebacks"] += err.count("Traceback")
            try:
                doc = json.loads(out.strip().splitlines()[-1])
            except (json.JSONDecodeError, IndexError):
                totals["crashed_runs"] += 1
                continue
            totals["imported"] += doc["imported"]
            totals["duplicates"] += doc["duplicates"]  # byte-identical files within the set
            totals["damaged"] += doc["damaged"]
            totals["oversize"] += doc["oversize"]
            totals["rejected"] += len(doc["errors"])
            if doc["slowest_s"] > totals["slowest_s"]:
                totals["slowest_s"] = round(doc["slowest_s"], 3)
                totals["slowest_file"] = Path(doc["slowest"]).name
            if doc["slowest_s"] > PER_FILE_LIMIT_S:
                totals["hangs_over_60s"] += 1
            for error in doc["errors"]:
                if "\n" in error or not error.strip() or "Traceback" in error or len(error) > 600:
                    totals["not_one_sentence"].append(error[:200])
                if error.startswith("is damaged or not a supported image:"):
                    totals["generic_sentences"] += 1
    totals["peak_rss_mb"] = round(totals.pop("peak_rss_bytes") / 2**20, 1)
    return totals


def pillow_corpus() -> list[Path]:
    folder = CORPUS_CACHE / "pillow-tests-images"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- main -----------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import PIL

    return {"python": platform.python_version(), "pillow": PIL.__version__}


def main(argv: Sequence[str] | None = None, *, report: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--mutants", type=int, default=3000)
    parser.add_argument("--corpus-limit", type=int, default=None, help="import only the first N corpus files")
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--merge", action="store_true", help="keep the other parts already in --out")
    parser.add_argument("--append", action="store_true",
                        help="keep the kill trials already in --out and run only the missing ones up to "
                             "--trials (implies --merge); the result is saved after every trial")
    parser.add_argument("--seed", type=int, default=0, help="kill trial i draws from seed*1000000+i")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    keep = (args.merge or args.append) and args.out.exists()
    document: dict[str, Any] = json.loads(args.out.read_text()) if keep else {}
    document.update({"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                     "versions": _versions()})
    if args.trials:
        with tempfile.TemporaryDirectory(prefix="geodesk-tiny-") as tmp:
            tiny = Path(tmp) / "tiny"
            geodesk(Path(tmp) / "ws", "model", "create-tiny", str(tiny))
            previous = document.get("kill_trials") if args.append else None

            def save(summary: dict[str, Any]) -> None:
                document["kill_trials"] = summary
                _write(args.out, document)

            document["kill_trials"] = kill_trials(args.trials, tiny, args.seed, previous=previous, save=save)
            summary = {k: v for k, v in document["kill_trials"].items() if k not in ("problems", "runs")}
            report(f"kill trials: {json.dumps(summary)}")
    if args.mutants:
        with tempfile.TemporaryDirectory(prefix="geodesk-mutants-") as tmp:
            document["mutants"] = import_files(write_mutants(Path(tmp), args.mutants), args.workers)
            report(f"mutants: {json.dumps(document['mutants'])[:600]}")
    if not args.no_corpus:
        files = pillow_corpus()
        if not files:
            document["pillow_corpus"] = {"skipped": "run tools/fetch_pillow_corpus.py first"}
        else:
            subset = files[: args.corpus_limit] if args.corpus_limit else files
            document["pillow_corpus"] = {"available": len(files), **import_files(subset, args.workers)}
            report(f"pillow corpus: {json.dumps(document['pillow_corpus'])[:600]}")
    document["targets"] = {"kill": "0 corrupt cases, 0 lost committed work",
                           "images": "0 tracebacks, 0 hangs over 60 s, peak memory < 2 GB, one sentence each"}
    parts = (("kill", args.trials), ("mutants", args.mutants), ("corpus", not args.no_corpus))
    ran = "+".join(name for name, on in parts if on)
    trials = document.get("kill_trials", {}).get("trials", 0)
    if trials and trials < 100:
        document["size_note"] = (
            f"kill trials ran at {trials} ({trials // len(SCENARIOS)} per command), not the target of 100: "
            "a trial takes 10-60 s on 2 shared cores (a turn starts Python, torch and the tiny model); "
            "run `python -m bench.reliability --trials 100` where time allows")
    else:
        document.pop("size_note", None)
    if not isinstance(document.get("seconds"), dict):
        document["seconds"] = {}
    document["seconds"][ran] = round(time.perf_counter() - started, 1)
    if args.trials and document["kill_trials"].get("chunks"):  # an --append run adds to earlier chunks
        document["seconds"]["kill_trials_all_chunks"] = round(
            sum(c.get("seconds", 0.0) for c in document["kill_trials"]["chunks"]), 1)
    _write(args.out, document)
    return 0


def _write(path: Path, document: dict[str, Any]) -> None:
    from geodesk.atomic import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, document)  # a run killed mid-write keeps the last whole result


if __name__ == "__main__":
    raise SystemExit(main())
