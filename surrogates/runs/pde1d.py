r"""Run folders for autoregressive neural PDE solvers on PDEBench 1D files (CAPE and baselines).

:func:`train_rollout` trains a one-step model (plain FNO or U-Net, or either behind CAPE) inside
:class:`operators.autoregressive.AutoregressiveStepper` with the teacher-forcing to
autoregressive curriculum, on one or several PDEBench files (one per parameter value, read with
:func:`surrogates.data.pdebench.open_pdebench_files`). The run folder holds ``run_config.json``,
``model.pt`` (best validation rollout), ``checkpoint.pt`` and ``history.json``, as every run of
the package (:mod:`surrogates.runs.operators`). :func:`train_rollout_ensemble` trains a deep
ensemble of :math:`M` such runs (seeds ``seed .. seed + M - 1``) in ``member-*`` subfolders.

:func:`evaluate_rollout_run` rolls the model (every member) out over whole trajectories from
their first ``context`` frames and writes PDEBench's metrics (nRMSE, RMSE, max error,
Fourier-band errors; :mod:`surrogates.metrics.pde`) of the rollout (the members' mean),
overall and per parameter value, with plots of the error growth and of the rollouts, and the
uncertainty block (:func:`surrogates.runs.calibration.uq_report`) with coverage per lead time.

Uncertainty of a rollout at lead time :math:`t` (the context frames are given and excluded):

* ensemble: the members' mean :math:`\bar u_t = \frac1M \sum_m u^{(m)}_t` and their sample std
  :math:`s_t = \big(\frac{1}{M-1}\sum_m (u^{(m)}_t - \bar u_t)^2\big)^{1/2}`;
* ``--calibrate FRACTION``: that fraction of each file's *training* samples is held out of the
  fit (:func:`surrogates.metrics.conformal.calibration_split`; validation and test samples are
  never drawn) and the trained run rolls them out in full. The split-conformal scale
  :math:`\hat q_t` is fitted **per lead time** (``output_axis`` on time) on the normalised
  residuals :math:`|u_t - \bar u_t| / s_t` of the ensemble, or on the absolute residuals
  :math:`|u_t - \hat u_t|` of a single model, so the interval :math:`\bar u_t \pm \hat q_t s_t`
  grows with lead the way the rollout error does. If calibration and test trajectories are
  exchangeable (same files, same initial-condition law) each lead's interval covers a random
  point of a new rollout with probability :math:`\ge 1 - \alpha` (marginal); nothing holds
  conditional on the initial condition, nor for parameter values or horizons never
  calibrated on.

Split of every file: PDEBench's (the first ``test_fraction`` of the samples are the test set);
the next ``validation_fraction`` validate, the rest train (less the calibration samples).
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
from surrogates.metrics.conformal import (
    calibration_split,
    recalibrator_from_dict,
)
from surrogates.metrics.uq_block import coverage_by_group
from surrogates.runs.calibration import (
    SMALLEST_ALPHA,
    calibrated_std,
    fit_calibration,
    min_calibration_examples,
    read_calibration,
    uq_report,
)
from surrogates.runs.folder import member_names, read_run_config, start_run, train_members
from surrogates.training import (
    MODEL_NAME,
    TrainConfig,
    TrainResult,
    fit,
    resolve_device,
)

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
    calibration : float
        Share of each file's training samples held out of the fit for split-conformal
        calibration (drawn at random with seed = the file's index); 0: none.
    """

    paths: list[str]
    reduced_resolution: int = 1
    reduced_resolution_t: int = 1
    test_fraction: float = 0.1
    validation_fraction: float = 0.1
    calibration: float = 0.0

    def __post_init__(self):
        if isinstance(self.paths, (str, os.PathLike)):
            self.paths = [self.paths]
        self.paths = [str(p) for p in self.paths]
        if not self.paths:
            raise ValueError("no PDEBench files given")
        for name in ("test_fraction", "validation_fraction", "calibration"):
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
        """Sample indices of ``train``, ``validation``, ``test`` and ``all``, file by file; with
        ``calibration`` also ``calibration``, drawn from (and removed from) each file's
        training samples (:func:`~surrogates.metrics.conformal.calibration_split`)."""
        out: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": [],
                                            "calibration": []}
        file_index = ds["file_index"].values
        for f in np.unique(file_index):
            idx = np.flatnonzero(file_index == f)
            n_test = int(len(idx) * self.test_fraction)
            n_val = int(len(idx) * self.validation_fraction)
            train = idx[n_test + n_val:]
            if self.calibration:
                train, held = calibration_split(train, self.calibration, seed=int(f),
                                                test=idx[:n_test])
                out["calibration"].append(held)
            out["test"].append(idx[:n_test])
            out["validation"].append(idx[n_test:n_test + n_val])
            out["train"].append(train)
        split = {k: np.concatenate(v) for k, v in out.items() if v}
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


