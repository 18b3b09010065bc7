"""Helpers of :class:`~surrogates.models.mmgp.MMGPRegressor`: default morpher and transfer,
recording callables by import name, JSON constructor arguments, mesh cells, safe scales."""

from __future__ import annotations

import dataclasses
import importlib
import json

import meshio
import numpy as np


def _default_morpher():
    from meshes.morph import RBFMorpher

    return RBFMorpher()


def _default_transfer(mesh, points):
    from meshes.transfer import transfer_matrix

    return transfer_matrix(mesh, points)


def _qualname(obj) -> str:
    target = obj if callable(obj) and not hasattr(obj, "morph") else type(obj)
    return f"{target.__module__}:{target.__qualname__}"


def _import(name: str):
    module, _, qual = name.partition(":")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _json_kwargs(obj) -> dict:
    """Constructor keyword arguments of a morpher, as far as they are JSON-serialisable."""
    if hasattr(obj, "get_params"):
        raw = obj.get_params()
    elif dataclasses.is_dataclass(obj):
        raw = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
    else:
        raw = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    out = {}
    for key, value in raw.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        out[key] = value
    return out


def _cells_of(mesh: meshio.Mesh) -> list[tuple[str, np.ndarray]]:
    return [(c.type, np.asarray(c.data)) for c in mesh.cells]


def _cell_data_of(mesh: meshio.Mesh) -> dict[str, list[np.ndarray]]:
    """The mesh's numeric cell data (e.g. the boundary tags the morphers read), one array per
    cell block."""
    return {name: [np.asarray(a) for a in blocks] for name, blocks in mesh.cell_data.items()
            if all(np.asarray(a).dtype.kind in "biuf" for a in blocks)}


def _safe_scale(std: np.ndarray) -> np.ndarray:
    """Standard deviations with zeros (constant columns) replaced by 1."""
    std = np.asarray(std, dtype=float).copy()
    std[~(std > 1e-12 * max(float(np.max(np.abs(std), initial=0.0)), 1e-300))] = 1.0
    return std
