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
function, batched over the leading (sample) axis. Stability is limited by the fast tiers:
``dt = 0.005`` MTU is safe for the classic ``c = b = 10`` setting and the three-tier MNO
setting; the stiffest rates scale like ``c*b*|Y|`` and ``e*d*|Z|``, so reduce ``dt`` in
proportion when those grow. A run that becomes non-finite raises ``ValueError``.

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
import operator
from dataclasses import dataclass, fields
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

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

#: Step that is safe for the classic setting (c = b = 10) and the three-tier MNO setting.
SAFE_DT = 0.005


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
    """
    n_samples = _as_int(n_samples, "n_samples", minimum=1)
    K = _as_int(K, "K", minimum=4)
    J = _as_int(J, "J", minimum=1)
    I = _as_int(I, "I", minimum=0)  # noqa: E741
    seed = _as_int(seed, "seed", minimum=0)
    sample_offset = _as_int(sample_offset, "sample_offset", minimum=0)

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


def _shift(a, s: int):
    """Periodic shift along the last axis: ``out[..., n] = a[..., n - s]`` (= ``roll(a, s)``),
    written as one concatenate of two static slices."""
    n = a.shape[-1]
    s %= n
    if s == 0:
        return a
    return jnp.concatenate([a[..., n - s :], a[..., : n - s]], axis=-1)


def _tend(state: Lorenz96State, p: _P) -> Lorenz96State:
    """Batched tendencies; parameter arrays are aligned with the leading (sample) axis."""
    X, Y, Z = state
    K, J = Y.shape[-2], Y.shape[-1]

    def col(v, ndim):
        return _align_leading(v, ndim, jnp)

    hcb = col(p.h * p.c / p.b, 2)  # (B, 1) or (1, 1)
    cb = col(p.c * p.b, 2)
    c = col(p.c, 2)

    # Slow tier.
    dX = (
        _shift(X, 1) * (_shift(X, -1) - _shift(X, 2))
        - X
        + col(p.F, 2)
        - hcb * jnp.sum(Y, axis=-1)
    )

    # Fast tier, as one ring of length K*J.
    y = Y.reshape(Y.shape[0], K * J)
    dy = -cb * _shift(y, -1) * (_shift(y, -2) - _shift(y, 1)) - c * y
    dY = dy.reshape(Y.shape) + col(p.h * p.c / p.b, 3) * X[..., None]

    if Z is None:
        return Lorenz96State(dX, dY, None)

    I = Z.shape[-1]  # noqa: E741
    hed = p.h * p.e / p.d
    dY = dY - col(hed, 3) * jnp.sum(Z, axis=-1)
    z = Z.reshape(Z.shape[0], K * J * I)
    dz = col(p.e * p.d, 2) * _shift(z, 1) * (_shift(z, -1) - _shift(z, 2)) - col(
        p.g_z * p.e, 2
    ) * z
    dZ = dz.reshape(Z.shape) + col(hed, 4) * Y[..., None]
    return Lorenz96State(dX, dY, dZ)


def tendencies(state: Lorenz96State, params: Lorenz96Params = Lorenz96Params()) -> Lorenz96State:
    """Right-hand side of the multiscale Lorenz-96 equations (pure JAX).

    See the module docstring for the equations. No input validation (this is the inner
    function of the solver; it can be called under ``jit``, ``grad`` or ``vmap``).

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
    return _tend(Lorenz96State(X, Y, Z), p)


# ----------------------------------------------------------------------------------------------
# Time stepping
# ----------------------------------------------------------------------------------------------


def _rk4_step(state: Lorenz96State, p: _P, dt) -> Lorenz96State:
    """One classic RK4 step."""

    def axpy(a, s, k):
        return jax.tree_util.tree_map(lambda u, v: u + a * v, s, k)

    k1 = _tend(state, p)
    k2 = _tend(axpy(0.5 * dt, state, k1), p)
    k3 = _tend(axpy(0.5 * dt, state, k2), p)
    k4 = _tend(axpy(dt, state, k3), p)
    return jax.tree_util.tree_map(
        lambda u, a, b, c, d: u + (dt / 6.0) * (a + 2.0 * (b + c) + d), state, k1, k2, k3, k4
    )


