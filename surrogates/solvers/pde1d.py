r"""One-dimensional PDEBench-style equations: batched finite-volume reference solvers in JAX.

Three scalar conservation/balance laws on the periodic domain :math:`x \in [0, 1)`, as used by
PDEBench (Takamoto et al. 2022) for its 1D advection, Burgers and diffusion-reaction data:

.. math::

    \text{advection:}\quad & u_t + \beta\,u_x = 0 \\
    \text{Burgers:}\quad & u_t + \left(\tfrac{1}{2}u^2\right)_x = \frac{\nu}{\pi}\,u_{xx} \\
    \text{diffusion-reaction:}\quad & u_t = \nu\,u_{xx} + \rho\,u(1 - u)

Grid: ``N`` equal cells of width :math:`\Delta x = 1/N` with centres
:math:`x_i = (i + 1/2)/N`, ``i = 0..N-1``; ``u[..., i]`` is the cell average (equal to the
point value at :math:`x_i` up to :math:`O(\Delta x^2)`, which does not change the order).
Time and space are dimensionless (PDEBench units).

Discretisation (method of lines, finite volume):

* Convective flux: second-order MUSCL reconstruction of the interface states
  :math:`u^L_{i+1/2} = u_i + s_i/2`, :math:`u^R_{i+1/2} = u_{i+1} - s_{i+1}/2` with limited
  slopes :math:`s_i` (``"mc"`` monotonised central, default; ``"minmod"``; ``"vanleer"``), then
  the exact upwind flux for advection, :math:`\max(\beta,0)u^L + \min(\beta,0)u^R`, or the
  Rusanov (local Lax-Friedrichs) flux for Burgers,
  :math:`\tfrac12(f(u^L) + f(u^R)) - \tfrac12\max(|u^L|,|u^R|)(u^R - u^L)`.
* Diffusive flux: central, :math:`-\nu_{\rm eff}(u_{i+1} - u_i)/\Delta x` (second order).
* Time: three-stage third-order strong-stability-preserving Runge-Kutta (SSP-RK3,
  Shu & Osher 1988). Diffusion-reaction uses Strang splitting: half a step of the *exact*
  logistic flow :math:`u \leftarrow u e^{\rho h} / (1 - u + u e^{\rho h})`
  (:math:`h = \Delta t/2`), one SSP-RK3 step of pure diffusion, another exact half step.

Order of accuracy: second order in space for smooth solutions (limiters clip smooth extrema,
which lowers the max-norm order locally; L1/L2 errors stay close to second order), third
order in time for the RK part, second order in time for the splitting (exact, i.e. round-off
only, for spatially uniform states).

Stability (time step): with :math:`a_{\max}` the largest wave speed over the *whole batch*
(:math:`|\beta|` or :math:`\max|u_0|`, which the viscous Burgers flow does not increase) and
:math:`\nu_{\rm eff}` the largest diffusivity (:math:`\nu/\pi` for Burgers, :math:`\nu` for
diffusion-reaction),

.. math::

    \Delta t_{\rm CFL} = \frac{\mathrm{cfl}}{a_{\max}/\Delta x + 2\nu_{\rm eff}/\Delta x^2},
    \qquad \mathrm{cfl} = 0.4 \text{ by default},

which is at most the usual :math:`\mathrm{cfl}\cdot\min(\Delta x/a_{\max},
\Delta x^2/(2\nu_{\rm eff}))` and at least half of it. Every output interval
:math:`[t_k, t_{k+1}]` is split into the same number ``n_substeps`` of equal sub-steps,
``n_substeps = ceil(max_k (t_{k+1} - t_k) / dt_CFL)``, so frames land exactly on the requested
times and one compiled loop serves all samples. The reaction, integrated exactly, adds no
limit.

Computations are float64 by default: 64-bit mode is switched on with ``jax.enable_x64(True)``
as a context manager *inside* each solver call only; the global JAX configuration is never
changed.

References
----------
.. [1] M. Takamoto et al., "PDEBench: An extensive benchmark for scientific machine
   learning", NeurIPS Datasets and Benchmarks, 2022.
.. [2] B. van Leer, "Towards the ultimate conservative difference scheme V. A second-order
   sequel to Godunov's method", J. Comput. Phys. 32, 101-136, 1979.
.. [3] C.-W. Shu and S. Osher, "Efficient implementation of essentially non-oscillatory
   shock-capturing schemes", J. Comput. Phys. 77, 439-471, 1988.
.. [4] V. V. Rusanov, "The calculation of the interaction of non-stationary shock waves with
   barriers", USSR Comput. Math. Math. Phys. 1, 304-320, 1962.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from surrogates.solvers.checks import check_dtype, check_int

__all__ = [
    "PDE1DSolution",
    "cell_centers",
    "random_initial_condition",
    "solve_advection",
    "solve_burgers",
    "solve_diffusion_reaction",
]

#: Default Courant number (fraction of the explicit stability limit).
DEFAULT_CFL = 0.4
#: Samples integrated together: larger batches run in chunks of this size (padded to it), whose
#: working set stays in cache (measured on CPU: 128 samples x 256 cells ran 1.6x faster as four
#: chunks of 32 than as one batch; see benchmarks/solver_pde1d.py). Results do not depend on it.
CHUNK = 32
#: Probability that a random initial condition gets each optional modification (PDEBench's).
IC_PROBABILITIES = {"absolute": 0.1, "sign_flip": 0.5, "window": 0.1}
_IC_THRESHOLDS = np.array([IC_PROBABILITIES[k] for k in ("absolute", "sign_flip", "window")])
_LIMITERS = ("mc", "minmod", "vanleer")


@dataclass(frozen=True)
class PDE1DSolution:
    """Frames of a 1D run (NumPy arrays).

    Attributes
    ----------
    x : ndarray, shape (N,)
        Cell centres :math:`x_i = (i + 1/2)/N` (float64).
    t : ndarray, shape (T,)
        Output times, ``t[0] = 0`` (float64), as requested.
    u : ndarray, shape (B, T, N), or (T, N) for an unbatched initial condition
        Cell averages at the output times, ``u[:, 0]`` the initial condition; dtype of the
        computation.
    n_substeps : int
        Time steps taken per output interval (the same for every interval and sample).
    """

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray
    n_substeps: int


def cell_centers(N: int) -> np.ndarray:
    """Cell centres ``(i + 1/2)/N`` of the periodic unit interval, shape ``(N,)``, float64."""
    N = check_int(N, "N", minimum=8)
    return (np.arange(N, dtype=np.float64) + 0.5) / N


# ----------------------------------------------------------------------------------------------
# Initial conditions
# ----------------------------------------------------------------------------------------------


def random_initial_condition(
    n_samples: int,
    N: int,
    seed: int = 0,
    *,
    k_max: int = 4,
    n_modes: int = 2,
    absolute: bool = False,
    sign_flip: bool = False,
    window: bool = False,
    unit_interval: bool = False,
    sample_offset: int = 0,
) -> np.ndarray:
    r"""Random superpositions of sine waves, following the PDEBench recipe.

    .. math::

        u_0(x) = \sum_{m=1}^{n_\text{modes}} A_m \sin(2\pi k_m x + \phi_m),
        \quad k_m \in \{1, \dots, k_\max\},\ A_m \sim U(0, 1),\ \phi_m \sim U(0, 2\pi),

    evaluated at the cell centres. Optional modifications, each applied to a random share of
    the samples with PDEBench's probabilities (:data:`IC_PROBABILITIES`: 0.1, 0.5 and 0.1):
    ``absolute`` takes :math:`|u_0|`; ``sign_flip`` multiplies by -1; ``window`` multiplies by
    the smooth box
    :math:`\tfrac12[\tanh((x - x_L)/\delta) - \tanh((x - x_R)/\delta)]`,
    :math:`\delta = 0.01`, :math:`x_L \sim U(0.1, 0.45)`, :math:`x_R \sim U(0.55, 0.9)`.
    They are applied in that order. ``unit_interval`` then maps every sample affinely onto
    :math:`[0, 1]` (min 0, max 1; a constant sample becomes 0.5), as diffusion-reaction needs.

    Sample number ``n = sample_offset + m`` uses its own generator
    ``np.random.default_rng([seed, n])`` and always draws the same numbers whatever the
    options, so a sample does not depend on the batch it is in, and switching an option on
    changes only what that option does.

    Parameters
    ----------
    n_samples : int
        Number of samples ``B`` (>= 1).
    N : int
        Number of cells (>= 8).
    seed : int, default 0
        Non-negative base seed.
    k_max : int, default 4
        Largest wavenumber (>= 1).
    n_modes : int, default 2
        Number of sine modes (>= 1).
    absolute, sign_flip, window : bool, default False
        Randomly (per sample, with the probability in :data:`IC_PROBABILITIES`) apply the
        modification.
    unit_interval : bool, default False
        Map each sample onto ``[0, 1]`` (for :func:`solve_diffusion_reaction`).
    sample_offset : int, default 0
        Global index of the first sample.

    Returns
    -------
    ndarray, shape (B, N)
        float64 initial conditions (cell values).

    Raises
    ------
    ValueError
        If a size, ``k_max``, ``n_modes`` or the seed is out of range.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    N = check_int(N, "N", minimum=8)
    seed = check_int(seed, "seed", minimum=0)
    k_max = check_int(k_max, "k_max", minimum=1)
    n_modes = check_int(n_modes, "n_modes", minimum=1)
    sample_offset = check_int(sample_offset, "sample_offset", minimum=0)
    x = cell_centers(N)
    out = np.empty((n_samples, N))
    for m in range(n_samples):
        rng = np.random.default_rng([seed, sample_offset + m])
        k = rng.integers(1, k_max, size=n_modes, endpoint=True)
        amp = rng.uniform(0.0, 1.0, size=n_modes)
        phase = rng.uniform(0.0, 2.0 * np.pi, size=n_modes)
        coins = rng.uniform(size=3) < _IC_THRESHOLDS  # absolute, sign flip, window
        x_l = rng.uniform(0.1, 0.45)
        x_r = rng.uniform(0.55, 0.9)
        u = np.sum(amp[:, None] * np.sin(2.0 * np.pi * k[:, None] * x + phase[:, None]), axis=0)
        if absolute and coins[0]:
            u = np.abs(u)
        if sign_flip and coins[1]:
            u = -u
        if window and coins[2]:
            delta = 0.01
            u = u * 0.5 * (np.tanh((x - x_l) / delta) - np.tanh((x - x_r) / delta))
        if unit_interval:
            lo, hi = u.min(), u.max()
            u = (u - lo) / (hi - lo) if hi > lo else np.full_like(u, 0.5)
        out[m] = u
    return out


