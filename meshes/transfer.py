"""P1 (piecewise-linear) transfer of nodal fields from a triangle mesh to arbitrary points.

A point :math:`x` inside triangle :math:`T = (p_0, p_1, p_2)` has barycentric weights
:math:`\\lambda_k \\ge 0`, :math:`\\sum_k \\lambda_k = 1`, :math:`x = \\sum_k \\lambda_k p_k`, and a
P1 field with nodal values :math:`f_i` takes the value :math:`f(x) = \\sum_k \\lambda_k f_{T_k}`.
Collecting the weights of many points gives the sparse transfer matrix :math:`W` (one row per
point, three non-zeros, rows summing to one) so that ``W @ values`` interpolates any number of
fields at once; the MMGP regressor uses it to move fields between morphed meshes.

Point location is vectorised: a :class:`scipy.spatial.cKDTree` on the triangle centroids gives
the ``k`` nearest triangles of every point as candidates, their barycentric weights are computed
at once, and the first candidate with all weights :math:`\\ge -\\varepsilon` is taken. Points
missed by that search get a wider one (``8 k`` candidates). Points still missed are classified
against the mesh boundary (nearest boundary edge, the side of it the point lies on): inside
points (only possible in extremely anisotropic meshes) are found by exhaustive search; points
**outside** the mesh are projected onto the nearest boundary edge and take the P1 value at that
projection, i.e. the field is extended constantly along the boundary normal (weights clipped to
the edge: the third weight is zero). ``transfer_matrix(..., return_outside=True)`` reports them.

Only 2D triangle meshes (``triangle`` cells; the first two coordinates of the points) are
supported.
"""

from __future__ import annotations

import meshio
import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

__all__ = ["interpolate", "locate", "transfer_matrix"]

_EPS = 1e-12


def _triangles(mesh: meshio.Mesh) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 2), triangles (T, 3)) of a meshio mesh; triangles made counter-clockwise."""
    blocks = [np.asarray(b.data, dtype=np.int64) for b in mesh.cells if b.type == "triangle"]
    if not blocks:
        types = sorted({b.type for b in mesh.cells})
        raise ValueError(f"transfer needs a mesh with 'triangle' cells; this one has {types}")
    pts = np.asarray(mesh.points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"mesh points must be (n, 2) or (n, 3), got shape {pts.shape}")
    return pts[:, :2], np.concatenate(blocks)


def _barycentric(pts: np.ndarray, tris: np.ndarray, cand: np.ndarray,
                 x: np.ndarray) -> np.ndarray:
    """Barycentric weights (n, k, 3) of points x (n, 2) in candidate triangles cand (n, k)."""
    p = pts[tris[cand]]  # (n, k, 3, 2)
    a, b, c = p[..., 0, :], p[..., 1, :], p[..., 2, :]
    v0, v1 = b - a, c - a
    v2 = x[:, None, :] - a
    det = v0[..., 0] * v1[..., 1] - v0[..., 1] * v1[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        l1 = (v2[..., 0] * v1[..., 1] - v2[..., 1] * v1[..., 0]) / det
        l2 = (v0[..., 0] * v2[..., 1] - v0[..., 1] * v2[..., 0]) / det
    lam = np.stack([1.0 - l1 - l2, l1, l2], axis=-1)
    return np.where(np.isfinite(lam), lam, -np.inf)


def _search(pts, tris, tree, x, k):
    """Cell and weights of each point among its k nearest centroids; cell -1 when not found."""
    k = min(k, len(tris))
    n = len(x)
    cells = np.full(n, -1, dtype=np.int64)
    w = np.zeros((n, 3))
    chunk = max(1, 2_000_000 // (k * 24))
    for s in range(0, n, chunk):
        xs = x[s:s + chunk]
        _, cand = tree.query(xs, k=k)
        cand = cand.reshape(len(xs), k)
        lam = _barycentric(pts, tris, cand, xs)
        ok = lam.min(axis=-1) >= -_EPS
        hit = ok.any(axis=1)
        first = np.argmax(ok, axis=1)
        rows = np.arange(len(xs))
        cells[s:s + chunk] = np.where(hit, cand[rows, first], -1)
        w[s:s + chunk] = lam[rows, first]
    return cells, w


def _boundary_edges(tris: np.ndarray):
    """Boundary edges (E, 2) oriented with the mesh interior on their left, and their cell."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    cell = np.tile(np.arange(len(tris)), 3)
    key = np.minimum(e[:, 0], e[:, 1]) * (int(tris.max()) + 1) + np.maximum(e[:, 0], e[:, 1])
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    bnd = cnt[inv.ravel()] == 1
    return e[bnd], cell[bnd]


