"""Saving and loading :class:`~surrogates.models.mmgp.MMGPRegressor` without pickle.

A model is a folder: ``config.json`` (constructor arguments, the morpher and transfer by import
name, output layout, timings) and ``arrays.npz`` (support mesh, standardisations, PODs,
nuggets, the GPs' training data and hyperparameters). Version 2 adds the query-dependent
nugget (``field<j>_nugget_pattern``, ``nugget_gp_*``); version 1 folders still load and predict
with the constant nugget.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import meshio
import numpy as np
import torch

from surrogates.data.common import load_npz
from surrogates.models.gp import BatchedExactGP
from surrogates.models.mmgp.pca import WeightedPCA
from surrogates.models.mmgp.plumbing import _import, _json_kwargs, _qualname

__all__ = ["config_of", "load", "save"]

_FORMAT_VERSION = 2
#: format versions :func:`load` reads
READABLE_VERSIONS = (1, 2)


def config_of(model) -> dict:
    """The JSON record of a fitted model (``config.json``)."""
    morpher = model._morpher()
    return {
        "format_version": _FORMAT_VERSION,
        "class": "MMGPRegressor",
        "params": {"reference": (None if isinstance(model.reference, meshio.Mesh)
                                 else int(model.reference)),
                   "n_shape_modes": model.n_shape_modes, "field_variance": model.field_variance,
                   "shape_variance": model.shape_variance, "mass_weighted": model.mass_weighted,
                   "kernel": model.kernel, "n_restarts": model.n_restarts, "seed": model.seed,
                   "dtype": str(model.dtype).removeprefix("torch."),
                   "max_iter": model.max_iter, "n_field_modes": model.n_field_modes,
                   "truncation_nugget": model.truncation_nugget, "optimizer": model.optimizer,
                   "lr": model.lr, "calibration": model.calibration},
        "morpher": {"name": _qualname(morpher), "kwargs": _json_kwargs(morpher)},
        "transfer": _qualname(model._transfer()),
        "scalar_names": model.scalar_names_,
        "field_names": model.field_names_,
        "field_components": model.field_components_,
        "output_slices": {k: list(v) for k, v in model.output_slices_.items()},
        "n_inputs": model.n_inputs_,
        "shape_dim": model.shape_dim_,
        "support_cell_types": [t for t, _ in model.support_cells_],
        "support_cell_data": sorted(model.support_cell_data_),
        "fit_seconds": model.fit_seconds_,
        "morph_seconds": model.morph_seconds_.tolist(),
        "amplitude_factor": model.amplitude_factor_.tolist(),
    }

def save(model, path: str | os.PathLike) -> Path:
    """Write the fitted model to a folder: ``config.json`` and ``arrays.npz`` (no pickle).

    The morpher and the transfer function are recorded by import name (and the morpher's
    JSON-serialisable attributes as keyword arguments); :func:`load` rebuilds them from there
    unless given explicitly.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    model._check_fitted()
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"support_points": np.asarray(model.support_.points, float),
              "node_weights": model.node_weights_, "x_mean": model.x_mean_,
              "x_scale": model.x_scale_, "y_mean": model.y_mean_, "y_scale": model.y_scale_}
    for i, (_, cells) in enumerate(model.support_cells_):
        arrays[f"support_cells_{i}"] = cells
    for name, blocks in model.support_cell_data_.items():
        for i, block in enumerate(blocks):
            arrays[f"support_cell_data_{name}_{i}"] = block
    arrays.update(model.shape_pca_.get_arrays("shape_"))
    for j, name in enumerate(model.field_names_):
        arrays.update(model.field_pca_[name].get_arrays(f"field{j}_"))
        arrays[f"field{j}_nugget"] = model.field_nugget_[name]
        if name in model.field_nugget_pattern_:
            arrays[f"field{j}_nugget_pattern"] = model.field_nugget_pattern_[name]
    arrays.update({f"gp_{k}": v for k, v in model.gp_.get_arrays().items()})
    if model.nugget_gp_ is not None:
        arrays.update({f"nugget_gp_{k}": v for k, v in model.nugget_gp_.get_arrays().items()})
        arrays["nugget_mean"], arrays["nugget_scale"] = model.nugget_mean_, model.nugget_scale_
    np.savez(folder / "arrays.npz", **arrays)
    (folder / "config.json").write_text(json.dumps(config_of(model), indent=2))
    return folder

