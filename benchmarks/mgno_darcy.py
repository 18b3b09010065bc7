"""MgNO against our FNO and neuraloperator's FNO on Darcy flow (piecewise-constant permeability).

Rerun with::

    python benchmarks/mgno_darcy.py                       # about 30 min on one CPU core
    python benchmarks/mgno_darcy.py --n-train 1000 --epochs 100   # the issue's size (hours on CPU)
    python benchmarks/mgno_darcy.py --quick               # smoke run, about 2 min

Claim (He, Liu, Xu, ICLR 2024): parameterising each linear operator of a neural operator by a
multigrid V-cycle (MgNO) beats spectral operators on Darcy flow at fewer parameters. Goals of this
package: MgNO's relative L2 test error is at most half of the best FNO's at no more parameters,
and our FNO trains at least as fast per epoch as ``neuraloperator``'s at the same configuration.

Set-up, all in one run:

* Data: ``surrogates.data.darcy.generate_darcy`` (our multigrid-preconditioned CG solver), 64 x 64
  cells, a = 12 where a Gaussian random field with covariance (-Laplacian + 9 I)^-2 is >= 0, else
  3; f = 1; zero Dirichlet boundary. ``--n-train`` training fields (seed 0), ``--n-test`` test
  fields (seed 1), and ``--n-test`` fields of the same distribution on 128 x 128 cells (seed 1)
  for the zero-shot resolution test.
* Inputs are standardised with the training mean and standard deviation of ``a``; targets are
  divided by the training standard deviation of ``u`` (no shift), so relative errors are the same
  in training and physical units.
* Models: MgNO (``operators.mgno.MgNO``: 24 channels, 4 layers, 5 levels, one pre-smoothing per
  level, two at the coarsest, zero padding = Dirichlet); our FNO (``operators.fno.FNO``) and
  ``neuralop.models.FNO`` 2.0 with the same configuration (12 x 12 modes, 4 layers, grid
  embedding, domain padding 0.125, lifting/projection ratio 2, soft-gated channel MLP), their
  width chosen as the largest that keeps the parameter count at or below the MgNO's.
* Training, identical for all: relative H1 loss (the MgNO paper's; ``surrogates.training``),
  Adam with weight decay 1e-4, OneCycle with peak lr 1e-3, batch 8, ``--epochs`` epochs, torch on
  ``--threads`` threads. Test errors: relative L2 and H1 (means over fields), at 64 x 64 and
  zero-shot at 128 x 128. Seconds per epoch and inference milliseconds per field (batch 50,
  best of 3) are measured in this run.

Results go to ``benchmarks/results/mgno_darcy.json`` (``mgno_darcy_quick.json`` for smoke runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_utils import write_results  # noqa: E402

from operators import FNO, MgNO  # noqa: E402
from surrogates.data.common import PairDataset  # noqa: E402
from surrogates.data.darcy import DarcyDataConfig, generate_darcy  # noqa: E402
from surrogates.training import TrainConfig, fit, relative_h1, relative_l2  # noqa: E402

FNO_SHARED = {"n_modes": [12, 12], "n_layers": 4, "positional_embedding": "grid",
              "domain_padding": 0.125, "lifting_channel_ratio": 2,
              "projection_channel_ratio": 2, "channel_mlp_expansion": 0.5,
              "channel_mlp_skip": "soft-gating", "fno_skip": "linear"}


def library_fno(hidden: int) -> torch.nn.Module:
    """neuraloperator's FNO with the configuration of ours."""
    from neuralop.models import FNO as NeuralopFNO

    return NeuralopFNO(n_modes=(12, 12), in_channels=1, out_channels=1, hidden_channels=hidden,
                       n_layers=4, positional_embedding="grid", domain_padding=0.125,
                       lifting_channel_ratio=2, projection_channel_ratio=2,
                       channel_mlp_expansion=0.5, channel_mlp_skip="soft-gating",
                       fno_skip="linear")


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def data(n_samples: int, n: int, seed: int):
    ds = generate_darcy(DarcyDataConfig(n_samples=n_samples, n=n, seed=seed),
                        show_progress=False)
    return (torch.as_tensor(ds["a"].values, dtype=torch.float32)[:, None],
            torch.as_tensor(ds["u"].values, dtype=torch.float32)[:, None])


@torch.no_grad()
def test_errors(model, a, u, a_stats, u_scale) -> dict[str, float]:
    model.eval()
    pred = torch.cat([model((a[i:i + 50] - a_stats[0]) / a_stats[1]) * u_scale
                      for i in range(0, len(a), 50)])
    return {"relative_l2": float(relative_l2(pred, u)), "relative_h1": float(relative_h1(pred, u))}


