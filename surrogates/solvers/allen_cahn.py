r"""One-dimensional Allen-Cahn equation: Fourier pseudo-spectral reference solver with ETDRK4.

The equation (the benchmark of the PINN literature, Raissi et al. 2019) on the periodic
interval :math:`x \in [-1, 1)`,

.. math::

    u_t = \varepsilon\,u_{xx} + r\,(u - u^3), \qquad \varepsilon = 10^{-4},\ r = 5,
    \qquad u(0, x) = x^2 \cos(\pi x),

i.e. :math:`u_t - 10^{-4} u_{xx} + 5u^3 - 5u = 0`. Time and space are dimensionless.

Discretisation
--------------
* Space: Fourier pseudo-spectral collocation on the ``N`` equispaced points
  :math:`x_j = -1 + 2j/N`, ``j = 0..N-1`` (``N`` even). With real FFTs,
  :math:`\hat u_m`, wavenumbers :math:`k_m = \pi m` (``m = 0..N/2``; the domain length is 2),
  the linear part is diagonal, :math:`\mathcal{L}_m = -\varepsilon k_m^2`, and the nonlinear
  part :math:`\mathcal{N}(u) = r(u - u^3)` is evaluated pointwise in physical space
  (collocation, no dealiasing, as in Kassam & Trefethen 2005). Spectrally accurate for smooth
  solutions. Two things limit the benchmark's resolution: the fronts have width
  :math:`\sim\sqrt{2\varepsilon/r} \approx 0.0063`, and the initial condition has a kink at
  the periodic boundary (:math:`u_x(0, \pm 1) = \mp 2`), which diffusion smooths only
  gradually, so convergence in ``N`` is algebraic at early times. Measured max-norm
  differences to an ``N = 4096`` run (``dt = 5e-4``), over all 201 frames / at ``t = 1``:
  ``N = 512``: 8.9e-4 / 1.4e-6; ``N = 1024``: 4.2e-4 / 1.6e-9; ``N = 2048`` (the default):
  9.6e-5 / 3.1e-10 (the largest differences sit at :math:`x = \pm 1`, :math:`t \le 0.1`).
  ``N = 512`` is the grid of Raissi's data set.
* Time: exponential time differencing fourth-order Runge-Kutta (ETDRK4, Cox & Matthews 2002)
  in the form of Kassam & Trefethen (2005), with the coefficient functions
  :math:`Q, f_1, f_2, f_3` (combinations of :math:`\varphi`-functions of :math:`h\mathcal{L}`)
  evaluated by the mean over ``M = 32`` points of a circle of radius 1 around each
  :math:`h\mathcal{L}_m` in the complex plane, which avoids the cancellation of the
  closed forms for small :math:`|h\mathcal{L}|`.

Order of accuracy: fourth order in time (measured in ``tests/solvers/test_allen_cahn.py``);
spectral in space. The linear part is integrated exactly, so for ``reaction = 0`` (pure
diffusion) the scheme is exact up to round-off for any step.

Stability: the stiff diffusion is handled exactly, so the step is limited only by the
reaction, whose Jacobian :math:`r(1 - 3u^2)` lies in :math:`[-2r, r]` for :math:`|u| \le 1`;
:math:`\Delta t \le 0.1/r` (0.02 for ``r = 5``) is required here and the default
``dt = 1e-3`` is far inside it. A non-finite result raises ``ValueError``.

Computations are in NumPy float64 (the solver is cheap: about 0.7 s for the default
reference run, ``N = 2048``, ``dt = 1e-3``, 201 frames, on one CPU core).

References
----------
.. [1] S. M. Cox and P. C. Matthews, "Exponential time differencing for stiff systems",
   J. Comput. Phys. 176, 430-455, 2002.
.. [2] A.-K. Kassam and L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs",
   SIAM J. Sci. Comput. 26, 1214-1233, 2005.
.. [3] M. Raissi, P. Perdikaris and G. E. Karniadakis, "Physics-informed neural networks",
   J. Comput. Phys. 378, 686-707, 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from surrogates.solvers.checks import check_int

__all__ = ["AllenCahnSolution", "grid", "initial_condition", "solve", "etdrk4_coefficients"]

#: Default diffusivity and reaction rate of the benchmark.
EPS = 1e-4
REACTION = 5.0


@dataclass(frozen=True)
class AllenCahnSolution:
    """Frames of an Allen-Cahn run (NumPy float64).

    Attributes
    ----------
    x : ndarray, shape (N,)
        Grid :math:`x_j = -1 + 2j/N` (the periodic copy ``x = 1`` is not stored).
    t : ndarray, shape (T,)
        Output times, ``t[0] = 0``, as requested.
    u : ndarray, shape (T, N)
        Solution at the output times; ``u[0]`` is the initial condition.
    n_substeps : ndarray of int, shape (T - 1,)
        ETDRK4 steps taken in each output interval (equal steps within an interval).
    """

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray
    n_substeps: np.ndarray


def grid(N: int) -> np.ndarray:
    """Collocation points :math:`-1 + 2j/N`, ``j = 0..N-1``, shape ``(N,)``; ``N`` even >= 8."""
    N = check_int(N, "N", minimum=8)
    if N % 2:
        raise ValueError(f"N must be even (real FFT with a Nyquist mode), got {N}")
    return -1.0 + 2.0 * np.arange(N, dtype=np.float64) / N


def initial_condition(x: ArrayLike) -> np.ndarray:
    r"""The benchmark's initial condition :math:`u_0(x) = x^2 \cos(\pi x)`."""
    x = np.asarray(x, dtype=np.float64)
    return x**2 * np.cos(np.pi * x)


