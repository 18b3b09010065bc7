r"""The machine's memory-bandwidth limit, measured in the same run as a solver benchmark, and the
bytes and flops each solver moves per cell update.

A solver benchmark calls :func:`machine_limits` with its working set (the bytes of the arrays
one time step touches), takes the solver's cell updates per second, and reports the fraction
of the limit it reaches (:func:`roofline_fraction`):

.. math::

    \text{fraction} = \frac{\text{cell updates/s} \times \text{bytes per cell update}}
                           {\text{limit (B/s) at that working set}},

where the limit is the faster of two STREAM-like kernels run at that working-set size
(McCalpin 1995), each iterated ``n_iter`` times inside one compiled ``lax.fori_loop`` (no
Python or dispatch overhead between passes) on every local JAX CPU device at once (the leading
axis is sharded over them; with one device XLA's own intra-op threads split large loops):

=========  ==============================  ===============  ==========  ==================
kernel     one pass                        bytes / element  flops / el  live arrays
=========  ==============================  ===============  ==========  ==================
copy       :math:`x \leftarrow -x`         2 words          0           1 (``x``)
triad      :math:`x \leftarrow b + s x`    3 words          2           2 (``x``, ``b``)
=========  ==============================  ===============  ==========  ==================

(A word is the item size: 8 bytes in float64, 4 in float32.) The copy flips the sign so that
XLA cannot remove it; it reads and writes every element once, as STREAM's copy does. The
triad feeds its output back (STREAM's :math:`a = b + s c` would be loop-invariant and hoisted).
:func:`numpy_copy` also times a single-thread ``numpy.copyto`` (2 words per element), the
figure of issue 21 (about 17 GB/s from memory and 49 GB/s in cache on the 2-core machine).

Bytes per cell update (:func:`solver_model`) are the *compulsory* traffic of one update if
every intermediate of the step stayed in registers or L1 (the fields each update must read
and write once); flops are counted from the formulas in the solver, one per ``+ - * /``,
``min``, ``max``, ``abs`` or comparison. A solver at 100 % of the limit streams its fields
as fast as the copy or the triad does; a fraction above 1 means the solver's fields stay in a
faster cache than the kernels' arrays of the same size.

References
----------
.. [1] J. D. McCalpin, "Memory bandwidth and machine balance in current high performance
   computers", IEEE TCCA Newsletter, 19-25, 1995 (STREAM).
.. [2] S. Williams, A. Waterman and D. Patterson, "Roofline: an insightful visual performance
   model for multicore architectures", Commun. ACM 52(4), 65-76, 2009.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Words moved per element by one pass of each kernel (STREAM's counting: every read and
#: every write once, no write-allocate).
WORDS = {"copy": 2, "triad": 3}
#: Flops per element of one pass.
FLOPS = {"copy": 0, "triad": 2}
#: Arrays live during a pass (the working set is ``ARRAYS * n * itemsize``).
ARRAYS = {"copy": 1, "triad": 2}
#: Reference working sets: one that fits the 4 MiB L2 of a core, one far beyond every cache.
IN_CACHE_BYTES = 1 * 2**20
IN_MEMORY_BYTES = 512 * 2**20


def kernel_bytes(kernel: str, n: int, dtype="float64") -> int:
    """Bytes one pass of ``kernel`` moves over ``n`` elements: ``WORDS[kernel] * n * itemsize``.

    >>> kernel_bytes("copy", 1000, "float64")
    16000
    """
    return WORDS[_kernel(kernel)] * int(n) * np.dtype(dtype).itemsize


def kernel_flops(kernel: str, n: int) -> int:
    """Flops of one pass of ``kernel`` over ``n`` elements (triad: 2 n, copy: 0)."""
    return FLOPS[_kernel(kernel)] * int(n)


def _kernel(kernel: str) -> str:
    if kernel not in WORDS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(WORDS)}")
    return kernel


@dataclass(frozen=True)
class StreamResult:
    """One timed kernel.

    Attributes
    ----------
    kernel : str
        ``"copy"``, ``"triad"`` or ``"numpy_copy"``.
    dtype : str
    working_set_bytes : int
        Bytes of the live arrays (see the module table).
    n_elements : int
        Elements per array (all devices together).
    passes : int
        Passes over the arrays in the timed call.
    seconds : float
        Fastest of the repeats, for all ``passes``.
    gb_per_s : float
        ``passes * bytes per pass / seconds / 1e9``.
    gflop_per_s : float
    devices : int
        CPU devices the arrays were sharded over (1 for NumPy).
    """

    kernel: str
    dtype: str
    working_set_bytes: int
    n_elements: int
    passes: int
    seconds: float
    gb_per_s: float
    gflop_per_s: float
    devices: int


@partial(jax.jit, static_argnames=("kernel", "passes"))
def _passes(x, b, *, kernel: str, passes: int):
    if kernel == "copy":
        return jax.lax.fori_loop(0, passes, lambda _, v: -v, x)
    s = jnp.asarray(0.5, x.dtype)
    return jax.lax.fori_loop(0, passes, lambda _, v: b + s * v, x)


def measure_stream(kernel: str, working_set_bytes: int, dtype="float64", *,
                   devices=None, min_seconds: float = 0.05, repeats: int = 3) -> StreamResult:
    """Time ``kernel`` (``"copy"`` or ``"triad"``, see the module table) at a working set.

    Parameters
    ----------
    kernel : {"copy", "triad"}
    working_set_bytes : int
        Bytes of the live arrays; each holds ``working_set_bytes / (ARRAYS * itemsize)``
        elements, rounded down to a multiple of the device count (at least one per device).
    dtype : {"float64", "float32"}
    devices : sequence of jax.Device, optional
        Devices to shard the arrays over; default every local CPU device.
    min_seconds : float, default 0.05
        The number of passes is chosen so that one timed call lasts about this long.
    repeats : int, default 3
        Timed calls; the fastest is kept.

    Returns
    -------
    StreamResult
    """
    kernel = _kernel(kernel)
    dt = np.dtype(dtype)
    devices = list(devices or jax.local_devices(backend="cpu"))
    nd = len(devices)
    per_dev = max(1, int(working_set_bytes) // (ARRAYS[kernel] * dt.itemsize * nd))
    n = per_dev * nd
    sharding = NamedSharding(Mesh(np.array(devices), ("d",)), PartitionSpec("d"))
    with jax.enable_x64(dt == np.float64):
        x = jax.device_put(np.full((nd, per_dev), 0.5, dt), sharding)
        b = jax.device_put(np.full((nd, per_dev), 0.25, dt), sharding)
        # Calibrate the pass count on a short call (which also compiles), then time.
        probe = 8
        _passes(x, b, kernel=kernel, passes=probe).block_until_ready()
        t0 = time.perf_counter()
        _passes(x, b, kernel=kernel, passes=probe).block_until_ready()
        per_pass = max((time.perf_counter() - t0) / probe, 1e-9)
        passes = int(min(max(probe, min_seconds / per_pass), 10**7))
        _passes(x, b, kernel=kernel, passes=passes).block_until_ready()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _passes(x, b, kernel=kernel, passes=passes).block_until_ready()
            times.append(time.perf_counter() - t0)
    best = min(times)
    return StreamResult(kernel, dt.name, ARRAYS[kernel] * n * dt.itemsize, n, passes, best,
                        passes * kernel_bytes(kernel, n, dt) / best / 1e9,
                        passes * kernel_flops(kernel, n) / best / 1e9, nd)


def numpy_copy(working_set_bytes: int, dtype="float64", *, min_seconds: float = 0.05,
               repeats: int = 3) -> StreamResult:
    """Single-thread ``numpy.copyto(dst, src)``; the working set counts both arrays."""
    dt = np.dtype(dtype)
    n = max(1, int(working_set_bytes) // (2 * dt.itemsize))
    src = np.full(n, 0.5, dt)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t0 = time.perf_counter()
    np.copyto(dst, src)
    passes = int(min(max(1, min_seconds / max(time.perf_counter() - t0, 1e-9)), 10**7))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(passes):
            np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    best = min(times)
    return StreamResult("numpy_copy", dt.name, 2 * n * dt.itemsize, n, passes, best,
                        passes * kernel_bytes("copy", n, dt) / best / 1e9, 0.0, 1)


def machine_limits(working_set_bytes: int, dtypes=("float32", "float64"), *,
                   min_seconds: float = 0.05, repeats: int = 3,
                   references: bool = True) -> dict[str, dict]:
    """Copy and triad at ``working_set_bytes`` (and, with ``references``, in cache and in
    memory) for each dtype.

    Returns
    -------
    dict
        ``{dtype: {"working_set_bytes", "limit_gb_per_s", "at_working_set": [...],
        "in_cache": [...], "in_memory": [...]}}`` where the lists hold
        :class:`StreamResult` dicts (copy, triad, numpy_copy) and ``limit_gb_per_s`` is the
        fastest JAX kernel at the working set: the denominator of :func:`roofline_fraction`.
    """
    out = {}
    for dtype in dtypes:
        def at(size, dtype=dtype):
            rows = [measure_stream(k, size, dtype, min_seconds=min_seconds, repeats=repeats)
                    for k in ("copy", "triad")]
            rows.append(numpy_copy(size, dtype, min_seconds=min_seconds, repeats=repeats))
            return [asdict(r) for r in rows]

        here = at(working_set_bytes)
        entry = {"working_set_bytes": int(working_set_bytes),
                 "limit_gb_per_s": max(r["gb_per_s"] for r in here[:2]),
                 "at_working_set": here}
        if references:
            entry["in_cache"] = at(IN_CACHE_BYTES)
            entry["in_memory"] = at(IN_MEMORY_BYTES)
        out[np.dtype(dtype).name] = entry
    return out


# ----------------------------------------------------------------------------------------------
# Bytes and flops per cell update of each solver
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SolverModel:
    """Compulsory traffic and work of one cell update.

    Attributes
    ----------
    solver : str
    words : float
        Words read and written per cell update (bytes = ``words * itemsize``).
    flops : float
        Flops per cell update.
    arrays : float
        Field-sized arrays live during a step (for the working set, ``arrays * cells *
        itemsize``).
    formula : str
        What is counted.
    """

    solver: str
    words: float
    flops: float
    arrays: float
    formula: str

    def bytes_per_update(self, dtype) -> float:
        return self.words * np.dtype(dtype).itemsize

    def working_set(self, cells: int, dtype) -> int:
        """Bytes of the live arrays for ``cells`` cells (all samples of the batch)."""
        return int(self.arrays * cells * np.dtype(dtype).itemsize)


def solver_model(solver: str, *, dim: int = 2, order: int = 2, J: int = 10) -> SolverModel:
    r"""Bytes and flops per cell update of a reference solver.

    ``"wave"`` (:mod:`surrogates.solvers.wave`, rigid walls, ``dim`` = 2 or 3, ``order`` = 2 or
    4): one leapfrog update :math:`p^{+} = a(2p + \lambda^2 h^2 L p) - b p^{-}` reads
    :math:`p, p^{-}` and writes :math:`p^{+}`: 3 words. Flops: per axis
    ``q_-1 + q_+1 - 2p`` (3; order 4: ``(16(q_-1 + q_+1) - (q_-2 + q_+2) - 30p)/12``, 7), ``dim
    - 1`` adds over the axes and 5 for the update: ``4 dim + 4`` (order 2), ``8 dim + 4``
    (order 4).

    ``"burgers"`` / ``"advection"`` (:mod:`surrogates.solvers.pde1d`, MUSCL + SSP-RK3): a
    cell update is one full RK3 step, whose stages read ``u`` (``u, u1``; ``u, u2``) and write
    ``u1`` (``u2``; ``u``): 2 + 3 + 3 = 8 words. Flops per stage: limited slope 16, interface
    states 4, flux difference 3, Rusanov flux 8 plus central diffusion 4 (Burgers) or upwind
    flux 3 (advection); the stage combinations 2 + 5 + 5: Burgers 126, advection 90.

    ``"darcy_smoother"`` (:mod:`surrogates.solvers.darcy`, one red-black Gauss-Seidel sweep,
    each cell updated once): :math:`x \leftarrow x + D^{-1}(r - A x)` reads ``x, r, w_x, w_y,
    1/D`` and writes ``x``: 6 words; 16 flops (the five-point flux operator 12, the update 4).

    ``"lorenz96"`` (:mod:`surrogates.solvers.lorenz96`, two-tier RK4; a cell is one of the
    ``K (1 + J)`` variables of a sample): a step reads and writes the state once, 2 words, if
    the four stages stay in cache. Flops per fast variable per stage 7 (advection term 3,
    damping 2, coupling 2), and 5 per stage-combination and 6 for the final combination:
    :math:`4 \cdot 7 + 3 \cdot 2 + 6 = 40`.

    Raises
    ------
    ValueError
        For an unknown solver, or a wave ``dim`` / ``order`` outside {2, 3} / {2, 4}.
    """
    if solver == "wave":
        if dim not in (2, 3) or order not in (2, 4):
            raise ValueError(f"wave model needs dim in (2, 3) and order in (2, 4), got "
                             f"dim={dim}, order={order}")
        per_axis = 3 if order == 2 else 7
        return SolverModel(f"wave {dim}D order {order}", 3, per_axis * dim + (dim - 1) + 5, 3,
                           "read p, p_prev; write p_next")
    if solver in ("burgers", "advection"):
        flux = 12 if solver == "burgers" else 3
        return SolverModel(solver, 8, 3 * (16 + 4 + 3 + flux) + 12, 4,
                           "SSP-RK3 step: stages read u,(u1|u2) and write u1|u2|u")
    if solver == "darcy_smoother":
        return SolverModel("darcy smoother", 6, 16, 6,
                           "red-black Gauss-Seidel sweep: read x, r, wx, wy, 1/D; write x")
    if solver == "lorenz96":
        return SolverModel("lorenz96", 2, 40, 6,
                           "RK4 step: read and write the state (stages in cache)")
    raise ValueError(f"unknown solver {solver!r}; choose wave, burgers, advection, "
                     "darcy_smoother or lorenz96")


def roofline_fraction(updates_per_s: float, model: SolverModel, dtype,
                      limit_gb_per_s: float) -> dict[str, float]:
    """Achieved bandwidth and flop rate of a solver and its fraction of the measured limit.

    Returns
    -------
    dict
        ``gb_per_s`` = updates/s x bytes per update / 1e9, ``gflop_per_s``, ``limit_gb_per_s``
        and ``fraction_of_limit`` = ``gb_per_s / limit_gb_per_s``.
    """
    gbs = updates_per_s * model.bytes_per_update(dtype) / 1e9
    return {"gb_per_s": gbs, "gflop_per_s": updates_per_s * model.flops / 1e9,
            "limit_gb_per_s": limit_gb_per_s, "fraction_of_limit": gbs / limit_gb_per_s}


def format_limits(limits: dict[str, dict]) -> str:
    """A small text table of :func:`machine_limits`' result (GB/s)."""
    lines = ["| case | where | working set | copy GB/s | triad GB/s | numpy copy GB/s |",
             "|---|---|---:|---:|---:|---:|"]
    for dtype, entry in limits.items():
        for where in ("at_working_set", "in_cache", "in_memory"):
            if where not in entry:
                continue
            rows = {r["kernel"]: r for r in entry[where]}
            lines.append(f"| {dtype} | {where.replace('_', ' ')} | "
                         f"{rows['copy']['working_set_bytes'] / 2**20:.2f} MiB | "
                         f"{rows['copy']['gb_per_s']:.1f} | {rows['triad']['gb_per_s']:.1f} | "
                         f"{rows['numpy_copy']['gb_per_s']:.1f} |")
    return "\n".join(lines)
