r"""The kernels of :mod:`surrogates.solvers.panel`: linear-vortex influence coefficients, the
batched solve for the nodal strengths, loads and boundary layer, the velocity field off the
surface, and the Karman-Tsien compressibility formulas.

The equations are in the docstring of :mod:`surrogates.solvers.panel`. The kernels take
checked, Selig-ordered, float arrays; :func:`surrogates.solvers.panel.solve_airfoils` and
:func:`surrogates.solvers.panel.field_velocity` check the inputs and switch on 64-bit mode.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.solvers.boundary_layer import boundary_layer

__all__ = ["GAMMA_AIR", "TE_EXCLUDE", "critical_cp", "karman_tsien"]

GAMMA_AIR = 1.4
TE_EXCLUDE = 0.01  # last fraction of the chord not marched by the boundary layer

# ----------------------------------------------------------------------------------------------
# Formulas shared with the tests and benchmark
# ----------------------------------------------------------------------------------------------


def karman_tsien(cp0, mach):
    r"""Karman-Tsien corrected :math:`C_p` from the incompressible :math:`C_{p,0}`.

    :math:`C_p = C_{p,0} / (\beta + M^2 C_{p,0} / (2(1 + \beta)))`, :math:`\beta =
    \sqrt{1 - M^2}`. Works on NumPy or JAX arrays.
    """
    beta = (1.0 - mach**2) ** 0.5
    return cp0 / (beta + mach**2 / (1.0 + beta) * cp0 / 2.0)


def critical_cp(mach: float, gamma: float = GAMMA_AIR) -> float:
    r"""Critical pressure coefficient :math:`C_p^*` (local Mach 1) at free-stream ``mach``;
    ``-inf`` at ``mach = 0``."""
    if mach <= 0.0:
        return -np.inf
    g = gamma
    return 2.0 / (g * mach**2) * (((2.0 + (g - 1.0) * mach**2) / (g + 1.0)) ** (g / (g - 1.0))
                                  - 1.0)


# ----------------------------------------------------------------------------------------------
# JAX kernels
# ----------------------------------------------------------------------------------------------


def _influence(px, py, x1, y1, x2, y2, self_mask=None):
    """Velocities (P, N) induced at points ``(px, py)`` (P,) by unit nodal strengths at the
    start (``ua, va``) and end (``ub, vb``) of panels ``(x1, y1) -> (x2, y2)`` (N,);
    ``self_mask`` (P, N) marks a point lying on the panel (outside limit taken). The complex
    formula of the module docstring written out in real arithmetic."""
    dx, dy = x2 - x1, y2 - y1
    ln = jnp.sqrt(dx * dx + dy * dy)
    ex, ey = (dx / ln)[None, :], (dy / ln)[None, :]
    rx, ry = px[:, None] - x1[None, :], py[:, None] - y1[None, :]
    x = rx * ex + ry * ey  # panel frame
    y = ry * ex - rx * ey
    pl = ln[None, :]
    xm = x - pl
    log_r = 0.5 * jnp.log((x * x + y * y) / (xm * xm + y * y))
    ang = jnp.arctan2(-y * pl, x * xm + y * y)
    if self_mask is not None:
        ang = jnp.where(self_mask, jnp.pi, ang)
    qx, qy = x / pl, y / pl
    ar = (1.0 - qx) * log_r + qy * ang + 1.0
    ai = (1.0 - qx) * ang - qy * log_r
    br = qx * log_r - qy * ang - 1.0
    bi = qx * ang + qy * log_r
    c = 1.0 / (2.0 * jnp.pi)
    ua = c * (ex * ai - ey * ar)
    va = c * (ex * ar + ey * ai)
    ub = c * (ex * bi - ey * br)
    vb = c * (ex * br + ey * bi)
    return ua, va, ub, vb


def _geometry(nodes):
    x1, y1, x2, y2 = nodes[:-1, 0], nodes[:-1, 1], nodes[1:, 0], nodes[1:, 1]
    ln = jnp.sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2)
    nx, ny = (y2 - y1) / ln, -(x2 - x1) / ln  # (t_y, -t_x)
    return x1, y1, x2, y2, 0.5 * (x1 + x2), 0.5 * (y1 + y2), ln, nx, ny


def _solve_one(nodes, alphas, mach, re, x_trip, viscous):
    x1, y1, x2, y2, xc, yc, ln, nx, ny = _geometry(nodes)
    npan = ln.shape[0]
    dt = ln.dtype
    eye = jnp.eye(npan, dtype=bool)
    ua, va, ub, vb = _influence(xc, yc, x1, y1, x2, y2, self_mask=eye)
    an = ua * nx[:, None] + va * ny[:, None]
    bn = ub * nx[:, None] + vb * ny[:, None]
    mat = jnp.zeros((npan + 1, npan + 1), dt)
    mat = mat.at[:npan, :npan].add(an).at[:npan, 1:].add(bn)
    mat = mat.at[npan, 0].set(1.0).at[npan, npan].set(1.0)
    ca, sa = jnp.cos(alphas), jnp.sin(alphas)  # (A,)
    vinf_n = ca[None, :] * nx[:, None] + sa[None, :] * ny[:, None]  # (N, A)
    rhs = jnp.concatenate([-vinf_n, jnp.zeros((1, alphas.shape[0]), dt)])
    gam = jnp.linalg.solve(mat, rhs)  # (N+1, A): one factorisation, A right-hand sides
    vt = 0.5 * (gam[:-1] + gam[1:])  # (N, A): surface speed = sheet strength (interior at rest)
    cp0 = 1.0 - vt**2
    cp = karman_tsien(cp0, mach)
    x = nodes[:, 0]
    chord = x.max() - x.min()
    circ = -jnp.sum(ln[:, None] * 0.5 * (gam[:-1] + gam[1:]), axis=0)
    cl_circ = 2.0 * circ / chord
    fx = -jnp.sum(cp * (nx * ln)[:, None], axis=0) / chord
    fy = -jnp.sum(cp * (ny * ln)[:, None], axis=0) / chord
    cl_p = -fx * sa + fy * ca
    cd_p = fx * ca + fy * sa
    xref = x.min() + 0.25 * chord
    yref = 0.5 * (nodes[0, 1] + nodes[-1, 1])
    arm = (xc - xref) * ny - (yc - yref) * nx
    cm = jnp.sum(cp * (ln * arm)[:, None], axis=0) / chord**2
    out = dict(gamma=gam.T, vt=vt.T, cp=cp.T, cp0=cp0.T, cl_circ=cl_circ, cl_p=cl_p, cd_p=cd_p,
               cm=cm, chord=chord)
    if viscous:
        s_nodes = jnp.concatenate([jnp.zeros(1, dt), jnp.cumsum(ln)])
        s_mid = 0.5 * (s_nodes[:-1] + s_nodes[1:])
        x_end = x.max() - TE_EXCLUDE * chord
        bl = jax.vmap(boundary_layer, in_axes=(0, None, None, None, None, None))(
            vt.T, s_mid, xc, x_end, re, x.min() + x_trip * chord)
        th, h, cf, cd_parts, x_tr, lsep, tsep, k = bl
        out.update(theta=th, h=h, cf=cf, cd_parts=cd_parts, x_tr=x_tr, lsep=lsep, tsep=tsep,
                   k=k)
    return out


@partial(jax.jit, static_argnames=("viscous",))
def _solve_batch(nodes, alphas, mach, re, x_trip, viscous):
    return jax.vmap(_solve_one, in_axes=(0, None, None, None, None, None))(
        nodes, alphas, mach, re, x_trip, viscous)


def _field_one(nodes, gam, alphas, pts):
    x1, y1, x2, y2 = _geometry(nodes)[:4]
    ua, va, ub, vb = _influence(pts[:, 0], pts[:, 1], x1, y1, x2, y2)
    u = jnp.cos(alphas)[:, None] + gam[:, :-1] @ ua.T + gam[:, 1:] @ ub.T  # (A, P)
    v = jnp.sin(alphas)[:, None] + gam[:, :-1] @ va.T + gam[:, 1:] @ vb.T
    # ray casting against the closed polygon (closing edge included for a blunt TE)
    zz = jnp.concatenate([nodes, nodes[:1]])
    xa, ya, xb, yb = zz[:-1, 0], zz[:-1, 1], zz[1:, 0], zz[1:, 1]
    px, py = pts[:, 0:1], pts[:, 1:2]
    straddle = (ya[None, :] > py) != (yb[None, :] > py)
    dy = jnp.where(yb == ya, 1.0, yb - ya)
    xcross = xa[None, :] + (py - ya[None, :]) * (xb - xa)[None, :] / dy[None, :]
    inside = (jnp.sum(straddle & (px < xcross), axis=1) % 2) == 1
    u = jnp.where(inside[None, :], jnp.nan, u)
    v = jnp.where(inside[None, :], jnp.nan, v)
    return u, v, inside


@jax.jit
def _field_batch(nodes, gam, alphas, pts):
    return jax.vmap(_field_one, in_axes=(0, 0, None, 0))(nodes, gam, alphas, pts)
