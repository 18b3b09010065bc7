"""Tests of the batched exact GP helper and the MMGP regressor on a synthetic shape family.

The shape family: the disk of radius 1 with an elliptical hole of semi-axes ``(R0 a, R0 / a)``,
meshed by a structured polar triangulation whose resolution varies between samples (so meshes
differ in node count and connectivity). Stand-ins for the morphing and transfer modules:

* ``ParametricMorpher`` knows the family's parameterisation: a support node at polar parameters
  ``(t, theta)`` of the circular-hole reference goes to the point with the same parameters on the
  target (whose ``a`` is stored in ``field_data``);
* ``p1_transfer`` is a brute-force P1 (barycentric) interpolation on the triangles, clamped to the
  nearest triangle outside the mesh; rows sum to 1.
"""

from __future__ import annotations

import copy
import json
import time

import meshio
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from meshes.morph import mesh_key
from surrogates.metrics import mesh as mm
from surrogates.models.gp import BatchedExactGP
from surrogates.models.mmgp import MMGPRegressor, WeightedPCA, lumped_mass

R0 = 0.35


# ------------------------------------------------------------------------- synthetic family
def family_point(t, theta, a):
    """Point at radial parameter t in [0, 1] and angle theta on the shape with parameter a."""
    sx, sy = (1 - t) * R0 * a + t, (1 - t) * R0 / a + t
    return np.stack([sx * np.cos(theta), sy * np.sin(theta)], axis=-1)


def family_mesh(a: float, n_r: int = 6, n_t: int = 24) -> meshio.Mesh:
    t = np.linspace(0.0, 1.0, n_r)
    theta = np.linspace(0.0, 2 * np.pi, n_t, endpoint=False)
    T, TH = np.meshgrid(t, theta, indexing="ij")
    pts = family_point(T.ravel(), TH.ravel(), a)
    idx = np.arange(n_r * n_t).reshape(n_r, n_t)
    nxt = np.roll(idx, -1, axis=1)
    tri = np.concatenate([np.stack([idx[:-1], idx[1:], nxt[1:]], -1).reshape(-1, 3),
                          np.stack([idx[:-1], nxt[1:], nxt[:-1]], -1).reshape(-1, 3)])
    return meshio.Mesh(pts, [("triangle", tri)], field_data={"a": np.array([a])})


def scalar_truth(a, u):
    return 2.0 + np.sin(1.5 * a) + 0.5 * u + 0.2 * a * u


def field_truth(points, a, u):
    x, y = points[:, 0], points[:, 1]
    return (1.0 + 0.5 * u) * x + a * y**2 + 0.3 * np.sin(2.0 * x + u)


class ParametricMorpher:
    """Maps the circular-hole reference (a = 1) onto any family member, node by node."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale  # a JSON-serialisable kwarg, to exercise the recorded kwargs

    def morph(self, reference, target):
        p = np.asarray(reference.points)[:, :2]
        r = np.hypot(p[:, 0], p[:, 1])
        t = np.clip((r - R0) / (1.0 - R0), 0.0, 1.0)
        theta = np.arctan2(p[:, 1], p[:, 0])

        class Result:
            points = family_point(t, theta, float(target.field_data["a"][0]))

        return Result()


class IdentityMorpher:
    """Same-connectivity family: the morphed support is the target's own node array."""

    def morph(self, reference, target):
        assert len(reference.points) == len(target.points)

        class Result:
            points = np.asarray(target.points)[:, :2]

        return Result()


