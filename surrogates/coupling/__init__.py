r"""Learned closures inside host solvers, and their export for host models.

A *closure* (``operators.mno.MNOClosure``, ``LocalMLPClosure``, ``PolynomialClosure``) maps the
slow Lorenz-96 state to the missing subgrid tendency,

.. math::

    \frac{dX_k}{dt} = f(X; F) + c_k(X), \qquad
    f_k = X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F,

with :math:`c` in units of ``X`` per model time unit (1/MTU for the dimensionless ``X``). A host
model keeps its own :math:`f` and time stepping and asks the closure for :math:`c` once per
tendency evaluation (every RK4 stage).

Contents
--------
* :class:`ClosureInterface` -- call a trained closure from Python host code with NumPy arrays or
  torch tensors of shape ``(K,)`` or ``(B, K)``; returns :math:`c` in the input's type, dtype
  and shape.
* :class:`ClosureExportModule`, :class:`DFTSpectralConv1d` -- the export wrapper: input
  ``X (batch, K)`` float32, output ``closure (batch, K)``. Spectral convolutions are replaced by
  an equivalent real DFT by matrix products whose basis is built at run time from ``K``, because
  the ONNX exporter cannot convert complex-valued FFT indexing; ``K`` stays a dynamic axis
  (:mod:`surrogates.coupling.export`).
* Writers, each atomic, each with a JSON sidecar ``<path>.json`` describing the contract (names,
  shapes, dtype, units, meaning):

  - :func:`export_onnx` -- ONNX, for hosts in any language through ONNX Runtime (a C host is in
    ``examples/coupling_c/``);
  - :func:`export_torch` -- a ``torch.export`` program (``.pt2``), loaded without unpickling by
    :func:`load_torch`; closures and, with ``example_shape``, operators
    (:mod:`surrogates.coupling.torch_export`);
  - :func:`export_aoti` -- an AOTInductor package (``.pt2``, compiled C++), loaded by
    :func:`load_aoti` or LibTorch's ``AOTIModelPackageLoader``;
  - :func:`export_torchscript` -- deprecated (``torch.jit`` is deprecated upstream).

The export contract
-------------------
Input ``"X"``: float32, shape ``(batch, K)``, both axes dynamic, the slow variables
:math:`X_k(t)`. Output ``"closure"``: float32, shape ``(batch, K)``, the correction
:math:`c_k(X)` to :math:`dX_k/dt` in 1/MTU (add it to the host's coarse tendency). Exported
closures take no history and no forcing channel (those would need further inputs).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from surrogates.coupling.export import (
    ClosureExportModule,
    DFTSpectralConv1d,
    _as_module,
    export_onnx,
    export_torchscript,
)
from surrogates.coupling.torch_export import export_aoti, export_torch, load_aoti, load_torch

__all__ = ["ClosureExportModule", "ClosureInterface", "DFTSpectralConv1d", "export_aoti",
           "export_onnx", "export_torch", "export_torchscript", "load_aoti", "load_torch"]


def _param_like(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    p = next(module.parameters(), None)
    if p is None:
        return torch.float32, torch.device("cpu")
    return p.dtype, p.device


# --------------------------------------------------------------------------------------------
# Calling a closure from host code
# --------------------------------------------------------------------------------------------
class ClosureInterface:
    r"""Call a trained closure from a host model, once per tendency evaluation.

    ``interface(X, F=None)`` returns the closure tendency :math:`c(X)` (units of ``X`` per model
    time unit) to be added to the host's coarse tendency.

    Parameters
    ----------
    closure : nn.Module, checkpoint dict, or path
        A closure following ``operators.mno``'s convention (``(B, 1 + history, K)`` ->
        ``(B, 1, K)``), a checkpoint from ``operators.base.model_checkpoint`` or the path of one
        written by ``operators.base.save_model``. It is put in eval mode.
    device : str or torch.device, optional
        Move the closure there; default: where its parameters are.

    Notes
    -----
    * NumPy in, NumPy out: ``X`` of shape ``(K,)`` or ``(B, K)``, float32 or float64; the result
      has the same shape and dtype. A contiguous array already in the closure's dtype on a CPU
      closure is wrapped with ``torch.from_numpy`` without a copy.
    * Torch in, torch out: a tensor already in the closure's dtype and on its device reaches the
      closure without a copy (no NumPy round trip); the result is a tensor in the input's dtype on
      the input's device.
    * Evaluation runs under ``torch.no_grad()``.
    * ``F`` (scalar or shape ``(B,)``) is passed to closures with ``use_forcing_channel``;
      history closures get ``history`` of shape ``(B, history, K)`` or, by default, copies of
      ``X`` (as ``operators.mno.HybridLorenz96`` at the first step).

    Raises
    ------
    ValueError
        For inputs that are not 1-D or 2-D, not floating point, a missing ``F`` when the closure
        needs it, a history of the wrong shape, or a closure output of the wrong shape.
    """

    def __init__(self, closure: nn.Module | dict[str, Any] | str | os.PathLike, *,
                 device: str | torch.device | None = None) -> None:
        module = _as_module(closure)
        if device is not None:
            module = module.to(device)
        self.closure = module.eval()
        self.dtype, self.device = _param_like(module)
        self.history = int(getattr(module, "history", 0))
        self.use_forcing_channel = bool(getattr(module, "use_forcing_channel", False))

    def __repr__(self) -> str:
        return (f"ClosureInterface({type(self.closure).__name__}, dtype={self.dtype}, "
                f"device={self.device})")

    def _to_tensor(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            if not X.is_floating_point():
                raise ValueError(f"X must be floating point, got {X.dtype}")
            return X.to(device=self.device, dtype=self.dtype)
        arr = np.asarray(X)
        if arr.dtype not in (np.float32, np.float64):
            raise ValueError(f"X must be a float32 or float64 array, got dtype {arr.dtype}")
        return torch.from_numpy(np.ascontiguousarray(arr)).to(device=self.device,
                                                              dtype=self.dtype)

    @torch.no_grad()
    def __call__(self, X: np.ndarray | torch.Tensor, F: Any = None,
                 history: np.ndarray | torch.Tensor | None = None) -> np.ndarray | torch.Tensor:
        """Closure tendency for the state(s) ``X``.

        Parameters
        ----------
        X : ndarray or torch.Tensor, shape (K,) or (B, K)
            Slow variables.
        F : float or array of shape (B,), optional
            Forcing; required by closures with ``use_forcing_channel``, ignored otherwise.
        history : ndarray or torch.Tensor, shape (B, history, K) or (history, K), optional
            Previous states (``X(t - dt)`` first) for history closures.

        Returns
        -------
        ndarray or torch.Tensor
            :math:`c(X)`, same shape, type and dtype as ``X`` (tensors on ``X``'s device).
        """
        is_tensor = isinstance(X, torch.Tensor)
        shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
        if len(shape) not in (1, 2) or shape[-1] < 1 or (len(shape) == 2 and shape[0] < 1):
            raise ValueError(f"X must have shape (K,) for one state or (B, K) for a batch, "
                             f"got {shape}")
        x = self._to_tensor(X)
        single = x.ndim == 1
        if single:
            x = x.unsqueeze(0)
        B, K = x.shape
        inp = x.unsqueeze(1)
        if self.history > 0:
            if history is None:
                h = x.unsqueeze(1).expand(B, self.history, K)
            else:
                h = self._to_tensor(history)
                h = h.unsqueeze(0) if single and h.ndim == 2 else h
                if tuple(h.shape) != (B, self.history, K):
                    raise ValueError(f"history must have shape (B, history, K) = "
                                     f"{(B, self.history, K)}, got {tuple(history.shape)}")
            inp = torch.cat([inp, h], dim=1)
        if self.use_forcing_channel:
            if F is None:
                raise ValueError(f"{type(self.closure).__name__} was built with "
                                 "use_forcing_channel=True: pass the forcing, interface(X, F)")
            out = self.closure(inp, torch.as_tensor(F, dtype=self.dtype, device=self.device))
        else:
            out = self.closure(inp)
        if tuple(out.shape) != (B, 1, K):
            raise ValueError(f"closure returned shape {tuple(out.shape)}, expected "
                             f"(B, 1, K) = {(B, 1, K)}")
        out = out[:, 0]
        if single:
            out = out[0]
        if is_tensor:
            return out.to(device=X.device, dtype=X.dtype)
        return out.cpu().numpy().astype(np.asarray(X).dtype, copy=False)
