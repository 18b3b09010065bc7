r"""Linear acoustic waves in a rectangular room (2D or 3D): a batched FDTD reference solver in JAX.

Equation, in SI units (metres, seconds, pascals):

.. math::

    \frac{\partial^2 p}{\partial t^2} = c^2 \nabla^2 p \quad\text{in }\Omega,
    \qquad \Omega = [0, L_x]\times[0, L_y]\,(\times[0, L_z]),

with speed of sound :math:`c` (343 m/s by default), initial Gaussian pulse
:math:`p(\mathbf x, 0) = A\exp(-|\mathbf x - \mathbf s|^2/(2\sigma^2))` (amplitude ``A`` in
Pa, width :math:`\sigma` = ``pulse_width`` in m, source position :math:`\mathbf s`) and zero
initial velocity :math:`\partial_t p(\mathbf x, 0) = 0`.

Walls. Each of the ``2 d`` walls (order x-, x+, y-, y+, z-, z+) is a locally reacting,
frequency-independent impedance wall

.. math::

    \frac{\partial p}{\partial n} = -\frac{1}{c\,\xi}\frac{\partial p}{\partial t},
    \qquad \xi = \frac{1 + \sqrt{1 - \alpha}}{1 - \sqrt{1 - \alpha}},

(:math:`n` the outward normal) with the normalised impedance :math:`\xi` set by the
normal-incidence absorption coefficient :math:`\alpha \in [0, 1]`: the plane-wave reflection
coefficient at normal incidence is :math:`R = (\xi - 1)/(\xi + 1) = \sqrt{1 - \alpha}`, so
:math:`\alpha = 1 - R^2`. :math:`\alpha = 0` gives :math:`\xi = \infty`, a rigid wall
(:math:`\partial p/\partial n = 0`); :math:`\alpha = 1` gives :math:`\xi = 1`, the first-order
Engquist-Majda absorbing condition (exact at normal incidence).

Grid. Nodes :math:`x_i = i h`, ``i = 0 .. L/h`` on every axis, *including the walls* (the wall
nodes are unknowns); ``L/h`` must be an integer. Arrays are indexed ``[..., ix, iy(, iz)]``.

Space (``order=2`` or ``4``). The Laplacian is the sum over axes of the central second
difference :math:`(p_{i-1} - 2p_i + p_{i+1})/h^2` (order 2) or
:math:`(-p_{i-2} + 16p_{i-1} - 30p_i + 16p_{i+1} - p_{i+2})/(12h^2)` (order 4). At a wall the
ghost values are the even reflection about the wall node, :math:`p_{-k} = p_{k}` (the rigid
condition to the order of the stencil; a cosine mode is reproduced exactly).

Time (leapfrog, second order) with the impedance term centred and implicit at the wall
nodes (the standard FDTD impedance boundary, e.g. Kowalczyk & van Walstijn 2008). With the
Courant number :math:`\lambda = c\,\Delta t/h`, the discrete rigid Laplacian
:math:`\mathcal L` (times :math:`h^2`) and, at each node,
:math:`\beta = \sum_{\text{walls through the node}} \lambda/\xi_w` (0 off the walls; edges and
corners sum their walls):

.. math::

    p^{n+1} = \frac{2p^n - (1 - \beta)\,p^{n-1} + \lambda^2\mathcal L p^n}{1 + \beta}.

It follows from the ghost value :math:`p_{-1} = p_1 - (h/(c\xi\Delta t))(p_0^{n+1} -
p_0^{n-1})` (centred differences of the boundary condition). For ``order=4`` the rigid even
reflection is kept for the Laplacian and the same centred damping term is added at the wall
nodes (so the boundary condition itself is first/second-order accurate there). The first step
uses zero initial velocity to second order: :math:`p^1 = p^0 + \tfrac12\lambda^2\mathcal L
p^0` (identical to the general update with :math:`p^{-1} = p^1`).

Stability. With rigid or absorbing walls the scheme conserves (rigid) or dissipates
(:math:`\alpha > 0`) the discrete energy of :func:`acoustic_energy`, which is positive when

.. math::

    \lambda \le \lambda_{\max} = \frac{1}{\sqrt d}\ \ (\text{order }2),\qquad
    \lambda_{\max} = \sqrt{\frac{3}{4d}}\ \ (\text{order }4),

i.e. 0.707 / 0.577 (order 2, 2D / 3D) and 0.612 / 0.5 (order 4): the largest eigenvalue of
:math:`-\mathcal L` is :math:`4d` (order 2) and :math:`16d/3` (order 4), and leapfrog needs
:math:`\lambda^2\max|{\rm eig}| \le 4`. At equality the scheme is only marginally stable
(linear growth of the grid-scale mode), so the default Courant number is
:data:`DEFAULT_CFL_FRACTION` times the limit.

Obstacles. A boolean mask on the nodes, ``True`` = solid. Solid nodes hold ``p = 0``; for a
fluid node the stencil replaces a solid neighbour by the even reflection about the face half
way between the two nodes (order 2: :math:`p_{i+1} \to p_i`, i.e. zero normal gradient on a
staircase boundary; order 4 also :math:`p_{i+2} \to p_{i-1}` behind a face at
:math:`i + 1/2`, and :math:`p_{i+2} \to p_{i+1}` when only :math:`i + 2` is solid). For order
2 this is a symmetric graph Laplacian (rigid, energy-conserving, stable under the same limit);
for order 4 the mirrored stencil is exact for a single flat face; at corners and one-node-thin
features its stability is not proven (the discrete energy was found conserved to round-off
for a box, a single solid node and a one-node-thin wall, see the tests); ``order=2`` is the
safe choice with obstacles.
:func:`meshes.voxelize.voxelize` builds the mask from a closed surface mesh
(``voxelize(mesh, room.coords)``).

Accuracy: second order in time; second or fourth order in space for smooth solutions
(observed orders are tested against the modal solution of a rigid room with
:math:`\Delta t \propto h^2` for ``order=4``). The impedance walls and staircase obstacles are
low order.

Computations are float64 by default: 64-bit mode is switched on with ``jax.enable_x64(True)``
as a context manager *inside* :func:`simulate` only; the global JAX configuration is never
changed.

References
----------
.. [1] K. Kowalczyk and M. van Walstijn, "Formulation of locally reacting surfaces in FDTD/K-DWM
   modelling of acoustic spaces", Acta Acustica united with Acustica 94, 891-906, 2008.
.. [2] D. Botteldooren, "Finite-difference time-domain simulation of low-frequency room
   acoustic problems", J. Acoust. Soc. Am. 98, 3302-3308, 1995.
.. [3] B. Engquist and A. Majda, "Absorbing boundary conditions for the numerical simulation
   of waves", Math. Comp. 31, 629-651, 1977.
.. [4] H. Kuttruff, "Room Acoustics", 5th ed., Spon Press, 2009 (modes of a rectangular room).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.solvers.checks import check_dtype, check_int, check_positive

__all__ = [
    "DEFAULT_CFL_FRACTION",
    "Room",
    "WaveSolution",
    "acoustic_energy",
    "cfl_limit",
    "gaussian_pulse",
    "impedance_from_absorption",
    "simulate",
]

#: Default Courant number as a fraction of the stability limit :func:`cfl_limit`.
DEFAULT_CFL_FRACTION = 0.95
_GRID_TOL = 1e-6  # relative tolerance for L/h being an integer and for uniform times


def cfl_limit(dim: int, order: int) -> float:
    r"""Largest stable Courant number :math:`c\,\Delta t/h`: :math:`1/\sqrt d` (order 2),
    :math:`\sqrt{3/(4d)}` (order 4)."""
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    return 1.0 / math.sqrt(dim) if order == 2 else math.sqrt(3.0 / (4.0 * dim))


def impedance_from_absorption(alpha) -> np.ndarray:
    r"""Inverse normalised impedance :math:`1/\xi = (1 - \sqrt{1-\alpha})/(1 + \sqrt{1-\alpha})`
    (0 for a rigid wall, 1 for :math:`\alpha = 1`), elementwise."""
    s = np.sqrt(1.0 - np.asarray(alpha, dtype=np.float64))
    return (1.0 - s) / (1.0 + s)


@dataclass(frozen=True)
class Room:
    """A rectangular room and its grid.

    Attributes
    ----------
    size : tuple of float
        ``(Lx, Ly)`` or ``(Lx, Ly, Lz)`` in metres; each must be an integer multiple of
        ``spacing``.
    spacing : float
        Grid spacing ``h`` in metres; nodes at ``0, h, ..., L`` on every axis (walls included).
    absorption : float or tuple of float, default 0.0
        Normal-incidence absorption coefficient in ``[0, 1]``, one for all walls or ``2 d``
        values in the order x-, x+, y-, y+(, z-, z+). 0 is rigid, 1 absorbing.
    obstacles : ndarray of bool, shape ``room.shape``, optional
        ``True`` at solid nodes (rigid obstacles).
    c : float, default 343.0
        Speed of sound, m/s.
    rho : float, default 1.2
        Air density, kg/m^3 (used by :func:`acoustic_energy`).

    Raises
    ------
    ValueError
        On a dimension other than 2 or 3, non-positive or non-finite sizes, spacing, ``c`` or
        ``rho``, a size that is not a multiple of the spacing (or fewer than 3 nodes on an
        axis), absorption outside ``[0, 1]`` or of the wrong length, or an obstacle mask of
        the wrong shape, not boolean, or filling the whole room.
    """

    size: tuple[float, ...]
    spacing: float
    absorption: float | tuple[float, ...] = 0.0
    obstacles: np.ndarray | None = None
    c: float = 343.0
    rho: float = 1.2

    def __post_init__(self):
        try:
            size = tuple(float(s) for s in self.size)
        except (TypeError, ValueError):
            raise ValueError(f"size must be a tuple of 2 or 3 lengths, got {self.size!r}") from None
        if len(size) not in (2, 3):
            raise ValueError(f"only 2D and 3D rooms are supported: size has {len(size)} entries "
                             f"({self.size!r})")
        for s in size:
            check_positive(s, "room size")
        h = check_positive(self.spacing, "spacing")
        for L in size:
            n = L / h
            if abs(n - round(n)) > _GRID_TOL * max(1.0, n) or round(n) < 2:
                raise ValueError(f"room size {L} m must be an integer multiple (>= 2) of the "
                                 f"spacing {h} m (got L/h = {n:.6g})")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "spacing", h)
        object.__setattr__(self, "c", check_positive(self.c, "c"))
        object.__setattr__(self, "rho", check_positive(self.rho, "rho"))
        a = np.asarray(self.absorption, dtype=np.float64)
        if a.ndim == 0:
            a = np.full(2 * len(size), float(a))
        if a.shape != (2 * len(size),):
            raise ValueError(f"absorption must be a scalar or {2 * len(size)} values (x-, x+, y-, "
                             f"y+{', z-, z+' if len(size) == 3 else ''}), got {self.absorption!r}")
        if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > 1):
            raise ValueError(f"absorption coefficients must lie in [0, 1], got {a.tolist()}")
        object.__setattr__(self, "absorption", tuple(float(v) for v in a))
        if self.obstacles is not None:
            ob = np.asarray(self.obstacles)
            if ob.dtype != np.bool_:
                raise ValueError(f"obstacles must be a boolean mask, got dtype {ob.dtype}")
            if ob.shape != self.shape:
                raise ValueError(f"obstacles has shape {ob.shape}, the room grid has shape "
                                 f"{self.shape}")
            if ob.all():
                raise ValueError("obstacles fill the whole room")
            ob = ob.copy()
            ob.setflags(write=False)
            object.__setattr__(self, "obstacles", ob)

    @property
    def dim(self) -> int:
        """Number of space dimensions, 2 or 3."""
        return len(self.size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Nodes per axis, ``round(L/h) + 1``."""
        return tuple(int(round(L / self.spacing)) + 1 for L in self.size)

    @property
    def coords(self) -> tuple[np.ndarray, ...]:
        """Node coordinates per axis (m), ``i * h``."""
        return tuple(np.arange(n, dtype=np.float64) * self.spacing for n in self.shape)

    def points(self) -> np.ndarray:
        """All node coordinates, shape ``(*shape, d)`` (m)."""
        return np.stack(np.meshgrid(*self.coords, indexing="ij"), axis=-1)


