r"""AirfRANS: a reader into the :class:`~surrogates.data.mesh_dataset.MeshDataset` form, forces,
metrics.

Layout (Bonnet et al., 2022). ``root/manifest.json`` maps the split keys ``full_train``,
``full_test``, ``scarce_train``, ``reynolds_train``, ``reynolds_test``, ``aoa_train``,
``aoa_test`` to lists of simulation names; the scarce task uses ``full_test`` as its test set.
Each simulation ``NAME = airFoil2D_SST_{Uinf}_{AoA}_{NACA params}`` is a folder
``root/NAME/`` with

- ``NAME_internal.vtu``: the fluid mesh, point data ``U`` (m/s, (n, 3), z component 0), ``p``
  (kinematic pressure :math:`p/\rho`, m^2/s^2), ``nut`` (m^2/s), ``implicit_distance`` (m);
- ``NAME_aerofoil.vtp``: the airfoil surface (VTK XML PolyData, line cells), point data
  ``U``, ``p``, ``nut``, ``Normals``;
- ``NAME_freestream.vtp``: the far-field boundary (not read here).

Name: ``Uinf`` in m/s and ``AoA`` in degrees, then 3 NACA 4-digit parameters (camber in percent
chord, position of maximum camber in tenths of chord, thickness in percent chord) or 4 NACA
5-digit parameters. The chord is :data:`CHORD` = 1 m and the kinematic viscosity :data:`NU` =
1.56e-5 m^2/s (AirfRANS's values), so :math:`Re = U_\infty c / \nu`.

Meshes and frames. The mesh is in the body frame (chord along x); the free stream is
:math:`U_\infty(\cos\alpha, \sin\alpha)`. In memory the points and ``U`` keep only x and y, and
quad cells are split into two triangles each (``triangulate=True``). ``implicit_distance`` is
passed on as stored in the files.

Surfaces (``.vtp``) are read with :func:`meshes.vtp.read_vtp` (meshio 5 cannot read them).
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import meshio
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from meshes.vtp import read_vtp
from surrogates.data.mesh_dataset import LazyMeshes, MeshDataset

__all__ = [
    "CHORD",
    "NU",
    "SPLIT_KEYS",
    "AirfransCase",
    "airfrans_scores",
    "mean_relative_error",
    "normalized_field_mse",
    "open_airfrans",
    "parse_name",
    "rank_average",
    "spearman_correlation",
    "surface_coefficients",
]

NU = 1.56e-5
"""Kinematic viscosity of AirfRANS's simulations, m^2/s."""
CHORD = 1.0
"""Chord of AirfRANS's airfoils, m."""
SPLIT_KEYS = ("full_train", "full_test", "scarce_train", "reynolds_train", "reynolds_test",
              "aoa_train", "aoa_test")
TASKS = {"full": ("full_train", "full_test"), "scarce": ("scarce_train", "full_test"),
         "reynolds": ("reynolds_train", "reynolds_test"), "aoa": ("aoa_train", "aoa_test")}

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NAME = re.compile(rf"^airFoil2D_SST_({_NUM})_({_NUM})((?:_{_NUM}){{3,4}})$")


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AirfransCase:
    """What a simulation name says: ``u_inf`` (m/s), ``alpha`` (degrees), ``naca`` parameters
    (3 for a 4-digit, 4 for a 5-digit section), ``digits`` (4 or 5) and the derived
    ``reynolds`` = u_inf * CHORD / NU."""

    name: str
    u_inf: float
    alpha: float
    naca: tuple[float, ...]

    @property
    def digits(self) -> int:
        return 4 if len(self.naca) == 3 else 5

    @property
    def reynolds(self) -> float:
        return self.u_inf * CHORD / NU