def _project_outside(pts, tris, x):
    """For points not found in any candidate: (inside flag, cell, weights of the projection
    onto the nearest boundary edge).

    The side is decided by the outward normal of the nearest edge, or, when the nearest
    boundary point is a vertex, by the sum of the outward unit normals of its two edges (the
    2D pseudo-normal test, exact for simple boundary loops)."""
    edges, ecell = _boundary_edges(tris)
    a, b = pts[edges[:, 0]], pts[edges[:, 1]]
    ab = b - a
    l2 = np.einsum("ij,ij->i", ab, ab)
    nrm = np.stack([ab[:, 1], -ab[:, 0]], axis=1) / np.sqrt(l2)[:, None]  # outward
    vnorm = np.zeros_like(pts)
    np.add.at(vnorm, edges[:, 0], nrm)
    np.add.at(vnorm, edges[:, 1], nrm)
    k = min(16, len(edges))
    _, cand = cKDTree(0.5 * (a + b)).query(x, k=k)
    cand = cand.reshape(len(x), k)
    # also the edges at the nearest boundary vertex (a long edge may have a far midpoint)
    bnodes = np.unique(edges)
    _, nv = cKDTree(pts[bnodes]).query(x, k=1)
    v_out = np.full(len(pts), -1, dtype=np.int64)
    v_in = np.full(len(pts), -1, dtype=np.int64)
    v_out[edges[:, 0]] = np.arange(len(edges))
    v_in[edges[:, 1]] = np.arange(len(edges))
    nvn = bnodes[np.atleast_1d(nv)]
    cand = np.concatenate([cand, v_out[nvn][:, None], v_in[nvn][:, None]], axis=1)
    cand = np.maximum(cand, 0)
    t = np.einsum("nkj,nkj->nk", x[:, None, :] - a[cand], ab[cand]) / l2[cand]
    t = np.clip(t, 0.0, 1.0)
    q = a[cand] + t[..., None] * ab[cand]
    d = np.hypot(*(x[:, None, :] - q).transpose(2, 0, 1))
    best = np.argmin(d, axis=1)
    rows = np.arange(len(x))
    j = cand[rows, best]
    tj = t[rows, best]
    qj = q[rows, best]
    normal = np.where((tj <= 0.0)[:, None], vnorm[edges[j, 0]],
                      np.where((tj >= 1.0)[:, None], vnorm[edges[j, 1]], nrm[j]))
    outside = np.einsum("ij,ij->i", x - qj, normal) > 0
    c = ecell[j]
    tri = tris[c]
    w = np.zeros((len(x), 3))
    for slot in range(3):
        w[:, slot] += np.where(tri[:, slot] == edges[j, 0], 1.0 - tj, 0.0)
        w[:, slot] += np.where(tri[:, slot] == edges[j, 1], tj, 0.0)
    return ~outside, c, w


