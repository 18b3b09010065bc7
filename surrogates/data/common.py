"""The shared dataset layer: schema checks, atomic netCDF I/O, splits and the torch hand-over.

Every gridded dataset of the package is an :class:`xarray.Dataset` with named dimensions
(``sample``, ``time``, spatial dims), PDE parameters as variables over ``sample``, CF-style
``units`` / ``long_name`` on every variable, and provenance in ``attrs`` (solver, package version,
generating configuration as JSON). The problem-family modules (:mod:`surrogates.data.lorenz96`, ...)
build such datasets; this module holds what they share.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators.base import acquire_lock, atomic_write, held_locks, lock_path, release_lock
from operators.normalization import Normalizer
from surrogates import __version__

#: Dimensions that index independent examples; every other dimension of a field is spatial.
EXAMPLE_DIMS: tuple[str, ...] = ("sample", "time")


def provenance_attrs(solver: str, config: Mapping[str, Any], title: str) -> dict[str, str]:
    """Global attributes recording how a dataset was made (CF ``Conventions`` included).

    No time stamp is stored, so that the same configuration always gives the same bytes.
    """
    return {
        "Conventions": "CF-1.8",
        "title": title,
        "source": f"surrogates {__version__}, solver {solver}",
        "solver": solver,
        "surrogates_version": __version__,
        "config": json.dumps(dict(config), sort_keys=True),
    }


#: The largest JSON text read from a file or an attribute (bytes): configurations are a few
#: kilobytes, so anything this large is a damaged or hostile file, refused before parsing.
MAX_JSON_BYTES = 16 * 2**20


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads(text)`` with one-line errors naming ``what``; text over
    :data:`MAX_JSON_BYTES` is refused unparsed.

    Raises
    ------
    ValueError
        If the text is too large or not valid JSON.
    """
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"{what} is too large to be a configuration ({len(text) / 2**20:.0f} MiB "
                         f"> {MAX_JSON_BYTES // 2**20} MiB); the file is damaged or not written "
                         "by surrogates")
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} is not valid JSON ({err}); the file is damaged or not "
                         "written by surrogates") from err


def dataset_config(ds: xr.Dataset) -> dict[str, Any]:
    """The generating configuration stored by :func:`provenance_attrs`.

    Raises
    ------
    ValueError
        If the ``config`` attribute is missing, too large, not JSON or not a JSON object.
    """
    if "config" not in ds.attrs:
        raise ValueError("dataset has no 'config' attribute: it was not written by surrogates")
    config = parse_json(ds.attrs["config"], "the dataset's config attribute")
    if not isinstance(config, dict):
        raise ValueError(f"the dataset's config attribute must be a JSON object, got "
                         f"{type(config).__name__}; the file is damaged or not written by "
                         "surrogates")
    return config