@dataclass(frozen=True)
class WaveSolution:
    """Result of :func:`simulate` (NumPy arrays in the computation's dtype).

    Attributes
    ----------
    times : ndarray, shape (n_t,)
        Output times, s.
    coords : tuple of ndarray
        Node coordinates per axis, m.
    sources : ndarray, shape (B, d)
        Source positions, m.
    field : ndarray, shape (B, n_t, *room.shape), or None
        Pressure at the nodes, Pa (``None`` when ``save_field=False``).
    receivers : ndarray, shape (B, n_t, R), or None
        Pressure at the receiver positions (multilinear interpolation of the nodes), Pa.
    receiver_positions : ndarray, shape (R, d), or None
    dt : float
        Internal time step, s.
    n_substeps : int
        Internal steps per output interval.
    wall_time : float
        Seconds spent in :func:`simulate` (compilation included on the first call).
    """

    times: np.ndarray
    coords: tuple[np.ndarray, ...]
    sources: np.ndarray
    field: np.ndarray | None
    receivers: np.ndarray | None
    receiver_positions: np.ndarray | None
    dt: float
    n_substeps: int
    wall_time: float


def gaussian_pulse(points, source, width, amplitude=1.0) -> np.ndarray:
    r"""Initial pressure :math:`A\exp(-|\mathbf x - \mathbf s|^2/(2\sigma^2))` in Pa.

    Parameters
    ----------
    points : array_like, shape (..., d)
        Positions (m).
    source : array_like, shape (d,)
        Pulse centre :math:`\mathbf s` (m).
    width : float
        :math:`\sigma` (m).
    amplitude : float, default 1.0
        :math:`A` (Pa).

    Returns
    -------
    ndarray, shape (...)
    """
    x = np.asarray(points, dtype=np.float64)
    s = np.asarray(source, dtype=np.float64)
    if x.shape[-1:] != s.shape:
        raise ValueError(f"points have shape {x.shape}, source has shape {s.shape}: the last "
                         f"axis of points must equal the source dimension")
    width = check_positive(width, "width")
    r2 = np.sum((x - s) ** 2, axis=-1)
    return float(amplitude) * np.exp(-r2 / (2.0 * width**2))


