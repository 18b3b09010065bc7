"""Tests for meshes.voxelize: exact node counts of voxelised squares and cubes."""

from __future__ import annotations

import meshio
import numpy as np
import pytest

from meshes.voxelize import voxelize
from surrogates.solvers.wave import Room


def _square_mesh(lo, hi):
    pts = np.array([[lo, lo, 0.0], [hi, lo, 0.0], [hi, hi, 0.0], [lo, hi, 0.0]])
    return meshio.Mesh(pts, [("line", np.array([[0, 1], [1, 2], [2, 3], [3, 0]]))])


def test_voxelize_2d_square(tmp_path):
    room = Room((1.0, 1.0), 0.1)
    mask = voxelize(_square_mesh(0.42, 0.78), room.coords)  # nodes 0.5, 0.6, 0.7 per axis
    assert mask.shape == (11, 11) and mask.sum() == 9
    assert mask[5:8, 5:8].all()
    # grid-aligned square through nodes 0.2..0.6 (read from a file): the half-open rule
    # (documented) keeps the lower/left boundary nodes and drops the upper/right ones: 4 x 4.
    path = tmp_path / "sq.vtk"
    meshio.write(path, _square_mesh(0.2, 0.6))
    assert voxelize(str(path), room.coords).sum() == 16
    # the mask works as an obstacle
    Room((1.0, 1.0), 0.1, obstacles=mask)


def test_voxelize_3d_cube():
    v = np.array([[x, y, z] for x in (0.33, 0.71) for y in (0.33, 0.71) for z in (0.33, 0.71)])
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    tris = np.array([t for q in quads for t in ([q[0], q[1], q[2]], [q[0], q[2], q[3]])])
    room = Room((1.0, 1.0, 1.0), 0.1)
    mask = voxelize(meshio.Mesh(v, [("triangle", tris)]), room.coords)
    assert mask.sum() == 4**3 and mask[4:8, 4:8, 4:8].all()


def test_voxelize_bad_inputs():
    coords = (np.linspace(0, 1, 11), np.linspace(0, 1, 11))
    with pytest.raises(ValueError, match="not found"):
        voxelize("/nonexistent/mesh.vtk", coords)
    with pytest.raises(ValueError, match="increasing"):
        voxelize(_square_mesh(0.2, 0.6), (coords[0][::-1], coords[1]))
    with pytest.raises(ValueError, match="2 or 3"):
        voxelize(_square_mesh(0.2, 0.6), (coords[0],))
    tri = meshio.Mesh(np.zeros((3, 3)), [("triangle", np.array([[0, 1, 2]]))])
    with pytest.raises(ValueError, match="'line' cells"):
        voxelize(tri, coords)
