r"""Floater/Tutte morphing of airfoil-domain meshes through a common annulus (see
:mod:`meshes.morph` for the boundary conventions shared by all morphers).

Both meshes are mapped onto an annulus: far field on the unit circle at angle :math:`2\pi t`,
wall on the circle of radius :math:`r_0` at angle :math:`2\pi s`, interior nodes by one sparse
solve with Floater's mean-value weights (or MMGP's uniform 1/degree). Each reference node goes to
:math:`\mathrm{param}_{tgt}^{-1}(\mathrm{param}_{ref}(x))` by P1 interpolation of the target's
coordinates in the parameter domain.

References
----------
Floater, M. S. (1997), Parametrization and smooth approximation of surface triangulations,
*Computer Aided Geometric Design* 14, 231-250.
"""

from __future__ import annotations

import math

import meshio
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from meshes.airfoil_mesh import mesh_quality
from meshes.morph import (
    MorphResult,
    _airfoil,
    _arc_parameter,
    _ccw_from,
    _eval_closed,
    _far_map,
    _finish,
    _loops,
)
from meshes.transfer import transfer_matrix

__all__ = ["TutteMorpher", "default_inner_radius", "tutte_parameterisation"]




def _graph_laplacian(tris: np.ndarray, n: int, xy: np.ndarray | None = None,
                     weights: str = "uniform") -> sp.csr_matrix:
    """Laplacian-like matrix :math:`L = D - W` of the triangle edges, rows summing to zero.

    ``uniform``: :math:`W_{ij} = 1`; ``mean-value``: Floater's
    :math:`W_{ij} = (\tan(\alpha_{ij}/2) + \tan(\beta_{ij}/2)) / |x_j - x_i|`, the angles at
    :math:`x_i` of the two triangles sharing edge ij (not symmetric); ``cotangent``: the P1
    stiffness :math:`W_{ij} = (\\cot\\gamma_{ij} + \\cot\\delta_{ij})/2`, angles opposite the
    edge.
    """
    if weights == "uniform":
        e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
        e = np.unique(np.sort(e, axis=1), axis=0)
        rows, cols = np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]]
        vals = np.ones(len(rows))
    elif weights in ("mean-value", "cotangent"):
        p = xy[tris]
        rows, cols, vals = [], [], []
        for k in range(3):
            i, j, m = tris[:, k], tris[:, (k + 1) % 3], tris[:, (k + 2) % 3]
            a, b, c = p[:, k], p[:, (k + 1) % 3], p[:, (k + 2) % 3]
            u, v = b - a, c - a
            lu, lv = np.hypot(*u.T), np.hypot(*v.T)
            cross = np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])
            dot = np.einsum("ij,ij->i", u, v)
            if weights == "mean-value":
                tan_half = cross / (lu * lv + dot)  # tan(theta/2) = sin / (1 + cos)
                rows += [i, i]
                cols += [j, m]
                vals += [tan_half / lu, tan_half / lv]
            else:
                cot = 0.5 * dot / cross  # angle at a, opposite edge (j, m)
                rows += [j, m]
                cols += [m, j]
                vals += [cot, cot]
        rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    else:
        raise ValueError(f"weights must be 'uniform', 'mean-value' or 'cotangent', "
                         f"got {weights!r}")
    A = sp.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
    return (sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A).tocsr()


