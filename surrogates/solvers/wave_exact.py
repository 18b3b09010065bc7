r"""Exact solutions of the acoustic wave equation for validating :mod:`surrogates.solvers.wave`.

* :func:`free_field_pulse_3d`: the Gaussian pulse released at rest in free 3D space (closed form).
* :func:`rigid_room_modal`: the same pulse in a rigid rectangular room (cosine-mode series).
"""

from __future__ import annotations

import math

import numpy as np

from surrogates.solvers.wave import Room

__all__ = ["free_field_pulse_3d", "rigid_room_modal"]


def free_field_pulse_3d(r, t, *, c=343.0, width=0.2, amplitude=1.0) -> np.ndarray:
    r"""Exact free-space pressure of the 3D Gaussian pulse with zero initial velocity.

    .. math::

        p(r, t) = \frac{(r - ct) f(r - ct) + (r + ct) f(r + ct)}{2r},
        \qquad f(u) = A e^{-u^2/(2\sigma^2)},

    (d'Alembert for the radial function :math:`rp`), with the limit
    :math:`p(0, t) = f(ct)(1 - (ct)^2/\sigma^2)` used for :math:`r < 10^{-4}\sigma`.

    Parameters
    ----------
    r : array_like
        Distance from the source (m), broadcast against ``t``.
    t : array_like
        Time (s).
    c, width, amplitude : float
        Speed of sound (m/s), :math:`\sigma` (m), :math:`A` (Pa).
    """
    r = np.asarray(r, dtype=np.float64)
    ct = c * np.asarray(t, dtype=np.float64)
    r, ct = np.broadcast_arrays(r, ct)

    def f(u):
        return amplitude * np.exp(-(u**2) / (2.0 * width**2))

    small = r < 1e-4 * width
    rs = np.where(small, 1.0, r)
    p = ((rs - ct) * f(rs - ct) + (rs + ct) * f(rs + ct)) / (2.0 * rs)
    p0 = f(ct) * (1.0 - ct**2 / width**2)
    return np.where(small, p0, p)


def rigid_room_modal(points, t, room: Room, source, width=0.2, amplitude=1.0,
                     n_modes=None) -> np.ndarray:
    r"""Cosine-series (modal) solution for the Gaussian pulse in a rigid rectangular room.

    .. math::

        p(\mathbf x, t) = \sum_{\mathbf m} a_{\mathbf m}\cos(\omega_{\mathbf m} t)
            \prod_{j} \cos(k_{m_j} x_j),\qquad k_m = \frac{\pi m}{L_j},\quad
            \omega_{\mathbf m} = c\,|\mathbf k_{\mathbf m}|,

        a_{\mathbf m} = A\prod_j \frac{\epsilon_{m_j}}{L_j}\sqrt{2\pi}\,\sigma\,
            e^{-k_{m_j}^2\sigma^2/2}\cos(k_{m_j}s_j),\qquad \epsilon_0 = 1,\ \epsilon_{m>0}=2.

    These are the exact cosine coefficients of the Gaussian *plus its mirror images* in the
    walls (the even periodic extension), so the result equals the room solution of the
    Gaussian itself up to :math:`O(A e^{-d^2/(2\sigma^2)})`, ``d`` the smallest
    source-to-wall distance. Obstacles and absorption are ignored.

    Parameters
    ----------
    points : array_like, shape (..., d)
        Positions (m).
    t : float or array_like, shape (n_t,)
        Time(s) (s).
    room : Room
    source : array_like, shape (d,)
    width, amplitude : float
        :math:`\sigma` (m), :math:`A` (Pa).
    n_modes : int or tuple of int, optional
        Modes ``m = 0 .. n_modes - 1`` per axis; default enough for
        :math:`k\sigma \le 9` (the Gaussian's spectrum below 1e-17 relative).

    Returns
    -------
    ndarray, shape (...) for scalar ``t`` or (n_t, ...)
    """
    x = np.asarray(points, dtype=np.float64)
    s = np.asarray(source, dtype=np.float64)
    d = room.dim
    if x.shape[-1] != d or s.shape != (d,):
        raise ValueError(f"points (..., {d}) and source ({d},) expected, got {x.shape} and "
                         f"{s.shape}")
    if n_modes is None:
        n_modes = tuple(int(math.ceil(9.0 / width * L / math.pi)) + 1 for L in room.size)
    elif np.ndim(n_modes) == 0:
        n_modes = (int(n_modes),) * d
    lead = x.shape[:-1]
    xf = x.reshape(-1, d)
    phis, coefs, ks = [], [], []
    for j, (L, M) in enumerate(zip(room.size, n_modes, strict=True)):
        m = np.arange(M)
        k = np.pi * m / L
        eps = np.where(m == 0, 1.0, 2.0)
        coefs.append(eps / L * np.sqrt(2 * np.pi) * width * np.exp(-(k * width) ** 2 / 2)
                     * np.cos(k * s[j]))
        phis.append(np.cos(np.outer(xf[:, j], k)))
        ks.append(k)
    kk = np.meshgrid(*ks, indexing="ij")
    omega = room.c * np.sqrt(sum(k**2 for k in kk))
    a = amplitude * np.einsum(*[v for j in range(d) for v in (coefs[j], [j])], list(range(d)))
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    out = np.empty((len(tt), len(xf)))
    letters = "ijk"[:d]
    for n, tn in enumerate(tt):
        am = a * np.cos(omega * tn)
        spec = ",".join(f"p{c_}" for c_ in letters) + f",{letters}->p"
        out[n] = np.einsum(spec, *phis, am, optimize=True)
    out = out.reshape(len(tt), *lead)
    return out[0] if np.ndim(t) == 0 else out
