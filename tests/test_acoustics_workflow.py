"""Room-acoustics workflow (surrogates.runs.acoustics): generated data, DeepONet runs, evaluation,
deep ensembles and per-time split-conformal calibration."""

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
from surrogates.data.acoustics import open_acoustic, trunk_grid
from surrogates.data.acoustics_generate import WaveDataConfig, generate_wave_dataset
from surrogates.runs.acoustics import (
    DeepONetDataSpec,
    evaluate_deeponet_run,
    predict_deeponet_run,
    train_deeponet,
    train_deeponet_ensemble,
)
from surrogates.solvers.wave import simulate
from surrogates.training import TrainConfig

SMALL = {"size": [1.0, 1.0], "spacing": 0.1, "n_sources": 12, "n_receivers": 2,
         "source_margin": 0.3, "t_max": 2e-3, "n_times": 6, "pulse_width": 0.15}


@pytest.fixture(scope="module")
def wave_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("acoustics") / "wave2d.nc"
    return generate_wave_dataset(WaveDataConfig(**SMALL), path, progress=False)


def test_generated_dataset_is_the_solver_output(wave_file):
    ds = open_acoustic(wave_file)
    config = WaveDataConfig(**SMALL)
    assert ds["pressure"].shape == (12, 6, 11, 11)
    assert ds.attrs["pulse_width"] == 0.15 and json.loads(ds.attrs["config"])["n_sources"] == 12
    sources, receivers = config.positions()
    np.testing.assert_array_equal(ds["source_x"].values, sources[:, 0])
    assert np.all((sources >= 0.3) & (sources <= 0.7))
    again = simulate(config.room(), sources[3], config.times(), pulse_width=0.15, order=4,
                     receivers=receivers)
    np.testing.assert_allclose(ds["pressure"].values[3], again.field[0], atol=1e-6)
    np.testing.assert_allclose(ds["receiver_pressure"].values[3], again.receivers[0],
                               atol=1e-12)
    with pytest.raises(FileExistsError):
        generate_wave_dataset(config, wave_file)


def test_deeponet_run_learns_and_evaluates_whole_fields(wave_file, tmp_path):
    spec = DeepONetDataSpec(str(wave_file), sensors_per_axis=4, points_per_sample=200)
    small = {"branch_hidden": [32, 32], "trunk_hidden": [32, 32], "n_basis": 20}
    result = train_deeponet(spec, tmp_path / "run", model_config=small,
                            train_config=TrainConfig(epochs=60, batch_size=2, lr=3e-3,
                                                     loss="mse", show_progress=False))
    ds = open_acoustic(wave_file)
    validation = ds["pressure"].values[spec.split(ds)["validation"]]
    # it learns: validation MSE under half that of predicting silence (mean p^2); 0.25-0.29
    # of it for training seeds 0-2
    assert result.history[-1]["validation_loss"] < 0.5 * np.mean(validation**2)
    metrics = evaluate_deeponet_run(tmp_path / "run", timing=False)
    # the metrics are those of whole-field predictions recomputed here
    test = spec.split(ds)["test"]
    model = load_model(tmp_path / "run" / "model.pt")
    branch = spec.torch(ds, test, seed=0).branch
    with torch.no_grad():
        pred = model.forward_field(branch, torch.as_tensor(trunk_grid(ds),
                                                            dtype=torch.float32)).numpy()
    truth = ds["pressure"].values[test].reshape(len(test), -1)
    rmse = np.sqrt(np.mean((pred - truth) ** 2, axis=1)).mean()
    assert metrics["field"]["rmse_pa"] == pytest.approx(rmse, rel=1e-5)
    assert metrics["field"]["rel_l2"] < 0.7  # 0.56-0.59 for seeds 0-2
    assert len(metrics["receivers"]["rmse_pa"]) == 2
    assert (tmp_path / "run" / "evaluation" / "fields.png").is_file()
    with pytest.raises(FileExistsError):
        train_deeponet(spec, tmp_path / "run")


