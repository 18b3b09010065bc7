r"""Multiscale Lorenz-96: a batched, jit-compiled RK4 reference solver in JAX.

Two-tier system (Lorenz 1996) with an optional third tier (Thornes, Düben & Palmer 2017), as
used to generate closure-learning data for the multiscale neural operator (Lütjens et al.).
The slow variables :math:`X_k` (:math:`k = 1..K`) each drive :math:`J` fast variables
:math:`Y_{j,k}`, which each drive :math:`I` faster variables :math:`Z_{i,j,k}`:

.. math::

    \frac{dX_k}{dt} &= X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F
                      - \frac{hc}{b}\sum_{j=1}^{J} Y_{j,k} \\
    \frac{dY_{j,k}}{dt} &= -cb\,Y_{j+1,k}(Y_{j+2,k} - Y_{j-1,k}) - c\,Y_{j,k}
                      + \frac{hc}{b} X_k
                      \;\Big[- \frac{he}{d}\sum_{i=1}^{I} Z_{i,j,k}\Big] \\
    \frac{dZ_{i,j,k}}{dt} &= ed\,Z_{i-1,j,k}(Z_{i+1,j,k} - Z_{i-2,j,k}) - g_z e\,Z_{i,j,k}
                      + \frac{he}{d} Y_{j,k}

The bracketed term is present only when the third tier is on (``Z`` is not ``None``). All
indices are periodic, and the fast indices run continuously across their parent as in
Lorenz (1996): ``Y`` of shape ``(K, J)`` is one periodic ring of length ``K*J`` in row-major
order (so :math:`Y_{J+1,k} = Y_{1,k+1}`), and ``Z`` of shape ``(K, J, I)`` one ring of length
``K*J*I``.

Time is in model time units (MTU); 1 MTU corresponds to about 5 days of atmospheric time
(Lorenz 1996). Classic two-tier setting: ``K=36, J=10, F=10, h=1, b=10, c=10``. Three-tier
setting of the multiscale-neural-operator paper: ``h=0.5, b=10, c=8, d=10, e=10, F=20``.

Discretisation: classic fourth-order Runge-Kutta with a fixed step ``dt`` (global error
:math:`O(dt^4)`); the whole time loop runs in one ``jax.lax.scan`` inside a jit-compiled
function, batched over the leading (sample) axis.

Stability is limited by the fast tiers, whose stiffest rates scale like ``c*b*|Y|`` and
``e*d*|Z|``: reduce ``dt`` in proportion when those grow. On the attractor ``dt = 0.005`` MTU
is safe for the classic ``c = b = 10`` setting and the three-tier MNO setting (4096 samples
x 2 MTU, no failure). The initial transient from :func:`random_initial_state` (``|X|`` up to
15 drives ``|Y|`` to ~3.5 within ~0.01 MTU) is stiffer: at ``dt = 0.005`` about 0.8 % of such
samples blow up in the first 0.05 MTU, at ``dt = 0.004`` about 0.02 %, at ``dt <= 0.003``
none of 8192. Spin up with ``dt = 0.0025``, then continue from ``final_state`` at
``dt = 0.005``. A run that becomes non-finite raises ``ValueError``.

Computations are float64 by default: 64-bit mode is switched on with ``jax.enable_x64(True)``
as a context manager *inside* each solver call only; the global JAX configuration is never
changed.

References
----------
.. [1] E. N. Lorenz, "Predictability - a problem partly solved", Proc. ECMWF Seminar on
   Predictability, vol. 1, pp. 1-18, 1996.
.. [2] T. Thornes, P. Düben and T. Palmer, "On the use of scale-dependent precision in Earth
   System modelling", Q. J. R. Meteorol. Soc. 143, 897-908, 2017.
.. [3] B. Lütjens, C. H. Crawford, M. Veillette and D. Newman, "Multiscale neural operator:
   Learning fast and grid-independent PDE solvers", arXiv:2207.11417, 2022.
"""

from __future__ import annotations

import math
from dataclasses import fields
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from surrogates.solvers.checks import check_dtype, check_int
from surrogates.solvers.lorenz96_model import (
    _P,
    Lorenz96Params,
    Lorenz96State,
    _check_params,
    _check_state,
    _rk4_step,
    _to_batch_first,
    _to_batch_last,
    coarse_tendency,
    random_initial_state,
    tendencies,
)

