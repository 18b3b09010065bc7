r"""Elasticity-based morphing of airfoil-domain meshes (Kabalan et al.) and its offline/online POD
(see :mod:`meshes.morph` for the boundary conventions shared by all morphers).

References
----------
Kabalan, A., Casenave, F., Bordeu, F., Ehrlacher, V., Ern, A. (2025), Elasticity-based morphing
technique and application to reduced-order modeling, *Applied Mathematical Modelling*.
"""

from __future__ import annotations

import math

import meshio
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from meshes.morph import (
    MorphResult,
    _Airfoil,
    _airfoil,
    _closest_on_polyline,
    _eval_closed,
    _finish,
    _turning,
    _wall_distance,
)

__all__ = ["ElasticityMorpher", "ElasticityPOD", "ReducedElasticityMorpher"]




def _untangle_on_wall(cp: np.ndarray, tgt: _Airfoil, fixed: np.ndarray) -> np.ndarray:
    """Make projected wall points (loop order of the reference, TE first) strictly increasing
    in arc length along the target wall: nodes that collapsed onto one point (e.g. all
    projecting onto a sharp corner's vertex) or came out of order are spread evenly, in arc
    length, between their ordered neighbours; points at positions ``fixed`` are kept."""
    loop = np.vstack([tgt.wall_xy, tgt.wall_xy[:1]])
    seg = np.hypot(*np.diff(loop, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    a, ab = loop[:-1], np.diff(loop, axis=0)
    ell = np.empty(len(cp))
    for s0 in range(0, len(cp), 256):
        q = cp[s0:s0 + 256]
        t = np.clip(np.einsum("nkj,kj->nk", q[:, None, :] - a[None], ab)
                    / np.maximum(seg**2, 1e-300), 0, 1)
        d = np.hypot(*(q[:, None, :] - a[None] - t[..., None] * ab[None]).transpose(2, 0, 1))
        j = np.argmin(d, axis=1)
        ell[s0:s0 + 256] = cum[j] + t[np.arange(len(q)), j] * seg[j]
    ell[0] = 0.0
    eps = 1e-9 * total
    ok = np.zeros(len(ell), dtype=bool)
    ok[fixed] = True
    last = 0.0
    for i in range(1, len(ell)):  # keep nodes strictly after the last kept one
        if ok[i] or (ell[i] > last + eps and ell[i] < total - eps):
            ok[i] = True
            last = ell[i]
    if ok.all():
        return cp
    idx = np.flatnonzero(ok)
    ell_ext = np.concatenate([ell[idx], [total]])
    pos_ext = np.concatenate([idx, [len(ell)]]).astype(np.float64)
    new = np.interp(np.arange(len(ell), dtype=np.float64), pos_ext, ell_ext)
    out = cp.copy()
    bad = ~ok
    out[bad] = _eval_closed(tgt.wall_xy, cum[:-1] / total, new[bad] / total)
    return out


def _corners(a: _Airfoil) -> np.ndarray:
    """Loop positions of the TE-base corners (turning angle > 45 degrees, within 5 % of the
    chord of the TE), TE itself excluded."""
    p = a.wall_xy
    chord = float(np.hypot(*(p[a.le] - p[0])))
    near = np.hypot(*(p - p[0]).T) <= 0.05 * chord
    near[0] = False
    return np.flatnonzero(near & (_turning(p) > math.radians(45)))


def _point_constraints(ref: _Airfoil, tgt: _Airfoil) -> tuple[np.ndarray, np.ndarray]:
    """Wall loop positions of the reference's constrained nodes (TE, LE, TE-base corners) and
    their target points (target TE, LE, and the target corner of nearest wall parameter)."""
    pos, pts = [0, ref.le], [tgt.wall_xy[0], tgt.wall_xy[tgt.le]]
    tc = _corners(tgt)
    for c in _corners(ref):
        if len(tc):
            ds = np.abs(tgt.s_wall[tc] - ref.s_wall[c])
            ds = np.minimum(ds, 1 - ds)
            k = int(np.argmin(ds))
            if ds[k] < 0.05:
                pos.append(int(c))
                pts.append(tgt.wall_xy[tc[k]])
    return np.array(pos, dtype=np.int64), np.array(pts)


def _side_projection(x_wall: np.ndarray, ref: _Airfoil, tgt: _Airfoil,
                     return_normal: bool = False):
    """Closest points on the target wall, upper-surface nodes on the target's upper surface
    and lower ones on its lower surface; constrained nodes (:func:`_point_constraints`) on
    their target points. Optionally the unit normals of the closest target segments."""
    cp = np.empty_like(x_wall)
    nrm = np.empty_like(x_wall)
    end = np.zeros(len(x_wall), dtype=bool)
    # each side projects on its own target surface extended by 10 % of the other one past the
    # LE (so that nodes may slide round the nose), never across the thin TE region
    w = tgt.wall_xy
    upper = np.vstack([w[tgt.s_wall <= 0.6], w[:1]])[:-1]
    lower = np.vstack([w[tgt.s_wall >= 0.4], w[:1]])
    cp[: ref.le + 1], _, nrm[: ref.le + 1], end[: ref.le + 1] = _closest_on_polyline(
        x_wall[: ref.le + 1], upper, False, True)
    cp[ref.le:], _, nrm[ref.le:], end[ref.le:] = _closest_on_polyline(
        x_wall[ref.le:], lower, False, True)
    pos, pts = _point_constraints(ref, tgt)
    cp[pos] = pts
    end[pos] = False
    if return_normal:
        return cp, nrm, end
    return cp


def _wall_weights(ref: _Airfoil) -> np.ndarray:
    """Lumped boundary mass: half the lengths of the two wall edges at each wall node."""
    seg = np.hypot(*np.diff(np.vstack([ref.wall_xy, ref.wall_xy[:1]]), axis=0).T)
    return 0.5 * (seg + np.roll(seg, 1))


class ElasticityMorpher:
    """Elasticity-based morphing (Kabalan et al.).

    Repeated linear-elasticity solves on the current (moved) mesh,
    :math:`\\phi \\leftarrow (\\mathrm{Id} + \\gamma_k u_k) \\circ \\phi`, where :math:`u_k` solves
    (P1 vector elements, plane strain, scikit-fem)

    .. math::
        \\int_\\Omega 2\\mu\\,\\varepsilon(u):\\varepsilon(v)
            + \\lambda\\,\\operatorname{tr}\\varepsilon(u)\\operatorname{tr}\\varepsilon(v)
        + \\alpha_k \\sum_{i\\in wall} m_i\\,(n_i\\cdot u_i - n_i\\cdot d_i)\\,(n_i\\cdot v_i) = 0,

    the wall loaded by its distance to the target: :math:`d_i = \\pi(x_i) - x_i`, :math:`\\pi`
    the closest point on the target wall (upper-surface nodes on the target's upper surface and
    lower ones on its lower surface, each extended 10 % past the LE, never across the thin TE),
    :math:`n_i` the unit normal of the closest target segment, :math:`m_i` the lumped wall
    length at node i and the penalty :math:`\\alpha_k` (times the mean stiffness diagonal) raised
    in stages. Only the normal displacement is penalised, so wall nodes slide tangentially with
    the elastic body (nodes whose closest point is the end vertex of their side's polyline are
    not loaded in that step). Point constraints (Dirichlet): the reference TE and LE nodes go to the
    target's TE and LE, and the corners of a blunt TE base to the target's corners of nearest
    wall parameter. The far field is fixed (zero displacement; its nodes stay where they are,
    e.g. on the far-field circle). Young's modulus per cell grows as the cell gets smaller,

    .. math::
        E_c = (\\tilde A / A_c)^{\\chi}, \\quad \\lambda_c = \\frac{E_c\\nu}{(1+\\nu)(1-2\\nu)},
        \\quad \\mu_c = \\frac{E_c}{2(1+\\nu)},

    :math:`A_c` the reference cell area and :math:`\\tilde A` its median, so the small cells
    near the wall move almost rigidly (plane strain). The stiffness is re-assembled on the moved
    mesh each step (updated Lagrangian) with the reference moduli; every step is checked for
    inverted cells and, if it inverts any, retried with :math:`\\gamma_k` halved (the next
    solve, on the less-moved mesh, carries the rest). The loop stops when
    :math:`\\max_i \\operatorname{dist}(x_i, \\Gamma_{tgt}) <` ``tol``; then the wall nodes are
    projected exactly onto the target (the :math:`\\pi(x_i)` above; nodes that collapse onto one
    point, e.g. a sharp corner's vertex, are spread in arc length between their neighbours) and
    a last solve with that projection as a Dirichlet condition on the whole wall moves the
    interior with them, so the morphed wall lies on the target polygon to round-off
    (``boundary_distance`` ~1e-17 chords in the tests). Only the target's wall line block is
    used.

    Parameters
    ----------
    chi : float
        Stiffening exponent :math:`\\chi \\ge 0` (default 1).
    poisson : float
        :math:`\\nu \\in [0, 0.5)` (default 0.3).
    tol : float
        Boundary-distance tolerance of the penalty loop, chords (default 1e-6).
    gammas : sequence of float
        Step factors :math:`\\gamma_k` per iteration (the last one repeats).
    penalties : sequence of float
        Penalty factors :math:`\\alpha_k` per iteration (the last one repeats).
    max_iter : int
        Maximum penalty iterations before the final projection.
    max_halvings : int
        A step that would invert a triangle is retried with :math:`\\gamma_k` halved, at most
        this many times (default 4), before the morph is refused.
    """

    def __init__(self, *, chi: float = 1.0, poisson: float = 0.3, tol: float = 1e-6,
                 gammas=(0.5, 1.0), penalties=(1e1, 1e2, 1e3, 1e4, 1e6), max_iter: int = 30,
                 max_halvings: int = 4):
        if not 0 <= poisson < 0.5:
            raise ValueError(f"poisson must be in [0, 0.5), got {poisson}")
        if chi < 0:
            raise ValueError(f"chi must be >= 0, got {chi}")
        if not tol > 0 or max_iter < 0 or not gammas or not penalties:
            raise ValueError("tol must be positive, max_iter >= 0, gammas/penalties non-empty")
        self.chi, self.poisson, self.tol = float(chi), float(poisson), float(tol)
        self.gammas, self.penalties = tuple(gammas), tuple(penalties)
        self.max_iter = int(max_iter)
        if int(max_halvings) < 0:
            raise ValueError(f"max_halvings must be >= 0, got {max_halvings}")
        self.max_halvings = int(max_halvings)

    def _moduli(self, ref: _Airfoil):
        p = ref.xy[ref.tris]
        area = 0.5 * np.abs((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                            - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
        E = (np.median(area) / area) ** self.chi
        nu = self.poisson
        return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))

    @staticmethod
    def _stiffness(xy, tris, lam, mu):
        from skfem import Basis, BilinearForm, ElementTriP1, ElementVector, MeshTri, asm
        from skfem.helpers import ddot, sym_grad, trace

        m = MeshTri(np.ascontiguousarray(xy.T), np.ascontiguousarray(tris.T), sort_t=False)
        basis = Basis(m, ElementVector(ElementTriP1()), intorder=1)

        @BilinearForm
        def form(u, v, w):
            eu, ev = sym_grad(u), sym_grad(v)
            return 2.0 * w.mu * ddot(eu, ev) + w.lam * trace(eu) * trace(ev)

        nq = basis.X.shape[-1]
        K = asm(form, basis, lam=np.repeat(lam[:, None], nq, 1),
                mu=np.repeat(mu[:, None], nq, 1))
        return K.tocsr(), basis.nodal_dofs  # dofs (2, N)

    @staticmethod
    def _solve(K, dofs, fixed_nodes, fixed_u, pen_nodes=None, pen_w=None, pen_u=None,
               pen_n=None):
        n = K.shape[0]
        A = K
        b = np.zeros(n)
        if pen_nodes is not None:
            # normal penalty  w (n.u - n.d)^2 : block w n n^T, right-hand side w n (n.d)
            rows, cols, vals = [], [], []
            nd = np.einsum("ij,ij->i", pen_n, pen_u)
            for k in range(2):
                b[dofs[k, pen_nodes]] = pen_w * pen_n[:, k] * nd
                for m in range(2):
                    rows.append(dofs[k, pen_nodes])
                    cols.append(dofs[m, pen_nodes])
                    vals.append(pen_w * pen_n[:, k] * pen_n[:, m])
            P = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                      np.concatenate(cols))), shape=(n, n))
            A = K + P.tocsr()
        u = np.zeros(n)
        D = np.concatenate([dofs[0, fixed_nodes], dofs[1, fixed_nodes]])
        u[D] = np.concatenate([fixed_u[:, 0], fixed_u[:, 1]])
        free = np.ones(n, dtype=bool)
        free[D] = False
        A = A.tocsr()
        rhs = b[free] - A[free][:, D] @ u[D]
        # symmetric positive definite: SuperLU's symmetric mode (minimum degree on A^T + A,
        # diagonal pivots) fills in half as much as the default column ordering here
        lu = spla.splu(A[free][:, free].tocsc(), permc_spec="MMD_AT_PLUS_A",
                       diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        u[free] = lu.solve(rhs)
        return np.stack([u[dofs[0]], u[dofs[1]]], axis=1)

    def morph(self, reference: meshio.Mesh, target: meshio.Mesh) -> MorphResult:
        """Morph ``reference`` onto ``target``; see the class docstring."""
        ref, tgt = _airfoil(reference, "reference"), _airfoil(target, "target")
        lam, mu = self._moduli(ref)
        x = ref.xy.copy()
        w_len = _wall_weights(ref)
        w_len = w_len / w_len.mean()
        pos, _ = _point_constraints(ref, tgt)
        pts_fixed = ref.wall[pos]
        history = []
        it = 0
        for it in range(self.max_iter + 1):
            cp, nrm, at_end = _side_projection(x[ref.wall], ref, tgt, return_normal=True)
            dist = _wall_distance(x[ref.wall], tgt)
            history.append(dist)
            if dist < self.tol or it == self.max_iter:
                break
            K, dofs = self._stiffness(x, ref.tris, lam, mu)
            alpha = self.penalties[min(it, len(self.penalties) - 1)] * K.diagonal().mean()
            gamma = self.gammas[min(it, len(self.gammas) - 1)]
            fixed = np.concatenate([ref.far, pts_fixed])
            fixed_u = np.vstack([np.zeros((len(ref.far), 2)),
                                 cp[pos] - x[pts_fixed]])
            # nodes whose closest point is the end vertex of their side's polyline (e.g. beyond
            # the TE of a strongly rotated target) get no load: its direction is meaningless
            u = self._solve(K, dofs, fixed, fixed_u, ref.wall, alpha * w_len * ~at_end,
                            cp - x[ref.wall], nrm)
            x = self._step(ref, x, u, gamma, it)
        # final exact projection as a Dirichlet condition
        cp = _side_projection(x[ref.wall], ref, tgt)
        cp = _untangle_on_wall(cp, tgt, pos)
        K, dofs = self._stiffness(x, ref.tris, lam, mu)
        fixed = np.concatenate([ref.far, ref.wall])
        fixed_u = np.vstack([np.zeros((len(ref.far), 2)), cp - x[ref.wall]])
        x = x + self._solve(K, dofs, fixed, fixed_u)
        x[ref.wall] = cp
        x[ref.far] = ref.xy[ref.far]
        return _finish(reference, ref, x, tgt, it + 1, "elasticity morphing",
                       {"history": history, "chi": self.chi})

    def _step(self, ref: _Airfoil, x: np.ndarray, u: np.ndarray, gamma: float, it: int
              ) -> np.ndarray:
        """``x + gamma u``, with gamma halved (up to ``max_halvings`` times) while the step
        inverts a triangle; raises if even the smallest step does."""
        for _ in range(self.max_halvings + 1):
            x_new = x + gamma * u
            p = x_new[ref.tris]
            a = ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                 - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
            n = int(np.sum(a <= 0))
            if not n:
                return x_new
            gamma *= 0.5
        k = int(np.argmin(a))
        cx, cy = ref.xy[ref.tris[k]].mean(axis=0)
        raise ValueError(f"elasticity morphing: {n} inverted triangles after step {it + 1} even "
                         f"with the step factor halved {self.max_halvings} times (worst: triangle "
                         f"{k}, reference centroid ({cx:.4g}, {cy:.4g})); use a larger chi")


class ElasticityPOD:
    """Offline POD of morphing displacements and online morphing in the reduced space.

    Offline: displacement snapshots :math:`U_s \\in \\mathbb{R}^{2N}` (reference nodes, e.g. from
    :class:`ElasticityMorpher`), mean :math:`\\bar U`, modes :math:`\\Phi` (the first
    ``n_modes`` right singular vectors of the centred snapshot matrix, Euclidean inner
    product). Online: :math:`U(c) = \\bar U + \\Phi c` with the coefficients found by
    Gauss-Newton on the wall residual (the closest point held fixed per step, as in ICP),

    .. math::
        c \\leftarrow \\arg\\min_c \\sum_{i \\in wall} |X_i + U_i(c) - \\pi(X_i + U_i(c^{old}))|^2,

    :math:`\\pi` the side-wise closest point on the target wall, LE and TE nodes matched to the
    target's LE and TE. One small least-squares problem per step: no finite-element solve.

    Parameters
    ----------
    n_modes : int
        Number of POD modes kept (at most the number of snapshots).
    """

    def __init__(self, *, n_modes: int = 8):
        if n_modes < 1:
            raise ValueError(f"n_modes must be >= 1, got {n_modes}")
        self.n_modes = int(n_modes)

    def fit(self, displacements) -> ElasticityPOD:
        """Fit the modes.

        Parameters
        ----------
        displacements : sequence of MorphResult or array_like (N, 2)
            Displacements of the reference nodes (a MorphResult contributes its
            ``displacement``).
        """
        snaps = [np.asarray(d.displacement if isinstance(d, MorphResult) else d,
                            dtype=np.float64)[:, :2] for d in displacements]
        if not snaps:
            raise ValueError("fit needs at least one displacement snapshot")
        shapes = {s.shape for s in snaps}
        if len(shapes) != 1:
            raise ValueError(f"snapshots have different shapes {sorted(shapes)}; all must be "
                             "displacements of the same reference mesh")
        S = np.stack([s.ravel() for s in snaps])
        self.mean_ = S.mean(axis=0)
        _, sv, vt = np.linalg.svd(S - self.mean_, full_matrices=False)
        k = min(self.n_modes, len(snaps))
        self.modes_ = vt[:k]
        self.singular_values_ = sv
        self.n_nodes_ = snaps[0].shape[0]
        return self

    def project(self, displacement) -> np.ndarray:
        """Best approximation of a displacement (N, 2) in the POD space (mean + modes)."""
        d = np.asarray(displacement, dtype=np.float64)[:, :2].ravel() - self.mean_
        return (self.mean_ + self.modes_.T @ (self.modes_ @ d)).reshape(-1, 2)

    def morph_online(self, reference: meshio.Mesh, target: meshio.Mesh, *,
                     n_iter: int = 10) -> MorphResult:
        """Morph in the POD space; see the class docstring. ``n_iterations`` counts the
        Gauss-Newton steps."""
        if not hasattr(self, "modes_"):
            raise ValueError("ElasticityPOD is not fitted; call fit first")
        ref, tgt = _airfoil(reference, "reference"), _airfoil(target, "target")
        if len(ref.xy) != self.n_nodes_:
            raise ValueError(f"reference mesh has {len(ref.xy)} nodes; the POD was fitted on "
                             f"{self.n_nodes_}")
        W = ref.wall
        rows = np.concatenate([2 * W, 2 * W + 1])
        Phi = self.modes_[:, rows].T  # (2 n_wall, k)
        mean_w = self.mean_[rows]
        X_w = np.concatenate([ref.xy[W, 0], ref.xy[W, 1]])
        c = np.zeros(self.modes_.shape[0])
        it = 0
        for it in range(1, n_iter + 1):  # noqa: B007 (it is reported)
            xw = X_w + mean_w + Phi @ c
            xw2 = np.column_stack([xw[: len(W)], xw[len(W):]])
            cp = _side_projection(xw2, ref, tgt)
            target_vec = np.concatenate([cp[:, 0], cp[:, 1]])
            c_new, *_ = np.linalg.lstsq(Phi, target_vec - X_w - mean_w, rcond=None)
            step = np.linalg.norm(c_new - c)
            c = c_new
            if step < 1e-12 * (1 + np.linalg.norm(c)):
                break
        u = (self.mean_ + self.modes_.T @ c).reshape(-1, 2)
        return _finish(reference, ref, ref.xy + u, tgt, it, "POD online morphing",
                       {"coefficients": c})


class ReducedElasticityMorpher(ElasticityMorpher):
    """Offline/online elasticity morphing (Kabalan et al.) for a regressor such as
    :class:`surrogates.models.mmgp.MMGPRegressor`.

    Offline (:meth:`morph_offline`): the full :class:`ElasticityMorpher` solve, used on the
    training meshes. The regressor then hands over a reduced basis of those morphings
    (:meth:`set_reduced_basis`: mean and modes of the morphed support coordinates, e.g. the
    shape POD of MMGP). Online (:meth:`morph`, once a basis is set): the
    :class:`ElasticityPOD` Gauss-Newton fit of the basis coefficients to the target wall, one
    small least-squares problem per step and no finite-element solve, so a new mesh costs
    milliseconds instead of seconds. The online wall lies on the target only up to the
    basis' approximation error (``boundary_distance`` reports it); a result with inverted
    triangles is refused there too, and the morpher then falls back to the offline solve
    (counted in ``n_fallbacks``). Without a basis :meth:`morph` is the offline solve.

    Parameters
    ----------
    n_iter : int
        Gauss-Newton steps of the online fit (default 10).
    **kwargs
        :class:`ElasticityMorpher` settings of the offline solve.
    """

    def __init__(self, *, n_iter: int = 10, **kwargs):
        super().__init__(**kwargs)
        if int(n_iter) < 1:
            raise ValueError(f"n_iter must be >= 1, got {n_iter}")
        self.n_iter = int(n_iter)
        self._pod: ElasticityPOD | None = None
        self._fallbacks = 0

    @property
    def n_fallbacks(self) -> int:
        """Online morphs refused (inverted triangles) and redone offline."""
        return self._fallbacks

    def morph_offline(self, reference: meshio.Mesh, target: meshio.Mesh) -> MorphResult:
        """The full elasticity morphing of :class:`ElasticityMorpher`."""
        return ElasticityMorpher.morph(self, reference, target)

    def set_reduced_basis(self, reference: meshio.Mesh, mean_points, modes) -> None:
        """Use the span of the training morphings for :meth:`morph`.

        Parameters
        ----------
        reference : meshio.Mesh
            The reference (support) mesh the basis belongs to.
        mean_points : array_like (N, d)
            Mean morphed coordinates of the reference nodes (d >= 2; only x, y are used).
        modes : array_like (k, N, d)
            Coordinate modes (any basis; k may be 0).
        """
        ref = np.asarray(reference.points, dtype=np.float64)
        mean = np.asarray(mean_points, dtype=np.float64)
        modes = np.asarray(modes, dtype=np.float64)
        if mean.ndim != 2 or mean.shape[0] != len(ref) or mean.shape[1] < 2:
            raise ValueError(f"mean_points must be ({len(ref)}, d >= 2), got {mean.shape}")
        if modes.ndim != 3 or modes.shape[1:] != mean.shape:
            raise ValueError(f"modes must be (k, {mean.shape[0]}, {mean.shape[1]}), got "
                             f"{modes.shape}")
        pod = ElasticityPOD(n_modes=max(len(modes), 1))
        pod.mean_ = (mean[:, :2] - ref[:, :2]).ravel()
        pod.modes_ = modes[:, :, :2].reshape(len(modes), -1)
        pod.n_nodes_ = len(ref)
        self._pod = pod

    def morph(self, reference: meshio.Mesh, target: meshio.Mesh) -> MorphResult:
        """Online morphing in the reduced basis (offline solve without one, or on refusal)."""
        if self._pod is None:
            return self.morph_offline(reference, target)
        if len(reference.points) != self._pod.n_nodes_:
            raise ValueError(f"reference mesh has {len(reference.points)} nodes; the reduced "
                             f"basis belongs to one of {self._pod.n_nodes_}")
        try:
            return self._pod.morph_online(reference, target, n_iter=self.n_iter)
        except ValueError:
            self._fallbacks += 1
            return self.morph_offline(reference, target)
