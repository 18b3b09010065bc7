"""ClimateBench emulators: pattern scaling, GP, FNO ensemble, run folders and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner

from surrogates.cli import climatebench as cli_climate
from surrogates.data.climatebench import (
    global_mean,
    open_experiment,
    open_split,
)
from surrogates.data.climatebench_synthetic import (
    SyntheticClimateBenchConfig,
    generate_synthetic,
    response_patterns,
)
from surrogates.metrics.climatebench import nrmse_scores
from surrogates.models.climatebench import (
    ClimateGP,
    ClimateGPConfig,
    PatternScaling,
    window_inputs,
)
from surrogates.runs.climatebench import RUN_KIND, climatology, ensemble_uq_scores, load_emulator


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """Default toy physics with internal variability, small grid."""
    folder = tmp_path_factory.mktemp("noisy")
    generate_synthetic(folder, SyntheticClimateBenchConfig(n_lat=6, n_lon=8, members=2,
                                                           start_year=1990, seed=3))
    return folder


@pytest.fixture(scope="module")
def noisy_split(noisy):
    return open_split(noisy)


def test_pattern_scaling_recovers_the_generators_patterns(tmp_path):
    # Without internal variability and local aerosol effects every output is exactly
    # p_v(x) T(t): the per-cell slopes must equal the generator's patterns.
    config = SyntheticClimateBenchConfig(n_lat=6, n_lon=8, members=1, start_year=1990,
                                         variability=0.0, local_aerosol=0.0)
    split = open_split(generate_synthetic(tmp_path, config))
    model = PatternScaling().fit(split.train)
    c = model.coef_
    patterns = response_patterns(c["lat"], c["lon"])
    for i, name in enumerate(["tas", "diurnal_temperature_range", "pr", "pr90"]):
        np.testing.assert_allclose(c["slope"][i], patterns[name], atol=1e-8)
        np.testing.assert_allclose(c["intercept"][i], 0.0, atol=1e-8)
    # Step 1 is the least-squares line of global tas on cumulative CO2 over the training years.
    co2 = np.concatenate([ds["CO2"].values for ds in split.train.values()])
    tas = np.concatenate([global_mean(ds["tas"].mean("member").values, ds["lat"].values)
                          for ds in split.train.values()])
    b, a = np.polyfit(co2, tas, 1)
    assert float(c["a"]) == pytest.approx(a) and float(c["b"]) == pytest.approx(b)
    # Prediction needs the forcers only (never the test experiment's temperature).
    inputs = open_experiment(tmp_path, "ssp245", outputs=False)
    assert "tas" not in inputs
    pred = model.predict(inputs)
    expected = (a + b * inputs["CO2"].values)[:, None, None] * patterns["tas"]
    np.testing.assert_allclose(pred["tas"].values, expected, rtol=1e-6)


def test_pattern_scaling_save_load(noisy_split, tmp_path):
    model = PatternScaling().fit(noisy_split.train)
    model.save(tmp_path)
    loaded = PatternScaling.load(tmp_path)
    inputs = noisy_split.test["ssp245"]
    np.testing.assert_array_equal(model.predict(inputs)["pr"].values,
                                  loaded.predict(inputs)["pr"].values)


def test_gp_beats_climatology_and_round_trips(noisy_split, tmp_path):
    config = ClimateGPConfig(n_aerosol_pcs=3, n_output_pcs=3, iterations=60, train_stride=3)
    gp = ClimateGP(config).fit(noisy_split.train)
    truth = noisy_split.test["ssp245"]
    pred, std = gp.predict(truth, return_std=True)
    gp_scores = nrmse_scores(truth, pred)
    clim_scores = nrmse_scores(truth, climatology(noisy_split.train, truth))
    for var in ("tas", "pr", "pr90"):
        assert gp_scores[var]["total"] < 0.5 * clim_scores[var]["total"], var
    assert gp_scores["tas"]["total"] < 0.5
    assert np.all(std["tas"].values > 0)
    gp.save(tmp_path)
    loaded = ClimateGP.load(tmp_path, {"n_aerosol_pcs": 3, "n_output_pcs": 3})
    np.testing.assert_allclose(loaded.predict(truth)["tas"].values, pred["tas"].values,
                               rtol=1e-8, atol=1e-10)


def test_ensemble_scores_by_hand():
    members = np.array([[0.0] * 4, [1.0] * 4, [2.0] * 4])
    obs = np.array([0.05, 1.0, 1.95, 1.9])
    # 90% interval of members {0, 1, 2}: quantiles 0.05 and 0.95 -> [0.1, 1.9]
    scores = ensemble_uq_scores(members, obs, level=0.9)
    assert scores["coverage"] == pytest.approx(0.5)
    # fair CRPS at y = 1: mean |x - y| = 2/3, minus sum |xi - xj| / (2 m (m - 1)) = 8 / 12
    one = ensemble_uq_scores(members[:, :1], np.array([1.0]))
    assert one["crps"] == pytest.approx(2 / 3 - 8 / 12)


def test_window_inputs_layout():
    co2, ch4 = np.arange(4.0), 10 + np.arange(4.0)
    maps = np.arange(4.0)[:, None, None, None] * np.ones((4, 2, 2, 3))
    maps[:, 1] *= -1
    x = window_inputs(co2, ch4, maps, window=3)
    assert x.shape == (4, 8, 2, 3)
    np.testing.assert_array_equal(x[3, :3, 0, 0], [3, 2, 1])  # SO2 at t, t-1, t-2
    np.testing.assert_array_equal(x[1, 3:6, 0, 0], [-1, 0, 0])  # BC, edge-padded
    assert x[2, 6, 1, 2] == 2 and x[2, 7, 0, 0] == 12


def test_cli_round_trip(tmp_path):
    from surrogates.cli import main

    runner = CliRunner()
    assert cli_climate.FAMILY.kinds == (RUN_KIND,)
    data = tmp_path / "data"
    result = runner.invoke(main, ["generate", "climatebench-synthetic", "--out", str(data),
                                  "--n-lat", "6", "--n-lon", "8", "--members", "2",
                                  "--start-year", "2000", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (data / "outputs_ssp245.nc").is_file() and "synthetic" in result.output.lower()
    runs = {}
    for name, extra in [("pattern-scaling", []),
                        ("climate-gp", ["--iterations", "20", "--train-stride", "4",
                                        "--n-output-pcs", "2", "--n-aerosol-pcs", "2"]),
                        ("climate-fno", ["--members", "3", "--window", "2", "--modes", "4",
                                         "4", "--width", "8", "--layers", "1", "--epochs", "4",
                                         "--device", "cpu"])]:
        run = tmp_path / name
        result = runner.invoke(main, ["train", name, "--data", str(data), "--out", str(run),
                                      *extra])
        assert result.exit_code == 0, result.output
        record = json.loads((run / "run_config.json").read_text())
        assert record["kind"] == RUN_KIND and record["emulator"] == name
        runs[name] = run
    assert not list(runs["pattern-scaling"].glob("*.pkl"))
    # a second training into the same folder is refused cleanly
    result = runner.invoke(main, ["train", "pattern-scaling", "--data", str(data), "--out",
                                  str(runs["pattern-scaling"])])
    assert result.exit_code == 1 and "exists" in result.output

    for run in runs.values():  # `surrogates evaluate` dispatches on the run's kind
        result = runner.invoke(main, ["evaluate", str(run), "--out", str(run / "eval")])
        assert result.exit_code == 0, result.output
        assert "tas" in result.output and "total" in result.output
        metrics = json.loads((run / "eval" / "metrics.json").read_text())
        table = metrics["experiments"]["ssp245"]["nrmse"]
        assert set(table) == {"tas", "diurnal_temperature_range", "pr", "pr90"}
        for s in table.values():
            assert s["total"] == pytest.approx(s["spatial"] + 5 * s["global"])
    # the FNO ensemble's coverage in metrics.json is the share of truths inside the central 90 %
    # interval of its Gaussian predictive distribution (the members' spread plus the internal
    # variability sigma^2 / M of the member-mean target, which the members' own quantiles
    # cannot hold) over 2080-2100, recomputed here independently
    fno = load_emulator(runs["climate-fno"])
    truth = open_split(data, train=()).test["ssp245"]
    mean, std = fno.predict(truth, return_std=True)
    mean, std = (d["tas"].sel(time=slice(2080, 2100)).values for d in (mean, std))
    z = scipy.stats.norm.ppf(0.95)
    lower, upper = mean - z * std, mean + z * std
    y = truth["tas"].sel(time=slice(2080, 2100)).values
    metrics = json.loads((runs["climate-fno"] / "eval" / "metrics.json").read_text())
    uq = metrics["experiments"]["ssp245"]["uq"]["tas"]
    assert uq["coverage"] == pytest.approx(np.mean((lower <= y) & (y <= upper)))
    assert uq["level"] == 0.9 and uq["crps"] > 0


def test_gp_variance_adds_the_pca_truncation_error(noisy_split):
    """The added variance is, cell by cell, the mean squared residual of projecting the training
    fields on their leading PCs (computed here by an SVD), and its sum over cells is the
    discarded singular values' energy / n."""
    from surrogates.models.climatebench import stack_experiments

    config = ClimateGPConfig(n_aerosol_pcs=2, n_output_pcs=2, iterations=30, train_stride=3)
    gp = ClimateGP(config).fit(noisy_split.train)
    truth = noisy_split.test["ssp245"]
    _, with_trunc = gp.predict(truth, return_std=True)
    gp.config.truncation_variance = False
    _, without = gp.predict(truth, return_std=True)
    table = stack_experiments(noisy_split.train)
    outputs = table.outputs[::3]
    n = len(outputs)
    for v, name in enumerate(["tas", "diurnal_temperature_range", "pr", "pr90"]):
        flat = outputs[:, v].reshape(n, -1)
        centred = flat - flat.mean(0)
        u, s, vt = np.linalg.svd(centred, full_matrices=False)
        resid = centred - (centred @ vt[:2].T) @ vt[:2]
        rho = np.mean(resid**2, axis=0).reshape(outputs.shape[-2:])
        assert np.sum(rho) == pytest.approx(np.sum(s[2:] ** 2) / n, rel=1e-8)
        added = with_trunc[name].values ** 2 - without[name].values ** 2
        np.testing.assert_allclose(added, np.broadcast_to(rho, added.shape), rtol=1e-6,
                                   atol=1e-12 * rho.max())
        assert rho.max() > 0


