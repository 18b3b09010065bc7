"""Split-conformal recalibration: the finite-sample guarantee over many seeds, recovery of a known
miscalibration factor, whole-field bands, the calibration split, JSON round trips, refusals."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from surrogates.metrics.conformal import (
    ConformalRecalibrator,
    SimultaneousConformalBand,
    calibration_split,
    conformal_quantile,
    field_coverage,
    min_calibration_size,
    recalibrator_from_dict,
)
from surrogates.metrics.uq import gaussian_interval, interval_coverage

N_SEEDS = 200


def expected_and_sd(n_cal: int, alpha: float, n_test: int) -> tuple[float, float]:
    """Mean and standard deviation of the average over N_SEEDS runs of the test coverage.

    With continuous scores the coverage given the calibration set is Beta(k, n + 1 - k),
    k = ceil((n + 1)(1 - alpha)), so E = k / (n + 1) and Var = E (1 - E) / (n + 2); a test set of
    n_test exchangeable points adds binomial noise of about E (1 - E) / n_test.
    """
    k = math.ceil((n_cal + 1) * (1 - alpha) * (1 - 1e-12))
    e = k / (n_cal + 1)
    var = e * (1 - e) / (n_cal + 2) + e * (1 - e) / n_test
    return e, math.sqrt(var / N_SEEDS)


def heteroscedastic(rng, n, overconfidence=2.0):
    """x ~ U(0, 1); y = sin(6x) + s(x) eps with s = 0.2 + x; the model's std is s / factor."""
    x = rng.uniform(size=n)
    noise_sd = 0.2 + x
    y = np.sin(6 * x) + noise_sd * rng.standard_normal(n)
    return np.sin(6 * x), noise_sd / overconfidence, y


# ------------------------------------------------------------------------------ the guarantee
@pytest.mark.parametrize("score", ["normalized", "absolute"])
@pytest.mark.parametrize("alpha, n_cal", [(0.1, 99), (0.05, 60)])
def test_mean_coverage_over_200_seeds_is_within_the_binomial_band(score, alpha, n_cal):
    n_test = 500
    coverage = []
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(seed)
        mean, std, y = heteroscedastic(rng, n_cal + n_test)
        std = std if score == "normalized" else None
        cal, test = slice(0, n_cal), slice(n_cal, None)
        rec = ConformalRecalibrator(alpha=alpha).fit(
            mean[cal], None if std is None else std[cal], y[cal])
        lower, upper = rec.interval(mean[test], None if std is None else std[test])
        coverage.append(interval_coverage(lower, upper, y[test]))
    expected, sd = expected_and_sd(n_cal, alpha, n_test)
    # four standard deviations of the 200-seed mean (about 0.009 at alpha = 0.1)
    assert abs(np.mean(coverage) - expected) < 4 * sd, (np.mean(coverage), expected, sd)
    assert expected >= 1 - alpha
    assert 4 * sd < 0.015  # the band is narrow enough to catch an off-by-one rank


def test_raw_intervals_of_the_test_model_do_undercover():
    # the control: without calibration the factor-2 overconfident model covers P(|Z| < 0.82)
    rng = np.random.default_rng(0)
    mean, std, y = heteroscedastic(rng, 20_000)
    raw = interval_coverage(*gaussian_interval(mean, std, 0.9), y)
    expected = 2 * stats.norm.cdf(stats.norm.ppf(0.95) / 2) - 1
    assert abs(raw - expected) < 4 * math.sqrt(expected * (1 - expected) / 20_000)


@pytest.mark.parametrize("factor", [0.5, 2.0, 3.0])
def test_a_model_overconfident_by_a_known_factor_is_rescaled_by_that_factor(factor):
    rng = np.random.default_rng(1)
    alpha = 0.05
    mean, std, y = heteroscedastic(rng, 20_000, overconfidence=factor)
    rec = ConformalRecalibrator(alpha=alpha).fit(mean, std, y)
    ratio = rec.calibrated_std(std) / std
    # The 0.95 quantile of |Z| from 20000 draws has relative standard error
    # sqrt(0.95 * 0.05 / 20000) / (2 phi(1.96) * 1.96) = 0.0067; 0.03 is 4.5 of them.
    np.testing.assert_allclose(ratio, factor, rtol=0.03)
    assert rec.scale_ == pytest.approx(factor * stats.norm.ppf(1 - alpha / 2), rel=0.03)
    # fresh test data: the recalibrated Gaussian interval at 1 - alpha covers nominally
    mean, std, y = heteroscedastic(rng, 20_000, overconfidence=factor)
    cov = interval_coverage(*gaussian_interval(mean, rec.calibrated_std(std), 1 - alpha), y)
    assert abs(cov - (1 - alpha)) < 0.01