def format_bytes(n: float) -> str:
    """``1.5e9`` -> ``"1.4 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def available_memory() -> int:
    """Bytes of memory this process may still use: ``MemAvailable`` of ``/proc/meminfo``
    (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2**63


def check_memory(n_bytes: float, what: str, hint: str) -> None:
    """Refuse, before allocating anything, work whose arrays would need more than the memory
    available (:func:`available_memory`).

    Parameters
    ----------
    n_bytes : float
        What the arrays would take.
    what : str
        What they are, e.g. ``"10^12 Lorenz-96 trajectories"``.
    hint : str
        What to do instead, e.g. ``"lower --n-samples or write shards with --shards N"``.

    Raises
    ------
    ValueError
        Naming the memory needed and available.
    """
    available = available_memory()
    if n_bytes > available:
        raise ValueError(f"{what} would need {format_bytes(n_bytes)} of memory, more than the "
                         f"{format_bytes(available)} available; {hint}")


def check_disk(n_bytes: float, folder: str | os.PathLike, what: str, hint: str) -> None:
    """Refuse, before writing anything, files that would need more than the free disk space
    of ``folder`` (or of its nearest existing parent).

    Raises
    ------
    ValueError
        Naming the space needed and free.
    """
    import shutil

    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if n_bytes > free:
        raise ValueError(f"{what} would need {format_bytes(n_bytes)} of disk space, more than the "
                         f"{format_bytes(free)} free in {folder}; {hint}")


def check_finite(values: Any, name: str, what: str = "the data") -> None:
    """Raise ValueError if ``values`` (array-like) holds NaN or infinite numbers."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} in {what} holds {bad} non-finite value(s) (NaN or inf); "
                         "fix or drop those samples first")


def load_npz(path: str | os.PathLike, what: str = "saved arrays") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False``, with one-line errors.

    Raises
    ------
    FileNotFoundError
        If there is no file (a folder in its place is named as such).
    ValueError
        If the file is damaged (not a complete ``.npz``) or holds pickled Python objects,
        which are never loaded.
    """
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a directory, not {what}; restore the file or "
                                "retrain the run")
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{path} is damaged (not a complete .npz file: {err}); restore it or "
                         "retrain the run") from err
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ValueError(f"{path} holds pickled Python objects (object arrays), which are "
                             "never loaded; it was not written by surrogates") from err
        raise ValueError(f"{path} is damaged ({err}); restore it or retrain the run") from err


def check_schema(ds: xr.Dataset, variables: Mapping[str, Sequence[str]]) -> None:
    """Check that ``ds`` holds each named variable with exactly the given dimensions.

    Raises
    ------
    ValueError
        Naming every missing variable and every variable whose dimensions differ.
    """
    problems = []
    for name, dims in variables.items():
        if name not in ds.variables:
            problems.append(f"missing variable {name!r} (expected dims {tuple(dims)})")
        elif tuple(ds[name].dims) != tuple(dims):
            problems.append(f"variable {name!r} has dims {tuple(ds[name].dims)}, "
                            f"expected {tuple(dims)}")
    for name, var in ds.data_vars.items():
        if "units" not in var.attrs:
            problems.append(f"variable {name!r} has no 'units' attribute")
    if problems:
        raise ValueError("dataset does not match the expected schema: " + "; ".join(problems))


def _encoding(ds: xr.Dataset, complevel: int) -> dict[str, dict[str, Any]]:
    return {name: {"zlib": True, "complevel": complevel}
            for name, var in ds.variables.items() if np.issubdtype(var.dtype, np.number)}


def refuse_existing(path: str | os.PathLike, overwrite: bool, *, lock: bool = False) -> Path:
    """Return ``path`` as a Path; raise FileExistsError if it exists and ``overwrite`` is False.

    With ``lock``, also take the output's lock (:func:`operators.base.acquire_lock`, held
    until the command ends): a command that checks its output before long work calls this
    first, so that a second command writing the same output is refused up front."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; refusing to overwrite it "
                              "(pass overwrite=True, or --overwrite on the command line)")
    if lock:
        acquire_lock(path)
    return path


@contextlib.contextmanager
def output_lock(path: str | os.PathLike):
    """Hold the lock of output ``path`` (a file or a folder) for the ``with`` block; a lock
    this process held already stays held.

    Raises
    ------
    operators.base.LockedError
        If another live process holds it.
    """
    held = lock_path(path) in held_locks()
    acquire_lock(path)
    try:
        yield Path(path)
    finally:
        if not held:
            release_lock(path)


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file, then rename)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2)))


def open_hdf5(path: str | os.PathLike, what: str, required: Sequence[str]):
    """Open an HDF5 file for reading and check it holds the datasets ``required``.

    ``what`` names the format in the messages (e.g. ``"PDEBench file"``). The caller closes the
    returned ``h5py.File`` (use it in a ``with`` block).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If it is not readable HDF5, or lacks one of ``required`` (the names it has are listed).
    """
    import h5py

    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a directory, not {what}; give the file itself")
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err})") from err
    missing = [name for name in required if not isinstance(f.get(name), h5py.Dataset)]
    if missing:
        have = sorted(f.keys())
        f.close()
        raise ValueError(f"{path} is not a {what}: it lacks the datasets {missing} (it holds "
                         f"{have})")
    return f


def write_hdf5(path: Path, datasets: Mapping[str, Any],
               attrs: Mapping[str, Any] | None = None) -> Path:
    """Write ``datasets`` (name -> array) and the file attributes ``attrs`` to a new HDF5 file,
    atomically (a temporary file renamed into place; see :func:`operators.base.atomic_write`).
    Check that ``path`` may be written (:func:`refuse_existing`) before calling."""
    import h5py

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            for name, data in datasets.items():
                f.create_dataset(name, data=data)
            for key, value in (attrs or {}).items():
                f.attrs[key] = value

    return atomic_write(path, write)


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False,
                 complevel: int = 4) -> Path:
    """Write ``ds`` as compressed netCDF4, atomically.

    The data go to a temporary file in the target folder which is renamed onto ``path`` only when
    complete, so an interrupted write never leaves a partial file under the final name.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = refuse_existing(path, overwrite)
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4",
                                                       encoding=_encoding(ds, complevel)))