__all__ = [
    "Lorenz96State",
    "Lorenz96Params",
    "Lorenz96Trajectory",
    "random_initial_state",
    "coarse_tendency",
    "tendencies",
    "solve",
    "solve_unbatched",
]

#: Step that is safe on the attractor for the classic setting (c = b = 10) and the MNO setting.
SAFE_DT = 0.005
#: Step that is safe for the initial transient from :func:`random_initial_state`.
SAFE_SPINUP_DT = 0.0025
#: Samples per compiled call on CPU. Every batch is split into chunks of this width (the last
#: one padded by repeating its last sample), so all samples go through the same compiled
#: program and a sample's trajectory is bitwise independent of how samples are batched (XLA's
#: code for different batch widths can round differently, which chaos then amplifies). 128 is
#: also the fastest width measured on a 2-core CPU (K=36, J=10, float64).
_CPU_CHUNK = 128
#: Upper bound on the saved frames of one compiled call (bytes); longer runs are segmented.
_MAX_CALL_BYTES = 512 * 2**20
#: The default parameters (the classic two-tier setting).
_CLASSIC = Lorenz96Params()


class Lorenz96Trajectory(NamedTuple):
    r"""Saved frames of a Lorenz-96 run (NumPy arrays).

    ``T = n_steps // save_every + 1`` frames, at steps ``0, save_every, ..., n_steps`` counted
    after the spin-up.

    Attributes
    ----------
    time : ndarray, shape (T,)
        Model time units, ``time[0] = 0`` (the state after spin-up).
    X : ndarray, shape (B, T, K)
    Y : ndarray, shape (B, T, K, J)
    Z : ndarray, shape (B, T, K, J, I), or None
    coupling : ndarray, shape (B, T, K)
        Exact subgrid forcing of the slow variables, :math:`-(hc/b)\sum_j Y_{j,k}`.
    closure_target : ndarray, shape (B, T, K)
        :math:`(X(t+\Delta t) - X(t))/\Delta t - f(X(t); F)`, where :math:`X(t+\Delta t)` is
        one RK4 step from the saved frame and :math:`f` is :func:`coarse_tendency`: the
        step-averaged true tendency minus the known coarse physics. Forward Euler with this
        term, :math:`X + \Delta t\,(f(X) + \text{target})`, reproduces the resolved
        :math:`X(t+\Delta t)` exactly. The last frame uses one extra step beyond ``n_steps``.
    final_state : Lorenz96State
        State after step ``n_steps`` (NumPy arrays, batched), to continue a run.
    """

    time: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    Z: np.ndarray | None
    coupling: np.ndarray
    closure_target: np.ndarray
    final_state: Lorenz96State


# ----------------------------------------------------------------------------------------------
# Time stepping
# ----------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("n_frames", "append_final"))
def _integrate(state, p, dt, spinup_steps, save_every, *, n_frames: int, append_final: bool):
    """Spin up, then save ``n_frames`` frames ``save_every`` steps apart (plus, if
    ``append_final``, the frame after the last step).

    Takes and returns batch-first arrays; integrates in the batch-last layout. Returns the
    state after the last step, the saved frames ``(B, T, ...)``, the coupling term and the
    closure target of every frame. Only the output shapes are static (``n_frames``,
    ``append_final`` and the input shapes): ``dt``, ``spinup_steps``, ``save_every`` and the
    parameters are traced, so changing them does not recompile.
    """
    B, K = state.X.shape
    J = state.Y.shape[-1]
    I = 0 if state.Z is None else state.Z.shape[-1]  # noqa: E741
    hcb = p.h * p.c / p.b
    step = partial(_rk4_step, p=p, dt=dt)
    s = _to_batch_last(state)
    s = jax.lax.fori_loop(0, spinup_steps, lambda _, u: step(u), s)

    def frame(u, i):
        u1 = step(u)  # the first step gives X(t + dt) for the closure target
        x1 = u1[0]
        # The appended final frame (i == n_frames) needs only that first step.
        n_more = jnp.where(i < n_frames, save_every - 1, 0)
        u1 = jax.lax.fori_loop(0, n_more, lambda _, v: step(v), u1)
        coupling = -hcb * jnp.sum(u[1].reshape(K, J, B), axis=1)
        return u1, (u, x1, coupling)

    # With append_final, one more iteration saves the state after the last step (and takes the
    # extra step its closure target needs); the final state is then that last frame.
    n_iter = n_frames + int(append_final)
    carry, (frames, x_next, coupling) = jax.lax.scan(frame, s, jnp.arange(n_iter))
    final = jax.tree_util.tree_map(lambda f: f[-1], frames) if append_final else carry

    # Time-major batch-last (T, ring, B) -> sample-major (B, T, ...).
    def sample_major(f, *tail):
        return None if f is None else jnp.transpose(f, (2, 0, 1)).reshape(B, n_iter, *tail)

    Xf = sample_major(frames[0], K)
    Yf = sample_major(frames[1], K, J)
    Zf = sample_major(frames[2], K, J, I)
    target = (sample_major(x_next, K) - Xf) / dt - coarse_tendency(Xf, p.F)
    coupling = sample_major(coupling, K)
    return _to_batch_first(*final, J, I), Lorenz96State(Xf, Yf, Zf), coupling, target


