"""Run folders for autoregressive neural PDE solvers on PDEBench 1D files (CAPE and baselines).

:func:`train_rollout` trains a one-step model (plain FNO or U-Net, or either behind CAPE) inside
:class:`operators.autoregressive.AutoregressiveStepper` with the teacher-forcing to
autoregressive curriculum, on one or several PDEBench files (one per parameter value, read with
:func:`surrogates.data.pdebench.open_pdebench_files`). The run folder holds ``run_config.json``,
``model.pt`` (best validation rollout), ``checkpoint.pt`` and ``history.json``, as every run of
the package (:mod:`surrogates.runs.operators`).

:func:`evaluate_rollout_run` rolls the model out over whole trajectories from their first
``context`` frames and writes PDEBench's metrics (nRMSE, RMSE, max error, Fourier-band errors;
:mod:`surrogates.metrics.pde`), overall and per parameter value, with plots of the error growth
and of the rollouts.

Split of every file: PDEBench's (the first ``test_fraction`` of the samples are the test set);
the next ``validation_fraction`` validate, the rest train.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators.autoregressive import AutoregressiveStepper
from operators.base import load_model
from surrogates.data.common import trajectory_pairs, write_json
from surrogates.data.pdebench import open_pdebench_files
from surrogates.metrics import pde as pde_metrics
from surrogates.runs.calibration import uq_report
from surrogates.runs.folder import read_run_config, start_run
from surrogates.training import MODEL_NAME, TrainConfig, TrainResult, fit, resolve_device

#: ``run_config.json["kind"]`` of a rollout run.
RUN_KIND = "pde_rollout"

_FNO = {"n_modes": [32], "hidden_channels": 32, "n_layers": 4}
_UNET = {"features": 16}
#: Model names of :func:`train_rollout`: registered class and default constructor arguments
#: (channel counts and parameter counts are filled in from the data).
MODEL_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "fno": ("FNO", _FNO),
    "unet": ("UNet1d", _UNET),
    "cape-fno": ("CAPEOperator", {"base_class": "FNO", "base_config": _FNO}),
    "cape-unet": ("CAPEOperator", {"base_class": "UNet1d", "base_config": _UNET}),
}
#: Warm-up epochs on CAPE's auxiliary loss (CAPE models only).
CAPE_WARMUP_EPOCHS = 2
_NOT_PARAMETERS = {"u", "file_index"}


@dataclass
class PDEBenchDataSpec:
    """Which PDEBench files, at which resolution, split how.

    Attributes
    ----------
    paths : list of str
        PDEBench 1D files of one PDE (e.g. one per parameter value), same grid.
    reduced_resolution, reduced_resolution_t : int
        PDEBench's strides in space and time.
    test_fraction : float
        First share of each file's samples kept for testing (PDEBench: 0.1).
    validation_fraction : float
        Next share of each file's samples used for validation.
    """

    paths: list[str]
    reduced_resolution: int = 1
    reduced_resolution_t: int = 1
    test_fraction: float = 0.1
    validation_fraction: float = 0.1

    def __post_init__(self):
        if isinstance(self.paths, (str, os.PathLike)):
            self.paths = [self.paths]
        self.paths = [str(p) for p in self.paths]
        if not self.paths:
            raise ValueError("no PDEBench files given")
        for name in ("test_fraction", "validation_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.test_fraction + self.validation_fraction >= 1.0:
            raise ValueError("test_fraction + validation_fraction must leave training samples")

    def open(self, paths: list[str] | None = None) -> xr.Dataset:
        """The files as one dataset ``u (sample, time, x)`` plus parameters over ``sample``."""
        return open_pdebench_files(paths or self.paths,
                                   reduced_resolution=self.reduced_resolution,
                                   reduced_resolution_t=self.reduced_resolution_t)

    def split(self, ds: xr.Dataset) -> dict[str, np.ndarray]:
        """Sample indices of ``train``, ``validation``, ``test`` and ``all``, file by file."""
        out: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
        file_index = ds["file_index"].values
        for f in np.unique(file_index):
            idx = np.flatnonzero(file_index == f)
            n_test = int(len(idx) * self.test_fraction)
            n_val = int(len(idx) * self.validation_fraction)
            out["test"].append(idx[:n_test])
            out["validation"].append(idx[n_test:n_test + n_val])
            out["train"].append(idx[n_test + n_val:])
        split = {k: np.concatenate(v) for k, v in out.items()}
        split["all"] = np.arange(ds.sizes["sample"])
        return split


def parameter_names(ds: xr.Dataset) -> list[str]:
    """The PDE parameters of a dataset read from PDEBench files (``beta``; ``Nu``; ...)."""
    return sorted(n for n in ds.data_vars if n not in _NOT_PARAMETERS
                  and ds[n].dims == ("sample",))


def build_stepper(model: str, n_params: int, *, context: int = 1,
                  model_config: dict[str, Any] | None = None,
                  warmup_epochs: int | None = None, aux_weight: float = 6e-5,
                  step_normalization: str = "frame", seed: int = 0) -> AutoregressiveStepper:
    """An :class:`AutoregressiveStepper` around one of :data:`MODEL_KINDS` (one variable).

    ``model_config`` overrides the defaults (for CAPE models: the CAPE arguments and
    ``base_config``). ``warmup_epochs`` defaults to :data:`CAPE_WARMUP_EPOCHS` for CAPE models,
    0 otherwise; ``step_normalization="initial"`` suits decaying solutions (see
    :class:`~operators.autoregressive.AutoregressiveStepper`). Weights are initialised from
    ``seed``.
    """
    if model not in MODEL_KINDS:
        raise ValueError(f"model must be one of {sorted(MODEL_KINDS)}, got {model!r}")
    step_class, defaults = MODEL_KINDS[model]
    config = {**defaults, **(model_config or {}), "in_channels": context, "out_channels": 1}
    is_cape = step_class == "CAPEOperator"
    if is_cape:
        config["n_params"] = n_params
    if warmup_epochs is None:
        warmup_epochs = CAPE_WARMUP_EPOCHS if is_cape else 0
    torch.manual_seed(seed)
    return AutoregressiveStepper(step_class=step_class, step_config=config, n_params=n_params,
                                 context=context, aux_weight=aux_weight,
                                 warmup_epochs=warmup_epochs,
                                 step_normalization=step_normalization)


def train_rollout(data: PDEBenchDataSpec, run_dir: str | os.PathLike, *, model: str = "cape-fno",
                  model_config: dict[str, Any] | None = None, context: int = 1,
                  warmup_epochs: int | None = None, aux_weight: float = 6e-5,
                  step_normalization: str = "frame",
                  train_config: TrainConfig | None = None, overwrite: bool = False,
                  resume: bool = False) -> TrainResult:
    """Train an autoregressive solver on PDEBench files into ``run_dir`` (see the module).

    Parameters
    ----------
    data : PDEBenchDataSpec
    run_dir : path-like
        Run folder to create (or continue with ``resume``).
    model : {"fno", "unet", "cape-fno", "cape-unet"}
    model_config, context, warmup_epochs, aux_weight, step_normalization :
        See :func:`build_stepper`.
    train_config : TrainConfig, optional
        Default: CAPE's optimisation (Adam, lr 3e-3, StepLR halving every fifth of the epochs),
        40 epochs, batch 8.

    Raises
    ------
    FileExistsError
        If ``run_dir`` is not empty and neither ``overwrite`` nor ``resume`` is given.
    ValueError
        On inconsistent files or settings, or when resuming with other settings.
    """
    train_config = train_config or TrainConfig(epochs=40, batch_size=8, lr=3e-3,
                                               scheduler="step", step_size=8, gamma=0.5)
    run_dir = Path(run_dir)
    ds = data.open()
    params = parameter_names(ds)
    split = data.split(ds)
    if len(split["train"]) == 0:
        raise ValueError("no training samples: the files are too small for the split")
    stepper = build_stepper(model, len(params), context=context, model_config=model_config,
                            warmup_epochs=warmup_epochs, aux_weight=aux_weight,
                            step_normalization=step_normalization, seed=train_config.seed)
    run_config = {"model": model, "model_class": "AutoregressiveStepper",
                  "model_config": stepper.config, "parameters": params,
                  "data": dataclasses.asdict(data), "train": dataclasses.asdict(train_config)}
    start_run(run_dir, RUN_KIND, run_config, overwrite=overwrite, resume=resume)
    train = trajectory_pairs(ds, split["train"], parameters=params)
    validation = trajectory_pairs(ds, split["validation"], parameters=params)
    return fit(stepper, train, validation, train_config, run_dir, resume=resume)


@torch.no_grad()
def rollout_predictions(model: AutoregressiveStepper, ds: xr.Dataset, samples: np.ndarray,
                        parameters: list[str], batch_size: int = 64,
                        device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Full rollouts of ``samples`` and their truth, both ``(B, T, N)`` float32 arrays."""
    pairs = trajectory_pairs(ds, samples, parameters=parameters)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    pred = torch.cat([model(pairs.inputs[i:i + batch_size].to(dev)).cpu()
                      for i in range(0, len(pairs), batch_size)])
    return pred[:, 0].numpy(), pairs.targets[:, 0].numpy()


