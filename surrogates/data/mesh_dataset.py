"""The in-memory form of datasets on meshes (airfoils: ours and AirfRANS): one mesh per sample plus
an index of scalars.

:class:`MeshDataset` holds one :class:`meshio.Mesh` per sample (2D points, cells, point fields)
and an ``index`` :class:`xarray.Dataset` over ``sample`` with the scalar inputs (e.g.
``alpha``, ``mach``, ``reynolds``), scalar outputs (``cl``, ``cd``, ``cm``), the mesh file names
and shape parameters; the index attributes ``inputs``, ``outputs`` and ``point_fields`` are JSON
lists of names. A mesh-based regressor consumes it as
``fit(dataset.meshes, dataset.inputs(), dataset.outputs())``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import meshio
import numpy as np
import xarray as xr

from surrogates.data.common import split_samples

__all__ = ["LazyMeshes", "MeshDataset"]


class LazyMeshes(Sequence):
    """A read-only sequence of meshes read from files on access (the last one is cached).

    Parameters
    ----------
    paths : sequence of path-like
        One file per mesh.
    reader : callable
        ``reader(path) -> meshio.Mesh``.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], reader: Callable[[Any], meshio.Mesh]):
        self.paths = [Path(p) for p in paths]
        self.reader = reader
        self._cache: tuple[int, meshio.Mesh] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazyMeshes(self.paths[i], self.reader)
        i = range(len(self.paths))[i]
        if self._cache is None or self._cache[0] != i:
            self._cache = (i, self.reader(self.paths[i]))
        return self._cache[1]

    def take(self, indices) -> LazyMeshes:
        """The meshes at ``indices``, still lazy."""
        return LazyMeshes([self.paths[int(i)] for i in indices], self.reader)


@dataclass
class MeshDataset:
    r"""Samples of fields on (possibly different) 2D meshes with scalar inputs and outputs.

    Attributes
    ----------
    meshes : sequence of meshio.Mesh
        One per sample: ``points`` (n_i, 2), cells (triangles for generated data; AirfRANS
        quads are split into triangles by default), ``point_data`` holding the fields. May be a
        :class:`LazyMeshes` that reads each file on access.
    index : xarray.Dataset
        Variables over ``sample`` (inputs, outputs, ``mesh_file`` and metadata), with
        ``units`` on each; ``attrs["inputs"]``, ``attrs["outputs"]``, ``attrs["point_fields"]``
        are JSON lists naming the input / output variables and the point fields.
    """

    meshes: Sequence[meshio.Mesh]
    index: xr.Dataset

    def __post_init__(self):
        n = self.index.sizes.get("sample", 0)
        if len(self.meshes) != n:
            raise ValueError(f"{len(self.meshes)} meshes but the index has {n} samples")
        for key in ("inputs", "outputs", "point_fields"):
            if key not in self.index.attrs:
                raise ValueError(f"the index lacks the attribute {key!r} (a JSON list of names)")

    # -- names -------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        """Names of the scalar input variables, in column order of :meth:`inputs`."""
        return list(json.loads(self.index.attrs["inputs"]))

    @property
    def output_names(self) -> list[str]:
        """Names of the scalar output variables, in column order of :meth:`outputs`."""
        return list(json.loads(self.index.attrs["outputs"]))

    @property
    def field_names(self) -> list[str]:
        """Names of the point fields every mesh carries."""
        return list(json.loads(self.index.attrs["point_fields"]))

    def __len__(self) -> int:
        return len(self.meshes)

    # -- arrays ------------------------------------------------------------------------------
    def _columns(self, names: Sequence[str]) -> np.ndarray:
        missing = [n for n in names if n not in self.index.variables]
        if missing:
            raise ValueError(f"variables {missing} are not in the index; it has "
                             f"{sorted(self.index.data_vars)}")
        cols = [np.asarray(self.index[n].values, dtype=np.float64).reshape(len(self), -1)
                for n in names]
        return np.concatenate(cols, axis=1) if cols else np.zeros((len(self), 0))

    def inputs(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Scalar inputs as a float64 array (n_samples, k); default columns: ``input_names``."""
        return self._columns(self.input_names if names is None else list(names))

    def outputs(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Scalar outputs as a float64 array (n_samples, m); default columns: ``output_names``."""
        return self._columns(self.output_names if names is None else list(names))

    def field(self, name: str) -> list[np.ndarray]:
        """The point field ``name`` of every sample (a list: meshes differ in size)."""
        if name not in self.field_names:
            raise ValueError(f"no point field {name!r}; the dataset has {self.field_names}")
        out = []
        for i, mesh in enumerate(self.meshes):
            if name not in mesh.point_data:
                raise ValueError(f"sample {i} has no point field {name!r}")
            out.append(np.asarray(mesh.point_data[name]))
        return out

    # -- selection ---------------------------------------------------------------------------
    def subset(self, indices) -> MeshDataset:
        """The samples at ``indices`` (integers or a boolean mask), in that order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask of shape {idx.shape} for {len(self)} samples")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ValueError(f"indices out of range for {len(self)} samples: {idx}")
        idx = np.where(idx < 0, idx + len(self), idx)
        if isinstance(self.meshes, LazyMeshes):
            meshes = self.meshes.take(idx)
        else:
            meshes = [self.meshes[int(i)] for i in idx]
        return MeshDataset(meshes, self.index.isel(sample=idx))

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), *,
              seed: int = 0) -> dict[str, MeshDataset]:
        """Random train / validation / test subsets (see :func:`surrogates.data.common.
        split_samples`); each sample goes to exactly one split."""
        parts = split_samples(len(self), fractions, seed=seed)
        return {name: self.subset(idx) for name, idx in parts.items()}
