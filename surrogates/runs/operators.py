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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from operators.base import OperatorModel, build, load_model, registered
from operators.mno import ClosureEnsemble
from operators.normalization import NormalizedOperator
from surrogates import plots
from surrogates.data.common import (
    TorchSplits,
    lead_pairs,
    split_samples,
    to_torch,
    write_json,
)
from surrogates.data.shards import open_dataset
from surrogates.metrics import regression as metrics
from surrogates.metrics import uq
from surrogates.runs.calibration import (
    calibrated_std,
    fit_calibration,
    read_calibration,
    uq_report,
)
from surrogates.runs.folder import (
    CLOSURE_MODEL_CLASSES,
    RUN_CONFIG_NAME,
    member_names,
    prepare_run_dir,
    read_run_config,
    train_members,
    write_run_config,
)
from surrogates.training import (
    MODEL_NAME,
    TrainConfig,
    TrainResult,
    fit,
    predict,
)

#: ``model_class`` recorded in the run configuration of an ensemble folder.
ENSEMBLE_CLASS = "ClosureEnsemble"


@dataclass
class DataSpec:
    """Which variables of a dataset file become inputs and targets, and how it is split."""

    path: str
    inputs: list[str] = field(default_factory=lambda: ["X"])
    targets: list[str] = field(default_factory=lambda: ["subgrid_forcing"])
    spatial_dims: list[str] = field(default_factory=lambda: ["k"])
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0
    #: Targets this many saved frames after the inputs (0: same time; see ``lead_pairs``).
    lead: int = 0
    #: Past frames of the inputs added as channels (closures with ``history``).
    history: int = 0
    #: Read batches lazily from disk (dask) instead of loading the dataset; normalisers from
    #: streaming statistics (:func:`surrogates.data.streaming.to_torch_lazy`). ``path`` may
    #: name one file or, for ``surrogates generate ... --shard``, the ``OUT`` of a shard set.
    stream: bool = False
    #: Fraction of the training samples held out of the fit for split-conformal calibration
    #: (:mod:`surrogates.runs.calibration`); 0: none.
    calibration: float = 0.0


def split_indices(data: DataSpec, n_samples: int) -> dict[str, np.ndarray]:
    """Sample indices of every split: train, validation, test and, with ``data.calibration``,
    the calibration samples drawn from (and removed from) the training split."""
    from surrogates.metrics.conformal import calibration_split

    indices = split_samples(n_samples, data.fractions, seed=data.split_seed)
    if data.calibration:
        fit_idx, cal_idx = calibration_split(indices["train"], data.calibration,
                                             seed=data.split_seed, test=indices["test"])
        indices.update(train=np.sort(fit_idx), calibration=np.sort(cal_idx))
    return indices


def operator_splits(data: DataSpec) -> TorchSplits:
    """Train / validation / test tensors of ``data`` with normalisers from the train split
    (without its calibration samples)."""
    ds = open_dataset(data.path, lazy=data.stream)
    if data.stream:
        from surrogates.data.streaming import to_torch_lazy

        if data.calibration:
            raise ValueError("calibration needs the data in memory: drop --stream")
        return to_torch_lazy(ds, inputs=data.inputs, targets=data.targets,
                             spatial_dims=data.spatial_dims, fractions=data.fractions,
                             seed=data.split_seed, lead=data.lead, history=data.history)
    holdout = split_indices(data, ds.sizes["sample"]).get("calibration", ())
    return to_torch(ds, inputs=data.inputs, targets=data.targets, spatial_dims=data.spatial_dims,
                    fractions=data.fractions, seed=data.split_seed, lead=data.lead,
                    history=data.history, holdout=holdout)


def scalar_statistics(splits: TorchSplits, increment: bool = False,
                       history: int = 0) -> dict[str, float]:
    """Training-split mean and std of the single input and target channel.

    With ``increment`` the output statistics are those of ``target - input`` (emulators that
    predict the change of the state).
    """
    if splits.input_normalizer.n_channels != 1 + history \
            or splits.target_normalizer.n_channels != 1:
        raise ValueError("closures take one input variable (X) and one target; got "
                         f"{splits.input_normalizer.n_channels // (1 + history)} inputs and "
                         f"{splits.target_normalizer.n_channels} targets")
    # History channels are the same variable: the statistics of X(t) serve them all.
    stats = {"input_mean": float(splits.input_normalizer.mean.reshape(-1)[0]),
             "input_std": float(splits.input_normalizer.std.reshape(-1)[0]),
             "output_mean": float(splits.target_normalizer.mean),
             "output_std": float(splits.target_normalizer.std)}
    if increment and not hasattr(splits.train, "inputs"):
        raise ValueError("emulators (predicts_increment) compute increment statistics in "
                         "memory: train them without stream (--stream)")
    if increment:
        change = (splits.train.targets - splits.train.inputs[:, :1]).double()
        stats |= {"output_mean": float(change.mean()),
                  "output_std": float(change.std().clamp_min(1e-12))}
    return stats