def p1_transfer(mesh, points):
    """(n_points, n_nodes) P1 interpolation matrix; outside points use the nearest triangle."""
    xy = np.asarray(mesh.points)[:, :2]
    tri = mesh.cells_dict["triangle"]
    q = np.asarray(points)[:, :2]
    v0, v1, v2 = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    det = (v1[:, 0] - v0[:, 0]) * (v2[:, 1] - v0[:, 1]) - (v2[:, 0] - v0[:, 0]) * (
        v1[:, 1] - v0[:, 1])
    dx, dy = q[:, None, 0] - v0[None, :, 0], q[:, None, 1] - v0[None, :, 1]
    l1 = ((v2[:, 1] - v0[:, 1]) * dx - (v2[:, 0] - v0[:, 0]) * dy) / det
    l2 = (-(v1[:, 1] - v0[:, 1]) * dx + (v1[:, 0] - v0[:, 0]) * dy) / det
    lam = np.stack([1 - l1 - l2, l1, l2], axis=-1)  # (q, n_tri, 3)
    best = np.argmax(lam.min(axis=-1), axis=1)
    w = np.clip(lam[np.arange(len(q)), best], 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(len(q)), 3)
    return sp.csr_matrix((w.ravel(), (rows, tri[best].ravel())), shape=(len(q), len(xy)))


def make_data(n: int, seed: int, variable: bool = True):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.7, 1.4, n)
    u = rng.uniform(-1.0, 1.0, n)
    meshes = []
    for i in range(n):
        n_r, n_t = ((6, 24), (7, 28), (5, 30))[i % 3] if variable else (6, 24)
        meshes.append(family_mesh(a[i], n_r, n_t))
    outputs = {"cl": scalar_truth(a, u),
               "p": [field_truth(m.points, ai, ui) for m, ai, ui in zip(meshes, a, u,
                                                                           strict=True)]}
    return meshes, u[:, None], outputs


@pytest.fixture(scope="module")
def fitted():
    meshes, inputs, outputs = make_data(40, seed=1)
    model = MMGPRegressor(morpher=ParametricMorpher(), transfer=p1_transfer,
                          reference=family_mesh(1.0, 8, 32), n_restarts=4, seed=0)
    model.fit(meshes, inputs, outputs)
    test = make_data(10, seed=2)
    mean, std = model.predict(test[0], test[1], return_std=True)
    return model, test, mean, std


# ------------------------------------------------------------------------------- GP helper
def _toy(n, rng, noise=0.05):
    X = rng.uniform(-2, 2, (n, 2))
    f = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    return X, f, f + noise * rng.standard_normal(n)


def test_gp_accuracy_and_coverage_on_noisy_2d_function():
    rng = np.random.default_rng(0)
    X, _, y = _toy(60, rng)
    gp = BatchedExactGP(n_restarts=3, seed=0).fit(X, y)
    g = np.linspace(-1.8, 1.8, 15)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    fG = np.sin(2 * G[:, 0]) + 0.5 * G[:, 1] ** 2
    yG = fG + 0.05 * rng.standard_normal(len(G))  # fresh noisy observations on the grid
    mean, std = gp.predict(G, return_std=True)
    assert mean.shape == std.shape == (len(G), 1)
    assert np.sqrt(np.mean((mean[:, 0] - fG) ** 2)) < 0.05  # noise level 0.05
    assert 0.85 <= np.mean(np.abs(yG - mean[:, 0]) <= 1.96 * std[:, 0]) <= 1.0
    assert 0.5 * 0.05**2 < gp.noise_[0] < 2.0 * 0.05**2  # noise variance recovered


def test_gp_restarts_keep_the_best_marginal_likelihood():
    rng = np.random.default_rng(3)
    X, _, y1 = _toy(30, rng)
    y2 = np.cos(3 * X[:, 1]) + 0.01 * rng.standard_normal(30)
    Y = np.stack([y1, y2], 1)
    one = BatchedExactGP(n_restarts=1, max_iter=60, seed=5).fit(X, Y)
    many = BatchedExactGP(n_restarts=6, max_iter=60, seed=5).fit(X, Y)
    lml = many.restart_log_marginal_likelihood_
    assert lml.shape == (6, 2)
    np.testing.assert_allclose(many.log_marginal_likelihood_, lml.max(axis=0), rtol=1e-8)
    np.testing.assert_array_equal(many.best_restart_, lml.argmax(axis=0))
    # restart 0 is the fixed default start and is unaffected by the other batch members
    np.testing.assert_allclose(lml[0], one.restart_log_marginal_likelihood_[0], rtol=1e-7)
    assert np.all(many.log_marginal_likelihood_ >= one.log_marginal_likelihood_ - 1e-8)
    assert np.ptp(lml, axis=0).max() > 1e-3  # the restarts did end in different places


