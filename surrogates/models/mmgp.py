r"""Mesh-morphing Gaussian-process regression (MMGP) for fields and scalars on varying meshes.

MMGP [1]_ learns a map from a geometry (a mesh) plus scalar inputs to scalar outputs and to point
fields on that mesh, with calibrated Gaussian uncertainty, when every sample lives on a different
mesh (different node counts and connectivity).

Pipeline of :meth:`MMGPRegressor.fit`
-------------------------------------
1. **Common support.** One mesh (by default the first training mesh) is the *support*. For every
   sample mesh :math:`\mathcal M_i` the morpher maps the support onto it,
   ``morpher.morph(support, mesh_i).points`` :math:`= Z_i \in \mathbb R^{n_s \times d}`: the support
   nodes placed in sample ``i``'s geometry. These morphed coordinates are the shape descriptor.
2. **Field transfer.** Each field :math:`u_i` (nodal values on :math:`\mathcal M_i`) is carried to
   the morphed support nodes with the P1 transfer matrix :math:`T_i` =
   ``transfer(mesh_i, Z_i)`` (:math:`n_s \times n_i`, rows sum to 1): :math:`\tilde u_i = T_i u_i`.
   All fields now share one node numbering.
3. **POD.** Snapshots (the flattened :math:`Z_i`, and each field's :math:`\tilde u_i`) are
   compressed by a centred PCA in the :math:`L^2(\Omega_s)` inner product of the support:
   with the lumped P1 mass :math:`w_j = \sum_{e \ni j} |e| / (\text{nodes of } e)` (triangles
   ``|e|/3``, tetrahedra ``|e|/4``, quadrilaterals and hexahedra split into simplices), snapshots
   are scaled column-wise by :math:`\sqrt{w_j}` before the SVD, so the modes are
   :math:`M`-orthonormal and mode energies are integrals over the support. With
   ``mass_weighted=False`` all weights are 1 (plain scikit-learn-like PCA). The lumped (diagonal)
   mass is used instead of the consistent one so that the square-root weighting is exact and cheap.
   The number of modes is the smallest that explains ``shape_variance`` (``field_variance``) of
   the weighted variance, unless given explicitly. Unlike the reference code [1]_, the POD is
   centred on the training mean.
4. **GPs.** Inputs: shape-mode coefficients and scalar inputs, each standardised with the training
   mean and standard deviation. Outputs: each scalar and each field-mode coefficient, standardised.
   **One independent GP per output** (every scalar and every field mode has its own anisotropic
   Matern-5/2 kernel and noise variance), fitted together as one GPyTorch batch with the
   restarts (:class:`surrogates.models.gp.BatchedExactGP`, exact Cholesky, float64 by default).

Offline/online morphing: a morpher may define ``morph_offline`` (used for the training meshes)
and ``set_reduced_basis(support, mean, modes)``; after the shape POD of step 3 (and after
:meth:`MMGPRegressor.load`) it receives that POD's mean and modes and morphs new meshes in their
span (:class:`meshes.morph_elasticity.ReducedElasticityMorpher`: seconds of elasticity solves
offline, milliseconds online). The GP inputs of the training samples then come from their own
online morphs too, so that training and new shapes are described the same way (the offline
morphs build the basis and carry the fields to the support).

Prediction and uncertainty
--------------------------
For a query mesh :math:`\mathcal M` the support is morphed onto it (coordinates :math:`Z`), its
shape coefficients and the scalar inputs go through the GPs, a field is decoded on the morphed
support, :math:`\tilde u = \bar u + \sum_k a_k \phi_k`, and interpolated back onto the query nodes
with :math:`B` = ``transfer(support mesh with points Z, query points)``. Decoding and transfer are
linear, so with the mode coefficients treated as **independent** Gaussians (they come from
independent GPs; their posterior cross-covariances are ignored, which is exact only if the modes'
GPs are independent a priori, the modelling assumption here) the nodal variance is, in closed form,

.. math::

    \operatorname{Var}[u(x_j)] = \sum_k \left(B \phi_k\right)_j^2 \operatorname{Var}[a_k]
        \;\; \left( + \sum_l B_{jl}^2 \, \varepsilon_l \right),

with :math:`\operatorname{Var}[a_k]` the GP predictive variance including its learned noise. The
second term (``truncation_nugget=True``, the default) is a *reconstruction nugget*: the part of the
error the mode GPs cannot see, namely POD truncation and the transfer to the support and back. On
every training sample the whole linear pipeline is applied to the true field,
:math:`r_i = u_i - B_i\,\mathrm{dec}(\mathrm{enc}(T_i u_i))`, and the squared nodal residuals are
carried to the support and averaged, :math:`\varepsilon = \frac1n \sum_i T_i r_i^2`; at a query it
is interpolated, :math:`(B\varepsilon)_j`, as an independent nodal variance. Being an in-sample
estimate (the POD was fitted on these snapshots) it slightly underestimates the truncation error of
new samples. No Monte Carlo is needed; :meth:`MMGPRegressor.sample_y` draws samples the same way
for checks.

References
----------
.. [1] F. Casenave, B. Staber and X. Roynard, "MMGP: a Mesh Morphing Gaussian Process-based
   machine learning method for regression of physical problems under non-parameterized
   geometrical variability", NeurIPS 2023.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import meshio
import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from meshes.morph import mesh_key
from surrogates.models.gp import BatchedExactGP

__all__ = ["MMGPRegressor", "WeightedPCA", "lumped_mass"]

_FORMAT_VERSION = 1


# ------------------------------------------------------------------------------------ geometry
def _measure_simplices(points: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """Length / area / volume of simplices given by node indices (any embedding dimension)."""
    p = points[simplices]  # (n_cells, k + 1, D)
    edges = p[:, 1:, :] - p[:, :1, :]  # (n_cells, k, D)
    k = edges.shape[1]
    gram = np.einsum("cid,cjd->cij", edges, edges)
    det = np.clip(np.linalg.det(gram), 0.0, None)
    factorial = [1.0, 1.0, 2.0, 6.0][k]
    return np.sqrt(det) / factorial


_SPLITS = {
    "line": np.array([[0, 1]]),
    "triangle": np.array([[0, 1, 2]]),
    "quad": np.array([[0, 1, 2], [0, 2, 3]]),
    "tetra": np.array([[0, 1, 2, 3]]),
    "hexahedron": np.array([[0, 1, 3, 4], [1, 2, 3, 6], [1, 4, 5, 6], [3, 4, 6, 7],
                            [1, 3, 4, 6]]),
}
_DIM = {"line": 1, "triangle": 2, "quad": 2, "tetra": 3, "hexahedron": 3}


def lumped_mass(mesh: meshio.Mesh) -> np.ndarray:
    r"""Row-sum lumped P1 mass of a mesh: :math:`w_j = \sum_{e \ni j} |e| / n_e`.

    Only the cells of the highest topological dimension present are used (a 2-D mesh's boundary
    lines are ignored). Quadrilaterals and hexahedra are split into simplices for their measure,
    which is exact for parallelograms and parallelepipeds. For P1 simplices this equals the row sums
    of the consistent mass matrix.

    Parameters
    ----------
    mesh : meshio.Mesh

    Returns
    -------
    ndarray, shape (n_points,)
        Non-negative nodal weights summing to the mesh's measure. Nodes in no cell get weight 0.

    Raises
    ------
    ValueError
        If the mesh has no line, triangle, quad, tetra or hexahedron cells.
    """
    points = np.asarray(mesh.points, dtype=float)
    blocks = [(c.type, np.asarray(c.data)) for c in mesh.cells if c.type in _SPLITS]
    if not blocks:
        types = sorted({c.type for c in mesh.cells})
        raise ValueError(f"lumped_mass supports line/triangle/quad/tetra/hexahedron cells; the "
                         f"mesh has {types}. Use mass_weighted=False for other cell types.")
    top = max(_DIM[t] for t, _ in blocks)
    w = np.zeros(len(points))
    for cell_type, cells in blocks:
        if _DIM[cell_type] != top:
            continue
        n_nodes = cells.shape[1]
        measure = np.zeros(len(cells))
        for split in _SPLITS[cell_type]:
            measure += _measure_simplices(points, cells[:, split])
        np.add.at(w, cells.ravel(), np.repeat(measure / n_nodes, n_nodes))
    return w


class WeightedPCA:
    r"""Centred PCA in a weighted inner product :math:`\langle x, y \rangle = \sum_j w_j x_j y_j`.

    Snapshots :math:`X` (``(n, p)``) are centred and scaled by :math:`\sqrt{w}`:
    :math:`\hat X = (X - \bar x)\,\mathrm{diag}(\sqrt w) = U S V^\top`. The coefficients of a
    snapshot are :math:`a = ((x - \bar x) \odot \sqrt w) V_{:, :K}` and decoding is linear,
    :math:`x = \bar x + a D` with :math:`D = V_{:, :K}^\top \mathrm{diag}(1/\sqrt w)`
    (``decoder_``). With all weights 1 this is ordinary PCA (scikit-learn's, without whitening).

    Parameters
    ----------
    weights : ndarray, shape (p,)
        Positive weights.
    variance : float
        Keep the fewest modes explaining at least this fraction of the weighted variance.
    n_modes : int or None
        Fixed number of modes instead (capped at ``n - 1``).
    """

    def __init__(self, weights: np.ndarray, variance: float = 0.999, n_modes: int | None = None):
        self.weights = np.asarray(weights, dtype=float)
        self.variance = variance
        self.n_modes = n_modes

    def fit(self, X: np.ndarray) -> WeightedPCA:
        X = np.asarray(X, dtype=float)
        if np.any(self.weights <= 0):
            raise ValueError("PCA weights must be > 0; a node with zero lumped mass is in no cell")
        self.sqrt_w_ = np.sqrt(self.weights)
        self.mean_ = X.mean(axis=0)
        Xw = (X - self.mean_) * self.sqrt_w_
        _, s, vt = np.linalg.svd(Xw, full_matrices=False)
        energy = s**2
        total = float(energy.sum())
        self.explained_variance_ = energy / max(X.shape[0] - 1, 1)
        self.explained_variance_ratio_ = energy / total if total > 0 else np.zeros_like(energy)
        max_modes = min(X.shape[0] - 1, len(s))
        if self.n_modes is not None:
            k = min(int(self.n_modes), max_modes)
        elif total <= 1e-14 * max(float(np.sum(self.mean_**2 * self.weights)), 1e-300):
            k = 0  # no variability at all (e.g. every sample has the same shape)
        else:
            cum = np.cumsum(self.explained_variance_ratio_)
            k = min(int(np.searchsorted(cum, float(self.variance) - 1e-12) + 1), max_modes)
        self.n_components_ = k
        self.components_ = vt[:k]  # rows: M-orthonormal modes in the sqrt(w)-scaled space
        self.decoder_ = self.components_ / self.sqrt_w_
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return ((X - self.mean_) * self.sqrt_w_) @ self.components_.T

    def inverse_transform(self, A: np.ndarray) -> np.ndarray:
        return self.mean_ + np.asarray(A, dtype=float) @ self.decoder_

    def get_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}weights": self.weights, f"{prefix}mean": self.mean_,
                f"{prefix}components": self.components_,
                f"{prefix}explained_variance_ratio": self.explained_variance_ratio_}

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> WeightedPCA:
        pca = cls(arrays[f"{prefix}weights"])
        pca.sqrt_w_ = np.sqrt(pca.weights)
        pca.mean_ = arrays[f"{prefix}mean"]
        pca.components_ = arrays[f"{prefix}components"]
        pca.explained_variance_ratio_ = arrays[f"{prefix}explained_variance_ratio"]
        pca.n_components_ = pca.components_.shape[0]
        pca.decoder_ = pca.components_ / pca.sqrt_w_
        return pca


# ------------------------------------------------------------------------------ morpher plumbing
def _default_morpher():
    from meshes.morph import RBFMorpher

    return RBFMorpher()


def _default_transfer(mesh, points):
    from meshes.transfer import transfer_matrix

    return transfer_matrix(mesh, points)


def _qualname(obj) -> str:
    target = obj if callable(obj) and not hasattr(obj, "morph") else type(obj)
    return f"{target.__module__}:{target.__qualname__}"


def _import(name: str):
    module, _, qual = name.partition(":")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _json_kwargs(obj) -> dict:
    """Constructor keyword arguments of a morpher, as far as they are JSON-serialisable."""
    if hasattr(obj, "get_params"):
        raw = obj.get_params()
    elif dataclasses.is_dataclass(obj):
        raw = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
    else:
        raw = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    out = {}
    for key, value in raw.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        out[key] = value
    return out


def _cells_of(mesh: meshio.Mesh) -> list[tuple[str, np.ndarray]]:
    return [(c.type, np.asarray(c.data)) for c in mesh.cells]


def _cell_data_of(mesh: meshio.Mesh) -> dict[str, list[np.ndarray]]:
    """The mesh's numeric cell data (e.g. the boundary tags the morphers read), one array per
    cell block."""
    return {name: [np.asarray(a) for a in blocks] for name, blocks in mesh.cell_data.items()
            if all(np.asarray(a).dtype.kind in "biuf" for a in blocks)}


# ------------------------------------------------------------------------------------ regressor
class MMGPRegressor:
    r"""Mesh-morphing GP regressor: meshes + scalar inputs -> scalars and point fields, with std.

    Parameters
    ----------
    morpher : object or None
        Anything with ``morph(reference: meshio.Mesh, target: meshio.Mesh) -> result`` whose
        ``result.points`` are the reference (support) nodes placed on the target,
        ``(n_support, d)``. Default: ``meshes.morph.RBFMorpher()`` (imported when first needed).
    reference : int or meshio.Mesh, default 0
        The common support: the index of a training mesh, or a mesh.
    n_shape_modes : int or None
        Number of shape (morphed-coordinate) modes; None: by ``shape_variance``.
    field_variance : float, default 0.999
        Explained (mass-weighted) variance kept by each field's PCA.
    shape_variance : float, default 0.9999
        Explained variance kept by the shape PCA when ``n_shape_modes`` is None.
    mass_weighted : bool, default True
        Weight the PCAs by the support's lumped P1 mass (see the module docstring).
    kernel : {"matern52"}
        GP kernel (anisotropic Matern-5/2 plus learned noise; the only one implemented).
    n_restarts : int, default 5
        Hyperparameter initialisations per GP, optimised together as one batch.
    seed : int, default 0
    dtype : torch.dtype, default torch.float64
    max_iter : int, default 200
        Optimiser iterations of the marginal-likelihood fit.
    transfer : callable or None
        ``transfer(mesh, points) -> (n_points, n_mesh_nodes)`` sparse P1 interpolation matrix.
        Default: ``meshes.transfer.transfer_matrix``.
    n_field_modes : int or None
        Fixed number of modes per field instead of ``field_variance``.
    truncation_nugget : bool, default True
        Add the reconstruction nugget (POD truncation and transfer round-trip error, see the
        module docstring) to the field variances. Without it the field std only reflects the GP
        uncertainty of the mode coefficients, which is over-confident once the coefficients are
        well learned.
    optimizer : {"adam", "lbfgs"}, default "adam"
    lr : float, default 0.1
        Adam learning rate (log-hyperparameters).
    calibration : {"group-loo", None}, default "group-loo"
        ``"group-loo"``: after the marginal-likelihood fit, each GP's amplitude (output scale
        and noise together; the mean does not change) is set by leave-one-group-out
        cross-validation in closed form (:meth:`surrogates.models.gp.BatchedExactGP.calibrate_amplitude`),
        a group being the samples on one mesh (:func:`meshes.morph.mesh_key`: one shape at
        several conditions). The likelihood sees shape-descriptor errors (mesh-to-mesh
        differences in the morphing) only as signal, and its intervals came out too narrow on
        held-out shapes. None: the likelihood's amplitudes.

    Attributes
    ----------
    support_ : meshio.Mesh
    shape_pca_ : WeightedPCA
    field_pca_ : dict[str, WeightedPCA]
    gp_ : surrogates.models.gp.BatchedExactGP
        One batch member per scalar output and per field mode (``output_slices_``).
    fit_seconds_ : float
    amplitude_factor_ : ndarray, shape (n_outputs,)
        Factor of each GP's variance from ``calibration`` (1 without).
    morph_seconds_ : ndarray, shape (n_unique_train_meshes,)
        Seconds per training morph. Samples that share a mesh (identical node coordinates and
        cells, e.g. one shape at several angles of attack) are morphed, and their transfer
        matrices built, once.
    predict_morph_seconds_ : ndarray
        Seconds per morph (of each distinct mesh) of the last :meth:`predict` call.
    """

    def __init__(self, morpher=None, reference: int | meshio.Mesh = 0,
                 n_shape_modes: int | None = None, field_variance: float = 0.999,
                 shape_variance: float = 0.9999, mass_weighted: bool = True,
                 kernel: str = "matern52", n_restarts: int = 5, seed: int = 0,
                 dtype: torch.dtype = torch.float64, max_iter: int = 200,
                 transfer: Callable | None = None, n_field_modes: int | None = None,
                 truncation_nugget: bool = True, optimizer: str = "adam", lr: float = 0.1,
                 calibration: str | None = "group-loo"):
        self.morpher = morpher
        self.reference = reference
        self.n_shape_modes = n_shape_modes
        self.field_variance = field_variance
        self.shape_variance = shape_variance
        self.mass_weighted = mass_weighted
        self.kernel = kernel
        self.n_restarts = n_restarts
        self.seed = seed
        self.dtype = dtype
        self.max_iter = max_iter
        self.transfer = transfer
        self.n_field_modes = n_field_modes
        self.truncation_nugget = truncation_nugget
        self.calibration = calibration
        self.optimizer = optimizer
        self.lr = lr

    # ------------------------------------------------------------------------------ helpers
    def _morpher(self):
        if self.morpher is None:
            self.morpher = _default_morpher()
        return self.morpher

    def _transfer(self) -> Callable:
        return self.transfer if self.transfer is not None else _default_transfer

    def _gp_kwargs(self) -> dict:
        return {"n_restarts": self.n_restarts, "max_iter": self.max_iter, "seed": self.seed,
                "dtype": self.dtype, "optimizer": self.optimizer, "lr": self.lr}

    @staticmethod
    def _check_meshes_inputs(meshes, inputs, n_inputs: int | None = None
                             ) -> tuple[list, np.ndarray]:
        if isinstance(meshes, meshio.Mesh):
            raise ValueError("meshes must be a list of meshio.Mesh, got a single mesh; wrap it "
                             "in a list")
        meshes = list(meshes)
        if not meshes:
            raise ValueError("meshes is empty")
        for i, m in enumerate(meshes):
            if not isinstance(m, meshio.Mesh):
                raise ValueError(f"meshes[{i}] is a {type(m).__name__}, not a meshio.Mesh")
        if inputs is None:
            inputs = np.zeros((len(meshes), 0))
        inputs = np.asarray(inputs, dtype=float)
        if inputs.ndim == 1:
            inputs = inputs[:, None]
        if inputs.ndim != 2 or inputs.shape[0] != len(meshes):
            raise ValueError(f"inputs must be (n_meshes, k) = ({len(meshes)}, k); got shape "
                             f"{inputs.shape} for {len(meshes)} meshes")
        if n_inputs is not None and inputs.shape[1] != n_inputs:
            raise ValueError(f"inputs have {inputs.shape[1]} columns but the model was fitted "
                             f"with {n_inputs}")
        if not np.all(np.isfinite(inputs)):
            raise ValueError("inputs contain NaN or inf")
        return meshes, inputs

    def _split_outputs(self, outputs: dict, meshes: list
                       ) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
        """Scalars: 1-D numeric arrays. Fields: lists/tuples of per-mesh arrays, or >= 2-D."""
        if not isinstance(outputs, dict) or not outputs:
            raise ValueError("outputs must be a non-empty dict name -> values")
        n = len(meshes)
        scalars, fields = {}, {}
        for name, value in outputs.items():
            if isinstance(value, list | tuple):
                arrays = [np.asarray(v, dtype=float) for v in value]
            else:
                value = np.asarray(value, dtype=float)
                if value.ndim == 1:
                    if value.shape[0] != n:
                        raise ValueError(f"scalar output {name!r} has {value.shape[0]} values for "
                                         f"{n} meshes")
                    if not np.all(np.isfinite(value)):
                        raise ValueError(f"scalar output {name!r} contains NaN or inf")
                    scalars[name] = value
                    continue
                arrays = list(value)
            if len(arrays) != n:
                raise ValueError(f"field output {name!r} has {len(arrays)} arrays for {n} meshes")
            comps = None
            for i, (a, mesh) in enumerate(zip(arrays, meshes, strict=True)):
                if a.ndim not in (1, 2) or a.shape[0] != len(mesh.points):
                    raise ValueError(f"field {name!r} on mesh {i} has shape {a.shape}, but the "
                                     f"mesh has {len(mesh.points)} nodes; expected "
                                     f"({len(mesh.points)},) or ({len(mesh.points)}, c)")
                c = 1 if a.ndim == 1 else a.shape[1]
                if comps is not None and c != comps:
                    raise ValueError(f"field {name!r} has {comps} components on mesh 0 but {c} "
                                     f"on mesh {i}")
                comps = c
                if not np.all(np.isfinite(a)):
                    raise ValueError(f"field {name!r} on mesh {i} contains NaN or inf")
            fields[name] = arrays
        return scalars, fields

    def _morph_all(self, meshes: list, keys: list[bytes], offline: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Morphed support coordinates (n, n_s, d) and seconds per morph of each distinct mesh
        (meshes with equal ``keys``, their :func:`meshes.morph.mesh_key`, are morphed once).
        ``offline``: the training morphs, by the morpher's ``morph_offline`` when it has one."""
        morpher = self._morpher()
        morph = getattr(morpher, "morph_offline", morpher.morph) if offline else morpher.morph
        coords, seconds, done = [], [], {}
        n_s = len(self.support_.points)
        # the progress bar shows only on a terminal (disable=None)
        bar = tqdm(meshes, desc="morphing", disable=None, leave=False)
        for i, (mesh, key) in enumerate(zip(bar, keys, strict=True)):
            if key not in done:
                t0 = time.perf_counter()
                result = morph(self.support_, mesh)
                seconds.append(time.perf_counter() - t0)
                pts = np.asarray(result.points, dtype=float)
                if pts.ndim != 2 or pts.shape[0] != n_s:
                    raise ValueError(f"the morpher returned points of shape {pts.shape} for mesh "
                                     f"{i}; expected ({n_s}, d) for the {n_s} support nodes")
                done[key] = pts
            coords.append(done[key])
        dims = {c.shape[1] for c in coords}
        if hasattr(self, "shape_dim_"):
            dims.add(self.shape_dim_)
        if len(dims) != 1:
            raise ValueError(f"morphed points have inconsistent dimensions {sorted(dims)}")
        return np.stack(coords), np.asarray(seconds)

    def _hand_over_shape_basis(self) -> None:
        """Give an offline/online morpher (one with ``set_reduced_basis``, e.g.
        :class:`meshes.morph_elasticity.ReducedElasticityMorpher`) the shape POD: mean and
        modes of the training morphings, in which it then morphs new meshes."""
        morpher = self._morpher()
        if hasattr(morpher, "set_reduced_basis"):
            n_s, d = len(self.support_.points), self.shape_dim_
            pca = self.shape_pca_
            morpher.set_reduced_basis(self.support_, pca.mean_.reshape(n_s, d),
                                      pca.decoder_.reshape(-1, n_s, d))

    def _features(self, coords: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        shape_coef = self.shape_pca_.transform(coords.reshape(len(coords), -1))
        raw = np.concatenate([shape_coef, inputs], axis=1)
        return (raw - self.x_mean_) / self.x_scale_

    def _support_mesh(self, points: np.ndarray) -> meshio.Mesh:
        return meshio.Mesh(points, self.support_cells_)

    # ---------------------------------------------------------------------------------- fit
    def fit(self, meshes: Sequence[meshio.Mesh], inputs, outputs: dict) -> MMGPRegressor:
        """Fit on training meshes, their scalar inputs and their outputs.

        Parameters
        ----------
        meshes : list of meshio.Mesh, length n
        inputs : array_like, shape (n, k) or (n,), or None (no scalar inputs)
        outputs : dict
            ``name -> (n,) array`` for a scalar output; ``name -> list of n arrays``
            ``(n_nodes_i,)`` or ``(n_nodes_i, c)`` for a point field (a numeric array of ndim >= 2
            is read as one field row per mesh).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On mismatched lengths, a field whose length differs from its mesh's node count,
            non-finite values, or a bad ``reference``.
        """
        t_start = time.perf_counter()
        if self.kernel != "matern52":
            raise ValueError(f"kernel must be 'matern52', got {self.kernel!r}")
        if self.calibration not in ("group-loo", None):
            raise ValueError(f"calibration must be 'group-loo' or None, got {self.calibration!r}")
        meshes, inputs = self._check_meshes_inputs(meshes, inputs)
        if len(meshes) < 3:
            raise ValueError(f"need at least 3 training meshes, got {len(meshes)}")
        scalars, fields = self._split_outputs(outputs, meshes)
        self.__dict__.pop("shape_dim_", None)  # a refit may change the morphed dimension
        if isinstance(self.reference, meshio.Mesh):
            support = self.reference
        else:
            ref = int(self.reference)
            if not 0 <= ref < len(meshes):
                raise ValueError(f"reference index {ref} is out of range for {len(meshes)} "
                                 "training meshes")
            support = meshes[ref]
        self.support_cells_ = _cells_of(support)
        self.support_cell_data_ = _cell_data_of(support)
        self.support_ = meshio.Mesh(np.asarray(support.points, dtype=float), self.support_cells_,
                                    cell_data=self.support_cell_data_)
        n_s = len(self.support_.points)
        node_w = lumped_mass(self.support_) if self.mass_weighted else np.ones(n_s)
        if self.mass_weighted and np.any(node_w <= 0):
            raise ValueError(f"{int(np.sum(node_w <= 0))} support nodes belong to no cell (zero "
                             "lumped mass); remove them or use mass_weighted=False")
        self.node_weights_ = node_w

        keys = [mesh_key(m) for m in meshes]
        coords, self.morph_seconds_ = self._morph_all(meshes, keys, offline=True)
        n, _, d = coords.shape
        self.shape_dim_ = d
        self.shape_pca_ = WeightedPCA(np.repeat(node_w, d), self.shape_variance,
                                      self.n_shape_modes).fit(coords.reshape(n, -1))
        self._hand_over_shape_basis()

        # fields onto the morphed supports, then one PCA per field
        transfer = self._transfer()
        self.field_pca_: dict[str, WeightedPCA] = {}
        self.field_components_: dict[str, int] = {}
        self.field_nugget_: dict[str, np.ndarray] = {}
        targets, self.output_slices_ = [], {}
        start = 0
        for name, value in scalars.items():
            targets.append(value[:, None])
            self.output_slices_[name] = (start, start + 1)
            start += 1
        to_support: list[sp.csr_matrix] = []
        back: list[sp.csr_matrix] = []
        if fields:
            built: dict[bytes, tuple] = {}
            for mesh, key, z in zip(meshes, keys, coords, strict=True):
                if key not in built:
                    T = sp.csr_matrix(transfer(mesh, z))
                    if T.shape != (n_s, len(mesh.points)):
                        raise ValueError(f"transfer returned shape {T.shape}; expected "
                                         f"({n_s}, {len(mesh.points)})")
                    built[key] = (T, self._back_transfer(mesh, z)
                                  if self.truncation_nugget else None)
                to_support.append(built[key][0])
                if self.truncation_nugget:
                    back.append(built[key][1])
        for name, arrays in fields.items():
            c = 1 if arrays[0].ndim == 1 else arrays[0].shape[1]
            snaps = np.stack([np.asarray(T @ a.reshape(-1, c)).reshape(-1)
                              for T, a in zip(to_support, arrays, strict=True)])
            pca = WeightedPCA(np.repeat(node_w, c), self.field_variance,
                              self.n_field_modes).fit(snaps)
            coef = pca.transform(snaps)
            nugget = np.zeros((n_s, c))
            if self.truncation_nugget:
                # residual of the whole linear pipeline (transfer, POD truncation, transfer
                # back) at each training mesh's nodes, squared and carried to the support
                recon = pca.inverse_transform(coef)
                for T, B, a, r in zip(to_support, back, arrays, recon, strict=True):
                    resid = a.reshape(-1, c) - np.asarray(B @ r.reshape(n_s, c))
                    nugget += np.asarray(T @ resid**2) / n
            self.field_nugget_[name] = nugget
            self.field_pca_[name] = pca
            self.field_components_[name] = c
            targets.append(coef)
            self.output_slices_[name] = (start, start + coef.shape[1])
            start += coef.shape[1]
        self.scalar_names_ = list(scalars)
        self.field_names_ = list(fields)
        self.n_inputs_ = inputs.shape[1]

        if hasattr(self._morpher(), "set_reduced_basis"):
            # describe the training shapes the way new ones will be described: by their online
            # morphs in the basis (the full morphs above built the basis and carry the fields)
            coords = self._morph_all(meshes, keys)[0]
        raw_x = np.concatenate([self.shape_pca_.transform(coords.reshape(n, -1)), inputs], axis=1)
        self.x_mean_ = raw_x.mean(axis=0)
        self.x_scale_ = _safe_scale(raw_x.std(axis=0))
        Y = np.concatenate(targets, axis=1)
        self.y_mean_ = Y.mean(axis=0)
        self.y_scale_ = _safe_scale(Y.std(axis=0))
        X = (raw_x - self.x_mean_) / self.x_scale_
        if X.shape[1] == 0:
            raise ValueError("no GP inputs: the shapes do not vary and there are no scalar inputs")
        if Y.shape[1] == 0:
            raise ValueError("no GP outputs: every field is constant over the training set and "
                             "there are no scalar outputs")
        self.gp_ = BatchedExactGP(**self._gp_kwargs()).fit(X, (Y - self.y_mean_) / self.y_scale_)
        self.amplitude_factor_ = np.ones(Y.shape[1])
        if self.calibration == "group-loo":
            self.amplitude_factor_ = self.gp_.calibrate_amplitude(keys)
        self.fit_seconds_ = time.perf_counter() - t_start
        return self

    # ------------------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "gp_"):
            raise ValueError("this MMGPRegressor is not fitted; call fit(meshes, inputs, outputs)")

    def _latent(self, meshes, inputs):
        """Per query: the meshes, their back-transfer matrices (one per distinct mesh), the GP
        mean/std of all outputs in physical units."""
        self._check_fitted()
        meshes, inputs = self._check_meshes_inputs(meshes, inputs, self.n_inputs_)
        keys = [mesh_key(m) for m in meshes]
        coords, self.predict_morph_seconds_ = self._morph_all(meshes, keys)
        X = self._features(coords, inputs)
        mean, std = self.gp_.predict(X, return_std=True)
        built: dict[bytes, sp.csr_matrix] = {}
        for mesh, key, z in zip(meshes, keys, coords, strict=True):
            if key not in built:
                built[key] = self._back_transfer(mesh, z)
        backs = [built[k] for k in keys]
        return meshes, backs, mean * self.y_scale_ + self.y_mean_, std * self.y_scale_

    def _back_transfer(self, mesh, z) -> sp.csr_matrix:
        B = sp.csr_matrix(self._transfer()(self._support_mesh(z), np.asarray(mesh.points, float)))
        n_s = len(self.support_.points)
        if B.shape != (len(mesh.points), n_s):
            raise ValueError(f"transfer returned shape {B.shape}; expected "
                             f"({len(mesh.points)}, {n_s})")
        return B

    def predict(self, meshes: Sequence[meshio.Mesh], inputs, return_std: bool = False):
        """Predict scalars and fields on query meshes.

        Parameters
        ----------
        meshes : list of meshio.Mesh, length n
        inputs : array_like, shape (n, k) (as in :meth:`fit`)
        return_std : bool, default False

        Returns
        -------
        mean : dict
            ``name -> (n,)`` for scalars; ``name -> list of (n_nodes_i,)`` (or ``(n_nodes_i, c)``)
            arrays for fields, on each query mesh's nodes.
        std : dict
            The same structure with predictive standard deviations (only with ``return_std``).

        Raises
        ------
        ValueError
            If not fitted, or on mismatched ``meshes``/``inputs``.
        """
        meshes, backs, mean, std = self._latent(meshes, inputs)
        var = std**2
        out_mean, out_std = {}, {}
        for name in self.scalar_names_:
            j = self.output_slices_[name][0]
            out_mean[name], out_std[name] = mean[:, j].copy(), std[:, j].copy()
        for name in self.field_names_:
            a, b = self.output_slices_[name]
            pca, c = self.field_pca_[name], self.field_components_[name]
            n_s = len(self.support_.points)
            means, stds = [], []
            for i, (mesh, B) in enumerate(zip(meshes, backs, strict=True)):
                support_mean = pca.inverse_transform(mean[i, a:b]).reshape(n_s, c)
                u = np.asarray(B @ support_mean)
                means.append(u[:, 0] if c == 1 else u)
                if return_std:
                    modes = pca.decoder_.reshape(b - a, n_s, c)  # (K, n_s, c)
                    v = np.zeros((len(mesh.points), c))
                    for k in range(b - a):
                        v += np.asarray(B @ modes[k]) ** 2 * var[i, a + k]
                    if self.truncation_nugget:
                        v += np.asarray(B @ self.field_nugget_[name])
                    s = np.sqrt(v)
                    stds.append(s[:, 0] if c == 1 else s)
            out_mean[name] = means
            if return_std:
                out_std[name] = stds
        return (out_mean, out_std) if return_std else out_mean

    def sample_y(self, meshes: Sequence[meshio.Mesh], inputs, n_samples: int = 100,
                 seed: int = 0) -> dict:
        """Monte Carlo samples of the predictive distribution (independent mode posteriors).

        Each output's coefficient is drawn from its marginal GP predictive Gaussian, independently
        across outputs and queries (the same assumption as the closed-form std of
        :meth:`predict`), then decoded and transferred like the mean; with ``truncation_nugget``
        independent nodal noise of the reconstruction-nugget variance is added.

        Returns
        -------
        dict
            ``name -> (n_samples, n)`` for scalars; ``name -> list of (n_samples, n_nodes_i[, c])``
            for fields.
        """
        meshes, backs, mean, std = self._latent(meshes, inputs)
        rng = np.random.default_rng(seed)
        draws = mean[None] + std[None] * rng.standard_normal((n_samples, *mean.shape))
        out = {}
        for name in self.scalar_names_:
            out[name] = draws[:, :, self.output_slices_[name][0]]
        for name in self.field_names_:
            a, b = self.output_slices_[name]
            pca, c = self.field_pca_[name], self.field_components_[name]
            n_s = len(self.support_.points)
            samples = []
            for i, (mesh, B) in enumerate(zip(meshes, backs, strict=True)):
                sup = pca.inverse_transform(draws[:, i, a:b])  # (S, n_s * c)
                sup = sup.reshape(n_samples, n_s, c).transpose(1, 0, 2).reshape(n_s, -1)
                u = np.asarray(B @ sup).reshape(len(mesh.points), n_samples, c).transpose(1, 0, 2)
                if self.truncation_nugget:
                    nug = np.sqrt(np.asarray(B @ self.field_nugget_[name]))  # (n_nodes, c)
                    u = u + nug[None] * rng.standard_normal(u.shape)
                samples.append(u[..., 0] if c == 1 else u)
            out[name] = samples
        return out

    # -------------------------------------------------------------------------- save / load
    def _config(self) -> dict:
        morpher = self._morpher()
        return {
            "format_version": _FORMAT_VERSION,
            "class": "MMGPRegressor",
            "params": {"reference": (None if isinstance(self.reference, meshio.Mesh)
                                     else int(self.reference)),
                       "n_shape_modes": self.n_shape_modes, "field_variance": self.field_variance,
                       "shape_variance": self.shape_variance, "mass_weighted": self.mass_weighted,
                       "kernel": self.kernel, "n_restarts": self.n_restarts, "seed": self.seed,
                       "dtype": str(self.dtype).removeprefix("torch."),
                       "max_iter": self.max_iter, "n_field_modes": self.n_field_modes,
                       "truncation_nugget": self.truncation_nugget, "optimizer": self.optimizer,
                       "lr": self.lr, "calibration": self.calibration},
            "morpher": {"name": _qualname(morpher), "kwargs": _json_kwargs(morpher)},
            "transfer": _qualname(self._transfer()),
            "scalar_names": self.scalar_names_,
            "field_names": self.field_names_,
            "field_components": self.field_components_,
            "output_slices": {k: list(v) for k, v in self.output_slices_.items()},
            "n_inputs": self.n_inputs_,
            "shape_dim": self.shape_dim_,
            "support_cell_types": [t for t, _ in self.support_cells_],
            "support_cell_data": sorted(self.support_cell_data_),
            "fit_seconds": self.fit_seconds_,
            "morph_seconds": self.morph_seconds_.tolist(),
            "amplitude_factor": self.amplitude_factor_.tolist(),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to a folder: ``config.json`` and ``arrays.npz`` (no pickle).

        The morpher and the transfer function are recorded by import name (and the morpher's
        JSON-serialisable attributes as keyword arguments); :meth:`load` rebuilds them from there
        unless given explicitly.

        Returns
        -------
        pathlib.Path
            The folder.
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"support_points": np.asarray(self.support_.points, float),
                  "node_weights": self.node_weights_, "x_mean": self.x_mean_,
                  "x_scale": self.x_scale_, "y_mean": self.y_mean_, "y_scale": self.y_scale_}
        for i, (_, cells) in enumerate(self.support_cells_):
            arrays[f"support_cells_{i}"] = cells
        for name, blocks in self.support_cell_data_.items():
            for i, block in enumerate(blocks):
                arrays[f"support_cell_data_{name}_{i}"] = block
        arrays.update(self.shape_pca_.get_arrays("shape_"))
        for j, name in enumerate(self.field_names_):
            arrays.update(self.field_pca_[name].get_arrays(f"field{j}_"))
            arrays[f"field{j}_nugget"] = self.field_nugget_[name]
        arrays.update({f"gp_{k}": v for k, v in self.gp_.get_arrays().items()})
        np.savez(folder / "arrays.npz", **arrays)
        (folder / "config.json").write_text(json.dumps(self._config(), indent=2))
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike, morpher=None, transfer: Callable | None = None
             ) -> MMGPRegressor:
        """Rebuild a model written by :meth:`save`.

        Parameters
        ----------
        path : str or PathLike
            The folder.
        morpher : object, optional
            Use this morpher instead of re-creating the recorded one (needed when the recorded
            class cannot be imported, e.g. one defined in a test or a script).
        transfer : callable, optional
            Likewise for the transfer function.

        Raises
        ------
        FileNotFoundError
            If ``config.json`` or ``arrays.npz`` is missing.
        ValueError
            On an unknown format version, or a recorded morpher/transfer that cannot be imported
            when none is given.
        """
        folder = Path(path)
        for name in ("config.json", "arrays.npz"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} does not exist; is {folder} a folder "
                                        "written by MMGPRegressor.save?")
        cfg = json.loads((folder / "config.json").read_text())
        if cfg.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {cfg.get('format_version')} in "
                             f"{folder / 'config.json'}; expected {_FORMAT_VERSION}")
        if morpher is None:
            try:
                morpher = _import(cfg["morpher"]["name"])(**cfg["morpher"]["kwargs"])
            except (ImportError, AttributeError, TypeError) as exc:
                raise ValueError(f"cannot rebuild morpher {cfg['morpher']['name']}: {exc}; pass "
                                 "morpher=... to load") from exc
        if transfer is None and not cfg["transfer"].endswith(":_default_transfer"):
            try:
                transfer = _import(cfg["transfer"])
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"cannot import transfer {cfg['transfer']}: {exc}; pass "
                                 "transfer=... to load") from exc
        params = dict(cfg["params"])
        params["dtype"] = getattr(torch, params["dtype"])
        if params["reference"] is None:
            params["reference"] = 0  # the support mesh itself is restored below
        model = cls(morpher=morpher, transfer=transfer, **params)
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        cells = [(t, arrays[f"support_cells_{i}"])
                 for i, t in enumerate(cfg["support_cell_types"])]
        cell_data = {name: [arrays[f"support_cell_data_{name}_{i}"] for i in range(len(cells))]
                     for name in cfg.get("support_cell_data", [])}
        model.support_cells_ = cells
        model.support_cell_data_ = cell_data
        model.support_ = meshio.Mesh(arrays["support_points"], cells, cell_data=cell_data)
        model.node_weights_ = arrays["node_weights"]
        model.x_mean_, model.x_scale_ = arrays["x_mean"], arrays["x_scale"]
        model.y_mean_, model.y_scale_ = arrays["y_mean"], arrays["y_scale"]
        model.shape_pca_ = WeightedPCA.from_arrays(arrays, "shape_")
        model.scalar_names_ = list(cfg["scalar_names"])
        model.field_names_ = list(cfg["field_names"])
        model.field_components_ = {k: int(v) for k, v in cfg["field_components"].items()}
        model.output_slices_ = {k: tuple(v) for k, v in cfg["output_slices"].items()}
        model.field_pca_, model.field_nugget_ = {}, {}
        for j, name in enumerate(model.field_names_):
            model.field_pca_[name] = WeightedPCA.from_arrays(arrays, f"field{j}_")
            model.field_nugget_[name] = arrays[f"field{j}_nugget"]
        model.n_inputs_ = int(cfg["n_inputs"])
        model.shape_dim_ = int(cfg["shape_dim"])
        model._hand_over_shape_basis()
        model.fit_seconds_ = float(cfg["fit_seconds"])
        model.morph_seconds_ = np.asarray(cfg["morph_seconds"])
        model.amplitude_factor_ = np.asarray(cfg.get("amplitude_factor",
                                                     np.ones(len(model.y_mean_))))
        gp_arrays = {k.removeprefix("gp_"): v for k, v in arrays.items() if k.startswith("gp_")}
        model.gp_ = BatchedExactGP.from_arrays(gp_arrays, **model._gp_kwargs())
        return model


def _safe_scale(std: np.ndarray) -> np.ndarray:
    """Standard deviations with zeros (constant columns) replaced by 1."""
    std = np.asarray(std, dtype=float).copy()
    std[~(std > 1e-12 * max(float(np.max(np.abs(std), initial=0.0)), 1e-300))] = 1.0
    return std
