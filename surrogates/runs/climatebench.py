r"""ClimateBench run folders and scores for the emulators of :mod:`surrogates.models.climatebench`.

A run folder holds ``run_config.json`` (``kind`` = :data:`RUN_KIND`, ``emulator``, the data
folder and the configuration) and the fitted parameters; :func:`evaluate_run` scores it on the
ClimateBench test split (``ssp245``, member mean, 2080-2100) and writes ``metrics.json``: the
latitude-weighted NRMSE table and, for the GP and the FNO ensemble, CRPS and interval coverage
(:mod:`surrogates.metrics.uq`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from surrogates.data.climatebench import (
    METRIC_YEARS,
    OUTPUT_VARIABLES,
    member_mean,
    open_split,
)
from surrogates.data.common import write_json
from surrogates.metrics import uq
from surrogates.metrics.climatebench import nrmse_scores
from surrogates.metrics.uq import uq_block
from surrogates.metrics.uq_plots import write_uq_plots
from surrogates.models.climatebench import (
    ClimateFNOConfig,
    ClimateGP,
    ClimateGPConfig,
    FNOEnsembleEmulator,
    PatternScaling,
    _as_dataset,
    stack_experiments,
)
from surrogates.runs import folder
from surrogates.runs.calibration import deterministic_report
from surrogates.runs.folder import prepare_run_dir, write_run_config

RUN_KIND = "climatebench"

EMULATORS = {"pattern-scaling": (PatternScaling, None), "climate-gp": (ClimateGP, ClimateGPConfig),
             "climate-fno": (FNOEnsembleEmulator, ClimateFNOConfig)}


# ------------------------------------------------------------------------------ UQ and scores
def ensemble_uq_scores(ensemble, observation, level: float = 0.9) -> dict[str, float]:
    """Mean CRPS and central-interval coverage of an ensemble (members on axis 0).

    Uses :func:`surrogates.metrics.uq.crps_ensemble` (fair estimator) and
    :func:`surrogates.metrics.uq.ensemble_interval` +
    :func:`surrogates.metrics.uq.interval_coverage`.
    """
    lower, upper = uq.ensemble_interval(ensemble, level=level, axis=0)
    return {"crps": float(np.mean(uq.crps_ensemble(ensemble, observation, axis=0,
                                                   fair=len(ensemble) > 1))),
            "coverage": uq.interval_coverage(lower, upper, observation), "level": level}


def gaussian_uq_scores(mean, std, observation, level: float = 0.9) -> dict[str, float]:
    """Mean CRPS and central-interval coverage of Gaussian predictions
    (:mod:`surrogates.metrics.uq`)."""
    std = np.maximum(np.asarray(std, dtype=float), 1e-12)
    lower, upper = uq.gaussian_interval(mean, std, level=level)
    return {"crps": float(np.mean(uq.crps_gaussian(mean, std, observation))),
            "coverage": uq.interval_coverage(lower, upper, observation), "level": level}


def climatology(train: Mapping[str, xr.Dataset], inputs: xr.Dataset) -> xr.Dataset:
    """The reference forecast: the mean training field of each output, every year."""
    table = stack_experiments(train)
    fields = np.broadcast_to(table.outputs.mean(0), (inputs.sizes["time"],
                                                     *table.outputs.shape[1:]))
    return _as_dataset(np.array(fields), inputs)


def score_emulator(emulator, test: Mapping[str, xr.Dataset], *, level: float = 0.9,
                   years: tuple[int, int] = METRIC_YEARS,
                   out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """ClimateBench NRMSE table per test experiment, plus, for emulators with a predictive std,
    CRPS and coverage per output variable (``uq[v]``: the ``level`` interval, and the full
    block of :func:`surrogates.metrics.uq.uq_block` under ``raw``; reliability and PIT plots in
    ``out_dir``)."""
    result: dict[str, Any] = {}
    for name, truth in test.items():
        truth = member_mean(truth)
        entry: dict[str, Any] = {}
        scored = truth.sel(time=slice(*years))
        if isinstance(emulator, (ClimateGP, FNOEnsembleEmulator)):
            # Gaussian predictive distributions: the GP's, and the FNO ensemble's spread plus
            # the internal variability of the member-mean target (the members' own quantiles
            # cannot include the latter)
            prediction, std = emulator.predict(truth, return_std=True)
            entry["uq"] = {}
            for v in OUTPUT_VARIABLES:
                mean_v = prediction[v].sel(time=scored["time"]).values
                std_v = np.maximum(std[v].sel(time=scored["time"]).values, 1e-12)
                obs = scored[v].transpose("time", "lat", "lon").values
                entry["uq"][v] = {**gaussian_uq_scores(mean_v, std_v, obs, level),
                                  "raw": uq_block(obs, mean=mean_v, std=std_v)}
                if out_dir is not None:
                    write_uq_plots(obs, mean_v, std_v, out_dir, prefix=f"uq_{name}_{v}",
                                   title=f"{name} {v}")
        else:
            prediction = emulator.predict(truth)
        entry["nrmse"] = nrmse_scores(truth, prediction, years=years)
        result[name] = entry
    return result


# --------------------------------------------------------------------------------- run folders
def train_emulator(emulator: str, data_dir: str | os.PathLike, run_dir: str | os.PathLike, *,
                   config: Any = None, train_config=None, overwrite: bool = False):
    """Fit an emulator on the standard training split of ``data_dir`` into a run folder.

    Parameters
    ----------
    emulator : {"pattern-scaling", "climate-gp", "climate-fno"}
    config : ClimateGPConfig or ClimateFNOConfig, optional
    train_config : surrogates.training.TrainConfig, optional
        FNO only.

    Raises
    ------
    ValueError
        For an unknown emulator name.
    FileExistsError
        If ``run_dir`` exists and ``overwrite`` is False.
    """
    if emulator not in EMULATORS:
        raise ValueError(f"unknown emulator {emulator!r}; choose from {sorted(EMULATORS)}")
    run_dir = Path(run_dir)
    cls, config_cls = EMULATORS[emulator]
    split = open_split(data_dir)
    prepare_run_dir(run_dir, overwrite=overwrite, resume=False)
    if emulator == "climate-fno":
        model = cls(config, train_config).fit(split.train, run_dir)
    else:
        model = (cls(config) if config_cls else cls()).fit(split.train)
        model.save(run_dir)
    record = {"emulator": emulator, "data": str(Path(data_dir).resolve()),
              "train_experiments": list(split.train), "config":
              dataclasses.asdict(model.config) if config_cls else {}}
    if emulator == "climate-fno":
        record["train"] = dataclasses.asdict(model.train_config)
    write_run_config(run_dir, RUN_KIND, record)
    return model


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``run_config.json`` of a ClimateBench run (checked to be one)."""
    record = folder.read_run_config(run_dir, kinds=(RUN_KIND,))
    if record.get("emulator") not in EMULATORS:
        raise ValueError(f"{run_dir} is not a ClimateBench emulator run (kind "
                         f"{record.get('kind')!r}, emulator {record.get('emulator')!r})")
    return record


