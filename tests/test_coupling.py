"""Tests for surrogates.coupling: the host-call interface and the ONNX / TorchScript exports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from operators.base import atomic_write, save_model
from operators.mno import HybridLorenz96, LocalMLPClosure, MNOClosure, PolynomialClosure
from surrogates.coupling import (
    ClosureExportModule,
    ClosureInterface,
    export_onnx,
    export_torchscript,
)

DT = 0.005
FORCING = 10.0


def _mno(**kw) -> MNOClosure:
    torch.manual_seed(0)
    # Untrained; output scaled down so that the coupled Lorenz-96 run stays close to the
    # (stable) coarse model.
    return MNOClosure(hidden_channels=8, n_layers=2, n_modes=[8], output_std=0.1, **kw).eval()


def _local() -> LocalMLPClosure:
    torch.manual_seed(1)
    return LocalMLPClosure(stencil=2, hidden_channels=8, output_std=0.1).eval()


@pytest.fixture(scope="module")
def l96_data():
    """A short two-tier Lorenz-96 run (B=4, K=36, J=10) after spin-up: X and the coupling."""
    from surrogates.solvers import lorenz96 as L

    s = L.random_initial_state(4, K=36, J=10, seed=0)
    s = L.solve(s, dt=0.0025, n_steps=1, spinup_steps=799).final_state
    traj = L.solve(s, dt=DT, n_steps=200)
    return np.asarray(traj.X), np.asarray(traj.coupling)


@pytest.fixture(scope="module")
def polynomial(l96_data) -> PolynomialClosure:
    X, coupling_term = l96_data
    return PolynomialClosure(degree=3).fit_least_squares(torch.from_numpy(X),
                                                         torch.from_numpy(coupling_term)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, polynomial):
    """Each closure exported once to ONNX and TorchScript."""
    out = {}
    folder = tmp_path_factory.mktemp("exports")
    for name, closure in (("mno", _mno()), ("local", _local()), ("poly", polynomial)):
        onnx_path = export_onnx(closure, folder / f"{name}.onnx")
        ts_path = export_torchscript(closure, folder / f"{name}.pt")
        out[name] = (closure, onnx_path, ts_path)
    return out


# --------------------------------------------------------------------------------------------
# ClosureInterface
# --------------------------------------------------------------------------------------------
class _Spy(nn.Module):
    """Records the tensor it is called with; returns 2 X."""

    history = 0
    use_forcing_channel = False

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return self.scale * x[:, :1]


def test_interface_numpy_dtype_and_shape():
    closure = _mno()
    iface = ClosureInterface(closure)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 36)) * 5
    with torch.no_grad():
        ref = closure(torch.from_numpy(X).float()[:, None])[:, 0].numpy()
    for dtype in (np.float64, np.float32):
        out = iface(X.astype(dtype))
        assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == (5, 36)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
        single = iface(X[2].astype(dtype))
        assert single.dtype == dtype and single.shape == (36,)
        np.testing.assert_allclose(single, ref[2], rtol=0, atol=1e-6)
    # dynamic K through the interface (FFT path)
    assert iface(X[:, :20].astype(np.float32)).shape == (5, 20)


def test_interface_torch_passthrough_without_copy():
    spy = _Spy()
    iface = ClosureInterface(spy)
    X = torch.randn(3, 36)
    out = iface(X)
    assert isinstance(out, torch.Tensor) and out.dtype == X.dtype and out.shape == X.shape
    assert spy.seen.data_ptr() == X.data_ptr()  # the closure saw X's memory
    assert not out.requires_grad
    torch.testing.assert_close(out, 2 * X)
    x1 = torch.randn(36)
    out1 = iface(x1)
    assert spy.seen.data_ptr() == x1.data_ptr() and out1.shape == (36,)
    # float64 tensors are cast for the closure and the result cast back
    X64 = X.double()
    out64 = iface(X64)
    assert out64.dtype == torch.float64 and out64.device == X64.device
    # contiguous float32 NumPy arrays are wrapped without a copy
    arr = np.random.default_rng(1).normal(size=(2, 36)).astype(np.float32)
    res = iface(arr)
    assert spy.seen.data_ptr() == arr.ctypes.data
    np.testing.assert_allclose(res, 2 * arr, rtol=1e-7)


def test_interface_errors_and_options(tmp_path):
    iface = ClosureInterface(_mno())
    for bad in (np.zeros((2, 3, 36)), np.float64(1.0), np.zeros((0, 36))):
        with pytest.raises(ValueError, match=r"shape \(K,\)"):
            iface(bad)
    with pytest.raises(ValueError, match="float32 or float64"):
        iface(np.zeros((2, 36), dtype=np.int64))
    with pytest.raises(ValueError, match="floating point"):
        iface(torch.zeros(2, 36, dtype=torch.int64))

    forced = LocalMLPClosure(use_forcing_channel=True, hidden_channels=4).eval()
    fiface = ClosureInterface(forced)
    X = np.random.default_rng(2).normal(size=(2, 36)).astype(np.float32)
    with pytest.raises(ValueError, match="use_forcing_channel"):
        fiface(X)
    with torch.no_grad():
        ref = forced(torch.from_numpy(X)[:, None], torch.tensor([8.0, 10.0]))[:, 0].numpy()
    np.testing.assert_allclose(fiface(X, np.array([8.0, 10.0])), ref, atol=1e-6)

    hist = ClosureInterface(_mno(history=2))
    assert hist(X).shape == (2, 36)
    assert hist(X, history=np.stack([X, X], axis=1)).shape == (2, 36)
    with pytest.raises(ValueError, match="history must have shape"):
        hist(X, history=np.zeros((2, 1, 36), dtype=np.float32))

    # a checkpoint path works as well as the module
    closure = _mno()
    save_model(closure, tmp_path / "mno.pt")
    np.testing.assert_allclose(ClosureInterface(tmp_path / "mno.pt")(X),
                               ClosureInterface(closure)(X), atol=0)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_modes", [8, 40])
def test_dft_spectral_conv_matches_rfft(n_modes):
    torch.manual_seed(3)
    closure = MNOClosure(hidden_channels=8, n_layers=2, n_modes=[n_modes]).eval()
    wrapper = ClosureExportModule(closure)
    with torch.no_grad():
        # 40: mode 20 is the Nyquist frequency for n_modes=40; 6 and 36 drop modes for n_modes=40
        for K in (6, 36, 40, 72):
            x = torch.randn(5, K) * 5
            ref = closure(x[:, None])[:, 0]
            torch.testing.assert_close(wrapper(x), ref, rtol=0, atol=1e-5)
            ref64 = closure.double()(x.double()[:, None])[:, 0]
            torch.testing.assert_close(wrapper.double()(x.double()), ref64, rtol=0, atol=1e-12)
            closure.float()
            wrapper.float()
    assert closure.fno.blocks[0].spectral.__class__.__name__ == "SpectralConv"  # not modified


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", ["mno", "local", "poly"])
def test_export_round_trip_dynamic_K_and_batch(exported, name):
    closure, onnx_path, ts_path = exported[name]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["X"]
    assert [o.name for o in session.get_outputs()] == ["closure"]
    assert session.get_inputs()[0].shape == ["batch", "K"]
    scripted = torch.jit.load(str(ts_path))
    rng = np.random.default_rng(4)
    for K in (36, 72):
        for B in (1, 5):
            X = (rng.normal(size=(B, K)) * 5).astype(np.float32)
            with torch.no_grad():
                ref = closure(torch.from_numpy(X)[:, None])[:, 0].numpy()
                ts_out = scripted(torch.from_numpy(X)).numpy()
            onnx_out = session.run(["closure"], {"X": X})[0]
            assert onnx_out.shape == ts_out.shape == (B, K)
            assert onnx_out.dtype == np.float32
            np.testing.assert_allclose(onnx_out, ref, rtol=0, atol=1e-5)
            np.testing.assert_allclose(ts_out, ref, rtol=0, atol=1e-5)
    meta = json.loads(onnx_path.with_name(onnx_path.name + ".json").read_text())
    assert meta["closure_class"] == type(closure).__name__
    assert meta["config"] == closure.config
    assert meta["inputs"][0]["name"] == "X" and meta["outputs"][0]["name"] == "closure"
    assert meta["outputs"][0]["shape"] == ["batch", "K"] and "1/MTU" in meta["outputs"][0]["units"]
    ts_meta = json.loads(ts_path.with_name(ts_path.name + ".json").read_text())
    assert ts_meta["format"] == "torchscript"


def test_export_refuses_overwrite_and_leaves_no_temp_files(exported, polynomial):
    _, onnx_path, ts_path = exported["poly"]
    folder = onnx_path.parent
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(polynomial, onnx_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_torchscript(polynomial, ts_path)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    export_torchscript(polynomial, ts_path, overwrite=True)
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names
    assert len(names) == 2 * 2 * len(exported)  # model + sidecar per closure and format

    def failing(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(folder / "broken.onnx", failing)
    assert sorted(p.name for p in folder.iterdir()) == names


def test_export_rejects_unsupported_closures(tmp_path):
    with pytest.raises(ValueError, match="history"):
        export_onnx(_mno(history=1), tmp_path / "h.onnx")
    with pytest.raises(ValueError, match="forcing channel"):
        export_torchscript(LocalMLPClosure(use_forcing_channel=True), tmp_path / "f.pt")
    with pytest.raises(ValueError, match="example_K"):
        export_onnx(PolynomialClosure(), tmp_path / "p.onnx", example_K=2)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# A host model that knows nothing of this package
# --------------------------------------------------------------------------------------------
HOST_PROGRAM = '''
"""Plain NumPy Lorenz-96 host with an ONNX closure: python host.py MODEL X0.npy OUT.npy STEPS"""
import json
import sys

import numpy as np
import onnxruntime as ort

model, x0_path, out_path, n_steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(model + ".json") as fh:
    meta = json.load(fh)
in_name, out_name = meta["inputs"][0]["name"], meta["outputs"][0]["name"]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
F = np.float32(10.0)
dt = np.float32(0.005)


def tendency(X):
    coarse = np.roll(X, 1, -1) * (np.roll(X, -1, -1) - np.roll(X, 2, -1)) - X + F
    return coarse + session.run([out_name], {in_name: X})[0]


X = np.load(x0_path).astype(np.float32)
frames = [X]
for _ in range(n_steps):
    k1 = tendency(X)
    k2 = tendency(X + np.float32(0.5) * dt * k1)
    k3 = tendency(X + np.float32(0.5) * dt * k2)
    k4 = tendency(X + dt * k3)
    X = X + (dt / np.float32(6.0)) * (k1 + np.float32(2.0) * k2 + np.float32(2.0) * k3 + k4)
    frames.append(X)
np.save(out_path, np.stack(frames, axis=1))
'''


@pytest.mark.parametrize("name", ["poly", "mno"])
def test_host_model_runs_exported_closure(exported, l96_data, tmp_path, name):
    closure, onnx_path, _ = exported[name]
    X0 = l96_data[0][:, -1].astype(np.float32)  # (4, 36), on the attractor
    n_steps = 300
    host = tmp_path / "host.py"
    host.write_text(HOST_PROGRAM)
    np.save(tmp_path / "x0.npy", X0)
    subprocess.run([sys.executable, str(host), str(onnx_path), str(tmp_path / "x0.npy"),
                    str(tmp_path / "traj.npy"), str(n_steps)], check=True, cwd=tmp_path,
                   timeout=120)
    traj = np.load(tmp_path / "traj.npy")
    assert traj.shape == (4, n_steps + 1, 36) and traj.dtype == np.float32
    assert np.isfinite(traj).all() and np.abs(traj).max() < 50  # stable over 1.5 MTU

    with torch.no_grad():
        ref = HybridLorenz96(closure).rollout(torch.from_numpy(X0), FORCING, DT,
                                              n_steps).numpy()
    # Both runs are float32 RK4 with the same closure and the same operation order; they differ
    # by float32 rounding of the closure (ONNX Runtime kernels and the DFT-matrix spectral
    # transform vs torch's rFFT, ~1e-7 relative), which chaos amplifies by about exp(lambda t),
    # lambda ~ 2 / MTU. Measured: ~2e-6 after 50 steps (0.25 MTU) and ~1.5e-5 after 300 steps
    # (1.5 MTU) for |X| ~ 10. Tolerances: 2e-5 over the first 50 steps (a few float32 ulps of
    # |X| ~ 10 times the growth), 1e-3 over the whole run.
    np.testing.assert_allclose(traj[:, :51], ref[:, :51], rtol=0, atol=2e-5)
    np.testing.assert_allclose(traj, ref, rtol=0, atol=1e-3)


def test_export_leaves_the_checkpoint_registry_intact(tmp_path):
    """torch.export traces through same-named proxy subclasses; checkpoints still rebuild."""
    from operators.base import build

    export_onnx(_mno(), tmp_path / "c.onnx")
    rebuilt = build("MNOClosure", {"hidden_channels": 8, "n_layers": 1, "n_modes": [8]})
    assert type(rebuilt) is MNOClosure
