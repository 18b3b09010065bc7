r"""A one-dimensional U-Net on a periodic grid, the convolutional baseline of PDEBench and CAPE.

Encoder: ``depth`` levels, each two ``kernel``-wide convolutions (circular padding) with group
normalisation and GELU, then 2x average pooling; a bottleneck block; decoder: 2x transposed
convolution, concatenation with the encoder features of the same level (skip connection), two
convolutions; a final 1x1 convolution to the output channels. Channel widths double at every
level: ``features * 2**level``.

The grid is padded circularly to a multiple of ``2**depth`` points and cropped back, so any grid
size works (the pooling needs even sizes at every level).

References
----------
.. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional networks for biomedical image
   segmentation", MICCAI 2015.
.. [2] M. Takamoto et al., "PDEBench: An extensive benchmark for scientific machine learning",
   NeurIPS Datasets and Benchmarks 2022 (1D U-Net baseline).
"""

from __future__ import annotations

import torch
from torch import nn

from operators.base import OperatorModel, check_ints


def _conv_block(in_channels: int, out_channels: int, kernel: int, groups: int) -> nn.Sequential:
    """Two (convolution, group norm, GELU) layers with circular padding."""
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, kernel, padding=pad, padding_mode="circular"),
        nn.GroupNorm(groups, out_channels), nn.GELU(),
        nn.Conv1d(out_channels, out_channels, kernel, padding=pad, padding_mode="circular"),
        nn.GroupNorm(groups, out_channels), nn.GELU())


class UNet1d(OperatorModel):
    """One-dimensional U-Net for periodic fields, ``(B, in_channels, N) -> (B, out_channels, N)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels.
    features : int, default 16
        Channels of the first level; level ``l`` has ``features * 2**l``.
    depth : int, default 3
        Number of pooling levels.
    kernel : int, default 3
        Odd convolution width.
    groups : int, default 4
        Groups of the group normalisation; ``features`` must be a multiple of it.

    Raises
    ------
    ValueError
        For non-positive sizes, an even kernel or ``features`` not a multiple of ``groups``.
    """

    def __init__(self, *, in_channels: int, out_channels: int, features: int = 16,
                 depth: int = 3, kernel: int = 3, groups: int = 4) -> None:
        super().__init__()
        check_ints(in_channels=in_channels, out_channels=out_channels, features=features,
                   depth=depth, kernel=kernel, groups=groups)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {kernel}")
        if features % groups:
            raise ValueError(f"features ({features}) must be a multiple of groups ({groups})")
        self.in_channels, self.depth = in_channels, depth
        widths = [features * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList(
            _conv_block(in_channels if level == 0 else widths[level - 1], widths[level], kernel,
                        groups) for level in range(depth))
        self.bottleneck = _conv_block(widths[depth - 1], widths[depth], kernel, groups)
        self.upsamplers = nn.ModuleList(
            nn.ConvTranspose1d(widths[level + 1], widths[level], 2, stride=2)
            for level in reversed(range(depth)))
        self.decoders = nn.ModuleList(
            _conv_block(2 * widths[level], widths[level], kernel, groups)
            for level in reversed(range(depth)))
        self.head = nn.Conv1d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the U-Net to ``x (B, in_channels, N)``; returns ``(B, out_channels, N)``."""
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet1d expects (batch, {self.in_channels}, N), got "
                             f"{tuple(x.shape)}")
        n = x.shape[-1]
        multiple = 2**self.depth
        padded = -(-n // multiple) * multiple
        if padded != n:
            x = nn.functional.pad(x, (0, padded - n), mode="circular")
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = nn.functional.avg_pool1d(x, 2)
        x = self.bottleneck(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips),
                                           strict=True):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        return self.head(x)[..., :n]