def _raise_if_unstable(
    traj_X, target, final: Lorenz96State, dt: float, spinup_steps: int, save_every: int
):
    ok_frames = np.isfinite(traj_X).all(axis=-1) & np.isfinite(target).all(axis=-1)  # (B, T)
    ok_final = np.isfinite(final.X).all(-1) & np.isfinite(final.Y).all((-1, -2))
    if final.Z is not None:
        ok_final &= np.isfinite(final.Z).all((-1, -2, -3))
    if ok_frames.all() and ok_final.all():
        return
    bad_samples = np.flatnonzero(~(ok_frames.all(-1) & ok_final))
    bad_t = np.flatnonzero(~ok_frames.all(0))
    if bad_t.size and bad_t[0] == 0 and spinup_steps > 0:
        where = f"during the {spinup_steps}-step spin-up"
    elif bad_t.size:
        t0 = bad_t[0] * save_every * dt
        where = (
            f"between t = {t0:g} and {t0 + save_every * dt:g} MTU (after saved frame {bad_t[0]})"
        )
    else:
        where = "at the end of the run"
    raise ValueError(
        f"Lorenz-96 solution became non-finite {where} for {bad_samples.size} sample(s) "
        f"(first: {bad_samples[:5].tolist()}): dt = {dt:g} is probably too large for RK4 "
        f"stability. On the attractor dt = {SAFE_DT} MTU is typically safe for the classic "
        "c = b = 10 setting (and the three-tier MNO setting); the initial transient from "
        f"random_initial_state needs dt <= {SAFE_SPINUP_DT} (spin up at that dt, then continue "
        "from final_state). The stiffest rates scale like c*b*|Y| and e*d*|Z|, so reduce dt "
        "in proportion for faster or larger fast tiers"
    )


# ----------------------------------------------------------------------------------------------
# Public solvers
# ----------------------------------------------------------------------------------------------


