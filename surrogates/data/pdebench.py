"""PDEBench 1D HDF5 files: exact file names, atomic writing, reading into xarray, the test split.

A PDEBench 1D file (``1D_Advection_Sols_beta0.4.hdf5``, ``1D_Burgers_Sols_Nu0.001.hdf5``,
``ReacDiff_Nu0.5_Rho1.0.hdf5``) holds, at its root:

=================  ==========================  ==============================================
name               shape                       meaning
=================  ==========================  ==============================================
``tensor``         ``[N_samples, N_t, N_x]``   the solution, float32
``x-coordinate``   ``[N_x]``                   cell centres
``t-coordinate``   ``[N_t + 1]``               times; one entry more than ``tensor`` has frames
file attributes                                the PDE parameters: ``beta`` (advection), ``Nu``
                                               (Burgers), ``Nu`` and ``Rho`` (diffusion-reaction)
=================  ==========================  ==============================================

:func:`read_pdebench` turns such a file into an :class:`xarray.Dataset` following the package's
conventions (see :mod:`surrogates.data.common`):

=================  ==========================  ==============================================
variable           dims                        meaning
=================  ==========================  ==============================================
``u``              sample, time, x             ``tensor``, strided by the reduced resolutions
``beta``, ...      sample                      each file attribute that is a real number
``x``, ``time``    x / time (coordinates)      ``x-coordinate``; ``t-coordinate[:N_t]``
=================  ==========================  ==============================================

Time mapping: frame ``n`` of ``tensor`` is taken to be the state at ``t-coordinate[n]``; the last
entry of ``t-coordinate`` (which has no frame) is kept in the attribute ``t_coordinate_end``. With
``reduced_resolution_t = r`` the frames and their times are both strided the same way, so frame
``m`` of the result is ``tensor[:, m r]`` at time ``t-coordinate[m r]``.

:func:`surrogates.data.pdebench_generate.generate_pdebench` writes such files from the
package's own finite-volume solvers (:mod:`surrogates.solvers.pde1d`), one per parameter value,
with the same initial conditions in every file. PDEBench's 2D Darcy layout is read and written
by :func:`read_pdebench_darcy` and :func:`write_pdebench_darcy`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from surrogates import __version__
from surrogates.data.common import check_memory, open_hdf5, refuse_existing, write_hdf5

#: The HDF5 dataset names of a PDEBench 1D file.
TENSOR, X_COORDINATE, T_COORDINATE = "tensor", "x-coordinate", "t-coordinate"

#: Parameter attributes (in file order) and the file-name pattern of each 1D PDE.
PDEBENCH_PDES: dict[str, tuple[tuple[str, ...], str]] = {
    "advection": (("beta",), "1D_Advection_Sols_beta{beta}.hdf5"),
    "burgers": (("Nu",), "1D_Burgers_Sols_Nu{Nu}.hdf5"),
    "diffusion_reaction": (("Nu", "Rho"), "ReacDiff_Nu{Nu}_Rho{Rho}.hdf5"),
}

_ALIASES = {"diffusion-reaction": "diffusion_reaction", "reacdiff": "diffusion_reaction",
            "reaction_diffusion": "diffusion_reaction"}

#: Format tag stored in the ``format`` attribute of datasets read from PDEBench files.
PDEBENCH_FORMAT = ("PDEBench 1D HDF5 (tensor [N, N_t, N_x], x-coordinate [N_x], "
                   "t-coordinate [N_t + 1])")


def _pde_key(pde: str) -> str:
    key = _ALIASES.get(pde.lower(), pde.lower())
    if key not in PDEBENCH_PDES:
        raise ValueError(f"unknown PDEBench 1D PDE {pde!r}; known: {sorted(PDEBENCH_PDES)}")
    return key


def format_parameter(value: float) -> str:
    """A parameter as PDEBench spells it in file names: Python's float repr.

    ``0.4 -> '0.4'``, ``1 -> '1.0'``, ``2.0 -> '2.0'``, ``1e-3 -> '0.001'``. (Python writes
    values below 1e-4 with an exponent, e.g. ``'1e-05'``; PDEBench has no 1D file with such a
    parameter.)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"a PDE parameter must be a real number, got {value!r}")
    return repr(float(value))


