"""Triangular flow-domain meshes around an airfoil, their quality, and their I/O via meshio.

A domain mesh is a :class:`meshio.Mesh` with 2D points (chords) and three cell blocks, in this
order:

0. ``triangle``: the fluid, counter-clockwise triangles;
1. ``line``: the wall (the airfoil outline);
2. ``line``: the far field (a circle of radius ``R`` chords).

Every block carries the integer ``cell_data["boundary_tag"]``: :data:`FLUID_TAG` = 3 on the
triangles, :data:`WALL_TAG` = 1 on the wall edges, :data:`FARFIELD_TAG` = 2 on the far-field
edges, and ``cell_sets`` ``"fluid"``, ``"wall"`` and ``"farfield"`` index the same cells.
Boundary edges are oriented as in their triangle, so the fluid lies on their left and
:math:`(\\Delta y, -\\Delta x)/\\ell` is the outward normal of the fluid domain.

Some formats lose ``cell_sets`` or merge the two ``line`` blocks; the integer tag is the
carrier that survives, and :func:`read_mesh` rebuilds the layout above from it.

This module generates the meshes (:func:`airfoil_domain_mesh`) and measures them
(:func:`mesh_quality`, :func:`check_quality`). The layout itself, :func:`boundary_line_mesh`,
:func:`write_mesh` and :func:`read_mesh` live in :mod:`meshes.mesh_io`, and this module
re-exports them.
"""

from __future__ import annotations

import math

import meshio
import numpy as np

from .airfoil import AirfoilShape, naca
from .mesh_io import (
    FARFIELD_TAG,
    FLUID_TAG,
    WALL_TAG,
    _build,
    _split_by_tag,
    boundary_line_mesh,
    read_mesh,
    write_mesh,
)

__all__ = [
    "FARFIELD_TAG",
    "FLUID_TAG",
    "WALL_TAG",
    "airfoil_domain_mesh",
    "boundary_line_mesh",
    "check_quality",
    "mesh_quality",
    "read_mesh",
    "write_mesh",
]


# ---------------------------------------------------------------------------------------------
# Wall and size function
# ---------------------------------------------------------------------------------------------


def _as_shape(shape) -> AirfoilShape:
    if isinstance(shape, AirfoilShape):
        return shape
    if isinstance(shape, str | int):
        return naca(shape, 100)
    return AirfoilShape(shape)


