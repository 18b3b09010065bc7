"""A trained physics-informed model and its scoring: :class:`TrainResult` (what
:func:`surrogates.models.pinn.train` returns), :func:`predict` at any points, :func:`evaluate`
on a tensor grid against the problem's reference (relative L2 error)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from operators.pig import MLP, PIG
from surrogates.models.pinn.spec import Problem, _check_points

__all__ = ["EvalResult", "TrainResult", "evaluate", "predict"]


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`surrogates.models.pinn.train`.

    Attributes
    ----------
    params : dict
        Trained parameters (pytree of NumPy arrays of ``dtype``).
    model : PIG or MLP
        The model spec (``operators.pig.model_to_dict(result.model)`` is JSON-able).
    problem : str
        ``Problem.name``.
    history : dict of ndarray
        ``"step"`` (n_steps,) and ``"loss"`` (n_steps,): the loss at every step (before that
        step's update, on that step's points); ``"eval_step"`` (m,), ``"rel_l2"`` (m,): relative
        L2 error on ``n_eval`` fixed random points at the evaluation steps (0, every
        ``eval_every``, and the end).
    wall_time : float
        Seconds spent in the training loop (including compilation, excluding the reference).
    config : dict
        The training arguments (JSON-able).
    """

    params: dict
    model: PIG | MLP
    problem: str
    history: dict
    wall_time: float
    config: dict = field(default_factory=dict)

    @property
    def dtype(self) -> str:
        """``"float32"`` or ``"float64"``."""
        return self.model.dtype


def predict(result: TrainResult, points, *, chunk: int = 65536) -> np.ndarray:
    """The trained field at ``points`` of shape ``(n, d)``, shape ``(n,)`` (float64 NumPy)."""
    net = result.model
    pts = _check_points(points, net.dim)
    out = np.empty(pts.shape[0])
    with jax.enable_x64(result.dtype == "float64"):
        jd = jnp.dtype(result.dtype)
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jd), result.params)
        f = jax.jit(jax.vmap(net.apply, in_axes=(None, 0)))
        for s in range(0, pts.shape[0], chunk):
            out[s:s + chunk] = np.asarray(f(params, jnp.asarray(pts[s:s + chunk], jd)))
    return out


@dataclass(frozen=True)
class EvalResult:
    """Trained and reference fields on a tensor grid.

    Attributes
    ----------
    rel_l2 : float
        :math:`\\lVert u - u_{\\rm ref}\\rVert_2 / \\lVert u_{\\rm ref}\\rVert_2` over the grid.
    coords : tuple of str
        Coordinate names (``Problem.coords``), one per grid axis.
    axes : tuple of ndarray
        1D coordinates of each grid axis (``np.linspace`` over the box).
    u : ndarray, shape (n_1, ..., n_d)
        Prediction on the grid (``indexing="ij"``).
    u_ref : ndarray, shape (n_1, ..., n_d)
        Reference on the grid.
    """

    rel_l2: float
    coords: tuple[str, ...]
    axes: tuple[np.ndarray, ...]
    u: np.ndarray
    u_ref: np.ndarray


def evaluate(result: TrainResult, problem: Problem, n_grid: int | Sequence[int] = 101
             ) -> EvalResult:
    """Relative L2 error of ``result`` against ``problem.reference`` on a tensor grid.

    Parameters
    ----------
    result : TrainResult
    problem : Problem
        Must have a ``reference`` and the result's box.
    n_grid : int or sequence of int, default 101
        Points per axis (>= 2), endpoints included.

    Returns
    -------
    EvalResult
    """
    if problem.reference is None:
        raise ValueError(f"problem {problem.name!r} has no reference solution")
    if result.model.lower != problem.lower or result.model.upper != problem.upper:
        raise ValueError("the result was trained on a different box than this problem's")
    ns = (n_grid,) * problem.dim if isinstance(n_grid, int | np.integer) else tuple(n_grid)
    if len(ns) != problem.dim or any(isinstance(n, bool) or int(n) != n or n < 2 for n in ns):
        raise ValueError(f"n_grid must be an int >= 2 or {problem.dim} of them, got {n_grid!r}")
    axes = tuple(np.linspace(a, b, int(n)) for a, b, n in zip(problem.lower, problem.upper, ns,
                                                               strict=True))
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, problem.dim)
    u = predict(result, mesh).reshape(tuple(int(n) for n in ns))
    u_ref = np.asarray(problem.reference(mesh), np.float64).reshape(u.shape)
    rel = float(np.linalg.norm(u - u_ref) / np.linalg.norm(u_ref))
    return EvalResult(rel, problem.coords, axes, u, u_ref)