def locate(mesh: meshio.Mesh, points, *, k: int = 12,
           return_outside: bool = False):
    """Triangle and barycentric weights of each point.

    Parameters
    ----------
    mesh : meshio.Mesh
        2D mesh with ``triangle`` cells (all triangle blocks are concatenated in order; the
        returned cell index counts rows of that concatenation).
    points : array_like (n, 2) or (n, 3)
        Query points (a third coordinate is ignored).
    k : int
        Candidate triangles per point in the first search (nearest centroids).
    return_outside : bool
        Also return the boolean mask of points outside the mesh.

    Returns
    -------
    cells : ndarray (n,) of int
        Containing triangle; for an outside point, the triangle owning the nearest boundary edge.
    weights : ndarray (n, 3)
        Barycentric weights :math:`\\lambda_k` (non-negative to round-off, summing to 1) with
        :math:`x = \\sum_k \\lambda_k p_{T_k}`; for an outside point the weights of its
        projection :math:`q` onto the nearest boundary edge (so :math:`f(x) := f(q)`, the field
        extended constantly along the boundary normal).
    outside : ndarray (n,) of bool
        Only with ``return_outside``.

    Raises
    ------
    ValueError
        For a mesh without triangles or points of the wrong shape / non-finite points.
    """
    pts, tris = _triangles(mesh)
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] not in (2, 3):
        raise ValueError(f"points must have shape (n, 2) or (n, 3), got {x.shape}")
    x = np.ascontiguousarray(x[:, :2])
    if not np.isfinite(x).all():
        raise ValueError("points contain NaN or inf")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    tree = cKDTree(pts[tris].mean(axis=1))
    cells, w = _search(pts, tris, tree, x, k)
    outside = np.zeros(len(x), dtype=bool)
    miss = np.flatnonzero(cells < 0)
    if miss.size:
        c2, w2 = _search(pts, tris, tree, x[miss], 8 * k)
        cells[miss], w[miss] = c2, w2
        miss = miss[c2 < 0]
    if miss.size:
        inside, c3, w3 = _project_outside(pts, tris, x[miss])
        out = miss[~inside]
        outside[out] = True
        cells[out], w[out] = c3[~inside], w3[~inside]
        for r in np.flatnonzero(inside):  # inside but far from every candidate centroid
            i = miss[r]
            lam = _barycentric(pts, tris, np.arange(len(tris))[None, :], x[i:i + 1])[0]
            worst = lam.min(axis=1)
            best = int(np.argmax(worst))
            if worst[best] >= -1e-9:
                cells[i], w[i] = best, lam[best]
            else:  # on the boundary to round-off: keep the projection
                outside[i] = True
                cells[i], w[i] = c3[r], w3[r]
    w = np.clip(w, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    if return_outside:
        return cells, w, outside
    return cells, w


def transfer_matrix(mesh: meshio.Mesh, points, *, return_outside: bool = False):
    """Sparse P1 interpolation matrix from the mesh's nodes to ``points``.

    .. math::
        W_{p, T_k(p)} = \\lambda_k(p), \\qquad f(x_p) = \\sum_i W_{p i} f_i,

    with :math:`T(p)` and :math:`\\lambda(p)` from :func:`locate` (outside points: value at the
    nearest boundary point). Rows sum to one.

    Parameters
    ----------
    mesh : meshio.Mesh
        2D triangle mesh with N nodes.
    points : array_like (n, 2) or (n, 3)
    return_outside : bool
        Also return the boolean mask of points outside the mesh.

    Returns
    -------
    scipy.sparse.csr_matrix (n, N)
        And the outside mask when ``return_outside``.
    """
    cells, w, outside = locate(mesh, points, return_outside=True)
    _, tris = _triangles(mesh)
    n = len(cells)
    rows = np.repeat(np.arange(n), 3)
    mat = sp.csr_matrix((w.ravel(), (rows, tris[cells].ravel())),
                        shape=(n, len(mesh.points)))
    mat.sum_duplicates()
    if return_outside:
        return mat, outside
    return mat


def interpolate(mesh: meshio.Mesh, values, points) -> np.ndarray:
    """P1 interpolation of nodal values at points, batched over trailing axes.

    Parameters
    ----------
    mesh : meshio.Mesh
        2D triangle mesh with N nodes.
    values : array_like (N, ...)
        Nodal values; any trailing shape (components, samples, ...).
    points : array_like (n, 2) or (n, 3)

    Returns
    -------
    ndarray (n, ...)
        Interpolated values (outside points: value at the nearest boundary point).

    Raises
    ------
    ValueError
        When ``values`` does not have one row per mesh node.
    """
    v = np.asarray(values)
    n_nodes = len(mesh.points)
    if v.ndim == 0 or v.shape[0] != n_nodes:
        raise ValueError(f"values must have shape ({n_nodes}, ...) (one row per mesh node), "
                         f"got {v.shape}")
    mat = transfer_matrix(mesh, points)
    out = mat @ v.reshape(n_nodes, -1)
    return np.asarray(out).reshape((mat.shape[0],) + v.shape[1:])