def _default_train_config() -> TrainConfig:
    """CAPE's optimisation: Adam, lr 3e-3, StepLR halving every fifth of 40 epochs, batch 8."""
    return TrainConfig(epochs=40, batch_size=8, lr=3e-3, scheduler="step", step_size=8,
                       gamma=0.5)


def _training_data(data: PDEBenchDataSpec) -> tuple[xr.Dataset, list[str], dict[str, np.ndarray]]:
    """The files, their parameter names and split; refuses an empty training split and a
    calibration split too small for the 95 % conformal interval (``n < 1/alpha - 1``)."""
    ds = data.open()
    split = data.split(ds)
    if len(split["train"]) == 0:
        raise ValueError("no training samples: the files are too small for the split")
    if data.calibration:
        n_cal, need = len(split["calibration"]), min_calibration_examples()
        if n_cal < need:
            raise ValueError(
                f"calibration {data.calibration} holds out {n_cal} training trajectories in "
                f"all, too few for the {1 - SMALLEST_ALPHA:.0%} conformal interval (alpha = "
                f"{SMALLEST_ALPHA} < 1/(n+1) = {1 / (n_cal + 1):.3g}); need at least {need}: "
                "raise the fraction or use files with more samples")
    return ds, parameter_names(ds), split


def _train_member(ds: xr.Dataset, params: list[str], split: dict[str, np.ndarray],
                  run_dir: Path, run_config: dict[str, Any], stepper_args: dict[str, Any],
                  train_config: TrainConfig, overwrite: bool, resume: bool) -> TrainResult:
    """Build a stepper from ``train_config.seed``, start ``run_dir`` and fit it."""
    stepper = build_stepper(n_params=len(params), seed=train_config.seed, **stepper_args)
    start_run(run_dir, RUN_KIND, {**run_config, "model_config": stepper.config,
                                  "train": dataclasses.asdict(train_config)},
              overwrite=overwrite, resume=resume)
    train = trajectory_pairs(ds, split["train"], parameters=params)
    validation = trajectory_pairs(ds, split["validation"], parameters=params)
    return fit(stepper, train, validation, train_config, run_dir, resume=resume)


def _rollout_setup(data: PDEBenchDataSpec, **stepper_args):
    """``(ds, parameters, split, stepper_args, run_config)`` shared by a run and an ensemble:
    the files, their split, the stepper's arguments (``step_normalization`` resolved by
    :func:`default_step_normalization`) and the run configuration."""
    ds, params, split = _training_data(data)
    stepper_args["step_normalization"] = (stepper_args["step_normalization"]
                                          or default_step_normalization(params))
    run_config = {"model": stepper_args["model"], "model_class": "AutoregressiveStepper",
                  "parameters": params, "data": dataclasses.asdict(data)}
    return ds, params, split, stepper_args, run_config


def default_step_normalization(parameters: list[str]) -> str:
    """``"initial"`` for viscous Burgers files (parameter ``Nu`` alone), whose decaying solutions
    make the per-frame relative error blow up as the frames vanish; ``"frame"`` (CAPE's) else.
    benchmarks/cape_pde1d.py trains Burgers with ``"initial"``."""
    return "initial" if list(parameters) == ["Nu"] else "frame"


