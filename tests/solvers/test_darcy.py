"""Tests for the 2D Darcy solver (surrogates.solvers.darcy).

The multigrid-preconditioned CG is checked against a sparse direct solve of the same matrix
(round-off agreement), the discretisation against a manufactured solution (second order), the
preconditioner by grid-independent iteration counts. Every solve uses batches of 2 fields
(one compiled shape per grid), so the file stays well under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse.linalg as sla

from surrogates.solvers.darcy import (
    DarcyConvergenceError,
    cell_centers,
    darcy_operator_matrix,
    gaussian_random_field,
    lognormal_coefficient,
    piecewise_constant_coefficient,
    solve_darcy,
)


def _spsolve(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    n = a.shape[-1]
    return sla.spsolve(darcy_operator_matrix(a).tocsc(), f.ravel()).reshape(n, n)


@pytest.mark.parametrize("n", [32, 60])
def test_agrees_with_sparse_direct_solve_to_round_off(n):
    a = np.stack([piecewise_constant_coefficient(1, n, seed=1)[0],
                  lognormal_coefficient(1, n, seed=2)[0]])
    sol = solve_darcy(a, 1.0, tol=1e-12)
    assert sol.u.shape == (2, n, n) and sol.u.dtype == np.float64
    for b in range(2):
        ref = _spsolve(a[b], np.ones((n, n)))
        rel = np.linalg.norm(sol.u[b] - ref) / np.linalg.norm(ref)
        assert rel < 1e-9, (b, rel)
    assert np.all(sol.final_residual < 1e-11)
    # the recorded history starts at 1 (u = 0) and ends below tol at the last iteration
    for b in range(2):
        hist = sol.residual_norms[b, :sol.iterations[b] + 1]
        assert hist[0] == pytest.approx(1.0) and hist[-1] <= 1e-12
        assert np.all(np.isnan(sol.residual_norms[b, sol.iterations[b] + 1:]))


def test_operator_matrix_is_symmetric_positive_definite_with_harmonic_faces():
    a = np.array([[1.0, 3.0], [2.0, 5.0]])
    A = darcy_operator_matrix(a).toarray()
    np.testing.assert_allclose(A, A.T)
    assert np.linalg.eigvalsh(A).min() > 0
    h2 = 0.25
    # cell (0, 0): x-faces 2*1 (wall) and 2*1*3/4, y-faces 2*1 (wall) and 2*1*2/3
    assert A[0, 0] == pytest.approx((2.0 + 1.5 + 2.0 + 4.0 / 3.0) / h2)
    assert A[0, 1] == pytest.approx(-1.5 / h2) and A[0, 2] == pytest.approx(-(4.0 / 3.0) / h2)
    assert A[0, 3] == 0.0


def test_second_order_convergence_on_a_manufactured_solution():
    # u = sin(pi x) sin(pi y) (zero on the walls), a = 1 + 0.5 sin(2 pi x) cos(pi y) in [0.5, 1.5]
    errors = []
    ns = (16, 32, 64, 128)
    for n in ns:
        x = cell_centers(n)
        X, Y = np.meshgrid(x, x)  # [y, x]
        pi = np.pi
        u = np.sin(pi * X) * np.sin(pi * Y)
        a = 1.0 + 0.5 * np.sin(2 * pi * X) * np.cos(pi * Y)
        a_x = pi * np.cos(2 * pi * X) * np.cos(pi * Y)
        a_y = -0.5 * pi * np.sin(2 * pi * X) * np.sin(pi * Y)
        u_x = pi * np.cos(pi * X) * np.sin(pi * Y)
        u_y = pi * np.sin(pi * X) * np.cos(pi * Y)
        f = 2 * pi**2 * a * u - a_x * u_x - a_y * u_y  # -div(a grad u)
        sol = solve_darcy(np.stack([a, a]), np.stack([f, 2 * f]), tol=1e-12)
        np.testing.assert_allclose(sol.u[1], 2 * sol.u[0], rtol=1e-9, atol=1e-12)  # linear in f
        errors.append(np.sqrt(np.mean((sol.u[0] - u) ** 2)))
    orders = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    assert errors[-1] < 1e-4
    assert np.all((orders > 1.85) & (orders < 2.15)), (errors, orders)


def test_iteration_count_is_independent_of_the_grid_size():
    counts = {}
    for n in (32, 64, 128):
        sol = solve_darcy(piecewise_constant_coefficient(2, n, seed=3))
        counts[n] = sol.iterations
        assert np.all(sol.final_residual < 2e-10)
    allc = np.concatenate(list(counts.values()))
    assert allc.max() - allc.min() <= 3, counts
    assert allc.max() <= 20, counts


def test_batched_equals_unbatched_and_float32():
    a = piecewise_constant_coefficient(2, 32, seed=4)
    batched = solve_darcy(a)
    single = solve_darcy(a[1])
    assert single.u.shape == (32, 32) and isinstance(single.iterations, int)
    assert single.iterations == batched.iterations[1]
    np.testing.assert_allclose(single.u, batched.u[1], rtol=1e-13, atol=1e-16)
    s32 = solve_darcy(a, dtype="float32")
    assert s32.u.dtype == np.float32
    np.testing.assert_allclose(s32.u, batched.u, rtol=1e-4, atol=1e-6 * np.abs(batched.u).max())
    zero = solve_darcy(a, 0.0)
    assert np.all(zero.u == 0) and np.all(zero.iterations == 0)


def test_coefficient_generators_are_seeded_per_sample():
    g = gaussian_random_field(3, 32, seed=5)
    assert g.shape == (3, 32, 32)
    np.testing.assert_array_equal(gaussian_random_field(1, 32, seed=5, sample_offset=2)[0], g[2])
    assert abs(g.mean()) < 0.1 and not np.allclose(g[0], g[1])
    pc = piecewise_constant_coefficient(3, 32, seed=5)
    assert set(np.unique(pc)) == {3.0, 12.0}
    np.testing.assert_array_equal(pc == 12.0, g >= 0)
    np.testing.assert_allclose(lognormal_coefficient(3, 32, seed=5), np.exp(g))


def test_bad_inputs_raise_clear_errors():
    a = np.ones((2, 8, 8))
    bad = a.copy()
    bad[0, 3, 3] = 0.0
    with pytest.raises(ValueError, match="positive"):
        solve_darcy(bad)
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        solve_darcy(bad)
    with pytest.raises(ValueError, match="shape"):
        solve_darcy(np.ones((8, 6)))
    with pytest.raises(ValueError, match="shape"):
        solve_darcy(np.ones(8))
    with pytest.raises(ValueError, match="broadcast"):
        solve_darcy(a, np.ones((7, 7)))
    with pytest.raises(ValueError, match="tol"):
        solve_darcy(a, tol=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        solve_darcy(a, max_iter=0)
    with pytest.raises(ValueError, match="dtype"):
        solve_darcy(a, dtype="float16")
    with pytest.raises(ValueError, match="MAX_COARSEST"):
        solve_darcy(np.ones((1, 67, 67)))
    with pytest.raises(ValueError, match="one field"):
        darcy_operator_matrix(a)
    with pytest.raises(DarcyConvergenceError, match="max_iter = 1"):
        solve_darcy(piecewise_constant_coefficient(2, 8, seed=0), max_iter=1)


_TWO_DEVICES = """
import sys
import jax
import numpy as np
from surrogates.solvers.darcy import piecewise_constant_coefficient, solve_darcy
assert len(jax.local_devices()) == 2, jax.local_devices()
sol = solve_darcy(piecewise_constant_coefficient(3, 16, seed=4))
np.savez(sys.argv[1], u=sol.u, it=sol.iterations, hist=sol.residual_norms,
         final=sol.final_residual)
"""


def test_batch_split_over_two_cpu_devices_solves_the_same_fields(tmp_path):
    # 3 fields over 2 devices: parts of 2 and 1 (padded to 2), dispatched concurrently.
    out = tmp_path / "two.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", _TWO_DEVICES, str(out)], check=True, env=env,
                   timeout=300)
    two = np.load(out)
    one = solve_darcy(piecewise_constant_coefficient(3, 16, seed=4))
    np.testing.assert_array_equal(two["it"], one.iterations)
    np.testing.assert_allclose(two["u"], one.u, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(two["hist"], one.residual_norms, rtol=1e-10, equal_nan=True)
    assert np.all(two["final"] <= 1e-10) and two["u"].shape == (3, 16, 16)
