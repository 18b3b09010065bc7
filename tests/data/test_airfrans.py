"""AirfRANS reader on fake simulations in the exact layout; force integration; metrics."""

from __future__ import annotations

import json
import math

import meshio
import numpy as np
import pytest
import scipy.stats

from meshes.vtp import read_vtp, write_vtp
from surrogates.data.airfrans import (
    NU,
    SPLIT_KEYS,
    airfrans_scores,
    mean_relative_error,
    normalized_field_mse,
    open_airfrans,
    parse_name,
    rank_average,
    spearman_correlation,
    surface_coefficients,
)

RADIUS, CENTER, M = 0.5, np.array([0.5, 0.0]), 96
A_P, G_SHEAR, NUT_WALL = 3.0, 40.0, 1e-4
NAMES = ["airFoil2D_SST_31.283_-4.156_0.919_6.98_14.32",
         "airFoil2D_SST_43.597_5.932_3.551_3.1_1.0_18.252",
         "airFoil2D_SST_60.0_10.0_2.0_4.0_12.0"]


def _circle(m=M, radius=RADIUS):
    th = 2 * np.pi * np.arange(m) / m
    return CENTER + radius * np.stack([np.cos(th), np.sin(th)], axis=1), th


def _surface(p_func, m=M, clockwise=False):
    xy, _ = _circle(m)
    lines = np.stack([np.arange(m), (np.arange(m) + 1) % m], axis=1)
    if clockwise:
        lines = lines[:, ::-1]
    data = {"p": p_func(xy), "U": np.zeros((m, 3)), "nut": np.full(m, NUT_WALL),
            "Normals": np.hstack([-(xy - CENTER) / RADIUS, np.zeros((m, 1))])}
    return xy, lines, data


def _internal(rings=(0.52, 0.6, 0.8, 1.2, 2.0)):
    """Structured annulus of quads: the wall ring plus rings at the same angles."""
    wall, th = _circle()
    radii = [RADIUS, *rings]
    pts = np.concatenate([CENTER + r * np.stack([np.cos(th), np.sin(th)], axis=1)
                          for r in radii])
    r = np.linalg.norm(pts - CENTER, axis=1)
    k, j = np.meshgrid(np.arange(len(radii) - 1), np.arange(M), indexing="ij")
    a = (k * M + j).reshape(-1)
    b = (k * M + (j + 1) % M).reshape(-1)
    quads = np.stack([a, b, b + M, a + M], axis=1)
    u = np.stack([G_SHEAR * (r - RADIUS), np.zeros_like(r), np.zeros_like(r)], axis=1)
    data = {"U": u, "p": A_P * pts[:, 1], "nut": np.zeros_like(r),
            "implicit_distance": r - RADIUS}
    return meshio.Mesh(np.hstack([pts, np.zeros((len(pts), 1))]), [("quad", quads)],
                       point_data=data)


def _write_case(root, name, fmt="ascii"):
    folder = root / name
    folder.mkdir(parents=True)
    meshio.write(folder / f"{name}_internal.vtu", _internal())
    xy, lines, data = _surface(lambda xy: A_P * xy[:, 1])
    write_vtp(folder / f"{name}_aerofoil.vtp", xy, lines, data, fmt=fmt)
    far, _ = _circle(32, 20.0)
    write_vtp(folder / f"{name}_freestream.vtp", far,
              np.stack([np.arange(32), (np.arange(32) + 1) % 32], axis=1))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("airfrans")
    for name, fmt in zip(NAMES, ("ascii", "binary", "appended"), strict=True):
        _write_case(root, name, fmt)
    manifest = {"full_train": NAMES[:2], "full_test": NAMES[2:], "scarce_train": NAMES[:1],
                "reynolds_train": NAMES[1:2], "reynolds_test": [NAMES[0], NAMES[2]],
                "aoa_train": NAMES[:1], "aoa_test": NAMES[1:]}
    assert set(manifest) == set(SPLIT_KEYS)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_parse_names():
    c4 = parse_name(NAMES[0])
    assert (c4.u_inf, c4.alpha, c4.naca, c4.digits) == (31.283, -4.156, (0.919, 6.98, 14.32), 4)
    assert c4.reynolds == pytest.approx(31.283 / 1.56e-5) and 2.0e6 < c4.reynolds < 2.01e6
    c5 = parse_name(NAMES[1])
    assert (c5.u_inf, c5.alpha, c5.naca, c5.digits) == (43.597, 5.932, (3.551, 3.1, 1.0, 18.252),
                                                        5)
    for bad in ("airFoil2D_SST_31.2_4.1_1.0_2.0", "airfoil_SST_1_2_3_4_5", "x"):
        with pytest.raises(ValueError, match="not an AirfRANS simulation name"):
            parse_name(bad)