def train_rollout(data: PDEBenchDataSpec, run_dir: str | os.PathLike, *, model: str = "cape-fno",
                  model_config: dict[str, Any] | None = None, context: int = 1,
                  warmup_epochs: int | None = None, aux_weight: float = 6e-5,
                  step_normalization: str | None = None,
                  train_config: TrainConfig | None = None, overwrite: bool = False,
                  resume: bool = False) -> TrainResult:
    """Train an autoregressive solver on PDEBench files into ``run_dir`` (see the module).

    With ``data.calibration`` the held-out training trajectories are rolled out after training
    and the per-lead conformal intervals written to ``calibration.json``
    (:func:`calibrate_rollout_run`).

    Parameters
    ----------
    data : PDEBenchDataSpec
    run_dir : path-like
        Run folder to create (or continue with ``resume``).
    model : {"fno", "unet", "cape-fno", "cape-unet"}
    model_config, context, warmup_epochs, aux_weight, step_normalization :
        See :func:`build_stepper`; ``step_normalization`` defaults to
        :func:`default_step_normalization` of the files' parameters.
    train_config : TrainConfig, optional
        Default: CAPE's optimisation (Adam, lr 3e-3, StepLR halving every fifth of the epochs),
        40 epochs, batch 8.

    Raises
    ------
    FileExistsError
        If ``run_dir`` is not empty and neither ``overwrite`` nor ``resume`` is given.
    ValueError
        On inconsistent files or settings, a calibration split too small for the 95 % level
        (fewer than 19 trajectories), or when resuming with other settings.
    """
    train_config = train_config or _default_train_config()
    run_dir = Path(run_dir)
    ds, params, split, stepper_args, run_config = _rollout_setup(
        data, model=model, context=context, model_config=model_config,
        warmup_epochs=warmup_epochs, aux_weight=aux_weight,
        step_normalization=step_normalization)
    result = _train_member(ds, params, split, run_dir, run_config, stepper_args, train_config,
                           overwrite, resume)
    if data.calibration:
        calibrate_rollout_run(run_dir)
    return result


def train_rollout_ensemble(data: PDEBenchDataSpec, run_dir: str | os.PathLike, *,
                           n_members: int, model: str = "cape-fno",
                           model_config: dict[str, Any] | None = None, context: int = 1,
                           warmup_epochs: int | None = None, aux_weight: float = 6e-5,
                           step_normalization: str | None = None,
                           train_config: TrainConfig | None = None, overwrite: bool = False,
                           resume: bool = False) -> list[TrainResult]:
    """Train a deep ensemble of ``n_members`` rollout runs (Lakshminarayanan et al. 2017).

    Member ``m`` is an ordinary rollout run folder ``run_dir/member-m`` (same data, split and
    model as :func:`train_rollout`, weights and batches from seed ``train_config.seed + m``);
    ``run_dir/run_config.json`` (kind ``"pde_rollout"``) names the members, and evaluate /
    predict use their mean and spread. With ``data.calibration`` the conformal intervals are
    fitted once, on the ensemble (normalised score, :func:`calibrate_rollout_run`). With
    ``resume`` members with a checkpoint continue from it and the others start from scratch
    (the folder as a whole is refused or cleared as ``overwrite`` says).

    Returns
    -------
    list of TrainResult
        One per member.

    Raises
    ------
    ValueError
        If ``n_members < 2``, and as :func:`train_rollout`.
    """
    names = member_names(n_members)
    train_config = train_config or _default_train_config()
    run_dir = Path(run_dir)
    ds, params, split, stepper_args, run_config = _rollout_setup(
        data, model=model, context=context, model_config=model_config,
        warmup_epochs=warmup_epochs, aux_weight=aux_weight,
        step_normalization=step_normalization)
    start_run(run_dir, RUN_KIND, {**run_config, "members": names,
                                  "train": dataclasses.asdict(train_config)},
              overwrite=overwrite, resume=resume, fixed=("model", "data", "members"))
    results = train_members(run_dir, names, train_config, resume, lambda member, cfg, again:
                            _train_member(ds, params, split, member, run_config, stepper_args,
                                          cfg, overwrite=True, resume=again))
    if data.calibration:
        calibrate_rollout_run(run_dir)
    return results