def pdebench_file_name(pde: str, **params: float) -> str:
    """The exact PDEBench file name of a 1D PDE and its parameters.

    Parameters are named as the file attributes: ``beta`` (advection), ``Nu`` (Burgers), ``Nu``
    and ``Rho`` (diffusion-reaction); lower-case ``nu`` / ``rho`` are accepted too.

    >>> pdebench_file_name("advection", beta=0.4)
    '1D_Advection_Sols_beta0.4.hdf5'
    >>> pdebench_file_name("burgers", nu=1e-3)
    '1D_Burgers_Sols_Nu0.001.hdf5'
    >>> pdebench_file_name("diffusion_reaction", nu=0.5, rho=1)
    'ReacDiff_Nu0.5_Rho1.0.hdf5'
    """
    names, pattern = PDEBENCH_PDES[_pde_key(pde)]
    by_lower = {n.lower(): n for n in names}
    given: dict[str, float] = {}
    for key, value in params.items():
        if key.lower() not in by_lower:
            raise ValueError(f"{pde} takes the parameters {names}, got {key!r}")
        given[by_lower[key.lower()]] = value
    missing = [n for n in names if n not in given]
    if missing:
        raise ValueError(f"{pde} needs the parameters {names}; missing {missing}")
    return pattern.format(**{n: format_parameter(v) for n, v in given.items()})


def _check_layout(shape: tuple[int, ...], x: np.ndarray, t: np.ndarray) -> None:
    """Raise ValueError unless ``tensor`` of ``shape``, ``x`` and ``t`` fit PDEBench's layout."""
    if len(shape) != 3:
        raise ValueError(f"u must have shape (N_samples, N_t, N_x), got shape {shape}")
    if x.shape != (shape[2],):
        raise ValueError(f"x must have shape (N_x,) = ({shape[2]},) to match u of shape "
                         f"{shape}, got shape {x.shape}")
    if t.shape != (shape[1] + 1,):
        raise ValueError(f"t must have N_t + 1 = {shape[1] + 1} entries (PDEBench stores one "
                         f"time more than frames) for u of shape {shape}, got shape {t.shape}")


def write_pdebench(path: str | os.PathLike, u: np.ndarray, x: np.ndarray, t: np.ndarray,
                   attrs: Mapping[str, Any] | None = None, *, overwrite: bool = False) -> Path:
    """Write a PDEBench 1D file, atomically (temporary file, then rename).

    Parameters
    ----------
    path : path-like
        The target file (use :func:`pdebench_file_name` for PDEBench's names).
    u : array, shape (N_samples, N_t, N_x)
        The solutions; stored as float32 dataset ``tensor``.
    x : array, shape (N_x,)
        Cell centres; stored as ``x-coordinate`` (dtype kept).
    t : array, shape (N_t + 1,)
        Times; stored as ``t-coordinate`` (dtype kept). It has one entry more than ``u`` has
        frames, as in PDEBench (frame ``n`` is at ``t[n]``).
    attrs : mapping, optional
        File attributes, the PDE parameters (``{"beta": 0.4}``, ``{"Nu": 0.5, "Rho": 1.0}``).
    overwrite : bool
        Replace an existing file; otherwise refuse it.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the shapes do not fit together (both shapes are named).
    """
    path = refuse_existing(path, overwrite)
    u, x, t = np.asarray(u), np.asarray(x), np.asarray(t)
    _check_layout(u.shape, x, t)
    attrs = dict(attrs or {})

    return write_hdf5(path, {TENSOR: u.astype(np.float32), X_COORDINATE: x, T_COORDINATE: t},
                      attrs)


def _as_scalar(value: Any) -> float | None:
    """A file attribute as a float if it is one real number, else None."""
    arr = np.asarray(value)
    if arr.size != 1 or not (np.issubdtype(arr.dtype, np.integer)
                             or np.issubdtype(arr.dtype, np.floating)):
        return None
    return float(arr.reshape(()))


