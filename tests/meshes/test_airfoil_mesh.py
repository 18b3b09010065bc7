"""Flow-domain meshes around airfoils: geometry, grading, tags, quality checks and I/O."""

import math
import os

import meshio
import numpy as np
import pytest

from meshes.airfoil import naca
from meshes.airfoil_mesh import (
    FARFIELD_TAG,
    FLUID_TAG,
    WALL_TAG,
    airfoil_domain_mesh,
    boundary_line_mesh,
    check_quality,
    mesh_quality,
    read_mesh,
    write_mesh,
)
from meshes.voxelize import voxelize

R = 20.0
CENTER = np.array([0.5, 0.0])
MIN_ANGLE = 28.0


@pytest.fixture(scope="module")
def shape():
    return naca("0012", 80)


@pytest.fixture(scope="module")
def mesh(shape):
    return airfoil_domain_mesh(shape, farfield_radius=R, growth=0.3, min_angle=MIN_ANGLE)


def _blocks(m):
    return m.cells[0].data, m.cells[1].data, m.cells[2].data


def _polygon_area(pts, edges):
    """Area enclosed by oriented edges (shoelace over edges)."""
    a, b = pts[edges[:, 0]], pts[edges[:, 1]]
    return 0.5 * np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])


def test_layout_tags_and_sets(mesh):
    assert [b.type for b in mesh.cells] == ["triangle", "line", "line"]
    tris, wall, far = _blocks(mesh)
    tags = mesh.cell_data["boundary_tag"]
    assert np.all(tags[0] == FLUID_TAG) and np.all(tags[1] == WALL_TAG)
    assert np.all(tags[2] == FARFIELD_TAG)
    assert np.array_equal(mesh.cell_sets["wall"][1], np.arange(len(wall)))
    assert np.array_equal(mesh.cell_sets["farfield"][2], np.arange(len(far)))
    assert np.array_equal(mesh.cell_sets["fluid"][0], np.arange(len(tris)))
    assert mesh.points.shape[1] == 2
    # every point is used by a triangle; each boundary node has two boundary edges
    assert np.array_equal(np.unique(tris), np.arange(len(mesh.points)))
    for edges in (wall, far):
        assert np.all(np.bincount(edges.ravel())[np.unique(edges)] == 2)


def test_no_triangle_inside_airfoil(mesh, shape):
    tris, _, _ = _blocks(mesh)
    centroids = mesh.points[tris].mean(axis=1)
    assert not shape.contains(centroids).any()
    assert np.all(np.hypot(*(centroids - CENTER).T) < R)


def test_wall_nodes_on_airfoil_polygon(mesh, shape):
    _, wall, _ = _blocks(mesh)
    q = mesh.points[np.unique(wall)]
    a = shape.polygon
    d = np.roll(a, -1, axis=0) - a
    s = np.clip(np.einsum("qmk,mk->qm", q[:, None, :] - a[None], d) / np.sum(d * d, axis=1),
                0.0, 1.0)
    dist = np.hypot(*(a[None] + s[..., None] * d[None] - q[:, None, :]).transpose(2, 0, 1))
    assert dist.min(axis=1).max() < 1e-12
    # every shape vertex is a wall node
    assert len(np.unique(wall)) >= len(shape.polygon)


def test_farfield_nodes_on_circle(mesh):
    _, _, far = _blocks(mesh)
    r = np.hypot(*(mesh.points[np.unique(far)] - CENTER).T)
    assert np.max(np.abs(r - R)) / R < 1e-9


def test_fluid_area(mesh, shape):
    tris, wall, far = _blocks(mesh)
    p = mesh.points[tris]
    area = 0.5 * ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                  - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0]))
    assert np.all(area > 0)
    # boundary edges have the fluid on their left: the far field runs CCW, the wall CW
    far_area = _polygon_area(mesh.points, far)
    wall_area = -_polygon_area(mesh.points, wall)
    assert wall_area == pytest.approx(shape.area, rel=1e-12)
    assert area.sum() == pytest.approx(far_area - wall_area, rel=1e-9)
    # straight far-field edges are chords of the circle: each one of angle theta cuts off a
    # segment of area R^2 (theta - sin theta) / 2 from pi R^2
    a, b = mesh.points[far[:, 0]] - CENTER, mesh.points[far[:, 1]] - CENTER
    theta = np.arctan2(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], np.sum(a * b, axis=1))
    assert np.all(theta > 0) and theta.sum() == pytest.approx(2 * math.pi, rel=1e-12)
    segments = 0.5 * R**2 * np.sum(theta - np.sin(theta))
    exact = math.pi * R**2 - shape.area
    assert area.sum() == pytest.approx(exact - segments, rel=1e-9)
    assert segments / exact < 0.01


def test_min_angle_and_quality(mesh):
    q = mesh_quality(mesh)
    assert q["min_angle"] >= MIN_ANGLE
    assert q["n_inverted"] == 0
    assert 1.0 <= q["max_aspect_ratio"] < 3.0
    assert q["n_triangles"] == len(mesh.cells[0].data)
    assert q["n_wall_edges"] == len(mesh.cells[1].data)
    assert check_quality(mesh, min_angle=MIN_ANGLE)["min_angle"] == q["min_angle"]


def test_grading(mesh):
    _, wall, far = _blocks(mesh)
    tris = mesh.cells[0].data
    edges = np.unique(np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]],
                                              tris[:, [2, 0]]]), axis=1), axis=0)
    length = np.hypot(*(mesh.points[edges[:, 0]] - mesh.points[edges[:, 1]]).T)
    near_wall = np.isin(edges, np.unique(wall)).any(axis=1)
    near_far = np.isin(edges, np.unique(far)).any(axis=1)
    assert length[near_wall].mean() * 50 < length[near_far].mean()