def open_netcdf(path: str | os.PathLike, *, chunks: Mapping[str, int] | None = None,
                schema: Mapping[str, Sequence[str]] | None = None) -> xr.Dataset:
    """Open a netCDF dataset written by this package, with clear errors.

    Parameters
    ----------
    path : path-like
        The file.
    chunks : mapping, optional
        Dask chunk sizes for lazy loading; ``None`` loads eagerly into memory.
    schema : mapping, optional
        Variable name -> dims to check (see :func:`check_schema`).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not readable netCDF, or does not match ``schema``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file at {path}")
    try:
        ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks)
        if chunks is None:
            ds = ds.load()
            ds.close()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable netCDF file ({err})") from err
    if schema is not None:
        check_schema(ds, schema)
    return ds


def split_samples(n_samples: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), *,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Split sample indices into train / validation / test by a seeded permutation.

    Whole samples (trajectories) go to one split, so no split sees states of another's
    trajectories. Each returned index array is sorted.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got "
                         f"{tuple(fractions)}")
    n_val = int(round(fractions[1] * n_samples))
    n_test = int(round(fractions[2] * n_samples))
    n_train = n_samples - n_val - n_test
    if n_train < 1 or (fractions[1] > 0 and n_val < 1) or (fractions[2] > 0 and n_test < 1):
        raise ValueError(f"{n_samples} samples are too few for the split {tuple(fractions)}: "
                         f"it gives train {n_train}, validation {n_val}, test {n_test}")
    order = np.random.default_rng(seed).permutation(n_samples)
    return {"train": np.sort(order[:n_train]),
            "validation": np.sort(order[n_train:n_train + n_val]),
            "test": np.sort(order[n_train + n_val:])}


def stack_examples(ds: xr.Dataset, names: Sequence[str],
                   spatial_dims: Sequence[str]) -> np.ndarray:
    """Stack variables into channels-first examples ``(n_examples, channels, *spatial)``.

    Every dimension in :data:`EXAMPLE_DIMS` present on the first variable indexes examples. A
    variable lacking some example or spatial dims (a PDE parameter over ``sample``, say) is
    broadcast over them, which is how scalar parameters become constant input channels.
    """
    if not names:
        raise ValueError("at least one variable is needed")
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise ValueError(f"variables {missing} are not in the dataset; it has "
                         f"{sorted(ds.data_vars)}")
    example_dims = [d for d in EXAMPLE_DIMS if d in ds[names[0]].dims]
    order = (*example_dims, *spatial_dims)
    target = xr.broadcast(*[ds[n] for n in names])
    channels = []
    for name, var in zip(names, target, strict=True):
        extra = set(var.dims) - set(order)
        if extra:
            raise ValueError(f"variable {name!r} has dims {tuple(var.dims)}; only {order} can be "
                             "stacked into examples")
        channels.append(var.transpose(*order).values)
    data = np.stack(channels, axis=len(example_dims))
    n_examples = int(np.prod(data.shape[:len(example_dims)]))
    return data.reshape(n_examples, *data.shape[len(example_dims):])


class PairDataset(torch.utils.data.Dataset):
    """Input/target tensor pairs in physical units, channels first.

    Parameters
    ----------
    inputs : torch.Tensor
        Shape ``(n, c_in, *spatial)``.
    targets : torch.Tensor
        Shape ``(n, c_out, *spatial)``.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        if inputs.shape[0] != targets.shape[0] or inputs.shape[2:] != targets.shape[2:]:
            raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} "
                             "must agree in the number of examples and the spatial shape")
        self.inputs = inputs
        self.targets = targets

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]


