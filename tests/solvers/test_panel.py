"""Tests for the airfoil panel method (surrogates.solvers.panel).

References nobody here tuned:

* Karman-Trefftz airfoils: the exact potential flow from conformal mapping of the flow past a
  circle (written from the map in :mod:`surrogates.solvers.panel_exact`; Milne-Thomson,
  "Theoretical Hydrodynamics", 1968, sections 7.30-7.31), exact lift from the Kutta
  condition on the circle.
* Thin-airfoil theory: dcl/dalpha = 2 pi per radian, with the thickness correction
  2 pi (1 + 0.77 t/c) for symmetric sections (Katz & Plotkin, "Low-Speed Aerodynamics",
  2001, section 5.x / Abbott & von Doenhoff's conformal-map lift slopes); cm_c/4 = 0.
* Prandtl-Glauert: cl(M) / cl(0) = 1 / sqrt(1 - M^2) at small M.
* Measured drag: I. H. Abbott and A. E. von Doenhoff, "Theory of Wing Sections", Dover 1959,
  Appendix IV, NACA 0012 section data (smooth model), minimum drag cd ~ 0.0058 at
  R = 6e6 (value given in the task brief; the figure was not re-read here).

Panel counts and shape combinations are few so the file runs in well under a minute on two
CPU cores (each new (shapes, angles, panels) combination is one XLA compilation).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from surrogates.solvers.panel import (
    MAX_MACH,
    critical_cp,
    field_velocity,
    karman_tsien,
    solve_airfoils,
)
from surrogates.solvers.panel_exact import KarmanTrefftz


def naca00(t: float, n: int) -> np.ndarray:
    """Symmetric NACA 00xx (closed TE coefficient -0.1036), cosine spacing, ``n`` panels in
    Selig order (TE -> upper -> LE -> lower -> TE)."""
    beta = np.linspace(0.0, np.pi, n // 2 + 1)
    x = 0.5 * (1.0 - np.cos(beta))
    y = 5.0 * t * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3
                   - 0.1036 * x**4)
    return np.stack([np.r_[x[::-1], x[1:]], np.r_[y[::-1], -y[1:]]], axis=-1)


KT = KarmanTrefftz()
ALPHA_KT = 5.0
NS = (50, 100, 200, 400)


@pytest.fixture(scope="module")
def kt_runs():
    runs = {}
    for n in NS:
        c, th = KT.coords(n)
        runs[n] = (solve_airfoils(c, ALPHA_KT), th)
    return runs


@pytest.fixture(scope="module")
def naca_pair():
    """NACA 0001 and 0012, 160 panels, alpha 0, 2, 4 deg, one batched call."""
    coords = np.stack([naca00(0.01, 160), naca00(0.12, 160)])
    return coords, solve_airfoils(coords, [0.0, 2.0, 4.0])


@pytest.fixture(scope="module")
def naca_viscous():
    c = naca00(0.12, 160)
    return {re: solve_airfoils(c, [0.0, 4.0, 8.0], reynolds=re) for re in (1e6, 3e6, 6e6, 1e7)}


def _orders(errs):
    e = np.asarray(errs)
    return np.log2(e[:-1] / e[1:])


# ----------------------------------------------------------------------------------------------
# Exact potential flow: Karman-Trefftz
# ----------------------------------------------------------------------------------------------


def test_karman_trefftz_lift_and_cp_converge(kt_runs):
    a = np.deg2rad(ALPHA_KT)
    cl_exact = KT.cl(a)
    cl_err, cp_err = [], []
    for n in NS:
        sol, th = kt_runs[n]
        thm = 0.5 * (th[:-1] + th[1:])
        u, v = KT.velocity(KT.c0 + KT.R * np.exp(1j * thm), a)
        cp_exact = 1.0 - u**2 - v**2
        keep = sol.x[0] < 0.95  # away from the TE (stagnation of a finite-angle TE)
        cp_err.append(np.sqrt(np.mean((sol.cp[0, 0] - cp_exact)[keep] ** 2)))
        cl_err.append(abs(sol.cl_circulation[0, 0] - cl_exact))
    rel = np.asarray(cl_err) / cl_exact
    # measured: rel cl error 2.3e-3, 5.8e-4, 1.8e-4, 7.1e-5 ; Cp RMS 4.4e-2 .. 6.6e-4
    assert rel[NS.index(200)] < 0.01
    assert rel[-1] < 2e-4
    assert np.all(_orders(cl_err) > 1.2), _orders(cl_err)  # observed 2.0, 1.7, 1.4
    assert np.all(_orders(cp_err) > 1.7), _orders(cp_err)  # observed 2.0, 2.0, 2.0
    assert cp_err[NS.index(200)] < 5e-3


def test_lift_circulation_equals_pressure(kt_runs, naca_pair):
    sol, _ = kt_runs[200]
    assert abs(sol.cl_circulation - sol.cl_pressure).max() < 1e-3
    assert abs(sol.cd_pressure).max() < 1e-3  # d'Alembert up to discretisation
    _, s2 = naca_pair  # NACA 0012 (the 1 % section's LE radius needs more than 160 panels)
    assert abs(s2.cl_circulation[1] - s2.cl_pressure[1]).max() < 1e-3  # measured 1e-4


def test_field_velocity_matches_exact_flow(kt_runs):
    sol, _ = kt_runs[400]
    a = np.deg2rad(ALPHA_KT)
    th = np.linspace(0.3, 2 * np.pi - 0.3, 9) + KT.th_te
    zeta = np.r_[KT.c0 + 1.3 * KT.R * np.exp(1j * th), KT.c0 + 3.0 * KT.R * np.exp(1j * th)]
    z = KT.z_of_zeta(zeta)
    ue, ve = KT.velocity(zeta, a)
    pts = np.stack([z.real, z.imag], -1)
    far = np.array([[60.0, 40.0], [-50.0, 0.0]])
    inside = np.array([[0.5, 0.0], [0.3, 0.02]])
    f = field_velocity(sol, np.r_[pts, far, inside])
    k = len(pts)
    np.testing.assert_allclose(f["u"][0, 0, :k], ue, atol=2e-3)
    np.testing.assert_allclose(f["v"][0, 0, :k], ve, atol=2e-3)
    np.testing.assert_allclose(f["cp"][0, 0, :k], 1 - ue**2 - ve**2, atol=4e-3)
    np.testing.assert_allclose(f["u"][0, 0, k:k + 2], np.cos(a), atol=3e-3)
    np.testing.assert_allclose(f["v"][0, 0, k:k + 2], np.sin(a), atol=3e-3)
    assert f["inside"][0].tolist() == [False] * (k + 2) + [True, True]
    assert np.all(np.isnan(f["u"][0, 0, k + 2:]))


# ----------------------------------------------------------------------------------------------
# Thin-airfoil theory, symmetric sections
# ----------------------------------------------------------------------------------------------


def test_lift_slope_and_moment_symmetric(naca_pair):
    _, sol = naca_pair
    slope = (sol.cl_circulation[:, 2] - sol.cl_circulation[:, 0]) / np.deg2rad(4.0)
    # 1 % thick: 2 pi within 2 %; 12 % thick: 2 pi (1 + 0.77 t/c) within 1.5 %
    assert slope[0] == pytest.approx(2 * np.pi, rel=0.02)
    assert slope[1] == pytest.approx(2 * np.pi * (1 + 0.77 * 0.12), rel=0.015)
    assert np.all(np.abs(sol.cl_circulation[:, 0]) < 1e-10)  # symmetric at alpha = 0
    assert np.all(np.abs(sol.cm_quarter) < 0.01)  # measured -0.0055 (0012, 4 deg)
    # Selig order: suction (vt < 0) on the upper surface, stagnation near the LE
    k = sol.stagnation_index[1, 2]
    assert abs(sol.x[1, k]) < 0.02 and sol.vt[1, 2, 10] < 0 < sol.vt[1, 2, -10]


# ----------------------------------------------------------------------------------------------
# Compressibility
# ----------------------------------------------------------------------------------------------


def test_karman_tsien_vs_prandtl_glauert(naca_pair):
    coords, s0 = naca_pair  # NACA 0012 (0001's LE suction is supercritical even at M 0.2)
    # Karman-Tsien lies above Prandtl-Glauert, more so for larger |Cp|: measured ratio to
    # 1/sqrt(1 - M^2) is 1.006-1.007 at M 0.2 and 1.027-1.033 at M 0.4 (alpha 2, 4 deg)
    for m, tol in ((0.2, 0.01), (0.4, 0.04)):
        sm = solve_airfoils(coords[1], [0.0, 2.0, 4.0], mach=m)
        ratio = sm.cl_pressure[0, 1:] / s0.cl_pressure[1, 1:] * np.sqrt(1 - m**2)
        assert np.all(ratio >= 1.0) and np.all(ratio < 1 + tol), ratio
        np.testing.assert_allclose(sm.cl_circulation[0], s0.cl_circulation[1])
        np.testing.assert_allclose(sm.cp[0], karman_tsien(s0.cp[1], m))
    assert karman_tsien(0.0, 0.5) == 0.0
    # isentropic Cp* (Anderson, Fundamentals of Aerodynamics, eq. 11.60): -1.294 at M 0.6
    assert critical_cp(0.6) == pytest.approx(-1.2943, abs=1e-3)


def test_mach_limits(naca_pair):
    coords, _ = naca_pair
    with pytest.raises(ValueError, match="mach"):
        solve_airfoils(coords, 0.0, mach=MAX_MACH + 0.05)
    with pytest.raises(ValueError, match="mach"):
        solve_airfoils(coords, 0.0, mach=-0.1)
    # NACA 0012 at 4 deg, M 0.6: suction peak beyond critical -> refused, or flagged
    with pytest.raises(ValueError, match="supersonic"):
        solve_airfoils(coords, [0.0, 2.0, 4.0], mach=0.6)
    s = solve_airfoils(coords, [0.0, 2.0, 4.0], mach=0.6, strict_mach=False)
    assert s.supercritical[1, 2] and not s.supercritical[1, 0]


# ----------------------------------------------------------------------------------------------
# Viscous drag
# ----------------------------------------------------------------------------------------------


def test_drag_naca0012_against_abbott_von_doenhoff(naca_viscous):
    s = naca_viscous[6e6]
    cd0 = s.cd[0, 0]
    # Abbott & von Doenhoff (1959) App. IV, NACA 0012, R = 6e6 smooth: cd ~ 0.0058.
    # Tolerance 25 %: Michel's transition and Head's method are typically 10-25 % off.
    assert cd0 == pytest.approx(0.0058, rel=0.25)  # measured 0.0061
    assert s.cd_upper[0, 0] == pytest.approx(s.cd_lower[0, 0], rel=1e-10)  # symmetric
    assert np.all(np.diff(s.cd[0]) > 0)  # rises with alpha
    cds = [naca_viscous[re].cd[0, 0] for re in (1e6, 3e6, 6e6, 1e7)]
    assert np.all(np.diff(cds) < 0), cds  # falls with Reynolds number
    assert not s.separated[0, 0]
    # transition moves forward on the upper surface as alpha rises
    assert np.all(np.diff(s.x_transition[0, :, 0]) < 0)
    assert np.all(np.isfinite(s.cf[0, 0, s.x[0] < 0.95]))
    assert np.all(s.cf[0, 0, s.x[0] < 0.95] > 0)


def test_tripped_drag_against_turbulent_flat_plate():
    """Fully turbulent layers (trip at the stagnation point) on thin symmetric sections at zero
    lift against Schlichting's turbulent flat plate, 2 x 0.455 / (log10 Re)^2.58 per side, times
    Hoerner's thickness form factor 1 + 2 t/c + 60 (t/c)^4 (Hoerner, Fluid-Dynamic Drag, 1965,
    ch. 6). Measured ratios 0.93-0.97."""
    for t in (0.02, 0.04, 0.06):
        c = naca00(t, 60)
        for re in (1e6, 1e7):
            s = solve_airfoils(c, 0.0, reynolds=re, x_transition=0.0)
            plate = 2 * 0.455 / np.log10(re) ** 2.58 * (1 + 2 * t + 60 * t**4)
            assert s.cd[0, 0] == pytest.approx(plate, rel=0.1), (t, re)
            assert np.all(s.x_transition[0, 0] < 0.02)  # tripped right at the leading edge
            free = solve_airfoils(c, 0.0, reynolds=re)
            assert s.cd[0, 0] > free.cd[0, 0]  # turbulent skin friction exceeds laminar
    # a trip at the trailing edge never fires: identical to free transition
    c = naca00(0.12, 60)
    late = solve_airfoils(c, [0.0, 4.0], reynolds=3e6, x_transition=1.0)
    free = solve_airfoils(c, [0.0, 4.0], reynolds=3e6)
    np.testing.assert_array_equal(late.cd, free.cd)
    with pytest.raises(ValueError, match="x_transition"):
        solve_airfoils(c, 0.0, reynolds=3e6, x_transition=1.5)


# ----------------------------------------------------------------------------------------------
# Batching, precision, inputs
# ----------------------------------------------------------------------------------------------


def test_batched_equals_one_by_one_and_float32(naca_pair):
    coords, s = naca_pair
    before = bool(jax.config.jax_enable_x64)
    one = solve_airfoils(coords[1], [0.0, 2.0, 4.0])
    assert bool(jax.config.jax_enable_x64) == before  # 64-bit mode only inside the call
    assert s.cp.dtype == np.float64
    np.testing.assert_allclose(one.cp[0], s.cp[1], rtol=1e-10, atol=1e-12)
    single = solve_airfoils(coords[1], 4.0)
    np.testing.assert_allclose(single.cl_pressure[0, 0], s.cl_pressure[1, 2], rtol=1e-10)
    f32 = solve_airfoils(coords, [0.0, 2.0, 4.0], dtype="float32")
    assert f32.cp.dtype == np.float32
    np.testing.assert_allclose(f32.cl_circulation, s.cl_circulation, atol=2e-3)
    # clockwise input is reversed and gives the same answer
    rev = solve_airfoils(coords[1, ::-1], [0.0, 2.0, 4.0])
    assert rev.reversed[0]
    np.testing.assert_allclose(rev.cl_pressure[0], s.cl_pressure[1], rtol=1e-10, atol=1e-12)


def test_bad_inputs():
    c = naca00(0.12, 40)
    with pytest.raises(ValueError, match="closed"):
        solve_airfoils(c[:-5], 0.0)  # open polygon
    bad = c.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        solve_airfoils(bad, 0.0)
    with pytest.raises(ValueError, match="shape"):
        solve_airfoils(c[:, :1], 0.0)
    with pytest.raises(ValueError, match=">= 8"):
        solve_airfoils(naca00(0.12, 6), 0.0)
    with pytest.raises(ValueError, match="zero length"):
        solve_airfoils(np.insert(c, 5, c[5], axis=0), 0.0)
    with pytest.raises(ValueError, match="alpha"):
        solve_airfoils(c, np.nan)
    with pytest.raises(ValueError, match="reynolds"):
        solve_airfoils(c, 0.0, reynolds=-1.0)
    with pytest.raises(ValueError, match="dtype"):
        solve_airfoils(c, 0.0, dtype="float16")
