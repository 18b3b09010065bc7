r"""The Lorenz-96 coarse physics and the deterministic closures of the multiscale neural operator.

The overview, the equations and the closure calling convention are in :mod:`operators.mno`
(which re-exports every name here):

* :func:`lorenz96_coarse_tendency` -- the known slow physics :math:`f(X; F)` in torch.
* :class:`MNOClosure` -- a grid-independent closure operator (an FNO without positional
  embedding, hence translation-equivariant on the ring and applicable to any ``K``) [1]_.
* :class:`LocalMLPClosure` -- a pointwise MLP acting on the stencil
  :math:`X_{k-s}, \dots, X_{k+s}` (the "local closure" baseline).
* :class:`PolynomialClosure` -- :math:`c_k = \sum_p a_p X_k^p` (Wilks 2005 [2]_), fitted by
  least squares.
* :class:`NextStateFNO` -- the pure data-driven baseline: an FNO from ``X(t)`` to
  ``X(t + Delta)``, without physics.
* :class:`ClosureEnsemble` -- independently trained closures; mean and members.

References
----------
.. [1] B. Lütjens, C. H. Crawford, C. D. Watson, C. Hill, D. Newman, "Multiscale neural
   operator: learning fast and grid-independent PDE solvers", arXiv:2207.11417 (2022).
.. [2] D. S. Wilks, "Effects of stochastic parametrizations in the Lorenz '96 system",
   Q. J. R. Meteorol. Soc. 131, 389-407 (2005).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, check_int
from operators.fno import FNO

__all__ = ["ClosureEnsemble", "LocalMLPClosure", "MNOClosure", "NextStateFNO",
           "PolynomialClosure", "lorenz96_coarse_tendency"]

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


def _check_state(X: torch.Tensor, name: str) -> None:
    """A slow state ``(B, K)``, ``K >= 4``, floating point and finite."""
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[1] < 4:
        shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ValueError(f"{name} must be a tensor of shape (B, K) with K >= 4, got {shape}")
    if not X.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {X.dtype}")
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} contains non-finite values")


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
        _check_state(X0, "X0")
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
