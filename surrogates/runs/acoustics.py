r"""Room acoustics end to end: wave-field datasets, DeepONet run folders and their evaluation.

* The data come from :func:`surrogates.data.acoustics_generate.generate_wave_dataset` (FDTD
  fields over random source positions).
* :func:`train_deeponet` trains an unstacked DeepONet (:class:`operators.deeponet.DeepONet`)
  :math:`G(u)(x, t) = \sum_k B_k(u) T_k(x, t) + b_0` from the source (the initial Gaussian pulse
  on a coarse sensor grid, or the source coordinates) to the pressure field, with the package's
  fitting loop (:func:`surrogates.training.fit`) on random space-time points redrawn every
  epoch. The run folder holds ``run_config.json`` (kind ``"deeponet_acoustics"``),
  ``model.pt``, ``checkpoint.pt`` and ``history.json``.
* :func:`train_deeponet_ensemble` trains a deep ensemble of :math:`M` such runs (seeds
  ``seed .. seed + M - 1``, which also draw each member's random training points) in
  ``member-*`` subfolders.
* :func:`evaluate_deeponet_run` predicts whole fields of held-out sources in one batched call
  and reports the RMSE in pascals and the relative L2 error over the field and per receiver,
  the inference time per field and the solver's time for the same field (the speedup), with
  plots of truth, prediction and error, and the uncertainty block
  (:func:`surrogates.runs.calibration.uq_report`).

Uncertainty of a field :math:`p(x, t)`: an ensemble predicts the members' mean
:math:`\bar p = \frac1M\sum_m p^{(m)}` with their sample std
:math:`s = (\frac{1}{M-1}\sum_m (p^{(m)} - \bar p)^2)^{1/2}`. With ``calibration`` (``train
deeponet --calibrate FRACTION``) that fraction of the *training* sources is held out of the fit
(:func:`surrogates.metrics.conformal.calibration_split`; validation and test sources are never
drawn), and split-conformal scales :math:`\hat q_t` are fitted on their whole predicted fields,
one per output time :math:`t` (``output_axis`` on time), on :math:`|p - \bar p| / s` (ensemble)
or :math:`|p - \hat p|` (one model); the interval is :math:`\bar p \pm \hat q_t s`. If
calibration and test sources are exchangeable (drawn from the same source-position law) it
covers a random point of a new field at each time with probability :math:`\ge 1 - \alpha`
(marginal); there is no guarantee for a given source position, nor for another room.

Following Borrel-Jensen et al. (2024), the fields are pressures in Pa of a pulse
:math:`p_0 = A\exp(-|x - s|^2/(2\sigma^2))` released at rest; their reported field errors are
0.02 to 0.10 Pa RMSE.

References
----------
.. [1] N. Borrel-Jensen, S. Goswami, A. P. Engsig-Karup, G. E. Karniadakis, C.-H. Jeong,
   "Sound propagation in realistic interactive 3D scenes with parameterized sources using
   deep neural operators", PNAS 121(2), 2024.
.. [2] L. Lu, P. Jin, G. Pang, Z. Zhang and G. E. Karniadakis, "Learning nonlinear operators via
   DeepONet", Nature Machine Intelligence 3, 218-229, 2021.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators.base import build, load_model
from operators.deeponet import DeepONet
from surrogates.data.acoustics import (
    deeponet_torch,
    node_coordinates,
    open_acoustic,
    sensor_grid,
    trunk_grid,
)
from surrogates.data.acoustics_generate import WaveDataConfig
from surrogates.data.common import dataset_config, split_samples, write_json
from surrogates.metrics.acoustics import field_errors, receiver_errors
from surrogates.metrics.conformal import calibration_split
from surrogates.runs.calibration import (
    SMALLEST_ALPHA,
    calibrated_std,
    fit_calibration,
    read_calibration,
    uq_report,
)
from surrogates.runs.folder import member_names, read_run_config, start_run, train_members
from surrogates.solvers.wave import simulate
from surrogates.training import (
    MODEL_NAME,
    TrainConfig,
    TrainResult,
    fit,
    resolve_device,
)

__all__ = ["RUN_KIND", "DeepONetDataSpec", "calibrate_deeponet_run", "default_deeponet_config",
           "evaluate_deeponet_run", "load_members", "predict_deeponet_run", "predict_fields",
           "train_deeponet", "train_deeponet_ensemble"]

#: ``run_config.json["kind"]`` of a DeepONet acoustics run.
RUN_KIND = "deeponet_acoustics"
_AXES = ("x", "y", "z")


def _data_config(ds: xr.Dataset) -> WaveDataConfig:
    """The generating configuration stored in a dataset made by :func:`generate_wave_dataset`."""
    if "config" not in ds.attrs:
        raise ValueError("the dataset has no generating configuration (attribute 'config'); "
                         "the solver timing needs a dataset from `surrogates generate wave2d/3d`")
    return WaveDataConfig(**dataset_config(ds))


def default_deeponet_config(dim: int, branch_in: int) -> dict[str, Any]:
    """Default DeepONet arguments (trunk bounds are added from the data).

    Modified MLPs with tanh (SIREN sine networks are available with
    ``activation="sine"``), 100 basis functions, three hidden layers of 128 and two trunk Fourier
    frequencies per coordinate: small enough to train on a CPU in minutes.
    """
    return {"branch_in": branch_in, "trunk_in": dim + 1, "n_basis": 100,
            "branch_hidden": [128, 128, 128], "trunk_hidden": [128, 128, 128],
            "network": "modified", "activation": "tanh", "fourier_features": 2}


@dataclass
class DeepONetDataSpec:
    """Which acoustic dataset and how it is split and fed to the DeepONet.

    ``branch``: ``"pulse"`` (the initial pulse on ``sensors_per_axis`` sensors per axis, walls
    included) or ``"coordinates"`` (the source position); ``points_per_sample`` random
    space-time points per source and epoch; ``calibration``: share of the training sources
    held out of the fit for split-conformal calibration (0: none).
    """

    path: str
    branch: str = "pulse"
    sensors_per_axis: int = 7
    points_per_sample: int = 2000
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0
    calibration: float = 0.0

    def __post_init__(self):
        if self.branch not in ("pulse", "coordinates"):
            raise ValueError(f"branch must be 'pulse' or 'coordinates', got {self.branch!r}")
        if not 0.0 <= self.calibration < 1.0:
            raise ValueError(f"calibration must lie in [0, 1), got {self.calibration}")

    def open(self) -> xr.Dataset:
        """The dataset (checked)."""
        return open_acoustic(self.path)

    def split(self, ds: xr.Dataset) -> dict[str, np.ndarray]:
        """Train / validation / test sample positions (seeded permutation) and, with
        ``calibration``, the calibration sources drawn from (and removed from) the training
        split (:func:`~surrogates.metrics.conformal.calibration_split`, seed ``split_seed``).

        Raises
        ------
        ValueError
            If the calibration split is too small for the 95 % conformal interval.
        """
        split = split_samples(ds.sizes["sample"], self.fractions, seed=self.split_seed)
        if self.calibration:
            train, held = calibration_split(split["train"], self.calibration,
                                            seed=self.split_seed, alpha=SMALLEST_ALPHA,
                                            test=split["test"])
            split.update(train=train, calibration=held)
        return split

    def sensors(self, ds: xr.Dataset) -> np.ndarray | None:
        """Branch sensor positions ``(m, d)`` for pulse inputs (None for coordinates)."""
        if self.branch != "pulse":
            return None
        axes = [a for a in _AXES if a in ds["pressure"].dims]
        size = [float(ds[a].values[-1] - ds[a].values[0]) for a in axes]
        origin = [float(ds[a].values[0]) for a in axes]
        return sensor_grid(size, self.sensors_per_axis, origin=origin)

    def torch(self, ds: xr.Dataset, samples: np.ndarray, seed: int):
        """The torch dataset of ``samples`` (:func:`surrogates.data.acoustics.deeponet_torch`)."""
        return deeponet_torch(ds, samples, branch=self.branch,
                              points_per_sample=self.points_per_sample, seed=seed,
                              sensors=self.sensors(ds))


def _bounds(ds: xr.Dataset) -> tuple[list[float], list[float]]:
    nodes, times = node_coordinates(ds), ds["time"].values.astype(float)
    lower = [*nodes.min(axis=0).tolist(), float(times.min())]
    upper = [*nodes.max(axis=0).tolist(), float(times.max())]
    return lower, upper


def train_deeponet(data: DeepONetDataSpec, run_dir: str | os.PathLike, *,
                   model_config: dict[str, Any] | None = None,
                   train_config: TrainConfig | None = None, overwrite: bool = False,
                   resume: bool = False) -> TrainResult:
    """Train a DeepONet on an acoustic dataset into ``run_dir`` (see the module docstring).

    Parameters
    ----------
    data : DeepONetDataSpec
    run_dir : path-like
        Run folder to create (or continue with ``resume``).
    model_config : dict, optional
        DeepONet arguments overriding :func:`default_deeponet_config`; the trunk (and, for
        coordinate inputs, branch) bounds come from the data.
    train_config : TrainConfig, optional
        Default: Adam, lr 1e-3 with cosine decay, 300 epochs, batches of 8 sources, MSE in Pa^2.

    With ``data.calibration`` the held-out training sources are predicted after training and
    the per-time conformal intervals written to ``calibration.json``
    (:func:`calibrate_deeponet_run`).

    Raises
    ------
    FileExistsError
        If ``run_dir`` is not empty and neither ``overwrite`` nor ``resume`` is given.
    ValueError
        On a bad dataset or split (a calibration split of fewer than 19 sources included), or
        when resuming with other settings.
    """
    train_config = train_config or _default_train_config()
    ds = data.open()
    split = data.split(ds)
    result = _train_member(data, ds, split, Path(run_dir), model_config, train_config,
                           overwrite, resume)
    if data.calibration:
        calibrate_deeponet_run(run_dir)
    return result


def _default_train_config() -> TrainConfig:
    """Adam, lr 1e-3 with cosine decay, 300 epochs, batches of 8 sources, MSE in Pa^2."""
    return TrainConfig(epochs=300, batch_size=8, lr=1e-3, loss="mse")


def _train_member(data: DeepONetDataSpec, ds: xr.Dataset, split: dict[str, np.ndarray],
                  run_dir: Path, model_config: dict[str, Any] | None, train_config: TrainConfig,
                  overwrite: bool, resume: bool) -> TrainResult:
    """Build a DeepONet from ``train_config.seed`` (weights and random points), start
    ``run_dir`` and fit it."""
    dim = len([a for a in _AXES if a in ds["pressure"].dims])
    train_set = data.torch(ds, split["train"], seed=train_config.seed)
    validation = data.torch(ds, split["validation"], seed=train_config.seed + 1)
    lower, upper = _bounds(ds)
    config = {**default_deeponet_config(dim, train_set.branch.shape[1]),
              "trunk_lower": lower, "trunk_upper": upper}
    if data.branch == "coordinates":
        config.update(branch_lower=lower[:-1], branch_upper=upper[:-1])
    config.update(model_config or {})
    torch.manual_seed(train_config.seed)
    model = build("DeepONet", config)
    run_config = {"model_class": "DeepONet", "model_config": model.config,
                  "data": dataclasses.asdict(data), "train": dataclasses.asdict(train_config),
                  "n_parameters": model.n_parameters()}
    start_run(run_dir, RUN_KIND, run_config, overwrite=overwrite, resume=resume)
    return fit(model, train_set, validation, train_config, run_dir, resume=resume)


def train_deeponet_ensemble(data: DeepONetDataSpec, run_dir: str | os.PathLike, *,
                            n_members: int, model_config: dict[str, Any] | None = None,
                            train_config: TrainConfig | None = None, overwrite: bool = False,
                            resume: bool = False) -> list[TrainResult]:
    """Train a deep ensemble of ``n_members`` DeepONets (Lakshminarayanan et al. 2017).

    Member ``m`` is an ordinary DeepONet run folder ``run_dir/member-m``
    (:func:`train_deeponet`'s data, split and model; weights, batches and random training
    points from seed ``train_config.seed + m``); ``run_dir/run_config.json`` (kind
    ``"deeponet_acoustics"``) names the members, and evaluate / predict use their mean and
    spread. With ``data.calibration`` the conformal intervals are fitted once, on the ensemble
    (normalised score, :func:`calibrate_deeponet_run`). With ``resume`` members with a
    checkpoint continue from it and the others start from scratch.

    Returns
    -------
    list of TrainResult
        One per member.

    Raises
    ------
    ValueError
        If ``n_members < 2``, and as :func:`train_deeponet`.
    """
    names = member_names(n_members)
    train_config = train_config or _default_train_config()
    run_dir = Path(run_dir)
    ds = data.open()
    split = data.split(ds)
    start_run(run_dir, RUN_KIND, {"model_class": "DeepONet", "members": names,
                                  "model_overrides": model_config or {},
                                  "data": dataclasses.asdict(data),
                                  "train": dataclasses.asdict(train_config)},
              overwrite=overwrite, resume=resume, fixed=("model_overrides", "data", "members"))
    results = train_members(run_dir, names, train_config, resume, lambda member, cfg, again:
                            _train_member(data, ds, split, member, model_config, cfg,
                                          overwrite=True, resume=again))
    if data.calibration:
        calibrate_deeponet_run(run_dir)
    return results


def load_members(run_dir: str | os.PathLike) -> tuple[list[DeepONet], dict[str, Any]]:
    """The best DeepONet of a run (one) or of each ensemble member, and the run's config."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, kinds=(RUN_KIND,))
    names = config.get("members")
    paths = [run_dir / n / MODEL_NAME for n in names] if names else [run_dir / MODEL_NAME]
    return [load_model(p) for p in paths], config


