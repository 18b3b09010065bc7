r"""Scores for mesh-based regression (MMGP conventions), fields given as per-mesh lists.

Fields on varying meshes are lists of per-sample nodal arrays ``(n_nodes_i,)`` or
``(n_nodes_i, c)``; scalars are ``(n,)`` arrays. Definitions (Casenave et al., NeurIPS 2023):

.. math::

    \mathrm{RRMSE}_{\text{scalar}} = \sqrt{\frac1n \sum_i \frac{(\hat y_i - y_i)^2}{y_i^2}},
    \qquad
    \mathrm{RRMSE}_{\text{field}} = \sqrt{\frac1n \sum_i
        \frac{\frac1{N_i}\sum_j (\hat u_{ij} - u_{ij})^2}{\max_j |u_{ij}|^2}},

    Q^2 = 1 - \frac{\sum (\hat y - y)^2}{\sum (y - \bar y)^2}
    \quad\text{over the concatenated test set.}

Probabilistic scores reuse :mod:`surrogates.metrics.uq` (CRPS, NLL, central-interval coverage).
"""

from __future__ import annotations

import numpy as np

from surrogates.metrics.uq import crps_gaussian, gaussian_interval, gaussian_nll, interval_coverage

__all__ = ["scalar_rrmse", "field_rrmse", "q2", "field_relative_l2", "gaussian_scores",
           "evaluate"]


def _pairs(prediction, reference) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(prediction, np.ndarray) and prediction.ndim == 1:
        prediction = [prediction]
        reference = [np.asarray(reference)]
    prediction, reference = list(prediction), list(reference)
    if len(prediction) != len(reference):
        raise ValueError(f"{len(prediction)} predictions for {len(reference)} references")
    if not prediction:
        raise ValueError("no samples to score")
    out = []
    for i, (p, r) in enumerate(zip(prediction, reference, strict=True)):
        p, r = np.asarray(p, float), np.asarray(r, float)
        if p.shape != r.shape:
            raise ValueError(f"sample {i}: prediction shape {p.shape} differs from reference "
                             f"shape {r.shape}")
        out.append((p, r))
    return out


def scalar_rrmse(prediction, reference) -> float:
    """Relative RMSE of a scalar output (reference values must be non-zero)."""
    p, r = np.asarray(prediction, float), np.asarray(reference, float)
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} differs from reference shape {r.shape}")
    if np.any(r == 0):
        raise ValueError("scalar RRMSE divides by the reference; it has zeros")
    return float(np.sqrt(np.mean((p - r) ** 2 / r**2)))


def field_rrmse(prediction, reference) -> float:
    """Field RRMSE: nodal MSE of each sample over its squared max|reference|, RMS over samples."""
    terms = [np.mean((p - r) ** 2) / np.max(np.abs(r)) ** 2 for p, r in _pairs(prediction,
                                                                                 reference)]
    return float(np.sqrt(np.mean(terms)))


def field_relative_l2(prediction, reference) -> np.ndarray:
    """Per-sample ``||pred - ref||_2 / ||ref||_2`` over nodes (and components); shape (n,)."""
    return np.array([np.linalg.norm(p - r) / np.linalg.norm(r)
                     for p, r in _pairs(prediction, reference)])


def _concat(values) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.ravel()
    return np.concatenate([np.asarray(v, float).ravel() for v in values])


def q2(prediction, reference) -> float:
    """Coefficient of determination on the concatenated test set (scalars or field lists)."""
    p, r = _concat(prediction), _concat(reference)
    if p.shape != r.shape:
        raise ValueError(f"prediction has {p.size} values, reference {r.size}")
    return float(1.0 - np.sum((p - r) ** 2) / np.sum((r - r.mean()) ** 2))


def gaussian_scores(mean, std, reference, level: float = 0.95) -> dict[str, float]:
    """Coverage of the central ``level`` interval, mean CRPS and mean NLL, pooled over all values.

    ``std`` is floored at 1e-300 (an exactly-zero std at a pinned node would otherwise be
    rejected by :mod:`surrogates.metrics.uq`).
    """
    m, s, r = _concat(mean), _concat(std), _concat(reference)
    if not (m.shape == s.shape == r.shape):
        raise ValueError(f"mean, std and reference sizes differ: {m.size}, {s.size}, {r.size}")
    s = np.maximum(s, 1e-300)
    lower, upper = gaussian_interval(m, s, level)
    return {"coverage": interval_coverage(lower, upper, r),
            "crps": float(np.mean(crps_gaussian(m, s, r))),
            "nll": float(np.mean(gaussian_nll(m, s, r)))}


def evaluate(mean: dict, std: dict | None, reference: dict, level: float = 0.95
             ) -> dict[str, dict[str, float]]:
    """All scores per output name (``mean``/``std`` as returned by ``MMGPRegressor.predict``)."""
    out = {}
    for name, ref in reference.items():
        if name not in mean:
            raise ValueError(f"no prediction for output {name!r}; predicted {sorted(mean)}")
        pred = mean[name]
        is_field = isinstance(ref, list | tuple) or np.asarray(ref).ndim > 1
        scores = {"q2": q2(pred, ref)}
        if is_field:
            scores["rrmse"] = field_rrmse(pred, ref)
            scores["relative_l2"] = float(np.mean(field_relative_l2(pred, ref)))
        else:
            scores["rrmse"] = scalar_rrmse(pred, ref)
        if std is not None:
            scores.update(gaussian_scores(pred, std[name], ref, level))
        out[name] = scores
    return out
