r"""The discrete operator of :mod:`surrogates.solvers.wave`: the rigid Laplacian of order 2 or 4
with mirrored obstacle faces, the impedance-wall damping, the compiled leapfrog time loop, and
the discrete energy that the scheme conserves.

The Laplacian works on NumPy and ``jax.numpy`` arrays (``xp``), so the energy check runs the
same stencil as the solver. The equations are in the docstring of :mod:`surrogates.solvers.wave`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.solvers.checks import check_positive
from surrogates.solvers.wave_room import Room, impedance_from_absorption

__all__ = ["acoustic_energy"]

# ----------------------------------------------------------------------------------------------
# Discrete operator (works with numpy and jax.numpy)
# ----------------------------------------------------------------------------------------------


def _take(a, ax: int, start: int, n: int):
    return a[(slice(None),) * ax + (slice(start, start + n),)]


def _reflect_pad(a, ax: int, g: int, xp):
    pad = [(0, 0)] * a.ndim
    pad[ax] = (g, g)
    return xp.pad(a, pad, mode="reflect")


def _solid_shifts(solid: np.ndarray, order: int) -> tuple:
    """Per axis, the solid mask at offsets (-1, +1, -2, +2) (walls: even reflection)."""
    g = order // 2
    out = []
    for ax in range(solid.ndim):
        n = solid.shape[ax]
        sp = _reflect_pad(solid, ax, g, np)
        offs = (-1, 1, -2, 2) if order == 4 else (-1, 1)
        out.append(tuple(_take(sp, ax, g + k, n) for k in offs))
    return tuple(out)


def _laplacian(p, order: int, shifts, fluid, xp):
    """``h^2`` times the discrete rigid Laplacian of ``p`` (B, *shape), see the module doc."""
    g = order // 2
    total = 0.0
    for ax in range(1, p.ndim):
        n = p.shape[ax]
        pp = _reflect_pad(p, ax, g, xp)
        m1, p1 = _take(pp, ax, g - 1, n), _take(pp, ax, g + 1, n)
        if shifts is not None:
            s = shifts[ax - 1]
            q_m1 = xp.where(s[0], p, m1)
            q_p1 = xp.where(s[1], p, p1)
        else:
            q_m1, q_p1 = m1, p1
        if order == 2:
            total = total + (q_m1 + q_p1 - 2.0 * p)
            continue
        m2, p2 = _take(pp, ax, g - 2, n), _take(pp, ax, g + 2, n)
        if shifts is not None:
            q_m2 = xp.where(s[0], q_p1, xp.where(s[2], m1, m2))
            q_p2 = xp.where(s[1], q_m1, xp.where(s[3], p1, p2))
        else:
            q_m2, q_p2 = m2, p2
        total = total + (16.0 * (q_m1 + q_p1) - (q_m2 + q_p2) - 30.0 * p) / 12.0
    if fluid is not None:
        total = total * fluid
    return total


def _beta(room: Room, lam: float) -> np.ndarray | None:
    """``sum over walls through each node of lam / xi_w``; None when all walls are rigid."""
    inv_xi = impedance_from_absorption(room.absorption)
    if not np.any(inv_xi > 0):
        return None
    beta = np.zeros(room.shape)
    for ax, n in enumerate(room.shape):
        for side, idx in enumerate((0, n - 1)):
            sl = (slice(None),) * ax + (idx,)
            beta[sl] += lam * inv_xi[2 * ax + side]
    return beta


@partial(jax.jit, static_argnames=("order", "save_field"))
def _integrate(p0, lam2, a, b, shifts, fluid, n_sub, n_intervals_arr, rec_idx, rec_w, *,
               order: int, save_field: bool):
    """Frames (n_t, B, ...) and receiver traces (n_t, B, R) of the leapfrog scheme."""

    def lap(p):
        return _laplacian(p, order, shifts, fluid, jnp)

    def step(_, carry):
        p_prev, p = carry
        return p, a * (2.0 * p + lam2 * lap(p)) - b * p_prev

    def observe(p):
        f = p if save_field else None
        if rec_idx is None:
            return f, None
        flat = p.reshape(p.shape[0], -1)
        return f, jnp.einsum("brk,rk->br", flat[:, rec_idx], rec_w)

    def interval(carry, _):
        carry = jax.lax.fori_loop(0, n_sub, step, carry)
        return carry, observe(carry[1])

    p_m1 = p0 + 0.5 * lam2 * lap(p0)  # p^{-1} = p^{1}: zero initial velocity
    _, (fields, recs) = jax.lax.scan(interval, (p_m1, p0), n_intervals_arr)
    f0, r0 = observe(p0)
    if save_field:
        fields = jnp.concatenate([f0[None], fields], axis=0)
    if rec_idx is not None:
        recs = jnp.concatenate([r0[None], recs], axis=0)
    return fields, recs

# ----------------------------------------------------------------------------------------------
# Energy
# ----------------------------------------------------------------------------------------------


def acoustic_energy(p_prev, p_next, room: Room, dt: float, *, order: int = 2):
    r"""Discrete wave energy between two consecutive internal steps (conserved by the scheme).

    .. math::

        E^{n+1/2} = \sum_i w_i h^d \Big[\underbrace{\frac{1}{2\rho c^2}
            \Big(\frac{p_i^{n+1} - p_i^n}{\Delta t}\Big)^2}_{\text{kinetic}}
            \underbrace{- \frac{1}{2\rho h^2}\,p_i^{n+1}(\mathcal L p^n)_i}_{\text{potential}}
        \Big],

    the discrete form of :math:`\frac{1}{2\rho}\int(c^{-2}p_t^2 + |\nabla p|^2)\,dV`
    (units J/s^2: the acoustic energy of the field whose velocity potential is :math:`p/\rho`;
    "kinetic" is the time-derivative term, "potential" the gradient term). ``w_i`` is 1/2 per
    wall the node lies on (the trapezoidal weights that make :math:`\mathcal L` symmetric)
    and 0 at solid nodes. For the leapfrog scheme of :func:`simulate` it is exactly
    conserved with rigid walls (order 2 with any obstacles; order 4 without obstacles), it
    decreases by
    :math:`\sum_i w_i h^d \beta_i (p^{n+1}_i - p^{n-1}_i)^2/(2\rho c^2\Delta t^2)` from
    step ``n - 1/2`` to ``n + 1/2`` with impedance walls, and it is positive below the CFL
    limit.

    Parameters
    ----------
    p_prev, p_next : array_like, shape (..., *room.shape)
        Pressure at two consecutive internal steps ``n`` and ``n + 1`` (Pa).
    room : Room
    dt : float
        The internal step (``WaveSolution.dt``), s.
    order : {2, 4}, default 2
        The spatial order the fields were computed with.

    Returns
    -------
    float or ndarray, shape (...)
    """
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    dt = check_positive(dt, "dt")
    p0 = np.asarray(p_prev, dtype=np.float64)
    p1 = np.asarray(p_next, dtype=np.float64)
    if p0.shape != p1.shape or p0.shape[-room.dim:] != room.shape:
        raise ValueError(f"p_prev {p0.shape} and p_next {p1.shape} must have equal shapes "
                         f"ending in the room shape {room.shape}")
    lead = p0.shape[:-room.dim]
    p0 = p0.reshape(-1, *room.shape)
    p1 = p1.reshape(-1, *room.shape)
    w = np.ones(room.shape)
    for ax, n in enumerate(room.shape):
        for idx in (0, n - 1):
            w[(slice(None),) * ax + (idx,)] *= 0.5
    shifts = fluid = None
    if room.obstacles is not None:
        fluid = (~room.obstacles).astype(np.float64)
        shifts = _solid_shifts(room.obstacles, order)
        w = w * fluid
    h, c, rho = room.spacing, room.c, room.rho
    lap = _laplacian(p0, order, shifts, fluid, np)
    axes = tuple(range(1, room.dim + 1))
    kin = np.sum(w * ((p1 - p0) / dt) ** 2, axis=axes) / (2.0 * rho * c**2)
    pot = -np.sum(w * p1 * lap, axis=axes) / (2.0 * rho * h**2)
    e = (kin + pot) * h**room.dim
    return float(e[0]) if lead == () else e.reshape(lead)