@pytest.mark.parametrize("fmt,compress", [("ascii", False), ("binary", False),
                                          ("binary", True), ("appended", False),
                                          ("appended", True)])
def test_vtp_round_trip(tmp_path, fmt, compress):
    xy, lines, data = _surface(lambda xy: A_P * xy[:, 1])
    data["ids"] = np.arange(M, dtype=np.int32)
    write_vtp(tmp_path / "s.vtp", xy, lines, data, fmt=fmt, compress=compress)
    mesh = read_vtp(tmp_path / "s.vtp")
    np.testing.assert_array_equal(mesh.points[:, :2], xy)
    np.testing.assert_array_equal(mesh.cells[0].data, lines)
    assert mesh.cells[0].type == "line"
    for key, value in data.items():
        np.testing.assert_array_equal(mesh.point_data[key], value)
    with pytest.raises(FileNotFoundError):
        read_vtp(tmp_path / "missing.vtp")


def test_split_selection_and_fields(root):
    train = open_airfrans(root, "full", "train", coefficients=False)
    assert list(train.index.name.values) == NAMES[:2]
    assert list(open_airfrans(root, "scarce", "test", coefficients=False).index.name.values) \
        == NAMES[2:]
    assert list(open_airfrans(root, "reynolds", "test", coefficients=False).index.name.values) \
        == [NAMES[0], NAMES[2]]
    assert list(open_airfrans(root, "aoa", "train", coefficients=False).index.name.values) \
        == NAMES[:1]
    assert list(open_airfrans(root, names=[NAMES[2]], coefficients=False).index.name.values) \
        == [NAMES[2]]
    idx = train.index
    np.testing.assert_array_equal(idx.in_full_train.values, [True, True])
    np.testing.assert_array_equal(idx.in_aoa_test.values, [False, True])
    np.testing.assert_allclose(train.inputs(), [[31.283, -4.156], [43.597, 5.932]])
    assert np.isnan(idx.naca_params.values[0, 3]) and idx.naca_params.values[1, 3] == 18.252
    np.testing.assert_array_equal(idx.naca_digits.values, [4, 5])
    assert train.field_names == ["U", "p", "nut", "implicit_distance"]
    mesh = train.meshes[1]
    assert mesh.points.shape[1] == 2 and mesh.point_data["U"].shape == (6 * M, 2)
    assert mesh.cells[0].type == "triangle" and len(mesh.cells[0].data) == 2 * 5 * M
    np.testing.assert_allclose(train.field("p")[0], A_P * mesh.points[:, 1])
    with pytest.raises(ValueError, match="task"):
        open_airfrans(root, "big")
    with pytest.raises(ValueError, match="split"):
        open_airfrans(root, "full", "validation")


def test_missing_files_and_manifest(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        open_airfrans(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"full_train": []}))
    with pytest.raises(ValueError, match="full_test"):
        open_airfrans(tmp_path)
    with pytest.raises(FileNotFoundError, match="airFoil2D_SST_1.0_2.0_3.0_4.0_5.0_internal"):
        open_airfrans(root, names=["airFoil2D_SST_1.0_2.0_3.0_4.0_5.0"])


