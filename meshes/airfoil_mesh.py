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
"""

from __future__ import annotations

import math
import os
import tempfile

import meshio
import numpy as np

from .airfoil import AirfoilShape, naca

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

WALL_TAG = 1
"""``boundary_tag`` of the wall (airfoil) edges."""
FARFIELD_TAG = 2
"""``boundary_tag`` of the far-field edges."""
FLUID_TAG = 3
"""``boundary_tag`` of the fluid triangles (also their gmsh physical group)."""

_SET_NAMES = {WALL_TAG: "wall", FARFIELD_TAG: "farfield", FLUID_TAG: "fluid"}
_FORMATS = {".vtu": "vtu", ".msh": "gmsh", ".xdmf": "xdmf"}


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


def _build(pts, tris, wall, far, point_data=None) -> meshio.Mesh:
    nt, nw, nf = len(tris), len(wall), len(far)
    e = np.array([], dtype=np.int64)
    return meshio.Mesh(
        pts,
        [("triangle", tris.astype(np.int64)), ("line", wall.astype(np.int64)),
         ("line", far.astype(np.int64))],
        point_data=point_data or {},
        cell_data={"boundary_tag": [np.full(nt, FLUID_TAG, dtype=np.int64),
                                    np.full(nw, WALL_TAG, dtype=np.int64),
                                    np.full(nf, FARFIELD_TAG, dtype=np.int64)]},
        cell_sets={"fluid": [np.arange(nt), e, e], "wall": [e, np.arange(nw), e],
                   "farfield": [e, e, np.arange(nf)]},
    )


def boundary_line_mesh(mesh: meshio.Mesh) -> meshio.Mesh:
    """The wall and far-field edges of a domain mesh as a standalone line mesh.

    Points are restricted to the boundary nodes (renumbered in order of first use); blocks
    ``line`` (wall) and ``line`` (far field) keep ``boundary_tag`` and the ``"wall"`` /
    ``"farfield"`` cell sets. It is a closed-polygon mesh usable by
    :func:`meshes.voxelize.voxelize` (the fluid region is "inside").
    """
    _, wall, far = _split_by_tag(mesh)
    edges = np.concatenate([wall, far])
    used, inv = np.unique(edges, return_inverse=True)
    inv = inv.reshape(edges.shape)
    return _build_lines(np.asarray(mesh.points)[used], inv[: len(wall)], inv[len(wall):])


def _build_lines(pts, wall, far) -> meshio.Mesh:
    e = np.array([], dtype=np.int64)
    return meshio.Mesh(
        pts,
        [("line", wall.astype(np.int64)), ("line", far.astype(np.int64))],
        cell_data={"boundary_tag": [np.full(len(wall), WALL_TAG, dtype=np.int64),
                                    np.full(len(far), FARFIELD_TAG, dtype=np.int64)]},
        cell_sets={"wall": [np.arange(len(wall)), e], "farfield": [e, np.arange(len(far))]},
    )


def _tags(mesh: meshio.Mesh) -> list[np.ndarray] | None:
    for key in ("boundary_tag", "gmsh:physical"):
        data = mesh.cell_data.get(key)
        if data is not None and len(data) == len(mesh.cells):
            return [np.asarray(d).ravel().astype(np.int64) for d in data]
    return None


def _split_by_tag(mesh: meshio.Mesh):
    """(triangles, wall edges, far-field edges) from the tags (or the sets as a fallback)."""
    tags = _tags(mesh)
    tris, wall, far = [], [], []
    for k, block in enumerate(mesh.cells):
        data = np.asarray(block.data, dtype=np.int64)
        if block.type == "triangle":
            tris.append(data)
        elif block.type == "line":
            if tags is not None:
                tg = tags[k]
            else:
                tg = np.zeros(len(data), dtype=np.int64)
                for name, tag in (("wall", WALL_TAG), ("farfield", FARFIELD_TAG)):
                    sets = mesh.cell_sets.get(name)
                    if sets is not None and len(sets) == len(mesh.cells):
                        tg[np.asarray(sets[k], dtype=np.int64)] = tag
            wall.append(data[tg == WALL_TAG])
            far.append(data[tg == FARFIELD_TAG])

    def cat(xs, w):
        return np.concatenate(xs) if xs else np.zeros((0, w), dtype=np.int64)

    wall_e, far_e = cat(wall, 2), cat(far, 2)
    if len(wall_e) + len(far_e) == 0:
        raise ValueError("mesh has no tagged boundary edges: expected 'line' cells with "
                         f"cell_data['boundary_tag'] {WALL_TAG} (wall) / {FARFIELD_TAG} "
                         "(far field) or cell_sets 'wall' / 'farfield'")
    return cat(tris, 3), wall_e, far_e


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


# ---------------------------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------------------------


def _format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise ValueError(f"unsupported mesh extension {ext!r} in {path}; use one of "
                         f"{sorted(_FORMATS)}")
    return _FORMATS[ext]


def _for_writing(mesh: meshio.Mesh, fmt: str) -> meshio.Mesh:
    pts = np.asarray(mesh.points, dtype=np.float64)
    if pts.shape[1] == 2:
        pts = np.concatenate([pts, np.zeros((len(pts), 1))], axis=1)
    cells = [(b.type, np.asarray(b.data)) for b in mesh.cells]
    cell_data = {k: [np.asarray(x) for x in v] for k, v in mesh.cell_data.items()
                 if not k.startswith("gmsh:")}
    tags = _tags(mesh)
    field_data = dict(mesh.field_data)
    if fmt == "gmsh":
        if tags is not None:
            dims = [2 if b.type == "triangle" else 1 for b in mesh.cells]
            cell_data["gmsh:physical"] = [t.astype(np.int32) for t in tags]
            cell_data["gmsh:geometrical"] = [t.astype(np.int32) for t in tags]
            for tag, name in _SET_NAMES.items():
                dim = next((d for d, t in zip(dims, tags, strict=True) if np.any(t == tag)),
                           None)
                if dim is not None:
                    field_data[name] = np.array([tag, dim])
        # meshio 5.3 cannot read back integer $ElementData: the physical tags carry the tag
        cell_data = {k: v for k, v in cell_data.items() if k.startswith("gmsh:")}
        return meshio.Mesh(pts, cells, point_data=dict(mesh.point_data), cell_data=cell_data,
                           field_data=field_data)
    return meshio.Mesh(pts, cells, point_data=dict(mesh.point_data), cell_data=cell_data)


def write_mesh(mesh: meshio.Mesh, path, *, overwrite: bool = False) -> str:
    """Write a mesh atomically as ``.vtu``, ``.msh`` (gmsh 2.2 ASCII) or ``.xdmf``.

    The mesh goes to a temporary file in the destination folder, which is then renamed into
    place, so readers never see a partial file. 2D points are written with z = 0.
    ``boundary_tag`` is written as cell data (for ``.msh``: as the gmsh physical tags, with
    the physical names ``wall``, ``farfield``, ``fluid``; other cell data are not written to
    ``.msh``, as meshio cannot read integer element data back); ``cell_sets`` are not
    written since :func:`read_mesh` rebuilds them from the tags. ``.xdmf`` is written with
    inline XML data (no ``.h5`` side file, so the rename is atomic).

    Parameters
    ----------
    mesh : meshio.Mesh
    path : str or os.PathLike
    overwrite : bool
        Replace an existing file; otherwise an existing path is refused.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    ValueError
        For an unsupported extension or a missing destination folder.
    """
    path = os.fspath(path)
    fmt = _format(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"destination folder does not exist: {folder}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    out = _for_writing(mesh, fmt)
    ext = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=ext,
                               dir=folder)
    os.close(fd)
    try:
        if fmt == "xdmf":
            meshio.xdmf.write(tmp, out, data_format="XML")
        elif fmt == "gmsh":
            meshio.write(tmp, out, file_format="gmsh22", binary=False)
        else:
            meshio.write(tmp, out, file_format=fmt)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails atomically if path appeared meanwhile
            except FileExistsError:
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") \
                    from None
            except OSError:
                if os.path.exists(path):
                    raise FileExistsError(f"{path} exists; pass overwrite=True to replace "
                                          f"it") from None
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_mesh(path) -> meshio.Mesh:
    """Read a mesh written by :func:`write_mesh` (or any format meshio reads).

    A z coordinate that is zero everywhere is dropped (2D points). When the cells carry
    ``boundary_tag`` (or gmsh physical tags), the domain layout is rebuilt: blocks
    ``triangle`` / ``line`` (wall) / ``line`` (far field) with ``boundary_tag`` and the
    ``fluid`` / ``wall`` / ``farfield`` cell sets, point data kept. Otherwise the mesh is
    returned as meshio read it.

    Raises
    ------
    ValueError
        If the file does not exist.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"mesh file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    mesh = meshio.read(path, file_format=_FORMATS.get(ext))
    pts = np.asarray(mesh.points, dtype=np.float64)
    if pts.shape[1] == 3 and np.all(pts[:, 2] == 0):
        pts = pts[:, :2].copy()
    mesh.points = pts
    if _tags(mesh) is None:
        return mesh
    tris, wall, far = _split_by_tag(mesh)
    if len(tris) == 0:  # a boundary line mesh
        return _build_lines(pts, wall, far)
    return _build(pts, tris, wall, far, point_data=dict(mesh.point_data))
