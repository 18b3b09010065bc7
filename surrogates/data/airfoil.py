r"""Airfoil flow datasets on meshes: the in-memory form, generation with the panel solver, I/O.

In memory
    A :class:`surrogates.data.mesh_dataset.MeshDataset`: one :class:`meshio.Mesh` per sample
    (2D points, cells, point fields) plus an ``index`` :class:`xarray.Dataset` over ``sample``
    with the scalar inputs (e.g. ``alpha``, ``mach``, ``reynolds``), scalar outputs (``cl``,
    ``cd``, ``cm``), the mesh file names and shape parameters. Our generated folders and AirfRANS
    (:func:`surrogates.data.airfrans.open_airfrans`) load into this same form, which a
    mesh-based regressor consumes as ``fit(dataset.meshes, dataset.inputs(), dataset.outputs())``.

On disk
    A folder with one ``sample_00000.vtu`` per sample (written by
    :func:`meshes.airfoil_mesh.write_mesh`) and ``index.nc`` (netCDF4, written last and
    atomically, so a folder without ``index.nc`` is an incomplete generation).

Generated data (:func:`generate_airfoil_dataset`)
    Frame and units: the mesh is in the *body frame* (chord 1 along x, leading edge at the
    origin, lengths in chords); the free stream makes the angle ``alpha`` (degrees,
    counter-clockwise positive) with the x axis, :math:`\mathbf V_\infty = (\cos\alpha,
    \sin\alpha)`. Point fields:

    - ``velocity`` (n, 2): incompressible potential-flow velocity in units of :math:`V_\infty`,
      body frame;
    - ``cp`` (n,): pressure coefficient :math:`(p - p_\infty)/(\tfrac12\rho V_\infty^2)`,
      Karman-Tsien corrected at the sample's Mach number;
    - ``implicit_distance`` (n,): signed Euclidean distance to the wall polygon in chords,
      **positive in the fluid**, zero on the wall, negative inside the body.

    Scalars ``cl`` (pressure-integrated, compressibility corrected), ``cd`` (viscous,
    Squire-Young from the integral boundary layer) and ``cm`` (quarter chord, nose-up positive)
    come from :func:`surrogates.solvers.panel.solve_airfoils`; both lift and drag are in the wind
    frame (perpendicular / parallel to the free stream).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import meshio
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from meshes.airfoil import naca4, segment_distance, signed_distance
from surrogates.data.common import open_netcdf, provenance_attrs, write_netcdf
from surrogates.data.mesh_dataset import LazyMeshes, MeshDataset

__all__ = ["AirfoilDataConfig", "generate_airfoil_dataset", "open_airfoil_dataset"]

INDEX_FILE = "index.nc"
MESH_PATTERN = "sample_{:05d}.vtu"


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


@dataclass
class AirfoilDataConfig:
    """Configuration of :func:`generate_airfoil_dataset` (all fields have defaults).

    Attributes
    ----------
    family : {"naca4", "cst"}
        Shape family. ``naca4``: camber uniform in ``camber_range`` (percent chord), position
        of maximum camber uniform in ``position_range`` (tenths of chord), thickness uniform in
        ``thickness_range`` (percent chord): continuous "digits", e.g. (2, 4, 12) = NACA 2412.
        ``cst``: :func:`meshes.cst.random_cst` of order ``cst_order`` with its default ranges.
    n_shapes : int
        Number of shapes.
    conditions_per_shape : int
        Angles of attack per shape, drawn uniformly in ``alpha_range`` (degrees), unless
        ``alpha_values`` is given: then every shape is run at each listed angle.
    mach_range : (float, float)
        One free-stream Mach number per shape, uniform in this range (within [0, 0.7]).
    reynolds_range : (float, float)
        One chord Reynolds number per shape, log-uniform in this range.
    x_transition : float, optional
        Boundary-layer trip (chord fraction, see
        :func:`surrogates.solvers.panel.solve_airfoils`); 0 = fully turbulent from the
        stagnation point, like RANS data with a turbulence model and no transition (AirfRANS),
        which also makes the drag a smooth function of shape and conditions. None (default):
        free transition by Michel's criterion, whose jumps of the transition point make the
        drag piecewise smooth.
    n_panels : int
        Panels per shape (even; the wall polygon has ``n_panels + 1`` nodes).
    closed_te : bool
        NACA sections with a sharp trailing edge (the closed-TE polynomial).
    cst_te_range : (float, float)
        CST trailing-edge gap (chords), uniform in this range. The morphers of
        :mod:`meshes.morph` need gaps of similar size across a family (a support with a 2e-3
        chord base folds its base cells onto a 3e-4 one): a constant gap such as
        (0.0025, 0.0025) morphs throughout. Sharp CST trailing edges (0, 0) often carry a
        panel-method suction spike on their last panel.
    farfield_radius, growth, max_size : float
        Mesh settings (chords) for :func:`meshes.airfoil_mesh.airfoil_domain_mesh`; the far
        field is a circle about mid-chord (0.5, 0). Defaults give about 4 000 nodes.
    max_redraws : int
        Supercritical flow (the Karman-Tsien correction invalid) or a non-finite drag: the
        shape's Mach number and Reynolds number are redrawn up to this many times; samples still
        failing are dropped (counted in ``index.attrs["n_dropped"]``).
    seed : int
        Seed of every random draw (same seed, same dataset).
    """

    family: str = "naca4"
    n_shapes: int = 8
    conditions_per_shape: int = 4
    alpha_range: tuple[float, float] = (-4.0, 10.0)
    alpha_values: list[float] | None = None
    mach_range: tuple[float, float] = (0.0, 0.5)
    reynolds_range: tuple[float, float] = (1e6, 6e6)
    x_transition: float | None = None
    camber_range: tuple[float, float] = (0.0, 6.0)
    position_range: tuple[float, float] = (2.0, 6.0)
    thickness_range: tuple[float, float] = (8.0, 20.0)
    cst_order: int = 6
    cst_te_range: tuple[float, float] = (0.0, 0.005)
    n_panels: int = 160
    closed_te: bool = True
    farfield_radius: float = 20.0
    growth: float = 0.3
    max_size: float | None = None
    max_redraws: int = 10
    seed: int = 0

    def __post_init__(self):
        def pair(name, lo_min=-math.inf, hi_max=math.inf):
            v = tuple(float(x) for x in getattr(self, name))
            if len(v) != 2 or not (lo_min <= v[0] <= v[1] <= hi_max):
                raise ValueError(f"{name} must be (lo, hi) with {lo_min} <= lo <= hi <= {hi_max},"
                                 f" got {getattr(self, name)}")
            setattr(self, name, v)

        if self.family not in ("naca4", "cst"):
            raise ValueError(f"family must be 'naca4' or 'cst', got {self.family!r}")
        for name in ("n_shapes", "conditions_per_shape", "n_panels", "cst_order"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_panels % 2 or self.n_panels < 8:
            raise ValueError(f"n_panels must be even and >= 8, got {self.n_panels}")
        pair("alpha_range", -30.0, 30.0)
        pair("mach_range", 0.0, 0.7)
        pair("reynolds_range", 1e4, 1e9)
        pair("camber_range", 0.0, 9.5)
        pair("position_range", 0.5, 9.5)
        pair("thickness_range", 1.0, 40.0)
        pair("cst_te_range", 0.0, 0.05)
        if self.alpha_values is not None:
            self.alpha_values = [float(a) for a in self.alpha_values]
            if not self.alpha_values or not all(abs(a) <= 30 for a in self.alpha_values):
                raise ValueError(f"alpha_values must be a non-empty list of finite angles in "
                                 f"[-30, 30] degrees, got {self.alpha_values}")
        if not self.farfield_radius > 2.0:
            raise ValueError(f"farfield_radius must exceed 2 chords, got {self.farfield_radius}")
        if not self.growth > 0:
            raise ValueError(f"growth must be > 0, got {self.growth}")
        if self.x_transition is not None and not 0.0 <= float(self.x_transition) <= 1.0:
            raise ValueError(f"x_transition must be a chord fraction in [0, 1] or None, got "
                             f"{self.x_transition}")

    @property
    def n_alphas(self) -> int:
        """Samples per shape."""
        return len(self.alpha_values) if self.alpha_values else int(self.conditions_per_shape)


def _draw_shapes(config: AirfoilDataConfig, rng: np.random.Generator):
    """Shapes and their parameters (name -> (n_shapes, ...) array)."""
    n_pts = config.n_panels // 2 + 1
    if config.family == "naca4":
        m = rng.uniform(*config.camber_range, config.n_shapes)
        p = rng.uniform(*config.position_range, config.n_shapes)
        t = rng.uniform(*config.thickness_range, config.n_shapes)
        shapes = [naca4(*v, n_pts, closed_te=config.closed_te)
                  for v in zip(m, p, t, strict=True)]
        return shapes, {"naca_camber": m, "naca_position": p, "naca_thickness": t}
    from meshes.cst import random_cst

    csts = random_cst(rng, config.n_shapes, order=config.cst_order,
                      te_range=config.cst_te_range)
    shapes = [c.to_shape(n_pts) for c in csts]
    return shapes, {"cst_upper": np.stack([c.upper for c in csts]),
                    "cst_lower": np.stack([c.lower for c in csts]),
                    "cst_te": np.array([c.te_thickness for c in csts])}


def _wall_fields(sol, b: int, a: int, wall_points: np.ndarray):
    """Velocity (P, 2) and cp (P,) on the wall from the surface solution.

    Node values are averages of the two adjacent panel-midpoint values (velocity vectors
    :math:`V_{t} \\mathbf t`, and cp); between nodes they are interpolated linearly along the
    panel; a blunt trailing-edge base interpolates between the first and last nodes.
    """
    nodes = sol.nodes[b]
    n = nodes.shape[0] - 1
    seg = np.diff(nodes, axis=0)
    tang = seg / np.linalg.norm(seg, axis=1, keepdims=True)
    vmid = sol.vt[b, a][:, None] * tang
    cmid = sol.cp[b, a]
    vnode = np.empty((n + 1, 2))
    cnode = np.empty(n + 1)
    vnode[1:n] = 0.5 * (vmid[:-1] + vmid[1:])
    cnode[1:n] = 0.5 * (cmid[:-1] + cmid[1:])
    sharp = np.allclose(nodes[0], nodes[-1])
    if sharp:
        vnode[0] = vnode[n] = 0.5 * (vmid[0] + vmid[-1])
        cnode[0] = cnode[n] = 0.5 * (cmid[0] + cmid[-1])
    else:
        vnode[0], vnode[n], cnode[0], cnode[n] = vmid[0], vmid[-1], cmid[0], cmid[-1]
    start, end = nodes[:-1], nodes[1:]
    i0, i1 = np.arange(n), np.arange(1, n + 1)
    if not sharp:  # the open base, last node -> first node
        start, end = np.vstack([start, nodes[-1:]]), np.vstack([end, nodes[:1]])
        i0, i1 = np.append(i0, n), np.append(i1, 0)
    _, k, t = segment_distance(wall_points, start, end)
    v = (1 - t)[:, None] * vnode[i0[k]] + t[:, None] * vnode[i1[k]]
    c = (1 - t) * cnode[i0[k]] + t * cnode[i1[k]]
    return v, c


def _pad(points: np.ndarray, bucket: int = 2048) -> np.ndarray:
    """Pad to a multiple of ``bucket`` rows (far away), so the field kernel compiles rarely."""
    n = -(-len(points) // bucket) * bucket
    pad = np.full((n - len(points), 2), 1e3)
    return np.vstack([points, pad])


def _solve_shape(shape, config, rng, alphas):
    """Solve one shape, redrawing (Mach, Re) on supercritical flow; returns (sol, ok mask)."""
    from surrogates.solvers.panel import solve_airfoils

    lo, hi = np.log(config.reynolds_range)
    for attempt in range(config.max_redraws + 1):
        mach = float(rng.uniform(*config.mach_range))
        re = float(np.exp(rng.uniform(lo, hi)))
        sol = solve_airfoils(shape.coords[None], alphas, mach=mach, reynolds=re,
                             strict_mach=False, x_transition=config.x_transition)
        ok = ~sol.supercritical[0] & np.isfinite(sol.cd[0])
        if ok.all() or attempt == config.max_redraws:
            return sol, ok
    raise AssertionError("unreachable")  # pragma: no cover


def _refuse_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; refusing to overwrite it "
                                  "(pass overwrite=True, or --overwrite on the command line)")
        # replace only our files: the index first, so the folder reads as incomplete meanwhile
        index = out / INDEX_FILE
        if index.exists():
            index.unlink()
        for f in out.glob("sample_*.vtu"):
            f.unlink()
    out.mkdir(parents=True, exist_ok=True)


def generate_airfoil_dataset(config: AirfoilDataConfig, out_dir, *, overwrite: bool = False,
                             progress: bool | None = None) -> Path:
    r"""Generate a mesh dataset of potential flows around random airfoils.

    For each shape (drawn as in :class:`AirfoilDataConfig`), one Mach number and Reynolds number
    are drawn and all its angles of attack are solved in one call of
    :func:`surrogates.solvers.panel.solve_airfoils` (``n_panels`` panels, boundary layer on, so
    ``cd`` is the viscous Squire-Young drag). The flow domain is meshed once per shape in the
    body frame (:func:`meshes.airfoil_mesh.airfoil_domain_mesh`) and every angle of attack
    becomes one sample on that mesh: :func:`surrogates.solvers.panel.field_velocity` gives
    ``velocity`` and ``cp`` at the nodes off the wall; wall nodes (where the field kernel is
    singular) get the surface solution interpolated from the panel midpoints, tangent to the
    wall; ``implicit_distance`` is the signed distance to the wall polygon (positive in the
    fluid). See the module docstring for frames and units.

    Supercritical cases (lowest corrected :math:`C_p` below :math:`C_p^*`): the shape's Mach
    and Reynolds numbers are redrawn up to ``max_redraws`` times; still-failing samples are
    dropped and counted in ``attrs["n_dropped"]`` (samples are renumbered contiguously).

    Parameters
    ----------
    config : AirfoilDataConfig
    out_dir : path-like
        Folder to create (or an empty one).
    overwrite : bool
        Allow a non-empty folder: its ``index.nc`` and ``sample_*.vtu`` are deleted first;
        other files are left alone.
    progress : bool, optional
        tqdm bar over shapes; default: only when stderr is a terminal.

    Returns
    -------
    pathlib.Path
        The folder, containing ``sample_00000.vtu``... and ``index.nc`` (written last).

    Raises
    ------
    FileExistsError
        If ``out_dir`` is a non-empty folder and ``overwrite`` is False.
    ValueError
        If no sample survives, or a mesh cannot be built.
    """
    import sys

    from meshes.airfoil_mesh import airfoil_domain_mesh, write_mesh
    from surrogates.solvers.panel import field_velocity

    out = Path(out_dir)
    _refuse_folder(out, overwrite)
    rng = np.random.default_rng(config.seed)
    shapes, params = _draw_shapes(config, rng)
    show = sys.stderr.isatty() if progress is None else progress
    rows: dict[str, list] = {k: [] for k in ("alpha", "mach", "reynolds", "cl", "cd", "cm",
                                             "mesh_file", "shape_id", "n_nodes")}
    n_dropped = 0
    for s, shape in enumerate(tqdm(shapes, desc="airfoil shapes", disable=not show)):
        if config.alpha_values:
            alphas = np.asarray(config.alpha_values, dtype=np.float64)
        else:
            alphas = rng.uniform(*config.alpha_range, config.conditions_per_shape)
        sol, ok = _solve_shape(shape, config, rng, alphas)
        n_dropped += int((~ok).sum())
        if not ok.any():
            continue
        mesh = airfoil_domain_mesh(shape, farfield_radius=config.farfield_radius,
                                   growth=config.growth, max_size=config.max_size)
        pts = np.asarray(mesh.points[:, :2], dtype=np.float64)
        wall = np.unique(mesh.cells[1].data)
        fv = field_velocity(sol, _pad(pts))
        dist = signed_distance(pts, shape.polygon)
        dist[wall] = 0.0
        for a in np.flatnonzero(ok):
            vel = np.stack([fv["u"][0, a, :len(pts)], fv["v"][0, a, :len(pts)]], axis=1)
            cp = fv["cp"][0, a, :len(pts)].copy()
            vw, cw = _wall_fields(sol, 0, a, pts[wall])
            vel[wall], cp[wall] = vw, cw
            if not (np.all(np.isfinite(vel)) and np.all(np.isfinite(cp))):
                raise ValueError(f"non-finite field for shape {s}, alpha {alphas[a]:.3f}: a mesh "
                                 "node off the wall lies inside the body polygon")
            name = MESH_PATTERN.format(len(rows["alpha"]))
            sample = meshio.Mesh(pts, mesh.cells, cell_data=mesh.cell_data,
                                 point_data={"velocity": vel, "cp": cp,
                                             "implicit_distance": dist})
            write_mesh(sample, out / name, overwrite=overwrite)
            for key, value in (("alpha", alphas[a]), ("mach", sol.mach),
                               ("reynolds", sol.reynolds), ("cl", sol.cl_pressure[0, a]),
                               ("cd", sol.cd[0, a]), ("cm", sol.cm_quarter[0, a]),
                               ("mesh_file", name), ("shape_id", s), ("n_nodes", len(pts))):
                rows[key].append(value)
    if not rows["alpha"]:
        raise ValueError("every sample was supercritical: lower mach_range or alpha_range")
    index = _index(rows, params, config, n_dropped)
    write_netcdf(index, out / INDEX_FILE, overwrite=True)
    return out


_UNITS = {
    "alpha": ("degree", "angle of attack (free stream from the x axis, counter-clockwise)"),
    "mach": ("1", "free-stream Mach number"),
    "reynolds": ("1", "chord Reynolds number V c / nu"),
    "cl": ("1", "lift coefficient (pressure integral, Karman-Tsien)"),
    "cd": ("1", "drag coefficient (integral boundary layer, Squire-Young)"),
    "cm": ("1", "quarter-chord pitching-moment coefficient, nose-up positive"),
    "mesh_file": ("1", "mesh file of the sample, relative to the folder"),
    "shape_id": ("1", "index of the shape the sample belongs to"),
    "n_nodes": ("1", "mesh nodes"),
    "naca_camber": ("percent", "NACA 4-digit maximum camber (percent chord)"),
    "naca_position": ("0.1", "NACA 4-digit position of maximum camber (tenths of chord)"),
    "naca_thickness": ("percent", "NACA 4-digit maximum thickness (percent chord)"),
    "cst_upper": ("1", "CST Bernstein coefficients of the upper surface"),
    "cst_lower": ("1", "CST Bernstein coefficients of the lower surface"),
    "cst_te": ("1", "CST trailing-edge thickness (chords)"),
}


def _index(rows, params, config, n_dropped) -> xr.Dataset:
    sid = np.asarray(rows["shape_id"], dtype=np.int64)
    data = {}
    for key, values in rows.items():
        arr = np.asarray(values, dtype=str if key == "mesh_file" else None)
        data[key] = xr.Variable(("sample",), arr)
    for key, values in params.items():
        v = np.asarray(values)[sid]
        dims = ("sample",) if v.ndim == 1 else ("sample", "cst_coefficient")
        data[key] = xr.Variable(dims, v)
    for key, var in data.items():
        var.attrs.update(units=_UNITS[key][0], long_name=_UNITS[key][1])
    attrs = provenance_attrs("panel", asdict(config), "airfoil potential flows on meshes")
    attrs.update(inputs=json.dumps(["alpha", "mach", "reynolds"]),
                 outputs=json.dumps(["cl", "cd", "cm"]),
                 point_fields=json.dumps(["velocity", "cp", "implicit_distance"]),
                 family=config.family, n_dropped=int(n_dropped),
                 frame="body frame, chord 1 along x; free stream (cos alpha, sin alpha)",
                 velocity_units="V_inf (incompressible potential flow)",
                 implicit_distance_sign="positive in the fluid, negative inside the body")
    return xr.Dataset(data, attrs=attrs)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _read_sample(path) -> meshio.Mesh:
    from meshes.airfoil_mesh import read_mesh

    return read_mesh(path)


def _inside(folder: Path, name: str) -> Path:
    """``folder / name``, refusing a name that leads outside ``folder`` (absolute, ``..``, or
    a symbolic link whose target lies elsewhere)."""
    root = folder.resolve()
    path = folder / name
    plain = (name and not Path(name).is_absolute() and ".." not in Path(name).parts
             and "\\" not in name)
    if not plain or not path.resolve().is_relative_to(root):
        raise ValueError(f"{folder / INDEX_FILE} names the mesh {name!r}, which lies outside the "
                         "dataset folder; an index may only name files inside its folder "
                         "(the dataset is damaged or hostile: regenerate it)")
    return path


def open_airfoil_dataset(folder, *, lazy: bool = True) -> MeshDataset:
    """Open a folder written by :func:`generate_airfoil_dataset`.

    Parameters
    ----------
    folder : path-like
    lazy : bool
        Read each ``.vtu`` on access (:class:`LazyMeshes`) instead of all at once.

    Raises
    ------
    FileNotFoundError
        If the folder or its ``index.nc`` is missing (an interrupted generation), or mesh files
        named by the index are missing (all listed, up to 10).
    ValueError
        If the index lacks a required variable, or names a mesh outside the folder (an
        absolute path, ``..``, or a symbolic link that leads out): an index never makes the
        loader read files elsewhere.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no dataset folder at {folder}")
    if not (folder / INDEX_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no {INDEX_FILE}: not a mesh dataset, or its "
                                "generation did not finish")
    index = open_netcdf(folder / INDEX_FILE)
    if "mesh_file" not in index.variables or "sample" not in index.dims:
        raise ValueError(f"{folder / INDEX_FILE} has no 'mesh_file' variable over 'sample'")
    paths = [_inside(folder, str(f)) for f in index["mesh_file"].values]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} mesh files listed in {folder / INDEX_FILE} are "
                                f"missing: {', '.join(missing[:10])}")
    meshes = LazyMeshes(paths, _read_sample)
    if not lazy:
        meshes = [meshes[i] for i in range(len(meshes))]
    return MeshDataset(meshes, index)

