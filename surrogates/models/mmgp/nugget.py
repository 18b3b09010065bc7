r"""The reconstruction nugget of MMGP fields: the error that the mode GPs cannot see.

A field is predicted through a linear pipeline (transfer to the support, POD truncation to
:math:`K` modes, transfer back), so even exact mode coefficients leave the residual
:math:`r_i = u_i - B_i\,\mathrm{dec}(\mathrm{enc}(T_i u_i))` on sample :math:`i`'s nodes. Its
squares carried to the support, :math:`q_i = T_i r_i^2` (``(n_s, c)``), and their weighted
integral :math:`\varepsilon_i = \sum_j w_j \sum_c q_{ijc}` are in-sample: the POD was fitted on
these snapshots, so they underestimate what a new sample loses. Two corrections:

* **out of sample**: the support snapshots are split into folds by group (one shape = one group),
  a POD with the same :math:`K` modes is fitted without each fold, and the truncation energy
  :math:`e^\mathrm{out}_i` of the left-out snapshots is compared with the in-sample one
  :math:`e^\mathrm{in}_i`; :math:`\varepsilon^\mathrm{out}_i = \varepsilon_i +
  \max(e^\mathrm{out}_i - e^\mathrm{in}_i, 0)`;
* **query dependence**: the energy varies by an order of magnitude between shapes while a
  single averaged nugget is the same for every query. The log-energies
  :math:`\log\varepsilon^\mathrm{out}_i` become targets of one more GP over the MMGP inputs; at a
  query :math:`x` with its latent-plus-noise prediction :math:`\mathcal N(\mu(x), v(x))` the
  expected energy is the log-normal mean :math:`E(x) = e^{\mu(x) + v(x)/2}` and the nodal
  nugget on the support is :math:`E(x)\, \bar p` with the unit-integral pattern
  :math:`\bar p = \sum_i q_i\, \varepsilon^\mathrm{out}_i / \varepsilon_i \,/\,
  \sum_i \varepsilon^\mathrm{out}_i`.

The constant nugget of earlier versions, :math:`\bar q = \frac1n \sum_i q_i`, stays available
(``truncation_nugget="constant"``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from surrogates.models.mmgp.pca import WeightedPCA

__all__ = ["NuggetData", "fit_nugget_data", "fold_truncation_energies"]

#: folds of the out-of-sample truncation estimate (fewer when there are fewer groups)
N_FOLDS = 10


def fold_truncation_energies(snaps: np.ndarray, weights: np.ndarray, n_modes: int,
                             groups, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""In-sample and out-of-fold weighted POD truncation energies of every snapshot.

    Parameters
    ----------
    snaps : ndarray, shape (n, p)
        Snapshots on the support (flattened ``(n_s, c)``).
    weights : ndarray, shape (p,)
        Inner-product weights :math:`w` (lumped masses, repeated per component).
    n_modes : int
        Modes :math:`K` of every POD.
    groups : sequence of length n
        Group of each snapshot; a group is never split between folds.
    seed : int
        Seed of the assignment of groups to folds.

    Returns
    -------
    e_in, e_out : ndarray, shape (n,)
        :math:`\sum_j w_j (x_j - \hat x_j)^2` with :math:`\hat x` the projection on the POD of all
        snapshots (``e_in``) or of all snapshots outside the snapshot's fold (``e_out``; equal
        to ``e_in`` with a single group).
    """
    def energy(pca, x):
        return np.sum(weights * (x - pca.inverse_transform(pca.transform(x))) ** 2, axis=1)

    e_in = energy(WeightedPCA(weights, n_modes=n_modes).fit(snaps), snaps)
    index: dict = {}
    labels = np.array([index.setdefault(g, len(index)) for g in groups])
    n_groups = len(index)
    if n_groups < 2:
        return e_in, e_in.copy()
    fold_of_group = np.random.default_rng(seed).permutation(n_groups) % min(N_FOLDS, n_groups)
    folds = fold_of_group[labels]
    e_out = np.empty_like(e_in)
    for f in np.unique(folds):
        out = folds == f
        pca = WeightedPCA(weights, n_modes=n_modes).fit(snaps[~out])
        e_out[out] = energy(pca, snaps[out])
    return e_in, e_out


class NuggetData:
    """What :func:`fit_nugget_data` learns of one field on the training set.

    Attributes
    ----------
    constant : ndarray, shape (n_s, c)
        :math:`\\bar q`, the in-sample mean squared residual on the support.
    pattern : ndarray, shape (n_s, c)
        :math:`\\bar p`, unit weighted integral.
    log_energy : ndarray, shape (n,)
        :math:`\\log \\varepsilon^\\mathrm{out}_i` (the targets of the nugget GP).
    """

    def __init__(self, constant, pattern, log_energy):
        self.constant, self.pattern, self.log_energy = constant, pattern, log_energy


def fit_nugget_data(arrays: list[np.ndarray], to_support: list[sp.csr_matrix],
                    back: list[sp.csr_matrix], pca: WeightedPCA, snaps: np.ndarray,
                    node_weights: np.ndarray, groups, seed: int = 0) -> NuggetData:
    r"""Residuals of the pipeline on every training sample, corrected out of sample.

    Parameters
    ----------
    arrays : list of n arrays, each (n_i,) or (n_i, c)
        The training field on each sample's nodes.
    to_support, back : lists of n sparse matrices
        :math:`T_i` (``(n_s, n_i)``) and :math:`B_i` (``(n_i, n_s)``).
    pca : WeightedPCA
        The field's POD (fitted on ``snaps``).
    snaps : ndarray, shape (n, n_s * c)
        :math:`T_i u_i`, flattened.
    node_weights : ndarray, shape (n_s,)
        Lumped masses of the support.
    groups : sequence of length n
        Group of each sample (its mesh key).
    seed : int

    Returns
    -------
    NuggetData
    """
    n, n_s = len(arrays), len(node_weights)
    c = snaps.shape[1] // n_s
    recon = pca.inverse_transform(pca.transform(snaps))
    q = np.stack([np.asarray(T @ (a.reshape(-1, c) - np.asarray(B @ r.reshape(n_s, c))) ** 2)
                  for T, B, a, r in zip(to_support, back, arrays, recon, strict=True)])
    eps = np.einsum("j,ijc->i", node_weights, q)
    e_in, e_out = fold_truncation_energies(snaps, np.repeat(node_weights, c),
                                           pca.n_components_, groups, seed)
    eps_out = eps + np.maximum(e_out - e_in, 0.0)
    ratio = np.divide(eps_out, eps, out=np.ones(n), where=eps > 0)
    total = eps_out.sum()
    pattern = (np.einsum("i,ijc->jc", ratio, q) / total if total > 0 else np.zeros((n_s, c)))
    floor = max(1e-12 * float(eps_out.max(initial=0.0)), 1e-300)
    return NuggetData(q.mean(axis=0), pattern, np.log(np.maximum(eps_out, floor)))
