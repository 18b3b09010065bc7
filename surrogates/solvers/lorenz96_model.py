r"""The multiscale Lorenz-96 system itself: state, parameters, initial states, right-hand side
and one RK4 step, batched, in JAX (the equations are in :mod:`surrogates.solvers.lorenz96`).

:mod:`surrogates.solvers.lorenz96` integrates these in time (``solve``) and re-exports the public
names, so ``from surrogates.solvers.lorenz96 import tendencies`` keeps working.

Internal layout: the solver works *batch-last*, ``X (K, B)``, ``Y (K*J, B)``, ``Z (K*J*I, B)``,
so a periodic shift along a ring is a shift by whole rows of ``B`` contiguous samples (see
:func:`_tend_t`); the public functions take and return batch-first arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from surrogates.solvers.checks import check_int

__all__ = [
    "Lorenz96State",
    "Lorenz96Params",
    "random_initial_state",
    "coarse_tendency",
    "tendencies",
]

Array = jax.Array

class Lorenz96State(NamedTuple):
    """State of the (batched) multiscale Lorenz-96 system.

    Attributes
    ----------
    X : array, shape (B, K)
        Slow variables.
    Y : array, shape (B, K, J)
        Fast variables; ``Y[b, k, j]`` is :math:`Y_{j,k}`. Row-major flattening over
        ``(K, J)`` gives the periodic ring of length ``K*J``.
    Z : array, shape (B, K, J, I), or None
        Fastest variables of the three-tier system (``Z[b, k, j, i]`` is :math:`Z_{i,j,k}`);
        ``None`` for the two-tier system.
    """

    X: Array
    Y: Array
    Z: Array | None = None


@dataclass(frozen=True)
class Lorenz96Params:
    """Parameters of the multiscale Lorenz-96 system (dimensionless).

    Each field is a Python float (shared by all samples) or an array of shape ``(B,)`` (one
    value per sample). Defaults are the classic two-tier setting of Lorenz (1996).

    Parameters
    ----------
    F : float or array of shape (B,), default 10.0
        Large-scale forcing of ``X``.
    h : float or array of shape (B,), default 1.0
        Coupling strength between tiers.
    b : float or array of shape (B,), default 10.0
        Amplitude ratio of ``X`` to ``Y`` (must be non-zero).
    c : float or array of shape (B,), default 10.0
        Time-scale ratio of ``Y`` to ``X``.
    d : float or array of shape (B,), default 10.0
        Amplitude ratio of ``Y`` to ``Z`` (three-tier only; must be non-zero).
    e : float or array of shape (B,), default 10.0
        Time-scale ratio of ``Z`` to ``Y`` (three-tier only).
    g_z : float or array of shape (B,), default 1.0
        Damping factor of ``Z`` (three-tier only).

    Notes
    -----
    The three-tier setting of Lütjens et al. is
    ``Lorenz96Params(F=20.0, h=0.5, b=10.0, c=8.0, d=10.0, e=10.0)``.
    """

    F: float | ArrayLike = 10.0
    h: float | ArrayLike = 1.0
    b: float | ArrayLike = 10.0
    c: float | ArrayLike = 10.0
    d: float | ArrayLike = 10.0
    e: float | ArrayLike = 10.0
    g_z: float | ArrayLike = 1.0


class _P(NamedTuple):
    """Parameters as arrays of shape ``(B,)`` (a JAX pytree)."""

    F: Array
    h: Array
    b: Array
    c: Array
    d: Array
    e: Array
    g_z: Array


# ----------------------------------------------------------------------------------------------
# Initial states
# ----------------------------------------------------------------------------------------------


def random_initial_state(
    n_samples: int,
    K: int = 36,
    J: int = 10,
    I: int = 0,  # noqa: E741 - the paper's name for the third-tier size
    *,
    seed: int = 0,
    sample_offset: int = 0,
) -> Lorenz96State:
    """Random initial states following the multiscale-neural-operator recipe.

    ``X`` is drawn uniformly from the integers in ``[-15, 15]``, ``Y ~ N(0, 1)`` and
    ``Z ~ 0.05 N(0, 1)``. Sample number ``n = sample_offset + m`` (``m`` the local index) is
    drawn from its own generator ``np.random.default_rng([seed, n])``, so a set of samples does
    not depend on how it is split into batches or shards.

    Parameters
    ----------
    n_samples : int
        Number of samples ``B`` (>= 1).
    K, J, I : int, default 36, 10, 0
        Number of slow variables (>= 4), fast variables per slow one (>= 1) and third-tier
        variables per fast one (``I = 0``: two-tier system, ``Z`` is ``None``).
    seed : int, default 0
        Non-negative base seed.
    sample_offset : int, default 0
        Global index of the first sample.

    Returns
    -------
    Lorenz96State
        float64 NumPy arrays ``X (B, K)``, ``Y (B, K, J)``, ``Z (B, K, J, I)`` or ``None``.

    Raises
    ------
    ValueError
        If a size or the seed is out of range.

    Notes
    -----
    These states are far from the attractor; the transient is stiffer than the attractor, so
    spin up with ``dt = 0.0025`` (at ``dt = 0.005`` about 0.8 % of samples blow up).
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    K = check_int(K, "K", minimum=4)
    J = check_int(J, "J", minimum=1)
    I = check_int(I, "I", minimum=0)  # noqa: E741
    seed = check_int(seed, "seed", minimum=0)
    sample_offset = check_int(sample_offset, "sample_offset", minimum=0)

    X = np.empty((n_samples, K))
    Y = np.empty((n_samples, K, J))
    Z = np.empty((n_samples, K, J, I)) if I > 0 else None
    for m in range(n_samples):
        rng = np.random.default_rng([seed, sample_offset + m])
        X[m] = rng.integers(-15, 15, size=K, endpoint=True)
        Y[m] = rng.standard_normal((K, J))
        if Z is not None:
            Z[m] = 0.05 * rng.standard_normal((K, J, I))
    return Lorenz96State(X, Y, Z)


