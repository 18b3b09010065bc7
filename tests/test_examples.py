"""README's worked examples, run as a user runs them, against the accuracy band stated next to
each (issue 20: a default that needs tuning before it works is a defect).

Physics-informed Gaussians (README, "Worked example: physics-informed Gaussians"):

* the defaults of ``surrogates solve pig`` are the best settings of
  ``benchmarks/pig_vs_pinn.py`` (checked row by row against its results JSON, instantly);
* ``surrogates solve pig --pde helmholtz`` at the defaults except the documented small size
  ``--collocation 512`` (half the residual points; measured 4.0e-3 in 25 s of training on a
  shared core, against 3.0e-3 in 40-60 s at full size) reaches relative L2 < 1e-2, the README's
  band, in under a minute. The earlier defaults (1000 steps, 100 Gaussians, boundary weight 1,
  constant learning rate) gave 0.43, 1000 steps at the new defaults 5.7e-2: both fail it.

The full-size runs (every problem and model at its defaults, as README writes them) are
``@pytest.mark.slow``: ``pytest -m slow tests/test_examples.py`` (about 12 min on one core).
Each band is about 1.5x the figure README quotes (1e-2 for PIG on Helmholtz, README's own
band; wall times on a shared core vary by +-30 %, the errors repeat to round-off).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from surrogates.cli import main
from surrogates.models.pinn.defaults import DEFAULTS, VARIANTS, default_settings

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "pig_vs_pinn.json"
#: benchmark row -> (problem, problem arguments) of surrogates.models.pinn.defaults
ROWS = {"Helmholtz (4, 1)": ("helmholtz", {}), "Helmholtz (10, 10)": ("helmholtz",
                                                                    {"a1": 10, "a2": 10}),
        "Klein-Gordon": ("klein_gordon", {}), "Allen-Cahn": ("allen_cahn", {}),
        "flow mixing": ("flow_mixing", {})}


def _solve(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["solve", "pig", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def test_pig_defaults_are_the_benchmarks_best_settings():
    results = json.loads(BENCHMARK.read_text())
    assert {r["problem"] for r in results["rows"]} == set(ROWS)
    for row in results["rows"]:
        problem, kwargs = ROWS[row["problem"]]
        for model in ("pig", "pinn"):
            s = default_settings(problem, model, kwargs)
            lr = row[f"{model}_lr"]
            decay = row[f"{model}_lr_decay"]
            assert s.train["n_steps"] == row["steps"], (row["problem"], model)
            assert s.train["n_collocation"] == results["collocation"]
            assert s.train["boundary_weight"] == row[f"{model}_boundary_weight"]
            assert s.train["lr"] == lr
            if decay == 1.0:
                assert s.train["lr_final"] is None, (row["problem"], model)
            else:
                assert s.train["lr_final"] == pytest.approx(lr * decay, rel=1e-12)
            for key, value in row["train"].items():  # causal weights
                assert s.train[key] == value, (row["problem"], model, key)
            assert "causal_chunks" in s.train or not row["train"]
            assert s.n_grid == results["cases"][row["problem"]]["n_grid"]
            if model == "pig":
                assert s.model == row["pig_settings"], row["problem"]
            else:
                assert list(s.model["hidden"]) == results["pinn_hidden"]
    assert len(DEFAULTS) + len(VARIANTS) == 2 * len(ROWS)


def test_pig_helmholtz_at_the_defaults_small_size(tmp_path):
    """README's PIG command at the documented small size: relative L2 < 1e-2 in under a minute
    of one core.

    The time bound is on the CPU time of this process (all threads, compilation and evaluation
    included), not on the wall clock: on the shared 2-core machine other jobs stretched the
    wall time of the same run from 25 s to 60 s, while its CPU time stayed about 30 s.
    """
    started = time.process_time()
    summary = _solve(tmp_path, "--pde", "helmholtz", "--collocation", "512")
    cpu_s = time.process_time() - started
    assert summary["config"]["n_steps"] == 2000 and summary["config"]["lr_final"] == 1e-4
    assert summary["config"]["model"]["n_gaussians"] == 400
    assert summary["relative_l2"] < 1e-2, summary["relative_l2"]  # measured 4.0e-3
    assert cpu_s < 60.0, (cpu_s, summary["wall_time_s"])


# ------------------------------------------------------------------------- full size (slow)

#: (README command arguments, band on the relative L2 error, README's figure)
FULL_SIZE = {
    "pig helmholtz": (("--pde", "helmholtz"), 1e-2, 3.04e-3),
    "pinn helmholtz": (("--pde", "helmholtz", "--model", "pinn"), 0.1, 6.56e-2),
    "pig helmholtz (10, 10)": (("--pde", "helmholtz", "--a1", "10", "--a2", "10"), 0.13,
                               8.74e-2),
    "pig klein-gordon": (("--pde", "klein-gordon"), 0.15, 0.105),
    "pig allen-cahn": (("--pde", "allen-cahn"), 0.11, 7.31e-2),
    "pig flow-mixing": (("--pde", "flow-mixing"), 0.038, 2.52e-2),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FULL_SIZE))
def test_pig_examples_at_full_size(tmp_path, name):
    args, band, figure = FULL_SIZE[name]
    summary = _solve(tmp_path, *args)
    assert summary["relative_l2"] < band, (name, summary["relative_l2"], figure)
