r"""Batched exact Gaussian processes in GPyTorch: independent outputs, restarts batched too.

:class:`BatchedExactGP` fits ``m`` independent single-output GPs that share one set of training
inputs ``X`` (``(n, d)``) but have their own targets (the columns of ``Y``, ``(n, m)``) and their
own hyperparameters. Each GP has a zero prior mean (standardise the targets first) and the kernel

.. math::

    k(x, x') = s^2 \left(1 + \sqrt5\, r + \tfrac53 r^2\right) e^{-\sqrt5\, r}
        + \sigma^2 \delta_{x x'}, \qquad
    r^2 = \sum_{j=1}^d \frac{(x_j - x'_j)^2}{\ell_j^2},

an anisotropic Matern-5/2 with output scale :math:`s^2`, one length scale :math:`\ell_j` per input
dimension and a learned Gaussian noise variance :math:`\sigma^2` (scikit-learn's
``ConstantKernel * Matern(nu=2.5) + WhiteKernel``).

Hyperparameters maximise the exact log marginal likelihood

.. math::

    \log p(y \mid X) = -\tfrac12 y^\top K^{-1} y - \tfrac12 \log\det K - \tfrac n2 \log 2\pi,
    \qquad K = K_{s,\ell}(X, X) + \sigma^2 I,

by Adam (or L-BFGS) from ``n_restarts`` initialisations. All ``n_restarts x m`` problems form one
GPyTorch batch of shape ``(n_restarts, m)``: the summed loss has block-independent gradients, and
Adam is element-wise, so every batch member follows exactly the trajectory it would follow alone.
For each output the restart with the largest final marginal likelihood is kept.

Numerical settings are deliberate: every solve is an exact Cholesky factorisation
(``gpytorch.settings.max_cholesky_size(10**9)``, ``fast_computations(False, False, False)``), never
conjugate gradients with stochastic Lanczos log-determinants, which for larger training sets can
collapse the noise and give badly over-confident intervals. Everything runs in ``dtype`` (float64 by
default).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import gpytorch
import numpy as np
import torch
from gpytorch.utils.errors import NotPSDError

__all__ = ["BatchedExactGP", "exact_settings"]


def exact_settings() -> contextlib.ExitStack:
    """Context manager: exact Cholesky solves and log-determinants at every size."""
    stack = contextlib.ExitStack()
    stack.enter_context(gpytorch.settings.max_cholesky_size(10**9))
    stack.enter_context(gpytorch.settings.fast_computations(False, False, False))
    stack.enter_context(gpytorch.settings.fast_pred_var(False))
    return stack


class _Model(gpytorch.models.ExactGP):
    """Zero-mean GP, ScaleKernel(Matern-5/2 with ARD), batched over ``batch_shape``."""

    def __init__(self, x, y, likelihood, batch_shape: torch.Size, dim: int):
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ZeroMean(batch_shape=batch_shape)
        self.covar_module = gpytorch.kernels.ScaleKernel(
            gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=dim, batch_shape=batch_shape,
                                          lengthscale_constraint=_log_positive()),
            batch_shape=batch_shape, outputscale_constraint=_log_positive())

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def _log_positive() -> gpytorch.constraints.Positive:
    """Positive constraint through ``exp``: optimisers then work on log-hyperparameters."""
    return gpytorch.constraints.Positive(transform=torch.exp, inv_transform=torch.log)


def _build(x: torch.Tensor, y: torch.Tensor, batch_shape: torch.Size, min_noise: float
           ) -> tuple[_Model, gpytorch.likelihoods.GaussianLikelihood]:
    """Model and likelihood; ``x`` is ``(*batch, n, d)`` and ``y`` is ``(*batch, n)``."""
    likelihood = gpytorch.likelihoods.GaussianLikelihood(
        batch_shape=batch_shape, noise_constraint=gpytorch.constraints.GreaterThan(
            min_noise, transform=torch.exp, inv_transform=torch.log))
    model = _Model(x, y, likelihood, batch_shape, x.shape[-1])
    return model.to(x.dtype), likelihood.to(x.dtype)


class BatchedExactGP:
    r"""Independent exact GPs over the columns of ``Y`` (anisotropic Matern-5/2 + noise).

    Parameters
    ----------
    n_restarts : int, default 5
        Random initialisations of the hyperparameters per output (the first one is the fixed
        default: all length scales 1, output scale 1, noise 0.01); the one with the largest final
        marginal likelihood is kept for each output.
    max_iter : int, default 200
        Optimiser iterations (Adam steps, or L-BFGS iterations).
    optimizer : {"adam", "lbfgs"}, default "adam"
        ``"adam"`` (learning rate ``lr``) keeps the restarts exactly independent; ``"lbfgs"``
        (strong-Wolfe line search) converges in fewer iterations but its line search is shared by
        the whole batch.
    lr : float, default 0.1
        Adam learning rate. The raw parameters are log length scales, log output scale and
        log(noise - min_noise), so steps are relative changes whatever the scale.
    min_noise : float, default 1e-8
        Lower bound of the noise variance (in the units of ``Y`` squared).
    seed : int, default 0
        Seed of the random initialisations.
    dtype : torch.dtype, default torch.float64

    Attributes
    ----------
    lengthscale_ : ndarray, shape (m, d)
    outputscale_ : ndarray, shape (m,)
        :math:`s^2` of each output.
    noise_ : ndarray, shape (m,)
        :math:`\sigma^2` of each output.
    log_marginal_likelihood_ : ndarray, shape (m,)
        Exact :math:`\log p(y \mid X)` of the kept hyperparameters (nats, not divided by ``n``).
    restart_log_marginal_likelihood_ : ndarray, shape (n_restarts, m)
        The same for every restart (``-inf`` where a restart failed).
    """

    def __init__(self, n_restarts: int = 5, max_iter: int = 200, optimizer: str = "adam",
                 lr: float = 0.1, min_noise: float = 1e-8, seed: int = 0,
                 dtype: torch.dtype = torch.float64):
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.lr = lr
        self.min_noise = min_noise
        self.seed = seed
        self.dtype = dtype

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
        return X, Y

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=float), dtype=self.dtype)

    # --------------------------------------------------------------------------------- fit
    def _initial(self, shape: tuple[int, int], d: int, gen: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Initial (lengthscale, outputscale, noise) of shapes (R, m, 1, d), (R, m), (R, m, 1)."""
        r, m = shape
        u = lambda *s: torch.rand(*s, generator=gen, dtype=self.dtype)  # noqa: E731
        ls = torch.exp(math.log(0.2) + u(r, m, 1, d) * math.log(10.0 / 0.2))  # log-uniform
        os_ = torch.exp(math.log(0.3) + u(r, m) * math.log(3.0 / 0.3))
        noise = torch.exp(math.log(1e-5) + u(r, m, 1) * math.log(1e-1 / 1e-5))
        ls[0], os_[0], noise[0] = 1.0, 1.0, 1e-2
        noise = noise.clamp_min(2.0 * self.min_noise)
        return ls, os_, noise

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
            On non-2-D ``X``, a row-count mismatch, fewer than two points, non-finite values, or
            ``n_restarts < 1``.
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
        model, likelihood = _build(x, y, batch, self.min_noise)
        gen = torch.Generator().manual_seed(int(self.seed))
        ls, os_, noise = self._initial((r, m), d, gen)
        model.covar_module.base_kernel.lengthscale = ls
        model.covar_module.outputscale = os_
        likelihood.noise = noise
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
            all_ls = model.covar_module.base_kernel.lengthscale.cpu().numpy()[:, :, 0, :]
            all_os = model.covar_module.outputscale.cpu().numpy()
            # the constraint's exp can round a noise at the bound a hair below min_noise
            all_noise = np.maximum(likelihood.noise.cpu().numpy()[:, :, 0], self.min_noise)
        # a restart counts only with usable hyperparameters (L-BFGS steps can underflow a
        # length scale to 0 or leave non-finite values)
        usable = (np.isfinite(values) & np.all(np.isfinite(all_ls) & (all_ls > 0), axis=-1)
                  & np.isfinite(all_os) & (all_os > 0) & np.isfinite(all_noise)
                  & (all_noise >= self.min_noise))
        values = np.where(usable, values, -np.inf)
        if not np.all(usable.any(axis=0)):
            bad = np.flatnonzero(~usable.any(axis=0)).tolist()
            if self.optimizer == "lbfgs":  # the shared line search can wreck every restart
                return self._refit_with_adam(X, Y, f"no usable restart for outputs {bad}")
            raise ValueError(f"no restart of outputs {bad} ended with usable hyperparameters; "
                             "use more restarts")
        best = np.argmax(values, axis=0)
        cols = np.arange(m)
        ls, os_, noise = all_ls[best, cols], all_os[best, cols], all_noise[best, cols]
        self.restart_log_marginal_likelihood_ = values
        self.best_restart_ = best
        self.set_hyperparameters(X, Y, ls, os_, noise)
        return self

    def _refit_with_adam(self, X, Y, why: str) -> BatchedExactGP:
        """Fit with Adam (at least 200 steps) instead of a failed L-BFGS run, with a warning."""
        steps = max(int(self.max_iter), 200)
        warnings.warn(f"L-BFGS failed ({why}); refitting with Adam ({steps} steps)",
                      stacklevel=3)
        adam = BatchedExactGP(self.n_restarts, steps, "adam", self.lr, self.min_noise, self.seed,
                              self.dtype).fit(X, Y)
        self.__dict__.update({k: v for k, v in vars(adam).items()
                              if k.endswith("_") or k.startswith("_")})
        return self

    def set_hyperparameters(self, X, Y, lengthscale, outputscale, noise) -> BatchedExactGP:
        """Condition on ``(X, Y)`` with given hyperparameters, without optimising.

        Parameters
        ----------
        X : array_like, shape (n, d)
        Y : array_like, shape (n, m) or (n,)
        lengthscale : array_like, shape (m, d) or broadcastable
        outputscale, noise : array_like, shape (m,) or scalars
            Output variance :math:`s^2` and noise variance :math:`\\sigma^2`.
        """
        X, Y = self._check_xy(X, Y)
        n, d = X.shape
        m = Y.shape[1]
        ls = np.broadcast_to(np.asarray(lengthscale, float), (m, d)).copy()
        os_ = np.broadcast_to(np.asarray(outputscale, float), (m,)).copy()
        noise = np.broadcast_to(np.asarray(noise, float), (m,)).copy()
        if np.any(ls <= 0) or np.any(os_ <= 0) or np.any(noise < self.min_noise):
            raise ValueError(f"length scales and output scales must be > 0 and noise >= "
                             f"min_noise={self.min_noise}")
        self.X_train_, self.Y_train_ = X, Y
        self.lengthscale_, self.outputscale_, self.noise_ = ls, os_, noise
        batch = torch.Size([m])
        x = self._tensor(X).expand(m, n, d).contiguous()
        y = self._tensor(Y).T.contiguous()
        model, likelihood = _build(x, y, batch, self.min_noise)
        model.covar_module.base_kernel.lengthscale = self._tensor(ls)[:, None, :]
        model.covar_module.outputscale = self._tensor(os_)
        likelihood.noise = self._tensor(noise)[:, None]
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        model.train()
        likelihood.train()
        with torch.no_grad(), exact_settings():
            self.log_marginal_likelihood_ = (mll(model(x), y) * n).cpu().numpy()
        model.eval()
        likelihood.eval()
        self._model, self._likelihood = model, likelihood
        return self

    def calibrate_amplitude(self, groups=None) -> np.ndarray:
        r"""Set each output's amplitude by grouped leave-one-out cross-validation.

        The posterior mean does not change when the output scale :math:`s^2` and the noise
        :math:`\sigma^2` are multiplied by one factor :math:`c`, but every predictive variance
        is. With :math:`A = K^{-1}` (the training covariance of one output) and
        :math:`\alpha = A y`, leaving out the group :math:`G` gives in closed form the residual
        :math:`r_G = y_G - \mu_{-G} = A_{GG}^{-1} \alpha_G` and its covariance
        :math:`A_{GG}^{-1}` (Sundararajan & Keerthi 2001, by blocks). The factor that makes
        these residuals unit-variance on average,

        .. math::
            c = \frac{\sum_G r_G^\top A_{GG}\, r_G}{\sum_G |G|}
              = \frac{\sum_G \alpha_G^\top A_{GG}^{-1} \alpha_G}{n},

        replaces the marginal-likelihood amplitude (output scale and noise are both multiplied
        by :math:`c`, raised where needed to ``min_noise`` / :math:`\sigma^2` so that the noise
        stays >= ``min_noise``). Groups are samples that are not
        independent of each other (e.g. one shape at several conditions): leaving out a single
        one of them would judge the model on near-duplicates of its own training data.

        Parameters
        ----------
        groups : array_like of shape (n,), optional
            Group label of each training sample; None: every sample its own group (ordinary
            leave-one-out).

        Returns
        -------
        ndarray, shape (m,)
            The factors :math:`c` applied (> 1: the likelihood's intervals were too narrow).
        """
        if not hasattr(self, "_model"):
            raise ValueError("this BatchedExactGP is not fitted; call fit(X, Y) first")
        n, m = self.Y_train_.shape
        labels = np.arange(n) if groups is None else np.asarray(groups)
        if labels.shape != (n,):
            raise ValueError(f"groups must have one label per training sample ({n}), got shape "
                             f"{labels.shape}")
        x = self._tensor(self.X_train_).expand(m, *self.X_train_.shape).contiguous()
        with torch.no_grad(), exact_settings():
            K = self._model.covar_module(x).to_dense()
            K = K + torch.diag_embed(self._tensor(self.noise_)[:, None].expand(m, n))
            A = torch.cholesky_inverse(torch.linalg.cholesky(K)).cpu().numpy()  # (m, n, n)
        alpha = np.einsum("mij,jm->mi", A, self.Y_train_)
        total = np.zeros(m)
        for g in np.unique(labels):
            idx = np.flatnonzero(labels == g)
            a_gg = A[:, idx[:, None], idx[None, :]]  # (m, |G|, |G|)
            r = np.linalg.solve(a_gg, alpha[:, idx, None])  # (m, |G|, 1)
            total += np.einsum("mi,mi->m", alpha[:, idx], r[..., 0])
        # a factor may not push the noise below min_noise: it is raised to min_noise / sigma^2
        # there, so that output scale and noise keep their ratio and the mean stays the same
        factor = np.maximum(total / n, self.min_noise / self.noise_)
        self.set_hyperparameters(self.X_train_, self.Y_train_, self.lengthscale_,
                                 self.outputscale_ * factor, self.noise_ * factor)
        return factor

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
        if not hasattr(self, "_model"):
            raise ValueError("this BatchedExactGP is not fitted; call fit(X, Y) first")
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
        return {"X": self.X_train_, "Y": self.Y_train_, "lengthscale": self.lengthscale_,
                "outputscale": self.outputscale_, "noise": self.noise_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], **kwargs) -> BatchedExactGP:
        """Rebuild a conditioned GP from :meth:`get_arrays` output."""
        gp = cls(**kwargs)
        return gp.set_hyperparameters(arrays["X"], arrays["Y"], arrays["lengthscale"],
                                      arrays["outputscale"], arrays["noise"])
