"""Reader and writer of the HDF5 layout of the DeepONet room-acoustics reference code.

As written by :func:`write_deeponet_h5` and read by :func:`read_deeponet_h5`:

=====================  =======================  ================================================
name                   shape                    meaning
=====================  =======================  ================================================
``/mesh``              ``[N_points, d]``        node coordinates (m), float64
``/conn``              ``[N_cells, k]``         cell connectivity (optional; kept if present)
``/umesh``             ``[N_sensors, d]``       branch sensor grid (m)
``/upressures``        ``[N_sensors]``          the initial pulse on the sensors (Pa)
``/pressures``         ``[N_t, N_points]``      pressure (Pa); frame ``n`` at ``t = t0 + n dt``
``/times``             ``[N_t]``                frame times (s); an extension of this package
                                                (exact times), absent from reference files
root attributes                                 ``dt`` (s), ``tmax`` (s, last frame time),
                                                ``source_position`` (``[d]``, m), and every
                                                scalar or string attribute of the dataset
                                                (``c``, ``rho``, ``fmax``, ``pulse_width``,
                                                ``amplitude`` ...); ``t0`` optional (default 0)
=====================  =======================  ================================================

The writer puts all attributes on the root group. The reader also accepts them on
``/pressures`` (root attributes win when both hold one). On a tensor grid ``/mesh`` lists the
nodes in C order of ``(x, y[, z])`` (x slowest), matching ``pressure[n].reshape(-1)``; the reader
accepts any node order (it sorts the nodes lexicographically and permutes the pressures).

Datasets read here are the acoustic datasets of :mod:`surrogates.data.acoustics`.

References
----------
.. [1] N. Borrel-Jensen, S. Goswami, A. P. Engsig-Karup, G. E. Karniadakis, C.-H. Jeong,
   "Sound propagation in realistic interactive 3D scenes with parameterized sources using
   deep neural operators", PNAS 121(2), 2024.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from surrogates.data.acoustics import (
    AXES,
    POINT_DIM,
    _layout,
    _netcdf_attr,
    acoustic_dataset,
    branch_inputs,
    check_acoustic,
    node_coordinates,
)
from surrogates.data.common import open_hdf5, refuse_existing, write_hdf5

__all__ = ["DEEPONET_H5_FORMAT", "read_deeponet_h5", "write_deeponet_h5"]

#: Format tag stored in the ``format`` attribute of datasets read from DeepONet HDF5 files.
DEEPONET_H5_FORMAT = ("DeepONet-acoustics HDF5 (mesh [N_points, d], pressures [N_t, N_points], "
                      "umesh, upressures; one file per source)")
_RESERVED_H5_ATTRS = ("dt", "tmax", "source_position", "t0")


def _h5_attr(value: Any) -> Any:
    """A value h5py can store as an attribute, or None to skip it."""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    if isinstance(value, (str, bytes, int, float, np.number, np.bool_, bool)):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind in "biuf" or arr.dtype.kind == "U":
        return arr
    return None


def write_deeponet_h5(ds: xr.Dataset, sample: int, path: str | os.PathLike, *,
                      sensor_grid: Any, pulse: Any = None, overwrite: bool = False) -> Path:
    """Write one sample of ``ds`` as a DeepONet-acoustics HDF5 file, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        Acoustic dataset (grid or ``point`` layout) with uniformly spaced times.
    sample : int
        Position along ``sample`` to write.
    path : path-like
        Target file.
    sensor_grid : array, shape (n_sensors, d)
        Branch sensor positions (m), written to ``/umesh``.
    pulse : array, shape (n_sensors,), optional
        The initial pulse at the sensors (Pa), written to ``/upressures``; default
        :func:`branch_inputs` with the dataset's ``pulse_width`` / ``amplitude``.
    overwrite : bool
        Replace an existing file; otherwise refuse.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        On a bad sample index, shapes that do not fit, fewer than two or non-uniform times.
    """
    path = refuse_existing(path, overwrite)
    check_acoustic(ds)
    axes, spatial = _layout(ds)
    n = ds.sizes["sample"]
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) \
            or not -n <= sample < n:
        raise ValueError(f"sample must be an integer index in [0, {n}), got {sample!r}")
    one = ds.isel(sample=int(sample))
    times = one["time"].values.astype(float)
    if times.size < 2:
        raise ValueError("the HDF5 layout stores a time step dt: at least 2 frames are needed")
    steps = np.diff(times)
    dt = float((times[-1] - times[0]) / (times.size - 1))
    if not np.allclose(steps, dt, rtol=1e-6, atol=0.0):
        raise ValueError(f"times must be uniformly spaced for the HDF5 layout (dt); steps range "
                         f"from {steps.min()} to {steps.max()} s")
    mesh = node_coordinates(ds)
    pressures = np.asarray(one["pressure"].transpose("time", *spatial).values)
    pressures = pressures.reshape(times.size, -1)
    sensors = np.asarray(sensor_grid, dtype=float)
    if sensors.ndim != 2 or sensors.shape[1] != len(axes):
        raise ValueError(f"sensor_grid must have shape (n_sensors, {len(axes)}), "
                         f"got {sensors.shape}")
    if pulse is None:
        pulse = branch_inputs(ds.isel(sample=[int(sample)]), "pulse", sensors=sensors)[0]
    pulse = np.asarray(pulse)
    if pulse.shape != (sensors.shape[0],):
        raise ValueError(f"pulse must have shape (n_sensors,) = ({sensors.shape[0]},) to match "
                         f"sensor_grid {sensors.shape}, got {pulse.shape}")
    source = np.array([float(one[f"source_{a}"]) for a in axes])
    attrs = {}
    for key, value in ds.attrs.items():
        if key in _RESERVED_H5_ATTRS:
            continue
        stored = _h5_attr(value)
        if stored is not None:
            attrs[key] = stored
    attrs.update(dt=dt, tmax=float(times[-1]), t0=float(times[0]), source_position=source)

    datasets = {"mesh": mesh}
    if "connectivity" in ds.variables:
        datasets["conn"] = np.asarray(ds["connectivity"].values)
    datasets.update(umesh=sensors, upressures=pulse, pressures=pressures, times=times)
    return write_hdf5(path, datasets, attrs)


def _py(value: Any) -> Any:
    """An HDF5 attribute as a plain Python / NumPy value (bytes decoded, scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return np.array([_py(v) for v in value.tolist()])
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_one(path: Path) -> dict[str, Any]:
    with open_hdf5(path, "DeepONet-acoustics HDF5 file", ("mesh", "pressures")) as f:
        attrs = {k: _py(v) for k, v in f["pressures"].attrs.items()}
        attrs.update({k: _py(v) for k, v in f.attrs.items()})  # root attributes win
        out = {"mesh": np.asarray(f["mesh"][()], dtype=float),
               "pressures": np.asarray(f["pressures"][()]), "attrs": attrs}
        for name in ("conn", "umesh", "upressures", "times"):
            out[name] = np.asarray(f[name][()]) if name in f else None
    mesh, p = out["mesh"], out["pressures"]
    if mesh.ndim != 2 or mesh.shape[1] not in (2, 3):
        raise ValueError(f"{path}: /mesh must have shape (N_points, 2 or 3), got {mesh.shape}")
    if p.ndim != 2 or p.shape[1] != mesh.shape[0]:
        raise ValueError(f"{path}: /pressures must have shape (N_t, N_points) = "
                         f"(N_t, {mesh.shape[0]}) to match /mesh {mesh.shape}, got {p.shape}")
    if "source_position" not in attrs:
        raise ValueError(f"{path} has no 'source_position' attribute (root or /pressures)")
    source = np.asarray(attrs.pop("source_position"), dtype=float).reshape(-1)
    if source.shape != (mesh.shape[1],):
        raise ValueError(f"{path}: source_position must have {mesh.shape[1]} entries, "
                         f"got {source.shape}")
    out["source"] = source
    if out["times"] is None:
        if "dt" not in attrs:
            raise ValueError(f"{path} has neither /times nor a 'dt' attribute")
        out["times"] = float(attrs.get("t0", 0.0)) + float(attrs["dt"]) * np.arange(p.shape[0])
    out["times"] = np.asarray(out["times"], dtype=float)
    if out["times"].shape != (p.shape[0],):
        raise ValueError(f"{path}: /times must have N_t = {p.shape[0]} entries, "
                         f"got {out['times'].shape}")
    if out["umesh"] is not None and out["upressures"] is not None:
        if out["upressures"].reshape(-1).shape[0] != out["umesh"].shape[0]:
            raise ValueError(f"{path}: /upressures {out['upressures'].shape} does not match "
                             f"/umesh {out['umesh'].shape}")
    return out


def _grid_order(mesh: np.ndarray) -> tuple[list[np.ndarray], np.ndarray] | None:
    """``(axes, order)`` if the points form a full tensor grid (``mesh[order]`` in C order)."""
    axes = [np.unique(mesh[:, j]) for j in range(mesh.shape[1])]
    if int(np.prod([a.size for a in axes])) != mesh.shape[0]:
        return None
    order = np.lexsort(mesh.T[::-1])  # x is the primary key: C order of (x, y[, z])
    grids = np.meshgrid(*axes, indexing="ij")
    expected = np.stack([g.reshape(-1) for g in grids], axis=1)
    return (axes, order) if np.array_equal(mesh[order], expected) else None


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all(a == b))


