"""Speed of the JAX FDTD room-acoustics solver against a plain NumPy leapfrog.

Rerun with::

    python benchmarks/solver_wave.py            # 2D 201 x 201 and 3D 48^3 nodes, 4 sources
    python benchmarks/solver_wave.py --quick    # fewer steps, one repeat
                                                # (writes results/solver_wave_quick.json)

What is measured: ``surrogates.solvers.wave.simulate`` (order 2, rigid walls, float64 and
float32, the whole batch of sources in one compiled call, receivers only so the timing is the
time stepping) against a plain vectorised NumPy implementation, defined below, of the same
scheme: leapfrog ``p+ = 2p - p- + lam^2 L p`` with the 5/7-point Laplacian and the rigid wall
ghost nodes ``p[-1] = p[1]`` (node on the wall), the same first step
``p1 = p0 + lam^2/2 L p0`` and the same time step (``n_substeps`` per output interval). The
script first checks that both give the same receiver traces (float64, round-off expected).

Throughput is cell updates per second: ``B * nodes * time steps / seconds`` from the best of
``--repeats`` runs. The JAX solver is called once per configuration before timing, so
compilation is excluded; its results come back as NumPy arrays, so the timing includes the
transfer. Results go to ``benchmarks/results/solver_wave.json`` (``solver_wave_quick.json``
with ``--quick``).

Roofline (``benchmarks/roofline.py``, same run): one update reads ``p`` and ``p_prev`` and writes
``p_next`` (3 words: 24 B in float64, 12 B in float32); the limit is the faster of a copy and a
triad over a working set of the same size (3 fields of the batch: 3.9 MB for 2D 201^2 x 4 in
float64, 10.6 MB for 3D 48^3 x 4), measured just after the solver in the same process. The
table prints the solver's GB/s and its fraction of that limit beside the NumPy ratio.

What was tried to use both cores (2D 201^2 and 3D 48^3, 4 sources, order 2, 200 steps, time
loop only; 2-core CPU shared with other jobs, so +-30 %): see ``OPTIMISATION_NOTES`` (also in
the JSON).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import jax
import numpy as np
from bench_utils import best_time, write_results
from roofline import format_limits, machine_limits, roofline_fraction, solver_model

from surrogates.solvers.wave import Room, _interp_weights, gaussian_pulse, simulate

RESULTS = Path(__file__).resolve().parent / "results"
OPTIMISATION_NOTES = [
    "XLA CPU intra-op threads (default on): the leapfrog loop runs at cpu/wall ~1.9-2.0 in "
    "float64, i.e. XLA already splits each fused step over both cores; "
    "--xla_cpu_multi_thread_eigen=false gives 0.45x (2D f64 2.2e8 vs 4.9e8 upd/s) and 0.5x (3D)",
    "batch split over two CPU devices (--xla_force_host_platform_device_count=2, NamedSharding "
    "on the source axis): float64 0.4-0.6x (2.8e8 / 2.5e8 upd/s 2D / 3D, cpu/wall 0.8: the two "
    "device programs did not run concurrently and lost the intra-op threads); float32 2D 1.9x "
    "(1.3e9 upd/s, cpu/wall 1.8), 3D 1.0x: not adopted (no gain in float64, noisy in float32)",
    "Laplacian as one 2D reflect pad + 4 slices: 0.8x of the per-axis pads shipped (4.7e8 vs "
    "5.8e8 upd/s f64); as lax.conv_general_dilated with a 3x3 kernel: 0.7x (4.1e8); float32 "
    "likewise (6.7e8, 6.4e8 vs 7.3e8)",
    "why the goal is missed: the step is one XLA loop fusion whose reflect pads become "
    "per-element boundary selects, so it runs at ~1 flop/cycle instead of streaming; at 24 B "
    "and 12 flops per update, 50 % of the ~100 GB/s in-cache limit needs ~2e9 f64 upd/s, "
    "~4x what XLA's CPU code reaches",
]
H = 0.05  # grid spacing, m
WIDTH = 0.2  # pulse width, m


# ----------------------------------------------------------------------------------------------
# NumPy baseline: the same order-2 leapfrog, rigid walls
# ----------------------------------------------------------------------------------------------


def np_laplacian(p):
    """h^2 times the rigid-wall 5/7-point Laplacian of p (B, *shape), nodes on the walls."""
    d = p.ndim - 1
    lap = -2.0 * d * p
    for ax in range(1, p.ndim):
        def s(a, b, ax=ax):
            return (slice(None),) * ax + (slice(a, b),)
        lap[s(1, -1)] += p[s(0, -2)] + p[s(2, None)]
        lap[s(0, 1)] += 2.0 * p[s(1, 2)]
        lap[s(-1, None)] += 2.0 * p[s(-2, -1)]
    return lap


def numpy_simulate(room, sources, times, cfl, receivers):
    """Receiver traces (B, n_t, R) of the order-2 scheme, same dt rule as ``simulate``."""
    c, h = room.c, room.spacing
    interval = times[1] - times[0]
    n_sub = max(1, int(np.ceil(c * interval / (h * cfl) * (1.0 - 1e-12))))
    lam2 = (c * interval / n_sub / h) ** 2
    pts = room.points()
    p = np.stack([gaussian_pulse(pts, s, WIDTH) for s in sources])
    idx, w = _interp_weights(room, np.asarray(receivers, float))

    def observe(q):
        return np.einsum("brk,rk->br", q.reshape(len(q), -1)[:, idx], w)

    out = [observe(p)]
    p_prev = p + 0.5 * lam2 * np_laplacian(p)
    for _ in range(len(times) - 1):
        for _ in range(n_sub):
            p_prev, p = p, 2.0 * p - p_prev + lam2 * np_laplacian(p)
        out.append(observe(p))
    return np.stack(out, axis=1), n_sub


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=4, help="batch of sources (default 4)")
    ap.add_argument("--steps", type=int, default=None,
                    help="time steps per run (default 200; 40 with --quick)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats, best kept (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="short run for a smoke test")
    ap.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = ap.parse_args(argv)
    steps = args.steps or (40 if args.quick else 200)
    rep = args.repeats or (1 if args.quick else 3)
    out = args.out or RESULTS / ("solver_wave_quick.json" if args.quick else "solver_wave.json")
    B = args.sources
    print(f"FDTD wave, order 2, rigid walls, h = {H} m, {B} sources, {steps} steps; "
          f"{os.cpu_count()} CPU cores, jax {jax.__version__} ({jax.default_backend()})",
          flush=True)

    rng = np.random.default_rng(0)
    rows = []
    limits = {}
    for name, size in (("2D 201x201", (10.0, 10.0)), ("3D 48^3", (2.35, 2.35, 2.35))):
        room = Room(size, H)
        d = room.dim
        cfl = 0.9 / np.sqrt(d)
        interval = cfl * H / room.c * 5  # 5 sub-steps per output interval
        times = np.arange(steps // 5 + 1) * interval
        n_steps = 5 * (len(times) - 1)
        lo, hi = 0.3 * np.array(size), 0.7 * np.array(size)
        srcs = lo + (hi - lo) * rng.random((B, d))
        recs = lo + (hi - lo) * rng.random((3, d))
        ref, n_sub = numpy_simulate(room, srcs, times, cfl, recs)
        sol = simulate(room, srcs, times, cfl=cfl, receivers=recs, save_field=False)
        assert sol.n_substeps == n_sub == 5, (sol.n_substeps, n_sub)
        diff = float(np.abs(sol.receivers - ref).max())
        print(f"{name}: agreement NumPy vs JAX float64: max |diff| = {diff:.2e} Pa", flush=True)
        assert diff < 1e-10, diff
        updates = B * int(np.prod(room.shape)) * n_steps
        run_np = partial(numpy_simulate, room, srcs, times, cfl, recs)
        run_64 = partial(simulate, room, srcs, times, cfl=cfl, receivers=recs, save_field=False)
        run_32 = partial(run_64, dtype="float32")
        t_np, all_np, _ = best_time(run_np, rep)
        t_jx, all_jx, _ = best_time(run_64, rep)
        run_32()  # warm-up: compiles the float32 program
        t_32, all_32, _ = best_time(run_32, rep)
        rows.append({"case": name, "nodes": int(np.prod(room.shape)), "shape": room.shape,
                     "batch": B, "time_steps": n_steps, "numpy_s": t_np, "jax_s": t_jx,
                     "jax_float32_s": t_32, "numpy_all_s": all_np, "jax_all_s": all_jx,
                     "jax_float32_all_s": all_32, "numpy_updates_per_s": updates / t_np,
                     "jax_updates_per_s": updates / t_jx,
                     "jax_float32_updates_per_s": updates / t_32,
                     "speedup_jax_vs_numpy": t_np / t_jx,
                     "speedup_jax32_vs_numpy": t_np / t_32, "agreement_max_abs_diff": diff})
        # Roofline: the machine's copy/triad at this case's working set, in the same run.
        model = solver_model("wave", dim=d, order=2)
        cells = B * int(np.prod(room.shape))
        roof = {}
        for dtype, t in (("float64", t_jx), ("float32", t_32)):
            lim = machine_limits(model.working_set(cells, dtype), (dtype,),
                                 references=not limits)[dtype]
            limits[f"{name} {dtype}"] = lim
            roof[dtype] = roofline_fraction(updates / t, model, dtype, lim["limit_gb_per_s"])
        rows[-1].update(model=asdict(model), roofline=roof)

    print()
    print(format_limits(limits))
    print()
    print("| case | batch | steps | NumPy upd/s | JAX f64 upd/s | ratio | f64 GB/s | of limit "
          "| JAX f32 upd/s | ratio | f32 GB/s | of limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        r64, r32 = r["roofline"]["float64"], r["roofline"]["float32"]
        print(f"| {r['case']} | {r['batch']} | {r['time_steps']} | "
              f"{r['numpy_updates_per_s']:.3g} | {r['jax_updates_per_s']:.3g} | "
              f"{r['speedup_jax_vs_numpy']:.1f}x | {r64['gb_per_s']:.1f} | "
              f"{100 * r64['fraction_of_limit']:.0f}% | {r['jax_float32_updates_per_s']:.3g} | "
              f"{r['speedup_jax32_vs_numpy']:.1f}x | {r32['gb_per_s']:.1f} | "
              f"{100 * r32['fraction_of_limit']:.0f}% |")
    print("(upd/s = sources x node updates per second, best of repeats, compile excluded; "
          "ratio = NumPy float64 time / JAX time; GB/s = upd/s x 3 words (read p, p_prev, "
          "write p_next); of limit = that / the faster of copy and triad at the same working "
          "set, measured in this run)")
    goal = all(r["roofline"][dt]["fraction_of_limit"] >= 0.5 for r in rows
               for dt in ("float64", "float32"))
    print(f"Goal >= 50% of the bandwidth limit (f32 and f64): {'met' if goal else 'NOT met'}")

    result = {
        "benchmark": "solver_wave",
        "command": " ".join([Path(sys.argv[0]).name]
                            + (argv if argv is not None else sys.argv[1:])),
        "scheme": "leapfrog, order-2 Laplacian, rigid walls (nodes on the walls), "
                  "cfl = 0.9/sqrt(d), 5 sub-steps per output interval, receivers only",
        "config": {"spacing": H, "pulse_width": WIDTH, "sources": B, "steps": steps,
                   "repeats": rep, "quick": args.quick},
        "metric": "sources x node updates per second = B * nodes * time steps / seconds "
                  "(best of repeats; JAX warmed up, compile excluded)",
        "results": rows,
        "machine_limits": limits,
        "goal_half_of_bandwidth_limit_met": goal,
        "optimisation_notes": OPTIMISATION_NOTES,
    }
    write_results(result, out)
    return result


if __name__ == "__main__":
    main()