# ----------------------------------------------------------------------------------------------
# Discretisation (JAX, batch-first arrays (B, N); parameters (B, 1))
# ----------------------------------------------------------------------------------------------


def _slopes(u, limiter: str):
    """Limited slopes (per cell, in units of u per cell)."""
    dm = u - jnp.roll(u, 1, axis=-1)
    dp = jnp.roll(u, -1, axis=-1) - u
    same = dm * dp > 0
    if limiter == "minmod":
        return jnp.where(same, jnp.sign(dm) * jnp.minimum(jnp.abs(dm), jnp.abs(dp)), 0.0)
    if limiter == "vanleer":
        den = jnp.where(same, dm + dp, 1.0)
        return jnp.where(same, 2.0 * dm * dp / den, 0.0)
    # monotonised central
    mag = jnp.minimum(jnp.minimum(2.0 * jnp.abs(dm), 2.0 * jnp.abs(dp)), 0.5 * jnp.abs(dm + dp))
    return jnp.where(same, jnp.sign(dm) * mag, 0.0)


def _interface_states(u, limiter: str):
    """``(uL, uR)`` at interface ``i + 1/2`` (stored at index ``i``)."""
    s = 0.5 * _slopes(u, limiter)
    return u + s, jnp.roll(u - s, -1, axis=-1)


