r"""Evaluation of forecasts and long runs of dynamical surrogates against a reference (NumPy).

A dynamical surrogate (a hybrid Lorenz-96 model with a learned closure, see
:mod:`operators.mno`, or later a climate emulator) is judged twice: on *short-range skill*, how
long a forecast started from the reference state stays close to the reference trajectory, and on
*climate*, whether a long free run has the statistics of the reference system even after the
individual trajectories have decorrelated. This module computes both, plus the cost of a run and
the skill of ensemble forecasts, and draws the standard figures.

Array conventions
-----------------
Trajectories are ``(B, T, K)``: ``B`` initial conditions (samples), ``T`` lead times (time axis 1)
and ``K`` grid points (for Lorenz-96 the slow variables :math:`X_k`). Values are in the units of
the state (Lorenz-96: nondimensional model units), times in model time units (MTU). Ensembles add a
member axis (default 0): ``(M, B, T, K)``. Inputs are anything :func:`numpy.asarray` accepts,
including CPU torch tensors.

Climate statistics pool the values over ``k`` (and over samples and time): Lorenz-96 is
homogeneous in ``k``, so every :math:`X_k` has the same distribution. Pooling makes the
statistics independent of ``K``, so a run on one grid can be compared with a reference on another.

Contents
--------
* Short-range skill: :func:`rmse_by_lead`, :func:`normalised_error`,
  :func:`valid_prediction_time`.
* Climate: :func:`climate_statistics` (:class:`ClimateStatistics`), :func:`hellinger_distance`,
  :func:`wasserstein_distance`, :func:`compare_climates`.
* Cost: :func:`cost_per_model_time_unit`.
* Ensembles: :func:`ensemble_skill` (CRPS and spread-skill ratio from :mod:`surrogates.metrics.uq`).
* Figures: :mod:`surrogates.metrics.dynamics_plots`.

References
----------
.. [1] J. Pathak, B. Hunt, M. Girvan, Z. Lu and E. Ott, "Model-free prediction of large
   spatiotemporally chaotic systems from data: a reservoir computing approach", Phys. Rev. Lett.
   120 (2018) 024102 (valid prediction time).
.. [2] D. S. Wilks, "Effects of stochastic parametrizations in the Lorenz '96 system",
   Q. J. R. Meteorol. Soc. 131 (2005) 389-407 (climate PDFs and autocorrelation as skill).
.. [3] B. Lütjens, C. H. Crawford, C. D. Watson, C. Hill and D. Newman, "Multiscale neural
   operator: learning fast and grid-independent PDE solvers", arXiv:2207.11417 (2022).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from surrogates.metrics import uq

__all__ = ["ClimateStatistics", "climate_statistics", "compare_climates",
           "cost_per_model_time_unit", "ensemble_skill", "hellinger_distance",
           "normalised_error", "rmse_by_lead", "valid_prediction_time", "wasserstein_distance"]


# --------------------------------------------------------------------------------------- helpers
def _trajectories(x, name: str) -> np.ndarray:
    """``x`` as a float array of shape ``(B, T, K)``."""
    x = uq._array(x, name)
    if x.ndim != 3:
        raise ValueError(f"{name} must be trajectories of shape (B, T, K) = (samples, lead times, "
                         f"grid), got shape {x.shape}")
    return x


def _pair(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    """Checked prediction and reference trajectories of equal shape ``(B, T, K)``."""
    pred, ref = _trajectories(pred, "pred"), _trajectories(ref, "ref")
    if pred.shape != ref.shape:
        raise ValueError(f"pred shape {pred.shape} differs from ref shape {ref.shape}; both must "
                         "be (B, T, K) = (samples, lead times, grid)")
    return pred, ref


def _positive(value, name: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _finite(x: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"{name} (shape {x.shape}) has {bad} non-finite values of {x.size}; a "
                         "surrogate run that blew up has no climate; truncate or discard it first")
    return x


# ----------------------------------------------------------------------------- short-range skill
def rmse_by_lead(pred, ref) -> np.ndarray:
    r"""Root-mean-square error per lead time, over samples and grid.

    .. math::

        \mathrm{RMSE}(t) = \sqrt{\frac{1}{B K} \sum_{b=1}^{B} \sum_{k=1}^{K}
            (\hat X_{b,t,k} - X_{b,t,k})^2 }

    Parameters
    ----------
    pred, ref : array_like, shape ``(B, T, K)``
        Forecast and reference trajectories (samples, lead times, grid), in the units of the state.

    Returns
    -------
    ndarray, shape ``(T,)``
        RMSE at each lead time, in the units of the state.

    Raises
    ------
    ValueError
        If the arrays are not 3-D or their shapes differ (the message names both shapes).
    """
    pred, ref = _pair(pred, ref)
    return np.sqrt(np.mean((pred - ref) ** 2, axis=(0, 2)))


def normalised_error(pred, ref, climatological_std: float) -> np.ndarray:
    r"""RMSE over the grid divided by the climatological standard deviation, per sample and time.

    .. math::

        E_b(t) = \frac{\lVert \hat X_{b,t,\cdot} - X_{b,t,\cdot} \rVert_2}
                      {\sqrt{K}\, \sigma_{\mathrm{clim}}}
               = \frac{\sqrt{\frac1K \sum_k (\hat X_{b,t,k} - X_{b,t,k})^2}}
                      {\sigma_{\mathrm{clim}}} ,

    where :math:`\sigma_{\mathrm{clim}}` is the climatological standard deviation of :math:`X_k`
    (pooled over ``k``; e.g. ``climate_statistics(X_ref).std``). :math:`E` is dimensionless; two
    independent draws from the climate have :math:`E \approx \sqrt 2`, so a forecast that has lost
    all skill sits near there.

    Parameters
    ----------
    pred, ref : array_like, shape ``(B, T, K)``
        Forecast and reference trajectories.
    climatological_std : float
        :math:`\sigma_{\mathrm{clim}} > 0`, in the units of the state.

    Returns
    -------
    ndarray, shape ``(B, T)``
        Normalised error per sample and lead time (dimensionless).

    Raises
    ------
    ValueError
        If the shapes differ or are not 3-D, or ``climatological_std`` is not a finite positive
        number.
    """
    pred, ref = _pair(pred, ref)
    sigma = _positive(climatological_std, "climatological_std")
    return np.sqrt(np.mean((pred - ref) ** 2, axis=2)) / sigma


def valid_prediction_time(pred, ref, times, climatological_std: float,
                          threshold: float = 0.5) -> np.ndarray:
    r"""Valid prediction time: the first time the normalised error exceeds a threshold.

    With :math:`E_b(t)` from :func:`normalised_error` on the saved times :math:`t_0 < \dots <
    t_{T-1}`,

    .. math::

        \mathrm{VPT}_b = t_{i^*}, \qquad i^* = \min\{ i : E_b(t_i) > \varepsilon \} ,

    with :math:`\varepsilon` = ``threshold`` [1]_. No interpolation is done, so the value is known
    to one saving interval: the true crossing lies in :math:`(t_{i^*-1}, t_{i^*}]`. A non-finite
    error (a forecast that blew up) counts as exceeding the threshold. A forecast that stays within
    the threshold over the whole horizon gets :math:`t_{T-1}` (the full horizon), which is then a
    lower bound; use a longer horizon if many samples reach it.

    Parameters
    ----------
    pred, ref : array_like, shape ``(B, T, K)``
        Forecast and reference trajectories.
    times : array_like, shape ``(T,)``
        Time of each lead (MTU), usually ``dt * save_every * arange(T)``.
    climatological_std : float
        :math:`\sigma_{\mathrm{clim}} > 0` as in :func:`normalised_error`.
    threshold : float, default 0.5
        :math:`\varepsilon > 0` (dimensionless); 0.5 as in Pathak et al. [1]_.

    Returns
    -------
    ndarray, shape ``(B,)``
        Valid prediction time per sample, in the units of ``times``.

    Raises
    ------
    ValueError
        On mismatched or non-3-D shapes, ``times`` not of shape ``(T,)``, or a non-positive
        ``climatological_std`` or ``threshold``.

    References
    ----------
    .. [1] Pathak et al. (2018).
    """
    error = normalised_error(pred, ref, climatological_std)
    times = np.asarray(times, dtype=float)
    if times.shape != (error.shape[1],):
        raise ValueError(f"times shape {times.shape} does not match the T = {error.shape[1]} lead "
                         f"times of pred shape {np.shape(pred)}; expected ({error.shape[1]},)")
    threshold = _positive(threshold, "threshold")
    exceeded = ~(error <= threshold)  # NaN and inf count as exceeded
    first = np.where(exceeded.any(axis=1), exceeded.argmax(axis=1), error.shape[1] - 1)
    return times[first]


# --------------------------------------------------------------------------------------- climate
@dataclass(frozen=True)
class ClimateStatistics:
    """Statistics of a long run, pooled over samples, time and grid (see
    :func:`climate_statistics`).

    Attributes
    ----------
    mean, std : float
        Pooled mean and standard deviation of :math:`X_k` (units of the state).
    density : ndarray, shape ``(n_bins,)``
        Histogram density on ``edges``; integrates to 1 over them.
    edges : ndarray, shape ``(n_bins + 1,)``
        Bin edges (units of the state).
    acf : ndarray, shape ``(max_lag + 1,)``
        Autocorrelation at lags ``0 .. max_lag`` saved steps; ``acf[0] == 1``.
    n_values : int
        Number of pooled values ``B * T * K``.
    """

    mean: float
    std: float
    density: np.ndarray
    edges: np.ndarray
    acf: np.ndarray
    n_values: int


def _edges(bins, lo: float, hi: float) -> np.ndarray:
    """Bin edges: ``bins`` itself if it is an array of edges, else equal bins over [lo, hi]."""
    if np.ndim(bins) == 0:
        n = int(bins)
        if n < 1:
            raise ValueError(f"bins must be >= 1, got {bins}")
        if hi <= lo:  # constant data: a unit-width range around it, as numpy.histogram does
            lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, n + 1)
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"bins given as edges must be a strictly increasing 1-D array of at least "
                         f"2 values, got shape {edges.shape}")
    return edges


def _autocorrelation(x: np.ndarray, mean: float, var: float, max_lag: int) -> np.ndarray:
    """Pooled autocorrelation of ``(B, T, K)`` along axis 1; NaN when ``var == 0``."""
    if var == 0.0:
        return np.full(max_lag + 1, np.nan)
    a = x - mean
    n_time = a.shape[1]
    acf = np.empty(max_lag + 1)
    for lag in range(max_lag + 1):
        count = a.shape[0] * (n_time - lag) * a.shape[2]
        acf[lag] = np.einsum("btk,btk->", a[:, :n_time - lag], a[:, lag:]) / (count * var)
    return acf


def climate_statistics(X, *, bins=100, value_range: tuple[float, float] | None = None,
                       max_lag: int = 50) -> ClimateStatistics:
    r"""Mean, standard deviation, histogram density and autocorrelation of a long run.

    All values :math:`X_{b,t,k}` (``N = B T K`` of them) are pooled, the system being homogeneous
    in ``k``:

    .. math::

        \mu = \frac1N \sum_{b,t,k} X_{b,t,k}, \qquad
        \sigma^2 = \frac1N \sum_{b,t,k} (X_{b,t,k} - \mu)^2 ,

    and the autocorrelation at a lag of :math:`\tau` saved steps averages over samples, grid and
    the :math:`T - \tau` available time origins:

    .. math::

        \rho(\tau) = \frac{1}{B K (T - \tau)\, \sigma^2} \sum_{b,k} \sum_{t=0}^{T-\tau-1}
            (X_{b,t,k} - \mu)(X_{b,t+\tau,k} - \mu) ,

    so :math:`\rho(0) = 1`. Using the pooled :math:`\mu, \sigma` (not per-series ones) treats each
    run as a sample of one stationary climate; drop the spin-up before calling. The time lag is
    :math:`\tau` times the saving interval.

    Parameters
    ----------
    X : array_like, shape ``(B, T, K)``
        Long trajectories (samples, time, grid), after spin-up.
    bins : int or array_like, default 100
        Number of equal-width bins over ``value_range``, or the bin edges themselves (use the same
        edges for runs that will be compared; :func:`compare_climates` does).
    value_range : (float, float), optional
        Histogram range when ``bins`` is an int; default ``(X.min(), X.max())``. Values outside
        are left out and the density is normalised over the range.
    max_lag : int, default 50
        Largest lag of the autocorrelation, in saved steps; ``0 <= max_lag < T``.

    Returns
    -------
    ClimateStatistics
        ``mean``, ``std``, ``density`` and ``edges``, ``acf`` of shape ``(max_lag + 1,)``
        (all NaN for a constant run) and ``n_values``.

    Raises
    ------
    ValueError
        If ``X`` is not 3-D, has non-finite values (a run that blew up), ``max_lag`` is out of
        range, or ``bins`` is invalid.
    """
    x = _finite(_trajectories(X, "X"), "X")
    max_lag = int(max_lag)
    if not 0 <= max_lag < x.shape[1]:
        raise ValueError(f"max_lag must satisfy 0 <= max_lag < T = {x.shape[1]} (X shape "
                         f"{x.shape}), got {max_lag}")
    lo, hi = (float(x.min()), float(x.max())) if value_range is None else map(float, value_range)
    edges = _edges(bins, lo, hi)
    density, _ = np.histogram(x, bins=edges, density=True)
    mean, var = float(x.mean()), float(x.var())
    if x.min() == x.max():  # a run stuck at a fixed point; rounding could leave var ~ 1e-33
        var = 0.0
    return ClimateStatistics(mean=mean, std=math.sqrt(var), density=density, edges=edges,
                             acf=_autocorrelation(x, mean, var, max_lag), n_values=int(x.size))


def hellinger_distance(p, q, edges) -> float:
    r"""Hellinger distance between two densities given on the same bins.

    .. math::

        H^2(p, q) = 1 - \sum_i \sqrt{p_i q_i}\, \Delta x_i , \qquad H \in [0, 1] ,

    the discrete form of :math:`1 - \int \sqrt{p(x) q(x)}\, dx`: 0 for identical densities, 1 for
    densities with disjoint support. Small negative :math:`H^2` from rounding is clipped to 0.

    Parameters
    ----------
    p, q : array_like, shape ``(n_bins,)``
        Densities (per unit of the state, >= 0), each integrating to 1 over ``edges``, e.g.
        ``ClimateStatistics.density``.
    edges : array_like, shape ``(n_bins + 1,)``
        Common bin edges, increasing.

    Returns
    -------
    float
        :math:`H` (dimensionless).

    Raises
    ------
    ValueError
        If the shapes do not fit together or a density is negative.
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    edges = np.asarray(edges, dtype=float)
    if p.ndim != 1 or p.shape != q.shape or edges.shape != (p.size + 1,):
        raise ValueError(f"need densities p and q of one shape (n_bins,) and edges of shape "
                         f"(n_bins + 1,); got p {p.shape}, q {q.shape}, edges {edges.shape}")
    if np.any(p < 0) or np.any(q < 0):
        raise ValueError("densities must be >= 0 everywhere")
    h2 = 1.0 - float(np.sum(np.sqrt(p * q) * np.diff(edges)))
    return math.sqrt(max(h2, 0.0))


