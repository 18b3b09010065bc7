"""Rollout runs on PDEBench files (surrogates.runs.pde1d): split, CLI training, evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from operators import load_model
from surrogates.cli import main
from surrogates.data.common import trajectory_pairs
from surrogates.data.pdebench_generate import PDE1DGenerateConfig, generate_pdebench
from surrogates.metrics.pde import nrmse
from surrogates.runs.pde1d import PDEBenchDataSpec, build_stepper, parameter_names


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