def test_gp_matches_scikit_learn_with_fixed_hyperparameters():
    rng = np.random.default_rng(1)
    X, _, y = _toy(25, rng)
    ls, s2, noise = np.array([0.7, 1.9]), 1.3, 0.02
    gp = BatchedExactGP().set_hyperparameters(X, y, ls, s2, noise)
    kernel = (ConstantKernel(s2, "fixed") * Matern(ls, "fixed", nu=2.5)
              + WhiteKernel(noise, "fixed"))
    sk = GaussianProcessRegressor(kernel, alpha=0.0, optimizer=None).fit(X, y)
    Xq = rng.uniform(-2.5, 2.5, (50, 2))
    m_sk, s_sk = sk.predict(Xq, return_std=True)
    m, s = gp.predict(Xq, return_std=True)
    np.testing.assert_allclose(m[:, 0], m_sk, atol=1e-6)
    np.testing.assert_allclose(s[:, 0], s_sk, atol=1e-6)
    assert abs(gp.log_marginal_likelihood_[0] - sk.log_marginal_likelihood_value_) < 1e-6
    # latent (noise-free) std: the observation std minus the noise, in variance
    _, s_lat = gp.predict(Xq, return_std=True, include_noise=False)
    np.testing.assert_allclose(s_lat[:, 0] ** 2 + noise, s_sk**2, atol=1e-6)