def test_per_output_scales_recover_per_output_factors():
    rng = np.random.default_rng(2)
    n, factors = 20_000, np.array([1.0, 2.0, 4.0])
    std = rng.uniform(0.5, 1.5, size=(n, 3))
    y = factors * std * rng.standard_normal((n, 3))
    rec = ConformalRecalibrator(alpha=0.1, output_axis=1).fit(np.zeros((n, 3)), std, y)
    assert rec.scale_.shape == (3,) and rec.n_calibration_ == n
    np.testing.assert_allclose(rec.scale_ / stats.norm.ppf(0.95), factors, rtol=0.03)
    lower, upper = rec.interval(np.zeros((5, 3)), np.ones((5, 3)))
    np.testing.assert_allclose(upper[0], rec.scale_)
    with pytest.raises(ValueError, match="3 per-output scales"):
        rec.interval(np.zeros((5, 4)), np.ones((5, 4)))


def test_conformal_quantile_is_the_corrected_order_statistic():
    scores = np.arange(1.0, 20.0)  # n = 19
    assert conformal_quantile(scores, 0.1) == 18.0  # k = ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.05) == 19.0  # k = 19 = n
    assert min_calibration_size(0.05) == 19 and min_calibration_size(0.1) == 9
    with pytest.raises(ValueError, match=r"alpha < 1/\(n\+1\)"):
        conformal_quantile(scores[:18], 0.05)


# ------------------------------------------------------------------------------ whole fields
def random_fields(rng, n, n_points=32, length=0.15):
    """Smooth Gaussian fields on [0, 1) (squared-exponential covariance), heteroscedastic std."""
    x = np.linspace(0.0, 1.0, n_points, endpoint=False)
    cov = np.exp(-0.5 * ((x[:, None] - x[None, :]) / length) ** 2)
    w, v = np.linalg.eigh(cov)
    root = v * np.sqrt(np.clip(w, 0.0, None))  # root @ root.T = cov
    sd = 0.5 + np.sin(2 * np.pi * x) ** 2  # (n_points,)
    return sd * (rng.standard_normal((n, n_points)) @ root.T), np.broadcast_to(sd, (n, n_points))


@pytest.mark.parametrize("score", ["normalized", "absolute"])
def test_simultaneous_band_covers_whole_fields_at_the_nominal_level(score):
    alpha, n_cal, n_test = 0.1, 99, 300
    whole, marginal_whole = [], []
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(1000 + seed)
        y, sd = random_fields(rng, n_cal + n_test)
        model_sd = 0.5 * sd if score == "normalized" else None  # overconfident by 2
        mean = np.zeros_like(y)
        band = SimultaneousConformalBand(alpha=alpha).fit(
            mean[:n_cal], None if model_sd is None else model_sd[:n_cal], y[:n_cal])
        lower, upper = band.interval(mean[n_cal:], None if model_sd is None else
                                     model_sd[n_cal:])
        whole.append(field_coverage(lower, upper, y[n_cal:]))
        if seed < 20:
            rec = ConformalRecalibrator(alpha=alpha).fit(
                mean[:n_cal], None if model_sd is None else model_sd[:n_cal], y[:n_cal])
            lo, hi = rec.interval(mean[n_cal:], None if model_sd is None else model_sd[n_cal:])
            marginal_whole.append(field_coverage(lo, hi, y[n_cal:]))
    expected, sd_mean = expected_and_sd(n_cal, alpha, n_test)
    assert abs(np.mean(whole) - expected) < 4 * sd_mean, (np.mean(whole), expected, sd_mean)
    # per-point (marginal) intervals cover each point, not whole fields
    assert np.mean(marginal_whole) < expected - 0.2


