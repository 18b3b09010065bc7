"""The main job on a small embedded default: Lorenz-96 data -> neural closures -> hybrid climate.

``surrogates demo`` runs this on a laptop CPU in a few minutes, the whole multiscale-neural-operator
workflow in one report folder:

1. it integrates the classic two-tier Lorenz-96 system (K = 36, J = 10, F = 10) into
   ``lorenz96.nc``;
2. trains a Fourier neural operator (``run/``) to predict the subgrid forcing
   ``-(h c / b) sum_j Y_{j,k}`` of the slow variables from the slow state alone (the closure
   problem of climate modelling) and scores it offline on held-out trajectories
   (``evaluation/``);
3. trains a multiscale-neural-operator closure (``mno/``, :class:`operators.mno.MNOClosure`) and
   fits the cubic polynomial closure of Wilks (2005) (``cubic/``) on the same data, then couples
   each closure into the hybrid model (coarse equations + closure, RK4 at 10x the resolved time
   step) and runs it, with coarse physics alone ("no closure") as the floor, from the test initial
   conditions against the fully resolved solver (``mno/evaluation/``): valid prediction time,
   climate distances, stability and cost per model time unit;
4. emulates climate on ClimateBench-shaped synthetic data (``climatebench/``): linear pattern
   scaling and a PCA + Gaussian-process emulator scored with ClimateBench's NRMSE
   (:mod:`surrogates.demo.sections`);
5. regresses airfoil lift, drag and pressure fields on meshes of unparameterised shapes with
   mesh-morphing Gaussian processes (``airfoils/``, ``mmgp/``), with uncertainty.

``report.md`` gathers the numbers and names the plots; ``summary.json`` holds the same numbers, the
configurations needed to repeat every step and the wall time of each stage. ``quick=True`` (the
``--quick`` flag) shrinks data, models and horizons to a smoke test of seconds whose numbers carry
no skill. The demo runs torch single-threaded (:data:`TORCH_THREADS`; restored afterwards):
its models are small, and on a shared CPU extra threads cost far more than they give.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from surrogates.data.common import write_json, write_netcdf
from surrogates.data.lorenz96 import Lorenz96DataConfig, generate_lorenz96
from surrogates.demo.sections import run_airfoil_section, run_climate_section
from surrogates.runs.lorenz96 import evaluate_closure_run, fit_polynomial_closure
from surrogates.runs.operators import DataSpec, evaluate_run, train_operator
from surrogates.training import TrainConfig

if TYPE_CHECKING:  # the hybrid evaluation imports the JAX solver: only when the demo runs
    from surrogates.runs.lorenz96 import HybridEvaluationConfig

#: torch intra-op threads while the demo runs (restored afterwards). The demo's models are small:
#: on a shared or busy CPU extra threads mostly add synchronisation (measured on 2 shared cores:
#: 5x slower training epochs, up to ~50x slower hybrid steps with 2 threads than with 1).
TORCH_THREADS = 1

#: Fraction of the training trajectories held out to calibrate split-conformal intervals
#: (:mod:`surrogates.runs.calibration`).
CALIBRATION_FRACTION = 0.2

#: Report label of each hybrid model, keyed by its name in the hybrid evaluation (run folder name).
CLOSURE_LABELS = {"mno": "MNO closure", "cubic": "cubic polynomial", "no closure": "no closure"}


def demo_configs(quick: bool = False) -> tuple[Lorenz96DataConfig, dict, TrainConfig]:
    """Data, FNO and training settings of the demo (``quick``: seconds instead of minutes)."""
    data = Lorenz96DataConfig(n_samples=12 if quick else 100, n_steps=400 if quick else 1000,
                              save_every=10, spinup_steps=400 if quick else 1000, seed=0)
    model = {"n_modes": [12], "hidden_channels": 16 if quick else 32,
             "n_layers": 2 if quick else 4, "positional_embedding": None}
    train = TrainConfig(epochs=3 if quick else 12, batch_size=64, lr=2e-3, seed=0,
                        show_progress=True)
    return data, model, train


def closure_configs(quick: bool = False
                    ) -> tuple[dict[str, Any], TrainConfig, HybridEvaluationConfig]:
    """MNO closure, its training and the hybrid evaluation settings of the climate section.

    Returns ``(model_config, TrainConfig, HybridEvaluationConfig)``. The closures are trained
    on ``subgrid_forcing`` (the instantaneous tendency), which suits the RK4 hybrid.
    """
    from surrogates.runs.lorenz96 import HybridEvaluationConfig  # imports the JAX solver

    model = {"n_modes": [16], "hidden_channels": 8 if quick else 16,
             "n_layers": 1 if quick else 2}
    train = TrainConfig(epochs=1 if quick else 6, batch_size=128, lr=3e-3, seed=0,
                        show_progress=True)
    hybrid = HybridEvaluationConfig(scheme="rk4", dt_factor=10,
                                    forecast_mtu=1.0 if quick else 3.0,
                                    climate_mtu=1.0 if quick else 10.0)
    return model, train, hybrid


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, restoring the previous number afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _finite_or_none(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _closure_rows(hybrid: dict[str, Any], offline_r2: dict[str, float | None]
                  ) -> dict[str, dict[str, Any]]:
    """One summary row per hybrid model: offline R^2, skill, climate, stability and cost."""
    reference = hybrid["reference"]["seconds_per_mtu"]
    rows = {}
    order = [name for name in CLOSURE_LABELS if name in hybrid["models"]]
    for name in order + [name for name in hybrid["models"] if name not in CLOSURE_LABELS]:
        entry = hybrid["models"][name]
        climate = entry.get("climate", {})
        rows[CLOSURE_LABELS.get(name, name)] = {
            "offline_r2": offline_r2.get(name),
            "vpt_mean": _finite_or_none(entry.get("vpt_mean")),
            "vpt_min": _finite_or_none(entry.get("vpt_min")),
            "hellinger": _finite_or_none(climate.get("hellinger")),
            "wasserstein": _finite_or_none(climate.get("wasserstein")),
            "stable_fraction": float(entry["stable_fraction"]),
            "seconds_per_mtu": float(entry["seconds_per_mtu"]),
            "cost_vs_resolved": float(entry["seconds_per_mtu"]) / reference,
        }
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _closure_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| model | offline test R^2 | valid prediction time (MTU) | Hellinger | "
             "Wasserstein-1 | stable fraction | cost / resolved |",
             "|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        lines.append(f"| {label} | {_fmt(r['offline_r2'], '.3f')} | "
                     f"{_fmt(r['vpt_mean'], '.2f')} | {_fmt(r['hellinger'], '.3f')} | "
                     f"{_fmt(r['wasserstein'], '.3f')} | {r['stable_fraction']:.2f} | "
                     f"{r['cost_vs_resolved']:.3f} |")
    return "\n".join(lines) + "\n"


def _closure_heading(rows: dict[str, dict[str, Any]]) -> str:
    """The section's headline: the MNO hybrid's valid prediction time against coarse physics."""
    mno, base = rows[CLOSURE_LABELS["mno"]], rows[CLOSURE_LABELS["no closure"]]
    return (f"## Hybrid model: MNO closure VPT {_fmt(mno['vpt_mean'], '.2f')} MTU vs coarse "
            f"physics {_fmt(base['vpt_mean'], '.2f')} MTU\n\n")


def _what_you_see(rows: dict[str, dict[str, Any]]) -> str:
    """One or two sentences reading the closure table (worded from the numbers, not assumed)."""
    base = rows[CLOSURE_LABELS["no closure"]]
    mno, cubic = rows[CLOSURE_LABELS["mno"]], rows[CLOSURE_LABELS["cubic"]]
    if mno["vpt_mean"] is None:
        return "What you see: the MNO closure blew up inside the hybrid model."
    better = mno["vpt_mean"] > (base["vpt_mean"] or 0.0)
    text = (f"What you see: coarse physics alone keeps a valid forecast for "
            f"{_fmt(base['vpt_mean'], '.2f')} MTU (Hellinger {_fmt(base['hellinger'], '.3f')}); "
            f"the MNO closure {'extends' if better else 'does not extend'} it to "
            f"{mno['vpt_mean']:.2f} MTU (Hellinger {_fmt(mno['hellinger'], '.3f')}), the cubic "
            f"reaches {_fmt(cubic['vpt_mean'], '.2f')} MTU (Hellinger "
            f"{_fmt(cubic['hellinger'], '.3f')}). ")
    cost = mno["cost_vs_resolved"]
    text += (f"The MNO hybrid costs {cost:.2f}x the resolved solver per MTU here "
             + ("(cheaper)." if cost < 1 else
                "(dearer: at this small K and batch, per-step network overhead on a CPU "
                "outweighs the fast variables it removes; the cubic is the cheap closure)."))
    return text


def run_closure_section(spec: DataSpec, out: Path, *, quick: bool = False) -> dict[str, Any]:
    """Train the MNO closure, fit the cubic, run both and coarse physics in the hybrid model.

    Writes ``out/mno``, ``out/cubic`` and ``out/mno/evaluation`` (offline metrics of the MNO,
    ``hybrid_metrics.json`` and the hybrid plots); returns the summary of the section.
    """
    model_config, train_config, hybrid_config = closure_configs(quick)
    spec = dataclasses.replace(spec, targets=["subgrid_forcing"])
    timings = {}
    started = time.perf_counter()
    trained = train_operator(spec, out / "mno", model_class="MNOClosure",
                             model_config=model_config, train_config=train_config,
                             normalization="scalar")
    timings["train_mno_s"] = time.perf_counter() - started

    started = time.perf_counter()
    cubic = fit_polynomial_closure(spec, out / "cubic")
    cubic_test = evaluate_run(out / "cubic", split="test", out_dir=out / "cubic" / "evaluation")
    timings["fit_cubic_s"] = time.perf_counter() - started

    started = time.perf_counter()
    evaluation = evaluate_closure_run(out / "mno", split="test",
                                      out_dir=out / "mno" / "evaluation", hybrid=hybrid_config,
                                      compare=[out / "cubic"])
    timings["hybrid_evaluate_s"] = time.perf_counter() - started
    hybrid = evaluation["hybrid"]
    offline_r2 = {"mno": evaluation["overall"]["r2"], "cubic": cubic_test["overall"]["r2"],
                  "no closure": None}
    return {"model_config": model_config, "train_config": dataclasses.asdict(train_config),
            "hybrid_config": dataclasses.asdict(hybrid_config),
            "best_epoch": trained.best_epoch, "epochs": len(trained.history),
            "cubic_coefficients": cubic["coefficients"], "cubic_train_r2": cubic["train_r2"],
            "n_initial_conditions": hybrid["n_initial_conditions"],
            "resolved_seconds_per_mtu": hybrid["reference"]["seconds_per_mtu"],
            "models": _closure_rows(hybrid, offline_r2), "timings": timings}


def _uq_text(metrics: dict[str, Any]) -> str:
    """The offline FNO's uncertainty: none raw, then its split-conformal intervals."""
    report = next(iter(metrics["uq"].values()))
    cal = report.get("calibrated")
    if cal is None:
        return "Uncertainty: none (the FNO is deterministic and was not calibrated).\n\n"
    cover, fields = cal["coverage"], cal["field_coverage"]
    return (f"Uncertainty: the FNO alone is deterministic (no intervals before calibration). "
            f"Calibrated by split-conformal prediction on {cal['n_calibration']} examples of "
            f"training trajectories held out of the fit, its 90 % / 95 % intervals cover "
            f"{cover['0.9']:.3f} / {cover['0.95']:.3f} of the test targets (marginal; whole "
            f"rings of K values: {fields['0.9']:.3f} / {fields['0.95']:.3f}); CRPS "
            f"{cal['crps']:.4f} 1/MTU. Plots: `evaluation/uq_reliability.png`, "
            "`evaluation/uq_pit.png`.\n\n")