def _rhs(u, p, inv_dx, kind: str, limiter: str):
    """Semi-discrete right-hand side ``-(F_{i+1/2} - F_{i-1/2})/dx`` (+ nothing else)."""
    if kind == "advection":
        uL, uR = _interface_states(u, limiter)
        F = jnp.maximum(p["beta"], 0.0) * uL + jnp.minimum(p["beta"], 0.0) * uR
    elif kind == "burgers":
        uL, uR = _interface_states(u, limiter)
        a = jnp.maximum(jnp.abs(uL), jnp.abs(uR))
        F = 0.25 * (uL * uL + uR * uR) - 0.5 * a * (uR - uL)
        F = F - p["diff"] * (jnp.roll(u, -1, axis=-1) - u) * inv_dx
    else:  # pure diffusion part of diffusion-reaction
        F = -p["diff"] * (jnp.roll(u, -1, axis=-1) - u) * inv_dx
    return -(F - jnp.roll(F, 1, axis=-1)) * inv_dx


def _ssprk3(u, dt, p, inv_dx, kind: str, limiter: str):
    L = partial(_rhs, p=p, inv_dx=inv_dx, kind=kind, limiter=limiter)
    u1 = u + dt * L(u)
    u2 = 0.75 * u + 0.25 * (u1 + dt * L(u1))
    return u / 3.0 + (2.0 / 3.0) * (u2 + dt * L(u2))


