"""benchmarks/gpu.py runs unchanged on a CPU at its tiny size and writes a complete JSON."""

import json
import math

import gpu


def test_gpu_benchmark_runs_on_cpu_at_a_tiny_size(tmp_path):
    out = tmp_path / "gpu.json"
    result = gpu.main(["--size", "tiny", "--repeats", "1", "--out", str(out)])
    on_disk = json.loads(out.read_text())
    assert on_disk["size"] == "tiny" and on_disk["jax_device"] == result["jax_device"]
    solvers = {(r["solver"].split()[0], r["solver"].split()[1]) for r in result["solvers"]}
    assert {s[0] for s in solvers} == {"wave", "burgers", "darcy", "lorenz96"}
    assert len(result["solvers"]) == 10  # 5 cases x (float32, float64)
    for r in result["solvers"]:
        assert math.isfinite(r["cell_updates_per_s"]) and r["cell_updates_per_s"] > 0
        assert 0 < r["fraction_of_limit"] < math.inf
    models = {r["model"]: r for r in result["training"]}
    assert {"FNO (ours)", "MgNO", "DeepONet"} <= set(models)
    assert all(r["samples_per_s"] > 0 for r in result["training"])
    if "FNO (neuraloperator)" in models:
        assert models["FNO (neuraloperator)"]["ratio_vs_neuraloperator"] == 1.0
    for r in result["device_copy_in_memory"].values():
        assert r["gb_per_s"] > 0
