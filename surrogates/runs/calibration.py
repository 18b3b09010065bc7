r"""The uncertainty block of every family's ``evaluate``, and split-conformal calibration of a
run folder (``calibration.json``).

:func:`uq_report` scores a prediction with :func:`surrogates.metrics.uq.uq_block` (coverage and
width at 50 / 90 / 95 %, CRPS, Gaussian NLL, spread-skill, PIT) and writes its reliability
diagram and PIT histogram; a deterministic model without calibration gets a block that says so.

``surrogates train ... --calibrate FRACTION`` holds a fraction of the *training* samples out of
the fit (:func:`surrogates.metrics.conformal.calibration_split`; the validation and test splits
are untouched). After training the run predicts them and :func:`fit_calibration` fits, at each
level :math:`1 - \alpha` of :data:`CALIBRATION_LEVELS`,

* a marginal split-conformal interval per output
  (:class:`~surrogates.metrics.conformal.ConformalRecalibrator`: normalised score
  :math:`|y - \mu| / \sigma` when the run has a std, the absolute residual otherwise), and
* a simultaneous band over whole fields
  (:class:`~surrogates.metrics.conformal.SimultaneousConformalBand`, the maximum normalised
  residual over each example),

written as plain JSON to ``RUN_DIR/calibration.json``. ``evaluate`` then reports the block
before and after calibration, and ``predict`` writes the calibrated std. The guarantee is
marginal and needs exchangeable calibration and test examples (:mod:`surrogates.metrics.conformal`);
it does not hold conditional on the input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from surrogates.data.common import write_json
from surrogates.metrics.conformal import (
    ConformalRecalibrator,
    SimultaneousConformalBand,
    field_coverage,
    min_calibration_size,
    recalibrator_from_dict,
)
from surrogates.metrics.uq_block import uq_block
from surrogates.metrics.uq_plots import write_uq_plots

CALIBRATION_NAME = "calibration.json"
#: Nominal levels 1 - alpha calibrated by ``--calibrate``; the first feeds the calibrated std.
CALIBRATION_LEVELS = (0.9, 0.95)
#: The smallest miscoverage calibrated, ``1 - max(CALIBRATION_LEVELS)``: it sets how many
#: calibration examples ``--calibrate`` needs (:func:`min_calibration_examples`).
SMALLEST_ALPHA = round(1.0 - max(CALIBRATION_LEVELS), 10)


def min_calibration_examples() -> int:
    """Fewest calibration examples with a finite conformal quantile at every calibrated level
    (:func:`surrogates.metrics.conformal.min_calibration_size` at :data:`SMALLEST_ALPHA`: 19)."""
    return min_calibration_size(SMALLEST_ALPHA)


def fit_calibration(run_dir: str | os.PathLike, mean: np.ndarray, std: np.ndarray | None,
                    y: np.ndarray, *, output_axis: int | None = 1) -> dict[str, Any]:
    """Fit the conformal intervals of a run on its calibration split; write
    ``calibration.json``.

    Parameters
    ----------
    mean, y : ndarray, shape ``(n, C, *grid)``
        Predictions and targets of the ``n`` calibration examples (physical units).
    std : ndarray or None
        The run's predictive std (an ensemble's spread), or None for a deterministic model.
    output_axis : int or None, default 1
        One conformal scale per output channel.
    """
    record: dict[str, Any] = {"n_calibration": int(len(y)), "levels": {}}
    for level in CALIBRATION_LEVELS:
        alpha = round(1.0 - level, 10)
        marginal = ConformalRecalibrator(alpha, output_axis=output_axis).fit(mean, std, y)
        band = SimultaneousConformalBand(alpha).fit(mean, std, y)
        record["levels"][str(level)] = {"marginal": marginal.to_dict(),
                                        "simultaneous": band.to_dict()}
    write_json(record, Path(run_dir) / CALIBRATION_NAME)
    return record


def read_calibration(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's ``calibration.json``, or None if it was trained without ``--calibrate``."""
    path = Path(run_dir) / CALIBRATION_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def calibrated_std(calibration: dict[str, Any], mean: np.ndarray,
                   std: np.ndarray | None) -> np.ndarray:
    """The std whose Gaussian interval at the first calibrated level is the conformal one."""
    marginal = recalibrator_from_dict(
        calibration["levels"][str(CALIBRATION_LEVELS[0])]["marginal"])
    return marginal.calibrated_std(np.ones_like(mean) if std is None else std)


def _calibrated(calibration: dict[str, Any], y, mean, std) -> dict[str, Any]:
    scores: dict[str, Any] = {"n_calibration": calibration["n_calibration"], "coverage": {},
                              "width": {}, "field_coverage": {}}
    for level, entry in calibration["levels"].items():
        marginal = recalibrator_from_dict(entry["marginal"])
        lower, upper = marginal.interval(mean, std)
        scores["coverage"][level] = float(np.mean((y >= lower) & (y <= upper)))
        scores["width"][level] = float(np.mean(upper - lower))
        band = recalibrator_from_dict(entry["simultaneous"])
        scores["field_coverage"][level] = field_coverage(*band.interval(mean, std), y)
    block = uq_block(y, mean=mean, std=calibrated_std(calibration, mean, std))
    scores.update({k: block[k] for k in ("crps", "nll", "spread_skill", "pit")})
    return scores


def deterministic_report() -> dict[str, Any]:
    """The ``uq`` report of a model without a predictive distribution (says so, scores
    nothing)."""
    return {"raw": None, "note": "a deterministic model has no predictive distribution; train "
                                 "an ensemble (--members) or calibrate it (--calibrate FRACTION) "
                                 "where the family offers them"}


def uq_report(y: np.ndarray, mean: np.ndarray, *, std: np.ndarray | None = None,
              members: np.ndarray | None = None, calibration: dict[str, Any] | None = None,
              out_dir: str | os.PathLike | None = None, prefix: str = "uq",
              group_axis: int | None = None) -> dict[str, Any]:
    """The ``uq`` block of ``metrics.json``: the raw predictive distribution's scores, and, for a
    calibrated run, the marginal and whole-field coverage of its conformal intervals with the
    CRPS / NLL of the calibrated std (``"calibrated"``). Writes
    ``{prefix}_reliability.png`` and ``{prefix}_pit.png`` to ``out_dir``.

    Parameters
    ----------
    y, mean : ndarray, shape ``(n, ...)``
        Targets and predictive mean, samples first.
    std : ndarray, optional
        Gaussian predictive std.
    members : ndarray, shape ``(M, n, ...)``, optional
        Ensemble members (their spread is the std of the calibration).
    group_axis : int, optional
        Axis of ``y`` (lead time, output channel, ...) for per-group coverage of the raw
        distribution with cluster-bootstrap intervals (``raw["by_group"]``).

    Members that agree exactly have no spread: their block is scored (spread 0), but no
    reliability plot is drawn.
    """
    if members is not None:
        std = members.std(axis=0, ddof=1)
        report: dict[str, Any] = {"raw": uq_block(y, members=members, group_axis=group_axis)}
        if not np.all(std > 0):
            std = None
    elif std is not None:
        report = {"raw": uq_block(y, mean=mean, std=std, group_axis=group_axis)}
    else:
        report = deterministic_report()
    if calibration is not None:
        report["calibrated"] = _calibrated(calibration, y, mean, std)
    if out_dir is not None and (std is not None or calibration is not None):
        after = None if calibration is None else calibrated_std(calibration, mean, std)
        write_uq_plots(y, mean, after if std is None else std, out_dir, prefix,
                       calibrated_std=None if std is None else after)
    return report
