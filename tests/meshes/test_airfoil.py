"""Airfoil shapes: NACA 4/5-digit sections, CST shapes and fits, the common polygon form."""

import numpy as np
import pytest

from meshes.airfoil import (
    AirfoilShape,
    naca,
    naca_mean_line,
    naca_thickness,
    read_selig,
    write_selig,
)
from meshes.cst import CSTAirfoil, cst_shape, fit_cst, random_cst


def test_naca0012_max_thickness_and_position():
    s = naca("0012", 200)
    assert s.thickness_max == pytest.approx(0.12, abs=1e-3)
    assert s.thickness_max_x == pytest.approx(0.30, abs=5e-3)
    assert s.camber == pytest.approx(0.0, abs=1e-12)
    # leading edge at the origin, trailing edge at x = 1, symmetric surfaces
    assert np.allclose(s.coords[s.leading_edge_index], 0.0)
    assert s.coords[:, 0].max() == 1.0
    assert np.allclose(s.upper[:, 1], -s.lower[:, 1])


def test_naca0012_area_and_orientation():
    s = naca("0012", 200)
    # Selig order (TE -> upper -> LE -> lower -> TE) is counter-clockwise: positive area,
    # about 0.685 t for the 4-digit thickness form
    assert s.area == pytest.approx(0.0822, abs=2e-4)
    assert s.is_valid()
    assert AirfoilShape(s.coords[::-1]).invalid_reason().startswith("signed area")


def test_naca2412_camber():
    x = np.linspace(0.0, 1.0, 10001)
    yc, dy = naca_mean_line("2412", x)
    assert yc.max() == pytest.approx(0.02, abs=1e-12)
    assert x[np.argmax(yc)] == pytest.approx(0.4, abs=1e-12)
    assert np.allclose(np.gradient(yc, x)[1:-1], dy[1:-1], atol=2e-5)
    s = naca("2412", 200)
    assert s.camber == pytest.approx(0.02, abs=1e-3)
    assert s.camber_x == pytest.approx(0.4, abs=1e-2)
    assert s.thickness_max == pytest.approx(0.12, abs=1e-3)
    assert s.is_valid()


def test_trailing_edge_closed_and_open():
    closed = naca("0012", 80, closed_te=True)
    assert closed.is_sharp
    assert tuple(closed.coords[0]) == (1.0, 0.0) and tuple(closed.coords[-1]) == (1.0, 0.0)
    assert naca_thickness(0.12, 1.0, closed_te=True) == pytest.approx(0.0, abs=1e-15)
    opened = naca("0012", 80)
    assert not opened.is_sharp
    # open form: y_t(1) = 5 t (0.2969 - 0.1260 - 0.3516 + 0.2843 - 0.1015) = 0.0105 t
    assert opened.te_thickness == pytest.approx(2 * 5 * 0.12 * 0.0021, rel=1e-6)
    assert len(opened.coords) == 2 * 80 - 1
    cambered = naca("23012", 80, closed_te=True)
    assert tuple(cambered.coords[0]) == (1.0, 0.0)


def test_naca23012_mean_line_published():
    x = np.linspace(0.0, 1.0, 20001)
    yc, _ = naca_mean_line("23012", x)
    # Abbott & von Doenhoff: 230 mean line, max camber 1.84 % at 15 % chord
    assert yc.max() == pytest.approx(0.0184, abs=1e-4)
    assert x[np.argmax(yc)] == pytest.approx(0.15, abs=2e-3)
    assert yc[0] == 0.0 and yc[-1] == pytest.approx(0.0, abs=1e-15)
    s = naca("NACA 23012", 200)
    assert s.name == "NACA 23012" and s.is_valid()
    assert s.thickness_max == pytest.approx(0.12, abs=1e-3)


@pytest.mark.parametrize("designation", ["21012", "22012", "24012", "25012", "22112",
                                         "23112", "24112", "25112", "4415", "0006"])