@torch.no_grad()
def predict_fields(model: DeepONet, branch: np.ndarray, points: np.ndarray, *,
                   device: str = "auto", batch_size: int = 16) -> np.ndarray:
    """DeepONet predictions ``(B, n_points)`` for ``branch (B, m)`` at shared ``points``."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    pts = torch.as_tensor(points, dtype=torch.float32, device=dev)
    out = [model.forward_field(torch.as_tensor(branch[i:i + batch_size], dtype=torch.float32,
                                               device=dev), pts).cpu().numpy()
           for i in range(0, len(branch), batch_size)]
    return np.concatenate(out)


def _best_seconds(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


@torch.no_grad()
def _timings(models: list[DeepONet], branch: np.ndarray, points: np.ndarray,
             config: WaveDataConfig, sources: np.ndarray, device: str,
             receiver_points: np.ndarray | None = None, repeats: int = 3) -> dict[str, float]:
    """Seconds per full field (best of ``repeats``), for all ``B`` held-out sources at once and
    every member of an ensemble (its cost is the sum of its members'):

    * ``deeponet``: :meth:`~operators.deeponet.DeepONet.forward_field` (trunk and branch);
    * ``deeponet_cached``: :meth:`~operators.deeponet.DeepONet.forward_basis` with the trunk
      basis of the grid computed beforehand (it does not depend on the source);
    * ``solver``: :func:`~surrogates.solvers.wave.simulate` for the same sources and output
      times (compilation excluded);
    * ``deeponet_receivers``: the receivers' time series alone (``receiver_points``, cached
      basis), which the solver can only get by computing the whole field.
    """
    dev = resolve_device(device)
    models = [m.to(dev).eval() for m in models]
    b = torch.as_tensor(branch, dtype=torch.float32, device=dev)
    pts = torch.as_tensor(points, dtype=torch.float32, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def full():
        for m in models:
            m.forward_field(b, pts)
        sync()

    bases = [m.basis(pts) for m in models]

    def cached():
        for m, basis in zip(models, bases, strict=True):
            m.forward_basis(b, basis)
        sync()

    full()  # warm-up
    cached()
    best, best_cached = _best_seconds(full, repeats), _best_seconds(cached, repeats)
    out: dict[str, float] = {}
    if receiver_points is not None:
        rec = torch.as_tensor(receiver_points, dtype=torch.float32, device=dev)
        rec_bases = [m.basis(rec) for m in models]

        def receivers():
            for m, basis in zip(models, rec_bases, strict=True):
                m.forward_basis(b, basis)
            sync()

        receivers()
        out["deeponet_receivers_s_per_source"] = _best_seconds(receivers, repeats) / len(b)
    room, times = config.room(), config.times()

    def solve():
        return simulate(room, sources, times, pulse_width=config.pulse_width,
                        amplitude=config.amplitude, order=config.order, dtype=config.dtype,
                        batch_size=len(sources))

    solve()  # compile
    solver = min(solve().wall_time for _ in range(repeats))
    per_model, per_solver = best / len(branch), solver / len(sources)
    per_cached = best_cached / len(branch)
    out.update({"deeponet_s_per_field": per_model, "deeponet_cached_s_per_field": per_cached,
                "solver_s_per_field": per_solver, "speedup": per_solver / per_model,
                "speedup_cached": per_solver / per_cached, "n_fields": int(len(branch)),
                "n_members": len(models)})
    if "deeponet_receivers_s_per_source" in out:
        out["speedup_receivers"] = per_solver / out["deeponet_receivers_s_per_source"]
    return out


@dataclass
class FieldPredictions:
    """A run's whole-field predictions of one dataset split, in Pa.

    ``members``: ``(M, B, T, *grid)`` (``M = 1`` for a single model); ``truth``:
    ``(B, T, *grid)``; ``branch``: ``(B, m)`` branch inputs; ``points``: the trunk grid
    ``(T * n_nodes, d + 1)``; ``subset``: the split's samples of ``ds``.
    """

    spec: DeepONetDataSpec
    ds: xr.Dataset
    samples: np.ndarray
    models: list[DeepONet]
    branch: np.ndarray
    points: np.ndarray
    spatial: list[str]
    subset: xr.Dataset
    truth: np.ndarray
    members: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """The prediction: the members' mean ``(B, T, *grid)``."""
        return self.members.mean(axis=0)

    @property
    def spread(self) -> np.ndarray | None:
        """The members' sample std (``ddof = 1``); None for one model."""
        return None if len(self.members) == 1 else self.members.std(axis=0, ddof=1)


