r"""MMGP run folders on airfoil mesh datasets: train, evaluate, predict on a new mesh.

A run folder (``surrogates train mmgp``) holds

- ``run_config.json``: ``kind`` = :data:`RUN_KIND`, the resolved :class:`MMGPRunConfig`, the
  absolute dataset path, the split (sample indices into the dataset) and the fit time;
- ``model/``: the fitted :class:`surrogates.models.mmgp.MMGPRegressor` (its ``save`` format: JSON +
  ``.npz``, no pickle);
- after ``surrogates evaluate``: ``evaluation/metrics.json``, ``calibration.png`` (observed vs
  nominal coverage of central intervals) and ``fields_<name>.png`` (reference, mean, error and
  standard deviation of one test sample, zoomed on the airfoil).

Metrics (Casenave et al., NeurIPS 2023, via :mod:`surrogates.metrics.mesh`): relative RMSE and
:math:`Q^2` of each scalar, field RRMSE (nodal RMSE over each sample's :math:`\max|u|`) and mean
relative :math:`L^2` of each field, coverage of the central 95 % interval, mean CRPS and mean
Gaussian NLL.

The morphers of :mod:`meshes` find the wall and the far field of a mesh from its
``boundary_tag`` cell data, which :func:`meshes.airfoil_mesh.write_mesh` stores with every sample
and :class:`~surrogates.models.mmgp.MMGPRegressor` keeps on its support mesh.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

import meshio
import numpy as np

from meshes.morph import medoid_airfoil
from surrogates.data.common import write_json
from surrogates.runs.calibration import uq_report
from surrogates.runs.folder import prepare_run_dir, read_run_config, write_run_config

__all__ = ["RUN_KIND", "MORPHERS", "MMGPRunConfig", "train_mmgp", "load_mmgp_run",
           "evaluate_mmgp_run", "predict_mesh", "split_by_shape", "metrics_table", "morpher"]

#: ``run_config.json["kind"]`` of an MMGP run.
RUN_KIND = "mmgp"

#: Morpher names of the CLI and their classes.
MORPHERS = {"rbf": "meshes.morph:RBFMorpher",
            "elasticity": "meshes.morph_elasticity:ElasticityMorpher",
            "elasticity-online": "meshes.morph_elasticity:ReducedElasticityMorpher",
            "tutte": "meshes.morph_tutte:TutteMorpher"}

_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def morpher(name: str):
    """A new morpher of :data:`MORPHERS` by name, with default arguments."""
    if name not in MORPHERS:
        raise ValueError(f"morpher must be one of {sorted(MORPHERS)}, got {name!r}")
    module, _, attr = MORPHERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)()


@dataclasses.dataclass
class MMGPRunConfig:
    """What ``surrogates train mmgp`` fits.

    Attributes
    ----------
    data : str
        Dataset folder from ``surrogates generate airfoil`` (:func:`open_airfoil_dataset`).
    morpher : {"rbf", "elasticity", "elasticity-online", "tutte"}
    fields, scalars, inputs : list of str
        Point fields and scalar outputs to learn, scalar inputs to condition on.
    n_train : int, optional
        Use only the first ``n_train`` samples of the (shuffled) training split.
    test_fraction : float
        Fraction of the shapes (of the samples, when the index has no ``shape_id``) held out
        for testing; the samples of one shape never straddle the split.
    restarts, max_iter : int
        GP hyperparameter restarts and optimiser iterations
        (:class:`surrogates.models.gp.BatchedExactGP`).
    field_variance : float
        POD variance kept for each field.
    seed : int
        Seed of the split and of the GP restarts.
    """

    data: str = ""
    morpher: str = "rbf"
    fields: list[str] = dataclasses.field(default_factory=lambda: ["cp"])
    scalars: list[str] = dataclasses.field(default_factory=lambda: ["cl", "cd"])
    inputs: list[str] = dataclasses.field(
        default_factory=lambda: ["alpha", "mach", "reynolds"])
    n_train: int | None = None
    test_fraction: float = 0.2
    restarts: int = 3
    max_iter: int = 200
    field_variance: float = 0.999
    seed: int = 0

    def __post_init__(self):
        if self.morpher not in MORPHERS:
            raise ValueError(f"morpher must be one of {sorted(MORPHERS)}, got {self.morpher!r}")
        for name in ("fields", "scalars", "inputs"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            setattr(self, name, list(value))
        if not self.fields and not self.scalars:
            raise ValueError("nothing to learn: give at least one field or scalar output")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.n_train is not None and self.n_train < 3:
            raise ValueError(f"n_train must be >= 3, got {self.n_train}")
        if self.restarts < 1 or self.max_iter < 1:
            raise ValueError("restarts and max_iter must be >= 1")


def split_by_shape(index, test_fraction: float, seed: int) -> dict[str, list[int]]:
    """Seeded split of sample indices holding out whole shapes (``shape_id``) when present."""
    n = index.sizes["sample"]
    rng = np.random.default_rng(seed)
    groups = (np.asarray(index["shape_id"].values) if "shape_id" in index.variables
              else np.arange(n))
    unique = rng.permutation(np.unique(groups))
    n_test = max(1, int(round(test_fraction * len(unique))))
    if n_test >= len(unique):
        raise ValueError(f"{len(unique)} shapes are too few to hold out {test_fraction:.0%}")
    test_groups = set(unique[:n_test].tolist())
    is_test = np.array([g in test_groups for g in groups])
    train = rng.permutation(np.flatnonzero(~is_test))
    return {"train": [int(i) for i in train], "test": [int(i) for i in np.flatnonzero(is_test)]}


def _outputs(ds, scalars: Sequence[str], fields: Sequence[str]) -> dict:
    out = {name: ds.outputs([name])[:, 0] for name in scalars}
    out.update({name: ds.field(name) for name in fields})
    return out


def _dataset(path):
    from surrogates.data.airfoil import open_airfoil_dataset

    return open_airfoil_dataset(path, lazy=False)


def train_mmgp(config: MMGPRunConfig, run_dir: str | os.PathLike, *, overwrite: bool = False,
               dataset=None) -> dict:
    """Fit an MMGP on the training split of ``config.data`` and write the run folder.

    Parameters
    ----------
    config : MMGPRunConfig
    run_dir : path-like
        Folder to create.
    overwrite : bool
        Replace an existing run folder.
    dataset : MeshDataset, optional
        The opened ``config.data`` (avoids reading it twice).

    Returns
    -------
    dict
        The ``run_config.json`` contents.

    Raises
    ------
    FileExistsError
        If ``run_dir`` exists and is not empty, and ``overwrite`` is False.
    ValueError
        On unknown names of inputs, outputs or fields.
    """
    from surrogates.models.mmgp import MMGPRegressor

    run = Path(run_dir)
    prepare_run_dir(run, overwrite=overwrite, resume=False)
    ds = dataset if dataset is not None else _dataset(config.data)
    missing = [f for f in config.fields if f not in ds.field_names]
    if missing:
        raise ValueError(f"fields {missing} are not in {config.data}; it has {ds.field_names}")
    split = split_by_shape(ds.index, config.test_fraction, config.seed)
    if config.n_train is not None:
        if config.n_train > len(split["train"]):
            raise ValueError(f"n_train {config.n_train} exceeds the {len(split['train'])} "
                             "training samples")
        split["train"] = split["train"][:config.n_train]
    train = ds.subset(split["train"])
    # the support: the training mesh of the medoid shape keeps every morph small
    model = MMGPRegressor(morpher=morpher(config.morpher), n_restarts=config.restarts,
                          reference=medoid_airfoil(train.meshes),
                          max_iter=config.max_iter, field_variance=config.field_variance,
                          seed=config.seed)
    model.fit(list(train.meshes), train.inputs(config.inputs),
              _outputs(train, config.scalars, config.fields))
    model.save(run / "model")
    run_config = {"config": dataclasses.asdict(config),
                  "data": str(Path(config.data).resolve()), "split": split,
                  "n_train": len(split["train"]), "n_test": len(split["test"]),
                  "fit_seconds": float(model.fit_seconds_),
                  "morph_seconds_mean": float(np.mean(model.morph_seconds_)),
                  "n_support_nodes": int(len(model.support_.points)),
                  "n_shape_modes": int(model.shape_pca_.n_components_)}
    write_run_config(run, RUN_KIND, run_config)
    return {"kind": RUN_KIND, **run_config}


def load_mmgp_run(run_dir: str | os.PathLike):
    """``(model, run_config)`` of an MMGP run folder.

    Raises
    ------
    FileNotFoundError
        If ``run_config.json`` is missing.
    ValueError
        If the folder is not an MMGP run.
    """
    from surrogates.models.mmgp import MMGPRegressor

    run_config = read_run_config(run_dir, kinds=(RUN_KIND,))
    model = MMGPRegressor.load(Path(run_dir) / "model",
                               morpher=morpher(run_config["config"]["morpher"]))
    return model, run_config


def _coverage_curve(mean, std, ref) -> list[float]:
    from surrogates.metrics.mesh import gaussian_scores

    return [gaussian_scores(mean, std, ref, level)["coverage"] for level in _LEVELS]


def _triangles(mesh: meshio.Mesh) -> np.ndarray:
    return np.concatenate([np.asarray(c.data) for c in mesh.cells if c.type == "triangle"])


def evaluate_mmgp_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None,
                      *, split: str = "test", out_dir: str | os.PathLike | None = None,
                      plot_sample: int = 0) -> dict:
    """Score an MMGP run on a split of its dataset; write metrics, calibration and field maps.

    Parameters
    ----------
    run_dir : path-like
    data_path : path-like, optional
        Dataset folder [the training dataset]. With another dataset, ``split`` "all" scores
        every sample.
    split : {"test", "train", "all"}
    out_dir : path-like, optional
        Default ``run_dir/evaluation``.
    plot_sample : int
        Which sample of the split the field maps show.

    Returns
    -------
    dict
        ``metrics`` (output name -> q2, rrmse, [relative_l2], coverage, crps, nll),
        ``calibration`` (levels and observed coverage per output), ``n_samples``,
        ``predict_seconds_per_mesh`` (morphing included), ``fit_seconds``, ``files``.
    """
    from surrogates import plots
    from surrogates.metrics.mesh import evaluate

    model, run_config = load_mmgp_run(run_dir)
    cfg = run_config["config"]
    ds = _dataset(data_path or run_config["data"])
    if split == "all":
        idx = list(range(len(ds)))
    elif split in ("train", "test"):
        idx = run_config["split"][split]
    else:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    sub = ds.subset(idx)
    reference = _outputs(sub, cfg["scalars"], cfg["fields"])
    start = time.perf_counter()
    mean, std = model.predict(list(sub.meshes), sub.inputs(cfg["inputs"]), return_std=True)
    per_mesh = (time.perf_counter() - start) / len(sub)
    metrics = evaluate(mean, std, reference)
    curves = {name: _coverage_curve(mean[name], std[name], reference[name]) for name in reference}
    out = Path(out_dir) if out_dir else Path(run_dir) / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    files = [str(out / "metrics.json"), str(out / "calibration.png")]
    plots.calibration_curve(_LEVELS, curves, out / "calibration.png")
    k = int(np.clip(plot_sample, 0, len(sub) - 1))
    mesh = sub.meshes[k]
    for name in cfg["fields"]:
        ref, mu, sd = reference[name][k], mean[name][k], std[name][k]
        if np.ndim(ref) > 1:  # vector field: show the magnitude
            ref, mu = np.linalg.norm(ref, axis=1), np.linalg.norm(mu, axis=1)
            sd = np.linalg.norm(sd, axis=1)
        path = out / f"fields_{name}.png"
        plots.mesh_field_maps(np.asarray(mesh.points)[:, :2], _triangles(mesh),
                              {f"{name} reference": ref, f"{name} MMGP mean": mu,
                               f"{name} error (mean - reference)": mu - ref,
                               f"{name} MMGP std": sd}, path)
        files.append(str(path))
    result = {"run": str(run_dir), "split": split, "n_samples": len(sub),
              "plot_sample": int(idx[k]), "metrics": metrics,
              "calibration": {"levels": list(_LEVELS), "coverage": curves},
              "predict_seconds_per_mesh": per_mesh,
              "morph_seconds_per_mesh": float(np.mean(model.predict_morph_seconds_)),
              "fit_seconds": run_config["fit_seconds"], "n_train": run_config["n_train"],
              "files": files, "uq": {}}
    for name in reference:  # the common UQ block; fields pool the points of every mesh
        y, mu, sd = (np.concatenate([np.ravel(a) for a in arrays]) if name in cfg["fields"]
                     else np.asarray(arrays, dtype=float)
                     for arrays in (reference[name], mean[name], std[name]))
        result["uq"][name] = uq_report(y, mu, std=np.maximum(sd, np.finfo(float).tiny),
                                       out_dir=out, prefix=f"uq_{name}")
    write_json(result, out / "metrics.json")
    return result


def metrics_table(metrics: dict) -> str:
    """A Markdown table of :func:`evaluate_mmgp_run`'s ``metrics``."""
    cols = ["rrmse", "q2", "relative_l2", "coverage", "crps", "nll"]
    lines = ["| output | RRMSE | Q^2 | rel. L2 | 95% coverage | CRPS | NLL |",
             "|---|---|---|---|---|---|---|"]
    for name, s in metrics.items():
        cells = [f"{s[c]:.4g}" if c in s else "-" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def predict_mesh(run_dir: str | os.PathLike, mesh_path: str | os.PathLike, inputs: dict,
                 out_path: str | os.PathLike, *, overwrite: bool = False) -> dict:
    """Predict an MMGP run's outputs on one mesh; write a ``.vtu`` with ``<field>_mean`` and
    ``<field>_std`` point fields (the mesh's own point fields are kept).

    Parameters
    ----------
    run_dir : path-like
    mesh_path : path-like
        A mesh with tagged wall and far field (``surrogates generate airfoil`` writes them).
    inputs : dict
        Value of each of the run's scalar inputs (e.g. ``{"alpha": 4.0, "mach": 0.3}``).
    out_path : path-like
        ``.vtu`` (or another format meshio writes) to create.
    overwrite : bool

    Returns
    -------
    dict
        ``scalars`` (name -> (mean, std)), ``fields`` (names written), ``seconds``.

    Raises
    ------
    FileNotFoundError, FileExistsError, ValueError
        Missing mesh, existing output without ``overwrite``, missing or unknown inputs.
    """
    from meshes.airfoil_mesh import read_mesh, write_mesh

    model, run_config = load_mmgp_run(run_dir)
    names = run_config["config"]["inputs"]
    missing = [n for n in names if n not in inputs]
    unknown = [n for n in inputs if n not in names]
    if missing or unknown:
        raise ValueError(f"the run needs the inputs {names}; missing {missing}, unknown "
                         f"{unknown}")
    if not Path(mesh_path).is_file():
        raise FileNotFoundError(f"no mesh file at {mesh_path}")
    out = Path(out_path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    try:
        mesh = read_mesh(mesh_path)
    except (meshio.ReadError, OSError, ValueError, KeyError, IndexError,
            SyntaxError) as err:  # what meshio raises on a file it cannot parse
        raise ValueError(f"{mesh_path} is not a readable mesh ({' '.join(str(err).split())}); "
                         "give a .vtu written by `surrogates generate airfoil` or meshio") from err
    bad = [n for n in names if not np.isfinite(float(inputs[n]))]
    if bad:
        raise ValueError(f"the inputs {bad} must be finite numbers, got "
                         f"{[inputs[n] for n in bad]}")
    x = np.array([[float(inputs[n]) for n in names]])
    start = time.perf_counter()
    mean, std = model.predict([mesh], x, return_std=True)
    seconds = time.perf_counter() - start
    point_data = dict(mesh.point_data)
    for name in model.field_names_:
        point_data[f"{name}_mean"] = np.asarray(mean[name][0])
        point_data[f"{name}_std"] = np.asarray(std[name][0])
    result_mesh = meshio.Mesh(mesh.points, mesh.cells, point_data=point_data,
                              cell_data=mesh.cell_data, cell_sets=mesh.cell_sets)
    write_mesh(result_mesh, out, overwrite=overwrite)
    return {"scalars": {n: (float(mean[n][0]), float(std[n][0])) for n in model.scalar_names_},
            "fields": [f"{n}_{s}" for n in model.field_names_ for s in ("mean", "std")],
            "seconds": seconds, "out": str(out)}
