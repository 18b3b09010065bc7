r"""Batched exact Gaussian processes in GPyTorch: independent outputs, restarts batched too.

:class:`BatchedExactGP` fits ``m`` independent single-output GPs that share one set of training
inputs ``X`` (``(n, d)``) but have their own targets (the columns of ``Y``, ``(n, m)``) and their
own hyperparameters: no length scale, amplitude or noise is shared between outputs. The prior of
each output is

.. math::

    y = f(x) + \varepsilon, \quad f \sim \mathcal{GP}(c, k), \quad
    \varepsilon \sim \mathcal N(0, \sigma^2), \qquad
    k(x, x') = s^2 \left(1 + \sqrt5\, r + \tfrac53 r^2\right) e^{-\sqrt5\, r}
        \;\left[+\; v\, x^\top x'\right], \quad
    r^2 = \sum_{j=1}^d \frac{(x_j - x'_j)^2}{\ell_j^2},

an anisotropic Matern-5/2 with output scale :math:`s^2` and one length scale :math:`\ell_j` per
input dimension (scikit-learn's ``ConstantKernel * Matern(nu=2.5) + WhiteKernel``), optionally
(``linear=True``) plus a linear term of variance :math:`v`, so that trends extrapolate linearly.
The prior mean :math:`c` is 0 (``mean="zero"``: standardise the targets first) or a learned
constant (``mean="constant"``).

Hyperparameters maximise the exact log marginal likelihood

.. math::

    \log p(y \mid X) = -\tfrac12 (y - c)^\top K^{-1} (y - c) - \tfrac12 \log\det K
        - \tfrac n2 \log 2\pi, \qquad K = k(X, X) + \sigma^2 I,

by Adam (or L-BFGS) from ``n_restarts`` initialisations. All ``n_restarts x m`` problems form one
GPyTorch batch of shape ``(n_restarts, m)``: the summed loss has block-independent gradients, and
Adam is element-wise, so every batch member follows exactly the trajectory it would follow alone.
For each output the restart with the largest final marginal likelihood is kept.

Leave-one-out
-------------
Leave-one-out is closed-form for exact GPs with fixed hyperparameters (Sundararajan & Keerthi
2001): with :math:`A = K^{-1}` and :math:`\alpha = A (y - c)`, leaving out the samples of a group
:math:`G` gives the residuals :math:`r_G = y_G - \mu_{-G} = A_{GG}^{-1} \alpha_G` with covariance
:math:`A_{GG}^{-1}` (noise included); for single samples :math:`r_i = \alpha_i / A_{ii}` and
:math:`\operatorname{Var}_{-i} = 1 / A_{ii}`. :meth:`BatchedExactGP.loo` returns these;
:meth:`BatchedExactGP.calibrate_amplitude` rescales each output's variances so that the
per-sample leave-one-out z-scores :math:`z_i = r_i / \sqrt{(A_{GG}^{-1})_{ii}}` have unit variance
(or, ``method="conformal"``, so that the empirical ``level`` quantile of :math:`|z_i|` sits at the
Gaussian one).

Numerical settings are deliberate: every solve is an exact Cholesky factorisation
(``gpytorch.settings.max_cholesky_size(10**9)``, ``fast_computations(False, False, False)``), never
conjugate gradients with stochastic Lanczos log-determinants, which for larger training sets can
collapse the noise and give badly over-confident intervals. Everything runs in ``dtype`` (float64 by
default).

The code is in three modules. This one holds :class:`BatchedExactGP`: fit, conditioning,
prediction and arrays. :mod:`surrogates.models.gp_loo` holds leave-one-out,
:func:`variance_factor` and the amplitude calibration. :mod:`surrogates.models.gp_model` holds
the GPyTorch model and :func:`exact_settings`. Every name that was importable from here still
is.

References
----------
S. Sundararajan and S. S. Keerthi, "Predictive approaches for choosing hyperparameters in
Gaussian processes", Neural Computation 13 (2001).
"""

