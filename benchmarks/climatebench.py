"""ClimateBench table for every emulator: linear pattern scaling, the PCA + GP emulator and the FNO
ensemble.

Rerun with::

    python benchmarks/climatebench.py                 # synthetic data, 24 x 32 grid, minutes
    python benchmarks/climatebench.py --quick         # synthetic, 12 x 16 grid, smaller models
    python benchmarks/climatebench.py --data DIR      # real ClimateBench (96 x 144) in DIR

Claim checked: the package reproduces ClimateBench's evaluation (train on ssp126, ssp370,
ssp585, historical, hist-GHG, hist-aer; test on ssp245, member mean, 2080-2100; spatial, global
and total = spatial + 5 global NRMSE with cos(lat) weights) for three emulator families. By
default it runs on SYNTHETIC ClimateBench-shaped data from a toy two-layer energy-balance model
(``surrogates.data.climatebench.generate_synthetic``): those numbers are NOT comparable with the
published ones, which are printed for reference (tas total NRMSE on NorESM2-LM: pattern scaling
0.284 (Luetjens et al.), CNN-LSTM 0.327, random forest 0.400, GP 0.478). The FNO ensemble also
reports the mean CRPS and the coverage of its 90% ensemble interval; the GP its Gaussian ones.
Both also report the coverage of the 90 % and 95 % Gaussian intervals of
``predict(return_std=True)`` before and after their uncertainty fix (GP: the PCA truncation
residual variance; FNO ensemble: the target's internal variability sigma^2 / M). The GP also
reports a second fit with the earlier settings, ``optimizer="adam"`` and ``calibration="none"``:
its Adam steps stop before the marginal likelihood converges, and its intervals cover
0.98-0.99 at 90 % (quick run). The default fit uses L-BFGS and leave-one-experiment-out
amplitude calibration.
A climatology (mean training field) row gives the floor any emulator must beat.

Results go to ``benchmarks/results/climatebench.json`` (``..._quick.json``, ``..._real.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_utils import write_results  # noqa: E402

from surrogates.data.climatebench import (  # noqa: E402
    METRIC_YEARS,
    open_split,
)
from surrogates.data.climatebench_synthetic import (  # noqa: E402
    SyntheticClimateBenchConfig,
    generate_synthetic,
)
from surrogates.metrics import uq  # noqa: E402
from surrogates.metrics.climatebench import nrmse_scores  # noqa: E402
from surrogates.models.climatebench import (  # noqa: E402
    ClimateFNOConfig,
    ClimateGP,
    ClimateGPConfig,
    FNOEnsembleEmulator,
    PatternScaling,
)
from surrogates.runs.climatebench import climatology, format_table, score_emulator  # noqa: E402
from surrogates.training import TrainConfig  # noqa: E402

LEVELS = (0.9, 0.95)
#: the uncertainty fix of each emulator, switched off ("before") and on ("after")
FIXES = {"GP": "truncation_variance", "FNO ensemble": "internal_variability"}
#: fit settings of the GP before its convergence fix (refitted for the "before" row)
GP_BEFORE = {"optimizer": "adam", "calibration": "none"}


def gaussian_coverage(model, truth) -> dict[str, dict[str, float]]:
    """Per output variable, over the scored years 2080-2100 and every cell: coverage and mean
    width (output units) of the central 90 % and 95 % intervals of ``predict(truth,
    return_std=True)`` read as Gaussian, and the mean CRPS."""
    mean, std = model.predict(truth, return_std=True)
    years = slice(*METRIC_YEARS)
    out = {}
    for var in mean.data_vars:
        m = mean[var].sel(time=years).values
        s = np.maximum(std[var].sel(time=years).values, 1e-12)
        y = truth[var].sel(time=years)
        y = (y.mean("member") if "member" in y.dims else y).transpose(*mean[var].dims).values
        entry = {"crps": float(np.mean(uq.crps_gaussian(m, s, y)))}
        for level in LEVELS:
            lower, upper = uq.gaussian_interval(m, s, level=level)
            entry[f"coverage_{level:.0%}"] = uq.interval_coverage(lower, upper, y)
            entry[f"width_{level:.0%}"] = float(np.mean(upper - lower))
        out[var] = entry
    return out


PUBLISHED_TAS_TOTAL = {"pattern scaling (Luetjens et al.)": 0.284, "CNN-LSTM": 0.327,
                       "random forest": 0.400, "GP": 0.478}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="ClimateBench folder (default: generate synthetic data)")
    parser.add_argument("--quick", action="store_true", help="small grid and models")
    parser.add_argument("--members", type=int, help="FNO ensemble members [5; quick 3]")
    parser.add_argument("--epochs", type=int, help="FNO epochs [40; quick 20]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quick = args.quick
    members = args.members or (3 if quick else 5)
    epochs = args.epochs or (20 if quick else 40)

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        synthetic = None
        if data is None:
            synthetic = SyntheticClimateBenchConfig(n_lat=12 if quick else 24,
                                                    n_lon=16 if quick else 32, members=3,
                                                    seed=args.seed)
            data = generate_synthetic(Path(tmp) / "data", synthetic)
            print(f"SYNTHETIC data ({synthetic.n_lat} x {synthetic.n_lon}, toy energy-balance "
                  "model): numbers are not comparable with published ClimateBench scores")
        split = open_split(data)
        truth = split.test["ssp245"]
        table, uq_scores, gaussian, seconds = {}, {}, {}, {}
        table["climatology"] = nrmse_scores(truth, climatology(split.train, truth))

        gp_config = ClimateGPConfig(train_stride=3 if quick else 2,
                                    iterations=60 if quick else 150, seed=args.seed)
        fno_config = ClimateFNOConfig(members=members, seed=args.seed,
                                      hidden_channels=16 if quick else 24)
        train_config = TrainConfig(epochs=epochs, batch_size=16, lr=2e-3, loss="mse",
                                   show_progress=False, device="cpu", seed=args.seed)
        emulators = {"pattern scaling": lambda: PatternScaling().fit(split.train),
                     "GP": lambda: ClimateGP(gp_config).fit(split.train),
                     "FNO ensemble": lambda: FNOEnsembleEmulator(fno_config, train_config).fit(
                         split.train, Path(tmp) / "fno")}
        for name, make in emulators.items():
            started = time.perf_counter()
            model = make()
            seconds[name] = time.perf_counter() - started
            scores = score_emulator(model, {"ssp245": truth})["ssp245"]
            table[name] = scores["nrmse"]
            if "uq" in scores:
                uq_scores[name] = scores["uq"]
                gaussian[name] = {}
                for on in (False, True):  # the same fitted model, before and after the fix
                    model.config = dataclasses.replace(model.config, **{FIXES[name]: on})
                    gaussian[name][f"{FIXES[name]}={on}"] = gaussian_coverage(model, truth)
            if name == "GP":  # the fit settings before the convergence fix, refitted
                started = time.perf_counter()
                before = ClimateGP(dataclasses.replace(gp_config, **GP_BEFORE)).fit(split.train)
                seconds["GP before fix"] = time.perf_counter() - started
                label = ",".join(f"{k}={v}" for k, v in GP_BEFORE.items())
                gaussian[name][label] = gaussian_coverage(before, truth)
                table["GP before fix"] = score_emulator(
                    before, {"ssp245": truth})["ssp245"]["nrmse"]
            print(f"{name}: fitted in {seconds[name]:.1f} s")

    print()
    print("ClimateBench table (ssp245, member mean, 2080-2100)"
          + (" on SYNTHETIC data" if synthetic else ""))
    print(format_table(table))
    print()
    for name, scores in uq_scores.items():
        for var, s in scores.items():
            print(f"{name:<14}{var:<27} CRPS {s['crps']:.4f}  {s['level']:.0%} coverage "
                  f"{s['coverage']:.3f}")
    print()
    print("Gaussian intervals of predict(return_std=True), 2080-2100, every cell, before and "
          "after each emulator's fix:")
    for name, variants in gaussian.items():
        for variant, scores in variants.items():
            for var, s in scores.items():
                print(f"{name:<14}{variant:<35}{var:<27} coverage 90 % {s['coverage_90%']:.3f} "
                      f"(width {s['width_90%']:.3g})  95 % {s['coverage_95%']:.3f} "
                      f"(width {s['width_95%']:.3g})  CRPS {s['crps']:.4f}")
    print()
    print("published tas total NRMSE on real ClimateBench (reference only):")
    for name, value in PUBLISHED_TAS_TOTAL.items():
        print(f"  {name:<36}{value:.3f}")
    suffix = "_real" if args.data else ("_quick" if quick else "")
    write_results({
        "data": "real ClimateBench" if args.data else "synthetic (toy energy-balance model)",
        "synthetic_config": dataclasses.asdict(synthetic) if synthetic else None,
        "gp_config": dataclasses.asdict(gp_config), "fno_config": dataclasses.asdict(fno_config),
        "fno_train_config": dataclasses.asdict(train_config), "nrmse": table, "uq": uq_scores,
        "gaussian_intervals": gaussian,
        "fit_seconds": seconds, "published_tas_total": PUBLISHED_TAS_TOTAL},
        ROOT / "benchmarks" / "results" / f"climatebench{suffix}.json",
        threads=args.threads)


if __name__ == "__main__":
    main()
