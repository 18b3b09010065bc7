"""The shared dataset layer: atomic netCDF I/O, schema checks, splits, torch hand-over."""

import numpy as np
import pytest
import torch
import xarray as xr

from operators.normalization import Normalizer
from surrogates.data import common


def small_dataset(n_samples=10, n_time=4, n_k=6, seed=0):
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {"u": (("sample", "time", "k"), rng.normal(size=(n_samples, n_time, n_k))),
         "v": (("sample", "time", "k"), rng.normal(3.0, 2.0, size=(n_samples, n_time, n_k))),
         "nu": (("sample",), rng.uniform(1, 2, size=n_samples))},
        coords={"sample": np.arange(n_samples), "time": np.arange(n_time) * 0.1,
                "k": np.arange(n_k)})
    for name in ds.data_vars:
        ds[name].attrs = {"units": "1", "long_name": name}
    ds.attrs = common.provenance_attrs("test", {"a": 1, "b": [1, 2]}, "test data")
    return ds


def test_netcdf_round_trip_keeps_values_and_attributes(tmp_path):
    ds = small_dataset()
    path = common.write_netcdf(ds, tmp_path / "d.nc")
    back = common.open_netcdf(path)
    xr.testing.assert_identical(back, ds)
    assert common.dataset_config(back) == {"a": 1, "b": [1, 2]}
    lazy = common.open_netcdf(path, chunks={})
    assert lazy["u"].chunks is not None
    np.testing.assert_array_equal(lazy["u"].values, ds["u"].values)


def test_existing_file_is_refused_unless_overwrite(tmp_path):
    path = tmp_path / "d.nc"
    common.write_netcdf(small_dataset(seed=0), path)
    with pytest.raises(FileExistsError, match="overwrite"):
        common.write_netcdf(small_dataset(seed=1), path)
    np.testing.assert_array_equal(common.open_netcdf(path)["u"].values,
                                  small_dataset(seed=0)["u"].values)
    common.write_netcdf(small_dataset(seed=1), path, overwrite=True)
    np.testing.assert_array_equal(common.open_netcdf(path)["u"].values,
                                  small_dataset(seed=1)["u"].values)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "d.nc"

    def interrupted(self, target, **kwargs):
        with open(target, "wb") as f:
            f.write(b"CDF partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        common.write_netcdf(small_dataset(), path)
    assert list(tmp_path.iterdir()) == []


def test_missing_and_malformed_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.nc"):
        common.open_netcdf(tmp_path / "nowhere.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"this is not netCDF at all")
    with pytest.raises(ValueError, match="not a readable netCDF"):
        common.open_netcdf(bad)


def test_schema_check_names_what_differs():
    ds = small_dataset()
    common.check_schema(ds, {"u": ("sample", "time", "k")})
    with pytest.raises(ValueError, match=r"'u' has dims \('sample', 'time', 'k'\), expected "):
        common.check_schema(ds, {"u": ("sample", "k")})
    with pytest.raises(ValueError, match="missing variable 'w'"):
        common.check_schema(ds, {"w": ("sample",)})
    ds["u"].attrs.pop("units")
    with pytest.raises(ValueError, match="no 'units'"):
        common.check_schema(ds, {})


def test_split_is_a_seeded_partition():
    parts = common.split_samples(50, (0.7, 0.2, 0.1), seed=3)
    sizes = {k: len(v) for k, v in parts.items()}
    assert sizes == {"train": 35, "validation": 10, "test": 5}
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(50))
    again = common.split_samples(50, (0.7, 0.2, 0.1), seed=3)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(parts["test"], common.split_samples(50, (0.7, 0.2, 0.1),
                                                                  seed=4)["test"])
    with pytest.raises(ValueError, match="too few"):
        common.split_samples(3, (0.8, 0.1, 0.1))
    with pytest.raises(ValueError, match="sum"):
        common.split_samples(10, (0.5, 0.2, 0.1))


def test_stack_examples_broadcasts_parameters_into_channels():
    ds = small_dataset(n_samples=3, n_time=4, n_k=6)
    x = common.stack_examples(ds, ["u", "nu"], ["k"])
    assert x.shape == (12, 2, 6)
    # example (sample 1, time 2) is row 1 * 4 + 2
    np.testing.assert_array_equal(x[6, 0], ds["u"].values[1, 2])
    np.testing.assert_array_equal(x[6, 1], np.full(6, ds["nu"].values[1]))
    with pytest.raises(ValueError, match="not in the dataset"):
        common.stack_examples(ds, ["w"], ["k"])


def test_normalisers_are_fitted_on_the_training_split_only():
    ds = small_dataset(n_samples=20)
    ds["v"][{"sample": slice(0, 10)}] += 100.0  # shift half of the samples
    splits = common.to_torch(ds, inputs=["u"], targets=["v"], spatial_dims=["k"], seed=1)
    train_v = ds["v"].isel(sample=splits.indices["train"]).values
    assert splits.target_normalizer.mean.item() == pytest.approx(train_v.mean(), rel=1e-6)
    assert splits.target_normalizer.std.item() == pytest.approx(train_v.std(), rel=1e-5)
    assert abs(ds["v"].values.mean() - train_v.mean()) > 1.0
    assert len(splits.train) == 16 * 4 and len(splits.test) == 2 * 4
    x, y = splits.train[0]
    assert x.shape == (1, 6) and y.dtype == torch.float32


def test_normalizer_round_trip_and_shape_errors():
    x = torch.randn(8, 3, 5, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1]).view(1, 3, 1)
    norm = Normalizer(3).double().fit(x)
    z = norm.encode(x)
    torch.testing.assert_close(z.mean(dim=(0, 2)), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(z.std(dim=(0, 2), correction=0), torch.ones(3,
                                                                           dtype=torch.float64))
    torch.testing.assert_close(norm.decode(z), x)
    with pytest.raises(ValueError, match=r"\(batch, 3, \.\.\.\), got \(8, 2, 5\)"):
        norm.encode(x[:, :2])


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    import os

    from operators.base import atomic_write

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = atomic_write(tmp_path / "atomic.txt", lambda tmp: open(tmp, "w").write("x"))
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert os.access(atomic, os.R_OK)
