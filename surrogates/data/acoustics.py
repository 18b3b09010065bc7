r"""Room-acoustics datasets: wave fields over source positions, the DeepONet HDF5 layout, torch.

In-memory form
--------------
:func:`acoustic_dataset` wraps a batch of simulated fields (one per source position) in an
:class:`xarray.Dataset` following the package's conventions (:mod:`surrogates.data.common`):

=====================  ================================  ========================================
variable               dims                              meaning (units)
=====================  ================================  ========================================
``pressure``           sample, time, x, y[, z]           acoustic pressure (Pa)
``source_x``, ...      sample                            source centre, one per axis (m)
``receiver_pressure``  sample, time, receiver            pressure at receivers (Pa), optional
``receiver_x``, ...    receiver                          receiver positions (m), optional
``time``, ``x``, ...   coordinates                       times (s), grid nodes (m)
=====================  ================================  ========================================

Global attributes (``c`` in m/s, ``rho`` in kg/m^3, ``pulse_width`` in m, ``amplitude`` in Pa,
``fmax`` in Hz, provenance ...) are passed through. Data read from an unstructured mesh use a
``point`` dimension instead of ``x, y[, z]``: ``pressure (sample, time, point)`` with the node
coordinates ``x, y[, z]`` as coordinate variables over ``point`` (see :func:`read_deeponet_h5`).

The DeepONet-acoustics HDF5 layout (one file per source) is read and written by
:mod:`surrogates.data.acoustics_h5`.

Torch hand-over
---------------
:func:`deeponet_torch` yields ``((branch (m,), trunk (n_pts, d + 1)), target (n_pts,))`` (the
``(input, target)`` pairs of :func:`surrogates.training.fit`) with trunk
columns :math:`(x, y[, z], t)`; branch vectors come from :func:`branch_inputs`, either the initial
Gaussian pulse :math:`p_0(x) = A \exp(-|x - s|^2 / (2 \sigma^2))` on a sensor grid, or the source
coordinates :math:`s`. :func:`trunk_grid` gives all points of a field in the order of the
pressure array's flattening, for whole-field evaluation with
:meth:`operators.deeponet.DeepONet.forward_field`.

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
import torch
import xarray as xr

from surrogates.data.common import check_schema, open_netcdf, write_netcdf
from surrogates.solvers.wave import gaussian_pulse

__all__ = ["AcousticDeepONetDataset", "acoustic_dataset", "branch_inputs", "check_acoustic",
           "deeponet_torch", "node_coordinates", "open_acoustic",
           "sensor_grid", "trunk_grid", "write_acoustic"]

AXES: tuple[str, ...] = ("x", "y", "z")
POINT_DIM = "point"


# --------------------------------------------------------------------------------------------
# Building and checking datasets
# --------------------------------------------------------------------------------------------
def _netcdf_attr(value: Any) -> Any:
    """An attribute value netCDF can store: mappings as JSON, bools as ints, sequences as arrays."""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def _increasing(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be finite and strictly increasing")
    return arr


def acoustic_dataset(field: Any, times: Any, coords: Sequence[Any], sources: Any, *,
                     receivers: Any = None, receiver_positions: Any = None,
                     attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Wrap simulated wave fields over source positions in a CF-annotated dataset.

    Parameters
    ----------
    field : array, shape (B, n_t, nx, ny[, nz])
        Pressure in Pa, one field per source.
    times : array, shape (n_t,)
        Frame times in s, strictly increasing.
    coords : sequence of 2 or 3 arrays
        Node coordinates per axis in m, each 1D and strictly increasing, lengths ``nx, ny[, nz]``.
    sources : array, shape (B, d)
        Source centres in m.
    receivers : array, shape (B, n_t, R), optional
        Pressure time series at ``R`` receivers (Pa); needs ``receiver_positions``.
    receiver_positions : array, shape (R, d), optional
        Receiver positions in m.
    attrs : mapping, optional
        Global attributes (``c``, ``rho``, ``pulse_width``, ``amplitude``, provenance ...);
        mappings are stored as JSON strings, bools as integers, sequences as arrays.

    Returns
    -------
    xarray.Dataset
        See the module docstring for the variables.

    Raises
    ------
    ValueError
        If the shapes do not fit together (both shapes are named) or coordinates are not
        strictly increasing.
    """
    if isinstance(coords, np.ndarray) or not isinstance(coords, Sequence) \
            or len(coords) not in (2, 3):
        raise ValueError("coords must be a sequence of 2 or 3 1D node-coordinate arrays "
                         "(x, y[, z])")
    d = len(coords)
    axes = AXES[:d]
    coords = [_increasing(c, f"coords[{j}] ({axes[j]})") for j, c in enumerate(coords)]
    times = _increasing(times, "times")
    field = np.asarray(field)
    expected = (len(times), *(len(c) for c in coords))
    if field.ndim != 2 + d or field.shape[1:] != expected:
        raise ValueError(f"field must have shape (B, n_t, {', '.join('n' + a for a in axes)}) = "
                         f"(B, {', '.join(map(str, expected))}) to match times and coords, "
                         f"got {field.shape}")
    n = field.shape[0]
    sources = np.asarray(sources, dtype=float)
    if sources.shape != (n, d):
        raise ValueError(f"sources must have shape (B, d) = ({n}, {d}), got {sources.shape}")
    data_vars: dict[str, Any] = {
        "pressure": (("sample", "time", *axes), field,
                     {"units": "Pa", "long_name": "acoustic pressure"}),
    }
    for j, a in enumerate(axes):
        data_vars[f"source_{a}"] = ("sample", sources[:, j],
                                    {"units": "m", "long_name": f"{a} coordinate of the source"})
    if (receivers is None) != (receiver_positions is None):
        raise ValueError("receivers and receiver_positions must be given together")
    if receivers is not None:
        positions = np.asarray(receiver_positions, dtype=float)
        if positions.ndim != 2 or positions.shape[1] != d:
            raise ValueError(f"receiver_positions must have shape (R, {d}), got {positions.shape}")
        receivers = np.asarray(receivers)
        r_expected = (n, len(times), positions.shape[0])
        if receivers.shape != r_expected:
            raise ValueError(f"receivers must have shape (B, n_t, R) = {r_expected}, "
                             f"got {receivers.shape}")
        data_vars["receiver_pressure"] = (("sample", "time", "receiver"), receivers,
                                          {"units": "Pa", "long_name": "pressure at receivers"})
        for j, a in enumerate(axes):
            data_vars[f"receiver_{a}"] = ("receiver", positions[:, j],
                                          {"units": "m",
                                           "long_name": f"{a} coordinate of the receiver"})
    coordinates = {"time": ("time", times, {"units": "s", "long_name": "time"})}
    for a, c in zip(axes, coords, strict=True):
        coordinates[a] = (a, c, {"units": "m", "long_name": f"{a} coordinate of grid nodes"})
    ds = xr.Dataset(data_vars, coords=coordinates)
    ds.attrs = {k: _netcdf_attr(v) for k, v in (attrs or {}).items() if v is not None}
    ds.attrs.setdefault("Conventions", "CF-1.8")
    return ds


