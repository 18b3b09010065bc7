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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from operators.base import OperatorModel, build, load_model, registered, save_model
from operators.mno import ClosureEnsemble, PolynomialClosure
from operators.normalization import NormalizedOperator
from surrogates import distributed, plots
from surrogates.metrics import regression as metrics
from surrogates.metrics import uq
from surrogates.data.common import (
    TorchSplits,
    lead_pairs,
    split_samples,
    to_torch,
    write_json,
)
from surrogates.data.shards import open_dataset
from surrogates.training import (
    CHECKPOINT_NAME,
    MODEL_NAME,
    TrainConfig,
    TrainResult,
    fit,
    predict,
)

if TYPE_CHECKING:  # the hybrid evaluation imports the JAX solver: only when it is asked for
    from surrogates.runs.lorenz96 import HybridEvaluationConfig

RUN_CONFIG_NAME = "run_config.json"
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


def _splits(data: DataSpec) -> TorchSplits:
    ds = open_dataset(data.path, lazy=data.stream)
    if data.stream:
        from surrogates.data.streaming import to_torch_lazy

        return to_torch_lazy(ds, inputs=data.inputs, targets=data.targets,
                             spatial_dims=data.spatial_dims, fractions=data.fractions,
                             seed=data.split_seed, lead=data.lead, history=data.history)
    return to_torch(ds, inputs=data.inputs, targets=data.targets, spatial_dims=data.spatial_dims,
                    fractions=data.fractions, seed=data.split_seed, lead=data.lead,
                    history=data.history)


def prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    """Create ``run_dir``; a non-empty one needs ``overwrite`` (it is replaced) or ``resume``.

    Under ``torchrun`` rank 0 does it while the other ranks wait (a refusal is raised on every
    rank)."""
    ctx = distributed.context()
    refuse = (run_dir.exists() and any(run_dir.iterdir()) and not resume and not overwrite)
    ctx.barrier()  # every rank has looked before rank 0 touches anything
    if refuse:
        raise FileExistsError(f"run folder {run_dir} exists and is not empty; pass "
                              "--overwrite to replace it or --resume to continue it")
    if ctx.is_main:
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    ctx.barrier()


def start_run(run_dir: Path, run_config: dict[str, Any], *, overwrite: bool, resume: bool,
              fixed: tuple[str, ...] = ("model_config", "data")) -> None:
    """Prepare ``run_dir`` (:func:`prepare_run_dir`) and write ``run_config.json``.

    When resuming, the saved configuration's ``fixed`` entries must equal ``run_config``'s (the
    model and the data cannot change under a checkpoint); the training settings may.

    Raises
    ------
    ValueError
        When resuming with another model or data.
    """
    prepare_run_dir(run_dir, overwrite, resume)
    config_path = run_dir / RUN_CONFIG_NAME
    if resume and config_path.exists():
        saved = json.loads(config_path.read_text())
        for key in fixed:
            if saved[key] != run_config[key]:
                raise ValueError(f"cannot resume {run_dir}: its {key} was {saved[key]}, now "
                                 f"{run_config[key]}; start a new run folder instead")
    if distributed.context().is_main:
        write_json(run_config, config_path)


def _scalar_statistics(splits: TorchSplits, increment: bool = False,
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
                                    **_scalar_statistics(splits, increment, data.history)})
        return model, model.config
    raise ValueError(f"normalization must be 'wrap' or 'scalar', got {normalization!r}")