def _pooled_coverage(gp, truth, level):
    """Coverage of the Gaussian ``level`` intervals over 2080-2100, every cell and output."""
    from surrogates.data.climatebench import METRIC_YEARS
    from surrogates.metrics import uq

    mean, std = gp.predict(truth, return_std=True)
    years = slice(*METRIC_YEARS)
    inside = []
    for var in mean.data_vars:
        m, s = mean[var].sel(time=years).values, std[var].sel(time=years).values
        y = truth[var].sel(time=years).transpose(*mean[var].dims).values
        lower, upper = uq.gaussian_interval(m, s, level=level)
        inside.append(uq.interval_coverage(lower, upper, y))
    return float(np.mean(inside))


def test_gp_intervals_cover_a_new_scenario_at_their_level(tmp_path):
    """On synthetic data (truth known: the generator's member-mean ssp245), the GP's 90 % and
    95 % Gaussian intervals cover within 0.05 of nominal (L-BFGS converges in 40 iterations
    here). An unconverged marginal-likelihood
    fit (60 Adam steps) covered 0.99-1.00 here; without the truncation variance the intervals
    cover far less than nominal."""
    config = SyntheticClimateBenchConfig(n_lat=8, n_lon=12, members=3, start_year=1950, seed=3)
    split = open_split(generate_synthetic(tmp_path, config))
    truth = split.test["ssp245"]
    gp = ClimateGP(ClimateGPConfig(train_stride=3, iterations=40, optimizer="lbfgs")).fit(
        split.train)
    assert 0.85 <= _pooled_coverage(gp, truth, 0.9) <= 0.95
    assert 0.90 <= _pooled_coverage(gp, truth, 0.95) <= 0.98
    assert gp.params_["calibration_factor"].shape == (4 * 5,)
    gp.config.truncation_variance = False
    assert _pooled_coverage(gp, truth, 0.9) < 0.85


