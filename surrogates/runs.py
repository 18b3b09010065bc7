"""Run folders: train an operator on a dataset file, and evaluate a trained run on a dataset.

A run folder written by :func:`train_operator` holds ``run_config.json`` (which data, which
variables, which split, which model, which optimisation settings: enough to repeat the run),
``model.pt`` (best model, physical units in and out), ``checkpoint.pt`` and ``history.json``.
:func:`evaluate_run` adds ``evaluation/metrics.json`` and PNG plots.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from operators.base import load_model
from operators.normalization import NormalizedOperator
from surrogates import metrics, plots
from surrogates.data.common import (
    open_netcdf,
    split_samples,
    stack_examples,
    to_torch,
    write_json,
)
from surrogates.training import MODEL_NAME, TrainConfig, TrainResult, fit, predict

RUN_CONFIG_NAME = "run_config.json"


@dataclass
class DataSpec:
    """Which variables of a dataset file become inputs and targets, and how it is split."""

    path: str
    inputs: list[str] = field(default_factory=lambda: ["X"])
    targets: list[str] = field(default_factory=lambda: ["subgrid_forcing"])
    spatial_dims: list[str] = field(default_factory=lambda: ["k"])
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0


def _prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            raise FileExistsError(f"run folder {run_dir} exists and is not empty; pass "
                                  "--overwrite to replace it or --resume to continue it")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def train_operator(data: DataSpec, run_dir: str | os.PathLike, *, model_class: str,
                   model_config: dict[str, Any], train_config: TrainConfig,
                   overwrite: bool = False, resume: bool = False) -> TrainResult:
    """Train ``model_class(**model_config)`` (wrapped with normalisers) on a dataset file.

    ``in_channels`` and ``out_channels`` are filled in from the data spec. Normalisers are fitted
    on the training split only. With ``resume`` the run continues from its checkpoint.
    """
    run_dir = Path(run_dir)
    _prepare_run_dir(run_dir, overwrite, resume)
    ds = open_netcdf(data.path)
    splits = to_torch(ds, inputs=data.inputs, targets=data.targets,
                      spatial_dims=data.spatial_dims, fractions=data.fractions,
                      seed=data.split_seed)
    model_config = {**model_config, "in_channels": len(data.inputs),
                    "out_channels": len(data.targets)}
    run_config = {"model_class": model_class, "model_config": model_config,
                  "data": dataclasses.asdict(data), "train": dataclasses.asdict(train_config)}
    torch.manual_seed(train_config.seed)
    model = NormalizedOperator(model_class=model_class, model_config=model_config)
    model.input_normalizer.load_state_dict(splits.input_normalizer.state_dict())
    model.target_normalizer.load_state_dict(splits.target_normalizer.state_dict())
    run_config["model_config"] = model.model.config
    config_path = run_dir / RUN_CONFIG_NAME
    if resume and config_path.exists():
        saved = json.loads(config_path.read_text())
        for key in ("model_class", "model_config", "data"):
            if saved[key] != run_config[key]:
                raise ValueError(f"cannot resume {run_dir}: its {key} was {saved[key]}, now "
                                 f"{run_config[key]}; start a new run folder instead")
    write_json(run_config, config_path)
    return fit(model, splits.train, splits.validation, train_config, run_dir, resume=resume)


def load_run(run_dir: str | os.PathLike) -> tuple[NormalizedOperator, dict[str, Any]]:
    """The best model of a run folder and its ``run_config.json``."""
    run_dir = Path(run_dir)
    config_path = run_dir / RUN_CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: {config_path} is missing")
    model = load_model(run_dir / MODEL_NAME)
    return model, json.loads(config_path.read_text())


def evaluate_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None, *,
                 split: str = "test", out_dir: str | os.PathLike | None = None,
                 overwrite: bool = True) -> dict[str, Any]:
    """Evaluate a run's best model on one split of a dataset; write metrics JSON and plots.

    Parameters
    ----------
    run_dir : path-like
        Folder written by :func:`train_operator`.
    data_path : path-like, optional
        Dataset to evaluate on (default: the one the run was trained on). Its split is recomputed
        with the run's fractions and seed, so ``"test"`` never overlaps the training samples of a
        dataset generated with the same configuration.
    split : {"train", "validation", "test", "all"}
    out_dir : path-like, optional
        Default ``run_dir/evaluation``.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    model, config = load_run(run_dir)
    spec = DataSpec(**config["data"])
    data_path = Path(data_path or spec.path)
    ds = open_netcdf(data_path)
    if split == "all":
        idx = np.arange(ds.sizes["sample"])
    else:
        splits = split_samples(ds.sizes["sample"], spec.fractions, seed=spec.split_seed)
        if split not in splits:
            raise ValueError(f"split must be one of {sorted(splits) + ['all']}, got {split!r}")
        idx = splits[split]
    subset = ds.isel(sample=idx)
    x = stack_examples(subset, spec.inputs, spec.spatial_dims)
    y = stack_examples(subset, spec.targets, spec.spatial_dims)
    y_hat = predict(model, torch.as_tensor(x, dtype=torch.float32)).numpy()
    result = {"data": str(data_path), "split": split, "n_samples": int(len(idx)),
              "overall": metrics.summary(y_hat, y),
              "per_target": {name: metrics.summary(y_hat[:, c], y[:, c])
                             for c, name in enumerate(spec.targets)}}
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "evaluation"
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "metrics.json")
    history_path = Path(run_dir) / "history.json"
    if history_path.is_file():
        plots.training_curves(json.loads(history_path.read_text()), out / "training_curves.png")
    plots.parity(y_hat, y, spec.targets, out / "parity.png")
    plots.snapshot(x, y_hat, y, spec.inputs, spec.targets, out / "snapshot.png")
    return result