def _split_fields(run_dir: Path, data_path, split: str, device: str) -> FieldPredictions:
    """A run's (every member's) whole-field predictions of a split of its dataset."""
    models, run_config = load_members(run_dir)
    spec = DeepONetDataSpec(**{**run_config["data"],
                               **({"path": str(data_path)} if data_path else {})})
    ds = spec.open()
    if split == "all":
        samples = np.arange(ds.sizes["sample"])
    elif split in ("train", "validation", "test", "calibration"):
        # validation and test never depend on the calibration draw, which another dataset
        # may be too small for
        splits = (spec if split in ("train", "calibration")
                  else dataclasses.replace(spec, calibration=0.0)).split(ds)
        if split not in splits:
            raise ValueError(f"{run_dir} was trained without calibration (--calibrate): it has "
                             "no calibration split")
        samples = splits[split]
    else:
        raise ValueError(f"split must be train, validation, test or all, got {split!r}")
    branch = spec.torch(ds, samples, seed=0).branch.numpy()
    points = trunk_grid(ds)
    spatial = [a for a in _AXES if a in ds["pressure"].dims]
    sub = ds.isel(sample=samples)
    truth = sub["pressure"].transpose("sample", "time", *spatial).values
    members = np.stack([predict_fields(m, branch, points, device=device).reshape(truth.shape)
                        for m in models])
    return FieldPredictions(spec, ds, samples, models, branch, points, spatial, sub, truth,
                            members)