def train_operator(data: DataSpec, run_dir: str | os.PathLike, *, model_class: str,
                   model_config: dict[str, Any], train_config: TrainConfig,
                   overwrite: bool = False, resume: bool = False,
                   normalization: str = "wrap") -> TrainResult:
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
    """
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite, resume)
    splits = _splits(data)
    model, resolved = _build_model(model_class, model_config, splits, normalization,
                                   train_config.seed, data)
    run_config = {"model_class": model_class, "model_config": resolved,
                  "data": dataclasses.asdict(data), "train": dataclasses.asdict(train_config)}
    config_path = run_dir / RUN_CONFIG_NAME
    if resume and config_path.exists():
        saved = json.loads(config_path.read_text())
        saved["data"] = dataclasses.asdict(DataSpec(**saved["data"]))  # fields added later
        for key in ("model_class", "model_config", "data"):
            if saved[key] != run_config[key]:
                raise ValueError(f"cannot resume {run_dir}: its {key} was {saved[key]}, now "
                                 f"{run_config[key]}; start a new run folder instead")
    if distributed.context().is_main:
        write_json(run_config, config_path)
    return fit(model, splits.train, splits.validation, train_config, run_dir, resume=resume)


def train_ensemble(data: DataSpec, run_dir: str | os.PathLike, *, n_members: int,
                   model_class: str, model_config: dict[str, Any], train_config: TrainConfig,
                   overwrite: bool = False, resume: bool = False,
                   normalization: str = "scalar") -> list[TrainResult]:
    """Train ``n_members`` copies of a model with seeds ``seed, seed + 1, ...`` (deep ensemble).

    Member ``m`` is an ordinary run folder ``run_dir/member-m`` (:func:`train_operator`, same
    data and split, own seed for weights and batches); ``run_dir/run_config.json`` names the
    members, and :func:`load_run` returns a :class:`~operators.mno.ClosureEnsemble`. With
    ``resume`` finished members are kept and unfinished ones continue from their checkpoints.

    Returns
    -------
    list of TrainResult
        One per member.
    """
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 2:
        raise ValueError(f"an ensemble needs n_members >= 2, got {n_members!r}")
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite, resume)
    names = [f"member-{m}" for m in range(n_members)]
    write_json({"model_class": ENSEMBLE_CLASS, "member_class": model_class, "members": names,
                "data": dataclasses.asdict(data), "train": dataclasses.asdict(train_config)},
               run_dir / RUN_CONFIG_NAME)
    results = []
    for m, name in enumerate(names):
        member = run_dir / name
        results.append(train_operator(
            data, member, model_class=model_class, model_config=model_config,
            train_config=dataclasses.replace(train_config, seed=train_config.seed + m),
            resume=resume and (member / CHECKPOINT_NAME).is_file(),
            normalization=normalization))
    return results


def fit_polynomial_closure(data: DataSpec, run_dir: str | os.PathLike, *, degree: int = 3,
                           overwrite: bool = False) -> dict[str, Any]:
    """Fit the cubic (degree ``degree``) closure of Wilks (2005) by least squares on the
    training split and write a run folder like :func:`train_operator` (no optimiser).

    Returns
    -------
    dict
        ``{"coefficients": [a_0, ..., a_degree], "train_r2": R^2 on the training split}``.
    """
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite, resume=False)
    if data.stream:
        raise ValueError("the polynomial closure is fitted in memory: drop stream from [data]")
    splits = _splits(data)
    _scalar_statistics(splits)  # one input and one target
    model = PolynomialClosure(degree=degree).fit_least_squares(splits.train.inputs,
                                                               splits.train.targets)
    with torch.no_grad():
        fitted = model(splits.train.inputs).numpy()
    result = {"coefficients": [float(c) for c in model.coefficients.detach()],
              "train_r2": metrics.r2_score(fitted, splits.train.targets.numpy())}
    save_model(model, run_dir / MODEL_NAME)
    write_json({"model_class": "PolynomialClosure", "model_config": model.config,
                "data": dataclasses.asdict(data),
                "train": {"method": "least squares", **result}}, run_dir / RUN_CONFIG_NAME)
    return result


def load_run(run_dir: str | os.PathLike) -> tuple[OperatorModel, dict[str, Any]]:
    """The best model of a run folder and its ``run_config.json``.

    An ensemble folder (:func:`train_ensemble`) gives a
    :class:`~operators.mno.ClosureEnsemble` of its members' best models.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / RUN_CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: {config_path} is missing")
    config = json.loads(config_path.read_text())
    if config["model_class"] == ENSEMBLE_CLASS:
        return ClosureEnsemble([load_model(run_dir / name / MODEL_NAME)
                                for name in config["members"]]), config
    return load_model(run_dir / MODEL_NAME), config


def evaluate_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None, *,
                 split: str = "test", out_dir: str | os.PathLike | None = None,
                 overwrite: bool = True, hybrid: HybridEvaluationConfig | None = None,
                 compare: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
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
    hybrid : HybridEvaluationConfig, optional
        For a Lorenz-96 closure run: also run the closure inside the hybrid model from the
        split's initial conditions against the resolved solver
        (:func:`surrogates.runs.lorenz96.evaluate_hybrid`, with coarse physics alone as a baseline).
    compare : sequence of path-like
        Other closure run folders scored in the same hybrid evaluation.

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (for an ensemble run also ``"ensemble"``:
        CRPS, interval coverage and spread-skill of the members, :func:`surrogates.metrics.uq.summary`),
        plus ``"hybrid"`` (also written to
        ``hybrid_metrics.json``) when ``hybrid`` is given.
    """
    model, config = load_run(run_dir)
    spec = DataSpec(**config["data"])
    data_path = Path(data_path or spec.path)
    ds = open_dataset(data_path)
    if split == "all":
        idx = np.arange(ds.sizes["sample"])
    else:
        splits = split_samples(ds.sizes["sample"], spec.fractions, seed=spec.split_seed)
        if split not in splits:
            raise ValueError(f"split must be one of {sorted(splits) + ['all']}, got {split!r}")
        idx = splits[split]
    if hybrid is not None:
        from surrogates.runs.lorenz96 import CLOSURE_CLASSES, evaluate_hybrid
    if hybrid is not None and config["model_class"] not in CLOSURE_CLASSES:
        raise ValueError(f"{run_dir} holds a {config['model_class']}: the hybrid evaluation is "
                         f"for the closures {', '.join(CLOSURE_CLASSES)}")
    subset = ds.isel(sample=idx)
    x, y = lead_pairs(subset, spec.inputs, spec.targets, spec.spatial_dims, spec.lead,
                      spec.history)
    inputs = torch.as_tensor(x, dtype=torch.float32)
    members = None
    if isinstance(model, ClosureEnsemble):  # the mean of the members, and their spread
        members = np.stack([predict(m, inputs).numpy() for m in model.members])
        y_hat = members.mean(axis=0)
    else:
        y_hat = predict(model, inputs).numpy()
    result = {"data": str(data_path), "split": split, "n_samples": int(len(idx)),
              "overall": metrics.summary(y_hat, y),
              "per_target": {name: metrics.summary(y_hat[:, c], y[:, c])
                             for c, name in enumerate(spec.targets)}}
    if members is not None:
        result["ensemble"] = uq.summary(y, ensemble=members)
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
    if hybrid is not None:
        names = [Path(run_dir).name, "no closure"] + [Path(other).name for other in compare]
        if len(set(names)) != len(names):
            raise ValueError(f"the hybrid evaluation names models by their run folder, and "
                             f"these repeat: {names}; rename a folder")
        closures = {names[0]: model, "no closure": None}
        closures |= {Path(other).name: load_run(other)[0] for other in compare}
        result["hybrid"] = evaluate_hybrid(closures, ds, idx, hybrid, out_dir=out)
    return result
