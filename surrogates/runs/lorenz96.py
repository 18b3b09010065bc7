"""Lorenz-96 closure runs: ensembles, the cubic polynomial baseline, and the hybrid model
scored against the fully resolved solver.

Closure runs are operator runs (:mod:`surrogates.runs.operators`) of kind ``"closure"``;
:func:`~surrogates.runs.operators.train_ensemble` writes a deep ensemble of them,
:func:`fit_polynomial_closure` the least-squares cubic of Wilks (2005), and
:func:`evaluate_closure_run` adds the hybrid evaluation.

For test initial conditions ``(X_0, Y_0)`` taken from a dataset, the reference is the resolved
two-tier system integrated by :func:`surrogates.solvers.lorenz96.solve`; each model is the hybrid
:class:`operators.mno.HybridLorenz96` started from ``X_0`` alone,

.. math:: X_{n+1} = X_n + \\Delta t\\,\\big(f(X_n; F) + c(X_n)\\big) \\quad \\text{(Euler) or RK4},

with ``c`` a learned closure, a baseline closure, or ``None`` (coarse physics only); the pure
data-driven baseline :class:`operators.mno.NextStateFNO` is iterated on its own. Scores:
RMSE by lead time and valid prediction time (short range), distances between the long-run
climates (mean, std, Hellinger distance of the densities, Wasserstein-1, autocorrelation), the
fraction of runs that stay finite, and the wall time per model time unit (MTU) of each model
against the resolved solver on the same batch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators.base import save_model
from operators.mno import ClosureEnsemble, HybridLorenz96, NextStateFNO, PolynomialClosure
from surrogates.data.common import dataset_config, write_json
from surrogates.data.shards import open_dataset
from surrogates.metrics import dynamics as evaluation
from surrogates.metrics import dynamics_plots
from surrogates.metrics import regression as metrics
from surrogates.runs.folder import (
    CLOSURE_MODEL_CLASSES,
    prepare_run_dir,
    write_run_config,
)
from surrogates.runs.operators import (
    DataSpec,
    evaluate_run,
    load_run,
    operator_splits,
    scalar_statistics,
    split_indices,
)
from surrogates.solvers import lorenz96
from surrogates.training import MODEL_NAME

#: Model classes of :mod:`operators.mno` that ``surrogates evaluate`` runs against the resolved
#: solver: closures inside the hybrid, the data-driven ``NextStateFNO`` on its own.
CLOSURE_CLASSES = CLOSURE_MODEL_CLASSES


@dataclass(frozen=True)
class HybridEvaluationConfig:
    """Horizons and options of :func:`evaluate_hybrid`.

    Attributes
    ----------
    scheme : {"euler", "rk4"}
        Hybrid time stepping; ``"euler"`` for closures trained on ``closure_target``.
    forecast_mtu, climate_mtu : float
        Short-range horizon (RMSE by lead, valid prediction time) and long-run horizon (climate
        statistics, stability), in model time units.
    save_every : int
        Steps between saved frames (the data's ``dt`` is used for every model).
    max_lag : int
        Frames of autocorrelation compared (fewer if the climate run is shorter).
    threshold : float
        Normalised-error threshold of the valid prediction time.
    dt_factor : int
        The hybrid steps ``dt_factor`` times the resolved solver's ``dt`` (the data's);
        ``save_every`` must be a multiple of it, so both are compared at the same times. The
        coarse equations are far less stiff than the fast tier: RK4 hybrids trained on
        ``subgrid_forcing`` run at steps about 10x larger.
    """

    scheme: str = "euler"
    forecast_mtu: float = 2.0
    climate_mtu: float = 20.0
    save_every: int = 10
    max_lag: int = 40
    threshold: float = 0.5
    dt_factor: int = 1

    def __post_init__(self):
        if self.dt_factor < 1 or self.save_every % self.dt_factor:
            raise ValueError(f"dt_factor must be a positive divisor of save_every "
                             f"({self.save_every}), got {self.dt_factor}")
        if self.scheme not in ("euler", "rk4"):
            raise ValueError(f"scheme must be 'euler' or 'rk4', got {self.scheme!r}")
        if not (0 < self.forecast_mtu <= self.climate_mtu):
            raise ValueError(f"need 0 < forecast_mtu <= climate_mtu, got {self.forecast_mtu}, "
                             f"{self.climate_mtu}")


def _steps(mtu: float, dt: float, save_every: int) -> int:
    n = int(round(mtu / dt / save_every)) * save_every
    return max(n, save_every)


def initial_conditions(ds: xr.Dataset, samples: np.ndarray, frame: int = 0
                       ) -> tuple[lorenz96.Lorenz96State, lorenz96.Lorenz96Params, float]:
    """Resolved state and parameters at ``frame`` of ``samples``, and the data's ``dt``."""
    if "Y" not in ds:
        raise ValueError("the dataset holds no fast variables Y (generated with --no-fast): the "
                         "resolved reference cannot be restarted from it")
    first = ds.isel(sample=samples, time=frame)
    state = lorenz96.Lorenz96State(first["X"].values, first["Y"].values,
                                   first["Z"].values if "Z" in first else None)
    names = [f.name for f in dataclasses.fields(lorenz96.Lorenz96Params)]
    params = lorenz96.Lorenz96Params(**{p: first[p].values for p in names if p in first})
    return state, params, float(dataset_config(ds)["dt"])


