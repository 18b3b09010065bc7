r"""Leave-one-(group-)out predictions of :class:`surrogates.models.gp.BatchedExactGP` and the
amplitude calibration built on them.

Leave-one-out is closed-form for exact GPs with fixed hyperparameters (Sundararajan & Keerthi
2001). With :math:`A = K^{-1}` and :math:`\alpha = A (y - c)`, leaving out the samples of a group
:math:`G` gives the residuals :math:`r_G = y_G - \mu_{-G} = A_{GG}^{-1} \alpha_G`, with
covariance :math:`A_{GG}^{-1}` (noise included). For single samples, :math:`r_i = \alpha_i /
A_{ii}` and :math:`\operatorname{Var}_{-i} = 1 / A_{ii}`. :func:`variance_factor` turns held-out
residuals and their standard deviations into a variance factor.
:class:`LeaveOneOut` is the part of :class:`~surrogates.models.gp.BatchedExactGP` that computes
these residuals and applies the factor.

References
----------
S. Sundararajan and S. S. Keerthi, "Predictive approaches for choosing hyperparameters in
Gaussian processes", Neural Computation 13 (2001).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from surrogates.models.gp_model import exact_settings

__all__ = ["CALIBRATION_METHODS", "LeaveOneOut", "variance_factor"]

#: calibration methods of :func:`variance_factor` and :meth:`BatchedExactGP.calibrate_amplitude`
CALIBRATION_METHODS = ("marginal", "conformal", "joint")

def variance_factor(residual, std, method: str = "marginal", level: float = 0.9) -> np.ndarray:
    r"""Factor :math:`c` by which predictive variances must be multiplied to be calibrated on
    held-out residuals (e.g. leave-one-out ones).

    With z-scores :math:`z_i = r_i / s_i` of ``n`` held-out residuals :math:`r_i` and their
    predictive standard deviations :math:`s_i`, per column:

    * ``"marginal"``: :math:`c = \frac1n \sum_i z_i^2` (unit-variance z-scores);
    * ``"conformal"``: :math:`c = (\hat q / z_{(1+\text{level})/2})^2` with :math:`\hat q` the
      :math:`\lceil (n+1)\,\text{level} \rceil`-th smallest :math:`|z_i|` (split-conformal scale
      of a normalised residual score). On exchangeable held-out residuals the interval
      :math:`\mu \pm z_{(1+\text{level})/2} \sqrt c\, s` then covers a new sample with
      probability >= ``level`` marginally, not conditionally on the input; for leave-one-out
      residuals the guarantee is approximate (jackknife).

    Parameters
    ----------
    residual, std : array_like, shape (n,) or (n, m)
        Held-out residuals and their predictive standard deviations (same units).
    method : {"marginal", "conformal"}
    level : float, default 0.9
        Central coverage matched by ``"conformal"``.

    Returns
    -------
    ndarray, shape (m,) (or a 0-d array for 1-D input)

    Raises
    ------
    ValueError
        On mismatched shapes, non-finite values, a std that is not > 0, an unknown method, a
        level outside (0, 1), or too few samples for the level (``"conformal"`` needs
        :math:`n \ge \text{level} / (1 - \text{level})`, i.e. :math:`1 - \text{level} \ge 1/(n+1)`).
    """
    r = np.asarray(residual, dtype=float)
    s = np.asarray(std, dtype=float)
    if r.shape != s.shape or r.ndim not in (1, 2):
        raise ValueError(f"residual and std must have one shape (n,) or (n, m); got {r.shape} "
                         f"and {s.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(s))):
        raise ValueError("residual and std must be finite; found NaN or inf")
    if np.any(s <= 0):
        raise ValueError(f"std must be > 0 everywhere; found {int(np.sum(s <= 0))} values <= 0 "
                         f"(min {s.min():.3g})")
    if method not in ("marginal", "conformal"):
        raise ValueError(f"method must be 'marginal' or 'conformal', got {method!r}")
    z = np.abs(r / s)
    if method == "marginal":
        return np.mean(z**2, axis=0)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n = z.shape[0]
    rank = math.ceil((n + 1) * level)
    if rank > n:
        raise ValueError(f"{n} held-out samples are too few for a conformal level {level}: it "
                         f"needs n >= {math.ceil(level / (1 - level))} (1 - level >= 1/(n+1))")
    q = np.sort(z, axis=0)[rank - 1]
    return (q / NormalDist().inv_cdf(0.5 + level / 2)) ** 2


class LeaveOneOut:
    """Leave-one-(group-)out methods of :class:`~surrogates.models.gp.BatchedExactGP`.

    A mixin. The class that uses it provides the conditioned state that
    :meth:`~surrogates.models.gp.BatchedExactGP.set_hyperparameters` sets: ``X_train_``,
    ``Y_train_``, ``lengthscale_``, ``outputscale_``, ``noise_``, ``linear_variance_``,
    ``mean_constant_``, ``min_noise`` and ``_model``. It also provides ``_tensor``,
    ``_check_fitted`` and ``set_hyperparameters``.
    """

    def _precision(self) -> np.ndarray:
        """:math:`A = K^{-1}` of every output, ``(m, n, n)``, from one Cholesky factor."""
        n, m = self.Y_train_.shape
        x = self._tensor(self.X_train_).expand(m, *self.X_train_.shape).contiguous()
        with torch.no_grad(), exact_settings():
            K = self._model.kernel(x).to_dense()
            K = K + torch.diag_embed(self._tensor(self.noise_)[:, None].expand(m, n))
            return torch.cholesky_inverse(torch.linalg.cholesky(K)).cpu().numpy()

    def _loo_blocks(self, groups):
        """Per group: its sample indices, residuals ``r_G`` ``(m, |G|)`` and their covariance
        :math:`A_{GG}^{-1}` ``(m, |G|, |G|)``."""
        self._check_fitted()
        n, m = self.Y_train_.shape
        labels = np.arange(n) if groups is None else np.asarray(groups)
        if labels.shape != (n,):
            raise ValueError(f"groups must have one label per training sample ({n}), got shape "
                             f"{labels.shape}")
        if np.unique(labels).size < 2:
            raise ValueError("leave-one-group-out needs at least 2 groups; got 1")
        A = self._precision()
        alpha = np.einsum("mij,jm->mi", A, self.Y_train_ - self.mean_constant_)
        for g in np.unique(labels):
            idx = np.flatnonzero(labels == g)
            cov = np.linalg.inv(A[:, idx[:, None], idx[None, :]])  # (m, |G|, |G|)
            yield idx, np.einsum("mij,mj->mi", cov, alpha[:, idx]), cov

    def loo(self, groups=None) -> tuple[np.ndarray, np.ndarray]:
        r"""Closed-form leave-one-(group-)out predictive distribution of every training sample.

        Sample :math:`i` in group :math:`G` is predicted by the GP conditioned on all samples
        outside :math:`G`, with the same hyperparameters:
        :math:`\mu_{-G} = y_G - A_{GG}^{-1} \alpha_G` and variance
        :math:`\operatorname{diag}(A_{GG}^{-1})` (noise included), :math:`A = K^{-1}`,
        :math:`\alpha = A (y - c)`. Cost: one :math:`O(n^3)` inverse per output plus one
        :math:`O(|G|^3)` inverse per group.

        Parameters
        ----------
        groups : array_like of shape (n,), optional
            Group label of each training sample; None: every sample its own group.

        Returns
        -------
        mean, std : ndarray, shape (n, m)
            Leave-out predictive mean and standard deviation of each training target.

        Raises
        ------
        ValueError
            If not fitted, on a wrong ``groups`` shape, or with fewer than 2 groups.
        """
        self._check_fitted()
        n, m = self.Y_train_.shape
        mean, var = np.empty((n, m)), np.empty((n, m))
        for idx, r, cov in self._loo_blocks(groups):
            mean[idx] = self.Y_train_[idx] - r.T
            var[idx] = np.diagonal(cov, axis1=1, axis2=2).T
        return mean, np.sqrt(var)

    def calibrate_amplitude(self, groups=None, method: str = "marginal",
                            level: float = 0.9) -> np.ndarray:
        r"""Rescale each output's variances by leave-one-(group-)out cross-validation.

        The posterior mean does not change when every kernel amplitude (:math:`s^2`, :math:`v`)
        and the noise :math:`\sigma^2` are multiplied by one factor :math:`c`, but every
        predictive variance is. The factor comes from the closed-form leave-out residuals
        :math:`r_G = A_{GG}^{-1}\alpha_G` (covariance :math:`C_G = A_{GG}^{-1}`, see
        :meth:`loo`):

        * ``"marginal"`` (default): per-sample z-scores :math:`z_i = r_i / \sqrt{(C_G)_{ii}}`
          get unit variance, :math:`c = \frac1n \sum_i z_i^2` (:func:`variance_factor`): the
          per-sample intervals that :meth:`predict` reports are what is calibrated;
        * ``"conformal"``: the ``level`` quantile of :math:`|z_i|` is matched,
          :math:`c = (\hat q / z_{(1+\text{level})/2})^2` (:func:`variance_factor`);
        * ``"joint"``: the groups' whitened residuals get unit variance on average,
          :math:`c = \sum_G r_G^\top C_G^{-1} r_G / n`: the right scale for the joint
          distribution of a whole group, but it shrinks per-sample intervals when the members
          of a group err together.

        The factor is raised where needed to ``min_noise`` / :math:`\sigma^2` so that the noise
        stays >= ``min_noise``. Groups are samples that are not independent of each other (e.g.
        one shape at several conditions): leaving out a single one of them would judge the model
        on near-duplicates of its own training data.

        Parameters
        ----------
        groups : array_like of shape (n,), optional
            Group label of each training sample; None: ordinary leave-one-out.
        method : {"marginal", "conformal", "joint"}, default "marginal"
        level : float, default 0.9
            Coverage matched by ``"conformal"``.

        Returns
        -------
        ndarray, shape (m,)
            The factors :math:`c` applied (> 1: the likelihood's intervals were too narrow).

        Raises
        ------
        ValueError
            If not fitted, on a bad ``groups`` or ``method``, or with too few samples for a
            conformal ``level``.
        """
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}")
        self._check_fitted()
        n, m = self.Y_train_.shape
        if method == "joint":
            total = np.zeros(m)
            for _, r, cov in self._loo_blocks(groups):
                total += np.einsum("mi,mi->m", r, np.linalg.solve(cov, r[..., None])[..., 0])
            factor = total / n
        else:
            mean, std = self.loo(groups)
            factor = variance_factor(self.Y_train_ - mean, std, method, level)
        # a factor may not push the noise below min_noise: it is raised to min_noise / sigma^2
        # there, so that amplitudes and noise keep their ratio and the mean stays the same
        factor = np.maximum(factor, self.min_noise / self.noise_)
        self.set_hyperparameters(
            self.X_train_, self.Y_train_, self.lengthscale_, self.outputscale_ * factor,
            self.noise_ * factor, mean_constant=self.mean_constant_,
            linear_variance=None if self.linear_variance_ is None
            else self.linear_variance_ * factor)
        return factor
