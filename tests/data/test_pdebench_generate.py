"""Generating PDEBench 1D files with the package's solvers: layout, multi-file sets, accuracy,
refusing to overwrite, the CLI and input errors. Small grids, so the whole file runs in seconds.
"""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from surrogates.cli import main
from surrogates.data import pdebench
from surrogates.data.pdebench_generate import PDE1DGenerateConfig, generate_pdebench
from surrogates.solvers.pde1d import random_initial_condition, solve_advection

SMALL = {"n_samples": 5, "N": 64, "n_frames": 6, "batch_size": 3}


@pytest.fixture(scope="module")
def advection_files(tmp_path_factory):
    config = PDE1DGenerateConfig("advection", (0.4, 1.0), t_end=0.5, **SMALL)
    out = tmp_path_factory.mktemp("advection")
    return config, generate_pdebench(config, out, progress=False)


def test_files_have_pdebench_names_datasets_shapes_dtypes_and_attributes(advection_files):
    config, paths = advection_files
    assert [p.name for p in paths] == ["1D_Advection_Sols_beta0.4.hdf5",
                                       "1D_Advection_Sols_beta1.0.hdf5"]
    for path, beta in zip(paths, (0.4, 1.0), strict=True):
        with h5py.File(path, "r") as f:
            assert set(f.keys()) == {"tensor", "x-coordinate", "t-coordinate"}
            assert f["tensor"].shape == (5, 6, 64) and f["tensor"].dtype == np.float32
            assert f["x-coordinate"].shape == (64,) and f["x-coordinate"].dtype == np.float32
            assert f["t-coordinate"].shape == (7,) and f["t-coordinate"].dtype == np.float32
            np.testing.assert_allclose(f["x-coordinate"][()], (np.arange(64) + 0.5) / 64,
                                       rtol=1e-7)
            # PDEBench: frame k at t-coordinate[k], one extra time one interval after t_end.
            np.testing.assert_allclose(f["t-coordinate"][()], np.arange(7) * 0.1, rtol=1e-6)
            assert set(f.attrs) == {"beta", "surrogates_config"}
            assert f.attrs["beta"] == beta and isinstance(f.attrs["beta"], np.floating)
            stored = json.loads(f.attrs["surrogates_config"])
            assert stored["values"] == [0.4, 1.0] and stored["t_end"] == 0.5
            assert stored["n_frames"] == 6 and stored["seed"] == 0
            assert np.all(np.isfinite(f["tensor"][()]))
    assert not list(paths[0].parent.glob(".*.tmp"))


def test_multi_file_set_has_the_parameter_per_sample_and_shared_initial_conditions(
        advection_files):
    _, paths = advection_files
    ds = pdebench.open_pdebench_files(paths)
    assert dict(ds.sizes) == {"sample": 10, "time": 6, "x": 64}
    assert ds["beta"].dims == ("sample",)
    np.testing.assert_array_equal(ds["beta"].values, [0.4] * 5 + [1.0] * 5)
    np.testing.assert_allclose(ds["time"].values, np.linspace(0, 0.5, 6), rtol=1e-6)
    assert ds.attrs["t_coordinate_end"] == pytest.approx(0.6)
    u0 = ds["u"].isel(time=0).values
    np.testing.assert_array_equal(u0[:5], u0[5:])  # same seed, same initial conditions
    assert not np.array_equal(ds["u"].values[:5, -1], ds["u"].values[5:, -1])


def test_stored_field_is_the_solver_output_bit_for_bit(advection_files):
    config, paths = advection_files
    u0 = random_initial_condition(5, 64, 0, absolute=True, sign_flip=True, window=True)
    t = np.arange(6) * 0.1
    for path, beta in zip(paths, (0.4, 1.0), strict=True):
        expected = solve_advection(u0, beta, t, dtype="float32").u.astype(np.float32)
        with h5py.File(path, "r") as f:
            np.testing.assert_array_equal(f["tensor"][()], expected)
            np.testing.assert_array_equal(f["tensor"][:, 0], u0.astype(np.float32))


