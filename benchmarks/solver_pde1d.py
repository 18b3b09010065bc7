"""Speed of the JAX 1D finite-volume solvers (Burgers, advection) against plain NumPy.

Rerun with::

    python benchmarks/solver_pde1d.py            # N = 256, batches 1, 16, 128, t_end 0.5 (~1 min)
    python benchmarks/solver_pde1d.py --quick    # shorter runs, one repeat
    python benchmarks/solver_pde1d.py --N 1024 --batches 1,16,128 --t-end 0.05

Baseline: a plain vectorised NumPy implementation, defined below, of exactly the scheme of
:mod:`surrogates.solvers.pde1d`: MUSCL reconstruction with the monotonised-central limiter,
the exact upwind flux (advection) or the Rusanov flux plus the central diffusive flux
(Burgers, diffusivity ``nu/pi``), SSP-RK3, and the same step: ``dt_CFL = cfl / (a_max/dx +
2 nu_eff/dx^2)`` with ``a_max = |beta|`` or ``max|u0|`` over the batch, every output interval
split into ``n_substeps = ceil(interval / dt_CFL)`` equal sub-steps. The script first checks
that both give the same frames (float64; max |difference| printed, round-off level expected),
then times each.

Throughput is samples x cell-updates per second: ``B * N * (total time steps) / seconds``,
from the best of ``--repeats`` timed runs. The JAX solver is called once per configuration
before timing, so compilation is excluded; its result is a NumPy array (the solver calls
``jax.device_get``), so the timing includes the transfer. Results go to
``benchmarks/results/solver_pde1d.json``.

Roofline (``benchmarks/roofline.py``, same run): one cell update is one SSP-RK3 step, whose
stages read ``u`` (and ``u1``, ``u2``) and write ``u1``, ``u2``, ``u``: 8 words (64 B float64,
32 B float32), 126 flops (Burgers) or 90 (advection). The limit is the faster of a copy and a
triad at the same working set (4 fields of the batch: 1 MB at B = 128, N = 256, float64),
measured in the same process; the table prints the fraction beside the NumPy ratio. See
``OPTIMISATION_NOTES`` for what was tried to use both cores.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

import jax
import numpy as np
from bench_utils import best_time, write_results
from roofline import format_limits, machine_limits, roofline_fraction, solver_model

from surrogates.solvers.pde1d import (
    DEFAULT_CFL,
    random_initial_condition,
    solve_advection,
    solve_burgers,
)

RESULTS = Path(__file__).resolve().parent / "results" / "solver_pde1d.json"
NU = 0.01  # Burgers viscosity parameter (diffusivity nu / pi)
BETA = 1.0  # advection speed
OPTIMISATION_NOTES = [
    "XLA CPU intra-op threads are on by default; at these sizes (B x N <= 32768 cells, "
    "< 1 MB per field) one fused stage is too small for XLA to split, so the loop runs on one "
    "core (the small batches are dispatch- and latency-bound: B = 1 moves < 1 GB/s)",
    "batch over two CPU devices and vmap over fused chunks: not pursued for pde1d after the "
    "wave and Lorenz-96 measurements (two host devices ran serially, cpu/wall ~0.8, in float64)",
    "why the goal is missed: the MUSCL limiter (sign, min, abs, where) and the rolls make each "
    "stage compute-bound in XLA's scalar CPU code, ~126 flops per 64 B update",
]


# ----------------------------------------------------------------------------------------------
# NumPy baseline: the same scheme, operation for operation
# ----------------------------------------------------------------------------------------------


def np_slopes_mc(u):
    """Monotonised-central limited slopes of cell values u (B, N), periodic."""
    dm = u - np.roll(u, 1, axis=-1)
    dp = np.roll(u, -1, axis=-1) - u
    same = dm * dp > 0
    mag = np.minimum(np.minimum(2.0 * np.abs(dm), 2.0 * np.abs(dp)), 0.5 * np.abs(dm + dp))
    return np.where(same, np.sign(dm) * mag, 0.0)


def np_rhs(u, kind, param, inv_dx):
    """-(F_{i+1/2} - F_{i-1/2}) / dx; param is beta (advection) or the diffusivity (Burgers)."""
    s = 0.5 * np_slopes_mc(u)
    uL = u + s
    uR = np.roll(u - s, -1, axis=-1)
    if kind == "advection":
        F = max(param, 0.0) * uL + min(param, 0.0) * uR
    else:
        a = np.maximum(np.abs(uL), np.abs(uR))
        F = 0.25 * (uL * uL + uR * uR) - 0.5 * a * (uR - uL)
        F = F - param * (np.roll(u, -1, axis=-1) - u) * inv_dx
    return -(F - np.roll(F, 1, axis=-1)) * inv_dx


def np_ssprk3(u, dt, kind, param, inv_dx):
    u1 = u + dt * np_rhs(u, kind, param, inv_dx)
    u2 = 0.75 * u + 0.25 * (u1 + dt * np_rhs(u1, kind, param, inv_dx))
    return u / 3.0 + (2.0 / 3.0) * (u2 + dt * np_rhs(u2, kind, param, inv_dx))


def n_substeps(t_out, N, a_max, d_max, cfl=DEFAULT_CFL):
    """Sub-steps per output interval, exactly as pde1d computes them."""
    dx = 1.0 / N
    rate = a_max / dx + 2.0 * d_max / dx**2
    return max(1, math.ceil(float(np.diff(t_out).max()) * rate / cfl * (1.0 - 1e-12)))


def numpy_solve(u0, kind, t_out, cfl=DEFAULT_CFL):
    """Frames (B, T, N) of advection (beta = BETA) or Burgers (nu = NU) from u0 (B, N)."""
    N = u0.shape[-1]
    if kind == "advection":
        param, a_max, d_max = BETA, abs(BETA), 0.0
    else:
        param = NU / np.pi
        a_max, d_max = float(np.max(np.abs(u0))), param
    n_sub = n_substeps(t_out, N, a_max, d_max, cfl)
    inv_dx = float(N)
    u = np.array(u0, dtype=np.float64)
    frames = [u.copy()]
    for dt in np.diff(t_out) / n_sub:
        for _ in range(n_sub):
            u = np_ssprk3(u, dt, kind, param, inv_dx)
        frames.append(u.copy())
    return np.stack(frames, axis=1), n_sub


def jax_solve(u0, kind, t_out, dtype="float64"):
    if kind == "advection":
        sol = solve_advection(u0, BETA, t_out, dtype=dtype)
    else:
        sol = solve_burgers(u0, NU, t_out, dtype=dtype)
    return sol.u, sol.n_substeps


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--N", type=int, default=256, help="cells (default 256)")
    ap.add_argument("--batches", default="1,16,128", help="batch sizes (default 1,16,128)")
    ap.add_argument("--t-end", type=float, default=None,
                    help="time of the last frame (default 0.5; 0.05 with --quick)")
    ap.add_argument("--n-frames", type=int, default=21, help="frames incl. t = 0 (default 21)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats, best kept (default 3 JAX / 2 NumPy; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="short run for a smoke test")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = ap.parse_args(argv)

    N = args.N
    batches = [int(b) for b in args.batches.split(",")]
    t_end = args.t_end or (0.05 if args.quick else 0.5)
    t_out = np.linspace(0.0, t_end, args.n_frames)
    rep_jax = args.repeats or (1 if args.quick else 3)
    rep_np = args.repeats or (1 if args.quick else 2)
    print(f"1D finite volume (MUSCL-mc, SSP-RK3, cfl {DEFAULT_CFL}), N={N}, t_end={t_end}, "
          f"{args.n_frames} frames; Burgers nu={NU}, advection beta={BETA}; "
          f"{os.cpu_count()} CPU cores, jax {jax.__version__} ({jax.default_backend()})",
          flush=True)

    # Agreement first (float64), on the largest batch's initial conditions.
    agreement = {}
    u0_all = random_initial_condition(max(batches), N, seed=0, sign_flip=True, window=True)
    for kind in ("burgers", "advection"):
        u_np, sub_np = numpy_solve(u0_all, kind, t_out)
        u_jx, sub_jx = jax_solve(u0_all, kind, t_out)
        assert sub_np == sub_jx, (kind, sub_np, sub_jx)
        diff = float(np.max(np.abs(u_np - u_jx)))
        scale = float(np.max(np.abs(u_np)))
        agreement[kind] = {"max_abs_diff": diff, "max_abs_u": scale, "n_substeps": sub_np,
                           "batch": max(batches)}
        print(f"Agreement {kind} float64, NumPy vs JAX, batch {max(batches)}, {sub_np} "
              f"sub-steps per frame: max |diff| = {diff:.2e} (max |u| = {scale:.2f})",
              flush=True)
        assert diff <= 1e-10 * max(scale, 1.0), f"{kind}: NumPy and JAX differ by {diff:.3e}"

    rows = []
    limits = {}
    for kind in ("burgers", "advection"):
        for B in batches:
            u0 = u0_all[:B]
            # Burgers' step depends on max|u0| of the batch, so count the steps of this batch.
            _, n_sub = jax_solve(u0, kind, t_out)  # warm-up: compiles for this shape
            steps = n_sub * (len(t_out) - 1)
            updates = B * N * steps
            t_np, all_np, _ = best_time(lambda u0=u0, kind=kind: numpy_solve(u0, kind, t_out),
                                     rep_np)
            t_jx, all_jx, _ = best_time(lambda u0=u0, kind=kind: jax_solve(u0, kind, t_out),
                                     rep_jax)
            jax_solve(u0, kind, t_out, dtype="float32")  # warm-up float32
            t_32, all_32, _ = best_time(
                lambda u0=u0, kind=kind: jax_solve(u0, kind, t_out, dtype="float32"), rep_jax)
            row = {"pde": kind, "batch": B, "N": N, "time_steps": steps,
                   "numpy_s": t_np, "jax_s": t_jx, "jax_float32_s": t_32,
                   "numpy_all_s": all_np, "jax_all_s": all_jx, "jax_float32_all_s": all_32,
                   "numpy_updates_per_s": updates / t_np, "jax_updates_per_s": updates / t_jx,
                   "jax_float32_updates_per_s": updates / t_32,
                   "speedup_jax_vs_numpy": t_np / t_jx, "speedup_jax32_vs_numpy": t_np / t_32}
            # Roofline at this batch's working set (measured once per batch and dtype).
            model = solver_model(kind)
            roof = {}
            for dtype, t in (("float64", t_jx), ("float32", t_32)):
                key = f"B={B} {dtype}"
                if key not in limits:
                    limits[key] = machine_limits(model.working_set(B * N, dtype), (dtype,),
                                                 references=not limits)[dtype]
                roof[dtype] = roofline_fraction(updates / t, model, dtype,
                                                limits[key]["limit_gb_per_s"])
            row.update(model=asdict(model), roofline=roof)
            rows.append(row)
            print(f"  {kind:9s} B={B:4d}: NumPy {t_np:.3f} s, JAX {t_jx:.3f} s "
                  f"({t_np / t_jx:.1f}x), JAX float32 {t_32:.3f} s", flush=True)

    print()
    print(format_limits(limits))
    print()
    header = (f"{'pde':9s} {'batch':>5s} {'steps':>6s} {'numpy s':>9s} {'jax s':>8s} "
              f"{'ratio':>6s} {'f64 lim':>7s} {'jax32 s':>8s} {'ratio32':>7s} {'f32 lim':>7s} "
              f"{'numpy upd/s':>12s} {'jax upd/s':>12s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        f64, f32 = (100 * r["roofline"][d]["fraction_of_limit"] for d in ("float64", "float32"))
        print(f"{r['pde']:9s} {r['batch']:5d} {r['time_steps']:6d} {r['numpy_s']:9.3f} "
              f"{r['jax_s']:8.3f} {r['speedup_jax_vs_numpy']:5.1f}x {f64:6.1f}% "
              f"{r['jax_float32_s']:8.3f} {r['speedup_jax32_vs_numpy']:6.1f}x {f32:6.1f}% "
              f"{r['numpy_updates_per_s']:12.3g} {r['jax_updates_per_s']:12.3g}")
    print("(ratio = NumPy time / JAX time, float64 both; ratio32 = NumPy float64 / JAX float32; "
          "lim = fraction of the bandwidth limit at the working set, 8 words per SSP-RK3 cell "
          "update; upd/s = samples x cell-updates per second, float64)")
    goal = all(r["roofline"][d]["fraction_of_limit"] >= 0.5 for r in rows
               for d in ("float64", "float32"))
    print(f"Goal >= 50% of the bandwidth limit (f32 and f64, every row): "
          f"{'met' if goal else 'NOT met'}")

    result = {
        "benchmark": "solver_pde1d",
        "command": " ".join([Path(sys.argv[0]).name]
                            + (argv if argv is not None else sys.argv[1:])),
        "scheme": "MUSCL (MC limiter) + exact upwind (advection) / Rusanov + central diffusion "
                  "(Burgers), SSP-RK3, dt = cfl / (a_max/dx + 2 nu_eff/dx^2)",
        "config": {"N": N, "batches": batches, "t_end": t_end, "n_frames": args.n_frames,
                   "nu": NU, "beta": BETA, "cfl": DEFAULT_CFL, "repeats_jax": rep_jax,
                   "repeats_numpy": rep_np, "quick": args.quick},
        "metric": "samples x cell-updates per second = batch * N * time steps / seconds "
                  "(best of repeats; JAX warmed up, compile excluded)",
        "agreement_float64": agreement,
        "results": rows,
        "machine_limits": limits,
        "goal_half_of_bandwidth_limit_met": goal,
        "optimisation_notes": OPTIMISATION_NOTES,
    }
    write_results(result, args.out)
    return result


if __name__ == "__main__":
    main()
