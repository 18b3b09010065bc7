r"""The stochastic Lorenz-96 closure: a deterministic closure plus fitted AR(1) residual noise.

* :func:`fit_ar1` -- Yule-Walker fit of a stationary AR(1) process per ``k``, pooled over
  trajectories.
* :class:`StochasticClosure` -- a trained deterministic closure (the calling convention of
  :mod:`operators.mno`) plus AR(1) residual noise per ``k`` (Arnold, Moroz & Palmer 2013),
  additive or state-dependent, fitted with :meth:`StochasticClosure.fit`.

:class:`operators.mno.HybridLorenz96` samples the noise per step (``rollout``,
``ensemble_rollout``). Both names are re-exported by :mod:`operators.mno`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, model_checkpoint, model_from_checkpoint
from operators.mno_closures import _check_scale

__all__ = ["StochasticClosure", "fit_ar1"]


def fit_ar1(series: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Fit a stationary AR(1) process per ``k`` to series ``(B, T, K)``, pooled over ``B``.

    For :math:`e_t - \mu = \phi\,(e_{t-1} - \mu) + \sigma\sqrt{1 - \phi^2}\,z_t`,
    :math:`z_t \sim \mathcal N(0, 1)`, the Yule-Walker estimates are

    .. math::

        \hat\mu = \bar e, \qquad \hat\sigma^2 = \overline{(e_t - \hat\mu)^2}, \qquad
        \hat\phi = \frac{\overline{(e_t - \hat\mu)(e_{t+1} - \hat\mu)}}{\hat\sigma^2},

    with the averages over every trajectory ``b`` and time ``t`` (pairs never cross two
    trajectories). The standard error of :math:`\hat\phi` is about
    :math:`\sqrt{(1 - \phi^2)/(B T)}` for independent trajectories.

    Parameters
    ----------
    series : torch.Tensor, shape (B, T, K)
        ``B`` trajectories of ``T >= 2`` equally spaced values of ``K`` series.

    Returns
    -------
    mu, phi, sigma : torch.Tensor, each of shape (K,)
        Mean, lag-one autocorrelation (per sampling interval of ``series``) and stationary std.

    Raises
    ------
    ValueError
        If the shape is not ``(B, T >= 2, K)``, a value is not finite, or a series is constant.
    """
    if not isinstance(series, torch.Tensor) or series.ndim != 3 or series.shape[1] < 2:
        shape = tuple(series.shape) if isinstance(series, torch.Tensor) else type(series).__name__
        raise ValueError(f"series must be a tensor of shape (B, T >= 2, K), got {shape}")
    if not torch.isfinite(series).all():
        raise ValueError("series contains non-finite values")
    mu = series.mean(dim=(0, 1))
    e = series - mu
    c0 = (e ** 2).mean(dim=(0, 1))
    if not bool((c0 > 0).all()):
        raise ValueError(f"series {torch.nonzero(c0 <= 0).flatten().tolist()} are constant: "
                         "no noise to fit")
    c1 = (e[:, 1:] * e[:, :-1]).mean(dim=(0, 1))
    return mu, c1 / c0, c0.sqrt()


