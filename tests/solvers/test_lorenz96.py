"""Tests for the multiscale Lorenz-96 solver (surrogates.solvers.lorenz96).

The reference right-hand sides below are written independently of the module (plain NumPy,
explicit loops or ``np.roll`` on the flattened rings) so that a shared mistake cannot hide.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from surrogates.solvers import lorenz96 as l96
from surrogates.solvers.lorenz96 import (
    Lorenz96Params,
    Lorenz96State,
    coarse_tendency,
    random_initial_state,
    solve,
    solve_unbatched,
    tendencies,
)

CLASSIC = Lorenz96Params()  # F=10, h=1, b=10, c=10
MNO = Lorenz96Params(F=20.0, h=0.5, b=10.0, c=8.0, d=10.0, e=10.0)  # three-tier setting


# ----------------------------------------------------------------------------------------------
# Independent reference right-hand sides
# ----------------------------------------------------------------------------------------------


def rhs_loops(X, Y, Z, F, h, b, c, d, e, g):
    """One sample, explicit loops over the periodic rings (Y, Z run across their parents)."""
    K, J = Y.shape
    I = 0 if Z is None else Z.shape[2]  # noqa: E741
    y = Y.ravel()
    N = y.size
    dX = np.empty(K)
    for k in range(K):
        dX[k] = (
            X[(k - 1) % K] * (X[(k + 1) % K] - X[(k - 2) % K])
            - X[k]
            + F
            - h * c / b * sum(Y[k, j] for j in range(J))
        )
    dy = np.empty(N)
    for n in range(N):
        dy[n] = -c * b * y[(n + 1) % N] * (y[(n + 2) % N] - y[(n - 1) % N]) - c * y[n]
        dy[n] += h * c / b * X[n // J]
        if I:
            dy[n] -= h * e / d * Z.reshape(N, I)[n].sum()
    if not I:
        return dX, dy.reshape(K, J), None
    z = Z.ravel()
    M = z.size
    dz = np.empty(M)
    for m in range(M):
        dz[m] = (
            e * d * z[(m - 1) % M] * (z[(m + 1) % M] - z[(m - 2) % M])
            - g * e * z[m]
            + h * e / d * y[m // I]
        )
    return dX, dy.reshape(K, J), dz.reshape(K, J, I)


def make_rhs_flat(K, J, I, p: Lorenz96Params):  # noqa: E741
    """Right-hand side on the flat vector [X, Y, Z] for scipy (np.roll on the rings)."""
    F, h, b, c, d, e, g = (float(getattr(p, n)) for n in ("F", "h", "b", "c", "d", "e", "g_z"))

    def rhs(t, u):
        X, Y, Z = u[:K], u[K : K + K * J], u[K + K * J :]
        dX = np.roll(X, 1) * (np.roll(X, -1) - np.roll(X, 2)) - X + F
        dX -= h * c / b * Y.reshape(K, J).sum(axis=1)
        dY = -c * b * np.roll(Y, -1) * (np.roll(Y, -2) - np.roll(Y, 1)) - c * Y
        dY += h * c / b * np.repeat(X, J)
        if I == 0:
            return np.concatenate([dX, dY])
        dY -= h * e / d * Z.reshape(K * J, I).sum(axis=1)
        dZ = e * d * np.roll(Z, 1) * (np.roll(Z, -1) - np.roll(Z, 2)) - g * e * Z
        dZ += h * e / d * np.repeat(Y, I)
        return np.concatenate([dX, dY, dZ])

    return rhs


def flat(state, b=0, t=None):
    parts = [state.X, state.Y] + ([] if state.Z is None else [state.Z])
    return np.concatenate([(a[b] if t is None else a[b, t]).ravel() for a in parts])


# ----------------------------------------------------------------------------------------------
# Right-hand side
# ----------------------------------------------------------------------------------------------


def test_tendencies_match_explicit_loops_with_per_sample_params():
    s = random_initial_state(2, K=5, J=3, I=2, seed=7)
    s = s._replace(Y=s.Y + 0.3, Z=s.Z + 0.2)  # break any accidental symmetry
    p = Lorenz96Params(
        F=np.array([8.0, 12.0]),
        h=np.array([1.0, 0.5]),
        b=10.0,
        c=np.array([10.0, 8.0]),
        d=np.array([10.0, 5.0]),
        e=10.0,
        g_z=np.array([1.0, 2.0]),
    )
    with jax.enable_x64(True):
        got = tendencies(s, p)
        assert got.X.dtype == jnp.float64
    for i in range(2):
        names = ("F", "h", "b", "c", "d", "e", "g_z")
        pi = [np.broadcast_to(getattr(p, n), (2,))[i] for n in names]
        ref = rhs_loops(s.X[i], s.Y[i], s.Z[i], *pi)
        for a, r in zip(got, ref, strict=True):
            np.testing.assert_allclose(np.asarray(a)[i], r, rtol=1e-13, atol=1e-12)


def test_two_tier_tendencies_and_coarse_tendency():
    s = random_initial_state(3, K=6, J=4, seed=1)
    with jax.enable_x64(True):
        got = tendencies(s, CLASSIC)
        assert got.Z is None
        # coarse_tendency works on JAX arrays too and returns JAX.
        cj = coarse_tendency(jnp.asarray(s.X), jnp.asarray([10.0, 10.0, 10.0]))
        assert isinstance(cj, jax.Array)
    for i in range(3):
        dX, dY, _ = rhs_loops(s.X[i], s.Y[i], None, 10.0, 1.0, 10.0, 10.0, 10.0, 10.0, 1.0)
        np.testing.assert_allclose(np.asarray(got.X)[i], dX, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(np.asarray(got.Y)[i], dY, rtol=1e-13, atol=1e-12)
    # dX/dt = coarse tendency + coupling -(hc/b) sum_j Y
    coarse = coarse_tendency(s.X, 10.0)
    assert isinstance(coarse, np.ndarray)
    np.testing.assert_allclose(coarse - s.Y.sum(-1), np.asarray(got.X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(cj), coarse, rtol=1e-12, atol=1e-12)
    # F is aligned with the leading axes: F (B,) with X (B, T, K).
    XT = np.stack([s.X, 2 * s.X], axis=1)  # (3, 2, 6)
    F = np.array([1.0, 2.0, 3.0])
    got_bt = coarse_tendency(XT, F)
    for i in range(3):
        for t in range(2):
            np.testing.assert_allclose(got_bt[i, t], coarse_tendency(XT[i, t], F[i]))
    with pytest.raises(ValueError, match="fewer axes"):
        coarse_tendency(s.X, np.ones((3, 6)))


# ----------------------------------------------------------------------------------------------
# Accuracy: agreement with scipy and observed order
# ----------------------------------------------------------------------------------------------

HORIZON = 0.2  # MTU
DTS = (0.005, 0.0025, 0.00125)


@pytest.fixture(scope="module", params=["two-tier", "three-tier"])
def accuracy_runs(request):
    """Spun-up start, a DOP853 reference at HORIZON and RK4 end states for each dt in DTS."""
    if request.param == "two-tier":
        K, J, I, p = 8, 4, 0, CLASSIC  # noqa: E741
    else:
        K, J, I, p = 4, 4, 4, MNO  # noqa: E741
    s0 = random_initial_state(1, K, J, I, seed=3)
    spun = solve(s0, p, dt=0.005, n_steps=1, spinup_steps=200).final_state  # 1 MTU spin-up
    sol = solve_ivp(
        make_rhs_flat(K, J, I, p),
        (0.0, HORIZON),
        flat(spun),
        method="DOP853",
        rtol=1e-12,
        atol=1e-12,
    )
    assert sol.success
    ends = {}
    for dt in DTS:
        n = int(round(HORIZON / dt))
        ends[dt] = flat(solve(spun, p, dt=dt, n_steps=n, save_every=n).final_state)
    return request.param, K, J, I, flat(spun), sol.y[:, -1], ends


def test_agrees_with_solve_ivp(accuracy_runs):
    name, K, J, I, start, ref, ends = accuracy_runs  # noqa: E741
    # Tolerance: RK4's global error is C * dt^4. At dt = 0.0025 MTU the fastest rates (c*b*|Y|
    # ~ 50-100 per MTU) give dt*lambda ~ 0.1-0.25, and the step-doubling (Richardson) estimate
    # of the error, |u(dt) - u(dt/2)| * 16/15, is ~1e-5 (two-tier) and ~5e-7 (three-tier). We
    # require the error to be below 3x that estimate, and the estimate itself to be small, so a
    # wrong term (O(1) error) or a lower-order scheme cannot pass. The DOP853 reference at
    # rtol = atol = 1e-12 is many orders more accurate.
    u, u_half = ends[0.0025], ends[0.00125]
    estimate = np.abs(u - u_half).max() * 16 / 15
    assert estimate < (5e-5 if name == "two-tier" else 2e-6)
    err = np.abs(u - ref)
    assert err.max() <= 3 * estimate + 1e-10
    # Per component: X, Y (and Z) all agree.
    assert err[:K].max() < 1e-5
    assert err[K : K + K * J].max() < 5e-5
    if I:
        assert err[K + K * J :].max() < 5e-5
    # The state moved by O(1) over the horizon, so the agreement means something.
    assert np.abs(ref - start).max() > 0.3


def test_fourth_order_convergence(accuracy_runs):
    *_, ref, ends = accuracy_runs
    errs = np.array([np.abs(ends[dt] - ref).max() for dt in DTS])
    assert errs[-1] > 1e-10  # still well above the reference's own error
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all((orders >= 3.7) & (orders <= 4.3)), f"observed orders {orders}, errors {errs}"


# ----------------------------------------------------------------------------------------------
# Batching, outputs
# ----------------------------------------------------------------------------------------------


def test_batched_matches_unbatched_and_per_sample_params():
    s = random_initial_state(3, K=8, J=4, seed=11)
    Fs = np.array([8.0, 10.0, 14.0])
    batched = solve(s, Lorenz96Params(F=Fs), dt=0.005, n_steps=20, save_every=20)
    for i in range(3):
        one = Lorenz96State(s.X[i : i + 1], s.Y[i : i + 1], None)
        single = solve(one, Lorenz96Params(F=float(Fs[i])), dt=0.005, n_steps=20, save_every=20)
        for name in ("X", "Y", "coupling", "closure_target"):
            np.testing.assert_allclose(
                getattr(batched, name)[i],
                getattr(single, name)[0],
                rtol=1e-12,
                atol=1e-12,
                err_msg=name,
            )
    un = solve_unbatched(
        Lorenz96State(s.X[1], s.Y[1], None),
        Lorenz96Params(F=10.0),
        dt=0.005,
        n_steps=20,
        save_every=20,
    )
    assert un.X.shape == (2, 8) and un.Y.shape == (2, 8, 4) and un.Z is None
    assert un.final_state.X.shape == (8,)
    np.testing.assert_allclose(un.Y, batched.Y[1], rtol=1e-12, atol=1e-12)


def test_samples_do_not_depend_on_batching():
    # 130 samples span two CPU chunks; any subset, in any batch, gives bitwise the same result.
    s = random_initial_state(130, K=8, J=4, seed=3)
    p = Lorenz96Params(F=np.linspace(8.0, 12.0, 130))
    full = solve(s, p, dt=0.004, n_steps=40, save_every=20)
    for idx in (np.array([4]), np.array([127, 128, 129]), np.arange(0, 130, 7)):
        part = solve(
            Lorenz96State(s.X[idx], s.Y[idx], None),
            Lorenz96Params(F=p.F[idx]),
            dt=0.004,
            n_steps=40,
            save_every=20,
        )
        for name in ("X", "Y", "coupling", "closure_target"):
            np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[idx])


def test_closure_target_and_coupling():
    s = random_initial_state(2, K=8, J=4, I=2, seed=5)
    p = Lorenz96Params(F=np.array([20.0, 15.0]), h=0.5, b=10.0, c=8.0, d=10.0, e=10.0)
    dt = 0.005
    tr = solve(s, p, dt=dt, n_steps=10, spinup_steps=20)
    assert tr.X.shape == (2, 11, 8) and tr.Z.shape == (2, 11, 8, 4, 2)
    # Forward Euler with the target reproduces the resolved X (to round-off).
    euler = tr.X[:, :-1] + dt * (coarse_tendency(tr.X[:, :-1], p.F) + tr.closure_target[:, :-1])
    np.testing.assert_allclose(euler, tr.X[:, 1:], rtol=0, atol=1e-12)
    # Coupling is exactly -(hc/b) sum_j Y.
    np.testing.assert_allclose(tr.coupling, -(0.5 * 8.0 / 10.0) * tr.Y.sum(-1), atol=1e-13)
    # The last frame's target uses one extra step: continuing the run reproduces it.
    more = solve(tr.final_state, p, dt=dt, n_steps=10)
    np.testing.assert_allclose(more.X[:, 0], tr.X[:, -1], rtol=0, atol=0)
    np.testing.assert_allclose(more.closure_target[:, 0], tr.closure_target[:, -1], atol=1e-10)
    np.testing.assert_allclose(
        tr.X[:, -1] + dt * (coarse_tendency(tr.X[:, -1], p.F) + tr.closure_target[:, -1]),
        more.X[:, 1],
        rtol=0,
        atol=1e-12,
    )


def test_save_every_thinning_and_time():
    s = random_initial_state(2, K=8, J=4, seed=2)
    full = solve(s, dt=0.005, n_steps=12, save_every=1, spinup_steps=7)
    thin = solve(s, dt=0.005, n_steps=12, save_every=4, spinup_steps=7)
    np.testing.assert_allclose(full.time, 0.005 * np.arange(13), rtol=1e-15)
    np.testing.assert_allclose(thin.time, [0.0, 0.02, 0.04, 0.06], rtol=1e-15)
    assert thin.time[0] == 0.0
    for name in ("X", "Y", "coupling", "closure_target"):
        np.testing.assert_allclose(
            getattr(thin, name),
            getattr(full, name)[:, ::4],
            rtol=1e-12,
            atol=1e-12,
            err_msg=name,
        )
    np.testing.assert_allclose(thin.final_state.X, full.X[:, -1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(thin.final_state.Y, full.final_state.Y, rtol=1e-12, atol=1e-12)
    # The chunked path behind the progress bar gives the same result.
    prog = solve(s, dt=0.005, n_steps=12, save_every=4, spinup_steps=7, show_progress=True)
    for a, b in zip(prog[1:3] + prog[4:6], thin[1:3] + thin[4:6], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_dtype_float32_and_no_recompilation():
    s = random_initial_state(2, K=8, J=4, seed=2)
    n_compiled = l96._integrate._cache_size()
    a = solve(s, dt=0.005, n_steps=12, save_every=4)
    after_first = l96._integrate._cache_size()
    assert after_first <= n_compiled + 1
    # New state, parameters, dt and spin-up: same compiled function.
    s2 = random_initial_state(2, K=8, J=4, seed=9)
    solve(
        s2,
        Lorenz96Params(F=np.array([9.0, 11.0])),
        dt=0.004,
        n_steps=6,
        save_every=2,
        spinup_steps=3,
    )
    assert l96._integrate._cache_size() == after_first
    f32 = solve(s, dt=0.005, n_steps=12, save_every=4, dtype="float32")
    assert f32.X.dtype == np.float32 and f32.Y.dtype == np.float32 and a.X.dtype == np.float64
    np.testing.assert_allclose(f32.X, a.X, rtol=0, atol=1e-4)


def test_x64_is_not_enabled_globally():
    s = random_initial_state(2, K=8, J=4, seed=0)
    tr = solve(s, dt=0.005, n_steps=2, save_every=2)
    assert tr.X.dtype == np.float64
    assert jax.config.jax_enable_x64 is False
    assert jnp.ones(1).dtype == jnp.float32


def test_random_initial_state_reproducible_and_split_invariant():
    a = random_initial_state(8, K=6, J=3, I=2, seed=4)
    b = random_initial_state(8, K=6, J=3, I=2, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    first = random_initial_state(4, K=6, J=3, I=2, seed=4)
    last = random_initial_state(4, K=6, J=3, I=2, seed=4, sample_offset=4)
    for x, f, g in zip(a, first, last, strict=True):
        np.testing.assert_array_equal(x[:4], f)
        np.testing.assert_array_equal(x[4:], g)
    assert a.X.shape == (8, 6) and a.Y.shape == (8, 6, 3) and a.Z.shape == (8, 6, 3, 2)
    assert a.X.dtype == np.float64
    assert np.all(a.X == np.round(a.X)) and a.X.min() >= -15 and a.X.max() <= 15
    assert 0.02 < a.Z.std() < 0.1  # 0.05 N(0, 1)
    assert random_initial_state(2, K=6, J=3).Z is None
    assert not np.array_equal(random_initial_state(1, seed=1).X, random_initial_state(1).X)


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def _bad(**kw):
    s = random_initial_state(2, K=8, J=4, seed=0)
    return s._replace(**kw)


@pytest.mark.parametrize(
    ("state", "kwargs", "match"),
    [
        (_bad(X=np.where(np.eye(2, 8) > 0, np.nan, 1.0)), {}, "non-finite"),
        (_bad(Y=np.full((2, 8, 4), np.inf)), {}, "non-finite"),
        (None, {"dt": 0.0}, "dt must be positive"),
        (None, {"dt": -0.01}, "dt must be positive"),
        (None, {"dt": float("nan")}, "dt must be positive"),
        (_bad(Y=np.zeros((2, 7, 4))), {}, r"\(2, 7, 4\)"),
        (_bad(X=np.zeros((2, 8, 1))), {}, r"X must have shape \(B, K\)"),
        (_bad(Z=np.zeros((2, 8, 3, 2))), {}, r"\(2, 8, 3, 2\)"),
        (_bad(Z=np.zeros((2, 8, 4, 0))), {}, "Z=None"),
        (None, {"n_steps": 10, "save_every": 4}, "multiple of save_every"),
        (None, {"n_steps": 0}, "n_steps must be >= 1"),
        (None, {"spinup_steps": -1}, "spinup_steps"),
        (None, {"dtype": "float16"}, "dtype"),
        (None, {"params": Lorenz96Params(F=np.ones(3))}, r"shape \(2,\).*\(3,\)"),
        (None, {"params": Lorenz96Params(c=np.inf)}, "parameter c contains non-finite"),
        (None, {"params": Lorenz96Params(b=0.0)}, "b must be non-zero"),
    ],
)
def test_bad_input_raises(state, kwargs, match):
    state = random_initial_state(2, K=8, J=4, seed=0) if state is None else state
    kwargs = {"n_steps": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        solve(state, **kwargs)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as info:
        solve(_bad(Y=np.zeros((2, 7, 4))), n_steps=4)
    assert "(2, 7, 4)" in str(info.value) and "(2, 8)" in str(info.value)


def test_too_large_dt_raises_stability_error():
    s = random_initial_state(2, K=8, J=4, seed=0)
    with pytest.raises(ValueError, match=r"dt = 0\.5 is probably too large.*0\.005"):
        solve(s, dt=0.5, n_steps=36, save_every=12)


def test_random_initial_state_bad_sizes():
    with pytest.raises(ValueError, match="K must be >= 4"):
        random_initial_state(2, K=3)
    with pytest.raises(ValueError, match="n_samples"):
        random_initial_state(0)


_TWO_DEVICES = """
import sys
import jax
import numpy as np
from surrogates.solvers.lorenz96 import random_initial_state, solve
assert len(jax.local_devices()) == 2, jax.local_devices()
s = random_initial_state(200, K=8, J=4, seed=3)
tr = solve(s, dt=0.0025, n_steps=20, save_every=5, spinup_steps=4)
np.savez(sys.argv[1], X=tr.X, Y=tr.Y, c=tr.coupling, t=tr.closure_target, fX=tr.final_state.X)
"""


def test_chunks_on_two_cpu_devices_are_bitwise_those_of_one(tmp_path):
    # 200 samples = two chunks of 128 (the second padded), one per device, run concurrently.
    out = tmp_path / "two.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", _TWO_DEVICES, str(out)], check=True, env=env,
                   timeout=300)
    two = np.load(out)
    tr = solve(random_initial_state(200, K=8, J=4, seed=3), dt=0.0025, n_steps=20,
               save_every=5, spinup_steps=4)
    for key, ref in (("X", tr.X), ("Y", tr.Y), ("c", tr.coupling), ("t", tr.closure_target),
                     ("fX", tr.final_state.X)):
        np.testing.assert_array_equal(two[key], ref, err_msg=key)
