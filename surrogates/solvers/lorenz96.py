r"""Multiscale Lorenz-96: a batched, jit-compiled RK4 reference solver in JAX.

Two-tier system (Lorenz 1996) with an optional third tier (Thornes, Düben & Palmer 2017), as
used to generate closure-learning data for the multiscale neural operator (Lütjens et al.).
The slow variables :math:`X_k` (:math:`k = 1..K`) each drive :math:`J` fast variables
:math:`Y_{j,k}`, which each drive :math:`I` faster variables :math:`Z_{i,j,k}`:

.. math::

    \frac{dX_k}{dt} &= X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F
                      - \frac{hc}{b}\sum_{j=1}^{J} Y_{j,k} \\
    \frac{dY_{j,k}}{dt} &= -cb\,Y_{j+1,k}(Y_{j+2,k} - Y_{j-1,k}) - c\,Y_{j,k}
                      + \frac{hc}{b} X_k
                      \;\Big[- \frac{he}{d}\sum_{i=1}^{I} Z_{i,j,k}\Big] \\
    \frac{dZ_{i,j,k}}{dt} &= ed\,Z_{i-1,j,k}(Z_{i+1,j,k} - Z_{i-2,j,k}) - g_z e\,Z_{i,j,k}
                      + \frac{he}{d} Y_{j,k}

The bracketed term is present only when the third tier is on (``Z`` is not ``None``). All
indices are periodic, and the fast indices run continuously across their parent as in
Lorenz (1996): ``Y`` of shape ``(K, J)`` is one periodic ring of length ``K*J`` in row-major
order (so :math:`Y_{J+1,k} = Y_{1,k+1}`), and ``Z`` of shape ``(K, J, I)`` one ring of length
``K*J*I``.

Time is in model time units (MTU); 1 MTU corresponds to about 5 days of atmospheric time
(Lorenz 1996). Classic two-tier setting: ``K=36, J=10, F=10, h=1, b=10, c=10``. Three-tier
setting of the multiscale-neural-operator paper: ``h=0.5, b=10, c=8, d=10, e=10, F=20``.

Discretisation: classic fourth-order Runge-Kutta with a fixed step ``dt`` (global error
:math:`O(dt^4)`); the whole time loop runs in one ``jax.lax.scan`` inside a jit-compiled
function, batched over the leading (sample) axis.

Stability is limited by the fast tiers, whose stiffest rates scale like ``c*b*|Y|`` and
``e*d*|Z|``: reduce ``dt`` in proportion when those grow. On the attractor ``dt = 0.005`` MTU
is safe for the classic ``c = b = 10`` setting and the three-tier MNO setting (4096 samples
x 2 MTU, no failure). The initial transient from :func:`random_initial_state` (``|X|`` up to
15 drives ``|Y|`` to ~3.5 within ~0.01 MTU) is stiffer: at ``dt = 0.005`` about 0.8 % of such
samples blow up in the first 0.05 MTU, at ``dt = 0.004`` about 0.02 %, at ``dt <= 0.003``
none of 8192. Spin up with ``dt = 0.0025``, then continue from ``final_state`` at
``dt = 0.005``. A run that becomes non-finite raises ``ValueError``.

Computations are float64 by default: 64-bit mode is switched on with ``jax.enable_x64(True)``
as a context manager *inside* each solver call only; the global JAX configuration is never
changed.

References
----------
.. [1] E. N. Lorenz, "Predictability - a problem partly solved", Proc. ECMWF Seminar on
   Predictability, vol. 1, pp. 1-18, 1996.
.. [2] T. Thornes, P. Düben and T. Palmer, "On the use of scale-dependent precision in Earth
   System modelling", Q. J. R. Meteorol. Soc. 143, 897-908, 2017.
.. [3] B. Lütjens, C. H. Crawford, M. Veillette and D. Newman, "Multiscale neural operator:
   Learning fast and grid-independent PDE solvers", arXiv:2207.11417, 2022.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from surrogates.solvers.checks import check_dtype, check_int

__all__ = [
    "Lorenz96State",
    "Lorenz96Params",
    "Lorenz96Trajectory",
    "random_initial_state",
    "coarse_tendency",
    "tendencies",
    "solve",
    "solve_unbatched",
]

Array = jax.Array

#: Step that is safe on the attractor for the classic setting (c = b = 10) and the MNO setting.
SAFE_DT = 0.005
#: Step that is safe for the initial transient from :func:`random_initial_state`.
SAFE_SPINUP_DT = 0.0025
#: Samples per compiled call on CPU. Every batch is split into chunks of this width (the last
#: one padded by repeating its last sample), so all samples go through the same compiled
#: program and a sample's trajectory is bitwise independent of how samples are batched (XLA's
#: code for different batch widths can round differently, which chaos then amplifies). 128 is
#: also the fastest width measured on a 2-core CPU (K=36, J=10, float64).
_CPU_CHUNK = 128
#: Upper bound on the saved frames of one compiled call (bytes); longer runs are segmented.
_MAX_CALL_BYTES = 512 * 2**20


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


class Lorenz96Trajectory(NamedTuple):
    r"""Saved frames of a Lorenz-96 run (NumPy arrays).

    ``T = n_steps // save_every + 1`` frames, at steps ``0, save_every, ..., n_steps`` counted
    after the spin-up.

    Attributes
    ----------
    time : ndarray, shape (T,)
        Model time units, ``time[0] = 0`` (the state after spin-up).
    X : ndarray, shape (B, T, K)
    Y : ndarray, shape (B, T, K, J)
    Z : ndarray, shape (B, T, K, J, I), or None
    coupling : ndarray, shape (B, T, K)
        Exact subgrid forcing of the slow variables, :math:`-(hc/b)\sum_j Y_{j,k}`.
    closure_target : ndarray, shape (B, T, K)
        :math:`(X(t+\Delta t) - X(t))/\Delta t - f(X(t); F)`, where :math:`X(t+\Delta t)` is
        one RK4 step from the saved frame and :math:`f` is :func:`coarse_tendency`: the
        step-averaged true tendency minus the known coarse physics. Forward Euler with this
        term, :math:`X + \Delta t\,(f(X) + \text{target})`, reproduces the resolved
        :math:`X(t+\Delta t)` exactly. The last frame uses one extra step beyond ``n_steps``.
    final_state : Lorenz96State
        State after step ``n_steps`` (NumPy arrays, batched), to continue a run.
    """

    time: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    Z: np.ndarray | None
    coupling: np.ndarray
    closure_target: np.ndarray
    final_state: Lorenz96State


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


@partial(jax.jit, static_argnames=("n_frames", "append_final"))
def _integrate(state, p, dt, spinup_steps, save_every, *, n_frames: int, append_final: bool):
    """Spin up, then save ``n_frames`` frames ``save_every`` steps apart (plus, if
    ``append_final``, the frame after the last step).

    Takes and returns batch-first arrays; integrates in the batch-last layout. Returns the
    state after the last step, the saved frames ``(B, T, ...)``, the coupling term and the
    closure target of every frame. Only the output shapes are static (``n_frames``,
    ``append_final`` and the input shapes): ``dt``, ``spinup_steps``, ``save_every`` and the
    parameters are traced, so changing them does not recompile.
    """
    B, K = state.X.shape
    J = state.Y.shape[-1]
    I = 0 if state.Z is None else state.Z.shape[-1]  # noqa: E741
    hcb = p.h * p.c / p.b
    step = partial(_rk4_step, p=p, dt=dt)
    s = _to_batch_last(state)
    s = jax.lax.fori_loop(0, spinup_steps, lambda _, u: step(u), s)

    def frame(u, i):
        u1 = step(u)  # the first step gives X(t + dt) for the closure target
        x1 = u1[0]
        # The appended final frame (i == n_frames) needs only that first step.
        n_more = jnp.where(i < n_frames, save_every - 1, 0)
        u1 = jax.lax.fori_loop(0, n_more, lambda _, v: step(v), u1)
        coupling = -hcb * jnp.sum(u[1].reshape(K, J, B), axis=1)
        return u1, (u, x1, coupling)

    # With append_final, one more iteration saves the state after the last step (and takes the
    # extra step its closure target needs); the final state is then that last frame.
    n_iter = n_frames + int(append_final)
    carry, (frames, x_next, coupling) = jax.lax.scan(frame, s, jnp.arange(n_iter))
    final = jax.tree_util.tree_map(lambda f: f[-1], frames) if append_final else carry

    # Time-major batch-last (T, ring, B) -> sample-major (B, T, ...).
    def sample_major(f, *tail):
        return None if f is None else jnp.transpose(f, (2, 0, 1)).reshape(B, n_iter, *tail)

    Xf = sample_major(frames[0], K)
    Yf = sample_major(frames[1], K, J)
    Zf = sample_major(frames[2], K, J, I)
    target = (sample_major(x_next, K) - Xf) / dt - coarse_tendency(Xf, p.F)
    coupling = sample_major(coupling, K)
    return _to_batch_first(*final, J, I), Lorenz96State(Xf, Yf, Zf), coupling, target


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


def _raise_if_unstable(
    traj_X, target, final: Lorenz96State, dt: float, spinup_steps: int, save_every: int
):
    ok_frames = np.isfinite(traj_X).all(axis=-1) & np.isfinite(target).all(axis=-1)  # (B, T)
    ok_final = np.isfinite(final.X).all(-1) & np.isfinite(final.Y).all((-1, -2))
    if final.Z is not None:
        ok_final &= np.isfinite(final.Z).all((-1, -2, -3))
    if ok_frames.all() and ok_final.all():
        return
    bad_samples = np.flatnonzero(~(ok_frames.all(-1) & ok_final))
    bad_t = np.flatnonzero(~ok_frames.all(0))
    if bad_t.size and bad_t[0] == 0 and spinup_steps > 0:
        where = f"during the {spinup_steps}-step spin-up"
    elif bad_t.size:
        t0 = bad_t[0] * save_every * dt
        where = (
            f"between t = {t0:g} and {t0 + save_every * dt:g} MTU (after saved frame {bad_t[0]})"
        )
    else:
        where = "at the end of the run"
    raise ValueError(
        f"Lorenz-96 solution became non-finite {where} for {bad_samples.size} sample(s) "
        f"(first: {bad_samples[:5].tolist()}): dt = {dt:g} is probably too large for RK4 "
        f"stability. On the attractor dt = {SAFE_DT} MTU is typically safe for the classic "
        "c = b = 10 setting (and the three-tier MNO setting); the initial transient from "
        f"random_initial_state needs dt <= {SAFE_SPINUP_DT} (spin up at that dt, then continue "
        "from final_state). The stiffest rates scale like c*b*|Y| and e*d*|Z|, so reduce dt "
        "in proportion for faster or larger fast tiers"
    )


# ----------------------------------------------------------------------------------------------
# Public solvers
# ----------------------------------------------------------------------------------------------


def solve(
    state: Lorenz96State,
    params: Lorenz96Params = Lorenz96Params(),
    *,
    dt: float = 0.005,
    n_steps: int,
    save_every: int = 1,
    spinup_steps: int = 0,
    dtype: str = "float64",
    show_progress: bool = False,
) -> Lorenz96Trajectory:
    r"""Integrate a batch of multiscale Lorenz-96 systems with classic RK4.

    Equations (periodic indices; ``Y`` and ``Z`` are single rings across their parents, see
    the module docstring):

    .. math::

        \dot X_k &= X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F - \tfrac{hc}{b}\textstyle\sum_j Y_{j,k}\\
        \dot Y_{j,k} &= -cb\,Y_{j+1,k}(Y_{j+2,k} - Y_{j-1,k}) - cY_{j,k} + \tfrac{hc}{b}X_k
                        \;[-\tfrac{he}{d}\textstyle\sum_i Z_{i,j,k}]\\
        \dot Z_{i,j,k} &= ed\,Z_{i-1,j,k}(Z_{i+1,j,k} - Z_{i-2,j,k}) - g_z e Z_{i,j,k}
                        + \tfrac{he}{d}Y_{j,k}

    Fourth-order Runge-Kutta with fixed step ``dt`` (global error :math:`O(dt^4)`). The time
    loop is one ``jax.lax.scan`` in a jit-compiled function; compiled code is cached per
    output shape, ``(W, K, J, I, n_steps // save_every, dtype)``, so repeated calls with new
    initial states, parameters, ``dt``, ``spinup_steps`` or ``save_every`` (with the same
    number of frames) do not recompile. On CPU the batch runs in chunks of ``W = 128`` samples
    (the last chunk padded), so every sample goes through the same compiled program and its
    trajectory is bitwise independent of how the samples are batched; on accelerators
    ``W = B`` (one chunk). Runs whose saved frames would pass 512 MiB per call are split into
    several scans. Computation happens inside ``jax.enable_x64(dtype == "float64")``; the
    global JAX configuration is left unchanged.

    Parameters
    ----------
    state : Lorenz96State
        Initial state, ``X (B, K)``, ``Y (B, K, J)``, ``Z (B, K, J, I)`` or ``None`` for the
        two-tier system. NumPy or JAX arrays. ``K >= 4``.
    params : Lorenz96Params, default Lorenz96Params()
        Scalars or arrays of shape ``(B,)``. Default: classic two-tier setting
        ``F=10, h=1, b=10, c=10`` (``d=e=10, g_z=1`` for the third tier). MNO three-tier
        setting: ``Lorenz96Params(F=20, h=0.5, b=10, c=8, d=10, e=10)``.
    dt : float, default 0.005
        Time step in model time units (1 MTU ~ 5 days). ``0.005`` is stable on the attractor
        for the classic and MNO settings; spin up from :func:`random_initial_state` with
        ``dt = 0.0025`` (see the module docstring, "Stability").
    n_steps : int
        Number of steps after spin-up (>= 1), a multiple of ``save_every``.
    save_every : int, default 1
        Save a frame every ``save_every`` steps.
    spinup_steps : int, default 0
        Steps run first and discarded (to reach the attractor).
    dtype : {"float64", "float32"}, default "float64"
        Floating-point precision of the computation and of the returned arrays.
    show_progress : bool, default False
        Show a tqdm progress bar (the run is split into about 20 scans per chunk of samples;
        the bar turns itself off when not attached to a terminal). The default path is a
        single compiled scan per chunk.

    Returns
    -------
    Lorenz96Trajectory
        ``T = n_steps // save_every + 1`` frames at times ``0, save_every*dt, ...,
        n_steps*dt`` (MTU, counted from the end of the spin-up): ``X (B, T, K)``,
        ``Y (B, T, K, J)``, ``Z (B, T, K, J, I)`` or ``None``, ``coupling (B, T, K)`` =
        :math:`-(hc/b)\sum_j Y_{j,k}`, ``closure_target (B, T, K)`` =
        :math:`(X(t+dt) - X(t))/dt - (X_{k-1}(X_{k+1}-X_{k-2}) - X_k + F)` (one extra step
        is taken beyond ``n_steps`` for the last frame), and ``final_state`` (after step
        ``n_steps``). NumPy arrays of the requested dtype.

    Raises
    ------
    ValueError
        On a malformed or non-finite initial state (shape mismatches name both shapes),
        non-finite or wrongly shaped parameters, ``b`` or ``d`` equal to zero, ``dt`` not
        positive and finite, ``n_steps < 1``, ``n_steps`` not a multiple of ``save_every``, an
        unknown ``dtype``, or when the solution becomes non-finite (``dt`` too large for RK4
        stability; ``dt = 0.005`` is typically safe on the attractor for ``c = b = 10``, the
        transient from :func:`random_initial_state` needs ``dt = 0.0025``).

    References
    ----------
    .. [1] E. N. Lorenz, "Predictability - a problem partly solved", ECMWF Seminar on
       Predictability, 1996.
    .. [2] T. Thornes, P. Düben and T. Palmer, Q. J. R. Meteorol. Soc. 143, 897-908, 2017.
    .. [3] B. Lütjens et al., "Multiscale neural operator: Learning fast and
       grid-independent PDE solvers", arXiv:2207.11417, 2022.

    Examples
    --------
    >>> s0 = random_initial_state(4, K=36, J=10, seed=1)
    >>> spun = solve(s0, dt=0.0025, n_steps=1, spinup_steps=400).final_state  # 1 MTU
    >>> traj = solve(spun, dt=0.005, n_steps=200, save_every=10)
    >>> traj.X.shape, float(traj.time[-1])
    ((4, 21, 36), 1.0)
    """
    X0, Y0, Z0 = _check_state(state)
    B = X0.shape[0]
    p_np = _check_params(params, B)
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"dt must be a positive finite float, got {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive and finite, got dt = {dt}")
    n_steps = check_int(n_steps, "n_steps", minimum=1)
    save_every = check_int(save_every, "save_every", minimum=1)
    spinup_steps = check_int(spinup_steps, "spinup_steps", minimum=0)
    if n_steps % save_every != 0:
        raise ValueError(
            f"n_steps = {n_steps} must be a positive multiple of save_every = {save_every} "
            f"(e.g. n_steps = {max(1, n_steps // save_every) * save_every})"
        )
    np_dtype = check_dtype(dtype)
    n_frames = n_steps // save_every

    with jax.enable_x64(np_dtype == np.float64):
        out = _run(
            X0, Y0, Z0, p_np, dt, spinup_steps, save_every, n_frames, np_dtype, show_progress
        )
    final, (Xs, Ys, Zs), coupling, target = out
    _raise_if_unstable(Xs, target, final, dt, spinup_steps, save_every)
    time = np.arange(n_frames + 1, dtype=np.float64) * (save_every * dt)
    return Lorenz96Trajectory(time, Xs, Ys, Zs, coupling, target, final)


def _chunk_width(B: int) -> int:
    """Samples per compiled call: fixed on CPU (see ``_CPU_CHUNK``), the whole batch elsewhere."""
    return _CPU_CHUNK if jax.default_backend() == "cpu" else B


def _run(X0, Y0, Z0, p_np, dt, spinup_steps, save_every, n_frames, np_dtype, show_progress):
    """Integrate in chunks of samples (fixed width, padded) and segments of frames.

    Every chunk runs through the same compiled program, so a sample's result does not depend
    on the batch it came in (bitwise, on CPU). Segments bound the memory of one call's saved
    frames; for ordinary sizes (and without a progress bar) there is one segment, i.e. one
    compiled scan per chunk.
    """
    from tqdm.auto import tqdm

    B, K = X0.shape
    J = Y0.shape[-1]
    I = 0 if Z0 is None else Z0.shape[-1]  # noqa: E741
    W = _chunk_width(B)
    n_chunks = -(-B // W)
    T = n_frames + 1
    jd = jnp.dtype(np_dtype)

    # Frames per call: all of them unless one call's frames would pass _MAX_CALL_BYTES (or a
    # progress bar asks for ~20 updates per chunk).
    per_frame = W * (4 * K + K * J + K * J * I) * np_dtype.itemsize
    seg = min(n_frames, max(1, _MAX_CALL_BYTES // per_frame))
    if show_progress:
        seg = min(seg, max(1, -(-n_frames // 20)))

    out_X = np.empty((B, T, K), np_dtype)
    out_Y = np.empty((B, T, K, J), np_dtype)
    out_Z = None if Z0 is None else np.empty((B, T, K, J, I), np_dtype)
    out_c = np.empty((B, T, K), np_dtype)
    out_t = np.empty((B, T, K), np_dtype)
    fin = [np.empty((B, K), np_dtype), np.empty((B, K, J), np_dtype), None]
    if Z0 is not None:
        fin[2] = np.empty((B, K, J, I), np_dtype)

    def lanes(a, lo, hi):
        """Samples lo:hi of a, padded to W by repeating the last sample."""
        a = a[lo:hi]
        if hi - lo < W:
            a = np.concatenate([a, np.repeat(a[-1:], W - (hi - lo), axis=0)], axis=0)
        return jnp.asarray(a, jd)

    dt_j = jnp.asarray(dt, jd)
    total = n_chunks * (spinup_steps + n_frames * save_every)
    with tqdm(
        total=total, unit="step", desc="Lorenz-96", disable=None if show_progress else True
    ) as bar:
        for c in range(n_chunks):
            lo, hi = c * W, min(B, (c + 1) * W)
            n_real = hi - lo
            s = Lorenz96State(
                lanes(X0, lo, hi), lanes(Y0, lo, hi), None if Z0 is None else lanes(Z0, lo, hi)
            )
            p = _P(**{k: lanes(v, lo, hi) for k, v in p_np.items()})
            done = 0
            while done < n_frames:
                n = min(seg, n_frames - done)
                last = done + n == n_frames
                # The spin-up runs inside the first segment (it is traced: no extra compile).
                spin = spinup_steps if done == 0 else 0
                s, frames, coupling, target = _integrate(
                    s, p, dt_j, spin, save_every, n_frames=n, append_final=last
                )
                frames, coupling, target = jax.device_get((frames, coupling, target))
                t = slice(done, done + n + int(last))
                out_X[lo:hi, t] = frames[0][:n_real]
                out_Y[lo:hi, t] = frames[1][:n_real]
                if out_Z is not None:
                    out_Z[lo:hi, t] = frames[2][:n_real]
                out_c[lo:hi, t] = coupling[:n_real]
                out_t[lo:hi, t] = target[:n_real]
                bar.update(spin + n * save_every)
                done += n
            for i, a in enumerate(jax.device_get(s)):
                if a is not None:
                    fin[i][lo:hi] = a[:n_real]
    return Lorenz96State(*fin), (out_X, out_Y, out_Z), out_c, out_t


def solve_unbatched(
    state: Lorenz96State,
    params: Lorenz96Params = Lorenz96Params(),
    **kwargs,
) -> Lorenz96Trajectory:
    """:func:`solve` for a single sample without the batch axis.

    Parameters
    ----------
    state : Lorenz96State
        ``X (K,)``, ``Y (K, J)``, ``Z (K, J, I)`` or ``None``.
    params : Lorenz96Params
        Scalar parameters.
    **kwargs
        Keyword arguments of :func:`solve` (``dt``, ``n_steps``, ``save_every``, ...).

    Returns
    -------
    Lorenz96Trajectory
        As from :func:`solve` with the batch axis removed: ``X (T, K)``, ``Y (T, K, J)``, ...
    """
    Z = state[2] if len(state) == 3 else None
    batched = Lorenz96State(
        np.asarray(state[0])[None],
        np.asarray(state[1])[None],
        None if Z is None else np.asarray(Z)[None],
    )
    for f in fields(params):
        if np.ndim(getattr(params, f.name)) != 0:
            raise ValueError(
                f"solve_unbatched needs scalar parameters; {f.name} has shape "
                f"{np.shape(getattr(params, f.name))}"
            )
    tr = solve(batched, params, **kwargs)
    fs = tr.final_state
    return Lorenz96Trajectory(
        tr.time,
        tr.X[0],
        tr.Y[0],
        None if tr.Z is None else tr.Z[0],
        tr.coupling[0],
        tr.closure_target[0],
        Lorenz96State(fs.X[0], fs.Y[0], None if fs.Z is None else fs.Z[0]),
    )
