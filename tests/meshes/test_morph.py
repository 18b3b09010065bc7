"""Tests of meshes.morph: Tutte/Floater, RBF and elasticity morphing, and the POD online morph.

Reference: NACA 0012 (100 points, blunt TE) flow-domain mesh, growth 0.3, far field R = 20
(~4900 nodes). Targets: NACA 2412 and a random CST section (seed 1, shape 3, TE gap 2-3e-3).
"""

import math
import time

import meshio
import numpy as np
import pytest
import triangle

from meshes.airfoil import naca
from meshes.airfoil_mesh import FARFIELD_TAG, WALL_TAG, airfoil_domain_mesh
from meshes.cst import random_cst
from meshes.morph import (
    MorphResult,
    RBFMorpher,
    _airfoil,
    _wall_distance,
    closed_wall,
    medoid_airfoil,
    morphed_mesh,
    rbf_interpolate,
    resampled_wall,
)
from meshes.morph_elasticity import ElasticityMorpher, ElasticityPOD
from meshes.morph_tutte import TutteMorpher, default_inner_radius, tutte_parameterisation

R = 20.0
CENTER = np.array([0.5, 0.0])


@pytest.fixture(scope="module")
def ref():
    return airfoil_domain_mesh(naca("0012", 100), growth=0.3, farfield_radius=R)


def _cst_shapes(n, seed=1, **kw):
    # le_range=None: the free leading-edge draw these tests' thresholds were measured on
    kw.setdefault("le_range", None)
    return [s.to_shape(100) for s in random_cst(np.random.default_rng(seed), n,
                                                  te_range=(0.002, 0.003), **kw)]


@pytest.fixture(scope="module")
def targets():
    return {"2412": airfoil_domain_mesh(naca("2412", 100), growth=0.3, farfield_radius=R),
            "cst": airfoil_domain_mesh(_cst_shapes(4)[3], growth=0.3, farfield_radius=R)}


def _wall_only(shape) -> meshio.Mesh:
    """A target given by its wall line block only (enough for RBF and elasticity)."""
    poly = shape.polygon
    if not shape.is_sharp:  # a node at the middle of the blunt TE base (the TE anchor)
        poly = np.vstack([poly, 0.5 * (poly[0] + poly[-1])])
    n = len(poly)
    lines = np.column_stack([np.arange(n), (np.arange(n) + 1) % n])
    return meshio.Mesh(poly, [("line", lines)],
                       cell_data={"boundary_tag": [np.full(n, WALL_TAG)]})


def _far_nodes(mesh):
    return np.unique(np.concatenate(
        [np.asarray(b.data) for b, t in zip(mesh.cells, mesh.cell_data["boundary_tag"],
                                            strict=True)
         if b.type == "line" and np.all(np.asarray(t) == FARFIELD_TAG)]))


def _signed_areas(points, tris):
    p = points[tris][:, :, :2]
    return 0.5 * ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                  - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))


# ---------------------------------------------------------------------------------------------
# Tutte / Floater parameterisation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["mean-value", "uniform"])
def test_tutte_single_loop_is_bijective_onto_disk(weights):
    # a non-convex (star-shaped) polygon, triangulated with interior nodes
    k = np.arange(14)
    rad = np.where(k % 2 == 0, 1.0, 0.45)
    poly = np.column_stack([rad * np.cos(k * np.pi / 7), rad * np.sin(k * np.pi / 7)])
    seg = np.column_stack([k, (k + 1) % 14])
    t = triangle.triangulate({"vertices": poly, "segments": seg}, "pq25a0.005")
    mesh = meshio.Mesh(t["vertices"], [("triangle", t["triangles"])])
    uv, r0 = tutte_parameterisation(mesh, weights=weights)
    assert math.isnan(r0)
    tris = t["triangles"]
    area_phys = _signed_areas(t["vertices"], tris)
    area = _signed_areas(uv, tris)
    assert np.all(np.sign(area) == np.sign(area_phys))  # no fold-over (Tutte's theorem)
    assert np.all(area > 0)
    bnd = np.unique(t["segments"])  # the polygon's vertices and Triangle's splits
    assert np.abs(np.hypot(*uv[bnd].T) - 1).max() < 1e-12
    interior = np.setdiff1d(np.arange(len(uv)), bnd)
    assert np.hypot(*uv[interior].T).max() < 1 - 1e-6
    # the image tiles the inscribed polygon of the boundary nodes (area <= pi)
    assert 0.9 * np.pi < area.sum() <= np.pi