def _resample(line: np.ndarray, n: int) -> np.ndarray:
    """n points along a polyline, cosine-clustered in arc length towards both ends."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(line, axis=0).T))])
    t = s[-1] * 0.5 * (1.0 - np.cos(np.linspace(0.0, math.pi, n)))
    t[0], t[-1] = 0.0, s[-1]
    return np.stack([np.interp(t, s, line[:, 0]), np.interp(t, s, line[:, 1])], axis=1)


def _wall_points(shape: AirfoilShape, n_surface: int | None) -> np.ndarray:
    """Wall vertices, counter-clockwise, with the blunt trailing-edge base split to match the
    neighbouring spacing into an even number of segments, so the base midpoint is a wall node
    (the morphers of :mod:`meshes.morph` anchor a blunt trailing edge there)."""
    if n_surface is None:
        wall = shape.polygon.copy()
    else:
        if int(n_surface) < 5:
            raise ValueError(f"n_surface must be >= 5 points per side, got {n_surface}")
        le = shape.leading_edge_index
        up = _resample(shape.coords[: le + 1], int(n_surface))
        lo = _resample(shape.coords[le:], int(n_surface))
        wall = np.concatenate([up, lo[1:]])
        if np.array_equal(wall[0], wall[-1]):
            wall = wall[:-1]
    first, last = wall[0], wall[-1]
    base = float(np.hypot(*(first - last)))
    if base > 0:
        h_adj = 0.5 * (np.hypot(*(wall[1] - wall[0])) + np.hypot(*(wall[-1] - wall[-2])))
        k = 2 * int(min(max(1, round(base / (2 * h_adj))), 100))
        f = np.arange(1, k)[:, None] / k
        wall = np.concatenate([wall, last + f * (first - last)])
    return wall


def _size_function(wall: np.ndarray, growth: float, max_size: float):
    """h(p) = min(max_size, min_i (h_i + growth |p - w_i|)), h_i the local wall spacing."""
    edge = np.hypot(*(np.roll(wall, -1, axis=0) - wall).T)
    h_wall = 0.5 * (edge + np.roll(edge, 1))

    def h(p: np.ndarray) -> np.ndarray:
        out = np.empty(len(p))
        step = max(1, 2_000_000 // len(wall))
        for a in range(0, len(p), step):
            d = np.hypot(p[a:a + step, None, 0] - wall[None, :, 0],
                         p[a:a + step, None, 1] - wall[None, :, 1])
            out[a:a + step] = np.min(h_wall[None, :] + growth * d, axis=1)
        return np.minimum(out, max_size)

    return h


def _interior_point(poly: np.ndarray) -> np.ndarray:
    """A point strictly inside a simple polygon: centroid of the largest triangle of its
    constrained triangulation."""
    import triangle

    m = len(poly)
    seg = np.stack([np.arange(m), (np.arange(m) + 1) % m], axis=1)
    t = triangle.triangulate({"vertices": poly, "segments": seg}, "p")
    tri = t["vertices"][t["triangles"]]
    area = _tri_areas(tri)
    return tri[int(np.argmax(area))].mean(axis=0)


def _tri_areas(tri: np.ndarray) -> np.ndarray:
    """Signed areas of triangles (T, 3, 2); positive when counter-clockwise."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                  - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


# ---------------------------------------------------------------------------------------------
# Domain mesh
# ---------------------------------------------------------------------------------------------


