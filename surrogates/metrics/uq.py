"""Uncertainty-quantification metrics (NumPy).

Every probabilistic surrogate in the package is scored with the functions here, under the names the
field uses: the continuous ranked probability score (CRPS), the Gaussian negative log-likelihood
(NLL), central-interval coverage, the spread-skill ratio and probability-integral-transform (PIT)
values. Inputs are anything :func:`numpy.asarray` accepts (lists, NumPy arrays, CPU torch tensors)
and are in the physical units of the data; scores come back in the same units (CRPS) or in nats
(NLL).

Two forecast forms are supported:

* **ensembles**: ``m`` exchangeable members stacked along ``axis`` (default 0), so an ensemble of
  predictions for ``(n_examples, *rest)`` targets has shape ``(m, n_examples, *rest)``;
* **Gaussian predictive distributions**: a ``mean`` of the observation's shape and a ``std``
  broadcastable to it.

Per-point functions return an array of the observation's shape; average it for a single number;
:func:`summary` gives the standard set averaged over all points.

:func:`~surrogates.metrics.uq_block.uq_block`, the one block of scores every family's
``evaluate`` reports, :func:`~surrogates.metrics.uq_block.reliability` (a reliability diagram's
data) and :func:`~surrogates.metrics.uq_block.coverage_by_group` (per-group coverage with
confidence intervals) are in :mod:`surrogates.metrics.uq_block` and still importable from here.
Figures are in :mod:`surrogates.metrics.uq_plots`; split-conformal recalibration is in
:mod:`surrogates.metrics.conformal` (``ConformalRecalibrator`` is still importable from here, with
a :class:`DeprecationWarning`).

References
----------
.. [1] T. Gneiting and A. E. Raftery, "Strictly proper scoring rules, prediction, and estimation",
   J. Am. Stat. Assoc. 102 (2007) 359-378.
.. [2] C. A. T. Ferro, "Fair scores for ensemble forecasts", Q. J. R. Meteorol. Soc. 140 (2014)
   1917-1923.
.. [3] V. Fortin, M. Abaza, F. Anctil and R. Turcotte, "Why should ensemble spread match the RMSE of
   the ensemble mean?", J. Hydrometeorol. 15 (2014) 1708-1713.
.. [4] A. N. Angelopoulos and S. Bates, "A gentle introduction to conformal prediction and
   distribution-free uncertainty quantification", arXiv:2107.07511 (2021).
"""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
from scipy import stats

__all__ = ["crps_ensemble", "crps_gaussian", "gaussian_nll", "interval_coverage",
           "gaussian_interval", "ensemble_interval", "spread_skill_ratio", "pit_values",
           "gaussian_pit", "max_ensemble_level",
           "reliability", "uq_block", "coverage_by_group",  # noqa: F822 (lazy, from uq_block)
           "summary", "UQ_LEVELS", "RELIABILITY_LEVELS"]

UQ_LEVELS = (0.5, 0.9, 0.95)
"""Nominal central-interval levels every family's evaluate reports
(:func:`~surrogates.metrics.uq_block.uq_block`)."""
RELIABILITY_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""Levels 0.05, 0.10, ..., 0.95 of a reliability diagram
(:func:`~surrogates.metrics.uq_block.reliability`)."""


#: Names defined in :mod:`surrogates.metrics.uq_block` (which imports this module), served from
#: here on first use; a string import keeps the import graph one way (uq_block -> uq).
_BLOCK_NAMES = frozenset({"reliability", "uq_block", "coverage_by_group", "_members", "_forecast",
                          "_level_key", "_intervals", "_pit_summary", "_correlations",
                          "_check_axis"})


def __getattr__(name: str):
    if name in _BLOCK_NAMES:
        return getattr(importlib.import_module("surrogates.metrics.uq_block"), name)
    if name == "ConformalRecalibrator":
        # conformal imports this module's helpers, so this module never imports it back.
        warnings.warn("surrogates.metrics.uq.ConformalRecalibrator moved to "
                      "surrogates.metrics.conformal.ConformalRecalibrator; import it from there",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module("surrogates.metrics.conformal").ConformalRecalibrator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _BLOCK_NAMES)


# --------------------------------------------------------------------------------------- helpers
def _array(x, name: str) -> np.ndarray:
    """``x`` as a float array; torch tensors are detached and moved to the CPU first."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    out = np.asarray(x, dtype=float)
    if out.size == 0:
        raise ValueError(f"{name} is empty (shape {out.shape})")
    return out


