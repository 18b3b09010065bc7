r"""The MMGP regressor: fit (morph, transfer, POD, GPs) and predict with closed-form std.

See :mod:`surrogates.models.mmgp` for the pipeline and its uncertainty model.
"""

from __future__ import annotations

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
from surrogates.models.mmgp import persist
from surrogates.models.mmgp.nugget import fit_nugget_data
from surrogates.models.mmgp.pca import WeightedPCA, lumped_mass
from surrogates.models.mmgp.plumbing import (
    _cell_data_of,
    _cells_of,
    _default_morpher,
    _default_transfer,
    _safe_scale,
)

__all__ = ["MMGPRegressor"]

#: ``calibration`` -> the method of :meth:`BatchedExactGP.calibrate_amplitude`
CALIBRATIONS = {"group-loo": "marginal", "group-conformal": "conformal",
                "group-joint": "joint", None: None}
#: accepted values of ``truncation_nugget``
NUGGET_MODES = (True, "query", "constant", False, None)


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
    truncation_nugget : {True, "query", "constant", False}, default True
        Add the reconstruction nugget (POD truncation and transfer round-trip error,
        :mod:`surrogates.models.mmgp.nugget`) to the field variances. True or ``"query"``: its
        amplitude depends on the query through a GP on the training samples' out-of-sample
        residual energies; ``"constant"``: the in-sample mean of earlier versions, the same for
        every query (its correlation with the error was 0.11); False: none, the field std then
        only reflects the GP uncertainty of the mode coefficients, which is over-confident
        once the coefficients are well learned. It can be changed after fitting.
    optimizer : {"adam", "lbfgs"}, default "adam"
    lr : float, default 0.1
        Adam learning rate (log-hyperparameters).
    calibration : {"group-loo", "group-conformal", "group-joint", None}, default "group-loo"
        After the marginal-likelihood fit, each GP's amplitude (kernel and noise variances
        together; the mean does not change) is set by leave-one-group-out cross-validation in
        closed form (:meth:`surrogates.models.gp.BatchedExactGP.calibrate_amplitude`), a group
        being the samples on one mesh (:func:`meshes.morph.mesh_key`: one shape at several
        conditions). The likelihood sees shape-descriptor errors (mesh-to-mesh differences in
        the morphing) only as signal, and its intervals came out too narrow on held-out shapes.
        ``"group-loo"``: the per-sample leave-out z-scores get unit variance (method
        ``"marginal"``); ``"group-conformal"``: their 90 % quantile is matched (``"conformal"``);
        ``"group-joint"``: each group's whitened residuals get unit variance on average (the
        default of earlier versions; it shrank the per-sample intervals of lift by 0.74 when the
        conditions of a shape err together). None: the likelihood's amplitudes.

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
    nugget_gp_ : surrogates.models.gp.BatchedExactGP or None
        GP of the standardised log residual energy of each field (columns in
        ``field_names_`` order); None when there are no fields or no nugget.
    field_nugget_ : dict[str, ndarray]
        Constant nugget :math:`\bar q` per field, ``(n_support, c)``.
    field_nugget_pattern_ : dict[str, ndarray]
        Unit-integral nugget pattern :math:`\bar p` per field, ``(n_support, c)``.
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
                 truncation_nugget: bool | str = True, optimizer: str = "adam", lr: float = 0.1,
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

    def _nugget_mode(self) -> str | None:
        """``"query"``, ``"constant"`` or None, from ``truncation_nugget`` (``"query"`` needs
        the nugget GP, which models of format version 1 lack)."""
        if self.truncation_nugget not in NUGGET_MODES:
            raise ValueError(f"truncation_nugget must be one of {NUGGET_MODES}, got "
                             f"{self.truncation_nugget!r}")
        if not self.truncation_nugget:
            return None
        if self.truncation_nugget == "constant" or getattr(self, "nugget_gp_", None) is None:
            return "constant"
        return "query"

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
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {sorted(CALIBRATIONS, key=str)}, got "
                             f"{self.calibration!r}")
        self._nugget_mode()  # checks the value
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
        self.field_nugget_pattern_: dict[str, np.ndarray] = {}
        log_energies = []
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
            if self.truncation_nugget:
                nugget = fit_nugget_data(arrays, to_support, back, pca, snaps, node_w, keys,
                                         self.seed)
                self.field_nugget_[name] = nugget.constant
                self.field_nugget_pattern_[name] = nugget.pattern
                log_energies.append(nugget.log_energy)
            else:
                self.field_nugget_[name] = np.zeros((n_s, c))
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
        if self.calibration is not None:
            self.amplitude_factor_ = self.gp_.calibrate_amplitude(
                keys, method=CALIBRATIONS[self.calibration])
        self.nugget_gp_ = None
        if log_energies:
            E = np.stack(log_energies, axis=1)
            self.nugget_mean_, self.nugget_scale_ = E.mean(axis=0), _safe_scale(E.std(axis=0))
            self.nugget_gp_ = BatchedExactGP(**self._gp_kwargs()).fit(
                X, (E - self.nugget_mean_) / self.nugget_scale_)
        self.fit_seconds_ = time.perf_counter() - t_start
        return self

    # ------------------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "gp_"):
            raise ValueError("this MMGPRegressor is not fitted; call fit(meshes, inputs, outputs)")

    def _latent(self, meshes, inputs):
        """Per query: the meshes, their back-transfer matrices (one per distinct mesh), the GP
        mean/std of all outputs in physical units, and the support nugget of each field
        (``name -> (q, n_s, c)``, zeros without a nugget)."""
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
        return (meshes, backs, mean * self.y_scale_ + self.y_mean_, std * self.y_scale_,
                self._nuggets(X))

    def _nuggets(self, X: np.ndarray) -> dict[str, np.ndarray]:
        r"""Support nugget of each field at standardised GP inputs ``X`` (``(q, d)``):
        :math:`E(x)\, ar p` with :math:`E = e^{\mu + v/2}` from the nugget GP (``"query"``),
        :math:`ar q` (``"constant"``) or 0, each ``(q, n_s, c)``."""
        mode = self._nugget_mode()
        if mode == "query":
            mu, sd = self.nugget_gp_.predict(X, return_std=True)
            energy = np.exp(mu * self.nugget_scale_ + self.nugget_mean_
                            + 0.5 * (sd * self.nugget_scale_) ** 2)  # (q, n_fields)
            return {name: energy[:, j, None, None] * self.field_nugget_pattern_[name][None]
                    for j, name in enumerate(self.field_names_)}
        scale = 0.0 if mode is None else 1.0
        return {name: np.repeat(scale * self.field_nugget_[name][None], len(X), axis=0)
                for name in self.field_names_}

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
        meshes, backs, mean, std, nuggets = self._latent(meshes, inputs)
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
                    v += np.asarray(B @ nuggets[name][i])
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
        :meth:`predict`), then decoded and transferred like the mean; independent nodal noise
        of the query's reconstruction-nugget variance is added (none without a nugget).

        Returns
        -------
        dict
            ``name -> (n_samples, n)`` for scalars; ``name -> list of (n_samples, n_nodes_i[, c])``
            for fields.
        """
        meshes, backs, mean, std, nuggets = self._latent(meshes, inputs)
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
                nug = np.sqrt(np.asarray(B @ nuggets[name][i]))  # (n_nodes, c)
                u = u + nug[None] * rng.standard_normal(u.shape)
                samples.append(u[..., 0] if c == 1 else u)
            out[name] = samples
        return out

    # -------------------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to a folder: ``config.json`` and ``arrays.npz`` (no pickle;
        :mod:`surrogates.models.mmgp.persist`).

        The morpher and the transfer function are recorded by import name (and the morpher's
        JSON-serialisable attributes as keyword arguments); :meth:`load` rebuilds them from there
        unless given explicitly.

        Returns
        -------
        pathlib.Path
            The folder.
        """
        return persist.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, morpher=None, transfer: Callable | None = None
             ) -> MMGPRegressor:
        """Rebuild a model written by :meth:`save` (:func:`surrogates.models.mmgp.persist.load`).

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
        return persist.load(cls, path, morpher, transfer)