def _scores(pred: np.ndarray, truth: np.ndarray, t_start: int) -> dict[str, Any]:
    bands = pde_metrics.fourier_band_errors(pred, truth, t_start)
    nrmse = pde_metrics.nrmse(pred, truth, t_start)
    return {"nrmse": nrmse.value, "rmse": pde_metrics.rmse(pred, truth, t_start).value,
            "max_error": pde_metrics.max_error(pred, truth, t_start).value,
            **{f"fourier_{name}": m.value for name, m in bands.items()},
            "nrmse_per_time": nrmse.per_time.tolist(), "n_samples": int(len(pred))}


def _rollouts(run_dir: Path, paths: list[str] | None, split: str, device: str):
    """``(ds, samples, parameters, t_start, pred, truth)`` of a run on a split of its files."""
    config = read_run_config(run_dir, kinds=(RUN_KIND,))
    if split not in ("test", "validation", "train", "all"):
        raise ValueError(f"split must be test, validation, train or all, got {split!r}")
    data = PDEBenchDataSpec(**config["data"])
    ds = data.open(paths)
    params = config["parameters"]
    if parameter_names(ds) != params:
        raise ValueError(f"the files hold the parameters {parameter_names(ds)}, the run was "
                         f"trained with {params}")
    samples = data.split(ds)[split]
    if len(samples) == 0:
        raise ValueError(f"the {split!r} split of these files is empty; try split='all'")
    model = load_model(run_dir / MODEL_NAME)
    pred, truth = rollout_predictions(model, ds, samples, params, device=device)
    return ds, samples, params, model.context, pred, truth


