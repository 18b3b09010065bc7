"""The block of uncertainty scores every family's ``evaluate`` reports, and its companions (NumPy).

:func:`uq_block` gathers the per-point scores of :mod:`surrogates.metrics.uq` into one JSON-ready
block (coverage and width at 50 / 90 / 95 %, CRPS, NLL, spread-skill, std-error correlation, PIT
summary) and refuses to label an ensemble interval at a level its member count cannot reach;
:func:`reliability` gives a reliability diagram's data, and :func:`coverage_by_group` per-sample /
per-region / per-lead coverage with exact binomial (Clopper-Pearson) or clustered-bootstrap
confidence intervals. Forecasts are given as in :mod:`surrogates.metrics.uq`: a Gaussian
(``mean`` and ``std``) or an ensemble (``members``). All three names are also importable from
:mod:`surrogates.metrics.uq`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from surrogates.metrics.uq import (
    RELIABILITY_LEVELS,
    UQ_LEVELS,
    _array,
    _check_level,
    _ensemble,
    _gaussian,
    _member_var,
    crps_ensemble,
    crps_gaussian,
    ensemble_interval,
    gaussian_interval,
    gaussian_nll,
    gaussian_pit,
    interval_coverage,
    max_ensemble_level,
    pit_values,
    spread_skill_ratio,
)

__all__ = ["reliability", "uq_block", "coverage_by_group"]


# --------------------------------------------------------------------------------------- helpers
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
