r"""Room-acoustics datasets from the FDTD reference solver.

:func:`generate_wave_dataset` draws source positions in a rectangular room, runs
:func:`surrogates.solvers.wave.simulate` (leapfrog FDTD of :math:`p_{tt} = c^2 \nabla^2 p`,
batched over sources) from Gaussian pulses :math:`p_0 = A\exp(-|x - s|^2/(2\sigma^2))`
released at rest, and writes the fields as an acoustic netCDF dataset
(:mod:`surrogates.data.acoustics`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogates.data.acoustics import acoustic_dataset, write_acoustic
from surrogates.data.common import check_memory, provenance_attrs, refuse_existing
from surrogates.solvers.wave import Room, simulate

__all__ = ["WaveDataConfig", "generate_wave_dataset"]


@dataclass
class WaveDataConfig:
    """A dataset of wave fields over random source positions in one rectangular room.

    Defaults are small enough for a laptop CPU (2D: a 2 m x 2 m room, 41 x 41 nodes, 41 frames
    over 10 ms, 64 sources in a few seconds).

    Attributes
    ----------
    dim : {2, 3}
    size : list of float, optional
        Room side lengths (m); default 2 m per side in 2D, 1 m in 3D.
    spacing : float
        Grid spacing ``h`` (m); every side must be a whole multiple of it.
    absorption : float
        Normal-incidence absorption coefficient of all walls, in [0, 1] (0: rigid).
    n_sources : int
        Number of source positions (samples), uniform in the room inset by ``source_margin``.
    source_margin : float
        Smallest distance of a source to a wall (m).
    n_receivers : int
        Receivers drawn like the sources (the same for all samples); 0 for none.
    t_max : float, optional
        Last output time (s); default 10 ms in 2D, 5 ms in 3D.
    n_times : int
        Output frames, uniform in ``[0, t_max]``.
    pulse_width, amplitude : float
        Gaussian pulse :math:`\\sigma` (m) and :math:`A` (Pa).
    order : {2, 4}
        Spatial order of the solver.
    c, rho : float
        Speed of sound (m/s) and density (kg/m^3).
    seed : int
        Seeds the source and receiver positions.
    batch_size : int
        Sources per compiled solver call.
    dtype : {"float64", "float32"}
        Solver precision (the file stores float32 pressures).
    """

    dim: int = 2
    size: list[float] | None = None
    spacing: float = 0.05
    absorption: float = 0.1
    n_sources: int = 64
    source_margin: float = 0.4
    n_receivers: int = 4
    t_max: float | None = None
    n_times: int = 41
    pulse_width: float = 0.2
    amplitude: float = 1.0
    order: int = 4
    c: float = 343.0
    rho: float = 1.2
    seed: int = 0
    batch_size: int = 16
    dtype: str = "float64"

    def __post_init__(self):
        if self.dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {self.dim!r}")
        if self.size is None:
            self.size = [2.0] * 2 if self.dim == 2 else [1.0] * 3
        self.size = [float(v) for v in self.size]
        if len(self.size) != self.dim:
            raise ValueError(f"size needs {self.dim} side lengths, got {self.size}")
        if self.t_max is None:
            self.t_max = 0.01 if self.dim == 2 else 0.005
        if not (math.isfinite(self.t_max) and self.t_max > 0):
            raise ValueError(f"t_max must be a positive time in s, got {self.t_max!r}")
        for name in ("n_sources", "n_times", "batch_size"):
            if int(getattr(self, name)) < 1 + (name == "n_times"):
                raise ValueError(f"{name} must be at least {1 + (name == 'n_times')}, "
                                 f"got {getattr(self, name)!r}")
        if self.n_receivers < 0:
            raise ValueError(f"n_receivers must be >= 0, got {self.n_receivers}")
        if any(2 * self.source_margin >= s for s in self.size) or self.source_margin < 0:
            raise ValueError(f"source_margin {self.source_margin} m leaves no room for sources "
                             f"in a room of size {self.size} m")

    def room(self) -> Room:
        """The solver's :class:`~surrogates.solvers.wave.Room`."""
        return Room(tuple(self.size), self.spacing, absorption=self.absorption, c=self.c,
                    rho=self.rho)

    def times(self) -> np.ndarray:
        """Output times (s)."""
        return np.linspace(0.0, self.t_max, self.n_times)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sources (n_sources, d), receivers (n_receivers, d))`` in m, from ``seed``."""
        rng = np.random.default_rng(self.seed)
        lo = np.full(self.dim, self.source_margin)
        hi = np.asarray(self.size) - self.source_margin
        sources = rng.uniform(lo, hi, size=(self.n_sources, self.dim))
        receivers = rng.uniform(lo, hi, size=(self.n_receivers, self.dim))
        return sources, receivers


def generate_wave_dataset(config: WaveDataConfig, out: str | os.PathLike, *,
                          overwrite: bool = False, progress: bool | None = None) -> Path:
    """Simulate ``config`` and write the acoustic dataset to ``out`` (netCDF, atomically).

    Variables: ``pressure (sample, time, x, y[, z])`` and ``receiver_pressure (sample, time,
    receiver)`` in Pa, source and receiver coordinates in m; attributes: the room, pulse and
    solver settings (``c``, ``rho``, ``pulse_width``, ``amplitude``, ``absorption``,
    ``spacing``, ``order``, ``dt_internal``), the solver's wall time and the resolved
    configuration as JSON.

    Raises
    ------
    FileExistsError
        If ``out`` exists and ``overwrite`` is False (checked before any work).
    """
    out = refuse_existing(out, overwrite)
    if math.isfinite(config.spacing) and config.spacing > 0:  # else Room names the problem
        cells = math.prod(int(side / config.spacing) + 1 for side in config.size)
        # the stored float32 pressure, its float64 solution and the solver's batch of states
        check_memory(config.n_sources * config.n_times * cells * 12
                     + 8 * config.batch_size * cells * 8,
                     f"{config.n_sources} sources x {config.n_times} frames on {cells:.3g} grid "
                     "points", "raise --spacing, or lower --n-sources or --n-times")
    room = config.room()
    sources, receivers = config.positions()
    solution = simulate(room, sources, config.times(), pulse_width=config.pulse_width,
                        amplitude=config.amplitude, order=config.order,
                        receivers=receivers if len(receivers) else None, dtype=config.dtype,
                        batch_size=config.batch_size, progress=progress)
    attrs = {**provenance_attrs(f"surrogates.solvers.wave (FDTD, order {config.order})",
                                dataclasses.asdict(config),
                                f"{config.dim}D room acoustics: Gaussian pulses at "
                                f"{config.n_sources} source positions"),
             "c": config.c, "rho": config.rho, "pulse_width": config.pulse_width,
             "amplitude": config.amplitude, "absorption": config.absorption,
             "spacing": config.spacing, "order": config.order,
             "dt_internal": solution.dt, "solver_wall_time_s": solution.wall_time}
    ds = acoustic_dataset(solution.field.astype(np.float32), solution.times, solution.coords,
                          solution.sources, receivers=solution.receivers,
                          receiver_positions=solution.receiver_positions, attrs=attrs)
    return write_acoustic(ds, out, overwrite=overwrite)