def test_wall_edges_face_the_airfoil(mesh, shape):
    _, wall, _ = _blocks(mesh)
    a, b = mesh.points[wall[:, 0]], mesh.points[wall[:, 1]]
    d = b - a
    normal = np.stack([d[:, 1], -d[:, 0]], axis=1)  # right of the edge: outward from fluid
    probe = 0.5 * (a + b) + 1e-3 * normal
    assert shape.contains(probe).mean() > 0.95


def test_boundary_line_mesh(mesh):
    b = boundary_line_mesh(mesh)
    assert [c.type for c in b.cells] == ["line", "line"]
    _, wall, far = _blocks(mesh)
    assert len(b.points) == len(np.unique(wall)) + len(np.unique(far))
    assert len(b.cells[0].data) == len(wall) and len(b.cells[1].data) == len(far)
    assert np.all(b.cell_data["boundary_tag"][0] == WALL_TAG)
    x = np.linspace(-0.5, 1.5, 21)
    y = np.linspace(-0.5, 0.5, 11)
    fluid = voxelize(b, (x, y))
    assert not fluid[10, 5]  # (0.5, 0) inside the airfoil
    assert fluid[0, 5] and fluid[10, 0]


def test_resampled_cambered_rotated_closed_te():
    s = naca("2412", 120, closed_te=True).rotate(5.0)
    m = airfoil_domain_mesh(s, n_surface=50, growth=0.4, min_angle=30.0, farfield_radius=10.0)
    q = mesh_quality(m)
    assert q["min_angle"] >= 30.0
    tris, wall, _ = _blocks(m)
    assert len(np.unique(wall)) >= 2 * 50 - 2
    assert not s.contains(m.points[tris].mean(axis=1)).any()


def test_designation_and_blunt_base():
    m = airfoil_domain_mesh("0012", growth=0.5, farfield_radius=5.0)
    assert mesh_quality(m)["min_angle"] >= 28.0


def test_bad_parameters(shape):
    with pytest.raises(ValueError, match="farfield_radius"):
        airfoil_domain_mesh(shape, farfield_radius=0.6)
    with pytest.raises(ValueError, match="min_angle"):
        airfoil_domain_mesh(shape, min_angle=40.0)
    with pytest.raises(ValueError, match="growth"):
        airfoil_domain_mesh(shape, growth=0.0)
    bowtie = [[1, 0], [0, 0.1], [0, -0.1], [1, 0.1], [1, 0]]
    with pytest.raises(ValueError, match="invalid airfoil shape"):
        airfoil_domain_mesh(bowtie)


def test_check_quality_raises_on_bad_mesh():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 1.02]])
    good = meshio.Mesh(pts[:4], [("triangle", np.array([[0, 1, 2], [1, 3, 2]]))])
    assert check_quality(good, min_angle=40.0)["min_angle"] == pytest.approx(45.0)
    sliver = meshio.Mesh(pts, [("triangle", np.array([[0, 1, 2], [2, 3, 4]]))])
    with pytest.raises(ValueError, match=r"triangle 1 \(nodes \[2, 3, 4\]"):
        check_quality(sliver, min_angle=20.0)
    with pytest.raises(ValueError, match="aspect ratio"):
        check_quality(sliver, min_angle=0.0, max_aspect=5.0)
    inverted = meshio.Mesh(pts[:4], [("triangle", np.array([[0, 1, 2], [1, 2, 3]]))])
    with pytest.raises(ValueError, match="inverted"):
        check_quality(inverted)
    with pytest.raises(ValueError, match="no 'triangle'"):
        mesh_quality(meshio.Mesh(pts, [("line", np.array([[0, 1]]))]))


@pytest.mark.parametrize("ext", ["vtu", "msh", "xdmf"])
def test_round_trip(mesh, tmp_path, ext):
    path = tmp_path / f"domain.{ext}"
    assert write_mesh(mesh, path) == str(path)
    assert sorted(os.listdir(tmp_path)) == [f"domain.{ext}"]  # no temporary left behind
    back = read_mesh(path)
    assert np.array_equal(back.points, mesh.points)
    assert [b.type for b in back.cells] == ["triangle", "line", "line"]
    for b, m in zip(back.cells, mesh.cells, strict=True):
        assert np.array_equal(b.data, m.data)
    for b, m in zip(back.cell_data["boundary_tag"], mesh.cell_data["boundary_tag"],
                    strict=True):
        assert np.array_equal(b, m)
    for name in ("wall", "farfield", "fluid"):
        for b, m in zip(back.cell_sets[name], mesh.cell_sets[name], strict=True):
            assert np.array_equal(b, m)


def test_refuse_overwrite(mesh, tmp_path):
    path = tmp_path / "m.vtu"
    write_mesh(mesh, path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_mesh(boundary_line_mesh(mesh), path)
    assert path.read_bytes() == before
    write_mesh(boundary_line_mesh(mesh), path, overwrite=True)
    assert path.read_bytes() != before
    lines = read_mesh(path)
    assert [c.type for c in lines.cells] == ["line", "line"]
    assert np.array_equal(lines.cells[1].data, boundary_line_mesh(mesh).cells[1].data)
    assert sorted(os.listdir(tmp_path)) == ["m.vtu"]


def test_io_errors(mesh, tmp_path):
    with pytest.raises(ValueError, match="unsupported mesh extension"):
        write_mesh(mesh, tmp_path / "m.stl")
    with pytest.raises(ValueError, match="folder does not exist"):
        write_mesh(mesh, tmp_path / "nope" / "m.vtu")
    with pytest.raises(ValueError, match="not found"):
        read_mesh(tmp_path / "missing.vtu")
