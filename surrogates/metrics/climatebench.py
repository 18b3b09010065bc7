r"""The ClimateBench scores (Watson-Parris et al. 2022): spatial, global and total NRMSE.

With latitude weights :math:`w_i \propto \cos\varphi_i`
(:func:`surrogates.data.climatebench.lat_weights`), the total score of a variable is
``spatial + 5 * global`` over the scored years (:data:`surrogates.data.climatebench.METRIC_YEARS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from surrogates.data.climatebench import (
    METRIC_YEARS,
    OUTPUT_VARIABLES,
    global_mean,
    member_mean,
)

__all__ = ["spatial_nrmse", "global_nrmse", "nrmse_scores"]


def _check_pair(truth, prediction) -> tuple[np.ndarray, np.ndarray]:
    truth, prediction = np.asarray(truth, dtype=float), np.asarray(prediction, dtype=float)
    if truth.shape != prediction.shape or truth.ndim != 3:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} must both be "
                         "(time, lat, lon) arrays of the same shape")
    return truth, prediction


def _normaliser(truth: np.ndarray, lat) -> float:
    norm = abs(float(global_mean(truth.mean(axis=0), lat)))
    if norm == 0:
        raise ValueError("the truth's global time mean is zero: NRMSE is undefined")
    return norm


def spatial_nrmse(truth, prediction, lat) -> float:
    r"""Spatial NRMSE: RMSE of the time-mean maps over the absolute global mean of the truth.

    .. math:: \sqrt{\langle(\bar x - \bar y)^2\rangle} / |\langle\bar y\rangle|

    Parameters
    ----------
    truth, prediction : array_like, shape ``(time, lat, lon)``
        Scored years only, physical units.
    lat : array_like
        Latitudes in degrees.
    """
    truth, prediction = _check_pair(truth, prediction)
    diff = prediction.mean(axis=0) - truth.mean(axis=0)
    return float(np.sqrt(global_mean(diff ** 2, lat))) / _normaliser(truth, lat)


def global_nrmse(truth, prediction, lat) -> float:
    r"""Global NRMSE: RMSE of the global-mean series over the same normaliser.

    .. math:: \sqrt{\tfrac1T\sum_t(\langle x_t\rangle - \langle y_t\rangle)^2} /
        |\langle\bar y\rangle|
    """
    truth, prediction = _check_pair(truth, prediction)
    diff = global_mean(prediction, lat) - global_mean(truth, lat)
    return float(np.sqrt(np.mean(diff ** 2))) / _normaliser(truth, lat)


def nrmse_scores(truth: xr.Dataset, prediction: xr.Dataset, *,
                 variables: Sequence[str] = OUTPUT_VARIABLES,
                 years: tuple[int, int] | None = METRIC_YEARS) -> dict[str, dict[str, float]]:
    """The ClimateBench table: ``{variable: {"spatial", "global", "total"}}``.

    ``truth`` and ``prediction`` hold the variables on ``(time, lat, lon)`` (a ``member`` dim on
    the truth is averaged first); ``years`` (inclusive) selects the scored years, ``None`` all.

    Raises
    ------
    ValueError
        If a variable is missing or a scored year is absent from the prediction.
    """
    truth = member_mean(truth)
    if years is not None:
        truth = truth.sel(time=slice(*years))
    if truth.sizes.get("time", 0) == 0:
        raise ValueError(f"the truth has no year in {years}")
    scores = {}
    for name in variables:
        if name not in truth or name not in prediction:
            raise ValueError(f"variable {name!r} is missing from the truth or the prediction")
        missing = np.setdiff1d(truth["time"].values, prediction["time"].values)
        if missing.size:
            raise ValueError(f"the prediction lacks the scored years {missing.tolist()}")
        y = truth[name].transpose("time", "lat", "lon")
        x = prediction[name].sel(time=y["time"]).transpose("time", "lat", "lon")
        lat = y["lat"].values
        s, g = spatial_nrmse(y.values, x.values, lat), global_nrmse(y.values, x.values, lat)
        scores[name] = {"spatial": s, "global": g, "total": s + 5.0 * g}
    return scores
