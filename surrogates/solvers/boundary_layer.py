r"""Integral boundary layer on an airfoil's inviscid surface velocity: the viscous drag estimate of
:mod:`surrogates.solvers.panel`.

Viscous drag (chord Reynolds number :math:`Re = V_\infty c/\nu`). The
boundary layer is integrated on the *incompressible inviscid* edge velocity
:math:`U_e = |V_t|` from the stagnation point (the sign change of :math:`V_t`, located by
linear interpolation) along each surface to the TE, without viscous-inviscid interaction:

* laminar, Thwaites [1]_: :math:`\theta^2 = \frac{0.45}{Re\,U_e^6}\int_0^\xi U_e^5\,d\xi`
  (exact for :math:`U_e` piecewise linear), :math:`\lambda = Re\,\theta^2 dU_e/d\xi`, with
  the Cebeci-Bradshaw fits for :math:`H(\lambda)` and :math:`\ell(\lambda)`,
  :math:`c_f = 2\ell/Re_\theta`;
* transition, Michel's criterion [2]_: :math:`Re_\theta > 1.174\,(1 + 22400/Re_\xi)\,
  Re_\xi^{0.46}` with :math:`Re_\xi = Re\,U_e\,\xi`; laminar separation
  (:math:`\lambda < -0.09`) also forces transition (turbulent reattachment assumed; flagged in
  ``laminar_separation``); a trip (``x_transition`` of
  :func:`~surrogates.solvers.panel.solve_airfoils`, chord fraction) forces it where the layer
  is still laminar, 0 giving a turbulent layer from the stagnation point (its first few
  stations, at Reynolds numbers :math:`Re_\theta` of order 10 where Head's closure does not
  hold, can exceed the separation shape factor and set ``separated``; the drag is still within
  10 % of a turbulent flat plate with form factor, see the tests). The turbulent layer starts
  with the laminar :math:`\theta` and :math:`H = 1.4`;
* turbulent, Head's entrainment method [3]_: :math:`d\theta/d\xi = c_f/2 - (H + 2)\,
  (\theta/U_e)\,dU_e/d\xi`, :math:`d(U_e\theta H_1)/d\xi = 0.0306\,U_e (H_1 - 3)^{-0.6169}`,
  Cebeci-Bradshaw :math:`H_1(H)` and its inverse, Ludwieg-Tillmann skin friction
  :math:`c_f = 0.246\cdot 10^{-0.678 H} Re_\theta^{-0.268}`; Heun (RK2) steps between
  control points. Turbulent separation is :math:`H > 2.4`; past it :math:`H` is held at 2.4
  (flag ``separated``: the drag is then a lower bound at best);
* drag, Squire-Young [4]_ at the TE, summed over both surfaces:
  :math:`c_d = \sum 2\,\theta_{TE}\,U_{e,TE}^{(H_{TE} + 5)/2}`. A finite-angle TE is a
  stagnation point of potential flow (:math:`U_e \to 0`, an artefact that a real boundary
  layer's displacement removes), so the last 1 % of the chord (``x > x_max - 0.01 c``) is not
  marched (NaN there in ``theta``, ``shape_factor``, ``cf``) and "TE" above is the last
  midpoint before it; separation flags ignore that region too.

Expected accuracy of the drag: within about 10-25 % of wind-tunnel data for attached flow on
smooth sections at :math:`3\cdot 10^6 \lesssim Re \lesssim 10^7` and small angles (NACA
0012, :math:`Re = 6\cdot 10^6`, :math:`\alpha = 0`: 0.0061 against 0.0058 measured). At
:math:`Re \approx 10^6` Michel's criterion transitions earlier than an :math:`e^N` method and
the drag comes out 20-40 % above XFOIL-type predictions (see ``benchmarks/panel_solver.py``).
Michel's criterion predicts natural transition only roughly; no laminar bubbles, no wake, no
viscous-inviscid coupling, so :math:`c_l` and :math:`c_m` stay inviscid and the lift slope is
over-predicted by a few percent compared with experiment). Near stall the estimate is
meaningless. Compressibility is ignored in the boundary layer.

References
----------
.. [1] B. Thwaites, "Approximate calculation of the laminar boundary layer", Aeronaut. Q. 1,
   245-280, 1949; fits from T. Cebeci and P. Bradshaw, "Momentum Transfer in Boundary
   Layers", Hemisphere, 1977.
.. [2] R. Michel, "Etude de la transition sur les profils d'aile", ONERA report 1/1578A, 1951.
.. [3] M. R. Head, "Entrainment in the turbulent boundary layer", ARC R&M 3152, 1958.
.. [4] H. B. Squire and A. D. Young, "The calculation of the profile drag of aerofoils", ARC
   R&M 1838, 1937.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["H_SEPARATION", "H_TRANSITION", "boundary_layer"]

H_TRANSITION = 1.4  # turbulent shape factor at transition
H_SEPARATION = 2.4  # turbulent separation criterion


def _h1_of_h(h):
    return jnp.where(h <= 1.6, 3.3 + 0.8234 * jnp.maximum(h - 1.1, 1e-6) ** -1.287,
                     3.3 + 1.5501 * jnp.maximum(h - 0.6778, 1e-6) ** -3.064)


def _h_of_h1(h1):
    d = jnp.maximum(h1 - 3.3, 1e-6)
    return jnp.where(h1 <= 5.3, 0.6778 + 1.1536 * d**-0.326, 1.1 + 0.86 * d**-0.777)


_H1_SEP = 3.3 + 1.5501 * (H_SEPARATION - 0.6778) ** -3.064
_H1_TR = 3.3 + 0.8234 * (H_TRANSITION - 1.1) ** -1.287


def _thwaites(lam):
    lam = jnp.clip(lam, -0.09, 0.1)
    pos = lam >= 0.0
    ell = jnp.where(pos, 0.22 + 1.57 * lam - 1.8 * lam**2,
                    0.22 + 1.402 * lam + 0.018 * lam / (lam + 0.107))
    h = jnp.where(pos, 2.61 - 3.75 * lam + 5.24 * lam**2, 2.088 + 0.0731 / (lam + 0.14))
    return h, ell


def _turb_closure(th, y, u, re):
    """Head / Ludwieg-Tillmann closure: (H1 clipped at separation, H, cf, separated)."""
    h1raw = y / (u * th)
    h1 = jnp.maximum(h1raw, _H1_SEP)
    h = _h_of_h1(h1)
    ret = jnp.maximum(re * u * th, 1.0)
    cf = 0.246 * jnp.exp(-0.678 * jnp.log(10.0) * h - 0.268 * jnp.log(ret))
    return h1, h, cf, h1raw < _H1_SEP


def _turb_rhs(th, y, u, du, re):
    h1, h, cf, _ = _turb_closure(th, y, u, re)
    return 0.5 * cf - (h + 2.0) * th / u * du, u * 0.0306 * jnp.exp(-0.6169 * jnp.log(h1 - 3.0))


def boundary_layer(vt, s_mid, xc, x_end, re, x_trip):
    """Both surfaces of one (shape, alpha), marched as one sequence of length N: the upper
    surface from the stagnation point (midpoints k, k-1, ..., 0), then the lower one
    (k+1, ..., N-1); midpoints beyond ``x_end`` are not marched. The layer is tripped
    (forced to transition) at the first midpoint with ``xc >= x_trip`` if it is still laminar
    there, but never at a surface's first midpoint, next to the stagnation point (``x_trip``
    > ``x_end``: free transition only). The laminar part is closed
    form (vectorised); only Head's turbulent equations are stepped (``lax.scan``)."""
    n = vt.shape[0]
    dt = vt.dtype
    tiny = jnp.asarray(1e-12, dt)
    cross = (vt[:-1] < 0) & (vt[1:] >= 0)
    k = jnp.argmax(cross)
    frac = -vt[k] / jnp.where(cross[k], vt[k + 1] - vt[k], 1.0)
    s_stag = s_mid[k] + frac * (s_mid[k + 1] - s_mid[k])
    m = jnp.arange(n)
    upper = m <= k
    idx = jnp.where(upper, k - m, m)
    xi = jnp.maximum(jnp.where(upper, s_stag - s_mid[idx], s_mid[idx] - s_stag), 0.0)
    ue = jnp.maximum(jnp.abs(vt[idx]), tiny)
    valid = xc[idx] <= x_end
    first = (m == 0) | (m == k + 1)
    xi_prev = jnp.where(first, 0.0, jnp.roll(xi, 1))
    ue_prev = jnp.where(first, 0.0, jnp.roll(ue, 1))
    nxt_ok = (m + 1 < n) & (m != k) & jnp.roll(valid, -1)
    xi_next = jnp.where(nxt_ok, jnp.roll(xi, -1), xi)
    ue_next = jnp.where(nxt_ok, jnp.roll(ue, -1), ue)
    due = (ue_next - ue_prev) / jnp.maximum(xi_next - xi_prev, tiny)
    # laminar, Thwaites: exact integral of ue^5 for ue linear between midpoints
    u0, u1 = ue_prev, ue
    s5 = (u0**5 + u0**4 * u1 + u0**3 * u1**2 + u0**2 * u1**3 + u0 * u1**4 + u1**5) / 6.0
    cum = jnp.cumsum(jnp.where(valid, (xi - xi_prev) * s5, 0.0))
    integ = cum - jnp.where(upper, 0.0, cum[k])
    th_l = jnp.sqrt(0.45 * integ / (re * ue**6))
    lam = re * th_l**2 * due
    h_l, ell = _thwaites(lam)
    cf_l = 2.0 * ell / jnp.maximum(re * ue * th_l, tiny)
    rex = jnp.maximum(re * ue * xi, 1.0)
    michel = re * ue * th_l > 1.174 * (1.0 + 22400.0 / rex) * rex**0.46
    lam_sep = lam < -0.09
    trip = (xc[idx] >= x_trip) & ~first  # never at a surface's first station (U_e ~ 0)
    trans_pt = valid & (michel | lam_sep | trip)
    surf = jnp.stack([upper, ~upper])  # (2, N)
    has_tr = jnp.any(trans_pt[None] & surf, axis=1)
    m_tr2 = jnp.argmax(trans_pt[None] & surf, axis=1)
    m_tr = jnp.where(upper, m_tr2[0], m_tr2[1])
    turb = valid & jnp.where(upper, has_tr[0], has_tr[1]) & (m >= m_tr)
    start = turb & (m == m_tr)

    def step(carry, inp):
        th, y, x0, u0, du0 = carry
        x1, u1, du1, thl, is_start, is_turb = inp
        hs = x1 - x0
        k1t, k1y = _turb_rhs(th, y, u0, du0, re)
        thp = jnp.maximum(th + hs * k1t, tiny)
        k2t, k2y = _turb_rhs(thp, y + hs * k1y, u1, du1, re)
        th_t = jnp.maximum(th + 0.5 * hs * (k1t + k2t), tiny)
        y_t = y + 0.5 * hs * (k1y + k2y)
        th_n = jnp.where(is_start, thl, th_t)
        y_n = jnp.where(is_start, u1 * thl * _H1_TR, y_t)
        keep = is_turb
        new = (jnp.where(keep, th_n, th), jnp.where(keep, y_n, y), x1, u1, du1)
        return new, (th_n, y_n)

    zero = jnp.zeros((), dt)
    carry0 = (zero, zero, zero, ue[0], zero)
    _, (th_t, y_t) = jax.lax.scan(step, carry0, (xi, ue, due, th_l, start, turb))
    _, h_t, cf_t, sep_t = _turb_closure(th_t, y_t, ue, re)
    h_t = jnp.where(start, H_TRANSITION, h_t)
    nan = jnp.asarray(jnp.nan, dt)
    th = jnp.where(valid, jnp.where(turb, th_t, th_l), nan)
    h = jnp.where(valid, jnp.where(turb, h_t, h_l), nan)
    cf = jnp.where(valid, jnp.where(turb, cf_t, cf_l), nan)
    # trailing-edge station = last valid midpoint of each surface; Squire-Young
    last = jnp.max(jnp.where(surf & valid[None], m[None], 0), axis=1)
    th_te, h_te, u_te = th[last], h[last], ue[last]
    cd_parts = 2.0 * th_te * u_te ** ((h_te + 5.0) / 2.0)
    tsep = jnp.any(surf & (turb & sep_t & ~start)[None], axis=1)
    lsep = has_tr & (lam_sep & ~michel & ~trip)[m_tr2]
    x_tr = jnp.where(has_tr, xc[idx[m_tr2]], nan)

    def scatter(a):
        return jnp.zeros((n,), dt).at[idx].set(a)

    return (scatter(th), scatter(h), scatter(cf), cd_parts, x_tr, lsep, tsep, k)
