"""The GPyTorch side of :class:`surrogates.models.gp.BatchedExactGP`: the batched exact model
(anisotropic Matern-5/2 with an optional linear term, zero or constant mean), its likelihood,
the log-positive constraints, and the exact-solve settings every call runs under.

Every hyperparameter is constrained through ``exp`` (:func:`_log_positive`; the noise through
``min_noise + exp``). An optimiser therefore works on log-hyperparameters, and its steps are
relative changes whatever the scale.
"""

from __future__ import annotations

import contextlib

import gpytorch
import torch

__all__ = ["exact_settings"]


def exact_settings() -> contextlib.ExitStack:
    """Context manager: exact Cholesky solves and log-determinants at every size."""
    stack = contextlib.ExitStack()
    stack.enter_context(gpytorch.settings.max_cholesky_size(10**9))
    stack.enter_context(gpytorch.settings.fast_computations(False, False, False))
    stack.enter_context(gpytorch.settings.fast_pred_var(False))
    return stack


class _Model(gpytorch.models.ExactGP):
    """GP batched over ``batch_shape``: ScaleKernel(Matern-5/2 with ARD), optionally plus
    Linear; zero or constant prior mean."""

    def __init__(self, x, y, likelihood, batch_shape: torch.Size, *, mean: str, linear: bool):
        super().__init__(x, y, likelihood)
        self.mean_module = (gpytorch.means.ConstantMean(batch_shape=batch_shape)
                            if mean == "constant" else
                            gpytorch.means.ZeroMean(batch_shape=batch_shape))
        self.matern = gpytorch.kernels.ScaleKernel(
            gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=x.shape[-1],
                                          batch_shape=batch_shape,
                                          lengthscale_constraint=_log_positive()),
            batch_shape=batch_shape, outputscale_constraint=_log_positive())
        self.linear = (gpytorch.kernels.LinearKernel(batch_shape=batch_shape,
                                                     variance_constraint=_log_positive())
                       if linear else None)

    def kernel(self, x):
        k = self.matern(x)
        return k if self.linear is None else k + self.linear(x)

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.kernel(x))


def _log_positive() -> gpytorch.constraints.Positive:
    """Positive constraint through ``exp``: optimisers then work on log-hyperparameters."""
    return gpytorch.constraints.Positive(transform=torch.exp, inv_transform=torch.log)


def _build(x: torch.Tensor, y: torch.Tensor, batch_shape: torch.Size, min_noise: float, *,
           mean: str, linear: bool) -> tuple[_Model, gpytorch.likelihoods.GaussianLikelihood]:
    """Model and likelihood; ``x`` is ``(*batch, n, d)`` and ``y`` is ``(*batch, n)``."""
    likelihood = gpytorch.likelihoods.GaussianLikelihood(
        batch_shape=batch_shape, noise_constraint=gpytorch.constraints.GreaterThan(
            min_noise, transform=torch.exp, inv_transform=torch.log))
    model = _Model(x, y, likelihood, batch_shape, mean=mean, linear=linear)
    return model.to(x.dtype), likelihood.to(x.dtype)
