"""Evaluation of dynamical surrogates: closed forms, sampling limits, hand sums, refusals."""

import math
import re
import time

import numpy as np
import pytest
from scipy import signal, stats

from surrogates.metrics.dynamics import (
    ClimateStatistics,
    climate_statistics,
    compare_climates,
    cost_per_model_time_unit,
    ensemble_skill,
    hellinger_distance,
    normalised_error,
    rmse_by_lead,
    valid_prediction_time,
    wasserstein_distance,
)
from surrogates.metrics.dynamics_plots import (
    plot_autocorrelation,
    plot_climate_pdfs,
    plot_rmse_by_lead,
)


def ar1(phi, shape, rng, burn=300):
    """Stationary AR(1) x_t = phi x_{t-1} + e_t along axis 1, e_t ~ N(0, 1)."""
    b, t, k = shape
    noise = rng.standard_normal((b, t + burn, k))
    return signal.lfilter([1.0], [1.0, -phi], noise, axis=1)[:, burn:]


# ----------------------------------------------------------------------------- short-range skill
def test_rmse_by_lead_matches_hand_computation():
    rng = np.random.default_rng(0)
    pred, ref = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4, 5))
    expected = [math.sqrt(sum((pred[b, t, k] - ref[b, t, k]) ** 2 for b in range(3)
                              for k in range(5)) / 15) for t in range(4)]
    np.testing.assert_allclose(rmse_by_lead(pred, ref), expected, rtol=1e-12)


def test_normalised_error_definition():
    rng = np.random.default_rng(1)
    pred, ref = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 3, 8))
    expected = np.linalg.norm(pred - ref, axis=2) / (math.sqrt(8) * 2.5)
    np.testing.assert_allclose(normalised_error(pred, ref, 2.5), expected, rtol=1e-12)


def test_valid_prediction_time_of_exponential_error_growth():
    """E(t) = e0 exp(lam t) crosses 0.5 at t* = ln(0.5 / e0) / lam; VPT is the first saved time
    beyond it, so within one saving interval."""
    rng = np.random.default_rng(2)
    dt, n_t, n_k, lam, sigma = 0.01, 500, 6, 1.5, 2.0
    times = dt * np.arange(n_t)
    e0 = np.array([1e-3, 1e-2, 0.1])
    error = e0[:, None] * np.exp(lam * times)[None, :]                   # (B, T)
    signs = rng.choice([-1.0, 1.0], size=(3, n_t, n_k))
    ref = rng.normal(size=(3, n_t, n_k))
    pred = ref + signs * sigma * error[:, :, None]                       # RMSE over k = sigma * E
    vpt = valid_prediction_time(pred, ref, times, sigma, threshold=0.5)
    t_star = np.log(0.5 / e0) / lam
    assert vpt.shape == (3,)
    assert np.all(vpt > t_star) and np.all(vpt - t_star <= dt + 1e-12)


def test_valid_prediction_time_perfect_and_blown_up_forecasts():
    ref = np.random.default_rng(3).normal(size=(2, 10, 4))
    times = 0.05 * np.arange(10)
    np.testing.assert_array_equal(valid_prediction_time(ref, ref, times, 1.0), [0.45, 0.45])
    pred = ref.copy()
    pred[0, 3:] = np.nan                                                  # sample 0 blows up
    np.testing.assert_allclose(valid_prediction_time(pred, ref, times, 1.0), [0.15, 0.45])


# --------------------------------------------------------------------------------------- climate
def test_hellinger_matches_gaussian_closed_form():
    m1, s1, m2, s2 = 0.0, 1.0, 1.0, 1.5
    edges = np.linspace(-15.0, 16.0, 6201)
    p = np.diff(stats.norm.cdf(edges, m1, s1)) / np.diff(edges)
    q = np.diff(stats.norm.cdf(edges, m2, s2)) / np.diff(edges)
    h2 = 1 - math.sqrt(2 * s1 * s2 / (s1**2 + s2**2)) * math.exp(-(m1 - m2) ** 2
                                                                 / (4 * (s1**2 + s2**2)))
    assert hellinger_distance(p, q, edges) == pytest.approx(math.sqrt(h2), abs=1e-3)
    assert hellinger_distance(p, p, edges) < 1e-6


def test_hellinger_of_disjoint_densities_is_one():
    edges = np.linspace(0.0, 4.0, 5)
    assert hellinger_distance([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5], edges) == 1.0


