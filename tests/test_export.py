"""torch.export, AOTInductor and the compiled C host (surrogates.coupling, examples/coupling_c)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from operators.fno import FNO
from operators.mgno import MgNO
from operators.mno import HybridLorenz96, LocalMLPClosure, MNOClosure, PolynomialClosure
from surrogates.coupling import (
    export_aoti,
    export_onnx,
    export_torch,
    export_torchscript,
    load_aoti,
    load_torch,
)

ROOT = Path(__file__).resolve().parents[1]
HOST_SOURCE = ROOT / "examples" / "coupling_c" / "closure_host.c"
HEADER_SCRIPT = ROOT / "examples" / "coupling_c" / "install_ort_headers.sh"
DT, FORCING = 0.005, 10.0


def _mno() -> MNOClosure:
    torch.manual_seed(0)
    return MNOClosure(hidden_channels=8, n_layers=2, n_modes=[8], output_std=0.1).eval()


def _local() -> LocalMLPClosure:
    torch.manual_seed(1)
    return LocalMLPClosure(stencil=2, hidden_channels=8, output_std=0.1).eval()


def _closure_reference(closure, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return closure(torch.from_numpy(X)[:, None])[:, 0].numpy()


def _states(B: int, K: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(B, K)) * 5).astype(np.float32)


# --------------------------------------------------------------------------------------------
# torch.export
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [_mno, _local], ids=["mno", "local"])
def test_torch_export_closure_round_trip_dynamic_batch_and_K(tmp_path, make):
    closure = make()
    path = export_torch(closure, tmp_path / "closure.pt2")
    program = load_torch(path).module()
    for K in (36, 72, 20):
        for B in (1, 5):
            X = _states(B, K, seed=K + B)
            with torch.no_grad():
                out = program(torch.from_numpy(X))
            assert out.shape == (B, K) and out.dtype == torch.float32
            np.testing.assert_allclose(out.numpy(), _closure_reference(closure, X),
                                       rtol=0, atol=1e-6)
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    onnx_path = export_onnx(closure, tmp_path / "closure.onnx")
    onnx_meta = json.loads(onnx_path.with_name(onnx_path.name + ".json").read_text())
    # the same sidecar convention as ONNX's: the same contract, other format fields
    assert set(meta) - {"load"} == set(onnx_meta) - {"opset"}
    for key in ("closure_class", "config", "inputs", "outputs", "dynamic_axes", "example_K",
                "layout"):
        assert meta[key] == onnx_meta[key], key
    assert meta["format"] == "torch_export" and meta["file"] == "closure.pt2"
    assert meta["config"] == closure.config


@pytest.mark.parametrize("kind", ["fno2d", "fno1d", "mgno2d"])
def test_torch_export_operator_round_trip_dynamic_batch(tmp_path, kind):
    torch.manual_seed(2)
    if kind == "fno2d":
        model, shape = FNO(in_channels=2, out_channels=1, n_modes=[8, 6], hidden_channels=8,
                           n_layers=2), (3, 2, 16, 12)
    elif kind == "fno1d":
        model, shape = FNO(in_channels=1, out_channels=2, n_modes=[12], hidden_channels=8,
                           n_layers=2, domain_padding=0.25), (2, 1, 40)
    else:
        model, shape = MgNO(in_channels=1, out_channels=1, hidden_channels=8, n_layers=2,
                            levels=3), (2, 1, 16, 16)
    model.eval()
    path = export_torch(model, tmp_path / f"{kind}.pt2", example_shape=shape)
    program = load_torch(path).module()
    for B in (1, 4):
        x = torch.randn(B, *shape[1:])
        with torch.no_grad():
            ref, out = model(x), program(x)
        assert out.shape == ref.shape and out.dtype == torch.float32
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["format"] == "torch_export" and meta["operator_class"] == type(model).__name__
    assert meta["config"] == model.config
    assert meta["inputs"][0]["shape"] == ["batch", *shape[1:]]
    assert meta["outputs"][0]["shape"] == ["batch", *ref.shape[1:]]
    assert set(meta["dynamic_axes"]) == {"batch"}
    with pytest.raises((RuntimeError, AssertionError)):  # the grid is fixed to the example's
        program(torch.randn(1, shape[1], *(n + 4 for n in shape[2:])))


def test_load_torch_refuses_pickled_members_and_bad_files(tmp_path):
    closure = _mno()
    plain = export_torch(closure, tmp_path / "plain.pt2")
    with torch.no_grad():
        program = torch.export.export(
            torch.nn.Linear(3, 2), (torch.randn(2, 3),),
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    torch.export.save(program, tmp_path / "with_inputs.pt2")  # example inputs via torch.save
    with pytest.raises(ValueError, match=r"pickled members.*sample_inputs"):
        load_torch(tmp_path / "with_inputs.pt2")
    (tmp_path / "junk.pt2").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a torch.export archive"):
        load_torch(tmp_path / "junk.pt2")
    with pytest.raises(FileNotFoundError, match="missing.pt2"):
        load_torch(tmp_path / "missing.pt2")
    assert load_torch(plain) is not None


def test_export_torch_refuses_overwrite_and_bad_arguments(tmp_path):
    poly = PolynomialClosure(degree=2).eval()
    path = export_torch(poly, tmp_path / "p.pt2")
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_torch(poly, path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_aoti(poly, path)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    export_torch(poly, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pt2", "p.pt2.json"]
    with pytest.raises(ValueError, match="history"):
        export_torch(MNOClosure(history=1), tmp_path / "h.pt2")
    with pytest.raises(ValueError, match="example_K"):
        export_torch(poly, tmp_path / "k.pt2", example_K=3)
    with pytest.raises(ValueError, match="example_shape"):
        export_torch(MgNO(in_channels=1, out_channels=1), tmp_path / "s.pt2",
                     example_shape=(2, 16))
    with pytest.raises(ValueError, match="pass example_shape"):
        export_torch(MgNO(in_channels=1, out_channels=1), tmp_path / "m.pt2")
    with pytest.raises(ValueError, match=r"must end in \.pt2"):
        export_aoti(poly, tmp_path / "a.so")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pt2", "p.pt2.json"]


def test_export_torchscript_is_deprecated(tmp_path):
    with pytest.warns(DeprecationWarning, match="export_torchscript is deprecated"):
        export_torchscript(PolynomialClosure(degree=2).eval(), tmp_path / "p.pt")
    assert export_torchscript.__doc__ and "deprecated" in export_torchscript.__doc__


# --------------------------------------------------------------------------------------------
# AOTInductor (compiles C++ with the system compiler: ~10-20 s per model on 2 cores)
# --------------------------------------------------------------------------------------------
def test_aoti_closure_round_trip_dynamic_batch_and_K(tmp_path):
    closure = _mno()
    path = export_aoti(closure, tmp_path / "closure.pt2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["closure.pt2", "closure.pt2.json"]
    compiled = load_aoti(path)
    for K, B in ((36, 1), (36, 64), (72, 3)):
        X = _states(B, K, seed=K * B)
        out = compiled(torch.from_numpy(X))
        assert out.shape == (B, K) and out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), _closure_reference(closure, X), rtol=0,
                                   atol=1e-6)
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["format"] == "aoti" and meta["inputs"][0]["shape"] == ["batch", "K"]


def test_aoti_operator_round_trip(tmp_path):
    torch.manual_seed(4)
    model = MgNO(in_channels=1, out_channels=1, hidden_channels=8, n_layers=2, levels=3).eval()
    compiled = load_aoti(export_aoti(model, tmp_path / "mgno.pt2", example_shape=(2, 1, 16, 16)))
    for B in (1, 5):
        x = torch.randn(B, 1, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# The compiled C host (ONNX Runtime's C API)
# --------------------------------------------------------------------------------------------
def _ort_include() -> Path:
    candidates = [os.environ.get("ONNXRUNTIME_INCLUDE_DIR", ""), "/usr/local/include/onnxruntime",
                  "/usr/include/onnxruntime"]
    for folder in candidates:
        if folder and (Path(folder) / "onnxruntime_c_api.h").is_file():
            return Path(folder)
    pytest.fail(f"ONNX Runtime's C headers (onnxruntime_c_api.h) were not found in {candidates}; "
                f"install them with `bash {HEADER_SCRIPT.relative_to(ROOT)}` (.ci/run does) or "
                "set ONNXRUNTIME_INCLUDE_DIR")


@pytest.fixture(scope="module")
def c_host(tmp_path_factory) -> Path:
    """closure_host built with the system C compiler against the onnxruntime wheel's library."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc or gcc) on PATH")
    include = _ort_include()
    folder = tmp_path_factory.mktemp("c_host")
    capi = Path(ort.__file__).parent / "capi"
    library = sorted(capi.glob("libonnxruntime.so*"))
    assert library, f"no libonnxruntime.so* in {capi}"
    # The wheel's file is libonnxruntime.so.<version>; its SONAME is libonnxruntime.so.1.
    (folder / "libonnxruntime.so.1").symlink_to(library[0])
    exe = folder / "closure_host"
    subprocess.run([cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{include}",
                    str(HOST_SOURCE), "-o", str(exe), f"-L{folder}", "-l:libonnxruntime.so.1",
                    f"-Wl,-rpath,{folder}", "-lm"], check=True, timeout=120)
    return exe