def solve(
    state: Lorenz96State,
    params: Lorenz96Params = _CLASSIC,
    *,
    dt: float = 0.005,
    n_steps: int,
    save_every: int = 1,
    spinup_steps: int = 0,
    dtype: str = "float64",
    show_progress: bool = False,
) -> Lorenz96Trajectory:
    r"""Integrate a batch of multiscale Lorenz-96 systems with classic RK4.

    Equations (periodic indices; ``Y`` and ``Z`` are single rings across their parents, see
    the module docstring):

    .. math::

        \dot X_k &= X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F - \tfrac{hc}{b}\textstyle\sum_j Y_{j,k}\\
        \dot Y_{j,k} &= -cb\,Y_{j+1,k}(Y_{j+2,k} - Y_{j-1,k}) - cY_{j,k} + \tfrac{hc}{b}X_k
                        \;[-\tfrac{he}{d}\textstyle\sum_i Z_{i,j,k}]\\
        \dot Z_{i,j,k} &= ed\,Z_{i-1,j,k}(Z_{i+1,j,k} - Z_{i-2,j,k}) - g_z e Z_{i,j,k}
                        + \tfrac{he}{d}Y_{j,k}

    Fourth-order Runge-Kutta with fixed step ``dt`` (global error :math:`O(dt^4)`). The time
    loop is one ``jax.lax.scan`` in a jit-compiled function; compiled code is cached per
    output shape, ``(W, K, J, I, n_steps // save_every, dtype)``, so repeated calls with new
    initial states, parameters, ``dt``, ``spinup_steps`` or ``save_every`` (with the same
    number of frames) do not recompile. On CPU the batch runs in chunks of ``W = 128`` samples
    (the last chunk padded), so every sample goes through the same compiled program and its
    trajectory is bitwise independent of how the samples are batched; on accelerators
    ``W = B`` (one chunk). Chunks are spread over the local devices, one per device at a time,
    running concurrently: to use several CPU cores, start the process with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` (set before JAX starts; the
    results are bitwise those of one device). Runs whose saved frames would pass 512 MiB per
    call are split into several scans. Computation happens inside
    ``jax.enable_x64(dtype == "float64")``; the global JAX configuration is left unchanged.

    Parameters
    ----------
    state : Lorenz96State
        Initial state, ``X (B, K)``, ``Y (B, K, J)``, ``Z (B, K, J, I)`` or ``None`` for the
        two-tier system. NumPy or JAX arrays. ``K >= 4``.
    params : Lorenz96Params, default Lorenz96Params()
        Scalars or arrays of shape ``(B,)``. Default: classic two-tier setting
        ``F=10, h=1, b=10, c=10`` (``d=e=10, g_z=1`` for the third tier). MNO three-tier
        setting: ``Lorenz96Params(F=20, h=0.5, b=10, c=8, d=10, e=10)``.
    dt : float, default 0.005
        Time step in model time units (1 MTU ~ 5 days). ``0.005`` is stable on the attractor
        for the classic and MNO settings; spin up from :func:`random_initial_state` with
        ``dt = 0.0025`` (see the module docstring, "Stability").
    n_steps : int
        Number of steps after spin-up (>= 1), a multiple of ``save_every``.
    save_every : int, default 1
        Save a frame every ``save_every`` steps.
    spinup_steps : int, default 0
        Steps run first and discarded (to reach the attractor).
    dtype : {"float64", "float32"}, default "float64"
        Floating-point precision of the computation and of the returned arrays.
    show_progress : bool, default False
        Show a tqdm progress bar (the run is split into about 20 scans per chunk of samples;
        the bar turns itself off when not attached to a terminal). The default path is a
        single compiled scan per chunk.

    Returns
    -------
    Lorenz96Trajectory
        ``T = n_steps // save_every + 1`` frames at times ``0, save_every*dt, ...,
        n_steps*dt`` (MTU, counted from the end of the spin-up): ``X (B, T, K)``,
        ``Y (B, T, K, J)``, ``Z (B, T, K, J, I)`` or ``None``, ``coupling (B, T, K)`` =
        :math:`-(hc/b)\sum_j Y_{j,k}`, ``closure_target (B, T, K)`` =
        :math:`(X(t+dt) - X(t))/dt - (X_{k-1}(X_{k+1}-X_{k-2}) - X_k + F)` (one extra step
        is taken beyond ``n_steps`` for the last frame), and ``final_state`` (after step
        ``n_steps``). NumPy arrays of the requested dtype.

    Raises
    ------
    ValueError
        On a malformed or non-finite initial state (shape mismatches name both shapes),
        non-finite or wrongly shaped parameters, ``b`` or ``d`` equal to zero, ``dt`` not
        positive and finite, ``n_steps < 1``, ``n_steps`` not a multiple of ``save_every``, an
        unknown ``dtype``, or when the solution becomes non-finite (``dt`` too large for RK4
        stability; ``dt = 0.005`` is typically safe on the attractor for ``c = b = 10``, the
        transient from :func:`random_initial_state` needs ``dt = 0.0025``).

    References
    ----------
    .. [1] E. N. Lorenz, "Predictability - a problem partly solved", ECMWF Seminar on
       Predictability, 1996.
    .. [2] T. Thornes, P. Düben and T. Palmer, Q. J. R. Meteorol. Soc. 143, 897-908, 2017.
    .. [3] B. Lütjens et al., "Multiscale neural operator: Learning fast and
       grid-independent PDE solvers", arXiv:2207.11417, 2022.

    Examples
    --------
    >>> s0 = random_initial_state(4, K=36, J=10, seed=1)
    >>> spun = solve(s0, dt=0.0025, n_steps=1, spinup_steps=400).final_state  # 1 MTU
    >>> traj = solve(spun, dt=0.005, n_steps=200, save_every=10)
    >>> traj.X.shape, float(traj.time[-1])
    ((4, 21, 36), 1.0)
    """
    X0, Y0, Z0 = _check_state(state)
    B = X0.shape[0]
    p_np = _check_params(params, B)
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"dt must be a positive finite float, got {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive and finite, got dt = {dt}")
    n_steps = check_int(n_steps, "n_steps", minimum=1)
    save_every = check_int(save_every, "save_every", minimum=1)
    spinup_steps = check_int(spinup_steps, "spinup_steps", minimum=0)
    if n_steps % save_every != 0:
        raise ValueError(
            f"n_steps = {n_steps} must be a positive multiple of save_every = {save_every} "
            f"(e.g. n_steps = {max(1, n_steps // save_every) * save_every})"
        )
    np_dtype = check_dtype(dtype)
    n_frames = n_steps // save_every

    with jax.enable_x64(np_dtype == np.float64):
        out = _run(
            X0, Y0, Z0, p_np, dt, spinup_steps, save_every, n_frames, np_dtype, show_progress
        )
    final, (Xs, Ys, Zs), coupling, target = out
    _raise_if_unstable(Xs, target, final, dt, spinup_steps, save_every)
    time = np.arange(n_frames + 1, dtype=np.float64) * (save_every * dt)
    return Lorenz96Trajectory(time, Xs, Ys, Zs, coupling, target, final)


