"""The rest of the MNO workflow: the data-driven baseline, a-posteriori fine-tuning, ensembles."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

from operators.base import load_model, save_model
from operators.mno import ClosureEnsemble, HybridLorenz96, NextStateFNO, PolynomialClosure
from surrogates.cli import main
from surrogates.data.common import lead_pairs, split_samples, write_netcdf
from surrogates.data.lorenz96 import Lorenz96DataConfig, generate_lorenz96
from surrogates.runs.lorenz96 import (
    HybridEvaluationConfig,
    evaluate_hybrid,
    hybrid_run,
    initial_conditions,
)
from surrogates.runs.lorenz96_finetune import UnrolledHybrid, unrolled_windows
from surrogates.runs.operators import load_run


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """12 classic two-tier trajectories (K = 36, J = 10), frames every 0.025 MTU for 1 MTU."""
    config = Lorenz96DataConfig(n_samples=12, n_steps=200, save_every=5, spinup_steps=400,
                                seed=3)
    ds = generate_lorenz96(config)
    path = tmp_path_factory.mktemp("mno") / "l96.nc"
    write_netcdf(ds, path)
    return path, ds


def test_lead_pairs_put_targets_lead_frames_later():
    X = np.arange(2 * 5 * 4, dtype=float).reshape(2, 5, 4)
    ds = xr.Dataset({"X": (("sample", "time", "k"), X)})
    x, y = lead_pairs(ds, ["X"], ["X"], ["k"], lead=2)
    assert x.shape == y.shape == (2 * 3, 1, 4)
    np.testing.assert_array_equal(x[:, 0], X[:, :3].reshape(-1, 4))
    np.testing.assert_array_equal(y[:, 0], X[:, 2:].reshape(-1, 4))
    with pytest.raises(ValueError, match="lead"):
        lead_pairs(ds, ["X"], ["X"], ["k"], lead=5)
    with pytest.raises(ValueError, match="non-negative"):
        lead_pairs(ds, ["X"], ["X"], ["k"], lead=-1)


def test_history_channels_hold_the_previous_frames_most_recent_first():
    X = np.arange(2 * 6 * 3, dtype=float).reshape(2, 6, 3)
    ds = xr.Dataset({"X": (("sample", "time", "k"), X), "c": (("sample", "time", "k"), -X)})
    x, y = lead_pairs(ds, ["X"], ["c"], ["k"], history=2)
    assert x.shape == (2 * 4, 3, 3) and y.shape == (2 * 4, 1, 3)
    for lag in range(3):
        np.testing.assert_array_equal(x[:, lag], X[:, 2 - lag:6 - lag].reshape(-1, 3))
    np.testing.assert_array_equal(y[:, 0], -X[:, 2:].reshape(-1, 3))
    with pytest.raises(ValueError, match="history"):
        lead_pairs(ds, ["X"], ["c"], ["k"], history=6)


def test_history_closure_trains_and_runs_in_the_hybrid_from_true_past_states(tmp_path, data):
    path, ds = data
    run = tmp_path / "mno_h1"
    result = invoke("train", "mno", "--data", path, "--targets", "subgrid_forcing", "--history",
                    "1", "--width", "16", "--layers", "2", "--modes", "12", "--epochs", "10",
                    "--lr", "3e-3", "--out", run)
    assert result.exit_code == 0, result.output
    model, config = load_run(run)
    assert model.history == 1 and config["data"]["history"] == 1
    assert model.input_std == pytest.approx(float(ds["X"].std()), rel=0.1)
    refused = invoke("evaluate", run, "--scheme", "rk4", "--dt-factor", "1")
    assert refused.exit_code == 1 and "dt_factor" in refused.output
    result = invoke("evaluate", run, "--scheme", "rk4", "--dt-factor", "5", "--forecast-mtu",
                    "0.5", "--climate-mtu", "0.5")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert metrics["overall"]["r2"] > 0.5
    hybrid = json.loads((run / "evaluation" / "hybrid_metrics.json").read_text())
    assert hybrid["models"]["mno_h1"]["stable_fraction"] == 1.0
    # Every model starts one frame in, where the history closure has a true past state.
    assert hybrid["start_frame"] == 1


def test_next_state_fno_learns_more_than_persistence(tmp_path, data):
    path, ds = data
    run = tmp_path / "emulator"
    result = invoke("train", "next-state-fno", "--data", path, "--lead", "2", "--width", "16",
                    "--layers", "2", "--epochs", "30", "--batch-size", "32", "--lr", "3e-3",
                    "--loss", "mse", "--out", run)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "run_config.json").read_text())
    model_config = config["model_config"]
    assert model_config["step_mtu"] == pytest.approx(2 * 5 * 0.005)
    # Output statistics are those of the increment X(t + 2 frames) - X(t) on the training split.
    train = split_samples(12, config["data"]["fractions"], seed=0)["train"]
    X = ds["X"].isel(sample=train).values
    change = X[:, 2:] - X[:, :-2]
    assert model_config["output_mean"] == pytest.approx(change.mean(), rel=1e-4, abs=1e-6)
    assert model_config["output_std"] == pytest.approx(change.std(ddof=1), rel=1e-4)
    # Held-out error of X(t + 0.05) well below that of persistence X(t + 0.05) = X(t).
    model = load_model(run / "model.pt")
    test = split_samples(12, config["data"]["fractions"], seed=0)["test"]
    Xt = torch.as_tensor(ds["X"].isel(sample=test).values, dtype=torch.float32)
    x, y = Xt[:, :-2].reshape(-1, 1, 36), Xt[:, 2:].reshape(-1, 1, 36)
    with torch.no_grad():
        emulator_error = float(((model(x) - y) ** 2).mean())
    persistence_error = float(((x - y) ** 2).mean())
    assert emulator_error < 0.3 * persistence_error, (emulator_error, persistence_error)
    # rollout = repeated application; frames every save_every steps.
    X0 = Xt[:, 0].double()
    with torch.no_grad():
        frames = model.rollout(X0, None, n_steps=4, save_every=2)
        manual = X0
        for _ in range(4):
            manual = model(manual.unsqueeze(1).float())[:, 0].double()
    assert frames.shape == (len(test), 3, 36)
    torch.testing.assert_close(frames[:, -1], manual)


def test_next_state_fno_blow_up_and_errors():
    model = NextStateFNO(step_mtu=0.05, hidden_channels=4, n_layers=1, output_std=1e30)
    with torch.no_grad():
        with pytest.raises(FloatingPointError, match="blew up"):
            model.rollout(torch.full((1, 8), 1e10, dtype=torch.float64), None, n_steps=50)
    with pytest.raises(ValueError, match="step_mtu"):
        NextStateFNO(step_mtu=0.0)
    with pytest.raises(ValueError, match="multiple"):
        model.rollout(torch.zeros(1, 8, dtype=torch.float64), None, n_steps=3, save_every=2)


def test_unrolled_windows_and_zero_closure_match_the_coarse_hybrid(data):
    _, ds = data
    windows = unrolled_windows(ds, np.array([1, 4]), n_frames=3, stride=10)
    X = ds["X"].values
    starts = np.arange(0, 41 - 3, 10)  # 0, 10, 20, 30
    assert windows.inputs.shape == (2 * len(starts), 2, 36)
    assert windows.targets.shape == (2 * len(starts), 3, 36)
    np.testing.assert_allclose(windows.inputs[1, 0], X[1, 10], rtol=1e-6)
    np.testing.assert_allclose(windows.inputs[1, 1], 10.0)
    np.testing.assert_allclose(windows.targets[len(starts) + 2], X[4, 21:24], rtol=1e-6)
    # A zero cubic closure unrolled = coarse physics alone, frames every `substeps` steps.
    model = UnrolledHybrid(closure_class="PolynomialClosure", closure_config={"degree": 3},
                           dt=0.025, substeps=2, n_frames=3, scheme="rk4")
    x = windows.inputs[:2].double()
    with torch.no_grad():
        expected = HybridLorenz96(None).rollout(x[:, 0], 10.0, 0.025, 6, save_every=2)[:, 1:]
        torch.testing.assert_close(model.double()(x), expected)


def test_a_posteriori_fine_tuning_finds_the_damping_of_the_subgrid_forcing(tmp_path, data):
    path, ds = data
    source = tmp_path / "zero_cubic"
    assert invoke("train", "polynomial", "--data", path, "--targets", "subgrid_forcing",
                  "--out", source).exit_code == 0
    save_model(PolynomialClosure(degree=1), source / "model.pt")  # start from no closure
    config = json.loads((source / "run_config.json").read_text())
    config["model_config"] = {"degree": 1}
    (source / "run_config.json").write_text(json.dumps(config))
    tuned = tmp_path / "tuned"
    result = invoke("finetune", source, "--out", tuned, "--frames", "4", "--dt-factor", "5",
                    "--stride", "4", "--epochs", "6", "--lr", "0.02", "--batch-size", "32")
    assert result.exit_code == 0, result.output
    history = json.loads((tuned / "unrolled" / "history.json").read_text())
    closure, tuned_config = load_run(tuned)
    assert tuned_config["a_posteriori"]["n_frames"] == 4
    # The window loss of the validation trajectories falls well below that of no closure ...
    validation = split_samples(12, config["data"]["fractions"], seed=0)["validation"]
    windows = unrolled_windows(ds, validation, n_frames=4, stride=4)
    unrolled = UnrolledHybrid(closure_class="PolynomialClosure", closure_config={"degree": 1},
                              dt=0.025, substeps=1, n_frames=4)
    with torch.no_grad():
        before = float(((unrolled(windows.inputs) - windows.targets) ** 2).mean())
    assert history[-1]["validation_loss"] < 0.7 * before, (history, before)
    # ... and the learned closure damps X, like the least-squares fit of the true forcing.
    a0, a1 = closure.coefficients.tolist()
    X = ds["X"].values.ravel()
    fitted = np.polyfit(X, ds["subgrid_forcing"].values.ravel(), 1)[::-1]
    assert a1 < 0 and fitted[1] < 0, (a1, fitted)


def test_closure_ensemble_mean_members_and_errors():
    members = [PolynomialClosure(degree=1), PolynomialClosure(degree=1)]
    with torch.no_grad():
        members[0].coefficients.copy_(torch.tensor([1.0, -0.5]))
        members[1].coefficients.copy_(torch.tensor([3.0, 0.5]))
    ensemble = ClosureEnsemble(members)
    x = torch.randn(4, 1, 9)
    torch.testing.assert_close(ensemble(x), 2.0 + 0.0 * x)
    assert ensemble.member_outputs(x).shape == (2, 4, 1, 9)
    with pytest.raises(ValueError, match="at least 2"):
        ClosureEnsemble(members[:1])
    history = type("H", (torch.nn.Module,), {"history": 1})()
    with pytest.raises(ValueError, match="disagree"):
        ClosureEnsemble([members[0], history])


def test_ensemble_of_identical_closures_has_no_spread_and_crps_equals_mae(data):
    _, ds = data
    cubic = PolynomialClosure(degree=3)
    with torch.no_grad():
        cubic.coefficients.copy_(torch.tensor([0.3, -0.7, 0.0, 0.0]))
    config = HybridEvaluationConfig(scheme="rk4", dt_factor=5, save_every=5, forecast_mtu=0.5,
                                    climate_mtu=1.0)
    result = evaluate_hybrid({"single": cubic, "pair": ClosureEnsemble([cubic, cubic])}, ds,
                             np.arange(3), config)
    single, pair = result["models"]["single"], result["models"]["pair"]
    np.testing.assert_allclose(pair["rmse_by_lead"], single["rmse_by_lead"], rtol=1e-12)
    scores = pair["ensemble"]
    assert scores["n_members"] == 2
    np.testing.assert_allclose(scores["spread_by_lead"], 0.0, atol=1e-12)
    # CRPS of a point forecast is its mean absolute error, here at every lead time.
    state, params, dt = initial_conditions(ds, np.arange(3))
    X = hybrid_run(cubic, state.X, np.asarray(params.F), dt * 5, 20, 1, "rk4")
    reference = ds["X"].isel(sample=[0, 1, 2]).values[:, :21]  # frames every 0.025 MTU
    assert X.shape[1] == len(scores["crps_by_lead"]) == 21
    mae = np.abs(X - reference).mean(axis=(0, 2))
    np.testing.assert_allclose(scores["crps_by_lead"], mae, rtol=1e-6, atol=1e-9)


def test_cli_ensemble_trains_seeds_resumes_and_scores_its_spread(tmp_path, data):
    path, _ = data
    run = tmp_path / "ensemble"
    args = ["train", "mno", "--data", path, "--targets", "subgrid_forcing", "--width", "8",
            "--layers", "1", "--modes", "8", "--epochs", "2", "--members", "2", "--out", run]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "run_config.json").read_text())
    assert config["members"] == ["member-0", "member-1"]
    seeds = [json.loads((run / m / "run_config.json").read_text())["train"]["seed"]
             for m in config["members"]]
    assert seeds == [0, 1]
    model, _ = load_run(run)
    assert isinstance(model, ClosureEnsemble)
    w0, w1 = (list(m.parameters())[0] for m in model.members)
    assert not torch.equal(w0, w1)
    before = (run / "member-0" / "model.pt").read_bytes()
    assert invoke(*args, "--resume").exit_code == 0
    assert (run / "member-0" / "model.pt").read_bytes() == before
    result = invoke("evaluate", run, "--scheme", "rk4", "--dt-factor", "5", "--forecast-mtu",
                    "0.5", "--climate-mtu", "0.5")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert metrics["ensemble"]["n_members"] == 2
    assert 0.0 <= metrics["ensemble"]["coverage"] <= 1.0
    assert metrics["ensemble"]["crps"] > 0
    hybrid = json.loads((run / "evaluation" / "hybrid_metrics.json").read_text())
    scores = hybrid["models"]["ensemble"]["ensemble"]
    assert np.isfinite(scores["crps_mean"]) and scores["spread_skill_mean"] > 0
    assert (run / "evaluation" / "hybrid_ensemble_ensemble.png").stat().st_size > 10_000
    assert (run / "evaluation" / "hybrid_stability.png").stat().st_size > 10_000


class BlowsUpAboveForcing(torch.nn.Module):
    """A destabilising closure, 10 X^3, switched on only for samples with F > 11."""

    history = 0
    use_forcing_channel = True

    def forward(self, x, F):
        return torch.where(F.reshape(-1, 1, 1) > 11.0, 10.0 * x[:, :1] ** 3, 0.0 * x[:, :1])


def test_stability_is_reported_per_initial_condition(data):
    _, ds = data
    ds = ds.copy(deep=True)
    ds["F"][1] = 11.5  # only the second initial condition gets the unstable closure
    config = HybridEvaluationConfig(scheme="rk4", dt_factor=5, save_every=5, forecast_mtu=0.25,
                                    climate_mtu=0.5)
    result = evaluate_hybrid({"bad": BlowsUpAboveForcing(), "no closure": None}, ds,
                             np.arange(3), config)
    entry = result["models"]["bad"]
    assert entry["stable_initial_conditions"] == [True, False, True]
    assert entry["stable_fraction"] == pytest.approx(2 / 3)
    assert "vpt_mean" not in entry and "climate" not in entry
    assert result["models"]["no closure"]["stable_initial_conditions"] == [True] * 3
