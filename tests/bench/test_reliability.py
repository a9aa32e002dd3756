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