def test_gp_grouped_loo_amplitude_matches_refits():
    """calibrate_amplitude(method="joint")'s closed form equals conditioning on all other groups
    (same hyperparameters) and averaging the residuals' Mahalanobis norms; the mean is kept and
    every variance is scaled by the factor."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 2))
    g = np.repeat(np.arange(10), 4)
    Y = np.stack([np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.3 * rng.standard_normal(10)[g],
                  np.cos(2 * X[:, 1])], 1)
    gp = BatchedExactGP(n_restarts=2, max_iter=100).fit(X, Y)
    ls, os_, noise = gp.lengthscale_.copy(), gp.outputscale_.copy(), gp.noise_.copy()

    def matern(a, b, j):
        d = np.sqrt((((a[:, None] - b[None]) / ls[j]) ** 2).sum(-1))
        return os_[j] * (1 + np.sqrt(5) * d + 5 / 3 * d**2) * np.exp(-np.sqrt(5) * d)

    total = np.zeros(2)
    for k in range(10):
        tr, te = g != k, g == k
        for j in range(2):
            ktt = matern(X[tr], X[tr], j) + noise[j] * np.eye(tr.sum())
            kst = matern(X[te], X[tr], j)
            cov = matern(X[te], X[te], j) + noise[j] * np.eye(4) - kst @ np.linalg.solve(
                ktt, kst.T)
            r = Y[te, j] - kst @ np.linalg.solve(ktt, Y[tr, j])
            total[j] += r @ np.linalg.solve(cov, r)
    x_new = rng.uniform(-1, 1, (5, 2))
    mean0, std0 = gp.predict(x_new, return_std=True)
    factor = gp.calibrate_amplitude(g, method="joint")
    floor = gp.min_noise / noise  # the noise may not fall below min_noise
    np.testing.assert_allclose(factor, np.maximum(total / 40, floor), rtol=1e-8)
    assert factor[0] > 1.1  # shared group offsets, which the likelihood underrates
    mean1, std1 = gp.predict(x_new, return_std=True)
    np.testing.assert_allclose(mean1, mean0, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(std1, std0 * np.sqrt(factor), rtol=1e-6)


def test_gp_rejects_bad_shapes():
    with pytest.raises(ValueError, match="rows"):
        BatchedExactGP().fit(np.zeros((5, 2)), np.zeros(4))
    gp = BatchedExactGP().set_hyperparameters(np.eye(3), np.ones(3), 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match=r"\(q, 3\)"):
        gp.predict(np.zeros((2, 2)))


# ------------------------------------------------------------------------------ mesh tools
def test_lumped_mass_and_weighted_pca():
    mesh = family_mesh(1.0, 6, 24)
    w = lumped_mass(mesh)
    # the polygonal annulus' area: outer and inner 24-gons
    area = 0.5 * 24 * np.sin(2 * np.pi / 24) * (1 - R0**2)
    assert abs(w.sum() - area) < 1e-12
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, len(w))) @ np.diag(1 + np.arange(len(w)) % 3)
    pca = WeightedPCA(w, variance=0.9).fit(X)
    C = pca.components_
    np.testing.assert_allclose(C @ C.T, np.eye(len(C)), atol=1e-10)  # M-orthonormal modes
    assert pca.explained_variance_ratio_[: pca.n_components_].sum() >= 0.9
    full = WeightedPCA(w, n_modes=11).fit(X)
    np.testing.assert_allclose(full.inverse_transform(full.transform(X)), X, atol=1e-9)


def test_p1_transfer_stand_in_is_exact_on_linear_functions():
    mesh = family_mesh(1.2, 5, 30)
    q = family_point(np.random.default_rng(0).uniform(0.05, 0.95, 40),
                     np.random.default_rng(1).uniform(0, 2 * np.pi, 40), 1.2)
    T = p1_transfer(mesh, q)
    f = 2 * mesh.points[:, 0] - 3 * mesh.points[:, 1] + 0.5
    np.testing.assert_allclose(T @ f, 2 * q[:, 0] - 3 * q[:, 1] + 0.5, atol=1e-12)
    np.testing.assert_allclose(np.asarray(T.sum(axis=1)).ravel(), 1.0)


# ------------------------------------------------------------------------------------ MMGP
def test_mmgp_accuracy_and_calibration(fitted):
    model, (meshes, inputs, ref), mean, std = fitted
    assert set(mean) == {"cl", "p"} and mean["cl"].shape == (10,)
    assert [len(p) for p in mean["p"]] == [len(m.points) for m in meshes]
    scores = mm.evaluate(mean, std, ref)
    assert scores["cl"]["rrmse"] < 1e-4  # measured 1.3e-6
    assert scores["cl"]["q2"] > 0.999
    assert scores["p"]["rrmse"] < 2e-2  # measured 7.2e-3 (mostly P1 transfer error)
    assert scores["p"]["q2"] > 0.999
    assert scores["p"]["relative_l2"] < 0.03
    # pooled nodal coverage (measured 0.99) and spread vs error (measured 1.1)
    assert 0.85 <= scores["p"]["coverage"] <= 1.0
    err = np.concatenate([m - r for m, r in zip(mean["p"], ref["p"], strict=True)])
    spread = np.concatenate(std["p"])
    assert 0.5 < np.sqrt(np.mean(spread**2) / np.mean(err**2)) < 2.0
    assert scores["p"]["nll"] < 0.0
    # scalars: 10 values only, so a loose band (binomial(10, 0.95) >= 7 with prob. 0.999)
    assert 0.7 <= scores["cl"]["coverage"] <= 1.0
    assert np.isfinite(scores["p"]["crps"]) and np.isfinite(scores["p"]["nll"])
    assert 1 <= model.shape_pca_.n_components_ <= 6  # one shape parameter
    assert model.field_pca_["p"].n_components_ >= 2
    assert model.fit_seconds_ > 0 and model.morph_seconds_.shape == (40,)


@pytest.mark.parametrize("nugget", [False, True])
def test_mmgp_closed_form_field_std_matches_monte_carlo(fitted, nugget):
    model, (meshes, inputs, _), _, _ = fitted
    model = copy.copy(model)
    model.truncation_nugget = nugget  # False: the mode-posterior propagation alone
    _, std = model.predict(meshes[:3], inputs[:3], return_std=True)
    samples = model.sample_y(meshes[:3], inputs[:3], n_samples=20000, seed=0)
    for i in range(3):
        mc = samples["p"][i].std(axis=0)
        assert std["p"][i].min() > 0
        np.testing.assert_allclose(mc, std["p"][i], rtol=0.04)
    np.testing.assert_allclose(samples["cl"].std(axis=0), std["cl"], rtol=0.04)


def test_mmgp_save_load_round_trip(fitted, tmp_path):
    model, (meshes, inputs, _), mean, std = fitted
    folder = model.save(tmp_path / "mmgp")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["morpher"]["name"].endswith("ParametricMorpher")
    assert cfg["morpher"]["kwargs"] == {"scale": 1.0}
    with np.load(folder / "arrays.npz", allow_pickle=False) as data:
        assert "gp_lengthscale" in data.files
    loaded = MMGPRegressor.load(folder, morpher=ParametricMorpher(), transfer=p1_transfer)
    mean2, std2 = loaded.predict(meshes, inputs, return_std=True)
    np.testing.assert_allclose(mean2["cl"], mean["cl"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std2["cl"], std["cl"], rtol=1e-12, atol=1e-12)
    for a, b in zip(mean2["p"], mean["p"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(std2["p"], std["p"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    with pytest.raises(FileNotFoundError, match="config.json"):
        MMGPRegressor.load(tmp_path / "missing")


def test_mmgp_identity_morpher_vector_field_and_index_reference():
    meshes, inputs, outputs = make_data(20, seed=4, variable=False)
    a = np.array([m.field_data["a"][0] for m in meshes])
    outputs["u"] = [np.stack([p, 2 * p], 1) for p in outputs["p"]]  # two components
    model = MMGPRegressor(morpher=IdentityMorpher(), transfer=p1_transfer, reference=3,
                          n_restarts=2, max_iter=100, truncation_nugget=True)
    t0 = time.perf_counter()
    model.fit(meshes, inputs, outputs)
    assert time.perf_counter() - t0 < 20
    test_meshes, test_inputs, test_out = make_data(5, seed=5, variable=False)
    mean, std = model.predict(test_meshes, test_inputs, return_std=True)
    assert mean["u"][0].shape == std["u"][0].shape == (len(test_meshes[0].points), 2)
    assert mm.field_rrmse(mean["p"], test_out["p"]) < 5e-2
    np.testing.assert_allclose([m[:, 1] for m in mean["u"]], [2 * m[:, 0] for m in mean["u"]],
                               rtol=1e-6, atol=1e-6)
    assert a.min() < a.max()


class CountingMorpher(ParametricMorpher):
    calls = 0

    def morph(self, reference, target):
        CountingMorpher.calls += 1
        return super().morph(reference, target)


def test_mmgp_morphs_each_distinct_mesh_once():
    """Several samples on one mesh (a shape at several conditions): one morph and one transfer
    per distinct mesh, and the same result as when every sample brings its own copy."""
    meshes, inputs, outputs = make_data(8, seed=6)
    rep = [m for m in meshes for _ in range(3)]
    copies = [meshio.Mesh(m.points.copy(), [(c.type, c.data.copy()) for c in m.cells],
                          field_data=m.field_data) for m in rep]
    u = np.random.default_rng(7).uniform(-1, 1, (len(rep), 1))
    a = np.array([m.field_data["a"][0] for m in rep])
    outs = {"cl": scalar_truth(a, u[:, 0]),
            "p": [field_truth(m.points, ai, ui) for m, ai, ui in zip(rep, a, u[:, 0],
                                                                    strict=True)]}
    preds = []
    for ms in (rep, copies):
        CountingMorpher.calls = 0
        model = MMGPRegressor(morpher=CountingMorpher(), transfer=p1_transfer,
                              reference=family_mesh(1.0, 8, 32), n_restarts=1, max_iter=50)
        model.fit(ms, u, outs)
        assert CountingMorpher.calls == 8 and model.morph_seconds_.shape == (8,)
        preds.append(model.predict(ms[:6], u[:6], return_std=True))
        assert CountingMorpher.calls == 8 + 2
    (mean0, std0), (mean1, std1) = preds
    np.testing.assert_array_equal(mean0["cl"], mean1["cl"])
    np.testing.assert_array_equal(np.concatenate(mean0["p"]), np.concatenate(mean1["p"]))
    np.testing.assert_array_equal(np.concatenate(std0["p"]), np.concatenate(std1["p"]))
    assert mesh_key(rep[0]) == mesh_key(copies[0]) != mesh_key(rep[3])


def test_mmgp_rejects_bad_inputs():
    meshes, inputs, outputs = make_data(6, seed=6)
    model = MMGPRegressor(morpher=ParametricMorpher(), transfer=p1_transfer,
                          reference=family_mesh(1.0), n_restarts=1, max_iter=5)
    with pytest.raises(ValueError, match="inputs must be"):
        model.fit(meshes, inputs[:5], outputs)
    with pytest.raises(ValueError, match="scalar output 'cl' has 5 values"):
        model.fit(meshes, inputs, {**outputs, "cl": outputs["cl"][:5]})
    bad = list(outputs["p"])
    bad[2] = bad[2][:-1]
    with pytest.raises(ValueError, match="mesh 2"):
        model.fit(meshes, inputs, {**outputs, "p": bad})
    with pytest.raises(ValueError, match="5 arrays for 6 meshes"):
        model.fit(meshes, inputs, {**outputs, "p": outputs["p"][:5]})
    with pytest.raises(ValueError, match="not fitted"):
        model.predict(meshes, inputs)
    model.fit(meshes, inputs, outputs)
    with pytest.raises(ValueError, match="2 columns"):
        model.predict(meshes, np.zeros((6, 2)))
    with pytest.raises(ValueError, match="single mesh"):
        model.predict(meshes[0], inputs[:1])


def test_mmgp_metrics_definitions():
    ref = np.array([1.0, 2.0, -4.0])
    assert mm.scalar_rrmse(ref * 1.1, ref) == pytest.approx(0.1)
    f_ref = [np.array([1.0, -2.0]), np.array([3.0, 0.0, 1.0])]
    f_pred = [np.array([1.0, -1.0]), np.array([3.0, 0.0, 1.0])]
    # sample 0: MSE 0.5 / max|ref|^2 4 = 0.125; sample 1: 0 -> sqrt(mean) = sqrt(0.0625)
    assert mm.field_rrmse(f_pred, f_ref) == pytest.approx(0.25)
    assert mm.q2(f_ref, f_ref) == 1.0
    np.testing.assert_allclose(mm.field_relative_l2(f_pred, f_ref), [1 / np.sqrt(5), 0.0])
    with pytest.raises(ValueError, match="sample 1"):
        mm.field_rrmse([f_pred[0], f_pred[1][:2]], f_ref)


def test_mmgp_default_transfer_from_meshes_package(tmp_path):
    """Integration with meshes.transfer.transfer_matrix (the default transfer)."""
    meshes, inputs, outputs = make_data(24, seed=7)
    model = MMGPRegressor(morpher=ParametricMorpher(), reference=family_mesh(1.0, 8, 32),
                          n_restarts=2, max_iter=150)
    model.fit(meshes, inputs, outputs)
    test_meshes, test_inputs, test_out = make_data(6, seed=8)
    mean, std = model.predict(test_meshes, test_inputs, return_std=True)
    scores = mm.evaluate(mean, std, test_out)
    assert scores["p"]["rrmse"] < 2e-2
    assert 0.85 <= scores["p"]["coverage"] <= 1.0
    loaded = MMGPRegressor.load(model.save(tmp_path / "m"), morpher=ParametricMorpher())
    assert loaded.transfer is None  # the default is re-resolved, not pickled
    again = loaded.predict(test_meshes, test_inputs)
    np.testing.assert_allclose(again["p"][0], mean["p"][0], rtol=1e-12, atol=1e-12)


def test_query_nugget_follows_the_error_and_keeps_coverage(fitted):
    """The constant in-sample nugget is the same for every query (the per-sample RMS std barely
    varies and does not say which samples are hard); the query-dependent one tracks the error
    over test shapes. Measured: correlation 0.11 -> 0.98, 95 % coverage 0.95 -> 1.00."""
    model, _, _, _ = fitted
    meshes, inputs, ref = make_data(30, seed=2)
    stats = {}
    for mode in ("constant", "query"):
        tuned = copy.copy(model)
        tuned.truncation_nugget = mode
        mean, std = tuned.predict(meshes, inputs, return_std=True)
        s = [np.sqrt(np.mean(x**2)) for x in std["p"]]
        e = [np.sqrt(np.mean((m - r) ** 2)) for m, r in zip(mean["p"], ref["p"], strict=True)]
        stats[mode] = (np.corrcoef(s, e)[0, 1], np.std(s) / np.mean(s),
                       mm.evaluate(mean, std, ref)["p"]["coverage"])
    assert stats["constant"][1] < 0.05  # measured 0.015: one nugget for every query
    assert stats["query"][0] > 0.8 > stats["constant"][0] + 0.3
    assert stats["query"][1] > 0.15  # measured 0.31, the error's 0.24
    assert 0.93 <= stats["query"][2] <= 1.0
    with pytest.raises(ValueError, match="truncation_nugget"):
        MMGPRegressor(truncation_nugget="sometimes")._nugget_mode()


def test_fold_truncation_energies_out_of_sample():
    """Snapshots in a 2-D affine subspace lose nothing to a 2-mode POD, in or out of sample;
    a direction that only one group has is kept by the full POD of 3 modes but lost entirely
    when that group is left out."""
    from surrogates.models.mmgp.nugget import fold_truncation_energies

    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 2.0, 12)
    basis = rng.standard_normal((3, 12))
    coef = rng.standard_normal((20, 2))
    snaps = 1.0 + coef @ basis[:2]
    groups = np.repeat(np.arange(10), 2)
    e_in, e_out = fold_truncation_energies(snaps, w, 2, groups)
    np.testing.assert_allclose(e_in, 0.0, atol=1e-20)
    np.testing.assert_allclose(e_out, 0.0, atol=1e-20)
    odd = snaps.copy()
    odd[groups == 4] += 5.0 * basis[2]  # both samples of group 4 leave the subspace
    e_in, e_out = fold_truncation_energies(odd, w, 3, groups)
    np.testing.assert_allclose(e_in, 0.0, atol=1e-18)
    # out of sample, group 4's offset along basis[2], minus its part in the other groups' span
    others = odd[groups != 4]
    centred = (others - others.mean(0)) * np.sqrt(w)
    v = np.linalg.svd(centred, full_matrices=False)[2][:3]
    d = (odd[groups == 4] - others.mean(0)) * np.sqrt(w)
    expected = np.sum(d**2, axis=1) - np.sum((d @ v.T) ** 2, axis=1)
    np.testing.assert_allclose(e_out[groups == 4], expected, rtol=1e-8)
    assert np.all(e_out[groups == 4] > 1.0)