def load(cls, path: str | os.PathLike, morpher=None, transfer: Callable | None = None
         ):
    """Rebuild a model of class ``cls`` written by :func:`save`.

    Parameters
    ----------
    path : str or PathLike
        The folder.
    morpher : object, optional
        Use this morpher instead of re-creating the recorded one (needed when the recorded
        class cannot be imported, e.g. one defined in a test or a script).
    transfer : callable, optional
        Likewise for the transfer function.

    Raises
    ------
    FileNotFoundError
        If ``config.json`` or ``arrays.npz`` is missing.
    ValueError
        On an unknown format version, or a recorded morpher/transfer that cannot be imported
        when none is given.
    """
    folder = Path(path)
    for name in ("config.json", "arrays.npz"):
        if (folder / name).is_dir():
            raise FileNotFoundError(f"{folder / name} is a directory, not a file written by "
                                    "MMGPRegressor.save; restore the file or retrain the run")
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} does not exist; is {folder} a folder "
                                    "written by MMGPRegressor.save?")
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(f"unsupported format_version {cfg.get('format_version')} in "
                         f"{folder / 'config.json'}; expected one of {READABLE_VERSIONS}")
    if morpher is None:
        try:
            morpher = _import(cfg["morpher"]["name"])(**cfg["morpher"]["kwargs"])
        except (ImportError, AttributeError, TypeError) as exc:
            raise ValueError(f"cannot rebuild morpher {cfg['morpher']['name']}: {exc}; pass "
                             "morpher=... to load") from exc
    if transfer is None and not cfg["transfer"].endswith(":_default_transfer"):
        try:
            transfer = _import(cfg["transfer"])
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import transfer {cfg['transfer']}: {exc}; pass "
                             "transfer=... to load") from exc
    params = dict(cfg["params"])
    params["dtype"] = getattr(torch, params["dtype"])
    if params["reference"] is None:
        params["reference"] = 0  # the support mesh itself is restored below
    model = cls(morpher=morpher, transfer=transfer, **params)
    arrays = load_npz(folder / "arrays.npz", "MMGP arrays")
    cells = [(t, arrays[f"support_cells_{i}"])
             for i, t in enumerate(cfg["support_cell_types"])]
    cell_data = {name: [arrays[f"support_cell_data_{name}_{i}"] for i in range(len(cells))]
                 for name in cfg.get("support_cell_data", [])}
    model.support_cells_ = cells
    model.support_cell_data_ = cell_data
    model.support_ = meshio.Mesh(arrays["support_points"], cells, cell_data=cell_data)
    model.node_weights_ = arrays["node_weights"]
    model.x_mean_, model.x_scale_ = arrays["x_mean"], arrays["x_scale"]
    model.y_mean_, model.y_scale_ = arrays["y_mean"], arrays["y_scale"]
    model.shape_pca_ = WeightedPCA.from_arrays(arrays, "shape_")
    model.scalar_names_ = list(cfg["scalar_names"])
    model.field_names_ = list(cfg["field_names"])
    model.field_components_ = {k: int(v) for k, v in cfg["field_components"].items()}
    model.output_slices_ = {k: tuple(v) for k, v in cfg["output_slices"].items()}
    model.field_pca_, model.field_nugget_, model.field_nugget_pattern_ = {}, {}, {}
    for j, name in enumerate(model.field_names_):
        model.field_pca_[name] = WeightedPCA.from_arrays(arrays, f"field{j}_")
        model.field_nugget_[name] = arrays[f"field{j}_nugget"]
        if f"field{j}_nugget_pattern" in arrays:
            model.field_nugget_pattern_[name] = arrays[f"field{j}_nugget_pattern"]
    model.n_inputs_ = int(cfg["n_inputs"])
    model.shape_dim_ = int(cfg["shape_dim"])
    model._hand_over_shape_basis()
    model.fit_seconds_ = float(cfg["fit_seconds"])
    model.morph_seconds_ = np.asarray(cfg["morph_seconds"])
    model.amplitude_factor_ = np.asarray(cfg.get("amplitude_factor",
                                                 np.ones(len(model.y_mean_))))
    gp_arrays = {k.removeprefix("gp_"): v for k, v in arrays.items() if k.startswith("gp_")}
    model.gp_ = BatchedExactGP.from_arrays(gp_arrays, **model._gp_kwargs())
    # version 1 has no nugget GP: its models predict with the constant nugget
    nugget = {k.removeprefix("nugget_gp_"): v for k, v in arrays.items()
              if k.startswith("nugget_gp_")}
    model.nugget_gp_ = (BatchedExactGP.from_arrays(nugget, **model._gp_kwargs())
                        if nugget else None)
    if nugget:
        model.nugget_mean_, model.nugget_scale_ = arrays["nugget_mean"], arrays["nugget_scale"]
    return model