def evaluate_rollout_run(run_dir: str | os.PathLike, paths: list[str] | None = None, *,
                         split: str = "test", out_dir: str | os.PathLike | None = None,
                         device: str = "auto") -> dict[str, Any]:
    """Roll a rollout run's best model out on PDEBench files and score it.

    Parameters
    ----------
    run_dir : path-like
        Folder written by :func:`train_rollout`.
    paths : list of str, optional
        Files to evaluate on (default: the training files). Files with parameter values never
        trained on test generalisation; use ``split="all"`` for them.
    split : {"test", "validation", "train", "all"}
        The run's per-file split applied to ``paths``.
    out_dir : path-like, optional
        Default ``run_dir/evaluation``: ``metrics.json``, ``rollout_error.png`` (nRMSE against
        time per parameter value) and ``rollouts.png`` (truth, prediction and error in the
        ``(x, t)`` plane, one sample per parameter value).

    Returns
    -------
    dict
        ``overall`` and ``by_parameter`` (keyed ``"beta=0.4"``) metrics: nRMSE, RMSE, max
        error, Fourier-band RMSEs (context frames excluded), nRMSE per time.
    """
    from surrogates import plots

    run_dir = Path(run_dir)
    ds, samples, params, t_start, pred, truth = _rollouts(run_dir, paths, split, device)
    keys = [",".join(f"{n}={ds[n].values[s]:g}" for n in params) for s in samples]
    result = {"run": str(run_dir), "split": split, "files": ds.attrs.get("source_files"),
              "overall": _scores(pred, truth, t_start), "by_parameter": {}}
    for key in dict.fromkeys(keys):
        rows = np.array([k == key for k in keys])
        result["by_parameter"][key] = _scores(pred[rows], truth[rows], t_start)
    result["uq"] = {"u": uq_report(truth, pred)}
    out = Path(out_dir) if out_dir is not None else run_dir / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "metrics.json")
    times = ds["time"].values[t_start:]
    plots.rollout_error({k: v["nrmse_per_time"] for k, v in result["by_parameter"].items()},
                        times, out / "rollout_error.png")
    firsts = [keys.index(k) for k in result["by_parameter"]]
    plots.rollout_fields(truth[firsts], pred[firsts], ds["x"].values, ds["time"].values,
                         list(result["by_parameter"]), out / "rollouts.png")
    return result


def predict_rollout_run(run_dir: str | os.PathLike, out: str | os.PathLike,
                        paths: list[str] | None = None, *, split: str = "test",
                        overwrite: bool = False, device: str = "auto") -> Path:
    """Write a rollout run's full autoregressive rollouts of a split to netCDF (atomically).

    Variables on ``(sample, time, x)``: ``u``, the rollout from the first ``context`` frames
    (which it copies), and ``u_reference``, the files' solution; the PDE parameters of each
    sample are coordinates on ``sample``.
    """
    from surrogates.data.common import refuse_existing, write_netcdf

    out = refuse_existing(out, overwrite)
    run_dir = Path(run_dir)
    ds, samples, params, t_start, pred, truth = _rollouts(run_dir, paths, split, device)
    dims = ("sample", "time", "x")
    result = xr.Dataset(
        {"u": (dims, pred), "u_reference": (dims, truth)},
        coords={"sample": samples, "time": ds["time"].values, "x": ds["x"].values,
                **{n: ("sample", ds[n].values[samples]) for n in params}},
        attrs={"run": str(run_dir.resolve()), "split": split, "context_frames": int(t_start)})
    write_netcdf(result, out, overwrite=overwrite)
    return out
