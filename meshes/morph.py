"""Morphing a reference airfoil-domain mesh onto a target geometry.

All morphers keep the reference connectivity and move its nodes so that the wall nodes land on
the target's wall polygon; they answer :class:`MorphResult` and refuse (``ValueError``) a morphed
mesh with inverted triangles (signed area :math:`\\le 0`). Reference and target are meshes as made
by :func:`meshes.airfoil_mesh.airfoil_domain_mesh` (``triangle`` fluid cells, ``line`` wall and
far-field edges tagged by ``cell_data["boundary_tag"]``); no node correspondence is assumed.

Boundary conventions shared by all methods
------------------------------------------
* **Wall**: the wall loop is ordered counter-clockwise (Selig order) from the trailing edge
  (TE, the wall node of largest x; among ties within :math:`10^{-9}` the one nearest their mean
  y) over the upper surface to the leading edge (LE, the wall node farthest from the TE) and back
  over the lower surface. Its *wall parameter* is the normalised arc length per surface,

  .. math::
      s = \\tfrac12\\,\\ell / L_{up}\\ \\text{(upper, TE to LE)},\\qquad
      s = \\tfrac12 + \\tfrac12\\,(\\ell - L_{up}) / L_{low}\\ \\text{(lower, LE to TE)},

  so TE has s = 0 and LE s = 1/2 on every airfoil. A reference wall node of parameter s is sent
  to the point of the target wall polygon with the same s (Tutte, RBF).
* **Far field**: ordered counter-clockwise from the far-field node of largest x, normalised arc
  length :math:`t \\in [0, 1)`.

Methods
-------
* :class:`meshes.morph_tutte.TutteMorpher` -- Floater/Tutte parameterisation of both meshes onto
  a common annulus (far field on the unit circle at angle :math:`2\\pi t`, wall on the circle
  of radius :math:`r_0` at angle :math:`2\\pi s`, interior by one sparse solve with Floater's
  mean-value weights, or MMGP's uniform 1/degree); each reference node goes to
  :math:`\\mathrm{param}_{tgt}^{-1}(\\mathrm{param}_{ref}(x))` by P1 interpolation of the
  target's coordinates in the parameter domain.
* :class:`RBFMorpher` -- the wall displacement (wall-parameter correspondence, far field fixed)
  spread into the volume by Wendland C2 radial basis functions
  (2D and 3D, :func:`rbf_interpolate`).
* :class:`meshes.morph_elasticity.ElasticityMorpher` -- repeated linear-elasticity solves
  (scikit-fem) loaded by the distance of the wall to the target wall (Kabalan et al.), with LE/TE
  point constraints, and a final exact projection;
  :class:`meshes.morph_elasticity.ElasticityPOD` -- offline POD of such displacements and fast
  online morphing in the reduced space.

References
----------
Floater, M. S. (1997), Parametrization and smooth approximation of surface triangulations,
*Computer Aided Geometric Design* 14, 231-250.
Casenave, F., Staber, B., Roynard, X. (2024), MMGP: a Mesh Morphing Gaussian Process-based
machine learning method for regression of physical problems under nonparametrized geometrical
variability, *NeurIPS 2023*.
Kabalan, A., Casenave, F., Bordeu, F., Ehrlacher, V., Ern, A. (2025), Elasticity-based morphing
technique and application to reduced-order modeling, *Applied Mathematical Modelling*.
Wendland, H. (1995), Piecewise polynomial, positive definite and compactly supported radial
functions of minimal degree, *Adv. Comput. Math.* 4, 389-396.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import meshio
import numpy as np
import scipy.linalg

from meshes.airfoil_mesh import _split_by_tag, mesh_quality
from meshes.polygon import segment_distance, signed_area

__all__ = ["MorphResult", "RBFMorpher", "closed_wall", "medoid_airfoil", "mesh_key",
           "morphed_mesh", "rbf_interpolate", "resampled_wall", "wall_parameter"]


@dataclass
class MorphResult:
    """Outcome of a morphing.

    Attributes
    ----------
    points : ndarray (n_ref, d)
        Morphed coordinates of the reference nodes (same dimension as the reference points).
    quality : dict
        :func:`meshes.airfoil_mesh.mesh_quality` of the morphed mesh.
    boundary_distance : float
        :math:`\\max_i \\operatorname{dist}(x_i, \\Gamma_{tgt})` over the morphed wall nodes,
        :math:`\\Gamma_{tgt}` the target wall polygon (chords).
    n_iterations : int
        Elasticity solves (or Gauss-Newton steps); 1 for the one-shot methods.
    displacement : ndarray (n_ref, d)
        ``points - reference.points``.
    info : dict
        Method-specific figures (e.g. ``inner_radius``, ``coefficients``, ``history``).
    """

    points: np.ndarray
    quality: dict
    boundary_distance: float
    n_iterations: int
    displacement: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def morphed_mesh(reference: meshio.Mesh, result: MorphResult) -> meshio.Mesh:
    """The reference connectivity (cells, cell data, cell sets) with the morphed points.

    Raises
    ------
    ValueError
        When ``result.points`` does not have one row per reference node.
    """
    pts = np.asarray(result.points, dtype=np.float64)
    ref = np.asarray(reference.points)
    if pts.shape[0] != ref.shape[0]:
        raise ValueError(f"morphed points have {pts.shape[0]} rows but the reference mesh has "
                         f"{ref.shape[0]} nodes")
    if pts.shape[1] < ref.shape[1]:
        pts = np.concatenate([pts, ref[:, pts.shape[1]:]], axis=1)
    return meshio.Mesh(pts, [meshio.CellBlock(b.type, np.asarray(b.data)) for b in reference.cells],
                       cell_data={k: [np.asarray(a) for a in v]
                                  for k, v in reference.cell_data.items()},
                       cell_sets={k: [None if a is None else np.asarray(a) for a in v]
                                  for k, v in (reference.cell_sets or {}).items()})


# ---------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------


def _loops(edges: np.ndarray) -> list[np.ndarray]:
    """Closed loops (node ids in walking order) of a set of undirected edges, each node of
    degree 2."""
    if len(edges) == 0:
        return []
    adj: dict[int, list[int]] = {}
    for a, b in np.asarray(edges, dtype=np.int64):
        adj.setdefault(int(a), []).append(int(b))
        adj.setdefault(int(b), []).append(int(a))
    bad = [n for n, v in adj.items() if len(v) != 2]
    if bad:
        raise ValueError(f"boundary is not a set of simple closed loops: {len(bad)} nodes have "
                         f"{sorted({len(adj[n]) for n in bad})} boundary edges instead of 2")
    seen: set[int] = set()
    loops = []
    for start in sorted(adj):
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            a, b = adj[cur]
            nxt = b if a == prev else a
            if nxt == start:
                break
            loop.append(nxt)
            seen.add(nxt)
            prev, cur = cur, nxt
        loops.append(np.array(loop, dtype=np.int64))
    return loops


def _ccw_from(loop: np.ndarray, xy: np.ndarray, start: int) -> np.ndarray:
    """The loop oriented counter-clockwise and rotated to begin at node ``start``."""
    if signed_area(xy[loop]) < 0:
        loop = loop[::-1]
    k = int(np.flatnonzero(loop == start)[0])
    return np.roll(loop, -k)


def _turning(xy_loop: np.ndarray) -> np.ndarray:
    """Turning angle (radians, absolute) of a closed polygon at each vertex."""
    d_in = xy_loop - np.roll(xy_loop, 1, axis=0)
    d_out = np.roll(xy_loop, -1, axis=0) - xy_loop
    cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
    return np.abs(np.arctan2(cross, np.einsum("ij,ij->i", d_in, d_out)))


def _wall_loop(tris: np.ndarray, wall_edges: np.ndarray, xy: np.ndarray):
    """Wall loop counter-clockwise from the TE node, and the LE position.

    TE: among the corners (turning angle > 45 degrees) within 5 % of the chord of the node of
    largest x, the sharp corner when there is one, else the node of the blunt base (between the
    two corners) nearest the base midpoint; without corners, the node of largest x. LE: the
    wall node farthest from the TE. A blunt base therefore needs a node near its midpoint (as
    :func:`meshes.airfoil_mesh.airfoil_domain_mesh` makes); a ValueError says when it lacks one.
    """
    loops = _loops(wall_edges)
    if len(loops) != 1:
        raise ValueError(f"expected one wall loop, found {len(loops)}")
    loop = loops[0]
    loop = _ccw_from(loop, xy, int(loop[np.argmax(xy[loop, 0])]))
    p = xy[loop]
    chord = float(np.hypot(*(p - p[0]).T).max())
    near = np.hypot(*(p - p[0]).T) <= 0.05 * chord
    corners = np.flatnonzero(near & (_turning(p) > math.radians(45)))
    start = 0
    if len(corners) == 1:
        start = int(corners[0])
    elif len(corners) >= 2:
        # the two corners bounding the base: the pair farthest apart in space
        d = np.hypot(*(p[corners][:, None] - p[corners][None]).transpose(2, 0, 1))
        a, b = np.unravel_index(np.argmax(d), d.shape)
        ca, cb = sorted((int(corners[a]), int(corners[b])))
        n = len(p)
        # the base is the shorter way round between them
        path = (np.arange(ca, cb + 1) if cb - ca <= n - (cb - ca)
                else np.r_[np.arange(cb, n), np.arange(0, ca + 1)])
        mid = 0.5 * (p[ca] + p[cb])
        dmid = np.hypot(*(p[path] - mid).T)
        start = int(path[np.argmin(dmid)])
        base = float(np.hypot(*(p[ca] - p[cb])))
        if dmid.min() > 0.25 * base:
            raise ValueError(f"blunt trailing edge (base {base:.3g} chords between "
                             f"{p[ca].tolist()} and {p[cb].tolist()}) has no wall node near "
                             "its midpoint; insert one (it anchors the TE)")
    loop = np.roll(loop, -start)
    d = np.hypot(*(xy[loop] - xy[loop[0]]).T)
    return loop, int(np.argmax(d))


def wall_parameter(xy_loop: np.ndarray, le: int) -> np.ndarray:
    """Wall parameter of the nodes of a counter-clockwise wall loop starting at the TE.

    .. math::
        s_i = \\tfrac12 \\ell_i / \\ell_{le} \\ (i \\le le), \\qquad
        s_i = \\tfrac12 + \\tfrac12 (\\ell_i - \\ell_{le}) / (L - \\ell_{le}) \\ (i > le),

    :math:`\\ell_i` the arc length from the TE along the loop and :math:`L` its perimeter: TE at
    0, LE at 1/2, both surfaces normalised separately.

    Parameters
    ----------
    xy_loop : ndarray (n, 2)
        Loop vertices (the closing edge back to vertex 0 is implied).
    le : int
        Position of the LE in the loop, 0 < le < n.

    Returns
    -------
    ndarray (n,) in [0, 1)
    """
    seg = np.hypot(*np.diff(np.vstack([xy_loop, xy_loop[:1]]), axis=0).T)
    ell = np.concatenate([[0.0], np.cumsum(seg)])
    total, l_le = ell[-1], ell[le]
    if not (0 < le < len(xy_loop) and l_le > 0 and total > l_le):
        raise ValueError(f"degenerate wall loop (LE at position {le} of {len(xy_loop)})")
    ell = ell[:-1]
    return np.where(np.arange(len(ell)) <= le, 0.5 * ell / l_le,
                    0.5 + 0.5 * (ell - l_le) / (total - l_le))


def _arc_parameter(xy_loop: np.ndarray) -> np.ndarray:
    seg = np.hypot(*np.diff(np.vstack([xy_loop, xy_loop[:1]]), axis=0).T)
    ell = np.concatenate([[0.0], np.cumsum(seg)])
    return ell[:-1] / ell[-1]


def _eval_closed(xy_loop: np.ndarray, s_loop: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Point of the closed polygon at parameter s (piecewise linear in s)."""
    sl = np.concatenate([s_loop, [1.0]])
    pl = np.vstack([xy_loop, xy_loop[:1]])
    s = np.mod(s, 1.0)
    return np.stack([np.interp(s, sl, pl[:, k]) for k in range(pl.shape[1])], axis=1)


