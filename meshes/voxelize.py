"""Voxelisation: which nodes of a tensor grid lie inside a closed surface mesh (read by meshio).

Used to turn a scene's obstacles (a closed polygon in 2D, a closed triangulated surface in 3D,
in any format meshio reads) into the boolean obstacle mask of a grid solver, e.g.
``Room(..., obstacles=voxelize("pillar.stl", room.coords))`` for
:class:`surrogates.solvers.wave.Room`.
"""

from __future__ import annotations

import math
import os

import meshio
import numpy as np

from meshes.polygon import even_odd_inside

__all__ = ["voxelize"]


def _check_coords(coords) -> tuple[np.ndarray, ...]:
    try:
        axes = tuple(np.asarray(c, dtype=np.float64) for c in coords)
    except (TypeError, ValueError):
        raise ValueError(f"coords must be a sequence of 1D coordinate arrays, got {coords!r}") \
            from None
    if len(axes) not in (2, 3) or any(a.ndim != 1 or a.size == 0 for a in axes):
        raise ValueError(f"coords must be 2 or 3 non-empty 1D arrays, got shapes "
                         f"{[a.shape for a in axes]}")
    if any(not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0) for a in axes):
        raise ValueError("coords must be finite and strictly increasing along every axis")
    return axes




def _load_mesh(mesh):
    if isinstance(mesh, str | os.PathLike):
        path = os.fspath(mesh)
        if not os.path.exists(path):
            raise ValueError(f"mesh file not found: {path}")
        mesh = meshio.read(path)
    if not isinstance(mesh, meshio.Mesh):
        raise ValueError(f"mesh must be a meshio.Mesh or a path, got {type(mesh).__name__}")
    return mesh


def _cells(mesh, kind: str) -> np.ndarray:
    blocks = [cb.data for cb in mesh.cells if cb.type == kind]
    if not blocks:
        types = sorted({cb.type for cb in mesh.cells})
        raise ValueError(f"mesh has no '{kind}' cells (it has {types}); a 2D grid needs a closed "
                         f"polygon of 'line' cells, a 3D grid a closed 'triangle' surface")
    return np.concatenate(blocks, axis=0)


def voxelize(mesh, coords) -> np.ndarray:
    """Boolean mask of the nodes of a tensor grid inside a closed surface mesh (even-odd ray
    casting).

    2D: the mesh's ``line`` cells form closed polygon(s); a node is inside when a ray in +x
    crosses an odd number of segments (a segment counts when exactly one end lies strictly
    above the ray: the half-open rule, so vertices are not counted twice). 3D: the
    ``triangle`` cells form closed surface(s); a ray in +z from each node counts the triangles
    whose xy-projection contains the node. To avoid rays through mesh edges and vertices
    (common when the mesh is aligned with the grid) the query points are shifted by
    ``1e-7 h`` times (sqrt(2) - 1, sqrt(3) - 1) across the ray; nodes lying exactly on the
    surface are classified either way (for an axis-aligned square through nodes: the left
    and bottom edges' nodes count as inside, the right and top edges' as outside).

    Parameters
    ----------
    mesh : meshio.Mesh or path
        Closed polygon(s) (2D) or closed triangulated surface(s) (3D); extra point coordinates
        beyond the grid's dimension (e.g. z = 0 in 2D) are ignored.
    coords : sequence of 2 or 3 increasing 1D arrays
        Node coordinates along each axis, e.g. ``room.coords`` of a
        :class:`surrogates.solvers.wave.Room`; ``h`` is the smallest node spacing.

    Returns
    -------
    ndarray of bool, shape ``tuple(len(c) for c in coords)``
        Usable as ``Room(..., obstacles=mask)``.
    """
    coords = _check_coords(coords)
    shape = tuple(len(c) for c in coords)
    mesh = _load_mesh(mesh)
    d = len(coords)
    pts = np.asarray(mesh.points, dtype=np.float64)
    if pts.shape[1] < d:
        raise ValueError(f"mesh points have {pts.shape[1]} coordinates, the grid is {d}D")
    pts = pts[:, :d]
    h = min(float(np.min(np.diff(c))) if len(c) > 1 else 1.0 for c in coords)
    eps = 1e-7 * h * np.array([math.sqrt(2) - 1, math.sqrt(3) - 1])
    nodes = np.stack(np.meshgrid(*coords, indexing="ij"), axis=-1).reshape(-1, d)
    if d == 2:
        seg = pts[_cells(mesh, "line")]  # (S, 2, 2)
        query = nodes + np.array([0.0, eps[0]])
        return even_odd_inside(query, seg[:, 0], seg[:, 1]).reshape(shape)
    tri = pts[_cells(mesh, "triangle")]  # (T, 3, 3)
    cx, cy, cz = coords
    qx = cx + eps[0]
    qy = cy + eps[1]
    inside = np.zeros(shape, dtype=bool)
    for P in tri:
        x0, y0 = P[:, 0].min(), P[:, 1].min()
        x1, y1 = P[:, 0].max(), P[:, 1].max()
        ix = np.flatnonzero((qx >= x0) & (qx <= x1))
        iy = np.flatnonzero((qy >= y0) & (qy <= y1))
        if ix.size == 0 or iy.size == 0:
            continue
        X, Y = np.meshgrid(qx[ix], qy[iy], indexing="ij")
        (ax_, ay, az), (bx, by, bz), (cx_, cy_, cz_) = P
        det = (by - cy_) * (ax_ - cx_) + (cx_ - bx) * (ay - cy_)
        if det == 0.0:  # vertical triangle: invisible to a z-ray
            continue
        l1 = ((by - cy_) * (X - cx_) + (cx_ - bx) * (Y - cy_)) / det
        l2 = ((cy_ - ay) * (X - cx_) + (ax_ - cx_) * (Y - cy_)) / det
        l3 = 1.0 - l1 - l2
        hit = (l1 >= 0) & (l2 >= 0) & (l3 >= 0)
        zc = l1 * az + l2 * bz + l3 * cz_
        above = hit[..., None] & (cz[None, None, :] < zc[..., None])
        inside[np.ix_(ix, iy)] ^= above
    return inside