# ----------------------------------------------------------------------------------------------
# Discrete operator (works with numpy and jax.numpy)
# ----------------------------------------------------------------------------------------------


def _take(a, ax: int, start: int, n: int):
    return a[(slice(None),) * ax + (slice(start, start + n),)]


def _reflect_pad(a, ax: int, g: int, xp):
    pad = [(0, 0)] * a.ndim
    pad[ax] = (g, g)
    return xp.pad(a, pad, mode="reflect")


def _solid_shifts(solid: np.ndarray, order: int) -> tuple:
    """Per axis, the solid mask at offsets (-1, +1, -2, +2) (walls: even reflection)."""
    g = order // 2
    out = []
    for ax in range(solid.ndim):
        n = solid.shape[ax]
        sp = _reflect_pad(solid, ax, g, np)
        offs = (-1, 1, -2, 2) if order == 4 else (-1, 1)
        out.append(tuple(_take(sp, ax, g + k, n) for k in offs))
    return tuple(out)


def _laplacian(p, order: int, shifts, fluid, xp):
    """``h^2`` times the discrete rigid Laplacian of ``p`` (B, *shape), see the module doc."""
    g = order // 2
    total = 0.0
    for ax in range(1, p.ndim):
        n = p.shape[ax]
        pp = _reflect_pad(p, ax, g, xp)
        m1, p1 = _take(pp, ax, g - 1, n), _take(pp, ax, g + 1, n)
        if shifts is not None:
            s = shifts[ax - 1]
            q_m1 = xp.where(s[0], p, m1)
            q_p1 = xp.where(s[1], p, p1)
        else:
            q_m1, q_p1 = m1, p1
        if order == 2:
            total = total + (q_m1 + q_p1 - 2.0 * p)
            continue
        m2, p2 = _take(pp, ax, g - 2, n), _take(pp, ax, g + 2, n)
        if shifts is not None:
            q_m2 = xp.where(s[0], q_p1, xp.where(s[2], m1, m2))
            q_p2 = xp.where(s[1], q_m1, xp.where(s[3], p1, p2))
        else:
            q_m2, q_p2 = m2, p2
        total = total + (16.0 * (q_m1 + q_p1) - (q_m2 + q_p2) - 30.0 * p) / 12.0
    if fluid is not None:
        total = total * fluid
    return total


