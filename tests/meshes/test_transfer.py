"""Tests of meshes.transfer: P1 location, transfer matrices and interpolation."""

import time

import meshio
import numpy as np
import pytest
from scipy.spatial import Delaunay

from meshes.transfer import interpolate, locate, transfer_matrix


def _square_mesh(n_random=400, seed=0):
    """Delaunay mesh of the unit square (corners and edge points included, so the hull is the
    square)."""
    rng = np.random.default_rng(seed)
    g = np.linspace(0, 1, 11)
    edge = np.concatenate([np.column_stack([g, 0 * g]), np.column_stack([g, 0 * g + 1]),
                           np.column_stack([0 * g[1:-1], g[1:-1]]),
                           np.column_stack([0 * g[1:-1] + 1, g[1:-1]])])
    pts = np.concatenate([edge, 0.02 + 0.96 * rng.random((n_random, 2))])
    return meshio.Mesh(pts, [("triangle", Delaunay(pts).simplices)])


def _linear(x):
    return 1.5 + 2.0 * x[:, 0] - 3.0 * x[:, 1]


def test_linear_functions_reproduced_exactly():
    mesh = _square_mesh()
    q = np.random.default_rng(1).random((2000, 2))
    W, outside = transfer_matrix(mesh, q, return_outside=True)
    assert not outside.any()
    assert np.abs(W @ _linear(mesh.points) - _linear(q)).max() < 1e-12
    assert np.abs(np.asarray(W.sum(axis=1)).ravel() - 1).max() < 1e-14
    assert W.shape == (2000, len(mesh.points)) and W.nnz <= 3 * 2000
    assert (W.data >= 0).all()


def test_nodes_of_same_mesh_give_identity():
    mesh = _square_mesh()
    W = transfer_matrix(mesh, mesh.points)
    f = np.random.default_rng(2).normal(size=len(mesh.points))  # any P1 field
    assert np.abs(W @ f - f).max() < 1e-12
    assert abs(W - np.eye(len(f))).max() < 1e-12


def test_locate_weights_reconstruct_point():
    mesh = _square_mesh()
    q = np.random.default_rng(3).random((500, 2))
    cells, w = locate(mesh, q)
    tri = np.asarray(mesh.cells[0].data)
    rec = np.einsum("nk,nkj->nj", w, mesh.points[tri[cells]])
    assert np.abs(rec - q).max() < 1e-13
    assert w.min() >= 0 and np.abs(w.sum(axis=1) - 1).max() < 1e-14


def test_outside_points_take_nearest_boundary_value():
    mesh = _square_mesh()
    q = np.array([[2.0, 0.5], [0.3, -0.25], [1.5, 1.5], [-1.0, -2.0], [0.5, 0.5]])
    vals, outside = transfer_matrix(mesh, q, return_outside=True)
    assert outside.tolist() == [True, True, True, True, False]
    nearest = np.array([[1.0, 0.5], [0.3, 0.0], [1.0, 1.0], [0.0, 0.0], [0.5, 0.5]])
    # constant extension along the normal: f(x) = f(nearest boundary point)
    assert np.abs(vals @ _linear(mesh.points) - _linear(nearest)).max() < 1e-12


def test_points_in_airfoil_hole_are_outside():
    from meshes.airfoil import naca
    from meshes.airfoil_mesh import airfoil_domain_mesh

    mesh = airfoil_domain_mesh(naca("0012", 60), growth=0.5, farfield_radius=4)
    q = np.array([[0.3, 0.0], [0.7, 0.01], [0.3, 0.5], [-1.0, 0.2]])
    W, outside = transfer_matrix(mesh, q, return_outside=True)
    assert outside.tolist() == [True, True, False, False]
    y = W @ mesh.points[:, :2]
    # the hole points land on the wall: |y| equals the NACA 0012 half thickness near x
    assert abs(abs(y[0, 1]) - 0.06) < 0.01 and abs(y[0, 0] - 0.3) < 0.01
    assert np.abs(y[2:] - q[2:]).max() < 1e-12


def test_batched_trailing_axes():
    mesh = _square_mesh()
    rng = np.random.default_rng(4)
    v = rng.normal(size=(len(mesh.points), 3, 2))
    q = rng.random((50, 2))
    out = interpolate(mesh, v, q)
    assert out.shape == (50, 3, 2)
    W = transfer_matrix(mesh, q)
    for i in range(3):
        for j in range(2):
            assert np.allclose(out[:, i, j], W @ v[:, i, j], atol=1e-14)
    assert interpolate(mesh, v[:, 0, 0], q).shape == (50,)


def test_errors():
    mesh = _square_mesh()
    with pytest.raises(ValueError, match="one row per mesh node"):
        interpolate(mesh, np.zeros(3), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="triangle"):
        locate(meshio.Mesh(mesh.points, [("line", [[0, 1]])]), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        locate(mesh, np.zeros((3, 4)))


def test_speed_1e5_points_into_1e5_node_mesh():
    rng = np.random.default_rng(5)
    p = rng.random((100_000, 2))
    mesh = meshio.Mesh(p, [("triangle", Delaunay(p).simplices)])
    q = rng.random((100_000, 2))
    t0 = time.perf_counter()
    W, outside = transfer_matrix(mesh, q, return_outside=True)
    elapsed = time.perf_counter() - t0
    print(f"transfer_matrix: 1e5 points into a 1e5-node mesh in {elapsed:.2f} s "
          f"({outside.sum()} outside the hull)")
    assert np.abs(W[~outside] @ _linear(p) - _linear(q[~outside])).max() < 1e-11
    assert elapsed < 60.0  # loose: a few seconds on one core
