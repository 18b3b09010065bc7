"""Speed of the JAX multiscale Lorenz-96 solver against NumPy RK4 and scipy ``solve_ivp``.

Rerun with::

    python benchmarks/solver_lorenz96.py                 # batch 256, 1000 steps (~1 min on 2 cores)
    python benchmarks/solver_lorenz96.py --quick         # 200 steps, fewer repeats
    python benchmarks/solver_lorenz96.py --batch 512 --steps 2000

Claim: on a CPU, ``surrogates.solvers.lorenz96.solve`` integrates the classic two-tier system
(K=36, J=10, F=10, h=1, b=c=10, dt=0.005 MTU) at >= 10x the throughput of a plain vectorised
NumPy RK4 of the same equations over the same batch.

What is measured (all in one run, from the same spun-up initial states, float64 unless said):

(a) ``solve`` (JAX, RK4, one compiled ``lax.scan``), warmed up once so compile time is
    excluded; a second row gives ``dtype="float32"``.
(b) a vectorised NumPy RK4 (``np.roll`` on the periodic rings) over the whole batch, defined
    below, saving frames at the same cadence.
(c) ``scipy.integrate.solve_ivp`` one trajectory at a time (RK45 at default tolerances, and
    DOP853 at rtol = atol = 1e-10), on fewer trajectories and a shorter horizon. Adaptive
    solvers take their own steps, so their throughput is counted in *equivalent steps*: the
    model time covered divided by dt, i.e. ``n_traj * horizon / dt`` sample-steps per second.

Throughput is samples x steps per second, from the best of ``--repeats`` timed runs for each
method. The script also asserts that the float64 JAX solver and the NumPy RK4 agree to
round-off on the state after a short run (chaos amplifies round-off over long runs, so the
check uses 40 steps = 0.2 MTU). Results go to ``benchmarks/results/solver_lorenz96.json``.

The script starts one JAX host device per core (``--devices``, through ``XLA_FLAGS`` before JAX
starts), so ``solve`` runs its chunks of 128 samples concurrently, one per core. Roofline
(``benchmarks/roofline.py``, same run): a cell is one of the ``K (1 + J)`` variables; an RK4
step reads and writes the state once (2 words) with ~40 flops per variable, so the solver is
compute- and latency-bound: its fraction of the bandwidth limit is printed for completeness.

Optimisation notes (B = 256, float64, per RK4 step, measured on the 2-core CPU this was written
on, idle, pure time loop without saving; see ``OPTIMISATION_NOTES`` below, also written to the
JSON): the internal layout is what mattered. Batch-first ``(B, K*J)`` with ``jnp.roll``
~1.6 ms; ``vmap`` of a per-sample function ~1.1 ms; batch-last ``(K*J, B)`` with ``jnp.roll``
~0.8 ms; batch-last with one halo-padded copy and slices ~0.6 ms; plus an
``optimization_barrier`` on the halo copy ~0.5 ms (the version shipped). ``scan`` unrolling
(2, 4, 5) changed nothing. A profile shows about half of the step in the sum over ``j`` that
couples ``X`` to ``Y`` (an XLA/YNNPACK reduce, 70-100 us per stage); rewriting it as a dot, a
``reduce_window``, explicit slice sums, or in a ``(J, K, B)`` layout was slower in the full
step because XLA then fuses and recomputes across RK4 stages. float32 runs ~2x faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path


def _devices_from_argv(argv) -> int:
    """``--devices N`` (default: one per CPU core), read before JAX starts."""
    if "--devices" in argv:
        return int(argv[argv.index("--devices") + 1])
    return os.cpu_count() or 1


# One host device per core, so that solve() runs its chunks of 128 samples concurrently (the
# flag must be set before JAX starts; an XLA_FLAGS already set is extended, not replaced).
if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get(
        "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_"
                               f"device_count={_devices_from_argv(sys.argv)}").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from bench_utils import best_time, write_results  # noqa: E402
from roofline import (  # noqa: E402
    format_limits,
    machine_limits,
    roofline_fraction,
    solver_model,
)
from scipy.integrate import solve_ivp  # noqa: E402

from surrogates.solvers.lorenz96 import (  # noqa: E402
    Lorenz96Params,
    random_initial_state,
    solve,
)

K, J = 36, 10
F, H, B_, C = 10.0, 1.0, 10.0, 10.0
DT = 0.005
RESULTS = Path(__file__).resolve().parent / "results" / "solver_lorenz96.json"

OPTIMISATION_NOTES = [
    "per RK4 step, B=256, float64, 2-core CPU, idle, time loop only (no frames saved):",
    "batch-first (B, K*J) + jnp.roll: ~1.6 ms/step (~160k samples x steps/s)",
    "vmap of a per-sample function: ~1.1 ms/step (~240k)",
    "batch-last (K*J, B) + jnp.roll: ~0.8 ms/step (~320k)",
    "batch-last + halo-padded copy and slices: ~0.6 ms/step (~420k)",
    "+ optimization_barrier on the halo copy (shipped): ~0.5 ms/step (~480-500k)",
    "lax.scan unroll 2/4/5: no gain; batch 128: ~507k, 512: ~324k (cache); the solver now runs "
    "fixed chunks of 128 samples on CPU (bitwise batch-independent results, same speed)",
    "inside solve(): ~540k/s at 128 samples when stepping only; saving a frame every 10 steps "
    "costs ~15 %",
    "profile: ~half the step is the j-sum coupling X to Y (reduce, 70-100 us per stage); "
    "dot/einsum, reduce_window, explicit slice sums and a (J, K, B) layout were all slower "
    "in the full step (XLA fuses and recomputes across RK4 stages)",
    "float32: ~2x float64",
    "issue 21, using both cores (B=256, float64, 1000 steps; the 2-core machine was shared "
    "with other jobs at load 4-9, so +-50 %):",
    "XLA intra-op threads: a chunk's fusions (128 x 360 values, 370 kB) are too small for XLA "
    "to split; one device runs at cpu/wall 0.93",
    "vmap over the two fused chunks in one call, one device: 178k vs 211k samples x steps/s "
    "for the two chunks one after the other (0.85x)",
    "two host devices (XLA_FLAGS=--xla_force_host_platform_device_count=2), the two chunks "
    "vmapped and sharded over them: 318k vs 190k sequential (1.7x, real concurrency); "
    "shipped as: solve() dispatches one chunk per device before fetching (same compiled "
    "program per chunk, so results stay bitwise those of one device; tested)",
    "fused sum over j: the (J, K, B) layout that makes the j-sum J contiguous adds was slower "
    "in the full RK4 step (above); not revisited",
]


# ----------------------------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------------------------


def numpy_rhs(X, Y):
    """Two-tier tendencies for X (B, K) and Y (B, K, J) with np.roll on the rings."""
    Bn = X.shape[0]
    y = Y.reshape(Bn, K * J)
    dX = np.roll(X, 1, -1) * (np.roll(X, -1, -1) - np.roll(X, 2, -1)) - X + F
    dX -= (H * C / B_) * Y.sum(-1)
    dy = -C * B_ * np.roll(y, -1, -1) * (np.roll(y, -2, -1) - np.roll(y, 1, -1)) - C * y
    dY = dy.reshape(Bn, K, J) + (H * C / B_) * X[:, :, None]
    return dX, dY


def numpy_rk4(X, Y, n_steps, save_every):
    """Classic RK4 over the batch; returns the final state and the saved X, Y frames."""
    frames_X, frames_Y = [X.copy()], [Y.copy()]
    for n in range(1, n_steps + 1):
        k1x, k1y = numpy_rhs(X, Y)
        k2x, k2y = numpy_rhs(X + 0.5 * DT * k1x, Y + 0.5 * DT * k1y)
        k3x, k3y = numpy_rhs(X + 0.5 * DT * k2x, Y + 0.5 * DT * k2y)
        k4x, k4y = numpy_rhs(X + DT * k3x, Y + DT * k3y)
        X = X + (DT / 6.0) * (k1x + 2.0 * (k2x + k3x) + k4x)
        Y = Y + (DT / 6.0) * (k1y + 2.0 * (k2y + k3y) + k4y)
        if n % save_every == 0:
            frames_X.append(X.copy())
            frames_Y.append(Y.copy())
    return X, Y, np.stack(frames_X, 1), np.stack(frames_Y, 1)


def scipy_rhs(t, u):
    X, Y = u[:K], u[K:].reshape(1, K, J)
    dX, dY = numpy_rhs(X[None], Y)
    return np.concatenate([dX.ravel(), dY.ravel()])


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=256, help="samples per batch (default 256)")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="RK4 steps per timed run (default 1000; 200 with --quick)",
    )
    ap.add_argument("--save-every", type=int, default=10, help="frame cadence (default 10)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repeats, best kept (default 3 JAX / 2 NumPy; 1 with --quick)",
    )
    ap.add_argument(
        "--scipy-trajectories",
        type=int,
        default=None,
        help="trajectories for solve_ivp (default 4; 2 with --quick)",
    )
    ap.add_argument(
        "--scipy-horizon",
        type=float,
        default=None,
        help="MTU per solve_ivp trajectory (default 0.5; 0.25 with --quick)",
    )
    ap.add_argument("--devices", type=int, default=None,
                    help="host CPU devices, one chunk of 128 samples each at a time (default: "
                         "one per core; set through XLA_FLAGS before JAX starts)")
    ap.add_argument("--quick", action="store_true", help="short run for a smoke test")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = ap.parse_args(argv)

    n_steps = args.steps or (200 if args.quick else 1000)
    save_every = args.save_every
    if n_steps % save_every:
        ap.error(f"--steps {n_steps} must be a multiple of --save-every {save_every}")
    rep_jax = args.repeats or (1 if args.quick else 3)
    rep_np = args.repeats or (1 if args.quick else 2)
    n_traj = args.scipy_trajectories or (2 if args.quick else 4)
    horizon = args.scipy_horizon or (0.25 if args.quick else 0.5)
    Bn = args.batch
    params = Lorenz96Params(F=F, h=H, b=B_, c=C)

    print(
        f"Lorenz-96 two-tier K={K}, J={J}, dt={DT}, batch={Bn}, steps={n_steps}, "
        f"save_every={save_every}; {os.cpu_count()} CPU cores, jax {jax.__version__} "
        f"({jax.default_backend()}, {len(jax.local_devices())} devices)",
        flush=True,
    )

    # Initial states on the attractor, shared by every method: 1 MTU of spin-up at dt/2 (the
    # transient from random states is stiffer than the attractor; see the solver docstring).
    s0 = random_initial_state(Bn, K, J, seed=0)
    start = solve(s0, params, dt=DT / 2, n_steps=1, spinup_steps=400).final_state
    X0, Y0 = start.X, start.Y

    rows = []

    def add(method, samples, steps, seconds, times, note=""):
        rows.append(
            {
                "method": method,
                "samples": samples,
                "steps_per_sample": steps,
                "seconds": seconds,
                "all_seconds": times,
                "samples_x_steps_per_s": samples * steps / seconds,
                "note": note,
            }
        )
        print(
            f"  {method}: {samples * steps / seconds:,.0f} samples x steps/s "
            f"(best of {len(times)}: {seconds:.3f} s)",
            flush=True,
        )

    # (a) JAX, float64 then float32; the first call compiles and is not timed.
    for dtype in ("float64", "float32"):

        def run_jax(dtype=dtype):
            return solve(start, params, dt=DT, n_steps=n_steps, save_every=save_every, dtype=dtype)

        t0 = time.perf_counter()
        run_jax()
        compile_s = time.perf_counter() - t0
        best, times, traj = best_time(run_jax, rep_jax)
        if dtype == "float64":
            traj64 = traj
        add(
            f"JAX RK4 solve ({dtype})",
            Bn,
            n_steps,
            best,
            times,
            f"first call incl. compile {compile_s:.2f} s",
        )

    # (b) NumPy RK4 over the same batch.
    best, times, np_out = best_time(lambda: numpy_rk4(X0, Y0, n_steps, save_every), rep_np)
    add("NumPy RK4 (vectorised, np.roll)", Bn, n_steps, best, times)

    # (c) scipy solve_ivp, one trajectory at a time; equivalent steps = horizon / dt.
    eq_steps = horizon / DT
    for method, kw in (("RK45", {}), ("DOP853", {"rtol": 1e-10, "atol": 1e-10})):

        def run_ivp(method=method, kw=kw):
            nfev = 0
            for i in range(n_traj):
                u0 = np.concatenate([X0[i], Y0[i].ravel()])
                sol = solve_ivp(scipy_rhs, (0.0, horizon), u0, method=method, **kw)
                assert sol.success, sol.message
                nfev += sol.nfev
            return nfev

        best, times, nfev = best_time(run_ivp, 1)
        tol = "default tolerances" if not kw else f"rtol=atol={kw['rtol']:g}"
        add(
            f"scipy solve_ivp {method} ({tol}), per trajectory",
            n_traj,
            eq_steps,
            best,
            times,
            f"{n_traj} trajectories x {horizon} MTU = {eq_steps:g} equivalent steps each "
            f"(horizon/dt); {nfev} RHS evaluations in all",
        )

    # Agreement: float64 JAX vs NumPy RK4, to round-off over a short run (and the timed run's
    # first saved frames, before chaos amplifies round-off).
    n_check = 40
    jc = solve(start, params, dt=DT, n_steps=n_check, save_every=n_check)
    nx, ny, _, _ = numpy_rk4(X0, Y0, n_check, n_check)
    check_diff = max(np.abs(jc.final_state.X - nx).max(), np.abs(jc.final_state.Y - ny).max())
    scale = np.abs(ny).max() + np.abs(nx).max()
    assert check_diff <= 1e-12 * scale * n_check, f"JAX and NumPy RK4 differ by {check_diff:.3e}"
    frame_diff = np.abs(traj64.X[:, 1] - np.asarray(np_out[2])[:, 1]).max()
    print(
        f"Agreement float64 JAX vs NumPy RK4 after {n_check} steps: max |diff| = "
        f"{check_diff:.2e} (state scale {scale:.1f}); first saved frame ({save_every} "
        f"steps): {frame_diff:.2e}",
        flush=True,
    )

    ref = next(r for r in rows if r["method"].startswith("NumPy"))["samples_x_steps_per_s"]
    for r in rows:
        r["ratio_vs_numpy_rk4"] = r["samples_x_steps_per_s"] / ref
    jax64 = rows[0]["ratio_vs_numpy_rk4"]

    # Roofline: a cell is one of the K (1 + J) variables; the working set is one chunk's (or
    # the batch's, if smaller) live arrays, the chunk being what one device holds.
    model = solver_model("lorenz96", J=J)
    limits = {}
    chunk = min(Bn, 128)
    for r, dtype in zip(rows[:2], ("float64", "float32"), strict=True):
        limits[dtype] = machine_limits(model.working_set(chunk * K * (1 + J), dtype), (dtype,),
                                       references=not limits)[dtype]
        r["roofline"] = roofline_fraction(r["samples_x_steps_per_s"] * K * (1 + J), model,
                                          dtype, limits[dtype]["limit_gb_per_s"])
    print()
    print(format_limits(limits))

    w = max(len(r["method"]) for r in rows)
    print()
    print(f"{'method':<{w}}  {'samples x steps/s':>18}  {'vs NumPy RK4':>12}  {'GB/s':>6}  "
          f"{'of limit':>8}  {'GFLOP/s':>7}")
    print(f"{'-' * w}  {'-' * 18}  {'-' * 12}  {'-' * 6}  {'-' * 8}  {'-' * 7}")
    for r in rows:
        roof = r.get("roofline")
        extra = (f"  {roof['gb_per_s']:>6.1f}  {100 * roof['fraction_of_limit']:>7.1f}%  "
                 f"{roof['gflop_per_s']:>7.1f}") if roof else ""
        print(
            f"{r['method']:<{w}}  {r['samples_x_steps_per_s']:>18,.0f}  "
            f"{r['ratio_vs_numpy_rk4']:>11.2f}x{extra}"
        )
    print("(GB/s = variables x steps/s x 2 words: the state read and written once per RK4 "
          "step; of limit = that / the faster of copy and triad at one chunk's working set; "
          "GFLOP/s at 40 flops per variable and step)")
    print(
        f"\nGoal >= 10x NumPy RK4 (float64): {'met' if jax64 >= 10 else 'NOT met'} ({jax64:.1f}x)"
    )

    result = {
        "benchmark": "solver_lorenz96",
        "command": " ".join(
            [Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])
        ),
        "system": {"K": K, "J": J, "F": F, "h": H, "b": B_, "c": C, "dt": DT},
        "config": {
            "batch": Bn,
            "steps": n_steps,
            "save_every": save_every,
            "repeats_jax": rep_jax,
            "repeats_numpy": rep_np,
            "scipy_trajectories": n_traj,
            "scipy_horizon_mtu": horizon,
            "quick": args.quick,
            "devices": len(jax.local_devices()),
        },
        "metric": "samples x steps per second (scipy: equivalent steps = horizon / dt)",
        "results": rows,
        "agreement": {
            "steps": n_check,
            "max_abs_diff_jax_vs_numpy": float(check_diff),
            "first_frame_max_abs_diff": float(frame_diff),
        },
        "goal_10x_numpy_met": bool(jax64 >= 10),
        "model": asdict(model),
        "machine_limits": limits,
        "optimisation_notes": OPTIMISATION_NOTES,
    }
    write_results(result, args.out, scipy=scipy.__version__)
    return result


if __name__ == "__main__":
    main()