def _logistic(u, rho, h):
    """Exact flow of ``u' = rho u (1 - u)`` over time ``h``."""
    em = jnp.expm1(rho * h)
    return u * (1.0 + em) / (1.0 + u * em)


def _step(u, dt, p, inv_dx, kind: str, limiter: str):
    if kind == "diffusion_reaction":
        u = _logistic(u, p["rho"], 0.5 * dt)
        u = _ssprk3(u, dt, p, inv_dx, kind, limiter)
        return _logistic(u, p["rho"], 0.5 * dt)
    return _ssprk3(u, dt, p, inv_dx, kind, limiter)


@partial(jax.jit, static_argnames=("kind", "limiter"))
def _integrate(u0, p, dts, n_sub, inv_dx, *, kind: str, limiter: str):
    """Frames after each output interval; ``dts`` (T-1,) the sub-step of each interval.

    Only shapes, ``kind`` and ``limiter`` are static: ``n_sub``, the step sizes and the
    parameters are traced, so new values do not recompile.
    """

    def interval(u, dt):
        u = jax.lax.fori_loop(0, n_sub, lambda _, v: _step(v, dt, p, inv_dx, kind, limiter), u)
        return u, u

    _, frames = jax.lax.scan(interval, u0, dts)
    return jnp.concatenate([u0[None], frames], axis=0)  # (T, B, N)


# ----------------------------------------------------------------------------------------------
# Public solvers
# ----------------------------------------------------------------------------------------------


def solve_advection(
    u0: ArrayLike,
    beta: float | ArrayLike,
    t_out: ArrayLike,
    *,
    cfl: float = DEFAULT_CFL,
    limiter: str = "mc",
    dtype: str = "float64",
) -> PDE1DSolution:
    r"""Linear advection :math:`u_t + \beta u_x = 0` on the periodic unit interval.

    Exact solution :math:`u(x, t) = u_0(x - \beta t)`. MUSCL reconstruction with the exact
    upwind flux, SSP-RK3, :math:`\Delta t \le \mathrm{cfl}\,\Delta x/\max|\beta|` (see the
    module docstring). Second order in space for smooth data.

    Parameters
    ----------
    u0 : array, shape (B, N) or (N,)
        Initial cell values (finite), ``N >= 8``.
    beta : float or array of shape (B,)
        Advection speed(s), finite (any sign; PDEBench uses ``beta >= 0``).
    t_out : array, shape (T,)
        Output times: ``t_out[0] = 0``, strictly increasing, finite, ``T >= 2``
        (e.g. ``np.linspace(0, 2, 201)``).
    cfl : float, default 0.4
        Courant number, ``0 < cfl <= 1``.
    limiter : {"mc", "minmod", "vanleer"}, default "mc"
        Slope limiter of the MUSCL reconstruction.
    dtype : {"float64", "float32"}, default "float64"
        Precision of the computation and of ``u``.

    Returns
    -------
    PDE1DSolution
        ``x (N,)``, ``t (T,)``, ``u (B, T, N)`` (``(T, N)`` for ``u0`` of shape ``(N,)``),
        ``n_substeps``.

    Raises
    ------
    ValueError
        On a malformed or non-finite ``u0``, ``N < 8``, a non-finite or wrongly shaped
        ``beta``, bad ``t_out``, ``cfl``, ``limiter`` or ``dtype``, or a non-finite result.
    """
    u, squeeze = _check_u0(u0)
    B, N = u.shape
    p = {"beta": _check_param(beta, "beta", B, minimum=None)}
    a_max = float(np.max(np.abs(p["beta"])))
    return _solve(u, squeeze, p, t_out, a_max, 0.0, "advection", cfl, limiter, dtype)