@pytest.mark.parametrize("N", [64, 128])
def test_advection_matches_the_exact_translation(tmp_path, N):
    # Smooth initial conditions (no window / abs), wavenumbers <= 4, so the stored initial
    # condition is band-limited and its exact translation by beta t is a Fourier phase shift.
    # Largest measured per-sample L1 errors up to beta t = 0.5 (MC limiter, cfl 0.4): 0.080
    # (N = 64), 0.028 (128), 0.0089 (256): order ~1.5-1.6 on these coarse grids, as the limiter
    # clips the extrema; most of the error appears in the first steps, so it is not linear in
    # t. Tolerance 0.12 (64 / N)^1.5 (0.12 and 0.042 here); at t = 0 only float32 storage.
    config = PDE1DGenerateConfig("advection", (0.4, 1.0), n_samples=4, N=N, n_frames=3,
                                 t_end=0.5, absolute=False, sign_flip=False, window=False,
                                 dtype="float64")
    ds = pdebench.open_pdebench_files(generate_pdebench(config, tmp_path, progress=False))
    u = ds["u"].values.astype(np.float64)
    beta = ds["beta"].values[:, None]
    k = np.fft.fftfreq(N, 1.0 / N)
    u0_hat = np.fft.fft(u[:, 0], axis=-1)
    for j, t in enumerate(ds["time"].values.astype(np.float64)):
        exact = np.fft.ifft(u0_hat * np.exp(-2j * np.pi * k * beta * t), axis=-1).real
        l1 = np.mean(np.abs(u[:, j] - exact), axis=-1)  # per sample
        tol = (0.12 * (64 / N) ** 1.5 if t > 0 else 0.0) + 1e-6  # + float32 storage
        assert np.all(l1 <= tol), (N, t, l1, tol)


def test_burgers_and_diffusion_reaction_files(tmp_path):
    paths = generate_pdebench(PDE1DGenerateConfig("burgers", 0.01, t_end=0.2, **SMALL),
                              tmp_path, progress=False)
    assert [p.name for p in paths] == ["1D_Burgers_Sols_Nu0.01.hdf5"]
    with h5py.File(paths[0], "r") as f:
        assert dict(f.attrs)["Nu"] == 0.01
        u = f["tensor"][()]
    assert np.abs(u[:, -1]).max() <= np.abs(u[:, 0]).max() + 1e-6  # maximum principle
    config = PDE1DGenerateConfig("diffusion-reaction", (0.5, 2.0), rho=(1.0, 10.0), **SMALL,
                                 t_end=0.1)
    assert config.unit_interval is True
    paths = generate_pdebench(config, tmp_path / "dr", progress=False)
    assert [p.name for p in paths] == ["ReacDiff_Nu0.5_Rho1.0.hdf5", "ReacDiff_Nu0.5_Rho10.0.hdf5",
                                       "ReacDiff_Nu2.0_Rho1.0.hdf5", "ReacDiff_Nu2.0_Rho10.0.hdf5"]
    ds = pdebench.open_pdebench_files(paths)
    np.testing.assert_array_equal(ds["Nu"].values, np.repeat([0.5, 0.5, 2.0, 2.0], 5))
    np.testing.assert_array_equal(ds["Rho"].values, np.repeat([1.0, 10.0, 1.0, 10.0], 5))
    u = ds["u"].values
    assert u.min() >= -1e-6 and u.max() <= 1 + 1e-6
    np.testing.assert_allclose(u[:, 0].min(axis=-1), 0.0, atol=1e-7)


def test_pde_defaults_follow_pdebench():
    adv = PDE1DGenerateConfig("advection", [0.1])
    assert (adv.t_end, adv.n_frames, adv.N, adv.unit_interval) == (2.0, 201, 1024, False)
    assert adv.values == (0.1,) and adv.rho is None
    dr = PDE1DGenerateConfig("diffusion_reaction", [0.5])
    assert (dr.pde, dr.t_end, dr.n_frames, dr.rho, dr.unit_interval) == (
        "diffusion-reaction", 1.0, 101, (1.0,), True)
    assert len(dr.frame_times()) == 102


