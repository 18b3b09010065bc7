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

Per-point functions return an array of the observation's shape; average it for a single number.

:func:`uq_block` is the one block of scores every family's ``evaluate`` reports (coverage and
width at 50 / 90 / 95 %, CRPS, NLL, spread-skill, std-error correlation, PIT summary), and refuses
to label an ensemble interval at a level its member count cannot reach; :func:`reliability` gives
a reliability diagram's data and :func:`coverage_by_group` per-sample / per-region / per-lead
coverage with binomial or clustered-bootstrap confidence intervals. Figures are in
:mod:`surrogates.metrics.uq_plots`; split-conformal recalibration is in
:mod:`surrogates.metrics.conformal` (``ConformalRecalibrator`` is still importable from here).

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

import math

import numpy as np
from scipy import stats

__all__ = ["crps_ensemble", "crps_gaussian", "gaussian_nll", "interval_coverage",
           "gaussian_interval", "ensemble_interval", "spread_skill_ratio", "pit_values",
           "gaussian_pit", "max_ensemble_level", "reliability", "uq_block", "coverage_by_group",
           "summary", "UQ_LEVELS", "RELIABILITY_LEVELS"]

UQ_LEVELS = (0.5, 0.9, 0.95)
"""Nominal central-interval levels every family's evaluate reports (:func:`uq_block`)."""
RELIABILITY_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""Levels 0.05, 0.10, ..., 0.95 of a reliability diagram (:func:`reliability`)."""


def __getattr__(name: str):
    # The conformal recalibrators live in surrogates.metrics.conformal (which imports this
    # module's helpers); the old import path keeps working without an import cycle.
    if name == "ConformalRecalibrator":
        from surrogates.metrics.conformal import ConformalRecalibrator
        return ConformalRecalibrator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    under-covers (at 0.9 with 19 members it covers about 0.85). :func:`uq_block` uses
    ``"weibull"``.

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


def _members(members, observation: np.ndarray, member_axis: int) -> np.ndarray:
    """Members as one array with the member axis last; a sequence of arrays is stacked first."""
    if isinstance(members, (list, tuple)):
        arrays = [_array(x, f"member {i}") for i, x in enumerate(members)]
        if not arrays:
            raise ValueError("members is an empty sequence; give at least one member")
        shapes = [a.shape for a in arrays]
        if len(set(shapes)) > 1:
            odd = next(i for i, s in enumerate(shapes) if s != shapes[0])
            raise ValueError(f"members have different shapes: member 0 has {shapes[0]}, member "
                             f"{odd} has {shapes[odd]}; every member must have the shape of y "
                             f"{observation.shape}")
        return _ensemble(np.stack(arrays, axis=-1), observation, -1)[0]
    return _ensemble(members, observation, member_axis)[0]


def _forecast(observation, mean, std, members, member_axis):
    """The checked forecast: ``("ensemble", members-last, y)`` or ``("gaussian", (mu, sd), y)``."""
    if members is not None:
        if mean is not None or std is not None:
            raise ValueError("give members=... alone (their mean and std are computed from them) "
                             "or mean=... and std=..., not both")
        observation = _array(observation, "y")
        return "ensemble", _members(members, observation, member_axis), observation
    if mean is None or std is None:
        raise ValueError("give members=..., or both mean=... and std=...; got "
                         + ("neither" if mean is None and std is None else
                            "only " + ("mean" if std is None else "std")))
    mean, std, observation = _gaussian(mean, std, observation)
    return "gaussian", (mean, std), observation


def _level_key(level: float) -> str:
    return f"{level:g}"


def _intervals(form, forecast, levels, strict, notes):
    """``{level: (lower, upper)}`` at every level that the forecast can honestly label."""
    out = {}
    for level in levels:
        level = _check_level(level)
        if form == "gaussian":
            out[level] = gaussian_interval(*forecast, level)
            continue
        m = forecast.shape[-1]
        reach = max_ensemble_level(m)
        if level > reach + 1e-12:
            message = (f"no empirical {level:g} interval from {m} members: the widest central "
                       f"interval of {m} exchangeable members covers (m-1)/(m+1) = {reach:.3g}; "
                       f"{math.ceil((1 + level) / (1 - level) - 1e-9)} members are needed")
            if strict:
                raise ValueError(message)
            notes.append(message)
            continue
        out[level] = ensemble_interval(forecast, level, axis=-1, method="weibull")
    return out


def reliability(y, mean=None, std=None, members=None, *, member_axis: int = 0,
                levels=RELIABILITY_LEVELS, strict: bool = False) -> dict:
    r"""Observed against nominal coverage of central intervals: the reliability diagram's data.

    At each nominal level :math:`p` the central interval (Gaussian, or the members' rank-calibrated
    empirical quantiles, see :func:`ensemble_interval` with ``method="weibull"``) is scored by
    :func:`interval_coverage`. Levels an ensemble cannot reach (above :func:`max_ensemble_level`)
    are left out with a note, or refused with ``strict=True``.

    Parameters
    ----------
    y : array_like
        Observed values.
    mean, std : array_like, optional
        Gaussian forecast (both, or neither).
    members : array_like or sequence of array_like, optional
        Ensemble: members along ``member_axis``, or a list of arrays of ``y``'s shape.
    member_axis : int, default 0
    levels : sequence of float, default 0.05, 0.10, ..., 0.95
    strict : bool, default False
        Raise ``ValueError`` instead of leaving out unreachable levels.

    Returns
    -------
    dict
        ``levels`` (the reported nominal levels), ``coverage`` and ``width`` (mean interval width,
        data units), lists of floats of equal length, and ``notes`` (strings).
    """
    form, forecast, y = _forecast(y, mean, std, members, member_axis)
    notes: list[str] = []
    intervals = _intervals(form, forecast, levels, strict, notes)
    return {"levels": [float(p) for p in intervals],
            "coverage": [interval_coverage(lo, hi, y) for lo, hi in intervals.values()],
            "width": [float(np.mean(hi - lo)) for lo, hi in intervals.values()],
            "notes": notes}


def _pit_summary(pit: np.ndarray, bins: int) -> dict:
    counts = np.histogram(pit, bins=bins, range=(0.0, 1.0))[0]
    return {"mean": float(np.mean(pit)), "std": float(np.std(pit)), "bins": int(bins),
            "histogram": (counts / pit.size).tolist()}


def _correlations(std_per_sample, err_per_sample, notes) -> dict:
    n = std_per_sample.size
    if n < 3 or np.ptp(std_per_sample) == 0 or np.ptp(err_per_sample) == 0:
        notes.append(f"no std-error correlation: {n} samples"
                     + (", constant predicted std" if n >= 3 and np.ptp(std_per_sample) == 0
                        else "") + " (needs >= 3 samples with varying std and error)")
        return {}
    return {"std_error_correlation": float(np.corrcoef(std_per_sample, err_per_sample)[0, 1]),
            "std_error_spearman": float(stats.spearmanr(std_per_sample, err_per_sample)[0])}


def _check_axis(axis: int, ndim: int, name: str, shape) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} {axis} is out of range for y of shape {shape}")
    return axis % ndim


def uq_block(y, mean=None, std=None, members=None, *, levels=UQ_LEVELS, member_axis: int = 0,
             sample_axis: int = 0, group_axis: int | None = None, strict: bool = False,
             confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> dict:
    r"""The one block of uncertainty scores every family's ``evaluate`` reports (JSON-ready).

    Give a Gaussian forecast (``mean`` and ``std``) or an ensemble (``members``). With :math:`N`
    points, predictive mean :math:`\mu`, std :math:`\sigma` (for an ensemble of :math:`m`
    members: their mean and unbiased std) and error :math:`e = \mu - y`:

    * ``coverage[p]`` and ``width[p]``: :func:`interval_coverage` and the mean width (data units)
      of the central interval of level :math:`p`, for each of ``levels`` (keys ``"0.5"``,
      ``"0.9"``, ``"0.95"``). Gaussian: :math:`\mu \pm \Phi^{-1}(\frac{1+p}{2})\sigma`.
      Ensemble: the rank-calibrated empirical interval (:func:`ensemble_interval`,
      ``method="weibull"``); a level above :math:`(m - 1)/(m + 1)` (:func:`max_ensemble_level`)
      cannot be reached by :math:`m` members, so its key is **left out, with the reason in
      ``notes``** (``strict=False``), or ``ValueError`` is raised (``strict=True``).
    * ``gaussian_fit`` (ensembles with :math:`m \ge 2` and nonzero spread): ``coverage`` and
      ``width`` at every level of the Gaussian :math:`\mathcal N(\mu, \sigma^2)` fitted to the
      members -- labelled as that, never as the members' empirical interval.
    * ``crps``: :func:`crps_gaussian` (closed form) or :func:`crps_ensemble` (plus ``crps_fair``
      for :math:`m \ge 2`), mean over points, data units.
    * ``nll``: :func:`gaussian_nll` of :math:`\mathcal N(\mu, \sigma^2)`, mean over points, nats
      (for an ensemble, of the fitted Gaussian; needs nonzero spread).
    * ``rmse``: :math:`\sqrt{\overline{e^2}}`, data units.
    * ``spread_skill``: ensemble: :func:`spread_skill_ratio` (finite-ensemble corrected; 0 for
      identical members); Gaussian: :math:`\sqrt{\overline{\sigma^2}} / \mathrm{RMSE}`. About 1
      when calibrated, below 1 over-confident.
    * ``std_error_correlation`` / ``std_error_spearman``: Pearson and Spearman correlation over
      samples of the per-sample mean std :math:`\bar\sigma_i` and mean absolute error
      :math:`\overline{|e|}_i` (averages over every axis of ``y`` but ``sample_axis``). Near 0
      means the std does not say *which* predictions are bad, even if its average level is right.
    * ``pit``: summary of the PIT values (:func:`gaussian_pit`, or :func:`pit_values` for
      ensembles): ``mean`` (1/2 when calibrated), ``std`` (:math:`1/\sqrt{12} = 0.289` when
      uniform; larger means over-confident) and ``histogram`` (fraction per bin; 10 bins, or the
      :math:`m + 1` rank bins of an ensemble).
    * ``by_group`` (when ``group_axis`` is given): for each reported level,
      :func:`coverage_by_group` with the index along ``group_axis`` of ``y`` as the group (lead
      time, output channel, region, ...) and, when ``group_axis != sample_axis``, the sample
      index as the bootstrap cluster (points of one sample are correlated).
    * ``form`` (``"gaussian"`` / ``"ensemble"``), ``n_points``, ``n_samples``, ``n_members``
      (ensembles), ``levels`` and ``notes`` (why something is missing).

    Parameters
    ----------
    y : array_like, shape ``(n_samples, *rest)``
        Observed values, physical units.
    mean, std : array_like, optional
        Gaussian forecast: ``mean`` of ``y``'s shape, ``std`` finite and > 0, broadcastable to it.
    members : array_like or sequence of array_like, optional
        Ensemble: one array with the members along ``member_axis`` (the other axes as ``y``), or
        a list of arrays each of ``y``'s shape.
    levels : sequence of float, default (0.5, 0.9, 0.95)
        Nominal central levels in (0, 1).
    member_axis : int, default 0
        Member axis of an array ``members``.
    sample_axis : int, default 0
        Axis of ``y`` that indexes samples.
    group_axis : int or None, default None
        Axis of ``y`` for per-group coverage with confidence intervals.
    strict : bool, default False
        Raise instead of leaving out a level an ensemble cannot reach.
    confidence, n_boot, seed
        Passed to :func:`coverage_by_group`.

    Returns
    -------
    dict
        JSON-serialisable: floats, ints, strings, lists and dicts of them.

    Raises
    ------
    ValueError
        If neither or both forecast forms are given; on mismatched shapes (naming both), a
        negative, zero or non-finite std, members of different shapes, an axis out of range; or
        (``strict``) an unreachable level.

    Examples
    --------
    >>> block = uq_block(y_test, mean, std)                      # doctest: +SKIP
    >>> block["coverage"]["0.9"], block["crps"]                  # doctest: +SKIP
    >>> uq_block(y_test, members=[m1, m2, m3])["notes"]          # doctest: +SKIP
    ['no empirical 0.9 interval from 3 members: ...', ...]
    """
    form, forecast, y = _forecast(y, mean, std, members, member_axis)
    if y.ndim == 0:
        y = y[None]
        forecast = forecast[None] if form == "ensemble" else tuple(f[None] for f in forecast)
    sample_axis = _check_axis(sample_axis, y.ndim, "sample_axis", y.shape)
    notes: list[str] = []
    out: dict = {"form": form, "n_points": int(y.size), "n_samples": int(y.shape[sample_axis]),
                 "levels": [float(p) for p in levels]}
    sd = None
    if form == "ensemble":
        m = forecast.shape[-1]
        out["n_members"] = int(m)
        mu = forecast.mean(axis=-1)
        out["crps"] = float(np.mean(crps_ensemble(forecast, y, axis=-1)))
        if m >= 2:
            out["crps_fair"] = float(np.mean(crps_ensemble(forecast, y, axis=-1, fair=True)))
            sd = np.sqrt(_member_var(forecast))
            if np.all(sd > 0):
                out["nll"] = float(np.mean(gaussian_nll(mu, sd, y)))
                fit = _intervals("gaussian", (mu, sd), levels, strict, notes)
                out["gaussian_fit"] = {
                    "coverage": {_level_key(p): interval_coverage(lo, hi, y)
                                 for p, (lo, hi) in fit.items()},
                    "width": {_level_key(p): float(np.mean(hi - lo))
                              for p, (lo, hi) in fit.items()}}
            else:
                notes.append(f"no NLL and no gaussian_fit: the members agree exactly at "
                             f"{int(np.sum(sd == 0))} of {sd.size} points (zero spread)")
        else:
            notes.append("one member: no spread, so no NLL, spread-skill or fair CRPS")
        out["pit"] = _pit_summary(pit_values(forecast, y, axis=-1), m + 1)
    else:
        mu, sd = forecast
        out["crps"] = float(np.mean(crps_gaussian(mu, sd, y)))
        out["nll"] = float(np.mean(gaussian_nll(mu, sd, y)))
        out["pit"] = _pit_summary(gaussian_pit(mu, sd, y), 10)
    error = mu - y
    rmse = math.sqrt(float(np.mean(error ** 2)))
    out["rmse"] = rmse
    if sd is not None:
        if rmse == 0.0:
            notes.append("no spread-skill: the mean equals the observation everywhere")
        elif form == "ensemble":
            out["spread_skill"] = spread_skill_ratio(forecast, y, axis=-1)
        else:
            out["spread_skill"] = math.sqrt(float(np.mean(sd ** 2))) / rmse

        def per_sample(a):
            a = np.moveaxis(a, sample_axis, 0)
            return a.reshape(a.shape[0], -1).mean(axis=1)
        out |= _correlations(per_sample(sd), per_sample(np.abs(error)), notes)
    intervals = _intervals(form, forecast, levels, strict, notes)
    out["coverage"] = {_level_key(p): interval_coverage(lo, hi, y)
                       for p, (lo, hi) in intervals.items()}
    out["width"] = {_level_key(p): float(np.mean(hi - lo)) for p, (lo, hi) in intervals.items()}
    if group_axis is not None:
        group_axis = _check_axis(group_axis, y.ndim, "group_axis", y.shape)

        def index_along(axis):
            view = [1] * y.ndim
            view[axis] = y.shape[axis]
            return np.arange(y.shape[axis]).reshape(view)
        clusters = None if group_axis == sample_axis else index_along(sample_axis)
        out["by_group"] = {_level_key(p): coverage_by_group(lo, hi, y, index_along(group_axis),
                                                            clusters=clusters,
                                                            confidence=confidence,
                                                            n_boot=n_boot, seed=seed)
                           for p, (lo, hi) in intervals.items()}
    out["notes"] = notes
    return out


def coverage_by_group(lower, upper, observation, groups, *, clusters=None,
                      confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    r"""Interval coverage per group (per sample, region, lead time, ...) with confidence intervals.

    Points are labelled by ``groups`` (broadcast to the observation's shape); group :math:`g`'s
    coverage is :math:`\hat c_g = \frac{1}{N_g}\sum_{k \in g} \mathbb 1\{\ell_k \le y_k \le u_k\}`.

    * ``clusters=None``: each group's hits are treated as independent Bernoulli trials and the
      interval is the exact (Clopper-Pearson) binomial one,
      :math:`[B(\frac{a}{2}; h, N - h + 1),\ B(1 - \frac{a}{2}; h + 1, N - h)]` with :math:`B` the
      Beta quantile, :math:`h` hits, :math:`a = 1 - \text{confidence}`.
    * ``clusters`` given (e.g. the sample index when grouping by lead time or region): points of
      one cluster are correlated (one field, one trajectory), so the clusters are resampled with
      replacement (``n_boot`` times) and every group's ratio
      :math:`\sum_c w_c H_{cg} / \sum_c w_c N_{cg}` recomputed; the interval is the percentile
      interval. Treating correlated points as independent gives intervals far too narrow.

    Parameters
    ----------
    lower, upper, observation : array_like, same shape
        Interval bounds and observations.
    groups : array_like, broadcastable to the observation's shape
        Group label of each point (ints, floats or strings).
    clusters : array_like or None, broadcastable to the observation's shape
        Cluster label of each point for the clustered bootstrap.
    confidence : float, default 0.95
    n_boot : int, default 2000
    seed : int, default 0
        Seed of the bootstrap's generator.

    Returns
    -------
    dict
        ``group`` (labels, sorted), ``coverage``, ``n_points``, ``ci_low``, ``ci_high`` (lists,
        one entry per group), ``pooled`` (``coverage``, ``ci_low``, ``ci_high`` over all points),
        ``method`` (``"clopper_pearson"`` or ``"cluster_bootstrap"``), ``confidence``,
        ``n_clusters`` (bootstrap only). A group missing from a bootstrap draw is skipped in that
        draw.

    Raises
    ------
    ValueError
        On shape mismatches, ``lower > upper``, or ``confidence`` outside (0, 1).
    """
    interval_coverage(lower, upper, observation)  # checks shapes and order
    lower, upper = _array(lower, "lower"), _array(upper, "upper")
    observation = _array(observation, "observation")
    confidence = _check_level(confidence)
    a = 1.0 - confidence

    def labels(x, name):
        x = np.asarray(x)
        try:
            return np.broadcast_to(x, observation.shape).ravel()
        except ValueError:
            raise ValueError(f"{name} shape {x.shape} does not broadcast to observation shape "
                             f"{observation.shape}") from None
    hit = ((lower <= observation) & (observation <= upper)).ravel().astype(float)
    names, g = np.unique(labels(groups, "groups"), return_inverse=True)
    n_groups = names.size
    hits = np.bincount(g, weights=hit, minlength=n_groups)
    counts = np.bincount(g, minlength=n_groups).astype(float)
    out: dict = {"group": [v.item() if hasattr(v, "item") else v for v in names],
                 "coverage": (hits / counts).tolist(), "n_points": counts.astype(int).tolist(),
                 "confidence": confidence}
    if clusters is None:
        def exact(h, n):
            lo = np.where(h > 0, stats.beta.ppf(a / 2, h, n - h + 1), 0.0)
            hi = np.where(h < n, stats.beta.ppf(1 - a / 2, h + 1, n - h), 1.0)
            return lo, hi
        lo, hi = exact(hits, counts)
        plo, phi = exact(np.array([hits.sum()]), np.array([counts.sum()]))
        out |= {"method": "clopper_pearson", "ci_low": lo.tolist(), "ci_high": hi.tolist()}
    else:
        _, c = np.unique(labels(clusters, "clusters"), return_inverse=True)
        n_clusters = int(c.max()) + 1
        H = np.zeros((n_clusters, n_groups))
        N = np.zeros((n_clusters, n_groups))
        np.add.at(H, (c, g), hit)
        np.add.at(N, (c, g), 1.0)
        rng = np.random.default_rng(seed)
        w = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=int(n_boot))
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (w @ H) / (w @ N)
            pooled = (w @ H.sum(axis=1)) / (w @ N.sum(axis=1))
        q = [100 * a / 2, 100 * (1 - a / 2)]
        lo, hi = np.nanpercentile(boot, q, axis=0)
        plo, phi = np.percentile(pooled, q)
        out |= {"method": "cluster_bootstrap", "ci_low": lo.tolist(), "ci_high": hi.tolist(),
                "n_clusters": n_clusters}
    out["pooled"] = {"coverage": float(hits.sum() / counts.sum()),
                     "ci_low": float(np.squeeze(plo)), "ci_high": float(np.squeeze(phi))}
    return out


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
