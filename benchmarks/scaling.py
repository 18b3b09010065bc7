"""Scale-out: DDP training throughput on 1 and 2 CPU processes, and streaming a shard set
larger than a memory cap against loading it.

Rerun with::

    python benchmarks/scaling.py            # 256 MB of shards, cap 200 MB, 3 epochs (~3 min)
    python benchmarks/scaling.py --quick    # 64 MB of shards, cap 48 MB, 2 epochs (~1 min)
    python benchmarks/scaling.py --memory-cap 500 --epochs 5

What is measured:

(a) Training throughput (training examples per second, epoch time from ``history.json``, so
    process start-up and data loading are excluded) of ``surrogates train fno`` on a Darcy
    dataset (``surrogates generate darcy``, 32 x 32 cells), launched with
    ``python -m torch.distributed.run --standalone --nproc-per-node P`` for P = 1 and 2 (gloo
    on CPU, one intra-op thread per process, the same global batch). With P = 2 both
    processes share this machine's cores, so the speed-up is bounded by the free cores (2 on
    the reference machine, shared with other work). The final training losses of the two runs
    are reported: they agree to float32 round-off (the global batches are the same).
(b) Streaming: shards of float32 fields (``a``, ``u`` over sample, y, x; 64 x 64) totalling
    more than ``--memory-cap`` MB are written, then read once in a fresh process for each
    loader: ``in-memory`` (open, ``load()``, ``to_torch`` and one pass of a DataLoader),
    ``lazy`` (``open_dataset`` of the shard set + ``to_torch_lazy`` with streaming
    normalisers + one pass, in file order; so the data are read twice) and
    ``lazy-shuffled`` (random batches). Reported:
    MB/s of field data delivered to torch and the peak resident memory of the process
    (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes the ~0.5 GB of the
    imported libraries, so the baseline row ``imports only`` is given too).

Results go to ``benchmarks/results/scaling.json`` (``--quick``: ``scaling_quick.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_utils import write_results  # noqa: E402

FIELD_N = 64  # cells a side of the streamed fields


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n"
                           f"{done.stderr[-4000:]}")
    return done.stdout


def training_throughput(folder: Path, n_samples: int, epochs: int) -> list[dict]:
    from surrogates.data.common import split_samples

    data = folder / "darcy.nc"
    _run([sys.executable, "-m", "surrogates.cli", "generate", "darcy", "--out", str(data),
          "--n-samples", str(n_samples), "--n", "32", "--tol", "1e-6"])
    rows = []
    for nproc in (1, 2):
        run = folder / f"run-{nproc}"
        started = time.perf_counter()
        _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
              f"--nproc-per-node={nproc}", "-m", "surrogates.cli", "train", "fno",
              "--data", str(data), "--out", str(run), "--inputs", "a", "--targets", "u",
              "--spatial-dims", "y,x", "--modes", "8", "--width", "16", "--layers", "2",
              "--epochs", str(epochs), "--batch-size", "32", "--device", "cpu"])
        wall = time.perf_counter() - started
        history = json.loads((run / "history.json").read_text())
        n_train = len(split_samples(n_samples)["train"])  # the default 0.8/0.1/0.1 split
        seconds = sum(h["seconds"] for h in history)
        rows.append({"processes": nproc, "epochs": len(history), "train_examples": n_train,
                     "epoch_seconds": seconds / len(history),
                     "samples_per_s": n_train * len(history) / seconds,
                     "wall_s_with_startup": wall,
                     "final_train_loss": history[-1]["train_loss"],
                     "final_validation_loss": history[-1]["validation_loss"]})
    return rows


def write_shards(folder: Path, total_mb: float, n_shards: int) -> tuple[list[Path], float]:
    import numpy as np
    import xarray as xr

    from surrogates.data.common import write_netcdf
    from surrogates.data.shards import shard_path, shard_samples

    per_sample = 2 * FIELD_N * FIELD_N * 4
    n_samples = int(total_mb * 2**20 // per_sample) + 1
    paths = []
    for index in range(n_shards):
        block = shard_samples(n_samples, index, n_shards)
        rng = np.random.default_rng([0, index])
        a = rng.standard_normal((len(block), FIELD_N, FIELD_N), dtype=np.float32)
        ds = xr.Dataset({"a": (("sample", "y", "x"), a),
                         "u": (("sample", "y", "x"), (0.5 * a + 1).astype(np.float32))},
                        coords={"sample": np.arange(block.start, block.stop)})
        for name in ds.data_vars:
            ds[name].attrs["units"] = "1"
        ds.attrs["config"] = json.dumps({"n_samples": n_samples})
        paths.append(write_netcdf(ds, shard_path(folder / "fields.nc", index, n_shards),
                                  complevel=1))
    return paths, n_samples * per_sample / 2**20


def stream_worker(mode: str, out: str) -> None:
    """One loader in this (fresh) process: print MB/s and peak RSS as JSON."""
    import torch

    from surrogates.data.common import to_torch
    from surrogates.data.shards import open_dataset
    from surrogates.data.streaming import to_torch_lazy

    kwargs = dict(inputs=["a"], targets=["u"], spatial_dims=["y", "x"],
                  fractions=(1.0, 0.0, 0.0))
    started = time.perf_counter()
    n_bytes = 0
    if mode != "imports":
        ds = open_dataset(out)
        if mode == "in-memory":
            splits = to_torch(ds.load(), **kwargs)
        else:
            splits = to_torch_lazy(ds, **kwargs)
        loader = torch.utils.data.DataLoader(splits.train, batch_size=256,
                                             shuffle=mode == "lazy-shuffled")
        for x, y in loader:
            n_bytes += x.numel() * x.element_size() + y.numel() * y.element_size()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({"loader": mode, "seconds": seconds, "mb": n_bytes / 2**20,
                      "mb_per_s": n_bytes / 2**20 / seconds if n_bytes else None,
                      "peak_rss_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory-cap", type=float, help="MB the shard set must exceed "
                        "[200; quick 48].")
    parser.add_argument("--epochs", type=int, help="Training epochs [3; quick 2].")
    parser.add_argument("--_stream-worker", nargs=2, dest="worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        stream_worker(*args.worker)
        return
    cap = args.memory_cap or (48.0 if args.quick else 200.0)
    epochs = args.epochs or (2 if args.quick else 3)
    n_train_samples = 160 if args.quick else 480
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        training = training_throughput(folder, n_train_samples, epochs)
        paths, total = write_shards(folder, 1.25 * cap, 4 if args.quick else 8)
        streaming = []
        for mode in ("imports", "in-memory", "lazy", "lazy-shuffled"):
            out = _run([sys.executable, str(Path(__file__).resolve()), "--_stream-worker",
                        mode, str(folder / "fields.nc")])
            streaming.append(json.loads(out.strip().splitlines()[-1]))
    print(f"\n(a) DDP training throughput, FNO on {n_train_samples} Darcy fields 32x32, "
          f"global batch 32, CPU/gloo, {epochs} epochs")
    print(f"{'processes':>9} {'samples/s':>10} {'epoch s':>8} {'wall s':>7} "
          f"{'final train loss':>17}")
    for r in training:
        print(f"{r['processes']:>9} {r['samples_per_s']:>10.1f} {r['epoch_seconds']:>8.2f} "
              f"{r['wall_s_with_startup']:>7.1f} {r['final_train_loss']:>17.6e}")
    print(f"\n(b) Streaming {total:.0f} MB in {len(paths)} shards (memory cap {cap:.0f} MB)")
    print(f"{'loader':>14} {'MB/s':>8} {'seconds':>8} {'peak RSS MB':>12}")
    for r in streaming:
        rate = "-" if r["mb_per_s"] is None else f"{r['mb_per_s']:.1f}"
        print(f"{r['loader']:>14} {rate:>8} {r['seconds']:>8.1f} {r['peak_rss_mb']:>12.0f}")
    result = {"training": training, "streaming": streaming, "memory_cap_mb": cap,
              "dataset_mb": total, "n_shards": len(paths), "quick": args.quick}
    name = "scaling_quick.json" if args.quick else "scaling.json"
    write_results(result, ROOT / "benchmarks" / "results" / name)


if __name__ == "__main__":
    main()
