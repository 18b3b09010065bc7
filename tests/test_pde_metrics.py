"""PDEBench-style metrics against definitions and hand computations."""

import numpy as np
import pytest
import torch

from surrogates.metrics import pde as pm


def fields(shape=(3, 2, 6, 32), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.normal(size=shape) + 1.0


@pytest.mark.parametrize("eps", [0.1, -0.03, 2.5])
def test_nrmse_of_relative_perturbation_is_abs_eps(eps):
    _, target = fields()
    result = pm.nrmse(target + eps * target, target)
    np.testing.assert_allclose(result.value, abs(eps), rtol=1e-12)
    np.testing.assert_allclose(result.per_frame, abs(eps), rtol=1e-12)
    assert result.per_frame.shape == (3, 2, 6)
    assert result.per_time.shape == (6,)
    assert result.per_sample.shape == (3,)


def test_nrmse_matches_definition_and_accepts_three_dims_and_torch():
    pred, target = fields(shape=(4, 5, 16))
    expected = np.sqrt(np.mean((pred - target) ** 2, -1)) / np.sqrt(np.mean(target**2, -1))
    result = pm.nrmse(pred, target)
    np.testing.assert_allclose(result.per_frame[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(result.value, expected.mean(), rtol=1e-12)
    np.testing.assert_allclose(result.per_time, expected.mean(0), rtol=1e-12)
    np.testing.assert_allclose(result.per_sample, expected.mean(1), rtol=1e-12)
    from_torch = pm.nrmse(torch.as_tensor(pred), torch.as_tensor(target))
    np.testing.assert_allclose(from_torch.value, result.value, rtol=1e-12)


def test_nrmse_excludes_context_frames():
    _, target = fields()
    pred = target * 1.2
    pred[:, :, 0] += 1e6  # a huge error in the context frame
    assert pm.nrmse(pred, target).value > 1e3
    result = pm.nrmse(pred, target, t_start=1)
    np.testing.assert_allclose(result.value, 0.2, rtol=1e-12)
    assert result.per_time.shape == (5,)
    with pytest.raises(ValueError, match="no frames"):
        pm.nrmse(pred, target, t_start=6)


def test_rmse_and_max_error_by_hand():
    target = np.zeros((1, 1, 2, 4))
    pred = np.array([[[[1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 3.0, 4.0]]]])
    r = pm.rmse(pred, target)
    np.testing.assert_allclose(r.per_frame[0, 0], [1.0, np.sqrt(25 / 4)])
    np.testing.assert_allclose(r.value, (1.0 + 2.5) / 2)
    m = pm.max_error(pred, target)
    np.testing.assert_allclose(m.per_frame[0, 0], [1.0, 4.0])
    assert m.value == 4.0
    np.testing.assert_allclose(m.per_time, [1.0, 4.0])
    assert pm.max_error(pred, target, t_start=0).per_sample[0] == 4.0
    assert pm.max_error(pred[..., :1, :], target[..., :1, :]).value == 1.0
    with pytest.raises(ValueError, match="differs"):
        pm.rmse(pred, target[..., :3])


def test_parseval_holds():
    for n in (32, 33):
        u = np.random.default_rng(n).normal(size=(5, n))
        np.testing.assert_allclose(pm.parseval_spectrum(u).sum(-1), np.mean(u**2, -1),
                                   rtol=1e-12)


@pytest.mark.parametrize(("k", "band"), [(1, "low"), (3, "low"), (4, "mid"), (11, "mid"),
                                         (12, "high"), (20, "high")])
def test_sine_error_lands_only_in_its_band(k, band):
    n_x, amp = 64, 0.7
    x = np.arange(n_x) / n_x
    target = np.zeros((2, 1, 3, n_x))
    pred = target + amp * np.sin(2 * np.pi * k * x + 0.3)
    errors = pm.fourier_band_errors(pred, target)
    for name, metric in errors.items():
        expected = amp / np.sqrt(2) if name == band else 0.0
        np.testing.assert_allclose(metric.value, expected, atol=1e-12)
    # the band errors add up (in squares) to the RMSE
    total = sum(m.per_frame**2 for m in errors.values())
    np.testing.assert_allclose(total, pm.rmse(pred, target).per_frame**2, rtol=1e-12)


def test_band_edges_are_parameters():
    n_x = 32
    x = np.arange(n_x) / n_x
    pred = np.sin(2 * np.pi * 5 * x)[None, None, None]
    errors = pm.fourier_band_errors(pred, np.zeros_like(pred), band_edges=(2, 6))
    np.testing.assert_allclose(errors["mid"].value, 1 / np.sqrt(2), rtol=1e-12)
    errors = pm.fourier_band_errors(pred, np.zeros_like(pred), band_edges=(6, 8))
    np.testing.assert_allclose(errors["low"].value, 1 / np.sqrt(2), rtol=1e-12)
    np.testing.assert_allclose([errors["mid"].value, errors["high"].value], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="band_edges"):
        pm.fourier_band_errors(pred, pred, band_edges=(8, 4))
