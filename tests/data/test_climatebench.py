"""ClimateBench data layer: loader layout and units, split, NRMSE metrics, synthetic generator."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from surrogates.data.climatebench import (
    ALL_EXPERIMENTS,
    TEST_EXPERIMENTS,
    TRAIN_EXPERIMENTS,
    global_mean,
    lat_weights,
    open_experiment,
    open_split,
)
from surrogates.data.climatebench_synthetic import (
    SyntheticClimateBenchConfig,
    energy_balance,
    forcing_from_emissions,
    generate_synthetic,
    response_patterns,
)
from surrogates.metrics.climatebench import global_nrmse, nrmse_scores, spatial_nrmse

LAT = np.array([-60.0, 0.0, 60.0])  # cos weights 0.5, 1, 0.5 -> 0.25, 0.5, 0.25


def _write_layout(folder, experiment, years, *, n_lat=8, n_lon=12, members=2, lat_shift=0.0,
                  transpose=False):
    """Hand-made files in ClimateBench's layout (pr in kg m-2 s-1, latitude/longitude inputs)."""
    lat = np.linspace(-82.5, 82.5, n_lat)
    lon = np.arange(n_lon) * 360.0 / n_lon
    t = len(years)
    ramp = np.arange(t, dtype=float)
    inputs = xr.Dataset(
        {"CO2": ("time", 100.0 * ramp), "CH4": ("time", 0.3 + 0.0 * ramp),
         "SO2": (("time", "latitude", "longitude"), np.ones((t, n_lat, n_lon))),
         "BC": (("time", "latitude", "longitude"), 2 * np.ones((t, n_lat, n_lon)))},
        coords={"time": np.asarray(years), "latitude": lat, "longitude": lon})
    member = np.arange(members)[:, None, None, None]
    base = np.ones((members, t, n_lat, n_lon)) * (1.0 + member)
    outputs = xr.Dataset(
        {"tas": (("member", "time", "lat", "lon"), base),
         "diurnal_temperature_range": (("member", "time", "lat", "lon"), 0.1 * base),
         "pr": (("member", "time", "lat", "lon"), base / 86400.0,
                {"units": "kg m-2 s-1"}),
         "pr90": (("member", "time", "lat", "lon"), 3 * base / 86400.0,
                  {"units": "kg m-2 s-1"})},
        coords={"member": np.arange(members), "time": np.asarray(years),
                "lat": lat + lat_shift, "lon": lon})
    if transpose:  # dimension order is not part of the layout
        outputs = outputs.transpose("time", "lat", "lon", "member")
    inputs.to_netcdf(folder / f"inputs_{experiment}.nc")
    outputs.to_netcdf(folder / f"outputs_{experiment}.nc")


# ----------------------------------------------------------------------------------- loader
def test_loader_units_coordinates_and_laziness(tmp_path):
    _write_layout(tmp_path, "ssp245", [2080, 2081, 2082])
    ds = open_experiment(tmp_path, "ssp245")
    assert ds["tas"].chunks is not None  # dask-backed: lazy
    assert ds["SO2"].dims == ("time", "lat", "lon")
    assert ds["tas"].dims == ("member", "time", "lat", "lon")
    assert "latitude" not in ds.dims and ds.sizes["lat"] == 8 and ds.sizes["lon"] == 12
    assert ds["time"].values.tolist() == [2080, 2081, 2082]
    # kg m-2 s-1 x 86400 -> mm/day: member m holds (1 + m) mm/day for pr, 3 (1 + m) for pr90
    np.testing.assert_allclose(ds["pr"].isel(member=1).values, 2.0, rtol=1e-12)
    np.testing.assert_allclose(ds["pr90"].isel(member=0).values, 3.0, rtol=1e-12)
    assert ds["pr"].attrs["units"] == "mm day-1"
    np.testing.assert_allclose(ds["tas"].values[0], 1.0)  # temperatures are not rescaled
    assert ds["CO2"].attrs["units"] == "GtCO2"


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="inputs_ssp245.nc"):
        open_experiment(tmp_path, "ssp245")
    _write_layout(tmp_path, "ssp245", [2080, 2081], lat_shift=1.0)
    with pytest.raises(ValueError, match="lat grid"):
        open_experiment(tmp_path, "ssp245")
    xr.Dataset({"CO2": (("time", "x"), np.zeros((2, 2)))},
               coords={"time": [1, 2]}).to_netcdf(tmp_path / "inputs_bad.nc")
    with pytest.raises(ValueError, match="ClimateBench layout"):
        open_experiment(tmp_path, "bad")


def test_split_membership_and_member_mean(tmp_path):
    for e in ALL_EXPERIMENTS:
        _write_layout(tmp_path, e, [2079, 2080, 2081], n_lat=4, n_lon=6,
                      transpose=e == "ssp245")
    split = open_split(tmp_path)
    assert set(split.train) == {"ssp126", "ssp370", "ssp585", "historical", "hist-GHG",
                                "hist-aer"}
    assert list(split.test) == ["ssp245"] and TEST_EXPERIMENTS == ("ssp245",)
    assert "member" in split.train["ssp126"].dims
    assert split.test["ssp245"]["tas"].dims == ("time", "lat", "lon")  # stored transposed
    np.testing.assert_allclose(split.test["ssp245"]["tas"].values, 1.5)  # mean of 1 and 2
    with pytest.raises(ValueError, match="both"):
        open_split(tmp_path, train=TRAIN_EXPERIMENTS + ("ssp245",))