def _layout(ds: xr.Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(axes, spatial dims)`` of an acoustic dataset: e.g. ``(("x","y"), ("x","y"))`` on a grid,
    ``(("x","y"), ("point",))`` on a mesh."""
    if "pressure" not in ds.variables:
        raise ValueError(f"not an acoustic dataset: no 'pressure' variable (has "
                         f"{sorted(ds.variables)})")
    dims = tuple(ds["pressure"].dims)
    spatial = tuple(d for d in dims if d not in ("sample", "time"))
    if spatial == (POINT_DIM,):
        axes = tuple(a for a in AXES if a in ds.variables and ds[a].dims == (POINT_DIM,))
    else:
        axes = spatial
    if axes not in (AXES[:2], AXES[:3]):
        raise ValueError(f"pressure must have dims (sample, time, x, y[, z]) or (sample, time, "
                         f"point) with x, y[, z] over point; got {dims}")
    return axes, spatial


def check_acoustic(ds: xr.Dataset) -> None:
    """Check that ``ds`` follows the acoustic schema (module docstring), with units everywhere.

    Raises
    ------
    ValueError
        Naming every missing or misshapen variable and every variable without ``units``.
    """
    axes, spatial = _layout(ds)
    schema: dict[str, tuple[str, ...]] = {"pressure": ("sample", "time", *spatial),
                                          "time": ("time",)}
    for a in axes:
        schema[f"source_{a}"] = ("sample",)
        schema[a] = (a,) if spatial != (POINT_DIM,) else (POINT_DIM,)
    if "receiver_pressure" in ds.variables:
        schema["receiver_pressure"] = ("sample", "time", "receiver")
        for a in axes:
            schema[f"receiver_{a}"] = ("receiver",)
    check_schema(ds, schema)
    no_units = [name for name in ("time", *axes) if "units" not in ds[name].attrs]
    if no_units:
        raise ValueError(f"dataset does not match the expected schema: coordinates {no_units} "
                         "have no 'units' attribute")


def write_acoustic(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check ``ds`` (:func:`check_acoustic`) and write it as compressed netCDF4, atomically.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    check_acoustic(ds)
    return write_netcdf(ds, path, overwrite=overwrite)


def open_acoustic(path: str | os.PathLike, *, chunks: Mapping[str, int] | None = None
                  ) -> xr.Dataset:
    """Open a dataset written by :func:`write_acoustic` (lazily with ``chunks``) and check it."""
    ds = open_netcdf(path, chunks=chunks)
    check_acoustic(ds)
    return ds


# --------------------------------------------------------------------------------------------
# Nodes, sensors and branch inputs
# --------------------------------------------------------------------------------------------
def node_coordinates(ds: xr.Dataset) -> np.ndarray:
    """Node coordinates ``(n_nodes, d)`` in m, in the order of ``pressure[s, n].reshape(-1)``
    (C order of ``x, y[, z]`` on a grid: x slowest; the ``point`` order on a mesh)."""
    axes, spatial = _layout(ds)
    if spatial == (POINT_DIM,):
        return np.stack([ds[a].values for a in axes], axis=1)
    grids = np.meshgrid(*[ds[a].values for a in axes], indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


def trunk_grid(ds: xr.Dataset) -> np.ndarray:
    """All trunk points ``(n_t * n_nodes, d + 1)``, columns ``(x, y[, z], t)`` in m and s.

    Row ``i`` is the point of ``pressure.isel(sample=s).transpose("time", ...).values
    .reshape(-1)[i]``: time is the slowest index, then the nodes as in
    :func:`node_coordinates`.
    """
    nodes = node_coordinates(ds)
    times = ds["time"].values.astype(float)
    n_t, n_nodes = len(times), nodes.shape[0]
    return np.concatenate([np.tile(nodes, (n_t, 1)),
                           np.repeat(times, n_nodes)[:, None]], axis=1)


def sensor_grid(room_size: Sequence[float], n_per_axis: int | Sequence[int], *,
                origin: Sequence[float] | None = None) -> np.ndarray:
    """Coarse uniform grid of branch sensors in a box room, ``(prod(n), d)`` in m.

    Along axis ``j`` the sensors sit at ``origin_j + linspace(0, L_j, n_j)`` (walls included;
    a single sensor sits at the centre ``origin_j + L_j / 2``); points are listed in C order
    (x slowest).

    Parameters
    ----------
    room_size : sequence of float
        Side lengths ``L_j`` in m (2 or 3 of them).
    n_per_axis : int or sequence of int
        Sensors per axis (one number for all axes).
    origin : sequence of float, optional
        Lower corner of the room (default 0).
    """
    size = np.asarray(room_size, dtype=float)
    if size.ndim != 1 or size.size not in (1, 2, 3) or np.any(~np.isfinite(size)) \
            or np.any(size <= 0):
        raise ValueError(f"room_size must hold 1 to 3 positive lengths, got {room_size!r}")
    d = size.size
    counts = [n_per_axis] * d if np.isscalar(n_per_axis) else list(n_per_axis)
    if len(counts) != d or any(isinstance(c, bool) or int(c) != c or c < 1 for c in counts):
        raise ValueError(f"n_per_axis must be a positive integer or {d} of them, "
                         f"got {n_per_axis!r}")
    lower = np.zeros(d) if origin is None else np.asarray(origin, dtype=float)
    if lower.shape != (d,):
        raise ValueError(f"origin must have {d} entries, got shape {lower.shape}")
    axes = [lower[j] + (np.linspace(0.0, size[j], int(c)) if c > 1 else np.array([size[j] / 2]))
            for j, c in enumerate(counts)]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


def _sources(ds: xr.Dataset) -> np.ndarray:
    axes, _ = _layout(ds)
    missing = [f"source_{a}" for a in axes if f"source_{a}" not in ds.variables]
    if missing:
        raise ValueError(f"dataset has no source coordinates {missing}")
    return np.stack([ds[f"source_{a}"].values for a in axes], axis=1).astype(float)


def branch_inputs(ds: xr.Dataset, kind: str = "pulse", *, sensors: Any = None,
                  pulse_width: float | None = None, amplitude: float | None = None
                  ) -> np.ndarray:
    r"""Branch vectors ``(n_samples, m)`` for a DeepONet.

    Parameters
    ----------
    ds : xarray.Dataset
        Acoustic dataset.
    kind : {"pulse", "coordinates"}
        ``"coordinates"``: the source centre, ``m = d`` values in m. ``"pulse"``: the initial
        pulse :math:`A \exp(-|x_i - s|^2 / (2\sigma^2))` at the sensors :math:`x_i`
        (:func:`gaussian_pulse`), ``m = n_sensors`` values in Pa.
    sensors : array, shape (n_sensors, d), optional
        Sensor positions (:func:`sensor_grid`). If omitted, the dataset's ``sensor_x, ...``
        (from ``/umesh``) are used; and if moreover ``pulse_width`` and ``amplitude`` are
        omitted and the dataset holds ``branch_pressure`` (from ``/upressures``), that stored
        branch input is returned as it is.
    pulse_width, amplitude : float, optional
        :math:`\sigma` (m) and :math:`A` (Pa); default the dataset attributes ``pulse_width``
        and ``amplitude`` (amplitude 1 Pa if absent).

    Raises
    ------
    ValueError
        For an unknown ``kind``, no sensors, or no pulse width.
    """
    if kind == "coordinates":
        return _sources(ds)
    if kind != "pulse":
        raise ValueError(f"kind must be 'pulse' or 'coordinates', got {kind!r}")
    axes, _ = _layout(ds)
    if sensors is None:
        if pulse_width is None and amplitude is None and "branch_pressure" in ds.variables:
            return np.asarray(ds["branch_pressure"].transpose("sample", "sensor").values,
                              dtype=float)
        if not all(f"sensor_{a}" in ds.variables for a in axes):
            raise ValueError("pulse branch inputs need sensor positions: pass sensors= "
                             "(see sensor_grid) or use a dataset with sensor_x, ...")
        sensors = np.stack([ds[f"sensor_{a}"].values for a in axes], axis=1)
    sensors = np.asarray(sensors, dtype=float)
    if sensors.ndim != 2 or sensors.shape[1] != len(axes):
        raise ValueError(f"sensors must have shape (n_sensors, {len(axes)}), "
                         f"got {sensors.shape}")
    if pulse_width is None:
        if "pulse_width" not in ds.attrs:
            raise ValueError("pulse branch inputs need the pulse width: pass pulse_width= or "
                             "set the dataset attribute 'pulse_width' (m)")
        pulse_width = float(ds.attrs["pulse_width"])
    if amplitude is None:
        amplitude = float(ds.attrs.get("amplitude", 1.0))
    return np.stack([gaussian_pulse(sensors, s, pulse_width, amplitude) for s in _sources(ds)])


# --------------------------------------------------------------------------------------------
# Torch hand-over
# --------------------------------------------------------------------------------------------
class AcousticDeepONetDataset(torch.utils.data.Dataset):
    """DeepONet examples ``((branch (m,), trunk (n_pts, d + 1)), target (n_pts,))``, one per source.

    Built by :func:`deeponet_torch`. Trunk columns are ``(x, y[, z], t)`` in m and s; targets
    are pressures in Pa. With ``points_per_sample = None`` an item holds the whole field, in the
    order of :meth:`trunk_grid` (for whole fields prefer
    :meth:`operators.deeponet.DeepONet.forward_field` with :meth:`trunk_grid`, which does not
    repeat the points per source). Otherwise ``points_per_sample`` space-time points are drawn
    uniformly *with replacement* for each item, from a generator seeded by
    ``(seed, epoch, index)``: the draw is reproducible, independent of data-loader workers, and
    changes with :meth:`set_epoch`.

    Attributes
    ----------
    branch : torch.Tensor
        ``(n_samples, m)``.
    pressure : torch.Tensor
        ``(n_samples, n_t * n_nodes)``, flattened with time slowest.
    nodes, times : torch.Tensor
        ``(n_nodes, d)`` node coordinates and ``(n_t,)`` times.
    samples : numpy.ndarray
        Positions along the source dataset's ``sample`` dimension.
    """

    def __init__(self, branch: torch.Tensor, pressure: torch.Tensor, nodes: torch.Tensor,
                 times: torch.Tensor, samples: np.ndarray, *, points_per_sample: int | None,
                 seed: int = 0) -> None:
        if branch.shape[0] != pressure.shape[0] or pressure.shape[1] != \
                times.shape[0] * nodes.shape[0]:
            raise ValueError(f"branch {tuple(branch.shape)}, pressure {tuple(pressure.shape)}, "
                             f"nodes {tuple(nodes.shape)} and times {tuple(times.shape)} do not "
                             "fit (pressure must be (n_samples, n_t * n_nodes))")
        self.branch, self.pressure, self.nodes, self.times = branch, pressure, nodes, times
        self.samples = samples
        self.points_per_sample = points_per_sample
        self.seed = int(seed)
        self.epoch = 0
        self._grid: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.branch.shape[0]

    def set_epoch(self, epoch: int) -> None:
        """Draw new random points from now on (call once per epoch)."""
        self.epoch = int(epoch)

    def trunk_grid(self) -> torch.Tensor:
        """All ``(n_t * n_nodes, d + 1)`` trunk points, in the order of :attr:`pressure`'s rows."""
        if self._grid is None:
            n_t, n_nodes = self.times.shape[0], self.nodes.shape[0]
            self._grid = torch.cat([self.nodes.repeat(n_t, 1),
                                    self.times.repeat_interleave(n_nodes)[:, None]], dim=1)
        return self._grid

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        index = index % n
        if self.points_per_sample is None:
            return (self.branch[index], self.trunk_grid()), self.pressure[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        flat = torch.from_numpy(rng.integers(0, self.pressure.shape[1],
                                             size=self.points_per_sample))
        n_nodes = self.nodes.shape[0]
        trunk = torch.cat([self.nodes[flat % n_nodes], self.times[flat // n_nodes][:, None]],
                          dim=1)
        return (self.branch[index], trunk), self.pressure[index, flat]


def deeponet_torch(ds: xr.Dataset, samples: Sequence[int] | np.ndarray | None = None, *,
                   branch: str = "pulse", points_per_sample: int | None = None, seed: int = 0,
                   sensors: Any = None, pulse_width: float | None = None,
                   amplitude: float | None = None,
                   dtype: torch.dtype = torch.float32) -> AcousticDeepONetDataset:
    """Hand an acoustic dataset over to a DeepONet as a torch ``Dataset``.

    Parameters
    ----------
    ds : xarray.Dataset
        Acoustic dataset (grid or ``point`` layout).
    samples : sequence of int, optional
        Positions along ``sample`` to use (one split; call once per split); default all.
    branch : {"pulse", "coordinates"}
        Branch input kind, see :func:`branch_inputs` (``sensors``, ``pulse_width`` and
        ``amplitude`` are passed on).
    points_per_sample : int, optional
        Random space-time points per item (with replacement, seeded); ``None``: the whole field.
    seed : int
        Seed of the point draws.
    dtype : torch.dtype
        Floating type of all tensors (no normalisation is applied: rescale inside the model,
        e.g. ``DeepONet(trunk_lower=..., trunk_upper=...)``).

    Returns
    -------
    AcousticDeepONetDataset
        Items ``((branch (m,), trunk (n_pts, d + 1)), target (n_pts,))``.
    """
    if points_per_sample is not None and (isinstance(points_per_sample, bool)
                                          or not isinstance(points_per_sample, (int, np.integer))
                                          or points_per_sample < 1):
        raise ValueError(f"points_per_sample must be a positive integer or None, "
                         f"got {points_per_sample!r}")
    _, spatial = _layout(ds)
    n = ds.sizes["sample"]
    idx = np.arange(n) if samples is None else np.asarray(samples, dtype=int).reshape(-1)
    if idx.size == 0 or np.any(idx < -n) or np.any(idx >= n):
        raise ValueError(f"samples must be non-empty positions in [0, {n}), got {samples!r}")
    sub = ds.isel(sample=idx)
    b = branch_inputs(sub, branch, sensors=sensors, pulse_width=pulse_width, amplitude=amplitude)
    p = np.asarray(sub["pressure"].transpose("sample", "time", *spatial).values)
    p = p.reshape(p.shape[0], -1)
    return AcousticDeepONetDataset(
        torch.as_tensor(b, dtype=dtype), torch.as_tensor(p, dtype=dtype),
        torch.as_tensor(node_coordinates(ds), dtype=dtype),
        torch.as_tensor(ds["time"].values.astype(float), dtype=dtype), idx,
        points_per_sample=None if points_per_sample is None else int(points_per_sample),
        seed=seed)
