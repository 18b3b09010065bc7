"""The roofline helper (benchmarks/roofline.py) on known kernels: byte and flop accounting, and
measured bandwidths that are positive and finite."""

import math

import numpy as np
import pytest
import roofline


def test_copy_of_n_float64_moves_16n_bytes():
    assert roofline.kernel_bytes("copy", 1000, "float64") == 16_000
    assert roofline.kernel_bytes("copy", 1000, "float32") == 8_000
    assert roofline.kernel_flops("copy", 1000) == 0


def test_triad_accounting():
    # x <- b + s x: reads x and b, writes x (3 words), one multiply and one add per element.
    assert roofline.kernel_bytes("triad", 10, "float64") == 240
    assert roofline.kernel_flops("triad", 10) == 20


def test_unknown_kernel_and_solver_are_refused():
    with pytest.raises(ValueError, match="unknown kernel"):
        roofline.kernel_bytes("scale", 1)
    with pytest.raises(ValueError, match="unknown solver"):
        roofline.solver_model("navier_stokes")
    with pytest.raises(ValueError, match="dim in"):
        roofline.solver_model("wave", dim=1)


@pytest.mark.parametrize("kernel", ["copy", "triad"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_measured_bandwidth_is_positive_and_finite(kernel, dtype):
    r = roofline.measure_stream(kernel, 256 * 2**10, dtype, min_seconds=0.005, repeats=2)
    assert r.dtype == dtype and r.passes >= 8
    assert r.working_set_bytes <= 256 * 2**10
    assert math.isfinite(r.gb_per_s) and r.gb_per_s > 0
    # The reported rate is the byte accounting divided by the time.
    expected = r.passes * roofline.kernel_bytes(kernel, r.n_elements, dtype) / r.seconds / 1e9
    assert r.gb_per_s == pytest.approx(expected)
    if kernel == "triad":
        assert r.gflop_per_s == pytest.approx(2 * r.n_elements * r.passes / r.seconds / 1e9)


def test_copy_kernel_computes_what_it_says():
    # An even number of sign flips returns the input, an odd number its negative; triad
    # passes give the closed form x_n = s^n x_0 + b (1 - s^n) / (1 - s), s = 1/2.
    x = np.arange(6.0).reshape(1, 6)
    b = np.ones((1, 6))
    np.testing.assert_array_equal(roofline._passes(x, b, kernel="copy", passes=3), -x)
    out = np.asarray(roofline._passes(x, b, kernel="triad", passes=4))
    np.testing.assert_allclose(out, 0.5**4 * x + (1 - 0.5**4) / 0.5, rtol=1e-6)


def test_numpy_copy_and_machine_limits():
    r = roofline.numpy_copy(64 * 2**10, "float64", min_seconds=0.002, repeats=1)
    assert r.kernel == "numpy_copy" and r.gb_per_s > 0 and math.isfinite(r.gb_per_s)
    lim = roofline.machine_limits(64 * 2**10, ("float64",), min_seconds=0.002, repeats=1,
                                  references=False)
    entry = lim["float64"]
    assert entry["limit_gb_per_s"] == max(r["gb_per_s"] for r in entry["at_working_set"][:2])
    assert "| float64 | at working set |" in roofline.format_limits(lim)


def test_solver_models_and_fraction():
    wave = roofline.solver_model("wave", dim=2, order=2)
    assert wave.bytes_per_update("float64") == 24 and wave.flops == 12
    assert roofline.solver_model("wave", dim=3, order=4).flops == 28
    assert roofline.solver_model("burgers").words == 8
    assert wave.working_set(1000, "float32") == 12_000
    fr = roofline.roofline_fraction(1e9, wave, "float64", limit_gb_per_s=48.0)
    assert fr["gb_per_s"] == pytest.approx(24.0) and fr["fraction_of_limit"] == pytest.approx(0.5)
    assert fr["gflop_per_s"] == pytest.approx(12.0)