def _harmonic(L: sp.csr_matrix, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Solve L u = 0 at free nodes with u prescribed on ``fixed``."""
    n = L.shape[0]
    free = np.ones(n, dtype=bool)
    free[fixed] = False
    u = np.zeros((n,) + values.shape[1:])
    u[fixed] = values
    if free.any():
        Lff = L[free][:, free].tocsc()
        rhs = -(L[free][:, fixed] @ values)
        lu = spla.splu(Lff)
        u[free] = lu.solve(np.asarray(rhs).reshape(free.sum(), -1)).reshape(rhs.shape)
    return u


def _boundary_loops_from_triangles(tris: np.ndarray) -> list[np.ndarray]:
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return _loops(key[cnt[inv.ravel()] == 1])


def default_inner_radius(mesh: meshio.Mesh) -> float:
    """Inner radius :math:`r_0` of the parameter annulus matching the mesh's combinatorial
    modulus.

    With :math:`u` the discrete (P1, cotangent-weight) harmonic function equal to 0 on the wall
    and 1 on the far field and :math:`F = \\sum_{i \\in far} (Lu)_i` its flux, the annulus
    :math:`r_0 < r < 1` has flux :math:`2\\pi / \\ln(1/r_0)` for the continuous harmonic function
    :math:`\\ln(r/r_0)/\\ln(1/r_0)`; equating gives :math:`r_0 = e^{-2\\pi/F}`. Computed on the
    reference and reused for every target, so the parameter domain is common.
    """
    a = _airfoil(mesh, "reference")
    L = _graph_laplacian(a.tris, len(a.xy), a.xy, "cotangent")
    fixed = np.concatenate([a.wall, a.far])
    vals = np.concatenate([np.zeros(len(a.wall)), np.ones(len(a.far))])
    u = _harmonic(L, fixed, vals)
    flux = float(np.sum((L @ u)[a.far]))
    return float(math.exp(-2 * math.pi / flux))


def tutte_parameterisation(mesh: meshio.Mesh, *, inner_radius: float | None = None,
                           weights: str = "mean-value"):
    """Floater/Tutte parameterisation: every interior node a convex combination of its
    neighbours,

    .. math::
        u_i = \\sum_{j \\sim i} \\lambda_{ij} u_j, \\qquad
        \\lambda_{ij} = \\frac{w_{ij}}{\\sum_k w_{ik}} > 0,

    with Floater's mean-value weights
    :math:`w_{ij} = (\\tan(\\alpha_{ij}/2) + \\tan(\\beta_{ij}/2)) / |x_j - x_i|` (default;
    they reproduce linear functions, so the map approximates the conformal/harmonic one) or the
    uniform weights :math:`w_{ij} = 1` (:math:`\\lambda_{ij} = 1/\\deg i`, as in the MMGP
    reference code). One sparse solve for both coordinates with the boundary prescribed:

    * one boundary loop (disk-like mesh): the loop on the unit circle at angle
      :math:`2\\pi t`, t the normalised arc length counter-clockwise from its node of largest x
      (Tutte's theorem: convex boundary, hence a bijective, fold-free map);
    * two loops (airfoil domain: wall and far field, from the tags): the far field as above on
      the unit circle; the wall on the circle of radius ``inner_radius`` at angle
      :math:`2\\pi s`, s the :func:`wall_parameter` (TE at angle 0, LE at :math:`\\pi`). The
      annulus is not convex, so Tutte's guarantee does not hold; fold-overs are checked by the
      morpher. Uniform weights fold badly here on graded meshes (the wall loop has many more
      nodes than the far field, so combinatorially the "inner" loop is the longer one); the
      mean-value weights with :func:`default_inner_radius` give a fold-free map.

    Parameters
    ----------
    mesh : meshio.Mesh
        Triangle mesh; for two loops, an airfoil-domain mesh with tagged wall / far field.
    inner_radius : float, optional
        :math:`r_0 \\in (0, 1)`; default :func:`default_inner_radius` of this mesh.
    weights : {"mean-value", "uniform"}

    Returns
    -------
    uv : ndarray (n, 2)
        Parameter coordinates of the nodes.
    inner_radius : float
        :math:`r_0` used (``nan`` for one loop).

    Raises
    ------
    ValueError
        For more than two boundary loops or a bad ``inner_radius``.
    """
    pts = np.asarray(mesh.points, dtype=np.float64)[:, :2]
    tris = np.concatenate([np.asarray(b.data) for b in mesh.cells if b.type == "triangle"])
    loops = _boundary_loops_from_triangles(tris)
    if weights not in ("mean-value", "uniform"):
        raise ValueError(f"weights must be 'mean-value' or 'uniform', got {weights!r}")
    L = _graph_laplacian(tris, len(pts), pts, weights)
    if len(loops) == 1:
        loop = loops[0]
        loop = _ccw_from(loop, pts, int(loop[np.argmax(pts[loop, 0])]))
        ang = 2 * math.pi * _arc_parameter(pts[loop])
        uv = _harmonic(L, loop, np.column_stack([np.cos(ang), np.sin(ang)]))
        return uv, float("nan")
    if len(loops) != 2:
        raise ValueError(f"Tutte parameterisation handles one or two boundary loops; the mesh "
                         f"has {len(loops)}")
    a = _airfoil(mesh, "mesh")
    r0 = default_inner_radius(mesh) if inner_radius is None else float(inner_radius)
    if not 0 < r0 < 1:
        raise ValueError(f"inner_radius must be in (0, 1), got {inner_radius}")
    af, aw = 2 * math.pi * a.t_far, 2 * math.pi * a.s_wall
    fixed = np.concatenate([a.far, a.wall])
    vals = np.concatenate([np.column_stack([np.cos(af), np.sin(af)]),
                           r0 * np.column_stack([np.cos(aw), np.sin(aw)])])
    return _harmonic(L, fixed, vals), r0


class TutteMorpher:
    """Morphing through a common Floater/Tutte parameter annulus (MMGP's morphing).

    .. math::
        \\phi = \\mathrm{param}_{tgt}^{-1} \\circ \\mathrm{param}_{ref}

    Interior reference nodes are located in the target's parameter mesh
    (:func:`meshes.transfer.transfer_matrix`) and take the P1 interpolant of the target's
    physical coordinates there (a reference node falling outside the target parameter mesh,
    between a circle and its inscribed polygon, takes the value at the nearest boundary point).
    Boundary nodes are mapped exactly: wall nodes to the target wall polygon at the same wall
    parameter, far-field nodes to the target far field at the same normalised arc length
    (radially projected onto the target circle when its nodes lie on one). Morphed wall nodes
    therefore lie on the target polygon to round-off.

    Parameters
    ----------
    inner_radius : float, optional
        Radius of the wall circle in the parameter domain; default
        :func:`default_inner_radius` of the reference (reused for the target).
    weights : {"mean-value", "uniform"}
        Barycentric weights of :func:`tutte_parameterisation`.
    """

    def __init__(self, *, inner_radius: float | None = None, weights: str = "mean-value"):
        if weights not in ("mean-value", "uniform"):
            raise ValueError(f"weights must be 'mean-value' or 'uniform', got {weights!r}")
        self.inner_radius = inner_radius
        self.weights = weights

    def morph(self, reference: meshio.Mesh, target: meshio.Mesh) -> MorphResult:
        """Morph ``reference`` onto ``target``; see the class docstring."""
        ref, tgt = _airfoil(reference, "reference"), _airfoil(target, "target")
        uv_r, r0 = tutte_parameterisation(reference, inner_radius=self.inner_radius,
                                          weights=self.weights)
        uv_t, _ = tutte_parameterisation(target, inner_radius=r0, weights=self.weights)
        pmesh = meshio.Mesh(uv_t, [("triangle", tgt.tris)])
        q_t = mesh_quality(pmesh)
        inner = ref.interior()
        W = transfer_matrix(pmesh, uv_r[inner])
        x = ref.xy.copy()
        x[inner] = W @ tgt.xy
        x[ref.wall] = _eval_closed(tgt.wall_xy, tgt.s_wall, ref.s_wall)
        x[ref.far] = _far_map(ref, tgt)
        return _finish(reference, ref, x, tgt, 1, "Tutte morphing",
                       {"inner_radius": r0, "target_parameter_inverted": q_t["n_inverted"]})