def hybrid_run(closure: torch.nn.Module | None, X0: np.ndarray, F: np.ndarray, dt: float,
               n_steps: int, save_every: int, scheme: str,
               history: np.ndarray | None = None) -> np.ndarray | None:
    """Hybrid trajectories ``(B, T, K)`` in float64, or ``None`` if the run blew up.

    ``history (B, h, K)``: the states before ``X0``, most recent first, for closures with
    ``history = h`` (one hybrid step apart).
    """
    model = HybridLorenz96(closure)
    past = None if history is None else torch.as_tensor(history, dtype=torch.float64)
    try:
        with torch.no_grad():
            X = model.rollout(torch.as_tensor(X0, dtype=torch.float64),
                              torch.as_tensor(F, dtype=torch.float64), dt, n_steps,
                              save_every=save_every, scheme=scheme, history=past)
    except FloatingPointError:
        return None
    return X.numpy()


def emulator_run(emulator: NextStateFNO, X0: np.ndarray, F: np.ndarray, n_steps: int,
                 save_every: int) -> np.ndarray | None:
    """Trajectories ``(B, T, K)`` of a data-driven emulator, or ``None`` if it blew up."""
    try:
        with torch.no_grad():
            X = emulator.rollout(torch.as_tensor(X0, dtype=torch.float64),
                                 torch.as_tensor(F, dtype=torch.float64), n_steps,
                                 save_every=save_every)
    except FloatingPointError:
        return None
    return X.numpy()