def _closest_on_polyline(x: np.ndarray, poly: np.ndarray, closed: bool,
                         return_normal: bool = False):
    """Closest points (n, 2) on a polyline, their distances (n,) and optionally the unit
    normals (n, 2) of the closest segments and whether the closest point is an end vertex of
    an open polyline."""
    a = poly if closed else poly[:-1]
    b = np.roll(poly, -1, axis=0) if closed else poly[1:]
    ab = b - a
    dist, seg, tt = segment_distance(x, a, b)
    out = a[seg] + tt[:, None] * ab[seg]
    if return_normal:  # also: closest point at an open polyline's end vertex
        t = ab[seg] / np.maximum(np.hypot(ab[seg, 0], ab[seg, 1]), 1e-300)[:, None]
        at_end = (((seg == 0) & (tt <= 0.0)) | ((seg == len(a) - 1) & (tt >= 1.0))) & (not closed)
        return out, dist, np.column_stack([t[:, 1], -t[:, 0]]), at_end
    return out, dist


def _fit_circle(xy: np.ndarray):
    """(centre, radius, max radial deviation) of the least-squares (Kasa) circle."""
    A = np.column_stack([2 * xy, np.ones(len(xy))])
    sol, *_ = np.linalg.lstsq(A, np.sum(xy**2, axis=1), rcond=None)
    c = sol[:2]
    r = math.sqrt(max(sol[2] + c @ c, 0.0))
    return c, r, float(np.max(np.abs(np.hypot(*(xy - c).T) - r)))


