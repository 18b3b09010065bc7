"""PDEBench 1D HDF5 files: layout, names, reading, reduced resolution, concatenation, split."""

import json

import h5py
import numpy as np
import pytest

from surrogates.data import pdebench


def make_arrays(n=5, n_t=7, n_x=16, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, n_t, n_x)).astype(np.float32)
    x = (np.arange(n_x) + 0.5) / n_x  # cell centres on [0, 1]
    t = np.linspace(0.0, 2.0, n_t + 1)
    return u, x, t


def test_file_names_match_pdebench():
    assert pdebench.pdebench_file_name("advection", beta=0.4) == "1D_Advection_Sols_beta0.4.hdf5"
    assert pdebench.pdebench_file_name("advection", beta=2) == "1D_Advection_Sols_beta2.0.hdf5"
    assert pdebench.pdebench_file_name("advection", beta=0.1) == "1D_Advection_Sols_beta0.1.hdf5"
    assert pdebench.pdebench_file_name("burgers", Nu=1e-3) == "1D_Burgers_Sols_Nu0.001.hdf5"
    assert pdebench.pdebench_file_name("burgers", nu=0.01) == "1D_Burgers_Sols_Nu0.01.hdf5"
    assert (pdebench.pdebench_file_name("diffusion_reaction", nu=0.5, rho=1.0)
            == "ReacDiff_Nu0.5_Rho1.0.hdf5")
    assert (pdebench.pdebench_file_name("reacdiff", Nu=2.0, Rho=10)
            == "ReacDiff_Nu2.0_Rho10.0.hdf5")
    with pytest.raises(ValueError, match="missing"):
        pdebench.pdebench_file_name("diffusion_reaction", nu=0.5)
    with pytest.raises(ValueError, match="unknown"):
        pdebench.pdebench_file_name("navier_stokes", nu=0.5)


def test_written_file_has_pdebench_layout(tmp_path):
    u, x, t = make_arrays()
    u64 = u.astype(np.float64)
    path = pdebench.write_pdebench(tmp_path / "ReacDiff_Nu0.5_Rho1.0.hdf5", u64, x, t,
                                   {"Nu": 0.5, "Rho": 1.0})
    with h5py.File(path, "r") as f:
        assert set(f.keys()) == {"tensor", "x-coordinate", "t-coordinate"}
        assert f["tensor"].dtype == np.float32
        assert f["tensor"].shape == (5, 7, 16)
        assert f["x-coordinate"].shape == (16,)
        assert f["t-coordinate"].shape == (8,)  # N_t + 1
        np.testing.assert_array_equal(f["tensor"][()], u)
        np.testing.assert_array_equal(f["x-coordinate"][()], x)
        np.testing.assert_array_equal(f["t-coordinate"][()], t)
        assert dict(f.attrs) == {"Nu": 0.5, "Rho": 1.0}
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_validates_shapes(tmp_path):
    u, x, t = make_arrays()
    with pytest.raises(ValueError, match=r"N_t \+ 1 = 8"):
        pdebench.write_pdebench(tmp_path / "a.hdf5", u, x, t[:-1], {"beta": 0.4})
    with pytest.raises(ValueError, match=r"\(16,\)"):
        pdebench.write_pdebench(tmp_path / "a.hdf5", u, x[:-1], t, {"beta": 0.4})
    with pytest.raises(ValueError, match="N_samples, N_t, N_x"):
        pdebench.write_pdebench(tmp_path / "a.hdf5", u[0], x, t, {"beta": 0.4})
    assert not list(tmp_path.iterdir())


def test_round_trip_and_time_mapping(tmp_path):
    u, x, t = make_arrays()
    path = pdebench.write_pdebench(tmp_path / "1D_Advection_Sols_beta0.4.hdf5", u, x, t,
                                   {"beta": 0.4})
    ds = pdebench.read_pdebench(path)
    assert ds["u"].dims == ("sample", "time", "x")
    np.testing.assert_array_equal(ds["u"].values, u)
    np.testing.assert_array_equal(ds["x"].values, x)
    np.testing.assert_array_equal(ds["time"].values, t[:7])
    assert ds.attrs["t_coordinate_end"] == t[-1]
    np.testing.assert_array_equal(ds["beta"].values, np.full(5, 0.4))
    assert ds["beta"].dims == ("sample",)
    assert json.loads(ds.attrs["source_files"]) == [path.name]
    assert "PDEBench" in ds.attrs["format"]
    assert json.loads(ds.attrs["config"])["parameters"] == {"beta": 0.4}
    for name in [*ds.data_vars, "x", "time"]:
        assert "units" in ds[name].attrs
    lazy = pdebench.read_pdebench(path, chunks={"sample": 2})
    assert lazy["u"].chunks is not None
    np.testing.assert_array_equal(lazy["u"].values, u)


def test_reduced_resolution_is_stride_slicing(tmp_path):
    u, x, t = make_arrays(n=3, n_t=11, n_x=20)
    path = pdebench.write_pdebench(tmp_path / "b.hdf5", u, x, t, {"Nu": 0.01})
    ds = pdebench.read_pdebench(path, reduced_resolution=4, reduced_resolution_t=3)
    with h5py.File(path, "r") as f:
        raw = f["tensor"][()]
        raw_x = f["x-coordinate"][()]
        raw_t = f["t-coordinate"][()]
    np.testing.assert_array_equal(ds["u"].values, raw[:, ::3, ::4])
    assert ds["u"].shape == (3, 4, 5)
    np.testing.assert_array_equal(ds["x"].values, raw_x[::4])
    np.testing.assert_array_equal(ds["time"].values, raw_t[:11][::3])
    lazy = pdebench.read_pdebench(path, reduced_resolution=4, reduced_resolution_t=3, chunks={})
    np.testing.assert_array_equal(lazy["u"].values, raw[:, ::3, ::4])
    with pytest.raises(ValueError, match="positive integer"):
        pdebench.read_pdebench(path, reduced_resolution=0)


