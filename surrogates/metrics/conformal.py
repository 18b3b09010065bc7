r"""Split-conformal recalibration of predictive intervals (NumPy), saved as plain JSON.

A model is fitted on training data; a **calibration split** drawn from the training data (never
from the test split) gives :math:`n` nonconformity scores :math:`s_1, \dots, s_n`; the conformal
scale is their :math:`k`-th smallest value with the finite-sample correction

.. math::

    \hat q = s_{(k)}, \qquad k = \lceil (n + 1)(1 - \alpha) \rceil ,

(:func:`conformal_quantile`). Two kinds of band are built from it:

* :class:`ConformalRecalibrator` -- **marginal** intervals per output. With a predictive std the
  score is the normalised residual :math:`|y - \mu| / \sigma` and the interval is
  :math:`\mu \pm \hat q \sigma` (heteroscedastic); without one the score is the absolute residual
  :math:`|y - \mu|` and the interval is :math:`\mu \pm \hat q` (the homoscedastic baseline, as in
  MAPIE's ``"absolute"`` score). ``output_axis`` fits one scale per output channel.
* :class:`SimultaneousConformalBand` -- a band over a **whole field**: the score of calibration
  example :math:`i` is the maximum over its field of the normalised residual,
  :math:`s_i = \max_x |y_i(x) - \mu_i(x)| / \sigma_i(x)`, so that
  :math:`\{\mu(x) \pm \hat q \sigma(x)\}_x` contains the entire field with probability
  :math:`1 - \alpha` (the risk-controlling band of UQNO [3]_ with the max-residual score).

Guarantee (what holds and what does not)
----------------------------------------
If the :math:`n` calibration examples and the test example are **exchangeable** (e.g. drawn
i.i.d. from one distribution, the model fitted on other data), then for any model

.. math::

    1 - \alpha \le P(y \in C(x)) < 1 - \alpha + \frac{1}{n + 1}

(the upper bound needs continuous scores without ties) [1]_ [2]_. The probability is
**marginal**: over the draw of the calibration set and of the test point together. There is **no
guarantee conditional on the input** -- coverage can be far below :math:`1 - \alpha` in one region
of input space and above it in another; per-group coverage
(:func:`surrogates.metrics.uq_block.coverage_by_group`) shows it. A distribution shift between
calibration and test data (other forcing, longer lead time, new geometry) breaks exchangeability
and with it the guarantee. For pooled points of fields (marginal intervals over every grid
point) the statement holds for a grid point drawn at random with its example; neighbouring points
are correlated, so the realised coverage of one test set fluctuates more than for independent
points.

References
----------
.. [1] V. Vovk, A. Gammerman and G. Shafer, *Algorithmic Learning in a Random World*, Springer
   (2005).
.. [2] A. N. Angelopoulos and S. Bates, "A gentle introduction to conformal prediction and
   distribution-free uncertainty quantification", arXiv:2107.07511 (2021), sections 1 and 2.3.
.. [3] Z. Ma, K. Azizzadenesheli and A. Anandkumar, "Calibrated uncertainty quantification for
   operator learning via conformal prediction", TMLR (2024), arXiv:2402.01960.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from surrogates.metrics.uq import _array, _gaussian, _positive_std

__all__ = ["ConformalRecalibrator", "SimultaneousConformalBand", "calibration_split",
           "conformal_quantile", "field_coverage", "min_calibration_size",
           "recalibrator_from_dict"]

_FORMAT = 1  # version of the to_dict layout


def _check_alpha(alpha: Any) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return alpha


def _rank(n: int, alpha: float) -> int:
    """:math:`k = \\lceil (n + 1)(1 - \\alpha) \\rceil`; ``ValueError`` if ``k > n``."""
    # the relative shave keeps an exact integer such as 10 * 0.9 from rounding up to 10
    k = math.ceil((n + 1) * (1.0 - alpha) * (1.0 - 1e-12))
    if k > n:
        raise ValueError(f"{n} calibration points are too few for alpha={alpha}: "
                         f"alpha < 1/(n+1) = {1.0 / (n + 1):.4g}, so the conformal quantile "
                         f"would be infinite; need at least {min_calibration_size(alpha)} "
                         "calibration points, or a larger alpha")
    return k


def min_calibration_size(alpha: float) -> int:
    r"""Fewest calibration points :math:`n` with a finite conformal quantile at ``alpha``.

    :math:`k = \lceil (n + 1)(1 - \alpha) \rceil \le n` holds exactly when
    :math:`\alpha \ge 1/(n + 1)`, i.e. :math:`n \ge \lceil 1/\alpha - 1 \rceil`
    (alpha = 0.1: 9; alpha = 0.05: 19).
    """
    alpha = _check_alpha(alpha)
    return max(1, math.ceil((1.0 - alpha) / alpha * (1.0 - 1e-12)))


def calibration_split(train, fraction: float, seed: int = 0, *, alpha: float | None = None,
                      test=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Split the **training** examples into a fitting part and a calibration part.

    ``round(fraction * n)`` of the :math:`n` training examples, drawn uniformly without
    replacement with ``numpy.random.default_rng(seed)``, form the calibration split; the model is
    fitted on the rest. Drawing at random from the training examples keeps calibration and test
    examples exchangeable when training and test are; the test split is never touched (pass it as
    ``test`` to have an overlap refused). Split by whole examples (trajectories, fields,
    shapes), not by points of one example, or the calibration scores are not independent of the
    fitting data.

    Parameters
    ----------
    train : int or array_like of int
        Number of training examples :math:`n` (indices ``0 .. n-1``), or the training indices
        themselves (e.g. into a dataset that also holds the test split).
    fraction : float
        Fraction in (0, 1) of the training examples used for calibration.
    seed : int, default 0
    alpha : float, optional
        If given, refuse a calibration split too small for it (:func:`min_calibration_size`).
    test : array_like of int, optional
        Test indices; ``ValueError`` if any of them is among ``train``.

    Returns
    -------
    fit_indices, calibration_indices : ndarray of int, sorted, disjoint, union ``train``

    Raises
    ------
    ValueError
        If ``fraction`` is outside (0, 1), either part would be empty, ``train`` holds repeated
        indices or test indices, or the calibration split is too small for ``alpha``.
    """
    indices = np.arange(int(train)) if np.ndim(train) == 0 else np.asarray(train).astype(int)
    if np.unique(indices).size != indices.size:
        raise ValueError("train holds repeated indices; pass each training example once")
    if test is not None:
        overlap = np.intersect1d(indices, np.asarray(test).astype(int))
        if overlap.size:
            raise ValueError(f"{overlap.size} test indices are among the training indices "
                             f"(first: {int(overlap[0])}); the calibration split must come from "
                             "the training data only")
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    n = indices.size
    n_cal = int(round(fraction * n))
    if not 1 <= n_cal <= n - 1:
        raise ValueError(f"fraction {fraction} of {n} training examples gives {n_cal} for "
                         f"calibration and {n - n_cal} for fitting; both must be >= 1")
    if alpha is not None and n_cal < min_calibration_size(alpha):
        raise ValueError(f"fraction {fraction} of {n} training examples gives {n_cal} "
                         f"calibration examples, too few for alpha={alpha} (alpha < 1/(n+1) = "
                         f"{1.0 / (n_cal + 1):.4g}); need at least {min_calibration_size(alpha)}")
    chosen = np.random.default_rng(seed).permutation(n)[:n_cal]
    is_cal = np.zeros(n, dtype=bool)
    is_cal[chosen] = True
    return np.sort(indices[~is_cal]), np.sort(indices[is_cal])


