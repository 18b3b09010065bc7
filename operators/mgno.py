r"""MgNO: linear operators between neurons parameterised by a multigrid V-cycle.

He, Liu and Xu ("MgNO: Efficient parameterization of linear operators via multigrid", ICLR 2024)
replace the kernel integral of a neural operator by one V-cycle of learned convolutions, the
structure of a multigrid solver for :math:`A u = f`. This module is written from the paper's
description.

**MgConv** maps ``f`` (``C_in`` channels) to ``u`` (``C_out`` channels) on a grid of any size.
With learned bias-free 3x3 convolutions :math:`A^\ell` (``C_out -> C_in``, the "operator" of level
:math:`\ell`) and :math:`S^{\ell,i}` (``C_in -> C_out``, one per smoothing iteration), stride-2
3x3 convolutions :math:`R^\ell` (restriction, ``C_in -> C_in``) and transposed convolutions
:math:`P^\ell` (kernel 4, stride 2, padding 1; prolongation, ``C_out -> C_out``):

.. math::

    &\text{level } 1:\ f^1 = f, \quad u^1 = S^{1,1} f^1 \\
    &\text{pre-smoothing:}\ u^\ell \leftarrow u^\ell + S^{\ell,i}(f^\ell - A^\ell u^\ell) \\
    &\text{restriction:}\ f^{\ell+1} = R^\ell (f^\ell - A^\ell u^\ell), \quad
      u^{\ell+1} = S^{\ell+1,1} f^{\ell+1} \\
    &\text{prolongation (coarse to fine):}\ u^\ell \leftarrow u^\ell + P^\ell u^{\ell+1},
      \text{ then post-smoothing as above.}

A grid of odd size ``m`` restricts to ``ceil(m/2)`` points and the prolongation (which doubles
the size) is cropped back to ``m``, so any grid size works; a level is added only while the
coarser grid keeps at least 2 points per axis.

**Layer**: :math:`u \leftarrow \sigma(\mathrm{MgConv}(u) + W u + b)` with a 1x1 convolution
:math:`W` (with bias :math:`b`) and GELU :math:`\sigma`. **MgNO**: ``n_layers`` layers (the first
maps ``in_channels`` to ``hidden_channels``; no lifting or projection network), then a 1x1
convolution to ``out_channels``. The padding mode of every 3x3 convolution sets the boundary
condition: ``"zeros"`` (Dirichlet), ``"circular"`` (periodic), ``"reflect"`` (Neumann).
Defaults follow the paper's Darcy settings: 24 channels, one pre-smoothing per level (two at
the coarsest), no post-smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from operators.base import OperatorModel, check_int, check_ints

PADDING_MODES = ("zeros", "circular", "reflect")


def _conv(in_channels: int, out_channels: int, n_dims: int, padding_mode: str, *,
          stride: int = 1, bias: bool = False) -> nn.Module:
    cls = nn.Conv1d if n_dims == 1 else nn.Conv2d
    return cls(in_channels, out_channels, 3, stride=stride, padding=1, padding_mode=padding_mode,
               bias=bias)


class Prolongation(nn.Module):
    """Transposed convolution (kernel 4, stride 2, padding 1) that respects the boundary condition.

    Fine point ``o`` receives coarse points ``i`` with ``o = 2 i - 1 + k``, ``k = 0..3`` (for
    cell-centred grids: the two children of ``i`` and their outer neighbours). The coarse field is
    first padded by one point with the layer's padding mode, so on a periodic grid the first and
    last fine points also receive their wrapped-around neighbour (a plain transposed convolution
    would drop it); with zero padding this equals the plain transposed convolution.
    """

    def __init__(self, channels: int, n_dims: int, padding_mode: str) -> None:
        super().__init__()
        cls = nn.ConvTranspose1d if n_dims == 1 else nn.ConvTranspose2d
        self.conv = cls(channels, channels, 4, stride=2, padding=0, bias=False)
        self.mode = {"zeros": "constant"}.get(padding_mode, padding_mode)
        self.n_dims = n_dims

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        coarse = u.shape[2:]
        out = self.conv(nn.functional.pad(u, [1] * (2 * self.n_dims), mode=self.mode))
        return out[(..., *(slice(3, 3 + 2 * m) for m in coarse))]


class MgConv(nn.Module):
    """One learned V-cycle from ``f (B, C_in, *grid)`` to ``u (B, C_out, *grid)``.

    Parameters
    ----------
    in_channels, out_channels : int
    n_dims : {1, 2}
    pre_smooth : sequence of int
        Smoothing iterations per level before restriction (finest first); its length is the
        largest number of levels, fewer are used on grids too small for them.
    post_smooth : int
        Smoothing iterations per level after prolongation (not at the coarsest level).
    padding_mode : {"zeros", "circular", "reflect"}
    """

    def __init__(self, in_channels: int, out_channels: int, n_dims: int,
                 pre_smooth: Sequence[int], post_smooth: int = 0,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        self.n_levels = len(pre_smooth)
        self.pre_smooth, self.post_smooth = list(pre_smooth), post_smooth

        def conv(cin, cout, **kw):
            return _conv(cin, cout, n_dims, padding_mode, **kw)

        self.A = nn.ModuleList(conv(out_channels, in_channels) for _ in pre_smooth)
        self.S_pre = nn.ModuleList(
            nn.ModuleList(conv(in_channels, out_channels) for _ in range(n)) for n in pre_smooth)
        self.S_post = nn.ModuleList(
            nn.ModuleList(conv(in_channels, out_channels) for _ in range(post_smooth))
            for _ in pre_smooth[:-1])
        self.R = nn.ModuleList(conv(in_channels, in_channels, stride=2)
                               for _ in pre_smooth[:-1])
        self.P = nn.ModuleList(Prolongation(out_channels, n_dims, padding_mode)
                               for _ in pre_smooth[:-1])

    def _smooth(self, level: int, smoothers: nn.ModuleList, f: torch.Tensor,
                u: torch.Tensor | None) -> torch.Tensor:
        for S in smoothers:
            u = S(f) if u is None else u + S(f - self.A[level](u))
        return u

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        levels = 1
        size = min(f.shape[2:])
        while levels < self.n_levels and (size + 1) // 2 >= 2:
            levels += 1
            size = (size + 1) // 2
        fs, us = [f], []
        for level in range(levels):
            u = self._smooth(level, self.S_pre[level], fs[level], None)
            us.append(u)
            if level + 1 < levels:
                fs.append(self.R[level](fs[level] - self.A[level](u)))
        for level in reversed(range(levels - 1)):
            fine = us[level]
            coarse = self.P[level](us[level + 1])
            coarse = coarse[(..., *(slice(0, n) for n in fine.shape[2:]))]
            us[level] = self._smooth(level, self.S_post[level], fs[level], fine + coarse)
        return us[0]


class MgNO(OperatorModel):
    r"""Multigrid neural operator for fields on 1D or 2D grids of any size.

    Parameters
    ----------
    in_channels, out_channels : int
    n_dims : {1, 2}, default 2
    hidden_channels : int, default 24
    n_layers : int, default 4
    levels : int, default 5
        Largest number of V-cycle levels (fewer on small grids).
    pre_smooth : int, default 1
        Pre-smoothing iterations per level above the coarsest.
    coarsest_smooth : int, default 2
        Smoothing iterations on the coarsest level.
    post_smooth : int, default 0
    padding_mode : {"zeros", "circular", "reflect"}, default "zeros"
        Boundary condition of the convolutions (Dirichlet, periodic, Neumann).

    Shapes: ``(B, in_channels, *grid) -> (B, out_channels, *grid)``.

    Raises
    ------
    ValueError
        For non-positive sizes, ``n_dims`` other than 1 or 2, or an unknown padding mode.
    """

    def __init__(self, *, in_channels: int, out_channels: int, n_dims: int = 2,
                 hidden_channels: int = 24, n_layers: int = 4, levels: int = 5,
                 pre_smooth: int = 1, coarsest_smooth: int = 2, post_smooth: int = 0,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        check_ints(in_channels=in_channels, out_channels=out_channels,
                   hidden_channels=hidden_channels, n_layers=n_layers, levels=levels,
                   pre_smooth=pre_smooth, coarsest_smooth=coarsest_smooth)
        check_int(post_smooth, "post_smooth", 0)
        if n_dims not in (1, 2):
            raise ValueError(f"n_dims must be 1 or 2, got {n_dims!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.n_dims = in_channels, n_dims
        smoothing = [pre_smooth] * (levels - 1) + [coarsest_smooth]
        widths = [in_channels] + [hidden_channels] * n_layers
        conv1x1 = nn.Conv1d if n_dims == 1 else nn.Conv2d
        self.mgconvs = nn.ModuleList(
            MgConv(widths[i], widths[i + 1], n_dims, smoothing, post_smooth, padding_mode)
            for i in range(n_layers))
        self.skips = nn.ModuleList(conv1x1(widths[i], widths[i + 1], 1) for i in range(n_layers))
        self.head = conv1x1(hidden_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operator to ``x (B, in_channels, *grid)``."""
        if x.ndim != 2 + self.n_dims or x.shape[1] != self.in_channels:
            raise ValueError(f"MgNO expects (batch, {self.in_channels}, {self.n_dims} grid "
                             f"axes), got {tuple(x.shape)}")
        for mgconv, skip in zip(self.mgconvs, self.skips, strict=True):
            x = nn.functional.gelu(mgconv(x) + skip(x))
        return self.head(x)
