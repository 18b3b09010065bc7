r"""Mass-weighted POD of the MMGP pipeline: lumped P1 nodal masses and a centred PCA in the
weighted inner product :math:`\langle x, y \rangle = \sum_j w_j x_j y_j`."""

from __future__ import annotations

import meshio
import numpy as np

__all__ = ["WeightedPCA", "lumped_mass"]


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