@dataclass
class _Airfoil:
    """Topology and boundary loops of an airfoil-domain mesh."""

    xy: np.ndarray
    tris: np.ndarray
    wall: np.ndarray  # CCW from TE
    le: int  # position of the LE in ``wall``
    s_wall: np.ndarray
    far: np.ndarray  # CCW from the largest-x node
    t_far: np.ndarray

    @property
    def wall_xy(self) -> np.ndarray:
        return self.xy[self.wall]

    @property
    def upper(self) -> np.ndarray:
        return self.wall_xy[: self.le + 1]

    @property
    def lower(self) -> np.ndarray:
        return np.vstack([self.wall_xy[self.le:], self.wall_xy[:1]])

    def interior(self) -> np.ndarray:
        mask = np.ones(len(self.xy), dtype=bool)
        mask[self.wall] = False
        mask[self.far] = False
        return mask


def _airfoil(mesh: meshio.Mesh, what: str) -> _Airfoil:
    pts = np.asarray(mesh.points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"{what} mesh points must be (n, 2) or (n, 3), got {pts.shape}")
    xy = np.ascontiguousarray(pts[:, :2])
    if not np.isfinite(xy).all():
        raise ValueError(f"{what} mesh has non-finite points")
    tris, wall_e, far_e = _split_by_tag(mesh)
    if len(wall_e) == 0:
        raise ValueError(f"{what} mesh has no wall edges (line cells with boundary_tag 1)")
    wall, le = _wall_loop(tris, wall_e, xy)
    s_wall = wall_parameter(xy[wall], le)
    far = np.zeros(0, dtype=np.int64)
    t_far = np.zeros(0)
    if len(far_e):
        loops = _loops(far_e)
        if len(loops) != 1:
            raise ValueError(f"{what} mesh: expected one far-field loop, found {len(loops)}")
        f = loops[0]
        f = _ccw_from(f, xy, int(f[np.argmax(xy[f, 0])]))
        far, t_far = f, _arc_parameter(xy[f])
    return _Airfoil(xy, tris, wall, le, s_wall, far, t_far)