def wasserstein_distance(x, y) -> float:
    r"""Wasserstein-1 (earth mover's) distance between the pooled values of two runs.

    For the empirical distribution functions :math:`F` of ``x`` and :math:`G` of ``y``,

    .. math::

        W_1 = \int_{-\infty}^{\infty} |F(s) - G(s)|\, ds ,

    computed exactly by :func:`scipy.stats.wasserstein_distance`. Unlike the Hellinger distance it
    needs no bins and is in the units of the state (a pure shift by :math:`a` gives
    :math:`|a|`).

    Parameters
    ----------
    x, y : array_like
        Values of each run, any shapes (flattened and pooled).

    Returns
    -------
    float
        :math:`W_1`, in the units of the state.

    Raises
    ------
    ValueError
        If either input is empty or has non-finite values.
    """
    x = _finite(uq._array(x, "x"), "x").ravel()
    y = _finite(uq._array(y, "y"), "y").ravel()
    return float(stats.wasserstein_distance(x, y))


def compare_climates(X_model, X_ref, *, bins=100, value_range: tuple[float, float] | None = None,
                     max_lag: int = 50) -> dict[str, float]:
    r"""Distances between the climate of a model run and that of a reference run.

    Both runs are summarised by :func:`climate_statistics` on shared bins (over ``value_range``,
    by default the range covering both runs) and compared by

    * ``mean_abs_diff`` :math:`|\mu_m - \mu_r|` and ``std_abs_diff`` :math:`|\sigma_m - \sigma_r|`
      (units of the state);
    * ``hellinger``: :func:`hellinger_distance` of the densities (dimensionless, in [0, 1]);
    * ``wasserstein``: :func:`wasserstein_distance` of the pooled values (units of the state);
    * ``acf_rmse``: :math:`\sqrt{\frac{1}{L+1} \sum_{\tau=0}^{L} (\rho_m(\tau) - \rho_r(\tau))^2}`
      with :math:`L` = ``max_lag`` (dimensionless).

    The runs may differ in ``B``, ``T`` and even ``K`` (values are pooled over the grid), but
    must share the saving interval for the autocorrelations to be comparable.

    Parameters
    ----------
    X_model, X_ref : array_like, shapes ``(B, T, K)`` and ``(B', T', K')``
        Long runs of the model and the reference, after spin-up.
    bins, value_range, max_lag
        As in :func:`climate_statistics`; ``max_lag < min(T, T')``.

    Returns
    -------
    dict of str to float
        The five distances above; all 0 for identical runs.

    Raises
    ------
    ValueError
        As :func:`climate_statistics` (e.g. a model run containing NaN or inf).
    """
    xm = _finite(_trajectories(X_model, "X_model"), "X_model")
    xr = _finite(_trajectories(X_ref, "X_ref"), "X_ref")
    if value_range is None:
        value_range = (float(min(xm.min(), xr.min())), float(max(xm.max(), xr.max())))
    edges = _edges(bins, *value_range)
    sm = climate_statistics(xm, bins=edges, max_lag=max_lag)
    sr = climate_statistics(xr, bins=edges, max_lag=max_lag)
    return {"mean_abs_diff": abs(sm.mean - sr.mean),
            "std_abs_diff": abs(sm.std - sr.std),
            "hellinger": hellinger_distance(sm.density, sr.density, edges),
            "wasserstein": wasserstein_distance(xm, xr),
            "acf_rmse": float(np.sqrt(np.mean((sm.acf - sr.acf) ** 2)))}


