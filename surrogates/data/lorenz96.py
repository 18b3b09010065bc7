"""Climate datasets: multiscale Lorenz-96 trajectories with their exact subgrid forcing.

The dataset (an :class:`xarray.Dataset`, netCDF4 on disk) has dimensions ``sample``, ``time``,
``k`` (slow index) and ``j`` (fast index within a slow sector; ``i`` for the third tier):

========================  ========================  ==========================================
variable                  dims                      meaning
========================  ========================  ==========================================
``X``                     sample, time, k           slow variables
``Y``                     sample, time, k, j        fast variables (``store_fast``)
``Z``                     sample, time, k, j, i     third tier (``I > 0`` and ``store_fast``)
``subgrid_forcing``       sample, time, k           coupling term ``-(h c / b) sum_j Y_{j,k}``
``closure_target``        sample, time, k           RK4-step-averaged true tendency of X minus
                                                    the coarse tendency (the MNO target)
``F``, ``h``, ``b``, ...  sample                    parameters of each sample
========================  ========================  ==========================================

Time is in model time units (MTU; 1 MTU is about 5 atmospheric days).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from surrogates.data.common import (
    check_memory,
    check_schema,
    deprecated_alias,
    open_netcdf,
    provenance_attrs,
)
from surrogates.data.shards import map_over_devices
from surrogates.solvers import lorenz96

#: Grid dimension of the slow variables: operators see (batch, channels, k).
LORENZ96_SPATIAL_DIMS: tuple[str, ...] = ("k",)

_PARAMETERS = ("F", "h", "b", "c", "d", "e", "g_z")
_LONG_NAMES = {
    "X": "slow variables X_k",
    "Y": "fast variables Y_{j,k}",
    "Z": "third-tier variables Z_{i,j,k}",
    "subgrid_forcing": "subgrid forcing of X: -(h c / b) sum_j Y_{j,k}",
    "closure_target": "RK4-step-averaged tendency of X minus the coarse tendency",
    "F": "large-scale forcing", "h": "coupling strength", "b": "spatial-scale ratio",
    "c": "time-scale ratio", "d": "spatial-scale ratio of the third tier",
    "e": "time-scale ratio of the third tier", "g_z": "damping of the third tier",
}


@dataclass(frozen=True)
class Lorenz96DataConfig:
    """What to generate: system size, parameters, time grid and seed.

    Defaults: the classic two-tier system of Lorenz (1996) (K = 36, J = 10, F = 10, h = 1,
    b = c = 10) with dt = 0.005 MTU, 10 MTU of spin-up (integrated at dt / 2, see
    :func:`spin_up`), 10 MTU saved every 0.05 MTU.

    Attributes
    ----------
    F_range : (float, float) or None
        If given, each sample draws its own F uniformly from this range (seeded per sample);
        otherwise every sample uses ``F``.
    store_fast : bool
        Store Y (and Z); they are ``J`` (``J I``) times larger than X.
    batch_size : int
        Samples integrated at once (bounds memory; results do not depend on it).
    """

    n_samples: int = 32
    K: int = 36
    J: int = 10
    I: int = 0  # noqa: E741 - the name of the index in the literature
    F: float = 10.0
    F_range: tuple[float, float] | None = None
    h: float = 1.0
    b: float = 10.0
    c: float = 10.0
    d: float = 10.0
    e: float = 10.0
    g_z: float = 1.0
    dt: float = 0.005
    n_steps: int = 2000
    save_every: int = 10
    spinup_steps: int = 2000
    seed: int = 0
    dtype: str = "float64"
    store_fast: bool = True
    batch_size: int = 256

    def __post_init__(self):
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.F_range is not None:
            lo, hi = self.F_range
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"F_range must be a finite (low, high) pair, got {self.F_range}")


def sample_forcing(config: Lorenz96DataConfig, sample_indices: np.ndarray) -> np.ndarray:
    """F of each sample: constant, or drawn from ``F_range`` with a per-sample seed."""
    if config.F_range is None:
        return np.full(len(sample_indices), float(config.F))
    lo, hi = config.F_range
    return np.array([np.random.default_rng([config.seed, int(n), 1]).uniform(lo, hi)
                     for n in sample_indices])


def spin_up(state: lorenz96.Lorenz96State, params: lorenz96.Lorenz96Params,
            config: Lorenz96DataConfig) -> lorenz96.Lorenz96State:
    """Integrate ``config.spinup_steps * config.dt`` MTU from ``state`` at half the step.

    Random initial states lie far off the attractor and are stiffer than the attractor itself:
    at dt = 0.005 about 0.8 % of them diverged within the first 0.05 MTU (32 of 4096), none of
    8192 at dt <= 0.003, while on the attractor dt = 0.005 was stable for all 4096 over 2 MTU.
    So the transient runs at dt / 2 and the saved trajectory at dt.
    """
    if config.spinup_steps == 0:
        return state
    return lorenz96.solve(state, params, dt=config.dt / 2, n_steps=1,
                          spinup_steps=2 * config.spinup_steps - 1, dtype=config.dtype).final_state


def _integrate_samples(config: Lorenz96DataConfig, start: int, stop: int, show_progress: bool):
    """Trajectories and parameters of global samples ``start .. stop - 1``."""
    state = lorenz96.random_initial_state(stop - start, config.K, config.J, config.I,
                                          seed=config.seed, sample_offset=start)
    params = {p: np.full(stop - start, float(getattr(config, p))) for p in _PARAMETERS}
    params["F"] = sample_forcing(config, np.arange(start, stop))
    solver_params = lorenz96.Lorenz96Params(**params)
    state = spin_up(state, solver_params, config)
    trajectory = lorenz96.solve(state, solver_params, dt=config.dt,
                                n_steps=config.n_steps, save_every=config.save_every,
                                dtype=config.dtype, show_progress=show_progress)
    return trajectory, params


def generate_lorenz96(config: Lorenz96DataConfig = Lorenz96DataConfig(), *,
                      samples: range | None = None, show_progress: bool = True) -> xr.Dataset:
    """Integrate ``config.n_samples`` trajectories and return them as a dataset.

    Sample ``n`` depends only on ``(config.seed, n)``, never on how samples are batched,
    sharded or spread over devices: the initial state and F of sample ``n`` come from its own
    generator, and the solver integrates fixed-width lanes, so the values are identical bit
    for bit.

    Parameters
    ----------
    samples : range, optional
        Global sample indices to generate (a shard, see :mod:`surrogates.data.shards`);
        default all ``range(config.n_samples)``. The ``sample`` coordinate holds them.

    Each batch of ``config.batch_size`` samples is split over the JAX devices
    (:func:`surrogates.data.shards.map_over_devices`; one device: unchanged).
    """
    samples = range(config.n_samples) if samples is None else samples
    if samples.step != 1 or len(samples) == 0 or samples.start < 0 \
            or samples.stop > config.n_samples:
        raise ValueError(f"samples must be a non-empty contiguous range within "
                         f"[0, {config.n_samples}), got {samples}")
    frames = config.n_steps // config.save_every + 1
    fast = config.K * config.J * (1 + config.I) if config.store_fast else 0
    # X, subgrid_forcing, closure_target (k) and Y, Z; twice over (the batches and their join)
    check_memory(2 * len(samples) * frames * (3 * config.K + fast)
                 * np.dtype(config.dtype).itemsize,
                 f"{len(samples)} Lorenz-96 trajectories of {frames} frames",
                 "lower --n-samples, --n-steps or raise --save-every, or write shards "
                 "(--shards N) that each fit")
    batches = []
    starts = range(samples.start, samples.stop, config.batch_size)
    # One bar over batches when there are several, else the solver's own bar over time steps.
    several = len(starts) > 1
    for start in tqdm(starts, desc="lorenz96", unit="batch",
                      disable=None if show_progress and several else True):
        stop = min(start + config.batch_size, samples.stop)
        batches += map_over_devices(
            lambda lo, hi: _integrate_samples(config, lo, hi, show_progress and not several),
            start, stop)
    time = batches[0][0].time

    def cat(field):
        return np.concatenate([getattr(t, field) for t, _ in batches], axis=0)

    data_vars = {
        "X": (("sample", "time", "k"), cat("X")),
        "subgrid_forcing": (("sample", "time", "k"), cat("coupling")),
        "closure_target": (("sample", "time", "k"), cat("closure_target")),
    }
    if config.store_fast:
        data_vars["Y"] = (("sample", "time", "k", "j"), cat("Y"))
        if config.I > 0:
            data_vars["Z"] = (("sample", "time", "k", "j", "i"), cat("Z"))
    for p in _PARAMETERS:
        if p in ("d", "e", "g_z") and config.I == 0:
            continue
        data_vars[p] = (("sample",), np.concatenate([params[p] for _, params in batches]))
    coords = {"sample": np.arange(samples.start, samples.stop), "time": time,
              "k": np.arange(config.K), "j": np.arange(config.J)}
    if config.I > 0:
        coords["i"] = np.arange(config.I)
    ds = xr.Dataset(data_vars, coords=coords)
    for name in ds.data_vars:
        ds[name].attrs = {"long_name": _LONG_NAMES[name],
                          "units": "1 MTU-1" if name in ("subgrid_forcing", "closure_target")
                          else "1"}
    ds["time"].attrs = {"long_name": "model time after spin-up", "units": "MTU"}
    ds.attrs = provenance_attrs("surrogates.solvers.lorenz96",
                                dataclasses.asdict(config),
                                f"Lorenz-96 ({'three' if config.I else 'two'}-tier) trajectories")
    return ds


def lorenz96_schema(ds: xr.Dataset) -> dict[str, tuple[str, ...]]:
    """The variables every Lorenz-96 dataset must hold, with their dims."""
    schema = {"X": ("sample", "time", "k"), "subgrid_forcing": ("sample", "time", "k"),
              "closure_target": ("sample", "time", "k"), "F": ("sample",)}
    if "Y" in ds.variables:
        schema["Y"] = ("sample", "time", "k", "j")
    return schema


def open_lorenz96(path: str | os.PathLike, *, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """Open a Lorenz-96 dataset written by ``surrogates generate lorenz96``, checking its schema."""
    ds = open_netcdf(path, chunks=chunks)
    try:
        check_schema(ds, lorenz96_schema(ds))
    except ValueError as err:
        raise ValueError(f"{path} is not a Lorenz-96 dataset: {err}") from err
    return ds


load_lorenz96 = deprecated_alias(open_lorenz96, "load_lorenz96")