def airfoil_domain_mesh(shape, *, farfield_radius: float = 20.0, center=(0.5, 0.0),
                        n_surface: int | None = None, growth: float = 0.15,
                        max_size: float | None = None, min_angle: float = 28.0,
                        max_aspect: float = 10.0, check: bool = True) -> meshio.Mesh:
    """Graded triangular mesh of the flow domain between an airfoil and a circular far field.

    The boundary is a planar straight-line graph: the wall polygon (the shape's vertices, or
    ``n_surface`` points per side resampled on its outline, plus a split blunt trailing-edge
    base) and ``n_f`` equally spaced nodes on the circle :math:`|x - c| = R`. Shewchuk's
    Triangle builds a constrained conforming Delaunay triangulation with minimum angle
    ``min_angle`` (switch ``q``), the airfoil interior as a hole. The size is then graded by
    repeated refinement (switch ``r`` with per-triangle area bounds) until every triangle's
    area is at most :math:`\\tfrac{\\sqrt3}{4} h^2` (equilateral of side h), with the size
    function

    .. math::
        h(p) = \\min\\Big(h_{max},\\ \\min_i \\big(h_i + g\\,|p - w_i|\\big)\\Big),

    :math:`w_i` the wall nodes, :math:`h_i` the mean length of their two wall edges and
    :math:`g` the ``growth`` rate: sizes match the surface spacing at the wall and grow
    linearly with distance (1-Lipschitz up to the factor g). The far field gets
    :math:`n_f = \\lceil 2\\pi R / (0.7\\,\\bar h(R)) \\rceil` nodes (at least 16). Nodes Triangle
    inserts on far-field edges are projected onto the circle and the mesh is rebuilt with
    them as fixed nodes, so every far-field node lies on the circle to rounding.

    Parameters
    ----------
    shape : AirfoilShape, str or array_like (N, 2)
        The section (a NACA designation gives ``naca(designation, 100)``).
    farfield_radius : float
        R, in chords; must exceed 1.5 times the shape's farthest distance from ``center``.
    center : (float, float)
        Far-field circle centre (default mid-chord).
    n_surface : int, optional
        Points per surface after resampling; default: the shape's own vertices.
    growth : float
        g > 0, size increase per unit distance from the wall (dimensionless).
    max_size : float, optional
        Upper bound on h (chords); default unbounded.
    min_angle : float
        Minimum triangle angle in degrees, in [0, 34] (Triangle's guarantee ends near 33.8).
    max_aspect : float
        Passed to :func:`check_quality` (circumradius over twice the inradius).
    check : bool
        Run :func:`check_quality` (``min_angle`` less 1e-6 degrees, ``max_aspect``) and raise
        on failure.

    Returns
    -------
    meshio.Mesh
        2D points; blocks ``triangle`` (fluid), ``line`` (wall), ``line`` (far field);
        ``cell_data["boundary_tag"]`` and ``cell_sets`` as described in the module docstring.

    Raises
    ------
    ValueError
        For an invalid shape, bad parameters, or a mesh failing the quality check.

    References
    ----------
    Shewchuk, J. R. (1996), Triangle: engineering a 2D quality mesh generator and Delaunay
    triangulator, *Applied Computational Geometry*, LNCS 1148, 203-222.
    """
    import triangle

    shape = _as_shape(shape)
    reason = shape.invalid_reason()
    if reason is not None:
        raise ValueError(f"invalid airfoil shape {shape.name!r}: {reason}")
    R = float(farfield_radius)
    c = np.asarray(center, dtype=np.float64).reshape(2)
    if not (np.isfinite(c).all() and math.isfinite(R)):
        raise ValueError("farfield_radius and center must be finite")
    reach = float(np.max(np.hypot(*(shape.polygon - c).T)))
    if R <= 1.5 * reach:
        raise ValueError(f"farfield_radius {R} must exceed 1.5 x the airfoil's farthest "
                         f"distance from the centre ({reach:.3g} chords)")
    if not growth > 0:
        raise ValueError(f"growth must be positive, got {growth}")
    if not 0 <= min_angle <= 34:
        raise ValueError(f"min_angle must be in [0, 34] degrees (Triangle may not terminate "
                         f"above ~34), got {min_angle}")
    h_max = math.inf if max_size is None else float(max_size)
    if not h_max > 0:
        raise ValueError(f"max_size must be positive, got {max_size}")

    wall = _wall_points(shape, n_surface)
    hole = _interior_point(wall)
    h = _size_function(wall, float(growth), h_max)
    ring = np.linspace(0, 2 * math.pi, 720, endpoint=False)
    ring_pts = c + R * np.stack([np.cos(ring), np.sin(ring)], axis=1)
    n_far = max(16, math.ceil(2 * math.pi * R / (0.7 * float(np.mean(h(ring_pts))))))
    theta = 2 * math.pi * np.arange(n_far) / n_far
    far_angles = theta
    opts = f"pq{float(min_angle):.6g}"

    for _ in range(10):
        far = c + R * np.stack([np.cos(far_angles), np.sin(far_angles)], axis=1)
        nw, nf = len(wall), len(far)
        seg_w = np.stack([np.arange(nw), (np.arange(nw) + 1) % nw], axis=1)
        seg_f = nw + np.stack([np.arange(nf), (np.arange(nf) + 1) % nf], axis=1)
        pslg = {"vertices": np.concatenate([wall, far]),
                "segments": np.concatenate([seg_w, seg_f]),
                "segment_markers": np.concatenate([np.full(nw, WALL_TAG),
                                                   np.full(nf, FARFIELD_TAG)]),
                "holes": hole[None, :]}
        tri = triangle.triangulate(pslg, opts)
        for _it in range(60):
            v, t = tri["vertices"], tri["triangles"]
            p = v[t]
            target = math.sqrt(3) / 4 * np.minimum(h(p.mean(axis=1)),
                                                   h(v)[t].min(axis=1)) ** 2
            if np.all(_tri_areas(p) <= target):
                break
            tri["triangle_max_area"] = target
            tri = triangle.triangulate(tri, "r" + opts + "a")
        else:
            raise ValueError("mesh refinement did not converge in 60 passes; increase growth")
        v = tri["vertices"]
        segm = tri["segment_markers"].ravel()
        far_nodes = np.unique(tri["segments"][segm == FARFIELD_TAG])
        new = far_nodes[far_nodes >= nw + nf]
        new_wall = np.unique(tri["segments"][segm == WALL_TAG])
        new_wall = new_wall[new_wall >= nw + nf]
        if new.size == 0:
            break
        # project Triangle's far-field splits onto the circle; keep wall splits; rebuild
        ang = np.arctan2(v[new, 1] - c[1], v[new, 0] - c[0]) % (2 * math.pi)
        far_angles = np.sort(np.concatenate([far_angles, ang]))
        if new_wall.size:
            wall = _insert_on_polygon(wall, v[new_wall])
    else:
        raise ValueError("far-field boundary kept being split; increase farfield_radius or "
                         "growth")

    mesh = _assemble(tri["vertices"], tri["triangles"], tri["segments"], segm)
    if check:
        check_quality(mesh, min_angle=max(0.0, float(min_angle) - 1e-6),
                      max_aspect=max_aspect)
    return mesh


