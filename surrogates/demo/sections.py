"""Further sections of ``surrogates demo``: climate emulation on ClimateBench-shaped data, and
mesh-morphing Gaussian-process regression (MMGP) on airfoils.

Each section runs into its own subfolder of the demo's report folder and returns a summary
(numbers, configurations, wall times) plus the Markdown it adds to ``report.md``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from surrogates.data.airfoil import AirfoilDataConfig, generate_airfoil_dataset
from surrogates.data.climatebench_synthetic import SyntheticClimateBenchConfig, generate_synthetic
from surrogates.models.climatebench import ClimateGPConfig
from surrogates.runs.climatebench import evaluate_run, train_emulator

#: Emulators of the climate section and their report labels.
CLIMATE_EMULATORS = {"pattern-scaling": "linear pattern scaling", "climate-gp": "PCA + GP"}


def climate_configs(quick: bool = False) -> tuple[SyntheticClimateBenchConfig, ClimateGPConfig]:
    """Synthetic data (16 x 24 grid, 2 members) and GP settings of the climate section."""
    data = SyntheticClimateBenchConfig(n_lat=8 if quick else 16, n_lon=12 if quick else 24,
                                       members=2, seed=0)
    gp = ClimateGPConfig(n_aerosol_pcs=3, n_output_pcs=3, iterations=20 if quick else 100,
                         train_stride=4 if quick else 2, seed=0)
    return data, gp


def run_climate_section(out: Path, *, quick: bool = False) -> dict[str, Any]:
    """Synthetic ClimateBench -> pattern scaling and a PCA + GP emulator -> the ClimateBench table.

    Writes ``climatebench/`` (the synthetic data, in ClimateBench's file layout) and one run
    folder per emulator (``climate-pattern-scaling/``, ``climate-climate-gp/``, each with
    ``evaluation/metrics.json``); returns the summary and the report text.
    """
    data_config, gp_config = climate_configs(quick)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data_dir = generate_synthetic(out / "climatebench", data_config)
    timings["generate_s"] = time.perf_counter() - started
    tables, uq = {}, {}
    for name in CLIMATE_EMULATORS:
        run = out / f"climate-{name}"
        started = time.perf_counter()
        train_emulator(name, data_dir, run, config=gp_config if name == "climate-gp" else None)
        timings[f"train_{name}_s"] = time.perf_counter() - started
        scores = evaluate_run(run)["experiments"]["ssp245"]
        tables[name] = scores["nrmse"]
        if "uq" in scores:
            uq[name] = scores["uq"]
    rows = "".join(
        f"| {CLIMATE_EMULATORS[name]} | {var} | {s['spatial']:.3f} | {s['global']:.3f} | "
        f"{s['total']:.3f} |\n" for name, table in tables.items() for var, s in table.items())
    gp_tas = uq.get("climate-gp", {}).get("tas", {})
    text = (
        f"## Climate emulation: PCA + GP tas total NRMSE {tables['climate-gp']['tas']['total']:.3f}"
        f" vs linear pattern scaling {tables['pattern-scaling']['tas']['total']:.3f}\n\n"
        f"Synthetic data in ClimateBench's layout (`climatebench/`, {data_config.n_lat} x "
        f"{data_config.n_lon} grid, {data_config.members} members per experiment; labelled "
        "synthetic: a two-layer energy-balance model driven by greenhouse-gas and aerosol "
        "forcing, fixed response patterns and correlated internal variability). Emulators "
        "trained on ssp126, ssp370, ssp585, historical, hist-GHG and hist-aer and scored on "
        "ssp245 (member mean, 2080-2100) with ClimateBench's latitude-weighted NRMSE (total = "
        "spatial + 5 x global; lower is better):\n\n"
        "| emulator | variable | spatial | global | total |\n|---|---|---:|---:|---:|\n" + rows
        + (f"\nThe GP's 90 % intervals for tas cover {gp_tas['coverage']:.0%} of the truth "
           f"(CRPS {gp_tas['crps']:.3f} K)." if gp_tas else "")
        + " Run folders: `climate-pattern-scaling/`, `climate-climate-gp/`; reliability and PIT "
        "plots: `climate-climate-gp/evaluation/uq_ssp245_*`.\n\n"
        "Next: `surrogates predict climate-climate-gp --out ssp245.nc` writes the GP's fields "
        "with their std; on real ClimateBench data: `surrogates train climate-gp --data DIR "
        "--out RUN`.\n")
    return {"data_config": dataclasses.asdict(data_config),
            "gp_config": dataclasses.asdict(gp_config), "nrmse": tables, "uq": uq,
            "timings": timings, "report": text}


def airfoil_configs(quick: bool = False) -> AirfoilDataConfig:
    """NACA 4-digit shapes x angles of attack (Mach up to 0.3) of the airfoil MMGP section;
    one Reynolds number (3e6), fully turbulent boundary layers (smooth drag, as in AirfRANS):
    a dozen shapes are too few to learn the drag's dependence on a varying Reynolds number."""
    return AirfoilDataConfig(family="naca4", n_shapes=4 if quick else 12,
                             conditions_per_shape=3, alpha_range=(-2.0, 8.0),
                             mach_range=(0.0, 0.3), reynolds_range=(3e6, 3e6),
                             n_panels=80 if quick else 120, growth=0.6 if quick else 0.4,
                             x_transition=0.0, seed=0)


def run_airfoil_section(out: Path, *, quick: bool = False) -> dict[str, Any]:
    """Airfoil meshes with panel-method fields -> MMGP (RBF morphing) -> scores with uncertainty.

    Writes ``airfoils/`` (one ``.vtu`` per sample and ``index.nc``) and the MMGP run ``mmgp/``
    (``evaluation/metrics.json``, ``calibration.png``, ``fields_cp.png``); whole shapes are held
    out for testing.
    """
    from surrogates.runs.airfoil import (
        MMGPRunConfig,
        evaluate_mmgp_run,
        metrics_table,
        train_mmgp,
    )

    data_config = airfoil_configs(quick)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data_dir = generate_airfoil_dataset(data_config, out / "airfoils", progress=False)
    timings["generate_s"] = time.perf_counter() - started
    run_config = MMGPRunConfig(data=str(data_dir), morpher="rbf", test_fraction=0.25,
                               restarts=2 if quick else 3, max_iter=50 if quick else 200)
    started = time.perf_counter()
    train_mmgp(run_config, out / "mmgp")
    timings["fit_s"] = time.perf_counter() - started
    started = time.perf_counter()
    result = evaluate_mmgp_run(out / "mmgp")
    timings["evaluate_s"] = time.perf_counter() - started
    lift = result["metrics"].get("cl", {})
    lift_uq = (result["uq"].get("cl", {}).get("raw") or {}).get("coverage", {})
    headline = (f"lift RRMSE {lift['rrmse']:.3f}, 90 % interval coverage "
                f"{lift_uq.get('0.9', float('nan')):.2f}" if lift else "")
    text = (
        f"## Airfoils (MMGP): {headline}\n\n"
        f"{data_config.n_shapes} NACA 4-digit shapes x {data_config.conditions_per_shape} angles "
        "of attack, each on its own Triangle mesh with the panel method's pressure field "
        "(`airfoils/`). MMGP morphs one training mesh onto every other (RBF), reduces the "
        "morphed coordinates and the cp fields by PCA and regresses lift, drag and the cp field "
        "on (shape modes, alpha, Mach; one Reynolds number) with Gaussian processes; a quarter of "
        f"the shapes are held out ({result['n_samples']} test samples). Scores with 95 % "
        "intervals:\n\n"
        + metrics_table(result["metrics"]) + "\n\n"
        "Plots: `mmgp/evaluation/calibration.png`, `mmgp/evaluation/fields_cp.png` (mean, error "
        "and standard deviation on the mesh), `mmgp/evaluation/uq_cl_reliability.png`.\n\n"
        "Next: `surrogates predict mmgp --mesh FILE.vtu --alpha 4 --mach 0.2 --reynolds 3e6 "
        "--out pred.vtu` predicts a new mesh with its uncertainty.\n")
    return {"data_config": dataclasses.asdict(data_config), "metrics": result["metrics"],
            "timings": timings, "report": text}
