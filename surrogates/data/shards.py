"""Sharded dataset generation and reading a set of shards back as one lazy dataset.

Generating thousands of solver runs is split into ``N`` shards: shard ``I`` of ``N`` holds the
contiguous block :func:`shard_samples` of the global sample indices and is written to its own
netCDF file, ``OUT`` with the suffix ``.shard-I-of-N.nc`` in place of ``.nc``
(:func:`shard_path`: ``data.nc`` -> ``data.shard-0-of-4.nc``). Sample ``n`` is seeded from
``(seed, n)`` alone, so the union of the shards equals, bit for bit, the dataset one run
writes, whatever ``N``. Each shard records ``shard_index``, ``shard_count``, ``sample_start``
and ``sample_stop`` in its attributes, next to the full generating configuration.

Shards are written atomically (temporary file, then rename), so a file under a shard's name is
complete; ``resume`` skips shards whose files exist and validate (:func:`validate_shard`), so an
interrupted generation restarts where it stopped. On a cluster the shards are a job array
(``surrogates generate lorenz96 --out d.nc --shard $SLURM_ARRAY_TASK_ID/64``).

:func:`open_dataset` opens either one file or, given ``OUT`` or a list of shard files, the
complete set of shards as one dataset, lazily (``xarray.open_mfdataset`` with dask, combined
along ``sample``).

Within one machine, :func:`map_over_devices` splits a batch of samples over the JAX devices
(one contiguous block per device, run concurrently); with one device it is a direct call.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import xarray as xr

from surrogates.data.common import open_netcdf, write_netcdf

T = TypeVar("T")
SHARD_ATTRS = ("shard_index", "shard_count", "sample_start", "sample_stop")
_SHARD_RE = re.compile(r"\.shard-(\d+)-of-(\d+)\.nc$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``.

    Raises
    ------
    ValueError
        If ``text`` is not of that form.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not int(match[1]) < int(match[2]):
        raise ValueError(f"a shard is written I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return int(match[1]), int(match[2])


def shard_samples(n_samples: int, index: int, count: int) -> range:
    """Global sample indices of shard ``index`` of ``count``: contiguous, nearly equal blocks
    (the first ``n_samples % count`` one longer).

    Raises
    ------
    ValueError
        If ``count > n_samples`` (an empty shard) or ``index`` is out of range.
    """
    if not 0 <= index < count:
        raise ValueError(f"shard index must lie in [0, {count}), got {index}")
    if count > n_samples:
        raise ValueError(f"{count} shards of {n_samples} samples would leave some empty; use "
                         f"at most {n_samples} shards")
    base, extra = divmod(n_samples, count)
    start = index * base + min(index, extra)
    return range(start, start + base + (1 if index < extra else 0))


def shard_path(out: str | os.PathLike, index: int, count: int) -> Path:
    """``OUT`` with ``.shard-I-of-N.nc`` in place of its ``.nc`` suffix (appended otherwise)."""
    out = Path(out)
    stem = out.name[:-3] if out.name.endswith(".nc") else out.name
    return out.with_name(f"{stem}.shard-{index}-of-{count}.nc")


def find_shards(out: str | os.PathLike) -> list[Path]:
    """The complete shard set written for ``OUT``, in shard order.

    Raises
    ------
    FileNotFoundError
        If there are no shards for ``OUT``, or some of a set are missing (naming them).
    ValueError
        If shards of different counts are present.
    """
    out = Path(out)
    stem = out.name[:-3] if out.name.endswith(".nc") else out.name
    found = {}
    for path in out.parent.glob(f"{stem}.shard-*-of-*.nc"):
        match = _SHARD_RE.search(path.name)
        if match and path.name == f"{stem}{match[0]}":
            found[(int(match[1]), int(match[2]))] = path
    if not found:
        if Path(out).is_dir():
            raise FileNotFoundError(f"{out} is a directory, not a dataset file; give the "
                                    "netCDF file (or the OUT name of its shards)")
        raise FileNotFoundError(f"no dataset file at {out} and no shards "
                                f"{stem}.shard-I-of-N.nc beside it")
    counts = {n for _, n in found}
    if len(counts) > 1:
        raise ValueError(f"shards of {out} come in different counts {sorted(counts)}; remove "
                         "the stale set")
    (count,) = counts
    missing = [i for i in range(count) if (i, count) not in found]
    if missing:
        raise FileNotFoundError(f"shards {missing} of {count} for {out} are missing; generate "
                                f"them (--shard I/{count}, or --shards {count} --resume)")
    return [found[(i, count)] for i in range(count)]


def validate_shard(path: str | os.PathLike, config: dict[str, Any], index: int,
                   count: int) -> bool:
    """True if ``path`` is shard ``index`` of ``count`` generated with ``config`` (readable,
    same configuration, the expected samples)."""
    try:
        ds = open_netcdf(path, chunks={})
    except (FileNotFoundError, ValueError):
        return False
    try:
        expected = shard_samples(int(config["n_samples"]), index, count)
        saved = json.loads(ds.attrs.get("config", "null"))
        return (saved == json.loads(json.dumps(config, sort_keys=True))
                and int(ds.attrs.get("shard_index", -1)) == index
                and int(ds.attrs.get("shard_count", -1)) == count
                and ds.sizes.get("sample") == len(expected)
                and np.array_equal(ds["sample"].values, np.asarray(expected)))
    finally:
        ds.close()


def generate_shards(generate: Callable[..., xr.Dataset], config: Any, config_dict: dict[str, Any],
                    out: str | os.PathLike, count: int, *, indices: Iterable[int] | None = None,
                    resume: bool = False, overwrite: bool = False,
                    show_progress: bool = True) -> list[tuple[Path, bool]]:
    """Generate shards ``indices`` (default all) of ``count`` and write each atomically.

    Parameters
    ----------
    generate : callable
        ``generate(config, samples=range, show_progress=bool) -> xr.Dataset`` for the given
        global samples (:func:`surrogates.data.lorenz96.generate_lorenz96`,
        :func:`surrogates.data.darcy.generate_darcy`).
    config_dict : dict
        The configuration as stored in the dataset's ``config`` attribute (used to validate).
    resume : bool
        Skip shards whose files exist and validate; others are (re)generated.
    overwrite : bool
        Replace existing shard files (without it, an existing invalid shard is an error).

    Returns
    -------
    list of (Path, bool)
        Each shard's path and whether it was generated now (False: kept from before).
    """
    n_samples = int(config_dict["n_samples"])
    indices = range(count) if indices is None else list(indices)
    done = []
    for index in indices:
        samples = shard_samples(n_samples, index, count)
        path = shard_path(out, index, count)
        if resume and path.exists():
            if validate_shard(path, config_dict, index, count):
                done.append((path, False))
                continue
            if not overwrite:
                raise ValueError(f"{path} exists but is not shard {index}/{count} of this "
                                 "configuration; pass --overwrite to regenerate it")
        elif path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass --resume to keep complete "
                                  "shards or --overwrite to replace them")
        ds = generate(config, samples=samples, show_progress=show_progress)
        ds.attrs.update({"shard_index": index, "shard_count": count,
                         "sample_start": samples.start, "sample_stop": samples.stop})
        write_netcdf(ds, path, overwrite=True)
        done.append((path, True))
    return done


def open_shards(paths: Sequence[str | os.PathLike], *,
                chunks: dict[str, int] | None = None) -> xr.Dataset:
    """Open shard files as one lazy dataset (dask arrays), concatenated along ``sample``.

    Parameters
    ----------
    chunks : dict, optional
        Dask chunks (default: one chunk per shard along ``sample``).

    Raises
    ------
    ValueError
        If the shards' samples are not the contiguous blocks ``0 .. n - 1`` in order.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no dataset file at {path}")
    ds = xr.open_mfdataset(paths, engine="netcdf4", combine="nested", concat_dim="sample",
                           data_vars="minimal", coords="minimal", compat="override",
                           join="override", combine_attrs="override",
                           chunks=chunks if chunks is not None else {})
    sample = ds["sample"].values
    if not np.array_equal(sample, np.arange(len(sample))):
        raise ValueError(f"the shards {[p.name for p in paths]} do not cover samples "
                         f"0..{len(sample) - 1} in order: check that they belong to one set")
    for name in SHARD_ATTRS:
        ds.attrs.pop(name, None)
    return ds