def _beta(room: Room, lam: float) -> np.ndarray | None:
    """``sum over walls through each node of lam / xi_w``; None when all walls are rigid."""
    inv_xi = impedance_from_absorption(room.absorption)
    if not np.any(inv_xi > 0):
        return None
    beta = np.zeros(room.shape)
    for ax, n in enumerate(room.shape):
        for side, idx in enumerate((0, n - 1)):
            sl = (slice(None),) * ax + (idx,)
            beta[sl] += lam * inv_xi[2 * ax + side]
    return beta


@partial(jax.jit, static_argnames=("order", "save_field"))
def _integrate(p0, lam2, a, b, shifts, fluid, n_sub, n_intervals_arr, rec_idx, rec_w, *,
               order: int, save_field: bool):
    """Frames (n_t, B, ...) and receiver traces (n_t, B, R) of the leapfrog scheme."""

    def lap(p):
        return _laplacian(p, order, shifts, fluid, jnp)

    def step(_, carry):
        p_prev, p = carry
        return p, a * (2.0 * p + lam2 * lap(p)) - b * p_prev

    def observe(p):
        f = p if save_field else None
        if rec_idx is None:
            return f, None
        flat = p.reshape(p.shape[0], -1)
        return f, jnp.einsum("brk,rk->br", flat[:, rec_idx], rec_w)

    def interval(carry, _):
        carry = jax.lax.fori_loop(0, n_sub, step, carry)
        return carry, observe(carry[1])

    p_m1 = p0 + 0.5 * lam2 * lap(p0)  # p^{-1} = p^{1}: zero initial velocity
    _, (fields, recs) = jax.lax.scan(interval, (p_m1, p0), n_intervals_arr)
    f0, r0 = observe(p0)
    if save_field:
        fields = jnp.concatenate([f0[None], fields], axis=0)
    if rec_idx is not None:
        recs = jnp.concatenate([r0[None], recs], axis=0)
    return fields, recs