def _lead_mtu(data: DataSpec) -> float:
    """Time between an input frame and its target frame, from the dataset's time coordinate."""
    time = open_dataset(data.path, lazy=True)["time"].values
    if data.lead < 1 or len(time) <= data.lead:
        raise ValueError(f"an emulator needs targets a positive number of frames ahead: set "
                         f"lead (--lead) between 1 and {len(time) - 1}, got {data.lead}")
    return float(time[data.lead] - time[0])


def _build_model(model_class: str, model_config: dict[str, Any], splits: TorchSplits,
                 normalization: str, seed: int, data: DataSpec
                 ) -> tuple[OperatorModel, dict[str, Any]]:
    """The model to train and its resolved configuration (see :func:`train_operator`)."""
    torch.manual_seed(seed)
    if normalization == "wrap":
        model_config = {**model_config, "in_channels": splits.input_normalizer.n_channels,
                        "out_channels": splits.target_normalizer.n_channels}
        model = NormalizedOperator(model_class=model_class, model_config=model_config)
        model.input_normalizer.load_state_dict(splits.input_normalizer.state_dict())
        model.target_normalizer.load_state_dict(splits.target_normalizer.state_dict())
        return model, model.model.config
    if normalization == "scalar":
        increment = getattr(registered().get(model_class), "predicts_increment", False)
        if increment:
            model_config = {"step_mtu": _lead_mtu(data), **model_config}
        if data.history:
            model_config = {**model_config, "history": data.history}
        model = build(model_class, {**model_config,
                                    **scalar_statistics(splits, increment, data.history)})
        return model, model.config
    raise ValueError(f"normalization must be 'wrap' or 'scalar', got {normalization!r}")


def train_operator(data: DataSpec, run_dir: str | os.PathLike, *, model_class: str,
                   model_config: dict[str, Any], train_config: TrainConfig,
                   overwrite: bool = False, resume: bool = False,
                   normalization: str = "wrap", kind: str | None = None,
                   calibrate: bool = True) -> TrainResult:
    """Train ``model_class(**model_config)`` on a dataset file; statistics from the train split.

    Parameters
    ----------
    normalization : {"wrap", "scalar"}
        ``"wrap"``: the model is wrapped in a :class:`~operators.normalization.NormalizedOperator`
        with per-channel normalisers, and ``in_channels`` / ``out_channels`` are filled in from
        the data spec (operators such as the FNO). ``"scalar"``: the model normalises itself and
        receives ``input_mean``, ``input_std``, ``output_mean``, ``output_std`` as constructor
        arguments (the Lorenz-96 closures of :mod:`operators.mno`, whose scalar normalisation
        keeps them translation-equivariant and exportable on their own). Emulators
        (``predicts_increment``, e.g. :class:`~operators.mno.NextStateFNO`) get the statistics of
        the increment ``target - input`` and ``step_mtu`` from the data's time coordinate and
        ``data.lead``.
    resume : bool
        Continue the run from its checkpoint.
    kind : {"operator", "closure"}, optional
        The run kind recorded in ``run_config.json`` (:mod:`surrogates.runs.folder`); default
        ``"closure"`` for the Lorenz-96 closure classes (their evaluation adds the hybrid
        model), else ``"operator"``.
    calibrate : bool, default True
        With ``data.calibration``, fit the conformal intervals after training
        (:func:`calibrate_run`); ensembles do it once for all members.
    """
    if kind is None:
        kind = "closure" if model_class in CLOSURE_MODEL_CLASSES else "operator"
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite, resume)
    splits = operator_splits(data)
    model, resolved = _build_model(model_class, model_config, splits, normalization,
                                   train_config.seed, data)
    run_config = {"model_class": model_class, "model_config": resolved,
                  "data": dataclasses.asdict(data), "train": dataclasses.asdict(train_config)}
    if resume and (run_dir / RUN_CONFIG_NAME).exists():
        saved = read_run_config(run_dir, kinds=(kind,))
        saved["data"] = dataclasses.asdict(DataSpec(**saved["data"]))  # fields added later
        for key in ("model_class", "model_config", "data"):
            if saved[key] != run_config[key]:
                raise ValueError(f"cannot resume {run_dir}: its {key} was {saved[key]}, now "
                                 f"{run_config[key]}; start a new run folder instead")
    write_run_config(run_dir, kind, run_config)
    result = fit(model, splits.train, splits.validation, train_config, run_dir, resume=resume)
    if data.calibration and calibrate:
        calibrate_run(run_dir)
    return result


