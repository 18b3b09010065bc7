"""Exact potential flow past Karman-Trefftz airfoils, the reference of the panel method's tests
and benchmark (:mod:`surrogates.solvers.panel`).

References
----------
.. [1] L. M. Milne-Thomson, "Theoretical Hydrodynamics", 5th ed., Macmillan, 1968, sections
   7.30-7.31 (Karman-Trefftz profiles).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["KarmanTrefftz"]


class KarmanTrefftz:
    """Karman-Trefftz airfoil and its exact potential flow (unit free stream).

    Circle of centre ``c0`` through the singular point ``b = 1`` (radius R = |b - c0|), map
    z = n b (1 + q) / (1 - q), q = ((zeta - b) / (zeta + b))^n, n = 2 - tau/pi (TE angle tau),
    then translated and scaled so the leading edge is at x = 0 and the chord (x-extent) is 1.
    Flow past the circle with the Kutta condition at zeta = b: clockwise circulation
    Gamma = 4 pi R sin(alpha - theta_TE), complex velocity
    dW/dzeta = e^{-i alpha} - R^2 e^{i alpha} / (zeta - c0)^2 + i Gamma / (2 pi (zeta - c0)),
    u - i v = (dW/dzeta) / (dz/dzeta), dz/dzeta = 4 n^2 b^2 q / ((1 - q)^2 (zeta^2 - b^2)).
    """

    def __init__(self, c0=complex(-0.08, 0.08), tau_deg=10.0):
        self.b, self.c0, self.n = 1.0, c0, 2.0 - tau_deg / 180.0
        self.R = abs(self.b - c0)
        self.th_te = float(np.angle(self.b - c0))
        self.th_le = minimize_scalar(lambda t: self._zraw(t).real,
                                     bounds=(self.th_te + 2.0, self.th_te + 4.5),
                                     method="bounded", options={"xatol": 1e-13}).x
        self.z_le = self._zraw(self.th_le)
        self.scale = 1.0 / (self.n * self.b - self.z_le.real)

    def _q(self, zeta):
        return ((zeta - self.b) / (zeta + self.b)) ** self.n

    def _zraw(self, th):
        q = self._q(self.c0 + self.R * np.exp(1j * np.asarray(th)))
        return self.n * self.b * (1 + q) / (1 - q)

    def z_of_zeta(self, zeta):
        q = self._q(zeta)
        return (self.n * self.b * (1 + q) / (1 - q) - self.z_le) * self.scale

    def coords(self, n_panels):
        """Nodes uniform in the circle angle on each side, the exact LE and TE among them."""
        h = n_panels // 2
        th = np.r_[np.linspace(self.th_te, self.th_le, h + 1),
                   np.linspace(self.th_le, self.th_te + 2 * np.pi, n_panels - h + 1)[1:]]
        z = self.z_of_zeta(self.c0 + self.R * np.exp(1j * th))
        z[0] = z[-1] = (self.n * self.b - self.z_le) * self.scale
        return np.stack([z.real, z.imag], axis=-1), th

    def cl(self, alpha_rad):
        return 2.0 * 4.0 * np.pi * self.R * np.sin(alpha_rad - self.th_te) * self.scale

    def surface_cp(self, th, alpha_rad):
        """Exact pressure coefficient on the airfoil at circle angles ``th``."""
        u, v = self.velocity(self.c0 + self.R * np.exp(1j * np.asarray(th)), alpha_rad)
        return 1.0 - (u**2 + v**2)

    def velocity(self, zeta, alpha_rad):
        d = zeta - self.c0
        gam = 4.0 * np.pi * self.R * np.sin(alpha_rad - self.th_te)
        dw = (np.exp(-1j * alpha_rad) - self.R**2 * np.exp(1j * alpha_rad) / d**2
              + 1j * gam / (2 * np.pi * d))
        q = self._q(zeta)
        dz = 4 * self.n**2 * self.b**2 * q / ((1 - q) ** 2 * (zeta - self.b) * (zeta + self.b))
        w = dw / dz
        return w.real, -w.imag
