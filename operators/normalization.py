"""Per-channel normalisation fitted on training data, and an operator that works in physical units.

A :class:`Normalizer` stores ``mean`` and ``std`` per channel as buffers, so it travels inside a
model's ``state_dict``. :class:`NormalizedOperator` wraps any registered operator ``G`` as

.. math:: \\hat{y} = \\sigma_y \\odot G\\big((x - \\mu_x) / \\sigma_x\\big) + \\mu_y,

so that a saved model maps physical inputs to physical outputs and carries the statistics of the
training split it was fitted on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, build


class Normalizer(nn.Module):
    """Affine per-channel normalisation ``(x - mean) / std`` for channels-first tensors.

    Parameters
    ----------
    n_channels : int
        Number of channels (axis 1 of the tensors it is applied to).
    eps : float
        Floor added to the standard deviation so that constant channels do not divide by zero.
    """

    def __init__(self, n_channels: int, eps: float = 1e-8):
        super().__init__()
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.eps = eps
        self.register_buffer("mean", torch.zeros(n_channels))
        self.register_buffer("std", torch.ones(n_channels))

    @property
    def n_channels(self) -> int:
        return self.mean.numel()

    def _shape(self, x: torch.Tensor) -> tuple[int, ...]:
        if x.ndim < 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected a tensor of shape (batch, {self.n_channels}, ...), "
                             f"got {tuple(x.shape)}")
        return (1, self.n_channels) + (1,) * (x.ndim - 2)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> Normalizer:
        """Set mean and std per channel from ``x`` of shape (batch, channels, *spatial)."""
        self._shape(x)
        values = x.transpose(0, 1).reshape(self.n_channels, -1).to(torch.float64)
        if not torch.isfinite(values).all():
            raise ValueError("cannot fit a normaliser on non-finite data")
        self.mean.copy_(values.mean(dim=1).to(self.mean.dtype))
        self.std.copy_(values.std(dim=1, correction=0).to(self.std.dtype))
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        shape = self._shape(x)
        return (x - self.mean.view(shape)) / (self.std.view(shape) + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        shape = self._shape(x)
        return x * (self.std.view(shape) + self.eps) + self.mean.view(shape)


class NormalizedOperator(OperatorModel):
    """An operator ``model_class(**model_config)`` between two per-channel normalisers.

    Parameters
    ----------
    model_class : str
        Registered name of the wrapped operator (e.g. ``"FNO"``).
    model_config : dict
        Keyword arguments of the wrapped operator; its ``in_channels`` / ``out_channels`` size the
        normalisers.

    Notes
    -----
    ``forward`` works in physical units. Training should compare ``forward_normalized(x)`` with
    ``target_normalizer.encode(y)``, so that every output channel weighs the same in the loss.
    """

    def __init__(self, *, model_class: str, model_config: dict[str, Any]):
        super().__init__()
        self.model = build(model_class, dict(model_config))
        self.input_normalizer = Normalizer(int(model_config["in_channels"]))
        self.target_normalizer = Normalizer(int(model_config["out_channels"]))

    def _resolve_config(self, config: dict[str, Any]) -> dict[str, Any]:
        # Record the wrapped model's resolved arguments (its defaults included).
        return {**config, "model_config": self.model.config}

    def fit_normalizers(self, x: torch.Tensor, y: torch.Tensor) -> NormalizedOperator:
        """Fit both normalisers on training inputs ``x`` and targets ``y`` (physical units)."""
        self.input_normalizer.fit(x)
        self.target_normalizer.fit(y)
        return self

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Physical input -> normalised output (the space the training loss is computed in)."""
        return self.model(self.input_normalizer.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Physical input (batch, in_channels, *spatial) -> physical output."""
        return self.target_normalizer.decode(self.forward_normalized(x))
