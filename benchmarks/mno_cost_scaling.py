"""Cost per model time unit of the MNO hybrid against the resolved multiscale Lorenz-96 solver.

Rerun with::

    python benchmarks/mno_cost_scaling.py                  # batch 10, three-tier N = 8, 16
    python benchmarks/mno_cost_scaling.py --quick          # three-tier N = 8 only, shorter runs
    python benchmarks/mno_cost_scaling.py --sizes 8,16,32  # N = 32: several more minutes (not run)

Claim (Lütjens et al. 2022, multiscale neural operator): a hybrid model that steps only the slow
variables X with the known coarse Lorenz-96 physics plus a learned FNO closure, at a time step
10x the resolved one, costs >= 10x less wall time per model time unit (MTU) than the fully
resolved multiscale solver, and the advantage grows with system size (closure O(N log N) per
step, resolved O(N^2) variables for two tiers, O(N^3) for three).

What is compared, all in one run and on the same initial conditions (frame 0 of the first
``--batch`` samples of a freshly generated dataset):

(a) classic two-tier system, K=36, J=10, F=10, h=1, b=c=10 (K*J + K = 396 variables);
(b) the MNO paper's three-tier variant, h=0.5, b=10, c=8, d=10, e=10, F=20, K=J=I=N for each N
    in ``--sizes`` (N^3 + N^2 + N variables).

Resolved: ``surrogates.solvers.lorenz96.solve`` (JAX, RK4, dt=0.005, one frame saved every 10
steps). Hybrid: ``operators.mno.HybridLorenz96(closure).rollout`` in eager torch (RK4, dt=0.05,
i.e. 20 steps = 80 closure calls per MTU, every state saved), float64 state, float32 closure,
under ``torch.no_grad()``. Closures, each fitted in the run on ``subgrid_forcing`` (X frames ->
subgrid-forcing frames, shapes (batch, 1, K)) of training samples that exclude the timed
initial-condition samples: the MNO of the benchmark (``MNOClosure`` with n_modes=[16],
hidden_channels=32, n_layers=4; Adam), a narrower MNO (16 channels, 2 layers), the cubic
``PolynomialClosure`` (least squares) and, as the cost floor, no closure (coarse physics only).
Costs are ``surrogates.metrics.dynamics.cost_per_model_time_unit`` (best of 3 after one warm-up) for
the whole batch; the speed-up is resolved / hybrid. Offline R^2 is on the held-out
initial-condition samples (all their frames). "Stable" means a 20-MTU (``--quick``: 5) hybrid
rollout from the same initial conditions stayed finite (``rollout`` raises ``FloatingPointError``
on blow-up).

Caveat on batch size: on a CPU the resolved solver always integrates fixed chunks of 128 samples
(the last one padded; see ``surrogates.solvers.lorenz96``), so at ``--batch 10`` it pays for 128
trajectories while the hybrid pays for 10. The script therefore also times the resolved solver
and the 32x4 MNO hybrid at batch 128 (the initial conditions repeated), the comparison at equal
useful work. Each hybrid is timed with ``torch.set_num_threads(2)`` and again with 1 thread (on a
busy 2-core machine 2 threads can be far slower, see ``TIMED_THREADS``); the untimed fits and
stability runs use 1 thread; JAX uses its defaults. The defaults keep the data short (0.5 MTU
of spin-up, 1 MTU saved, 32 samples) and the fits to 200 Adam steps: enough for a meaningful
closure, not a converged one.
Results go to ``benchmarks/results/mno_cost_scaling.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import torch
from bench_utils import write_results

from operators.mno import HybridLorenz96, MNOClosure, PolynomialClosure
from surrogates.data.lorenz96 import Lorenz96DataConfig, generate_lorenz96
from surrogates.metrics.dynamics import cost_per_model_time_unit
from surrogates.runs.lorenz96 import initial_conditions
from surrogates.solvers import lorenz96

RESULTS = Path(__file__).resolve().parent / "results" / "mno_cost_scaling.json"
# torch threads of the timed hybrid runs: 2 (the machine's cores), then 1. On the shared 2-core
# machine this was written on, with another job running, 2 threads were pathological: an Adam
# step of the 32x4 MNO took 0.4-1.2 s on 2 threads and ~0.07 s on 1, a closure call inside the
# hybrid (after JAX had run in the same process) ~125 ms against ~5 ms.
TIMED_THREADS = (2, 1)
UNTIMED_THREADS = 1  # fits and stability runs
DT = 0.005  # resolved RK4 step (MTU)
DT_FACTOR = 10  # the hybrid steps DT_FACTOR * DT
SAVE_EVERY = 10  # data frames every SAVE_EVERY resolved steps (0.05 MTU)
EQUAL_WORK_BATCH = 128  # samples per compiled chunk of the resolved solver on CPU
N_TRAIN = 22  # training samples generated after the --batch held-out ones
TRAIN_BATCH = 32  # frames per Adam step
LEARNING_RATE = 3e-3
CLOSURES = ("MNO 32x4", "MNO 16x2", "cubic", "none (coarse)")
MNO_SHAPES = {"MNO 32x4": (32, 4), "MNO 16x2": (16, 2)}


@dataclass(frozen=True)
class System:
    """One Lorenz-96 configuration: its name and the data-generation parameters."""

    name: str
    K: int
    J: int
    I: int  # noqa: E741 - the name of the index in the literature
    F: float
    h: float
    b: float
    c: float
    d: float = 10.0
    e: float = 10.0

    @property
    def n_resolved(self) -> int:
        """Resolved variables per trajectory, K + K J + K J I."""
        return self.K * (1 + self.J * (1 + self.I))


def systems(sizes: list[int]) -> list[System]:
    """The classic two-tier system, then the paper's three-tier variant for each N."""
    out = [System("two-tier", K=36, J=10, I=0, F=10.0, h=1.0, b=10.0, c=10.0)]
    out += [System(f"three-tier N={n}", K=n, J=n, I=n, F=20.0, h=0.5, b=10.0, c=8.0)
            for n in sizes]
    return out


