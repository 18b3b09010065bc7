"""Multiscale neural operator on two-tier Lorenz-96: every closure and baseline in one table.

Rerun with::

    python benchmarks/mno_lorenz96.py            # ~25 min on a 2-core CPU
    python benchmarks/mno_lorenz96.py --quick    # pipeline check, ~3 min, numbers meaningless

Claims checked (issue "Multiscale neural operator"): the hybrid model with the learned closure
(known coarse physics + MNO closure, RK4 at 10x the resolved solver's step)

1. beats every baseline on short-range skill (valid prediction time, VPT: time until the
   normalised RMSE against the fully resolved reference passes 0.5) and on climate statistics
   (Hellinger distance between the densities of X_k over the long run);
2. stays stable for 100 model time units (MTU) from every test initial condition;
3. costs >= 10x less than the fully resolved solver per MTU.

Everything is trained on one dataset written by our JAX solver: the classic two-tier system
(K = 36, J = 10, F = 10, h = 1, b = c = 10, dt = 0.005 MTU), frames every 0.05 MTU, split by
trajectory (80/10/10, seed 0). Models, all on the same data and split:

* ``no closure``: coarse physics only (the truncated slow equation);
* ``cubic``: polynomial closure in X_k (Wilks 2005), least squares;
* ``local MLP``: pointwise MLP closure c_k = g(X_k);
* ``next-state FNO``: pure data-driven FNO from X(t) to X(t + 0.05), no physics;
* ``MNO``: FNO closure on the ring (one seed), trained offline on the subgrid forcing;
* ``MNO a-posteriori``: that closure fine-tuned through 4 unrolled hybrid frames;
* ``MNO ensemble``: 3 seeds; its forecast is the mean of the 3 hybrid runs, its climate pools
  them, and CRPS / spread-skill score the spread.

Every model runs from the frame-0 states of all test trajectories: 4 MTU for skill and 100 MTU
for climate and stability; the reference restarts the resolved solver from the same (X, Y).
Cost is wall time per MTU over the same batch of initial conditions, measured in the same run
(`surrogates.metrics.dynamics.cost_per_model_time_unit`, best of 3). A second evaluation at K = 72
(never seen in training) checks grid independence. The three-tier cost scaling is in
``benchmarks/mno_cost_scaling.py``. Results: ``benchmarks/results/mno_lorenz96.json``, the
stability figure ``benchmarks/results/mno_lorenz96_stability.png`` and all plots in ``--work``
(default ``mno_lorenz96_work/``, not versioned).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from surrogates.data.common import write_json, write_netcdf
from surrogates.data.lorenz96 import Lorenz96DataConfig, generate_lorenz96
from surrogates.runs.lorenz96 import (
    HybridEvaluationConfig,
    evaluate_closure_run,
    fit_polynomial_closure,
)
from surrogates.runs.lorenz96_finetune import UnrollConfig, finetune_closure
from surrogates.runs.operators import DataSpec, evaluate_run, train_ensemble, train_operator
from surrogates.training import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results" / "mno_lorenz96.json"
MNO = {"n_modes": [16], "hidden_channels": 16, "n_layers": 2}


def settings(quick: bool) -> dict:
    """Data, training and evaluation sizes (``quick``: a fast pipeline check)."""
    if quick:
        return {"data": Lorenz96DataConfig(n_samples=20, n_steps=400, spinup_steps=400, seed=0),
                "data_k72": Lorenz96DataConfig(n_samples=4, K=72, n_steps=200,
                                               spinup_steps=400, seed=1),
                "epochs": 2, "members": 2, "finetune_epochs": 1,
                "eval": HybridEvaluationConfig(scheme="rk4", dt_factor=10, forecast_mtu=1.0,
                                               climate_mtu=2.0),
                "eval_k72": HybridEvaluationConfig(scheme="rk4", dt_factor=10, forecast_mtu=1.0,
                                                   climate_mtu=2.0)}
    return {"data": Lorenz96DataConfig(n_samples=120, n_steps=2000, spinup_steps=2000, seed=0),
            "data_k72": Lorenz96DataConfig(n_samples=12, K=72, n_steps=200, spinup_steps=2000,
                                           seed=1),
            "epochs": 12, "members": 3, "finetune_epochs": 2,
            "eval": HybridEvaluationConfig(scheme="rk4", dt_factor=10, forecast_mtu=4.0,
                                           climate_mtu=100.0),
            "eval_k72": HybridEvaluationConfig(scheme="rk4", dt_factor=10, forecast_mtu=4.0,
                                               climate_mtu=20.0)}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def train_all(work: Path, data: str, s: dict) -> dict[str, Path]:
    """Train every closure and baseline; return display name -> run folder."""
    closure = DataSpec(path=data, targets=["subgrid_forcing"])
    train = TrainConfig(epochs=s["epochs"], batch_size=128, lr=3e-3, seed=0,
                        show_progress=False)
    runs = {"cubic": work / "cubic", "local MLP": work / "local_mlp",
            "next-state FNO": work / "next_state_fno", "MNO": work / "mno",
            "MNO a-posteriori": work / "mno_a_posteriori", "MNO ensemble": work / "mno_ensemble"}
    log("cubic")
    fit_polynomial_closure(closure, runs["cubic"], overwrite=True)
    log("local MLP")
    train_operator(closure, runs["local MLP"], model_class="LocalMLPClosure", model_config={},
                   train_config=train, overwrite=True, normalization="scalar")
    log("next-state FNO")
    train_operator(dataclasses.replace(closure, targets=["X"], lead=1), runs["next-state FNO"],
                   model_class="NextStateFNO", model_config=MNO, train_config=train,
                   overwrite=True, normalization="scalar")
    log("MNO")
    train_operator(closure, runs["MNO"], model_class="MNOClosure", model_config=MNO,
                   train_config=train, overwrite=True, normalization="scalar")
    log("MNO a-posteriori")
    finetune_closure(runs["MNO"], runs["MNO a-posteriori"],
                     unroll=UnrollConfig(n_frames=4, dt_factor=10, stride=5),
                     train_config=TrainConfig(epochs=s["finetune_epochs"], batch_size=64,
                                              lr=3e-4, loss="mse", seed=0, show_progress=False),
                     overwrite=True)
    log("MNO ensemble")
    train_ensemble(closure, runs["MNO ensemble"], n_members=s["members"],
                   model_class="MNOClosure", model_config=MNO,
                   train_config=dataclasses.replace(train, seed=100), overwrite=True)
    return runs


def evaluate_all(runs: dict[str, Path], config: HybridEvaluationConfig, out: Path,
                 data: str | None = None) -> dict[str, dict]:
    """One hybrid evaluation of all runs (MNO first) plus each run's offline metrics."""
    names = list(runs)
    main = names.index("MNO")
    order = [names[main]] + names[:main] + names[main + 1:]
    result = evaluate_closure_run(runs[order[0]], data, split="test" if data is None else "all",
                                  out_dir=out, hybrid=config,
                                  compare=[runs[n] for n in order[1:]])
    split = "test" if data is None else "all"
    folder_to_name = {runs[n].name: n for n in names}
    rows = {"resolved": {"seconds_per_mtu": result["hybrid"]["reference"]["seconds_per_mtu"]}}
    for folder, entry in result["hybrid"]["models"].items():
        name = folder_to_name.get(folder, folder)
        row = dict(entry)
        if name in runs:  # offline: closure error (the next-state FNO: error of X(t + dt))
            offline = evaluate_run(runs[name], data, split=split,
                                   out_dir=out / f"offline_{runs[name].name}")
            key = "offline_next_state" if name == "next-state FNO" else "offline"
            row[key] = {k: offline["overall"][k] for k in ("r2", "relative_l2_mean")}
            if "ensemble" in offline:
                row["offline_ensemble"] = offline["ensemble"]
        rows[name] = row
    return rows