def test_tutte_annulus_airfoil(ref):
    r0 = default_inner_radius(ref)
    # capacity radius of a 12 % thick section (~0.28 chord / 4... ) over R = 20
    assert 0.010 < r0 < 0.018
    uv, r_used = tutte_parameterisation(ref)
    assert r_used == r0
    a = _airfoil(ref, "ref")
    assert np.abs(np.hypot(*uv[a.wall].T) - r0).max() < 1e-12
    assert np.abs(np.hypot(*uv[a.far].T) - 1).max() < 1e-12
    assert np.all(_signed_areas(uv, a.tris) > 0)  # no folds with mean-value weights
    # TE at angle 0 and LE at angle pi on the inner circle
    assert np.allclose(uv[a.wall[0]], [r0, 0], atol=1e-14)
    assert np.allclose(uv[a.wall[a.le]], [-r0, 0], atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Morphers
# ---------------------------------------------------------------------------------------------

MORPHERS = {"tutte": TutteMorpher, "rbf": RBFMorpher, "elasticity": ElasticityMorpher}
MIN_ANGLE = {  # measured min angles (deg): reference 28.0
    ("tutte", "2412"): 18.5, ("tutte", "cst"): 10.0,
    ("rbf", "2412"): 26.5, ("rbf", "cst"): 20.5,
    ("elasticity", "2412"): 27.3, ("elasticity", "cst"): 26.9,
}


@pytest.mark.parametrize("name", list(MORPHERS))
def test_identity(ref, name):
    res = MORPHERS[name]().morph(ref, ref)
    assert np.abs(res.points - ref.points).max() < 1e-10
    assert res.boundary_distance < 1e-12


@pytest.mark.parametrize("target", ["2412", "cst"])
@pytest.mark.parametrize("name", list(MORPHERS))
def test_morph_onto_target(ref, targets, name, target):
    tgt = targets[target]
    t0 = time.perf_counter()
    res = MORPHERS[name]().morph(ref, tgt)
    elapsed = time.perf_counter() - t0
    q = res.quality
    print(f"{name} -> {target}: {elapsed:.2f} s, boundary distance {res.boundary_distance:.2e}, "
          f"min angle {q['min_angle']:.2f}, max aspect {q['max_aspect_ratio']:.2f}, "
          f"iterations {res.n_iterations}")
    assert isinstance(res, MorphResult)
    assert res.points.shape == ref.points.shape
    # wall nodes on the target wall polygon (exact by construction / final projection)
    assert res.boundary_distance < 1e-9
    # far-field nodes on the far-field circle
    far = _far_nodes(ref)
    assert np.abs(np.hypot(*(res.points[far, :2] - CENTER).T) - R).max() < 1e-9
    # no inverted triangles, quality reported and close to the measured figure
    tris = np.asarray(ref.cells[0].data)
    assert np.all(_signed_areas(res.points, tris) > 0)
    assert q["n_inverted"] == 0
    assert q["min_angle"] > MIN_ANGLE[(name, target)] - 1.0
    # LE and TE land on the target's LE and TE
    a, b = _airfoil(ref, "ref"), _airfoil(tgt, "tgt")
    assert np.abs(res.points[a.wall[0], :2] - b.xy[b.wall[0]]).max() < 1e-12
    assert np.abs(res.points[a.wall[a.le], :2] - b.xy[b.wall[b.le]]).max() < 1e-12
    # the morph really moved the wall (the targets differ by 2-4 % of the chord)
    assert np.abs(res.displacement[a.wall]).max() > 0.01
    m = morphed_mesh(ref, res)
    assert [c.type for c in m.cells] == [c.type for c in ref.cells]
    assert np.array_equal(m.cells[0].data, ref.cells[0].data)
    assert np.array_equal(m.points, res.points)


def test_inverted_triangles_are_refused(ref):
    # NACA 0024 from the NACA 0012 reference: the RBF spreads the thick nose too little
    bad = airfoil_domain_mesh(naca("0024", 100), growth=0.3, farfield_radius=R)
    with pytest.raises(ValueError, match=r"\d+ inverted triangles"):
        RBFMorpher().morph(ref, bad)


def test_elasticity_converges_and_wall_only_target(ref):
    shape = naca("2412", 100)
    res = ElasticityMorpher().morph(ref, _wall_only(shape))
    hist = res.info["history"]
    assert hist[0] > 0.01 and hist[-1] < 1e-6  # penalty loop reached tol before projecting
    assert res.n_iterations <= 8
    assert res.boundary_distance < 1e-12


def test_rbf_interpolate_3d():
    rng = np.random.default_rng(0)
    c = rng.random((60, 3))
    v = np.column_stack([np.sin(c[:, 0]), c[:, 1] ** 2])
    out = rbf_interpolate(c, v, np.vstack([c, [[5.0, 5.0, 5.0]]]), support_radius=1.5)
    assert np.abs(out[:60] - v).max() < 1e-9
    assert np.all(out[60] == 0)  # compact support
    with pytest.raises(ValueError, match="d = 2 or 3"):
        rbf_interpolate(c, v, np.zeros((3, 2)), support_radius=1.0)


# ---------------------------------------------------------------------------------------------
# POD offline / online
# ---------------------------------------------------------------------------------------------


def test_pod_online_morph(ref):
    # round-nosed CST sections (lower-surface coefficients < 0): the full morph of sections
    # with a cusped nose (lower coefficients > 0) can fail at the LE (ValueError)
    shapes = _cst_shapes(13, seed=7, lower_range=(-0.25, -0.05))
    full = ElasticityMorpher()
    t0 = time.perf_counter()
    train = [full.morph(ref, _wall_only(s)) for s in shapes[:12]]
    t_full = (time.perf_counter() - t0) / 12
    pod = ElasticityPOD(n_modes=10).fit(train)
    held = _wall_only(shapes[12])
    ref_full = full.morph(ref, held)
    t0 = time.perf_counter()
    online = pod.morph_online(ref, held)
    t_online = time.perf_counter() - t0
    # best possible in the POD space: the projection of the full solve's displacement
    proj = MorphResult(points=ref.points + pod.project(ref_full.displacement), quality={},
                       boundary_distance=0.0, n_iterations=0)
    a, b = _airfoil(ref, "ref"), _airfoil(held, "held")
    d_proj = _wall_distance(proj.points[a.wall, :2], b)
    print(f"POD online: boundary distance {online.boundary_distance:.2e} "
          f"(projection of full solve {d_proj:.2e}, full {ref_full.boundary_distance:.1e}); "
          f"{t_online * 1e3:.0f} ms vs full {t_full * 1e3:.0f} ms; "
          f"min angle {online.quality['min_angle']:.1f}")
    assert online.quality["n_inverted"] == 0
    assert online.boundary_distance < 2.0 * d_proj
    d0 = _wall_distance(np.asarray(ref.points)[a.wall, :2], b)
    print(f"POD online: undeformed reference distance {d0:.2e}")
    assert online.boundary_distance < 0.3 * d0
    assert t_online < t_full


def test_elasticity_rotated_target(ref):
    # a 5 degree rotation moves the TE by 0.065 chords: the Tutte and RBF correspondences are
    # not needed, the closest-point loads and the LE/TE constraints carry the mesh round
    shape = naca("0012", 100).rotate(5.0)
    tgt = _wall_only(shape)
    res = ElasticityMorpher().morph(ref, tgt)
    a, b = _airfoil(ref, "ref"), _airfoil(tgt, "tgt")
    assert res.boundary_distance < 1e-12
    assert np.abs(res.points[a.wall[0], :2] - b.xy[b.wall[0]]).max() < 1e-12
    assert abs(res.points[a.wall[0], 1] + 0.75 * np.sin(np.radians(5.0))) < 2e-3
    assert res.quality["n_inverted"] == 0 and res.quality["min_angle"] > 10.0


def test_pod_errors(ref):
    with pytest.raises(ValueError, match="not fitted"):
        ElasticityPOD().morph_online(ref, ref)
    with pytest.raises(ValueError, match="different shapes"):
        ElasticityPOD().fit([np.zeros((5, 2)), np.zeros((6, 2))])
    pod = ElasticityPOD(n_modes=2).fit([np.zeros((5, 2)), np.ones((5, 2))])
    with pytest.raises(ValueError, match="fitted on 5"):
        pod.morph_online(ref, ref)


def test_elasticity_step_halving_rescues_an_overshooting_step(ref, targets):
    """Steps of twice the load (gamma 2) invert cells on the way to NACA 6412 (refused without
    halving); halving the step where it would invert reaches the target wall to round-off."""
    kw = {"gammas": (2.0,), "penalties": (1e4, 1e6)}
    tgt = airfoil_domain_mesh(naca("6412", 100), growth=0.3, farfield_radius=R)
    with pytest.raises(ValueError, match="halved 0 times"):
        ElasticityMorpher(max_halvings=0, **kw).morph(ref, tgt)
    res = ElasticityMorpher(max_halvings=4, **kw).morph(ref, tgt)
    assert res.boundary_distance < 1e-12 and res.quality["n_inverted"] == 0
    with pytest.raises(ValueError, match="max_halvings"):
        ElasticityMorpher(max_halvings=-1)


def test_rbf_operator_is_reused_and_exact(ref, targets):
    """The cached operator of a second morph from the same reference gives the same points as
    a fresh morpher and as the direct interpolation."""
    m = RBFMorpher()
    first = m.morph(ref, targets["2412"]).points
    again = m.morph(ref, targets["2412"]).points
    fresh = RBFMorpher().morph(ref, targets["2412"]).points
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fresh)
    other = m.morph(ref, targets["cst"])  # same reference, other target: cached operator
    assert other.boundary_distance < 1e-9 and other.quality["n_inverted"] == 0
    rng = np.random.default_rng(0)
    c, v, x = rng.uniform(-1, 1, (30, 2)), rng.standard_normal((30, 2)), rng.uniform(-1, 1, (50, 2))
    np.testing.assert_allclose(rbf_interpolate(c, v, c, support_radius=1.5), v, atol=1e-9)
    direct = _phi(x, c) @ np.linalg.solve(_phi(c, c), v)
    np.testing.assert_allclose(rbf_interpolate(c, v, x, support_radius=1.5), direct, atol=1e-9)