def open_dataset(path: str | os.PathLike | Sequence[str | os.PathLike], *,
                 chunks: dict[str, int] | None = None, lazy: bool = False) -> xr.Dataset:
    """One netCDF file, or the shards written for it, as one dataset.

    ``path`` an existing file: :func:`~surrogates.data.common.open_netcdf` (eager unless
    ``lazy`` or ``chunks``); a list of files or an ``OUT`` whose shards exist: the shards,
    lazily (:func:`open_shards`).
    """
    if isinstance(path, str | os.PathLike) and Path(path).is_file():
        return open_netcdf(path, chunks=chunks if chunks is not None else
                           ({} if lazy else None))
    paths = find_shards(path) if isinstance(path, str | os.PathLike) else list(path)
    return open_shards(paths, chunks=chunks)


def map_over_devices(func: Callable[[int, int], T], start: int, stop: int,
                     devices: Sequence[Any] | None = None) -> list[T]:
    """``func(lo, hi)`` on contiguous blocks of ``range(start, stop)``, one per JAX device.

    Each block runs in its own thread under ``jax.default_device(device)`` (JAX releases the
    GIL while it computes, so the devices work concurrently); results come back in block
    order. With one device (or fewer samples than devices) it is ``[func(start, stop)]``.
    The solvers take and return NumPy arrays per batch, so the batch is split here rather
    than placed with ``jax.sharding.NamedSharding``: the same data-parallel split over a 1D
    device mesh on the batch axis, without a sharded array crossing the solver boundary.
    """
    import jax

    devices = list(jax.devices() if devices is None else devices)
    n = stop - start
    if len(devices) <= 1 or n < len(devices):
        return [func(start, stop)]
    blocks = [shard_samples(n, d, len(devices)) for d in range(len(devices))]

    def run(device, block):
        with jax.default_device(device):
            return func(start + block.start, start + block.stop)

    with ThreadPoolExecutor(len(devices)) as pool:
        return list(pool.map(run, devices, blocks))
