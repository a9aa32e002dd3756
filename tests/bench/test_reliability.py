"""The reliability suite in its reduced CI form (the full run is bench/reliability.py).

Kill -9 at the critical moment of an import and at random moments of an export and a model install,
then the same checks as the benchmark; and a small generated set of mutated JPEG/PNG/TIFF/WebP files
through the import: no traceback, one sentence per rejected file.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.reliability import import_files, run_trial, write_mutants


@pytest.mark.parametrize(
    ("scenario", "max_delay_s", "seed"),
    [("import", 0.0, 1), ("export", 2.5, 2), ("model-install", 3.0, 3)],
)
def test_kill_trial_leaves_a_consistent_case(
    tmp_path: Path, tiny_model_dir: Path, scenario: str, max_delay_s: float, seed: int
) -> None:
    rng = random.Random(seed)
    if scenario == "import":
        rng.random = lambda: 0.0  # type: ignore[method-assign]  # always take the named crash point
    result = run_trial(tmp_path, scenario, seed, tiny_model_dir, rng, {scenario: max_delay_s})
    assert result.corrupt == [] and result.lost == [], result
    if scenario != "export":  # a killed export's partial archive is the archive code's to clean up
        assert result.strays == [], result


def test_mutated_images_get_one_sentence_each(tmp_path: Path) -> None:
    files = write_mutants(tmp_path / "mutants", 48, seed=5)
    totals = import_files(files, workers=1, chunk=48)
    assert totals["crashed_runs"] == 0 and totals["tracebacks"] == 0
    assert totals["imported"] + totals["rejected"] == 48
    assert totals["not_one_sentence"] == []
    assert totals["rejected"] > 0 and totals["damaged"] > 0  # the set really holds broken files


def test_kill_trials_run_in_chunks_draw_what_one_run_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.reliability as reliability

    def draw(base: Path, scenario: str, trial: int, tiny_model: Path, rng: random.Random,
             max_delay_s: dict[str, float]) -> reliability.TrialResult:
        delay = rng.uniform(0, max_delay_s[scenario])
        return reliability.TrialResult(scenario, trial, f"random {delay:.6f} s")

    monkeypatch.setattr(reliability, "run_trial", draw)
    monkeypatch.setattr(reliability, "timed_full_run", lambda base, scenario, tiny: 10.0)
    saved: list[int] = []
    whole = reliability.kill_trials(7, tmp_path, seed=3)
    first = reliability.kill_trials(3, tmp_path, seed=3, save=lambda s: saved.append(s["trials"]))
    rest = reliability.kill_trials(7, tmp_path, seed=3, previous=first)
    assert saved == [1, 2, 3]  # the result is written after every trial
    assert [r["trial"] for r in rest["runs"]] == list(range(7)) and len(rest["chunks"]) == 2
    assert [r["how"] for r in rest["runs"]] == [r["how"] for r in whole["runs"]]
    assert [r["seed"] for r in rest["runs"]] == [3_000_000 + i for i in range(7)]
    assert rest["by_scenario"] == {"import": 2, "turn": 2, "batch": 1, "model-install": 1, "export": 1}
    # Another seed is another run: nothing of it is kept.
    assert reliability.kill_trials(2, tmp_path, seed=4, previous=rest)["trials"] == 2