def test_simultaneous_band_is_wider_than_the_marginal_one_and_rebuilds_from_json():
    rng = np.random.default_rng(3)
    y, sd = random_fields(rng, 200)
    band = SimultaneousConformalBand(alpha=0.1).fit(np.zeros_like(y), sd, y)
    rec = ConformalRecalibrator(alpha=0.1).fit(np.zeros_like(y), sd, y)
    assert band.scale_ > rec.scale_ and band.n_calibration_ == 200 and rec.n_calibration_ == 6400
    for obj in (band, rec):
        again = recalibrator_from_dict(json.loads(json.dumps(obj.to_dict())))
        assert type(again) is type(obj)
        np.testing.assert_array_equal(again.interval(np.zeros(4), np.ones(4))[1],
                                      obj.interval(np.zeros(4), np.ones(4))[1])
    per_output = ConformalRecalibrator(alpha=0.2, output_axis=1).fit(np.zeros_like(y), sd, y)
    again = ConformalRecalibrator.from_dict(json.loads(json.dumps(per_output.to_dict())))
    np.testing.assert_array_equal(again.scale_, per_output.scale_)
    with pytest.raises(ValueError, match="kind"):
        SimultaneousConformalBand.from_dict(rec.to_dict())
    with pytest.raises(ValueError, match="unknown recalibrator kind"):
        recalibrator_from_dict({"kind": "pickle"})


def test_simultaneous_band_on_channels_first_fields_with_sample_axis():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((2, 30, 5))  # samples on axis 1
    band = SimultaneousConformalBand(alpha=0.1, sample_axis=1).fit(np.zeros_like(y), None, y)
    assert band.n_calibration_ == 30
    maxima = np.abs(y).max(axis=(0, 2))
    assert band.scale_ == np.sort(maxima)[math.ceil(31 * 0.9) - 1]
    lower, upper = band.interval(np.zeros_like(y))
    assert field_coverage(lower, upper, y, sample_axis=1) == pytest.approx(
        np.mean(maxima <= band.scale_))


# ------------------------------------------------------------------------- calibration split
def test_calibration_split_draws_from_training_indices_only():
    train, test = np.arange(100, 200), np.arange(0, 100)
    fit, cal = calibration_split(train, 0.25, seed=7, test=test)
    assert cal.size == 25 and fit.size == 75
    assert np.intersect1d(fit, cal).size == 0
    np.testing.assert_array_equal(np.union1d(fit, cal), train)
    assert np.intersect1d(cal, test).size == 0
    again = calibration_split(train, 0.25, seed=7)
    np.testing.assert_array_equal(again[1], cal)
    assert not np.array_equal(calibration_split(train, 0.25, seed=8)[1], cal)
    fit, cal = calibration_split(10, 0.3, seed=0)
    np.testing.assert_array_equal(np.union1d(fit, cal), np.arange(10))
    with pytest.raises(ValueError, match="test indices are among the training indices"):
        calibration_split(np.arange(50), 0.2, test=[3, 60])
    with pytest.raises(ValueError, match="too few for alpha"):
        calibration_split(100, 0.1, alpha=0.05)  # 10 calibration examples, 19 needed
    with pytest.raises(ValueError, match="both must be >= 1"):
        calibration_split(3, 0.1)
    with pytest.raises(ValueError, match="fraction"):
        calibration_split(10, 1.0)
    with pytest.raises(ValueError, match="repeated"):
        calibration_split([1, 1, 2], 0.5)


# -------------------------------------------------------------------------------- refusals
def test_refusals_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"8 calibration points are too few.*alpha < 1/\(n\+1\)"):
        ConformalRecalibrator(alpha=0.1).fit(np.zeros(8), 1.0, np.zeros(8))
    with pytest.raises(ValueError, match="too few"):
        SimultaneousConformalBand(alpha=0.05).fit(np.zeros((18, 4)), 1.0, np.zeros((18, 4)))
    for bad in (-1.0, 0.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="std must be > 0 and finite"):
            ConformalRecalibrator().fit(np.zeros(30), np.full(30, bad), np.zeros(30))
    with pytest.raises(ValueError, match=r"mean shape \(30,\).*observation shape \(29,\)"):
        ConformalRecalibrator().fit(np.zeros(30), None, np.zeros(29))
    rec = ConformalRecalibrator(alpha=0.1).fit(np.zeros(30), None, np.ones(30))
    with pytest.raises(ValueError, match="absolute"):
        rec.interval(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="not fitted"):
        SimultaneousConformalBand().interval(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="not finite"):
        conformal_quantile([1.0, np.nan] * 20, 0.1)