@pytest.mark.parametrize("alpha", [0.0, 30.0])
@pytest.mark.parametrize("clockwise", [False, True])
def test_pressure_force_known_answers(alpha, clockwise):
    u_inf = 20.0
    q = 0.5 * u_inf**2
    xy, lines, data = _surface(lambda xy: np.full(len(xy), 7.0), clockwise=clockwise)
    uniform = meshio.Mesh(xy, [("line", lines)], point_data=data)
    c = surface_coefficients(uniform, u_inf, alpha)
    assert abs(c["cl"]) < 1e-12 and abs(c["cd"]) < 1e-12
    # p = a y: F = -integral p n ds = -a * area * e_y exactly on the polygon (divergence thm)
    xy, lines, data = _surface(lambda xy: A_P * xy[:, 1], clockwise=clockwise)
    linear = meshio.Mesh(xy, [("line", lines)], point_data=data)
    c = surface_coefficients(linear, u_inf, alpha)
    area = 0.5 * M * RADIUS**2 * math.sin(2 * math.pi / M)
    a = math.radians(alpha)
    assert c["cl"] == pytest.approx(-A_P * area * math.cos(a) / q, rel=1e-12)
    assert c["cd"] == pytest.approx(-A_P * area * math.sin(a) / q, rel=1e-12, abs=1e-15)
    assert c["cl"] == pytest.approx(-A_P * math.pi * RADIUS**2 * math.cos(a) / q, rel=1e-3)


@pytest.mark.parametrize("alpha", [0.0, 30.0])
def test_viscous_force_known_answer(alpha):
    """U = (g (r - R), 0) next to the wall: tau = (nu + nut) g e_x, F_v = (nu + nut) g P e_x."""
    u_inf = 20.0
    q = 0.5 * u_inf**2
    xy, lines, data = _surface(lambda xy: np.zeros(len(xy)))
    surface = meshio.Mesh(xy, [("line", lines)], point_data=data)
    c = surface_coefficients(surface, u_inf, alpha, internal=_internal())
    perimeter = M * 2 * RADIUS * math.sin(math.pi / M)
    fx = (NU + NUT_WALL) * G_SHEAR * perimeter
    a = math.radians(alpha)
    assert c["cd_viscous"] == pytest.approx(fx * math.cos(a) / q, rel=1e-10)
    assert c["cl_viscous"] == pytest.approx(-fx * math.sin(a) / q, rel=1e-10, abs=1e-15)
    assert abs(c["cd_pressure"]) < 1e-14
    assert c["cd"] == pytest.approx(c["cd_pressure"] + c["cd_viscous"])


def test_open_airfrans_coefficients(root):
    ds = open_airfrans(root, "full", "test")
    case = parse_name(NAMES[2])
    xy, lines, data = _surface(lambda xy: A_P * xy[:, 1])
    expected = surface_coefficients(meshio.Mesh(xy, [("line", lines)], point_data=data),
                                    case.u_inf, case.alpha, internal=_internal())
    assert float(ds.index.cl[0]) == pytest.approx(expected["cl"], rel=1e-12)
    assert float(ds.index.cd[0]) == pytest.approx(expected["cd"], rel=1e-12)
    assert ds.outputs().shape == (1, 2) and np.all(np.isfinite(ds.outputs()))
    pressure_only = open_airfrans(root, "full", "test", viscous=False)
    assert float(pressure_only.index.cd_viscous[0]) == 0.0


