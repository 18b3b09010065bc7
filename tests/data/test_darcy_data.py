"""Darcy datasets: netCDF round trip, PDEBench 2D DarcyFlow layout, overwrite refusal, the CLI.
Small grids (16 x 16, a few samples), so the file runs in seconds.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from surrogates.cli import main
from surrogates.data.common import dataset_config, write_netcdf
from surrogates.data.darcy import DarcyDataConfig, generate_darcy, open_darcy
from surrogates.data.pdebench import (
    pdebench_darcy_file_name,
    read_pdebench_darcy,
    write_pdebench_darcy,
)
from surrogates.solvers.darcy import piecewise_constant_coefficient, solve_darcy

SMALL = {"n_samples": 5, "n": 16, "batch_size": 2}


@pytest.fixture(scope="module")
def dataset():
    return generate_darcy(DarcyDataConfig(**SMALL), show_progress=False)


def test_dataset_layout_and_netcdf_round_trip(dataset, tmp_path):
    ds = dataset
    assert ds["a"].dims == ("sample", "y", "x") and ds["u"].dims == ("sample", "y", "x")
    assert ds["a"].shape == (5, 16, 16) and ds["u"].dtype == np.float64
    np.testing.assert_allclose(ds["x"].values, (np.arange(16) + 0.5) / 16)
    np.testing.assert_allclose(ds["y"].values, ds["x"].values)
    for name in ("a", "u", "iterations"):
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"]
    config = dataset_config(ds)
    assert config["coefficient"] == "piecewise" and config["tol"] == 1e-10
    assert config["n"] == 16 and config["seed"] == 0
    # batching (2 + 2 + 1 padded) does not change a sample
    ref = solve_darcy(piecewise_constant_coefficient(1, 16, 0, sample_offset=4)[0])
    np.testing.assert_array_equal(ds["a"].values[4],
                                  piecewise_constant_coefficient(5, 16, 0)[4])
    np.testing.assert_allclose(ds["u"].values[4], ref.u, rtol=1e-12, atol=1e-15)
    path = write_netcdf(ds, tmp_path / "darcy.nc")
    back = open_darcy(path)
    np.testing.assert_array_equal(back["a"].values, ds["a"].values)
    np.testing.assert_array_equal(back["u"].values, ds["u"].values)
    assert back.attrs["config"] == ds.attrs["config"]
    with pytest.raises(FileExistsError, match="overwrite"):
        write_netcdf(ds, path)


def test_pdebench_darcy_layout_names_shapes_dtypes(dataset, tmp_path):
    assert pdebench_darcy_file_name(1.0) == "2D_DarcyFlow_beta1.0_Train.hdf5"
    assert pdebench_darcy_file_name(0.01) == "2D_DarcyFlow_beta0.01_Train.hdf5"
    assert pdebench_darcy_file_name(100) == "2D_DarcyFlow_beta100.0_Train.hdf5"
    path = tmp_path / pdebench_darcy_file_name(1.0)
    a, u = dataset["a"].values, dataset["u"].values
    write_pdebench_darcy(path, a, u, 1.0)
    with h5py.File(path, "r") as f:
        assert set(f.keys()) == {"nu", "tensor", "x-coordinate", "y-coordinate"}
        assert f["nu"].shape == (5, 16, 16) and f["nu"].dtype == np.float32
        assert f["tensor"].shape == (5, 1, 16, 16) and f["tensor"].dtype == np.float32
        assert f["x-coordinate"].shape == (16,) and f["y-coordinate"].shape == (16,)
        assert f["x-coordinate"].dtype == np.float32
        assert f.attrs["beta"] == 1.0
        np.testing.assert_allclose(f["tensor"][:, 0], u, rtol=1e-6)
    back = read_pdebench_darcy(path)
    assert back["a"].dims == ("sample", "y", "x") and back.attrs["beta"] == 1.0
    np.testing.assert_allclose(back["a"].values, a, rtol=1e-7)
    np.testing.assert_allclose(back["u"].values, u, rtol=1e-6)
    np.testing.assert_allclose(back["x"].values, (np.arange(16) + 0.5) / 16, rtol=1e-7)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_pdebench_darcy(path, a, u, 1.0)
    write_pdebench_darcy(path, a[:2], u[:2], 1.0, overwrite=True)
    assert read_pdebench_darcy(path).sizes["sample"] == 2
    with pytest.raises(ValueError, match="shape"):
        write_pdebench_darcy(tmp_path / "bad.hdf5", a, u[:, :8], 1.0)


def test_config_errors():
    with pytest.raises(ValueError, match="coefficient"):
        DarcyDataConfig(coefficient="gaussian")
    with pytest.raises(ValueError, match="n_samples"):
        DarcyDataConfig(n_samples=0)
    with pytest.raises(ValueError, match="tol"):
        DarcyDataConfig(tol=0.0)
    assert DarcyDataConfig(dtype="float32").tol == 1e-5


def test_cli_generate_darcy_writes_netcdf_and_pdebench_and_refuses_overwrite(tmp_path):
    out, folder = tmp_path / "d.nc", tmp_path / "pdebench"
    folder.mkdir()
    toml = tmp_path / "c.toml"
    toml.write_text('coefficient = "lognormal"\nbatch_size = 3\n')
    args = ["generate", "darcy", "--out", str(out), "--pdebench", str(folder), "--n-samples",
            "3", "--n", "16", "--seed", "2", "--config", str(toml)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ds = open_darcy(out)
    config = json.loads(ds.attrs["config"])
    assert config["coefficient"] == "lognormal" and config["seed"] == 2
    assert ds["a"].shape == (3, 16, 16) and float(ds["a"].min()) > 0
    pde = read_pdebench_darcy(folder / "2D_DarcyFlow_beta1.0_Train.hdf5")
    np.testing.assert_allclose(pde["u"].values, ds["u"].values, rtol=1e-6)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "overwrite" in again.output
    assert CliRunner().invoke(main, [*args, "--overwrite"]).exit_code == 0
    bad = CliRunner().invoke(main, ["generate", "darcy", "--out", str(tmp_path / "x.nc"),
                                    "--n", "67"])
    assert bad.exit_code == 1 and "MAX_COARSEST" in bad.output