def test_cli_generate_train_evaluate(tmp_path):
    runner = CliRunner()
    data = tmp_path / "w.nc"
    out = runner.invoke(main, ["generate", "wave2d", "--out", str(data), "--size", "1", "1",
                               "--spacing", "0.1", "--n-sources", "10", "--source-margin", "0.3",
                               "--t-max", "0.002", "--n-times", "5", "--pulse-width", "0.15",
                               "--order", "2"])
    assert out.exit_code == 0, out.output
    assert "10 sources, 5 frames on 11 x 11 nodes" in out.output
    run = tmp_path / "run"
    out = runner.invoke(main, ["train", "deeponet", str(data), "--out", str(run), "--epochs", "2",
                               "--width", "16", "--depth", "1", "--n-basis", "8",
                               "--branch", "coordinates", "--points-per-sample", "50"])
    assert out.exit_code == 0, out.output
    config = json.loads((run / "run_config.json").read_text())
    assert config["model_config"]["branch_in"] == 2
    assert config["model_config"]["trunk_hidden"] == [16]
    out = runner.invoke(main, ["evaluate", str(run)])
    assert out.exit_code == 0, out.output
    assert "field RMSE" in out.output and "solver" in out.output
    timing = json.loads((run / "evaluation" / "metrics.json").read_text())["timing"]
    assert timing["speedup"] > 0 and timing["solver_s_per_field"] > 0
    out = runner.invoke(main, ["generate", "wave3d", "--out", str(tmp_path / "w3.nc"),
                               "--spacing", "0.1", "--n-sources", "2", "--n-times", "3",
                               "--t-max", "0.001", "--source-margin", "0.3",
                               "--n-receivers", "0"])
    assert out.exit_code == 0, out.output
    assert open_acoustic(tmp_path / "w3.nc")["pressure"].shape == (2, 3, 11, 11, 11)
    bad = runner.invoke(main, ["generate", "wave2d", "--out", str(tmp_path / "x.nc"),
                               "--source-margin", "5"])
    assert bad.exit_code != 0 and "leaves no room" in bad.output


# ------------------------------------------------------------------ ensembles and calibration
_TINY = {"branch_hidden": [16], "trunk_hidden": [16], "n_basis": 8}


@pytest.fixture(scope="module")
def wave_file_40(tmp_path_factory):
    """40 sources: 32 train, 4 validation, 4 test (fractions 0.8 / 0.1 / 0.1)."""
    path = tmp_path_factory.mktemp("acoustics40") / "wave2d.nc"
    return generate_wave_dataset(WaveDataConfig(**{**SMALL, "n_sources": 40}), path,
                                 progress=False)


@pytest.fixture(scope="module")
def calibrated_ensemble(wave_file_40, tmp_path_factory):
    """A 2-member DeepONet ensemble (2 epochs) calibrated on 60 % of the training sources."""
    run = tmp_path_factory.mktemp("deeponet") / "run"
    spec = DeepONetDataSpec(str(wave_file_40), sensors_per_axis=3, points_per_sample=100,
                            calibration=0.6)
    train_deeponet_ensemble(spec, run, n_members=2, model_config=_TINY,
                            train_config=TrainConfig(epochs=2, batch_size=4, lr=3e-3,
                                                     loss="mse", show_progress=False,
                                                     device="cpu"))
    return spec, run


def test_calibration_sources_come_from_the_training_split(wave_file_40):
    ds = open_acoustic(wave_file_40)
    before = DeepONetDataSpec(str(wave_file_40)).split(ds)
    split = DeepONetDataSpec(str(wave_file_40), calibration=0.6).split(ds)
    assert len(split["calibration"]) == 19 and len(split["train"]) == 13
    for name in ("validation", "test"):
        np.testing.assert_array_equal(split[name], before[name])
        assert set(split["calibration"]).isdisjoint(split[name])
    assert set(split["calibration"]).isdisjoint(split["train"])
    np.testing.assert_array_equal(np.union1d(split["train"], split["calibration"]),
                                  before["train"])
    # 0.5 of 32 gives 16 calibration sources, too few for the 95 % interval (19)
    with pytest.raises(ValueError, match="too few for alpha=0.05.*need at least 19"):
        DeepONetDataSpec(str(wave_file_40), calibration=0.5).split(ds)


def test_too_small_calibration_split_is_refused_before_training(wave_file, tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["train", "deeponet", str(wave_file), "--out", str(tmp_path / "r"),
                               "--calibrate", "0.5", "--epochs", "1"])
    assert out.exit_code == 1 and "need at least 19" in out.output
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="n_members >= 2"):
        train_deeponet_ensemble(DeepONetDataSpec(str(wave_file)), tmp_path / "r", n_members=1)


