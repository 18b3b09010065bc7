r"""Declarative physics-informed problems: a :class:`Problem` (a box, a pointwise residual, side
conditions and a reference solution) and its :class:`Condition` s (boundary, initial, periodic,
custom), enforced in the mean-square sense by :func:`surrogates.models.pinn.train`.

The loss that uses them is in :mod:`surrogates.models.pinn.losses`, the problems with reference
solutions in :mod:`surrogates.models.pinn.problems`; both classes are re-exported by
:mod:`surrogates.models.pinn` and :mod:`surrogates.models.pinn.training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.models.pinn.losses import diff

__all__ = ["Condition", "Problem"]

_KINDS = ("dirichlet", "initial", "initial_velocity", "periodic", "custom")


@dataclass(frozen=True)
class Condition:
    r"""A boundary, initial or other side condition, enforced in the mean-square sense.

    Parameters
    ----------
    kind : {"dirichlet", "initial", "initial_velocity", "periodic", "custom"}
        The error at a point ``x``:

        * ``"dirichlet"``, ``"initial"``: :math:`u(\mathbf{x}) - g(\mathbf{x})`;
        * ``"initial_velocity"``: :math:`\partial_{x_a} u(\mathbf{x}) - g(\mathbf{x})`
          (``a`` = ``axis``, the time axis, 0 by default);
        * ``"periodic"``: :math:`\partial^m_{x_a} u(\mathbf{x}) - \partial^m_{x_a}
          u(\mathbf{x} + P\mathbf{e}_a)` for :math:`m = 0..` ``periodic_order``, with period
          :math:`P` = ``period``; sample ``x`` on the face :math:`x_a` = lower bound;
        * ``"custom"``: ``error(u, x) - g(x)``.
    sampler : callable, optional
        ``sampler(key, n, dtype) -> (n, d)`` points (see :func:`face_sampler`,
        :func:`boundary_sampler`); redrawn at every step when training resamples.
    points : array of shape (n, d), optional
        Fixed points instead of a sampler (exactly one of the two).
    target : callable, optional
        :math:`g`, a JAX function of one point returning a scalar; ``None`` means 0.
    n_points : int, default 256
        Points drawn from ``sampler`` per step.
    weight : float, default 1.0
        :math:`\omega_c` in the loss.
    axis : int, default 0
        The derivative axis for ``"initial_velocity"`` and ``"periodic"``.
    period : float, optional
        Shift for ``"periodic"``.
    periodic_order : int, default 1
        Highest derivative matched by ``"periodic"``.
    error : callable, optional
        ``error(u, x)`` for ``"custom"``.
    name : str, optional
        Label (history, messages).
    """

    kind: str
    sampler: Callable | None = None
    points: np.ndarray | None = None
    target: Callable | None = None
    n_points: int = 256
    weight: float = 1.0
    axis: int = 0
    period: float | None = None
    periodic_order: int = 1
    error: Callable | None = None
    name: str = ""

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"Condition kind must be one of {_KINDS}, got {self.kind!r}")
        if (self.sampler is None) == (self.points is None):
            raise ValueError("give exactly one of sampler= and points= for a Condition")
        if self.points is not None:
            pts = np.asarray(self.points, dtype=np.float64)
            if pts.ndim != 2 or pts.shape[0] < 1:
                raise ValueError(f"Condition points must have shape (n, d), got {pts.shape}")
            object.__setattr__(self, "points", pts)
        if self.kind == "periodic" and self.period is None:
            raise ValueError("a periodic Condition needs period=")
        if self.kind == "custom" and self.error is None:
            raise ValueError("a custom Condition needs error=")
        if isinstance(self.n_points, bool) or not isinstance(self.n_points, int) \
                or self.n_points < 1:
            raise ValueError(f"n_points must be a positive integer, got {self.n_points!r}")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"weight must be finite and >= 0, got {self.weight!r}")
        if not self.name:
            object.__setattr__(self, "name", self.kind)

    def sample(self, key, dtype) -> jax.Array:
        """The condition's points for one step, shape ``(n, d)``."""
        if self.points is not None:
            return jnp.asarray(self.points, dtype)
        return self.sampler(key, self.n_points, dtype)

    def errors(self, u: Callable, x) -> jax.Array:
        """The error vector at one point (see ``kind``)."""
        g = 0.0 if self.target is None else self.target(x)
        if self.kind in ("dirichlet", "initial"):
            return jnp.atleast_1d(u(x) - g)
        if self.kind == "initial_velocity":
            return jnp.atleast_1d(diff(u, x, self.axis) - g)
        if self.kind == "periodic":
            xs = x.at[self.axis].add(self.period)
            return jnp.stack([diff(u, x, *(self.axis,) * m) - diff(u, xs, *(self.axis,) * m)
                              for m in range(self.periodic_order + 1)])
        return jnp.atleast_1d(self.error(u, x) - g)


