"""DeepONet for room acoustics: our DeepONet against DeepXDE's, and against the FDTD solver.

Rerun with::

    python benchmarks/deeponet_acoustics.py            # about 40 min on one CPU core
    python benchmarks/deeponet_acoustics.py --quick    # smoke run, about 2 min

Claim (Borrel-Jensen et al., PNAS 2024): a DeepONet predicts the sound field of a Gaussian pulse
released anywhere in a room with field errors of 0.02 to 0.10 Pa RMSE, in milliseconds. Goals of
this package: held-out RMSE within that band for a 1 Pa pulse in the 2D room; a full field
predicted at least 100x faster than the solver computes it; at least as accurate as DeepXDE's
DeepONet at the same budget.

Set-up, all in one run, per room:

* Data: ``surrogates.data.acoustics_generate.generate_wave_dataset`` (our FDTD solver, order 4
  in space, float64), absorption 0.1 on every wall, Gaussian pulse sigma 0.2 m, 1 Pa peak,
  source positions
  uniform at least 0.4 m (2D) / 0.3 m (3D) from the walls. 2D: 2 m x 2 m, h = 5 cm (41 x 41
  nodes), 41 frames over 10 ms (3.4 m of travel: several reflections), ``--n-sources`` sources.
  3D: 1 m cube, h = 5 cm (21^3 nodes), 21 frames over 5 ms. Split 80/10/10 by a seeded
  permutation; errors are over the whole space-time field of the test sources.
* Ours: ``operators.deeponet.DeepONet`` with this package's defaults
  (``surrogates.runs.acoustics.default_deeponet_config``: modified MLPs, tanh, 3 x 128, p = 100,
  2 trunk Fourier frequencies, inputs rescaled to [-1, 1]), branch input the pulse on 7 sensors
  per axis. ``surrogates.training.fit``: Adam, lr 1e-3 with cosine decay, batches of 8 sources x
  2000 random space-time points redrawn every epoch, MSE in Pa^2, ``--epochs`` epochs.
* DeepXDE (``deepxde`` 1.x, PyTorch backend): ``DeepONetCartesianProd`` with the same branch and
  trunk widths and p, tanh, Glorot normal, the same inputs rescaled to [-1, 1] by us, Adam
  lr 1e-3 with cosine decay over the same number of steps, batches of 8 sources x 2000 points
  (``TripleCartesianProd``; its (sources, points) batch indexing is fixed in a subclass here),
  MSE: the same number of gradient steps and points.
* Timing (``surrogates.runs.acoustics.evaluate_deeponet_run``; best of 3, compilation and warm-up
  excluded, all test sources in one call, torch on ``--threads`` threads): a whole space-time
  field by the DeepONet (trunk and branch), by the DeepONet with the trunk basis of the grid
  computed beforehand (it does not depend on the source), and by the solver; and the receivers'
  time series alone by the DeepONet.

Results go to ``benchmarks/results/deeponet_acoustics.json`` (``..._quick.json`` for smoke runs).
"""

from __future__ import annotations

import argparse
import math
import os
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

from surrogates.data.acoustics import open_acoustic, trunk_grid  # noqa: E402
from surrogates.data.acoustics_generate import WaveDataConfig, generate_wave_dataset  # noqa: E402
from surrogates.metrics.acoustics import field_errors  # noqa: E402
from surrogates.runs.acoustics import (  # noqa: E402
    DeepONetDataSpec,
    evaluate_deeponet_run,
    train_deeponet,
)
from surrogates.training import TrainConfig  # noqa: E402

ROOMS = {
    "2D room": {"dim": 2},
    "3D room": {"dim": 3, "source_margin": 0.3, "n_times": 21},
}
BATCH_SOURCES, POINTS = 8, 2000


