r"""Figures of the uncertainty scores of :mod:`surrogates.metrics.uq` (PNG, Matplotlib Agg).

:func:`write_uq_plots` writes the two figures every family's ``evaluate`` puts beside its
UQ block:

* ``{prefix}_reliability.png`` -- observed against nominal coverage of central intervals at
  the levels 0.05, 0.10, ..., 0.95 (:func:`surrogates.metrics.uq_block.reliability`). A calibrated
  forecast lies on the diagonal; below it is over-confident, above under-confident.
* ``{prefix}_pit.png`` -- the histogram of PIT values, :math:`u = \Phi((y - \mu)/\sigma)` for a
  Gaussian forecast (10 bins) or the ensemble rank (:func:`surrogates.metrics.uq.pit_values`,
  :math:`m + 1` bins), as a density: flat at 1 when calibrated, U-shaped when over-confident,
  dome-shaped when under-confident, sloped when biased.

An optional ``calibrated_std`` (e.g. from
:meth:`surrogates.metrics.conformal.ConformalRecalibrator.calibrated_std`) is drawn beside the raw
forecast in both figures, so a figure shows coverage before and after calibration.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from surrogates.metrics import uq, uq_block

__all__ = ["write_uq_plots"]


def _forecasts(y, mean, std, members, member_axis, calibrated_std) -> dict[str, dict]:
    """Label -> keyword arguments of :func:`uq_block.reliability` for each forecast to draw."""
    if members is not None:
        if calibrated_std is not None:
            raise ValueError("calibrated_std applies to a Gaussian forecast (mean, std), not to "
                             "members")
        return {"ensemble": {"members": members, "member_axis": member_axis}}
    out = {"raw": {"mean": mean, "std": std}}
    if calibrated_std is not None:
        out["calibrated"] = {"mean": mean, "std": calibrated_std}
    return out


def _pit(y, forecast: dict) -> tuple[np.ndarray, int]:
    """PIT values and the histogram's bin count for one forecast."""
    if "members" in forecast:
        members = uq_block._members(forecast["members"], uq._array(y, "y"), forecast["member_axis"])
        return uq.pit_values(members, y, axis=-1).ravel(), members.shape[-1] + 1
    return uq.gaussian_pit(forecast["mean"], forecast["std"], y).ravel(), 10


def write_uq_plots(y, mean=None, std=None, out_dir: str | os.PathLike = ".", prefix: str = "uq",
                   *, members=None, member_axis: int = 0, calibrated_std=None,
                   title: str | None = None) -> list[Path]:
    """Write the reliability diagram and the PIT histogram of a forecast as PNG files.

    Parameters
    ----------
    y : array_like
        Observed values (any shape), physical units.
    mean, std : array_like, optional
        Gaussian forecast (``std`` > 0 and finite, broadcastable to ``mean``).
    out_dir : str or PathLike, default "."
        Folder for the figures (created if missing).
    prefix : str, default "uq"
        File-name prefix: ``{prefix}_reliability.png`` and ``{prefix}_pit.png``.
    members : array_like or sequence of array_like, optional
        Ensemble instead of ``mean``/``std`` (as in :func:`surrogates.metrics.uq_block.uq_block`);
        levels the member count cannot reach are left out of the reliability diagram.
    member_axis : int, default 0
    calibrated_std : array_like, optional
        A recalibrated std for the same ``mean``, drawn as a second curve.
    title : str, optional
        Figure title prefix (e.g. the model and output name).

    Returns
    -------
    list of Path
        The two files written, reliability diagram first.

    Raises
    ------
    ValueError
        On the errors of :func:`surrogates.metrics.uq_block.reliability` (mismatched shapes, bad
        std, members of different shapes, neither or both forecast forms).
    """
    from surrogates.plots import _save, plt

    forecasts = _forecasts(y, mean, std, members, member_axis, calibrated_std)
    curves = {label: uq_block.reliability(y, **kw) for label, kw in forecasts.items()}
    pits = {label: _pit(y, kw) for label, kw in forecasts.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    heading = f"{title}: " if title else ""

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="ideal")
    for label, curve in curves.items():
        ax.plot(curve["levels"], curve["coverage"], marker="o", ms=3, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal level of the central interval",
           ylabel="observed coverage", title=f"{heading}reliability")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    reliability_path = out_dir / f"{prefix}_reliability.png"
    _save(fig, reliability_path)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, (pit, bins) in pits.items():
        ax.hist(pit, bins=bins, range=(0.0, 1.0), density=True, histtype="step", lw=1.5,
                label=label)
    ax.axhline(1.0, color="0.6", lw=1, ls="--", label="uniform")
    ax.set(xlim=(0, 1), xlabel="PIT value", ylabel="density", title=f"{heading}PIT histogram")
    ax.legend(fontsize=8)
    pit_path = out_dir / f"{prefix}_pit.png"
    _save(fig, pit_path)
    return [reliability_path, pit_path]