def load_members(run_dir: str | os.PathLike) -> tuple[list[AutoregressiveStepper],
                                                       dict[str, Any]]:
    """The best model of a rollout run (one) or of each ensemble member, and its config."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, kinds=(RUN_KIND,))
    names = config.get("members")
    paths = [run_dir / n / MODEL_NAME for n in names] if names else [run_dir / MODEL_NAME]
    return [load_model(p) for p in paths], config


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


@dataclass
class Rollouts:
    """A run's full rollouts of one split of PDEBench files.

    ``members``: ``(M, B, T, N)`` (``M = 1`` for a single model), ``truth``: ``(B, T, N)``;
    the first ``t_start`` frames are the given context, copied exactly.
    """

    ds: xr.Dataset
    samples: np.ndarray
    parameters: list[str]
    t_start: int
    members: np.ndarray
    truth: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """The rollout: the members' mean ``(B, T, N)``."""
        return self.members.mean(axis=0)

    @property
    def spread(self) -> np.ndarray | None:
        """The members' sample std (``ddof = 1``) ``(B, T, N)``; None for one model."""
        return None if len(self.members) == 1 else self.members.std(axis=0, ddof=1)

    def forecast(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(truth, mean, spread, members)`` on the predicted frames ``t >= t_start`` only."""
        t = slice(self.t_start, None)
        spread = self.spread
        return (self.truth[:, t], self.mean[:, t], None if spread is None else spread[:, t],
                None if spread is None else self.members[:, :, t])


def _rollouts(run_dir: Path, paths: list[str] | None, split: str, device: str) -> Rollouts:
    """The rollouts of a run (every member) on a split of its files (or of ``paths``)."""
    models, config = load_members(run_dir)
    data = PDEBenchDataSpec(**config["data"])
    if split not in ("test", "validation", "train", "all", "calibration"):
        raise ValueError(f"split must be test, validation, train or all, got {split!r}")
    ds = data.open(paths)
    params = config["parameters"]
    if parameter_names(ds) != params:
        raise ValueError(f"the files hold the parameters {parameter_names(ds)}, the run was "
                         f"trained with {params}")
    if split in ("all", "test", "validation"):  # these never depend on the calibration draw,
        data = dataclasses.replace(data, calibration=0.0)  # which other files may not allow
    splits = data.split(ds)
    if split not in splits:
        raise ValueError(f"{run_dir} was trained without calibration (--calibrate): it has no "
                         "calibration split")
    samples = splits[split]
    if len(samples) == 0:
        raise ValueError(f"the {split!r} split of these files is empty; try split='all'")
    runs = [rollout_predictions(m, ds, samples, params, device=device) for m in models]
    return Rollouts(ds, samples, params, models[0].context, np.stack([p for p, _ in runs]),
                    runs[0][1])


def calibrate_rollout_run(run_dir: str | os.PathLike, device: str = "auto") -> dict[str, Any]:
    """Fit a run's split-conformal intervals on full rollouts of its calibration trajectories.

    One scale :math:`\\hat q_t` per lead time ``t >= context`` (``output_axis`` on time) at
    each level of :data:`~surrogates.runs.calibration.CALIBRATION_LEVELS`, plus the
    whole-rollout band; normalised by the ensemble spread when the run has members. Writes and
    returns ``calibration.json`` (:func:`surrogates.runs.calibration.fit_calibration`).
    """
    y, mean, spread, _ = _rollouts(Path(run_dir), None, "calibration", device).forecast()
    return fit_calibration(run_dir, mean, spread, y, output_axis=1)


def _scores(pred: np.ndarray, truth: np.ndarray, t_start: int) -> dict[str, Any]:
    bands = pde_metrics.fourier_band_errors(pred, truth, t_start)
    nrmse = pde_metrics.nrmse(pred, truth, t_start)
    return {"nrmse": nrmse.value, "rmse": pde_metrics.rmse(pred, truth, t_start).value,
            "max_error": pde_metrics.max_error(pred, truth, t_start).value,
            **{f"fourier_{name}": m.value for name, m in bands.items()},
            "nrmse_per_time": nrmse.per_time.tolist(), "n_samples": int(len(pred))}


def _lead_correlation(spread: np.ndarray, rmse: np.ndarray) -> float | None:
    """Pearson correlation across lead of spread and RMSE; None if either is constant or there
    are fewer than 3 leads."""
    if len(rmse) < 3 or np.ptp(spread) == 0 or np.ptp(rmse) == 0:
        return None
    return float(np.corrcoef(spread, rmse)[0, 1])


def _by_lead(rollouts: Rollouts, calibration: dict[str, Any] | None,
             report: dict[str, Any]) -> dict[str, Any]:
    r"""Uncertainty against lead time; adds per-lead coverage to ``report``.

    For every predicted frame :math:`t` (averages over samples :math:`b` and cells :math:`i`):
    ``rmse`` :math:`= \langle(\bar u - u)^2\rangle^{1/2}`, ``spread``
    :math:`= \langle s^2\rangle^{1/2}` (ensembles) and ``calibrated_spread`` (the calibrated
    std, calibrated runs), with ``*_rmse_correlation``, their Pearson correlation across lead
    (near 1 when the spread grows with lead the way the error does). Per-lead coverage with
    95 % cluster-bootstrap intervals over trajectories
    (:func:`~surrogates.metrics.uq_block.coverage_by_group`) goes to ``report["raw"]
    ["by_group"]`` (the members' intervals) and ``report["calibrated"]["by_group"]`` (the
    conformal ones).
    """
    y, mean, spread, members = rollouts.forecast()
    rmse = np.sqrt(np.mean((mean - y) ** 2, axis=(0, 2)))
    out: dict[str, Any] = {"lead_time": rollouts.ds["time"].values[rollouts.t_start:].tolist(),
                           "rmse": rmse.tolist()}
    if members is not None:
        lead_spread = np.sqrt(np.mean(spread ** 2, axis=(0, 2)))
        out |= {"spread": lead_spread.tolist(),
                "spread_rmse_correlation": _lead_correlation(lead_spread, rmse)}
    if calibration is not None:
        lead_std = np.sqrt(np.mean(calibrated_std(calibration, mean, spread) ** 2, axis=(0, 2)))
        out |= {"calibrated_spread": lead_std.tolist(),
                "calibrated_spread_rmse_correlation": _lead_correlation(lead_std, rmse)}
        leads = np.arange(y.shape[1])[None, :, None]
        trajectories = np.arange(y.shape[0])[:, None, None]
        report["calibrated"]["by_group"] = {
            level: coverage_by_group(*recalibrator_from_dict(entry["marginal"]).interval(
                mean, spread), y, leads, clusters=trajectories, n_boot=1000)
            for level, entry in calibration["levels"].items()}
    return out


def evaluate_rollout_run(run_dir: str | os.PathLike, paths: list[str] | None = None, *,
                         split: str = "test", out_dir: str | os.PathLike | None = None,
                         device: str = "auto") -> dict[str, Any]:
    """Roll a rollout run's best model (or every member) out on PDEBench files and score it.

    Parameters
    ----------
    run_dir : path-like
        Folder written by :func:`train_rollout` or :func:`train_rollout_ensemble`.
    paths : list of str, optional
        Files to evaluate on (default: the training files). Files with parameter values never
        trained on test generalisation; use ``split="all"`` for them.
    split : {"test", "validation", "train", "all"}
        The run's per-file split applied to ``paths``.
    out_dir : path-like, optional
        Default ``run_dir/evaluation``: ``metrics.json``, ``rollout_error.png`` (nRMSE against
        time per parameter value), ``rollouts.png`` (truth, prediction and error in the
        ``(x, t)`` plane, one sample per parameter value) and, for an ensemble (whose members
        differ everywhere) or a calibrated run, ``uq_reliability.png`` and ``uq_pit.png``.

    Returns
    -------
    dict
        ``overall`` and ``by_parameter`` (keyed ``"beta=0.4"``) metrics of the rollout (an
        ensemble's mean): nRMSE, RMSE, max error, Fourier-band RMSEs (context frames
        excluded), nRMSE per time; ``n_members``; ``uq["u"]``: the uncertainty block of the
        predicted frames (:func:`surrogates.runs.calibration.uq_report`, before and after
        calibration, with per-lead coverage in ``by_group``) and its ``by_lead`` entry
        (RMSE, spread and their correlation across lead, :func:`_by_lead`).
    """
    from surrogates import plots

    run_dir = Path(run_dir)
    rollouts = _rollouts(run_dir, paths, split, device)
    ds, samples, params, t_start = (rollouts.ds, rollouts.samples, rollouts.parameters,
                                    rollouts.t_start)
    pred, truth = rollouts.mean, rollouts.truth
    keys = [",".join(f"{n}={ds[n].values[s]:g}" for n in params) for s in samples]
    result = {"run": str(run_dir), "split": split, "files": ds.attrs.get("source_files"),
              "n_members": int(len(rollouts.members)),
              "overall": _scores(pred, truth, t_start), "by_parameter": {}}
    for key in dict.fromkeys(keys):
        rows = np.array([k == key for k in keys])
        result["by_parameter"][key] = _scores(pred[rows], truth[rows], t_start)
    out = Path(out_dir) if out_dir is not None else run_dir / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    calibration = read_calibration(run_dir)
    y, mean, _, members = rollouts.forecast()
    report = uq_report(y, mean, members=members, calibration=calibration, out_dir=out,
                       group_axis=None if members is None else 1)
    report["by_lead"] = _by_lead(rollouts, calibration, report)
    result["uq"] = {"u": report}
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
    (which it copies; an ensemble's mean), ``u_reference``, the files' solution, and, for an
    ensemble or a calibrated run, ``u_std``: the members' spread, or the calibrated std whose
    Gaussian 90 % interval ``u +- 1.645 u_std`` is the per-lead conformal one
    (:func:`surrogates.runs.calibration.calibrated_std`); 0 on the context frames, which are
    given. The PDE parameters of each sample are coordinates on ``sample``; attributes
    ``context_frames``, ``n_members`` and ``calibrated`` (0 or 1).
    """
    from surrogates.data.common import refuse_existing, write_netcdf

    out = refuse_existing(out, overwrite)
    run_dir = Path(run_dir)
    rollouts = _rollouts(run_dir, paths, split, device)
    ds, samples, t_start = rollouts.ds, rollouts.samples, rollouts.t_start
    dims = ("sample", "time", "x")
    variables = {"u": (dims, rollouts.mean), "u_reference": (dims, rollouts.truth)}
    calibration = read_calibration(run_dir)
    spread = rollouts.spread
    if spread is not None or calibration is not None:
        std = np.zeros_like(rollouts.truth)
        _, mean, forecast_spread, _ = rollouts.forecast()
        std[:, t_start:] = (forecast_spread if calibration is None
                            else calibrated_std(calibration, mean, forecast_spread))
        variables["u_std"] = (dims, std)
    result = xr.Dataset(
        variables,
        coords={"sample": samples, "time": ds["time"].values, "x": ds["x"].values,
                **{n: ("sample", ds[n].values[samples]) for n in rollouts.parameters}},
        attrs={"run": str(run_dir.resolve()), "split": split, "context_frames": int(t_start),
               "n_members": int(len(rollouts.members)),
               "calibrated": int(calibration is not None)})
    write_netcdf(result, out, overwrite=overwrite)
    return out