# ----------------------------------------------------------------------------------------------
# Right-hand side
# ----------------------------------------------------------------------------------------------


def _align_leading(p, ndim: int, xp):
    """Append singleton axes so ``p``'s axes line up with the *leading* axes of an
    ``ndim``-dimensional array."""
    p = xp.asarray(p)
    return p.reshape(p.shape + (1,) * (ndim - p.ndim))


def coarse_tendency(X, F):
    r"""Known slow physics of Lorenz-96, :math:`X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F`.

    This is the tendency of ``X`` without the subgrid coupling term. Works on NumPy arrays
    (returns NumPy) and on JAX arrays or tracers (returns JAX).

    Parameters
    ----------
    X : array, shape (..., K)
        Slow variables; the last axis is the periodic index ``k`` (``K >= 4``).
    F : float or array
        Forcing. Its axes are aligned with the *leading* axes of ``X`` (not numpy's trailing
        alignment): a scalar applies everywhere; shape ``(B,)`` with ``X`` of shape ``(B, K)``
        or ``(B, T, K)`` gives one value per sample; shape ``(B, T)`` with ``X (B, T, K)`` one
        value per sample and time. ``F.ndim`` must be below ``X.ndim``.

    Returns
    -------
    array, shape (..., K)
        Same array type as ``X`` (JAX if either input is a JAX array).

    Raises
    ------
    ValueError
        If ``F`` has as many axes as ``X`` or more.
    """
    xp = jnp if isinstance(X, jax.Array) or isinstance(F, jax.Array) else np
    X = xp.asarray(X)
    F = xp.asarray(F)
    if F.ndim >= X.ndim:
        raise ValueError(
            f"F of shape {F.shape} must have fewer axes than X of shape {X.shape}: F's axes are "
            "aligned with X's leading (sample/time) axes, e.g. F (B,) for X (B, K)"
        )
    F = _align_leading(F, X.ndim, xp)
    return xp.roll(X, 1, axis=-1) * (xp.roll(X, -1, axis=-1) - xp.roll(X, 2, axis=-1)) - X + F