# ------------------------------------------------------------------------------------------ cost
def cost_per_model_time_unit(step_fn: Callable[[], object], n_steps: int, dt: float,
                             repeats: int = 3, warmup: int = 1) -> float:
    r"""Wall-clock seconds per model time unit of a time stepper, best of ``repeats``.

    .. math::

        c = \frac{\min_r t_r}{n_{\mathrm{steps}}\, \Delta t}
            \quad [\mathrm{s\ per\ MTU}]

    where :math:`t_r` is the wall time (``time.perf_counter``) of the ``r``-th call of
    ``step_fn``. The minimum is the least noisy estimate of the cost on an otherwise idle machine.
    ``step_fn`` must itself run the ``n_steps`` steps *and* wait for them to finish: with
    asynchronous back-ends the caller synchronises inside it (``torch.cuda.synchronize()``,
    ``jax.block_until_ready``); this function does not. The ``warmup`` calls before timing absorb
    one-off costs such as JIT compilation and memory allocation.

    Parameters
    ----------
    step_fn : callable
        Zero-argument function that runs ``n_steps`` steps of size ``dt`` (its result is ignored).
    n_steps : int
        Number of steps one call runs, >= 1.
    dt : float
        Step size in MTU, > 0.
    repeats : int, default 3
        Timed calls, >= 1.
    warmup : int, default 1
        Untimed calls first, >= 0.

    Returns
    -------
    float
        Seconds of wall time per MTU simulated (for the whole batch the stepper advances).

    Raises
    ------
    ValueError
        If ``n_steps``, ``repeats`` or ``dt`` are not positive or ``warmup`` is negative.
    """
    dt = _positive(dt, "dt")
    if int(n_steps) < 1 or int(repeats) < 1 or int(warmup) < 0:
        raise ValueError(f"need n_steps >= 1, repeats >= 1 and warmup >= 0; got n_steps={n_steps}, "
                         f"repeats={repeats}, warmup={warmup}")
    for _ in range(int(warmup)):
        step_fn()
    best = math.inf
    for _ in range(int(repeats)):
        start = time.perf_counter()
        step_fn()
        best = min(best, time.perf_counter() - start)
    return best / (int(n_steps) * dt)