def _insert_on_polygon(wall: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Insert points lying on the edges of closed polygon ``wall`` in loop order."""
    a, b = wall, np.roll(wall, -1, axis=0)
    d = b - a
    L2 = np.sum(d * d, axis=1)
    keys = []
    for q in pts:
        s = np.clip(np.sum((q - a) * d, axis=1) / L2, 0.0, 1.0)
        dist = np.hypot(*(a + s[:, None] * d - q).T)
        k = int(np.argmin(dist))
        keys.append(k + s[k])
    order = np.argsort(np.concatenate([np.arange(len(wall), dtype=float), keys]), kind="stable")
    return np.concatenate([wall, pts])[order]


def _orient_edges(triangles: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Orient boundary edges as they run in their (counter-clockwise) triangle."""
    directed = {}
    for a, b, c in triangles:
        directed[(a, b)] = True
        directed[(b, c)] = True
        directed[(c, a)] = True
    out = edges.copy()
    for k, (a, b) in enumerate(edges):
        if (a, b) not in directed:
            out[k] = (b, a)
    return out


def _assemble(vertices, triangles, segments, markers) -> meshio.Mesh:
    used = np.unique(triangles)
    remap = -np.ones(len(vertices), dtype=np.int64)
    remap[used] = np.arange(len(used))
    pts = np.asarray(vertices, dtype=np.float64)[used]
    tris = remap[np.asarray(triangles, dtype=np.int64)]
    area = _tri_areas(pts[tris])
    tris[area < 0] = tris[area < 0][:, ::-1]
    segs = remap[np.asarray(segments, dtype=np.int64)]
    markers = np.asarray(markers).ravel()
    wall = _orient_edges(tris, segs[markers == WALL_TAG])
    far = _orient_edges(tris, segs[markers == FARFIELD_TAG])
    return _build(pts, tris, wall, far)


# ---------------------------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------------------------


def _triangle_metrics(pts: np.ndarray, tris: np.ndarray):
    p = pts[tris][:, :, :2]
    la = np.hypot(*(p[:, 1] - p[:, 2]).T)  # opposite vertex 0
    lb = np.hypot(*(p[:, 2] - p[:, 0]).T)
    lc = np.hypot(*(p[:, 0] - p[:, 1]).T)
    area = _tri_areas(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ca = np.clip((lb**2 + lc**2 - la**2) / (2 * lb * lc), -1, 1)
        cb = np.clip((la**2 + lc**2 - lb**2) / (2 * la * lc), -1, 1)
        ang = np.degrees(np.arccos(np.stack([ca, cb], axis=1)))
        ang = np.concatenate([ang, 180.0 - ang.sum(axis=1, keepdims=True)], axis=1)
        s = 0.5 * (la + lb + lc)
        aspect = la * lb * lc * s / (8.0 * area**2)
    ang = np.where(np.isfinite(ang), ang, 0.0)
    aspect = np.where((area > 0) & np.isfinite(aspect), aspect, np.inf)
    return area, ang, aspect


def mesh_quality(mesh: meshio.Mesh) -> dict:
    """Quality figures of the triangles of a mesh.

    The aspect ratio of a triangle is :math:`R/(2r) = abc\\,s / (8A^2)`, circumradius over
    twice the inradius (1 for an equilateral triangle, infinite for a degenerate one), with
    side lengths a, b, c, semi-perimeter s and area A. Angles are in degrees, lengths in the
    mesh's units (chords).

    Returns
    -------
    dict
        ``n_points``, ``n_triangles``, ``n_wall_edges``, ``n_farfield_edges`` (0 when
        untagged), ``min_angle``, ``max_angle``, ``max_aspect_ratio``, ``mean_aspect_ratio``,
        ``min_area``, ``total_area``, ``n_inverted`` (triangles with signed area <= 0),
        ``worst_angle_cell`` / ``worst_aspect_cell`` (row in the triangle cells).
    """
    tri_blocks = [np.asarray(b.data) for b in mesh.cells if b.type == "triangle"]
    if not tri_blocks:
        types = sorted({b.type for b in mesh.cells})
        raise ValueError(f"mesh has no 'triangle' cells (it has {types})")
    tris = np.concatenate(tri_blocks)
    pts = np.asarray(mesh.points, dtype=np.float64)
    area, ang, aspect = _triangle_metrics(pts, tris)
    min_ang = ang.min(axis=1)
    try:
        _, wall, far = _split_by_tag(mesh)
        nw, nf = len(wall), len(far)
    except ValueError:
        nw = nf = 0
    return {
        "n_points": len(pts), "n_triangles": len(tris),
        "n_wall_edges": nw, "n_farfield_edges": nf,
        "min_angle": float(min_ang.min()), "max_angle": float(ang.max()),
        "max_aspect_ratio": float(aspect.max()), "mean_aspect_ratio": float(aspect.mean()),
        "min_area": float(area.min()), "total_area": float(area.sum()),
        "n_inverted": int(np.sum(area <= 0)),
        "worst_angle_cell": int(np.argmin(min_ang)), "worst_aspect_cell": int(np.argmax(aspect)),
    }


def check_quality(mesh: meshio.Mesh, *, min_angle: float = 20.0,
                  max_aspect: float = 10.0) -> dict:
    """Raise when a triangle is inverted, has an angle below ``min_angle`` (degrees) or an
    aspect ratio :math:`R/(2r)` above ``max_aspect``; return :func:`mesh_quality` otherwise.

    Raises
    ------
    ValueError
        Naming the worst triangle (its row, node indices and coordinates) and the failed figure.
    """
    q = mesh_quality(mesh)
    tris = np.concatenate([np.asarray(b.data) for b in mesh.cells if b.type == "triangle"])
    pts = np.asarray(mesh.points, dtype=np.float64)

    def where(k: int) -> str:
        nodes = tris[k].tolist()
        xy = ", ".join(f"({x:.6g}, {y:.6g})" for x, y in pts[tris[k], :2])
        return f"triangle {k} (nodes {nodes} at {xy})"

    area, ang, aspect = _triangle_metrics(pts, tris)
    if q["n_inverted"]:
        k = int(np.argmin(area))
        raise ValueError(f"{q['n_inverted']} inverted or degenerate triangles; worst is "
                         f"{where(k)} with signed area {area[k]:.3e}")
    if q["min_angle"] < min_angle:
        k = q["worst_angle_cell"]
        raise ValueError(f"mesh quality: {where(k)} has minimum angle {q['min_angle']:.3f} deg "
                         f"< {min_angle} deg")
    if q["max_aspect_ratio"] > max_aspect:
        k = q["worst_aspect_cell"]
        raise ValueError(f"mesh quality: {where(k)} has aspect ratio R/(2r) = "
                         f"{q['max_aspect_ratio']:.3f} > {max_aspect}")
    return q