def etdrk4_coefficients(lin: np.ndarray, h: float, n_contour: int = 32):
    r"""ETDRK4 coefficients for the diagonal linear operator ``lin`` and step ``h``.

    Returns ``(E, E2, Q, f1, f2, f3)``, each of the shape of ``lin``:
    :math:`E = e^{hL}`, :math:`E_2 = e^{hL/2}`, and with :math:`z = hL`

    .. math::

        Q = h\,\frac{e^{z/2} - 1}{z}, \quad
        f_1 = h\,\frac{-4 - z + e^z(4 - 3z + z^2)}{z^3}, \quad
        f_2 = h\,\frac{2 + z + e^z(z - 2)}{z^3}, \quad
        f_3 = h\,\frac{-4 - 3z - z^2 + e^z(4 - z)}{z^3},

    each evaluated as the mean over ``n_contour`` points :math:`z + e^{i\theta_j}`,
    :math:`\theta_j = \pi(j - 1/2)/M`, of the upper half of the unit circle around :math:`z`
    (real part of the mean; the functions are real on the real axis, so the lower half is the
    conjugate), as in Kassam & Trefethen (2005).
    """
    lin = np.asarray(lin, dtype=np.float64)
    z = h * lin
    roots = np.exp(1j * np.pi * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    zr = z[..., None] + roots
    ez = np.exp(zr)
    Q = h * np.real(np.mean((np.exp(zr / 2) - 1.0) / zr, axis=-1))
    f1 = h * np.real(np.mean((-4.0 - zr + ez * (4.0 - 3.0 * zr + zr**2)) / zr**3, axis=-1))
    f2 = h * np.real(np.mean((2.0 + zr + ez * (zr - 2.0)) / zr**3, axis=-1))
    f3 = h * np.real(np.mean((-4.0 - 3.0 * zr - zr**2 + ez * (4.0 - zr)) / zr**3, axis=-1))
    return np.exp(z), np.exp(z / 2), Q, f1, f2, f3


def solve(
    u0: ArrayLike | None = None,
    t_out: ArrayLike | None = None,
    *,
    N: int = 2048,
    dt: float = 1e-3,
    eps: float = EPS,
    reaction: float = REACTION,
    n_contour: int = 32,
) -> AllenCahnSolution:
    r"""Integrate :math:`u_t = \varepsilon u_{xx} + r(u - u^3)` on :math:`[-1, 1)`, periodic.

    Fourier pseudo-spectral in space, ETDRK4 in time (see the module docstring). Each output
    interval :math:`[t_k, t_{k+1}]` is split into ``ceil((t_{k+1} - t_k)/dt)`` equal steps, so
    frames land exactly on ``t_out`` and the step never exceeds ``dt``.

    Parameters
    ----------
    u0 : array of shape (N,), optional
        Initial values on :func:`grid` ``(N)``; ``N`` is then taken from it. Default: the
        benchmark's :math:`x^2\cos(\pi x)` on ``grid(N)``.
    t_out : array of shape (T,), optional
        Output times, ``t_out[0] = 0``, strictly increasing, ``T >= 2``. Default
        ``np.linspace(0, 1, 201)`` (Raissi's 201 frames).
    N : int, default 2048
        Number of grid points (even, >= 8) when ``u0`` is not given.
    dt : float, default 1e-3
        Largest time step, ``0 < dt <= 0.1 / reaction`` (for ``reaction > 0``).
    eps : float, default 1e-4
        Diffusivity, ``>= 0``.
    reaction : float, default 5.0
        Reaction rate ``r >= 0``; 0 gives the heat equation.
    n_contour : int, default 32
        Points of the contour integrals for the ETDRK4 coefficients (>= 8).

    Returns
    -------
    AllenCahnSolution
        ``x (N,)``, ``t (T,)``, ``u (T, N)``, ``n_substeps (T - 1,)``.

    Raises
    ------
    ValueError
        On a malformed or non-finite ``u0``, an odd or small ``N``, bad ``t_out``, ``dt``,
        ``eps``, ``reaction`` or ``n_contour``, or a non-finite result.
    """
    if u0 is None:
        x = grid(N)
        u = initial_condition(x)
    else:
        try:
            u = np.array(u0, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"u0 must be a real array of shape (N,), got {u0!r}") from None
        if u.ndim != 1:
            raise ValueError(f"u0 must have shape (N,), got shape {u.shape}")
        x = grid(u.shape[0])
        if not np.all(np.isfinite(u)):
            raise ValueError("u0 contains non-finite values")
    N = x.shape[0]
    t = np.linspace(0.0, 1.0, 201) if t_out is None else np.array(t_out, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] < 2:
        raise ValueError(f"t_out must be a 1D array of at least 2 times, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or t[0] != 0.0 or np.any(np.diff(t) <= 0):
        raise ValueError("t_out must be finite, start at 0 and be strictly increasing")
    for name, val in (("eps", eps), ("reaction", reaction)):
        if not (np.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {val!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and > 0, got {dt!r}")
    if reaction > 0 and dt > 0.1 / reaction:
        raise ValueError(
            f"dt = {dt} exceeds the reaction's stability limit 0.1/reaction = "
            f"{0.1 / reaction:g}; lower dt"
        )
    n_contour = check_int(n_contour, "n_contour", minimum=8)

    k = np.pi * np.arange(N // 2 + 1, dtype=np.float64)
    lin = -eps * k**2

    def nonlin(v):  # Fourier coefficients of r(u - u^3)
        w = np.fft.irfft(v, n=N)
        return np.fft.rfft(reaction * (w - w**3))

    intervals = np.diff(t)
    n_sub = np.maximum(1, np.ceil(intervals / dt * (1.0 - 1e-12)).astype(int))
    cache: dict[float, tuple] = {}
    v = np.fft.rfft(u)
    frames = [u.copy()]
    for interval, n in zip(intervals, n_sub, strict=True):
        h = float(interval / n)
        key = round(h, 15)
        if key not in cache:
            cache[key] = etdrk4_coefficients(lin, h, n_contour)
        E, E2, Q, f1, f2, f3 = cache[key]
        for _ in range(int(n)):
            Nv = nonlin(v)
            a = E2 * v + Q * Nv
            Na = nonlin(a)
            b = E2 * v + Q * Na
            Nb = nonlin(b)
            c = E2 * a + Q * (2.0 * Nb - Nv)
            Nc = nonlin(c)
            v = E * v + f1 * Nv + 2.0 * f2 * (Na + Nb) + f3 * Nc
        frame = np.fft.irfft(v, n=N)
        if not np.all(np.isfinite(frame)):
            raise ValueError(
                f"Allen-Cahn solution became non-finite before t = {t[len(frames)]:g} "
                f"(dt = {dt}); lower dt or check u0"
            )
        frames.append(frame)
    return AllenCahnSolution(x, t, np.stack(frames), n_sub)

