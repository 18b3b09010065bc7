r"""PDEBench-style error metrics of rollouts on a periodic 1D grid.

Every function takes a prediction and a target of shape ``(B, C, T, X)``: samples, channels
(variables), time frames and grid points; ``(B, T, X)`` is read as one channel. Arrays may be
numpy arrays or torch tensors; all sums are done in float64. The first ``t_start`` frames (the
initial context given to the model, which it is not asked to predict) are excluded.

Per frame (sample ``b``, channel ``c``, time ``t``), with :math:`e = \hat u - u` over ``x``:

* RMSE :math:`\sqrt{\mathrm{mean}_x e^2}`,
* nRMSE :math:`\sqrt{\mathrm{mean}_x e^2} / \sqrt{\mathrm{mean}_x u^2}` (a frame whose target is
  identically zero gives ``inf``, or ``nan`` if the error is zero too),
* max error :math:`\max_x |e|`,
* band errors: the RMSE of the part of ``e`` with spatial wavenumbers in a band (see
  :func:`fourier_band_errors`).

RMSE, nRMSE and band errors are averaged over frames (samples, channels, times), as PDEBench does;
the max error is maximised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: PDEBench's default band edges: low k < 4, mid 4 <= k < 12, high k >= 12.
DEFAULT_BAND_EDGES: tuple[int, int] = (4, 12)


@dataclass(frozen=True)
class FrameMetric:
    """A per-frame metric and its summaries.

    Attributes
    ----------
    value : float
        The summary over all frames: the mean (RMSE, nRMSE) or the maximum (max error).
    per_time : ndarray, shape (T - t_start,)
        The same summary over samples and channels, per time frame after the context.
    per_sample : ndarray, shape (B,)
        The same summary over channels and times, per sample.
    per_frame : ndarray, shape (B, C, T - t_start)
        The metric of each frame.
    """

    value: float
    per_time: np.ndarray
    per_sample: np.ndarray
    per_frame: np.ndarray


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor, on any device
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _prepare(pred: Any, target: Any, t_start: int) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 (B, C, T', X), context frames dropped."""
    pred, target = _to_numpy(pred), _to_numpy(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape "
                         f"{target.shape}")
    if pred.ndim == 3:
        pred, target = pred[:, None], target[:, None]
    elif pred.ndim != 4:
        raise ValueError(f"expected arrays of shape (B, C, T, X) or (B, T, X), got {pred.shape}")
    if isinstance(t_start, bool) or not isinstance(t_start, int | np.integer) or t_start < 0:
        raise ValueError(f"t_start must be a non-negative integer, got {t_start!r}")
    if t_start >= pred.shape[2]:
        raise ValueError(f"t_start = {t_start} leaves no frames of the {pred.shape[2]} to score")
    return pred[:, :, t_start:], target[:, :, t_start:]


def _summarise(per_frame: np.ndarray, reduce=np.mean) -> FrameMetric:
    return FrameMetric(value=float(reduce(per_frame)), per_time=reduce(per_frame, axis=(0, 1)),
                       per_sample=reduce(per_frame, axis=(1, 2)), per_frame=per_frame)


def rmse(pred: Any, target: Any, t_start: int = 0) -> FrameMetric:
    """Spatial RMSE of each frame, averaged over samples, channels and times."""
    pred, target = _prepare(pred, target, t_start)
    return _summarise(np.sqrt(np.mean((pred - target) ** 2, axis=-1)))


def nrmse(pred: Any, target: Any, t_start: int = 0) -> FrameMetric:
    """PDEBench's nRMSE: per frame ``sqrt(mean_x (pred - target)^2) / sqrt(mean_x target^2)``,
    averaged over samples, channels and the times from ``t_start`` on.
    """
    pred, target = _prepare(pred, target, t_start)
    num = np.sqrt(np.mean((pred - target) ** 2, axis=-1))
    den = np.sqrt(np.mean(target**2, axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _summarise(num / den)


def max_error(pred: Any, target: Any, t_start: int = 0) -> FrameMetric:
    """Largest absolute error: per frame over ``x``; ``value``, ``per_time`` and ``per_sample``
    are maxima too."""
    pred, target = _prepare(pred, target, t_start)
    return _summarise(np.max(np.abs(pred - target), axis=-1), reduce=np.max)


def parseval_spectrum(u: Any) -> np.ndarray:
    r"""Spectral energy of real signals along the last axis, normalised so Parseval holds.

    With :math:`\hat u_k = \mathrm{rfft}(u)_k / N` (``k = 0 .. N // 2``, the number of periods
    across the domain) the returned :math:`w_k |\hat u_k|^2` (:math:`w_k = 2`, except 1 for
    ``k = 0`` and, for even ``N``, the Nyquist ``k = N / 2``) sums over ``k`` to
    :math:`\mathrm{mean}_x u^2`. A sine :math:`A \sin(2 \pi k x / L)` thus puts
    :math:`A^2 / 2` at ``k``.
    """
    u = _to_numpy(u)
    n = u.shape[-1]
    coef = np.fft.rfft(u, axis=-1) / n
    weight = np.full(coef.shape[-1], 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    return weight * np.abs(coef) ** 2


def fourier_band_errors(pred: Any, target: Any, t_start: int = 0,
                        band_edges: Sequence[int] = DEFAULT_BAND_EDGES) -> dict[str, FrameMetric]:
    r"""RMSE of the error's spatial Fourier modes in low / mid / high wavenumber bands.

    The error of each frame is transformed with the Parseval-normalised rFFT of
    :func:`parseval_spectrum`; the band error is
    :math:`\sqrt{\sum_{k \in \text{band}} w_k |\hat e_k|^2}`, the spatial RMS of the part of the
    error in that band. So the squares of the three band errors of a frame add up to the square
    of its RMSE, and a sine error :math:`A \sin(2 \pi k x / L)` gives :math:`A / \sqrt 2` in the
    band holding ``k`` and zero in the others. Frames are averaged as in :func:`rmse`. The grid is
    taken as periodic with ``k`` counting periods across it.

    Parameters
    ----------
    band_edges : (int, int), default (4, 12)
        ``(k1, k2)``: low is ``k < k1``, mid ``k1 <= k < k2``, high ``k >= k2`` (PDEBench's
        defaults).

    Returns
    -------
    dict
        ``{"low": FrameMetric, "mid": FrameMetric, "high": FrameMetric}``.
    """
    if len(band_edges) != 2 or not 0 <= band_edges[0] <= band_edges[1]:
        raise ValueError(f"band_edges must be two non-decreasing wavenumbers (k1, k2), got "
                         f"{tuple(band_edges)}")
    pred, target = _prepare(pred, target, t_start)
    energy = parseval_spectrum(pred - target)
    k = np.arange(energy.shape[-1])
    k1, k2 = band_edges
    bands = {"low": k < k1, "mid": (k >= k1) & (k < k2), "high": k >= k2}
    return {name: _summarise(np.sqrt(np.sum(energy[..., mask], axis=-1)))
            for name, mask in bands.items()}
