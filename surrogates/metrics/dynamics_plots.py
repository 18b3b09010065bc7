"""Figures of the dynamical scores of :mod:`surrogates.metrics.dynamics` (PNG, Matplotlib):
error by lead time, climate PDFs, autocorrelations and stability of long runs."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from surrogates.metrics import uq
from surrogates.metrics.dynamics import _edges, _finite, _positive, _trajectories

__all__ = ["plot_autocorrelation", "plot_climate_pdfs", "plot_rmse_by_lead", "plot_stability"]


def _curves(curves: Mapping[str, object], length: int | None, what: str) -> dict[str, np.ndarray]:
    if not curves:
        raise ValueError(f"no {what} to plot: the dict is empty")
    out = {name: np.asarray(c, dtype=float) for name, c in curves.items()}
    for name, c in out.items():
        if c.ndim != 1 or (length is not None and c.size != length):
            raise ValueError(f"{what} '{name}' has shape {c.shape}; expected "
                             f"({length if length is not None else 'n'},)")
    return out


def plot_rmse_by_lead(rmse: Mapping[str, object], times, path: str | os.PathLike, *,
                      ylabel: str = "RMSE") -> None:
    """RMSE (or any error) against lead time, one line per model; written as PNG to ``path``.

    Parameters
    ----------
    rmse : dict of str to array_like, each of shape ``(T,)``
        Model name -> error per lead time, e.g. from :func:`rmse_by_lead`.
    times : array_like, shape ``(T,)``
        Lead times (MTU).
    path : str or PathLike
        Output PNG file.
    ylabel : str, default "RMSE"
        Label of the vertical axis.
    """
    from surrogates.plots import _save, plt

    times = np.asarray(times, dtype=float)
    curves = _curves(rmse, times.size, "error curve")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, c in curves.items():
        ax.plot(times, c, label=name)
    ax.set_xlabel("lead time (MTU)")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_climate_pdfs(runs: Mapping[str, object], path: str | os.PathLike, *,
                      reference: str | None = None, bins: int = 100, log: bool = False) -> None:
    """Densities of :math:`X_k` (pooled over samples, time and grid), one line per run, on shared
    bins; the ``reference`` run, if named, is drawn in black.

    Parameters
    ----------
    runs : dict of str to array_like
        Run name -> values of any shape (e.g. long trajectories ``(B, T, K)``); must be finite.
    path : str or PathLike
        Output PNG file.
    reference : str, optional
        Key of the reference run in ``runs``.
    bins : int, default 100
        Number of equal-width bins over the range of all runs.
    log : bool, default False
        Logarithmic density axis (shows the tails).
    """
    from surrogates.plots import _save, plt

    values = {name: _finite(uq._array(x, name), name).ravel() for name, x in runs.items()}
    if not values:
        raise ValueError("no runs to plot: the dict is empty")
    if reference is not None and reference not in values:
        raise ValueError(f"reference '{reference}' is not among the runs {sorted(values)}")
    edges = _edges(bins, min(float(v.min()) for v in values.values()),
                   max(float(v.max()) for v in values.values()))
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, v in values.items():
        density, _ = np.histogram(v, bins=edges, density=True)
        style = {"color": "k", "lw": 2} if name == reference else {}
        ax.plot(centres, density, label=name, **style)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("$X_k$")
    ax.set_ylabel("probability density")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_autocorrelation(acfs: Mapping[str, object], path: str | os.PathLike, *,
                         dt: float = 1.0, reference: str | None = None) -> None:
    """Autocorrelation functions against lag, one line per run; ``reference`` drawn in black.

    Parameters
    ----------
    acfs : dict of str to array_like, each of shape ``(max_lag + 1,)``
        Run name -> autocorrelation at lags ``0, 1, ...`` (e.g. ``ClimateStatistics.acf``).
    path : str or PathLike
        Output PNG file.
    dt : float, default 1.0
        Time between lags (the saving interval, MTU); 1 plots lags in steps.
    reference : str, optional
        Key of the reference run in ``acfs``.
    """
    from surrogates.plots import _save, plt

    dt = _positive(dt, "dt")
    curves = _curves(acfs, None, "autocorrelation")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, c in curves.items():
        style = {"color": "k", "lw": 2} if name == reference else {}
        ax.plot(dt * np.arange(c.size), c, label=name, **style)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("lag (MTU)" if dt != 1.0 else "lag")
    ax.set_ylabel("autocorrelation")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_stability(runs: Mapping[str, object], times, path: str | os.PathLike, *,
                   reference: str | None = None) -> None:
    r"""Long-run boundedness: the ring RMS :math:`\sqrt{\frac1K\sum_k X_k^2}` against time.

    One panel row: for each run the median over trajectories (line) and the range between the
    smallest and largest trajectory (band); a run that drifts, decays or blows up leaves the
    reference's band.

    Parameters
    ----------
    runs : dict of str to array_like, each of shape ``(B, T, K)``
        Run name -> trajectories on the common time grid (finite).
    times : array_like, shape ``(T,)``
        Times of the frames (MTU).
    path : str or PathLike
        Output PNG file.
    reference : str, optional
        Key of the reference run, drawn in black.
    """
    from surrogates.plots import _save, plt

    times = np.asarray(times, dtype=float)
    if not runs:
        raise ValueError("no runs to plot: the dict is empty")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, x in runs.items():
        x = _finite(_trajectories(x, name), name)
        if x.shape[1] != times.size:
            raise ValueError(f"run '{name}' has {x.shape[1]} frames, times has {times.size}")
        rms = np.sqrt(np.mean(x ** 2, axis=2))  # (B, T)
        style = {"color": "k", "lw": 1.5} if name == reference else {"lw": 1}
        line, = ax.plot(times, np.median(rms, axis=0), label=name, **style)
        ax.fill_between(times, rms.min(axis=0), rms.max(axis=0), color=line.get_color(),
                        alpha=0.15, lw=0)
    ax.set_xlabel("time (MTU)")
    ax.set_ylabel("ring RMS of $X_k$")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    _save(fig, path)