# ----------------------------------------------------------------------------------- metrics
def test_weights_and_global_mean_by_hand():
    np.testing.assert_allclose(lat_weights(LAT), [0.25, 0.5, 0.25])
    field = np.array([[4.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert global_mean(field, LAT) == pytest.approx(0.25 * 2 + 0.5 * 1)


def test_nrmse_against_hand_values():
    truth = np.full((2, 3, 2), 2.0)
    error = np.zeros((2, 3, 2))
    error[0, 0] = 2.0  # first year, southern row: time-mean error 1 there
    prediction = truth + error
    # spatial: sqrt(0.25 * 1^2) / 2 = 0.25
    assert spatial_nrmse(truth, prediction, LAT) == pytest.approx(0.25)
    # global errors 0.5 and 0 -> sqrt(0.125) / 2
    assert global_nrmse(truth, prediction, LAT) == pytest.approx(np.sqrt(0.125) / 2)
    # absolute value of a negative global mean normalises
    assert spatial_nrmse(-truth, -prediction, LAT) == pytest.approx(0.25)
    coords = {"time": [2079, 2080], "lat": LAT, "lon": [0.0, 180.0]}
    dims = ("time", "lat", "lon")
    t = xr.Dataset({"tas": (dims, truth)}, coords=coords)
    p = xr.Dataset({"tas": (dims, prediction)}, coords=coords)
    scores = nrmse_scores(t, p, variables=["tas"], years=None)["tas"]
    assert scores["total"] == pytest.approx(0.25 + 5 * np.sqrt(0.125) / 2)
    # only 2080 scored: the error of 2079 is outside the window
    assert nrmse_scores(t, p, variables=["tas"])["tas"]["total"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="same shape"):
        spatial_nrmse(truth, prediction[:1], LAT)


# -------------------------------------------------------------------------------- synthetic
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cb")
    config = SyntheticClimateBenchConfig(n_lat=6, n_lon=8, members=2, start_year=1990)
    return generate_synthetic(folder, config), config


def test_synthetic_layout_labels_and_seed(synthetic, tmp_path):
    folder, config = synthetic
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"{k}_{e}.nc" for e in ALL_EXPERIMENTS
                            for k in ("inputs", "outputs")])
    raw = xr.open_dataset(folder / "outputs_ssp245.nc")
    assert raw.attrs["synthetic"] == 1 and "SYNTHETIC" in raw.attrs["title"]
    assert raw["pr"].attrs["units"] == "kg m-2 s-1"
    raw.close()
    ds = open_experiment(folder, "historical").load()
    assert ds["time"].values[[0, -1]].tolist() == [1990, 2014]
    assert open_experiment(folder, "ssp585")["time"].values[[0, -1]].tolist() == [2015, 2100]
    assert float(open_experiment(folder, "hist-aer")["CO2"].max()) == 0.0
    again = generate_synthetic(tmp_path / "again", config, experiments=["ssp245"])
    a, b = (open_experiment(f, "ssp245").load() for f in (folder, again))
    np.testing.assert_array_equal(a["tas"].values, b["tas"].values)
    other = generate_synthetic(tmp_path / "other", SyntheticClimateBenchConfig(
        n_lat=6, n_lon=8, members=2, start_year=1990, seed=1), experiments=["ssp245"])
    assert not np.allclose(open_experiment(other, "ssp245")["tas"].values, a["tas"].values)
    # members differ by internal variability; its size is about the configured 0.25 K
    spread = float(a["tas"].diff("member").std())
    assert 0.1 < spread < 0.6


def test_synthetic_physics_without_noise(tmp_path):
    config = SyntheticClimateBenchConfig(n_lat=6, n_lon=8, members=2, start_year=2000,
                                         variability=0.0, local_aerosol=0.0)
    folder = generate_synthetic(tmp_path, config, experiments=["ssp245"])
    ds = open_experiment(folder, "ssp245").load()
    np.testing.assert_array_equal(ds["tas"].values[0], ds["tas"].values[1])
    # global-mean tas is the energy-balance temperature (the pattern has global mean 1)
    from surrogates.data.climatebench_synthetic import _emissions

    years, emissions = _emissions("ssp245")
    forcing, cumulative = forcing_from_emissions(emissions)
    t = energy_balance(forcing)[years >= 2015]
    np.testing.assert_allclose(global_mean(ds["tas"].values[0], ds["lat"].values), t,
                               rtol=1e-10)
    np.testing.assert_allclose(ds["CO2"].values, cumulative[years >= 2015])
    patterns = response_patterns(ds["lat"].values, ds["lon"].values)
    np.testing.assert_allclose(ds["pr"].values[0, -1], patterns["pr"] * t[-1], rtol=1e-10)
    assert 1.5 < t[-1] < 4.0  # a plausible 2100 warming for a middle-of-the-road scenario


def test_energy_balance_equilibrium_and_stability():
    # constant 3.7 W m-2 for 3000 years approaches F / lambda = 3.7 / 1.2
    t = energy_balance(np.full(3000, 3.7))
    assert t[-1] == pytest.approx(3.7 / 1.2, rel=1e-3)
    assert t[0] == pytest.approx(3.7 / 8.0)
    with pytest.raises(ValueError, match="unstable"):
        energy_balance([1.0], C=1.0)
