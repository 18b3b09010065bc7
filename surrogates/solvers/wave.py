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

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.solvers.checks import check_dtype, check_int, check_positive
from surrogates.solvers.wave_room import (
    _GRID_TOL,  # noqa: F401  (re-exported)
    DEFAULT_CFL_FRACTION,
    Room,
    _check_positions,
    _check_times,
    _interp_weights,
    cfl_limit,
    gaussian_pulse,
    impedance_from_absorption,
)
from surrogates.solvers.wave_stencil import _beta, _integrate, _solid_shifts, acoustic_energy

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