def run_demo(out: Path, *, quick: bool = False) -> Path:
    """Run the demo into the new folder ``out``; return the path of its ``report.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=False)
    with _torch_threads(TORCH_THREADS):
        return _run_demo(out, quick)


def _run_demo(out: Path, quick: bool) -> Path:
    data_config, model_config, train_config = demo_configs(quick)
    timings = {}
    demo_started = time.perf_counter()

    started = time.perf_counter()
    data_path = out / "lorenz96.nc"
    write_netcdf(generate_lorenz96(data_config), data_path)
    timings["generate_s"] = time.perf_counter() - started

    started = time.perf_counter()
    spec = DataSpec(path=str(data_path), inputs=["X"], targets=["subgrid_forcing"],
                    spatial_dims=["k"], calibration=CALIBRATION_FRACTION)
    result = train_operator(spec, out / "run", model_class="FNO", model_config=model_config,
                            train_config=train_config)
    timings["train_s"] = time.perf_counter() - started

    started = time.perf_counter()
    metrics = evaluate_run(out / "run", split="test", out_dir=out / "evaluation")
    timings["evaluate_s"] = time.perf_counter() - started

    closure = run_closure_section(spec, out, quick=quick)
    timings |= closure["timings"]
    climate = run_climate_section(out, quick=quick)
    timings |= {f"climate_{k}": v for k, v in climate["timings"].items()}
    airfoil = run_airfoil_section(out, quick=quick)
    timings |= {f"airfoil_{k}": v for k, v in airfoil["timings"].items()}
    timings["total_s"] = time.perf_counter() - demo_started

    summary = {"data_config": dataclasses.asdict(data_config), "model_config": model_config,
               "train_config": dataclasses.asdict(train_config), "timings": timings,
               "best_epoch": result.best_epoch, "test_metrics": metrics["overall"],
               "closure": closure, "climate": {k: v for k, v in climate.items() if k != "report"},
               "airfoil": {k: v for k, v in airfoil.items() if k != "report"},
               "torch_threads": TORCH_THREADS}
    write_json(summary, out / "summary.json")
    m = metrics["overall"]
    h = closure["hybrid_config"]
    report = out / "report.md"
    report.write_text(
        "# surrogates demo: neural operator closures for Lorenz-96\n\n"
        f"Data: {data_config.n_samples} trajectories of the two-tier Lorenz-96 system "
        f"(K={data_config.K}, J={data_config.J}, F={data_config.F}), "
        f"{data_config.n_steps * data_config.dt:g} MTU each after "
        f"{data_config.spinup_steps * data_config.dt:g} MTU spin-up: `lorenz96.nc`.\n"
        "Task: predict the subgrid forcing -(h c/b) sum_j Y_jk from the slow state X.\n"
        f"Model: FNO {model_config}, {len(result.history)} epochs: `run/`.\n\n"
        f"## Offline closure: FNO R^2 {m['r2']:.3f} on {metrics['n_samples']} held-out "
        "trajectories (the training mean scores 0)\n\n"
        "| metric | value |\n|---|---|\n"
        f"| relative L2 (mean) | {m['relative_l2_mean']:.4f} |\n"
        f"| RMSE (1/MTU) | {m['rmse']:.4f} |\n"
        f"| R^2 | {m['r2']:.4f} |\n\n"
        "Plots: `evaluation/parity.png`, `evaluation/snapshot.png`, "
        "`evaluation/training_curves.png`.\n\n"
        + _uq_text(metrics)
        + "Next: `surrogates predict run --out pred.nc` writes the predictions with their "
        "calibrated std.\n\n"
        + _closure_heading(closure["models"]) +
        f"An MNO closure {closure['model_config']} ({closure['epochs']} epochs: `mno/`) and the "
        "cubic polynomial closure of Wilks (2005) (least squares: `cubic/`) are coupled into the "
        f"coarse Lorenz-96 equations (hybrid model, {h['scheme'].upper()} at "
        f"{h['dt_factor']}x the resolved time step) and run, with coarse physics alone as the "
        f"floor, from the {closure['n_initial_conditions']} test initial conditions against the "
        f"fully resolved solver: {h['forecast_mtu']:g} MTU forecasts (valid prediction time: "
        f"normalised error below {h['threshold']:g}, at most the horizon) and "
        f"{h['climate_mtu']:g} MTU climate runs "
        "(Hellinger and Wasserstein-1 distances of the pooled X densities to the resolved one, "
        "0 is perfect). Offline R^2 on the test split; cost = wall time per MTU relative to the "
        "resolved solver on the same batch (< 1 is cheaper).\n\n"
        + _closure_table(closure["models"]) + "\n"
        "Plots: `mno/evaluation/hybrid_rmse.png` (error by lead time), "
        "`mno/evaluation/hybrid_climate_pdf.png` (climate densities), "
        "`mno/evaluation/hybrid_autocorrelation.png`, `mno/evaluation/hybrid_stability.png` "
        "(boundedness over the climate run); offline: `mno/evaluation/parity.png`, "
        "`cubic/evaluation/parity.png`. All numbers: `mno/evaluation/hybrid_metrics.json`.\n\n"
        + _what_you_see(closure["models"])
        + (" (Quick mode: too few epochs and too short horizons for these numbers to mean "
           "anything.)" if quick else "") + "\n\n"
        "Next: `surrogates evaluate mno --compare cubic --scheme rk4 --dt-factor 10` reruns "
        "this table; `surrogates export mno --format onnx` writes the closure for a host "
        "model.\n\n"
        f"Time: generate {timings['generate_s']:.1f} s, train FNO {timings['train_s']:.1f} s, "
        f"evaluate FNO {timings['evaluate_s']:.1f} s, train MNO {timings['train_mno_s']:.1f} s, "
        f"fit and evaluate cubic {timings['fit_cubic_s']:.1f} s, hybrid evaluation "
        f"{timings['hybrid_evaluate_s']:.1f} s, climate emulation "
        f"{sum(climate['timings'].values()):.1f} s, airfoil MMGP "
        f"{sum(airfoil['timings'].values()):.1f} s; total {timings['total_s']:.1f} s.\n\n"
        + climate["report"] + "\n" + airfoil["report"])
    return report