def _phi(a, b, rho=1.5):
    r = np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1)) / rho
    return np.where(r < 1, (1 - r) ** 4 * (4 * r + 1), 0.0)


def test_medoid_airfoil_and_resampled_wall():
    """A thickness family 8..16 %: the 12 % section is the medoid, duplicates included."""
    meshes = [airfoil_domain_mesh(naca(f"00{t:02d}", 60), growth=0.6, farfield_radius=R)
              for t in (8, 10, 12, 14, 16)]
    assert medoid_airfoil(meshes + [meshes[2]]) == 2
    w = resampled_wall(meshes[2], n=41)
    assert w.shape == (41, 2)
    np.testing.assert_allclose(w[0], w[-1], atol=1e-12)  # closed loop from the TE
    assert w[0, 0] == pytest.approx(1.0, abs=1e-9) and w[10, 1] > 0 > w[30, 1]  # upper first
    seg = np.hypot(*np.diff(w, axis=0).T)
    np.testing.assert_allclose(seg, seg.mean(), rtol=0.05)  # equal arc length (chords)
    loop = closed_wall(meshes[2])
    assert np.array_equal(loop[0], loop[-1]) and loop[0, 0] == pytest.approx(1.0, abs=1e-9)
    assert len(np.unique(loop[:-1], axis=0)) == len(loop) - 1  # each wall node once, closed
