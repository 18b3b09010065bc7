r"""Multiscale neural operator (MNO) closures for the two-tier Lorenz-96 system.

The multiscale neural operator of Lütjens et al. keeps the known slow physics of Lorenz-96 and
learns only the effect of the unresolved fast variables (the *closure*). On a periodic ring of
``K`` slow variables :math:`X_k` (time in model time units, MTU):

.. math::

    \frac{dX_k}{dt} = \underbrace{X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F}_{f(X; F)
    \ \text{(known, coarse)}} + \underbrace{c_k(X)}_{\text{learned closure}},

where in the resolved system :math:`c_k = -(hc/b)\sum_j Y_{j,k}` (the subgrid forcing). The
MNO paper's training target is the RK4-step-averaged true tendency minus :math:`f` at the step's
start, so that forward Euler :math:`X_{t+\Delta t} = X_t + \Delta t\,(f(X_t) + c(X_t))`
reproduces the resolved trajectory exactly.

Contents
--------
* :func:`lorenz96_coarse_tendency` -- :math:`f(X; F)` in torch.
* :class:`MNOClosure` -- a grid-independent closure operator (an FNO without positional
  embedding, hence translation-equivariant on the ring and applicable to any ``K``).
* :class:`LocalMLPClosure` -- a pointwise MLP acting on the stencil
  :math:`X_{k-s}, \dots, X_{k+s}` (the "local closure" baseline).
* :class:`PolynomialClosure` -- :math:`c_k = \sum_p a_p X_k^p` (Wilks 2005), fitted by least
  squares.
* :class:`NextStateFNO` -- the pure data-driven baseline: an FNO from ``X(t)`` to
  ``X(t + Delta)``, without physics.
* :class:`ClosureEnsemble` -- independently trained closures; mean and members.
* :class:`StochasticClosure` -- a deterministic closure plus fitted AR(1) residual noise per
  ``k`` (Arnold, Moroz & Palmer 2013), additive or state-dependent; :func:`fit_ar1`.
* :class:`HybridLorenz96` -- time stepping of ``coarse + closure`` (RK4 or forward Euler), for
  inference and for a-posteriori training through unrolled steps.

:class:`HybridLorenz96` is defined here; the physics and the deterministic closures in
:mod:`operators.mno_closures`, the stochastic closure in :mod:`operators.mno_stochastic`. Every
name above is importable from this module.

Closure calling convention
--------------------------
A closure maps channels-first input ``(batch, C, K)`` to ``(batch, 1, K)``. Channel 0 is
:math:`X(t)`; channels ``1..history`` are :math:`X(t - \Delta t), \dots, X(t - h\Delta t)`
(attribute ``history``, default 0). Closures with ``use_forcing_channel = True`` take the forcing
as a second argument, ``closure(x, F)``, and append it as a constant input channel.

References
----------
.. [1] B. Lütjens, C. H. Crawford, C. D. Watson, C. Hill, D. Newman, "Multiscale neural
   operator: learning fast and grid-independent PDE solvers", arXiv:2207.11417 (2022).
.. [2] D. S. Wilks, "Effects of stochastic parametrizations in the Lorenz '96 system",
   Q. J. R. Meteorol. Soc. 131, 389-407 (2005).
.. [3] E. N. Lorenz, "Predictability: a problem partly solved", Proc. ECMWF Seminar on
   Predictability, vol. 1, 1-18 (1996).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from operators.base import check_int, model_from_checkpoint
from operators.mno_closures import (  # noqa: F401 (the private helpers are re-exported too)
    _ACTIVATIONS,
    ClosureEnsemble,
    LocalMLPClosure,
    MNOClosure,
    NextStateFNO,
    PolynomialClosure,
    _align_leading,
    _ChannelIO,
    _check_scale,
    _check_state,
    _check_steps,
    lorenz96_coarse_tendency,
)
from operators.mno_stochastic import StochasticClosure, _closure_on_frames, fit_ar1  # noqa: F401

__all__ = ["ClosureEnsemble", "HybridLorenz96", "LocalMLPClosure", "MNOClosure", "NextStateFNO",
           "PolynomialClosure", "StochasticClosure", "fit_ar1", "lorenz96_coarse_tendency"]


# --------------------------------------------------------------------------------------------
# Hybrid time stepping
# --------------------------------------------------------------------------------------------
class HybridLorenz96(nn.Module):
    r"""Slow Lorenz-96 with known physics plus an optional learned closure.

    .. math::

        \frac{dX}{dt} = g(X) = f(X; F) + c(X), \qquad
        \text{Euler: } X_{n+1} = X_n + \Delta t\, g(X_n), \qquad
        \text{RK4: } X_{n+1} = X_n + \tfrac{\Delta t}{6}(k_1 + 2k_2 + 2k_3 + k_4),

    with :math:`f` = :func:`lorenz96_coarse_tendency` and :math:`c` the closure, evaluated at
    every RK4 stage (once per Euler step). ``closure=None`` is the "no closure" baseline
    (the truncated slow equation). Euler with a closure trained on the MNO target is the
    scheme of Lütjens et al.

    Parameters
    ----------
    closure : nn.Module, checkpoint dict, or None, default None
        A closure following the module's calling convention (``(B, 1 + history, K)`` ->
        ``(B, 1, K)``; attributes ``history`` and ``use_forcing_channel`` are read when
        present), or a checkpoint from :func:`operators.base.model_checkpoint`, rebuilt with
        :func:`operators.base.model_from_checkpoint`. It is registered as a submodule, so its
        parameters train with the hybrid.

    Notes
    -----
    The state is ``X (B, K)`` in the dtype of ``X0``; the closure receives its input cast to its
    own parameter dtype and its output is cast back. History closures get the previous *step*
    states (fixed during the RK4 stages); before enough steps have been taken the missing
    history is ``history`` passed to :meth:`rollout` or, by default, copies of ``X0``.
    Differentiable: run under ``torch.no_grad()`` for inference, with gradients for
    a-posteriori training through a few unrolled steps.
    """

    def __init__(self, closure: nn.Module | dict[str, Any] | None = None) -> None:
        super().__init__()
        if isinstance(closure, dict):
            closure = model_from_checkpoint(closure)
        if closure is not None and not isinstance(closure, nn.Module):
            raise TypeError(f"closure must be an nn.Module, a checkpoint dict or None, got "
                            f"{type(closure).__name__}")
        self.closure = closure

    @property
    def history(self) -> int:
        """Number of previous states the closure takes (0 without a closure)."""
        return int(getattr(self.closure, "history", 0)) if self.closure is not None else 0

    # ---------------------------------------------------------------- validation helpers
    _check_state = staticmethod(_check_state)

    @staticmethod
    def _check_dt(dt: float) -> float:
        if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) \
                or dt <= 0:
            raise ValueError(f"dt must be a positive finite number (model time units), "
                             f"got {dt!r}")
        return float(dt)

    @staticmethod
    def _check_scheme(scheme: str) -> None:
        if scheme not in ("rk4", "euler"):
            raise ValueError(f"scheme must be 'rk4' or 'euler', got {scheme!r}")

    def _forcing(self, F: float | torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        F = torch.as_tensor(F, dtype=X.dtype, device=X.device)
        if F.ndim > 1 or (F.ndim == 1 and F.shape[0] != X.shape[0]):
            raise ValueError(f"F must be a scalar or of shape (B,) = ({X.shape[0]},), "
                             f"got {tuple(F.shape)}")
        return F

    def _history(self, history: torch.Tensor | None, X: torch.Tensor) -> torch.Tensor | None:
        h = self.history
        if h == 0:
            return None
        if history is None:
            return X.unsqueeze(1).expand(X.shape[0], h, X.shape[1])
        expected = (X.shape[0], h, X.shape[1])
        if not isinstance(history, torch.Tensor) or tuple(history.shape) != expected:
            shape = tuple(history.shape) if isinstance(history, torch.Tensor) else history
            raise ValueError(f"history must have shape (B, history, K) = {expected} "
                             f"(X(t - dt) first), got {shape}")
        return history.to(X.dtype)

    # ---------------------------------------------------------------- dynamics
    def closure_tendency(self, X: torch.Tensor, F: float | torch.Tensor,
                         history: torch.Tensor | None = None) -> torch.Tensor:
        """The closure term ``c(X)`` of shape (B, K) (zeros without a closure)."""
        if self.closure is None:
            return torch.zeros_like(X)
        x = X.unsqueeze(1) if history is None else torch.cat([X.unsqueeze(1), history], dim=1)
        param = next(self.closure.parameters(), None)
        dtype = param.dtype if param is not None else X.dtype
        x = x.to(dtype)
        if getattr(self.closure, "use_forcing_channel", False):
            out = self.closure(x, torch.as_tensor(F).to(dtype))
        else:
            out = self.closure(x)
        if tuple(out.shape) != (X.shape[0], 1, X.shape[1]):
            raise ValueError(f"closure returned shape {tuple(out.shape)}, expected "
                             f"(B, 1, K) = {(X.shape[0], 1, X.shape[1])}")
        return out[:, 0].to(X.dtype)

    def tendency(self, X: torch.Tensor, F: float | torch.Tensor,
                 history: torch.Tensor | None = None, eta: torch.Tensor | None = None
                 ) -> torch.Tensor:
        r"""Total slow tendency ``f(X; F) + c(X)``, shape (B, K), per model time unit.

        With a :class:`StochasticClosure` and its noise state ``eta (B, K)``, ``c`` includes the
        perturbation :math:`\mu + s(\bar c)\,\eta`; ``eta=None`` gives the mean closure.
        """
        c = self.closure_tendency(X, F, history)
        if eta is not None:
            c = c + self._stochastic("eta").perturbation(c, eta.to(X.dtype))
        return lorenz96_coarse_tendency(X, F) + c

    def _stochastic(self, what: str) -> StochasticClosure:
        if not isinstance(self.closure, StochasticClosure):
            raise ValueError(f"{what} needs a StochasticClosure, the hybrid holds "
                             f"{type(self.closure).__name__}")
        return self.closure

    def step(self, X: torch.Tensor, F: float | torch.Tensor, dt: float, scheme: str = "rk4",
             history: torch.Tensor | None = None, eta: torch.Tensor | None = None
             ) -> torch.Tensor:
        """Advance ``X (B, K)`` by one step of length ``dt`` (model time units).

        Parameters
        ----------
        X : torch.Tensor, shape (B, K)
        F : float or torch.Tensor of shape (B,)
        dt : float
            Step, > 0.
        scheme : {"rk4", "euler"}, default "rk4"
        history : torch.Tensor of shape (B, history, K), optional
            Previous states for history closures (default: copies of ``X``).
        eta : torch.Tensor of shape (B, K), optional
            Noise state of a :class:`StochasticClosure`, held through the step (advance it with
            :meth:`StochasticClosure.advance_eta`); None steps with the mean closure.

        Returns
        -------
        torch.Tensor, shape (B, K)

        Raises
        ------
        ValueError
            For ``dt <= 0``, an unknown scheme, wrong shapes or non-finite ``X``.
        """
        dt = self._check_dt(dt)
        self._check_scheme(scheme)
        self._check_state(X, "X")
        F = self._forcing(F, X)
        if eta is not None and tuple(eta.shape) != tuple(X.shape):
            raise ValueError(f"eta must have the shape of X {tuple(X.shape)}, got "
                             f"{tuple(eta.shape)}")
        return self._step(X, F, dt, scheme, self._history(history, X), eta)

    def _step(self, X: torch.Tensor, F: torch.Tensor, dt: float, scheme: str,
              history: torch.Tensor | None, eta: torch.Tensor | None = None) -> torch.Tensor:
        k1 = self.tendency(X, F, history, eta)
        if scheme == "euler":
            return X + dt * k1
        k2 = self.tendency(X + 0.5 * dt * k1, F, history, eta)
        k3 = self.tendency(X + 0.5 * dt * k2, F, history, eta)
        k4 = self.tendency(X + dt * k3, F, history, eta)
        return X + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    def rollout(self, X0: torch.Tensor, F: float | torch.Tensor, dt: float, n_steps: int,
                save_every: int = 1, scheme: str = "rk4",
                history: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Integrate ``n_steps`` steps from ``X0`` and return the saved frames.

        With a :class:`StochasticClosure` every sample gets its own noise path: ``eta`` starts
        from its stationary law and advances by :meth:`StochasticClosure.advance_eta` after each
        step (drawn from ``generator``, default torch's global generator).

        Parameters
        ----------
        X0 : torch.Tensor, shape (B, K)
            Initial slow state.
        F : float or torch.Tensor of shape (B,)
            Forcing.
        dt : float
            Step in model time units, > 0.
        n_steps : int
            Number of steps (>= 1), a multiple of ``save_every``.
        save_every : int, default 1
            Keep every ``save_every``-th state.
        scheme : {"rk4", "euler"}, default "rk4"
        history : torch.Tensor of shape (B, history, K), optional
            States before ``X0`` (``X(-dt)`` first) for history closures; default copies of
            ``X0``.
        generator : torch.Generator, optional
            Random numbers of a stochastic closure (ignored otherwise).

        Returns
        -------
        torch.Tensor, shape (B, T, K)
            ``T = n_steps // save_every + 1`` frames at steps ``0, save_every, ..., n_steps``
            (frame 0 is ``X0``).

        Raises
        ------
        ValueError
            For ``dt <= 0``, bad step counts, an unknown scheme, wrong shapes or non-finite
            ``X0``.
        FloatingPointError
            If the state becomes non-finite (blow-up), naming the step and time.
        """
        dt = self._check_dt(dt)
        self._check_scheme(scheme)
        self._check_state(X0, "X0")
        n_steps, save_every = _check_steps(n_steps, save_every)
        F = self._forcing(F, X0)
        hist = self._history(history, X0)
        stochastic = isinstance(self.closure, StochasticClosure)
        eta = self.closure.initial_eta(X0, generator) if stochastic else None
        X = X0
        frames = [X0]
        for n in range(1, n_steps + 1):
            X_new = self._step(X, F, dt, scheme, hist, eta)
            if stochastic:
                eta = self.closure.advance_eta(eta, dt, generator)
            if not torch.isfinite(X_new).all():
                raise FloatingPointError(
                    f"hybrid Lorenz-96 blew up: non-finite state at step {n} of {n_steps} "
                    f"(t = {n * dt:g} model time units); reduce dt or check the closure")
            if hist is not None:
                hist = torch.cat([X.unsqueeze(1), hist[:, :-1]], dim=1)
            X = X_new
            if n % save_every == 0:
                frames.append(X)
        return torch.stack(frames, dim=1)

    def ensemble_rollout(self, X0: torch.Tensor, F: float | torch.Tensor, dt: float,
                         n_steps: int, n_members: int | None = None, save_every: int = 1,
                         scheme: str = "rk4", history: torch.Tensor | None = None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """An ensemble forecast from one initial state per sample: ``(M, B, T, K)``.

        * :class:`StochasticClosure`: ``n_members`` runs with independent noise paths (the
          batch is repeated ``M`` times, member-major, and rolled out at once).
        * :class:`ClosureEnsemble`: one deterministic run per member closure (``n_members``
          None or equal to the member count).

        Other arguments as in :meth:`rollout`.

        Raises
        ------
        ValueError
            For another closure type, or a member count that does not fit.
        """
        if isinstance(self.closure, ClosureEnsemble):
            M = len(self.closure.members)
            if n_members not in (None, M):
                raise ValueError(f"the ClosureEnsemble has {M} members, n_members={n_members}")
            return torch.stack([HybridLorenz96(m).rollout(X0, F, dt, n_steps, save_every,
                                                          scheme, history)
                                for m in self.closure.members])
        self._stochastic("ensemble_rollout")
        M = check_int(n_members, "n_members", 1)
        self._check_state(X0, "X0")
        B = X0.shape[0]
        F = self._forcing(F, X0)
        Fm = F.repeat(M) if F.ndim == 1 else F
        hm = None if history is None else history.repeat(M, 1, 1)
        out = self.rollout(X0.repeat(M, 1), Fm, dt, n_steps, save_every, scheme, hm, generator)
        return out.reshape(M, B, *out.shape[1:])