def test_other_sections_valid(designation):
    s = naca(designation, 60)
    assert s.is_valid()
    x = np.linspace(0, 1, 101)
    yc, _ = naca_mean_line(designation, x)
    assert yc[0] == 0.0 and abs(yc[-1]) < 1e-12


@pytest.mark.parametrize("bad", ["12", "9999x", "", "0000", "2012", "0212", "26012",
                                 "23212", "03012", "1299", None, "NACA"])
def test_naca_bad_designations(bad):
    with pytest.raises(ValueError):
        naca(bad)


def test_naca_bad_n_points():
    with pytest.raises(ValueError, match="n_points"):
        naca("0012", 3)


def test_cst_fit_reproduces_naca0012():
    s = naca("0012", 120)
    for order in (6, 8):
        fit = fit_cst(s, order)
        assert fit.order == order
        assert fit.te_thickness == pytest.approx(s.te_thickness, rel=1e-9)
        yu, _ = fit.surfaces(s.upper[:, 0])
        _, yl = fit.surfaces(s.lower[:, 0])
        assert np.max(np.abs(yu - s.upper[:, 1])) < 1e-3
        assert np.max(np.abs(yl - s.lower[:, 1])) < 1e-3
        # symmetric section: lower = -upper coefficients
        assert np.allclose(fit.lower, -fit.upper, atol=1e-10)
    assert fit_cst(naca("2412", 120), 8).to_shape(100).camber == pytest.approx(0.02, abs=1e-3)


def test_cst_shape_definition():
    a = np.array([0.17, 0.15, 0.16, 0.14])
    s = cst_shape(a, -a, te_thickness=0.004, n_points=101)
    assert s.is_valid()
    assert s.te_thickness == pytest.approx(0.004, rel=1e-12)
    # C(x) = sqrt(x)(1 - x); at x = 0.5 the Bernstein sum of equal-weight... evaluate directly
    c = CSTAirfoil(a, -a, 0.0)
    yu, yl = c.surfaces(np.array([0.25]))
    b = np.array([0.75**3, 3 * 0.25 * 0.75**2, 3 * 0.25**2 * 0.75, 0.25**3])
    assert yu[0] == pytest.approx(0.5 * 0.75 * b @ a, rel=1e-12)
    assert yl[0] == pytest.approx(-yu[0], rel=1e-12)
    assert np.array_equal(c.as_vector(), np.concatenate([a, -a, [0.0]]))
    with pytest.raises(ValueError):
        CSTAirfoil([0.1, 0.2], [0.1], 0.0)
    with pytest.raises(ValueError):
        CSTAirfoil([0.1], [-0.1], -0.01)


def test_random_cst_valid_and_seeded():
    a = random_cst(7, 12, order=5)
    b = random_cst(np.random.default_rng(7), 12, order=5)
    c = random_cst(8, 12, order=5)
    assert len(a) == 12
    for p, q in zip(a, b, strict=True):
        assert np.array_equal(p.as_vector(), q.as_vector())
    assert not np.array_equal(a[0].as_vector(), c[0].as_vector())
    x = np.linspace(0, 1, 501)[1:-1]
    for p in a:
        s = p.to_shape(120)
        assert s.is_valid()
        yu, yl = p.surfaces(x)
        assert np.all(yu > yl)
        assert 0.04 <= s.thickness_max <= 0.25 + 1e-3
        assert p.upper.size == 6


def test_random_cst_leading_edge_coefficients():
    """Default draws have a round nose on both sides: A_u0 in le_range, -A_l0 in le_range, so
    the leading-edge radius A0^2/2 (class exponent 0.5) is 0.005-0.045 chords."""
    shapes = random_cst(3, 40)
    a_u0 = np.array([p.upper[0] for p in shapes])
    a_l0 = np.array([p.lower[0] for p in shapes])
    assert np.all((0.1 <= a_u0) & (a_u0 <= 0.3)) and np.all((-0.3 <= a_l0) & (a_l0 <= -0.1))
    free = random_cst(3, 40, le_range=None)  # the old draw: some lower noses point upwards
    assert np.any([p.lower[0] > 0 for p in free])
    with pytest.raises(ValueError, match="le_range"):
        random_cst(0, 2, le_range=(-0.1, 0.2))