def _members(sigma, n_members, n_years, seed):
    import xarray as xr

    rng = np.random.default_rng(seed)
    shape = (n_members, n_years, *sigma.shape)
    forced = np.linspace(0, 1, n_years)[None, :, None, None]
    data = {v: (("member", "time", "lat", "lon"), forced + sigma * rng.standard_normal(shape))
            for v in ["tas", "diurnal_temperature_range", "pr", "pr90"]}
    return xr.Dataset(data, coords={"time": np.arange(n_years), "lat": [0.0, 10.0],
                                    "lon": [0.0, 90.0, 180.0]})


def test_internal_variance_recovers_a_known_variability():
    from surrogates.models.climatebench import internal_variance

    sigma = np.array([[0.1, 0.2, 0.4], [0.3, 0.5, 1.0]])
    train = {"a": _members(sigma, 3, 400, 0), "b": _members(sigma, 3, 300, 1)}
    var, m = internal_variance(train)
    assert m == 3 and var.shape == (4, 2, 3)
    # 700 years x 2 degrees of freedom: relative standard error sqrt(2 / 1400) = 0.04
    np.testing.assert_allclose(var, np.broadcast_to(sigma**2, var.shape), rtol=0.15)
    # by hand: members 1 and 3 in one year, 2 in another -> ((1 + 1) + 0) / (2 * 1)
    tiny = _members(np.zeros((2, 3)), 2, 2, 0)
    tiny["tas"][:] = np.array([[1.0, 2.0], [3.0, 2.0]])[:, :, None, None]
    assert internal_variance({"x": tiny})[0][0, 0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no experiments"):
        internal_variance({})


def test_fno_std_adds_internal_variability_over_members():
    """std^2 = spread of the members (ddof 1) + sigma^2 / M; the seed spread alone without it."""
    import torch

    from surrogates.models.climatebench import ClimateFNOConfig, FNOEnsembleEmulator

    class Constant(torch.nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x):
            return torch.full((x.shape[0], 4, *x.shape[-2:]), self.value)

    inputs = _members(np.ones((2, 3)), 1, 3, 0).isel(member=0)
    inputs = inputs.assign(CO2=("time", np.arange(3.0)), CH4=("time", np.ones(3)),
                           SO2=(("time", "lat", "lon"), np.zeros((3, 2, 3))),
                           BC=(("time", "lat", "lon"), np.zeros((3, 2, 3))))
    fno = FNOEnsembleEmulator(ClimateFNOConfig(members=3, window=1))
    fno.models = [Constant(0.0), Constant(1.0), Constant(2.0)]  # spread: variance 1
    fno.internal_variance_, fno.target_members_ = np.full((4, 2, 3), 0.6), 3
    mean, std = fno.predict(inputs, return_std=True)
    np.testing.assert_allclose(mean["pr"].values, 1.0)
    np.testing.assert_allclose(std["pr"].values, np.sqrt(1.0 + 0.2))
    fno.config.internal_variability = False
    np.testing.assert_allclose(fno.predict(inputs, return_std=True)[1]["tas"].values, 1.0)