@dataclass(frozen=True)
class Problem:
    r"""A PDE on a box, declared by its residual, side conditions and reference solution.

    Parameters
    ----------
    name : str
        Identifier (CLI, files).
    lower, upper : tuple of float, length d
        The box; collocation points are uniform in it.
    residual : callable
        ``residual(u, x) -> scalar or (m,)``: the PDE residual at one point ``x`` (shape
        ``(d,)``) of a scalar function ``u`` of one point.
    conditions : tuple of Condition
        Boundary / initial / periodic conditions.
    reference : callable, optional
        ``reference(points (n, d) ndarray) -> (n,) ndarray``: exact or high-accuracy solution
        (float64 NumPy), used for the error history and :func:`evaluate`.
    coords : tuple of str, optional
        Coordinate names, default ``("x0", "x1", ...)``.
    exact : callable, optional
        The exact solution as a JAX function of one point, when known.
    description : str
        One line for reports.
    residual_scale : float, default 1.0
        :math:`s_r > 0`: the loss uses :math:`\mathcal{R}/s_r`. Set it to the size of the
        residual's terms (e.g. the source amplitude) so that the residual and the side
        conditions enter the loss on the same O(1) scale whatever the PDE's units; without it a
        source of amplitude 2000 (Helmholtz with :math:`a_1 = a_2 = 10`) swamps the boundary
        term and the fit drifts to the wrong solution of the PDE.
    """

    name: str
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    residual: Callable
    conditions: tuple[Condition, ...] = ()
    reference: Callable | None = None
    coords: tuple[str, ...] | None = None
    exact: Callable | None = None
    description: str = ""
    residual_scale: float = 1.0

    def __post_init__(self):
        if not (math.isfinite(self.residual_scale) and self.residual_scale > 0):
            raise ValueError(f"residual_scale must be finite and > 0, got {self.residual_scale!r}")
        lo = tuple(float(v) for v in self.lower)
        hi = tuple(float(v) for v in self.upper)
        if len(lo) != len(hi) or not lo or not all(b > a for a, b in zip(lo, hi, strict=True)):
            raise ValueError(f"need lower < upper of equal non-zero length, got {lo} and {hi}")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        coords = tuple(f"x{i}" for i in range(len(lo))) if self.coords is None else tuple(
            self.coords)
        if len(coords) != len(lo):
            raise ValueError(f"coords {coords} must name all {len(lo)} coordinates")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "conditions", tuple(self.conditions))
        for c in self.conditions:
            if not isinstance(c, Condition):
                raise ValueError(f"conditions must be Condition objects, got {type(c).__name__}")
            if c.points is not None and c.points.shape[1] != len(lo):
                raise ValueError(
                    f"condition {c.name!r} has points of shape {c.points.shape}; need (n, "
                    f"{len(lo)})")

    @property
    def dim(self) -> int:
        """Number of coordinates ``d``."""
        return len(self.lower)


def _check_points(points, dim: int | None) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or (dim is not None and pts.shape[1] != dim):
        want = "(n, d)" if dim is None else f"(n, {dim})"
        raise ValueError(f"points must have shape {want}, got shape {pts.shape}")
    return pts