# ----------------------------------------------------------------------------------------------
# Closures
# ----------------------------------------------------------------------------------------------


def r_squared(pred: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination over all values, 1 - SSE / SST."""
    return float(1.0 - ((pred - target) ** 2).sum() / ((target - target.mean()) ** 2).sum())


def fit_mno(x: torch.Tensor, y: torch.Tensor, hidden: int, layers: int,
            steps: int) -> MNOClosure:
    """Fit an MNO closure to (x, y) frames of shape (n, 1, K) with Adam on the normalised MSE.

    Parameters
    ----------
    x, y : torch.Tensor, shape (n, 1, K), float32
        Slow-variable frames and their subgrid forcing.
    hidden, layers : int
        Width and number of Fourier blocks.
    steps : int
        Adam steps on random minibatches of ``TRAIN_BATCH`` frames.

    Returns
    -------
    MNOClosure
        In eval mode, float32.
    """
    model = MNOClosure(n_modes=[16], hidden_channels=hidden, n_layers=layers,
                       input_mean=float(x.mean()), input_std=float(x.std()),
                       output_mean=float(y.mean()), output_std=float(y.std()))
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (TRAIN_BATCH,), generator=gen)
        loss = ((model(x[idx]) - y[idx]) / model.output_std).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def fit_closures(ds, held_out: np.ndarray, train: np.ndarray,
                 adam_steps: int) -> tuple[dict, dict, dict]:
    """Fit every closure on the training samples; R^2 and fit time on the held-out ones.

    Returns
    -------
    closures, r2, fit_seconds : dict
        Keyed by the names in ``CLOSURES`` (``None`` closure for the coarse-only model).
    """

    def frames(samples):
        sel = ds.isel(sample=samples)
        K = sel.sizes["k"]
        return (torch.as_tensor(sel["X"].values.reshape(-1, 1, K), dtype=torch.float32),
                torch.as_tensor(sel["subgrid_forcing"].values.reshape(-1, 1, K),
                                dtype=torch.float32))

    x_tr, y_tr = frames(train)
    x_te, y_te = frames(held_out)
    closures, fit_s = {}, {}
    for name in CLOSURES:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        if name in MNO_SHAPES:
            closures[name] = fit_mno(x_tr, y_tr, *MNO_SHAPES[name], adam_steps)
        elif name == "cubic":
            closures[name] = PolynomialClosure(degree=3).fit_least_squares(x_tr, y_tr).eval()
        else:
            closures[name] = None
        fit_s[name] = time.perf_counter() - t0
    r2 = {}
    with torch.no_grad():
        for name, closure in closures.items():
            pred = torch.zeros_like(y_te) if closure is None else closure(x_te)
            r2[name] = r_squared(pred.double().numpy(), y_te.double().numpy())
    return closures, r2, fit_s


# ----------------------------------------------------------------------------------------------
# Costs
# ----------------------------------------------------------------------------------------------


def hybrid_rollout(closure, X0: torch.Tensor, F: torch.Tensor, n_steps: int) -> torch.Tensor:
    """RK4 hybrid run of ``n_steps`` steps of ``DT_FACTOR * DT`` MTU, every state saved."""
    with torch.no_grad():
        return HybridLorenz96(closure).rollout(X0, F, DT * DT_FACTOR, n_steps, save_every=1,
                                               scheme="rk4")


def hybrid_cost(closure, X0: torch.Tensor, F: torch.Tensor, n_steps: int) -> dict:
    """Seconds per MTU of the hybrid over ``n_steps`` steps for each of ``TIMED_THREADS``.

    Returns
    -------
    dict
        ``{threads: seconds per MTU, or None if the run blew up}``.
    """
    out = {}
    for threads in TIMED_THREADS:
        torch.set_num_threads(threads)
        try:
            out[threads] = cost_per_model_time_unit(
                lambda: hybrid_rollout(closure, X0, F, n_steps), n_steps, DT * DT_FACTOR)
        except FloatingPointError:
            out[threads] = None
    torch.set_num_threads(UNTIMED_THREADS)
    return out


def speedups(resolved: float, costs: dict) -> dict:
    """Resolved cost over each hybrid cost (``None`` where the hybrid blew up)."""
    return {t: None if c is None else resolved / c for t, c in costs.items()}


def stability(closure, X0: torch.Tensor, F: torch.Tensor, mtu: float) -> dict:
    """Whether an ``mtu``-long hybrid run stays finite, with the blow-up message if not."""
    n_steps = round(mtu / (DT * DT_FACTOR))
    try:
        X = hybrid_rollout(closure, X0, F, n_steps)
    except FloatingPointError as err:
        return {"stable": False, "mtu": mtu, "message": str(err)}
    return {"stable": True, "mtu": mtu, "final_abs_max": float(X[:, -1].abs().max()),
            "abs_max": float(X.abs().max())}


def tile(a, n: int):
    """``a`` (or None) repeated cyclically along axis 0 to ``n`` entries."""
    return None if a is None else np.resize(np.asarray(a), (n,) + np.shape(a)[1:])


def run_system(system: System, args, settings: dict) -> dict:
    """Generate data, fit the closures and time the resolved and hybrid models for one system."""
    B = args.batch
    t0 = time.perf_counter()
    ds = generate_lorenz96(
        Lorenz96DataConfig(n_samples=B + N_TRAIN, K=system.K, J=system.J, I=system.I,
                           F=system.F, h=system.h, b=system.b, c=system.c, d=system.d,
                           e=system.e, dt=DT, n_steps=settings["data_steps"],
                           save_every=SAVE_EVERY, spinup_steps=settings["spinup_steps"],
                           store_fast=True, seed=0),
        show_progress=False)
    gen_s = time.perf_counter() - t0
    held_out, train = np.arange(B), np.arange(B, B + N_TRAIN)

    t0 = time.perf_counter()
    closures, r2, fit_s = fit_closures(ds, held_out, train, settings["adam_steps"])
    train_s = time.perf_counter() - t0

    state, params, dt = initial_conditions(ds, held_out)
    assert abs(dt - DT) < 1e-12, dt
    X0 = torch.as_tensor(state.X, dtype=torch.float64)
    F = torch.as_tensor(np.asarray(params.F), dtype=torch.float64)
    n_res = round(settings["timing_mtu"] / DT)
    n_hyb = n_res // DT_FACTOR

    def resolved_cost(st, pr):
        return cost_per_model_time_unit(
            lambda: lorenz96.solve(st, pr, dt=DT, n_steps=n_res, save_every=SAVE_EVERY),
            n_res, DT)

    resolved_s = resolved_cost(state, params)
    models = {}
    for name, closure in closures.items():
        cost = hybrid_cost(closure, X0, F, n_hyb)
        models[name] = {
            "seconds_per_mtu_by_torch_threads": cost,
            "speedup_by_torch_threads": speedups(resolved_s, cost),
            "r2_offline": r2[name],
            "fit_seconds": fit_s[name],
            "stability": stability(closure, X0, F, settings["stability_mtu"]),
            "parameters": 0 if closure is None else sum(p.numel() for p in closure.parameters()),
        }

    # Equal useful work: the resolved solver integrates EQUAL_WORK_BATCH lanes on CPU anyway.
    W = EQUAL_WORK_BATCH
    state_w = lorenz96.Lorenz96State(tile(state.X, W), tile(state.Y, W), tile(state.Z, W))
    params_w = lorenz96.Lorenz96Params(
        **{f: tile(getattr(params, f), W) for f in lorenz96.Lorenz96Params.__dataclass_fields__})
    resolved_w = resolved_cost(state_w, params_w)
    mno_w = hybrid_cost(closures["MNO 32x4"], torch.as_tensor(state_w.X, dtype=torch.float64),
                        torch.as_tensor(params_w.F, dtype=torch.float64), n_hyb)
    return {
        "system": system.name,
        "K": system.K, "J": system.J, "I": system.I,
        "parameters": {p: getattr(system, p) for p in ("F", "h", "b", "c", "d", "e")},
        "n_slow": system.K,
        "n_resolved_per_trajectory": system.n_resolved,
        "batch": B,
        "data_seconds": gen_s,
        "fit_seconds": train_s,
        "resolved_seconds_per_mtu": resolved_s,
        "models": models,
        "equal_work": {
            "batch": W,
            "resolved_seconds_per_mtu": resolved_w,
            "mno_32x4_seconds_per_mtu_by_torch_threads": mno_w,
            "speedup_by_torch_threads": speedups(resolved_w, mno_w),
        },
    }


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "blew up" if seconds is None else f"{1e3 * seconds:.1f}"


def ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.1f}x"


def print_table(rows: list[dict]) -> list[str]:
    """Print one line per (system, model) and return the lines."""
    cost_heads = "".join(f" {f'hybrid ms/MTU {t}thr':>18} {f'speed-up {t}thr':>13}"
                         for t in TIMED_THREADS)
    head = (f"{'configuration':<18} {'N_slow':>6} {'vars/traj':>9} {'batch':>5} "
            f"{'resolved ms/MTU':>15}  {'model':<13}{cost_heads} {'R^2':>6} {'stable':>6}")
    lines = [head, "-" * len(head)]

    def costs(seconds: dict, ratios: dict) -> str:
        return "".join(f" {ms(seconds[t]):>18} {ratio(ratios[t]):>13}" for t in TIMED_THREADS)

    for r in rows:
        lead = (f"{r['system']:<18} {r['n_slow']:>6} {r['n_resolved_per_trajectory']:>9} "
                f"{r['batch']:>5} {ms(r['resolved_seconds_per_mtu']):>15}")
        for name, m in r["models"].items():
            cols = costs(m["seconds_per_mtu_by_torch_threads"], m["speedup_by_torch_threads"])
            lines.append(f"{lead}  {name:<13}{cols} {m['r2_offline']:>6.3f} "
                         f"{'yes' if m['stability']['stable'] else 'NO':>6}")
            lead = " " * len(lead)
        e = r["equal_work"]
        cols = costs(e["mno_32x4_seconds_per_mtu_by_torch_threads"], e["speedup_by_torch_threads"])
        lines.append(f"{r['system']:<18} {r['n_slow']:>6} {r['n_resolved_per_trajectory']:>9} "
                     f"{e['batch']:>5} {ms(e['resolved_seconds_per_mtu']):>15}  "
                     f"{'MNO 32x4':<13}{cols}")
    for line in lines:
        print(line)
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=10, help="trajectories timed (default 10)")
    ap.add_argument("--sizes", type=str, default=None,
                    help="three-tier N values, comma separated (default 8,16; 8 with --quick)")
    ap.add_argument("--quick", action="store_true", help="short run for a smoke test")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error("--batch must be >= 1")
    sizes = [int(s) for s in (args.sizes or ("8" if args.quick else "8,16")).split(",")]
    settings = ({"data_steps": 100, "spinup_steps": 100, "adam_steps": 100, "timing_mtu": 0.25,
                 "stability_mtu": 5.0} if args.quick else
                {"data_steps": 200, "spinup_steps": 100, "adam_steps": 200, "timing_mtu": 0.5,
                 "stability_mtu": 20.0})

    torch.set_num_threads(UNTIMED_THREADS)
    torch.manual_seed(0)
    np.random.seed(0)
    print(f"MNO hybrid vs resolved Lorenz-96: batch {args.batch}, resolved dt {DT}, hybrid dt "
          f"{DT * DT_FACTOR} (RK4); torch {torch.__version__} timed on "
          f"{' and '.join(map(str, TIMED_THREADS))} threads, jax {jax.__version__} "
          f"({jax.default_backend()}), {os.cpu_count()} CPU cores",
          flush=True)
    t_start = time.perf_counter()
    rows = []
    for system in systems(sizes):
        t0 = time.perf_counter()
        rows.append(run_system(system, args, settings))
        print(f"  {system.name}: done in {time.perf_counter() - t0:.1f} s (data "
              f"{rows[-1]['data_seconds']:.1f} s, fits {rows[-1]['fit_seconds']:.1f} s)",
              flush=True)
    print()
    lines = print_table(rows)

    met = {t: {r["system"]: (r["models"]["MNO 32x4"]["speedup_by_torch_threads"][t] or 0) >= 10
               for r in rows} for t in TIMED_THREADS}
    for t in TIMED_THREADS:
        print(f"Goal: MNO 32x4 hybrid >= 10x cheaper per MTU than resolved (batch {args.batch}, "
              f"torch {t} thread(s)): "
              + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met[t].items()))
    wall = time.perf_counter() - t_start
    print(f"total wall time {wall:.1f} s")

    result = {
        "benchmark": "mno_cost_scaling",
        "command": " ".join(
            [f"python benchmarks/{Path(sys.argv[0]).name}"]
            + (argv if argv is not None else sys.argv[1:])),
        "config": {
            "batch": args.batch, "sizes": sizes, "quick": args.quick, **settings,
            "dt_resolved": DT, "dt_hybrid": DT * DT_FACTOR, "hybrid_scheme": "rk4",
            "save_every_resolved": SAVE_EVERY, "hybrid_save_every": 1,
            "n_train_samples": N_TRAIN, "train_batch": TRAIN_BATCH,
            "learning_rate": LEARNING_RATE, "equal_work_batch": EQUAL_WORK_BATCH,
            "timed_torch_threads": list(TIMED_THREADS), "untimed_torch_threads": UNTIMED_THREADS,
            "timing": ("surrogates.metrics.dynamics.cost_per_model_time_unit, best of 3 after 1 "
                       "warm-up"),
        },
        "metric": "wall seconds per model time unit for the whole batch; speedup = resolved / "
                  "hybrid",
        "results": rows,
        "goal_10x_met_by_torch_threads": met,
        "table": lines,
        "wall_seconds": wall,
    }
    write_results(result, args.out, torch=torch.__version__, torch_threads=torch.get_num_threads())
    return result


if __name__ == "__main__":
    main()