def _check_stride(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer stride, got {value!r}")


def read_pdebench(path: str | os.PathLike, *, reduced_resolution: int = 1,
                  reduced_resolution_t: int = 1,
                  chunks: Mapping[str, int] | None = None) -> xr.Dataset:
    """Read a PDEBench 1D file as a dataset ``u (sample, time, x)`` (see the module docstring).

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    reduced_resolution, reduced_resolution_t : int, default 1
        Strides in space and time, as PDEBench applies them:
        ``tensor[:, ::reduced_resolution_t, ::reduced_resolution]``, ``x-coordinate[::r]`` and
        ``t-coordinate[:N_t][::r_t]``.
    chunks : mapping, optional
        Dask chunk sizes (in the reduced grid) for lazy loading, e.g. ``{"sample": 64}``; ``{}``
        for dask's automatic chunks. The HDF5 file then stays open while the data are in use.
        ``None`` loads everything into memory and closes the file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not HDF5, lacks ``tensor`` / ``x-coordinate`` / ``t-coordinate``, or their
        shapes do not fit together.
    """
    _check_stride("reduced_resolution", reduced_resolution)
    _check_stride("reduced_resolution_t", reduced_resolution_t)
    path = Path(path)
    f = open_hdf5(path, "PDEBench file", (TENSOR, X_COORDINATE, T_COORDINATE))
    keep_open = False
    try:
        tensor, xc, tc = f[TENSOR], f[X_COORDINATE], f[T_COORDINATE]
        if tensor.ndim != 3:
            raise ValueError(f"{path}: 'tensor' must have shape [N_samples, N_t, N_x], got "
                             f"{tensor.shape}")
        n, n_t, n_x = tensor.shape
        if xc.shape != (n_x,):
            raise ValueError(f"{path}: 'x-coordinate' has shape {xc.shape}, expected ({n_x},) "
                             f"for 'tensor' of shape {tensor.shape}")
        if tc.shape != (n_t + 1,):
            raise ValueError(f"{path}: 't-coordinate' has shape {tc.shape}, expected "
                             f"({n_t + 1},) = N_t + 1 for 'tensor' of shape {tensor.shape}")
        s_t, s_x = slice(None, None, reduced_resolution_t), slice(None, None, reduced_resolution)
        if chunks is None:  # the declared shape, before a byte of it is read
            check_memory(n * -(-n_t // reduced_resolution_t) * -(-n_x // reduced_resolution)
                         * tensor.dtype.itemsize,
                         f"{path}'s 'tensor' {tensor.shape} ({tensor.dtype})",
                         "read it lazily (--stream where offered) or coarsen it "
                         "(--reduced-resolution, --reduced-resolution-t)")
        x = xc[()][s_x]
        t_all = tc[()]
        time = t_all[:n_t][s_t]
        if chunks is None:
            data = tensor[:, s_t, s_x]
        else:
            import dask.array as da

            data = da.from_array(tensor, chunks="auto")[:, s_t, s_x]
            dims = ("sample", "time", "x")
            unknown = set(chunks) - set(dims)
            if unknown:
                raise ValueError(f"chunks names unknown dims {sorted(unknown)}; use {dims}")
            if chunks:
                data = data.rechunk({dims.index(d): c for d, c in chunks.items()})
            keep_open = True
        params = {}
        for key, value in f.attrs.items():
            scalar = _as_scalar(value)
            if scalar is not None:
                params[key] = scalar
    finally:
        if not keep_open:
            f.close()

    n_out = data.shape[0]
    data_vars: dict[str, Any] = {"u": (("sample", "time", "x"), data)}
    for key, value in params.items():
        data_vars[key] = (("sample",), np.full(n_out, value))
    ds = xr.Dataset(data_vars, coords={"sample": np.arange(n_out), "time": time, "x": x})
    ds["u"].attrs = {"long_name": "solution u (PDEBench 'tensor')", "units": "1"}
    for key in params:
        ds[key].attrs = {"long_name": f"PDE parameter {key} (PDEBench file attribute)",
                         "units": "1"}
    ds["x"].attrs = {"long_name": "cell centre (PDEBench 'x-coordinate')", "units": "1"}
    ds["time"].attrs = {"long_name": "time of the frame (PDEBench 't-coordinate'[:N_t])",
                        "units": "1"}
    config = {"files": [path.name], "reduced_resolution": reduced_resolution,
              "reduced_resolution_t": reduced_resolution_t, "parameters": params}
    ds.attrs = {"Conventions": "CF-1.8", "title": f"PDEBench 1D data from {path.name}",
                "source": f"{path.name}, read by surrogates {__version__}",
                "format": PDEBENCH_FORMAT, "source_files": json.dumps([path.name]),
                "t_coordinate_end": float(t_all[-1]), "surrogates_version": __version__,
                "config": json.dumps(config, sort_keys=True)}
    return ds


def _grid_difference(a: np.ndarray, b: np.ndarray) -> str | None:
    if a.shape != b.shape:
        return f"{a.shape[0]} vs {b.shape[0]} points"
    if not np.allclose(a, b, rtol=1e-6, atol=0.0):
        return f"largest difference {np.max(np.abs(a - b)):.3g}"
    return None


def open_pdebench_files(paths: Sequence[str | os.PathLike], *, reduced_resolution: int = 1,
                        reduced_resolution_t: int = 1,
                        chunks: Mapping[str, int] | None = None) -> xr.Dataset:
    """Read several PDEBench 1D files (e.g. one per parameter value) as one dataset.

    The files are concatenated along ``sample`` in the given order; ``sample`` is renumbered
    ``0 .. N-1``, each parameter becomes a variable over samples (``beta`` per sample) and
    ``file_index`` says which file (index into the JSON list ``attrs["source_files"]``) a sample
    came from. Arguments as for :func:`read_pdebench`.

    Raises
    ------
    ValueError
        If no paths are given, or the files differ in their ``x`` or ``time`` grids (after
        reduction) or in the names of their parameters.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no PDEBench files given")
    parts = [read_pdebench(p, reduced_resolution=reduced_resolution,
                           reduced_resolution_t=reduced_resolution_t, chunks=chunks)
             for p in paths]
    first = parts[0]
    names0 = sorted(v for v in first.data_vars if v != "u")
    for path, ds in zip(paths[1:], parts[1:], strict=True):
        for dim in ("x", "time"):
            diff = _grid_difference(first[dim].values, ds[dim].values)
            if diff is not None:
                raise ValueError(f"{path} has a different {dim!r} grid from {paths[0]} ({diff}); "
                                 "only files on the same grid can be concatenated")
        names = sorted(v for v in ds.data_vars if v != "u")
        if names != names0:
            raise ValueError(f"{path} has the parameters {names}, {paths[0]} has {names0}; "
                             "only files of the same PDE can be concatenated")
    for i, ds in enumerate(parts):
        ds["file_index"] = ("sample", np.full(ds.sizes["sample"], i))
        ds["file_index"].attrs = {"long_name": "index of the source file in source_files",
                                  "units": "1"}
    out = xr.concat([ds.drop_vars("sample") for ds in parts], dim="sample",
                    data_vars="minimal", coords="minimal", compat="override",
                    combine_attrs="override")
    out = out.assign_coords(sample=np.arange(out.sizes["sample"]))
    files = [p.name for p in paths]
    config = {"files": files, "reduced_resolution": reduced_resolution,
              "reduced_resolution_t": reduced_resolution_t,
              "parameters": [json.loads(ds.attrs["config"])["parameters"] for ds in parts]}
    out.attrs = {**first.attrs, "title": f"PDEBench 1D data from {len(files)} files",
                 "source": f"{', '.join(files)}, read by surrogates {__version__}",
                 "source_files": json.dumps(files), "config": json.dumps(config, sort_keys=True)}
    return out


def pdebench_split(n_samples: int, test_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """PDEBench's train / test split: the FIRST ``int(n_samples * test_fraction)`` samples are
    the test set, all the rest the training set (no shuffling, no validation set).

    With the default 10 %, 10000 samples give test ``0 .. 999`` and train ``1000 .. 9999``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    n_test = int(n_samples * test_fraction)
    return {"train": np.arange(n_test, n_samples), "test": np.arange(n_test)}


# ----------------------------------------------------------------------------------------------
# PDEBench 2D Darcy flow files
# ----------------------------------------------------------------------------------------------

#: The HDF5 dataset names of a PDEBench 2D DarcyFlow file beyond ``tensor`` / ``x-coordinate``.
DARCY_NU, Y_COORDINATE = "nu", "y-coordinate"

#: Format tag stored in the ``format`` attribute of datasets read from PDEBench Darcy files.
PDEBENCH_DARCY_FORMAT = ("PDEBench 2D DarcyFlow HDF5 (nu [N, H, W], tensor [N, 1, H, W], "
                         "x-coordinate [W], y-coordinate [H]; attribute beta)")


def pdebench_darcy_file_name(beta: float) -> str:
    """PDEBench's name of a 2D Darcy training file for the forcing ``beta``.

    >>> pdebench_darcy_file_name(1.0)
    '2D_DarcyFlow_beta1.0_Train.hdf5'
    >>> pdebench_darcy_file_name(0.01)
    '2D_DarcyFlow_beta0.01_Train.hdf5'
    """
    return f"2D_DarcyFlow_beta{format_parameter(beta)}_Train.hdf5"


def write_pdebench_darcy(path: str | os.PathLike, a: np.ndarray, u: np.ndarray, beta: float,
                         overwrite: bool = False) -> Path:
    r"""Write Darcy samples in PDEBench's 2D DarcyFlow layout, atomically.

    PDEBench's Darcy problem is :math:`-\nabla\cdot(a\nabla u) = \beta` on the unit square with
    ``u = 0`` on the boundary. The file holds, at its root:

    * ``nu``, float32, shape ``(N, H, W)``: the coefficient ``a``;
    * ``tensor``, float32, shape ``(N, 1, H, W)``: the solution ``u`` (one "frame");
    * ``x-coordinate``, float32, shape ``(W,)`` and ``y-coordinate``, float32, shape ``(H,)``:
      the cell centres ``(i + 1/2)/W`` and ``(j + 1/2)/H``;
    * file attribute ``beta`` (float): the forcing.

    Parameters
    ----------
    path : path-like
        The target file (PDEBench's name: :func:`pdebench_darcy_file_name`).
    a, u : array, shape (N, H, W)
        Coefficients and solutions, indexed ``[sample, y, x]`` (as
        :func:`surrogates.data.darcy.generate_darcy` makes them).
    beta : float
        The forcing value.
    overwrite : bool, default False
        Replace an existing file; otherwise refuse it.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If ``a`` and ``u`` are not two equal ``(N, H, W)`` arrays, or ``beta`` is not finite.
    """
    path = refuse_existing(path, overwrite)
    a, u = np.asarray(a), np.asarray(u)
    if a.ndim != 3 or a.shape != u.shape:
        raise ValueError(f"a and u must both have shape (N, H, W), got a {a.shape} and "
                         f"u {u.shape}")
    beta = float(format_parameter(beta))
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta}")
    _, H, W = a.shape

    return write_hdf5(path, {
        DARCY_NU: a.astype(np.float32), TENSOR: u.astype(np.float32)[:, None],
        X_COORDINATE: ((np.arange(W) + 0.5) / W).astype(np.float32),
        Y_COORDINATE: ((np.arange(H) + 0.5) / H).astype(np.float32)}, {"beta": beta})


def read_pdebench_darcy(path: str | os.PathLike) -> xr.Dataset:
    """Read a PDEBench 2D DarcyFlow file as ``a (sample, y, x)`` and ``u (sample, y, x)``.

    ``nu`` becomes ``a`` and ``tensor[:, 0]`` becomes ``u`` (float32, as stored); coordinates
    ``x`` / ``y`` from ``x-coordinate`` / ``y-coordinate``; the attribute ``beta`` (and any
    other real-number file attribute) is kept in the dataset attributes.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not HDF5 or lacks / mis-shapes one of the datasets (the message names it).
    """
    path = Path(path)
    with open_hdf5(path, "PDEBench Darcy file",
                   (DARCY_NU, TENSOR, X_COORDINATE, Y_COORDINATE)) as f:
        for name in (DARCY_NU, TENSOR):  # the declared shapes, before a byte is read
            check_memory(f[name].size * f[name].dtype.itemsize,
                         f"{path}'s {name!r} {f[name].shape} ({f[name].dtype})",
                         "the file is damaged, or larger than this machine can hold")
        nu, tensor = f[DARCY_NU][()], f[TENSOR][()]
        x, y = f[X_COORDINATE][()], f[Y_COORDINATE][()]
        attrs = {k: v for k, v in ((k, _as_scalar(v)) for k, v in f.attrs.items())
                 if v is not None}
    if nu.ndim != 3 or tensor.shape != (nu.shape[0], 1, *nu.shape[1:]):
        raise ValueError(f"{path}: expected nu [N, H, W] and tensor [N, 1, H, W], got nu "
                         f"{nu.shape} and tensor {tensor.shape}")
    if x.shape != (nu.shape[2],) or y.shape != (nu.shape[1],):
        raise ValueError(f"{path}: x-coordinate {x.shape} / y-coordinate {y.shape} do not match "
                         f"nu [N, H, W] = {nu.shape}")
    ds = xr.Dataset({"a": (("sample", "y", "x"), nu), "u": (("sample", "y", "x"), tensor[:, 0])},
                    coords={"sample": np.arange(nu.shape[0]), "y": y, "x": x})
    ds["a"].attrs = {"long_name": "permeability a (PDEBench nu)", "units": "1"}
    ds["u"].attrs = {"long_name": "solution u of -div(a grad u) = beta (PDEBench tensor)",
                     "units": "1"}
    ds.attrs = {**attrs, "source_file": str(path), "format": PDEBENCH_DARCY_FORMAT}
    return ds