def solve_burgers(
    u0: ArrayLike,
    nu: float | ArrayLike,
    t_out: ArrayLike,
    *,
    cfl: float = DEFAULT_CFL,
    limiter: str = "mc",
    dtype: str = "float64",
) -> PDE1DSolution:
    r"""Viscous Burgers :math:`u_t + (u^2/2)_x = (\nu/\pi) u_{xx}` (PDEBench convention).

    MUSCL + Rusanov flux for the convective part, central diffusion flux, SSP-RK3, with
    :math:`\Delta t = \mathrm{cfl}/(\max|u_0|/\Delta x + 2(\nu/\pi)/\Delta x^2)` (the maximum
    principle keeps :math:`|u| \le \max|u_0|`). Second order in space for smooth solutions.

    Parameters
    ----------
    u0 : array, shape (B, N) or (N,)
        Initial cell values (finite), ``N >= 8``.
    nu : float or array of shape (B,)
        Viscosity parameter, ``nu > 0``; the diffusivity is ``nu / pi``.
    t_out : array, shape (T,)
        Output times (``t_out[0] = 0``, strictly increasing).
    cfl, limiter, dtype
        As in :func:`solve_advection`.

    Returns
    -------
    PDE1DSolution

    Raises
    ------
    ValueError
        As in :func:`solve_advection`; also if any ``nu <= 0``.
    """
    u, squeeze = _check_u0(u0)
    B, N = u.shape
    nu = _check_param(nu, "nu", B, minimum=0.0, strict=True)
    p = {"diff": nu / np.pi}
    a_max = float(np.max(np.abs(u)))
    d_max = float(np.max(p["diff"]))
    return _solve(u, squeeze, p, t_out, a_max, d_max, "burgers", cfl, limiter, dtype)


def solve_diffusion_reaction(
    u0: ArrayLike,
    nu: float | ArrayLike,
    rho: float | ArrayLike,
    t_out: ArrayLike,
    *,
    cfl: float = DEFAULT_CFL,
    dtype: str = "float64",
) -> PDE1DSolution:
    r"""Diffusion-reaction :math:`u_t = \nu u_{xx} + \rho u(1 - u)` (Fisher-KPP).

    Strang splitting: exact logistic half step, one SSP-RK3 step of central-difference
    diffusion, exact logistic half step; :math:`\Delta t = \mathrm{cfl}\,\Delta x^2/(2\nu)`.
    Second order in space and time; spatially uniform states follow the exact logistic
    solution :math:`u(t) = c e^{\rho t}/(1 - c + c e^{\rho t})` up to round-off. Initial
    values in ``[0, 1]`` stay there (use ``random_initial_condition(..., unit_interval=True)``).

    Parameters
    ----------
    u0 : array, shape (B, N) or (N,)
        Initial cell values (finite), ``N >= 8``, normally in ``[0, 1]``.
    nu : float or array of shape (B,)
        Diffusivity, ``nu >= 0``.
    rho : float or array of shape (B,)
        Reaction rate, ``rho >= 0``.
    t_out : array, shape (T,)
        Output times (``t_out[0] = 0``, strictly increasing).
    cfl, dtype
        As in :func:`solve_advection`.

    Returns
    -------
    PDE1DSolution

    Raises
    ------
    ValueError
        As in :func:`solve_advection`; also if any ``nu`` or ``rho`` is negative.
    """
    u, squeeze = _check_u0(u0)
    B, N = u.shape
    p = {
        "diff": _check_param(nu, "nu", B, minimum=0.0),
        "rho": _check_param(rho, "rho", B, minimum=0.0),
    }
    d_max = float(np.max(p["diff"]))
    return _solve(u, squeeze, p, t_out, 0.0, d_max, "diffusion_reaction", cfl, "mc", dtype)