def _wall_distance(x: np.ndarray, target: _Airfoil) -> float:
    if len(x) == 0:
        return 0.0
    return float(_closest_on_polyline(x, target.wall_xy, True)[1].max())


def _finish(reference: meshio.Mesh, ref: _Airfoil, xy_new: np.ndarray, target: _Airfoil,
            n_iterations: int, method: str, info: dict | None = None) -> MorphResult:
    """Check the morphed mesh (raise on inverted triangles) and pack the result."""
    pts = np.asarray(reference.points, dtype=np.float64).copy()
    pts[:, :2] = xy_new
    if not np.isfinite(pts).all():
        raise ValueError(f"{method}: morphed points are not finite")
    res = MorphResult(points=pts, quality={}, boundary_distance=0.0, n_iterations=n_iterations,
                      displacement=pts - np.asarray(reference.points, dtype=np.float64),
                      info=dict(info or {}))
    q = mesh_quality(morphed_mesh(reference, res))
    if q["n_inverted"]:
        p = xy_new[ref.tris]
        area = ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
        k = int(np.argmin(area))
        cx, cy = ref.xy[ref.tris[k]].mean(axis=0)
        raise ValueError(f"{method}: the morphed mesh has {q['n_inverted']} inverted triangles "
                         f"(signed area <= 0; worst: triangle {k}, reference centroid "
                         f"({cx:.4g}, {cy:.4g}), doubled area {area[k]:.3e}); the target is "
                         "too far from the reference for this method or its settings")
    res.quality = q
    res.boundary_distance = _wall_distance(xy_new[ref.wall], target)
    return res


