"""Generated airfoil mesh datasets: layout, agreement with the panel solver, fields, I/O, CLI."""

from __future__ import annotations

import json

import meshio
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from meshes.airfoil import naca4, segment_distance, signed_distance
from meshes.airfoil_mesh import read_mesh, write_mesh
from surrogates.data.airfoil import (
    AirfoilDataConfig,
    generate_airfoil_dataset,
    open_airfoil_dataset,
)
from surrogates.data.mesh_dataset import MeshDataset
from surrogates.solvers.panel import solve_airfoils

R = 20.0
CONFIG = dict(n_shapes=2, conditions_per_shape=2, n_panels=120, farfield_radius=R, seed=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("airfoils") / "ds"
    generate_airfoil_dataset(AirfoilDataConfig(**CONFIG), out)
    return out


@pytest.fixture(scope="module")
def dataset(folder):
    return open_airfoil_dataset(folder)


def test_layout_opens_with_meshio_and_xarray(folder):
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["index.nc"] + [f"sample_{i:05d}.vtu" for i in range(4)]
    index = xr.open_dataset(folder / "index.nc")
    assert list(index["mesh_file"].values) == names[1:]
    assert json.loads(index.attrs["config"])["seed"] == 3
    assert json.loads(index.attrs["inputs"]) == ["alpha", "mach", "reynolds"]
    for name in names[1:]:
        mesh = meshio.read(folder / name)
        assert {"velocity", "cp", "implicit_distance"} <= set(mesh.point_data)
        assert 1500 < len(mesh.points) < 8000
    index.close()


def test_index_equals_direct_solver_call(dataset):
    for i in (0, 3):
        row = dataset.index.isel(sample=i)
        shape = naca4(float(row.naca_camber), float(row.naca_position),
                      float(row.naca_thickness), 61, closed_te=True)
        sol = solve_airfoils(shape.coords[None], [float(row.alpha)], mach=float(row.mach),
                             reynolds=float(row.reynolds))
        np.testing.assert_allclose(float(row.cl), sol.cl_pressure[0, 0], rtol=1e-10)
        np.testing.assert_allclose(float(row.cd), sol.cd[0, 0], rtol=1e-10)
        np.testing.assert_allclose(float(row.cm), sol.cm_quarter[0, 0], rtol=1e-10)
    # two angles per shape share its Mach and Reynolds numbers and its mesh
    idx = dataset.index
    assert idx.mach.values[0] == idx.mach.values[1] != idx.mach.values[2]
    assert np.all((idx.mach.values >= 0) & (idx.mach.values <= 0.5))
    assert np.all((idx.reynolds.values >= 1e6) & (idx.reynolds.values <= 6e6))
    assert np.all((idx.alpha.values >= -4) & (idx.alpha.values <= 10))


def test_fields_finite_far_field_and_distance(dataset):
    for i in range(len(dataset)):
        mesh = dataset.meshes[i]
        alpha = np.deg2rad(float(dataset.index.alpha[i]))
        for name in dataset.field_names:
            assert np.all(np.isfinite(mesh.point_data[name])), name
        far = np.unique(mesh.cells[2].data)
        wall = np.unique(mesh.cells[1].data)
        cp = mesh.point_data["cp"]
        vel = mesh.point_data["velocity"]
        d = mesh.point_data["implicit_distance"]
        # |cp| ~ 2 Gamma/(2 pi R) / beta = cl / (2 pi R beta) <= 1.7 / (125.7 * 0.87) = 0.016
        assert np.abs(cp[far]).max() < 0.02
        assert np.abs(vel[far] - [np.cos(alpha), np.sin(alpha)]).max() < 0.01
        assert np.abs(d[wall]).max() < 1e-12
        # far field: circle of radius R about mid-chord; the body lies within 0.5 of the centre
        assert np.all(d[far] > R - 0.5 - 1e-9) and np.all(d[far] < R)
        interior = np.setdiff1d(np.arange(len(d)), wall)
        assert np.all(d[interior] > 0)
        # the wall carries the surface solution: stagnation cp near 1, suction peak negative
        assert 0.9 < cp[wall].max() < 1.2 and cp[wall].min() < -0.3
        speed = np.linalg.norm(vel[wall], axis=1)
        assert speed.max() > 1.1 and speed.min() < 0.3


def test_wall_velocity_is_tangent(dataset):
    mesh = dataset.meshes[1]
    edges = mesh.cells[1].data
    pts = mesh.points
    vel = mesh.point_data["velocity"]
    t = pts[edges[:, 1]] - pts[edges[:, 0]]
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    n = np.stack([t[:, 1], -t[:, 0]], axis=1)
    v = 0.5 * (vel[edges[:, 0]] + vel[edges[:, 1]])
    ratio = np.abs(np.einsum("ij,ij->i", v, n)) / np.maximum(np.linalg.norm(v, axis=1), 1e-3)
    assert np.median(ratio) < 0.02


def test_mesh_dataset_api(dataset):
    assert len(dataset) == 4
    assert dataset.inputs().shape == (4, 3) and dataset.outputs().shape == (4, 3)
    np.testing.assert_array_equal(dataset.inputs()[:, 0], dataset.index.alpha.values)
    cp = dataset.field("cp")
    assert len(cp) == 4 and cp[0].shape == (len(dataset.meshes[0].points),)
    assert dataset.field("velocity")[2].shape[1] == 2
    sub = dataset.subset([3, 0])
    np.testing.assert_array_equal(sub.outputs(), dataset.outputs()[[3, 0]])
    np.testing.assert_array_equal(sub.field("cp")[1], cp[0])
    mask = dataset.subset(np.array([True, False, True, False]))
    assert len(mask) == 2
    parts = dataset.split((0.5, 0.25, 0.25), seed=1)
    assert sorted(np.concatenate([p.index.shape_id.values * 0 + p.inputs()[:, 0]
                                  for p in parts.values()])) == sorted(dataset.inputs()[:, 0])
    with pytest.raises(ValueError, match="no point field"):
        dataset.field("pressure")
    with pytest.raises(ValueError, match="2 meshes but the index has 4"):
        MeshDataset(list(dataset.meshes)[:2], dataset.index)


def test_vtu_round_trip(dataset, tmp_path):
    mesh = dataset.meshes[0]
    write_mesh(mesh, tmp_path / "copy.vtu")
    back = read_mesh(tmp_path / "copy.vtu")
    np.testing.assert_array_equal(back.points, mesh.points)
    for name in ("velocity", "cp", "implicit_distance"):
        np.testing.assert_array_equal(back.point_data[name], mesh.point_data[name])
    assert [b.type for b in back.cells] == ["triangle", "line", "line"]


def test_same_seed_same_data_overwrite_and_refusal(tmp_path):
    cfg = AirfoilDataConfig(n_shapes=1, conditions_per_shape=1, n_panels=120, seed=7)
    a = generate_airfoil_dataset(cfg, tmp_path / "a")
    b = generate_airfoil_dataset(cfg, tmp_path / "b")
    da, db = open_airfoil_dataset(a, lazy=False), open_airfoil_dataset(b)
    xr.testing.assert_identical(da.index, db.index)
    np.testing.assert_array_equal(da.field("cp")[0], db.field("cp")[0])
    (a / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_airfoil_dataset(cfg, a)
    generate_airfoil_dataset(AirfoilDataConfig(n_shapes=1, conditions_per_shape=1,
                                               n_panels=120, seed=8), a, overwrite=True)
    assert (a / "notes.txt").read_text() == "mine"
    assert open_airfoil_dataset(a).index.alpha.values[0] != da.index.alpha.values[0]
    # an incomplete folder and a missing mesh are reported by name
    (b / "sample_00000.vtu").unlink()
    with pytest.raises(FileNotFoundError, match="sample_00000.vtu"):
        open_airfoil_dataset(b)
    (b / "index.nc").unlink()
    with pytest.raises(FileNotFoundError, match="index.nc"):
        open_airfoil_dataset(b)


def test_cst_family_and_supercritical(tmp_path):
    cfg = AirfoilDataConfig(family="cst", n_shapes=1, alpha_values=[0.0, 4.0], n_panels=120,
                            mach_range=(0.2, 0.3), seed=2)
    ds = open_airfoil_dataset(generate_airfoil_dataset(cfg, tmp_path / "cst"))
    np.testing.assert_array_equal(ds.index.alpha.values, [0.0, 4.0])
    assert ds.index["cst_upper"].shape == (2, 7)
    assert ds.outputs()[1, 0] > ds.outputs()[0, 0]  # lift grows with alpha
    bad = AirfoilDataConfig(n_shapes=1, alpha_values=[14.0], mach_range=(0.65, 0.7),
                            thickness_range=(18.0, 20.0), max_redraws=1, n_panels=120)
    with pytest.raises(ValueError, match="supercritical"):
        generate_airfoil_dataset(bad, tmp_path / "bad")


def test_config_validation():
    with pytest.raises(ValueError, match="family"):
        AirfoilDataConfig(family="naca6")
    with pytest.raises(ValueError, match="n_panels"):
        AirfoilDataConfig(n_panels=101)
    with pytest.raises(ValueError, match="mach_range"):
        AirfoilDataConfig(mach_range=(0.3, 0.9))


def test_naca4_shape_and_distances():
    shape = naca4(2, 4, 12, 81, closed_te=True)
    assert shape.thickness_max == pytest.approx(0.12, abs=2e-3)
    assert shape.camber == pytest.approx(0.02, abs=1e-3)
    assert shape.camber_x == pytest.approx(0.4, abs=0.03)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    pts = np.array([[0.5, 0.5], [2.0, 0.5], [0.5, -0.25], [2.0, 2.0]])
    np.testing.assert_allclose(signed_distance(pts, square), [-0.5, 1.0, 0.25, np.sqrt(2)])
    d, k, t = segment_distance([[0.25, -1.0]], square, np.roll(square, -1, axis=0))
    assert d[0] == 1.0 and k[0] == 0 and t[0] == 0.25


def test_cli_generate_airfoil(tmp_path):
    from surrogates.cli import generate

    out = tmp_path / "cli"
    args = ["airfoil", "--out", str(out), "--n-shapes", "1", "--alpha", "0,3,6", "--mach",
            "0.1,0.2", "--panels", "120", "--seed", "5"]
    result = CliRunner().invoke(generate, args)
    assert result.exit_code == 0, result.output
    assert "3 samples" in result.output
    ds = open_airfoil_dataset(out)
    np.testing.assert_array_equal(ds.index.alpha.values, [0.0, 3.0, 6.0])
    assert 0.1 <= float(ds.index.mach[0]) <= 0.2
    again = CliRunner().invoke(generate, args)
    assert again.exit_code == 1 and "overwrite" in again.output