@pytest.mark.parametrize("make", [_mno, _local], ids=["mno", "local"])
def test_c_host_runs_exported_closure(c_host, tmp_path, make):
    closure = make()
    model = export_onnx(closure, tmp_path / "closure.onnx")
    # An initial state on the attractor of the coarse model (F = 10 is chaotic).
    with torch.no_grad():
        X0 = HybridLorenz96().rollout(torch.from_numpy(_states(4, 36, seed=7)), FORCING, DT,
                                      400)[:, -1].contiguous()
    X0.numpy().tofile(tmp_path / "x0.bin")
    n_steps = 300
    subprocess.run([str(c_host), str(model), "run", "4", "36", str(n_steps), str(DT),
                    str(FORCING), str(tmp_path / "x0.bin"), str(tmp_path / "traj.bin")],
                   check=True, timeout=120)
    traj = np.fromfile(tmp_path / "traj.bin", dtype=np.float32).reshape(4, n_steps + 1, 36)
    assert np.isfinite(traj).all() and np.abs(traj).max() < 50
    np.testing.assert_array_equal(traj[:, 0], X0.numpy())
    with torch.no_grad():
        ref = HybridLorenz96(closure).rollout(X0, FORCING, DT, n_steps).numpy()
    # Float32 RK4 with the same operation order in both; they differ by the closure's float32
    # rounding (ONNX Runtime kernels and the DFT-matrix transform against torch's rFFT, ~1e-7
    # relative), grown by chaos (~exp(2 t / MTU)): the tolerances of the Python host test in
    # tests/test_coupling.py (2e-5 over 0.25 MTU, 1e-3 over 1.5 MTU).
    np.testing.assert_allclose(traj[:, :51], ref[:, :51], rtol=0, atol=2e-5)
    np.testing.assert_allclose(traj, ref, rtol=0, atol=1e-3)


def test_c_host_bench_mode_and_errors(c_host, tmp_path):
    model = export_onnx(_mno(), tmp_path / "closure.onnx")
    done = subprocess.run([str(c_host), str(model), "bench", "64", "36", "0.05"], check=True,
                          capture_output=True, text=True, timeout=60)
    fields = dict(item.split("=") for item in done.stdout.split())
    assert int(fields["calls"]) >= 1 and float(fields["calls_per_s"]) > 0
    np.zeros(10, dtype=np.float32).tofile(tmp_path / "short.bin")  # fewer than B*K floats
    bad = subprocess.run([str(c_host), str(model), "run", "4", "36", "2", "0.005", "10",
                          str(tmp_path / "short.bin"), str(tmp_path / "o.bin")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "fewer than B*K" in bad.stderr
    missing = subprocess.run([str(c_host), str(tmp_path / "none.onnx"), "bench", "1", "36",
                              "0.01"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "onnxruntime error" in missing.stderr