@partial(jax.jit, static_argnames=("n_frames", "save_every", "append_final"))
def _integrate(state, p, dt, spinup_steps, *, n_frames: int, save_every: int, append_final: bool):
    """Spin up, then save ``n_frames`` frames ``save_every`` steps apart (plus, if
    ``append_final``, the frame at the end). Returns the state after the last step, the saved
    frames (sample-major), the coupling term and the closure target of every frame."""
    step = partial(_rk4_step, p=p, dt=dt)
    state = jax.lax.fori_loop(0, spinup_steps, lambda _, s: step(s), state)

    def frame(s, _):
        s1 = step(s)  # the first step gives X(t + dt) for the closure target
        x1 = s1.X
        if save_every > 1:
            s1 = jax.lax.fori_loop(0, save_every - 1, lambda _, u: step(u), s1)
        return s1, (s, x1)

    final, (frames, x_next) = jax.lax.scan(frame, state, None, length=n_frames)

    if append_final:
        x_last = step(final).X
        frames = jax.tree_util.tree_map(
            lambda f, u: jnp.concatenate([f, u[None]], axis=0), frames, final
        )
        x_next = jnp.concatenate([x_next, x_last[None]], axis=0)

    # Time-major (T, B, ...) -> sample-major (B, T, ...).
    frames = jax.tree_util.tree_map(lambda f: jnp.moveaxis(f, 0, 1), frames)
    x_next = jnp.moveaxis(x_next, 0, 1)
    coupling = -_align_leading(p.h * p.c / p.b, 3, jnp) * jnp.sum(frames.Y, axis=-1)
    target = (x_next - frames.X) / dt - coarse_tendency(frames.X, p.F)
    return final, frames, coupling, target


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------


def _as_int(v, name: str, minimum: int) -> int:
    if isinstance(v, bool):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    try:
        i = operator.index(v)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {v!r}") from None
    if i < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {i}")
    return i


def _check_state(state) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if not isinstance(state, tuple) or len(state) not in (2, 3):
        raise ValueError(
            "state must be a Lorenz96State(X, Y, Z) (Z may be None), got "
            f"{type(state).__name__}"
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


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}") from None
    if dt not in (np.float64, np.float32):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