def deepxde_deeponet(ds, spec: DeepONetDataSpec, split: dict, steps: int, seed: int) -> dict:
    """DeepXDE's DeepONetCartesianProd on the same data, split, widths and number of steps."""
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde as dde

    dde.config.set_random_seed(seed)
    sensors = spec.sensors(ds)
    data_all = spec.torch(ds, np.arange(ds.sizes["sample"]), seed=0)
    branch = data_all.branch.numpy().astype(np.float32)
    trunk = trunk_grid(ds).astype(np.float32)
    lo, hi = trunk.min(0), trunk.max(0)
    trunk = (2 * (trunk - lo) / (hi - lo) - 1).astype(np.float32)
    pressure = data_all.pressure.numpy().astype(np.float32)
    train, test = split["train"], split["test"]
    class CartesianBatches(dde.data.TripleCartesianProd):
        """DeepXDE 1.15 indexes ``y[branch_idx, trunk_idx]`` for a (sources, points) batch, which
        fails unless both counts are equal; the sub-grid ``y[np.ix_(...)]`` is meant."""

        def train_next_batch(self, batch_size=None):
            i = self.branch_sampler.get_next(batch_size[0])
            j = self.trunk_sampler.get_next(batch_size[1])
            return (self.train_x[0][i], self.train_x[1][j]), self.train_y[np.ix_(i, j)]

    data = CartesianBatches(X_train=(branch[train], trunk), y_train=pressure[train],
                            X_test=(branch[test], trunk), y_test=pressure[test])
    width, p = [128] * 3, 100
    net = dde.nn.DeepONetCartesianProd([branch.shape[1], *width, p], [trunk.shape[1], *width, p],
                                       "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3, decay=("cosine", steps, 0.0))
    started = time.perf_counter()
    model.train(iterations=steps, batch_size=(BATCH_SOURCES, POINTS), display_every=steps,
                verbose=0)
    wall = time.perf_counter() - started
    pred = model.predict((branch[test], trunk))
    errors = field_errors(pred, pressure[test])
    n_params = sum(v.numel() for v in net.parameters())
    return {"rmse_pa": errors["rmse_mean"], "rel_l2": errors["rel_l2_mean"], "train_s": wall,
            "n_parameters": int(n_params), "n_sensors": int(len(sensors)), "steps": steps,
            "version": dde.__version__}


def run_room(name: str, overrides: dict, args, folder: Path) -> dict:
    config = WaveDataConfig(n_sources=args.n_sources, seed=args.seed, **overrides)
    if args.quick:
        config = WaveDataConfig(**{**config.__dict__, "spacing": 0.1, "n_times": 11})
    path = generate_wave_dataset(config, folder / f"{config.dim}d.nc", progress=False)
    ds = open_acoustic(path)
    print(f"{name}: {config.n_sources} sources on {ds['pressure'].shape[2:]} nodes x "
          f"{config.n_times} frames in {ds.attrs['solver_wall_time_s']:.1f} s", flush=True)
    spec = DeepONetDataSpec(str(path), points_per_sample=POINTS)
    train_config = TrainConfig(epochs=args.epochs, batch_size=BATCH_SOURCES, lr=1e-3,
                               loss="mse", seed=args.seed, show_progress=False)
    started = time.perf_counter()
    train_deeponet(spec, folder / f"run{config.dim}d", train_config=train_config)
    ours_train = time.perf_counter() - started
    ours = evaluate_deeponet_run(folder / f"run{config.dim}d", device="cpu")
    split = spec.split(ds)
    steps = args.epochs * math.ceil(len(split["train"]) / BATCH_SOURCES)
    row = {"room": name, "config": config.__dict__, "n_test": int(len(split["test"])),
           "ours": {"rmse_pa": ours["field"]["rmse_pa"], "rel_l2": ours["field"]["rel_l2"],
                    "receiver_rmse_pa": ours.get("receivers", {}).get("rmse_pa"),
                    "train_s": ours_train, "n_parameters": ours["n_parameters"],
                    "steps": steps, **ours["timing"]}}
    print(f"  ours: RMSE {row['ours']['rmse_pa']:.4f} Pa, rel. L2 {row['ours']['rel_l2']:.3f}, "
          f"{ours_train:.0f} s", flush=True)
    try:
        row["deepxde"] = deepxde_deeponet(ds, spec, split, steps, args.seed)
        print(f"  DeepXDE: RMSE {row['deepxde']['rmse_pa']:.4f} Pa, rel. L2 "
              f"{row['deepxde']['rel_l2']:.3f}, {row['deepxde']['train_s']:.0f} s", flush=True)
    except ImportError:
        print("  DeepXDE is not installed (pip install -e '.[peers]'): no outside reference")
        row["deepxde"] = None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-sources", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=sorted(ROOMS), help="one room only")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (numbers are noise)")
    args = parser.parse_args()
    if args.quick:
        args.n_sources, args.epochs = 20, 3
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in ROOMS.items():
            if args.only in (None, name):
                rows.append(run_room(name, overrides, args, Path(tmp)))

    print(f"\n{args.n_sources} sources (80/10/10 split), {args.epochs} epochs, one CPU "
          f"thread\n| room | model | parameters | train s | field RMSE Pa | rel. L2 | "
          "ms per field | ms per field, cached trunk | solver ms per field | speedup | "
          "speedup, cached | receivers only: speedup |\n|---|---|---:|---:|---:|---:|---:|---:|"
          "---:|---:|---:|---:|")
    for r in rows:
        o = r["ours"]
        print(f"| {r['room']} | ours | {o['n_parameters']} | {o['train_s']:.0f} | "
              f"{o['rmse_pa']:.4f} | {o['rel_l2']:.3f} | {1e3 * o['deeponet_s_per_field']:.2f} | "
              f"{1e3 * o['deeponet_cached_s_per_field']:.3f} | "
              f"{1e3 * o['solver_s_per_field']:.2f} | {o['speedup']:.2f}x | "
              f"{o['speedup_cached']:.1f}x | {o.get('speedup_receivers', float('nan')):.0f}x |")
        if r["deepxde"]:
            x = r["deepxde"]
            print(f"| {r['room']} | DeepXDE {x['version']} | {x['n_parameters']} | "
                  f"{x['train_s']:.0f} | {x['rmse_pa']:.4f} | {x['rel_l2']:.3f} | - | - | - | - "
                  "| - | - |")
    suffix = "_quick" if args.quick else ""
    write_results({"n_sources": args.n_sources, "epochs": args.epochs, "seed": args.seed,
                   "threads": args.threads, "rows": rows, "quick": args.quick},
                  ROOT / "benchmarks" / "results" / f"deeponet_acoustics{suffix}.json")


if __name__ == "__main__":
    main()
