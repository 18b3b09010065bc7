"""Uncertainty metrics: against their definitions, Monte Carlo limits, calibration, refusals."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from surrogates.metrics.conformal import ConformalRecalibrator
from surrogates.metrics.uq import (
    coverage_by_group,
    crps_ensemble,
    crps_gaussian,
    ensemble_interval,
    gaussian_interval,
    gaussian_nll,
    interval_coverage,
    pit_values,
    reliability,
    spread_skill_ratio,
    summary,
    uq_block,
)
from surrogates.metrics.uq_plots import write_uq_plots


def crps_by_quadrature(cdf, y):
    """The definition: int (F(x) - 1{x >= y})^2 dx, split at the jump of the step function."""
    below, _ = integrate.quad(lambda x: cdf(x) ** 2, -np.inf, y, epsabs=1e-13, epsrel=1e-11)
    above, _ = integrate.quad(lambda x: (1.0 - cdf(x)) ** 2, y, np.inf, epsabs=1e-13,
                              epsrel=1e-11)
    return below + above


def crps_brute_force(members, y, fair=False):
    """O(m^2) energy form: mean |x_i - y| - sum_ij |x_i - x_j| / (2 m^2), 2 m (m - 1) if fair."""
    m = members.size
    pairs = np.abs(members[:, None] - members[None, :]).sum()
    return np.abs(members - y).mean() - pairs / (2 * m * (m - 1) if fair else 2 * m * m)


# ------------------------------------------------------------------------------------------ CRPS
@pytest.mark.parametrize("mu, sigma, y", [(0.0, 1.0, 0.0), (1.5, 0.3, 0.2), (-2.0, 4.0, 7.0),
                                          (10.0, 0.01, 10.02)])
def test_crps_gaussian_matches_the_integral_definition(mu, sigma, y):
    expected = crps_by_quadrature(lambda x: stats.norm.cdf(x, mu, sigma), y)
    assert float(crps_gaussian(mu, sigma, y)) == pytest.approx(expected, rel=1e-8, abs=1e-12)


def test_crps_gaussian_is_elementwise_with_broadcast_std():
    mean, y = np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[0.5, 0.5], [0.5, 0.5]])
    out = crps_gaussian(mean, 2.0, y)
    assert out.shape == (2, 2)
    for idx in np.ndindex(2, 2):
        assert out[idx] == pytest.approx(float(crps_gaussian(mean[idx], 2.0, y[idx])), rel=1e-14)


@pytest.mark.parametrize("fair", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_crps_ensemble_equals_the_pairwise_sum(fair, axis):
    rng = np.random.default_rng(0)
    members = rng.normal(size=(3, 7, 4)) * rng.uniform(0.5, 3.0, size=(3, 1, 4))
    members[0, :2, 0] = members[0, 2, 0]  # ties must not matter
    ensemble = np.moveaxis(members, 1, axis)
    y = rng.normal(size=(3, 4))
    out = crps_ensemble(ensemble, y, axis=axis, fair=fair)
    assert out.shape == y.shape
    for i, j in np.ndindex(3, 4):
        assert out[i, j] == pytest.approx(crps_brute_force(members[i, :, j], y[i, j], fair),
                                          abs=1e-12)


def test_crps_ensemble_equals_the_integral_for_its_empirical_cdf():
    members, y = np.array([0.3, -1.2, 2.0, 0.7, 0.7]), 0.5
    # F and the step are constant between consecutive break points: integrate exactly
    knots = np.sort(np.append(members, y))
    mid = (knots[:-1] + knots[1:]) / 2
    cdf = np.mean(members[:, None] <= mid, axis=0)
    expected = np.sum((cdf - (mid >= y)) ** 2 * np.diff(knots))
    assert float(crps_ensemble(members, y)) == pytest.approx(expected, abs=1e-13)


def test_crps_of_one_member_is_the_absolute_error():
    x, y = np.array([[1.0, -2.0, 3.5]]), np.array([0.5, 1.0, 3.5])
    np.testing.assert_allclose(crps_ensemble(x, y), np.abs(x[0] - y), rtol=0, atol=1e-15)


@pytest.mark.parametrize("fair", [False, True])
def test_large_gaussian_ensemble_converges_to_the_closed_form(fair):
    rng = np.random.default_rng(1)
    m = 40_000
    mu, sigma = np.array([0.0, 1.0, -3.0, 5.0]), np.array([1.0, 0.5, 2.0, 3.0])
    y = np.array([0.0, 2.0, -1.0, 5.5])
    ensemble = mu + sigma * rng.standard_normal((m, 4))
    # Monte Carlo standard error from 40 independent batches of 1000 members (fair CRPS, unbiased
    # per batch); the full-ensemble estimate has the same variance as the batch mean up to O(1/m).
    batches = crps_ensemble(ensemble.reshape(40, m // 40, 4), np.broadcast_to(y, (40, 4)),
                            axis=1, fair=True)
    se = batches.std(axis=0, ddof=1) / math.sqrt(40)
    # Five standard errors (false failure ~1e-6 per point) plus the plain CRPS's bias,
    # E|X - X'| / (2m) = sigma / (m sqrt(pi)).
    tol = 5 * se + sigma / (m * math.sqrt(math.pi))
    err = np.abs(crps_ensemble(ensemble, y, fair=fair) - crps_gaussian(mu, sigma, y))
    assert np.all(err < tol), (err, tol)
    assert np.all(tol < 0.1 * crps_gaussian(mu, sigma, y))  # and the test has teeth


def test_fair_crps_is_unbiased_for_small_ensembles_and_plain_crps_is_not():
    rng = np.random.default_rng(2)
    n, m = 40_000, 3
    y = rng.standard_normal(n)
    ensemble = rng.standard_normal((m, n))
    truth = float(np.mean(crps_gaussian(np.zeros(n), 1.0, y)))
    fair = float(np.mean(crps_ensemble(ensemble, y, fair=True)))
    plain = float(np.mean(crps_ensemble(ensemble, y)))
    se = np.std(crps_ensemble(ensemble, y, fair=True)) / math.sqrt(n)
    assert abs(fair - truth) < 5 * se
    # plain CRPS is biased upward by E|X - X'| / (2m) = 1 / (m sqrt(pi)) for N(0, 1)
    assert plain - fair == pytest.approx(1 / (m * math.sqrt(math.pi)), rel=0.05)


# ------------------------------------------------------------------------------------------- NLL
def test_gaussian_nll_is_minus_the_log_density():
    rng = np.random.default_rng(3)
    mean, y = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    std = rng.uniform(0.1, 3.0, size=(5, 6))
    np.testing.assert_allclose(gaussian_nll(mean, std, y), -stats.norm.logpdf(y, mean, std),
                               rtol=1e-13, atol=1e-13)


def test_inputs_may_be_torch_tensors():
    mean = torch.zeros(4, requires_grad=True)
    std, y = torch.ones(4), torch.tensor([0.0, 1.0, -1.0, 2.0])
    np.testing.assert_allclose(gaussian_nll(mean, std, y), -stats.norm.logpdf(y.numpy()),
                               rtol=1e-6)
    out = crps_ensemble(torch.randn(5, 4, dtype=torch.float64), y)
    assert isinstance(out, np.ndarray) and out.shape == (4,)


# ------------------------------------------------------------------------------------- intervals
def binomial_tolerance(p, n):
    """Four standard deviations of a binomial proportion: false failure below 1e-4."""
    return 4 * math.sqrt(p * (1 - p) / n)


def test_calibrated_gaussian_covers_nominally_and_overconfident_undercovers():
    rng = np.random.default_rng(4)
    n, level = 20_000, 0.9
    mean = rng.normal(size=n)
    std = rng.uniform(0.5, 2.0, size=n)
    y = mean + std * rng.standard_normal(n)
    coverage = interval_coverage(*gaussian_interval(mean, std, level), y)
    assert abs(coverage - level) < binomial_tolerance(level, n)
    # halved std: P(|Z| < z_0.95 / 2) = 2 Phi(0.822) - 1 = 0.589
    halved = interval_coverage(*gaussian_interval(mean, std / 2, level), y)
    expected = 2 * stats.norm.cdf(stats.norm.ppf(0.95) / 2) - 1
    assert abs(halved - expected) < binomial_tolerance(expected, n)
    assert halved < level - 0.2


def test_gaussian_interval_bounds():
    lower, upper = gaussian_interval([1.0, 2.0], [1.0, 0.5], level=0.95)
    np.testing.assert_allclose(lower, [1 - 1.959963984540054, 2 - 0.5 * 1.959963984540054])
    np.testing.assert_allclose(upper, [1 + 1.959963984540054, 2 + 0.5 * 1.959963984540054])


def test_ensemble_interval_is_the_central_quantile_interval():
    ensemble = np.stack([np.arange(101.0), 2 * np.arange(101.0)], axis=1)  # members on axis 0
    lower, upper = ensemble_interval(ensemble, level=0.9)
    np.testing.assert_allclose(lower, [5.0, 10.0])
    np.testing.assert_allclose(upper, [95.0, 190.0])
    lower1, upper1 = ensemble_interval(ensemble.T, level=0.9, axis=1)
    np.testing.assert_array_equal(lower1, lower)
    np.testing.assert_array_equal(upper1, upper)


def test_interval_coverage_counts_the_closed_interval():
    assert interval_coverage([0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0.5, 2]) == 0.75


# --------------------------------------------------------------------------- ensemble calibration
def exchangeable_ensemble(rng, n, m, member_scale=1.0):
    """Per point a random centre; members and observation scatter around it (members scaled)."""
    centre = 3 * rng.standard_normal(n)
    y = centre + rng.standard_normal(n)
    return centre + member_scale * rng.standard_normal((m, n)), y


@pytest.mark.parametrize("m", [2, 10])
def test_spread_skill_is_one_when_calibrated_and_half_when_underdispersive(m):
    rng = np.random.default_rng(5)
    n = 20_000
    # with n points the ratio's relative standard error is about sqrt(1 / (2n)) = 0.005 for the
    # RMSE plus less for the spread; 0.03 is six of them
    ensemble, y = exchangeable_ensemble(rng, n, m)
    assert spread_skill_ratio(ensemble, y) == pytest.approx(1.0, abs=0.03)
    ensemble, y = exchangeable_ensemble(rng, n, m, member_scale=0.5)
    # spread 0.5 sqrt((m+1)/m); RMSE of the mean sqrt(1 + 0.25/m)
    expected = 0.5 * math.sqrt((m + 1) / m) / math.sqrt(1 + 0.25 / m)
    assert spread_skill_ratio(ensemble, y) == pytest.approx(expected, abs=0.03)
    assert spread_skill_ratio(ensemble, y) < 0.65


def test_spread_skill_without_the_finite_ensemble_correction_would_be_biased():
    rng = np.random.default_rng(6)
    m = 2
    ensemble, y = exchangeable_ensemble(rng, 20_000, m)
    ratio = spread_skill_ratio(ensemble, y)
    # the uncorrected ratio would be sqrt(m / (m + 1)) = 0.816 for m = 2
    assert abs(ratio - 1.0) < abs(ratio - math.sqrt(m / (m + 1))) / 5


def test_pit_values_are_uniform_when_calibrated_and_u_shaped_when_underdispersive():
    rng = np.random.default_rng(7)
    n, m = 22_000, 10
    ensemble, y = exchangeable_ensemble(rng, n, m)
    pit = pit_values(ensemble, y)
    assert pit.shape == y.shape and np.all((pit > 0) & (pit < 1))
    counts = np.bincount(np.floor(pit * (m + 1)).astype(int), minlength=m + 1)
    assert counts.size == m + 1
    p = 1 / (m + 1)
    assert np.all(np.abs(counts / n - p) < binomial_tolerance(p, n))
    ensemble, y = exchangeable_ensemble(rng, n, m, member_scale=0.5)
    counts = np.bincount(np.floor(pit_values(ensemble, y) * (m + 1)).astype(int), minlength=m + 1)
    assert counts[0] / n > 2 * p and counts[-1] / n > 2 * p


def test_pit_counts_ties_as_half():
    ensemble = np.array([[0.0], [1.0], [1.0], [2.0]])  # m = 4, y = 1: rank 1 + 2/2 = 2
    np.testing.assert_allclose(pit_values(ensemble, [1.0]), [2.5 / 5])


# ------------------------------------------------------------------------------------- conformal
def test_conformal_scale_is_the_corrected_order_statistic():
    scores = np.array([0.1, 0.9, 0.4, 0.3, 2.0, 0.7, 0.5, 1.1, 0.2])  # n = 9
    rec = ConformalRecalibrator(alpha=0.2).fit(np.zeros(9), 1.0, scores)
    # k = ceil(10 * 0.8) = 8: the 8th smallest score
    assert rec.scale_ == 1.1 and rec.n_calibration_ == 9
    rec = ConformalRecalibrator(alpha=0.2).fit(np.zeros(9), 2.0, -scores)
    assert rec.scale_ == pytest.approx(0.55)


def test_conformal_recalibration_restores_coverage_of_a_misscaled_model():
    rng = np.random.default_rng(8)
    alpha = 0.1

    def draw(n):
        mean = rng.normal(size=n)
        model_std = rng.uniform(0.5, 2.0, size=n)
        return mean, model_std, mean + 2.5 * model_std * rng.standard_normal(n)  # 2.5x too sure

    mean, std, y = draw(2_000)
    rec = ConformalRecalibrator(alpha=alpha).fit(mean, std, y)
    mean, std, y = draw(20_000)
    raw = interval_coverage(*gaussian_interval(mean, std, 1 - alpha), y)
    calibrated = interval_coverage(*rec.interval(mean, std), y)
    assert raw < 0.6
    # given the calibration set, coverage is Beta-distributed with sd about
    # sqrt(alpha (1 - alpha) / n_cal) = 0.0067; plus test-set binomial noise 0.002
    assert calibrated >= 1 - alpha - 0.03
    assert calibrated <= 1 - alpha + 1 / 2_001 + 0.03
    assert rec.scale_ == pytest.approx(2.5 * stats.norm.ppf(1 - alpha / 2), rel=0.05)
    # the rescaled std gives back the conformal interval at level 1 - alpha
    lower, upper = gaussian_interval(mean, rec.calibrated_std(std), 1 - alpha)
    np.testing.assert_allclose(lower, rec.interval(mean, std)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(upper, rec.interval(mean, std)[1], rtol=1e-12, atol=1e-12)


def test_conformal_marginal_coverage_holds_with_tiny_calibration_sets():
    # With n = 19 and alpha = 0.1, E[coverage] = ceil(20 * 0.9) / 20 = 0.9 exactly, for any model.
    rng = np.random.default_rng(9)
    reps, n = 3_000, 19
    y_cal = rng.standard_cauchy((reps, n))
    y_test = rng.standard_cauchy(reps)
    hits = 0
    for cal, test in zip(y_cal, y_test, strict=True):
        rec = ConformalRecalibrator(alpha=0.1).fit(np.zeros(n), 1.0, cal)
        lower, upper = rec.interval(0.0, 1.0)
        hits += bool(lower <= test <= upper)
    assert abs(hits / reps - 0.9) < binomial_tolerance(0.9, reps)


# ------------------------------------------------------------------------------------- summary
def test_summary_for_ensembles_and_gaussians():
    rng = np.random.default_rng(10)
    ensemble, y = exchangeable_ensemble(rng, 500, 8)
    out = summary(y, ensemble=ensemble)
    assert out["crps"] == pytest.approx(float(np.mean(crps_ensemble(ensemble, y))))
    assert out["spread_skill"] == pytest.approx(spread_skill_ratio(ensemble, y))
    assert out["n_members"] == 8 and out["n_points"] == 500
    mean, std = ensemble.mean(0), ensemble.std(0, ddof=1)
    out = summary(y, mean=mean, std=std, level=0.9)
    assert out["nll"] == pytest.approx(float(np.mean(gaussian_nll(mean, std, y))))
    assert out["coverage"] == interval_coverage(*gaussian_interval(mean, std, 0.9), y)
    assert set(out) == {"level", "crps", "nll", "rmse", "coverage", "n_points"}


# -------------------------------------------------------------------------------------- refusals
def test_shape_mismatches_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(3,\).*\(4,\)"):
        crps_ensemble(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"mean shape \(3,\).*observation shape \(4,\)"):
        crps_gaussian(np.zeros(3), 1.0, np.zeros(4))
    with pytest.raises(ValueError, match=r"std shape \(2,\).*\(3,\)"):
        gaussian_nll(np.zeros(3), np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"upper shape \(2,\).*observation shape \(3,\)"):
        interval_coverage(np.zeros(3), np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        spread_skill_ratio(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="out of range"):
        pit_values(np.zeros((4, 2)), np.zeros(2), axis=2)


@pytest.mark.parametrize("std", [0.0, -1.0, np.nan])
def test_non_positive_std_is_refused(std):
    for fn in (crps_gaussian, gaussian_nll):
        with pytest.raises(ValueError, match="std must be > 0"):
            fn(np.zeros(3), np.array([1.0, std, 1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="std must be > 0"):
        gaussian_interval(np.zeros(3), std)
    with pytest.raises(ValueError, match="std must be > 0"):
        ConformalRecalibrator().fit(np.zeros(3), std, np.zeros(3))


def test_other_refusals():
    with pytest.raises(ValueError, match="at least 2 ensemble members"):
        crps_ensemble(np.zeros((1, 3)), np.zeros(3), fair=True)
    with pytest.raises(ValueError, match="at least 2 ensemble members"):
        spread_skill_ratio(np.zeros((1, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="level"):
        gaussian_interval(0.0, 1.0, level=1.0)
    with pytest.raises(ValueError, match="level"):
        ensemble_interval(np.zeros((3, 2)), level=0.0)
    with pytest.raises(ValueError, match="lower exceeds upper"):
        interval_coverage([1.0], [0.0], [0.5])
    with pytest.raises(ValueError, match="too few"):
        ConformalRecalibrator(alpha=0.1).fit(np.zeros(8), 1.0, np.zeros(8))
    with pytest.raises(ValueError, match="not fitted"):
        ConformalRecalibrator().interval(0.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        ConformalRecalibrator(alpha=1.5).fit(np.zeros(30), 1.0, np.zeros(30))
    with pytest.raises(ValueError, match="either ensemble"):
        summary(np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        crps_gaussian([], 1.0, [])


# ------------------------------------------------------------------------------- the UQ block
def test_uq_block_of_a_gaussian_forecast_recomputed_independently():
    rng = np.random.default_rng(11)
    n, c = 400, 3
    mean = rng.normal(size=(n, c))
    std = rng.uniform(0.5, 2.0, size=(n, c))
    y = mean + std * rng.standard_normal((n, c))
    block = uq_block(y, mean, std)
    assert block["form"] == "gaussian" and block["n_points"] == n * c and block["n_samples"] == n
    for p in (0.5, 0.9, 0.95):
        z = stats.norm.ppf(0.5 + p / 2)
        inside = np.abs(y - mean) <= z * std
        assert block["coverage"][f"{p:g}"] == pytest.approx(inside.mean(), abs=1e-15)
        assert block["width"][f"{p:g}"] == pytest.approx(2 * z * std.mean(), rel=1e-12)
    assert block["nll"] == pytest.approx(-stats.norm.logpdf(y, mean, std).mean(), rel=1e-12)
    assert block["rmse"] == pytest.approx(math.sqrt(((y - mean) ** 2).mean()), rel=1e-12)
    assert block["spread_skill"] == pytest.approx(1.0, abs=0.06)  # calibrated
    # the std says which samples are bad: per-sample mean std and mean |error| correlate
    assert block["std_error_correlation"] > 0.3
    assert block["pit"]["std"] == pytest.approx(1 / math.sqrt(12), abs=0.02)
    assert sum(block["pit"]["histogram"]) == pytest.approx(1.0)
    json.dumps(block)  # plain JSON


def test_uq_block_crps_is_the_integral_definition():
    mean, std, y = np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.3, 4.0]), np.array([0.0, 0.2, 7.0])
    expected = np.mean([crps_by_quadrature(lambda x, m=m, s=s: stats.norm.cdf(x, m, s), yy)
                        for m, s, yy in zip(mean, std, y, strict=True)])
    assert uq_block(y, mean, std)["crps"] == pytest.approx(expected, rel=1e-8)


def test_uq_block_of_an_overconfident_model_shows_it():
    rng = np.random.default_rng(12)
    n = 20_000
    mean = rng.normal(size=n)
    y = mean + 2.0 * rng.standard_normal(n)
    block = uq_block(y, mean, np.ones(n))  # std too small by a factor 2
    expected = 2 * stats.norm.cdf(stats.norm.ppf(0.95) / 2) - 1
    assert abs(block["coverage"]["0.9"] - expected) < binomial_tolerance(expected, n)
    assert block["spread_skill"] == pytest.approx(0.5, abs=0.02)
    assert block["pit"]["std"] > 0.34  # U-shaped
    assert any("constant predicted std" in note for note in block["notes"])


def test_uq_block_refuses_to_label_levels_the_members_cannot_reach():
    rng = np.random.default_rng(13)
    ensemble, y = exchangeable_ensemble(rng, 2_000, 3)
    block = uq_block(y, members=ensemble)
    assert block["form"] == "ensemble" and block["n_members"] == 3
    assert set(block["coverage"]) == {"0.5"}  # (3 - 1)/(3 + 1) = 0.5 is the widest
    assert any("no empirical 0.9 interval from 3 members" in n and "19 members" in n
               for n in block["notes"])
    assert any("no empirical 0.95 interval" in n and "39 members" in n for n in block["notes"])
    # the fitted Gaussian is labelled as such, at every level
    assert set(block["gaussian_fit"]["coverage"]) == {"0.5", "0.9", "0.95"}
    with pytest.raises(ValueError, match="no empirical 0.9 interval from 3 members"):
        uq_block(y, members=ensemble, strict=True)
    # 19 exchangeable members: the min-max interval is an exact 0.9 interval
    ensemble, y = exchangeable_ensemble(rng, 20_000, 19)
    block = uq_block(y, members=ensemble)
    assert set(block["coverage"]) == {"0.5", "0.9"}
    assert abs(block["coverage"]["0.9"] - 0.9) < binomial_tolerance(0.9, 20_000)
    assert block["spread_skill"] == pytest.approx(1.0, abs=0.03)
    assert block["crps"] == pytest.approx(float(np.mean(crps_ensemble(ensemble, y))))
    assert block["crps_fair"] == pytest.approx(float(np.mean(crps_ensemble(ensemble, y,
                                                                           fair=True))))


def test_ensemble_spread_is_zero_for_identical_members():
    rng = np.random.default_rng(14)
    y = rng.normal(size=(50, 4))
    member = y + rng.normal(size=(50, 4))
    block = uq_block(y, members=[member, member.copy(), member.copy()])
    assert block["spread_skill"] == 0.0
    assert spread_skill_ratio(np.stack([member] * 3), y) == 0.0
    assert "nll" not in block and "gaussian_fit" not in block
    assert any("zero spread" in note for note in block["notes"])
    assert block["crps"] == pytest.approx(float(np.abs(member - y).mean()))


def test_uq_block_members_as_list_or_array_and_member_axis_agree():
    rng = np.random.default_rng(15)
    ensemble, y = exchangeable_ensemble(rng, 300, 5)
    a = uq_block(y, members=list(ensemble))
    b = uq_block(y, members=ensemble.T, member_axis=1)
    assert a["crps"] == pytest.approx(b["crps"]) and a["coverage"] == b["coverage"]


def test_uq_block_per_group_coverage_with_clustered_intervals():
    rng = np.random.default_rng(16)
    n, t = 300, 6
    # per-sample random offset: points of one sample are correlated; lead-dependent std error
    lead_sd = np.linspace(0.5, 2.0, t)
    y = rng.normal(size=(n, 1)) * 0.8 + lead_sd * rng.standard_normal((n, t))
    mean = np.zeros((n, t))
    std = np.full((n, t), 1.0)
    block = uq_block(y, mean, std, group_axis=1)
    g = block["by_group"]["0.9"]
    assert g["method"] == "cluster_bootstrap" and g["n_clusters"] == n and g["group"] == list(
        range(t))
    inside = np.abs(y) <= stats.norm.ppf(0.95)
    np.testing.assert_allclose(g["coverage"], inside.mean(axis=0), rtol=0, atol=1e-15)
    assert g["coverage"][0] > 0.9 > g["coverage"][-1]  # coverage falls with lead
    lo, hi = np.array(g["ci_low"]), np.array(g["ci_high"])
    assert np.all(lo <= np.array(g["coverage"])) and np.all(np.array(g["coverage"]) <= hi)
    assert g["pooled"]["coverage"] == pytest.approx(inside.mean())


def test_clustered_intervals_are_wider_than_binomial_ones_for_correlated_points():
    rng = np.random.default_rng(17)
    n, p = 200, 50
    # each sample is entirely inside or entirely outside: its 50 points carry one bit
    hit = rng.uniform(size=(n, 1)) < 0.8
    y = np.where(hit, 0.0, 5.0) * np.ones((n, p))
    lower, upper = -np.ones((n, p)), np.ones((n, p))
    groups = np.zeros((n, p), dtype=int)
    exact = coverage_by_group(lower, upper, y, groups)
    clustered = coverage_by_group(lower, upper, y, groups, clusters=np.arange(n)[:, None])
    assert exact["method"] == "clopper_pearson"
    width_exact = exact["ci_high"][0] - exact["ci_low"][0]
    width_clustered = clustered["ci_high"][0] - clustered["ci_low"][0]
    # effective sample size n instead of n p: sqrt(50) = 7x wider
    assert width_clustered > 4 * width_exact
    # the clustered 95 % interval is about +-1.96 sqrt(0.8 0.2 / 200) = +-0.055
    assert width_clustered == pytest.approx(2 * 1.96 * math.sqrt(0.16 / n), rel=0.2)


def test_uq_block_bad_input_gets_clear_errors():
    y = np.zeros((4, 3))
    with pytest.raises(ValueError, match="members have different shapes.*member 1 has"):
        uq_block(y, members=[np.zeros((4, 3)), np.zeros((4, 2))])
    with pytest.raises(ValueError, match=r"mean shape \(4, 2\) differs from observation shape"):
        uq_block(y, np.zeros((4, 2)), 1.0)
    for bad in (-1.0, 0.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="std must be > 0 and finite"):
            uq_block(y, np.zeros((4, 3)), np.full((4, 3), bad))
    with pytest.raises(ValueError, match="members=..., or both mean"):
        uq_block(y, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="not both"):
        uq_block(y, np.zeros((4, 3)), 1.0, members=np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="group_axis 2 is out of range"):
        uq_block(y, np.zeros((4, 3)), 1.0, group_axis=2)
    with pytest.raises(ValueError, match=r"\(5, 4, 3\)"):
        uq_block(y, members=np.zeros((5, 4, 3)), member_axis=1)


def test_reliability_and_written_plots(tmp_path):
    rng = np.random.default_rng(18)
    mean = rng.normal(size=2_000)
    y = mean + 1.5 * rng.standard_normal(2_000)
    curve = reliability(y, mean, 1.5)
    assert len(curve["levels"]) == 19
    assert np.max(np.abs(np.array(curve["coverage"]) - np.array(curve["levels"]))) < 0.05
    paths = write_uq_plots(y, mean, np.ones(2_000), tmp_path / "figs", "demo",
                           calibrated_std=np.full(2_000, 1.5))
    assert [p.name for p in paths] == ["demo_reliability.png", "demo_pit.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ensemble, y = exchangeable_ensemble(rng, 500, 4)
    paths = write_uq_plots(y, out_dir=tmp_path, prefix="ens", members=ensemble)
    assert all(p.exists() for p in paths)
    with pytest.raises(ValueError, match="members have different shapes"):
        write_uq_plots(y, out_dir=tmp_path, members=[y, y[:3]])