@torch.no_grad()
def inference_ms(model, a) -> float:
    model.eval()
    batch = a[:50]
    model(batch)
    best = min(_timed(lambda: model(batch)) for _ in range(3))
    return 1e3 * best / len(batch)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (numbers are noise)")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_test, args.epochs = 48, 16, 2
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    a_train, u_train = data(args.n_train, 64, 0)
    a_test, u_test = data(args.n_test, 64, 1)
    a_fine, u_fine = data(args.n_test, 128, 1)
    data_seconds = time.perf_counter() - started
    a_stats = (a_train.mean(), a_train.std())
    u_scale = u_train.std()
    train = PairDataset((a_train - a_stats[0]) / a_stats[1], u_train / u_scale)
    print(f"data: {args.n_train} train / {args.n_test} test fields at 64^2 and {args.n_test} at "
          f"128^2 in {data_seconds:.0f} s", flush=True)

    torch.manual_seed(args.seed)
    mgno = MgNO(in_channels=1, out_channels=1)
    budget = mgno.n_parameters()
    hidden = max(h for h in range(8, 64) if FNO(in_channels=1, out_channels=1, hidden_channels=h,
                                                 **FNO_SHARED).n_parameters() <= budget)
    builders = {
        "MgNO": lambda: MgNO(in_channels=1, out_channels=1),
        "FNO (ours)": lambda: FNO(in_channels=1, out_channels=1, hidden_channels=hidden,
                                  **FNO_SHARED),
        "FNO (neuraloperator)": lambda: library_fno(hidden),
    }
    config = TrainConfig(epochs=args.epochs, batch_size=8, lr=1e-3, weight_decay=1e-4,
                         optimizer="adam", scheduler="onecycle", loss="relative_h1",
                         seed=args.seed, device="cpu", show_progress=False)
    rows = []
    for name, build in builders.items():
        torch.manual_seed(args.seed)
        model = build()
        result = fit(model, train, None, config)
        seconds = float(np.median([h["seconds"] for h in result.history]))
        row = {"model": name, "parameters": n_parameters(model), "seconds_per_epoch": seconds,
               "final_train_loss": result.history[-1]["train_loss"],
               "test_64": test_errors(model, a_test, u_test, a_stats, u_scale),
               "test_128_zero_shot": test_errors(model, a_fine, u_fine, a_stats, u_scale),
               "inference_ms_per_field": inference_ms(model, a_test)}
        rows.append(row)
        print(f"  {name}: {row['parameters']:,} parameters, {seconds:.1f} s/epoch, test rel L2 "
              f"{row['test_64']['relative_l2']:.4f}", flush=True)

    print("\n| model | params | s/epoch | rel L2 (64) | rel H1 (64) | rel L2 (128, zero-shot) | "
          "inference ms/field |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['parameters']:,} | {r['seconds_per_epoch']:.1f} | "
              f"{r['test_64']['relative_l2']:.4f} | {r['test_64']['relative_h1']:.4f} | "
              f"{r['test_128_zero_shot']['relative_l2']:.4f} | "
              f"{r['inference_ms_per_field']:.2f} |")
    by = {r["model"]: r for r in rows}
    best_fno = min(by["FNO (ours)"]["test_64"]["relative_l2"],
                   by["FNO (neuraloperator)"]["test_64"]["relative_l2"])
    ratio = by["MgNO"]["test_64"]["relative_l2"] / best_fno
    speed = by["FNO (neuraloperator)"]["seconds_per_epoch"] / by["FNO (ours)"]["seconds_per_epoch"]
    print(f"MgNO / best FNO relative L2: {ratio:.2f} ({'meets' if ratio <= 0.5 else 'MISSES'} "
          f"the <= 0.5 goal)")
    print(f"our FNO epoch is {speed:.2f}x as fast as neuraloperator's "
          f"({'meets' if speed >= 1 else 'MISSES'} the >= 1 goal)")
    suffix = "_quick" if args.quick else ""
    out = ROOT / "benchmarks" / "results" / f"mgno_darcy{suffix}.json"
    write_results({"n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs,
                "threads": args.threads, "seed": args.seed, "quick": args.quick,
                "fno_hidden_channels": hidden, "rows": rows, "mgno_over_best_fno_l2": ratio,
                "our_fno_speedup_vs_neuralop": speed, "data_seconds": data_seconds}, out,
                  torch=torch.__version__)


if __name__ == "__main__":
    main()
