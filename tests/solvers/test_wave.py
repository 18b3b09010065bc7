"""Tests for the FDTD room-acoustics solver (surrogates.solvers.wave).

References are closed forms nobody here tuned: the exact spherical Gaussian pulse in free
space (d'Alembert for r p), the cosine-mode series of a rigid rectangular room, the plane-wave
reflection coefficient sqrt(1 - alpha) of an impedance wall. Grids are small (the whole file
runs in well under a minute on two CPU cores).
"""

from __future__ import annotations

import numpy as np
import pytest

from surrogates.solvers.wave import (
    Room,
    WaveSolution,
    acoustic_energy,
    cfl_limit,
    gaussian_pulse,
    impedance_from_absorption,
    simulate,
)
from surrogates.solvers.wave_exact import free_field_pulse_3d, rigid_room_modal

C = 343.0


def _orders(errs) -> np.ndarray:
    e = np.asarray(errs)
    return np.log2(e[:-1] / e[1:])


# ----------------------------------------------------------------------------------------------
# Room, helpers
# ----------------------------------------------------------------------------------------------


def test_room_grid_and_helpers():
    room = Room((2.0, 1.5), 0.25)
    assert room.dim == 2 and room.shape == (9, 7)
    np.testing.assert_allclose(room.coords[1], np.arange(7) * 0.25)
    assert room.absorption == (0.0,) * 4
    assert Room((1.0, 1.0, 1.0), 0.5, absorption=0.3).absorption == (0.3,) * 6
    np.testing.assert_allclose(gaussian_pulse([[0.0, 0.0], [0.3, 0.4]], [0.0, 0.0], 0.5, 2.0),
                               [2.0, 2.0 * np.exp(-0.25 / 0.5)])
    # xi from alpha: R = (xi - 1)/(xi + 1) = sqrt(1 - alpha); 1/xi = 0 rigid, 1 absorbing.
    alpha = np.array([0.0, 0.36, 0.75, 1.0])
    inv_xi = impedance_from_absorption(alpha)
    np.testing.assert_allclose(inv_xi[[0, 3]], [0.0, 1.0])
    xi = 1.0 / inv_xi[1:3]
    np.testing.assert_allclose((xi - 1) / (xi + 1), np.sqrt(1 - alpha[1:3]))
    assert cfl_limit(2, 2) == pytest.approx(2**-0.5) and cfl_limit(3, 4) == pytest.approx(0.5)


