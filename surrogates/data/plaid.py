"""PLAID interop: read and write :class:`MeshDataset` s as PLAID datasets (``pyplaid``).

PLAID (Physics Learning AI Datamodel, the format of the reference MMGP code and of the PLAID
benchmarks) stores each sample as a CGNS tree. This module goes through ``pyplaid``'s public
API (:class:`plaid.Sample`, :func:`plaid.storage.save_to_disk`,
:func:`plaid.storage.init_from_disk`), never its pickled variants. ``pip install pyplaid``
(PyPI's ``plaid`` is an unrelated package); it is imported only when these functions run.

Mapping, per sample (base ``Base_2_2``, unstructured zone ``Zone``, time 0):

- nodes -> ``GridCoordinates`` (x, y); triangles -> a ``TRI_3`` section; boundary edges (the
  mesh's ``line`` cells) -> one ``BAR_2`` section;
- the wall and far-field nodes -> vertex ``BC_t`` nodal tags ``Airfoil`` and ``Ext_bound``
  (the names of PLAID's AirfRANS datasets); on reading, an edge whose two nodes are in
  ``Airfoil`` is the wall, any other edge the far field;
- point fields -> vertex fields; a vector field ``velocity`` (n, 2) -> ``velocity_x`` and
  ``velocity_y``, recombined on reading;
- scalar inputs and outputs of the index -> PLAID globals (1-element arrays).

Samples go into splits (e.g. ``train`` / ``test``); :func:`read_plaid` concatenates the
requested splits in that order and records each sample's split in the index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import meshio
import numpy as np
import xarray as xr

from surrogates.data.mesh_dataset import MeshDataset

__all__ = ["read_plaid", "write_plaid"]

_BASE, _ZONE = "Base_2_2", "Zone"
_WALL_NAME, _FAR_NAME = "Airfoil", "Ext_bound"
_COMPONENTS = ("x", "y", "z")


def _import_plaid():
    try:
        import plaid
        import plaid.storage
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("PLAID interop needs pyplaid: `pip install pyplaid` (PyPI's 'plaid' "
                          f"is an unrelated package); import failed with: {exc}") from exc
    return plaid


def _boundary_nodes(mesh: meshio.Mesh) -> tuple[np.ndarray, np.ndarray]:
    from meshes.airfoil_mesh import FARFIELD_TAG, WALL_TAG

    tags = mesh.cell_data.get("boundary_tag")
    wall, far = [], []
    for k, block in enumerate(mesh.cells):
        if block.type != "line":
            continue
        data = np.asarray(block.data)
        if tags is None:
            raise ValueError("the mesh has line cells without 'boundary_tag' cell data: cannot "
                             "tell the wall from the far field")
        t = np.asarray(tags[k])
        wall.append(data[t == WALL_TAG].ravel())
        far.append(data[t == FARFIELD_TAG].ravel())
    def cat(xs):
        return np.unique(np.concatenate(xs)) if xs else np.zeros(0, np.int64)

    return cat(wall), cat(far)


def _to_sample(mesh: meshio.Mesh, globals_: Mapping[str, float], fields: Sequence[str]):
    import CGNS.PAT.cgnskeywords as CGK
    import CGNS.PAT.cgnslib as CGL

    plaid = _import_plaid()
    pts = np.asarray(mesh.points, dtype=np.float64)[:, :2]
    tris = np.concatenate([np.asarray(c.data) for c in mesh.cells if c.type == "triangle"])
    lines = [np.asarray(c.data) for c in mesh.cells if c.type == "line"]
    sample = plaid.Sample()
    sample.init_base(2, 2, _BASE)
    sample.init_zone(np.array([[len(pts), len(tris), 0]]), zone=_ZONE, base=_BASE)
    sample.set_nodes(pts, zone=_ZONE, base=_BASE)
    zone = sample.get_zone(_ZONE, _BASE)
    CGL.newElements(zone, "Triangles", CGK.TRI_3, np.array([1, len(tris)]),
                    (tris + 1).astype(np.int32).ravel())
    if lines:
        bars = np.concatenate(lines)
        CGL.newElements(zone, "Bars", CGK.BAR_2,
                        np.array([len(tris) + 1, len(tris) + len(bars)]),
                        (bars + 1).astype(np.int32).ravel())
        wall, far = _boundary_nodes(mesh)
        zbc = CGL.newZoneBC(zone)
        for name, nodes in ((_WALL_NAME, wall), (_FAR_NAME, far)):
            if len(nodes):
                bc = CGL.newBoundary(zbc, name, (nodes + 1).astype(np.int32).reshape(1, -1),
                                     btype="Null", pttype="PointList")
                CGL.newGridLocation(bc, "Vertex")
    for name in fields:
        values = np.asarray(mesh.point_data[name], dtype=np.float64)
        if values.ndim == 1:
            sample.add_field(name, values, zone=_ZONE, base=_BASE)
        else:
            for j in range(values.shape[1]):
                sample.add_field(f"{name}_{_COMPONENTS[j]}", values[:, j], zone=_ZONE,
                                 base=_BASE)
    for name, value in globals_.items():
        sample.add_global(name, np.array([float(value)]))
    return sample


def write_plaid(dataset: MeshDataset, path: str | os.PathLike, *,
                splits: Mapping[str, Sequence[int]] | None = None, backend: str = "cgns",
                owner: str = "unknown", license: str = "unknown",
                overwrite: bool = False) -> Path:
    """Write a :class:`MeshDataset` as a PLAID dataset folder.

    Parameters
    ----------
    dataset : MeshDataset
        Triangle meshes with ``boundary_tag`` on their line cells (e.g. ``surrogates generate
        airfoil`` data).
    path : path-like
        Folder to create.
    splits : mapping, optional
        Split name -> sample indices; default ``{"train": all samples}``.
    backend : {"cgns", "hf_datasets", "zarr"}
        PLAID storage backend (``cgns``: one CGNS file per sample).
    owner, license : str
        PLAID ``Infos`` of the dataset.
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        On sample indices out of range.
    """
    plaid = _import_plaid()
    from plaid.storage import save_to_disk

    out = Path(path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    splits = {"train": list(range(len(dataset)))} if splits is None else dict(splits)
    for name, idx in splits.items():
        bad = [i for i in idx if not 0 <= int(i) < len(dataset)]
        if bad:
            raise ValueError(f"split {name!r} has indices out of range for {len(dataset)} "
                             f"samples: {bad[:10]}")
    scalars = dataset.input_names + dataset.output_names
    values = dataset.index

    def construct(i):
        i = int(i)
        g = {n: float(np.asarray(values[n].values[i]).ravel()[0]) for n in scalars}
        return _to_sample(dataset.meshes[i], g, dataset.field_names)

    save_to_disk(out, sample_constructor=construct,
                 ids={k: [int(i) for i in v] for k, v in splits.items()},
                 infos=plaid.Infos(owner=owner, license=license), backend=backend,
                 overwrite=overwrite)
    meta = {"inputs": dataset.input_names, "outputs": dataset.output_names,
            "point_fields": dataset.field_names, "splits": {k: [int(i) for i in v]
                                                            for k, v in splits.items()}}
    (out / "surrogates_mesh_dataset.json").write_text(json.dumps(meta, indent=2))
    return out


def _to_mesh(sample) -> tuple[meshio.Mesh, dict[str, float]]:
    from meshes.airfoil_mesh import FARFIELD_TAG, FLUID_TAG, WALL_TAG

    pts = np.asarray(sample.get_nodes(zone=_ZONE, base=_BASE), dtype=np.float64)[:, :2]
    elements = sample.get_elements(zone=_ZONE, base=_BASE)
    if "TRI_3" not in elements:
        raise ValueError(f"PLAID sample has no TRI_3 elements (has {sorted(elements)}); only "
                         "triangle meshes are read")
    cells, tags = [("triangle", elements["TRI_3"])], [np.full(len(elements["TRI_3"]), FLUID_TAG)]
    bars = elements.get("BAR_2")
    nodal = sample.get_nodal_tags(zone=_ZONE, base=_BASE)
    if bars is not None and _WALL_NAME in nodal:
        on_wall = np.isin(bars, nodal[_WALL_NAME]).all(axis=1)
        for mask, tag in ((on_wall, WALL_TAG), (~on_wall, FARFIELD_TAG)):
            if mask.any():
                cells.append(("line", bars[mask]))
                tags.append(np.full(int(mask.sum()), tag))
    names = sample.get_field_names(zone=_ZONE, base=_BASE)
    point_data, used = {}, set()
    for name in names:
        if name in used:
            continue
        stem, _, comp = name.rpartition("_")
        if comp == "x" and f"{stem}_y" in names:
            parts = [n for n in (f"{stem}_{c}" for c in _COMPONENTS) if n in names]
            point_data[stem] = np.stack([np.asarray(sample.get_field(n, zone=_ZONE, base=_BASE))
                                         for n in parts], axis=1)
            used.update(parts)
        else:
            point_data[name] = np.asarray(sample.get_field(name, zone=_ZONE, base=_BASE))
            used.add(name)
    glob = {n: float(np.ravel(sample.get_global(n))[0]) for n in sample.get_global_names()}
    mesh = meshio.Mesh(pts, cells, point_data=point_data, cell_data={"boundary_tag": tags})
    return mesh, glob


def read_plaid(path: str | os.PathLike, *, splits: Sequence[str] | None = None,
               inputs: Sequence[str] | None = None,
               outputs: Sequence[str] | None = None) -> MeshDataset:
    """Read a PLAID dataset folder into a :class:`MeshDataset` (meshes held in memory).

    Parameters
    ----------
    path : path-like
        A folder written by :func:`write_plaid` or by ``plaid.storage.save_to_disk``.
    splits : sequence of str, optional
        Splits to read, concatenated in this order [all: in the order :func:`write_plaid`
        recorded, else sorted by name].
    inputs, outputs : sequence of str, optional
        Which PLAID globals are inputs and which outputs; default: as recorded by
        :func:`write_plaid`, else all globals as outputs.

    Returns
    -------
    MeshDataset
        Index variables: the globals, ``split`` (name of each sample's split) and
        ``plaid_id`` (the sample id within its split).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        On an unknown split, or samples with different global or field names.
    """
    _import_plaid()
    from plaid.storage import init_from_disk

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no PLAID dataset folder at {folder}")
    datasets, converters = init_from_disk(folder)
    meta_path = folder / "surrogates_mesh_dataset.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if splits is None:
        recorded = [s for s in meta.get("splits", {}) if s in datasets]
        splits = recorded + sorted(s for s in datasets if s not in recorded)
    names = list(splits)
    unknown = [s for s in names if s not in datasets]
    if unknown:
        raise ValueError(f"splits {unknown} are not in {folder}; it has {sorted(datasets)}")
    meshes, rows, split_of, ids = [], [], [], []
    for split in names:
        ds, conv = datasets[split], converters[split]
        for j in range(len(ds)):
            sample = conv.to_plaid(ds, j)
            mesh, glob = _to_mesh(sample)
            meshes.append(mesh)
            rows.append(glob)
            split_of.append(split)
            ids.append(j)
    if not meshes:
        raise ValueError(f"{folder} holds no samples in splits {names}")
    keys = sorted(rows[0])
    if any(sorted(r) != keys for r in rows):
        raise ValueError("PLAID samples have different global names; cannot build one index")
    fields = sorted(meshes[0].point_data)
    if any(sorted(m.point_data) != fields for m in meshes):
        raise ValueError("PLAID samples have different field names")
    in_names = list(inputs) if inputs is not None else meta.get("inputs", [])
    out_names = (list(outputs) if outputs is not None
                 else meta.get("outputs", [k for k in keys if k not in in_names]))
    data = {k: ("sample", np.array([r[k] for r in rows])) for k in keys}
    data["split"] = ("sample", np.array(split_of, dtype=str))
    data["plaid_id"] = ("sample", np.array(ids, dtype=np.int64))
    index = xr.Dataset(data, attrs={"inputs": json.dumps(in_names),
                                    "outputs": json.dumps(out_names),
                                    "point_fields": json.dumps(meta.get("point_fields",
                                                                        fields)),
                                    "source": f"PLAID dataset {folder}"})
    return MeshDataset(meshes, index)