def _ensemble(ensemble, observation, axis: int, min_members: int = 1
              ) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble with members moved to the last axis, and the checked observation."""
    ensemble, observation = _array(ensemble, "ensemble"), _array(observation, "observation")
    if ensemble.ndim == 0:
        raise ValueError("ensemble must have a member axis; got a scalar")
    if not -ensemble.ndim <= axis < ensemble.ndim:
        raise ValueError(f"axis {axis} is out of range for an ensemble of shape {ensemble.shape}")
    members = np.moveaxis(ensemble, axis, -1)
    if members.shape[:-1] != observation.shape:
        raise ValueError(f"ensemble shape {ensemble.shape} without its member axis {axis} is "
                         f"{members.shape[:-1]}, which differs from observation shape "
                         f"{observation.shape}")
    if members.shape[-1] < min_members:
        raise ValueError(f"need at least {min_members} ensemble members along axis {axis}, got "
                         f"{members.shape[-1]} (ensemble shape {ensemble.shape})")
    return members, observation


def _gaussian(mean, std, observation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``mean`` and ``observation`` of equal shape; positive ``std`` broadcast to them."""
    mean, std = _array(mean, "mean"), _array(std, "std")
    observation = _array(observation, "observation")
    if mean.shape != observation.shape:
        raise ValueError(f"mean shape {mean.shape} differs from observation shape "
                         f"{observation.shape}")
    std = _positive_std(std, mean.shape)
    return mean, std, observation


