r"""Physics-Informed Gaussians (PIG) and the plain-MLP PINN baseline, in JAX.

A PIG (Kang et al., 2024) represents a field :math:`u: \Omega \subset \mathbb{R}^{d} \to
\mathbb{R}` by a learnable *parametric mesh* of ``N`` Gaussians feeding a tiny decoder:

.. math::

    \phi_c(\mathbf{x}) = \sum_{i=1}^{N} w_{ic}\,
        \exp\!\Big(-\tfrac12 \sum_{k=1}^{d}
        \Big(\frac{\hat x_k - \mu_{ik}}{\sigma_{ik}}\Big)^2\Big),
    \quad c = 1..D, \qquad
    u(\mathbf{x}) = \mathrm{MLP}\big(\phi_1(\mathbf{x}), \dots, \phi_D(\mathbf{x})\big),

with trainable means :math:`\mu \in \mathbb{R}^{N\times d}`, widths
:math:`\sigma \in \mathbb{R}_{>0}^{N\times d}` and weights :math:`w \in \mathbb{R}^{N\times D}`.
:math:`\hat{\mathbf{x}} = 2(\mathbf{x} - \mathbf{l})/(\mathbf{u} - \mathbf{l}) - 1 \in
[-1, 1]^d` is the input rescaled from the problem's box :math:`[\mathbf{l}, \mathbf{u}]`, so
means and widths are in rescaled (dimensionless) units whatever the physical box.

* Widths are kept positive by storing :math:`\log\sigma` (``params["log_sigma"]``):
  :math:`\sigma = e^{\log\sigma} > 0` for every finite parameter value, and the gradient is
  relative (scale-free) in :math:`\sigma`.
* Optional full covariances (``full_covariance=True``): the exponent becomes
  :math:`-\tfrac12\lVert A_i^\top(\hat{\mathbf{x}} - \mu_i)\rVert^2` with :math:`A_i` lower
  triangular with positive diagonal (``params["chol_log_diag"]`` stores its log-diagonal,
  ``params["chol_lower"]`` the strictly lower part), i.e. :math:`A_i` is the Cholesky factor
  of the *precision* :math:`\Sigma_i^{-1} = A_i A_i^\top`; :func:`covariances` returns
  :math:`\Sigma_i`. This is positive definite by construction and needs no triangular solve.
  Initialised at :math:`A_i = I/\sigma_0` (isotropic Gaussians of width :math:`\sigma_0`).
* Decoder: an MLP with ``hidden`` tanh layers (default one layer of 16 units), Glorot-uniform
  weights, zero biases, and a linear scalar output.
* Initialisation (seeded by a JAX PRNG key): means uniform in :math:`[-1, 1]^d` (uniform in the
  box; ``mean_init="uniform"``) or at the cell centres :math:`-1 + (2j + 1)/m`,
  :math:`j = 0..m-1`, of a regular grid of :math:`N = m^d` cells (``mean_init="grid"``, an even
  cover for fields that oscillate everywhere, such as Helmholtz with high wavenumbers), all
  widths :math:`\sigma_0` (``sigma_init``), weights
  :math:`w \sim \mathcal{N}(0, s^2)` with :math:`s` = ``weight_scale`` (default 0.1).

The PINN baseline :class:`MLP` is a tanh multilayer perceptron on the same rescaled input,
with Glorot-uniform initialisation (Glorot & Bengio 2010) and zero biases. It and the layers it
shares with the PIG's decoder live in :mod:`operators.pig_mlp`, the algebra of the closed-form
derivatives in :mod:`operators.pig_jet`; import everything from this module.

Both models share one interface: the model is a small frozen dataclass (its *spec*, JSON-able
through :func:`model_to_dict` / :func:`model_from_dict`), parameters are a dict of ``jnp``
arrays (a pytree), ``model.init(key) -> params`` and ``model.apply(params, x) -> u`` for a single
point ``x`` of shape ``(d,)`` returning a scalar. Batches use ``jax.vmap(model.apply, (None, 0))``
(or :func:`apply_batch`); derivatives of any order are ``jax.grad`` / ``jax.jacfwd`` /
``jax.hessian`` or nested ``jax.jvp`` (forward mode, cheaper for the low dimensions here) of
``lambda x: model.apply(params, x)``.

Precision follows the parameters: ``init`` creates arrays of ``dtype`` (``"float32"`` by
default, ``"float64"`` needs JAX's 64-bit mode, e.g. inside ``with jax.enable_x64(True):``;
this module never changes the global JAX configuration).

Cost: one evaluation is :math:`O(N d (d + D))` for the Gaussians plus the decoder. With a
cut-off (``cutoff=r``) a point only sums the Gaussians within Mahalanobis distance about
:math:`r` of it (:meth:`PIG.neighbour_table`): :math:`O(K d (d + D))` with :math:`K \ll N`
neighbours plus a neighbour table built once per parameter value (``benchmarks/pig_cutoff.py``,
loss and gradient on one core, cut-off 5: 1.7x faster with 2500 Gaussians of width 0.04 in 2D,
4.3x with 6400 of width 0.025, 3.8x with 4096 of width 0.05 in 3D; 0.7x, slower, with 1728 of
width 0.1 in 3D, where each list holds a third of the Gaussians). Derivatives in the coordinates
for physics-informed losses: :meth:`PIG.derivative` evaluates them in closed form (a Gaussian's
derivatives are the Gaussian times Hermite polynomials; Faa di Bruno's formula through the
decoder), sharing one evaluation of the Gaussians; ``surrogates.models.pinn.losses.diff`` uses it.
Measured on one shared CPU core (loss and gradient, 1024 points, median of 5), together with
evaluating the loss in chunks of :attr:`PIG.eval_chunk` points, against nested ``jax.jvp``
through :meth:`PIG.apply` on the whole batch: Helmholtz with 400 Gaussians 22 ms a step instead
of 53 ms, Allen-Cahn (400) 19 instead of 50 ms, flow mixing (800, 3D) 53 instead of 107 ms (the
PINN baseline, 3 x 64 tanh: 9, 9 and 6 ms).

References
----------
.. [1] N. Kang, J. Oh, Y. Hong and E. Park, "PIG: Physics-Informed Gaussians as Adaptive
   Parametric Mesh Representations", ICLR 2025 (arXiv:2412.05994).
.. [2] X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward
   neural networks", AISTATS 2010.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from operators.pig_jet import _matchings_poly, _mlp_jet
from operators.pig_mlp import (
    _DTYPES,
    MLP,
    _check_box,
    _check_dtype,
    _check_hidden,
    _check_point,
    _check_pos_int,
    _glorot_layers,
    _mlp,
    _rescale,
)

__all__ = [
    "MLP",
    "PIG",
    "apply_batch",
    "covariances",
    "model_from_dict",
    "model_to_dict",
    "sigmas",
]


def _grid_side(n: int, d: int) -> int | None:
    """``m`` with ``m**d == n``, or None."""
    m = round(n ** (1.0 / d))
    return next((k for k in (m - 1, m, m + 1) if k >= 1 and k**d == n), None)


@dataclass(frozen=True)
class PIG:
    r"""Physics-Informed Gaussians: ``N`` adaptive Gaussians -> ``D`` features -> tanh MLP.

    Parameters
    ----------
    lower, upper : sequence of float, length d
        The problem's box; inputs are rescaled from it to ``[-1, 1]^d``.
    n_gaussians : int, default 100
        Number of Gaussians ``N``.
    n_features : int, default 4
        Feature channels ``D``.
    sigma_init : float, default 0.1
        Initial width (in rescaled units, where the box has side 2), ``> 0``.
    full_covariance : bool, default False
        Full covariances through a Cholesky factor of the precision (module docstring).
    hidden : tuple of int, default (16,)
        Decoder hidden widths (tanh); ``()`` makes the decoder linear.
    weight_scale : float, default 0.1
        Standard deviation of the initial Gaussian weights ``w``.
    mean_init : {"uniform", "grid"}, default "uniform"
        Initial means: uniform random in the box, or the cell centres of a regular grid
        (needs ``n_gaussians`` = m**d).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters made by :meth:`init`.
    cutoff : float, optional
        Truncation radius :math:`r` in each Gaussian's own widths: a point sums only the
        Gaussians whose box :math:`\mu_i \pm r\,\sqrt{\Sigma_{i,kk}}` overlaps its cell of
        a regular grid (:meth:`neighbour_table`). Every Gaussian left out has
        :math:`|\hat x_k - \mu_{ik}| \ge r \sqrt{\Sigma_{i,kk}}` along some axis, so
        Mahalanobis distance :math:`\ge r`, and contributes at most
        :math:`|w_{ic}|\,e^{-r^2/2}` to a feature (:math:`3.7\times10^{-6}|w|` at
        :math:`r = 5`; its k-th derivatives are that times a degree-k polynomial in r).
        None (default): every point sums all ``N`` Gaussians, exactly.
    neighbours : int, optional
        With ``cutoff``: the capacity ``K`` of each cell's list of Gaussians. Default: 1.5x the
        count expected for means spread evenly at width ``sigma_init``, plus 8, at most ``N``.
        Gaussians that grow wider than that allows are dropped from full lists:
        :meth:`neighbour_overflow` counts them, and :func:`surrogates.models.pinn.train` warns.

    Raises
    ------
    ValueError
        On an empty or inverted box, non-positive sizes or widths, a bad dtype or
        ``mean_init`` name, a grid initialisation with ``n_gaussians`` not a d-th power, or a
        non-positive ``cutoff`` or ``neighbours``.
    """

    #: Points per chunk when a loss evaluates the field at many points
    #: (:func:`surrogates.models.pinn.losses.pointwise`): (points, N) temporaries then fit in cache.
    eval_chunk: ClassVar[int] = 64

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    n_gaussians: int = 100
    n_features: int = 4
    sigma_init: float = 0.1
    full_covariance: bool = False
    hidden: tuple[int, ...] = (16,)
    weight_scale: float = 0.1
    mean_init: str = "uniform"
    dtype: str = "float32"
    cutoff: float | None = None
    neighbours: int | None = None

    #: At most this many cells in the grid of :meth:`neighbour_table`.
    max_cells: ClassVar[int] = 4096

    def __post_init__(self):
        lo, hi = _check_box(self.lower, self.upper)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "n_gaussians", _check_pos_int(self.n_gaussians, "n_gaussians"))
        object.__setattr__(self, "n_features", _check_pos_int(self.n_features, "n_features"))
        object.__setattr__(self, "hidden", _check_hidden(self.hidden, allow_empty=True))
        for name in ("sigma_init", "weight_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (
                math.isfinite(v) and v > 0
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        object.__setattr__(self, "full_covariance", bool(self.full_covariance))
        if self.mean_init not in ("uniform", "grid"):
            raise ValueError(f"mean_init must be 'uniform' or 'grid', got {self.mean_init!r}")
        if self.mean_init == "grid" and _grid_side(self.n_gaussians, len(lo)) is None:
            raise ValueError(
                f"mean_init='grid' needs n_gaussians = m**{len(lo)} for an integer m, got "
                f"{self.n_gaussians}"
            )
        if self.cutoff is not None:
            c = self.cutoff
            if isinstance(c, bool) or not isinstance(c, int | float) or not (
                    math.isfinite(c) and c > 0):
                raise ValueError(f"cutoff must be None or a finite number > 0, got {c!r}")
            object.__setattr__(self, "cutoff", float(c))
            if self.neighbours is None:
                side = (self.cell_size + 2.0 * self.cutoff * self.sigma_init) / 2.0
                expected = self.n_gaussians * min(1.0, side) ** self.dim
                object.__setattr__(self, "neighbours",
                                   min(self.n_gaussians, math.ceil(1.5 * expected) + 8))
        if self.neighbours is not None:
            object.__setattr__(self, "neighbours", _check_pos_int(self.neighbours, "neighbours"))
            if self.cutoff is None:
                raise ValueError("neighbours (the list capacity) needs a cutoff")

    @property
    def dim(self) -> int:
        """Input dimension ``d``."""
        return len(self.lower)

    @property
    def cells_per_axis(self) -> int:
        r"""Cells per axis ``m`` of the neighbour grid on :math:`[-1, 1]^d`.

        Smaller cells give shorter lists but a larger table: with cell side :math:`h = 2/m`,
        a point's list holds about :math:`N ((h + 2 r \sigma_0)/2)^d` Gaussians and the table
        costs :math:`m^d N` box tests. ``m`` (at most :attr:`max_cells` cells in all)
        minimises :math:`c P N ((h + 2 r \sigma_0)/2)^d + m^d N` for :math:`P = 1536`
        points (1024 collocation points and the condition points) and :math:`c = 11`, the
        measured cost of a point-Gaussian pair in a training step relative to a box test
        (one core, Helmholtz, 2500 Gaussians).
        """
        if self.cutoff is None:
            return 1
        cap = math.floor(self.max_cells ** (1.0 / self.dim) + 1e-9)

        def cost(m):
            side = min(1.0, (2.0 / m + 2.0 * self.cutoff * self.sigma_init) / 2.0)
            return 11.0 * 1536 * side**self.dim + m**self.dim

        return min(range(1, max(1, cap) + 1), key=cost)

    @property
    def cell_size(self) -> float:
        """Side of a neighbour-grid cell in rescaled units."""
        return 2.0 / self.cells_per_axis

    def neighbour_table(self, params: dict) -> tuple[jax.Array, jax.Array]:
        r"""``(index, valid)``, each ``(C, K)``: for each of the ``C`` cells of a regular grid
        on :math:`[-1, 1]^d` (:attr:`cells_per_axis` per axis, C-ordered), the indices of the
        (at most ``K`` = ``neighbours``) Gaussians whose box
        :math:`\mu_i \pm r\sqrt{\Sigma_{i,kk}}` overlaps the cell (lowest indices first),
        and which entries are real (``index`` is 0 where ``valid`` is False).

        Built from the current means and widths in :math:`O(CN)` without gradients (the lists
        change only when a Gaussian crosses a cell face, where the Gaussian is below
        :math:`e^{-r^2/2}`); compute it once per parameter value and pass it to
        :meth:`apply` / :meth:`derivative` (:class:`surrogates.models.pinn.losses.Field` does).
        """
        touch = self._overlaps(params)
        n = touch.shape[1]
        index = jax.vmap(lambda row: jnp.nonzero(row, size=self.neighbours, fill_value=n)[0])(
            touch)
        valid = index < n
        return jnp.where(valid, index, 0).astype(jnp.int32), valid

    def neighbour_overflow(self, params: dict) -> int:
        """How many more Gaussians the fullest cell overlaps than its list holds (0: none is
        dropped beyond the cut-off)."""
        return max(0, int(jnp.max(jnp.sum(self._overlaps(params), axis=1))) - self.neighbours)

    def _overlaps(self, params: dict) -> jax.Array:
        """``(C, N)``: whether Gaussian ``i``'s box :math:`\\mu_i \\pm r\\sqrt{\\Sigma_{i,kk}}`
        overlaps cell ``c`` (no gradient)."""
        if self.cutoff is None:
            raise ValueError("this PIG has no cutoff: every point sums all Gaussians")
        params = jax.lax.stop_gradient(params)
        half = self.cutoff * sigmas(self, params)
        m, h = self.cells_per_axis, self.cell_size
        lo = jnp.clip(jnp.floor((params["mu"] - half + 1.0) / h), 0, m - 1).astype(jnp.int32)
        hi = jnp.clip(jnp.floor((params["mu"] + half + 1.0) / h), 0, m - 1).astype(jnp.int32)
        cells = np.stack(np.unravel_index(np.arange(m**self.dim), (m,) * self.dim), axis=1)
        touch = jnp.ones((cells.shape[0], lo.shape[0]), bool)
        for k in range(self.dim):
            ck = jnp.asarray(cells[:, k:k + 1])
            touch = touch & (ck >= lo[None, :, k]) & (ck <= hi[None, :, k])
        return touch

    def _local(self, params: dict, xh, table) -> dict:
        """``params`` restricted to the Gaussians listed for the cell of the rescaled point
        ``xh`` (padding entries get weight 0); ``params`` itself without a cut-off."""
        if self.cutoff is None:
            return params
        if table is None:
            table = self.neighbour_table(params)
        m, h = self.cells_per_axis, self.cell_size
        cell = jnp.clip(jnp.floor((xh + 1.0) / h), 0, m - 1).astype(jnp.int32)
        flat = jnp.ravel_multi_index(tuple(cell), (m,) * self.dim, mode="clip")
        idx, valid = table[0][flat], table[1][flat]
        local = {k: v if k == "decoder" else jnp.asarray(v)[idx] for k, v in params.items()}
        local["w"] = local["w"] * valid[:, None].astype(local["w"].dtype)
        return local

    def init(self, key) -> dict:
        """Parameters ``{"mu" (N, d), "log_sigma" (N, d) | "chol_log_diag" (N, d) and
        "chol_lower" (N, d, d), "w" (N, D), "decoder": [{"W", "b"}, ...]}``."""
        dtype = _check_dtype(self.dtype)
        k_mu, k_w, k_dec = jax.random.split(key, 3)
        N, d, D = self.n_gaussians, self.dim, self.n_features
        if self.mean_init == "grid":
            m = _grid_side(N, d)
            centres = -1.0 + (2.0 * np.arange(m) + 1.0) / m
            grid = np.stack(np.meshgrid(*([centres] * d), indexing="ij"), axis=-1)
            mu = jnp.asarray(grid.reshape(N, d), dtype)
        else:
            mu = jax.random.uniform(k_mu, (N, d), dtype, -1.0, 1.0)
        params = {
            "mu": mu,
            "w": self.weight_scale * jax.random.normal(k_w, (N, D), dtype),
            "decoder": _glorot_layers(k_dec, (D, *self.hidden, 1), dtype),
        }
        log_s = jnp.full((N, d), math.log(self.sigma_init), dtype)
        if self.full_covariance:
            params["chol_log_diag"] = -log_s  # A = I / sigma_init
            params["chol_lower"] = jnp.zeros((N, d, d), dtype)
        else:
            params["log_sigma"] = log_s
        return params

    def _gaussians(self, params: dict, xh):
        r"""``(g, z)``: the Gaussians :math:`g_i` ``(N,)`` at one rescaled point
        :math:`\hat{\mathbf{x}}` and the whitened offsets
        :math:`z_i = A_i^\top(\hat{\mathbf{x}} - \mu_i)`, stored as ``(d, N)``."""
        if self.full_covariance:
            diff = xh - params["mu"]  # (N, d)
            z = jnp.einsum("nkj,nk->nj", _precision_factor(params), diff).T  # A^T diff
        else:  # coordinate by coordinate: d arrays of shape (N,), no (N, d) temporaries
            z = jnp.stack([(xh[k] - params["mu"][:, k]) * jnp.exp(-params["log_sigma"][:, k])
                           for k in range(self.dim)])
        return jnp.exp(-0.5 * sum(z[k] * z[k] for k in range(self.dim))), z

    def features(self, params: dict, x, table=None) -> jax.Array:
        """The ``D`` Gaussian features :math:`\\phi_c(\\mathbf{x})` at one point, shape ``(D,)``
        (``table``: :meth:`neighbour_table`, with a cut-off; built here when None)."""
        x = jnp.asarray(x)
        _check_point(x, self.dim)
        xh = _rescale(x, self.lower, self.upper)
        local = self._local(params, xh, table)
        return self._gaussians(local, xh)[0] @ local["w"]

    def apply(self, params: dict, x, table=None) -> jax.Array:
        """The scalar field :math:`u(\\mathbf{x})` at one point ``x`` of shape ``(d,)``."""
        return _mlp(params["decoder"], self.features(params, x, table))

    def _feature_jet(self, params: dict, xh, axes: tuple[int, ...], subsets: tuple) -> list:
        """:math:`\\phi_S` (``(D,)`` each) for each subset ``S`` of the directions of ``axes``
        at the rescaled point ``xh`` (:meth:`derivative`)."""
        g, z = self._gaussians(params, xh)
        k = len(axes)
        scale = [2.0 / (self.upper[a] - self.lower[a]) for a in axes]
        if self.full_covariance:
            A = _precision_factor(params)
            zv = [s * A[:, a, :].T for s, a in zip(scale, axes, strict=True)]  # A^T v_j (d, N)
            a_coef = [-jnp.sum(z * v, axis=0) for v in zv]
            c_coef = {(j, m): -jnp.sum(zv[j] * zv[m], axis=0)
                      for j in range(k) for m in range(j + 1, k)}
        else:
            inv = [s * jnp.exp(-params["log_sigma"][:, a]) for s, a in zip(scale, axes,
                                                                             strict=True)]
            a_coef = [-z[a] * v for a, v in zip(axes, inv, strict=True)]
            c_coef = {(j, m): -inv[j] * inv[m]
                      for j in range(k) for m in range(j + 1, k) if axes[j] == axes[m]}
        unique = {}  # subsets along the same multiset of axes have the same derivative
        for S in subsets:
            key = tuple(sorted(axes[j] for j in S))
            if key not in unique:
                unique[key] = (g * _matchings_poly(a_coef, c_coef, S)) @ params["w"]
        return [unique[tuple(sorted(axes[j] for j in S))] for S in subsets]

    def derivative(self, params: dict, x, axes: tuple[int, ...], table=None) -> jax.Array:
        r"""The partial derivative :math:`\partial^k u/\partial x_{a_1}\cdots\partial x_{a_k}`
        at one point, with the Gaussian part in closed form.

        Same value as nested ``jax.jvp`` of :meth:`apply` (to round-off) at a fraction of the
        cost, because all feature derivatives share one evaluation of the Gaussians. With
        :math:`v_j = (2/(u_{a_j} - l_{a_j}))\,\mathbf{e}_{a_j}` (the rescaling),
        :math:`a_{ij} = -z_i\cdot A_i^\top v_j`, :math:`c_{i,jl} = -(A_i^\top v_j)\cdot
        (A_i^\top v_l)` (:math:`A_i^\top = \mathrm{diag}(1/\sigma_i)` for the diagonal
        model), the derivative of the features along the directions of a subset :math:`S` of
        :math:`\{1..k\}` is a Gaussian times a Hermite polynomial,

        .. math::

            \phi_S = \partial_S \phi = \sum_i w_i\, g_i \sum_{M}
                \prod_{(j,l)\in M} c_{i,jl} \prod_{m \in S\setminus M} a_{im},

        summed over the partial matchings :math:`M` of :math:`S`. The decoder is then
        differentiated through the multilinear Taylor model
        :math:`\tilde\phi(t) = \sum_S \phi_S \prod_{j\in S} t_j`:
        :math:`\partial_{t_1}\cdots\partial_{t_k}\mathrm{MLP}(\tilde\phi(t))|_{t=0}` equals the
        chain rule (Faa di Bruno) for the mixed derivative, which only involves the
        derivatives :math:`\phi_S` of the features along subsets of the directions.

        Parameters
        ----------
        params : dict
        x : array of shape (d,)
        axes : tuple of int
            Coordinate indices :math:`a_1..a_k` (repeats allowed); ``()`` is ``apply``.
        table : tuple, optional
            :meth:`neighbour_table` of ``params``, with a cut-off (built here when None).
        """
        x = jnp.asarray(x)
        _check_point(x, self.dim)
        axes = tuple(int(a) for a in axes)
        if any(a < 0 or a >= self.dim for a in axes):
            raise ValueError(f"axes must be in 0..{self.dim - 1}, got {axes}")
        if not axes:
            return self.apply(params, x, table)
        k = len(axes)
        subsets = tuple(tuple(j for j in range(k) if mask >> j & 1) for mask in range(1 << k))
        xh = _rescale(x, self.lower, self.upper)
        local = self._local(params, xh, table)
        return _mlp_jet(params["decoder"], self._feature_jet(local, xh, axes, subsets))


def _precision_factor(params: dict) -> jax.Array:
    """Lower-triangular ``A`` (N, d, d) with positive diagonal; precision ``A A^T``."""
    low = jnp.tril(params["chol_lower"], k=-1)
    return low + jax.vmap(jnp.diag)(jnp.exp(params["chol_log_diag"]))


def sigmas(model: PIG, params: dict) -> jax.Array:
    """Widths ``(N, d)`` in rescaled units: :math:`\\sigma` (diagonal model) or the marginal
    standard deviations :math:`\\sqrt{\\Sigma_{i,kk}}` (full covariance); always ``> 0``."""
    if model.full_covariance:
        return jnp.sqrt(jnp.diagonal(covariances(model, params), axis1=-2, axis2=-1))
    return jnp.exp(params["log_sigma"])


def covariances(model: PIG, params: dict) -> jax.Array:
    """Covariance matrices :math:`\\Sigma_i` ``(N, d, d)`` in rescaled units."""
    if not model.full_covariance:
        return jax.vmap(jnp.diag)(jnp.exp(2.0 * params["log_sigma"]))
    A = _precision_factor(params)
    eye = jnp.eye(model.dim, dtype=A.dtype)
    Ainv = jax.vmap(lambda a: jax.scipy.linalg.solve_triangular(a, eye, lower=True))(A)
    return jnp.einsum("nki,nkj->nij", Ainv, Ainv)  # (A A^T)^{-1} = A^{-T} A^{-1}


def apply_batch(model: PIG | MLP, params: dict, x) -> jax.Array:
    """``u`` at a batch of points ``x`` of shape ``(n, d)``, shape ``(n,)``."""
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != model.dim:
        raise ValueError(f"x must have shape (n, {model.dim}), got shape {x.shape}")
    return jax.vmap(model.apply, in_axes=(None, 0))(params, x)


def model_to_dict(model: PIG | MLP) -> dict:
    """JSON-able description ``{"kind": "pig" | "mlp", **constructor arguments}``."""
    kind = {PIG: "pig", MLP: "mlp"}.get(type(model))
    if kind is None:
        raise ValueError(f"model must be a PIG or an MLP, got {type(model).__name__}")
    d = dataclasses.asdict(model)
    return {"kind": kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}}


def model_from_dict(spec: dict) -> PIG | MLP:
    """Rebuild a model from :func:`model_to_dict`'s output."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    classes = {"pig": PIG, "mlp": MLP}
    if kind not in classes:
        raise ValueError(f"spec['kind'] must be 'pig' or 'mlp', got {kind!r}")
    for key in ("lower", "upper", "hidden"):
        if key in spec:
            spec[key] = tuple(spec[key])
    return classes[kind](**spec)
