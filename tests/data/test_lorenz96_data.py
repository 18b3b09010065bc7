"""Lorenz-96 datasets: schema, reproducibility, independence of batching, physical consistency."""

import dataclasses

import numpy as np
import pytest
import xarray as xr

from surrogates.data import common
from surrogates.data import lorenz96 as climate

SMALL = climate.Lorenz96DataConfig(n_samples=5, K=8, J=4, n_steps=40, save_every=10,
                                   spinup_steps=20, F_range=(8.0, 12.0), seed=7)


@pytest.fixture(scope="module")
def dataset():
    return climate.generate_lorenz96(SMALL, show_progress=False)


def test_schema_and_metadata(dataset):
    common.check_schema(dataset, climate.lorenz96_schema(dataset))
    assert dict(dataset.sizes) == {"sample": 5, "time": 5, "k": 8, "j": 4}
    np.testing.assert_allclose(dataset["time"].values, np.arange(5) * 10 * 0.005)
    assert common.dataset_config(dataset) == dataclasses.asdict(SMALL) | {"F_range": [8.0, 12.0]}
    for var in dataset.data_vars.values():
        assert var.attrs["units"] and var.attrs["long_name"]


def test_subgrid_forcing_is_the_coupling_term(dataset):
    expected = -(1.0 * 10.0 / 10.0) * dataset["Y"].sum("j")
    np.testing.assert_allclose(dataset["subgrid_forcing"].values, expected.values, rtol=1e-12,
                               atol=1e-12)


def test_per_sample_forcing_is_seeded_per_sample(dataset):
    F = dataset["F"].values
    assert np.all((F >= 8) & (F <= 12)) and np.unique(F).size == 5
    np.testing.assert_array_equal(climate.sample_forcing(SMALL, np.array([3, 4])), F[3:])


def test_samples_do_not_depend_on_batching(dataset):
    rebatched = climate.generate_lorenz96(dataclasses.replace(SMALL, batch_size=2),
                                          show_progress=False)
    xr.testing.assert_allclose(rebatched, dataset, rtol=1e-13, atol=1e-13)


def test_save_and_load(tmp_path, dataset):
    path = common.write_netcdf(dataset, tmp_path / "l96.nc")
    xr.testing.assert_identical(climate.open_lorenz96(path), dataset)


def test_loading_another_dataset_is_refused(tmp_path, dataset):
    path = common.write_netcdf(dataset.drop_vars("closure_target"), tmp_path / "other.nc")
    with pytest.raises(ValueError, match="not a Lorenz-96 dataset.*closure_target"):
        climate.open_lorenz96(path)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="n_samples"):
        climate.Lorenz96DataConfig(n_samples=0)
    with pytest.raises(ValueError, match="F_range"):
        climate.Lorenz96DataConfig(F_range=(12.0, 8.0))
