r"""How the cost of each reference solver grows with the grid size and with the batch.

Rerun with::

    python benchmarks/solver_scaling.py            # three grids and four batches per solver
    python benchmarks/solver_scaling.py --quick    # smaller sweeps, one repeat
                                                   # (writes results/solver_scaling_quick.json)

For each solver the wall time of one call of its public function (compiled once per shape
before timing, best of ``--repeats``) is measured over a sweep of grid sizes at a fixed batch
and over a sweep of batches at a fixed grid. The log-log slope ``d log(seconds) / d log(size)``
(least squares over the sweep) is the exponent of the cost law ``seconds ~ size^slope``:
1 means linear. Grid sizes are in cells (``n^d`` nodes for the wave, ``N`` for Burgers,
``n^2`` for Darcy, ``K (1 + J)`` variables for Lorenz-96 with J = 10); the fixed horizon is
in physical time, so solvers whose stable step shrinks with the cell size pay for it:

* wave (FDTD, order 2, rigid walls, 2D): ``dt ~ h``, one interval of 2.5 ms at a fixed room,
  grid refined: cost ~ ``cells^{(d+1)/d}`` = ``cells^1.5`` expected;
* Burgers (MUSCL, SSP-RK3, t_end 0.1): advective CFL ``dt ~ dx`` at these sizes (the diffusive
  limit ``dx^2 / nu`` takes over for N >> 1/nu): ~ ``N^2``;
* Darcy (multigrid PCG to 1e-10): grid-independent iteration count, ~ ``n^2`` (plus the dense
  coarsest solve, constant per field);
* Lorenz-96 (RK4, 200 steps of dt = 0.005): the step count is fixed, ~ ``K (1 + J)``.

Batches run in one compiled call (Lorenz-96: chunks of 128 on CPU), so below the size where a
core is busy the batch slope is under 1 (fixed per-call costs); above it, 1. The table prints
the sizes, the seconds, and the slopes; ``benchmarks/results/solver_scaling.json`` holds all
points. Timings on a shared 2-core CPU are noisy (+-30 %); the slopes are fits over a decade
and carry that noise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jax
import numpy as np
from bench_utils import best_time, write_results

from surrogates.solvers import darcy, lorenz96, pde1d, wave

RESULTS = Path(__file__).resolve().parent / "results"


def wave_call(side: int, batch: int):
    """2D room of 10 m refined to ``side`` nodes a side; 2.5 ms of sound."""
    h = 10.0 / (side - 1)
    room = wave.Room((10.0, 10.0), h)
    rng = np.random.default_rng(0)
    srcs = 3.0 + 4.0 * rng.random((batch, 2))
    times = np.linspace(0.0, 2.5e-3, 2)

    def run():
        return wave.simulate(room, srcs, times, receivers=[[5.0, 5.0]], save_field=False,
                             pulse_width=0.5)

    return run, int(np.prod(room.shape))


def burgers_call(N: int, batch: int):
    u0 = pde1d.random_initial_condition(batch, N, seed=0)
    t_out = np.linspace(0.0, 0.1, 3)
    return (lambda: pde1d.solve_burgers(u0, 0.01, t_out)), N


def darcy_call(n: int, batch: int):
    a = darcy.piecewise_constant_coefficient(batch, n, seed=0)
    return (lambda: darcy.solve_darcy(a)), n * n


def lorenz_call(K: int, batch: int):
    s0 = lorenz96.random_initial_state(batch, K, 10, seed=0)
    return (lambda: lorenz96.solve(s0, dt=0.0025, n_steps=200, save_every=10)), K * 11


#: (name, call, grid sweep at the fixed batch, fixed batch, batch sweep at the fixed grid,
#: fixed grid); the quick sweeps are the first entries.
SWEEPS = [
    ("wave 2D", wave_call, (51, 101, 201, 401), 4, (1, 4, 16, 64), 101),
    ("burgers", burgers_call, (128, 256, 512, 1024), 16, (1, 16, 128, 1024), 256),
    ("darcy", darcy_call, (32, 64, 128, 256), 8, (2, 8, 32, 128), 64),
    ("lorenz96", lorenz_call, (18, 36, 72, 144), 128, (16, 128, 512, 2048), 36),
]


def slope(sizes, seconds) -> float:
    """Least-squares slope of log(seconds) against log(size)."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default 2; 1 "
                    "with --quick)")
    ap.add_argument("--quick", action="store_true", help="three points per sweep, one repeat")
    ap.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 2)
    n_points = 3 if args.quick else 4
    out = args.out or RESULTS / ("solver_scaling_quick.json" if args.quick
                                 else "solver_scaling.json")
    print(f"solver cost scaling, float64; {os.cpu_count()} CPU cores, jax {jax.__version__} "
          f"({jax.default_backend()})", flush=True)

    rows = []
    for name, call, grids, batch, batches, grid in SWEEPS:
        for axis, values in (("grid", grids[:n_points]), ("batch", batches[:n_points])):
            points = []
            for v in values:
                run, cells = call(v, batch) if axis == "grid" else call(grid, v)
                run()  # compiles this shape
                best, times, _ = best_time(run, repeats)
                points.append({"parameter": v, "cells": cells,
                               "batch": batch if axis == "grid" else v, "seconds": best,
                               "all_seconds": times})
                print(f"  {name} {axis} {v}: {cells} cells x {points[-1]['batch']}: "
                      f"{best:.4f} s", flush=True)
            sizes = [p["cells"] if axis == "grid" else p["batch"] for p in points]
            rows.append({"solver": name, "sweep": axis, "points": points,
                         "slope": slope(sizes, [p["seconds"] for p in points])})

    print()
    print("| solver | sweep | sizes (cells or batch) | seconds | log-log slope |")
    print("|---|---|---|---|---:|")
    for r in rows:
        key = "cells" if r["sweep"] == "grid" else "batch"
        sizes = ", ".join(str(p[key]) for p in r["points"])
        secs = ", ".join(f"{p['seconds']:.3g}" for p in r["points"])
        print(f"| {r['solver']} | {r['sweep']} | {sizes} | {secs} | {r['slope']:.2f} |")
    result = {
        "benchmark": "solver_scaling",
        "command": " ".join([Path(sys.argv[0]).name]
                            + (argv if argv is not None else sys.argv[1:])),
        "metric": "seconds per solver call (float64, best of repeats, compile excluded); "
                  "slope = least-squares d log(seconds) / d log(cells or batch)",
        "config": {"repeats": repeats, "quick": args.quick},
        "results": rows,
    }
    write_results(result, out)
    return result


if __name__ == "__main__":
    main()
