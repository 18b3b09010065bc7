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

with :math:`\operatorname{Var}[a_k]` the GP predictive variance including its learned noise
(calibrated per sample by leave-one-shape-out, ``calibration="group-loo"``). The second term
(``truncation_nugget=True``, the default) is a *reconstruction nugget*
(:mod:`surrogates.models.mmgp.nugget`): the part of the error the mode GPs cannot see, namely
POD truncation and the transfer to the support and back. On every training sample the whole
linear pipeline is applied to the true field, :math:`r_i = u_i - B_i\,\mathrm{dec}(\mathrm{enc}
(T_i u_i))`, its squares are carried to the support, :math:`q_i = T_i r_i^2`, their energy is
corrected out of sample (PODs fitted without the sample's fold) and a GP over the MMGP inputs
learns the log-energy, so that at a query :math:`\varepsilon = E(x)\,\bar p` grows where the
training shapes nearby lost more to truncation; it is interpolated, :math:`(B\varepsilon)_j`, as
an independent nodal variance. No Monte Carlo is needed; :meth:`MMGPRegressor.sample_y` draws
samples the same way for checks.

Modules: :mod:`~surrogates.models.mmgp.pca` (lumped masses, weighted POD),
:mod:`~surrogates.models.mmgp.regressor` (:class:`MMGPRegressor`),
:mod:`~surrogates.models.mmgp.nugget` (the reconstruction nugget),
:mod:`~surrogates.models.mmgp.persist` (save / load), :mod:`~surrogates.models.mmgp.plumbing`.

References
----------
.. [1] F. Casenave, B. Staber and X. Roynard, "MMGP: a Mesh Morphing Gaussian Process-based
   machine learning method for regression of physical problems under non-parameterized
   geometrical variability", NeurIPS 2023.
"""

from surrogates.models.mmgp.pca import WeightedPCA, lumped_mass
from surrogates.models.mmgp.regressor import MMGPRegressor

__all__ = ["MMGPRegressor", "WeightedPCA", "lumped_mass"]
