"""Every reference solver and the FNO / MgNO / DeepONet training steps on whatever accelerator
JAX and torch see, against the device's measured bandwidth and against ``neuraloperator``.

Rerun with::

    python benchmarks/gpu.py                 # "full" sizes (meant for one GPU)
    python benchmarks/gpu.py --size small    # a few seconds per row on a GPU, minutes on a CPU
    python benchmarks/gpu.py --size tiny     # the test's size (runs on a CPU in seconds)

The script runs unchanged on a CPU (JAX's default backend and torch's ``cuda`` if available,
else ``cpu``); the device it used is printed and written to the JSON.

What is measured, all in one run:

(a) The device's bandwidth roofline: the copy and the triad of ``benchmarks/roofline.py``
    (``x <- -x``, 2 words; ``x <- b + s x``, 3 words; looped inside one compiled call) on
    the first JAX device, at each solver's working set and in device memory (512 MiB).
(b) Solvers, float32 and float64, through their public functions (so the host transfer of
    the results is included, as a user sees it), compiled once before timing: FDTD wave 2D
    and 3D (``wave.simulate``, order 2, rigid walls, receivers only), Burgers
    (``pde1d.solve_burgers``), Darcy (``darcy.solve_darcy``, multigrid PCG; cell updates
    counted as fields x cells x PCG iterations), Lorenz-96 (``lorenz96.solve``, a cell = one
    of the K (1 + J) variables). Reported: cell updates per second, the bytes they imply
    (``roofline.solver_model``) and the fraction of the device limit at the same working set.
(c) Training, float32: one step (forward, loss, backward, Adam) of our ``FNO`` and of
    ``neuralop.models.FNO`` with the same configuration (``mgno_darcy.py``'s), ``MgNO`` and
    ``DeepONet`` on random Darcy-sized batches; samples per second, and our FNO against
    neuraloperator's (the issue's goal: >= 1.5x per epoch on one H100). neuraloperator is
    the ``peers`` extra; without it that row is skipped and said so.

Goals on one H100 (issue 21): 3D FDTD >= 2e11 cell updates/s in float32 (the roofline is
about 2.8e11), FNO training >= 1.5x neuraloperator. Results go to
``benchmarks/results/gpu_<backend>[_<size>].json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import jax
import numpy as np
import torch
from bench_utils import best_time, write_results
from roofline import IN_MEMORY_BYTES, measure_stream, roofline_fraction, solver_model

from operators.deeponet import DeepONet
from operators.fno import FNO
from operators.mgno import MgNO
from surrogates.solvers import darcy, lorenz96, pde1d, wave

RESULTS = Path(__file__).resolve().parent / "results"

#: Problem sizes per preset: wave 2D side / 3D side (nodes), sources; Burgers cells, batch,
#: t_end; Darcy n, fields; Lorenz-96 batch, steps; training grid, batch, width, DeepONet points;
#: the working set of the in-memory copy (the tiny preset's fits a cache: it only tests the path).
SIZES = {
    "tiny": dict(wave2=33, wave3=12, sources=2, wave_steps=10, N=64, pde_batch=4, t_end=0.02,
                 darcy_n=16, darcy_batch=2, l96_batch=4, l96_steps=20, grid=16, batch=2,
                 width=8, points=64, train_steps=2, memory_bytes=8 * 2**20),
    "small": dict(wave2=201, wave3=48, sources=4, wave_steps=100, N=256, pde_batch=128,
                  t_end=0.2, darcy_n=64, darcy_batch=64, l96_batch=256, l96_steps=200,
                  grid=64, batch=16, width=32, points=2048, train_steps=5,
                  memory_bytes=IN_MEMORY_BYTES),
    "full": dict(wave2=1001, wave3=256, sources=8, wave_steps=500, N=1024, pde_batch=4096,
                 t_end=0.5, darcy_n=256, darcy_batch=256, l96_batch=16384, l96_steps=1000,
                 grid=128, batch=64, width=64, points=16384, train_steps=20,
                 memory_bytes=IN_MEMORY_BYTES),
}
H = 0.05  # wave grid spacing, m


def _sync_torch(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_limit(working_set: int, dtype: str, device, cache: dict) -> float:
    """Faster of copy and triad on ``device`` at ``working_set`` bytes (GB/s), memoised."""
    key = (working_set, dtype)
    if key not in cache:
        rows = [measure_stream(k, working_set, dtype, devices=[device], min_seconds=0.02,
                               repeats=2) for k in ("copy", "triad")]
        cache[key] = max(r.gb_per_s for r in rows)
    return cache[key]


def solver_rows(cfg: dict, repeats: int, device) -> list[dict]:
    """Time every solver in float32 and float64 (see the module docstring, (b))."""
    rng = np.random.default_rng(0)
    limits: dict = {}
    rows = []

    def wave_case(dim):
        side = cfg["wave2"] if dim == 2 else cfg["wave3"]
        room = wave.Room(((side - 1) * H,) * dim, H)
        cfl = 0.9 / np.sqrt(dim)
        interval = cfl * H / room.c * 5
        times = np.arange(cfg["wave_steps"] // 5 + 1) * interval
        size = np.array(room.size)
        srcs = 0.3 * size + 0.4 * size * rng.random((cfg["sources"], dim))
        recs = 0.3 * size + 0.4 * size * rng.random((3, dim))

        def run(dtype):
            return wave.simulate(room, srcs, times, cfl=cfl, receivers=recs, save_field=False,
                                 dtype=dtype)

        cells = cfg["sources"] * int(np.prod(room.shape))
        return (f"wave {dim}D {room.shape}", run, cells, cells * 5 * (len(times) - 1),
                solver_model("wave", dim=dim))

    def burgers_case():
        u0 = pde1d.random_initial_condition(cfg["pde_batch"], cfg["N"], seed=0)
        t_out = np.linspace(0.0, cfg["t_end"], 11)

        def run(dtype):
            return pde1d.solve_burgers(u0, 0.01, t_out, dtype=dtype)

        steps = run("float64").n_substeps * (len(t_out) - 1)
        cells = cfg["pde_batch"] * cfg["N"]
        return (f"burgers N={cfg['N']} B={cfg['pde_batch']}", run, cells, cells * steps,
                solver_model("burgers"))

    def darcy_case():
        a = darcy.piecewise_constant_coefficient(cfg["darcy_batch"], cfg["darcy_n"], seed=0)

        def run(dtype):
            return darcy.solve_darcy(a, dtype=dtype)

        cells = cfg["darcy_batch"] * cfg["darcy_n"] ** 2
        return (f"darcy n={cfg['darcy_n']} B={cfg['darcy_batch']}", run, cells, None,
                solver_model("darcy_smoother"))

    def lorenz_case():
        s0 = lorenz96.random_initial_state(cfg["l96_batch"], 36, 10, seed=0)
        start = lorenz96.solve(s0, dt=0.0025, n_steps=1, spinup_steps=40).final_state

        def run(dtype):
            return lorenz96.solve(start, dt=0.005, n_steps=cfg["l96_steps"], save_every=10,
                                  dtype=dtype)

        cells = cfg["l96_batch"] * 36 * 11
        return (f"lorenz96 B={cfg['l96_batch']}", run, cells, cells * cfg["l96_steps"],
                solver_model("lorenz96"))

    for name, run, cells, updates, model in (wave_case(2), wave_case(3), burgers_case(),
                                             darcy_case(), lorenz_case()):
        for dtype in ("float32", "float64"):
            out = run(dtype)  # compiles
            best, times, out = best_time(lambda run=run, dtype=dtype: run(dtype), repeats)
            n_upd = updates
            if n_upd is None:  # Darcy: one V-cycle-preconditioned iteration per cell
                n_upd = cells * float(np.max(out.iterations))
            limit = device_limit(model.working_set(cells, dtype), dtype, device, limits)
            roof = roofline_fraction(n_upd / best, model, dtype, limit)
            rows.append({"solver": name, "dtype": dtype, "seconds": best, "all_seconds": times,
                         "cell_updates_per_s": n_upd / best, "model": asdict(model), **roof})
            print(f"  {name} {dtype}: {n_upd / best:.3g} cell updates/s, "
                  f"{roof['gb_per_s']:.1f} GB/s = {100 * roof['fraction_of_limit']:.0f}% of "
                  f"{limit:.0f} GB/s", flush=True)
    return rows


def train_rows(cfg: dict, repeats: int, device: torch.device) -> list[dict]:
    """Samples per second of one training step of each model (module docstring, (c))."""
    g, bs, w = cfg["grid"], cfg["batch"], cfg["width"]
    torch.manual_seed(0)
    a = torch.randn(bs, 1, g, g, device=device)
    u = torch.randn(bs, 1, g, g, device=device)
    modes = (min(12, g // 2), min(12, g // 2))
    fno_kw = dict(in_channels=1, out_channels=1, n_modes=modes, hidden_channels=w, n_layers=4,
                  positional_embedding="grid", domain_padding=0.125, lifting_channel_ratio=2,
                  projection_channel_ratio=2, channel_mlp_expansion=0.5,
                  channel_mlp_skip="soft-gating", fno_skip="linear")
    models = {"FNO (ours)": (lambda: FNO(**fno_kw), lambda m: m(a), u)}
    try:
        from neuralop.models import FNO as NeuralopFNO
    except ImportError:
        print("  neuraloperator is not installed (pip install '.[peers]'): no peer row",
              flush=True)
    else:
        models["FNO (neuraloperator)"] = (lambda: NeuralopFNO(**fno_kw), lambda m: m(a), u)
    levels = max(1, min(5, int(np.log2(g)) - 2))
    models["MgNO"] = (lambda: MgNO(in_channels=1, out_channels=1, hidden_channels=max(8, w // 2),
                                   levels=levels), lambda m: m(a), u)
    n_pts = cfg["points"]
    branch = torch.randn(bs, 64, device=device)
    trunk = torch.rand(bs, n_pts, 4, device=device)
    target = torch.randn(bs, n_pts, device=device)
    models["DeepONet"] = (lambda: DeepONet(branch_in=64, trunk_in=4, branch_hidden=(w * 4,) * 3,
                                           trunk_hidden=(w * 4,) * 3),
                          lambda m: m(branch, trunk), target)
    rows = []
    for name, (make, forward, y) in models.items():
        model = make().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(model=model, opt=opt, forward=forward, y=y):
            for _ in range(cfg["train_steps"]):
                opt.zero_grad(set_to_none=True)
                loss = torch.mean((forward(model) - y) ** 2)
                loss.backward()
                opt.step()
            _sync_torch(device)

        step()  # warm-up (allocator, cuDNN / cuFFT plans)
        best, times, _ = best_time(step, repeats)
        sps = bs * cfg["train_steps"] / best
        rows.append({"model": name, "batch": bs, "steps": cfg["train_steps"], "seconds": best,
                     "all_seconds": times, "samples_per_s": sps})
        print(f"  train {name}: {sps:,.1f} samples/s", flush=True)
    peer = {r["model"]: r["samples_per_s"] for r in rows}
    if "FNO (neuraloperator)" in peer:
        for r in rows:
            if r["model"].startswith("FNO"):
                r["ratio_vs_neuraloperator"] = r["samples_per_s"] / peer["FNO (neuraloperator)"]
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full", help="preset (default full)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, best kept")
    ap.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    jdev = jax.devices()[0]
    tdev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = jax.default_backend()
    out = args.out or RESULTS / (f"gpu_{backend}.json" if args.size == "full"
                                 else f"gpu_{backend}_{args.size}.json")
    print(f"JAX device: {jdev.device_kind} ({backend}); torch device: {tdev}"
          + (f" ({torch.cuda.get_device_name(tdev)})" if tdev.type == "cuda" else "")
          + f"; size {args.size}", flush=True)

    started = time.perf_counter()
    memory = {dt: asdict(measure_stream("copy", cfg["memory_bytes"], dt, devices=[jdev],
                                        min_seconds=0.02, repeats=2))
              for dt in ("float32", "float64")}
    print("device copy in memory: " + ", ".join(f"{dt} {r['gb_per_s']:.0f} GB/s"
                                                for dt, r in memory.items()), flush=True)
    solvers = solver_rows(cfg, args.repeats, jdev)
    training = train_rows(cfg, args.repeats, tdev)

    print()
    print("| solver | dtype | cell updates/s | GB/s | of device limit |")
    print("|---|---|---:|---:|---:|")
    for r in solvers:
        print(f"| {r['solver']} | {r['dtype']} | {r['cell_updates_per_s']:.3g} | "
              f"{r['gb_per_s']:.1f} | {100 * r['fraction_of_limit']:.0f}% |")
    print()
    print("| training step | samples/s | vs neuraloperator |")
    print("|---|---:|---:|")
    for r in training:
        ratio = r.get("ratio_vs_neuraloperator")
        print(f"| {r['model']} | {r['samples_per_s']:,.1f} | "
              f"{'' if ratio is None else f'{ratio:.2f}x'} |")
    result = {
        "benchmark": "gpu",
        "command": " ".join([Path(sys.argv[0]).name]
                            + (argv if argv is not None else sys.argv[1:])),
        "jax_device": f"{jdev.device_kind} ({backend})",
        "torch_device": str(tdev) + (f" ({torch.cuda.get_device_name(tdev)})"
                                     if tdev.type == "cuda" else ""),
        "size": args.size, "config": cfg, "repeats": args.repeats,
        "device_copy_in_memory": memory, "solvers": solvers, "training": training,
        "seconds": time.perf_counter() - started,
    }
    write_results(result, out, torch=torch.__version__)
    return result


if __name__ == "__main__":
    main()