def table(rows: dict[str, dict], title: str) -> list[str]:
    """Printable table lines."""
    head = (f"{'model':<18} {'R^2':>6} {'VPT':>5} {'VPTmin':>6} {'Hell.':>6} {'W1':>6} "
            f"{'ACF':>6} {'stable':>6} {'ms/MTU':>8} {'speed-up':>8}")
    lines = [title, head, "-" * len(head)]
    for name, r in rows.items():
        if name == "resolved":
            lines.append(f"{name:<18} {'':>6} {'':>5} {'':>6} {'':>6} {'':>6} {'':>6} {'':>6} "
                         f"{1e3 * r['seconds_per_mtu']:>8.1f} {'1.00x':>8}")
            continue
        r2 = (r.get("offline") or {}).get("r2", float("nan"))
        c = r.get("climate", {})
        nan = float("nan")
        lines.append(
            f"{name:<18} {r2:>6.3f} {r.get('vpt_mean', nan):>5.2f} {r.get('vpt_min', nan):>6.2f} "
            f"{c.get('hellinger', nan):>6.3f} {c.get('wasserstein', nan):>6.3f} "
            f"{c.get('acf_rmse', nan):>6.3f} {r['stable_fraction']:>6.0%} "
            f"{1e3 * r['seconds_per_mtu']:>8.1f} {r['speedup']:>7.2f}x")
    for name, r in rows.items():
        if "ensemble" in r:
            e, o = r["ensemble"], r.get("offline_ensemble") or {}
            lines.append(f"{name}: forecast CRPS {e['crps_mean']:.3f}, spread-skill "
                         f"{e['spread_skill_mean']:.2f}; offline closure CRPS "
                         f"{o.get('crps', float('nan')):.3f}, 95% coverage "
                         f"{o.get('coverage', float('nan')):.2f}, spread-skill "
                         f"{o.get('spread_skill', float('nan')):.2f}")
    return lines