def test_two_advection_files_concatenate_with_beta_per_sample(tmp_path):
    u1, x, t = make_arrays(n=4, seed=1)
    u2, _, _ = make_arrays(n=3, seed=2)
    p1 = pdebench.write_pdebench(tmp_path / pdebench.pdebench_file_name("advection", beta=0.4),
                                 u1, x, t, {"beta": 0.4})
    p2 = pdebench.write_pdebench(tmp_path / pdebench.pdebench_file_name("advection", beta=2.0),
                                 u2, x, t, {"beta": 2.0})
    ds = pdebench.open_pdebench_files([p1, p2], reduced_resolution=2)
    assert ds.sizes["sample"] == 7
    np.testing.assert_array_equal(ds["sample"].values, np.arange(7))
    np.testing.assert_array_equal(ds["beta"].values, [0.4] * 4 + [2.0] * 3)
    np.testing.assert_array_equal(ds["file_index"].values, [0] * 4 + [1] * 3)
    np.testing.assert_array_equal(ds["u"].values,
                                  np.concatenate([u1, u2])[:, :, ::2])
    assert json.loads(ds.attrs["source_files"]) == [p1.name, p2.name]


def test_mismatched_grids_are_refused(tmp_path):
    u, x, t = make_arrays(n_x=16)
    u_fine, x_fine, _ = make_arrays(n_x=32)
    p1 = pdebench.write_pdebench(tmp_path / "a.hdf5", u, x, t, {"beta": 0.4})
    p2 = pdebench.write_pdebench(tmp_path / "b.hdf5", u_fine, x_fine, t, {"beta": 2.0})
    with pytest.raises(ValueError, match="different 'x' grid"):
        pdebench.open_pdebench_files([p1, p2])
    p3 = pdebench.write_pdebench(tmp_path / "c.hdf5", u, x, t * 2, {"beta": 2.0})
    with pytest.raises(ValueError, match="different 'time' grid"):
        pdebench.open_pdebench_files([p1, p3])
    p4 = pdebench.write_pdebench(tmp_path / "d.hdf5", u, x, t, {"Nu": 0.1})
    with pytest.raises(ValueError, match="parameters"):
        pdebench.open_pdebench_files([p1, p4])


def test_overwrite_refused_then_allowed(tmp_path):
    u, x, t = make_arrays()
    path = pdebench.write_pdebench(tmp_path / "a.hdf5", u, x, t, {"beta": 0.4})
    with pytest.raises(FileExistsError, match="overwrite"):
        pdebench.write_pdebench(path, 2 * u, x, t, {"beta": 0.4})
    np.testing.assert_array_equal(pdebench.read_pdebench(path)["u"].values, u)
    pdebench.write_pdebench(path, 2 * u, x, t, {"beta": 0.4}, overwrite=True)
    np.testing.assert_array_equal(pdebench.read_pdebench(path)["u"].values, 2 * u)


def test_no_partial_file_when_writer_raises(tmp_path):
    u, x, t = make_arrays()
    path = tmp_path / "a.hdf5"
    with pytest.raises(TypeError):  # h5py cannot store an object as an attribute
        pdebench.write_pdebench(path, u, x, t, {"beta": object()})
    assert not path.exists()
    assert not list(tmp_path.iterdir())


def test_read_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no PDEBench file"):
        pdebench.read_pdebench(tmp_path / "missing.hdf5")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        pdebench.read_pdebench(tmp_path / "text.hdf5")
    with h5py.File(tmp_path / "no_tensor.hdf5", "w") as f:
        f["x-coordinate"] = np.arange(4.0)
        f["t-coordinate"] = np.arange(3.0)
    with pytest.raises(ValueError, match=r"lacks the datasets \['tensor'\]"):
        pdebench.read_pdebench(tmp_path / "no_tensor.hdf5")
    with h5py.File(tmp_path / "bad_t.hdf5", "w") as f:
        f["tensor"] = np.zeros((2, 3, 4), np.float32)
        f["x-coordinate"] = np.arange(4.0)
        f["t-coordinate"] = np.arange(3.0)  # N_t, not N_t + 1
    with pytest.raises(ValueError, match=r"expected \(4,\) = N_t \+ 1"):
        pdebench.read_pdebench(tmp_path / "bad_t.hdf5")
    with h5py.File(tmp_path / "bad_x.hdf5", "w") as f:
        f["tensor"] = np.zeros((2, 3, 4), np.float32)
        f["x-coordinate"] = np.arange(5.0)
        f["t-coordinate"] = np.arange(4.0)
    with pytest.raises(ValueError, match="'x-coordinate' has shape"):
        pdebench.read_pdebench(tmp_path / "bad_x.hdf5")


def test_split_takes_exactly_the_first_ten_percent():
    split = pdebench.pdebench_split(10000)
    np.testing.assert_array_equal(split["test"], np.arange(1000))
    np.testing.assert_array_equal(split["train"], np.arange(1000, 10000))
    split = pdebench.pdebench_split(25)  # int(2.5) = 2
    np.testing.assert_array_equal(split["test"], [0, 1])
    np.testing.assert_array_equal(split["train"], np.arange(2, 25))
    assert pdebench.pdebench_split(9)["test"].size == 0