def test_random_cst_rejects_impossible_ranges():
    with pytest.raises(ValueError, match="widen"):
        random_cst(0, 2, upper_range=(-0.2, -0.1), lower_range=(0.1, 0.2), max_tries=5)
    with pytest.raises(ValueError, match="upper_range"):
        random_cst(0, 2, upper_range=(0.3, 0.1))


def test_selig_round_trip(tmp_path):
    s = naca("2412", 50)
    path = tmp_path / "naca2412.dat"
    write_selig(s, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "NACA 2412" and len(lines) == 1 + len(s.coords)
    r = read_selig(path)
    assert r.name == s.name
    assert np.array_equal(r.coords, s.coords)
    r2 = AirfoilShape.from_dat(path)
    assert np.array_equal(r2.coords, s.coords)


def test_lednicer_read(tmp_path):
    s = naca("0012", 20, closed_te=True)
    up, lo = s.upper, s.lower
    text = ["NACA 0012 lednicer", f"{len(up)}. {len(lo)}.", ""]
    text += [f"{x} {y}" for x, y in up] + [""] + [f"{x} {y}" for x, y in lo]
    path = tmp_path / "led.dat"
    path.write_text("\n".join(text) + "\n")
    r = read_selig(path)
    assert np.allclose(r.coords, s.coords)


def test_read_selig_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        read_selig(tmp_path / "missing.dat")
    bad = tmp_path / "bad.dat"
    bad.write_text("name\n1 0\n0.5 0.1\nfoo bar\n")
    with pytest.raises(ValueError, match="line 4"):
        read_selig(bad)


def test_transforms():
    s = naca("0012", 60)
    r = s.rotate(10.0)  # nose up about the quarter chord
    le = r.coords[s.leading_edge_index]
    assert le[1] > 0 and r.coords[0, 1] < 0
    assert r.area == pytest.approx(s.area, rel=1e-12)
    back = r.rotate(-10.0)
    assert np.allclose(back.coords, s.coords, atol=1e-14)
    assert s.scale(2.0).area == pytest.approx(4 * s.area, rel=1e-12)
    assert np.allclose(s.translate(1.0, 2.0).coords - s.coords, [1.0, 2.0])
    with pytest.raises(ValueError):
        s.scale(0.0)


def test_is_valid_detects_self_intersection():
    bowtie = AirfoilShape([[1, 0], [0, 0.1], [0, -0.1], [1, 0.1], [1, 0]])
    assert not bowtie.is_valid()
    square = AirfoilShape([[1, 0], [1, 0.1], [0, 0.1], [0, -0.1], [1, -0.1], [1, 0]])
    assert square.is_valid()
    s = naca("0012", 40)
    c = s.coords.copy()
    c[10, 1] = -0.2  # pull an upper point through the lower surface
    assert not AirfoilShape(c).is_valid()
    with pytest.raises(ValueError):
        AirfoilShape(np.zeros((3, 2)))
    with pytest.raises(ValueError):
        AirfoilShape([[0, np.nan], [1, 0], [0, 1], [1, 1]])


def test_contains_and_to_meshio():
    s = naca("0012", 60)
    inside = s.contains([[0.3, 0.0], [0.3, 0.1], [-0.1, 0.0], [0.9, 0.0]])
    assert inside.tolist() == [True, False, False, True]
    m = s.to_meshio()
    lines = m.cells[0].data
    assert m.cells[0].type == "line" and len(lines) == len(m.points) == len(s.polygon)
    assert np.array_equal(np.bincount(lines.ravel()), np.full(len(m.points), 2))
