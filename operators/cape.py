r"""CAPE: channel attention guided by PDE parameters, in front of any neural PDE solver.

Takamoto, Alesiani and Niepert ("Learning neural PDE solvers with parameter-guided channel
attention", ICML 2023) let a neural solver adapt to PDE parameters it never saw in training by
a small module that turns the parameters into channel weights of a few cheap convolutions. This
module is written from the paper's description.

CAPE block, for a state :math:`x` of ``C`` channels on ``N`` periodic points and parameters
:math:`p \in \mathbb{R}^{n_p}` (fed as :math:`\log_{10} p` by default):

.. math::

    y &= \mathrm{GELU}(\mathrm{conv}_k(x)) \qquad (C \to W \text{ channels}) \\
    a_i &= \mathrm{MLP}_i(p) \in \mathbb{R}^W, \quad
    \mathrm{MLP}_i: n_p \to W/2 \to W \text{ (GELU)}, \ i = 1, 2, 3 \\
    z &= \mathrm{GELU}\big(a_1 \odot \mathcal{U}\,K\,\mathcal{P}_4 y
        + a_2 \odot \mathrm{conv}_1 y + a_3 \odot \mathrm{dwconv}_k y + \mathrm{conv}_1' y\big) \\
    \mathrm{CAPE}(x, p) &= \mathrm{repeat}_{n_{emb}}(x) + \mathrm{LN}(\mathrm{conv}_1''(z))
    \qquad (C \cdot n_{emb} \text{ channels})

with :math:`\mathcal{P}_4` 4x average pooling, :math:`K` a spectral convolution
(:class:`operators.fno.SpectralConv`) on the pooled grid, :math:`\mathcal{U}` its spectral
(trigonometric) interpolation back to ``N`` points, :math:`\mathrm{dwconv}_k` a depth-wise
convolution, :math:`\odot` a per-channel product and LN a layer norm over channels and space
(``GroupNorm`` with one group, which, unlike a layer norm over a fixed length, works on any
grid). All convolutions pad circularly (periodic domains). Width ``W = 64`` and kernel
``k = 5`` follow the paper.

:class:`CAPEOperator` feeds :math:`[x, \mathrm{CAPE}(x, p)]` (``C (1 + n_emb)`` channels) to a
base solver (our :class:`~operators.fno.FNO` or :class:`~operators.unet.UNet1d`) and mixes the
base output with the CAPE output back to ``C`` channels by a 1x1 convolution. The mean of the
``n_emb`` copies of the newest frame in :math:`\mathrm{CAPE}(x, p)` is CAPE's own estimate of
the next state; training adds a small multiple of its error (the auxiliary loss of the paper,
see :mod:`operators.autoregressive`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, build, check_ints
from operators.fno import SpectralConv
from operators.unet import UNet1d  # noqa: F401  (registers the base solver)

#: Base solvers a CAPE operator can wrap (registered class names).
BASE_SOLVERS = ("FNO", "UNet1d")
PARAMETER_TRANSFORMS = ("log10", "identity")


def _parameter_mlp(n_params: int, width: int) -> nn.Sequential:
    """``n_params -> width/2 -> width`` with GELU, giving one channel weight per branch channel."""
    hidden = max(1, width // 2)
    return nn.Sequential(nn.Linear(n_params, hidden), nn.GELU(), nn.Linear(hidden, width))


class CAPEBlock(nn.Module):
    """The parameter-guided channel-attention block (see the module docstring).

    Parameters
    ----------
    channels : int
        State channels ``C`` (context frames times variables).
    n_params : int
        Number of PDE parameters ``n_p``.
    width : int, default 64
        Hidden channels ``W``.
    kernel : int, default 5
        Odd width of the first and the depth-wise convolution.
    n_modes : int, default 8
        Fourier modes kept by the spectral branch on the pooled grid.
    pool : int, default 4
        Average-pooling factor before the spectral branch.
    n_emb : int, default 2
        Copies of the state in the output (``C * n_emb`` channels).

    Shapes: ``x (B, C, N)``, ``p (B, n_p)`` (already transformed) -> ``(B, C * n_emb, N)``.
    """

    def __init__(self, channels: int, n_params: int, *, width: int = 64, kernel: int = 5,
                 n_modes: int = 8, pool: int = 4, n_emb: int = 2) -> None:
        super().__init__()
        self.channels, self.pool, self.n_emb = channels, pool, n_emb
        pad = kernel // 2
        self.lift = nn.Conv1d(channels, width, kernel, padding=pad, padding_mode="circular")
        self.spectral = SpectralConv(width, width, [n_modes])
        self.pointwise = nn.Conv1d(width, width, 1)
        self.depthwise = nn.Conv1d(width, width, kernel, padding=pad, padding_mode="circular",
                                   groups=width)
        self.plain = nn.Conv1d(width, width, 1)
        self.attention = nn.ModuleList(_parameter_mlp(n_params, width) for _ in range(3))
        self.project = nn.Conv1d(width, channels * n_emb, 1)
        self.norm = nn.GroupNorm(1, channels * n_emb)

    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        y = nn.functional.gelu(self.lift(x))
        n = y.shape[-1]
        coarse = nn.functional.avg_pool1d(y, self.pool) if n >= 2 * self.pool else y
        a1, a2, a3 = (mlp(p).unsqueeze(-1) for mlp in self.attention)
        z = (a1 * self.spectral(coarse, output_shape=[n]) + a2 * self.pointwise(y)
             + a3 * self.depthwise(y) + self.plain(y))
        z = self.norm(self.project(nn.functional.gelu(z)))
        return x.repeat(1, self.n_emb, 1) + z


class CAPEOperator(OperatorModel):
    r"""A base neural solver conditioned on PDE parameters by a :class:`CAPEBlock`.

    ``forward(x, p)`` maps the state ``x (B, in_channels, N)`` (the last ``context`` frames of
    ``out_channels`` variables, oldest first, stacked as channels) and the parameters
    ``p (B, n_params)`` (physical values) to the next state ``(B, out_channels, N)``:

    .. math::

        c = \mathrm{CAPE}(x, g(p)), \quad
        u^{n+1} = \mathrm{conv}_1\big([\,\mathrm{base}([x, c]),\ c\,]\big),

    with :math:`g = \log_{10}` (``parameter_transform="log10"``, for positive parameters that
    span decades such as viscosities) or the identity.

    Parameters
    ----------
    in_channels : int
        State channels ``C = context * out_channels``.
    out_channels : int
        Variables of the predicted state.
    n_params : int
        Number of PDE parameters.
    base_class : {"FNO", "UNet1d"}
        Base solver; it is built with ``in_channels = C (1 + n_emb)`` and
        ``out_channels = out_channels``.
    base_config : dict
        The base solver's other constructor arguments (e.g. ``{"n_modes": [16],
        "hidden_channels": 32}`` for the FNO).
    width, kernel, n_modes, pool, n_emb :
        Of the :class:`CAPEBlock` (defaults 64, 5, 8, 4, 2).
    parameter_transform : {"log10", "identity"}, default "log10"

    Raises
    ------
    ValueError
        For an unknown base class or transform, ``in_channels`` not a multiple of
        ``out_channels``, or bad sizes.
    """

    #: Autoregressive wrappers pass the PDE parameters to models that declare this.
    takes_parameters = True

    def __init__(self, *, in_channels: int, out_channels: int, n_params: int, base_class: str,
                 base_config: dict[str, Any], width: int = 64, kernel: int = 5, n_modes: int = 8,
                 pool: int = 4, n_emb: int = 2, parameter_transform: str = "log10") -> None:
        super().__init__()
        check_ints(in_channels=in_channels, out_channels=out_channels, n_params=n_params,
                   width=width, kernel=kernel, n_modes=n_modes, pool=pool, n_emb=n_emb)
        if base_class not in BASE_SOLVERS:
            raise ValueError(f"base_class must be one of {BASE_SOLVERS}, got {base_class!r}")
        if parameter_transform not in PARAMETER_TRANSFORMS:
            raise ValueError(f"parameter_transform must be one of {PARAMETER_TRANSFORMS}, got "
                             f"{parameter_transform!r}")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {kernel}")
        if in_channels % out_channels:
            raise ValueError(f"in_channels ({in_channels}) must be a whole number of frames of "
                             f"{out_channels} variables")
        reserved = {"in_channels", "out_channels"} & set(base_config)
        if reserved:
            raise ValueError(f"base_config must not set {sorted(reserved)}: CAPEOperator sets them")
        self.in_channels, self.out_channels, self.n_params = in_channels, out_channels, n_params
        self.n_emb, self.parameter_transform = n_emb, parameter_transform
        self.cape = CAPEBlock(in_channels, n_params, width=width, kernel=kernel,
                              n_modes=n_modes, pool=pool, n_emb=n_emb)
        self.base = build(base_class, {**base_config, "in_channels": in_channels * (1 + n_emb),
                                       "out_channels": out_channels})
        self.mix = nn.Conv1d(out_channels + in_channels * n_emb, out_channels, 1)

    def transform_parameters(self, p: torch.Tensor) -> torch.Tensor:
        """``g(p)`` of shape ``(B, n_params)``; refuses non-positive values under ``log10``."""
        if p.ndim != 2 or p.shape[1] != self.n_params:
            raise ValueError(f"parameters must have shape (batch, {self.n_params}), got "
                             f"{tuple(p.shape)}")
        if self.parameter_transform == "identity":
            return p
        if not torch.all(p > 0):
            raise ValueError("parameter_transform='log10' needs positive PDE parameters")
        return torch.log10(p)

    def forward_with_estimate(self, x: torch.Tensor, p: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next state and CAPE's own next-state estimate, both ``(B, out_channels, N)``."""
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"CAPEOperator expects x of shape (batch, {self.in_channels}, N), "
                             f"got {tuple(x.shape)}")
        c = self.cape(x, self.transform_parameters(p))
        out = self.mix(torch.cat([self.base(torch.cat([x, c], dim=1)), c], dim=1))
        copies = c.reshape(c.shape[0], self.n_emb, self.in_channels, c.shape[-1])
        estimate = copies[:, :, self.in_channels - self.out_channels:].mean(dim=1)
        return out, estimate

    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Next state ``(B, out_channels, N)`` from ``x (B, in_channels, N)``, ``p (B, n_p)``."""
        return self.forward_with_estimate(x, p)[0]