def _runner(model: torch.nn.Module | None, X0: np.ndarray, F: np.ndarray, past: np.ndarray,
            dt: float, save_every: int, config: HybridEvaluationConfig, data_every: int):
    """``run(n_frames, rows=slice(None)) -> (B, n_frames + 1, K) or None`` for one model.

    Frames are ``save_every * dt`` apart (the resolved reference's). Closures run inside the
    hybrid at ``dt * config.dt_factor``, history closures with the data's frames
    ``past (B, h, K)`` (most recent first, ``data_every`` solver steps apart; the hybrid step
    must then equal that interval); a
    :class:`NextStateFNO` runs at its own ``step_mtu``, which must divide the frame interval.
    ``rows`` selects initial conditions.
    """
    frame = save_every * dt
    F = np.array(np.broadcast_to(F, (len(X0),)))
    if isinstance(model, NextStateFNO):
        per_frame = frame / model.step_mtu
        if per_frame < 0.999 or abs(per_frame - round(per_frame)) > 1e-6:
            raise ValueError(f"the emulator steps {model.step_mtu:g} MTU, which does not divide "
                             f"the evaluation's frame interval {frame:g} MTU")
        k = int(round(per_frame))
        return lambda n, rows=slice(None): emulator_run(model, X0[rows], F[rows], n * k, k)
    f = config.dt_factor
    h = int(getattr(model, "history", 0)) if model is not None else 0
    if h and past.shape[1] < h:
        raise ValueError(f"a closure with history {h} needs {h} frames before the initial "
                         f"conditions, got {past.shape[1]}")
    if h and f != data_every:
        raise ValueError(f"a closure with history takes its past states one hybrid step apart "
                         f"and learned them from the data's frames: set dt_factor to the data's "
                         f"save_every ({data_every}), got {f}")
    return lambda n, rows=slice(None): hybrid_run(
        model, X0[rows], F[rows], dt * f, n * (save_every // f), save_every // f, config.scheme,
        history=past[rows, :h] if h else None)


def _stable_initial_conditions(run, n_frames: int, n_initial: int) -> np.ndarray:
    """After a batch blew up: which initial conditions stay finite when run on their own."""
    return np.array([run(n_frames, rows=slice(i, i + 1)) is not None for i in range(n_initial)])


def _ensemble_scores(ensemble: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """CRPS, spread and spread-skill by lead of a forecast ensemble ``(M, B, T, K)``."""
    scores = evaluation.ensemble_skill(ensemble, reference)
    spread = np.sqrt(ensemble.var(axis=0, ddof=1).mean(axis=(0, 2)))
    late = slice(1, None)  # lead 0 is the common initial condition: no spread, no error
    return {"n_members": int(ensemble.shape[0]), "crps_by_lead": scores["crps"].tolist(),
            "spread_by_lead": spread.tolist(), "rmse_by_lead": scores["rmse"].tolist(),
            "spread_skill_by_lead": scores["spread_skill"].tolist(),
            "crps_mean": float(scores["crps"][late].mean()),
            "spread_skill_mean": float(np.nanmean(scores["spread_skill"][late]))}


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def evaluate_hybrid(closures: Mapping[str, torch.nn.Module | None], ds: xr.Dataset,
                    samples: np.ndarray, config: HybridEvaluationConfig,
                    out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Score hybrid models against the resolved solver from the given test samples.

    Parameters
    ----------
    closures : mapping of name to closure module (or ``None`` for coarse physics only)
        A :class:`~operators.mno.NextStateFNO` runs as an emulator at its own step.
    ds : xarray.Dataset
        Lorenz-96 dataset with ``Y`` (the reference restarts from ``(X, Y)`` at frame 0).
    samples : array of int
        Dataset samples whose frame 0 are the initial conditions.
    config : HybridEvaluationConfig
    out_dir : path-like, optional
        Where ``hybrid_metrics.json`` and the PNG plots go.

    Returns
    -------
    dict
        ``{"config", "reference": {"seconds_per_mtu"}, "models": {name: {...}}}`` with, per
        model, ``rmse_by_lead``, ``vpt`` (per initial condition, MTU) with ``vpt_mean`` /
        ``vpt_min``, ``stable_fraction`` (of the
        initial conditions whose run stayed finite over the climate horizon; a batch that blew
        up is rerun one initial condition at a time to find them; skill and climate scores
        need every run finite), ``stable_initial_conditions`` (one flag per sample),
        ``climate`` distances to the reference and ``seconds_per_mtu`` / ``speedup``. A
        :class:`~operators.mno.ClosureEnsemble` runs one hybrid per member: its RMSE and valid
        prediction time are those of the ensemble mean, its climate pools the members, its cost
        is that of all members, ``stable_fraction`` is the fraction of (member, initial
        condition) runs that stayed finite, and ``ensemble`` holds CRPS, spread and
        spread-skill by lead (:func:`surrogates.metrics.dynamics.ensemble_skill`; plot
        ``hybrid_ensemble_<name>.png``).
    """
    if len(samples) == 0:
        raise ValueError("no test samples to evaluate on")
    # History closures need past frames: every model starts at the frame after the longest one.
    start = max([int(getattr(m, "history", 0)) for m in closures.values() if m is not None],
                default=0)
    state, params, dt = initial_conditions(ds, samples, frame=start)
    past = ds["X"].isel(sample=samples, time=slice(0, start)).transpose(
        "sample", "time", "k").values[:, ::-1].copy()  # (B, start, K), most recent first
    n_forecast = _steps(config.forecast_mtu, dt, config.save_every)
    n_climate = _steps(config.climate_mtu, dt, config.save_every)

    def resolved(n_steps: int) -> np.ndarray:
        return lorenz96.solve(state, params, dt=dt, n_steps=n_steps,
                              save_every=config.save_every).X

    reference = resolved(n_climate)
    max_lag = min(config.max_lag, reference.shape[1] - 1)  # a short climate run has fewer lags
    times = np.arange(reference.shape[1]) * dt * config.save_every
    T_forecast = n_forecast // config.save_every + 1
    clim_std = float(reference.std())
    X0 = state.X
    F = np.asarray(params.F)

    result: dict[str, Any] = {"config": dataclasses.asdict(config), "dt": dt,
                              "start_frame": start,
                              "n_initial_conditions": int(len(samples)), "models": {},
                              "reference": {"seconds_per_mtu": evaluation.cost_per_model_time_unit(
                                  lambda: resolved(n_forecast), n_forecast, dt)}}
    runs, rmse, acfs, skill = {"resolved": reference}, {}, {}, {}
    frames_forecast = n_forecast // config.save_every
    data_every = int(dataset_config(ds)["save_every"])  # solver steps between the data's frames
    for name, closure in closures.items():
        members = list(closure.members) if isinstance(closure, ClosureEnsemble) else [closure]
        member_runs = [_runner(m, X0, F, past, dt, config.save_every, config, data_every)
                       for m in members]
        trajectories = [run(n_climate // config.save_every) for run in member_runs]
        seconds = evaluation.cost_per_model_time_unit(
            lambda member_runs=member_runs: [run(frames_forecast) for run in member_runs], 1,
            frames_forecast * config.save_every * dt)
        stable = np.stack([np.ones(len(X0), bool) if X is not None else
                           _stable_initial_conditions(run, n_climate // config.save_every,
                                                      len(X0))
                           for X, run in zip(trajectories, member_runs, strict=True)])
        entry: dict[str, Any] = {"seconds_per_mtu": seconds,
                                 "speedup": result["reference"]["seconds_per_mtu"] / seconds,
                                 "stable_fraction": float(stable.mean()),
                                 "stable_initial_conditions": stable.all(axis=0).tolist()}
        if stable.all():
            ensemble = np.stack(trajectories)  # (M, B, T, K)
            X = ensemble.mean(axis=0)  # the deterministic forecast: the ensemble mean
            short, ref_short = X[:, :T_forecast], reference[:, :T_forecast]
            rmse[name] = evaluation.rmse_by_lead(short, ref_short)
            vpt = evaluation.valid_prediction_time(short, ref_short, times[:T_forecast],
                                                   clim_std, config.threshold)
            pooled = ensemble.reshape(-1, *ensemble.shape[2:])  # every member's climate
            entry |= {"rmse_by_lead": rmse[name].tolist(), "vpt": vpt.tolist(),
                      "vpt_mean": float(vpt.mean()),
                      "vpt_min": float(vpt.min()),
                      "climate": evaluation.compare_climates(pooled, reference,
                                                             max_lag=max_lag)}
            if len(members) > 1:
                entry["ensemble"] = _ensemble_scores(ensemble[:, :, :T_forecast], ref_short)
                skill[name] = entry["ensemble"]
            runs[name] = pooled
            acfs[name] = evaluation.climate_statistics(pooled, max_lag=max_lag).acf
        result["models"][name] = entry
    result["lead_times"] = times[:T_forecast].tolist()
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(result, out / "hybrid_metrics.json")
        acfs["resolved"] = evaluation.climate_statistics(reference, max_lag=max_lag).acf
        if rmse:
            dynamics_plots.plot_rmse_by_lead(rmse, times[:T_forecast], out / "hybrid_rmse.png")
        for name, scores in skill.items():
            dynamics_plots.plot_rmse_by_lead(
                {"RMSE of the mean": scores["rmse_by_lead"], "spread": scores["spread_by_lead"],
                 "CRPS": scores["crps_by_lead"]}, times[:T_forecast],
                out / f"hybrid_ensemble_{_file_name(name)}.png", ylabel="units of X")
        dynamics_plots.plot_climate_pdfs(runs, out / "hybrid_climate_pdf.png", reference="resolved")
        dynamics_plots.plot_stability(runs, times, out / "hybrid_stability.png",
                                      reference="resolved")
        dynamics_plots.plot_autocorrelation(acfs, out / "hybrid_autocorrelation.png",
                                        dt=dt * config.save_every, reference="resolved")
    return result


# ----------------------------------------------------------------------- closure run folders
def fit_polynomial_closure(data: DataSpec, run_dir: str | os.PathLike, *, degree: int = 3,
                           overwrite: bool = False) -> dict[str, Any]:
    """Fit the cubic (degree ``degree``) closure of Wilks (2005) by least squares on the
    training split and write a run folder like
    :func:`~surrogates.runs.operators.train_operator` (no optimiser).

    Returns
    -------
    dict
        ``{"coefficients": [a_0, ..., a_degree], "train_r2": R^2 on the training split}``.
    """
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite, resume=False)
    if data.stream:
        raise ValueError("the polynomial closure is fitted in memory: drop stream from [data]")
    splits = operator_splits(data)
    scalar_statistics(splits)  # one input and one target
    model = PolynomialClosure(degree=degree).fit_least_squares(splits.train.inputs,
                                                               splits.train.targets)
    with torch.no_grad():
        fitted = model(splits.train.inputs).numpy()
    result = {"coefficients": [float(c) for c in model.coefficients.detach()],
              "train_r2": metrics.r2_score(fitted, splits.train.targets.numpy())}
    save_model(model, run_dir / MODEL_NAME)
    write_run_config(run_dir, "closure", {
        "model_class": "PolynomialClosure", "model_config": model.config,
        "data": dataclasses.asdict(data), "train": {"method": "least squares", **result}})
    return result


def evaluate_closure_run(run_dir: str | os.PathLike, data_path: str | os.PathLike | None = None,
                         *, split: str = "test", out_dir: str | os.PathLike | None = None,
                         hybrid: HybridEvaluationConfig | None = None,
                         compare: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """Offline scores of a closure run (:func:`surrogates.runs.operators.evaluate_run`) and,
    with ``hybrid``, the closure inside the hybrid model from the split's initial conditions
    against the resolved solver (:func:`evaluate_hybrid`, with coarse physics alone as a
    baseline and the runs in ``compare`` beside it); the latter goes to ``result["hybrid"]``
    and ``hybrid_metrics.json``.
    """
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "evaluation"
    result = evaluate_run(run_dir, data_path, split=split, out_dir=out)
    if hybrid is None:
        return result
    model, config = load_run(run_dir, kinds=("closure",))
    if config["model_class"] not in CLOSURE_CLASSES:
        raise ValueError(f"{run_dir} holds a {config['model_class']}: the hybrid evaluation is "
                         f"for the closures {', '.join(CLOSURE_CLASSES)}")
    spec = DataSpec(**config["data"])
    ds = open_dataset(Path(data_path or spec.path))
    if split == "all":
        idx = np.arange(ds.sizes["sample"])
    else:
        idx = split_indices(spec, ds.sizes["sample"])[split]
    names = [Path(run_dir).name, "no closure"] + [Path(other).name for other in compare]
    if len(set(names)) != len(names):
        raise ValueError(f"the hybrid evaluation names models by their run folder, and "
                         f"these repeat: {names}; rename a folder")
    closures = {names[0]: model, "no closure": None}
    closures |= {Path(other).name: load_run(other, kinds=("closure",))[0] for other in compare}
    result["hybrid"] = evaluate_hybrid(closures, ds, idx, hybrid, out_dir=out)
    return result