def calibrate_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Fit the split-conformal intervals of a trained run on its calibration samples
    (:func:`surrogates.runs.calibration.fit_calibration`; an ensemble's spread is the std)."""
    pred, _, _ = predict_split(run_dir, split="calibration")
    std = None if pred.members is None else pred.members.std(axis=0, ddof=1)
    return fit_calibration(run_dir, pred.mean, std, pred.targets)


def train_ensemble(data: DataSpec, run_dir: str | os.PathLike, *, n_members: int,
                   model_class: str, model_config: dict[str, Any], train_config: TrainConfig,
                   overwrite: bool = False, resume: bool = False,
                   normalization: str = "scalar", kind: str | None = None
                   ) -> list[TrainResult]:
    """Train ``n_members`` copies of a model with seeds ``seed, seed + 1, ...`` (deep ensemble).

    Member ``m`` is an ordinary run folder ``run_dir/member-m``
    (:func:`~surrogates.runs.operators.train_operator`, same data and split, own seed for weights
    and batches); ``run_dir/run_config.json`` names the members, and
    :func:`~surrogates.runs.operators.load_run` returns a
    :class:`~operators.mno.ClosureEnsemble` (the mean of its members; evaluate and predict
    add their spread). ``kind`` defaults as in :func:`train_operator`. With ``resume``
    finished members are kept and unfinished ones continue from their checkpoints.

    Returns
    -------
    list of TrainResult
        One per member.
    """
    names = member_names(n_members)
    kind = kind or ("closure" if model_class in CLOSURE_MODEL_CLASSES else "operator")
    run_dir = Path(run_dir)
    operator_splits(data)  # bad data is refused before the folder is touched
    prepare_run_dir(run_dir, overwrite, resume)
    write_run_config(run_dir, kind, {
        "model_class": ENSEMBLE_CLASS, "member_class": model_class, "members": names,
        "data": dataclasses.asdict(data), "train": dataclasses.asdict(train_config)})
    results = train_members(run_dir, names, train_config, resume, lambda member, cfg, again:
                            train_operator(data, member, model_class=model_class,
                                           model_config=model_config, train_config=cfg,
                                           resume=again, normalization=normalization,
                                           kind=kind, calibrate=False))
    if data.calibration:
        calibrate_run(run_dir)
    return results


def load_run(run_dir: str | os.PathLike, kinds: tuple[str, ...] = ("operator", "closure")
             ) -> tuple[OperatorModel, dict[str, Any]]:
    """The best model of a run folder and its ``run_config.json``.

    An ensemble folder (:func:`train_ensemble`) gives a
    :class:`~operators.mno.ClosureEnsemble` of its members' best models.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, kinds=kinds)
    if config["model_class"] == ENSEMBLE_CLASS:
        return ClosureEnsemble([load_model(run_dir / name / MODEL_NAME)
                                for name in config["members"]]), config
    return load_model(run_dir / MODEL_NAME), config


@dataclass
class SplitPredictions:
    """A run's predictions on one split of a dataset (physical units).

    ``inputs``: ``(n, C_in, *spatial)``; ``targets``, ``mean``: ``(n, C_out, *spatial)``;
    ``members``: ``(M, n, C_out, *spatial)`` for an ensemble run, else None.
    """

    spec: DataSpec
    data_path: Path
    dataset: Any
    samples: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    mean: np.ndarray
    members: np.ndarray | None


def predict_split(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None, *,
                  split: str = "test", kinds: tuple[str, ...] = ("operator", "closure")
                  ) -> tuple[SplitPredictions, OperatorModel, dict[str, Any]]:
    """Predict the targets of one split of a dataset with a run's best model (or ensemble).

    The split is recomputed with the run's fractions and seed, so ``"test"`` never overlaps
    the training samples of a dataset generated with the same configuration.
    """
    model, config = load_run(run_dir, kinds)
    spec = DataSpec(**config["data"])
    data_path = Path(data_path or spec.path)
    ds = open_dataset(data_path)
    if split == "all":
        idx = np.arange(ds.sizes["sample"])
    else:
        splits = split_indices(spec, ds.sizes["sample"])
        if split not in splits:
            raise ValueError(f"split must be one of {sorted(splits) + ['all']}, got {split!r}")
        idx = splits[split]
    missing = [v for v in (*spec.inputs, *spec.targets) if v not in ds]
    if missing:
        raise ValueError(f"{data_path} lacks the variables {missing} that the run was trained "
                         f"on ({', '.join(spec.inputs)} -> {', '.join(spec.targets)})")
    x, y = lead_pairs(ds.isel(sample=idx), spec.inputs, spec.targets, spec.spatial_dims,
                      spec.lead, spec.history)
    inputs = torch.as_tensor(x, dtype=torch.float32)
    members = None
    if isinstance(model, ClosureEnsemble):  # the mean of the members, and their spread
        members = np.stack([predict(m, inputs).numpy() for m in model.members])
        y_hat = members.mean(axis=0)
    else:
        y_hat = predict(model, inputs).numpy()
    return SplitPredictions(spec, data_path, ds, idx, x, y, y_hat, members), model, config


def evaluate_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None, *,
                 split: str = "test", out_dir: str | os.PathLike | None = None,
                 overwrite: bool = True) -> dict[str, Any]:
    """Evaluate a run's best model on one split of a dataset; write metrics JSON and plots.

    Parameters
    ----------
    run_dir : path-like
        Folder written by :func:`train_operator`.
    data_path : path-like, optional
        Dataset to evaluate on (default: the one the run was trained on); see
        :func:`predict_split`.
    split : {"train", "validation", "test", "all"}
    out_dir : path-like, optional
        Default ``run_dir/evaluation``.

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (for an ensemble run also ``"ensemble"``:
        CRPS, interval coverage and spread-skill of the members,
        :func:`surrogates.metrics.uq.summary`).
    """
    pred, _, _ = predict_split(run_dir, data_path, split=split)
    spec, y_hat, y = pred.spec, pred.mean, pred.targets
    result = {"data": str(pred.data_path), "split": split, "n_samples": int(len(pred.samples)),
              "overall": metrics.summary(y_hat, y),
              "per_target": {name: metrics.summary(y_hat[:, c], y[:, c])
                             for c, name in enumerate(spec.targets)}}
    if pred.members is not None:
        result["ensemble"] = uq.summary(y, ensemble=pred.members)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "evaluation"
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    result["uq"] = {"+".join(spec.targets): uq_report(
        y, y_hat, members=pred.members, calibration=read_calibration(run_dir), out_dir=out)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "metrics.json")
    history_path = Path(run_dir) / "history.json"
    if history_path.is_file():
        plots.training_curves(json.loads(history_path.read_text()), out / "training_curves.png")
    plots.parity(y_hat, y, spec.targets, out / "parity.png")
    plots.snapshot(pred.inputs, y_hat, y, spec.inputs, spec.targets, out / "snapshot.png")
    return result


def predict_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None, out,
                *, split: str = "all", overwrite: bool = False) -> Path:
    """Write a run's predictions on a dataset split to a netCDF file (atomically).

    Every target ``v`` becomes a variable ``v`` of shape ``(example, *spatial_dims)`` (the
    mean of the members for an ensemble run), beside ``v_reference`` from the data and, for an
    ensemble or a calibrated run, ``v_std``: the members' sample standard deviation, rescaled
    by the run's conformal calibration when it has one
    (:func:`surrogates.runs.calibration.calibrated_std`); ``example`` indexes the
    (sample, frame) pairs in the order of :func:`surrogates.data.common.lead_pairs`.
    """
    import xarray as xr

    from surrogates.data.common import refuse_existing, write_netcdf

    out = refuse_existing(out, overwrite)
    pred, _, config = predict_split(run_dir, data_path, split=split)
    dims = ("example", *pred.spec.spatial_dims)
    std = None if pred.members is None else pred.members.std(axis=0, ddof=1)
    calibration = read_calibration(run_dir)
    if calibration is not None:
        std = calibrated_std(calibration, pred.mean, std)
    variables = {}
    for c, name in enumerate(pred.spec.targets):
        variables[name] = (dims, pred.mean[:, c].astype(np.float32))
        variables[f"{name}_reference"] = (dims, pred.targets[:, c].astype(np.float32))
        if std is not None:
            variables[f"{name}_std"] = (dims, std[:, c].astype(np.float32))
    ds = xr.Dataset(variables, attrs={"run": str(Path(run_dir).resolve()),
                                      "data": str(pred.data_path), "split": split,
                                      "model_class": config["model_class"]})
    write_netcdf(ds, out, overwrite=overwrite)
    return out