def parse_name(name: str) -> AirfransCase:
    """Parse ``airFoil2D_SST_{Uinf}_{AoA}_{p1}_{p2}_{p3}[_{p4}]``.

    Raises
    ------
    ValueError
        If the name does not follow this pattern.
    """
    m = _NAME.match(str(name))
    if m is None:
        raise ValueError(f"{name!r} is not an AirfRANS simulation name: expected "
                         "airFoil2D_SST_{Uinf}_{AoA}_ followed by 3 (NACA 4-digit) or 4 (NACA "
                         "5-digit) numbers")
    params = tuple(float(v) for v in m.group(3).strip("_").split("_"))
    return AirfransCase(str(name), float(m.group(1)), float(m.group(2)), params)


# ---------------------------------------------------------------------------------------------
# Forces
# ---------------------------------------------------------------------------------------------


def _surface_loop(surface: meshio.Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Surface points merged by position and ordered counter-clockwise as one closed loop.

    Returns the loop's indices into ``surface.points`` (M,) and its 2D coordinates (M, 2).
    """
    pts = np.asarray(surface.points, dtype=np.float64)[:, :2]
    lines = [b.data for b in surface.cells if b.type == "line"]
    if not lines:
        raise ValueError("the surface has no line cells: cannot order its points")
    seg = np.concatenate(lines)
    _, first, inv = np.unique(np.round(pts, 12), axis=0, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    seg = inv[seg]
    seg = seg[seg[:, 0] != seg[:, 1]]
    m = len(first)
    nbrs: list[list[int]] = [[] for _ in range(m)]
    for a, b in seg:
        nbrs[a].append(int(b))
        nbrs[b].append(int(a))
    degree = np.array([len(set(n)) for n in nbrs])
    if np.any(degree != 2):
        raise ValueError(f"the surface is not one closed curve: {int(np.sum(degree != 2))} of its "
                         f"{m} points do not have exactly two neighbours")
    loop, prev = [0], -1
    while True:
        cur = loop[-1]
        nxt = next(n for n in nbrs[cur] if n != prev)
        if nxt == 0:
            break
        prev = cur
        loop.append(nxt)
        if len(loop) > m:
            raise ValueError("the surface lines do not form a simple loop")
    if len(loop) != m:
        raise ValueError(f"the surface has several closed curves ({len(loop)} of {m} points in the"
                         " first); only a single airfoil is supported")
    idx = first[np.asarray(loop)]
    xy = pts[idx]
    area = 0.5 * np.sum(xy[:, 0] * np.roll(xy[:, 1], -1) - np.roll(xy[:, 0], -1) * xy[:, 1])
    if area < 0:
        idx, xy = idx[::-1], xy[::-1]
    return idx, xy


def surface_coefficients(surface: meshio.Mesh, u_inf: float, alpha: float, *,
                         internal: meshio.Mesh | None = None, nu: float = NU,
                         chord: float = CHORD) -> dict[str, float]:
    r"""Lift and drag coefficients from the surface pressure and wall shear.

    The surface points are ordered into a counter-clockwise loop (merging duplicates); segment
    :math:`k` from :math:`x_k` to :math:`x_{k+1}` has length :math:`\ell_k` and outward (into
    the fluid) normal :math:`\mathbf n_k = (\Delta y, -\Delta x)/\ell_k`. With the kinematic
    pressure :math:`p` (:math:`p/\rho`) averaged over each segment's ends, the force per unit
    span and density on the body is

    .. math::
        \mathbf F = \sum_k \Big(-\bar p_k\,\mathbf n_k + \bar{\boldsymbol\tau}_k\Big)\ell_k,
        \qquad \boldsymbol\tau = (\nu + \nu_t)\,\frac{\partial\mathbf U}{\partial n},

    and :math:`c_d = \mathbf F\cdot(\cos\alpha, \sin\alpha)/q`, :math:`c_l = \mathbf F\cdot
    (-\sin\alpha, \cos\alpha)/q`, :math:`q = \tfrac12 U_\infty^2 c` (wind frame). The wall shear
    is estimated at each surface point from the nearest internal node lying off the wall in the
    normal direction and, when the internal mesh has ``implicit_distance``, not on the wall
    (nonzero distance) (first-order one-sided difference: :math:`(\mathbf U_q - \mathbf U_w) /
    ((\mathbf x_q - \mathbf x_w)\cdot\mathbf n)`, :math:`\mathbf n` the mean normal of the two
    adjacent segments), with :math:`\nu_t` and :math:`\mathbf U_w` from the surface file (0
    where absent). Without ``internal`` only the pressure force is counted.

    Parameters
    ----------
    surface : meshio.Mesh
        Line cells around the airfoil, point data ``p`` (and optionally ``nut``, ``U``).
    u_inf : float
        Free-stream speed, m/s.
    alpha : float
        Angle of attack, degrees (free stream from the x axis, counter-clockwise).
    internal : meshio.Mesh, optional
        The fluid mesh with point data ``U``, for the viscous force.
    nu, chord : float
        Kinematic viscosity (m^2/s) and chord (m).

    Returns
    -------
    dict
        ``cl``, ``cd`` (total), ``cl_pressure``, ``cd_pressure``, ``cl_viscous``, ``cd_viscous``.

    Raises
    ------
    ValueError
        If the surface lacks ``p`` or is not a single closed curve.
    """
    if "p" not in surface.point_data:
        raise ValueError(f"the surface has no pressure field 'p'; it has "
                         f"{sorted(surface.point_data)}")
    idx, xy = _surface_loop(surface)
    p = np.asarray(surface.point_data["p"], dtype=np.float64).reshape(len(surface.points), -1)
    p = p[idx, 0]
    d = np.roll(xy, -1, axis=0) - xy
    length = np.hypot(d[:, 0], d[:, 1])
    normal = np.stack([d[:, 1], -d[:, 0]], axis=1) / length[:, None]
    f_p = -np.sum((0.5 * (p + np.roll(p, -1)))[:, None] * normal * length[:, None], axis=0)
    f_v = np.zeros(2)
    if internal is not None:
        from scipy.spatial import cKDTree

        if "U" not in internal.point_data:
            raise ValueError("the internal mesh has no velocity field 'U'")
        vn = normal + np.roll(normal, 1, axis=0)  # at point k: segments k - 1 and k
        vn /= np.linalg.norm(vn, axis=1, keepdims=True)
        ipts = np.asarray(internal.points, dtype=np.float64)[:, :2]
        iu = np.asarray(internal.point_data["U"], dtype=np.float64)[:, :2]
        k = min(16, len(ipts))
        dist, near = cKDTree(ipts).query(xy, k=k)
        near = near.reshape(len(xy), k)
        rel = ipts[near] - xy[:, None, :]
        dn = np.einsum("mkc,mc->mk", rel, vn)
        ok = dn > np.maximum(0.3 * dist.reshape(len(xy), k), 1e-12)
        if "implicit_distance" in internal.point_data:  # AirfRANS's wall nodes carry exactly 0
            sdf = np.asarray(internal.point_data["implicit_distance"], dtype=np.float64)
            ok &= sdf.reshape(-1)[near] != 0.0
        if not np.all(ok.any(axis=1)):
            raise ValueError("no internal node off the wall near some surface points: the "
                             "internal mesh does not match the surface")
        j = np.argmax(ok, axis=1)  # nearest qualifying node
        rows = np.arange(len(xy))
        uw = np.zeros((len(xy), 2))
        if "U" in surface.point_data:
            uw = np.asarray(surface.point_data["U"], dtype=np.float64)[idx, :2]
        nut = np.zeros(len(xy))
        if "nut" in surface.point_data:
            nut = np.asarray(surface.point_data["nut"], dtype=np.float64).reshape(-1)[idx]
        tau = (nu + nut)[:, None] * (iu[near[rows, j]] - uw) / dn[rows, j][:, None]
        f_v = np.sum(0.5 * (tau + np.roll(tau, -1, axis=0)) * length[:, None], axis=0)
    a = math.radians(alpha)
    drag_dir, lift_dir = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a),
                                                                          math.cos(a)])
    q = 0.5 * u_inf**2 * chord
    out = {"cl_pressure": f_p @ lift_dir / q, "cd_pressure": f_p @ drag_dir / q,
           "cl_viscous": f_v @ lift_dir / q, "cd_viscous": f_v @ drag_dir / q}
    out["cl"] = out["cl_pressure"] + out["cl_viscous"]
    out["cd"] = out["cd_pressure"] + out["cd_viscous"]
    return {k: float(v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------


def _read_internal(path, triangulate: bool = True) -> meshio.Mesh:
    mesh = meshio.read(path)
    cells = []
    for b in mesh.cells:
        if b.type == "triangle":
            cells.append(("triangle", b.data))
        elif b.type == "quad":
            if triangulate:
                cells.append(("triangle", np.concatenate([b.data[:, [0, 1, 2]],
                                                          b.data[:, [0, 2, 3]]])))
            else:
                cells.append(("quad", b.data))
        elif b.type not in ("vertex", "line"):
            raise ValueError(f"{path}: {b.type} cells are not supported (only triangle and "
                             "quad fluid cells; vertex and line cells are dropped)")
    data = {}
    for name, v in mesh.point_data.items():
        v = np.asarray(v)
        data[name] = v[:, :2] if (name == "U" and v.ndim == 2) else v
    return meshio.Mesh(np.asarray(mesh.points)[:, :2], cells, point_data=data)


def _files(root: Path, name: str) -> tuple[Path, Path]:
    folder = root / name
    return folder / f"{name}_internal.vtu", folder / f"{name}_aerofoil.vtp"


def _read_manifest(root: Path) -> dict[str, list[str]]:
    path = root / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {root}: not an AirfRANS folder")
    manifest = json.loads(path.read_text())
    missing = [k for k in SPLIT_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{path} lacks the split keys {missing}")
    return manifest


def open_airfrans(root, task: str = "full", split: str = "train", *, names=None,
                  lazy: bool = True, coefficients: bool = True, viscous: bool = True,
                  triangulate: bool = True, progress: bool | None = None) -> MeshDataset:
    """Open (part of) AirfRANS as a :class:`MeshDataset`.

    Parameters
    ----------
    root : path-like
        The folder holding ``manifest.json`` and one folder per simulation.
    task : {"full", "scarce", "reynolds", "aoa"}
        Which split pair of the manifest to use (scarce: ``scarce_train`` / ``full_test``).
    split : {"train", "test"}
    names : list of str, optional
        Explicit simulation names instead of ``task`` / ``split``.
    lazy : bool
        Read each internal mesh on access.
    coefficients : bool
        Compute ``cl`` and ``cd`` with :func:`surface_coefficients` now (reads every surface
        and, with ``viscous``, every internal mesh); otherwise they are NaN.
    viscous : bool
        Include the wall shear in the forces.
    triangulate : bool
        Split quads into two triangles.
    progress : bool, optional
        tqdm bar while computing coefficients (default: when stderr is a terminal).

    Returns
    -------
    MeshDataset
        Meshes with points (n, 2) in m and fields ``U`` (n, 2) m/s, ``p`` m^2/s^2, ``nut``
        m^2/s, ``implicit_distance`` m. Index: ``name``, ``mesh_file`` (relative to ``root``),
        inputs ``u_inf`` (m/s) and ``alpha`` (degrees), ``reynolds``, ``naca_digits``,
        ``naca_params`` (sample, naca_param; NaN-padded for 4-digit sections), outputs ``cl``
        and ``cd`` (plus pressure and viscous parts), and boolean ``in_<split key>`` for every
        manifest key.

    Raises
    ------
    FileNotFoundError
        For a missing manifest or simulation files (listed).
    ValueError
        For an unknown task or split, a malformed name or an unreadable file.
    """
    root = Path(root)
    manifest = _read_manifest(root)
    if names is None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        names = manifest[TASKS[task][0 if split == "train" else 1]]
    names = [str(n) for n in names]
    cases = [parse_name(n) for n in names]
    missing = [str(p) for n in names for p in _files(root, n) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} AirfRANS files are missing: "
                                f"{', '.join(missing[:10])}")
    n = len(names)
    coef = {k: np.full(n, np.nan) for k in ("cl", "cd", "cl_pressure", "cd_pressure",
                                            "cl_viscous", "cd_viscous")}
    if coefficients:
        show = sys.stderr.isatty() if progress is None else progress
        for i, case in enumerate(tqdm(cases, desc="AirfRANS forces", disable=not show)):
            internal_path, surface_path = _files(root, case.name)
            internal = _read_internal(internal_path, triangulate) if viscous else None
            values = surface_coefficients(read_vtp(surface_path), case.u_inf, case.alpha,
                                          internal=internal)
            for k in coef:
                coef[k][i] = values[k]
    naca = np.full((n, 4), np.nan)
    for i, c in enumerate(cases):
        naca[i, :len(c.naca)] = c.naca
    units = {"u_inf": "m s-1", "alpha": "degree", "reynolds": "1", "naca_digits": "1",
             "naca_params": "1", "name": "1", "mesh_file": "1"}
    data = {
        "name": ("sample", np.array(names, dtype=str)),
        "mesh_file": ("sample", np.array([f"{m}/{m}_internal.vtu" for m in names], dtype=str)),
        "u_inf": ("sample", np.array([c.u_inf for c in cases])),
        "alpha": ("sample", np.array([c.alpha for c in cases])),
        "reynolds": ("sample", np.array([c.reynolds for c in cases])),
        "naca_digits": ("sample", np.array([c.digits for c in cases])),
        "naca_params": (("sample", "naca_param"), naca),
    }
    for k, v in coef.items():
        data[k] = ("sample", v)
        units[k] = "1"
    for key in SPLIT_KEYS:
        member = set(manifest[key])
        data[f"in_{key}"] = ("sample", np.array([m in member for m in names]))
        units[f"in_{key}"] = "1"
    index = xr.Dataset(data)
    for k in index.data_vars:
        index[k].attrs["units"] = units[k]
    index.attrs.update(
        source="AirfRANS (Bonnet et al., 2022)", task=str(task), split=str(split),
        inputs=json.dumps(["u_inf", "alpha"]), outputs=json.dumps(["cl", "cd"]),
        point_fields=json.dumps(["U", "p", "nut", "implicit_distance"]),
        nu=NU, chord=CHORD, viscous_forces=int(viscous),
        frame="body frame, chord along x; free stream u_inf (cos alpha, sin alpha)")
    paths = [_files(root, m)[0] for m in names]
    meshes = LazyMeshes(paths, lambda p: _read_internal(p, triangulate))
    if not lazy:
        meshes = [meshes[i] for i in range(n)]
    return MeshDataset(meshes, index)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def mean_relative_error(pred, true) -> float:
    r"""Mean relative error :math:`\frac1n\sum_i |\hat y_i - y_i| / |y_i|`.

    Raises
    ------
    ValueError
        For different shapes, an empty input, or a zero true value.
    """
    pred, true = np.asarray(pred, float).reshape(-1), np.asarray(true, float).reshape(-1)
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"pred and true must be non-empty with one shape, got {pred.shape} and "
                         f"{true.shape}")
    if np.any(true == 0):
        raise ValueError("a true value is 0: the relative error is undefined")
    return float(np.mean(np.abs(pred - true) / np.abs(true)))


def rank_average(x) -> np.ndarray:
    """Ranks 1..n of ``x``, ties given the average of the ranks they span."""
    x = np.asarray(x, float).reshape(-1)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def spearman_correlation(pred, true) -> float:
    r"""Spearman's rank correlation: the Pearson correlation of the average ranks,

    .. math:: \rho = \frac{\sum_i (r_i - \bar r)(s_i - \bar s)}
              {\sqrt{\sum_i (r_i - \bar r)^2 \sum_i (s_i - \bar s)^2}}.

    Raises
    ------
    ValueError
        For different shapes, fewer than 2 values, or a constant input.
    """
    r, s = rank_average(pred), rank_average(true)
    if r.shape != s.shape or r.size < 2:
        raise ValueError(f"need two equal-length inputs of at least 2 values, got {r.size} and "
                         f"{s.size}")
    r, s = r - r.mean(), s - s.mean()
    den = math.sqrt(float(r @ r) * float(s @ s))
    if den == 0:
        raise ValueError("an input is constant: the rank correlation is undefined")
    return float(r @ s / den)


def normalized_field_mse(pred, true, *, std=None) -> np.ndarray:
    r"""Normalised mean squared error of a field, per component.

    .. math:: \mathrm{MSE}_c = \frac{1}{\sum_i n_i}\sum_i\sum_{j=1}^{n_i}
              \Big(\frac{\hat u_{ijc} - u_{ijc}}{\sigma_c}\Big)^2,

    over samples :math:`i` and their nodes :math:`j`; :math:`\sigma_c` is ``std`` if given (e.g.
    the training set's, as AirfRANS normalises) or else the standard deviation of the true
    component over all nodes of all samples.

    Parameters
    ----------
    pred, true : list of arrays (n_i,) or (n_i, C)
        One per sample.
    std : float or array (C,), optional

    Returns
    -------
    numpy.ndarray
        Shape (C,) (C = 1 for a scalar field).
    """
    if len(pred) != len(true) or len(true) == 0:
        raise ValueError(f"{len(pred)} predicted and {len(true)} true samples")
    ps, ts = [], []
    for i, (a, b) in enumerate(zip(pred, true, strict=True)):
        a, b = np.asarray(a, float), np.asarray(b, float)
        if a.shape != b.shape:
            raise ValueError(f"sample {i}: prediction {a.shape} and truth {b.shape} differ")
        ps.append(a.reshape(len(a), -1))
        ts.append(b.reshape(len(b), -1))
    p, t = np.concatenate(ps), np.concatenate(ts)
    sigma = t.std(axis=0) if std is None else np.broadcast_to(np.asarray(std, float),
                                                               (t.shape[1],))
    if np.any(sigma <= 0):
        raise ValueError(f"normalising standard deviation must be > 0, got {sigma}")
    return np.mean(((p - t) / sigma) ** 2, axis=0)


def airfrans_scores(cl_pred, cl_true, cd_pred, cd_true, fields_pred=None, fields_true=None, *,
                    field_std=None) -> dict[str, float]:
    """AirfRANS's metrics: relative errors and Spearman correlations of cl and cd, and the
    normalised field MSEs.

    ``fields_pred`` / ``fields_true`` map a field name to per-sample arrays; vector fields
    give one entry per component (``U_x``, ``U_y``). ``field_std`` maps names to
    :func:`normalized_field_mse`'s ``std``.
    """
    out = {"cl_mre": mean_relative_error(cl_pred, cl_true),
           "cd_mre": mean_relative_error(cd_pred, cd_true),
           "cl_spearman": spearman_correlation(cl_pred, cl_true),
           "cd_spearman": spearman_correlation(cd_pred, cd_true)}
    for name, true in (fields_true or {}).items():
        mse = normalized_field_mse((fields_pred or {})[name], true,
                                   std=(field_std or {}).get(name))
        if len(mse) == 1:
            out[f"{name}_mse"] = float(mse[0])
        else:
            for c, v in zip("xyz", mse, strict=False):
                out[f"{name}_{c}_mse"] = float(v)
    return out
