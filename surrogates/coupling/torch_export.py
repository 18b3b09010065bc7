r"""``torch.export`` and AOTInductor export of closures and operators, and checked loading.

Public names are re-exported by :mod:`surrogates.coupling`; the contract, the sidecar and
the export wrapper are those of :mod:`surrogates.coupling.export`.

Loading without pickle
----------------------
``torch.export.save`` stores the graph as JSON and dense weights as raw bytes; only tensor
subclasses, script objects, opaque constants and the example inputs go through pickle, and
``torch.export.load`` unpickles those (the example inputs even fall back to
``weights_only=False`` when the restricted unpickler refuses). :func:`export_torch` stores no
example inputs and :func:`load_torch` refuses an archive holding any pickled payload before it
calls ``torch.export.load``, so loading one of these files unpickles nothing. An AOTInductor
package holds a compiled shared library and its weights: loading it runs native code, as loading
any ``.so`` does; load only packages you built or trust.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from operators.base import atomic_write
from surrogates.coupling.export import (
    ClosureExportModule,
    _as_module,
    _check_example_K,
    _check_targets,
    _min_K,
    _sidecar,
    _write_sidecar,
    sidecar_header,
)

__all__ = ["export_aoti", "export_torch", "load_aoti", "load_torch"]

OPERATOR_INPUT_NAME = "x"
OPERATOR_OUTPUT_NAME = "y"

def _check_example_shape(example_shape: Any) -> tuple[int, ...]:
    shape = tuple(example_shape) if isinstance(example_shape, Sequence) else None
    if shape is None or len(shape) < 3 or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ValueError(f"example_shape must be (batch, channels, *grid) with positive integers "
                         f"and at least one grid axis, got {example_shape!r}")
    return shape


def _operator_sidecar(module: nn.Module, fmt: str, path: Path, in_shape: tuple[int, ...],
                      out_shape: tuple[int, ...], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        **sidecar_header(module, fmt, path, "operator"),
        "inputs": [{"name": OPERATOR_INPUT_NAME, "shape": ["batch", *in_shape[1:]],
                    "dtype": "float32", "meaning": "input fields, channels first"}],
        "outputs": [{"name": OPERATOR_OUTPUT_NAME, "shape": ["batch", *out_shape[1:]],
                     "dtype": "float32", "meaning": "output fields, channels first"}],
        "dynamic_axes": {"batch": "number of independent inputs, >= 1"},
        "example_shape": list(in_shape),
        "layout": "row-major (C order), channels first",
        **extra,
    }


def _exported_program(model: nn.Module | dict[str, Any] | str | os.PathLike, fmt: str,
                      example_K: int, example_shape: Sequence[int] | None,
                      ) -> tuple[torch.export.ExportedProgram, Callable[[Path, dict], dict]]:
    """``torch.export`` of a closure (``example_shape=None``) or of an operator.

    Returns the program and ``meta(path, extra)``, the sidecar for a file at ``path``.
    """
    batch = torch.export.Dim("batch", min=1)
    if example_shape is None:
        wrapper = ClosureExportModule(model).float().cpu().eval()
        example_K = _check_example_K(example_K, wrapper.closure)
        example = torch.randn(2, example_K, dtype=torch.float32)
        dims = {0: batch, 1: torch.export.Dim("K", min=_min_K(wrapper.closure))}
        module, hint = wrapper, ("; to export an operator rather than a closure, pass "
                                 "example_shape=(batch, channels, *grid)")

        def meta(path: Path, extra: dict[str, Any]) -> dict[str, Any]:
            return _sidecar(wrapper.closure, fmt, path, example_K, extra)
    else:
        shape = _check_example_shape(example_shape)
        module = copy.deepcopy(_as_module(model)).float().cpu().eval()
        # Batch 2 at least: torch.export specialises sizes 0 and 1.
        example = torch.randn(max(2, shape[0]), *shape[1:], dtype=torch.float32)
        dims, hint = {0: batch}, ""
    try:
        with torch.no_grad():
            out_shape = tuple(module(example).shape)
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{type(module).__name__} cannot be evaluated on an example of shape "
                         f"{tuple(example.shape)}: {err}{hint}") from err
    if example_shape is not None:
        def meta(path: Path, extra: dict[str, Any]) -> dict[str, Any]:
            return _operator_sidecar(module, fmt, path, (shape[0], *example.shape[1:]),
                                     (shape[0], *out_shape[1:]), extra)
    with warnings.catch_warnings():
        # Raised inside torch.export's pytree handling (torch 2.13), not by anything here.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated",
                                category=FutureWarning)
        program = torch.export.export(module, (example,), dynamic_shapes=(dims,), strict=False)
    return program, meta


def export_torch(model: nn.Module | dict[str, Any] | str | os.PathLike,
                 path: str | os.PathLike, *, example_K: int = 36,
                 example_shape: Sequence[int] | None = None, overwrite: bool = False) -> Path:
    """Write a closure or an operator as a ``torch.export`` program (``torch.export.save``).

    Parameters
    ----------
    model : nn.Module, checkpoint dict, or path
        A closure without history or forcing channel (exported as
        :class:`ClosureExportModule`, ``X (batch, K)`` -> ``closure (batch, K)``), or, with
        ``example_shape``, any operator ``(batch, channels, *grid) -> (batch, out, *grid)``.
    path : path-like
        Output file (``.pt2`` by convention); the sidecar goes to ``<path>.json``.
    example_K : int, default 36
        Ring size of the closure's export example; ``batch`` and ``K`` stay dynamic
        (``K >= 4`` and ``>= 2 * stencil + 1``).
    example_shape : sequence of int, optional
        Input shape ``(batch, channels, *grid)`` of an operator; ``batch`` stays dynamic, the
        channels and the grid are fixed to the example's.
    overwrite : bool, default False
        Replace existing files.

    Returns
    -------
    Path
        ``path``. Load with :func:`load_torch` (``torch.export.load`` after checking that the
        archive holds no pickled payload) and call ``load_torch(path).module()(x)`` with a
        float32 tensor; the graph is the exported ATen graph, with no Python code of this
        package.

    Raises
    ------
    FileExistsError
        If ``path`` or its sidecar exists and ``overwrite`` is false.
    ValueError
        If the closure cannot be exported, ``example_K`` is too small, ``example_shape`` is
        malformed or the model cannot be evaluated on it.
    """
    program, meta = _exported_program(model, "torch_export", example_K, example_shape)
    path, sidecar = _check_targets(path, overwrite)
    program.example_inputs = None  # stored through pickle otherwise; not needed to run
    atomic_write(path, lambda tmp: torch.export.save(program, tmp))
    _write_sidecar(sidecar, meta(path, {"torch_version": torch.__version__,
                                        "load": "surrogates.coupling.load_torch(path).module()"}))
    return path


def _check_aoti() -> Callable[..., str]:
    """``torch._inductor.aoti_compile_and_package``, or a RuntimeError naming what is missing."""
    try:
        import torch._inductor
        from torch._inductor.cpp_builder import get_cpp_compiler
        compile_and_package = torch._inductor.aoti_compile_and_package
    except (ImportError, AttributeError) as err:
        raise RuntimeError(f"AOTInductor export needs torch._inductor.aoti_compile_and_package "
                           f"(torch >= 2.6); torch {torch.__version__} lacks it: {err}") from err
    try:
        get_cpp_compiler()
    except Exception as err:
        raise RuntimeError("AOTInductor export compiles C++ at export time and needs a C++ "
                           "compiler (g++ or clang++ on PATH, or torch._inductor.config.cpp.cxx); "
                           f"none was found: {err}") from err
    return compile_and_package


def export_aoti(model: nn.Module | dict[str, Any] | str | os.PathLike,
                path: str | os.PathLike, *, example_K: int = 36,
                example_shape: Sequence[int] | None = None, overwrite: bool = False) -> Path:
    """Compile a closure or an operator ahead of time with AOTInductor into a ``.pt2`` package.

    The model is exported as in :func:`export_torch`, compiled by Inductor to C++ for the CPU
    (a shared library plus weights) and packaged (``torch._inductor.aoti_compile_and_package``).

    Parameters
    ----------
    model, example_K, example_shape, overwrite
        As in :func:`export_torch`; the same axes stay dynamic.
    path : path-like
        Output file, which must end in ``.pt2`` (the package loader requires it); the sidecar
        goes to ``<path>.json``.

    Returns
    -------
    Path
        ``path``. Load with :func:`load_aoti` in Python, or
        ``torch::inductor::AOTIModelPackageLoader(path)`` in C++ (LibTorch); call with a float32
        CPU tensor. The package holds native code: load only packages you built or trust.

    Raises
    ------
    RuntimeError
        If this torch has no AOTInductor or no C++ compiler is found (compiling needs one; the
        message names what is missing).
    FileExistsError, ValueError
        As in :func:`export_torch`, or if ``path`` does not end in ``.pt2``.
    """
    if Path(path).suffix != ".pt2":
        raise ValueError(f"an AOTInductor package must end in .pt2, got {str(path)!r}")
    compile_and_package = _check_aoti()
    program, meta = _exported_program(model, "aoti", example_K, example_shape)
    path, sidecar = _check_targets(path, overwrite)

    def write(tmp: str) -> None:
        with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as folder, \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated",
                                    category=FutureWarning)  # inside torch 2.13's Inductor
            built = compile_and_package(program, package_path=os.path.join(folder, path.name))
            shutil.move(built, tmp)

    atomic_write(path, write)
    _write_sidecar(sidecar, meta(path, {"torch_version": torch.__version__, "device": "cpu",
                                        "load": "surrogates.coupling.load_aoti(path)"}))
    return path


def _pickled_members(archive: zipfile.ZipFile) -> list[str]:
    """Members of a ``torch.export`` archive that ``torch.export.load`` would unpickle."""
    found = []
    for info in archive.infolist():
        name = info.filename
        if name.endswith((".pt", ".pkl", ".pickle")) and info.file_size > 0:
            found.append(name)  # legacy state dicts and example inputs (torch.save)
        elif name.endswith(("weights_config.json", "constants_config.json")):
            config = json.loads(archive.read(name)).get("config", {})
            for fqn, payload in config.items():
                if payload.get("use_pickle") or (name.endswith("constants_config.json")
                                                 and not payload.get("path_name", "")
                                                 .startswith("tensor_")):
                    found.append(f"{name}: {fqn}")
    return found


def load_torch(path: str | os.PathLike) -> torch.export.ExportedProgram:
    """Load a program written by :func:`export_torch`, refusing any pickled payload.

    ``torch.export.load`` unpickles tensor subclasses, script objects, opaque constants and
    example inputs; this function opens the archive first and refuses it if it holds any of
    them, so that loading runs no pickled code (the graph is JSON, the weights raw bytes).

    Parameters
    ----------
    path : path-like
        A ``.pt2`` file from :func:`export_torch` (or any ``torch.export.save`` archive without
        pickled members).

    Returns
    -------
    torch.export.ExportedProgram
        Call ``program.module()(x)`` with a float32 tensor (under ``torch.no_grad()`` for
        inference).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not a ``torch.export`` archive or holds pickled members (named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no torch.export program at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = _pickled_members(archive)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path} is not a torch.export archive (not a zip file)") from err
    if pickled:
        raise ValueError(f"{path} holds pickled members, which loading would unpickle; refusing "
                         f"to load it: {', '.join(pickled[:5])}")
    return torch.export.load(path)


def load_aoti(path: str | os.PathLike) -> Callable[..., Any]:
    """Load an AOTInductor package written by :func:`export_aoti` (CPU).

    Returns ``torch._inductor.aoti_load_package(path)``: a callable taking the float32 input
    tensor and returning the output tensor. The package's compiled library is loaded into this
    process (native code: load only packages you built or trust).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    RuntimeError
        If this torch has no AOTInductor.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no AOTInductor package at {path}")
    try:
        import torch._inductor
        load_package = torch._inductor.aoti_load_package
    except (ImportError, AttributeError) as err:
        raise RuntimeError(f"loading an AOTInductor package needs "
                           f"torch._inductor.aoti_load_package; torch {torch.__version__} lacks "
                           f"it: {err}") from err
    return load_package(str(path))
