"""Tests of surrogates.models.gp: closed-form leave-one-out, amplitude calibration, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from surrogates.models.gp import BatchedExactGP, variance_factor


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, (n, 2))
    Y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1] + 0.1 * rng.standard_normal(n),
                  0.5 + X[:, 0] * X[:, 1] + 0.05 * rng.standard_normal(n)], 1)
    return X, Y


HYPER = {"lengthscale": [[0.8, 1.3], [0.6, 2.0]], "outputscale": [1.2, 0.7],
         "noise": [0.01, 0.003], "linear_variance": [0.3, 0.05], "mean_constant": [0.2, -0.4]}


def _conditioned(X, Y, **kwargs):
    gp = BatchedExactGP(mean="constant", linear=True, **kwargs)
    return gp.set_hyperparameters(X, Y, HYPER["lengthscale"], HYPER["outputscale"],
                                  HYPER["noise"], linear_variance=HYPER["linear_variance"],
                                  mean_constant=HYPER["mean_constant"])


@pytest.mark.parametrize("grouped", [False, True])
def test_closed_form_loo_equals_conditioning_on_the_others(grouped):
    X, Y = _data()
    groups = np.repeat(np.arange(10), 3) if grouped else None
    gp = _conditioned(X, Y)
    mean, std = gp.loo(groups)
    labels = np.arange(len(X)) if groups is None else groups
    for g in np.unique(labels):
        out = labels == g
        other = _conditioned(X[~out], Y[~out])  # same hyperparameters, the group left out
        m, s = other.predict(X[out], return_std=True)
        np.testing.assert_allclose(mean[out], m, rtol=0, atol=1e-8)
        np.testing.assert_allclose(std[out], s, rtol=0, atol=1e-8)


def test_linear_kernel_and_constant_mean_round_trip_and_extrapolate():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (25, 1))
    y = 3.0 + 2.0 * X[:, 0] + 0.01 * rng.standard_normal(25)
    gp = BatchedExactGP(n_restarts=2, max_iter=150, mean="constant", linear=True).fit(X, y)
    far = np.array([[3.0]])  # far outside the data: only the linear term carries the trend
    assert abs(gp.predict(far)[0, 0] - 9.0) < 0.5
    again = BatchedExactGP.from_arrays(gp.get_arrays())
    assert again.linear and again.mean == "constant"
    np.testing.assert_allclose(again.predict(far, return_std=True), gp.predict(far, True),
                               rtol=1e-12)


def test_overconfident_gp_is_recalibrated_by_its_factor():
    """Data drawn from a known GP; the model has every variance 4x too small (amplitude and
    noise / 4). Per-sample leave-one-out z-scores are then exactly 2x too large, so the factor
    is 4x the correctly scaled model's, and close to 4 itself."""
    rng = np.random.default_rng(2)
    n = 300
    X = rng.uniform(-3, 3, (n, 1))
    ls, s2, noise = 0.7, 1.5, 0.04
    truth = BatchedExactGP().set_hyperparameters(X, np.zeros(n), ls, s2, noise)
    K = np.linalg.inv(truth._precision()[0])
    Y = np.linalg.cholesky(K) @ rng.standard_normal((n, 1))
    right = BatchedExactGP().set_hyperparameters(X, Y, ls, s2, noise)
    narrow = BatchedExactGP().set_hyperparameters(X, Y, ls, s2 / 4, noise / 4)
    x_new = np.linspace(-2, 2, 7)[:, None]
    mean0, std0 = narrow.predict(x_new, return_std=True)
    f_right = right.calibrate_amplitude()
    f_narrow = narrow.calibrate_amplitude()
    np.testing.assert_allclose(f_narrow, 4 * f_right, rtol=1e-8)
    assert 3.3 < f_narrow[0] < 4.8  # mean of 300 chi^2_1 / 300: sd 0.08 relative
    mean1, std1 = narrow.predict(x_new, return_std=True)
    np.testing.assert_allclose(mean1, mean0, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(std1, std0 * np.sqrt(f_narrow), rtol=1e-8)
    # the conformal scale at 90 %: also about 4, and exactly 4x the right model's
    narrow = BatchedExactGP().set_hyperparameters(X, Y, ls, s2 / 4, noise / 4)
    right = BatchedExactGP().set_hyperparameters(X, Y, ls, s2, noise)
    c_narrow = narrow.calibrate_amplitude(method="conformal", level=0.9)
    np.testing.assert_allclose(c_narrow, 4 * right.calibrate_amplitude(method="conformal"),
                               rtol=1e-8)
    assert 3.0 < c_narrow[0] < 5.3


def test_variance_factor_by_hand_and_bad_input():
    r = np.array([1.0, -2.0, 3.0, 0.5])
    s = np.array([1.0, 1.0, 2.0, 0.5])  # z = 1, 2, 1.5, 1
    assert variance_factor(r, s) == pytest.approx((1 + 4 + 2.25 + 1) / 4)
    # n = 9 at level 0.8: rank ceil(10 * 0.8) = 8 of the sorted |z|
    z = np.arange(1.0, 10.0)
    assert variance_factor(z, np.ones(9), "conformal", 0.8) == pytest.approx(
        (8.0 / 1.2815515655446004) ** 2)
    with pytest.raises(ValueError, match="> 0"):
        variance_factor(r, -s)
    with pytest.raises(ValueError, match="finite"):
        variance_factor(r, np.array([1.0, np.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        variance_factor(r, s[:3])
    with pytest.raises(ValueError, match="too few"):
        variance_factor(r, s, "conformal", 0.9)  # 4 samples: 1 - 0.9 < 1/5
    with pytest.raises(ValueError, match="method"):
        variance_factor(r, s, "quantile")


def test_calibration_and_loo_reject_bad_input():
    X, Y = _data(12)
    gp = _conditioned(X, Y)
    with pytest.raises(ValueError, match="one label per training sample"):
        gp.loo(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2 groups"):
        gp.calibrate_amplitude(np.zeros(12))
    with pytest.raises(ValueError, match="method"):
        gp.calibrate_amplitude(method="average")
    with pytest.raises(ValueError, match="too few"):
        gp.calibrate_amplitude(method="conformal", level=0.95)  # 12 samples < 19
    with pytest.raises(ValueError, match="not fitted"):
        BatchedExactGP().loo()
    with pytest.raises(ValueError, match="linear_variance"):
        BatchedExactGP(linear=True).set_hyperparameters(X, Y, 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="at least 2 training points"):
        BatchedExactGP().fit(X[:1], Y[:1])