def _chunk_width(B: int) -> int:
    """Samples per compiled call: fixed on CPU (see ``_CPU_CHUNK``), the whole batch elsewhere."""
    return _CPU_CHUNK if jax.default_backend() == "cpu" else B


def _run(X0, Y0, Z0, p_np, dt, spinup_steps, save_every, n_frames, np_dtype, show_progress):
    """Integrate in chunks of samples (fixed width, padded) and segments of frames.

    Every chunk runs through the same compiled program, so a sample's result does not depend
    on the batch it came in (bitwise, on CPU). Segments bound the memory of one call's saved
    frames; for ordinary sizes (and without a progress bar) there is one segment, i.e. one
    compiled scan per chunk.

    Chunks go round-robin to the local devices of the default backend, a group of one chunk
    per device at a time: each chunk's call is dispatched (asynchronously) before any result
    is fetched, so the devices run concurrently. On a CPU started with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` that is one chunk per core (1.7x
    at B = 256 on 2 cores, see ``benchmarks/solver_lorenz96.py``), with bitwise the same
    results as on one device.
    """
    from tqdm.auto import tqdm

    B, K = X0.shape
    J = Y0.shape[-1]
    I = 0 if Z0 is None else Z0.shape[-1]  # noqa: E741
    W = _chunk_width(B)
    n_chunks = -(-B // W)
    devices = jax.local_devices()[:n_chunks]
    T = n_frames + 1
    jd = jnp.dtype(np_dtype)

    # Frames per call: all of them unless one call's frames would pass _MAX_CALL_BYTES (or a
    # progress bar asks for ~20 updates per chunk).
    per_frame = W * (4 * K + K * J + K * J * I) * np_dtype.itemsize
    seg = min(n_frames, max(1, _MAX_CALL_BYTES // per_frame))
    if show_progress:
        seg = min(seg, max(1, -(-n_frames // 20)))

    out_X = np.empty((B, T, K), np_dtype)
    out_Y = np.empty((B, T, K, J), np_dtype)
    out_Z = None if Z0 is None else np.empty((B, T, K, J, I), np_dtype)
    out_c = np.empty((B, T, K), np_dtype)
    out_t = np.empty((B, T, K), np_dtype)
    fin = [np.empty((B, K), np_dtype), np.empty((B, K, J), np_dtype), None]
    if Z0 is not None:
        fin[2] = np.empty((B, K, J, I), np_dtype)

    def lanes(a, lo, hi, device):
        """Samples lo:hi of a, padded to W by repeating the last sample, on ``device``."""
        a = a[lo:hi]
        if hi - lo < W:
            a = np.concatenate([a, np.repeat(a[-1:], W - (hi - lo), axis=0)], axis=0)
        return jax.device_put(np.asarray(a, np_dtype), device)

    total = n_chunks * (spinup_steps + n_frames * save_every)
    with tqdm(
        total=total, unit="step", desc="Lorenz-96", disable=None if show_progress else True
    ) as bar:
        for first in range(0, n_chunks, len(devices)):
            group = []  # (lo, hi, state, params, dt) per chunk of this group, one per device
            for c, device in zip(range(first, n_chunks), devices, strict=False):
                lo, hi = c * W, min(B, (c + 1) * W)
                s = Lorenz96State(
                    lanes(X0, lo, hi, device),
                    lanes(Y0, lo, hi, device),
                    None if Z0 is None else lanes(Z0, lo, hi, device),
                )
                p = _P(**{k: lanes(v, lo, hi, device) for k, v in p_np.items()})
                group.append([lo, hi, s, p, jax.device_put(jnp.asarray(dt, jd), device)])
            done = 0
            while done < n_frames:
                n = min(seg, n_frames - done)
                last = done + n == n_frames
                # The spin-up runs inside the first segment (it is traced: no extra compile).
                spin = spinup_steps if done == 0 else 0
                # Dispatch every chunk of the group, then fetch: the devices run concurrently.
                results = []
                for g in group:
                    g[2], *out = _integrate(
                        g[2], g[3], g[4], spin, save_every, n_frames=n, append_final=last
                    )
                    results.append(out)
                t = slice(done, done + n + int(last))
                for (lo, hi, *_), out in zip(group, results, strict=True):
                    frames, coupling, target = jax.device_get(out)
                    n_real = hi - lo
                    out_X[lo:hi, t] = frames[0][:n_real]
                    out_Y[lo:hi, t] = frames[1][:n_real]
                    if out_Z is not None:
                        out_Z[lo:hi, t] = frames[2][:n_real]
                    out_c[lo:hi, t] = coupling[:n_real]
                    out_t[lo:hi, t] = target[:n_real]
                    bar.update(spin + n * save_every)
                done += n
            for lo, hi, s, *_ in group:
                for i, a in enumerate(jax.device_get(s)):
                    if a is not None:
                        fin[i][lo:hi] = a[: hi - lo]
    return Lorenz96State(*fin), (out_X, out_Y, out_Z), out_c, out_t


def solve_unbatched(
    state: Lorenz96State,
    params: Lorenz96Params = _CLASSIC,
    **kwargs,
) -> Lorenz96Trajectory:
    """:func:`solve` for a single sample without the batch axis.

    Parameters
    ----------
    state : Lorenz96State
        ``X (K,)``, ``Y (K, J)``, ``Z (K, J, I)`` or ``None``.
    params : Lorenz96Params
        Scalar parameters.
    **kwargs
        Keyword arguments of :func:`solve` (``dt``, ``n_steps``, ``save_every``, ...).

    Returns
    -------
    Lorenz96Trajectory
        As from :func:`solve` with the batch axis removed: ``X (T, K)``, ``Y (T, K, J)``, ...
    """
    Z = state[2] if len(state) == 3 else None
    batched = Lorenz96State(
        np.asarray(state[0])[None],
        np.asarray(state[1])[None],
        None if Z is None else np.asarray(Z)[None],
    )
    for f in fields(params):
        if np.ndim(getattr(params, f.name)) != 0:
            raise ValueError(
                f"solve_unbatched needs scalar parameters; {f.name} has shape "
                f"{np.shape(getattr(params, f.name))}"
            )
    tr = solve(batched, params, **kwargs)
    fs = tr.final_state
    return Lorenz96Trajectory(
        tr.time,
        tr.X[0],
        tr.Y[0],
        None if tr.Z is None else tr.Z[0],
        tr.coupling[0],
        tr.closure_target[0],
        Lorenz96State(fs.X[0], fs.Y[0], None if fs.Z is None else fs.Z[0]),
    )