def _tend_t(X, Y, Z, p: _P):
    """Tendencies in the internal *batch-last* layout.

    ``X (K, B)``, ``Y (K*J, B)``, ``Z (K*J*I, B)`` or ``None``: the periodic ring index leads
    and samples are contiguous, so every periodic shift is a shift by whole rows and parameter
    arrays of shape ``(B,)`` (or scalars) broadcast directly. Neighbours are read as slices of
    one halo-padded copy per ring. (Measured on a 2-core CPU for B = 256, K = 36, J = 10 in
    float64, per RK4 step: this layout ~0.5-0.6 ms; the batch-first layout ``(B, K*J)`` with
    ``jnp.roll`` ~1.6 ms; ``vmap`` of a per-sample function ~1.1 ms; halo slices beat three
    ``jnp.roll`` calls by ~10 % and the barrier on the halo copy adds ~15 %. About half of the
    time goes to the sum over ``j`` for the coupling of ``X``.)
    """
    K, B = X.shape
    N = Y.shape[0]
    J = N // K
    hcb = p.h * p.c / p.b

    # Slow tier: Xp[k + 2] = X_k.
    Xp = jnp.concatenate([X[-2:], X, X[:1]], axis=0)
    dX = (
        Xp[1 : K + 1] * (Xp[3 : K + 3] - Xp[0:K])
        - X
        + p.F
        - hcb * jnp.sum(Y.reshape(K, J, B), axis=1)
    )

    # Fast tier, one ring of length N = K*J: Yp[n + 1] = Y_n. The barrier makes XLA write the
    # padded copy once instead of fusing the concatenation into every slice that reads it.
    Yp = jax.lax.optimization_barrier(jnp.concatenate([Y[-1:], Y, Y[:2]], axis=0))
    dY = (
        -(p.c * p.b) * Yp[2 : N + 2] * (Yp[3 : N + 3] - Yp[0:N])
        - p.c * Y
        + jnp.broadcast_to((hcb * X)[:, None, :], (K, J, B)).reshape(N, B)
    )
    if Z is None:
        return dX, dY, None

    # Third tier, one ring of length M = K*J*I: Zp[m + 2] = Z_m.
    M = Z.shape[0]
    I = M // N  # noqa: E741
    hed = p.h * p.e / p.d
    dY = dY - hed * jnp.sum(Z.reshape(N, I, B), axis=1)
    Zp = jax.lax.optimization_barrier(jnp.concatenate([Z[-2:], Z, Z[:1]], axis=0))
    dZ = (
        (p.e * p.d) * Zp[1 : M + 1] * (Zp[3 : M + 3] - Zp[0:M])
        - (p.g_z * p.e) * Z
        + jnp.broadcast_to((hed * Y)[:, None, :], (N, I, B)).reshape(M, B)
    )
    return dX, dY, dZ


def _to_batch_last(state: Lorenz96State):
    """Batch-first ``Lorenz96State`` -> batch-last ring arrays ``(X (K,B), Y (KJ,B), Z)``."""
    X, Y, Z = state
    B = X.shape[0]
    Xt = X.T
    Yt = Y.reshape(B, -1).T
    Zt = None if Z is None else Z.reshape(B, -1).T
    return Xt, Yt, Zt


def _to_batch_first(Xt, Yt, Zt, J: int, I: int) -> Lorenz96State:  # noqa: E741
    """Inverse of :func:`_to_batch_last` (works on NumPy and JAX arrays)."""
    K, B = Xt.shape
    Y = Yt.T.reshape(B, K, J)
    Z = None if Zt is None else Zt.T.reshape(B, K, J, I)
    return Lorenz96State(Xt.T, Y, Z)


def tendencies(state: Lorenz96State, params: Lorenz96Params = Lorenz96Params()) -> Lorenz96State:
    """Right-hand side of the multiscale Lorenz-96 equations (pure JAX).

    See the module docstring for the equations. No input validation (this is the inner
    function of the solver; it can be called under ``jit``, ``grad`` or ``vmap``). It computes
    in the dtype JAX gives the inputs: NumPy float64 arrays become float32 unless the call is
    made inside ``with jax.enable_x64(True):``.

    Parameters
    ----------
    state : Lorenz96State
        Batched state ``X (B, K)``, ``Y (B, K, J)``, ``Z (B, K, J, I)`` or ``None``.
    params : Lorenz96Params
        Each field a scalar or an array of shape ``(B,)``.

    Returns
    -------
    Lorenz96State
        ``dX/dt``, ``dY/dt``, ``dZ/dt`` (``None`` for the two-tier system), JAX arrays of the
        same shapes, per model time unit.
    """
    X = jnp.asarray(state.X)
    Y = jnp.asarray(state.Y, dtype=X.dtype)
    Z = None if state.Z is None else jnp.asarray(state.Z, dtype=X.dtype)
    p = _P(*(jnp.asarray(getattr(params, f.name), dtype=X.dtype) for f in fields(params)))
    return _tendencies_jit(Lorenz96State(X, Y, Z), p)


