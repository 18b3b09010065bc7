"""Rollout runs on PDEBench files (surrogates.runs.pde1d): split, CLI training, evaluation,
deep ensembles and per-lead split-conformal calibration."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner
from scipy.stats import norm

from operators import load_model
from surrogates.cli import main
from surrogates.data.common import trajectory_pairs
from surrogates.data.pdebench_generate import PDE1DGenerateConfig, generate_pdebench
from surrogates.metrics.pde import nrmse
from surrogates.runs.pde1d import (
    PDEBenchDataSpec,
    build_stepper,
    evaluate_rollout_run,
    parameter_names,
    predict_rollout_run,
    train_rollout,
    train_rollout_ensemble,
)
from surrogates.training import TrainConfig


@pytest.fixture(scope="module")
def advection_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pdebench")
    config = PDE1DGenerateConfig(pde="advection", values=(0.5, 2.0), n_samples=20, N=32,
                                 n_frames=9, t_end=0.4, seed=0)
    train = generate_pdebench(config, folder / "train", progress=False)
    held = generate_pdebench(PDE1DGenerateConfig(
        pde="advection", values=(1.0,), n_samples=4, N=32, n_frames=9, t_end=0.4, seed=1),
        folder / "held", progress=False)
    return [str(p) for p in train], [str(p) for p in held]


def test_split_is_pdebench_per_file(advection_files):
    spec = PDEBenchDataSpec(paths=advection_files[0], test_fraction=0.1, validation_fraction=0.2)
    ds = spec.open()
    split = spec.split(ds)
    # 20 samples per file: 2 test, 4 validation, 14 train, in file order.
    np.testing.assert_array_equal(split["test"], [0, 1, 20, 21])
    np.testing.assert_array_equal(split["validation"], [2, 3, 4, 5, 22, 23, 24, 25])
    assert len(split["train"]) == 28 and set(split["train"]).isdisjoint(split["test"])
    assert parameter_names(ds) == ["beta"]
    with pytest.raises(ValueError, match="leave training samples"):
        PDEBenchDataSpec(paths=advection_files[0], test_fraction=0.5, validation_fraction=0.5)


def test_trajectory_pairs_layout(advection_files):
    ds = PDEBenchDataSpec(paths=advection_files[0]).open()
    pairs = trajectory_pairs(ds, [0, 25], parameters=["beta"])
    assert pairs.inputs.shape == (2, 2, 9, 32) and pairs.targets.shape == (2, 1, 9, 32)
    np.testing.assert_array_equal(pairs.targets[:, 0].numpy(), ds["u"].values[[0, 25]])
    np.testing.assert_array_equal(pairs.inputs[:, 1, 3, 7].numpy(), [0.5, 2.0])
    with pytest.raises(ValueError, match="scalar per sample"):
        trajectory_pairs(ds, [0], parameters=["u"])


def test_train_and_evaluate_from_the_cli(advection_files, tmp_path):
    train_files, held_files = advection_files
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "rollout", *train_files, "--out", str(run),
                                  "--model", "cape-unet", "--epochs", "2", "--batch-size", "4",
                                  "--device", "cpu"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "run_config.json").read_text())
    assert config["model_config"]["step_config"]["width"] == 64  # resolved defaults recorded
    assert config["model_config"]["warmup_epochs"] == 2
    assert len(json.loads((run / "history.json").read_text())) == 2

    result = runner.invoke(main, ["evaluate", str(run), "--data", ",".join(held_files),
                                  "--split", "all", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert list(metrics["by_parameter"]) == ["beta=1"]
    assert (tmp_path / "ev" / "rollouts.png").stat().st_size > 0

    # The reported nRMSE is PDEBench's nRMSE of a full rollout from frame 0, recomputed here.
    model = load_model(run / "model.pt").eval()
    pairs = trajectory_pairs(PDEBenchDataSpec(paths=held_files).open(), None,
                             parameters=["beta"])
    with torch.no_grad():
        rollout = model(pairs.inputs)
    expected = nrmse(rollout[:, 0], pairs.targets[:, 0], t_start=1).value
    assert metrics["overall"]["nrmse"] == pytest.approx(expected, rel=1e-6)
    assert len(metrics["overall"]["nrmse_per_time"]) == 8

    # Resuming with another data set is refused; an existing run is not overwritten.
    result = runner.invoke(main, ["train", "rollout", *train_files, "--out", str(run)])
    assert result.exit_code == 1 and "exists" in result.output
    result = runner.invoke(main, ["train", "rollout", train_files[0], "--out", str(run),
                                  "--model", "cape-unet", "--resume", "--epochs", "3"])
    assert result.exit_code == 1 and "cannot resume" in result.output


def test_build_stepper_errors():
    with pytest.raises(ValueError, match="model must be one of"):
        build_stepper("resnet", 1)
    stepper = build_stepper("fno", 1, context=2)
    assert stepper.step.in_channels == 2 and stepper.warmup_epochs == 0


# ------------------------------------------------------------------ ensembles and calibration
_SMALL_FNO = {"n_modes": [8], "hidden_channels": 8, "n_layers": 2}


@pytest.fixture(scope="module")
def calibration_files(tmp_path_factory):
    """Two files of 30 samples: per file 3 test, 3 validation, 24 training trajectories."""
    config = PDE1DGenerateConfig(pde="advection", values=(0.5, 2.0), n_samples=30, N=32,
                                 n_frames=9, t_end=0.4, seed=2)
    return [str(p) for p in generate_pdebench(config, tmp_path_factory.mktemp("cal"),
                                              progress=False)]


@pytest.fixture(scope="module")
def calibrated_ensemble(calibration_files, tmp_path_factory):
    """A 2-member FNO ensemble (1 epoch) calibrated on half of each file's training samples,
    trained from the command line; its evaluation and predictions of the test split."""
    folder = tmp_path_factory.mktemp("ensemble")
    run = folder / "run"
    config = folder / "small.toml"
    config.write_text("[model]\nn_modes = [8]\nhidden_channels = 8\nn_layers = 2\n")
    runner = CliRunner()
    result = runner.invoke(main, ["train", "rollout", *calibration_files, "--out", str(run),
                                  "--model", "fno", "--config", str(config), "--members", "2",
                                  "--calibrate", "0.5", "--epochs", "1", "--batch-size", "8",
                                  "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "ensemble of 2 (seeds 0..1)" in result.output
    result = runner.invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    assert "after conformal calibration on 24 examples" in result.output
    assert "calibrated 90 % coverage by lead" in result.output
    result = runner.invoke(main, ["predict", str(run), "--out", str(folder / "rollouts.nc")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    return run, metrics, folder / "rollouts.nc"


def test_calibration_trajectories_come_from_each_files_training_samples(calibration_files):
    plain = PDEBenchDataSpec(paths=calibration_files)
    spec = PDEBenchDataSpec(paths=calibration_files, calibration=0.5)
    ds = spec.open()
    before, split = plain.split(ds), spec.split(ds)
    assert len(split["calibration"]) == 24 and len(split["train"]) == 24
    for name in ("test", "validation"):  # untouched, and never drawn for calibration
        np.testing.assert_array_equal(split[name], before[name])
        assert set(split["calibration"]).isdisjoint(split[name])
    assert set(split["calibration"]).isdisjoint(split["train"])
    np.testing.assert_array_equal(np.sort(np.concatenate([split["train"],
                                                          split["calibration"]])),
                                  np.sort(before["train"]))
    # half of every file's 24 training samples
    files = ds["file_index"].values[split["calibration"]]
    assert np.bincount(files).tolist() == [12, 12]


def test_calibration_split_too_small_is_refused(advection_files, tmp_path):
    # 16 training samples per file, 10 % of each: 2 + 2 = 4 < 19 for the 95 % interval
    spec = PDEBenchDataSpec(paths=advection_files[0], calibration=0.1)
    with pytest.raises(ValueError, match=r"holds out 4 training trajectories.*need at least 19"):
        train_rollout(spec, tmp_path / "run", model="fno", model_config=_SMALL_FNO,
                      train_config=TrainConfig(epochs=1, show_progress=False, device="cpu"))
    assert not (tmp_path / "run").exists()  # refused before a folder is made
    result = CliRunner().invoke(main, ["train", "rollout", *advection_files[0], "--out",
                                       str(tmp_path / "run"), "--calibrate", "0.1"])
    assert result.exit_code == 1 and "need at least 19" in result.output
    with pytest.raises(ValueError, match="n_members >= 2"):
        train_rollout_ensemble(spec, tmp_path / "run", n_members=1)


def test_ensemble_members_differ_and_predict_their_mean(calibrated_ensemble,
                                                         calibration_files):
    run, metrics, rollouts = calibrated_ensemble
    config = json.loads((run / "run_config.json").read_text())
    assert config["kind"] == "pde_rollout" and config["members"] == ["member-0", "member-1"]
    seeds = [json.loads((run / m / "run_config.json").read_text())["train"]["seed"]
             for m in config["members"]]
    assert seeds == [0, 1]
    members = [load_model(run / m / "model.pt").eval() for m in config["members"]]
    weights = [torch.cat([p.flatten() for p in m.parameters()]) for m in members]
    assert not torch.equal(*weights)
    # the predicted rollout is the mean of the members' own rollouts of the test samples
    spec = PDEBenchDataSpec(paths=calibration_files)
    ds = spec.open()
    pairs = trajectory_pairs(ds, spec.split(ds)["test"], parameters=["beta"])
    with torch.no_grad():
        own = torch.stack([m(pairs.inputs)[:, 0] for m in members]).numpy()
    assert np.abs(own[0] - own[1])[:, 1:].min() > 0  # members differ at every predicted point
    with xr.open_dataset(rollouts) as pred:
        np.testing.assert_allclose(pred["u"].values, own.mean(axis=0), rtol=1e-5, atol=1e-6)
        assert pred.attrs["n_members"] == 2 and pred.attrs["calibrated"] == 1
    assert metrics["n_members"] == 2
    assert metrics["uq"]["u"]["raw"]["form"] == "ensemble"


def test_calibrated_coverage_recomputed_from_the_predict_file(calibrated_ensemble):
    run, metrics, rollouts = calibrated_ensemble
    report = metrics["uq"]["u"]
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["n_calibration"] == 24
    scales = calibration["levels"]["0.9"]["marginal"]["scale"]
    assert len(scales) == 8  # one conformal scale per predicted frame (9 frames, 1 given)
    with xr.open_dataset(rollouts) as pred:
        t0 = pred.attrs["context_frames"]
        assert t0 == 1 and (pred["u_std"].values[:, :t0] == 0).all()  # the given frame
        u, ref, std = (pred[v].values[:, t0:] for v in ("u", "u_reference", "u_std"))
    inside = np.abs(ref - u) <= norm.ppf(0.95) * std
    assert inside.mean() == pytest.approx(report["calibrated"]["coverage"]["0.9"], abs=1e-6)
    by_lead = report["calibrated"]["by_group"]["0.9"]
    assert by_lead["group"] == list(range(8))
    np.testing.assert_allclose(inside.mean(axis=(0, 2)), by_lead["coverage"], atol=1e-6)
    # spread and error against lead, and their correlation across lead, from the same file
    lead = report["by_lead"]
    rmse = np.sqrt(np.mean((u - ref) ** 2, axis=(0, 2)))
    spread = np.sqrt(np.mean(std ** 2, axis=(0, 2)))
    np.testing.assert_allclose(lead["rmse"], rmse, rtol=1e-5)
    np.testing.assert_allclose(lead["calibrated_spread"], spread, rtol=1e-5)
    assert lead["calibrated_spread_rmse_correlation"] == pytest.approx(
        np.corrcoef(spread, rmse)[0, 1], abs=1e-5)
    assert len(lead["spread"]) == 8 and -1 <= lead["spread_rmse_correlation"] <= 1


def test_identical_members_have_zero_spread(calibrated_ensemble, tmp_path):
    run, _, _ = calibrated_ensemble
    same = tmp_path / "same"
    shutil.copytree(run, same, ignore=shutil.ignore_patterns("calibration.json", "evaluation"))
    shutil.copy(same / "member-0" / "model.pt", same / "member-1" / "model.pt")
    metrics = evaluate_rollout_run(same, device="cpu")
    lead = metrics["uq"]["u"]["by_lead"]
    assert metrics["uq"]["u"]["raw"]["spread_skill"] == 0.0
    assert lead["spread"] == [0.0] * 8 and lead["spread_rmse_correlation"] is None
    predict_rollout_run(same, tmp_path / "same.nc", device="cpu")
    with xr.open_dataset(tmp_path / "same.nc") as pred:
        assert (pred["u_std"].values == 0).all()


def test_calibrated_run_evaluates_files_too_small_to_calibrate(calibrated_ensemble, tmp_path):
    """Held-out files are split as trained, but a single sample cannot give a calibration
    draw: split 'all' does not need one, and the per-lead intervals still apply."""
    run, _, _ = calibrated_ensemble
    one = generate_pdebench(PDE1DGenerateConfig(pde="advection", values=(1.0,), n_samples=1,
                                                N=32, n_frames=9, t_end=0.4, seed=3),
                            tmp_path, progress=False)
    metrics = evaluate_rollout_run(run, [str(p) for p in one], split="all",
                                   out_dir=tmp_path / "ev", device="cpu")
    assert list(metrics["by_parameter"]) == ["beta=1"]
    assert metrics["uq"]["u"]["calibrated"]["by_group"]["0.9"]["n_points"] == [32] * 8