def mesh_key(mesh: meshio.Mesh) -> bytes:
    """Content digest (BLAKE2b) of a mesh's node coordinates and cell blocks: equal keys mean
    the same geometry and connectivity, so one morph (and transfer) serves every sample on it."""
    h = hashlib.blake2b(digest_size=20)
    pts = np.ascontiguousarray(mesh.points, dtype=np.float64)
    h.update(str(pts.shape).encode())
    h.update(pts.tobytes())
    for block in mesh.cells:
        data = np.ascontiguousarray(block.data, dtype=np.int64)
        h.update(f"{block.type}{data.shape}".encode())
        h.update(data.tobytes())
    return h.digest()


def closed_wall(mesh: meshio.Mesh) -> np.ndarray:
    """The mesh's wall nodes (the loop the morphers use) counter-clockwise from the trailing
    edge, upper surface first (Selig order), with the first node repeated at the end:
    ``(n_wall + 1, 2)``."""
    wall = _airfoil(mesh, "airfoil").wall_xy
    return np.vstack([wall, wall[:1]])


def resampled_wall(mesh: meshio.Mesh, n: int = 101) -> np.ndarray:
    """The mesh's wall loop (:func:`closed_wall`) resampled at ``n`` points equally spaced in
    arc length, from the trailing edge counter-clockwise (upper surface first) back to it:
    ``(n, 2)``, a fixed-size description of the shape."""
    poly = closed_wall(mesh)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(poly, axis=0).T))])
    t = np.linspace(0.0, s[-1], int(n))
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], axis=1)


def medoid_airfoil(meshes) -> int:
    """Index of the mesh whose shape is closest to the family's mean shape: the smallest
    Euclidean distance between its :func:`resampled_wall` and the mean of all of them
    (distinct meshes only count once). As the common support of a morphing-based regressor it
    keeps every morph as small as the family allows; the morphers of this module can fold
    near-wall cells when the support is an extreme member of the family. Samples sharing a
    mesh (:func:`mesh_key`) each count in the mean; the walls are resampled once per mesh."""
    meshes = list(meshes)
    if not meshes:
        raise ValueError("medoid_airfoil needs at least one mesh")
    keys = [mesh_key(m) for m in meshes]
    first = {k: i for i, k in reversed(list(enumerate(keys)))}  # first index of each mesh
    walls = {k: resampled_wall(meshes[i]).ravel() for k, i in first.items()}
    stack = np.stack([walls[k] for k in keys])
    return int(np.argmin(np.linalg.norm(stack - stack.mean(axis=0), axis=1)))


def _far_map(ref: _Airfoil, target: _Airfoil) -> np.ndarray:
    """Reference far-field nodes on the target far field, by normalised arc length; projected
    radially onto the target's circle when its nodes lie on one (to 1e-9 of the radius)."""
    if len(ref.far) == 0:
        return np.zeros((0, 2))
    if len(target.far) == 0:
        raise ValueError("target mesh has no far-field edges (boundary_tag 2)")
    x = _eval_closed(target.xy[target.far], target.t_far, ref.t_far)
    c, r, dev = _fit_circle(target.xy[target.far])
    if dev <= 1e-9 * r:
        v = x - c
        x = c + r * v / np.hypot(*v.T)[:, None]
    return x


# ---------------------------------------------------------------------------------------------
# RBF
# ---------------------------------------------------------------------------------------------


def _wendland_c2(r: np.ndarray) -> np.ndarray:
    t = np.maximum(1.0 - r, 0.0)  # (1 - r)_+, products instead of a power: several times faster
    t *= t
    return t * t * (4.0 * r + 1.0)


#: Largest evaluation matrix (points x centres) an :class:`_RBFOperator` keeps (8 bytes each).
_MAX_CACHED_ENTRIES = 20_000_000