def read_deeponet_h5(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> xr.Dataset:
    """Read DeepONet-acoustics HDF5 files (one per source) into one dataset over ``sample``.

    Sample ``i`` is ``paths[i]`` (file names in the coordinate ``file``). All files must share
    the mesh, the times, the sensor grid and every attribute other than ``source_position``.

    If the mesh nodes form a full tensor grid (in any order), the pressures are reshaped onto
    ``(sample, time, x, y[, z])``; otherwise ``pressure`` has dims ``(sample, time, point)``
    with node coordinates ``x, y[, z]`` as coordinates over ``point`` (file order), and
    ``/conn`` becomes ``connectivity (cell, cell_vertex)``. ``/umesh`` becomes ``sensor_x, ...``
    over ``sensor`` and ``/upressures`` becomes ``branch_pressure (sample, sensor)``. The
    attributes (root, or on ``/pressures``) become dataset attributes, except
    ``source_position``, which becomes ``source_x, ...``.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file does not follow the layout or the files disagree (the file is named).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no files to read")
    parts = [_read_one(p) for p in paths]
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:], strict=True):
        for name in ("mesh", "times", "conn", "umesh"):
            if not _same(part[name], first[name]):
                raise ValueError(f"{path}: /{name} differs from that of {paths[0]}; files of "
                                 "one dataset must share mesh, times and sensors")
        if part["pressures"].shape != first["pressures"].shape:
            raise ValueError(f"{path}: /pressures has shape {part['pressures'].shape}, "
                             f"{paths[0]} has {first['pressures'].shape}")
        keys = set(part["attrs"]) | set(first["attrs"])
        differ = sorted(k for k in keys if not _same(part["attrs"].get(k), first["attrs"].get(k)))
        if differ:
            raise ValueError(f"{path}: attributes {differ} differ from those of {paths[0]}")
    mesh, times = first["mesh"], first["times"]
    d = mesh.shape[1]
    axes = AXES[:d]
    pressures = np.stack([p["pressures"] for p in parts])  # (B, n_t, n_points)
    sources = np.stack([p["source"] for p in parts])
    attrs = {k: _netcdf_attr(v) for k, v in first["attrs"].items()}
    attrs.setdefault("format", DEEPONET_H5_FORMAT)
    grid = _grid_order(mesh)
    if grid is not None:
        grid_axes, order = grid
        field = pressures[:, :, order].reshape(*pressures.shape[:2],
                                               *(a.size for a in grid_axes))
        ds = acoustic_dataset(field, times, grid_axes, sources, attrs=attrs)
    else:
        data_vars: dict[str, Any] = {
            "pressure": (("sample", "time", POINT_DIM), pressures,
                         {"units": "Pa", "long_name": "acoustic pressure"})}
        for j, a in enumerate(axes):
            data_vars[f"source_{a}"] = ("sample", sources[:, j],
                                        {"units": "m",
                                         "long_name": f"{a} coordinate of the source"})
        coordinates = {"time": ("time", times, {"units": "s", "long_name": "time"})}
        for j, a in enumerate(axes):
            coordinates[a] = (POINT_DIM, mesh[:, j],
                              {"units": "m", "long_name": f"{a} coordinate of mesh nodes"})
        ds = xr.Dataset(data_vars, coords=coordinates, attrs=attrs)
        ds.attrs.setdefault("Conventions", "CF-1.8")
    if first["conn"] is not None:
        ds["connectivity"] = (("cell", "cell_vertex"), first["conn"],
                              {"units": "1", "long_name": "node indices of each mesh cell"})
    if first["umesh"] is not None:
        umesh = np.asarray(first["umesh"], dtype=float)
        for j, a in enumerate(axes):
            ds[f"sensor_{a}"] = ("sensor", umesh[:, j],
                                 {"units": "m", "long_name": f"{a} coordinate of branch sensor"})
        if all(p["upressures"] is not None for p in parts):
            ds["branch_pressure"] = (("sample", "sensor"),
                                     np.stack([p["upressures"].reshape(-1) for p in parts]),
                                     {"units": "Pa",
                                      "long_name": "initial pressure at branch sensors"})
    return ds.assign_coords(file=("sample", [p.name for p in paths]))



