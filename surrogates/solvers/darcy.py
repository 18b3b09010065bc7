r"""Two-dimensional Darcy flow: a batched multigrid-preconditioned CG reference solver in JAX.

The steady Darcy (variable-coefficient Poisson) problem of the neural-operator literature
(Li et al. 2021, FNO; PDEBench 2D DarcyFlow) on the unit square :math:`\Omega = (0, 1)^2`:

.. math::

    -\nabla\cdot\big(a(x, y)\,\nabla u(x, y)\big) = f(x, y) \quad\text{in }\Omega,
    \qquad u = 0 \quad\text{on }\partial\Omega,

with a positive permeability :math:`a` and forcing :math:`f` (1 by default). Everything is
dimensionless.

Grid and layout: ``n x n`` equal cells of width :math:`h = 1/n`, unknowns at the cell centres
:math:`(x_i, y_j) = ((i + 1/2)h, (j + 1/2)h)`. Arrays are indexed ``[..., j, i]`` = ``[..., y,
x]`` (rows are y). ``a`` is given per cell.

Discretisation (cell-centred finite differences / two-point flux finite volumes):

.. math::

    (A u)_{j,i} = \frac{1}{h^2}\Big[T_{j,i+1/2}(u_{j,i} - u_{j,i+1})
        + T_{j,i-1/2}(u_{j,i} - u_{j,i-1}) + T_{j+1/2,i}(u_{j,i} - u_{j+1,i})
        + T_{j-1/2,i}(u_{j,i} - u_{j-1,i})\Big] = f_{j,i},

with the face coefficient the harmonic mean of the two adjacent cells,
:math:`T_{j,i+1/2} = 2a_{j,i}a_{j,i+1}/(a_{j,i} + a_{j,i+1})` (exact flux continuity for a
piecewise-constant ``a``). At a boundary face the coefficient is the cell's own value and the
Dirichlet condition enters through a ghost value :math:`u_{\rm ghost} = -u_{j,i}` (linear
extrapolation to :math:`u = 0` on the wall), i.e. the boundary flux is
:math:`2a_{j,i}(u_{j,i} - 0)/h`: :math:`T = 2a_{j,i}` in the formula above. ``A`` is symmetric
positive definite (an M-matrix); the scheme is second-order accurate for smooth ``a`` and ``u``
(the boundary cells have an :math:`O(1)` truncation error in a layer of width ``h``, which
still gives :math:`O(h^2)` errors; tested). :func:`darcy_operator_matrix` assembles the same
matrix with SciPy.

Solver: conjugate gradients (CG) preconditioned by one multigrid V-cycle per iteration, for the
whole batch at once (one ``lax.while_loop``; a sample stops changing when its own relative
residual :math:`\|f - Au\|_2/\|f\|_2` reaches ``tol``, so its result does not depend on the
batch). The V-cycle:

* Levels: the grid is halved while ``n`` is even and larger than 4 (64 -> 32 -> 16 -> 8 -> 4,
  48 -> ... -> 3, 60 -> 30 -> 15, 100 -> 50 -> 25); the coarsest level (at most
  :data:`MAX_COARSEST` cells a side) is solved exactly with a dense batched Cholesky
  factorisation computed once per solve.
* Transfers: piecewise-constant prolongation ``P`` (a coarse value is copied to its 2 x 2
  children) and restriction ``R = P^T`` (sum of the 4 children, i.e. 4 x their average), so
  ``R`` is exactly the adjoint of ``P``.
* Coarse operator: Galerkin :math:`A_c = \tfrac12 P^T A P`. For piecewise-constant ``P``,
  :math:`P^T A P` is again a five-point two-point-flux operator whose coarse face weight is the
  *sum* of the two fine face weights lying on that coarse face (fluxes inside a 2 x 2 block
  cancel), boundary faces included; it is built from the fine *face* coefficients (already
  harmonic means), so jumps in ``a`` are seen exactly as the fine grid sees them, which is
  what makes the cycle robust for the 3/12 piecewise-constant fields. The factor 1/2 is the
  classic correction of piecewise-constant Galerkin coarsening (Braess 1986): for constant
  ``a`` it makes :math:`A_c` equal to re-discretisation on the coarse grid (``P^T A P`` is twice
  that), i.e. the coarse correction is over-relaxed by 2, which offsets the poor approximation
  of smooth errors by piecewise constants. (Re-discretising with 2 x 2 block averages of ``a``
  is the alternative; arithmetic averaging over-estimates flow across a jump, harmonic
  averaging under-estimates it along one, while the face sums need no choice.)
* Smoother: red-black Gauss-Seidel, ``NU`` sweeps red-then-black before the coarse correction
  and ``NU`` sweeps black-then-red after it. The post-smoother is the adjoint of the
  pre-smoother and ``R = P^T``, so the V-cycle is a symmetric positive-definite preconditioner,
  as CG needs.

Measured PCG iterations to a relative residual of 1e-10 (float64), 8 fields each:
piecewise-constant 3/12 fields 8-9 (n = 32), 9 (64), 9-10 (128), 10-11 (256), 9 (48, 60,
100); log-normal fields 8-9 for all of these sizes (see the tests and
``benchmarks/solver_darcy.py``).

Coefficient fields (the literature's generators): :func:`gaussian_random_field` samples a
mean-zero Gaussian field with covariance :math:`\tau^{2\alpha - 2}(-\Delta + \tau^2 I)^{-\alpha}`
(Neumann Laplacian, alpha = 2, tau = 3); :func:`piecewise_constant_coefficient` thresholds it
(12 where it is >= 0, 3 elsewhere, the FNO Darcy data); :func:`lognormal_coefficient` takes its
exponential (smooth).

Computations are float64 by default: 64-bit mode is switched on with ``jax.enable_x64(True)``
as a context manager *inside* each solver call only; the global JAX configuration is never
changed.

References
----------
.. [1] Z. Li et al., "Fourier neural operator for parametric partial differential equations",
   ICLR 2021 (Darcy flow data: GRF(alpha=2, tau=3) thresholded to 12/3, f = 1).
.. [2] M. Takamoto et al., "PDEBench: An extensive benchmark for scientific machine learning",
   NeurIPS Datasets and Benchmarks, 2022.
.. [3] D. Braess, "On the combination of the multigrid method and conjugate gradients",
   Multigrid Methods II, Lecture Notes in Math. 1228, 52-64, 1986.
.. [4] P. Wesseling, "An Introduction to Multigrid Methods", Wiley, 1992 (cell-centred
   multigrid).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
import scipy.sparse
from numpy.typing import ArrayLike

from surrogates.solvers.checks import check_dtype, check_int, check_positive

__all__ = [
    "DarcyConvergenceError",
    "DarcySolution",
    "cell_centers",
    "darcy_operator_matrix",
    "gaussian_random_field",
    "lognormal_coefficient",
    "piecewise_constant_coefficient",
    "solve_darcy",
]

#: Red-black Gauss-Seidel sweeps before and after the coarse correction on every level.
NU = 2
#: Largest coarsest grid (cells a side) solved densely: ``n`` must be ``m * 2**k`` with
#: ``m <= MAX_COARSEST`` (the dense factor costs ``B * m**4`` numbers of memory).
MAX_COARSEST = 32
#: Default relative-residual tolerance per precision.
DEFAULT_TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
#: Piecewise-constant coefficient values (FNO Darcy data): where the GRF is >= 0, and < 0.
PIECEWISE_VALUES = (12.0, 3.0)


class DarcyConvergenceError(RuntimeError):
    """PCG did not reach the tolerance within ``max_iter`` iterations."""


@dataclass(frozen=True)
class DarcySolution:
    """Result of :func:`solve_darcy` (NumPy arrays).

    Attributes
    ----------
    u : ndarray, shape (B, n, n), or (n, n) for an unbatched coefficient
        Pressure / potential at the cell centres, indexed ``[..., y, x]``; dtype of the
        computation.
    iterations : ndarray of int, shape (B,), or int for an unbatched coefficient
        PCG iterations each sample took.
    residual_norms : ndarray, shape (B, K + 1), or (K + 1,) unbatched
        Relative residual :math:`\\|f - Au_k\\|_2 / \\|f\\|_2` after each iteration ``k``
        (recursively updated, as CG computes it), ``k = 0`` the initial guess ``u = 0``;
        ``K`` is the largest iteration count of the batch and entries after a sample
        converged are NaN.
    final_residual : ndarray, shape (B,), or float unbatched
        The true relative residual of ``u``, recomputed at the end.
    """

    u: np.ndarray
    iterations: np.ndarray | int
    residual_norms: np.ndarray
    final_residual: np.ndarray | float


def cell_centers(n: int) -> np.ndarray:
    """Cell centres ``(i + 1/2)/n`` of the unit interval, shape ``(n,)``, float64."""
    n = check_int(n, "n", minimum=2)
    return (np.arange(n, dtype=np.float64) + 0.5) / n


# ----------------------------------------------------------------------------------------------
# Coefficient fields
# ----------------------------------------------------------------------------------------------


def gaussian_random_field(n_samples: int, n: int, seed: int = 0, *, alpha: float = 2.0,
                          tau: float = 3.0, sample_offset: int = 0) -> np.ndarray:
    r"""Mean-zero Gaussian random fields on the cell centres, as in the FNO Darcy data.

    Covariance :math:`C = \tau^{2\alpha - 2}(-\Delta + \tau^2 I)^{-\alpha}` with the Neumann
    Laplacian on the unit square, sampled in its eigenbasis (Karhunen-Loeve):

    .. math::

        g(x, y) = \sum_{(k, l) \ne (0, 0)} \xi_{kl}\,\tau^{\alpha - 1}
            \big(\pi^2(k^2 + l^2) + \tau^2\big)^{-\alpha/2}\,\phi_k(x)\,\phi_l(y),
        \qquad \xi_{kl} \sim N(0, 1),

    :math:`\phi_0 = 1`, :math:`\phi_k(x) = \sqrt2\cos(\pi k x)`, ``0 <= k, l < n`` (every mode
    the grid resolves), evaluated at the cell centres by an orthonormal inverse DCT-II
    (``n * scipy.fft.idctn(..., norm="ortho")``). The constant mode is dropped (mean zero) and
    :math:`\tau^{\alpha-1}` is the normalisation of Li et al.'s generator.

    Sample number ``m = sample_offset + s`` draws its ``n x n`` coefficients from its own
    generator ``np.random.default_rng([seed, m])``, so a sample does not depend on the batch
    it is generated in (it does depend on ``n``).

    Parameters
    ----------
    n_samples : int
        Number of fields ``B`` (>= 1).
    n : int
        Cells a side (>= 2).
    seed : int, default 0
        Non-negative base seed.
    alpha, tau : float, default 2, 3
        Smoothness and inverse length scale (> 0).
    sample_offset : int, default 0
        Global index of the first sample.

    Returns
    -------
    ndarray, shape (B, n, n)
        float64 fields, indexed ``[sample, y, x]``.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n = check_int(n, "n", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    sample_offset = check_int(sample_offset, "sample_offset", minimum=0)
    alpha = check_positive(alpha, "alpha")
    tau = check_positive(tau, "tau")
    k = np.arange(n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    sigma = tau ** (alpha - 1.0) * (np.pi**2 * k2 + tau**2) ** (-alpha / 2.0)
    sigma[0, 0] = 0.0
    out = np.empty((n_samples, n, n))
    for s in range(n_samples):
        xi = np.random.default_rng([seed, sample_offset + s]).standard_normal((n, n))
        out[s] = n * scipy.fft.idctn(sigma * xi, type=2, norm="ortho")
    return out


def piecewise_constant_coefficient(n_samples: int, n: int, seed: int = 0, *,
                                   alpha: float = 2.0, tau: float = 3.0,
                                   sample_offset: int = 0) -> np.ndarray:
    """Two-phase permeability: 12 where the :func:`gaussian_random_field` is >= 0, else 3.

    Same arguments and sample seeding as :func:`gaussian_random_field`; float64
    ``(B, n, n)``.
    """
    g = gaussian_random_field(n_samples, n, seed, alpha=alpha, tau=tau,
                              sample_offset=sample_offset)
    return np.where(g >= 0.0, PIECEWISE_VALUES[0], PIECEWISE_VALUES[1])


def lognormal_coefficient(n_samples: int, n: int, seed: int = 0, *, alpha: float = 2.0,
                          tau: float = 3.0, sample_offset: int = 0) -> np.ndarray:
    """Smooth log-normal permeability ``exp(g)`` of a :func:`gaussian_random_field` ``g``.

    Same arguments and sample seeding as :func:`gaussian_random_field`; float64
    ``(B, n, n)``.
    """
    return np.exp(gaussian_random_field(n_samples, n, seed, alpha=alpha, tau=tau,
                                        sample_offset=sample_offset))


# ----------------------------------------------------------------------------------------------
# Discretisation (shared by NumPy and JAX: ``xp`` is the array module)
# ----------------------------------------------------------------------------------------------


def _face_weights(a, xp):
    """Face weights ``T / h^2`` of :math:`A`: ``wx (..., n, n+1)``, ``wy (..., n+1, n)``.

    ``wx[..., j, i]`` belongs to the face at ``x = i h`` between cells ``(j, i-1)`` and
    ``(j, i)`` (``i = 0`` and ``i = n`` are the walls); ``wy`` likewise in y.
    """
    n = a.shape[-1]
    inv_h2 = float(n) ** 2

    def harmonic(p, q):
        return 2.0 * p * q / (p + q)

    wx = xp.concatenate([2.0 * a[..., :, :1], harmonic(a[..., :, :-1], a[..., :, 1:]),
                         2.0 * a[..., :, -1:]], axis=-1)
    wy = xp.concatenate([2.0 * a[..., :1, :], harmonic(a[..., :-1, :], a[..., 1:, :]),
                         2.0 * a[..., -1:, :]], axis=-2)
    return wx * inv_h2, wy * inv_h2


def _apply(wx, wy, u):
    """Five-point flux operator ``A u`` for face weights ``wx, wy``; zero wall values."""
    ux = jnp.pad(u, [(0, 0)] * (u.ndim - 1) + [(1, 1)])
    fx = wx * (ux[..., 1:] - ux[..., :-1])  # (..., n, n+1): u_i - u_{i-1} at face i
    uy = jnp.pad(u, [(0, 0)] * (u.ndim - 2) + [(1, 1), (0, 0)])
    fy = wy * (uy[..., 1:, :] - uy[..., :-1, :])
    return -(fx[..., 1:] - fx[..., :-1]) - (fy[..., 1:, :] - fy[..., :-1, :])


def _diagonal(wx, wy):
    return wx[..., :, :-1] + wx[..., :, 1:] + wy[..., :-1, :] + wy[..., 1:, :]


def _coarsen(wx, wy):
    """Face weights of :math:`A_c = \\tfrac12 P^T A P` (piecewise-constant ``P``)."""
    B, n, _ = wx.shape
    m = n // 2
    cx = 0.5 * wx[:, :, ::2].reshape(B, m, 2, m + 1).sum(axis=2)
    cy = 0.5 * wy[:, ::2, :].reshape(B, m + 1, m, 2).sum(axis=3)
    return cx, cy


def _restrict(r):
    B, n, _ = r.shape
    return r.reshape(B, n // 2, 2, n // 2, 2).sum(axis=(2, 4))


def _prolong(e):
    return jnp.repeat(jnp.repeat(e, 2, axis=1), 2, axis=2)


def _level_sizes(n: int) -> list[int]:
    sizes = [n]
    while sizes[-1] % 2 == 0 and sizes[-1] > 4:
        sizes.append(sizes[-1] // 2)
    return sizes


def _setup(wx, wy, n_levels: int):
    """Per-level ``(wx, wy, 1/diag)`` and the inverse of the coarsest matrix, ``(B, m2, m2)``."""
    levels = []
    for level in range(n_levels):
        if level:
            wx, wy = _coarsen(wx, wy)
        levels.append((wx, wy, 1.0 / _diagonal(wx, wy)))
    B, m = wx.shape[0], wx.shape[1]
    eye = jnp.eye(m * m, dtype=wx.dtype).reshape(m * m, m, m)
    dense = _apply(wx[:, None], wy[:, None], eye[None]).reshape(B, m * m, m * m)
    chol = jnp.linalg.cholesky(dense)
    inv = jax.scipy.linalg.cho_solve((chol, True),
                                     jnp.broadcast_to(jnp.eye(m * m, dtype=wx.dtype), dense.shape))
    return levels, 0.5 * (inv + jnp.swapaxes(inv, 1, 2))


def _red_black_masks(n: int, dtype):
    parity = (np.arange(n)[:, None] + np.arange(n)[None, :]) % 2
    return jnp.asarray(parity == 0, dtype), jnp.asarray(parity == 1, dtype)


def _sweep(wx, wy, inv_d, r, x, mask):
    """Half a red-black Gauss-Seidel sweep, :math:`x + m D^{-1}(r - A x)` with ``m`` the red
    or the black mask (cells of one colour depend only on the other colour)."""
    return x + mask * inv_d * (r - _apply(wx, wy, x))


def _vcycle(levels, coarse_inv, r, level: int = 0):
    """One symmetric V-cycle applied to the residual ``r`` (B, n, n): ``M^{-1} r``."""
    if level == len(levels) - 1:
        B, m, _ = r.shape
        return jnp.einsum("bij,bj->bi", coarse_inv, r.reshape(B, m * m)).reshape(B, m, m)
    wx, wy, inv_d = levels[level]
    red, black = _red_black_masks(r.shape[-1], r.dtype)
    sweep = partial(_sweep, wx, wy, inv_d, r)

    # (fori_loop rather than unrolled sweeps keeps the compiled graph, and compile time, small)
    x = sweep(red * inv_d * r, black)  # the first red half-sweep starts from x = 0
    x = jax.lax.fori_loop(0, NU - 1, lambda _, v: sweep(sweep(v, red), black), x)
    e = _vcycle(levels, coarse_inv, _restrict(r - _apply(wx, wy, x)), level + 1)
    x = x + _prolong(e)
    return jax.lax.fori_loop(0, NU, lambda _, v: sweep(sweep(v, black), red), x)


def _dot(p, q):
    return jnp.sum(p * q, axis=(1, 2))


@partial(jax.jit, static_argnames=("n_levels", "max_iter"))
def _pcg(a, f, tol, *, n_levels: int, max_iter: int):
    """Batched PCG; returns ``u, iterations, history (max_iter + 1, B), true residual``."""
    wx, wy = _face_weights(a, jnp)
    levels, coarse_inv = _setup(wx, wy, n_levels)
    fine_wx, fine_wy, _ = levels[0]
    B = a.shape[0]
    f_norm = jnp.sqrt(_dot(f, f))
    safe_norm = jnp.where(f_norm > 0, f_norm, 1.0)
    rel = f_norm / safe_norm
    active = rel > tol
    history = jnp.full((max_iter + 1, B), jnp.nan, dtype=a.dtype).at[0].set(rel)
    iters = jnp.zeros(B, jnp.int32)
    zero = jnp.zeros_like(f)

    def cond(state):
        k, *_, active, _, _ = state
        return (k < max_iter) & jnp.any(active)

    def body(state):
        # The preconditioner is applied at the top of the loop only, so the V-cycle is traced
        # (and compiled) once; the first iteration has beta = 0, i.e. p = z = M^{-1} f.
        k, x, r, p, rz, active, iters, history = state
        z = _vcycle(levels, coarse_inv, r)
        rz_new = _dot(r, z)
        beta = jnp.where(k > 0, rz_new / jnp.where(active, rz, 1.0), 0.0)
        p = jnp.where(active[:, None, None], z + beta[:, None, None] * p, p)
        ap = _apply(fine_wx, fine_wy, p)
        pap = _dot(p, ap)
        alpha = jnp.where(active, rz_new / jnp.where(active, pap, 1.0), 0.0)
        x = x + alpha[:, None, None] * p
        r = r - alpha[:, None, None] * ap
        rel = jnp.sqrt(_dot(r, r)) / safe_norm
        rz = jnp.where(active, rz_new, rz)
        iters = iters + active.astype(jnp.int32)
        history = history.at[k + 1].set(jnp.where(active, rel, jnp.nan))
        active = active & (rel > tol)
        return k + 1, x, r, p, rz, active, iters, history

    state = (jnp.asarray(0, jnp.int32), zero, f, zero, jnp.ones(B, a.dtype), active, iters,
             history)
    _, x, r, _, _, active, iters, history = jax.lax.while_loop(cond, body, state)
    true_r = f - _apply(fine_wx, fine_wy, x)
    final = jnp.sqrt(_dot(true_r, true_r)) / safe_norm
    return x, iters, history, final, active


def _pcg_on_devices(a, f, tol, np_dtype, n_levels: int, max_iter: int):
    """:func:`_pcg` with the batch split into equal parts over the local devices.

    Each part (the last padded by repeating its last field) is dispatched to its own device
    before any result is fetched, so the devices run concurrently: on a CPU started with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` one half of the batch per core.
    Every sample converges on its own residual, so the split does not change what is solved.
    Returns NumPy ``u, iterations, history, final residual, active``.
    """
    B = a.shape[0]
    n_dev = min(B, len(jax.local_devices()))
    width = -(-B // n_dev)
    calls = []
    for i, device in enumerate(jax.local_devices()[:-(-B // width)]):
        lo, hi = i * width, min(B, (i + 1) * width)
        pad = [lo + min(k, hi - lo - 1) for k in range(width)]  # repeat the last field
        put = partial(jax.device_put, device=device)
        calls.append((hi - lo, _pcg(put(np.asarray(a[pad], np_dtype)),
                                    put(np.asarray(f[pad], np_dtype)),
                                    put(np.asarray(tol, np_dtype)),
                                    n_levels=n_levels, max_iter=max_iter)))
    parts = [(n, [np.asarray(v) for v in jax.device_get(out)]) for n, out in calls]
    # history is (max_iter + 1, B): samples on its second axis.
    u, iters, history, final, active = (
        np.concatenate([p[k][:, :n] if k == 2 else p[k][:n] for n, p in parts],
                       axis=1 if k == 2 else 0)
        for k in range(5))
    return u, iters, history, final, active


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def _check_coefficient(a: ArrayLike) -> tuple[np.ndarray, bool]:
    """``a`` as float64 ``(B, n, n)`` and whether it was unbatched; ValueError if invalid."""
    arr = np.asarray(a)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"a must be a real array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[1] < 2 or arr.shape[0] < 1:
        raise ValueError("a must have shape (n, n) or (B, n, n) with n >= 2 (a square grid of "
                         f"cells, indexed [..., y, x]), got shape {np.shape(a)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("a must be finite; it has NaN or infinite values")
    if not np.all(arr > 0):
        raise ValueError(f"a must be positive everywhere; its minimum is {arr.min():g}")
    return arr, squeeze


def _check_forcing(f, shape: tuple[int, int, int]) -> np.ndarray:
    arr = np.asarray(f)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"f must be a real number or array, got dtype {arr.dtype}")
    try:
        arr = np.broadcast_to(arr.astype(np.float64), shape)
    except ValueError:
        raise ValueError(f"f must be a scalar or broadcast to the coefficient shape {shape} "
                         f"((n, n) or (B, n, n)), got shape {arr.shape}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError("f must be finite; it has NaN or infinite values")
    return arr


def solve_darcy(a: ArrayLike, f: ArrayLike = 1.0, *, tol: float | None = None,
                max_iter: int = 200, dtype="float64") -> DarcySolution:
    r"""Solve :math:`-\nabla\cdot(a\nabla u) = f`, ``u = 0`` on the walls, for a batch of ``a``.

    See the module docstring for the discretisation and the multigrid-preconditioned CG.

    Parameters
    ----------
    a : array, shape (B, n, n) or (n, n)
        Positive, finite cell permeabilities, indexed ``[..., y, x]``. ``n`` must be
        ``m * 2**k`` with ``m <= MAX_COARSEST`` (32) or ``m <= 4``: any even-heavy size such as
        32, 48, 60, 64, 100, 128 works; a large odd ``n`` does not.
    f : float or array, default 1.0
        Forcing at the cell centres: a scalar, or an array broadcast to the shape of ``a``.
    tol : float, optional
        Relative residual :math:`\|f - Au\|_2/\|f\|_2` to reach (> 0); default 1e-10 for
        float64 and 1e-5 for float32.
    max_iter : int, default 200
        Largest number of PCG iterations (>= 1).
    dtype : {"float64", "float32"}, default "float64"
        Precision of the computation.

    Returns
    -------
    DarcySolution
        ``u`` of the shape of ``a``, the iterations and residual history (unbatched input gives
        unbatched output). ``f = 0`` gives ``u = 0`` after 0 iterations.

    Raises
    ------
    ValueError
        For a non-positive, non-finite or wrongly shaped ``a``, a non-broadcastable or
        non-finite ``f``, a bad ``tol``, ``max_iter`` or ``dtype``, or a grid whose coarsest
        multigrid level would exceed ``MAX_COARSEST`` cells a side.
    DarcyConvergenceError
        If some sample has not reached ``tol`` after ``max_iter`` iterations (the message
        names them and their residuals).
    """
    arr, squeeze = _check_coefficient(a)
    rhs = _check_forcing(f, arr.shape)
    np_dtype = check_dtype(dtype)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if tol is None:
        tol = DEFAULT_TOL[np_dtype]
    tol = check_positive(tol, "tol")
    n = arr.shape[-1]
    sizes = _level_sizes(n)
    if sizes[-1] > MAX_COARSEST:
        raise ValueError(f"n = {n} halves only down to a {sizes[-1]} x {sizes[-1]} coarsest grid "
                         f"(more than MAX_COARSEST = {MAX_COARSEST} cells a side, too large for "
                         "the dense coarse solve); use n = m * 2**k with m <= "
                         f"{MAX_COARSEST}, e.g. {2 ** int(np.round(np.log2(n)))}")
    with jax.enable_x64(np_dtype == np.float64):
        u, iters, history, final, active = _pcg_on_devices(arr, rhs, tol, np_dtype,
                                                           len(sizes), max_iter)
    if active.any():
        bad = np.flatnonzero(active)
        last = history[iters[bad], bad]
        raise DarcyConvergenceError(
            f"PCG did not reach the relative residual tol = {tol:g} within max_iter = "
            f"{max_iter} iterations for {bad.size} of {arr.shape[0]} sample(s) (first: "
            f"{bad[:5].tolist()}, residuals {np.array2string(last[:5], precision=2)}); raise "
            "max_iter, loosen tol (float32 cannot reach 1e-10), or check the coefficient")
    if not np.all(np.isfinite(u)):
        raise ValueError("the Darcy solution is not finite; check a (its range) and f")
    k_max = int(iters.max())
    residuals = np.ascontiguousarray(history[:k_max + 1].T)
    if squeeze:
        return DarcySolution(u[0], int(iters[0]), residuals[0], float(final[0]))
    return DarcySolution(u, iters.astype(np.int64), residuals, final)


def darcy_operator_matrix(a: ArrayLike) -> scipy.sparse.csr_matrix:
    """The matrix ``A`` of the discretisation (module docstring) for one field, SciPy CSR.

    Parameters
    ----------
    a : array, shape (n, n)
        Positive cell permeabilities, indexed ``[y, x]``.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n*n, n*n), float64
        Unknown ``j * n + i`` is cell ``(y_j, x_i)`` (row-major ``u.ravel()``); ``A`` is
        symmetric positive definite, and ``spsolve(A, f.ravel())`` solves the same system as
        :func:`solve_darcy`.
    """
    arr, squeeze = _check_coefficient(a)
    if not squeeze:
        raise ValueError(f"darcy_operator_matrix takes one field of shape (n, n), got shape "
                         f"{np.shape(a)}")
    arr = arr[0]
    n = arr.shape[0]
    wx, wy = _face_weights(arr, np)
    diag = _diagonal(wx, wy).ravel()
    idx = np.arange(n * n).reshape(n, n)
    # interior x-faces 1..n-1 couple (j, i-1) and (j, i); y-faces likewise
    rows = [idx.ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(),
            idx[1:, :].ravel()]
    cols = [idx.ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(),
            idx[:-1, :].ravel()]
    cx, cy = -wx[:, 1:-1].ravel(), -wy[1:-1, :].ravel()
    vals = [diag, cx, cx, cy, cy]
    return scipy.sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n,) * 2)