@jax.jit
def _tendencies_jit(state: Lorenz96State, p: _P) -> Lorenz96State:
    J = state.Y.shape[-1]
    I = 0 if state.Z is None else state.Z.shape[-1]  # noqa: E741
    return _to_batch_first(*_tend_t(*_to_batch_last(state), p), J, I)


# ----------------------------------------------------------------------------------------------
# Time stepping
# ----------------------------------------------------------------------------------------------


def _rk4_step(s, p: _P, dt):
    """One classic RK4 step on the batch-last tuple ``(X, Y, Z)``."""

    def axpy(a, u, k):
        return jax.tree_util.tree_map(lambda v, w: v + a * w, u, k)

    k1 = _tend_t(*s, p)
    k2 = _tend_t(*axpy(0.5 * dt, s, k1), p)
    k3 = _tend_t(*axpy(0.5 * dt, s, k2), p)
    k4 = _tend_t(*axpy(dt, s, k3), p)
    return jax.tree_util.tree_map(
        lambda u, a, b, c, d: u + (dt / 6.0) * (a + 2.0 * (b + c) + d), s, k1, k2, k3, k4
    )


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------


def _check_state(state) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if not isinstance(state, tuple) or len(state) not in (2, 3):
        raise ValueError(
            f"state must be a Lorenz96State(X, Y, Z) (Z may be None), got {type(state).__name__}"
        )
    X = np.asarray(state[0], dtype=np.float64)
    Y = np.asarray(state[1], dtype=np.float64)
    Z = state[2] if len(state) == 3 else None
    Z = None if Z is None else np.asarray(Z, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (B, K), got shape {X.shape}")
    B, K = X.shape
    if B < 1:
        raise ValueError(f"X must hold at least one sample, got shape {X.shape}")
    if K < 4:
        raise ValueError(f"K must be >= 4 (the stencil reaches X_(k-2) and X_(k+1)), got K={K}")
    if Y.ndim != 3 or Y.shape[:2] != (B, K) or Y.shape[2] < 1:
        raise ValueError(
            f"Y must have shape (B, K, J) = ({B}, {K}, J) with J >= 1 to match X of shape "
            f"{X.shape}, got Y of shape {Y.shape}"
        )
    if Z is not None:
        if Z.ndim != 4 or Z.shape[:3] != Y.shape:
            raise ValueError(
                f"Z must have shape (B, K, J, I) = {Y.shape + ('I',)} to match Y of shape "
                f"{Y.shape}, got Z of shape {Z.shape}"
            )
        if Z.shape[3] < 1:
            raise ValueError(
                f"Z has I = 0 third-tier variables (shape {Z.shape}); pass Z=None for the "
                "two-tier system"
            )
    for name, a in (("X", X), ("Y", Y), ("Z", Z)):
        if a is not None and not np.all(np.isfinite(a)):
            n_bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise ValueError(f"initial state {name} contains {n_bad} non-finite value(s)")
    return X, Y, Z


def _check_params(params, B: int) -> dict[str, np.ndarray]:
    if not isinstance(params, Lorenz96Params):
        raise ValueError(f"params must be a Lorenz96Params, got {type(params).__name__}")
    out = {}
    for f in fields(params):
        v = getattr(params, f.name)
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"parameter {f.name} must be a float or an array of shape ({B},), got {v!r}"
            ) from None
        if a.ndim == 0:
            a = np.full((B,), float(a))
        elif a.shape != (B,):
            raise ValueError(
                f"parameter {f.name} must be a scalar or have shape ({B},) (one value per "
                f"sample of X with shape ({B}, K)), got shape {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"parameter {f.name} contains non-finite value(s): {a}")
        out[f.name] = a
    for name in ("b", "d"):
        if np.any(out[name] == 0):
            raise ValueError(f"parameter {name} must be non-zero (it divides the coupling h)")
    return out
