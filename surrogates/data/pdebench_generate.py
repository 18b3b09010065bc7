"""Generate PDEBench 1D files (advection, Burgers, diffusion-reaction) with the package's solvers.

:func:`generate_pdebench` solves one PDE of :mod:`surrogates.solvers.pde1d` for a list of
parameter values and writes one file per value in PDEBench's exact layout and naming
(:mod:`surrogates.data.pdebench`), with the same initial conditions in every file.
``surrogates generate advection | burgers | diffusion-reaction`` is its command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from operators.base import atomic_write, check_int
from surrogates import __version__
from surrogates.data.common import check_disk, check_memory, refuse_existing
from surrogates.data.pdebench import (
    T_COORDINATE,
    TENSOR,
    X_COORDINATE,
    _check_layout,
    pdebench_file_name,
)

#: The PDEs :func:`generate_pdebench` can generate, and the key of each in :data:`PDEBENCH_PDES`.
GENERATE_PDES: dict[str, str] = {"advection": "advection", "burgers": "burgers",
                                 "diffusion-reaction": "diffusion_reaction"}

#: Per PDE: PDEBench's time of the last frame and number of frames.
_PDE_TIME_DEFAULTS: dict[str, tuple[float, int]] = {
    "advection": (2.0, 201), "burgers": (2.0, 201), "diffusion-reaction": (1.0, 101)}

#: Name of the file attribute holding the resolved :class:`PDE1DGenerateConfig` as JSON.
CONFIG_ATTR = "surrogates_config"


def _float_tuple(name: str, value: Any) -> tuple[float, ...]:
    items = (value,) if isinstance(value, int | float | np.integer | np.floating) else value
    try:
        out = tuple(float(v) for v in items if not isinstance(v, bool | str))
        if len(out) != len(items):
            raise TypeError
    except TypeError:
        raise ValueError(f"{name} must be a non-empty sequence of real numbers, got "
                         f"{value!r}") from None
    if not out:
        raise ValueError(f"{name} must hold at least one value, got an empty sequence")
    bad = [v for v in out if not np.isfinite(v)]
    if bad:
        raise ValueError(f"{name} must be finite, got {bad}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} holds repeated values {list(out)}; each value gives one file")
    return out


@dataclasses.dataclass
class PDE1DGenerateConfig:
    """What :func:`generate_pdebench` generates: the PDE, its parameter values, grid and seed.

    Units are PDEBench's dimensionless ones: the domain is the periodic unit interval
    ``[0, 1)`` split into ``N`` cells, time runs from 0 to ``t_end``.

    Attributes
    ----------
    pde : {"advection", "burgers", "diffusion-reaction"}
        The equation (see :mod:`surrogates.solvers.pde1d`): ``u_t + beta u_x = 0``,
        ``u_t + (u^2/2)_x = (nu/pi) u_xx`` or ``u_t = nu u_xx + rho u (1 - u)``.
    values : tuple of float
        One file per value: ``beta`` for advection (finite, any sign), ``nu`` for Burgers
        (> 0; the diffusivity is ``nu/pi``, PDEBench's convention) and ``nu`` for
        diffusion-reaction (>= 0). A single number is accepted too.
    rho : tuple of float or None
        Diffusion-reaction only: reaction rates (>= 0); one file per ``(nu, rho)`` pair, ``nu``
        varying slowest. ``None`` means ``(1.0,)`` for diffusion-reaction; it must stay
        ``None`` for the other PDEs.
    n_samples : int, default 100
        Samples (initial conditions) per file (PDEBench: 10000).
    N : int, default 1024
        Cells (>= 8); ``x-coordinate`` holds the cell centres ``(i + 1/2)/N``.
    n_frames : int or None
        Frames stored per sample (>= 2), equally spaced from 0 to ``t_end``. ``None``:
        PDEBench's 201 (advection, Burgers) or 101 (diffusion-reaction).
    t_end : float or None
        Time of the last frame (> 0). ``None``: PDEBench's 2.0 (advection, Burgers) or 1.0
        (diffusion-reaction).
    seed : int, default 0
        Base seed of the initial conditions (>= 0). Sample ``n`` of every file uses the same
        generator (see :func:`surrogates.solvers.pde1d.random_initial_condition`), so files
        generated with one seed differ only by the parameter.
    cfl : float, default 0.4
        Courant number of the solver, in ``(0, 1]``.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the computation. The stored ``tensor`` is float32 either way (PDEBench's
        layout); ``"float64"`` removes round-off from the solution before that rounding.
    k_max, n_modes : int, default 4, 2
        Largest wavenumber and number of sine modes of the initial conditions (PDEBench's
        recipe: two modes, wavenumbers 1..4).
    absolute, sign_flip, window : bool, default True
        Apply ``|u|``, ``-u`` and a smooth box window to random samples with PDEBench's
        probabilities 0.1, 0.5 and 0.1
        (:data:`surrogates.solvers.pde1d.IC_PROBABILITIES`), as PDEBench's initial conditions
        do for all three PDEs.
    unit_interval : bool or None
        Map each initial condition onto ``[0, 1]``. ``None``: True for diffusion-reaction
        (whose solutions must stay in ``[0, 1]``), False otherwise.
    batch_size : int, default 128
        Samples integrated at once (bounds memory). For advection and diffusion-reaction the
        results do not depend on it; for Burgers the time step follows ``max|u0|`` of the batch,
        so changing it changes the solution at the level of the time-discretisation error.
    """

    pde: str
    values: tuple[float, ...]
    rho: tuple[float, ...] | None = None
    n_samples: int = 100
    N: int = 1024
    n_frames: int | None = None
    t_end: float | None = None
    seed: int = 0
    cfl: float = 0.4
    dtype: str = "float32"
    k_max: int = 4
    n_modes: int = 2
    absolute: bool = True
    sign_flip: bool = True
    window: bool = True
    unit_interval: bool | None = None
    batch_size: int = 128

    def __post_init__(self):
        pde = str(self.pde).lower().replace("_", "-")
        if pde not in GENERATE_PDES:
            raise ValueError(f"unknown pde {self.pde!r}; choose one of {sorted(GENERATE_PDES)}")
        self.pde = pde
        name = {"advection": "values (beta)", "burgers": "values (nu)",
                "diffusion-reaction": "values (nu)"}[pde]
        self.values = _float_tuple(name, self.values)
        if pde == "burgers" and min(self.values) <= 0:
            raise ValueError(f"{name} must be > 0 for Burgers, got {list(self.values)}")
        if pde == "diffusion-reaction":
            if min(self.values) < 0:
                raise ValueError(f"{name} must be >= 0, got {list(self.values)}")
            self.rho = _float_tuple("rho", (1.0,) if self.rho is None else self.rho)
            if min(self.rho) < 0:
                raise ValueError(f"rho must be >= 0, got {list(self.rho)}")
        elif self.rho is not None:
            raise ValueError(f"rho is a parameter of diffusion-reaction only, not of {pde}; "
                             "leave it unset")
        self.n_samples = check_int(self.n_samples, "n_samples", 1)
        self.N = check_int(self.N, "N", 8)
        self.seed = check_int(self.seed, "seed", 0)
        self.k_max = check_int(self.k_max, "k_max", 1)
        self.n_modes = check_int(self.n_modes, "n_modes", 1)
        self.batch_size = check_int(self.batch_size, "batch_size", 1)
        t_default, frames_default = _PDE_TIME_DEFAULTS[pde]
        self.n_frames = check_int(frames_default if self.n_frames is None else self.n_frames,
                                  "n_frames", 2)
        t_end = t_default if self.t_end is None else self.t_end
        if (isinstance(t_end, bool) or not isinstance(t_end, int | float | np.integer
                                                      | np.floating)
                or not (np.isfinite(t_end) and t_end > 0)):
            raise ValueError(f"t_end must be a finite time > 0, got {t_end!r}")
        self.t_end = float(t_end)
        if isinstance(self.cfl, bool) or not isinstance(self.cfl, int | float) or not (
                0 < self.cfl <= 1):
            raise ValueError(f"cfl must be a number in (0, 1], got {self.cfl!r}")
        self.cfl = float(self.cfl)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.unit_interval is None:
            self.unit_interval = pde == "diffusion-reaction"
        for flag in ("absolute", "sign_flip", "window", "unit_interval"):
            if not isinstance(getattr(self, flag), bool | np.bool_):
                raise ValueError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
            setattr(self, flag, bool(getattr(self, flag)))

    def parameter_sets(self) -> list[dict[str, float]]:
        """The PDE parameters of each file, named as PDEBench's attributes, in file order."""
        if self.pde == "advection":
            return [{"beta": v} for v in self.values]
        if self.pde == "burgers":
            return [{"Nu": v} for v in self.values]
        return [{"Nu": nu, "Rho": rho} for nu in self.values for rho in self.rho]

    def frame_times(self) -> np.ndarray:
        """PDEBench's ``t-coordinate``: ``n_frames + 1`` times ``k t_end / (n_frames - 1)``.

        Frame ``k`` is at entry ``k``, the last frame at ``t_end``; the extra last entry, one
        frame interval after ``t_end``, has no frame (PDEBench: 0, 0.01, ..., 2.0, 2.01).
        """
        return np.arange(self.n_frames + 1) * (self.t_end / (self.n_frames - 1))


def generate_pdebench(config: PDE1DGenerateConfig, out_dir: str | os.PathLike, *,
                      overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Solve a 1D PDE for each parameter value and write one PDEBench file per value.

    Every file ``out_dir / pdebench_file_name(pde, **params)`` (``1D_Advection_Sols_beta0.4.hdf5``,
    ``1D_Burgers_Sols_Nu0.001.hdf5``, ``ReacDiff_Nu0.5_Rho1.0.hdf5``) holds, exactly as PDEBench:

    * ``tensor``, float32, shape ``(n_samples, n_frames, N)``: the solution (cell averages of
      the finite-volume solvers of :mod:`surrogates.solvers.pde1d`), frame 0 the initial
      condition;
    * ``x-coordinate``, float32, shape ``(N,)``: cell centres ``(i + 1/2)/N`` of ``[0, 1)``;
    * ``t-coordinate``, float32, shape ``(n_frames + 1,)``: see
      :meth:`PDE1DGenerateConfig.frame_times` (frame ``k`` at entry ``k``, one extra entry);
    * file attributes ``beta`` / ``Nu`` / ``Nu`` and ``Rho`` (float), and, added by this
      package, ``surrogates_config``: the resolved configuration and the package version as a
      JSON string (ignored by :func:`read_pdebench`).

    The same ``config.seed`` gives the same initial conditions in every file: sample ``n`` of
    each file starts from the same state, so the files differ only by the parameter (and a
    multi-file set from :func:`open_pdebench_files` pairs each initial condition with every
    parameter value). Samples are integrated ``batch_size`` at a time and streamed into the file.

    Parameters
    ----------
    config : PDE1DGenerateConfig
        What to generate.
    out_dir : path-like
        Folder for the files; created if missing.
    overwrite : bool, default False
        Replace existing files. Otherwise every target file is checked *before* anything is
        computed, and an existing one is refused.
    progress : bool, default True
        Show a tqdm progress bar over the files.

    Returns
    -------
    list of Path
        The files written, in the order of ``config.values`` (diffusion-reaction: ``nu``
        slowest, then ``rho``).

    Raises
    ------
    FileExistsError
        If a target file exists and ``overwrite`` is False (nothing is written then).
    ValueError
        If ``out_dir`` is a file, or a solution becomes non-finite.

    Each file is written atomically (temporary file, then rename), so an interrupted run leaves
    the files already completed and no partial one.
    """
    from tqdm.auto import tqdm

    from surrogates.solvers import pde1d

    if not isinstance(config, PDE1DGenerateConfig):
        raise TypeError(f"config must be a PDE1DGenerateConfig, got {type(config).__name__}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} exists and is not a folder")
    key = GENERATE_PDES[config.pde]
    params = config.parameter_sets()
    paths = [out_dir / pdebench_file_name(key, **p) for p in params]
    for path in paths:  # all of them before any work
        refuse_existing(path, overwrite)

    t_coord = config.frame_times()
    t_out = t_coord[:config.n_frames]
    x = pde1d.cell_centers(config.N)
    shape = (config.n_samples, config.n_frames, config.N)
    check_disk(4 * len(paths) * config.n_samples * config.n_frames * config.N, out_dir,
               f"{len(paths)} file(s) of {config.n_samples} samples x {config.n_frames} frames x "
               f"{config.N} cells", "lower --n-samples, --n-frames or --N")
    check_memory(3 * 8 * min(config.batch_size, config.n_samples) * config.n_frames * config.N,
                 f"batches of {config.batch_size} samples", "lower --batch-size")
    _check_layout(shape, x, t_coord)
    resolved = {**dataclasses.asdict(config), "surrogates_version": __version__,
                "solver": f"surrogates.solvers.pde1d.solve_{key}"}
    ic_options = {"k_max": config.k_max, "n_modes": config.n_modes,
                  "absolute": config.absolute, "sign_flip": config.sign_flip,
                  "window": config.window, "unit_interval": config.unit_interval}
    starts = range(0, config.n_samples, config.batch_size)

    def solve_batch(start: int, p: dict[str, float]) -> np.ndarray:
        n = min(config.batch_size, config.n_samples - start)
        u0 = pde1d.random_initial_condition(n, config.N, config.seed, sample_offset=start,
                                            **ic_options)
        kw = {"cfl": config.cfl, "dtype": config.dtype}
        if key == "advection":
            sol = pde1d.solve_advection(u0, p["beta"], t_out, **kw)
        elif key == "burgers":
            sol = pde1d.solve_burgers(u0, p["Nu"], t_out, **kw)
        else:
            sol = pde1d.solve_diffusion_reaction(u0, p["Nu"], p["Rho"], t_out, **kw)
        return sol.u.astype(np.float32)

    written = []
    bar = tqdm(zip(paths, params, strict=True), total=len(paths), disable=not progress,
               desc=f"generate {config.pde}", unit="file")
    for path, p in bar:
        bar.set_postfix(p)

        def write(tmp: str, p: dict[str, float] = p) -> None:
            with h5py.File(tmp, "w") as f:
                tensor = f.create_dataset(TENSOR, shape=shape, dtype=np.float32)
                for start in starts:
                    u = solve_batch(start, p)
                    tensor[start:start + u.shape[0]] = u
                f.create_dataset(X_COORDINATE, data=x.astype(np.float32))
                f.create_dataset(T_COORDINATE, data=t_coord.astype(np.float32))
                for name, value in p.items():
                    f.attrs[name] = float(value)
                f.attrs[CONFIG_ATTR] = json.dumps(resolved, sort_keys=True)

        refuse_existing(path, overwrite)  # a file may have appeared meanwhile
        written.append(atomic_write(path, write))
    return written