def load_emulator(run_dir: str | os.PathLike):
    """Rebuild the fitted emulator of a run folder."""
    record = read_run_config(run_dir)
    cls, _ = EMULATORS[record["emulator"]]
    return cls.load(run_dir, record.get("config"))


def evaluate_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 out_dir: str | os.PathLike | None = None, *,
                 test: Sequence[str] | None = None) -> dict[str, Any]:
    """Score a run on the test split (default: the data it was trained on) into
    ``out_dir/metrics.json`` (default ``run_dir/evaluation``)."""
    record = read_run_config(run_dir)
    data_dir = Path(data_dir or record["data"])
    emulator = load_emulator(run_dir)
    kwargs = {} if test is None else {"test": tuple(test)}
    split = open_split(data_dir, train=(), **kwargs)
    out = Path(out_dir) if out_dir else Path(run_dir) / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    result = {"emulator": record["emulator"], "data": str(data_dir),
              "years": list(METRIC_YEARS),
              "experiments": score_emulator(emulator, split.test, out_dir=out)}
    result["uq"] = {f"{experiment}/{v}": {"raw": scores["raw"]}
                    for experiment, entry in result["experiments"].items()
                    for v, scores in entry.get("uq", {}).items()} or {
        "fields": deterministic_report()}
    write_json(result, out / "metrics.json")
    return result


def format_table(rows: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """A text table ``emulator x variable`` of spatial / global / total NRMSE."""
    lines = [f"{'emulator':<18}{'variable':<27}{'spatial':>9}{'global':>9}{'total':>9}"]
    for name, table in rows.items():
        for var, s in table.items():
            lines.append(f"{name:<18}{var:<27}{s['spatial']:>9.4f}{s['global']:>9.4f}"
                         f"{s['total']:>9.4f}")
    return "\n".join(lines)


def predict_emulator_run(run_dir: str | os.PathLike, out: str | os.PathLike, *,
                         data_dir: str | os.PathLike | None = None, experiment: str = "ssp245",
                         overwrite: bool = False) -> Path:
    """Write an emulator's fields for one experiment's inputs to netCDF (atomically).

    Variables: the output fields on ``(time, lat, lon)`` in their units (K, mm day-1) and, for
    the GP and the FNO ensemble, ``<field>_std``: the predictive standard deviation (GP) or the
    members' spread (FNO ensemble).
    """
    from surrogates.data.climatebench import open_experiment
    from surrogates.data.common import refuse_existing, write_netcdf

    out = refuse_existing(out, overwrite)
    record = read_run_config(run_dir)
    emulator = load_emulator(run_dir)
    inputs = open_experiment(Path(data_dir or record["data"]), experiment, outputs=False)
    if isinstance(emulator, (ClimateGP, FNOEnsembleEmulator)):
        mean, std = emulator.predict(inputs, return_std=True)
        ds = mean.merge(std.rename({v: f"{v}_std" for v in std.data_vars}))
    else:
        ds = emulator.predict(inputs)
    ds.attrs.update({"run": str(Path(run_dir).resolve()), "experiment": experiment,
                     "emulator": record["emulator"]})
    write_netcdf(ds, out, overwrite=overwrite)
    return out
