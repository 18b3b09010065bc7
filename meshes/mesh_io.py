"""The domain-mesh layout of :mod:`meshes.airfoil_mesh` and its files: boundary tags, building
and splitting the tagged blocks, the boundary line mesh, and atomic reading and writing via
meshio (``.vtu``, ``.msh`` gmsh 2.2 ASCII, ``.xdmf``).

A domain mesh has 2D points and three cell blocks: ``triangle`` (the fluid), ``line`` (the
wall) and ``line`` (the far field). Each block carries the integer
``cell_data["boundary_tag"]``: :data:`FLUID_TAG`, :data:`WALL_TAG` or :data:`FARFIELD_TAG`.
The ``cell_sets`` ``"fluid"``, ``"wall"`` and ``"farfield"`` index the same cells. The tag is
what survives every format, and :func:`read_mesh` rebuilds the layout from it.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import meshio
import numpy as np

__all__ = ["FARFIELD_TAG", "FLUID_TAG", "WALL_TAG", "boundary_line_mesh", "read_mesh",
           "write_mesh"]

WALL_TAG = 1
"""``boundary_tag`` of the wall (airfoil) edges."""
FARFIELD_TAG = 2
"""``boundary_tag`` of the far-field edges."""
FLUID_TAG = 3
"""``boundary_tag`` of the fluid triangles (also their gmsh physical group)."""

_SET_NAMES = {WALL_TAG: "wall", FARFIELD_TAG: "farfield", FLUID_TAG: "fluid"}
_FORMATS = {".vtu": "vtu", ".msh": "gmsh", ".xdmf": "xdmf"}


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


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
        If the file does not exist or meshio cannot parse it.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"mesh file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:  # meshio prints its own complaint before giving up: keep it off the terminal
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            mesh = meshio.read(path, file_format=_FORMATS.get(ext))
    except SystemExit as err:  # meshio prints "Couldn't read file" and calls sys.exit(1)
        raise ValueError(f"{path} is not a readable {ext or 'mesh'} file") from err
    except (meshio.ReadError, OSError, KeyError, IndexError, SyntaxError) as err:
        raise ValueError(f"{path} is not a readable mesh file ({err})") from err
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
