"""Matplotlib figures written as PNG beside a run's outputs (no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str | os.PathLike) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def training_curves(history: Sequence[dict], path: str | os.PathLike) -> None:
    """Training and validation loss per epoch on a log scale."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(epochs, [h["train_loss"] for h in history], label="train")
    val = [h["validation_loss"] for h in history]
    if not all(np.isnan(v) for v in val):
        ax.semilogy(epochs, val, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)


def parity(prediction: np.ndarray, target: np.ndarray, names: Sequence[str],
           path: str | os.PathLike, max_points: int = 20000) -> None:
    """Predicted against true values per target channel, with the identity line and R^2."""
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    for c, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        t, p = target[:, c].ravel(), prediction[:, c].ravel()
        keep = rng.choice(t.size, size=min(max_points, t.size), replace=False)
        ax.scatter(t[keep], p[keep], s=2, alpha=0.3)
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        r2 = 1 - np.sum((p - t) ** 2) / np.sum((t - t.mean()) ** 2)
        ax.set_title(f"{name}: R$^2$ = {r2:.4f}")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
    _save(fig, path)


def snapshot(inputs: np.ndarray, prediction: np.ndarray, target: np.ndarray,
             input_names: Sequence[str], target_names: Sequence[str],
             path: str | os.PathLike, n_examples: int = 3) -> None:
    """A few examples side by side: 1D fields as lines over the grid plus the input-target
    relation; 2D fields as images of truth, prediction and error."""
    picks = np.linspace(0, len(target) - 1, n_examples).astype(int)
    if target.ndim == 3:
        fig, axes = plt.subplots(1, n_examples + 1, figsize=(4 * (n_examples + 1), 3.5))
        for ax, i in zip(axes, picks, strict=False):
            grid = np.arange(target.shape[-1])
            ax.plot(grid, target[i, 0], "k-", label=f"true {target_names[0]}")
            ax.plot(grid, prediction[i, 0], "r--", label="predicted")
            ax.set_xlabel("grid index")
            ax.set_title(f"example {i}")
        axes[0].legend(fontsize=8)
        ax = axes[-1]
        ax.scatter(inputs[:, 0].ravel(), target[:, 0].ravel(), s=1, alpha=0.2, c="k",
                   label="true")
        ax.scatter(inputs[:, 0].ravel(), prediction[:, 0].ravel(), s=1, alpha=0.2, c="r",
                   label="predicted")
        ax.set_xlabel(input_names[0])
        ax.set_ylabel(target_names[0])
        ax.legend(fontsize=8, markerscale=5)
    elif target.ndim == 4:
        fig, axes = plt.subplots(n_examples, 3, figsize=(10, 3.2 * n_examples), squeeze=False)
        for row, i in zip(axes, picks, strict=True):
            vmin, vmax = target[i, 0].min(), target[i, 0].max()
            for ax, field, title in zip(row, (target[i, 0], prediction[i, 0],
                                              prediction[i, 0] - target[i, 0]),
                                        ("true", "predicted", "error"), strict=True):
                im = ax.imshow(field.T, origin="lower",
                               **({} if title == "error" else {"vmin": vmin, "vmax": vmax}))
                ax.set_title(f"{title} {target_names[0]} (example {i})")
                fig.colorbar(im, ax=ax, shrink=0.8)
    else:
        return
    _save(fig, path)


