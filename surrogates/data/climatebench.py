r"""ClimateBench: loader, standard split and area weights (the NRMSE scores are in
:mod:`surrogates.metrics.climatebench`).

ClimateBench (Watson-Parris et al. 2022) pairs the forcers of CMIP6 experiments of NorESM2-LM
with the model's annual-mean climate response. A data folder holds, per experiment ``<exp>``:

=====================  ===========================================  =============================
file / variable        dims                                         units (as assumed here)
=====================  ===========================================  =============================
``inputs_<exp>.nc``
``CO2``                time                                         GtCO2, cumulative emissions
                                                                    since 1850
``CH4``                time                                         GtCH4 yr-1, global emissions
``SO2``, ``BC``        time, latitude, longitude                    TgX yr-1 per grid cell
``outputs_<exp>.nc``
``tas``                member, time, lat, lon                       K (anomaly to piControl)
``diurnal_temperature  member, time, lat, lon                       K (anomaly)
_range``
``pr``, ``pr90``       member, time, lat, lon                       kg m-2 s-1 on disk, mm day-1
                                                                    after loading (x 86400)
=====================  ===========================================  =============================

``time`` holds integer years (1850-2014 for ``historical``, ``hist-GHG``, ``hist-aer``;
2015-2100 for the SSPs); the real grid is 96 x 144. The inputs name their horizontal
coordinates ``latitude``/``longitude`` and the outputs ``lat``/``lon``: :func:`open_experiment`
checks that both grids agree and returns one dataset on ``(time, lat, lon)`` (``member`` for the
outputs). The units of ``CH4``, ``SO2`` and ``BC`` are those given in the ClimateBench paper's
description of the input4MIPs-derived emissions; the loader does not rescale inputs, so any
consistent unit works for the emulators, which standardise their inputs.

Standard split: train on ``ssp126, ssp370, ssp585, historical, hist-GHG, hist-aer``; test on
``ssp245``, member mean, and score the years 2080-2100 (:data:`METRIC_YEARS`).

Metrics (:func:`surrogates.metrics.climatebench.nrmse_scores`), with normalised weights
:math:`w_i \propto \cos\varphi_i` and the weighted global mean
:math:`\langle x\rangle = \sum_{ij} w_i x_{ij} / \sum_{ij} w_i`:

.. math::

    \mathrm{NRMSE}_s = \frac{\sqrt{\langle (\bar x - \bar y)^2 \rangle}}{|\langle \bar y
    \rangle|}, \qquad
    \mathrm{NRMSE}_g = \frac{\sqrt{\tfrac{1}{T}\sum_t (\langle x_t \rangle - \langle y_t
    \rangle)^2}}{|\langle \bar y \rangle|}, \qquad
    \mathrm{NRMSE}_t = \mathrm{NRMSE}_s + 5\, \mathrm{NRMSE}_g,

with :math:`x` the prediction, :math:`y` the truth and the bar a mean over the scored years.

References
----------
.. [1] D. Watson-Parris et al., "ClimateBench v1.0: A benchmark for data-driven climate
   projections", JAMES 14 (2022) e2021MS002954.
.. [2] I. M. Held et al., "Probing the fast and slow components of global warming by returning
   abruptly to preindustrial forcing", J. Climate 23 (2010) 2418-2427.
.. [3] O. Geoffroy et al., "Transient climate response in a two-layer energy-balance model.
   Part I", J. Climate 26 (2013) 1841-1857.
.. [4] G. Myhre et al., "New estimates of radiative forcing due to well mixed greenhouse
   gases", GRL 25 (1998) 2715-2718.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from surrogates.data.common import check_finite, deprecated_alias, open_netcdf

TRAIN_EXPERIMENTS: tuple[str, ...] = ("ssp126", "ssp370", "ssp585", "historical", "hist-GHG",
                                      "hist-aer")
TEST_EXPERIMENTS: tuple[str, ...] = ("ssp245",)
ALL_EXPERIMENTS: tuple[str, ...] = TRAIN_EXPERIMENTS + TEST_EXPERIMENTS
INPUT_VARIABLES: tuple[str, ...] = ("CO2", "CH4", "SO2", "BC")
MAP_INPUTS: tuple[str, ...] = ("SO2", "BC")
SCALAR_INPUTS: tuple[str, ...] = ("CO2", "CH4")
OUTPUT_VARIABLES: tuple[str, ...] = ("tas", "diurnal_temperature_range", "pr", "pr90")
PRECIPITATION: tuple[str, ...] = ("pr", "pr90")
#: Inclusive years scored by the ClimateBench metrics.
METRIC_YEARS: tuple[int, int] = (2080, 2100)
#: kg m-2 s-1 of water -> mm day-1.
SECONDS_PER_DAY = 86400.0

INPUT_UNITS = {"CO2": "GtCO2", "CH4": "GtCH4 yr-1", "SO2": "TgSO2 yr-1", "BC": "TgBC yr-1"}
OUTPUT_UNITS = {"tas": "K", "diurnal_temperature_range": "K", "pr": "mm day-1",
                "pr90": "mm day-1"}
_LONG_NAMES = {
    "CO2": "cumulative CO2 emissions since 1850", "CH4": "global CH4 emissions",
    "SO2": "SO2 emissions per grid cell", "BC": "black-carbon emissions per grid cell",
    "tas": "near-surface air temperature anomaly",
    "diurnal_temperature_range": "diurnal temperature range anomaly",
    "pr": "precipitation anomaly", "pr90": "90th percentile of daily precipitation anomaly"}


# ------------------------------------------------------------------------------------- loading
def _years(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """Replace a datetime/cftime ``time`` coordinate by integer years."""
    if "time" not in ds.dims:
        raise ValueError(f"{path} has no 'time' dimension (dims {dict(ds.sizes)})")
    time = ds["time"]
    if np.issubdtype(time.dtype, np.integer):
        return ds
    if np.issubdtype(time.dtype, np.floating):
        years = time.values
        if not np.allclose(years, np.round(years)):
            raise ValueError(f"{path}: time holds non-integer years {years[:3]}...")
        return ds.assign_coords(time=np.round(years).astype(np.int64))
    try:
        return ds.assign_coords(time=time.dt.year.values.astype(np.int64))
    except (AttributeError, TypeError) as err:
        raise ValueError(f"{path}: cannot read years from time of dtype {time.dtype}") from err


def open_experiment(data_dir: str | os.PathLike, experiment: str, *,
                    chunks: Mapping[str, int] | None = None,
                    outputs: bool = True) -> xr.Dataset:
    """Open one ClimateBench experiment (inputs and outputs) lazily as one dataset.

    Parameters
    ----------
    data_dir : path-like
        Folder with ``inputs_<experiment>.nc`` and ``outputs_<experiment>.nc``.
    experiment : str
        E.g. ``"ssp245"``.
    chunks : mapping, optional
        Dask chunks (default ``{}``: lazy, in the files' own chunks); e.g. ``{"time": 32}``.
    outputs : bool, default True
        Also open the outputs (``False`` gives the forcers only, for prediction).

    Returns
    -------
    xarray.Dataset
        ``CO2, CH4 (time)``, ``SO2, BC (time, lat, lon)`` and, with ``outputs``, ``tas,
        diurnal_temperature_range, pr, pr90 (member, time, lat, lon)`` with precipitation in
        mm day-1; ``time`` in integer years common to inputs and outputs.

    Raises
    ------
    FileNotFoundError
        If a file is missing (the path is named).
    ValueError
        If a variable is missing, its dims differ from the layout (their order may differ: it
        is normalised), or the grids of inputs and outputs disagree.
    """
    data_dir = Path(data_dir)
    chunks = {} if chunks is None else dict(chunks)
    path = data_dir / f"inputs_{experiment}.nc"
    inputs = _years(open_netcdf(path, chunks=chunks), path)
    expected = {"CO2": ("time",), "CH4": ("time",), "SO2": ("time", "latitude", "longitude"),
                "BC": ("time", "latitude", "longitude")}
    _check_dims(inputs, expected, path)
    inputs = inputs[list(INPUT_VARIABLES)].transpose("time", "latitude", "longitude")
    inputs = inputs.rename(latitude="lat", longitude="lon")
    for name in INPUT_VARIABLES:
        check_finite(inputs[name].values, repr(name), str(path))
        inputs[name].attrs.setdefault("units", INPUT_UNITS[name])
        inputs[name].attrs.setdefault("long_name", _LONG_NAMES[name])
    if not outputs:
        return inputs
    path = data_dir / f"outputs_{experiment}.nc"
    out = _years(open_netcdf(path, chunks=chunks), path)
    _check_dims(out, {v: ("member", "time", "lat", "lon") for v in OUTPUT_VARIABLES}, path)
    out = out[list(OUTPUT_VARIABLES)].transpose("member", "time", "lat", "lon")
    for axis in ("lat", "lon"):
        a, b = inputs[axis].values, out[axis].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-4):
            raise ValueError(f"experiment {experiment}: the inputs' {axis} grid ({a.size} "
                             f"points, {a[:2]}...) differs from the outputs' ({b.size} points, "
                             f"{b[:2]}...)")
    out = out.assign_coords(lat=inputs["lat"].values, lon=inputs["lon"].values)
    for name in PRECIPITATION:
        attrs = {**out[name].attrs, "units": "mm day-1"}
        out[name] = out[name] * SECONDS_PER_DAY
        out[name].attrs = attrs
    for name in OUTPUT_VARIABLES:
        out[name].attrs.setdefault("units", OUTPUT_UNITS[name])
        out[name].attrs.setdefault("long_name", _LONG_NAMES[name])
    merged = xr.merge([inputs, out], join="inner", compat="override")
    if merged.sizes["time"] == 0:
        raise ValueError(f"experiment {experiment}: inputs and outputs share no year")
    merged.attrs = {**out.attrs, "experiment": experiment}
    return merged


def _check_dims(ds: xr.Dataset, expected: Mapping[str, Sequence[str]], path: Path) -> None:
    problems = [f"missing variable {n!r}" if n not in ds.variables else
                f"{n!r} has dims {tuple(ds[n].dims)}, expected {tuple(d)}"
                for n, d in expected.items()
                if n not in ds.variables or set(ds[n].dims) != set(d)]
    if problems:
        raise ValueError(f"{path} does not have the ClimateBench layout: " + "; ".join(problems))


@dataclass
class ClimateBenchSplit:
    """The standard split: ``train`` and ``test`` map experiment name -> dataset.

    Training datasets keep their ``member`` dimension; test datasets are member means.
    """

    train: dict[str, xr.Dataset]
    test: dict[str, xr.Dataset]


def open_split(data_dir: str | os.PathLike, *,
               train: Sequence[str] = TRAIN_EXPERIMENTS, test: Sequence[str] = TEST_EXPERIMENTS,
               chunks: Mapping[str, int] | None = None) -> ClimateBenchSplit:
    """Open the standard ClimateBench split lazily (see :func:`open_experiment`).

    Raises
    ------
    ValueError
        If an experiment is in both lists.
    """
    both = set(train) & set(test)
    if both:
        raise ValueError(f"experiments {sorted(both)} are in both the training and test lists")
    return ClimateBenchSplit(
        train={e: open_experiment(data_dir, e, chunks=chunks) for e in train},
        test={e: open_experiment(data_dir, e, chunks=chunks).mean("member", keep_attrs=True)
              for e in test})


def member_mean(ds: xr.Dataset) -> xr.Dataset:
    """Mean over ``member`` if present (inputs carry no member dim and are kept as they are)."""
    return ds.mean("member", keep_attrs=True) if "member" in ds.dims else ds


# ------------------------------------------------------------------------ area weights
def lat_weights(lat) -> np.ndarray:
    r"""Area weights :math:`w_i = \cos\varphi_i / \sum_i \cos\varphi_i` of latitudes in degrees.

    Raises
    ------
    ValueError
        If a latitude lies outside [-90, 90] or all weights vanish.
    """
    lat = np.asarray(lat, dtype=float)
    if lat.ndim != 1 or np.any(np.abs(lat) > 90):
        raise ValueError(f"lat must be a 1-D array of degrees in [-90, 90], got {lat}")
    w = np.clip(np.cos(np.deg2rad(lat)), 0.0, None)
    if w.sum() <= 0:
        raise ValueError("all latitude weights are zero (only poles?)")
    return w / w.sum()


def global_mean(field, lat) -> np.ndarray:
    r"""Area-weighted global mean over the last two axes ``(lat, lon)``.

    .. math:: \langle x \rangle = \frac{1}{n_\lambda}\sum_{i,j} w_i x_{ij}
    """
    field = np.asarray(field, dtype=float)
    w = lat_weights(lat)
    if field.ndim < 2 or field.shape[-2] != w.size:
        raise ValueError(f"field of shape {field.shape} does not end in (lat, lon) with "
                         f"{w.size} latitudes")
    return np.einsum("...ij,i->...", field, w) / field.shape[-1]


load_split = deprecated_alias(open_split, "load_split")