def conformal_quantile(scores, alpha: float) -> float:
    r"""The split-conformal quantile of calibration scores.

    .. math::

        \hat q = s_{(k)}, \qquad k = \lceil (n + 1)(1 - \alpha) \rceil ,

    the :math:`k`-th smallest of the :math:`n` scores, i.e. the empirical quantile at the corrected
    level :math:`k / n` (NumPy ``method="inverted_cdf"``). A new exchangeable score is
    :math:`\le \hat q` with probability at least :math:`1 - \alpha`.

    Parameters
    ----------
    scores : array_like
        Calibration scores, any shape (flattened); finite.
    alpha : float
        Miscoverage rate in (0, 1).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``alpha`` is outside (0, 1), a score is not finite, or
        :math:`n < (1 - \alpha)/\alpha` (then :math:`k > n` and the band would be infinite).
    """
    alpha = _check_alpha(alpha)
    scores = _array(scores, "scores").ravel()
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{int(np.sum(~np.isfinite(scores)))} of {scores.size} calibration "
                         "scores are not finite; check the predictions")
    k = _rank(scores.size, alpha)
    return float(np.partition(scores, k - 1)[k - 1])


def _residual_scores(mean, std, observation):
    """(mean, std or None, observation, scores) with ``|y - mu| / sigma`` or ``|y - mu|``."""
    if std is None:
        mean, observation = _array(mean, "mean"), _array(observation, "observation")
        if mean.shape != observation.shape:
            raise ValueError(f"mean shape {mean.shape} differs from observation shape "
                             f"{observation.shape}")
        return mean, None, observation, np.abs(observation - mean)
    mean, std, observation = _gaussian(mean, std, observation)
    return mean, std, observation, np.abs(observation - mean) / std