def calibrate_deeponet_run(run_dir: str | os.PathLike, device: str = "auto") -> dict[str, Any]:
    """Fit a run's split-conformal intervals on the whole fields of its calibration sources.

    One scale :math:`\\hat q_t` per output time (``output_axis`` on time) at each level of
    :data:`~surrogates.runs.calibration.CALIBRATION_LEVELS`, plus the whole-field band;
    normalised by the ensemble spread when the run has members. Writes and returns
    ``calibration.json`` (:func:`surrogates.runs.calibration.fit_calibration`).
    """
    f = _split_fields(Path(run_dir), None, "calibration", device)
    return fit_calibration(run_dir, f.mean, f.spread, f.truth, output_axis=1)


def evaluate_deeponet_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None,
                          *, split: str = "test", out_dir: str | os.PathLike | None = None,
                          device: str = "auto", timing: bool = True) -> dict[str, Any]:
    """Score a DeepONet acoustics run (one model or an ensemble) on whole fields of a split.

    Parameters
    ----------
    run_dir : path-like
        Folder written by :func:`train_deeponet` or :func:`train_deeponet_ensemble`.
    data_path : path-like, optional
        Acoustic dataset (default: the training dataset); ``split`` is the run's split of it,
        or ``"all"``.
    out_dir : path-like, optional
        Default ``run_dir/evaluation``: ``metrics.json``, ``fields.png`` (truth,
        prediction and error at three times for the first sample; 3D: the mid-height plane)
        and, for an ensemble (whose members differ everywhere) or a calibrated run,
        ``uq_reliability.png`` and ``uq_pit.png``.
    timing : bool
        Also time whole-field inference against the solver (needs the dataset's generating
        configuration).

    Returns
    -------
    dict
        ``field``: RMSE (Pa) and relative L2 over the whole space-time field of the prediction
        (an ensemble's mean), mean and per sample; ``receivers``: the same per receiver (when
        the dataset has receivers); ``timing``: seconds per field for the DeepONet (all
        members; with and without a precomputed trunk basis) and the solver, their ratios, and
        the DeepONet's time for the receivers' series alone (see :func:`_timings`);
        ``n_parameters`` (per member) and ``n_members``; ``uq["pressure"]``: the uncertainty
        block before and after calibration (:func:`surrogates.runs.calibration.uq_report`).
    """
    from surrogates import plots

    run_dir = Path(run_dir)
    f = _split_fields(run_dir, data_path, split, device)
    ds, spatial, truth, pred = f.ds, f.spatial, f.truth, f.mean
    errors = field_errors(pred, truth)
    result: dict[str, Any] = {
        "run": str(run_dir), "data": f.spec.path, "split": split,
        "n_samples": int(len(f.samples)), "n_parameters": f.models[0].n_parameters(),
        "n_members": len(f.models),
        "field": {"rmse_pa": errors["rmse_mean"], "rel_l2": errors["rel_l2_mean"],
                  "rmse_pa_per_sample": errors["rmse"].tolist(),
                  "rel_l2_per_sample": errors["rel_l2"].tolist()}}
    rec_points = None
    if "receiver_pressure" in ds.variables:
        positions = np.stack([ds[f"receiver_{a}"].values for a in spatial], axis=1)
        times = ds["time"].values.astype(float)
        rec_points = np.concatenate([np.tile(positions, (len(times), 1)),
                                     np.repeat(times, len(positions))[:, None]], axis=1)
        rec_pred = np.mean([predict_fields(m, f.branch, rec_points, device=device)
                            for m in f.models], axis=0).reshape(
            len(f.samples), len(times), len(positions))
        rec = receiver_errors(rec_pred, f.subset["receiver_pressure"].values)
        result["receivers"] = {"rmse_pa": rec["rmse_mean"].tolist(),
                               "rel_l2": rec["rel_l2_mean"].tolist(),
                               "positions_m": positions.tolist()}
    if timing:
        result["timing"] = _timings(f.models, f.branch, f.points, _data_config(ds),
                                    np.stack([f.subset[f"source_{a}"].values for a in spatial],
                                             1), device, rec_points)
    out = Path(out_dir) if out_dir is not None else run_dir / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    spread = f.spread
    # the reliability / PIT plots need a spread > 0 everywhere; identical members have none
    plot_dir = out if spread is None or np.all(spread > 0) else None
    result["uq"] = {"pressure": uq_report(
        truth, pred, members=None if spread is None else f.members,
        calibration=read_calibration(run_dir), out_dir=plot_dir)}
    write_json(result, out / "metrics.json")
    frames = np.linspace(0, truth.shape[1] - 1, 3).round().astype(int)
    cut = (slice(None),) * 3 + ((truth.shape[-1] // 2,) if len(spatial) == 3 else ())
    plots.field_snapshots(truth[0][cut][frames], pred[0][cut][frames],
                          ds["time"].values[frames], [ds[a].values for a in spatial[:2]],
                          out / "fields.png")
    return result


def predict_deeponet_run(run_dir: str | os.PathLike, out: str | os.PathLike,
                         data_path: str | os.PathLike | None = None, *, split: str = "test",
                         overwrite: bool = False, device: str = "auto") -> Path:
    """Write a DeepONet run's whole pressure fields of a dataset split to netCDF (atomically).

    Variables on ``(sample, time, *axes)`` in Pa: ``pressure`` (predicted; an ensemble's
    mean), ``pressure_reference`` (the solver's, from the dataset) and, for an ensemble or a
    calibrated run, ``pressure_std``: the members' spread, or the calibrated std whose Gaussian
    90 % interval ``pressure +- 1.645 pressure_std`` is the per-time conformal one
    (:func:`surrogates.runs.calibration.calibrated_std`). The source positions (m) are
    coordinates on ``sample``; attributes ``n_members`` and ``calibrated`` (0 or 1).
    """
    from surrogates.data.common import refuse_existing, write_netcdf

    out = refuse_existing(out, overwrite)
    run_dir = Path(run_dir)
    f = _split_fields(run_dir, data_path, split, device)
    dims = ("sample", "time", *f.spatial)
    variables = {"pressure": (dims, f.mean.astype(np.float32), {"units": "Pa"}),
                 "pressure_reference": (dims, f.truth.astype(np.float32), {"units": "Pa"})}
    calibration = read_calibration(run_dir)
    std = f.spread
    if calibration is not None:
        std = calibrated_std(calibration, f.mean, std)
    if std is not None:
        variables["pressure_std"] = (dims, std.astype(np.float32), {"units": "Pa"})
    result = xr.Dataset(
        variables,
        coords={"sample": f.samples, "time": f.ds["time"].values,
                **{a: f.ds[a].values for a in f.spatial},
                **{f"source_{a}": ("sample", f.subset[f"source_{a}"].values)
                   for a in f.spatial}},
        attrs={"run": str(run_dir.resolve()), "split": split, "n_members": len(f.models),
               "calibrated": int(calibration is not None)})
    write_netcdf(result, out, overwrite=overwrite)
    return out