# ------------------------------------------------------------------------------------- ensembles
def ensemble_skill(ensemble_pred, ref, axis: int = 0) -> dict[str, np.ndarray]:
    r"""Per-lead-time CRPS, ensemble-mean RMSE and spread-skill ratio of an ensemble forecast.

    With members along ``axis`` and the reference of shape ``(B, T, K)``, at each lead time
    :math:`t`

    * ``crps[t]``: :func:`surrogates.metrics.uq.crps_ensemble` averaged over samples and grid,
      :math:`\frac{1}{BK} \sum_{b,k} \mathrm{CRPS}(\{\hat X^{(i)}_{b,t,k}\}_i, X_{b,t,k})`
      (units of the state; for one member it is the mean absolute error);
    * ``rmse[t]``: :func:`rmse_by_lead` of the ensemble mean (units of the state);
    * ``spread_skill[t]``: :func:`surrogates.metrics.uq.spread_skill_ratio` over the points of lead
      :math:`t` (dimensionless, ~1 when calibrated); NaN with a single member, or where the
      ensemble mean equals the reference exactly (e.g. an unperturbed start).

    Parameters
    ----------
    ensemble_pred : array_like, shape ``(M, B, T, K)`` with the members on ``axis``
        Ensemble forecast.
    ref : array_like, shape ``(B, T, K)``
        Reference trajectories.
    axis : int, default 0
        Member axis of ``ensemble_pred``.

    Returns
    -------
    dict of str to ndarray, each of shape ``(T,)``
        ``crps``, ``rmse`` and ``spread_skill``.

    Raises
    ------
    ValueError
        If ``ref`` is not ``(B, T, K)`` or the ensemble without its member axis does not have the
        shape of ``ref`` (the message names both).
    """
    ref = _trajectories(ref, "ref")
    members, ref = uq._ensemble(ensemble_pred, ref, axis)  # members on the last axis
    crps = uq.crps_ensemble(members, ref, axis=-1).mean(axis=(0, 2))
    spread_skill = np.full(ref.shape[1], np.nan)
    if members.shape[-1] >= 2:
        for t in range(ref.shape[1]):
            if np.any(members[:, t].mean(axis=-1) != ref[:, t]):
                spread_skill[t] = uq.spread_skill_ratio(members[:, t], ref[:, t], axis=-1)
    return {"crps": crps, "rmse": rmse_by_lead(members.mean(axis=-1), ref),
            "spread_skill": spread_skill}
