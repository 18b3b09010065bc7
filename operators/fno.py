r"""Fourier neural operator (FNO) in 1, 2 and 3 spatial dimensions.

Tensors are channels-first, ``(batch, channels, *spatial)``, on a uniform grid of a periodic box
(use ``domain_padding`` for non-periodic problems). The same weights apply to any grid
resolution: the spectral convolution acts on Fourier-series coefficients, which do not depend on
the number of grid points once a function is resolved.

Model
-----
A lifting network :math:`P` maps the input function (plus, optionally, the grid coordinates) to
``hidden_channels`` channels, ``n_layers`` Fourier blocks update it, and a projection network
:math:`Q` maps it to the output channels:

.. math::

    v_0 = P(a), \qquad
    v_{l+1}(x) = \sigma\big(W_l v_l(x) + (K_l v_l)(x)\big), \qquad
    u = Q(v_L),

with the kernel integral operator evaluated in Fourier space,

.. math::

    (K v)(x) = \mathcal{F}^{-1}\big(R \cdot \mathcal{F} v\big)(x), \qquad
    (R \cdot \hat v)_{o}(k) = \sum_i R_{i o}(k)\, \hat v_i(k)

for the retained low wavenumbers :math:`k` (all others are set to zero). Here each block also
carries a pointwise channel MLP with its own skip connection, as in ``neuraloperator`` 2.0.

References
----------
.. [1] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
   A. Anandkumar, "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895.
.. [2] J. Kossaifi, N. Kovachki, Z. Li, D. Pitt, M. Liu-Schiaffini, R. J. George, B. Bonev,
   K. Azizzadenesheli, J. Berner, A. Anandkumar, "A library for learning neural operators"
   (the ``neuraloperator`` package), arXiv:2412.10354, 2024.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, check_ints

__all__ = ["FNO", "FNOBlock", "SoftGating", "SpectralConv", "spectral_resample"]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}
_SKIPS = ("linear", "identity", "soft-gating", None)
_NORMS = ("group_norm", "instance_norm", None)
_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_INSTANCE_NORMS = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


# --------------------------------------------------------------------------------------------
# Mode bookkeeping
# --------------------------------------------------------------------------------------------
def _mode_indices(n_in: int, n_out: int, n_modes: int, last: bool
                  ) -> tuple[list[int], list[int], list[int]]:
    """Indices of the retained frequencies in the input spectrum, output spectrum and weights.

    Along a non-last axis the weights store ``n_modes - n_modes // 2`` non-negative frequencies
    ``0, 1, ...`` followed by ``n_modes // 2`` negative ones ``..., -2, -1`` (the FFT order).
    Along the last (half-spectrum) axis they store ``n_modes // 2 + 1`` frequencies
    ``0 .. n_modes // 2``. Frequencies absent from the input or output grid are dropped.
    """
    if last:
        k = min(n_modes // 2 + 1, n_in // 2 + 1, n_out // 2 + 1)
        keep = list(range(k))
        return keep, keep, keep
    n_pos, n_neg = n_modes - n_modes // 2, n_modes // 2
    pos = min(n_pos, n_in - n_in // 2, n_out - n_out // 2)
    neg = min(n_neg, n_in // 2, n_out // 2)
    head = list(range(pos))
    return (head + list(range(n_in - neg, n_in)),
            head + list(range(n_out - neg, n_out)),
            head + list(range(n_modes - neg, n_modes)))


def _select(t: torch.Tensor, dim: int, index: list[int]) -> torch.Tensor:
    """``t.index_select(dim, index)``, skipped when ``index`` is the whole axis in order."""
    if len(index) == t.shape[dim] and index == list(range(t.shape[dim])):
        return t
    return t.index_select(dim, torch.tensor(index, device=t.device, dtype=torch.long))


def _place(t: torch.Tensor, dim: int, index: list[int], size: int) -> torch.Tensor:
    """Put ``t`` at positions ``index`` of a zero tensor whose axis ``dim`` has length ``size``."""
    if size == t.shape[dim] and index == list(range(size)):
        return t
    shape = list(t.shape)
    shape[dim] = size
    out = t.new_zeros(shape)
    return out.index_copy(dim, torch.tensor(index, device=t.device, dtype=torch.long), t)


def _check_shape(shape: Sequence[int], n_dims: int, what: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as err:
        raise ValueError(f"{what} must be a sequence of {n_dims} grid sizes, got {shape!r}"
                         ) from err
    if len(shape) != n_dims or any(s < 1 for s in shape):
        raise ValueError(f"{what} must hold {n_dims} positive grid sizes, got {shape}")
    return shape


def _fft_dtype(x: torch.Tensor) -> torch.Tensor:
    """FFTs run in float32 or float64; half precision inputs are promoted to float32."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def spectral_resample(x: torch.Tensor, output_shape: Sequence[int]) -> torch.Tensor:
    """Resample a periodic grid function by Fourier interpolation (zero-padding or truncation).

    Parameters
    ----------
    x : torch.Tensor
        Real tensor ``(batch, channels, *spatial)``.
    output_shape : sequence of int
        New spatial size, one entry per spatial axis.

    Returns
    -------
    torch.Tensor
        ``(batch, channels, *output_shape)``; exact for functions band-limited below the Nyquist
        frequency of both grids (coarser grids keep only the frequencies they can represent).
    """
    n_dims = x.ndim - 2
    output_shape = _check_shape(output_shape, n_dims, "output_shape")
    in_shape = tuple(x.shape[2:])
    if output_shape == in_shape:
        return x
    dtype = x.dtype
    dims = tuple(range(2, x.ndim))
    x_ft = torch.fft.rfftn(_fft_dtype(x), dim=dims, norm="forward")
    for i, (n_in, n_out) in enumerate(zip(in_shape, output_shape, strict=True)):
        last = i == n_dims - 1
        idx_in, idx_out, _ = _mode_indices(n_in, n_out, n_in, last)
        x_ft = _place(_select(x_ft, 2 + i, idx_in), 2 + i, idx_out,
                      n_out // 2 + 1 if last else n_out)
    return torch.fft.irfftn(x_ft, s=output_shape, dim=dims, norm="forward").to(dtype)


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
class SpectralConv(nn.Module):
    r"""Spectral convolution :math:`(K v)(x) = \mathcal{F}^{-1}(R \cdot \mathcal{F} v)(x)`.

    The input is transformed with a real FFT over all spatial axes (``norm="forward"``, so the
    coefficients are Fourier-series coefficients independent of the grid size), the retained low
    frequencies are mixed across channels by complex weights
    :math:`R(k) \in \mathbb{C}^{\text{in} \times \text{out}}`, all other frequencies are set to
    zero, and the inverse real FFT returns to physical space, on the input grid or on
    ``output_shape`` (zero-shot super-resolution or coarsening).

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    n_modes : sequence of int
        Number of retained Fourier modes per spatial axis (its length is the dimension). Along
        every axis but the last, ``m = n_modes[i]`` counts the frequencies
        ``-(m // 2), ..., m - m // 2 - 1`` (for even ``m``: ``m / 2`` negative and ``m / 2``
        non-negative ones). Along the last axis, which the real FFT halves, the frequencies
        ``0, ..., m // 2`` are kept (``m // 2 + 1`` of them), as in ``neuraloperator``.
        So ``n_modes = (16, 16)`` retains ``-8 <= k_x <= 7`` and ``0 <= k_y <= 8``.
    bias : bool, default True
        Add a learnable per-output-channel constant.
    init_std : float or None, default None
        Standard deviation of the complex weights (``E|R|^2 = init_std^2``); ``None`` uses
        ``sqrt(2 / (in_channels + out_channels))``.

    Notes
    -----
    Grids too coarse for all retained modes use only the frequencies they can represent (the
    others are dropped, never aliased), so any resolution works with the same weights. The weights
    are stored as a real parameter ``weight`` of shape
    ``(in_channels, out_channels, n_modes[0], ..., n_modes[-2], n_modes[-1] // 2 + 1, 2)``
    (real and imaginary parts, non-last axes in FFT order: non-negative then negative
    frequencies); :attr:`complex_weight` views it as complex. Real storage keeps optimisers,
    gradient clipping and distributed training free of complex-number corner cases.

    Shapes: input ``(batch, in_channels, *spatial)``, output
    ``(batch, out_channels, *spatial)`` or ``(batch, out_channels, *output_shape)``.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int], *,
                 bias: bool = True, init_std: float | None = None) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.n_modes = _check_n_modes(n_modes, max_dims=None)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"channel counts must be positive, got in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        weight_modes = (*self.n_modes[:-1], self.n_modes[-1] // 2 + 1)
        std = math.sqrt(2.0 / (self.in_channels + self.out_channels)) if init_std is None \
            else float(init_std)
        # Real and imaginary parts each carry half the variance.
        shape = (self.in_channels, self.out_channels, *weight_modes, 2)
        self.weight = nn.Parameter(torch.randn(shape) * (std / math.sqrt(2)))
        if bias:
            self.bias = nn.Parameter(torch.zeros(self.out_channels, *([1] * len(self.n_modes))))
        else:
            self.register_parameter("bias", None)

    @property
    def complex_weight(self) -> torch.Tensor:
        """The weights as a complex tensor ``(in, out, *modes)`` (a view of :attr:`weight`)."""
        return torch.view_as_complex(self.weight)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}, "
                f"bias={self.bias is not None}")

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Apply the spectral convolution.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, in_channels, *spatial)`` with ``len(n_modes)`` spatial axes.
        output_shape : sequence of int, optional
            Spatial size of the result; defaults to the input's.

        Returns
        -------
        torch.Tensor
            ``(batch, out_channels, *output_shape)``, in the input's dtype.

        Raises
        ------
        ValueError
            If the channel count or number of spatial axes of ``x`` is wrong.
        """
        n_dims = len(self.n_modes)
        _check_input(x, self.in_channels, n_dims, type(self).__name__)
        in_shape = tuple(x.shape[2:])
        out_shape = in_shape if output_shape is None else _check_shape(output_shape, n_dims,
                                                                       "output_shape")
        dtype = x.dtype
        dims = tuple(range(2, 2 + n_dims))
        x_ft = torch.fft.rfftn(_fft_dtype(x), dim=dims, norm="forward")
        weight = self.complex_weight.to(x_ft.dtype)
        placements = []
        for i in range(n_dims):
            last = i == n_dims - 1
            idx_in, idx_out, idx_w = _mode_indices(in_shape[i], out_shape[i], self.n_modes[i], last)
            x_ft = _select(x_ft, 2 + i, idx_in)
            weight = _select(weight, 2 + i, idx_w)
            placements.append((idx_out, out_shape[i] // 2 + 1 if last else out_shape[i]))
        y = torch.einsum("bi...,io...->bo...", x_ft, weight)
        for i, (idx_out, size) in enumerate(placements):
            y = _place(y, 2 + i, idx_out, size)
        out = torch.fft.irfftn(y, s=out_shape, dim=dims, norm="forward")
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out.to(dtype)


class SoftGating(nn.Module):
    """Per-channel learnable scale ``y_c = w_c x_c`` (initialised to 1): a "soft-gating" skip."""

    def __init__(self, channels: int, n_dims: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, *([1] * n_dims)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


def _make_skip(kind: str | None, channels: int, n_dims: int) -> nn.Module | None:
    if kind == "linear":
        return _CONVS[n_dims](channels, channels, kernel_size=1, bias=False)
    if kind == "identity":
        return nn.Identity()
    if kind == "soft-gating":
        return SoftGating(channels, n_dims)
    return None


def _make_norm(kind: str | None, channels: int, n_dims: int) -> nn.Module:
    if kind == "group_norm":
        return nn.GroupNorm(1, channels)
    if kind == "instance_norm":
        return _INSTANCE_NORMS[n_dims](channels, affine=True)
    return nn.Identity()


def _pointwise_mlp(in_channels: int, hidden: int | None, out_channels: int, n_dims: int,
                   activation: nn.Module) -> nn.Sequential:
    """Two 1x1 convolutions with an activation between them (one if ``hidden`` is None)."""
    conv = _CONVS[n_dims]
    if hidden is None:
        return nn.Sequential(conv(in_channels, out_channels, kernel_size=1))
    return nn.Sequential(conv(in_channels, hidden, kernel_size=1), activation,
                         conv(hidden, out_channels, kernel_size=1))


class FNOBlock(nn.Module):
    r"""One Fourier block acting on ``channels`` channels.

    With :math:`v` the block input, :math:`K` the spectral convolution, :math:`W` the FNO skip,
    :math:`S` the channel-MLP skip and :math:`N_1, N_2` the optional norms:

    .. math::

        h = \sigma\big(N_1(K v + W v)\big), \qquad
        v' = N_2\big(\mathrm{MLP}(h) + S v\big), \qquad
        \text{output} = \sigma(v') \text{ (not after the last block)}.

    Without a channel MLP (``mlp_channels=None``) the block is the original FNO layer
    :math:`\sigma(N_1(K v + W v))`, again without the activation after the last block. When
    ``output_shape`` is given, the skip paths are resampled by Fourier interpolation.
    """

    def __init__(self, channels: int, n_modes: Sequence[int], *, mlp_channels: int | None,
                 fno_skip: str | None, channel_mlp_skip: str | None, activation: nn.Module,
                 norm: str | None, last: bool) -> None:
        super().__init__()
        n_dims = len(n_modes)
        self.last = last
        self.activation = activation
        self.spectral = SpectralConv(channels, channels, n_modes)
        self.fno_skip = _make_skip(fno_skip, channels, n_dims)
        self.norm1 = _make_norm(norm, channels, n_dims)
        if mlp_channels is None:
            self.channel_mlp = None
            self.channel_mlp_skip = None
            self.norm2 = None
        else:
            self.channel_mlp = _pointwise_mlp(channels, mlp_channels, channels, n_dims, activation)
            self.channel_mlp_skip = _make_skip(channel_mlp_skip, channels, n_dims)
            self.norm2 = _make_norm(norm, channels, n_dims)

    def forward(self, v: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        resize = output_shape is not None and tuple(output_shape) != tuple(v.shape[2:])

        def skip(module: nn.Module | None) -> torch.Tensor | None:
            if module is None:
                return None
            s = module(v)
            return spectral_resample(s, output_shape) if resize else s

        h = self.spectral(v, output_shape)
        w = skip(self.fno_skip)
        if w is not None:
            h = h + w
        h = self.norm1(h)
        if self.channel_mlp is None:
            return h if self.last else self.activation(h)
        h = self.activation(h)
        out = self.channel_mlp(h)
        s = skip(self.channel_mlp_skip)
        if s is not None:
            out = out + s
        out = self.norm2(out)
        return out if self.last else self.activation(out)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
def _check_n_modes(n_modes: Any, max_dims: int | None = 3) -> tuple[int, ...]:
    if isinstance(n_modes, (int, str)) or not isinstance(n_modes, Sequence):
        raise ValueError(f"n_modes must be a sequence with one entry per spatial axis "
                         f"(e.g. [16] in 1D, [12, 12] in 2D), got {n_modes!r}")
    if len(n_modes) == 0 or (max_dims is not None and len(n_modes) > max_dims):
        limit = f"1 to {max_dims}" if max_dims is not None else "at least 1"
        raise ValueError(f"n_modes must have {limit} entries (one per spatial axis), "
                         f"got {len(n_modes)}: {list(n_modes)}")
    if any(isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1 for m in n_modes):
        raise ValueError(f"n_modes entries must be positive integers, got {list(n_modes)}")
    return tuple(int(m) for m in n_modes)


def _check_input(x: torch.Tensor, channels: int, n_dims: int, who: str) -> None:
    axes = ("n_x", "n_y", "n_z")[:n_dims] if n_dims <= 3 else tuple(
        f"n_{i}" for i in range(n_dims))
    expected = f"(batch, {channels}, {', '.join(axes)})"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor of shape {expected}, "
                        f"got {type(x).__name__}")
    if x.ndim != n_dims + 2 or x.shape[1] != channels:
        raise ValueError(f"{who} expects input of shape {expected} ({n_dims} spatial axes, "
                         f"channels first), got {tuple(x.shape)}")
    if x.is_complex():
        raise ValueError(f"{who} expects a real tensor, got dtype {x.dtype}")


class FNO(OperatorModel):
    r"""Fourier neural operator for functions on a uniform periodic grid in 1, 2 or 3 dimensions.

    .. math::

        v_0 = P([a, x]), \quad v_{l+1} = \sigma\big(W_l v_l + K_l v_l\big) \ (+\ \text{channel
        MLP}), \quad (K v)(x) = \mathcal{F}^{-1}\big(R \cdot \mathcal{F} v\big)(x), \quad
        u = Q(v_L).

    Lifting :math:`P` and projection :math:`Q` are two-layer pointwise MLPs (1x1 convolutions);
    each of the ``n_layers`` blocks is a :class:`FNOBlock`: spectral convolution
    (:class:`SpectralConv`) plus an FNO skip, norm, activation, then a channel MLP with its own
    skip from the block input, norm, and an activation except after the last block (as in
    ``neuraloperator`` 2.0).

    Parameters
    ----------
    in_channels : int
        Physical input channels (the coordinates of the grid embedding are not counted).
    out_channels : int
        Output channels.
    n_modes : sequence of int
        Retained Fourier modes per spatial axis; its length (1, 2 or 3) is the dimension. Along
        the last axis ``n_modes[-1] // 2 + 1`` non-negative frequencies are kept, along the others
        ``n_modes[i]`` frequencies centred on zero (see :class:`SpectralConv`).
    hidden_channels : int, default 32
        Width of the Fourier blocks.
    n_layers : int, default 4
        Number of Fourier blocks.
    lifting_channel_ratio : float or None, default 2
        The lifting MLP is ``in_channels (+ dim) -> round(ratio * hidden) -> hidden``;
        ``None`` makes it a single 1x1 convolution.
    projection_channel_ratio : float or None, default 2
        The projection MLP is ``hidden -> round(ratio * hidden) -> out_channels``; ``None`` makes
        it a single 1x1 convolution.
    positional_embedding : {"grid", None}, default "grid"
        ``"grid"`` appends the normalised coordinates ``x_j = j / n`` in ``[0, 1)`` of each spatial
        axis as extra input channels, inside the model.
    domain_padding : float or sequence of float, default 0.0
        Fraction of each spatial size (one value, or one per axis) zero-padded on the right after
        lifting and cropped before projection: ``round(fraction * n)`` points. Use about 0.1–0.25
        for non-periodic problems.
    channel_mlp_expansion : float or None, default 0.5
        Hidden width of each block's channel MLP is ``round(expansion * hidden_channels)``;
        ``None`` removes the channel MLP (the original FNO layer of Li et al.).
    channel_mlp_skip : {"soft-gating", "linear", "identity", None}, default "soft-gating"
        Skip around the channel MLP, taken from the block input.
    fno_skip : {"linear", "identity", "soft-gating", None}, default "linear"
        Skip :math:`W` beside the spectral convolution (``"linear"``: 1x1 convolution).
    non_linearity : {"gelu", "relu", "tanh", "silu"}, default "gelu"
        Activation :math:`\sigma`.
    norm : {None, "group_norm", "instance_norm"}, default None
        Normalisation after each skip sum in every block.

    Notes
    -----
    Shapes: input ``(batch, in_channels, *spatial)``, output ``(batch, out_channels, *spatial)``
    or ``(batch, out_channels, *output_shape)``. The same weights apply on any grid; grids with
    fewer points than ``n_modes`` use the frequencies they hold. For zero-shot super-resolution
    pass ``output_shape`` to :meth:`forward` (the last block resamples in Fourier space) or
    simply evaluate the model on a finer input grid. The constructor arguments, defaults
    included, are recorded in ``model.config`` and rebuilt by
    :func:`operators.base.model_from_checkpoint`.

    Raises
    ------
    ValueError
        For an invalid argument (``n_modes`` empty or longer than 3, unknown option names,
        non-positive sizes).

    References
    ----------
    .. [1] Z. Li et al., "Fourier neural operator for parametric partial differential equations",
       ICLR 2021.
    .. [2] J. Kossaifi et al., "A library for learning neural operators", arXiv:2412.10354 (2024);
       ``neuraloperator`` 2.0.

    Examples
    --------
    >>> model = FNO(in_channels=1, out_channels=1, n_modes=[16])
    >>> model(torch.randn(4, 1, 64)).shape
    torch.Size([4, 1, 64])
    """

    def __init__(self, *, in_channels: int, out_channels: int, n_modes: Sequence[int],
                 hidden_channels: int = 32, n_layers: int = 4,
                 lifting_channel_ratio: float | None = 2,
                 projection_channel_ratio: float | None = 2,
                 positional_embedding: str | None = "grid",
                 domain_padding: float | Sequence[float] = 0.0,
                 channel_mlp_expansion: float | None = 0.5,
                 channel_mlp_skip: str | None = "soft-gating",
                 fno_skip: str | None = "linear",
                 non_linearity: str = "gelu",
                 norm: str | None = None) -> None:
        super().__init__()
        self.n_modes = _check_n_modes(n_modes)
        self.n_dims = n_dims = len(self.n_modes)
        check_ints(in_channels=in_channels, out_channels=out_channels,
                   hidden_channels=hidden_channels, n_layers=n_layers)
        if positional_embedding not in ("grid", None):
            raise ValueError(f"positional_embedding must be 'grid' or None, "
                             f"got {positional_embedding!r}")
        for name, value, options in (("channel_mlp_skip", channel_mlp_skip, _SKIPS),
                                     ("fno_skip", fno_skip, _SKIPS), ("norm", norm, _NORMS)):
            if value not in options:
                raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
        if non_linearity not in _ACTIVATIONS:
            raise ValueError(f"non_linearity must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {non_linearity!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.positional_embedding = positional_embedding
        self.domain_padding = self._check_padding(domain_padding, n_dims)

        activation = _ACTIVATIONS[non_linearity]()
        lift_in = in_channels + (n_dims if positional_embedding == "grid" else 0)
        self.lifting = _pointwise_mlp(
            lift_in, self._width(lifting_channel_ratio, "lifting_channel_ratio"),
            hidden_channels, n_dims, activation)
        mlp_channels = self._width(channel_mlp_expansion, "channel_mlp_expansion")
        self.blocks = nn.ModuleList(
            FNOBlock(hidden_channels, self.n_modes, mlp_channels=mlp_channels,
                     fno_skip=fno_skip, channel_mlp_skip=channel_mlp_skip, activation=activation,
                     norm=norm, last=layer == n_layers - 1)
            for layer in range(n_layers))
        self.projection = _pointwise_mlp(
            hidden_channels, self._width(projection_channel_ratio, "projection_channel_ratio"),
            out_channels, n_dims, activation)

    def _width(self, ratio: float | None, name: str) -> int | None:
        if ratio is None:
            return None
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            raise ValueError(f"{name} must be a positive number or None, got {ratio!r}")
        return max(1, round(ratio * self.hidden_channels))

    @staticmethod
    def _check_padding(padding: Any, n_dims: int) -> tuple[float, ...]:
        values = [padding] * n_dims if isinstance(padding, (int, float)) else padding
        if isinstance(values, (str, bool)) or not isinstance(values, Sequence) \
                or len(values) != n_dims \
                or any(isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 0
                       for p in values):
            raise ValueError(f"domain_padding must be a non-negative fraction or one per spatial "
                             f"axis ({n_dims}), got {padding!r}")
        return tuple(float(p) for p in values)

    def grid(self, spatial: Sequence[int], *, device: torch.device | None = None,
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Normalised coordinates ``(dim, *spatial)``, ``x_j = j / n`` in ``[0, 1)`` per axis."""
        axes = [torch.arange(n, device=device, dtype=dtype) / n for n in spatial]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"))

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Evaluate the operator.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, in_channels, *spatial)`` with ``len(n_modes)`` spatial axes.
        output_shape : sequence of int, optional
            Spatial size of the output grid (same periodic box); defaults to the input's. With
            domain padding, the padded box is resampled to ``round(padded * out / n)`` points per
            axis, which is exact for integer refinement factors.

        Returns
        -------
        torch.Tensor
            ``(batch, out_channels, *spatial)`` or ``(batch, out_channels, *output_shape)``.

        Raises
        ------
        ValueError
            If the channel count or number of spatial axes of ``x`` is wrong, naming the expected
            and the actual shape.
        """
        _check_input(x, self.in_channels, self.n_dims, type(self).__name__)
        spatial = tuple(x.shape[2:])
        out_shape = spatial if output_shape is None else _check_shape(
            output_shape, self.n_dims, "output_shape")
        if self.positional_embedding == "grid":
            grid = self.grid(spatial, device=x.device, dtype=x.dtype)
            x = torch.cat([x, grid.unsqueeze(0).expand(x.shape[0], *grid.shape)], dim=1)
        v = self.lifting(x)

        pads = [round(f * n) for f, n in zip(self.domain_padding, spatial, strict=True)]
        if any(pads):
            # F.pad takes (left, right) pairs starting from the last axis.
            v = nn.functional.pad(v, [p for pad in reversed(pads) for p in (0, pad)])
        padded = tuple(v.shape[2:])
        target = padded if out_shape == spatial else tuple(
            round(n_pad * m / n) for n_pad, m, n in zip(padded, out_shape, spatial, strict=True))
        for i, block in enumerate(self.blocks):
            v = block(v, target if i == len(self.blocks) - 1 else None)
        if target != out_shape:
            v = v[(slice(None), slice(None), *(slice(0, m) for m in out_shape))]
        return self.projection(v)
