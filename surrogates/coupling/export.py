r"""The export contract and wrapper for closures, and the ONNX and TorchScript writers.

Public names are re-exported by :mod:`surrogates.coupling`; import them from there. The
``torch.export`` and AOTInductor writers are in :mod:`surrogates.coupling.torch_export`.

Formats
-------
=============  ==========================  =====================================================
format         writer                      loaded by
=============  ==========================  =====================================================
ONNX           :func:`export_onnx`         ONNX Runtime (C, C++, Python, Fortran through C, ...);
                                           ``examples/coupling_c/closure_host.c`` is a C host
torch.export   :func:`export_torch`        :func:`load_torch` (checked ``torch.export.load``)
AOTInductor    :func:`export_aoti`         :func:`load_aoti` (``torch._inductor.aoti_load_package``)
                                           or ``torch::inductor::AOTIModelPackageLoader`` in C++
TorchScript    :func:`export_torchscript`  deprecated (``torch.jit`` is deprecated upstream)
=============  ==========================  =====================================================

Each writer writes atomically (a temporary file renamed into place), refuses to replace existing
files unless ``overwrite=True``, and writes a JSON sidecar ``<path>.json`` with the contract
(names, shapes, dtype, units, meaning, dynamic axes).

Closures (``operators.mno`` convention, ``(B, 1 + history, K)`` -> ``(B, 1, K)``) are exported
as :class:`ClosureExportModule`: input ``"X"`` float32 ``(batch, K)``, output ``"closure"``
float32 ``(batch, K)`` in 1/MTU, both axes dynamic. Operators (``FNO``, ``MgNO``, ... from
``operators``) are exported by :func:`export_torch` / :func:`export_aoti` with
``example_shape=(batch, channels, *grid)``: input ``"x"`` float32, output ``"y"`` float32, the
batch axis dynamic and the grid fixed to the example's (the FNO's mode truncation and the MgNO's
coarsening specialise on the grid size).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, atomic_write, load_model, model_from_checkpoint
from operators.fno import FNO, SpectralConv

__all__ = ["ClosureExportModule", "DFTSpectralConv1d", "export_onnx", "export_torchscript"]

INPUT_NAME = "X"
OUTPUT_NAME = "closure"


def _as_module(closure: nn.Module | dict[str, Any] | str | os.PathLike) -> nn.Module:
    """A closure module from a module, a checkpoint dictionary or a checkpoint path."""
    if isinstance(closure, dict):
        return model_from_checkpoint(closure)
    if isinstance(closure, (str, os.PathLike)):
        return load_model(closure)
    if not isinstance(closure, nn.Module):
        raise TypeError(f"closure must be an nn.Module, a checkpoint dict or a checkpoint path, "
                        f"got {type(closure).__name__}")
    return closure


# --------------------------------------------------------------------------------------------
# Export wrapper
# --------------------------------------------------------------------------------------------
class DFTSpectralConv1d(nn.Module):
    r"""1-D spectral convolution by real DFT matrices, for export (no complex tensors, no FFT).

    Computes exactly what :class:`operators.fno.SpectralConv` computes on a 1-D grid of ``K``
    points when the output grid equals the input grid. With :math:`M` retained modes
    (``n_modes // 2 + 1``), :math:`\theta_{mn} = 2\pi\,(mn \bmod K)/K`:

    .. math::

        \hat x_m = \frac1K \sum_n x_n (\cos\theta_{mn} - i \sin\theta_{mn}), \qquad
        \hat y_{om} = \sum_i \hat x_{im} R_{iom}, \\
        y_n = \sum_{m < M,\ 2m \le K} w_m\,(\mathrm{Re}\,\hat y_m \cos\theta_{mn}
              - \mathrm{Im}\,\hat y_m \sin\theta_{mn}) + b, \qquad
        w_m = \begin{cases} 1 & m = 0 \text{ or } 2m = K \\ 2 & \text{otherwise,}\end{cases}

    i.e. ``rfft(norm="forward")``, truncation and ``irfft(norm="forward")``. The basis is built
    from ``K = x.shape[-1]`` at run time, so an exported graph keeps ``K`` dynamic; modes a
    coarse ring cannot hold (:math:`2m > K`) are masked out as in the FFT path. Cost
    :math:`O(MK)` per channel, fine for the small ``M`` of closures.

    Parameters
    ----------
    spectral : operators.fno.SpectralConv
        A 1-D spectral convolution; its weight and bias are shared, not copied.
    """

    def __init__(self, spectral: SpectralConv) -> None:
        super().__init__()
        if len(spectral.n_modes) != 1:
            raise ValueError(f"DFTSpectralConv1d handles 1-D spectral convolutions, got "
                             f"n_modes={spectral.n_modes}")
        self.weight = spectral.weight  # (in, out, M, 2)
        self.bias = spectral.bias

    def forward(self, x: torch.Tensor, output_shape: Any = None) -> torch.Tensor:
        if output_shape is not None and tuple(output_shape) != tuple(x.shape[2:]):
            raise ValueError("DFTSpectralConv1d evaluates on the input grid only; got "
                             f"output_shape {tuple(output_shape)} for input {tuple(x.shape)}")
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        xf = x.to(dtype)
        K = xf.shape[-1]
        n = torch.arange(K, device=x.device, dtype=dtype)
        M = self.weight.shape[2]
        m = torch.arange(M, device=x.device, dtype=dtype)
        Kf = n[-1:] + 1.0  # K as a tensor (keeps the graph dynamic in K)
        theta = (2.0 * math.pi / Kf) * torch.remainder(m[:, None] * n[None, :], Kf)
        cos, sin = torch.cos(theta), torch.sin(theta)  # (M, K)
        xr = torch.matmul(xf, cos.transpose(0, 1)) / Kf  # (B, in, M)
        xi = -torch.matmul(xf, sin.transpose(0, 1)) / Kf
        wr, wi = self.weight[..., 0].to(dtype), self.weight[..., 1].to(dtype)  # (in, out, M)
        yr = torch.einsum("bim,iom->bom", xr, wr) - torch.einsum("bim,iom->bom", xi, wi)
        yi = torch.einsum("bim,iom->bom", xr, wi) + torch.einsum("bim,iom->bom", xi, wr)
        twice = 2.0 * m
        weight = torch.where((m == 0) | (twice == Kf), torch.ones_like(m), 2.0 * torch.ones_like(m))
        weight = weight * (twice <= Kf).to(dtype)  # drop modes the ring cannot hold
        out = torch.matmul(yr * weight, cos) - torch.matmul(yi * weight, sin)  # (B, out, K)
        if self.bias is not None:
            out = out + self.bias.to(dtype)
        return out.to(x.dtype)


def _check_exportable(closure: nn.Module) -> None:
    if int(getattr(closure, "history", 0)) != 0:
        raise ValueError(f"only closures without history can be exported (the contract has the "
                         f"single input X (batch, K)); got history={closure.history}")
    if getattr(closure, "use_forcing_channel", False):
        raise ValueError("only closures without a forcing channel can be exported (the contract "
                         "has the single input X (batch, K)); got use_forcing_channel=True")
    for name, module in closure.named_modules():
        if isinstance(module, SpectralConv) and len(module.n_modes) != 1:
            raise ValueError(f"spectral convolution {name!r} is {len(module.n_modes)}-D; "
                             "closures on the Lorenz-96 ring are 1-D")


class _ExportFNO(nn.Module):
    """An :class:`operators.fno.FNO` evaluated on its input grid, written for tracing.

    ``FNO.forward`` computes padding and output-grid sizes with Python arithmetic on the grid
    size, which ``torch.jit.trace`` cannot follow; without positional embedding and domain
    padding (as in ``MNOClosure``) the forward pass is lifting, blocks, projection.
    """

    def __init__(self, fno: FNO) -> None:
        super().__init__()
        if fno.positional_embedding is not None or any(fno.domain_padding):
            raise ValueError("only FNOs without positional embedding and domain padding can be "
                             f"exported, got positional_embedding={fno.positional_embedding!r}, "
                             f"domain_padding={fno.domain_padding}")
        self.lifting, self.blocks, self.projection = fno.lifting, fno.blocks, fno.projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.lifting(x)
        for block in self.blocks:
            v = block(v)
        return self.projection(v)


def _replace_spectral(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, SpectralConv):
            setattr(module, name, DFTSpectralConv1d(child))
        elif isinstance(child, FNO):
            _replace_spectral(child)
            setattr(module, name, _ExportFNO(child))
        else:
            _replace_spectral(child)


class ClosureExportModule(nn.Module):
    """Export wrapper: ``X (batch, K)`` -> ``closure (batch, K)`` in the closure's dtype.

    Wraps a deep copy of the closure (put in eval mode) with every
    :class:`operators.fno.SpectralConv` replaced by :class:`DFTSpectralConv1d`, and adapts the
    ``(B, 1, K)`` channels-first convention to plain ``(B, K)`` states.

    Parameters
    ----------
    closure : nn.Module, checkpoint dict, or path
        A closure without history and without a forcing channel.

    Raises
    ------
    ValueError
        If the closure takes history or a forcing channel, or holds a multi-dimensional spectral
        convolution.
    """

    def __init__(self, closure: nn.Module | dict[str, Any] | str | os.PathLike) -> None:
        super().__init__()
        module = _as_module(closure)
        _check_exportable(module)
        module = copy.deepcopy(module).eval()
        _replace_spectral(module)
        self.closure = module
        self.eval()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.closure(X.unsqueeze(1)).squeeze(1)


# --------------------------------------------------------------------------------------------
# Writing exports
# --------------------------------------------------------------------------------------------
def _check_targets(path: str | os.PathLike, overwrite: bool) -> tuple[Path, Path]:
    path = Path(path)
    sidecar = path.with_name(path.name + ".json")
    if not overwrite:
        for p in (path, sidecar):
            if p.exists():
                raise FileExistsError(f"{p} exists; pass overwrite=True (--overwrite on the "
                                      "command line) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, sidecar


def _min_K(closure: nn.Module) -> int:
    return max(4, 2 * int(getattr(closure, "stencil", 0)) + 1)


def sidecar_header(module: nn.Module, fmt: str, path: Path, role: str) -> dict[str, Any]:
    """The first entries of every export's sidecar: format, file, ``<role>_class``, config."""
    config = getattr(module, "config", None) if isinstance(module, OperatorModel) else None
    return {"format": fmt, "file": path.name, f"{role}_class": type(module).__name__,
            "config": config}


def _sidecar(closure: nn.Module, fmt: str, path: Path, example_K: int,
             extra: dict[str, Any]) -> dict[str, Any]:
    return {
        **sidecar_header(closure, fmt, path, "closure"),
        "inputs": [{"name": INPUT_NAME, "shape": ["batch", "K"], "dtype": "float32",
                    "units": "X (dimensionless Lorenz-96 slow variables)",
                    "meaning": "slow variables X_k(t) on the periodic ring, k = 0 .. K-1"}],
        "outputs": [{"name": OUTPUT_NAME, "shape": ["batch", "K"], "dtype": "float32",
                     "units": "1/MTU (X per model time unit)",
                     "meaning": "closure correction c_k(X) to dX_k/dt: the host adds it to its "
                                "coarse tendency X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F at every "
                                "tendency evaluation (every RK4 stage)"}],
        "dynamic_axes": {"batch": "number of independent states, >= 1",
                         "K": f"ring size, >= {_min_K(closure)}"},
        "example_K": example_K,
        "layout": "row-major (C order): element [b, k] at offset b*K + k",
        **extra,
    }


def _write_sidecar(sidecar: Path, meta: dict[str, Any]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
            fh.write("\n")
    atomic_write(sidecar, write)


def _prepare(closure, example_K: Any, path: str | os.PathLike, overwrite: bool
             ) -> tuple[ClosureExportModule, int, Path, Path]:
    """The export wrapper (float32, CPU, eval), the checked ``example_K``, and the checked
    output and sidecar paths."""
    wrapper = ClosureExportModule(closure).float().cpu().eval()
    example_K = _check_example_K(example_K, wrapper.closure)
    return (wrapper, example_K, *_check_targets(path, overwrite))


def _check_example_K(example_K: Any, closure: nn.Module) -> int:
    lo = _min_K(closure)
    if isinstance(example_K, bool) or not isinstance(example_K, int) or example_K < lo:
        raise ValueError(f"example_K must be an integer >= {lo}, got {example_K!r}")
    return example_K


def export_torchscript(closure: nn.Module | dict[str, Any] | str | os.PathLike,
                       path: str | os.PathLike, *, example_K: int = 36,
                       overwrite: bool = False) -> Path:
    """Write the closure as a TorchScript module (traced :class:`ClosureExportModule`).

    .. deprecated::
        TorchScript (``torch.jit``) is deprecated upstream in favour of ``torch.export``; use
        :func:`export_torch` or :func:`export_aoti` (or :func:`export_onnx` for hosts outside
        PyTorch). This writer stays for LibTorch hosts that load TorchScript only, and emits a
        ``DeprecationWarning``.

    Parameters
    ----------
    closure : nn.Module, checkpoint dict, or path
        A closure without history or forcing channel.
    path : path-like
        Output file (``.pt``); the sidecar goes to ``<path>.json``.
    example_K : int, default 36
        Ring size of the tracing example. The traced graph reads ``K`` and the batch size from
        its input, so any ``K >= 4`` (and ``>= 2 * stencil + 1``) and any batch size work.
    overwrite : bool, default False
        Replace existing files.

    Returns
    -------
    Path
        ``path``. Load with ``torch.jit.load(path)`` (Python) or ``torch::jit::load`` (LibTorch);
        call with a float32 tensor ``(batch, K)``.

    Raises
    ------
    FileExistsError
        If ``path`` or its sidecar exists and ``overwrite`` is false.
    ValueError
        If the closure cannot be exported or ``example_K`` is too small.
    """
    warnings.warn("export_torchscript is deprecated (torch.jit is deprecated upstream): use "
                  "export_torch or export_aoti (torch.export), or export_onnx",
                  DeprecationWarning, stacklevel=2)
    wrapper, example_K, path, sidecar = _prepare(closure, example_K, path, overwrite)
    example = torch.randn(2, example_K, dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings():
        # The closures' shape checks (channel count, stencil width) become constants of the
        # trace; the data flow, including K and the batch size, stays dynamic.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # torch.jit is deprecated upstream in favour of torch.export, but LibTorch still loads
        # TorchScript files and nothing else; the caller was warned once above.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated",
                                category=DeprecationWarning)
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        atomic_write(path, lambda tmp: torch.jit.save(traced, tmp))
    _write_sidecar(sidecar, _sidecar(wrapper.closure, "torchscript", path, example_K,
                                     {"torch_version": torch.__version__}))
    return path


def export_onnx(closure: nn.Module | dict[str, Any] | str | os.PathLike,
                path: str | os.PathLike, *, example_K: int = 36, opset: int = 18,
                overwrite: bool = False) -> Path:
    """Write the closure as an ONNX model with dynamic ``batch`` and ``K`` axes.

    Uses the ``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``, needs
    ``onnxscript``) on :class:`ClosureExportModule`; the FNO's rFFT is replaced by the
    equivalent real DFT of :class:`DFTSpectralConv1d` because the exporter cannot convert
    complex-valued mode selection. The weights are stored inside the ``.onnx`` file.

    Parameters
    ----------
    closure : nn.Module, checkpoint dict, or path
        A closure without history or forcing channel.
    path : path-like
        Output file (``.onnx``); the sidecar goes to ``<path>.json``.
    example_K : int, default 36
        Ring size of the export example (``K`` stays dynamic).
    opset : int, default 18
        ONNX opset version.
    overwrite : bool, default False
        Replace existing files.

    Returns
    -------
    Path
        ``path``: input ``"X"`` float32 ``(batch, K)``, output ``"closure"`` float32
        ``(batch, K)``.

    Raises
    ------
    FileExistsError
        If ``path`` or its sidecar exists and ``overwrite`` is false.
    ValueError
        If the closure cannot be exported or ``example_K`` is too small.
    """
    wrapper, example_K, path, sidecar = _prepare(closure, example_K, path, overwrite)
    batch = torch.export.Dim("batch", min=1)
    K = torch.export.Dim("K", min=_min_K(wrapper.closure))
    example = torch.randn(2, example_K, dtype=torch.float32)
    with warnings.catch_warnings():
        # Raised inside torch.export's pytree handling (torch 2.13), not by anything here.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated",
                                category=FutureWarning)
        program = torch.onnx.export(wrapper, (example,), dynamo=True, opset_version=opset,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes={"X": {0: batch, 1: K}}, verbose=False)
    proto = program.model_proto
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 2:
            dims[0].dim_param, dims[1].dim_param = "batch", "K"
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(proto.SerializeToString()))
    _write_sidecar(sidecar, _sidecar(wrapper.closure, "onnx", path, example_K,
                                     {"opset": opset, "torch_version": torch.__version__}))
    return path