def _solve(u, squeeze, p, t_out, a_max, d_max, kind, cfl, limiter, dtype) -> PDE1DSolution:
    B, N = u.shape
    t = _check_t_out(t_out)
    cfl = _check_cfl(cfl)
    if limiter not in _LIMITERS:
        raise ValueError(f"limiter must be one of {_LIMITERS}, got {limiter!r}")
    np_dtype = check_dtype(dtype)
    dx = 1.0 / N
    rate = a_max / dx + 2.0 * d_max / dx**2  # inverse of the explicit stability limit
    intervals = np.diff(t)
    n_sub = max(1, math.ceil(float(intervals.max()) * rate / cfl * (1.0 - 1e-12)))
    dts = intervals / n_sub

    with jax.enable_x64(np_dtype == np.float64):
        jd = jnp.dtype(np_dtype)
        chunks = []
        for start in range(0, B, CHUNK):
            u_chunk = u[start:start + CHUNK]
            p_chunk = {k: v[start:start + CHUNK] for k, v in p.items()}
            n_real = len(u_chunk)
            if B > CHUNK and n_real < CHUNK:  # pad the last chunk: one compiled shape
                u_chunk = np.concatenate([u_chunk, np.repeat(u_chunk[-1:], CHUNK - n_real, 0)])
                p_chunk = {k: np.concatenate([v, np.repeat(v[-1:], CHUNK - n_real, 0)])
                           for k, v in p_chunk.items()}
            frames = _integrate(
                jnp.asarray(u_chunk, jd),
                {k: jnp.asarray(v.reshape(-1, 1), jd) for k, v in p_chunk.items()},
                jnp.asarray(dts, jd),
                jnp.asarray(n_sub, jnp.int32),
                jnp.asarray(float(N), jd),
                kind=kind,
                limiter=limiter,
            )
            chunks.append(np.asarray(jax.device_get(frames))[:, :n_real])
        frames = np.concatenate(chunks, axis=1)
    out = np.ascontiguousarray(np.swapaxes(frames, 0, 1))  # (B, T, N)
    if not np.all(np.isfinite(out)):
        bad = np.flatnonzero(~np.isfinite(out).all(axis=(1, 2)))
        raise ValueError(
            f"{kind} solution became non-finite for {bad.size} sample(s) (first: "
            f"{bad[:5].tolist()}) with {n_sub} sub-steps per output interval; lower cfl "
            f"(now {cfl}) or check the inputs"
        )
    return PDE1DSolution(cell_centers(N), t, out[0] if squeeze else out, n_sub)


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------


def _check_u0(u0) -> tuple[np.ndarray, bool]:
    try:
        u = np.asarray(u0, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"u0 must be a real array of shape (B, N) or (N,), got {u0!r}") from None
    if u.ndim not in (1, 2):
        raise ValueError(f"u0 must have shape (B, N) or (N,), got shape {u.shape}")
    squeeze = u.ndim == 1
    u = u.reshape(1, -1) if squeeze else u
    if u.shape[0] < 1:
        raise ValueError(f"u0 must hold at least one sample, got shape {u.shape}")
    if u.shape[1] < 8:
        raise ValueError(f"u0 must have N >= 8 cells (last axis), got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        bad = np.flatnonzero(~np.isfinite(u).all(axis=1))
        raise ValueError(f"u0 contains non-finite values in sample(s) {bad[:5].tolist()}")
    return u, squeeze


def _check_param(v, name: str, B: int, minimum: float | None, strict: bool = False):
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a float or an array of shape ({B},), got {v!r}") from None
    if a.ndim == 0:
        a = np.full(B, float(a))
    if a.shape != (B,):
        raise ValueError(
            f"{name} must be a float or an array of shape ({B},) (one value per sample of u0), "
            f"got shape {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite value(s): {a}")
    if minimum is not None:
        bad = a <= minimum if strict else a < minimum
        if np.any(bad):
            rel = ">" if strict else ">="
            raise ValueError(
                f"{name} must be {rel} {minimum} for every sample, got {a[bad][:5].tolist()} "
                f"(sample(s) {np.flatnonzero(bad)[:5].tolist()})"
            )
    return a


def _check_t_out(t_out) -> np.ndarray:
    try:
        t = np.asarray(t_out, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"t_out must be a 1D array of times, got {t_out!r}") from None
    if t.ndim != 1 or t.size < 2:
        raise ValueError(
            f"t_out must be a 1D array of at least 2 times starting at 0 (e.g. "
            f"np.linspace(0, T, n_frames)), got shape {t.shape}"
        )
    if not np.all(np.isfinite(t)):
        raise ValueError("t_out contains non-finite values")
    if t[0] != 0.0:
        raise ValueError(f"t_out must start at 0 (the initial condition), got t_out[0] = {t[0]}")
    if np.any(np.diff(t) <= 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise ValueError(
            f"t_out must be strictly increasing, got t_out[{i}] = {t[i]} >= "
            f"t_out[{i + 1}] = {t[i + 1]}"
        )
    return t


def _check_cfl(cfl) -> float:
    try:
        c = float(cfl)
    except (TypeError, ValueError):
        raise ValueError(f"cfl must be a float in (0, 1], got {cfl!r}") from None
    if not (math.isfinite(c) and 0.0 < c <= 1.0):
        raise ValueError(f"cfl must be in (0, 1] (0.4 is a safe default), got {c}")
    return c
