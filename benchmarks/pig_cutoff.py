r"""PIG with a cut-off against the full Gaussian sum: time per training step and agreement.

Rerun with::

    OMP_NUM_THREADS=1 python benchmarks/pig_cutoff.py

With ``cutoff=r`` (``operators.pig.PIG``) a point sums only the Gaussians whose box
:math:`\mu_i \pm r\sigma_i` overlaps its cell of a regular grid: every Gaussian left out is
below :math:`e^{-r^2/2}` there (:math:`3.7\times10^{-6}` at r = 5). The cost of a point then
depends on how many Gaussians overlap it, not on their total number ``N``; building the
neighbour table costs :math:`O(\text{cells}\times N)` once per step.

For each case: one jit-compiled loss-and-gradient evaluation (the physics-informed loss of
``surrogates.models.pinn.losses.physics_loss``, 1024 collocation points plus the condition points,
boundary weight 100, float32), timed as the best of 5 x 5 calls for the full sum and for the
cut-off, both in this run; and the relative difference of the two losses and of their
gradients (largest over the parameter arrays, relative to each array's largest entry), with
the Gaussians' means randomly displaced from the grid by a tenth of their spacing.

Last run (2-core machine, one thread, the PIG benchmark running on the other core):

==================================  ====  =====  ==========  =======  ======  ========  =========
case                                N     sigma  neighbours  full ms  cut ms  speed-up  grad diff
==================================  ====  =====  ==========  =======  ======  ========  =========
Helmholtz (10, 10), 2D              2500  0.04   267         105.2    60.2    1.7x      3.9e-06
Helmholtz (10, 10), 2D              6400  0.025  361         363.3    83.7    4.3x      6.6e-06
flow mixing, 3D                     4096  0.05   381         328.8    87.4    3.8x      9.3e-06
flow mixing, 3D (wide Gaussians)    1728  0.1    600         94.1     125.7   0.7x      4.1e-06
==================================  ====  =====  ==========  =======  ======  ========  =========

(cut-off 5; the losses agree to 2e-7.) The cut-off pays when a point overlaps a small share
of the Gaussians: narrow Gaussians, many of them. Wide Gaussians in 3D (a third of all
Gaussians per list) are faster summed in full.

Results go to ``benchmarks/results/pig_cutoff.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_utils import best_time, write_results  # noqa: E402

from operators.pig import PIG  # noqa: E402
from surrogates.models.pinn.losses import physics_loss, sample_batch  # noqa: E402
from surrogates.models.pinn.problems import get_problem  # noqa: E402

#: (name, problem factory, factory arguments, PIG arguments, cut-off)
CASES = [
    ("Helmholtz (10, 10), 2D", "helmholtz", {"a1": 10, "a2": 10},
     {"n_gaussians": 2500, "sigma_init": 0.04}, 5.0),
    ("Helmholtz (10, 10), 2D", "helmholtz", {"a1": 10, "a2": 10},
     {"n_gaussians": 6400, "sigma_init": 0.025}, 5.0),
    ("flow mixing, 3D", "flow_mixing", {}, {"n_gaussians": 4096, "sigma_init": 0.05}, 5.0),
    ("flow mixing, 3D (wide Gaussians)", "flow_mixing", {},
     {"n_gaussians": 1728, "sigma_init": 0.1}, 5.0),
]


def step_time(loss, params, batch) -> tuple[float, float, dict]:
    """Best seconds per call of the jitted loss and gradient (5 x 5 calls), loss, gradient."""
    fn = jax.jit(jax.value_and_grad(loss))
    value, grads = jax.block_until_ready(fn(params, batch))  # compile

    def five():
        return jax.block_until_ready([fn(params, batch) for _ in range(5)])

    best, _, _ = best_time(five, 5)
    return best / 5, float(value), grads


def main() -> None:
    rows = []
    for name, factory, kwargs, pig_kwargs, cutoff in CASES:
        problem = get_problem(factory, **kwargs)
        full = PIG(problem.lower, problem.upper, mean_init="grid", **pig_kwargs)
        cut = PIG(problem.lower, problem.upper, mean_init="grid", cutoff=cutoff, **pig_kwargs)
        params = full.init(jax.random.key(0))
        spacing = 2.0 / round(full.n_gaussians ** (1.0 / full.dim))
        params["mu"] = params["mu"] + 0.1 * spacing * jax.random.normal(
            jax.random.key(1), params["mu"].shape)
        batch = sample_batch(problem, jax.random.key(2), 1024, jnp.float32)
        t_full, v_full, g_full = step_time(physics_loss(problem, full, 100.0), params, batch)
        t_cut, v_cut, g_cut = step_time(physics_loss(problem, cut, 100.0), params, batch)
        grad_diff = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
                        for a, b in zip(jax.tree_util.tree_leaves(g_full),
                                        jax.tree_util.tree_leaves(g_cut), strict=True))
        row = {"case": name, "n_gaussians": full.n_gaussians, "sigma_init": full.sigma_init,
               "cutoff": cutoff, "cells_per_axis": cut.cells_per_axis,
               "neighbours": cut.neighbours, "full_ms": 1e3 * t_full, "cutoff_ms": 1e3 * t_cut,
               "speedup": t_full / t_cut, "loss_rel_diff": abs(v_cut - v_full) / abs(v_full),
               "grad_rel_diff": grad_diff}
        rows.append(row)
        print(f"  {name}, N = {row['n_gaussians']}: full {row['full_ms']:.1f} ms, cut-off "
              f"{row['cutoff_ms']:.1f} ms ({row['speedup']:.1f}x), gradient difference "
              f"{grad_diff:.1e}", flush=True)
    print("\n| case | N | sigma | cut-off | neighbours (of N) | full ms | cut-off ms | speed-up "
          "| loss diff | gradient diff |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['n_gaussians']} | {r['sigma_init']:g} | {r['cutoff']:g} | "
              f"{r['neighbours']} | {r['full_ms']:.1f} | {r['cutoff_ms']:.1f} | "
              f"{r['speedup']:.1f}x | {r['loss_rel_diff']:.1e} | {r['grad_rel_diff']:.1e} |")
    write_results({"rows": rows},
                  ROOT / "benchmarks" / "results" / "pig_cutoff.json")


if __name__ == "__main__":
    main()
