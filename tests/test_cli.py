"""The `surrogates` command as a user runs it: generate, train, evaluate, resume, demo, errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from operators.base import load_model
from surrogates.cli import main
from surrogates.data.common import split_samples
from surrogates.data.lorenz96 import open_lorenz96

GENERATE = ["generate", "lorenz96", "--n-samples", "10", "--n-steps", "200", "--save-every", "5",
            "--spinup-steps", "200", "--seed", "1"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "l96.nc"
    result = invoke(*GENERATE, "--out", path)
    assert result.exit_code == 0, result.output
    return path


def test_generate_writes_the_requested_dataset(data_file):
    ds = open_lorenz96(data_file)
    assert dict(ds.sizes) == {"sample": 10, "time": 41, "k": 36, "j": 10}
    assert json.loads(ds.attrs["config"])["seed"] == 1


def test_existing_output_is_refused_before_any_work(data_file):
    before = data_file.stat().st_mtime_ns
    result = invoke(*GENERATE, "--out", data_file)
    assert result.exit_code == 1 and "already exists" in result.output
    assert data_file.stat().st_mtime_ns == before


def test_bad_input_gives_a_one_line_error(tmp_path, data_file):
    result = invoke("generate", "lorenz96", "--dt", "-0.1", "--out", tmp_path / "x.nc")
    assert result.exit_code == 1 and "dt" in result.output
    assert not (tmp_path / "x.nc").exists()
    result = invoke("train", "fno", "--data", tmp_path / "missing.nc", "--out", tmp_path / "r")
    assert result.exit_code == 1 and "missing.nc" in result.output
    result = invoke("train", "fno", "--data", data_file, "--inputs", "W", "--out",
                    tmp_path / "r2")
    assert result.exit_code == 1 and "'W'" in result.output


def test_toml_config_is_used_and_flags_win(tmp_path):
    config = tmp_path / "gen.toml"
    config.write_text("n_samples = 3\nK = 8\nJ = 4\nn_steps = 20\nsave_every = 10\n"
                      "spinup_steps = 0\nseed = 5\n")
    result = invoke("generate", "lorenz96", "--config", config, "--K", "6",
                    "--out", tmp_path / "t.nc")
    assert result.exit_code == 0, result.output
    ds = open_lorenz96(tmp_path / "t.nc")
    assert dict(ds.sizes) == {"sample": 3, "time": 3, "k": 6, "j": 4}
    config.write_text("n_sample = 3\n")
    result = invoke("generate", "lorenz96", "--config", config, "--out", tmp_path / "u.nc")
    assert result.exit_code == 1 and "unknown keys ['n_sample']" in result.output


def test_train_then_evaluate_learns_the_closure(tmp_path, data_file):
    run = tmp_path / "run"
    result = invoke("train", "fno", "--data", data_file, "--out", run, "--epochs", "15",
                    "--batch-size", "32", "--lr", "3e-3", "--width", "16", "--modes", "12")
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", run)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    # The subgrid forcing is mostly a function of the local slow state (Wilks 2005): a learned
    # closure must explain most of its variance on held-out trajectories.
    assert metrics["overall"]["r2"] > 0.8, metrics
    for png in ("parity.png", "snapshot.png", "training_curves.png"):
        assert (run / "evaluation" / png).stat().st_size > 10_000
    result = invoke("train", "fno", "--data", data_file, "--out", run)
    assert result.exit_code == 1 and "--overwrite" in result.output


def test_resume_in_a_fresh_process_matches_an_uninterrupted_run(tmp_path, data_file):
    common = ["train", "fno", "--data", data_file, "--width", "8", "--layers", "2",
              "--modes", "8", "--batch-size", "64", "--seed", "3"]
    assert invoke(*common, "--epochs", "3", "--out", tmp_path / "straight").exit_code == 0
    assert invoke(*common, "--epochs", "3", "--scheduler", "none", "--out",
                  tmp_path / "other").exit_code == 0

    # First part: a run of 1 epoch with the 3-epoch schedule, by stopping it after epoch 0.
    first = invoke(*common, "--epochs", "3", "--patience", "0", "--out", tmp_path / "resumed")
    assert first.exit_code == 0, first.output
    command = [sys.executable, "-m", "surrogates.cli",
               *[str(a) for a in common], "--epochs", "3", "--resume", "--out",
               tmp_path / "resumed"]
    # Bitwise equality needs the same number of intra-op threads as this process (conftest).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr

    def weights(name):
        state = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)
        return state["epoch"], state["model"]["state_dict"]

    epoch_a, a = weights("straight")
    epoch_b, b = weights("resumed")
    assert epoch_a == epoch_b == 2
    assert all(torch.equal(a[k], b[k]) for k in a)
    _, c = weights("other")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_demo_quick_writes_a_report(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--quick", "--out", out)
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "relative L2" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_metrics"]["n_examples"] > 0
    # climate closure section: MNO and cubic coupled into the hybrid model, against no closure
    closure = summary["closure"]
    models = closure["models"]
    assert set(models) == {"MNO closure", "cubic polynomial", "no closure"}
    for label, row in models.items():
        assert f"| {label} |" in report
        assert 0.0 <= row["stable_fraction"] <= 1.0, (label, row)
        assert np.isfinite(row["seconds_per_mtu"]) and row["seconds_per_mtu"] > 0, (label, row)
        assert np.isfinite(row["cost_vs_resolved"]) and row["cost_vs_resolved"] > 0, (label, row)
    # coarse physics alone cannot blow up in one MTU: its scores must all be there
    base = models["no closure"]
    assert base["stable_fraction"] == 1.0 and base["offline_r2"] is None
    assert 0 < base["vpt_mean"] <= closure["hybrid_config"]["forecast_mtu"] + 1e-9, base
    assert 0 < base["hellinger"] <= 1 and np.isfinite(base["wasserstein"]), base
    # climate-emulation section: the ClimateBench table of both emulators, with total =
    # spatial + 5 x global
    climate = summary["climate"]["nrmse"]
    assert set(climate) == {"pattern-scaling", "climate-gp"}
    for table in climate.values():
        for s in table.values():
            assert abs(s["total"] - (s["spatial"] + 5 * s["global"])) < 1e-9
    assert "| PCA + GP | tas |" in report
    # airfoil MMGP section: every output scored with its uncertainty
    airfoil = summary["airfoil"]["metrics"]
    assert set(airfoil) == {"cl", "cd", "cp"}
    for scores in airfoil.values():
        assert 0.0 <= scores["coverage"] <= 1.0 and scores["crps"] > 0
    assert "| cp |" in report
    # offline R^2 on the test split, finite for both closures; the least-squares cubic has skill
    assert np.isfinite(models["MNO closure"]["offline_r2"])
    assert 0.5 < models["cubic polynomial"]["offline_r2"] <= 1, models["cubic polynomial"]
    hybrid = json.loads((out / "mno" / "evaluation" / "hybrid_metrics.json").read_text())
    assert set(hybrid["models"]) == {"mno", "cubic", "no closure"}
    for plot in ("hybrid_rmse.png", "hybrid_climate_pdf.png", "hybrid_autocorrelation.png"):
        assert (out / "mno" / "evaluation" / plot).stat().st_size > 0
        assert f"mno/evaluation/{plot}" in report
    timings = summary["timings"]
    for stage in ("generate_s", "train_s", "evaluate_s", "train_mno_s", "fit_cubic_s",
                  "hybrid_evaluate_s"):
        assert 0 <= timings[stage] <= timings["total_s"], (stage, timings)
    assert invoke("demo", "--quick", "--out", out).exit_code == 1


def test_polynomial_closure_matches_numpy_polyfit(tmp_path, data_file):
    run = tmp_path / "poly"
    result = invoke("train", "polynomial", "--data", data_file, "--out", run)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "run_config.json").read_text())
    ds = open_lorenz96(data_file)
    train = split_samples(ds.sizes["sample"], config["data"]["fractions"],
                          seed=config["data"]["split_seed"])["train"]
    x = ds["X"].isel(sample=train).values.ravel()
    y = ds["closure_target"].isel(sample=train).values.ravel()
    expected = np.polyfit(x, y, 3)[::-1]  # numpy gives the highest degree first
    np.testing.assert_allclose(config["train"]["coefficients"], expected, rtol=1e-3, atol=1e-4)
    assert invoke("evaluate", run, "--forecast-mtu", "0.5", "--climate-mtu", "0.5").exit_code == 0
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert metrics["overall"]["r2"] > 0.7, metrics


def test_closures_train_resume_and_evaluate_on_another_grid(tmp_path, data_file):
    mno, mlp = tmp_path / "mno", tmp_path / "mlp"
    common = ["--data", data_file, "--epochs", "4", "--batch-size", "64", "--lr", "3e-3"]
    assert invoke("train", "mno", *common, "--width", "16", "--modes", "12", "--out",
                  mno).exit_code == 0
    assert invoke("train", "local-mlp", *common, "--out", mlp).exit_code == 0
    model = load_model(mno / "model.pt")
    assert type(model).__name__ == "MNOClosure"
    stats = json.loads((mno / "run_config.json").read_text())["model_config"]
    ds = open_lorenz96(data_file)
    assert stats["input_std"] == pytest.approx(float(ds["X"].std()), rel=0.1)
    # Zero-shot on a ring twice as long: the closure is an operator on the periodic grid.
    k72 = tmp_path / "k72.nc"
    assert invoke("generate", "lorenz96", "--n-samples", "4", "--K", "72", "--n-steps", "100",
                  "--save-every", "10", "--spinup-steps", "200", "--out", k72).exit_code == 0
    for run in (mno, mlp):
        result = invoke("evaluate", run, "--data", k72, "--split", "all", "--out", run / "k72",
                        "--forecast-mtu", "0.5", "--climate-mtu", "0.5")
        assert result.exit_code == 0, result.output
        metrics = json.loads((run / "k72" / "metrics.json").read_text())
        assert metrics["overall"]["r2"] > 0.5, (run.name, metrics)
    resumed = invoke("train", "mno", *common[:-4], "--epochs", "5", "--batch-size", "64",
                     "--lr", "3e-3", "--width", "16", "--modes", "12", "--out", mno, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(json.loads((mno / "history.json").read_text())) == 5


def test_hybrid_evaluation_of_a_closure_beats_coarse_physics(tmp_path, data_file):
    run = tmp_path / "poly"
    assert invoke("train", "polynomial", "--data", data_file, "--out", run).exit_code == 0
    result = invoke("evaluate", run, "--split", "all", "--forecast-mtu", "1",
                    "--climate-mtu", "3")
    assert result.exit_code == 0, result.output
    hybrid = json.loads((run / "evaluation" / "hybrid_metrics.json").read_text())
    closure, coarse = hybrid["models"]["poly"], hybrid["models"]["no closure"]
    assert closure["stable_fraction"] == coarse["stable_fraction"] == 1.0
    # Measured: Hellinger 0.12 vs 0.18, mean VPT 1.0 (the whole horizon) vs 0.7 MTU.
    assert closure["climate"]["hellinger"] < coarse["climate"]["hellinger"]
    assert closure["vpt_mean"] > coarse["vpt_mean"]
    for png in ("hybrid_rmse.png", "hybrid_climate_pdf.png", "hybrid_autocorrelation.png"):
        assert (run / "evaluation" / png).stat().st_size > 10_000


def test_export_writes_an_onnx_closure_that_onnxruntime_runs(tmp_path, data_file):
    import onnxruntime

    run = tmp_path / "poly"
    assert invoke("train", "polynomial", "--data", data_file, "--out", run).exit_code == 0
    result = invoke("export", run)
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(run / "closure.onnx"))
    X = np.random.default_rng(0).normal(2.0, 4.0, size=(3, 40)).astype(np.float32)
    coefficients = json.loads((run / "run_config.json").read_text())["train"]["coefficients"]
    expected = sum(a * X.astype(np.float64) ** p for p, a in enumerate(coefficients))
    np.testing.assert_allclose(session.run(None, {"X": X})[0], expected, rtol=1e-4, atol=1e-4)
    sidecar = json.loads((run / "closure.onnx.json").read_text())
    assert sidecar["closure_class"] == "PolynomialClosure"
    again = invoke("export", run)
    assert again.exit_code == 1 and "--overwrite" in again.output
    fno_run = tmp_path / "fno"
    assert invoke("train", "fno", "--data", data_file, "--epochs", "1", "--width", "8",
                  "--out", fno_run).exit_code == 0
    refused = invoke("export", fno_run)
    assert refused.exit_code == 1 and "closures" in refused.output


def test_rk4_hybrid_with_a_ten_times_larger_step(tmp_path, data_file):
    run = tmp_path / "poly_rk4"
    assert invoke("train", "polynomial", "--data", data_file, "--targets", "subgrid_forcing",
                  "--out", run).exit_code == 0
    result = invoke("evaluate", run, "--split", "all", "--scheme", "rk4", "--dt-factor", "10",
                    "--forecast-mtu", "1", "--climate-mtu", "3")
    assert result.exit_code == 0, result.output
    hybrid = json.loads((run / "evaluation" / "hybrid_metrics.json").read_text())
    closure, coarse = hybrid["models"]["poly_rk4"], hybrid["models"]["no closure"]
    assert closure["stable_fraction"] == 1.0
    assert closure["climate"]["hellinger"] < coarse["climate"]["hellinger"]
    assert closure["vpt_mean"] > coarse["vpt_mean"]
    refused = invoke("evaluate", run, "--dt-factor", "3")
    assert refused.exit_code == 1 and "divisor" in refused.output


def test_operator_ensemble_of_mgno_runs_with_calibration(tmp_path):
    """`train mgno --members 2 --calibrate F` on Darcy data: an operator run (not a closure) whose
    evaluate scores the members' spread and whose predict writes u_std; the calibrated 90 %
    coverage recomputed from the predict file equals the one evaluate reported."""
    import scipy.stats
    import xarray as xr

    runner = CliRunner()
    data, run = tmp_path / "darcy.nc", tmp_path / "ens"
    assert runner.invoke(main, ["generate", "darcy", "--out", str(data), "--n-samples", "60",
                                "--n", "16"]).exit_code == 0
    result = runner.invoke(main, ["train", "mgno", "--data", str(data), "--out", str(run),
                                  "--epochs", "1", "--width", "4", "--layers", "1", "--levels",
                                  "2", "--members", "2", "--calibrate", "0.5"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "run_config.json").read_text())
    assert config["kind"] == "operator" and config["members"] == ["member-0", "member-1"]
    result = runner.invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "evaluation" / "metrics.json").read_text())["uq"]["u"]
    assert report["raw"]["form"] == "ensemble" and report["raw"]["n_members"] == 2
    result = runner.invoke(main, ["predict", str(run), "--split", "test", "--out",
                                  str(tmp_path / "p.nc")])
    assert result.exit_code == 0, result.output
    with xr.open_dataset(tmp_path / "p.nc") as ds:
        inside = (np.abs(ds["u_reference"] - ds["u"]) <= scipy.stats.norm.ppf(0.95) * ds["u_std"])
        assert float(inside.mean()) == pytest.approx(report["calibrated"]["coverage"]["0.9"],
                                                     abs=1e-3)
