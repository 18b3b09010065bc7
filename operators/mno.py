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
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, check_int, model_checkpoint, model_from_checkpoint
from operators.fno import FNO

__all__ = ["ClosureEnsemble", "HybridLorenz96", "LocalMLPClosure", "MNOClosure", "NextStateFNO",
           "PolynomialClosure", "StochasticClosure", "fit_ar1", "lorenz96_coarse_tendency"]

_ACTIVATIONS = {"gelu": nn.GELU, "tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


# --------------------------------------------------------------------------------------------
# Known physics
# --------------------------------------------------------------------------------------------
def _align_leading(F: float | torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``F`` as a tensor of ``X``'s dtype whose axes line up with ``X``'s *leading* axes."""
    F = torch.as_tensor(F, dtype=X.dtype, device=X.device)
    if F.ndim >= X.ndim:
        raise ValueError(
            f"F of shape {tuple(F.shape)} must have fewer axes than X of shape {tuple(X.shape)}: "
            "F's axes are aligned with X's leading (sample/time) axes, e.g. F (B,) for X (B, K) "
            "or (B, 1, K)")
    if tuple(F.shape) != tuple(X.shape[:F.ndim]) and F.numel() != 1:
        raise ValueError(f"F of shape {tuple(F.shape)} does not match the leading axes of X of "
                         f"shape {tuple(X.shape)}")
    return F.reshape(tuple(F.shape) + (1,) * (X.ndim - F.ndim))


def lorenz96_coarse_tendency(X: torch.Tensor, F: float | torch.Tensor) -> torch.Tensor:
    r"""Known slow physics of Lorenz-96, :math:`f_k = X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F`.

    The torch counterpart of ``surrogates.solvers.lorenz96.coarse_tendency`` (same broadcasting
    convention): the tendency of the slow variables without the subgrid coupling, in units of
    ``X`` per model time unit. Differentiable.

    Parameters
    ----------
    X : torch.Tensor, shape (..., K)
        Slow variables; the last axis is the periodic index ``k`` (``K >= 4``).
    F : float or torch.Tensor
        Forcing. A tensor's axes are aligned with the *leading* axes of ``X`` (not torch's
        trailing alignment): a scalar applies everywhere; ``F`` of shape ``(B,)`` with ``X`` of
        shape ``(B, K)`` or ``(B, 1, K)`` gives one value per sample; ``(B, T)`` with
        ``X (B, T, K)`` one value per sample and time. ``F.ndim`` must be below ``X.ndim``.

    Returns
    -------
    torch.Tensor, shape (..., K)
        In ``X``'s dtype and device.

    Raises
    ------
    ValueError
        If ``K < 4`` or ``F``'s shape does not match the leading axes of ``X``.
    """
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor of shape (..., K), got {type(X).__name__}")
    if X.ndim < 1 or X.shape[-1] < 4:
        raise ValueError(f"X must have shape (..., K) with K >= 4, got {tuple(X.shape)}")
    F = _align_leading(F, X)
    return (torch.roll(X, 1, dims=-1) * (torch.roll(X, -1, dims=-1) - torch.roll(X, 2, dims=-1))
            - X + F)


# --------------------------------------------------------------------------------------------
# Closures
# --------------------------------------------------------------------------------------------
def _check_steps(n_steps: Any, save_every: Any) -> tuple[int, int]:
    """Validate a rollout length and its saving interval (``n_steps`` a multiple of it)."""
    n_steps = check_int(n_steps, "n_steps", 1)
    save_every = check_int(save_every, "save_every", 1)
    if n_steps % save_every:
        raise ValueError(f"n_steps ({n_steps}) must be a multiple of save_every ({save_every})")
    return n_steps, save_every


def _check_scale(value: Any, name: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        kind = "a positive finite number" if positive else "a finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return float(value)


class _ChannelIO:
    """Shared input handling: history channels, optional forcing channel, fixed affine scaling.

    The network sees ``(x - input_mean) / input_std`` (the forcing channel included) and its raw
    output ``o`` is returned as ``output_mean + output_std * o``.
    """

    history: int
    use_forcing_channel: bool

    def _setup_io(self, history: int, use_forcing_channel: bool, input_mean: float,
                  input_std: float, output_mean: float, output_std: float) -> int:
        self.history = check_int(history, "history", 0)
        self.use_forcing_channel = bool(use_forcing_channel)
        self.input_mean = _check_scale(input_mean, "input_mean", positive=False)
        self.input_std = _check_scale(input_std, "input_std", positive=True)
        self.output_mean = _check_scale(output_mean, "output_mean", positive=False)
        self.output_std = _check_scale(output_std, "output_std", positive=True)
        return 1 + self.history + int(self.use_forcing_channel)

    @property
    def state_channels(self) -> int:
        """Number of state channels expected in the input, ``1 + history``."""
        return 1 + self.history

    def _prepare(self, x: torch.Tensor, F: float | torch.Tensor | None) -> torch.Tensor:
        name = type(self).__name__
        c = self.state_channels
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[1] != c:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} expects input of shape (batch, {c}, K) (X(t) and "
                             f"{self.history} history channel(s)), got {shape}")
        if self.use_forcing_channel:
            if F is None:
                raise ValueError(f"{name} was built with use_forcing_channel=True: pass the "
                                 "forcing, closure(x, F)")
            f = _align_leading(F, x).expand(x.shape[0], 1, x.shape[2])
            x = torch.cat([x, f], dim=1)
        return (x - self.input_mean) / self.input_std

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        return self.output_mean + self.output_std * out


class MNOClosure(_ChannelIO, OperatorModel):
    r"""Grid-independent closure operator: an FNO on the periodic ring of slow variables.

    .. math::

        c(X) = \mu_o + \sigma_o\, \mathcal{G}_\theta\big((X - \mu_i)/\sigma_i\big),

    with :math:`\mathcal{G}_\theta` an :class:`operators.fno.FNO` without positional embedding
    (lifting, ``n_layers`` Fourier blocks, projection). The input channels are :math:`X(t)`, the
    ``history`` previous states and, optionally, the forcing ``F`` as a constant channel.

    Parameters
    ----------
    history : int, default 0
        Number of previous states :math:`X(t - \Delta t), \dots` stacked after :math:`X(t)`.
    use_forcing_channel : bool, default False
        Append ``F`` as a constant input channel (then call ``closure(x, F)``).
    n_modes : sequence of one int, default [16]
        Retained Fourier modes (the FNO keeps wavenumbers ``0 .. n_modes[0] // 2``).
    hidden_channels : int, default 32
        Width of the Fourier blocks.
    n_layers : int, default 4
        Number of Fourier blocks.
    non_linearity : {"gelu", "relu", "tanh", "silu"}, default "gelu"
        Activation of the FNO.
    input_mean, input_std, output_mean, output_std : float, default 0, 1, 0, 1
        Fixed affine normalisation of inputs (all channels) and output, in units of ``X`` and of
        ``X`` per model time unit; set them from training statistics.

    Notes
    -----
    Shapes: ``forward(x, F=None)`` takes ``(batch, 1 + history, K)`` and returns
    ``(batch, 1, K)``. Without a positional embedding every layer commutes with the cyclic shift,
    so ``closure(roll(x, s)) = roll(closure(x), s)``, and the same weights apply to any ``K``: the
    spectral convolutions use wavenumbers ``0 .. min(n_modes[0] // 2, K // 2)`` (modes a coarse
    ring cannot hold are dropped, never aliased). The cost per evaluation is
    :math:`O(K \log K)`.

    References
    ----------
    .. [1] B. Lütjens et al., "Multiscale neural operator", arXiv:2207.11417 (2022).
    """

    def __init__(self, *, history: int = 0, use_forcing_channel: bool = False,
                 n_modes: Sequence[int] = (16,), hidden_channels: int = 32, n_layers: int = 4,
                 non_linearity: str = "gelu", input_mean: float = 0.0, input_std: float = 1.0,
                 output_mean: float = 0.0, output_std: float = 1.0) -> None:
        super().__init__()
        in_channels = self._setup_io(history, use_forcing_channel, input_mean, input_std,
                                     output_mean, output_std)
        if isinstance(n_modes, (int, str)) or len(n_modes) != 1:
            raise ValueError(f"n_modes must hold one entry (the ring is one-dimensional), "
                             f"got {n_modes!r}")
        self.fno = FNO(in_channels=in_channels, out_channels=1, n_modes=list(n_modes),
                       hidden_channels=hidden_channels, n_layers=n_layers,
                       positional_embedding=None, non_linearity=non_linearity)

    @property
    def in_channels(self) -> int:
        """Input channels of the inner FNO (state channels plus the forcing channel)."""
        return self.fno.in_channels

    def forward(self, x: torch.Tensor, F: float | torch.Tensor | None = None) -> torch.Tensor:
        """Evaluate the closure.

        Parameters
        ----------
        x : torch.Tensor, shape (batch, 1 + history, K)
            :math:`X(t)` and the history channels, any ``K``.
        F : float or torch.Tensor of shape (batch,), optional
            Forcing; required when ``use_forcing_channel`` is true, ignored otherwise.

        Returns
        -------
        torch.Tensor, shape (batch, 1, K)
            Closure tendency in units of ``X`` per model time unit.
        """
        return self._finish(self.fno(self._prepare(x, F)))


class LocalMLPClosure(_ChannelIO, OperatorModel):
    r"""Local MLP closure: :math:`c_k = \mathrm{MLP}(X_{k-s}, \dots, X_{k+s})`, shared over ``k``.

    Implemented as a ``Conv1d`` with kernel ``2s + 1`` and circular padding followed by 1x1
    convolutions, so the same MLP acts at every ``k`` of the periodic ring (cost :math:`O(K)`).
    ``stencil = 0`` gives the purely local closure :math:`c_k = g(X_k)`.

    Parameters
    ----------
    stencil : int, default 0
        Half-width ``s``; the receptive field is ``2s + 1`` neighbours (requires
        ``K >= 2s + 1``).
    hidden_channels : int, default 32
        Width of the hidden layers.
    n_hidden_layers : int, default 2
        Number of hidden layers (the first is the stencil convolution).
    activation : {"tanh", "gelu", "relu", "silu"}, default "tanh"
    history, use_forcing_channel, input_mean, input_std, output_mean, output_std
        As in :class:`MNOClosure`.

    Notes
    -----
    ``forward(x, F=None)``: ``(batch, 1 + history, K)`` to ``(batch, 1, K)``.
    """

    def __init__(self, *, stencil: int = 0, hidden_channels: int = 32, n_hidden_layers: int = 2,
                 activation: str = "tanh", history: int = 0, use_forcing_channel: bool = False,
                 input_mean: float = 0.0, input_std: float = 1.0, output_mean: float = 0.0,
                 output_std: float = 1.0) -> None:
        super().__init__()
        in_channels = self._setup_io(history, use_forcing_channel, input_mean, input_std,
                                     output_mean, output_std)
        self.stencil = check_int(stencil, "stencil", 0)
        check_int(hidden_channels, "hidden_channels", 1)
        check_int(n_hidden_layers, "n_hidden_layers", 1)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        layers: list[nn.Module] = [
            nn.Conv1d(in_channels, hidden_channels, kernel_size=2 * self.stencil + 1,
                      padding=self.stencil, padding_mode="circular"),
            _ACTIVATIONS[activation]()]
        for _ in range(n_hidden_layers - 1):
            layers += [nn.Conv1d(hidden_channels, hidden_channels, kernel_size=1),
                       _ACTIVATIONS[activation]()]
        layers.append(nn.Conv1d(hidden_channels, 1, kernel_size=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, F: float | torch.Tensor | None = None) -> torch.Tensor:
        """Evaluate the closure: ``(batch, 1 + history, K)`` -> ``(batch, 1, K)``.

        Raises
        ------
        ValueError
            If the input shape is wrong or ``K < 2 * stencil + 1``.
        """
        x = self._prepare(x, F)
        if x.shape[-1] < 2 * self.stencil + 1:
            raise ValueError(f"K = {x.shape[-1]} is smaller than the stencil width "
                             f"2 * {self.stencil} + 1")
        return self._finish(self.net(x))


class PolynomialClosure(OperatorModel):
    r"""Polynomial closure :math:`c_k = \sum_{p=0}^{P} a_p X_k^p` (Wilks 2005).

    Parameters
    ----------
    degree : int, default 3
        Polynomial degree :math:`P`.

    Notes
    -----
    The coefficients :math:`a_0, \dots, a_P` are the trainable parameter ``coefficients``
    (shape ``(P + 1,)``, zero initially); :meth:`fit_least_squares` sets them from data.
    ``forward(x)``: ``(batch, 1, K)`` to ``(batch, 1, K)`` (any shape works: the map is
    elementwise). Units: ``a_p`` in units of ``X^{1-p}`` per model time unit.

    References
    ----------
    .. [1] D. S. Wilks, Q. J. R. Meteorol. Soc. 131, 389-407 (2005).
    """

    history = 0
    use_forcing_channel = False

    def __init__(self, *, degree: int = 3) -> None:
        super().__init__()
        self.degree = check_int(degree, "degree", 0)
        self.coefficients = nn.Parameter(torch.zeros(self.degree + 1))

    def forward(self, x: torch.Tensor, F: float | torch.Tensor | None = None) -> torch.Tensor:
        r"""Evaluate :math:`\sum_p a_p x^p` elementwise (Horner's scheme)."""
        a = self.coefficients.to(x.dtype)
        out = torch.zeros_like(x) + a[self.degree]
        for p in range(self.degree - 1, -1, -1):
            out = out * x + a[p]
        return out

    @torch.no_grad()
    def fit_least_squares(self, X: torch.Tensor, target: torch.Tensor) -> PolynomialClosure:
        r"""Set the coefficients to the least-squares fit of ``target`` on powers of ``X``.

        Solves :math:`\min_a \sum_n (\sum_p a_p X_n^p - y_n)^2` over all values (flattened) with
        ``torch.linalg.lstsq`` in float64.

        Parameters
        ----------
        X, target : torch.Tensor or array-like, same number of elements
            Slow variables and closure values (e.g. the subgrid forcing), any matching shape.

        Returns
        -------
        PolynomialClosure
            ``self``, with ``coefficients`` overwritten.

        Raises
        ------
        ValueError
            If the sizes differ, there are fewer values than coefficients, or values are
            non-finite.
        """
        x = torch.as_tensor(X).detach().reshape(-1).to(torch.float64)
        y = torch.as_tensor(target).detach().reshape(-1).to(device=x.device, dtype=torch.float64)
        if x.numel() != y.numel():
            raise ValueError(f"X and target must have the same number of values, got shapes "
                             f"{tuple(torch.as_tensor(X).shape)} and "
                             f"{tuple(torch.as_tensor(target).shape)}")
        if x.numel() < self.degree + 1:
            raise ValueError(f"need at least {self.degree + 1} values to fit degree "
                             f"{self.degree}, got {x.numel()}")
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            raise ValueError("X and target must be finite")
        # Scale x to O(1) so the Vandermonde matrix is well conditioned, then undo the scaling.
        scale = x.abs().max().clamp_min(1e-300)
        V = torch.stack([(x / scale) ** p for p in range(self.degree + 1)], dim=1)
        driver = "gelsd" if V.device.type == "cpu" else "gels"
        b = torch.linalg.lstsq(V, y[:, None], driver=driver).solution[:, 0]
        a = b / scale ** torch.arange(self.degree + 1, dtype=torch.float64, device=x.device)
        self.coefficients.copy_(a.to(self.coefficients.dtype))
        return self


class NextStateFNO(OperatorModel):
    r"""Pure data-driven emulator baseline: an FNO that maps the slow state to the next one.

    .. math::

        X(t + \Delta) = X(t) + \mu_o + \sigma_o\,
        \mathcal{G}_\theta\big((X(t) - \mu_i)/\sigma_i\big),

    with :math:`\mathcal{G}_\theta` the FNO of :class:`MNOClosure` and no known physics at all:
    the network learns the whole increment over one emulator step :math:`\Delta` =
    ``step_mtu``. It is the "pure ML" baseline of the MNO paper; like the closures it is
    translation-equivariant on the ring and applies to any ``K``.

    Parameters
    ----------
    step_mtu : float
        Emulator step :math:`\Delta` in model time units (the lead of the training pairs).
    n_modes, hidden_channels, n_layers, non_linearity, use_forcing_channel
        As in :class:`MNOClosure` (no history).
    input_mean, input_std : float
        Statistics of ``X`` (units of ``X``).
    output_mean, output_std : float
        Statistics of the increment :math:`X(t + \Delta) - X(t)` (units of ``X``).

    Notes
    -----
    ``forward(x, F=None)``: ``(batch, 1, K)`` -> ``(batch, 1, K)``, the state one step later.
    Train it on pairs ``X(t) -> X(t + Delta)`` (``lead`` frames apart, see
    :func:`surrogates.data.common.lead_pairs`); :meth:`rollout` iterates it.
    """

    #: Output statistics are those of the increment ``target - input`` (read by the trainer).
    predicts_increment = True

    def __init__(self, *, step_mtu: float, n_modes: Sequence[int] = (16,),
                 hidden_channels: int = 32, n_layers: int = 4, non_linearity: str = "gelu",
                 use_forcing_channel: bool = False, input_mean: float = 0.0,
                 input_std: float = 1.0, output_mean: float = 0.0,
                 output_std: float = 1.0) -> None:
        super().__init__()
        self.step_mtu = _check_scale(step_mtu, "step_mtu", positive=True)
        self.closure = MNOClosure(use_forcing_channel=use_forcing_channel, n_modes=n_modes,
                                  hidden_channels=hidden_channels, n_layers=n_layers,
                                  non_linearity=non_linearity, input_mean=input_mean,
                                  input_std=input_std, output_mean=output_mean,
                                  output_std=output_std)
        self.history = 0
        self.use_forcing_channel = bool(use_forcing_channel)

    def forward(self, x: torch.Tensor, F: float | torch.Tensor | None = None) -> torch.Tensor:
        """The state ``step_mtu`` later: ``(batch, 1, K)`` -> ``(batch, 1, K)``."""
        return x + self.closure(x, F)

    def rollout(self, X0: torch.Tensor, F: float | torch.Tensor | None, n_steps: int,
                save_every: int = 1) -> torch.Tensor:
        """Iterate the emulator: frames ``(B, n_steps // save_every + 1, K)`` from ``X0 (B, K)``.

        Raises
        ------
        ValueError
            For bad shapes or step counts.
        FloatingPointError
            If the state becomes non-finite.
        """
        HybridLorenz96._check_state(X0, "X0")
        n_steps, save_every = _check_steps(n_steps, save_every)
        param = next(self.parameters())
        X, frames = X0, [X0]
        for n in range(1, n_steps + 1):
            X = self(X.unsqueeze(1).to(param.dtype), F)[:, 0].to(X0.dtype)
            if not torch.isfinite(X).all():
                raise FloatingPointError(
                    f"the data-driven emulator blew up: non-finite state at step {n} of "
                    f"{n_steps} (t = {n * self.step_mtu:g} model time units)")
            if n % save_every == 0:
                frames.append(X)
        return torch.stack(frames, dim=1)


class ClosureEnsemble(nn.Module):
    r"""Ensemble of independently trained closures (e.g. different seeds).

    ``forward`` returns the ensemble mean :math:`\bar c = \frac1M \sum_m c^{(m)}(X)`;
    :meth:`member_outputs` returns every member, for spread, CRPS and coverage. Inside the hybrid
    model each member drives its own trajectory (:attr:`members`), which gives the forecast
    ensemble whose spread is compared with its error.

    Parameters
    ----------
    members : sequence of nn.Module
        At least two closures with the same calling convention (``history`` and
        ``use_forcing_channel`` must agree).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        conventions = {(int(getattr(m, "history", 0)), bool(getattr(m, "use_forcing_channel",
                                                                    False))) for m in members}
        if len(conventions) != 1:
            raise ValueError(f"ensemble members disagree on (history, use_forcing_channel): "
                             f"{sorted(conventions)}")
        (self.history, self.use_forcing_channel), = conventions
        self.members = nn.ModuleList(members)

    def member_outputs(self, x: torch.Tensor, F: float | torch.Tensor | None = None
                       ) -> torch.Tensor:
        """Every member's output stacked first: ``(M, batch, 1, K)``."""
        if self.use_forcing_channel:
            return torch.stack([m(x, F) for m in self.members])
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor, F: float | torch.Tensor | None = None) -> torch.Tensor:
        """Ensemble-mean closure, ``(batch, 1 + history, K)`` -> ``(batch, 1, K)``."""
        return self.member_outputs(x, F).mean(dim=0)


# --------------------------------------------------------------------------------------------
# Stochastic closure
# --------------------------------------------------------------------------------------------
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

    An ensemble of hybrid runs with independent noise (:meth:`HybridLorenz96.ensemble_rollout`)
    then spreads as the closure's error accumulates, unlike members that differ only by seed.

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
    anywhere (export, a-priori scores); :class:`HybridLorenz96` adds the noise in ``rollout``,
    ``ensemble_rollout`` and, given ``eta``, ``step``. Noise parameters of length ``K`` fix the
    ring size; length 1 applies to any ``K``.

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
    @staticmethod
    def _check_state(X: torch.Tensor, name: str) -> None:
        if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[1] < 4:
            shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
            raise ValueError(f"{name} must be a tensor of shape (B, K) with K >= 4, got {shape}")
        if not X.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {X.dtype}")
        if not torch.isfinite(X).all():
            raise ValueError(f"{name} contains non-finite values")

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