def rollout_error(per_time: dict[str, Sequence[float]], times: np.ndarray,
                  path: str | os.PathLike) -> None:
    """nRMSE of autoregressive rollouts against time, one line per parameter value."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, values in per_time.items():
        ax.semilogy(times, values, label=label)
    ax.set_xlabel("time")
    ax.set_ylabel("nRMSE")
    ax.set_title("rollout error growth")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def rollout_fields(truth: np.ndarray, prediction: np.ndarray, x: np.ndarray, t: np.ndarray,
                   labels: Sequence[str], path: str | os.PathLike) -> None:
    """Truth, prediction and error of 1D rollouts as ``(x, t)`` images, one row per example.

    ``truth`` and ``prediction`` have shape ``(examples, T, N)``.
    """
    n = len(truth)
    fig, axes = plt.subplots(n, 3, figsize=(11, 2.4 * n + 0.4), squeeze=False)
    extent = (float(x[0]), float(x[-1]), float(t[0]), float(t[-1]))
    for row, label in enumerate(labels):
        lim = float(np.abs(truth[row]).max()) or 1.0
        error = prediction[row] - truth[row]
        for ax, field, title, vmax in zip(
                axes[row], (truth[row], prediction[row], error),
                (f"truth ({label})", "rollout", "rollout - truth"),
                (lim, lim, float(np.abs(error).max()) or 1.0), strict=True):
            image = ax.imshow(field, origin="lower", aspect="auto", extent=extent,
                              cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("x")
            ax.set_ylabel("t")
            fig.colorbar(image, ax=ax, fraction=0.046)
    _save(fig, path)


def pinn_solution(coords: Sequence[str], axes: Sequence[np.ndarray], u: np.ndarray,
                  u_ref: np.ndarray, title: str, path: str | os.PathLike) -> None:
    """Prediction, reference and error of a physics-informed solve on a tensor grid.

    Two coordinates: images over the grid; three (``t, x, y``): images at the last time; one:
    lines.
    """
    if u.ndim == 3:
        u, u_ref, coords, axes = u[-1], u_ref[-1], coords[1:], axes[1:]
        title = f"{title} (last time)"
    if u.ndim == 1:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(axes[0], u_ref, "k-", label="reference")
        ax.plot(axes[0], u, "r--", label="prediction")
        ax.set_xlabel(coords[0])
        ax.legend()
        ax.set_title(title, fontsize=9)
        _save(fig, path)
        return
    fig, panels = plt.subplots(1, 3, figsize=(13, 3.8))
    extent = (float(axes[1][0]), float(axes[1][-1]), float(axes[0][0]), float(axes[0][-1]))
    lim = float(np.abs(u_ref).max()) or 1.0
    error = u - u_ref
    for ax, field, name, vmax in zip(panels, (u, u_ref, error), ("prediction", "reference",
                                     "prediction - reference"),
                                     (lim, lim, float(np.abs(error).max()) or 1.0), strict=True):
        image = ax.imshow(field, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                          vmin=-vmax, vmax=vmax)
        ax.set_xlabel(coords[1])
        ax.set_ylabel(coords[0])
        ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def field_snapshots(truth: np.ndarray, prediction: np.ndarray, times: np.ndarray,
                    axes: Sequence[np.ndarray], path: str | os.PathLike) -> None:
    """Truth, prediction and error of 2D pressure fields ``(frames, nx, ny)`` in Pa, one row per
    time (``times`` in s, ``axes`` the x and y node coordinates in m)."""
    n = len(truth)
    fig, panels = plt.subplots(n, 3, figsize=(11, 3.2 * n + 0.4), squeeze=False)
    extent = (float(axes[0][0]), float(axes[0][-1]), float(axes[1][0]), float(axes[1][-1]))
    for row in range(n):
        lim = float(np.abs(truth[row]).max()) or 1.0
        error = prediction[row] - truth[row]
        for ax, field, title, vmax in zip(
                panels[row], (truth[row], prediction[row], error),
                (f"solver, t = {1e3 * times[row]:.2f} ms", "DeepONet", "DeepONet - solver"),
                (lim, lim, float(np.abs(error).max()) or 1.0), strict=True):
            image = ax.imshow(field.T, origin="lower", extent=extent, cmap="RdBu_r",
                              vmin=-vmax, vmax=vmax)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("x (m)")
            ax.set_ylabel("y (m)")
            fig.colorbar(image, ax=ax, fraction=0.046, label="Pa")
    _save(fig, path)


def calibration_curve(levels: Sequence[float], observed: dict[str, Sequence[float]],
                      path: str | os.PathLike) -> None:
    """Observed coverage of central predictive intervals against their nominal level.

    ``observed`` maps an output name to its coverage at each of ``levels``; a calibrated model
    lies on the diagonal, an overconfident one below it.
    """
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="ideal")
    for name, values in observed.items():
        ax.plot(levels, values, marker="o", ms=3, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal coverage", ylabel="observed coverage",
           title="calibration of central intervals")
    ax.legend(fontsize=8)
    _save(fig, path)


def mesh_field_maps(points: np.ndarray, triangles: np.ndarray, panels: dict[str, np.ndarray],
                    path: str | os.PathLike, *, xlim: tuple[float, float] = (-0.3, 1.3),
                    ylim: tuple[float, float] = (-0.5, 0.5), ncols: int = 2) -> None:
    """Nodal fields on a triangle mesh (``tripcolor``, Gouraud shading), one panel per entry.

    ``panels`` maps a title to nodal values ``(n_points,)``; the view is zoomed on ``xlim`` x
    ``ylim`` (by default the unit-chord airfoil).
    """
    import matplotlib.tri as mtri

    tri = mtri.Triangulation(points[:, 0], points[:, 1], triangles)
    n = len(panels)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 2.8 * nrows), squeeze=False)
    for ax, (title, values) in zip(axes.ravel(), panels.items(), strict=False):
        im = ax.tripcolor(tri, np.asarray(values, float), shading="gouraud", cmap="viridis")
        ax.set(xlim=xlim, ylim=ylim, aspect="equal", title=title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    _save(fig, path)