def trajectory_pairs(ds: xr.Dataset, samples: Sequence[int] | np.ndarray | None = None, *,
                     variables: Sequence[str] = ("u",), parameters: Sequence[str] = (),
                     time_dim: str = "time", space_dim: str = "x") -> PairDataset:
    """Whole trajectories as rollout examples for an autoregressive stepper.

    Inputs ``(n, V + n_p, T, N)``: the ``V`` variables over ``(time, x)`` followed by the ``n_p``
    parameters (variables over ``sample`` only) as constant channels; targets ``(n, V, T, N)``:
    the variables. float32. ``samples`` selects along ``sample`` (default: all). This is the
    layout :class:`operators.autoregressive.AutoregressiveStepper` trains on.

    Raises
    ------
    ValueError
        If a variable lacks one of ``sample, time_dim, space_dim`` or a parameter varies along
        anything but ``sample``.
    """
    if samples is not None:
        ds = ds.isel(sample=np.asarray(samples))
    missing = [n for n in (*variables, *parameters) if n not in ds.data_vars]
    if missing:
        raise ValueError(f"variables {missing} are not in the dataset; it has "
                         f"{sorted(ds.data_vars)}")
    dims = ("sample", time_dim, space_dim)
    fields = []
    for name in variables:
        if set(ds[name].dims) != set(dims):
            raise ValueError(f"variable {name!r} has dims {ds[name].dims}; expected {dims}")
        fields.append(ds[name].transpose(*dims).values)
    u = np.stack(fields, axis=1).astype(np.float32)
    channels = [u]
    for name in parameters:
        if ds[name].dims not in (("sample",), ()):
            raise ValueError(f"parameter {name!r} must be a scalar per sample, has dims "
                             f"{ds[name].dims}")
        values = np.broadcast_to(ds[name].values, (u.shape[0],)).astype(np.float32)
        channels.append(np.broadcast_to(values[:, None, None, None], (u.shape[0], 1, *u.shape[2:])))
    inputs = np.concatenate(channels, axis=1)
    return PairDataset(torch.from_numpy(np.ascontiguousarray(inputs)), torch.from_numpy(u))


@dataclass
class TorchSplits:
    """Train / validation / test datasets and the normalisers fitted on the training split."""

    train: PairDataset
    validation: PairDataset
    test: PairDataset
    input_normalizer: Normalizer
    target_normalizer: Normalizer
    indices: dict[str, np.ndarray]


