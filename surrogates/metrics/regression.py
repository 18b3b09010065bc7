"""Evaluation metrics under the names the field uses (NumPy; inputs in physical units).

Arrays are ``(n_examples, *rest)``; per-example quantities reduce over ``rest``.
"""

from __future__ import annotations

import numpy as np


def _check(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = np.asarray(prediction, float), np.asarray(target, float)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from target shape "
                         f"{target.shape}")
    if prediction.ndim < 1 or prediction.shape[0] == 0:
        raise ValueError(f"need at least one example, got shape {prediction.shape}")
    return prediction, target


def relative_l2(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-example ``||pred - true||_2 / ||true||_2`` over all non-example axes; shape (n,)."""
    prediction, target = _check(prediction, target)
    n = prediction.shape[0]
    diff = np.linalg.norm((prediction - target).reshape(n, -1), axis=1)
    return diff / np.linalg.norm(target.reshape(n, -1), axis=1)


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Root-mean-square error over all entries, in the units of the data."""
    prediction, target = _check(prediction, target)
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


def r2_score(prediction: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` over all entries."""
    prediction, target = _check(prediction, target)
    ss_res = np.sum((prediction - target) ** 2)
    ss_tot = np.sum((target - target.mean()) ** 2)
    return float(1.0 - ss_res / ss_tot)


def summary(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The standard set: mean and median relative L2, RMSE, R^2, and the number of examples."""
    rel = relative_l2(prediction, target)
    return {"relative_l2_mean": float(rel.mean()), "relative_l2_median": float(np.median(rel)),
            "rmse": rmse(prediction, target), "r2": r2_score(prediction, target),
            "n_examples": int(rel.size)}