def test_relative_error_and_spearman():
    assert mean_relative_error([1.1, 1.8, -3.0], [1.0, 2.0, -2.0]) == pytest.approx(
        (0.1 + 0.1 + 0.5) / 3)
    with pytest.raises(ValueError, match="0"):
        mean_relative_error([1.0], [0.0])
    np.testing.assert_array_equal(rank_average([3.0, 1.0, 3.0, 2.0, 3.0]), [4, 1, 4, 2, 4])
    # hand value without ties: d = (0, 1, -1, 0) -> 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman_correlation([1, 3, 2, 4], [1, 2, 3, 4]) == pytest.approx(0.8)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 40).astype(float)  # many ties
    y = x + rng.normal(0, 2, 40)
    y[:5] = y[5]
    assert spearman_correlation(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0],
                                                       rel=1e-12)
    with pytest.raises(ValueError, match="constant"):
        spearman_correlation([1, 1, 1], [1, 2, 3])


def test_normalized_field_mse_and_scores():
    true = [np.array([0.0, 2.0]), np.array([4.0, 2.0, 2.0])]  # mean 2, std sqrt(8/5)
    pred = [np.array([1.0, 2.0]), np.array([4.0, 2.0, 0.0])]
    expected = (1 + 4) / 5 / (8 / 5)
    np.testing.assert_allclose(normalized_field_mse(pred, true), [expected])
    np.testing.assert_allclose(normalized_field_mse(pred, true, std=2.0), [(1 + 4) / 5 / 4])
    vec_true = [np.array([[0.0, 1.0], [2.0, 3.0]])]
    vec_pred = [np.array([[1.0, 1.0], [2.0, 3.0]])]
    np.testing.assert_allclose(normalized_field_mse(vec_pred, vec_true), [0.5, 0.0])
    with pytest.raises(ValueError, match="differ"):
        normalized_field_mse([np.zeros(3)], [np.zeros(2)])
    s = airfrans_scores([1.0, 2.0, 3.5], [1.0, 2.5, 3.0], [0.01, 0.02, 0.03], [0.02, 0.01, 0.03],
                        {"p": pred, "U": vec_pred}, {"p": true, "U": vec_true})
    assert s["cl_spearman"] == pytest.approx(1.0)
    assert s["cd_spearman"] == pytest.approx(0.5)
    assert s["cl_mre"] == pytest.approx((0 + 0.2 + 0.5 / 3) / 3)
    assert s["p_mse"] == pytest.approx(expected)
    assert s["U_x_mse"] == pytest.approx(0.5) and s["U_y_mse"] == 0.0


def test_closed_polyline_surface(tmp_path):
    """One polyline cell closing on its first point, as in AirfRANS's aerofoil files."""
    xy, _, _ = _surface(lambda xy: A_P * xy[:, 1])
    pts = " ".join(f"{x!r} {y!r} 0.0" for x, y in xy.tolist())
    conn = " ".join(str(i) for i in [*range(M), 0])
    p = " ".join(repr(v) for v in (A_P * xy[:, 1]).tolist())
    text = (f'<?xml version="1.0"?><VTKFile type="PolyData" version="0.1"><PolyData>'
            f'<Piece NumberOfPoints="{M}" NumberOfLines="1">'
            f'<PointData><DataArray type="Float64" Name="p" format="ascii">{p}</DataArray>'
            f'</PointData><Points><DataArray type="Float64" NumberOfComponents="3" '
            f'format="ascii">{pts}</DataArray></Points><Lines>'
            f'<DataArray type="Int64" Name="connectivity" format="ascii">{conn}</DataArray>'
            f'<DataArray type="Int64" Name="offsets" format="ascii">{M + 1}</DataArray>'
            f'</Lines></Piece></PolyData></VTKFile>')
    (tmp_path / "poly.vtp").write_text(text)
    mesh = read_vtp(tmp_path / "poly.vtp")
    assert mesh.cells[0].type == "line" and len(mesh.cells[0].data) == M
    c = surface_coefficients(mesh, 10.0, 0.0)
    area = 0.5 * M * RADIUS**2 * math.sin(2 * math.pi / M)
    assert c["cl"] == pytest.approx(-A_P * area / 50.0, rel=1e-12)