# ----------------------------------------------------------------------------------------------
# Interpolation weights
# ----------------------------------------------------------------------------------------------


def _interp_weights(room: Room, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat node indices and multilinear weights, each (R, 2^d), for positions (R, d)."""
    h = room.spacing
    shape = room.shape
    lo, fr = [], []
    for ax, n in enumerate(shape):
        u = np.clip(pos[:, ax] / h, 0.0, n - 1)
        i0 = np.minimum(np.floor(u).astype(np.int64), n - 2)
        lo.append(i0)
        fr.append(u - i0)
    idx, w = [], []
    for corner in np.ndindex(*(2,) * room.dim):
        ii = [lo[ax] + corner[ax] for ax in range(room.dim)]
        ww = np.ones(len(pos))
        for ax in range(room.dim):
            ww = ww * (fr[ax] if corner[ax] else 1.0 - fr[ax])
        idx.append(np.ravel_multi_index(ii, shape))
        w.append(ww)
    return np.stack(idx, axis=1), np.stack(w, axis=1)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _check_positions(x, room: Room, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real array of shape (n, {room.dim}), got {x!r}") \
            from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != room.dim or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n, {room.dim}) for a {room.dim}D room, got "
                         f"shape {np.shape(x)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    size = np.asarray(room.size)
    outside = np.any((arr < 0) | (arr > size), axis=1)
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise ValueError(f"{name}[{k}] = {arr[k].tolist()} lies outside the room [0, "
                         f"{list(room.size)}] m")
    return arr


def _check_times(times) -> np.ndarray:
    try:
        t = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"times must be a 1D array of floats, got {times!r}") from None
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"times must be 1D with at least 2 entries, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite")
    if t[0] != 0.0:
        raise ValueError(f"times must start at 0, got times[0] = {t[0]}")
    d = np.diff(t)
    if np.any(d <= 0):
        raise ValueError("times must be strictly increasing")
    if np.max(np.abs(d - d[0])) > _GRID_TOL * d[0]:
        raise ValueError(f"times must be uniformly spaced (intervals from {d.min():.6g} to "
                         f"{d.max():.6g} s); use np.arange(n) * interval")
    return t


# ----------------------------------------------------------------------------------------------
# Public solver
# ----------------------------------------------------------------------------------------------


def simulate(room: Room, sources, times, *, pulse_width=0.2, amplitude=1.0, order=2, cfl=None,
             receivers=None, save_field=True, dtype="float64", batch_size=None,
             progress=None) -> WaveSolution:
    r"""Pressure field of Gaussian pulses in a room (leapfrog FDTD, batched over sources).

    Each source gives an independent run with
    :math:`p(\mathbf x, 0) = A\exp(-|\mathbf x - \mathbf s|^2/(2\sigma^2))` at the fluid
    nodes (0 in obstacles) and zero initial velocity; see the module docstring for the
    scheme, walls, obstacles and stability.

    Parameters
    ----------
    room : Room
    sources : array_like, shape (B, d) or (d,)
        Pulse centres (m), inside the room and not in an obstacle.
    times : array_like, shape (n_t,)
        Uniform output times starting at 0 (s). Each output interval :math:`\Delta T` is split
        into ``k`` equal internal steps, ``k`` the smallest integer with
        :math:`c\,\Delta T/(k h) \le` ``cfl``.
    pulse_width : float, default 0.2
        :math:`\sigma` (m).
    amplitude : float, default 1.0
        :math:`A` (Pa).
    order : {2, 4}, default 2
        Spatial order of the Laplacian.
    cfl : float, optional
        Target Courant number :math:`c\,\Delta t/h`; default
        ``DEFAULT_CFL_FRACTION * cfl_limit(d, order)``. Must not exceed
        :func:`cfl_limit` (:math:`1/\sqrt d` for order 2, :math:`\sqrt{3/(4d)}` for order 4).
    receivers : array_like, shape (R, d), optional
        Positions (m) where the pressure is recorded by multilinear interpolation.
    save_field : bool, default True
        Return the whole field at every output time.
    dtype : {"float64", "float32"}, default "float64"
    batch_size : int, optional
        Sources integrated per compiled call (all at once by default); the last chunk is
        padded so every chunk reuses one compilation.
    progress : bool, optional
        tqdm bar over the chunks; by default shown only when stderr is a terminal.

    Returns
    -------
    WaveSolution

    Raises
    ------
    ValueError
        On a non-Room ``room``, sources or receivers of the wrong shape, non-finite or outside
        the room, a source in an obstacle, times not 1D, non-finite, not starting at 0 or not
        uniform, an order other than 2/4, ``cfl`` not positive or above the stability limit,
        nothing requested (``save_field=False`` and no receivers), a bad dtype or batch size,
        or a non-finite result.
    """
    started = time.perf_counter()
    if not isinstance(room, Room):
        raise ValueError(f"room must be a Room, got {type(room).__name__}")
    if isinstance(order, bool) or order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    src = _check_positions(sources, room, "sources")
    t = _check_times(times)
    width = check_positive(pulse_width, "pulse_width")
    if isinstance(amplitude, bool) or not np.isfinite(amplitude):
        raise ValueError(f"amplitude must be a finite number, got {amplitude!r}")
    limit = cfl_limit(room.dim, order)
    if cfl is None:
        cfl = DEFAULT_CFL_FRACTION * limit
    cfl = check_positive(cfl, "cfl")
    if cfl > limit * (1.0 + 1e-12):
        raise ValueError(f"cfl = {cfl:.6g} exceeds the stability limit {limit:.6g} of the "
                         f"order-{order} scheme in {room.dim}D (c dt / h <= "
                         f"{'1/sqrt(d)' if order == 2 else 'sqrt(3/(4d))'}); lower cfl")
    rec = None if receivers is None else _check_positions(receivers, room, "receivers")
    if not save_field and rec is None:
        raise ValueError("nothing to return: save_field=False and no receivers given")
    np_dtype = check_dtype(dtype)
    B = len(src)
    W = B if batch_size is None else min(check_int(batch_size, "batch_size", 1), B)

    h, c = room.spacing, room.c
    fluid_np = None
    if room.obstacles is not None:
        near = np.rint(src / h).astype(np.int64)
        bad = room.obstacles[tuple(near.T)]
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"sources[{k}] = {src[k].tolist()} lies inside an obstacle (its "
                             f"nearest node is solid)")
        fluid_np = ~room.obstacles
    interval = float(t[1] - t[0])
    n_sub = max(1, math.ceil(c * interval / (h * cfl) * (1.0 - 1e-12)))
    dt = interval / n_sub
    lam = c * dt / h
    beta = _beta(room, lam)
    a_np = 1.0 if beta is None else 1.0 / (1.0 + beta)
    b_np = 1.0 if beta is None else (1.0 - beta) / (1.0 + beta)

    pts = room.points()
    p0_all = np.stack([gaussian_pulse(pts, s, width, amplitude) for s in src])
    if fluid_np is not None:
        p0_all = p0_all * fluid_np
    rec_idx = rec_w = None
    if rec is not None:
        rec_idx, rec_w = _interp_weights(room, rec)

    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else bool(progress)
    n_t = len(t)
    fields = np.empty((B, n_t, *room.shape), np_dtype) if save_field else None
    traces = np.empty((B, n_t, len(rec)), np_dtype) if rec is not None else None
    with jax.enable_x64(np_dtype == np.float64):
        jd = jnp.dtype(np_dtype)
        shifts = None
        fluid = None
        if fluid_np is not None:
            shifts = jax.tree_util.tree_map(jnp.asarray, _solid_shifts(room.obstacles, order))
            fluid = jnp.asarray(fluid_np, jd)
        args = dict(
            lam2=jnp.asarray(lam**2, jd), a=jnp.asarray(a_np, jd), b=jnp.asarray(b_np, jd),
            shifts=shifts, fluid=fluid, n_sub=jnp.asarray(n_sub, jnp.int32),
            n_intervals_arr=jnp.zeros(n_t - 1, jnp.int32),
            rec_idx=None if rec_idx is None else jnp.asarray(rec_idx, jnp.int32),
            rec_w=None if rec_w is None else jnp.asarray(rec_w, jd),
        )
        starts = range(0, B, W)
        for s0 in tqdm(starts, disable=not show, desc="wave chunks", unit="chunk"):
            chunk = p0_all[s0:s0 + W]
            n_real = len(chunk)
            if n_real < W:
                chunk = np.concatenate([chunk, np.zeros((W - n_real, *room.shape))])
            fr, rr = _integrate(jnp.asarray(chunk, jd), **args, order=order,
                                save_field=bool(save_field))
            if save_field:
                fields[s0:s0 + n_real] = np.swapaxes(np.asarray(jax.device_get(fr)), 0, 1)[:n_real]
            if rec is not None:
                traces[s0:s0 + n_real] = np.swapaxes(np.asarray(jax.device_get(rr)), 0, 1)[:n_real]
    for name, arr in (("field", fields), ("receivers", traces)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise ValueError(f"the {name} became non-finite (dt = {dt:.3g} s, Courant number "
                             f"{lam:.3g}); lower cfl or check the inputs")
    return WaveSolution(times=t, coords=room.coords, sources=src, field=fields, receivers=traces,
                        receiver_positions=rec, dt=dt, n_substeps=n_sub,
                        wall_time=time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------
# Energy
# ----------------------------------------------------------------------------------------------


def acoustic_energy(p_prev, p_next, room: Room, dt: float, *, order: int = 2):
    r"""Discrete wave energy between two consecutive internal steps (conserved by the scheme).

    .. math::

        E^{n+1/2} = \sum_i w_i h^d \Big[\underbrace{\frac{1}{2\rho c^2}
            \Big(\frac{p_i^{n+1} - p_i^n}{\Delta t}\Big)^2}_{\text{kinetic}}
            \underbrace{- \frac{1}{2\rho h^2}\,p_i^{n+1}(\mathcal L p^n)_i}_{\text{potential}}
        \Big],

    the discrete form of :math:`\frac{1}{2\rho}\int(c^{-2}p_t^2 + |\nabla p|^2)\,dV`
    (units J/s^2: the acoustic energy of the field whose velocity potential is :math:`p/\rho`;
    "kinetic" is the time-derivative term, "potential" the gradient term). ``w_i`` is 1/2 per
    wall the node lies on (the trapezoidal weights that make :math:`\mathcal L` symmetric)
    and 0 at solid nodes. For the leapfrog scheme of :func:`simulate` it is exactly
    conserved with rigid walls (order 2 with any obstacles; order 4 without obstacles), it
    decreases by
    :math:`\sum_i w_i h^d \beta_i (p^{n+1}_i - p^{n-1}_i)^2/(2\rho c^2\Delta t^2)` from
    step ``n - 1/2`` to ``n + 1/2`` with impedance walls, and it is positive below the CFL
    limit.

    Parameters
    ----------
    p_prev, p_next : array_like, shape (..., *room.shape)
        Pressure at two consecutive internal steps ``n`` and ``n + 1`` (Pa).
    room : Room
    dt : float
        The internal step (``WaveSolution.dt``), s.
    order : {2, 4}, default 2
        The spatial order the fields were computed with.

    Returns
    -------
    float or ndarray, shape (...)
    """
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    dt = check_positive(dt, "dt")
    p0 = np.asarray(p_prev, dtype=np.float64)
    p1 = np.asarray(p_next, dtype=np.float64)
    if p0.shape != p1.shape or p0.shape[-room.dim:] != room.shape:
        raise ValueError(f"p_prev {p0.shape} and p_next {p1.shape} must have equal shapes "
                         f"ending in the room shape {room.shape}")
    lead = p0.shape[:-room.dim]
    p0 = p0.reshape(-1, *room.shape)
    p1 = p1.reshape(-1, *room.shape)
    w = np.ones(room.shape)
    for ax, n in enumerate(room.shape):
        for idx in (0, n - 1):
            w[(slice(None),) * ax + (idx,)] *= 0.5
    shifts = fluid = None
    if room.obstacles is not None:
        fluid = (~room.obstacles).astype(np.float64)
        shifts = _solid_shifts(room.obstacles, order)
        w = w * fluid
    h, c, rho = room.spacing, room.c, room.rho
    lap = _laplacian(p0, order, shifts, fluid, np)
    axes = tuple(range(1, room.dim + 1))
    kin = np.sum(w * ((p1 - p0) / dt) ** 2, axis=axes) / (2.0 * rho * c**2)
    pot = -np.sum(w * p1 * lap, axis=axes) / (2.0 * rho * h**2)
    e = (kin + pot) * h**room.dim
    return float(e[0]) if lead == () else e.reshape(lead)