def _positive_std(std: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    try:
        std = np.broadcast_to(std, shape)
    except ValueError:
        raise ValueError(f"std shape {std.shape} does not broadcast to mean shape "
                         f"{shape}") from None
    bad = ~((std > 0) & np.isfinite(std))
    if np.any(bad):
        raise ValueError(f"std must be > 0 and finite everywhere; {int(bad.sum())} of {std.size} "
                         f"entries are not (first: {float(std[bad].flat[0])}); a negative, zero, "
                         "NaN or infinite std is no predictive distribution")
    return std


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    return level


# ------------------------------------------------------------------------------------------ CRPS
def crps_ensemble(ensemble, observation, *, axis: int = 0, fair: bool = False) -> np.ndarray:
    r"""Continuous ranked probability score of an ensemble forecast, per point.

    With members :math:`x_1, \dots, x_m` and observation :math:`y`, the energy form [1]_ is

    .. math::

        \mathrm{CRPS} = \frac{1}{m} \sum_{i=1}^m |x_i - y|
            - \frac{1}{2 m^2} \sum_{i=1}^m \sum_{j=1}^m |x_i - x_j| ,

    which equals :math:`\int (\hat F(x) - \mathbb 1\{x \ge y\})^2 \, dx` for the empirical
    distribution :math:`\hat F` of the members. The fair variant [2]_ replaces :math:`m^2` by
    :math:`m (m - 1)` in the second term: it is the unbiased estimate of the CRPS of the
    distribution the members are drawn from, so it does not favour small ensembles. The double sum
    is computed in
    :math:`O(m \log m)` from the sorted members :math:`x_{(1)} \le \dots \le x_{(m)}`:

    .. math::

        \sum_{i,j} |x_i - x_j| = 2 \sum_{i=1}^m (2 i - m - 1)\, x_{(i)} .

    Parameters
    ----------
    ensemble : array_like, shape ``(..., m, ...)``
        Ensemble members along ``axis``; the other axes match ``observation``.
    observation : array_like
        Observed values, in the units of the ensemble.
    axis : int, default 0
        The member axis of ``ensemble``.
    fair : bool, default False
        Use the fair (unbiased) estimator; needs ``m >= 2``.

    Returns
    -------
    ndarray, shape of ``observation``
        CRPS per point, in the units of the data (>= 0 unless ``fair``; lower is better).

    Raises
    ------
    ValueError
        If the ensemble without its member axis does not have the observation's shape, or ``fair``
        is asked for with a single member.

    References
    ----------
    .. [1] Gneiting and Raftery (2007), section 4.2.
    .. [2] Ferro (2014).
    """
    members, observation = _ensemble(ensemble, observation, axis, 2 if fair else 1)
    m = members.shape[-1]
    skill = np.mean(np.abs(members - observation[..., None]), axis=-1)
    weights = 2.0 * np.arange(1, m + 1) - m - 1
    pair_sum = 2.0 * (np.sort(members, axis=-1) @ weights)  # sum over all ordered pairs i, j
    spread = pair_sum / (2.0 * m * (m - 1)) if fair else pair_sum / (2.0 * m * m)
    return skill - spread


def crps_gaussian(mean, std, observation) -> np.ndarray:
    r"""Closed-form CRPS of a Gaussian predictive distribution, per point.

    For :math:`\mathcal N(\mu, \sigma^2)` and observation :math:`y`, with
    :math:`z = (y - \mu)/\sigma`,

    .. math::

        \mathrm{CRPS} = \sigma \left[ z \,(2 \Phi(z) - 1) + 2 \varphi(z)
            - \frac{1}{\sqrt{\pi}} \right] ,

    where :math:`\Phi` and :math:`\varphi` are the standard normal CDF and density [1]_.

    Parameters
    ----------
    mean : array_like
        Predictive mean :math:`\mu`, shape of ``observation``.
    std : array_like
        Predictive standard deviation :math:`\sigma > 0`, broadcastable to ``mean``.
    observation : array_like
        Observed values :math:`y`.

    Returns
    -------
    ndarray, shape of ``observation``
        CRPS per point, in the units of the data.

    Raises
    ------
    ValueError
        If ``mean`` and ``observation`` shapes differ, ``std`` does not broadcast, or ``std <= 0``.

    References
    ----------
    .. [1] Gneiting and Raftery (2007), section 4.2.
    """
    mean, std, observation = _gaussian(mean, std, observation)
    z = (observation - mean) / std
    return std * (z * (2.0 * stats.norm.cdf(z) - 1.0) + 2.0 * stats.norm.pdf(z)
                  - 1.0 / math.sqrt(math.pi))


def gaussian_nll(mean, std, observation) -> np.ndarray:
    r"""Per-point negative log-likelihood of y under :math:`\mathcal N(\mu, \sigma^2)`.

    .. math::

        \mathrm{NLL} = \tfrac12 \log(2 \pi \sigma^2) + \frac{(y - \mu)^2}{2 \sigma^2} .

    The logarithmic score is strictly proper [1]_; it is in nats, depends on the units of the data
    through :math:`\log \sigma`, and punishes over-confidence much harder than the CRPS.

    Parameters
    ----------
    mean : array_like
        Predictive mean :math:`\mu`, shape of ``observation``.
    std : array_like
        Predictive standard deviation :math:`\sigma > 0`, broadcastable to ``mean``.
    observation : array_like
        Observed values :math:`y`.

    Returns
    -------
    ndarray, shape of ``observation``
        NLL per point, in nats (lower is better).

    Raises
    ------
    ValueError
        If ``mean`` and ``observation`` shapes differ, ``std`` does not broadcast, or ``std <= 0``.

    References
    ----------
    .. [1] Gneiting and Raftery (2007), section 4.1.
    """
    mean, std, observation = _gaussian(mean, std, observation)
    return 0.5 * np.log(2.0 * np.pi * std**2) + (observation - mean) ** 2 / (2.0 * std**2)


# ------------------------------------------------------------------------------------- intervals
def interval_coverage(lower, upper, observation) -> float:
    r"""Fraction of observations inside their prediction interval.

    .. math::

        \mathrm{coverage} = \frac{1}{N} \sum_{k=1}^N \mathbb 1\{\ell_k \le y_k \le u_k\} .

    For a calibrated central interval of level :math:`1 - \alpha` it is close to :math:`1 - \alpha`;
    below means over-confident, above means under-confident.

    Parameters
    ----------
    lower, upper : array_like
        Interval bounds :math:`\ell \le u`, shape of ``observation``.
    observation : array_like
        Observed values :math:`y`.

    Returns
    -------
    float
        Fraction in [0, 1] of points with :math:`\ell \le y \le u`.

    Raises
    ------
    ValueError
        If shapes differ or some ``lower > upper``.
    """
    lower, upper = _array(lower, "lower"), _array(upper, "upper")
    observation = _array(observation, "observation")
    for name, bound in (("lower", lower), ("upper", upper)):
        if bound.shape != observation.shape:
            raise ValueError(f"{name} shape {bound.shape} differs from observation shape "
                             f"{observation.shape}")
    if np.any(lower > upper):
        raise ValueError(f"lower exceeds upper at {int(np.sum(lower > upper))} of {lower.size} "
                         "points; pass the bounds in the order (lower, upper)")
    return float(np.mean((lower <= observation) & (observation <= upper)))


def gaussian_interval(mean, std, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    r"""Central interval of probability ``level`` of :math:`\mathcal N(\mu, \sigma^2)`.

    .. math::

        [\mu - z \sigma, \; \mu + z \sigma], \qquad z = \Phi^{-1}\!\left(\tfrac{1 + \text{level}}{2}
        \right)

    (:math:`z \approx 1.96` for level 0.95).

    Parameters
    ----------
    mean : array_like
        Predictive mean.
    std : array_like
        Predictive standard deviation, > 0, broadcastable to ``mean``.
    level : float, default 0.95
        Nominal probability in (0, 1).

    Returns
    -------
    lower, upper : ndarray, shape of ``mean``
        Interval bounds, in the units of the data.

    Raises
    ------
    ValueError
        If ``std`` does not broadcast to ``mean`` or is not positive, or ``level`` is outside
        (0, 1).
    """
    level = _check_level(level)
    mean = _array(mean, "mean")
    std = _positive_std(_array(std, "std"), mean.shape)
    half_width = stats.norm.ppf(0.5 + level / 2.0) * std
    return mean - half_width, mean + half_width


def ensemble_interval(ensemble, level: float = 0.95, axis: int = 0, *, method: str = "linear"
                      ) -> tuple[np.ndarray, np.ndarray]:
    r"""Central interval of probability ``level`` from the empirical quantiles of an ensemble.

    The bounds are the :math:`(1 - \text{level})/2` and :math:`(1 + \text{level})/2` sample
    quantiles of the members, computed by :func:`numpy.quantile` with ``method`` (default
    ``"linear"``, NumPy's default, kept for backward compatibility). With few members the outer
    quantiles are poorly resolved: an ``m``-member ensemble brackets the observation with
    probability :math:`(m - 1)/(m + 1)` at most between its extremes
    (:func:`max_ensemble_level`).

    ``method="weibull"`` puts the quantile :math:`p` at rank :math:`p (m + 1)` (plotting position
    :math:`i/(m + 1)` for the :math:`i`-th smallest member). For exchangeable members and
    observation, :math:`P(x_{(i)} \le y \le x_{(j)}) = (j - i)/(m + 1)`, so this interval has
    nominal coverage exactly when :math:`(1 \pm \text{level})(m + 1)/2` are integers (e.g.
    ``m = 19`` at 0.9: the minimum and the maximum) and nearly so between; the linear default
    under-covers (at 0.9 with 19 members it covers about 0.85).
    :func:`~surrogates.metrics.uq_block.uq_block` uses ``"weibull"``.

    Parameters
    ----------
    ensemble : array_like
        Members along ``axis``.
    level : float, default 0.95
        Nominal probability in (0, 1).
    axis : int, default 0
        The member axis.
    method : str, default "linear"
        :func:`numpy.quantile`'s method; ``"weibull"`` for rank-calibrated intervals.

    Returns
    -------
    lower, upper : ndarray
        Bounds, with the shape of ``ensemble`` without ``axis``.

    Raises
    ------
    ValueError
        If ``level`` is outside (0, 1) or ``axis`` is out of range.
    """
    level = _check_level(level)
    ensemble = _array(ensemble, "ensemble")
    if ensemble.ndim == 0 or not -ensemble.ndim <= axis < ensemble.ndim:
        raise ValueError(f"axis {axis} is out of range for an ensemble of shape {ensemble.shape}")
    lower, upper = np.quantile(ensemble, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=axis,
                               method=method)
    return lower, upper


# ----------------------------------------------------------------------------- ensemble calibration
def spread_skill_ratio(ensemble, observation, axis: int = 0) -> float:
    r"""Ensemble spread divided by the RMSE of the ensemble mean; about 1 when calibrated.

    With :math:`m` members, ensemble mean :math:`\bar x_k` and unbiased ensemble variance
    :math:`s_k^2` at point :math:`k = 1, \dots, N`,

    .. math::

        \mathrm{SSR} = \frac{\sqrt{\frac{m + 1}{m} \, \frac1N \sum_k s_k^2}}
                            {\sqrt{\frac1N \sum_k (\bar x_k - y_k)^2}} .

    The factor :math:`(m + 1)/m` is the finite-ensemble correction [1]_: if the observation and the
    members are exchangeable draws from one distribution of variance :math:`\sigma^2`, then
    :math:`E[(\bar x - y)^2] = \sigma^2 (1 + 1/m)` while :math:`E[s^2] = \sigma^2`, so the
    ratio of the expected squares is 1 for every :math:`m`. Below 1 means under-dispersive
    (over-confident), above 1 over-dispersive. The ratio is a necessary, not sufficient, condition
    for calibration; look at :func:`pit_values` too.

    Parameters
    ----------
    ensemble : array_like
        Members along ``axis``; at least two.
    observation : array_like
        Observed values; the shape of ``ensemble`` without ``axis``.
    axis : int, default 0
        The member axis.

    Returns
    -------
    float
        Spread-skill ratio over all points (dimensionless).

    Raises
    ------
    ValueError
        On mismatched shapes, fewer than two members, or an ensemble mean that equals the
        observation everywhere (zero RMSE).

    References
    ----------
    .. [1] Fortin et al. (2014).
    """
    members, observation = _ensemble(ensemble, observation, axis, 2)
    m = members.shape[-1]
    spread = math.sqrt((m + 1) / m * float(np.mean(_member_var(members))))
    skill = math.sqrt(float(np.mean((members.mean(axis=-1) - observation) ** 2)))
    if skill == 0.0:
        raise ValueError("the ensemble mean equals the observation everywhere (RMSE 0); the "
                         "spread-skill ratio is undefined")
    return spread / skill


def _member_var(members: np.ndarray) -> np.ndarray:
    """Unbiased variance over the last axis; exactly 0 where the members are identical (the
    floating-point mean of equal numbers can differ from them in the last bit)."""
    return np.where(np.ptp(members, axis=-1) == 0, 0.0, np.var(members, axis=-1, ddof=1))


def pit_values(ensemble, observation, axis: int = 0) -> np.ndarray:
    r"""Probability-integral-transform values of the observations within their ensembles.

    The rank of :math:`y` among the :math:`m` members, counting ties as half,

    .. math::

        r = \#\{i : x_i < y\} + \tfrac12 \#\{i : x_i = y\} \in [0, m] ,

    is mapped to the centre of its bin of the rank histogram, :math:`u = (r + 1/2)/(m + 1)`. For a
    calibrated ensemble (observation and members exchangeable) :math:`r` is uniform on
    :math:`\{0, \dots, m\}`, so the values are uniform on the bin centres, mean 1/2; a U-shaped
    histogram means under-dispersion, a dome over-dispersion, a slope bias [1]_.

    Parameters
    ----------
    ensemble : array_like
        Members along ``axis``.
    observation : array_like
        Observed values; the shape of ``ensemble`` without ``axis``.
    axis : int, default 0
        The member axis.

    Returns
    -------
    ndarray, shape of ``observation``
        PIT values in (0, 1).

    Raises
    ------
    ValueError
        On mismatched shapes.

    References
    ----------
    .. [1] Gneiting and Raftery (2007), section 1; T. M. Hamill, "Interpretation of rank histograms
       for verifying ensemble forecasts", Mon. Weather Rev. 129 (2001) 550-560.
    """
    members, observation = _ensemble(ensemble, observation, axis)
    m = members.shape[-1]
    y = observation[..., None]
    rank = np.sum(members < y, axis=-1) + 0.5 * np.sum(members == y, axis=-1)
    return (rank + 0.5) / (m + 1)


# ------------------------------------------------------------------------------- the UQ block
def gaussian_pit(mean, std, observation) -> np.ndarray:
    r"""PIT values :math:`u = \Phi((y - \mu)/\sigma)` of observations under Gaussian predictions.

    Uniform on (0, 1) when the predictive distributions are calibrated; U-shaped when
    over-confident, dome-shaped when under-confident.

    Parameters
    ----------
    mean, std, observation : array_like
        As in :func:`gaussian_nll`.

    Returns
    -------
    ndarray, shape of ``observation``
    """
    mean, std, observation = _gaussian(mean, std, observation)
    return stats.norm.cdf((observation - mean) / std)


def max_ensemble_level(n_members: int) -> float:
    r"""Widest central level an ``m``-member empirical interval can honestly be labelled with.

    Under exchangeability the observation falls between the ensemble's minimum and maximum with
    probability :math:`(m - 1)/(m + 1)` (3 members: 0.5; 19 members: 0.9; 39 members: 0.95), and
    no empirical interval of the members is wider.
    """
    m = int(n_members)
    if m < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members}")
    return (m - 1) / (m + 1)

# --------------------------------------------------------------------------------------- summary
def summary(observation, *, ensemble=None, mean=None, std=None, axis: int = 0,
            level: float = 0.95) -> dict[str, float]:
    """The standard set of probabilistic scores, averaged over all points.

    Give either ``ensemble`` (members along ``axis``) or both ``mean`` and ``std``.

    Returns
    -------
    dict
        For an ensemble: ``crps`` (mean CRPS, data units), ``crps_fair`` (when ``m >= 2``),
        ``rmse`` (of the ensemble mean), ``coverage`` (of the empirical central ``level`` interval),
        ``spread_skill`` (when ``m >= 2``), ``n_members``, ``n_points``. For a Gaussian:
        ``crps``, ``nll`` (nats), ``rmse`` (of the mean), ``coverage``, ``n_points``.
        ``level`` is echoed back.

    Raises
    ------
    ValueError
        If neither or both forecast forms are given, or on the errors of the functions used.
    """
    if (ensemble is None) == (mean is None and std is None):
        raise ValueError("give either ensemble=... or both mean=... and std=..., not both or "
                         "neither")
    observation = _array(observation, "observation")
    out: dict[str, float] = {"level": float(level)}
    if ensemble is not None:
        members, _ = _ensemble(ensemble, observation, axis)
        m = members.shape[-1]
        out["crps"] = float(np.mean(crps_ensemble(members, observation, axis=-1)))
        if m >= 2:
            out["crps_fair"] = float(np.mean(crps_ensemble(members, observation, axis=-1,
                                                           fair=True)))
            out["spread_skill"] = spread_skill_ratio(members, observation, axis=-1)
        out["rmse"] = float(np.sqrt(np.mean((members.mean(axis=-1) - observation) ** 2)))
        lower, upper = ensemble_interval(members, level, axis=-1)
        out["n_members"] = m
    else:
        if mean is None or std is None:
            raise ValueError("a Gaussian forecast needs both mean=... and std=...")
        out["crps"] = float(np.mean(crps_gaussian(mean, std, observation)))
        out["nll"] = float(np.mean(gaussian_nll(mean, std, observation)))
        out["rmse"] = float(np.sqrt(np.mean((_array(mean, "mean") - observation) ** 2)))
        lower, upper = gaussian_interval(mean, std, level)
    out["coverage"] = interval_coverage(lower, upper, observation)
    out["n_points"] = int(observation.size)
    return out