def test_ensemble_members_differ_and_predict_their_mean(calibrated_ensemble, tmp_path):
    spec, run = calibrated_ensemble
    config = json.loads((run / "run_config.json").read_text())
    assert config["kind"] == "deeponet_acoustics"
    assert config["members"] == ["member-0", "member-1"]
    members = [load_model(run / m / "model.pt") for m in config["members"]]
    assert [json.loads((run / m / "run_config.json").read_text())["train"]["seed"]
            for m in config["members"]] == [0, 1]
    weights = [torch.cat([p.flatten() for p in m.parameters()]) for m in members]
    assert not torch.equal(*weights)
    ds = open_acoustic(spec.path)
    test = spec.split(ds)["test"]
    branch = spec.torch(ds, test, seed=0).branch
    with torch.no_grad():
        own = torch.stack([m.forward_field(branch, torch.as_tensor(
            trunk_grid(ds), dtype=torch.float32)) for m in members]).numpy()
    predict_deeponet_run(run, tmp_path / "fields.nc", device="cpu")
    with xr.open_dataset(tmp_path / "fields.nc") as pred:
        assert pred.attrs["n_members"] == 2 and pred.attrs["calibrated"] == 1
        np.testing.assert_allclose(pred["pressure"].values.reshape(len(test), -1),
                                   own.mean(axis=0), rtol=1e-5, atol=1e-7)


def test_calibrated_coverage_recomputed_from_the_predict_file(calibrated_ensemble, tmp_path):
    spec, run = calibrated_ensemble
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["n_calibration"] == 19
    assert len(calibration["levels"]["0.9"]["marginal"]["scale"]) == 6  # one per output time
    metrics = evaluate_deeponet_run(run, timing=False, device="cpu")
    report = metrics["uq"]["pressure"]
    assert metrics["n_members"] == 2 and report["raw"]["form"] == "ensemble"
    assert report["calibrated"]["n_calibration"] == 19
    predict_deeponet_run(run, tmp_path / "fields.nc", device="cpu")
    with xr.open_dataset(tmp_path / "fields.nc") as pred:
        p, ref, std = (pred[v].values for v in ("pressure", "pressure_reference",
                                                 "pressure_std"))
    # pressure_std = s q90_t / z_0.95, so the conformal interval at level L is
    # pressure +- z_0.95 (qL_t / q90_t) pressure_std, with one scale q_t per output time
    q90 = np.array(calibration["levels"]["0.9"]["marginal"]["scale"])
    for level in ("0.9", "0.95"):
        ratio = np.array(calibration["levels"][level]["marginal"]["scale"]) / q90
        inside = np.abs(ref - p) <= norm.ppf(0.95) * ratio[None, :, None, None] * std
        assert inside.mean() == pytest.approx(report["calibrated"]["coverage"][level], abs=1e-6)


def test_identical_members_have_zero_spread(calibrated_ensemble, tmp_path):
    _, run = calibrated_ensemble
    same = tmp_path / "same"
    shutil.copytree(run, same, ignore=shutil.ignore_patterns("calibration.json", "evaluation"))
    shutil.copy(same / "member-0" / "model.pt", same / "member-1" / "model.pt")
    report = evaluate_deeponet_run(same, timing=False, device="cpu")["uq"]["pressure"]
    assert report["raw"]["spread_skill"] == 0.0 and "calibrated" not in report
    predict_deeponet_run(same, tmp_path / "same.nc", device="cpu")
    with xr.open_dataset(tmp_path / "same.nc") as pred:
        assert (pred["pressure_std"].values == 0).all()


def test_calibrated_run_evaluates_a_dataset_too_small_to_calibrate(calibrated_ensemble,
                                                                    wave_file, tmp_path):
    """Another dataset's test split does not depend on the calibration draw, which its 10
    training sources could not give; the per-time intervals still apply."""
    _, run = calibrated_ensemble
    metrics = evaluate_deeponet_run(run, wave_file, timing=False, device="cpu",
                                    out_dir=tmp_path / "ev")
    assert metrics["n_samples"] == 1
    assert set(metrics["uq"]["pressure"]["calibrated"]["coverage"]) == {"0.9", "0.95"}