def lead_pairs(ds: xr.Dataset, inputs: Sequence[str], targets: Sequence[str],
               spatial_dims: Sequence[str], lead: int = 0,
               history: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Input and target examples across time: targets ``lead`` frames later, past inputs.

    ``lead = 0`` pairs variables at the same time (a closure: ``X(t) -> c(t)``); ``lead = n``
    pairs frame ``t`` of the inputs with frame ``t + n`` of the targets (an emulator:
    ``X(t) -> X(t + n \Delta t_{save})``). ``history = h`` appends the inputs at the ``h``
    previous frames as further channels, most recent first:
    ``(X(t), X(t - \Delta t_{save}), ..., X(t - h \Delta t_{save}))``. Every sample loses its
    first ``h`` and last ``lead`` input frames. Returns ``(x, y)`` as from
    :func:`stack_examples`, ``x`` with ``len(inputs) * (1 + history)`` channels.
    """
    for name, value in (("lead", lead), ("history", history)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer (saved frames), "
                             f"got {value!r}")
    if lead == 0 and history == 0:
        return (stack_examples(ds, inputs, spatial_dims),
                stack_examples(ds, targets, spatial_dims))
    if "time" not in ds.dims or ds.sizes["time"] <= lead + history:
        raise ValueError(f"lead = {lead} and history = {history} frames need a 'time' dimension "
                         f"longer than their sum; the dataset has {dict(ds.sizes)}")
    n = ds.sizes["time"]
    x = np.concatenate([stack_examples(ds.isel(time=slice(history - lag, n - lead - lag)),
                                       inputs, spatial_dims) for lag in range(history + 1)],
                       axis=1)
    return x, stack_examples(ds.isel(time=slice(history + lead, n)), targets, spatial_dims)


def to_torch(ds: xr.Dataset, *, inputs: Sequence[str], targets: Sequence[str],
             spatial_dims: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1),
             seed: int = 0, dtype: torch.dtype = torch.float32, lead: int = 0,
             history: int = 0, holdout: Sequence[int] = ()) -> TorchSplits:
    """Hand a dataset over to torch: split by sample, stack examples, fit normalisers on train.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset with a ``sample`` dimension.
    inputs, targets : sequence of str
        Variables that become input and target channels (see :func:`stack_examples`).
    spatial_dims : sequence of str
        The grid dimensions, in order (``("k",)`` for Lorenz-96's slow ring).
    fractions, seed
        Passed to :func:`split_samples`.
    lead, history : int, default 0
        Targets ``lead`` saved frames after the inputs; ``history`` past frames of the inputs
        as extra channels (see :func:`lead_pairs`).
    holdout : sequence of int
        Training samples kept out of the fit and its normalisers (a calibration split); the
        validation and test splits are unchanged.
    """
    if "sample" not in ds.dims:
        raise ValueError(f"dataset needs a 'sample' dimension; it has {dict(ds.sizes)}")
    indices = split_samples(ds.sizes["sample"], fractions, seed=seed)
    if len(holdout):
        if not np.isin(holdout, indices["train"]).all():
            raise ValueError("held-out samples must come from the training split")
        indices["train"] = np.setdiff1d(indices["train"], holdout)
    parts = {}
    for split, idx in indices.items():
        x, y = lead_pairs(ds.isel(sample=idx), inputs, targets, spatial_dims, lead, history)
        check_finite(x, f"the inputs {list(inputs)}", f"the {split} split")
        check_finite(y, f"the targets {list(targets)}", f"the {split} split")
        parts[split] = PairDataset(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype))
    input_normalizer = Normalizer(len(inputs) * (1 + history)).fit(parts["train"].inputs)
    target_normalizer = Normalizer(len(targets)).fit(parts["train"].targets)
    return TorchSplits(parts["train"], parts["validation"], parts["test"], input_normalizer,
                       target_normalizer, indices)


def deprecated_alias(function: Callable, old_name: str) -> Callable:
    """``function`` under its 0.x name ``old_name``, warning (DeprecationWarning) when called.

    Loaders are named ``open_*`` when they open lazily and ``read_*`` when they read eagerly;
    the old ``load_*`` names stay for one release through this wrapper."""
    @functools.wraps(function)
    def alias(*args, **kwargs):
        warnings.warn(f"{old_name} was renamed {function.__name__}; the old name goes away in the "
                      "next release", DeprecationWarning, stacklevel=2)
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    return alias
