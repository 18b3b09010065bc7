r"""Pieces of the physics-informed loss: derivatives, point samplers, causal weights, the loss.

:func:`diff` takes partial derivatives by nested forward-mode ``jax.jvp``; the samplers draw
collocation and condition points; :func:`physics_loss` builds the loss that
:func:`surrogates.models.pinn.train` minimises,

.. math::

    \mathcal{L}(\theta) = \mathcal{L}_r(\theta)
      + \lambda \sum_{c} \omega_c \frac{1}{n_c}\sum_{j}
        \lvert \mathcal{B}_c[u_\theta](\mathbf{x}^c_j) - g_c(\mathbf{x}^c_j)\rvert^2,
    \qquad
    \mathcal{L}_r(\theta) = \frac{1}{n_r}\sum_{j}
      \frac{\lvert \mathcal{R}[u_\theta](\mathbf{x}_j)\rvert^2}{s_r^2},

(:math:`\lambda` = ``boundary_weight``, :math:`\omega_c` = ``Condition.weight``, :math:`s_r` =
``Problem.residual_scale``).

Causal training (Wang, Sankaran & Perdikaris 2022), for time-dependent problems (time is the
first coordinate): the time interval is cut into :math:`M` equal chunks, :math:`\mathcal{L}_i`
is the mean scaled squared residual of the collocation points in chunk :math:`i` (0 for an
empty chunk), and the residual term becomes

.. math::

    \mathcal{L}_r(\theta) = \frac{1}{M}\sum_{i=1}^{M} w_i \mathcal{L}_i(\theta), \qquad
    w_i = \exp\Big(-\varepsilon \sum_{k<i} \mathcal{L}_k(\theta)\Big),

with the weights held constant in the gradient (``jax.lax.stop_gradient``): a chunk is fitted
only once the residual before it is small, as information propagates forward in time from the
initial condition. :math:`\varepsilon` (``causal_eps``) sets how small "small" is.

References
----------
.. [1] S. Wang, S. Sankaran and P. Perdikaris, "Respecting causality is all you need for
   training physics-informed neural networks", Comput. Methods Appl. Mech. Eng. 421, 116813,
   2024 (arXiv:2203.07404).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "boundary_sampler",
    "causal_weights",
    "Field",
    "diff",
    "face_sampler",
    "physics_loss",
    "pointwise",
    "sample_batch",
    "uniform_sampler",
]


def diff(f: Callable, x, *axes: int):
    r"""Partial derivative :math:`\partial^n f / \partial x_{a_1}\cdots\partial x_{a_n}` at ``x``.

    ``f`` maps one point of shape ``(d,)`` to a scalar (or array); ``diff(u, x)`` is ``u(x)``,
    ``diff(u, x, 0, 0)`` is :math:`u_{x_0 x_0}`. The derivative is taken by nested
    forward-mode ``jax.jvp`` along unit vectors (cost grows as :math:`2^n` forward passes),
    unless ``f`` has a method ``derivative(x, axes)``: the fields
    :func:`surrogates.models.pinn.train`
    passes to residuals and conditions have one, which for a PIG evaluates the Gaussian
    derivatives in closed form (:meth:`operators.pig.PIG.derivative`, same values to round-off,
    cheaper to train).
    """
    if not axes:
        return f(x)
    derivative = getattr(f, "derivative", None)
    if derivative is not None:
        return derivative(x, tuple(axes))
    e = jnp.zeros_like(x).at[axes[-1]].set(1)

    def df(y):
        return jax.jvp(f, (y,), (e,))[1]

    return diff(df, x, *axes[:-1])


class Field:
    """The field ``u(x) = model.apply(params, x)`` of one point, as residuals and conditions
    receive it: callable (so ``jax.grad(u)`` etc. work), and with ``derivative(x, axes)`` for
    :func:`diff`: the model's closed form where it has one (PIG), nested ``jax.jvp`` otherwise.
    For a PIG with a cut-off the neighbour table is built once, here, for all points.
    """

    def __init__(self, model, params):
        self.model = model
        self.params = params
        # a PIG with a cut-off: one neighbour table for all points (operators.pig.PIG)
        self._extra = ({"table": model.neighbour_table(params)}
                       if getattr(model, "cutoff", None) is not None else {})

    def __call__(self, x):
        return self.model.apply(self.params, x, **self._extra)

    def derivative(self, x, axes: tuple[int, ...]):
        """:math:`\\partial^k u/\\partial x_{a_1}\\cdots\\partial x_{a_k}` at one point."""
        if hasattr(self.model, "derivative"):
            return self.model.derivative(self.params, x, axes, **self._extra)
        return diff(self.__call__, x, *axes)


def uniform_sampler(lower: Sequence[float], upper: Sequence[float]) -> Callable:
    """``sample(key, n, dtype) -> (n, d)`` points uniform in the box."""
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)

    def sample(key, n, dtype=jnp.float32):
        u = jax.random.uniform(key, (n, lo.size), dtype)
        return jnp.asarray(lo, dtype) + u * jnp.asarray(hi - lo, dtype)

    return sample


def face_sampler(lower: Sequence[float], upper: Sequence[float], axis: int,
                 side: str = "lower") -> Callable:
    """Points uniform on one face of the box: coordinate ``axis`` fixed at its lower or upper
    bound (``side``); e.g. the initial line ``t = t_0`` is ``face_sampler(lo, hi, 0)``."""
    if side not in ("lower", "upper"):
        raise ValueError(f"side must be 'lower' or 'upper', got {side!r}")
    value = (lower if side == "lower" else upper)[axis]
    inner = uniform_sampler(lower, upper)

    def sample(key, n, dtype=jnp.float32):
        return inner(key, n, dtype).at[:, axis].set(value)

    return sample


def boundary_sampler(lower: Sequence[float], upper: Sequence[float],
                     axes: Sequence[int] | None = None) -> Callable:
    """Points on the faces ``x_a = lower_a`` and ``x_a = upper_a`` for ``a`` in ``axes`` (all by
    default); each point picks one of the ``2 len(axes)`` faces with equal probability (not
    area-weighted), then is uniform on it."""
    d = len(lower)
    axes = tuple(range(d)) if axes is None else tuple(int(a) for a in axes)
    if not axes or any(a < 0 or a >= d for a in axes):
        raise ValueError(f"axes must be a non-empty subset of 0..{d - 1}, got {axes}")
    inner = uniform_sampler(lower, upper)
    ax = np.asarray(axes)
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)

    def sample(key, n, dtype=jnp.float32):
        k1, k2 = jax.random.split(key)
        pts = inner(k1, n, dtype)
        face = jax.random.randint(k2, (n,), 0, 2 * len(axes))
        axis = jnp.asarray(ax)[face // 2]
        value = jnp.where(face % 2 == 1, jnp.asarray(hi, dtype)[axis], jnp.asarray(lo, dtype)[axis])
        return pts.at[jnp.arange(n), axis].set(value)

    return sample


def causal_weights(t, r2, t_lower: float, t_upper: float, n_chunks: int, eps: float):
    r"""Chunk losses :math:`\mathcal{L}_i` and causal weights :math:`w_i` (module docstring).

    ``t`` (n,) are the collocation times, ``r2`` (n,) their scaled squared residuals. Returns
    ``(losses, weights)``, each of shape ``(n_chunks,)``; the weights carry no gradient.
    """
    frac = (t - t_lower) / (t_upper - t_lower)
    chunk = jnp.clip(jnp.floor(frac * n_chunks).astype(jnp.int32), 0, n_chunks - 1)
    onehot = jax.nn.one_hot(chunk, n_chunks, dtype=r2.dtype)  # (n, M)
    counts = jnp.sum(onehot, axis=0)
    losses = (r2 @ onehot) / jnp.maximum(counts, 1.0)
    before = jnp.cumsum(losses) - losses  # sum over k < i
    return losses, jax.lax.stop_gradient(jnp.exp(-eps * before))


def pointwise(fn: Callable, points, chunk: int | None = None) -> jax.Array:
    """``jax.vmap(fn)(points)``, computed ``chunk`` points at a time when given (with
    ``jax.lax.map`` and ``jax.checkpoint``): the same values.

    A batch of 1024 points times hundreds of Gaussians makes (1024, N) temporaries that do not
    fit in a CPU core's cache, and their derivatives keep many of them alive for the backward
    pass; in chunks of 64 points, recomputed in the backward pass, they do (measured on one
    core, Helmholtz, 400 Gaussians: a PIG step takes about 40 % less time). The PINN's matrix
    products are faster on the whole batch (``MLP`` has no ``eval_chunk``). The points are
    padded to a whole number of chunks by repeating the first point; the padded values are
    dropped.
    """
    n = points.shape[0]
    if chunk is None or n <= chunk:
        return jax.vmap(fn)(points)
    n_chunks = -(-n // chunk)
    padded = jnp.concatenate([points, jnp.broadcast_to(points[:1], (n_chunks * chunk - n,
                                                                  *points.shape[1:]))])
    out = jax.lax.map(jax.checkpoint(jax.vmap(fn)),
                      padded.reshape(n_chunks, chunk, *points.shape[1:]))
    return out.reshape(n_chunks * chunk, *out.shape[2:])[:n]


def physics_loss(problem, model, boundary_weight: float, causal_chunks: int | None = None,
                 causal_eps: float = 1.0) -> Callable:
    """``loss(params, batch) -> scalar`` for ``batch`` = (collocation points, one array of
    points per condition) (:func:`sample_batch`); causal weights over time when
    ``causal_chunks`` is set (module docstring). Residuals and condition errors are evaluated
    by :func:`pointwise`, in chunks of ``model.eval_chunk`` points where the model sets it."""
    conds = problem.conditions
    chunk = getattr(model, "eval_chunk", None)
    t_lower, t_upper = problem.lower[0], problem.upper[0]

    def loss(params, batch):
        u = Field(model, params)
        res = pointwise(lambda x: problem.residual(u, x), batch[0], chunk)
        r2 = (res**2).reshape(res.shape[0], -1).mean(axis=1) / problem.residual_scale**2
        if causal_chunks is None:
            total = jnp.mean(r2)
        else:
            losses, weights = causal_weights(batch[0][:, 0], r2, t_lower, t_upper,
                                             causal_chunks, causal_eps)
            total = jnp.mean(weights * losses)
        for c, pts in zip(conds, batch[1:], strict=True):
            err = pointwise(lambda x, c=c: c.errors(u, x), pts, chunk)
            total = total + boundary_weight * c.weight * jnp.mean(err**2)
        return total

    return loss


def sample_batch(problem, key, n_collocation: int, dtype) -> tuple:
    """Collocation points uniform in the box, then the points of each condition."""
    keys = jax.random.split(key, len(problem.conditions) + 1)
    inner = uniform_sampler(problem.lower, problem.upper)
    batch = [inner(keys[0], n_collocation, dtype)]
    batch += [c.sample(k, dtype) for c, k in zip(problem.conditions, keys[1:], strict=True)]
    return tuple(batch)