def test_existing_files_are_refused_before_any_work(tmp_path):
    config = PDE1DGenerateConfig("advection", (0.1, 0.4), **SMALL)
    second = tmp_path / pdebench.pdebench_file_name("advection", beta=0.4)
    second.write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        generate_pdebench(config, tmp_path, progress=False)
    assert second.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [second.name]  # first not written
    paths = generate_pdebench(config, tmp_path, overwrite=True, progress=False)
    assert pdebench.read_pdebench(paths[1]).sizes["sample"] == 5


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"pde": "heat", "values": (1.0,)}, "unknown pde 'heat'"),
    ({"pde": "advection", "values": ()}, "at least one value"),
    ({"pde": "advection", "values": (0.1, 0.1)}, "repeated"),
    ({"pde": "advection", "values": (float("nan"),)}, "finite"),
    ({"pde": "advection", "values": (0.1,), "n_samples": -3}, "n_samples must be an integer"),
    ({"pde": "advection", "values": (0.1,), "N": 4}, "N must be an integer >= 8"),
    ({"pde": "advection", "values": (0.1,), "n_frames": 1}, "n_frames"),
    ({"pde": "advection", "values": (0.1,), "t_end": 0.0}, "t_end"),
    ({"pde": "advection", "values": (0.1,), "cfl": 1.5}, "cfl"),
    ({"pde": "advection", "values": (0.1,), "dtype": "float16"}, "dtype"),
    ({"pde": "advection", "values": (0.1,), "rho": (1.0,)}, "diffusion-reaction only"),
    ({"pde": "burgers", "values": (0.0,)}, "> 0"),
    ({"pde": "diffusion-reaction", "values": (0.5,), "rho": (-1.0,)}, "rho must be >= 0"),
])
def test_bad_configuration_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PDE1DGenerateConfig(**kwargs)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_writes_one_file_per_value_and_refuses_to_overwrite(tmp_path):
    args = ["generate", "burgers", "--out", tmp_path, "--values", "0.01,0.1", "--n-samples", 2,
            "--N", 32, "--n-frames", 3, "--t-end", 0.05, "--seed", 3]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    names = ["1D_Burgers_Sols_Nu0.01.hdf5", "1D_Burgers_Sols_Nu0.1.hdf5"]
    for name in names:
        assert f"wrote {tmp_path / name}" in result.output
    ds = pdebench.open_pdebench_files([tmp_path / n for n in names])
    assert dict(ds.sizes) == {"sample": 4, "time": 3, "x": 32}
    assert json.loads(h5py.File(tmp_path / names[0], "r").attrs["surrogates_config"])["seed"] == 3
    before = (tmp_path / names[0]).stat().st_mtime_ns
    result = invoke(*args)
    assert result.exit_code == 1 and "already exists" in result.output
    assert (tmp_path / names[0]).stat().st_mtime_ns == before


def test_cli_diffusion_reaction_with_toml(tmp_path):
    config = tmp_path / "dr.toml"
    config.write_text("values = [0.5]\nn_samples = 2\nN = 32\nn_frames = 3\nt_end = 0.05\n")
    result = invoke("generate", "diffusion-reaction", "--config", config, "--rho", "1,2",
                    "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ReacDiff_Nu0.5_Rho1.0.hdf5", "ReacDiff_Nu0.5_Rho2.0.hdf5"]


@pytest.mark.parametrize(("args", "match"), [
    (["advection", "--values", "0.1", "--n-samples", "-1"], "n_samples must be an integer >= 1"),
    (["advection", "--values", ""], "at least one value"),
    (["advection", "--values", "0.1,abc"], "comma-separated numbers"),
    (["advection"], "give --values"),
    (["burgers", "--values", "-0.1"], "> 0"),
])
def test_cli_bad_input_is_a_one_line_error(tmp_path, args, match):
    result = invoke("generate", *args, "--out", tmp_path / "o")
    assert result.exit_code == 1, result.output
    assert match in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_unknown_pde_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["generate", "heat", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "No such command 'heat'" in result.output