class StochasticClosure(nn.Module):
    r"""A deterministic closure plus AR(1) residual noise, per ``k`` (stochastic parametrisation).

    .. math::

        c_k(X, t) = \bar c_k(X) + \mu_k + s_k(\bar c_k(X))\, \eta_k(t), \qquad
        s_k(\bar c) = \sqrt{\sigma_{a,k}^2 + \sigma_{m,k}^2\, \bar c^2},

    where :math:`\bar c` is the trained deterministic closure and :math:`\eta_k` a stationary
    unit-variance AR(1) process with lag-one autocorrelation :math:`\phi_k` over the sampling
    interval :math:`\tau` of the training frames. Over a model step :math:`\Delta t` it advances
    as

    .. math::

        \eta_k(t + \Delta t) = \phi_k^{\Delta t/\tau}\, \eta_k(t)
            + \sqrt{1 - \phi_k^{2\Delta t/\tau}}\, z_k, \qquad z_k \sim \mathcal N(0, 1),

    (the exact discretisation of the Ornstein-Uhlenbeck process with these lag correlations), and
    is held fixed through the stages of one RK4 step. ``noise="additive"``
    (:math:`\sigma_m = 0`) is the additive AR(1) scheme of Arnold, Moroz & Palmer [1]_;
    ``noise="state_dependent"`` is a heteroscedastic variant in the spirit of their
    multiplicative-and-additive scheme, with one AR(1) process scaled by
    :math:`s_k(\bar c)` (the residual variance grows with the size of the closure term).

    An ensemble of hybrid runs with independent noise
    (:meth:`operators.mno.HybridLorenz96.ensemble_rollout`) then spreads as the closure's error
    accumulates, unlike members that differ only by seed.

    Parameters
    ----------
    closure : nn.Module
        Trained deterministic closure (the module's calling convention); its ``history`` and
        ``use_forcing_channel`` are passed through.
    mu, phi, sigma_additive : sequence of float or torch.Tensor, each of length ``K`` (or 1)
        Residual mean and lag-one autocorrelation per ``k``, and the additive noise std, in units
        of ``X`` per model time unit (``phi`` per ``sample_interval``, in [0, 1)).
    sigma_multiplicative : sequence of float or torch.Tensor, optional
        Dimensionless :math:`\sigma_m` per ``k`` (default zeros: additive noise).
    sample_interval : float
        :math:`\tau`, model time units between the frames the AR(1) was fitted on.

    Notes
    -----
    ``forward`` returns the deterministic mean :math:`\bar c`, so the module is a valid closure
    anywhere (export, a-priori scores); :class:`~operators.mno.HybridLorenz96` adds the noise in
    ``rollout``, ``ensemble_rollout`` and, given ``eta``, ``step``. Noise parameters of length
    ``K`` fix the ring size; length 1 applies to any ``K``.

    References
    ----------
    .. [1] H. M. Arnold, I. M. Moroz and T. N. Palmer, "Stochastic parametrizations and model
       uncertainty in the Lorenz '96 system", Phil. Trans. R. Soc. A 371, 20110479 (2013).
    """

    def __init__(self, closure: nn.Module, *, mu, phi, sigma_additive,
                 sigma_multiplicative=None, sample_interval: float) -> None:
        super().__init__()
        if not isinstance(closure, nn.Module):
            raise TypeError(f"closure must be an nn.Module, got {type(closure).__name__}")
        self.closure = closure
        self.history = int(getattr(closure, "history", 0))
        self.use_forcing_channel = bool(getattr(closure, "use_forcing_channel", False))
        self.sample_interval = _check_scale(sample_interval, "sample_interval", positive=True)
        params = {"mu": mu, "phi": phi, "sigma_additive": sigma_additive,
                  "sigma_multiplicative": torch.zeros_like(torch.as_tensor(
                      sigma_additive, dtype=torch.float64)) if sigma_multiplicative is None
                  else sigma_multiplicative}
        tensors = {}
        for name, value in params.items():
            t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
            if t.numel() == 0 or not torch.isfinite(t).all():
                raise ValueError(f"{name} must be a non-empty finite vector, got {value!r}")
            tensors[name] = t
        if len({t.numel() for t in tensors.values()}) != 1:
            raise ValueError("mu, phi, sigma_additive and sigma_multiplicative must have one "
                             "length (K or 1); got "
                             f"{ {n: t.numel() for n, t in tensors.items()} }")
        if not bool(((tensors["phi"] >= 0) & (tensors["phi"] < 1)).all()):
            raise ValueError(f"phi must lie in [0, 1), got {tensors['phi'].tolist()}")
        if not bool((tensors["sigma_additive"] > 0).all()) or \
                not bool((tensors["sigma_multiplicative"] >= 0).all()):
            raise ValueError("sigma_additive must be > 0 and sigma_multiplicative >= 0")
        for name, t in tensors.items():
            self.register_buffer(name, t)

    @property
    def noise(self) -> str:
        """``"additive"`` or ``"state_dependent"``."""
        return "state_dependent" if bool((self.sigma_multiplicative > 0).any()) else "additive"

    def forward(self, x: torch.Tensor, F: float | torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic mean closure :math:`\\bar c`, ``(B, 1 + history, K)`` ->
        ``(B, 1, K)``."""
        return self.closure(x, F) if self.use_forcing_channel else self.closure(x)

    def _param(self, name: str, like: torch.Tensor) -> torch.Tensor:
        t = getattr(self, name)
        if t.numel() not in (1, like.shape[-1]):
            raise ValueError(f"the noise was fitted for K = {t.numel()}, the state has "
                             f"K = {like.shape[-1]}")
        return t.to(like.dtype).to(like.device)

    def perturbation(self, mean_closure: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        r"""The stochastic part :math:`\mu + s(\bar c)\,\eta`, shape of ``mean_closure (B, K)``."""
        a, m = self._param("sigma_additive", eta), self._param("sigma_multiplicative", eta)
        return self._param("mu", eta) + torch.sqrt(a ** 2 + (m * mean_closure) ** 2) * eta

    def initial_eta(self, like: torch.Tensor, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """A draw of the stationary unit-variance state :math:`\\eta \\sim \\mathcal N(0, 1)`,
        shape and dtype of ``like (B, K)``."""
        self._param("phi", like)
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)

    def advance_eta(self, eta: torch.Tensor, dt: float, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        r""":math:`\eta(t + \Delta t) = \phi^{\Delta t/\tau}\eta(t) + \sqrt{1 - \phi^{2\Delta t/
        \tau}}\, z`."""
        rho = self._param("phi", eta) ** (float(dt) / self.sample_interval)
        z = torch.randn(eta.shape, generator=generator, dtype=eta.dtype, device=eta.device)
        return rho * eta + torch.sqrt(1.0 - rho ** 2) * z

    @classmethod
    def fit(cls, closure: nn.Module, X: torch.Tensor, target: torch.Tensor, *,
            sample_interval: float, F: float | torch.Tensor | None = None,
            noise: str = "additive", prediction: torch.Tensor | None = None
            ) -> StochasticClosure:
        r"""Fit the noise to the residuals of a trained closure on training trajectories.

        The residual :math:`r = c^{\mathrm{target}} - \bar c(X)` on frames spaced
        ``sample_interval`` apart is fitted per ``k``, pooled over trajectories:

        * ``"additive"``: :func:`fit_ar1` of :math:`r` gives :math:`\mu, \phi, \sigma_a`.
        * ``"state_dependent"``: with :math:`r' = r - \mu`, the variance model
          :math:`E[r'^2] = \sigma_a^2 + \sigma_m^2 \bar c^2` is fitted by least squares of
          :math:`r'^2` on :math:`(1, \bar c^2)` per ``k`` (:math:`\sigma_m^2` clipped at 0 and
          :math:`\sigma_a^2` at 1 % of the residual variance), then :func:`fit_ar1` of
          :math:`r'/s(\bar c)` gives :math:`\phi`.

        A negative :math:`\hat\phi` (not expected of a residual sampled faster than it
        decorrelates) is clipped to 0 (white noise), and :math:`\hat\phi` to at most
        :math:`1 - 10^{-6}`. Fit on training trajectories only; the test split stays unseen.

        Parameters
        ----------
        closure : nn.Module
            The trained deterministic closure.
        X : torch.Tensor, shape (B, T, K)
            Training trajectories of the slow variables, frames ``sample_interval`` apart.
        target : torch.Tensor, shape (B, T, K)
            The true closure term on those frames (e.g. the solver's ``closure_target``).
        sample_interval : float
            Model time units between frames.
        F : float or torch.Tensor of shape (B,), optional
            Forcing, for closures with ``use_forcing_channel``.
        noise : {"additive", "state_dependent"}, default "additive"
        prediction : torch.Tensor, shape (B, T, K), optional
            :math:`\bar c(X)` computed by the caller; required for closures with history
            channels (their inputs depend on the model step).

        Returns
        -------
        StochasticClosure

        Raises
        ------
        ValueError
            On shape mismatches, an unknown ``noise``, a history closure without
            ``prediction``, or constant residuals.
        """
        if noise not in ("additive", "state_dependent"):
            raise ValueError(f"noise must be 'additive' or 'state_dependent', got {noise!r}")
        for name, t in (("X", X), ("target", target)):
            if not isinstance(t, torch.Tensor) or t.ndim != 3:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{name} must be a tensor of shape (B, T, K), got {shape}")
        if X.shape != target.shape:
            raise ValueError(f"X shape {tuple(X.shape)} differs from target shape "
                             f"{tuple(target.shape)}")
        target = target.detach().to(torch.float64)
        if prediction is None:
            prediction = _closure_on_frames(closure, X, F)
        elif tuple(prediction.shape) != tuple(X.shape):
            raise ValueError(f"prediction shape {tuple(prediction.shape)} differs from X shape "
                             f"{tuple(X.shape)}")
        prediction = prediction.detach().to(torch.float64)
        residual = target - prediction
        mu, phi, sigma = fit_ar1(residual)
        sigma_m = torch.zeros_like(sigma)
        if noise == "state_dependent":
            r2 = ((residual - mu) ** 2).reshape(-1, residual.shape[-1])
            c2 = (prediction ** 2).reshape(-1, residual.shape[-1])
            c2_mean = c2.mean(dim=0)
            slope = ((c2 - c2_mean) * (r2 - r2.mean(dim=0))).mean(dim=0) / \
                ((c2 - c2_mean) ** 2).mean(dim=0).clamp_min(1e-300)
            var_m = slope.clamp_min(0.0)
            var_a = torch.maximum(r2.mean(dim=0) - var_m * c2_mean, 0.01 * sigma ** 2)
            sigma, sigma_m = var_a.sqrt(), var_m.sqrt()
            scaled = (residual - mu) / torch.sqrt(var_a + var_m * prediction ** 2)
            _, phi, _ = fit_ar1(scaled)
        return cls(closure, mu=mu, phi=phi.clamp(0.0, 1.0 - 1e-6), sigma_additive=sigma,
                   sigma_multiplicative=sigma_m, sample_interval=sample_interval)

    def checkpoint(self) -> dict[str, Any]:
        """``{"closure": model_checkpoint(closure), "noise": plain lists, "sample_interval"}``;
        :meth:`from_checkpoint` inverts it (the closure must be an :class:`OperatorModel`)."""
        if not isinstance(self.closure, OperatorModel):
            raise TypeError(f"only a closure that is an OperatorModel can be checkpointed, got "
                            f"{type(self.closure).__name__}")
        return {"closure": model_checkpoint(self.closure),
                "sample_interval": self.sample_interval,
                "noise": {name: getattr(self, name).tolist()
                          for name in ("mu", "phi", "sigma_additive", "sigma_multiplicative")}}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> StochasticClosure:
        """Rebuild from :meth:`checkpoint`'s output."""
        return cls(model_from_checkpoint(checkpoint["closure"]),
                   sample_interval=checkpoint["sample_interval"], **checkpoint["noise"])


def _closure_on_frames(closure: nn.Module, X: torch.Tensor,
                       F: float | torch.Tensor | None) -> torch.Tensor:
    """A history-free closure evaluated on every frame of ``X (B, T, K)``; returns (B, T, K)."""
    if int(getattr(closure, "history", 0)):
        raise ValueError("a closure with history channels needs prediction=... (its inputs "
                         "depend on the model step); compute it with the hybrid's history")
    B, T, K = X.shape
    param = next(closure.parameters(), None)
    dtype = param.dtype if param is not None else X.dtype
    x = X.reshape(B * T, 1, K).to(dtype)
    with torch.no_grad():
        if getattr(closure, "use_forcing_channel", False):
            if F is None:
                raise ValueError("the closure takes the forcing: pass F=...")
            f = torch.as_tensor(F, dtype=dtype).reshape(-1)
            f = f.expand(B) if f.numel() == 1 else f
            out = closure(x, f.repeat_interleave(T))
        else:
            out = closure(x)
    return out.reshape(B, T, K)