from __future__ import annotations

import math
import warnings

import gpytorch
import numpy as np
import torch
from gpytorch.utils.errors import NotPSDError

from surrogates.models.gp_loo import (
    CALIBRATION_METHODS,  # noqa: F401  (re-exported)
    LeaveOneOut,
    variance_factor,
)
from surrogates.models.gp_model import (
    _build,
    _log_positive,  # noqa: F401  (re-exported)
    _Model,  # noqa: F401  (re-exported)
    exact_settings,
)

__all__ = ["BatchedExactGP", "exact_settings", "variance_factor"]


class BatchedExactGP(LeaveOneOut):
    r"""Independent exact GPs over the columns of ``Y`` (anisotropic Matern-5/2 + noise).

    Parameters
    ----------
    n_restarts : int, default 5
        Random initialisations of the hyperparameters per output (the first one is the fixed
        default: all length scales 1, output scale 1, noise 0.01, linear variance 0.1, mean 0);
        the one with the largest final marginal likelihood is kept for each output.
    max_iter : int, default 200
        Optimiser iterations (Adam steps, or L-BFGS iterations).
    optimizer : {"adam", "lbfgs"}, default "adam"
        ``"adam"`` (learning rate ``lr``) keeps the restarts exactly independent; ``"lbfgs"``
        (strong-Wolfe line search) converges in fewer iterations but its line search is shared by
        the whole batch.
    lr : float, default 0.1
        Adam learning rate. The raw parameters are log length scales, log output scale, log
        linear variance and log(noise - min_noise), so steps are relative changes whatever the
        scale.
    min_noise : float, default 1e-8
        Lower bound of the noise variance (in the units of ``Y`` squared).
    seed : int, default 0
        Seed of the random initialisations.
    dtype : torch.dtype, default torch.float64
    mean : {"zero", "constant"}, default "zero"
        Prior mean: 0, or a learned constant :math:`c` per output.
    linear : bool, default False
        Add the linear kernel :math:`v\, x^\top x'`.

    Attributes
    ----------
    lengthscale_ : ndarray, shape (m, d)
    outputscale_ : ndarray, shape (m,)
        :math:`s^2` of each output.
    noise_ : ndarray, shape (m,)
        :math:`\sigma^2` of each output.
    linear_variance_ : ndarray, shape (m,) or None
        :math:`v` of each output (None without ``linear``).
    mean_constant_ : ndarray, shape (m,)
        :math:`c` of each output (zeros with ``mean="zero"``).
    log_marginal_likelihood_ : ndarray, shape (m,)
        :math:`\log p(y \mid X)` of the kept hyperparameters (nats, not divided by ``n``).
    restart_log_marginal_likelihood_ : ndarray, shape (n_restarts, m)
        The same for every restart (``-inf`` where a restart failed).
    """

    def __init__(self, n_restarts: int = 5, max_iter: int = 200, optimizer: str = "adam",
                 lr: float = 0.1, min_noise: float = 1e-8, seed: int = 0,
                 dtype: torch.dtype = torch.float64, mean: str = "zero", linear: bool = False):
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.lr = lr
        self.min_noise = min_noise
        self.seed = seed
        self.dtype = dtype
        self.mean = mean
        self.linear = linear

    # ------------------------------------------------------------------------------ checks
    def _check_xy(self, X, Y) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n, d), got shape {X.shape}")
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise ValueError(f"Y must be (n, m) with n = {X.shape[0]} rows like X {X.shape}, "
                             f"got shape {Y.shape}")
        if X.shape[0] < 2:
            raise ValueError(f"need at least 2 training points, got {X.shape[0]}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
            raise ValueError("X and Y must be finite; found NaN or inf")
        if self.mean not in ("zero", "constant"):
            raise ValueError(f"mean must be 'zero' or 'constant', got {self.mean!r}")
        return X, Y

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=float), dtype=self.dtype)

    def _build(self, x, y, batch):
        return _build(x, y, batch, self.min_noise, mean=self.mean, linear=bool(self.linear))

    # --------------------------------------------------------------------------------- fit
    def _initial(self, shape: tuple[int, int], d: int, gen: torch.Generator
                 ) -> dict[str, torch.Tensor]:
        """Initial lengthscale (R, m, 1, d), outputscale (R, m), noise (R, m, 1) and linear
        variance (R, m, 1, 1), log-uniform except for restart 0."""
        r, m = shape
        u = lambda *s: torch.rand(*s, generator=gen, dtype=self.dtype)  # noqa: E731

        def log_uniform(low, high, *s):
            return torch.exp(math.log(low) + u(*s) * math.log(high / low))

        init = {"lengthscale": log_uniform(0.2, 10.0, r, m, 1, d),
                "outputscale": log_uniform(0.3, 3.0, r, m),
                "noise": log_uniform(1e-5, 1e-1, r, m, 1),
                "linear": log_uniform(1e-2, 1.0, r, m, 1, 1)}
        for key, first in (("lengthscale", 1.0), ("outputscale", 1.0), ("noise", 1e-2),
                           ("linear", 0.1)):
            init[key][0] = first
        init["noise"] = init["noise"].clamp_min(2.0 * self.min_noise)
        return init

    def fit(self, X, Y) -> BatchedExactGP:
        """Maximise the marginal likelihood of each column of ``Y`` given ``X``.

        Parameters
        ----------
        X : array_like, shape (n, d)
        Y : array_like, shape (n, m) or (n,)

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On non-2-D ``X``, a row-count mismatch, fewer than two points, non-finite values,
            ``n_restarts < 1`` or an unknown optimizer or mean.
        """
        X, Y = self._check_xy(X, Y)
        if int(self.n_restarts) < 1:
            raise ValueError(f"n_restarts must be >= 1, got {self.n_restarts}")
        if self.optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {self.optimizer!r}")
        n, d = X.shape
        m = Y.shape[1]
        r = int(self.n_restarts)
        batch = torch.Size([r, m])
        x = self._tensor(X).expand(r, m, n, d).contiguous()
        y = self._tensor(Y).T.expand(r, m, n).contiguous()
        model, likelihood = self._build(x, y, batch)
        init = self._initial((r, m), d, torch.Generator().manual_seed(int(self.seed)))
        model.matern.base_kernel.lengthscale = init["lengthscale"]
        model.matern.outputscale = init["outputscale"]
        likelihood.noise = init["noise"]
        if model.linear is not None:
            model.linear.variance = init["linear"]
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        model.train()
        likelihood.train()
        params = list(model.parameters())  # the likelihood is a submodule of the model
        with exact_settings():
            if self.optimizer == "adam":
                opt = torch.optim.Adam(params, lr=self.lr)
                for _ in range(int(self.max_iter)):
                    opt.zero_grad()
                    loss = -mll(model(x), y).sum()
                    loss.backward()
                    opt.step()
            else:
                opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(self.max_iter),
                                        line_search_fn="strong_wolfe")

                def closure():
                    opt.zero_grad()
                    loss = -mll(model(x), y).sum()
                    loss.backward()
                    return loss

                try:
                    opt.step(closure)
                except NotPSDError:  # a shared line-search step broke a covariance matrix
                    return self._refit_with_adam(X, Y, "a covariance matrix lost positive "
                                                 "definiteness during L-BFGS")
            with torch.no_grad():
                values = mll(model(x), y) * n  # (R, m), exact log p(y | X)
        values = values.detach().cpu().numpy()
        with torch.no_grad():
            found = {"lengthscale": model.matern.base_kernel.lengthscale.cpu().numpy()[:, :, 0],
                     "outputscale": model.matern.outputscale.cpu().numpy(),
                     # the constraint's exp can round a noise at the bound a hair below it
                     "noise": np.maximum(likelihood.noise.cpu().numpy()[:, :, 0],
                                         self.min_noise)}
            if model.linear is not None:
                found["linear_variance"] = model.linear.variance.cpu().numpy()[:, :, 0, 0]
            if self.mean == "constant":
                found["mean_constant"] = model.mean_module.constant.cpu().numpy()
        # a restart counts only with usable hyperparameters (L-BFGS steps can underflow a
        # length scale to 0 or leave non-finite values)
        usable = np.isfinite(values) & (found["noise"] >= self.min_noise)
        for key, value in found.items():
            ok = np.isfinite(value) if key == "mean_constant" else np.isfinite(value) & (value > 0)
            usable &= ok.all(axis=-1) if value.ndim == 3 else ok
        values = np.where(usable, values, -np.inf)
        if not np.all(usable.any(axis=0)):
            bad = np.flatnonzero(~usable.any(axis=0)).tolist()
            if self.optimizer == "lbfgs":  # the shared line search can wreck every restart
                return self._refit_with_adam(X, Y, f"no usable restart for outputs {bad}")
            raise ValueError(f"no restart of outputs {bad} ended with usable hyperparameters; "
                             "use more restarts")
        best = np.argmax(values, axis=0)
        cols = np.arange(m)
        kept = {key: value[best, cols] for key, value in found.items()}
        self.restart_log_marginal_likelihood_ = values
        self.best_restart_ = best
        self.set_hyperparameters(X, Y, kept["lengthscale"], kept["outputscale"], kept["noise"],
                                 linear_variance=kept.get("linear_variance"),
                                 mean_constant=kept.get("mean_constant"))
        return self

    def _refit_with_adam(self, X, Y, why: str) -> BatchedExactGP:
        """Fit with Adam (at least 200 steps) instead of a failed L-BFGS run, with a warning."""
        steps = max(int(self.max_iter), 200)
        warnings.warn(f"L-BFGS failed ({why}); refitting with Adam ({steps} steps)",
                      stacklevel=3)
        adam = BatchedExactGP(self.n_restarts, steps, "adam", self.lr, self.min_noise, self.seed,
                              self.dtype, self.mean, self.linear).fit(X, Y)
        self.__dict__.update({k: v for k, v in vars(adam).items()
                              if k.endswith("_") or k.startswith("_")})
        return self

    def set_hyperparameters(self, X, Y, lengthscale, outputscale, noise, *,
                            linear_variance=None, mean_constant=None) -> BatchedExactGP:
        r"""Condition on ``(X, Y)`` with given hyperparameters, without optimising.

        Parameters
        ----------
        X : array_like, shape (n, d)
        Y : array_like, shape (n, m) or (n,)
        lengthscale : array_like, shape (m, d) or broadcastable
        outputscale, noise : array_like, shape (m,) or scalars
            Output variance :math:`s^2` and noise variance :math:`\sigma^2`.
        linear_variance : array_like, shape (m,) or scalar; required with ``linear``
            :math:`v` of the linear kernel.
        mean_constant : array_like, shape (m,) or scalar, optional
            Prior mean :math:`c` with ``mean="constant"`` (default 0).

        Raises
        ------
        ValueError
            On non-positive scales, a noise below ``min_noise``, or a missing
            ``linear_variance`` with ``linear``.
        """
        X, Y = self._check_xy(X, Y)
        n, d = X.shape
        m = Y.shape[1]
        ls = np.broadcast_to(np.asarray(lengthscale, float), (m, d)).copy()
        os_ = np.broadcast_to(np.asarray(outputscale, float), (m,)).copy()
        noise = np.broadcast_to(np.asarray(noise, float), (m,)).copy()
        if self.linear and linear_variance is None:
            raise ValueError("linear=True needs linear_variance")
        lin = (np.broadcast_to(np.asarray(linear_variance, float), (m,)).copy()
               if self.linear else None)
        const = np.broadcast_to(np.asarray(0.0 if mean_constant is None else mean_constant,
                                           float), (m,)).copy()
        if (np.any(ls <= 0) or np.any(os_ <= 0) or np.any(noise < self.min_noise)
                or (lin is not None and np.any(lin <= 0))):
            raise ValueError(f"length scales, output scales and linear variances must be > 0 "
                             f"and noise >= min_noise={self.min_noise}")
        self.X_train_, self.Y_train_ = X, Y
        self.lengthscale_, self.outputscale_, self.noise_ = ls, os_, noise
        self.linear_variance_, self.mean_constant_ = lin, const
        batch = torch.Size([m])
        x = self._tensor(X).expand(m, n, d).contiguous()
        y = self._tensor(Y).T.contiguous()
        model, likelihood = self._build(x, y, batch)
        model.matern.base_kernel.lengthscale = self._tensor(ls)[:, None, :]
        model.matern.outputscale = self._tensor(os_)
        likelihood.noise = self._tensor(noise)[:, None]
        if lin is not None:
            model.linear.variance = self._tensor(lin)[:, None, None]
        if self.mean == "constant":
            model.mean_module.constant = self._tensor(const)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        model.train()
        likelihood.train()
        with torch.no_grad(), exact_settings():
            self.log_marginal_likelihood_ = (mll(model(x), y) * n).cpu().numpy()
        model.eval()
        likelihood.eval()
        self._model, self._likelihood = model, likelihood
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "_model"):
            raise ValueError("this BatchedExactGP is not fitted; call fit(X, Y) first")

    # ----------------------------------------------------------------------------- predict
    def predict(self, X, return_std: bool = False, include_noise: bool = True):
        """Predictive mean (and standard deviation) of every output at ``X``.

        Parameters
        ----------
        X : array_like, shape (q, d)
        return_std : bool, default False
        include_noise : bool, default True
            Add the noise variance :math:`\\sigma^2` to the latent variance (the predictive
            distribution of a new observation, as scikit-learn with a ``WhiteKernel``).

        Returns
        -------
        mean : ndarray, shape (q, m)
        std : ndarray, shape (q, m)
            Only when ``return_std``.
        """
        self._check_fitted()
        X = np.asarray(X, dtype=float)
        d = self.X_train_.shape[1]
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"X must be (q, {d}) like the training inputs, got shape {X.shape}")
        m = self.Y_train_.shape[1]
        x = self._tensor(X).expand(m, *X.shape).contiguous()
        with torch.no_grad(), exact_settings():
            post = self._model(x)
            mean = post.mean.cpu().numpy().T
            if not return_std:
                return mean
            var = post.variance.cpu().numpy().T
        var = np.clip(var, 0.0, None)
        if include_noise:
            var = var + self.noise_[None, :]
        return mean, np.sqrt(var)

    # ---------------------------------------------------------------------------- arrays
    def get_arrays(self) -> dict[str, np.ndarray]:
        """Training data and hyperparameters as plain arrays (for ``np.savez``)."""
        arrays = {"X": self.X_train_, "Y": self.Y_train_, "lengthscale": self.lengthscale_,
                  "outputscale": self.outputscale_, "noise": self.noise_}
        if self.linear_variance_ is not None:
            arrays["linear_variance"] = self.linear_variance_
        if self.mean == "constant":
            arrays["mean_constant"] = self.mean_constant_
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], **kwargs) -> BatchedExactGP:
        """Rebuild a conditioned GP from :meth:`get_arrays` output (``linear`` and ``mean``
        follow the arrays present unless given)."""
        kwargs.setdefault("linear", "linear_variance" in arrays)
        kwargs.setdefault("mean", "constant" if "mean_constant" in arrays else "zero")
        gp = cls(**kwargs)
        return gp.set_hyperparameters(arrays["X"], arrays["Y"], arrays["lengthscale"],
                                      arrays["outputscale"], arrays["noise"],
                                      linear_variance=arrays.get("linear_variance"),
                                      mean_constant=arrays.get("mean_constant"))