class _RBFOperator:
    """Wendland C2 interpolation from fixed centres to fixed points (:func:`rbf_interpolate`),
    applicable to many value sets: the Cholesky factor of the centre system is computed once,
    and so is the evaluation matrix when it has at most :data:`_MAX_CACHED_ENTRIES` entries
    (otherwise it is rebuilt in chunks at each call)."""

    def __init__(self, centers: np.ndarray, points: np.ndarray, support_radius: float):
        self.centers, self.points, self.rho = centers, points, support_radius
        K = _wendland_c2(scipy.spatial.distance.cdist(centers, centers) / support_radius)
        self._cho = scipy.linalg.cho_factor(K)
        self._phi = (self._eval(0, len(points))
                     if len(points) * len(centers) <= _MAX_CACHED_ENTRIES else None)

    def _eval(self, start: int, stop: int) -> np.ndarray:
        r = scipy.spatial.distance.cdist(self.points[start:stop], self.centers) / self.rho
        return _wendland_c2(r)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        alpha = scipy.linalg.cho_solve(self._cho, values)
        if self._phi is not None:
            return self._phi @ alpha
        out = np.empty((len(self.points), values.shape[1]))
        chunk = max(1, 2_000_000 // max(1, len(self.centers)))
        for s in range(0, len(self.points), chunk):
            out[s:s + chunk] = self._eval(s, s + chunk) @ alpha
        return out


def rbf_interpolate(centers, values, points, *, support_radius: float) -> np.ndarray:
    """Wendland C2 radial-basis interpolation (2D or 3D).

    .. math::
        f(x) = \\sum_j \\alpha_j\\, \\varphi(|x - c_j| / \\rho), \\qquad
        \\varphi(r) = (1 - r)_+^4 (4r + 1), \\qquad
        \\sum_j \\alpha_j \\varphi(|c_i - c_j|/\\rho) = f_i,

    :math:`\\varphi` positive definite in up to three dimensions, so the dense system at the
    centres is solved by Cholesky. :math:`f` vanishes farther than :math:`\\rho` from every
    centre.

    Parameters
    ----------
    centers : array_like (m, d)
        Distinct centres (the boundary nodes), d = 2 or 3.
    values : array_like (m, k)
        Data at the centres (e.g. displacements).
    points : array_like (n, d)
        Evaluation points.
    support_radius : float
        :math:`\\rho > 0` (same units as the coordinates).

    Returns
    -------
    ndarray (n, k)
    """
    c = np.asarray(centers, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    x = np.asarray(points, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] not in (2, 3) or x.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"centers (m, d) and points (n, d) need d = 2 or 3 and equal; got "
                         f"{c.shape} and {x.shape}")
    if v.shape[0] != c.shape[0]:
        raise ValueError(f"values has {v.shape[0]} rows for {c.shape[0]} centers")
    if not support_radius > 0:
        raise ValueError(f"support_radius must be positive, got {support_radius}")
    out = _RBFOperator(c, x, float(support_radius))(v.reshape(len(c), -1))
    return out.reshape((len(x),) + v.shape[1:])


class RBFMorpher:
    """Wall displacement spread into the volume by Wendland C2 RBFs.

    Each reference wall node goes to the target wall polygon at the same wall parameter (TE to
    TE, LE to LE, normalised arc length per surface); far-field nodes do not move. These
    boundary displacements are interpolated to all nodes by :func:`rbf_interpolate` with
    centres at the wall and far-field nodes; the boundary nodes are then set to their
    prescribed positions exactly (the RBF reproduces them up to the solve's round-off). The
    interpolation operator depends only on the reference, so the morpher keeps the last
    reference's (Cholesky factor and evaluation matrix): morphing one support onto many targets,
    as MMGP does, costs one matrix product per target.

    Parameters
    ----------
    support_radius : float
        :math:`\\rho` in chords (default 4): the displacement decays to zero within
        :math:`\\rho` of the wall. Larger is smoother but the system is worse conditioned.
    """

    def __init__(self, *, support_radius: float = 4.0):
        if not support_radius > 0:
            raise ValueError(f"support_radius must be positive, got {support_radius}")
        self.support_radius = float(support_radius)
        self._cache = None  # (reference key, its _Airfoil, its _RBFOperator)

    def morph(self, reference: meshio.Mesh, target: meshio.Mesh) -> MorphResult:
        """Morph ``reference`` onto ``target``; see the class docstring."""
        key = (mesh_key(reference), self.support_radius)
        if self._cache is None or self._cache[0] != key:
            ref = _airfoil(reference, "reference")
            bnd = np.concatenate([ref.wall, ref.far])
            self._cache = (key, ref, _RBFOperator(ref.xy[bnd], ref.xy, self.support_radius))
        _, ref, interpolate = self._cache
        tgt = _airfoil(target, "target")
        x_w = _eval_closed(tgt.wall_xy, tgt.s_wall, ref.s_wall)
        d = np.zeros((len(ref.wall) + len(ref.far), 2))
        d[: len(ref.wall)] = x_w - ref.wall_xy
        u = interpolate(d)
        x = ref.xy + u
        x[ref.wall] = x_w
        x[ref.far] = ref.xy[ref.far]
        return _finish(reference, ref, x, tgt, 1, "RBF morphing",
                       {"support_radius": self.support_radius})
