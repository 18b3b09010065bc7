r"""Darcy-flow datasets: random permeabilities and the pressure they give.

Each sample is a permeability field :math:`a` on the unit square and the solution :math:`u` of
:math:`-\nabla\cdot(a\nabla u) = f`, :math:`u = 0` on the walls (constant forcing ``f``, 1 by
default), from :func:`surrogates.solvers.darcy.solve_darcy` on ``n x n`` cells. The dataset (an
:class:`xarray.Dataset`, netCDF4 on disk) has dimensions ``sample``, ``y`` and ``x``:

==================  ===============  ===========================================================
variable            dims             meaning
==================  ===============  ===========================================================
``a``               sample, y, x     permeability per cell (3/12 piecewise-constant or
                                     log-normal; see :class:`DarcyDataConfig`)
``u``               sample, y, x     solution at the cell centres
``iterations``      sample           PCG iterations the solver took
``x``, ``y``        x / y (coords)   cell centres ``(i + 1/2)/n`` in (0, 1)
==================  ===============  ===========================================================

All quantities are dimensionless (units ``"1"``). The attributes hold the provenance and the
resolved :class:`DarcyDataConfig` as JSON (``config``), as every dataset of the package.
:func:`surrogates.data.pdebench.write_pdebench_darcy` writes the same samples in PDEBench's 2D
DarcyFlow layout.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from operators.base import check_int
from surrogates.data.common import (
    check_memory,
    check_schema,
    deprecated_alias,
    open_netcdf,
    provenance_attrs,
)
from surrogates.solvers import darcy

#: Grid dimensions of the fields: operators see (batch, channels, y, x).
DARCY_SPATIAL_DIMS: tuple[str, ...] = ("y", "x")
#: Coefficient generators by name.
COEFFICIENTS = {"piecewise": darcy.piecewise_constant_coefficient,
                "lognormal": darcy.lognormal_coefficient}
DARCY_SCHEMA = {"a": ("sample", "y", "x"), "u": ("sample", "y", "x")}

_LONG_NAMES = {
    "a": "permeability (diffusion coefficient) a",
    "u": "solution u of -div(a grad u) = f, u = 0 on the boundary",
    "iterations": "multigrid-preconditioned CG iterations",
}


def _real(name: str, value, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name} must be finite{' and > 0' if positive else ''}, got {value!r}")
    return float(value)


@dataclass
class DarcyDataConfig:
    """What to generate: number of samples, grid, coefficient family, forcing, solver settings.

    Defaults follow the FNO Darcy data (Li et al. 2021): GRF(alpha = 2, tau = 3) thresholded
    to 12/3, ``f = 1``; the grid here is 64 x 64 cells.

    Attributes
    ----------
    n_samples : int, default 100
        Samples (>= 1).
    n : int, default 64
        Cells a side (>= 2; ``m * 2**k`` with ``m <= 32``, see
        :func:`surrogates.solvers.darcy.solve_darcy`).
    coefficient : {"piecewise", "lognormal"}, default "piecewise"
        12 where the Gaussian random field is >= 0 and 3 elsewhere, or ``exp`` of it.
    seed : int, default 0
        Base seed (>= 0); sample ``m`` depends only on ``(seed, m)`` and ``n``, never on the
        batching.
    f : float, default 1.0
        Constant forcing (finite; PDEBench's ``beta``).
    tol : float or None
        Relative residual of the solver; ``None`` -> 1e-10 (float64) or 1e-5 (float32).
    dtype : {"float64", "float32"}, default "float64"
        Precision of the computation and of the stored fields.
    batch_size : int, default 64
        Fields solved at once (bounds memory; results do not depend on it beyond round-off).
    alpha, tau : float, default 2, 3
        Smoothness and inverse length scale of the Gaussian random field.
    """

    n_samples: int = 100
    n: int = 64
    coefficient: str = "piecewise"
    seed: int = 0
    f: float = 1.0
    tol: float | None = None
    dtype: str = "float64"
    batch_size: int = 64
    alpha: float = 2.0
    tau: float = 3.0

    def __post_init__(self):
        self.n_samples = check_int(self.n_samples, "n_samples", 1)
        self.n = check_int(self.n, "n", 2)
        self.seed = check_int(self.seed, "seed", 0)
        self.batch_size = check_int(self.batch_size, "batch_size", 1)
        if self.coefficient not in COEFFICIENTS:
            raise ValueError(f"coefficient must be one of {sorted(COEFFICIENTS)}, got "
                             f"{self.coefficient!r}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        self.f = _real("f", self.f, positive=False)
        self.alpha = _real("alpha", self.alpha, positive=True)
        self.tau = _real("tau", self.tau, positive=True)
        if self.tol is None:
            self.tol = darcy.DEFAULT_TOL[np.dtype(self.dtype)]
        self.tol = _real("tol", self.tol, positive=True)


def generate_darcy(config: DarcyDataConfig | None = None, *, samples: range | None = None,
                   show_progress: bool = True) -> xr.Dataset:
    """Draw ``config.n_samples`` permeabilities, solve for each, return the dataset.

    ``config`` defaults to ``DarcyDataConfig()``. ``samples`` (a contiguous range of global
    sample indices, default all) generates only those: a shard (see
    :mod:`surrogates.data.shards`); sample ``m`` depends on ``(seed, m)`` alone.

    Fields are solved ``batch_size`` at a time (the last batch padded to that size, so one
    compiled shape serves all). See the module docstring for the layout.

    Raises
    ------
    ValueError
        If the grid size does not suit the solver (see
        :func:`surrogates.solvers.darcy.solve_darcy`).
    surrogates.solvers.darcy.DarcyConvergenceError
        If the solver does not converge for some field.
    """
    if config is None:
        config = DarcyDataConfig()
    if not isinstance(config, DarcyDataConfig):
        raise TypeError(f"config must be a DarcyDataConfig, got {type(config).__name__}")
    samples = range(config.n_samples) if samples is None else samples
    if samples.step != 1 or len(samples) == 0 or samples.start < 0 \
            or samples.stop > config.n_samples:
        raise ValueError(f"samples must be a non-empty contiguous range within "
                         f"[0, {config.n_samples}), got {samples}")
    make = COEFFICIENTS[config.coefficient]
    n, bs = config.n, config.batch_size
    check_memory(2 * len(samples) * n * n * np.dtype(config.dtype).itemsize
                 + 20 * bs * n * n * 8, f"{len(samples)} Darcy fields of {n} x {n} cells",
                 "lower --n-samples or --n, or write shards (--shards N) that each fit")
    first = samples.start
    a_all = np.empty((len(samples), n, n), dtype=config.dtype)
    u_all = np.empty_like(a_all)
    iterations = np.empty(len(samples), dtype=np.int64)
    starts = range(samples.start, samples.stop, bs)
    for start in tqdm(starts, desc=f"darcy ({config.coefficient}, n={n})", unit="batch",
                      disable=None if show_progress else True):
        count = min(bs, samples.stop - start)
        a = make(count, n, config.seed, alpha=config.alpha, tau=config.tau, sample_offset=start)
        padded = a if count == bs or len(starts) == 1 else np.concatenate(
            [a, np.repeat(a[-1:], bs - count, axis=0)])
        sol = darcy.solve_darcy(padded, config.f, tol=config.tol, dtype=config.dtype)
        a_all[start - first:start - first + count] = a
        u_all[start - first:start - first + count] = sol.u[:count]
        iterations[start - first:start - first + count] = sol.iterations[:count]
    x = darcy.cell_centers(n)
    ds = xr.Dataset(
        {"a": (("sample", "y", "x"), a_all), "u": (("sample", "y", "x"), u_all),
         "iterations": (("sample",), iterations)},
        coords={"sample": np.arange(samples.start, samples.stop), "y": x, "x": x})
    for name in ds.data_vars:
        ds[name].attrs = {"long_name": _LONG_NAMES[name], "units": "1"}
    ds["x"].attrs = {"long_name": "x of the cell centre", "units": "1"}
    ds["y"].attrs = {"long_name": "y of the cell centre", "units": "1"}
    ds.attrs = provenance_attrs("surrogates.solvers.darcy.solve_darcy",
                                dataclasses.asdict(config),
                                f"Darcy flow, {config.coefficient} permeability, {n} x {n} cells")
    ds.attrs["forcing"] = config.f
    return ds


def open_darcy(path: str | os.PathLike, *, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """Open a Darcy dataset written by ``surrogates generate darcy``, checking its schema."""
    ds = open_netcdf(path, chunks=chunks)
    try:
        check_schema(ds, DARCY_SCHEMA)
    except ValueError as err:
        raise ValueError(f"{path} is not a Darcy dataset: {err}") from err
    return ds


load_darcy = deprecated_alias(open_darcy, "load_darcy")