def paired_vpt(rows: dict[str, dict], mno: str) -> dict[str, dict[str, float]]:
    """VPT of ``mno`` minus each baseline's, paired by initial condition: mean and its
    standard error (the noise of a VPT ranking on a few initial conditions)."""
    out = {}
    for name, other in rows.items():
        if name in ("resolved", mno) or "vpt" not in other or "vpt" not in rows[mno]:
            continue
        diff = np.asarray(rows[mno]["vpt"]) - np.asarray(other["vpt"])
        out[name] = {"mean": float(diff.mean()),
                     "stderr": float(diff.std(ddof=1) / np.sqrt(diff.size))}
    return out


def goals(rows: dict[str, dict], mno: str) -> dict[str, bool]:
    """The three goals of the issue for the MNO variant ``mno``."""
    baselines = ["no closure", "cubic", "local MLP", "next-state FNO"]
    r = rows[mno]

    def worse(name: str, key: str, better_low: bool) -> bool:
        other = rows[name]
        if other["stable_fraction"] < 1:
            return True
        a = r["climate"]["hellinger"] if key == "hellinger" else r[key]
        b = other["climate"]["hellinger"] if key == "hellinger" else other[key]
        return a < b if better_low else a > b

    stable = r["stable_fraction"] == 1.0
    return {"beats_baselines_vpt": stable and all(worse(n, "vpt_mean", False) for n in baselines),
            "beats_baselines_hellinger": stable and all(worse(n, "hellinger", True)
                                                        for n in baselines),
            "stable": stable,
            "cost_10x": r["speedup"] >= 10}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small pipeline check")
    parser.add_argument("--work", type=Path, default=Path("mno_lorenz96_work"),
                        help="folder for data, runs and plots")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (small models: 1 avoids OpenMP contention)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    s = settings(args.quick)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    data = work / "lorenz96.nc"
    data_k72 = work / "lorenz96_k72.nc"
    log(f"generating {s['data'].n_samples} trajectories (K=36) and {s['data_k72'].n_samples} "
        "(K=72)")
    write_netcdf(generate_lorenz96(s["data"]), data, overwrite=True)
    write_netcdf(generate_lorenz96(s["data_k72"]), data_k72, overwrite=True)
    runs = train_all(work, str(data), s)
    log("evaluating at K=36")
    rows = evaluate_all(runs, s["eval"], work / "evaluation_k36")
    log("evaluating at K=72 (zero-shot)")
    k72_runs = {n: runs[n] for n in ("MNO", "cubic", "local MLP", "next-state FNO")}
    rows_k72 = evaluate_all(k72_runs, s["eval_k72"], work / "evaluation_k72", str(data_k72))

    lines = table(rows, f"K=36, {s['eval'].climate_mtu:g}-MTU climate runs from every test "
                        "initial condition (RK4 hybrid at 10x the resolved dt)")
    lines += [""] + table(rows_k72, f"K=72 (not seen in training), "
                                    f"{s['eval_k72'].climate_mtu:g}-MTU climate runs")
    mno_names = [n for n in rows if n.startswith("MNO")]
    checks = {n: goals(rows, n) for n in mno_names}
    lines.append("")
    for name, c in checks.items():
        lines.append(f"goals for {name}: " + ", ".join(f"{k} {'met' if v else 'NOT met'}"
                                                       for k, v in c.items()))
    paired = {n: paired_vpt(rows, n) for n in mno_names}
    lines.append("VPT difference to each baseline, paired by initial condition (mean +- s.e.):")
    for name, diffs in paired.items():
        lines.append(f"  {name}: " + ", ".join(f"{b} {d['mean']:+.2f} +- {d['stderr']:.2f}"
                                               for b, d in diffs.items()))
    print("\n".join(lines))
    result = {"benchmark": "mno_lorenz96",
              "command": " ".join(["python", "benchmarks/mno_lorenz96.py"]
                                  + (argv if argv is not None else sys.argv[1:])),
              "data": dataclasses.asdict(s["data"]), "mno_config": MNO,
              "evaluation": dataclasses.asdict(s["eval"]),
              "evaluation_k72": dataclasses.asdict(s["eval_k72"]),
              "k36": rows, "k72": rows_k72, "goals": checks, "paired_vpt": paired,
              "table": lines,
              "wall_time_s": time.perf_counter() - started,
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(result, args.out)  # creates the results folder
    figure = args.out.with_name(args.out.stem + "_stability.png")  # the 100-MTU runs
    shutil.copyfile(work / "evaluation_k36" / "hybrid_stability.png", figure)
    log(f"wrote {args.out} ({result['wall_time_s'] / 60:.1f} min)")
    return result


if __name__ == "__main__":
    main()
