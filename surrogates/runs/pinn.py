"""Output folders of physics-informed solves (``surrogates solve pig``).

:func:`solve_to_folder` trains a PIG (or the PINN baseline) on one problem of
:mod:`surrogates.models.pinn.problems` and writes, into a new folder:

* ``solution.nc``: the prediction ``u``, the reference ``u_ref`` and ``error = u - u_ref`` on a
  tensor grid over the problem's box (dims named after ``Problem.coords``), netCDF4, atomic;
* ``solution.png``: prediction, reference and error (for three coordinates, at the last time);
* ``summary.json``: relative L2 error, wall time, the resolved configuration, the loss history;
* ``params.npz`` + ``model.json``: the trained parameters (plain arrays, loaded with
  ``allow_pickle=False``) and the model description (:func:`operators.pig.model_to_dict`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr

from operators.base import atomic_write
from operators.pig import model_from_dict, model_to_dict
from surrogates import __version__
from surrogates.data.common import (
    check_memory,
    load_npz,
    parse_json,
    write_json,
    write_netcdf,
)
from surrogates.models.pinn import TrainResult, evaluate, predict, train
from surrogates.models.pinn.defaults import default_settings
from surrogates.models.pinn.problems import get_problem
from surrogates.runs.calibration import uq_report
from surrogates.runs.folder import prepare_run_dir, read_run_config, write_run_config

#: ``run_config.json["kind"]`` of a ``surrogates solve`` folder.
RUN_KIND = "pinn"


def resolved_settings(pde: str, model: str = "pig",
                      problem_kwargs: dict[str, Any] | None = None,
                      train_kwargs: dict[str, Any] | None = None,
                      n_grid: int | None = None) -> tuple[dict[str, Any], int]:
    """``(train_kwargs, n_grid)``: the given settings over the problem's defaults
    (:func:`surrogates.models.pinn.defaults.default_settings`, the best settings of
    ``benchmarks/pig_vs_pinn.py`` for ``pde`` and ``model``).

    ``model_kwargs`` merge key by key. A default ``mean_init="grid"`` (flow mixing) gives way
    to ``"uniform"`` when the given ``n_gaussians`` is not an m-th power of the dimension, so
    ``--gaussians 1000`` works without also naming ``--mean-init``.
    """
    settings = default_settings(pde, model, problem_kwargs)
    given = dict(train_kwargs or {})
    given_model = dict(given.pop("model_kwargs", None) or {})
    model_kwargs = {**settings.model, **given_model}
    if model_kwargs.get("mean_init") == "grid" and "mean_init" not in given_model \
            and "n_gaussians" in given_model:
        dim = get_problem(pde, **(problem_kwargs or {})).dim
        n = int(given_model["n_gaussians"])
        if round(n ** (1.0 / dim)) ** dim != n:
            model_kwargs["mean_init"] = "uniform"
    resolved = {**settings.train, **given}
    if model_kwargs:
        resolved["model_kwargs"] = model_kwargs
    return resolved, settings.n_grid if n_grid is None else n_grid


def solve_to_folder(pde: str, out_dir: str | os.PathLike, *, model: str = "pig",
                    problem_kwargs: dict[str, Any] | None = None,
                    train_kwargs: dict[str, Any] | None = None, n_grid: int | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
    """Train on ``pde`` (a :data:`surrogates.models.pinn.problems.PROBLEMS` name) and write the
    folder.

    ``train_kwargs`` go to :func:`surrogates.models.pinn.train` (``n_steps``, ``optimizer``, ``lr``,
    ``boundary_weight``, ``model_kwargs``, ...) over the problem's defaults, the best settings
    of ``benchmarks/pig_vs_pinn.py`` (:mod:`surrogates.models.pinn.defaults`,
    :func:`resolved_settings`); ``n_grid`` (points per axis of the output grid) defaults to the
    benchmark's evaluation grid (41 for flow mixing, else 101). Returns the summary written to
    ``summary.json``.

    Raises
    ------
    FileExistsError
        If ``out_dir`` holds files and ``overwrite`` is False.
    ValueError
        For an unknown problem or bad settings.
    """
    out = Path(out_dir)
    problem = get_problem(pde, **(problem_kwargs or {}))
    train_kwargs, n_grid = resolved_settings(pde, model, problem_kwargs, train_kwargs, n_grid)
    prepare_run_dir(out, overwrite, resume=False)
    result = train(problem, model, **train_kwargs)
    ev = evaluate(result, problem, n_grid)
    coords = {name: (name, axis) for name, axis in zip(ev.coords, ev.axes, strict=True)}
    ds = xr.Dataset({"u": (ev.coords, ev.u), "u_ref": (ev.coords, ev.u_ref),
                     "error": (ev.coords, ev.u - ev.u_ref)}, coords=coords)
    ds["u"].attrs = {"long_name": f"{model.upper()} solution", "units": "1"}
    ds["u_ref"].attrs = {"long_name": "reference solution", "units": "1"}
    ds["error"].attrs = {"long_name": "u - u_ref", "units": "1"}
    ds.attrs = {"title": f"{problem.description}", "source": f"surrogates {__version__}",
                "config": json.dumps(result.config, default=str), "relative_l2": ev.rel_l2}
    write_netcdf(ds, out / "solution.nc", overwrite=True)
    from surrogates import plots

    plots.pinn_solution(ev.coords, ev.axes, ev.u, ev.u_ref, f"{pde}, {model}: relative L2 "
                        f"{ev.rel_l2:.2e}", out / "solution.png")
    flat, _ = jax.tree_util.tree_flatten_with_path(result.params)
    arrays = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}

    def write_params(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(out / "params.npz", write_params)
    write_json(model_to_dict(result.model), out / "model.json")
    summary = {"pde": pde, "model": model, "relative_l2": ev.rel_l2,
               "wall_time_s": result.wall_time, "config": result.config,
               "loss_history": np.asarray(result.history["loss"]).tolist()}
    write_json(summary, out / "summary.json")
    write_run_config(out, RUN_KIND, {"pde": pde, "model": model,
                                     "problem": dict(problem_kwargs or {}),
                                     "train": result.config, "n_grid": n_grid})
    return summary


def load_params(out_dir: str | os.PathLike) -> tuple[Any, Any]:
    """The model and its trained parameter pytree from a folder (no pickled code is run).

    ``model.apply(params, x)`` then evaluates the solution at a point ``x``.
    """
    out = Path(out_dir)
    model = model_from_dict(parse_json((out / "model.json").read_text(), out / "model.json"))
    template = model.init(jax.random.key(0))
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    arrays = load_npz(out / "params.npz", "trained parameters")
    missing = [key for key in (jax.tree_util.keystr(path) for path, _ in paths)
               if key not in arrays]
    if missing:
        raise ValueError(f"{out / 'params.npz'} is damaged: it lacks the parameters "
                         f"{missing[:3]}{' ...' if len(missing) > 3 else ''}")
    leaves = [arrays[jax.tree_util.keystr(path)] for path, _ in paths]
    return model, jax.tree_util.tree_unflatten(treedef, leaves)


def load_solution(out_dir: str | os.PathLike):
    """``(TrainResult, Problem)`` of a ``surrogates solve`` folder, rebuilt without pickles."""
    config = read_run_config(out_dir, kinds=(RUN_KIND,))
    summary = json.loads((Path(out_dir) / "summary.json").read_text())
    model, params = load_params(out_dir)
    problem = get_problem(config["pde"], **config.get("problem", {}))
    result = TrainResult(params=params, model=model, problem=problem.name,
                         history={"loss": np.asarray(summary.get("loss_history", []))},
                         wall_time=float(summary.get("wall_time_s", 0.0)),
                         config=config.get("train", {}))
    return result, problem


def evaluate_solution(out_dir: str | os.PathLike, *, n_grid: int | None = None,
                      eval_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Relative L2 error of a solved folder against the problem's reference on an
    ``n_grid``-point-per-axis grid (default: the grid it was solved with); writes
    ``metrics.json`` to ``eval_dir`` (default ``out_dir/evaluation``)."""
    config = read_run_config(out_dir, kinds=(RUN_KIND,))
    result, problem = load_solution(out_dir)
    ev = evaluate(result, problem, n_grid or config.get("n_grid", 101))
    metrics = {"pde": config["pde"], "model": config["model"], "relative_l2": ev.rel_l2,
               "n_grid": [len(a) for a in ev.axes],
               "max_abs_error": float(np.max(np.abs(ev.u - ev.u_ref))),
               "uq": {"u": uq_report(ev.u_ref, ev.u)}}
    out = Path(eval_dir) if eval_dir else Path(out_dir) / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    write_json(metrics, out / "metrics.json")
    return metrics


def predict_solution(out_dir: str | os.PathLike, out: str | os.PathLike, *, n_grid: int = 101,
                     overwrite: bool = False) -> Path:
    """The solution of a solved folder on an ``n_grid``-point tensor grid, as netCDF ``u``."""
    from surrogates.data.common import refuse_existing

    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 2:
        raise ValueError(f"--grid must be an integer >= 2 (points per axis), got {n_grid!r}")
    out = refuse_existing(out, overwrite)
    result, problem = load_solution(out_dir)
    check_memory(4 * 8.0 * n_grid ** problem.dim, f"a {n_grid}^{problem.dim} grid",
                 "lower --grid")
    axes = [np.linspace(a, b, n_grid) for a, b in zip(problem.lower, problem.upper, strict=True)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, problem.dim)
    u = predict(result, mesh).reshape((n_grid,) * problem.dim)
    ds = xr.Dataset({"u": (problem.coords, u)},
                    coords={c: (c, a) for c, a in zip(problem.coords, axes, strict=True)},
                    attrs={"source": f"surrogates {__version__}", "run": str(Path(out_dir))})
    write_netcdf(ds, out, overwrite=overwrite)
    return out
