r"""Airfoils in 2D potential flow: a batched linear-vortex panel method in JAX, with a
Karman-Tsien compressibility correction and an integral boundary-layer drag estimate.

Everything is non-dimensional: lengths in chords (inputs are expected with chord 1 along
:math:`x`), velocities in units of the free-stream speed :math:`V_\infty`, pressures as
:math:`C_p = (p - p_\infty)/(\tfrac12\rho V_\infty^2)`.

Geometry. An airfoil is a polygon of :math:`N + 1` nodes in *Selig order*: trailing edge (TE)
:math:`\to` upper surface :math:`\to` leading edge (LE) :math:`\to` lower surface :math:`\to`
TE, i.e. counter-clockwise. The first and last nodes coincide for a sharp TE; a blunt TE with
a gap of at most :data:`MAX_TE_GAP` chords is accepted and its base is left open (not
paneled; an error of the order of the gap). A clockwise polygon (TE -> lower -> LE -> upper) is
reversed before solving (``PanelSolution.reversed`` says so; all outputs refer to the reversed,
Selig-ordered nodes). Panel :math:`j` runs from node :math:`j` to node :math:`j + 1` with
length :math:`l_j`, unit tangent :math:`\mathbf t_j` along the node order and outward normal
:math:`\mathbf n_j = (t_{y}, -t_{x})`. The chord is :math:`c = x_{\max} - x_{\min}` of the
nodes; angles of attack are measured from the :math:`x` axis and the moment reference point is
:math:`(x_{\min} + c/4,\ y_{TE})` with :math:`y_{TE}` the mean of the first and last nodes.

Inviscid method (Katz & Plotkin [1]_, section 11.4, linear-strength vortex, Neumann condition).
The surface carries a vortex sheet whose strength :math:`\gamma(s)` (counter-clockwise
positive, per unit length) varies linearly on each panel between nodal values
:math:`\gamma_0 \dots \gamma_N`. With :math:`\zeta = (z - z_j)\,\bar e_j` the position in
panel :math:`j`'s frame (:math:`e_j` the complex unit tangent, panel on :math:`[0, l_j]`), the
panel induces the conjugate velocity

.. math::

    u - \mathrm i v = -\frac{\mathrm i\,\bar e_j}{2\pi}\left[\gamma_j\Big(\big(1 -
    \tfrac{\zeta}{l_j}\big) I_0 + 1\Big) + \gamma_{j+1}\Big(\tfrac{\zeta}{l_j} I_0 - 1\Big)
    \right],\qquad I_0 = \log\frac{\zeta}{\zeta - l_j},

(the exact integral of point vortices along the panel; on the panel itself the outside limit,
:math:`\operatorname{Im} I_0 = +\pi`, is taken). The :math:`N + 1` unknowns solve the
:math:`N` no-penetration conditions :math:`(\mathbf V_\infty + \mathbf v)\cdot\mathbf n_i = 0`
at the panel midpoints and the Kutta condition :math:`\gamma_0 + \gamma_N = 0` (equal speed
leaving upper and lower TE). The matrix does not depend on the angle of attack: it is factored
once per shape and all angles are right-hand sides of the same solve.

Outputs. With the Neumann condition the continuous problem has the fluid *inside* the body
at rest (the interior potential has zero normal derivative on the whole closed boundary), so
the outer tangential velocity equals the sheet strength; at the midpoints

.. math::

    V_{t,i} = \tfrac12(\gamma_i + \gamma_{i+1})

along the node order (negative on most of the upper surface, positive on the lower one in
Selig order; this is second order, while re-summing the panel influences at the midpoints is
only first order). :math:`C_{p,i} = 1 - V_{t,i}^2`, and

.. math::

    c_{l,\Gamma} = \frac{2\Gamma}{V_\infty c},\quad \Gamma = -\sum_j l_j\frac{\gamma_j +
    \gamma_{j+1}}{2}\ \text{(clockwise circulation, Kutta-Joukowski)},

    \mathbf c_F = -\frac1c\sum_i C_{p,i}\,\mathbf n_i\,l_i,\quad
    c_{l,p} = \mathbf c_F\cdot(-\sin\alpha, \cos\alpha),\quad
    c_{d,p} = \mathbf c_F\cdot(\cos\alpha, \sin\alpha),

    c_{m,c/4} = \frac{1}{c^2}\sum_i C_{p,i}\,l_i\,[(x_i - x_{\rm ref})n_{y,i} - (y_i -
    y_{\rm ref})n_{x,i}]\quad\text{(nose up positive)}.

:math:`c_{l,\Gamma}` and :math:`c_{l,p}` agree to :math:`O(h^2)` (tested to 1e-3 at 200
panels, observed ~1e-5); :math:`c_{d,p}` is a discretisation error (d'Alembert). Against
exact Karman-Trefftz airfoils (10 deg TE angle, camber) the :math:`c_l` error falls with
order 2 to 1.4 as :math:`N` doubles from 50 to 400 (0.02 % at 200 panels) and the RMS surface
:math:`C_p` error (TE region excluded) with order 2.

Field velocity. :func:`field_velocity` sums the same panel influences plus the free stream at
arbitrary points, so a flow mesh gets a field consistent with the surface solution (it
satisfies Laplace's equation exactly; the error is the discretisation of the sheet, largest
within a panel length of the surface). Points inside the body polygon (ray casting) get NaN
and are flagged in ``inside``.

Compressibility (Karman-Tsien). For free-stream Mach :math:`M_\infty \le` :data:`MAX_MACH`,

.. math::

    C_p = \frac{C_{p,0}}{\beta + \dfrac{M_\infty^2}{1 + \beta}\dfrac{C_{p,0}}{2}},
    \qquad \beta = \sqrt{1 - M_\infty^2},

applied to the incompressible :math:`C_{p,0}` (same geometry); :math:`c_l, c_m` then come from
integrating the corrected :math:`C_p` (``cl_pressure``; ``cl_circulation`` stays the
incompressible Kutta-Joukowski value). The correction assumes subsonic flow everywhere: if the
lowest corrected :math:`C_p` falls below the critical value

.. math::

    C_p^* = \frac{2}{\gamma M_\infty^2}\left[\left(\frac{2 + (\gamma - 1)M_\infty^2}{\gamma +
    1}\right)^{\gamma/(\gamma - 1)} - 1\right],\quad \gamma = 1.4,

the flow is locally supersonic and the result invalid: ``ValueError`` (or only the flag
``supercritical`` with ``strict_mach=False``). :math:`M_\infty >` 0.7 is refused.

Viscous drag (``reynolds`` given; chord Reynolds number :math:`Re = V_\infty c/\nu`): an integral
boundary layer (Thwaites laminar, Michel transition, Head turbulent, Squire-Young drag) on the
incompressible inviscid edge velocity, :mod:`surrogates.solvers.boundary_layer` (equations,
assumptions and expected accuracy there).

Computations are float64 by default: 64-bit mode is switched on with ``jax.enable_x64(True)``
as a context manager *inside* :func:`solve_airfoils` and :func:`field_velocity` only; the
global JAX configuration is never changed. All shapes of a call share one panel count (they
are ``vmap``-ed); call again for another panel count.

References
----------
.. [1] J. Katz and A. Plotkin, "Low-Speed Aerodynamics", 2nd ed., Cambridge University Press,
   2001, ch. 11 (linear-strength vortex method, section 11.4.2).
.. [2] T. von Karman, "Compressibility effects in aerodynamics", J. Aeronaut. Sci. 8, 337-356,
   1941 (Karman-Tsien rule).
.. [3] L. L. Moran, "An Introduction to Theoretical and Computational Aerodynamics", Wiley, 1984,
   ch. 4-5 (the same chain of integral boundary-layer methods).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.solvers.checks import check_dtype, check_int
from surrogates.solvers.panel_kernels import (
    GAMMA_AIR,  # noqa: F401  (re-exported)
    TE_EXCLUDE,  # noqa: F401  (re-exported)
    _field_batch,
    _solve_batch,
    critical_cp,
    karman_tsien,
)

__all__ = [
    "MAX_MACH",
    "MAX_TE_GAP",
    "PanelSolution",
    "critical_cp",
    "field_velocity",
    "karman_tsien",
    "solve_airfoils",
]

MAX_MACH = 0.7
"""Largest free-stream Mach number accepted by the Karman-Tsien correction."""

MAX_TE_GAP = 0.02
"""Largest trailing-edge gap (distance first-last node, in chords) of an accepted polygon."""


# ----------------------------------------------------------------------------------------------
# Result
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelSolution:
    """Result of :func:`solve_airfoils` (NumPy arrays; ``B`` shapes, ``A`` angles, ``N`` panels).

    Attributes
    ----------
    alpha_deg : (A,) angles of attack, degrees from the x axis.
    mach, reynolds : free-stream Mach number; chord Reynolds number (``None``: inviscid only).
    nodes : (B, N + 1, 2) panel nodes in Selig order (reversed where ``reversed``).
    reversed : (B,) whether the input polygon was clockwise and got reversed.
    x, y : (B, N) panel midpoints (control points); ``normal`` (B, N, 2) outward normals;
        ``length`` (B, N) panel lengths; ``chord`` (B,) x-extent of the nodes.
    gamma : (B, A, N + 1) nodal vortex-sheet strengths (counter-clockwise positive).
    vt : (B, A, N) surface tangential velocity at the midpoints along the node order,
        units of V_inf (incompressible).
    cp, cp_incompressible : (B, A, N) pressure coefficient, Karman-Tsien corrected / M = 0.
    cl_circulation : (B, A) incompressible Kutta-Joukowski lift 2 Gamma / (V c).
    cl_pressure, cd_pressure, cm_quarter : (B, A) from integrating ``cp`` (cm nose-up
        positive about the quarter chord).
    supercritical : (B, A) lowest ``cp`` below the critical Cp (only with strict_mach=False).
    cd : (B, A) Squire-Young drag (``None`` when inviscid); ``cd_upper``, ``cd_lower`` parts.
    theta, shape_factor, cf : (B, A, N) momentum thickness (chords), H, skin friction at the
        midpoints (NaN when inviscid).
    x_transition : (B, A, 2) x of the first turbulent midpoint on the (upper, lower) surface
        (NaN: laminar to the TE).
    laminar_separation : (B, A, 2) transition forced by laminar separation (upper, lower).
    separated : (B, A) turbulent separation (H > 2.4) before the TE on either surface.
    stagnation_index : (B, A) midpoint index k with vt[k] < 0 <= vt[k + 1].
    dtype : precision used; ``wall_time`` seconds.
    """

    alpha_deg: np.ndarray
    mach: float
    reynolds: float | None
    nodes: np.ndarray
    reversed: np.ndarray
    x: np.ndarray
    y: np.ndarray
    normal: np.ndarray
    length: np.ndarray
    chord: np.ndarray
    gamma: np.ndarray
    vt: np.ndarray
    cp: np.ndarray
    cp_incompressible: np.ndarray
    cl_circulation: np.ndarray
    cl_pressure: np.ndarray
    cd_pressure: np.ndarray
    cm_quarter: np.ndarray
    supercritical: np.ndarray
    cd: np.ndarray | None
    cd_upper: np.ndarray | None
    cd_lower: np.ndarray | None
    theta: np.ndarray
    shape_factor: np.ndarray
    cf: np.ndarray
    x_transition: np.ndarray
    laminar_separation: np.ndarray
    separated: np.ndarray
    stagnation_index: np.ndarray
    dtype: str
    wall_time: float

    @property
    def cl(self) -> np.ndarray:
        """(B, A) lift coefficient from the (compressibility-corrected) pressure."""
        return self.cl_pressure


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def _check_coords(coords) -> tuple[np.ndarray, np.ndarray]:
    try:
        c = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("coords must be a numeric array of shape (B, N + 1, 2) or (N + 1, 2)"
                         ) from None
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[-1] != 2:
        raise ValueError(f"coords must have shape (B, N + 1, 2) or (N + 1, 2), got {c.shape}")
    if c.shape[0] < 1:
        raise ValueError("coords holds no shapes (B = 0)")
    check_int(c.shape[1] - 1, "the number of panels N (coords.shape[-2] - 1)", 8)
    if not np.all(np.isfinite(c)):
        bad = np.unique(np.nonzero(~np.isfinite(c))[0])
        raise ValueError(f"coords has non-finite values (shapes {bad.tolist()})")
    seg = np.linalg.norm(np.diff(c, axis=1), axis=-1)
    chord = c[..., 0].max(axis=1) - c[..., 0].min(axis=1)
    if np.any(chord <= 0):
        raise ValueError("coords has a shape of zero x-extent (chord)")
    short = seg <= 1e-10 * chord[:, None]
    if np.any(short):
        b, j = np.argwhere(short)[0]
        raise ValueError(f"shape {b}: panel {j} has zero length (repeated node {j + 1}); "
                         "remove duplicate points")
    gap = np.linalg.norm(c[:, 0] - c[:, -1], axis=-1) / chord
    if np.any(gap > MAX_TE_GAP):
        b = int(np.argmax(gap))
        raise ValueError(f"shape {b} is not a closed polygon: first and last nodes (the "
                         f"trailing edge) are {gap[b]:.3g} chords apart (at most {MAX_TE_GAP} "
                         "allowed); coords must run TE -> upper -> LE -> lower -> TE")
    xs, ys = c[..., 0], c[..., 1]
    area = 0.5 * np.sum(xs * np.roll(ys, -1, axis=1) - np.roll(xs, -1, axis=1) * ys, axis=1)
    if np.any(np.abs(area) <= 1e-8 * chord**2):
        b = int(np.argmin(np.abs(area)))
        raise ValueError(f"shape {b} encloses no area (degenerate polygon)")
    rev = area < 0
    c = np.where(rev[:, None, None], c[:, ::-1], c)
    return c, rev


def _check_alpha(alpha_deg) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(alpha_deg, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"alpha_deg must be numbers (degrees), got {alpha_deg!r}") from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"alpha_deg must be a scalar or a 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(np.abs(a) >= 90.0):
        raise ValueError(f"alpha_deg must be finite and within (-90, 90) degrees, got {a}")
    return a


def _check_mach(mach) -> float:
    try:
        m = float(mach)
    except (TypeError, ValueError):
        raise ValueError(f"mach must be a number, got {mach!r}") from None
    if not np.isfinite(m) or m < 0.0 or m > MAX_MACH:
        raise ValueError(f"mach must be in [0, {MAX_MACH}] (Karman-Tsien correction of "
                         f"subsonic potential flow), got {mach!r}")
    return m


def _check_reynolds(reynolds) -> float | None:
    if reynolds is None:
        return None
    try:
        r = float(reynolds)
    except (TypeError, ValueError):
        raise ValueError(f"reynolds must be a number or None, got {reynolds!r}") from None
    if not np.isfinite(r) or r < 1e4 or r > 1e9:
        raise ValueError(f"reynolds (chord Reynolds number) must be in [1e4, 1e9] for the "
                         f"integral boundary-layer model, got {reynolds!r}")
    return r


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def solve_airfoils(coords, alpha_deg, *, mach=0.0, reynolds=None, strict_mach=True,
                   x_transition=None, dtype="float64") -> PanelSolution:
    r"""Solve potential flow (and optionally an integral boundary layer) around airfoils.

    Parameters
    ----------
    coords : array_like, (B, N + 1, 2) or (N + 1, 2)
        Closed polygons in Selig order (TE -> upper -> LE -> lower -> TE, chord 1 along x;
        first and last nodes equal, or a TE gap of at most :data:`MAX_TE_GAP` chords). All
        shapes share ``N >= 8``. Clockwise polygons are reversed (see ``reversed``).
    alpha_deg : float or array_like (A,)
        Angles of attack in degrees, measured from the x axis; all are solved with one
        factorisation per shape.
    mach : float
        Free-stream Mach number in [0, :data:`MAX_MACH`] for the Karman-Tsien correction.
    reynolds : float, optional
        Chord Reynolds number :math:`V_\infty c/\nu` in [1e4, 1e9]; when given, the boundary
        layer is integrated and ``cd`` returned.
    strict_mach : bool
        Raise when the corrected flow is locally supersonic (min Cp < critical Cp); when
        ``False`` only set ``supercritical``.
    x_transition : float, optional
        Forced transition (a trip, like XFOIL's ``XTR``) at this chord fraction in [0, 1] on
        both surfaces, where Michel's criterion has not already transitioned the layer; 0 makes
        the boundary layer turbulent from the stagnation point (the fully turbulent flow of
        RANS data such as AirfRANS, Spalart-Allmaras without transition). None: free
        transition only.
    dtype : {"float64", "float32"}
        Working precision.

    Returns
    -------
    PanelSolution
        NumPy arrays, always with the batch axis ``B`` and the angle axis ``A``.

    Raises
    ------
    ValueError
        Bad shapes, non-finite or degenerate polygons, an open polygon, ``mach`` outside
        [0, 0.7], ``reynolds`` outside [1e4, 1e9], a bad ``dtype``, supercritical flow with
        ``strict_mach``, or a non-finite solution.
    """
    started = time.perf_counter()
    dt = check_dtype(dtype)
    c, rev = _check_coords(coords)
    a = _check_alpha(alpha_deg)
    m = _check_mach(mach)
    re = _check_reynolds(reynolds)
    viscous = re is not None
    if x_transition is None:
        x_trip = np.inf
    else:
        x_trip = float(x_transition)
        if not 0.0 <= x_trip <= 1.0:
            raise ValueError(f"x_transition must be a chord fraction in [0, 1], got "
                             f"{x_transition!r}")
    with jax.enable_x64(dt == np.float64):
        jd = jnp.dtype(dt)
        out = _solve_batch(jnp.asarray(c, jd), jnp.asarray(np.deg2rad(a), jd),
                           jnp.asarray(m, jd), jnp.asarray(re if viscous else 1.0, jd),
                           jnp.asarray(x_trip, jd), viscous=viscous)
        out = {k: np.asarray(jax.device_get(v)) for k, v in out.items()}
    for key in ("gamma", "cp", "cl_circ", "cm"):
        if not np.all(np.isfinite(out[key])):
            raise ValueError(f"the panel solution ({key}) is not finite: check that the polygons "
                             "do not self-intersect")
    cp_star = critical_cp(m)
    supercrit = out["cp"].min(axis=-1) < cp_star
    if strict_mach and np.any(supercrit):
        b, j = np.argwhere(supercrit)[0]
        raise ValueError(f"locally supersonic flow at mach={m}: shape {b}, alpha={a[j]} deg has "
                         f"min Cp = {out['cp'][b, j].min():.3f} < critical Cp {cp_star:.3f}; "
                         "the Karman-Tsien correction is invalid there (lower mach or alpha, "
                         "or pass strict_mach=False to get the flag only)")
    z = c[:, :-1] + c[:, 1:]
    seg = np.diff(c, axis=1)
    length = np.linalg.norm(seg, axis=-1)
    tang = seg / length[..., None]
    normal = np.stack([tang[..., 1], -tang[..., 0]], axis=-1)
    B, A, N = out["cp"].shape
    nanf = np.full((B, A, N), np.nan, dt)
    if viscous:
        cd_parts = out["cd_parts"]
        cd, cdu, cdl = cd_parts.sum(-1), cd_parts[..., 0], cd_parts[..., 1]
        theta, hfac, cf = out["theta"], out["h"], out["cf"]
        x_tr, lsep, sep, k = out["x_tr"], out["lsep"], out["tsep"].any(-1), out["k"]
    else:
        cd = cdu = cdl = None
        theta = hfac = cf = nanf
        x_tr = np.full((B, A, 2), np.nan, dt)
        lsep = np.zeros((B, A, 2), bool)
        sep = np.zeros((B, A), bool)
        vt = out["vt"]
        k = np.argmax((vt[..., :-1] < 0) & (vt[..., 1:] >= 0), axis=-1)
    return PanelSolution(
        alpha_deg=a, mach=m, reynolds=re, nodes=c.astype(dt), reversed=rev,
        x=(0.5 * z[..., 0]).astype(dt), y=(0.5 * z[..., 1]).astype(dt), normal=normal.astype(dt),
        length=length.astype(dt), chord=out["chord"], gamma=out["gamma"], vt=out["vt"],
        cp=out["cp"], cp_incompressible=out["cp0"], cl_circulation=out["cl_circ"],
        cl_pressure=out["cl_p"], cd_pressure=out["cd_p"], cm_quarter=out["cm"],
        supercritical=supercrit, cd=cd, cd_upper=cdu, cd_lower=cdl, theta=theta,
        shape_factor=hfac, cf=cf, x_transition=x_tr, laminar_separation=lsep, separated=sep,
        stagnation_index=k, dtype=dt.name, wall_time=time.perf_counter() - started)


def field_velocity(solution: PanelSolution, points) -> dict[str, np.ndarray]:
    r"""Velocity and pressure coefficient of a solved flow at arbitrary field points.

    The free stream plus the velocity induced by every vortex panel (same closed-form influence
    as the solver), so the field is exactly irrotational and divergence-free and matches the
    surface solution up to the discretisation error (largest within about one panel length of
    the surface; do not evaluate exactly on a node, where the sheet's endpoint is singular).

    Parameters
    ----------
    solution : PanelSolution
        From :func:`solve_airfoils`.
    points : array_like, (P, 2) or (B, P, 2)
        Field points in chords, the same for every shape or one set per shape.

    Returns
    -------
    dict
        ``u``, ``v`` (B, A, P) velocity components in units of :math:`V_\infty`
        (incompressible); ``cp`` (B, A, P) :math:`1 - u^2 - v^2`, Karman-Tsien corrected with
        the solution's Mach number; ``inside`` (B, P) points inside the body polygon, where
        ``u``, ``v``, ``cp`` are NaN.

    Raises
    ------
    ValueError
        For a bad ``points`` shape or non-finite points.
    """
    B = solution.nodes.shape[0]
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("points must be a numeric array of shape (P, 2) or (B, P, 2)") from None
    if p.ndim == 2:
        p = np.broadcast_to(p, (B, *p.shape))
    if p.ndim != 3 or p.shape[0] != B or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (P, 2) or (B={B}, P, 2), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("points has non-finite values")
    dt = np.dtype(solution.dtype)
    with jax.enable_x64(dt == np.float64):
        jd = jnp.dtype(dt)
        u, v, inside = _field_batch(jnp.asarray(solution.nodes, jd),
                                    jnp.asarray(solution.gamma, jd),
                                    jnp.asarray(np.deg2rad(solution.alpha_deg), jd),
                                    jnp.asarray(p, jd))
        u, v, inside = (np.asarray(jax.device_get(q)) for q in (u, v, inside))
    cp = karman_tsien(1.0 - u**2 - v**2, solution.mach)
    return {"u": u, "v": v, "cp": cp, "inside": inside}
