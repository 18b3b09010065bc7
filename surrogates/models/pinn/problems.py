r"""Benchmark PDE problems with exact or high-accuracy reference solutions, for physics-informed
models (:mod:`surrogates.models.pinn`).

* :func:`helmholtz` -- 2D Helmholtz :math:`\Delta u + k^2 u = q` on :math:`[-1, 1]^2`.
* :func:`klein_gordon` -- :math:`u_{tt} - u_{xx} + u^3 = f` on :math:`[0, 1]^2` (t, x).
* :func:`allen_cahn` -- :math:`u_t - 10^{-4}u_{xx} + 5u^3 - 5u = 0`, periodic in x, reference
  from the spectral solver :mod:`surrogates.solvers.allen_cahn`.
* :func:`flow_mixing` -- 2D advection by a steady vortex (exact solution), (t, x, y).

:data:`PROBLEMS` maps names to the factories (the command line uses it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.models.pinn.losses import boundary_sampler, diff, face_sampler
from surrogates.models.pinn.spec import Condition, Problem, _check_points

__all__ = ["PROBLEMS", "allen_cahn", "flow_mixing", "get_problem", "helmholtz", "klein_gordon"]


def _numpy_reference(exact: Callable) -> Callable:
    """``reference(points)`` evaluating a JAX exact solution in float64."""

    def reference(points):
        pts = _check_points(points, None)
        with jax.enable_x64(True):
            return np.asarray(jax.vmap(exact)(jnp.asarray(pts, jnp.float64)), np.float64)

    return reference


# ----------------------------------------------------------------------------------------------
# Problems
# ----------------------------------------------------------------------------------------------


def helmholtz(a1: float = 4.0, a2: float = 1.0, k: float = 1.0,
              residual_scale: float | None = None) -> Problem:
    r"""2D Helmholtz :math:`\Delta u + k^2 u = q` on :math:`[-1, 1]^2`, coordinates ``(x, y)``.

    Exact solution :math:`u = \sin(a_1\pi x)\sin(a_2\pi y)` with source
    :math:`q = (k^2 - (a_1^2 + a_2^2)\pi^2)\,u`; Dirichlet :math:`u = 0` on the boundary (for
    integer :math:`a_1, a_2`). ``helmholtz(4, 1)`` is the standard benchmark (Wang, Teng &
    Perdikaris 2021; the PIG paper writes it as :math:`\sin(\pi x)\sin(4\pi y)`, the same
    problem with x and y swapped), ``helmholtz(10, 10)`` the hard one.

    The residual is divided by ``residual_scale``
    (:attr:`surrogates.models.pinn.Problem.residual_scale`),
    by default the source amplitude :math:`s_r = |k^2 - (a_1^2 + a_2^2)\pi^2|` (1 if that is
    0), so that the residual and boundary terms are O(1) for any wavenumbers (1973 for
    :math:`a_1 = a_2 = 10`, 167 for (4, 1)).
    """
    for name, v in (("a1", a1), ("a2", a2), ("k", k)):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    lo, hi = (-1.0, -1.0), (1.0, 1.0)
    lap = -(a1**2 + a2**2) * math.pi**2
    if residual_scale is None:
        residual_scale = abs(k**2 + lap) or 1.0

    def exact(p):
        return jnp.sin(a1 * jnp.pi * p[0]) * jnp.sin(a2 * jnp.pi * p[1])

    def residual(u, p):
        q = (k**2 + lap) * jnp.sin(a1 * jnp.pi * p[0]) * jnp.sin(a2 * jnp.pi * p[1])
        return diff(u, p, 0, 0) + diff(u, p, 1, 1) + k**2 * u(p) - q

    return Problem(
        name="helmholtz", lower=lo, upper=hi, coords=("x", "y"), residual=residual,
        conditions=(Condition("dirichlet", sampler=boundary_sampler(lo, hi), n_points=512,
                              name="boundary"),),
        reference=_numpy_reference(exact), exact=exact,
        description=f"Helmholtz 2D, u = sin({a1:g} pi x) sin({a2:g} pi y), k = {k:g}",
        residual_scale=residual_scale,
    )


def klein_gordon(alpha: float = -1.0, beta: float = 0.0, gamma: float = 1.0,
                 power: int = 3) -> Problem:
    r"""Nonlinear Klein-Gordon on :math:`(t, x) \in [0, 1]^2`, coordinates ``(t, x)``.

    .. math::

        u_{tt} + \alpha u_{xx} + \beta u + \gamma u^k = f, \qquad
        \alpha = -1,\ \beta = 0,\ \gamma = 1,\ k = 3 \text{ (defaults)},

    i.e. :math:`u_{tt} - u_{xx} + u^3 = f` (Wang, Teng & Perdikaris 2021). Manufactured exact
    solution :math:`u = x\cos(5\pi t) + (xt)^3`, so

    .. math::

        f = -25\pi^2 x\cos(5\pi t) + 6x^3 t + \alpha\,6 x t^3 + \beta u + \gamma u^k;

    initial conditions :math:`u(0, x) = x`, :math:`u_t(0, x) = 0`, Dirichlet
    :math:`u(t, 0) = 0`, :math:`u(t, 1) = \cos(5\pi t) + t^3` (all from the exact solution).
    """
    for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    if isinstance(power, bool) or not isinstance(power, int) or power < 1:
        raise ValueError(f"power must be a positive integer, got {power!r}")
    lo, hi = (0.0, 0.0), (1.0, 1.0)

    def exact(p):
        t, x = p[0], p[1]
        return x * jnp.cos(5 * jnp.pi * t) + (x * t) ** 3

    def forcing(p):
        t, x = p[0], p[1]
        u = exact(p)
        u_tt = -25 * jnp.pi**2 * x * jnp.cos(5 * jnp.pi * t) + 6 * x**3 * t
        u_xx = 6 * x * t**3
        return u_tt + alpha * u_xx + beta * u + gamma * u**power

    def residual(u, p):
        v = u(p)
        return (diff(u, p, 0, 0) + alpha * diff(u, p, 1, 1) + beta * v + gamma * v**power
                - forcing(p))

    return Problem(
        name="klein_gordon", lower=lo, upper=hi, coords=("t", "x"), residual=residual,
        conditions=(
            Condition("initial", sampler=face_sampler(lo, hi, 0), target=exact, name="initial"),
            Condition("initial_velocity", sampler=face_sampler(lo, hi, 0), axis=0,
                      name="initial_velocity"),
            Condition("dirichlet", sampler=boundary_sampler(lo, hi, axes=(1,)), target=exact,
                      name="boundary"),
        ),
        reference=_numpy_reference(exact), exact=exact,
        description="Klein-Gordon u_tt - u_xx + u^3 = f, u = x cos(5 pi t) + (x t)^3",
    )


def allen_cahn(eps: float = 1e-4, reaction: float = 5.0, *, N: int = 2048,
               dt: float = 1e-3, n_frames: int = 1001) -> Problem:
    r"""1D Allen-Cahn :math:`u_t - \varepsilon u_{xx} + r u^3 - r u = 0`, coordinates ``(t, x)``.

    :math:`t \in [0, 1]`, :math:`x \in [-1, 1]`, :math:`\varepsilon = 10^{-4}`, :math:`r = 5`,
    :math:`u(0, x) = x^2\cos(\pi x)`, periodic boundary :math:`u(t, -1) = u(t, 1)`,
    :math:`u_x(t, -1) = u_x(t, 1)` (Raissi et al. 2019). The reference is
    :func:`surrogates.solvers.allen_cahn.solve` (``N`` points, step ``dt``, ``n_frames``
    output times), computed on first use and cached; between its frames it is interpolated by
    a cubic spline in t and exactly (trigonometric interpolation) in x.
    """
    from scipy.interpolate import CubicSpline

    from surrogates.solvers import allen_cahn as ac

    lo, hi = (0.0, -1.0), (1.0, 1.0)
    cache: dict = {}

    def spline():
        if "s" not in cache:
            sol = ac.solve(None, np.linspace(0.0, 1.0, n_frames), N=N, dt=dt, eps=eps,
                           reaction=reaction)
            cache["s"] = CubicSpline(sol.t, np.fft.rfft(sol.u, axis=1).real, axis=0), \
                CubicSpline(sol.t, np.fft.rfft(sol.u, axis=1).imag, axis=0)
        return cache["s"]

    def reference(points):
        pts = _check_points(points, 2)
        sr, si = spline()
        m = np.arange(N // 2 + 1)
        w = np.full(m.shape, 2.0)
        w[0] = 1.0
        w[-1] = 1.0  # Nyquist mode: real coefficient, counted once
        out = np.empty(pts.shape[0])
        for s in range(0, pts.shape[0], 2048):
            t, x = pts[s:s + 2048, 0], pts[s:s + 2048, 1]
            c = sr(t) + 1j * si(t)  # (n, N/2 + 1)
            phase = np.exp(1j * np.pi * np.outer(x + 1.0, m))
            out[s:s + 2048] = np.real(c * phase) @ w / N
        return out

    def u0(p):
        return p[1] ** 2 * jnp.cos(jnp.pi * p[1])

    def residual(u, p):
        v = u(p)
        return diff(u, p, 0) - eps * diff(u, p, 1, 1) + reaction * (v**3 - v)

    return Problem(
        name="allen_cahn", lower=lo, upper=hi, coords=("t", "x"), residual=residual,
        conditions=(
            Condition("initial", sampler=face_sampler(lo, hi, 0), target=u0, name="initial"),
            Condition("periodic", sampler=face_sampler(lo, hi, 1), axis=1, period=2.0,
                      name="periodic"),
        ),
        reference=reference,
        description=f"Allen-Cahn u_t - {eps:g} u_xx + {reaction:g}(u^3 - u) = 0, periodic",
    )


#: Peak tangential speed of the flow-mixing vortex, max_r sech^2(r) tanh(r) (= 0.3849...).
V_TMAX = 0.385


def flow_mixing(t_max: float = 4.0, half_width: float = 4.0, v_tmax: float = V_TMAX) -> Problem:
    r"""2D flow mixing :math:`u_t + a u_x + b u_y = 0`, coordinates ``(t, x, y)``.

    On :math:`(t, x, y) \in [0, 4]\times[-4, 4]^2` with the steady vortex
    :math:`v_t(r) = \mathrm{sech}^2(r)\tanh(r)`, :math:`r = \sqrt{x^2 + y^2}`,
    :math:`a = -(v_t/v_{t,\max})(y/r)`, :math:`b = (v_t/v_{t,\max})(x/r)`,
    :math:`v_{t,\max} = 0.385`, the exact solution is

    .. math::

        u = -\tanh\!\Big(\frac{y}{2}\cos\omega t - \frac{x}{2}\sin\omega t\Big), \qquad
        \omega = \frac{v_t}{r\,v_{t,\max}}:

    the velocity is a rotation with angular speed :math:`\omega(r)`, :math:`(a, b) =
    \omega(-y, x)`, and :math:`u` is the initial profile :math:`-\tanh(y/2)` rotated by
    :math:`\omega t` (the radial :math:`\omega'` terms cancel). :math:`\omega` is evaluated as
    :math:`\mathrm{sech}^2(r)\,(\tanh r / r)/v_{t,\max}` with a series near :math:`r = 0`, so
    the velocity and its derivatives are finite at the centre. Conditions: the initial profile
    and Dirichlet data from the exact solution on the four sides.
    """
    for name, v in (("t_max", t_max), ("half_width", half_width), ("v_tmax", v_tmax)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > 0, got {v!r}")
    lo, hi = (0.0, -half_width, -half_width), (t_max, half_width, half_width)

    def omega(x, y):
        r2 = x * x + y * y
        small = r2 < 1e-6
        r = jnp.sqrt(jnp.where(small, 1.0, r2))
        tanh_over_r = jnp.where(small, 1.0 - r2 / 3.0, jnp.tanh(r) / r)
        sech2 = jnp.where(small, 1.0 - r2, 1.0 / jnp.cosh(r) ** 2)
        return sech2 * tanh_over_r / v_tmax

    def exact(p):
        t, x, y = p[0], p[1], p[2]
        wt = omega(x, y) * t
        return -jnp.tanh(0.5 * y * jnp.cos(wt) - 0.5 * x * jnp.sin(wt))

    def residual(u, p):
        w = omega(p[1], p[2])
        return diff(u, p, 0) - w * p[2] * diff(u, p, 1) + w * p[1] * diff(u, p, 2)

    return Problem(
        name="flow_mixing", lower=lo, upper=hi, coords=("t", "x", "y"), residual=residual,
        conditions=(
            Condition("initial", sampler=face_sampler(lo, hi, 0), target=exact, name="initial"),
            Condition("dirichlet", sampler=boundary_sampler(lo, hi, axes=(1, 2)), target=exact,
                      name="boundary"),
        ),
        reference=_numpy_reference(exact), exact=exact,
        description="flow mixing u_t + a u_x + b u_y = 0 (vortex), exact solution",
    )


#: Problem factories by name (for the command line).
PROBLEMS: dict[str, Callable[..., Problem]] = {
    "helmholtz": helmholtz,
    "klein_gordon": klein_gordon,
    "allen_cahn": allen_cahn,
    "flow_mixing": flow_mixing,
}


def get_problem(name: str, **kwargs) -> Problem:
    """``PROBLEMS[name](**kwargs)``; ``ValueError`` naming the known problems otherwise."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; known: {sorted(PROBLEMS)}")
    return PROBLEMS[name](**kwargs)
