"""Closure evaluations per second through every export path, against the in-package torch call.

One MNO closure (``MNOClosure(n_modes=[16], hidden_channels=16, n_layers=2)``, the demo's, with
its initial weights: speed does not depend on training) at K = 36 is called on a fixed batch of
B states, B = 1, 64 and 4096, through

* ``surrogates.coupling.ClosureInterface`` (the in-package torch call, the baseline);
* the ``torch.export`` program (``export_torch`` + ``load_torch``, ``program.module()``);
* the AOTInductor package (``export_aoti`` + ``load_aoti``: Inductor-compiled C++);
* ONNX Runtime from Python (``export_onnx``, ``InferenceSession.run``);
* the compiled C host ``examples/coupling_c/closure_host.c`` through ONNX Runtime's C API
  (``closure_host MODEL bench B K SECONDS``; built here with the system compiler, skipped with
  a note when no compiler or headers are found).

Each path is timed for at least ``--seconds`` after a warm-up, best of ``--repeats``; the table
gives calls/s, states/s (calls x B) and the ratio to the torch call, all measured in one run.
Torch and ONNX Runtime from Python use ``--threads`` intra-op threads (default 1); the C host
runs with ONNX Runtime's default session options (its own thread pool over every core), as a
host program would out of the box.

Run ``python benchmarks/coupling_export.py`` (about a minute; ``--quick`` for a smoke run).
Results: ``benchmarks/results/coupling_export.json``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_utils import write_results  # noqa: E402

from operators.mno import MNOClosure  # noqa: E402
from surrogates import coupling  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "coupling_export.json"
HOST_SOURCE = ROOT / "examples" / "coupling_c" / "closure_host.c"
K = 36


def calls_per_second(call: Callable[[], object], seconds: float, repeats: int) -> float:
    """Best over ``repeats`` of the call rate measured for at least ``seconds`` each."""
    call()  # warm-up (compilation, allocation)
    best = 0.0
    for _ in range(repeats):
        n, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            call()
            n += 1
        best = max(best, n / elapsed)
    return best


def build_c_host(folder: Path) -> tuple[Path | None, str]:
    """The C host built against the onnxruntime wheel's library, or None and why not."""
    import onnxruntime

    cc = shutil.which("cc") or shutil.which("gcc")
    include = next((d for d in (Path("/usr/local/include/onnxruntime"),
                                Path("/usr/include/onnxruntime"))
                    if (d / "onnxruntime_c_api.h").is_file()), None)
    if cc is None or include is None:
        return None, ("no C compiler" if cc is None else
                      "no ONNX Runtime C headers (examples/coupling_c/install_ort_headers.sh)")
    library = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"))
    (folder / "libonnxruntime.so.1").symlink_to(library[0])
    exe = folder / "closure_host"
    subprocess.run([cc, "-O2", "-std=c11", f"-I{include}", str(HOST_SOURCE), "-o", str(exe),
                    f"-L{folder}", "-l:libonnxruntime.so.1", f"-Wl,-rpath,{folder}", "-lm"],
                   check=True, timeout=120)
    return exe, ""


def c_host_rate(exe: Path, model: Path, batch: int, seconds: float, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        out = subprocess.run([str(exe), str(model), "bench", str(batch), str(K), str(seconds)],
                             check=True, capture_output=True, text=True, timeout=600).stdout
        fields = dict(item.split("=") for item in out.split())
        best = max(best, float(fields["calls_per_s"]))
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 4096])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="0.1 s per point, one repeat")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats = 0.1, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    closure = MNOClosure(n_modes=[16], hidden_channels=16, n_layers=2).eval()
    interface = coupling.ClosureInterface(closure)
    rows: dict[str, dict[str, float]] = {}
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {"onnx": coupling.export_onnx(closure, tmp / "closure.onnx"),
                 "torch.export": coupling.export_torch(closure, tmp / "closure.pt2")}
        try:
            paths["AOTInductor"] = coupling.export_aoti(closure, tmp / "closure_aoti.pt2")
        except (RuntimeError, ValueError) as err:  # no C++ compiler: AOTInductor unavailable
            notes.append(f"AOTInductor skipped: {err}")
        program = coupling.load_torch(paths["torch.export"]).module()
        aoti = coupling.load_aoti(paths["AOTInductor"]) if "AOTInductor" in paths else None
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = onnxruntime.InferenceSession(str(paths["onnx"]), options,
                                               providers=["CPUExecutionProvider"])
        exe, why = build_c_host(tmp)
        if exe is None:
            notes.append(f"C host skipped: {why}")
        for batch in args.batches:
            x = torch.randn(batch, K)
            x_np = x.numpy()
            reference = interface(x)
            paths_calls = {"torch (ClosureInterface)": lambda x=x: interface(x),
                           "torch.export program": lambda x=x: program(x),
                           "ONNX Runtime (Python)": lambda x_np=x_np: session.run(
                               None, {"X": x_np})}
            if aoti is not None:
                paths_calls["AOTInductor"] = lambda x=x: aoti(x)
            with torch.no_grad():
                for name, call in paths_calls.items():
                    out = call()
                    out = out[0] if isinstance(out, list) else out
                    error = float(np.max(np.abs(np.asarray(out) - reference.numpy())))
                    rate = calls_per_second(call, args.seconds, args.repeats)
                    rows.setdefault(name, {})[str(batch)] = rate
                    rows.setdefault(f"{name} max |diff|", {})[str(batch)] = error
            if exe is not None:
                rows.setdefault("C host (ONNX Runtime C API)", {})[str(batch)] = c_host_rate(
                    exe, paths["onnx"], batch, args.seconds, args.repeats)
    base = rows["torch (ClosureInterface)"]
    print(f"{'path':<30}" + "".join(f"{'B=' + str(b):>26}" for b in args.batches))
    for name, rates in rows.items():
        if name.endswith("|diff|"):
            continue
        cells = "".join(f"{rates[str(b)]:>11.0f} calls/s {rates[str(b)] / base[str(b)]:>5.2f}x"
                        f"{'':>2}" for b in args.batches)
        print(f"{name:<30}{cells}")
    for name, errors in rows.items():
        if name.endswith("|diff|"):
            print(f"{name:<30}" + "".join(f"{errors[str(b)]:>26.1e}" for b in args.batches))
    for note in notes:
        print(note)
    result = {"K": K, "closure": closure.config, "batches": args.batches, "threads": args.threads,
              "calls_per_s": {k: v for k, v in rows.items() if not k.endswith("|diff|")},
              "max_abs_diff_vs_torch": {k: v for k, v in rows.items() if k.endswith("|diff|")},
              "states_per_s": {k: {b: v[b] * int(b) for b in v} for k, v in rows.items()
                               if not k.endswith("|diff|")},
              "notes": notes}
    write_results(result, args.out, torch_threads=args.threads)
    return result


if __name__ == "__main__":
    main()