def test_wasserstein_of_shifted_gaussians():
    """W1(N(0,1), N(0.5,1)) = 0.5; the empirical estimate errs by O(n^-1/2) ~ 3e-3 here."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.0, 1.0, 200_000), rng.normal(0.5, 1.0, 200_000)
    assert wasserstein_distance(x, y) == pytest.approx(0.5, abs=0.02)


def test_autocorrelation_of_ar1_process():
    """rho(tau) = phi^tau; with N = 6.4e5 values the estimate's standard error is below
    sqrt((1 + phi^2) / (1 - phi^2) / N) ~ 2.7e-3, so 0.015 is over five of them."""
    phi = 0.8
    x = ar1(phi, (8, 20_000, 4), np.random.default_rng(5))
    s = climate_statistics(x, max_lag=10)
    assert isinstance(s, ClimateStatistics)
    assert s.acf.shape == (11,)
    assert s.acf[0] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(s.acf, phi ** np.arange(11), atol=0.015)


def test_climate_statistics_match_numpy_on_pooled_values():
    x = np.random.default_rng(6).gamma(2.0, 1.5, size=(3, 400, 5))
    s = climate_statistics(x, bins=30, max_lag=5)
    assert s.mean == pytest.approx(x.ravel().mean(), rel=1e-12)
    assert s.std == pytest.approx(x.ravel().std(), rel=1e-12)
    assert s.n_values == x.size
    assert s.edges.shape == (31,) and s.density.shape == (30,)
    assert np.sum(s.density * np.diff(s.edges)) == pytest.approx(1.0, rel=1e-12)
    expected, _ = np.histogram(x.ravel(), bins=s.edges, density=True)
    np.testing.assert_allclose(s.density, expected)


def test_compare_climates_identical_and_shifted_runs():
    x = ar1(0.5, (2, 2000, 4), np.random.default_rng(7))
    same = compare_climates(x, x.copy(), max_lag=5)
    assert set(same) == {"mean_abs_diff", "std_abs_diff", "hellinger", "wasserstein", "acf_rmse"}
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in same.values())
    shifted = compare_climates(x + 0.7, x, max_lag=5)
    assert shifted["mean_abs_diff"] == pytest.approx(0.7, rel=1e-9)
    assert shifted["wasserstein"] == pytest.approx(0.7, rel=1e-9)
    assert shifted["std_abs_diff"] == pytest.approx(0.0, abs=1e-9)
    assert shifted["acf_rmse"] == pytest.approx(0.0, abs=1e-9)
    assert 0.2 < shifted["hellinger"] < 1.0


def test_climate_statistics_refuses_blown_up_runs_and_bad_lags():
    x = np.ones((1, 10, 3))
    x[0, 5, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        climate_statistics(x)
    stuck = climate_statistics(np.full((2, 10, 3), 0.1), max_lag=3)   # a collapsed run
    assert stuck.std == 0.0 and np.all(np.isnan(stuck.acf))
    with pytest.raises(ValueError, match="max_lag"):
        climate_statistics(np.zeros((1, 10, 3)), max_lag=10)


# ------------------------------------------------------------------------------------------ cost
def test_cost_per_model_time_unit_times_the_step_function():
    calls = []

    def step():
        calls.append(1)
        time.sleep(0.01)

    cost = cost_per_model_time_unit(step, n_steps=5, dt=0.02, repeats=2)   # 0.1 MTU per call
    assert len(calls) == 3                                                  # warm-up + 2 timed
    assert 0.1 <= cost < 5.0
    with pytest.raises(ValueError, match="n_steps"):
        cost_per_model_time_unit(step, n_steps=0, dt=0.02)


# ------------------------------------------------------------------------------------- ensembles
def test_one_member_crps_is_mean_absolute_error():
    rng = np.random.default_rng(8)
    ref, member = rng.normal(size=(4, 6, 5)), rng.normal(size=(4, 6, 5))
    skill = ensemble_skill(member[None], ref)
    np.testing.assert_allclose(skill["crps"], np.abs(member - ref).mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(skill["rmse"], rmse_by_lead(member, ref), rtol=1e-12)
    assert np.all(np.isnan(skill["spread_skill"]))


def test_spread_skill_near_one_for_calibrated_ensemble():
    """Truth and members are exchangeable draws around a common signal whose spread grows with
    lead time; 8000 points per lead give a ratio within a few 0.01 of 1."""
    rng = np.random.default_rng(9)
    m, b, t, k = 10, 200, 5, 40
    signal_ = rng.normal(size=(b, t, k))
    scale = np.linspace(0.1, 2.0, t)[None, :, None]
    ref = signal_ + scale * rng.normal(size=(b, t, k))
    ens = signal_ + scale * rng.normal(size=(m, b, t, k))
    skill = ensemble_skill(np.moveaxis(ens, 0, -1), ref, axis=-1)
    assert skill["crps"].shape == skill["spread_skill"].shape == (t,)
    np.testing.assert_allclose(skill["spread_skill"], 1.0, atol=0.06)
    assert np.all(np.diff(skill["crps"]) > 0)


# ---------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("fn", [rmse_by_lead, lambda p, r: normalised_error(p, r, 1.0),
                                lambda p, r: valid_prediction_time(p, r, np.arange(3), 1.0)])
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=re.escape("(2, 3, 4)") + ".*" + re.escape("(2, 3, 5)")):
        fn(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))


def test_ensemble_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=re.escape("(2, 3, 4)") + ".*" + re.escape("(2, 3, 5)")):
        ensemble_skill(np.zeros((4, 2, 3, 4)), np.zeros((2, 3, 5)))


def test_hellinger_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=re.escape("(3,)") + ".*" + re.escape("(4,)")):
        hellinger_distance(np.ones(3), np.ones(4), np.arange(4.0))


def test_non_trajectory_input_is_refused():
    with pytest.raises(ValueError, match=re.escape("(5, 4)")):
        rmse_by_lead(np.zeros((5, 4)), np.zeros((5, 4)))


# --------------------------------------------------------------------------------------- figures
def test_plots_write_png_files(tmp_path):
    rng = np.random.default_rng(10)
    times = 0.1 * np.arange(20)
    runs = {"reference": rng.normal(size=(2, 50, 4)), "model": rng.normal(0.3, 1.2, (2, 50, 4))}
    acfs = {name: climate_statistics(x, max_lag=10).acf for name, x in runs.items()}
    paths = [tmp_path / "rmse.png", tmp_path / "pdf.png", tmp_path / "acf.png"]
    plot_rmse_by_lead({"a": np.exp(times), "b": np.exp(0.5 * times)}, times, paths[0])
    plot_climate_pdfs(runs, paths[1], reference="reference", bins=20)
    plot_autocorrelation(acfs, paths[2], dt=0.05, reference="reference")
    for path in paths:
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
