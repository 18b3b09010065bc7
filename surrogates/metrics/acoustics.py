r"""Errors of predicted acoustic pressure fields and receiver series against the reference (Pa).

Inputs are NumPy arrays, xarray DataArrays or torch tensors; sums are taken in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

__all__ = ["field_errors", "receiver_errors"]


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    elif isinstance(x, xr.DataArray):
        x = x.values
    arr = np.asarray(x, dtype=float)
    return arr


def _pair(pred: Any, true: Any, min_ndim: int) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _as_array(pred), _as_array(true)
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and "
                         f"{true.shape}")
    if pred.ndim < min_ndim:
        raise ValueError(f"pred and true need at least {min_ndim} axes, got shape {pred.shape}")
    return pred, true


def _rel(err_norm: np.ndarray, true_norm: np.ndarray) -> np.ndarray:
    out = np.full(err_norm.shape, np.nan)
    np.divide(err_norm, true_norm, out=out, where=true_norm > 0)
    return out


def _mean(values: np.ndarray, axis: int | None = None) -> Any:
    """Mean over finite entries (NaN where none are), without NumPy's empty-slice warnings."""
    ok = np.isfinite(values)
    count = ok.sum(axis=axis)
    total = np.where(ok, values, 0.0).sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def field_errors(pred: Any, true: Any) -> dict[str, Any]:
    r"""Per-sample field errors over all axes but the first (sample).

    .. math::

        \mathrm{RMSE}_s = \sqrt{\tfrac{1}{N}\sum_i (\hat p_{s,i} - p_{s,i})^2} \ \text{(Pa)},
        \qquad
        \mathrm{relL2}_s = \frac{\|\hat p_s - p_s\|_2}{\|p_s\|_2},

    ``i`` running over the ``N`` time-space entries of sample ``s``.

    Parameters
    ----------
    pred, true : array-like, shape (B, ...)
        Predicted and reference pressures (NumPy, xarray or torch).

    Returns
    -------
    dict
        ``rmse`` and ``rel_l2``: ``(B,)`` arrays; ``rmse_mean`` and ``rel_l2_mean``: their means
        over samples (floats). ``rel_l2`` is NaN for a sample whose reference is all zero, and
        such samples are left out of ``rel_l2_mean``.
    """
    pred, true = _pair(pred, true, 1)
    b = pred.shape[0]
    diff = (pred - true).reshape(b, -1)
    ref = true.reshape(b, -1)
    rmse = np.sqrt(np.mean(diff ** 2, axis=1))
    rel = _rel(np.linalg.norm(diff, axis=1), np.linalg.norm(ref, axis=1))
    return {"rmse": rmse, "rel_l2": rel, "rmse_mean": float(rmse.mean()),
            "rel_l2_mean": float(_mean(rel))}


def receiver_errors(pred: Any, true: Any) -> dict[str, Any]:
    r"""Errors of receiver time series, per sample and receiver.

    For sample ``s`` and receiver ``r`` over the ``n_t`` frames:
    :math:`\mathrm{RMSE}_{s,r} = \sqrt{\tfrac{1}{n_t}\sum_n (\hat p_{s,n,r} - p_{s,n,r})^2}` (Pa)
    and :math:`\mathrm{relL2}_{s,r} = \|\hat p_{s,:,r} - p_{s,:,r}\|_2 / \|p_{s,:,r}\|_2`.

    Parameters
    ----------
    pred, true : array-like, shape (B, n_t, R)
        Predicted and reference receiver pressures (layout of ``receiver_pressure``).

    Returns
    -------
    dict
        ``rmse``, ``rel_l2``: ``(B, R)``; ``rmse_mean``, ``rel_l2_mean``: ``(R,)`` means over
        samples (``rel_l2`` is NaN where the reference series is all zero, e.g. before the
        pulse arrives; those entries are left out of the mean).
    """
    pred, true = _pair(pred, true, 3)
    if pred.ndim != 3:
        raise ValueError(f"receiver pressures must have shape (B, n_t, R), got {pred.shape}")
    diff = pred - true
    rmse = np.sqrt(np.mean(diff ** 2, axis=1))
    rel = _rel(np.linalg.norm(diff, axis=1), np.linalg.norm(true, axis=1))
    return {"rmse": rmse, "rel_l2": rel, "rmse_mean": rmse.mean(axis=0),
            "rel_l2_mean": _mean(rel, axis=0)}