def _check_mode(std, score: str, cls: str) -> None:
    if (std is None) != (score == "absolute"):
        raise ValueError(f"this {cls} was fitted with score '{score}': "
                         + ("pass std=None (it has no std)" if score == "absolute"
                            else "pass the predictive std it was fitted with"))


def _scale_like(scale: float | np.ndarray, shape: tuple[int, ...], output_axis: int | None
                ) -> float | np.ndarray:
    """Per-output scale ``(C,)`` reshaped to broadcast along ``output_axis`` of ``shape``."""
    if output_axis is None:
        return scale
    axis = output_axis % len(shape) if shape else 0
    if not shape or shape[axis] != len(scale):
        raise ValueError(f"the recalibrator holds {len(scale)} per-output scales along axis "
                         f"{output_axis}, but the prediction has shape {shape}")
    view = [1] * len(shape)
    view[axis] = len(scale)
    return np.asarray(scale).reshape(view)


# ------------------------------------------------------------------------------------- marginal
class ConformalRecalibrator:
    r"""Split-conformal marginal intervals from (mean, std) or from a point prediction alone.

    On a calibration set of :math:`n` points the scores are

    .. math::

        s_k = \frac{|y_k - \mu_k|}{\sigma_k} \quad\text{(normalised, given a std)}, \qquad
        s_k = |y_k - \mu_k| \quad\text{(absolute, } \texttt{std=None}\text{)},

    and the scale :math:`\hat q` is :func:`conformal_quantile` of them. The calibrated interval is
    :math:`[\mu - \hat q \sigma, \mu + \hat q \sigma]` (or :math:`\mu \pm \hat q`). If calibration
    and test points are exchangeable, its coverage of a new point is at least :math:`1 - \alpha`
    (and below :math:`1 - \alpha + 1/(n + 1)` without ties), whatever the model; the guarantee is
    marginal, not conditional on the input (see the module docstring). With ``output_axis`` one
    scale is fitted per output (index along that axis), each from that output's scores, and the
    guarantee holds per output. Points of one spatial field are usually correlated, so pooling
    them gives the right average coverage but a looser finite-sample statement than independent
    examples would.

    Parameters
    ----------
    alpha : float, default 0.05
        Miscoverage rate in (0, 1); intervals target coverage :math:`1 - \alpha`.
    output_axis : int or None, default None
        Axis of the observation that indexes outputs (e.g. 1 for ``(n, n_outputs)`` or
        channels-first fields ``(n, C, *spatial)``); None pools every point into one scale.

    Attributes
    ----------
    scale_ : float or ndarray of shape (n_outputs,)
        The calibrated multiplier :math:`\hat q` of ``std`` (or the half-width, absolute score).
    n_calibration_ : int
        Number of calibration points :math:`n` (per output, with ``output_axis``).
    score_ : {"normalized", "absolute"}
        Which score was used (set by :meth:`fit` from whether ``std`` was given).

    References
    ----------
    .. [1] Angelopoulos and Bates (2021), section 1 and section 2.3 (uncertainty scalars).

    Examples
    --------
    >>> rec = ConformalRecalibrator(alpha=0.1).fit(mean_cal, std_cal, y_cal)   # doctest: +SKIP
    >>> lower, upper = rec.interval(mean_test, std_test)                        # doctest: +SKIP
    >>> json.dump(rec.to_dict(), f)                                             # doctest: +SKIP
    """

    def __init__(self, alpha: float = 0.05, *, output_axis: int | None = None):
        self.alpha = alpha
        self.output_axis = output_axis

    def fit(self, mean, std, observation) -> ConformalRecalibrator:
        """Compute ``scale_`` from a calibration set.

        Parameters
        ----------
        mean : array_like
            Predictions :math:`\\mu` on the calibration points, shape of ``observation``.
        std : array_like or None
            Predictive std :math:`\\sigma > 0` broadcastable to ``mean``; None for the absolute
            residual score.
        observation : array_like
            Calibration targets :math:`y`.

        Raises
        ------
        ValueError
            On bad shapes, ``std <= 0``, ``alpha`` outside (0, 1), or fewer than
            :math:`(1 - \\alpha)/\\alpha` calibration points (per output).
        """
        alpha = _check_alpha(self.alpha)
        mean, std, observation, scores = _residual_scores(mean, std, observation)
        self.score_ = "absolute" if std is None else "normalized"
        if self.output_axis is None:
            self.scale_ = conformal_quantile(scores, alpha)
            self.n_calibration_ = int(scores.size)
        else:
            if scores.ndim == 0 or not -scores.ndim <= self.output_axis < scores.ndim:
                raise ValueError(f"output_axis {self.output_axis} is out of range for "
                                 f"observations of shape {observation.shape}")
            per_output = np.moveaxis(scores, self.output_axis, 0)
            self.scale_ = np.array([conformal_quantile(s, alpha) for s in per_output])
            self.n_calibration_ = int(per_output[0].size)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "scale_"):
            raise ValueError("this ConformalRecalibrator is not fitted yet; call fit(mean, std, "
                             "observation) on a calibration set first")

    def interval(self, mean, std=None) -> tuple[np.ndarray, np.ndarray]:
        r"""Calibrated interval :math:`[\mu - \hat q \sigma, \mu + \hat q \sigma]` (or
        :math:`\mu \pm \hat q` for the absolute score).

        Parameters
        ----------
        mean : array_like
            Predictive mean.
        std : array_like or None
            Predictive standard deviation, > 0, broadcastable to ``mean``; None (and only None)
            for a recalibrator fitted with the absolute score.

        Returns
        -------
        lower, upper : ndarray, shape of ``mean``
        """
        self._check_fitted()
        _check_mode(std, self.score_, "ConformalRecalibrator")
        mean = _array(mean, "mean")
        half = _scale_like(self.scale_, mean.shape, self.output_axis)
        if std is not None:
            half = half * _positive_std(_array(std, "std"), mean.shape)
        half = np.broadcast_to(half, mean.shape)
        return mean - half, mean + half

    def calibrated_std(self, std) -> np.ndarray:
        r"""``std`` rescaled so that its Gaussian ``1 - alpha`` interval is the conformal one.

        .. math::

            \sigma' = \sigma \, \hat q / \Phi^{-1}(1 - \alpha / 2)

        Useful to feed recalibrated uncertainties to :func:`~surrogates.metrics.uq.crps_gaussian`
        or :func:`~surrogates.metrics.uq.gaussian_nll`; unlike :meth:`interval`, only the
        ``1 - alpha`` level is guaranteed. For the absolute score ``std`` is the constant 1 the
        residual quantile multiplies (pass ``np.ones_like(mean)``).
        """
        self._check_fitted()
        std = _array(std, "std")
        scale = _scale_like(self.scale_, std.shape, self.output_axis)
        return std * (scale / stats.norm.ppf(1.0 - float(self.alpha) / 2.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (no pickle) for a run folder; :meth:`from_dict` inverts it."""
        self._check_fitted()
        scale = self.scale_.tolist() if isinstance(self.scale_, np.ndarray) else self.scale_
        return {"kind": "marginal", "format": _FORMAT, "alpha": float(self.alpha),
                "score": self.score_, "output_axis": self.output_axis, "scale": scale,
                "n_calibration": self.n_calibration_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConformalRecalibrator:
        """Rebuild a fitted recalibrator from :meth:`to_dict`'s output."""
        _check_dict(data, "marginal")
        rec = cls(alpha=_check_alpha(data["alpha"]), output_axis=data["output_axis"])
        scale = data["scale"]
        rec.scale_ = np.asarray(scale, dtype=float) if isinstance(scale, list) else float(scale)
        if rec.output_axis is not None and not isinstance(scale, list):
            raise ValueError("a per-output recalibrator (output_axis set) needs a list of scales")
        rec.score_, rec.n_calibration_ = data["score"], int(data["n_calibration"])
        return rec


# ----------------------------------------------------------------------------------- simultaneous
class SimultaneousConformalBand:
    r"""Split-conformal band that covers a whole field with probability :math:`1 - \alpha`.

    For calibration examples :math:`i = 1, \dots, n` with fields over points :math:`x`, the score
    is the largest normalised residual over the field,

    .. math::

        s_i = \max_x \frac{|y_i(x) - \mu_i(x)|}{\sigma_i(x)}
        \quad (\text{or } \max_x |y_i(x) - \mu_i(x)| \text{ without a std}),

    and :math:`\hat q` is :func:`conformal_quantile` of :math:`s_1, \dots, s_n`. The band is
    :math:`\mu(x) \pm \hat q \sigma(x)` at every point. If the calibration examples and the test
    example are exchangeable, the band contains the **entire** test field with probability at
    least :math:`1 - \alpha` (marginal over calibration and test draws; nothing conditional on the
    input). Because it bounds the worst point, it is wider than the marginal intervals of
    :class:`ConformalRecalibrator`, which cover each point, not all at once.

    Parameters
    ----------
    alpha : float, default 0.05
        Probability that the band misses somewhere on the field.
    sample_axis : int, default 0
        Axis of the observation that indexes examples; every other axis is the field (channels
        included).

    Attributes
    ----------
    scale_ : float
        :math:`\hat q`.
    n_calibration_ : int
        Number of calibration examples (fields) :math:`n`.
    score_ : {"normalized", "absolute"}

    References
    ----------
    .. [1] Ma, Azizzadenesheli and Anandkumar (2024), UQNO.
    """

    def __init__(self, alpha: float = 0.05, *, sample_axis: int = 0):
        self.alpha = alpha
        self.sample_axis = sample_axis

    def fit(self, mean, std, observation) -> SimultaneousConformalBand:
        """Compute ``scale_`` from calibration fields of shape ``(n, *field)``; ``std`` as in
        :meth:`ConformalRecalibrator.fit` (None: absolute residuals).

        Raises
        ------
        ValueError
            On bad shapes, ``std <= 0``, ``alpha`` outside (0, 1), a scalar observation, or
            fewer than :math:`(1 - \\alpha)/\\alpha` calibration examples.
        """
        alpha = _check_alpha(self.alpha)
        _, std, observation, scores = _residual_scores(mean, std, observation)
        if scores.ndim == 0 or not -scores.ndim <= self.sample_axis < scores.ndim:
            raise ValueError(f"sample_axis {self.sample_axis} is out of range for observations "
                             f"of shape {observation.shape}")
        per_example = np.moveaxis(scores, self.sample_axis, 0).reshape(scores.shape[
            self.sample_axis], -1).max(axis=1)
        self.score_ = "absolute" if std is None else "normalized"
        self.scale_ = conformal_quantile(per_example, alpha)
        self.n_calibration_ = int(per_example.size)
        self.calibration_scores_ = per_example
        return self

    def interval(self, mean, std=None) -> tuple[np.ndarray, np.ndarray]:
        r"""The band :math:`\mu \pm \hat q \sigma` (or :math:`\mu \pm \hat q`), shape of
        ``mean``."""
        if not hasattr(self, "scale_"):
            raise ValueError("this SimultaneousConformalBand is not fitted yet; call fit(mean, "
                             "std, observation) on calibration fields first")
        _check_mode(std, self.score_, "SimultaneousConformalBand")
        mean = _array(mean, "mean")
        half = self.scale_ if std is None else \
            self.scale_ * _positive_std(_array(std, "std"), mean.shape)
        half = np.broadcast_to(half, mean.shape)
        return mean - half, mean + half

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (no pickle); :meth:`from_dict` inverts it."""
        if not hasattr(self, "scale_"):
            raise ValueError("this SimultaneousConformalBand is not fitted yet")
        return {"kind": "simultaneous", "format": _FORMAT, "alpha": float(self.alpha),
                "score": self.score_, "sample_axis": self.sample_axis, "scale": self.scale_,
                "n_calibration": self.n_calibration_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimultaneousConformalBand:
        """Rebuild a fitted band from :meth:`to_dict`'s output."""
        _check_dict(data, "simultaneous")
        band = cls(alpha=_check_alpha(data["alpha"]), sample_axis=int(data["sample_axis"]))
        band.scale_, band.score_ = float(data["scale"]), data["score"]
        band.n_calibration_ = int(data["n_calibration"])
        return band


def _check_dict(data: dict[str, Any], kind: str) -> None:
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not a saved {kind} conformal recalibrator: kind is {found!r}")
    if data.get("format") != _FORMAT:
        raise ValueError(f"saved recalibrator has format {data.get('format')!r}; this version "
                         f"reads format {_FORMAT}")
    if data.get("score") not in ("normalized", "absolute"):
        raise ValueError(f"score must be 'normalized' or 'absolute', got {data.get('score')!r}")


def recalibrator_from_dict(data: dict[str, Any]
                           ) -> ConformalRecalibrator | SimultaneousConformalBand:
    """Rebuild whichever recalibrator ``data`` (from ``to_dict``) describes, by its ``kind``."""
    kinds = {"marginal": ConformalRecalibrator, "simultaneous": SimultaneousConformalBand}
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in kinds:
        raise ValueError(f"unknown recalibrator kind {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind].from_dict(data)


def field_coverage(lower, upper, observation, *, sample_axis: int = 0) -> float:
    r"""Fraction of examples whose **whole** field lies inside the band.

    .. math::

        \frac1n \sum_{i=1}^n \mathbb 1\{\ell_i(x) \le y_i(x) \le u_i(x) \ \forall x\}

    Parameters
    ----------
    lower, upper, observation : array_like, shape ``(n, *field)`` (examples along
        ``sample_axis``)
    sample_axis : int, default 0

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    lower, upper = _array(lower, "lower"), _array(upper, "upper")
    observation = _array(observation, "observation")
    if not lower.shape == upper.shape == observation.shape:
        raise ValueError(f"lower {lower.shape}, upper {upper.shape} and observation "
                         f"{observation.shape} shapes differ")
    inside = np.moveaxis((lower <= observation) & (observation <= upper), sample_axis, 0)
    return float(np.mean(inside.reshape(inside.shape[0], -1).all(axis=1)))