def _raise_if_unstable(traj_X, target, final: Lorenz96State, dt: float, spinup_steps: int,
                       save_every: int):
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
        where = f"near t = {bad_t[0] * save_every * dt:g} MTU (saved frame {bad_t[0]})"
    else:
        where = "at the end of the run"
    raise ValueError(
        f"Lorenz-96 solution became non-finite {where} for {bad_samples.size} sample(s) "
        f"(first: {bad_samples[:5].tolist()}): dt = {dt:g} is probably too large for RK4 "
        f"stability. dt = {SAFE_DT} MTU is typically safe for the classic c = b = 10 setting "
        "(and the three-tier MNO setting); the stiffest rates scale like c*b*|Y| and e*d*|Z|, "
        "so reduce dt in proportion for faster or larger fast tiers"
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
    ``(B, K, J, I, n_steps, save_every, dtype)`` so repeated calls with new initial states,
    parameters, ``dt`` or ``spinup_steps`` do not recompile. Computation happens inside
    ``jax.enable_x64(dtype == "float64")``; the global JAX configuration is left unchanged.

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
        Time step in model time units (1 MTU ~ 5 days). ``0.005`` is stable for the classic
        and MNO settings.
    n_steps : int
        Number of steps after spin-up (>= 1), a multiple of ``save_every``.
    save_every : int, default 1
        Save a frame every ``save_every`` steps.
    spinup_steps : int, default 0
        Steps run first and discarded (to reach the attractor).
    dtype : {"float64", "float32"}, default "float64"
        Floating-point precision of the computation and of the returned arrays.
    show_progress : bool, default False
        Show a tqdm progress bar (run in about 20 compiled chunks; the bar turns itself off
        when not attached to a terminal). The default path is a single compiled scan.

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
        stability; ``dt = 0.005`` is typically safe for ``c = b = 10``).

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
    >>> traj = solve(s0, dt=0.005, n_steps=200, save_every=10, spinup_steps=400)
    >>> traj.X.shape, traj.time[-1]
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
    n_steps = _as_int(n_steps, "n_steps", minimum=1)
    save_every = _as_int(save_every, "save_every", minimum=1)
    spinup_steps = _as_int(spinup_steps, "spinup_steps", minimum=0)
    if n_steps % save_every != 0:
        raise ValueError(
            f"n_steps = {n_steps} must be a positive multiple of save_every = {save_every} "
            f"(e.g. n_steps = {max(1, n_steps // save_every) * save_every})"
        )
    np_dtype = _check_dtype(dtype)
    n_frames = n_steps // save_every

    with jax.enable_x64(np_dtype == np.float64):
        jd = jnp.dtype(np_dtype)
        s = Lorenz96State(
            jnp.asarray(X0, jd), jnp.asarray(Y0, jd), None if Z0 is None else jnp.asarray(Z0, jd)
        )
        p = _P(**{k: jnp.asarray(v, jd) for k, v in p_np.items()})
        dt_j = jnp.asarray(dt, jd)
        if not show_progress:
            final, frames, coupling, target = _integrate(
                s, p, dt_j, spinup_steps, n_frames=n_frames, save_every=save_every,
                append_final=True,
            )
            out = jax.device_get((final, frames, coupling, target))
        else:
            out = _solve_chunked(s, p, dt_j, spinup_steps, n_frames, save_every)
    final, frames, coupling, target = out
    final = Lorenz96State(*(None if a is None else np.asarray(a) for a in final))
    Xs, Ys, Zs = (None if a is None else np.asarray(a) for a in frames)
    coupling, target = np.asarray(coupling), np.asarray(target)
    _raise_if_unstable(Xs, target, final, dt, spinup_steps, save_every)
    time = np.arange(n_frames + 1, dtype=np.float64) * (save_every * dt)
    return Lorenz96Trajectory(time, Xs, Ys, Zs, coupling, target, final)


def _solve_chunked(s, p, dt_j, spinup_steps, n_frames, save_every):
    """Same result as one ``_integrate`` call, in chunks of frames with a tqdm bar."""
    from tqdm.auto import tqdm

    chunk = max(1, -(-n_frames // 20))
    pieces = []
    with tqdm(total=spinup_steps + n_frames * save_every, unit="step", disable=None,
              desc="Lorenz-96") as bar:
        if spinup_steps:
            s, *_ = _integrate(s, p, dt_j, spinup_steps, n_frames=0, save_every=save_every,
                               append_final=False)
            jax.block_until_ready(s)
            bar.update(spinup_steps)
        done = 0
        while done < n_frames:
            n = min(chunk, n_frames - done)
            last = done + n == n_frames
            s, frames, coupling, target = _integrate(
                s, p, dt_j, 0, n_frames=n, save_every=save_every, append_final=last
            )
            pieces.append(jax.device_get((frames, coupling, target)))
            done += n
            bar.update(n * save_every)
    final = jax.device_get(s)
    frames = Lorenz96State(
        *(
            None if pieces[0][0][i] is None
            else np.concatenate([pc[0][i] for pc in pieces], axis=1)
            for i in range(3)
        )
    )
    coupling = np.concatenate([pc[1] for pc in pieces], axis=1)
    target = np.concatenate([pc[2] for pc in pieces], axis=1)
    return final, frames, coupling, target


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
        np.asarray(state[0])[None], np.asarray(state[1])[None],
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
        tr.time, tr.X[0], tr.Y[0], None if tr.Z is None else tr.Z[0], tr.coupling[0],
        tr.closure_target[0],
        Lorenz96State(fs.X[0], fs.Y[0], None if fs.Z is None else fs.Z[0]),
    )