def test_free_field_formula_limits():
    # r -> 0 limit continuous, t = 0 gives the initial Gaussian.
    t = np.linspace(0, 2e-3, 7)
    near = free_field_pulse_3d(1e-3, t, c=C, width=0.2)
    at0 = free_field_pulse_3d(0.0, t, c=C, width=0.2)
    np.testing.assert_allclose(near, at0, atol=1e-4)
    r = np.linspace(0, 1, 11)
    np.testing.assert_allclose(free_field_pulse_3d(r, 0.0, c=C, width=0.2, amplitude=3.0),
                               3.0 * np.exp(-(r**2) / 0.08), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Accuracy against exact solutions
# ----------------------------------------------------------------------------------------------


def test_free_field_3d_matches_exact_spherical_pulse():
    """3D pulse in a 2.4 m cube (h = 5 cm, sigma = 20 cm) vs the exact free-space solution at
    receivers 0.3 and 0.5 m from the source, up to ct = 1 m (before any wall reflection:
    the nearest image is 1.9 m away), Courant number 0.2. Measured relative max errors:
    0.71% (order 2), 0.042% (order 4)."""
    room = Room((2.4, 2.4, 2.4), 0.05)
    src = np.array([1.2, 1.2, 1.2])
    r = np.array([0.3, 0.5])
    recs = src + np.stack([r, np.zeros(2), np.zeros(2)], axis=1)
    recs[1] = src + np.array([0.0, 0.3, 0.4])  # off-axis receiver, r = 0.5
    t = np.linspace(0.0, 1.0 / C, 21)
    exact = free_field_pulse_3d(r[None, :], t[:, None], c=C, width=0.2)
    err = {}
    for order in (2, 4):
        sol = simulate(room, src, t, receivers=recs, save_field=False, order=order, cfl=0.2)
        assert sol.field is None and sol.receivers.shape == (1, 21, 2)
        err[order] = np.abs(sol.receivers[0] - exact).max() / np.abs(exact).max()
    assert err[2] < 0.015
    assert err[4] < 1e-3
    assert err[4] < err[2] / 5


def test_rigid_room_2d_matches_modal_solution_after_reflections():
    """Rigid 2 x 1.6 m room, pulse at the centre, at t = 3 m / c (several wall reflections):
    max error / max |p| below 4% (order 2, h = 2.5 cm, Courant 0.5; measured 2.8%) and 0.1%
    (order 4, Courant 0.125 so leapfrog's time error is small; measured 0.04%)."""
    room = Room((2.0, 1.6), 0.025)
    s = np.array([1.0, 0.8])
    T = 3.0 / C
    exact = rigid_room_modal(room.points(), T, room, s, width=0.15)
    scale = np.abs(exact).max()
    for order, cfl, bound in ((2, 0.5, 0.04), (4, 0.125, 1e-3)):
        sol = simulate(room, s, [0.0, T / 2, T], pulse_width=0.15, order=order, cfl=cfl)
        assert sol.field.shape == (1, 3, *room.shape)
        err = np.abs(sol.field[0, -1] - exact).max() / scale
        print(f"rigid room order {order}: relative max error {err:.3g}")
        assert err < bound, (order, err)
    # The modal solution at t = 0 reproduces the Gaussian (far from the walls).
    np.testing.assert_allclose(rigid_room_modal(room.points(), 0.0, room, s, width=0.15),
                               gaussian_pulse(room.points(), s, 0.15), atol=1e-6)


@pytest.mark.parametrize("order", [2, 4])
def test_observed_order_of_accuracy(order):
    """Rigid room, t = 3 m / c, h = 10, 5, 2.5, 1.25 cm, error vs the modal solution.

    Order 2: fixed Courant number 0.5 (leapfrog's O(dt^2) is then O(h^2) too). Order 4:
    Courant number 0.5 h / (10 cm), i.e. dt ~ h^2, so leapfrog's O(dt^2) is O(h^4) and the
    spatial order shows. Measured orders: 2.29, 2.11, 2.06 and 3.88, 4.02, 3.99."""
    L, s, sig, T = (2.0, 1.6), np.array([1.0, 0.8]), 0.15, 3.0 / C
    hs = (0.1, 0.05, 0.025, 0.0125)
    errs = []
    for h in hs:
        room = Room(L, h)
        cfl = 0.5 if order == 2 else 0.5 * h / 0.1
        sol = simulate(room, s, [0.0, T], pulse_width=sig, order=order, cfl=cfl)
        exact = rigid_room_modal(room.points(), T, room, s, width=sig)
        errs.append(np.abs(sol.field[0, -1] - exact).max())
    orders = _orders(errs)
    np.testing.assert_allclose(orders[1:], order, atol=0.3)
    assert orders[0] > order - 0.3


# ----------------------------------------------------------------------------------------------
# Walls: energy and absorption
# ----------------------------------------------------------------------------------------------


def _consecutive_steps(room, src, n_steps, order=2, cfl=0.6):
    """Fields at consecutive internal steps (output interval = one step)."""
    interval = cfl * room.spacing / room.c
    sol = simulate(room, src, np.arange(n_steps + 1) * interval, order=order, cfl=cfl)
    assert sol.n_substeps == 1
    return sol


@pytest.mark.parametrize("order", [2, 4])
def test_energy_conserved_in_rigid_room(order):
    """Rigid room with obstacles (a box, a single solid node, a one-node-thin wall), 400
    steps: relative energy drift < 1e-12 (measured 2e-15)."""
    ob = np.zeros((21, 17), bool)
    ob[12:15, 4:10] = True
    ob[5, 5] = True
    ob[3:8, 12] = True
    room = Room((1.0, 0.8), 0.05, obstacles=ob)
    sol = _consecutive_steps(room, [0.3, 0.4], 400, order=order)
    f = sol.field[0]
    E = acoustic_energy(f[:-1], f[1:], room, sol.dt, order=order)
    assert E.shape == (400,) and np.all(E > 0)
    assert np.max(np.abs(E / E[0] - 1)) < 1e-12


def test_energy_decays_with_absorbing_walls():
    room = Room((1.0, 0.8), 0.05, absorption=(0.5, 0.2, 0.0, 0.9))
    sol = _consecutive_steps(room, [0.3, 0.4], 400)
    f = sol.field[0]
    E = acoustic_energy(f[:-1], f[1:], room, sol.dt)
    dE = np.diff(E)
    assert np.all(dE <= 1e-13 * E[0])  # never increases
    assert np.sum(dE < -1e-6 * E[0]) > 200  # and decays at most steps
    assert E[-1] < 0.5 * E[0]


def _channel_reflection(alpha, order):
    """Quasi-1D channel (0.1 m wide, rigid sides): a plane pulse from x = 1 m hits the x- wall
    (absorption alpha); the difference to the same run in a 6 m channel (wall 5 m away) at a
    receiver 0.5 m from the wall is the reflected pulse. Returns reflected / incident peak."""
    h, t = 0.025, np.arange(0.0, 2.4 / C, 0.02 / C)
    small = Room((2.0, 0.1), h, absorption=(alpha, 0.0, 0.0, 0.0))
    big = Room((6.0, 0.1), h)
    a = simulate(small, [1.0, 0.05], t, receivers=[[0.5, 0.05]], save_field=False, order=order)
    b = simulate(big, [5.0, 0.05], t, receivers=[[4.5, 0.05]], save_field=False, order=order)
    diff = a.receivers[0, :, 0] - b.receivers[0, :, 0]
    return np.abs(diff).max() / np.abs(b.receivers[0, :, 0]).max()


@pytest.mark.parametrize("order", [2, 4])
def test_absorbing_wall_reflection(order):
    """alpha = 1: reflection < 1% of the incident amplitude (measured 0.08% / 0.54%);
    alpha = 0.75 reflects sqrt(1 - alpha) = 0.5 and a rigid wall 1, within 1%."""
    assert _channel_reflection(1.0, order) < 0.01
    assert _channel_reflection(0.75, order) == pytest.approx(0.5, abs=0.01)
    assert _channel_reflection(0.0, order) == pytest.approx(1.0, abs=0.01)


# ----------------------------------------------------------------------------------------------
# Batching, precision, obstacles
# ----------------------------------------------------------------------------------------------


def test_batched_equals_single_and_float32():
    room = Room((1.0, 0.8), 0.05, absorption=0.3)
    srcs = np.array([[0.3, 0.4], [0.5, 0.5], [0.7, 0.2]])
    t = np.linspace(0, 2.0 / C, 5)
    recs = [[0.2, 0.2], [0.81, 0.33]]
    full = simulate(room, srcs, t, receivers=recs)
    chunked = simulate(room, srcs, t, receivers=recs, batch_size=2, progress=False)
    assert isinstance(full, WaveSolution) and full.field.shape == (3, 5, 21, 17)
    for i, s in enumerate(srcs):
        one = simulate(room, s, t, receivers=recs)
        np.testing.assert_allclose(full.field[i], one.field[0], rtol=0, atol=1e-14)
        np.testing.assert_allclose(full.receivers[i], one.receivers[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(chunked.field, full.field, rtol=0, atol=1e-14)
    # receivers = multilinear interpolation of the saved nodes
    f = full.field[:, :, 16:18, 6:8]  # nodes around (0.81, 0.33)
    fx, fy = 0.2, 0.6
    w = np.array([[(1 - fx) * (1 - fy), (1 - fx) * fy], [fx * (1 - fy), fx * fy]])
    np.testing.assert_allclose(full.receivers[:, :, 1], np.einsum("btij,ij->bt", f, w),
                               atol=1e-12)
    f32 = simulate(room, srcs, t, receivers=recs, dtype="float32")
    assert f32.field.dtype == np.float32 and f32.receivers.dtype == np.float32
    np.testing.assert_allclose(f32.field, full.field, atol=1e-5)


def test_obstacle_shadows_receiver():
    """A rigid screen between source and receiver: the direct pulse at the shadowed receiver
    drops to under 10% of the free value (measured 2.2%), a receiver on the source side is
    unchanged until the screen's echo arrives."""
    h = 0.05
    room_free = Room((3.0, 2.0), h)
    ob = np.zeros(room_free.shape, bool)
    ob[30:32, 5:36] = True  # screen at x = 1.5-1.55 m, y = 0.25-1.75 m
    room_ob = Room((3.0, 2.0), h, obstacles=ob)
    src = [1.0, 1.0]
    recs = [[2.0, 1.0], [0.6, 1.0]]  # behind the screen; on the source side
    t = np.linspace(0, 1.0 / C, 41)  # ct <= 1 m: before the screen's reflection reaches rec 2
    free = simulate(room_free, src, t, receivers=recs, save_field=False)
    shad = simulate(room_ob, src, t, receivers=recs, save_field=False)
    peak_free = np.abs(free.receivers[0, :, 0]).max()
    peak_shad = np.abs(shad.receivers[0, :, 0]).max()
    assert peak_shad < 0.1 * peak_free, (peak_shad, peak_free)
    early = t * C < 0.55  # the screen echo (path 0.5 + 0.9 m, sigma 0.2 m) arrives later
    np.testing.assert_allclose(shad.receivers[0, early, 1], free.receivers[0, early, 1],
                               atol=1e-3)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def test_bad_inputs_raise():
    room = Room((1.0, 0.8), 0.05)
    t = np.linspace(0, 1e-3, 5)
    with pytest.raises(ValueError, match="stability limit"):
        simulate(room, [0.5, 0.4], t, cfl=0.75)
    with pytest.raises(ValueError, match="stability limit"):
        simulate(room, [0.5, 0.4], t, order=4, cfl=0.65)
    with pytest.raises(ValueError, match="outside the room"):
        simulate(room, [1.5, 0.4], t)
    with pytest.raises(ValueError, match="start at 0"):
        simulate(room, [0.5, 0.4], t + 1e-4)
    with pytest.raises(ValueError, match="uniformly"):
        simulate(room, [0.5, 0.4], [0.0, 1e-4, 3e-4])
    with pytest.raises(ValueError, match="finite"):
        simulate(room, [np.nan, 0.4], t)
    with pytest.raises(ValueError, match="order"):
        simulate(room, [0.5, 0.4], t, order=3)
    with pytest.raises(ValueError, match="dtype"):
        simulate(room, [0.5, 0.4], t, dtype="float16")
    with pytest.raises(ValueError, match="nothing to return"):
        simulate(room, [0.5, 0.4], t, save_field=False)
    with pytest.raises(ValueError, match="shape"):
        simulate(room, [[0.5, 0.4, 0.1]], t)
    ob = np.zeros(room.shape, bool)
    ob[10, 8] = True
    with pytest.raises(ValueError, match="obstacle"):
        simulate(Room((1.0, 0.8), 0.05, obstacles=ob), [0.5, 0.4], t)
    with pytest.raises(ValueError, match="2D and 3D"):
        Room((1.0,), 0.1)
    with pytest.raises(ValueError, match="integer multiple"):
        Room((1.0, 0.83), 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Room((1.0, 1.0), 0.1, absorption=1.2)
    with pytest.raises(ValueError, match="4 values"):
        Room((1.0, 1.0), 0.1, absorption=(0.1, 0.2))
    with pytest.raises(ValueError, match="shape"):
        Room((1.0, 1.0), 0.1, obstacles=np.zeros((3, 3), bool))
