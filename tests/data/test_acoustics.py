"""Room-acoustics datasets: schema, netCDF and DeepONet-HDF5 round trips, the reference layout,
branch inputs, the torch hand-over and its point order, and error metrics."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from surrogates.data import acoustics as acoustic
from surrogates.data import acoustics_h5 as deeponet_h5
from surrogates.metrics import acoustics as acoustic_metrics

C, SIGMA, AMP = 343.0, 0.2, 2.0


def travelling_pulse(d=2, n=3, n_t=5, sizes=(9, 7, 5), seed=0, receivers=False):
    """Analytic outgoing pulse p = A exp(-(r - c t)^2 / (2 sigma^2)) around random sources."""
    rng = np.random.default_rng(seed)
    room = np.array([2.0, 1.5, 1.0])[:d]
    coords = [np.linspace(0.0, room[j], sizes[j]) for j in range(d)]
    times = np.arange(n_t) * 2e-4
    sources = rng.uniform(0.3, 0.7, size=(n, d)) * room
    grids = np.meshgrid(*coords, indexing="ij")
    nodes = np.stack(grids, axis=-1)  # (*sizes, d)
    r = np.linalg.norm(nodes[None] - sources[:, None, None, :] if d == 2
                       else nodes[None] - sources[:, None, None, None, :], axis=-1)
    field = AMP * np.exp(-(r[:, None] - C * times[None, :, *([None] * d)]) ** 2
                         / (2 * SIGMA ** 2))
    kw = {}
    if receivers:
        positions = np.array([[0.5, 0.5, 0.5][:d], [1.0, 0.75, 0.25][:d]])
        rr = np.linalg.norm(positions[None] - sources[:, None], axis=-1)  # (n, R)
        kw = {"receivers": AMP * np.exp(-(rr[:, None] - C * times[None, :, None]) ** 2
                                        / (2 * SIGMA ** 2)),
              "receiver_positions": positions}
    attrs = {"c": C, "rho": 1.2, "pulse_width": SIGMA, "amplitude": AMP, "fmax": 1000.0,
             "solver": "analytic", "config": {"n": n}}
    return acoustic.acoustic_dataset(field, times, coords, sources, attrs=attrs, **kw)


def test_dataset_schema_and_units():
    ds = travelling_pulse(d=3, receivers=True)
    acoustic.check_acoustic(ds)
    assert ds["pressure"].dims == ("sample", "time", "x", "y", "z")
    assert ds["pressure"].attrs["units"] == "Pa"
    assert ds["receiver_pressure"].dims == ("sample", "time", "receiver")
    for name in ("source_x", "source_z", "receiver_y", "x", "z"):
        assert ds[name].attrs["units"] == "m" and ds[name].attrs["long_name"]
    assert ds["time"].attrs["units"] == "s"
    assert ds.attrs["c"] == C and ds.attrs["config"] == '{"n": 3}'
    bad = ds.copy()
    bad["pressure"].attrs = {}
    with pytest.raises(ValueError, match="'pressure' has no 'units'"):
        acoustic.check_acoustic(bad)
    with pytest.raises(ValueError, match="source_y"):
        acoustic.check_acoustic(ds.drop_vars("source_y"))


def test_netcdf_round_trip_is_exact(tmp_path):
    ds = travelling_pulse(d=2, receivers=True)
    path = acoustic.write_acoustic(ds, tmp_path / "room.nc")
    back = acoustic.open_acoustic(path)
    xr.testing.assert_identical(back, ds)
    with pytest.raises(FileExistsError, match="overwrite"):
        acoustic.write_acoustic(ds, path)
    acoustic.write_acoustic(ds, path, overwrite=True)
    lazy = acoustic.open_acoustic(path, chunks={})
    np.testing.assert_array_equal(lazy["pressure"].values, ds["pressure"].values)


@pytest.mark.parametrize("d", [2, 3])
def test_hdf5_round_trip_is_exact(tmp_path, d):
    ds = travelling_pulse(d=d, n=3)
    sensors = acoustic.sensor_grid([2.0, 1.5, 1.0][:d], 3)
    paths = [deeponet_h5.write_deeponet_h5(ds, s, tmp_path / f"src{s}.h5", sensor_grid=sensors)
             for s in range(3)]
    back = deeponet_h5.read_deeponet_h5(paths)
    acoustic.check_acoustic(back)
    for name in ("pressure", "time", *acoustic.AXES[:d],
                 *(f"source_{a}" for a in acoustic.AXES[:d])):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back[name].dims == ds[name].dims
    for key in ("c", "rho", "pulse_width", "amplitude", "fmax", "solver", "config"):
        assert back.attrs[key] == ds.attrs[key]
    assert back.attrs["dt"] == pytest.approx(2e-4) and back.attrs["tmax"] == ds.time.values[-1]
    assert list(back["file"].values) == ["src0.h5", "src1.h5", "src2.h5"]
    np.testing.assert_array_equal(back["sensor_x"].values, sensors[:, 0])
    # the stored /upressures is the Gaussian pulse at the sensors
    np.testing.assert_allclose(back["branch_pressure"].values,
                               acoustic.branch_inputs(ds, sensors=sensors), rtol=1e-15)
    with h5py.File(paths[1], "r") as f:
        assert f["pressures"].shape == (ds.sizes["time"], np.prod(ds["pressure"].shape[2:]))
        np.testing.assert_array_equal(f.attrs["source_position"],
                                      [float(ds[f"source_{a}"][1]) for a in acoustic.AXES[:d]])
        np.testing.assert_array_equal(f["mesh"][()], acoustic.node_coordinates(ds))


def test_hdf5_refuses_to_overwrite(tmp_path):
    ds = travelling_pulse()
    sensors = acoustic.sensor_grid([2.0, 1.5], 2)
    path = deeponet_h5.write_deeponet_h5(ds, 0, tmp_path / "a.h5", sensor_grid=sensors)
    with pytest.raises(FileExistsError, match="overwrite"):
        deeponet_h5.write_deeponet_h5(ds, 1, path, sensor_grid=sensors)
    deeponet_h5.write_deeponet_h5(ds, 1, path, sensor_grid=sensors, overwrite=True)
    assert float(deeponet_h5.read_deeponet_h5(path)["source_x"][0]) == float(ds.source_x[1])
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5"]  # no temporary files left


def write_reference_file(path, mesh, pressures, source, dt, conn=None, on_pressures=True):
    """The reference code's layout, written with h5py directly (attributes on /pressures)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("mesh", data=mesh)
        if conn is not None:
            f.create_dataset("conn", data=conn)
        f.create_dataset("umesh", data=mesh[:2])
        f.create_dataset("upressures", data=np.array([1.0, 0.5]))
        dset = f.create_dataset("pressures", data=pressures)
        target = dset if on_pressures else f
        target.attrs["dt"] = dt
        target.attrs["c"] = C
        target.attrs["rho"] = 1.2
        target.attrs["fmax"] = 1000.0
        target.attrs["tmax"] = dt * (pressures.shape[0] - 1)
        target.attrs["source_position"] = source


def test_reads_hand_written_reference_file_on_a_shuffled_grid(tmp_path):
    xs, ys = np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.25])
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    grid_p = np.arange(4 * 6, dtype=float).reshape(4, 3, 2)  # (n_t, nx, ny)
    # store nodes in a scrambled order (y fastest would be C order; use a permutation)
    perm = np.array([3, 0, 5, 1, 4, 2])
    mesh = np.stack([gx.ravel(), gy.ravel()], axis=1)[perm]
    pressures = grid_p.reshape(4, 6)[:, perm]
    write_reference_file(tmp_path / "ref.h5", mesh, pressures, [0.4, 0.1], dt=1e-3)
    ds = deeponet_h5.read_deeponet_h5([tmp_path / "ref.h5"])
    assert ds["pressure"].dims == ("sample", "time", "x", "y")
    np.testing.assert_array_equal(ds["x"].values, xs)
    np.testing.assert_array_equal(ds["y"].values, ys)
    np.testing.assert_array_equal(ds["pressure"].values[0], grid_p)
    np.testing.assert_allclose(ds["time"].values, np.arange(4) * 1e-3)
    assert ds.attrs["c"] == C and ds.attrs["dt"] == 1e-3 and "source_position" not in ds.attrs
    assert (float(ds.source_x[0]), float(ds.source_y[0])) == (0.4, 0.1)
    np.testing.assert_array_equal(ds["branch_pressure"].values, [[1.0, 0.5]])


def test_reads_unstructured_reference_files(tmp_path):
    rng = np.random.default_rng(1)
    mesh = rng.uniform(size=(7, 3))
    conn = np.array([[0, 1, 2, 3], [3, 4, 5, 6]])
    p = [rng.normal(size=(3, 7)) for _ in range(2)]
    for i in range(2):
        write_reference_file(tmp_path / f"m{i}.h5", mesh, p[i], [0.1 * i, 0.2, 0.3], dt=5e-4,
                             conn=conn, on_pressures=bool(i))
    ds = deeponet_h5.read_deeponet_h5([tmp_path / "m0.h5", tmp_path / "m1.h5"])
    acoustic.check_acoustic(ds)
    assert ds["pressure"].dims == ("sample", "time", "point")
    np.testing.assert_array_equal(ds["pressure"].values, np.stack(p))
    np.testing.assert_array_equal(acoustic.node_coordinates(ds), mesh)
    np.testing.assert_array_equal(ds["connectivity"].values, conn)
    np.testing.assert_array_equal(ds["source_x"].values, [0.0, 0.1])
    # the trunk order matches the pressure flattening on a mesh too
    grid = acoustic.trunk_grid(ds)
    np.testing.assert_array_equal(grid[7 * 2 + 5], [*mesh[5], ds.time.values[2]])
    # the point layout round-trips through netCDF and the HDF5 writer too
    back = acoustic.open_acoustic(acoustic.write_acoustic(ds, tmp_path / "mesh.nc"))
    xr.testing.assert_identical(back, ds)
    again = deeponet_h5.read_deeponet_h5(deeponet_h5.write_deeponet_h5(
        ds, 1, tmp_path / "again.h5", sensor_grid=mesh[:2], pulse=[1.0, 0.5]))
    np.testing.assert_array_equal(again["pressure"].values, ds["pressure"].values[1:])
    np.testing.assert_array_equal(again["connectivity"].values, conn)
    np.testing.assert_array_equal(acoustic.node_coordinates(again), mesh)
    # files that disagree are named
    write_reference_file(tmp_path / "other.h5", mesh[::-1].copy(), p[0], [0, 0, 0], dt=5e-4)
    with pytest.raises(ValueError, match=r"other\.h5: /mesh differs"):
        deeponet_h5.read_deeponet_h5([tmp_path / "m0.h5", tmp_path / "other.h5"])
    write_reference_file(tmp_path / "dt.h5", mesh, p[0], [0, 0, 0], dt=1e-3)
    with pytest.raises(ValueError, match=r"dt\.h5"):
        deeponet_h5.read_deeponet_h5([tmp_path / "m0.h5", tmp_path / "dt.h5"])


def test_sensor_grid_and_branch_inputs_match_formula():
    sensors = acoustic.sensor_grid([2.0, 1.0], (3, 2), origin=[1.0, 0.0])
    np.testing.assert_array_equal(sensors, [[1, 0], [1, 1], [2, 0], [2, 1], [3, 0], [3, 1]])
    assert acoustic.sensor_grid([2.0, 1.0, 4.0], 1).tolist() == [[1.0, 0.5, 2.0]]
    ds = travelling_pulse(d=2, n=4)
    sensors = acoustic.sensor_grid([2.0, 1.5], 4)
    b = acoustic.branch_inputs(ds, "pulse", sensors=sensors)
    assert b.shape == (4, 16)
    s = np.stack([ds.source_x.values, ds.source_y.values], axis=1)
    i, j = 2, 9
    expected = AMP * np.exp(-((sensors[j] - s[i]) ** 2).sum() / (2 * SIGMA ** 2))
    assert b[i, j] == pytest.approx(expected, rel=1e-14)
    b2 = acoustic.branch_inputs(ds, sensors=sensors, pulse_width=0.1, amplitude=1.0)
    assert b2[i, j] == pytest.approx(np.exp(-((sensors[j] - s[i]) ** 2).sum() / 0.02))
    np.testing.assert_array_equal(acoustic.branch_inputs(ds, "coordinates"), s)
    # the pulse at the sensors equals the field at t = 0 where a sensor is a grid node
    node = acoustic.node_coordinates(ds)[10]
    value = acoustic.branch_inputs(ds, sensors=node[None])[:, 0]
    np.testing.assert_allclose(value, ds.pressure.isel(time=0).values.reshape(4, -1)[:, 10])


def test_torch_dataset_shapes_and_trunk_order():
    ds = travelling_pulse(d=3, n=4, n_t=3, sizes=(4, 3, 2))
    full = acoustic.deeponet_torch(ds, [1, 3], branch="coordinates", dtype=torch.float64)
    assert len(full) == 2
    (b, trunk), target = full[1]
    n_pts = 3 * 4 * 3 * 2
    assert b.shape == (3,) and trunk.shape == (n_pts, 4) and target.shape == (n_pts,)
    np.testing.assert_array_equal(b.numpy(), [float(ds[f"source_{a}"][3]) for a in "xyz"])
    grid = acoustic.trunk_grid(ds)
    np.testing.assert_array_equal(trunk.numpy(), grid)
    np.testing.assert_array_equal(target.numpy(), ds.pressure.values[3].reshape(-1))
    # a trunk point's pressure is the array entry at those coordinates
    it, ix, iy, iz = 2, 3, 1, 1
    row = ((it * 4 + ix) * 3 + iy) * 2 + iz
    x, y, z, t = grid[row]
    assert (x, y, z, t) == (ds.x.values[ix], ds.y.values[iy], ds.z.values[iz],
                            ds.time.values[it])
    assert target[row].item() == ds.pressure.values[3, it, ix, iy, iz]

    sampled = acoustic.deeponet_torch(ds, [0, 2], branch="pulse",
                                      sensors=acoustic.sensor_grid([2.0, 1.5, 1.0], 2),
                                      points_per_sample=50, seed=3, dtype=torch.float64)
    (b, trunk), target = sampled[0]
    assert b.shape == (8,) and trunk.shape == (50, 4) and target.shape == (50,)
    # every drawn point carries the pressure at its coordinates
    field = ds.pressure.values[0]
    for k in range(50):
        x, y, z, t = trunk[k].numpy()
        idx = (np.flatnonzero(ds.time.values == t)[0], np.flatnonzero(ds.x.values == x)[0],
               np.flatnonzero(ds.y.values == y)[0], np.flatnonzero(ds.z.values == z)[0])
        assert target[k].item() == field[idx]
    again = sampled[0][0][1]
    assert torch.equal(again, trunk)  # reproducible
    sampled.set_epoch(1)
    assert not torch.equal(sampled[0][0][1], trunk)  # new points next epoch
    loader = torch.utils.data.DataLoader(sampled, batch_size=2)
    (bb, tt), yy = next(iter(loader))
    assert bb.shape == (2, 8) and tt.shape == (2, 50, 4) and yy.shape == (2, 50)
    assert torch.equal(sampled.trunk_grid(), torch.as_tensor(grid))


def test_field_and_receiver_errors_against_hand_values():
    true = np.array([[[3.0, 4.0]], [[1.0, 0.0]]])  # (2, 1, 2)
    pred = np.array([[[3.0, 5.0]], [[0.0, 0.0]]])
    out = acoustic_metrics.field_errors(pred, true)
    np.testing.assert_allclose(out["rmse"], [np.sqrt(0.5), np.sqrt(0.5)])
    np.testing.assert_allclose(out["rel_l2"], [1 / 5, 1.0])
    assert out["rmse_mean"] == pytest.approx(np.sqrt(0.5))
    assert out["rel_l2_mean"] == pytest.approx(0.6)
    torch_out = acoustic_metrics.field_errors(torch.tensor(pred), xr.DataArray(true))
    np.testing.assert_allclose(torch_out["rel_l2"], out["rel_l2"])

    true_r = np.zeros((2, 4, 2))
    true_r[:, :, 0] = [[1, 2, 2, 0], [0, 0, 3, 4]]
    pred_r = true_r.copy()
    pred_r[0, 0, 0] += 3.0
    pred_r[1, :, 1] = 2.0  # a receiver the pulse has not reached: reference all zero
    rec = acoustic_metrics.receiver_errors(pred_r, true_r)
    np.testing.assert_allclose(rec["rmse"], [[1.5, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(rec["rel_l2"][0, 0], 1.0)
    assert rec["rel_l2"][1, 0] == 0.0 and np.isnan(rec["rel_l2"][:, 1]).all()
    np.testing.assert_allclose(rec["rmse_mean"], [0.75, 1.0])
    assert rec["rel_l2_mean"][0] == pytest.approx(0.5) and np.isnan(rec["rel_l2_mean"][1])


def test_bad_inputs_raise(tmp_path):
    ds = travelling_pulse()
    field = ds.pressure.values
    times, coords = ds.time.values, [ds.x.values, ds.y.values]
    sources = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"field must have shape .*\(B, 5, 9, 7\)"):
        acoustic.acoustic_dataset(field[:, :, :8], times, coords, sources)
    with pytest.raises(ValueError, match=r"sources must have shape \(B, d\) = \(3, 2\)"):
        acoustic.acoustic_dataset(field, times, coords, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="strictly increasing"):
        acoustic.acoustic_dataset(field, times[::-1], coords, sources)
    with pytest.raises(ValueError, match="2 or 3"):
        acoustic.acoustic_dataset(field, times, [coords[0]], sources)
    with pytest.raises(ValueError, match="together"):
        acoustic.acoustic_dataset(field, times, coords, sources, receivers=np.zeros((3, 5, 1)))
    with pytest.raises(ValueError, match=r"receivers must have shape \(B, n_t, R\)"):
        acoustic.acoustic_dataset(field, times, coords, sources, receivers=np.zeros((3, 4, 1)),
                                  receiver_positions=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="kind"):
        acoustic.branch_inputs(ds, "spectrum")
    with pytest.raises(ValueError, match="sensor positions"):
        acoustic.branch_inputs(ds, "pulse")
    with pytest.raises(ValueError, match=r"sensors must have shape \(n_sensors, 2\)"):
        acoustic.branch_inputs(ds, sensors=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="pulse width"):
        acoustic.branch_inputs(ds.drop_attrs(), sensors=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="points_per_sample"):
        acoustic.deeponet_torch(ds, points_per_sample=0, branch="coordinates")
    with pytest.raises(ValueError, match="samples"):
        acoustic.deeponet_torch(ds, [5], branch="coordinates")
    with pytest.raises(ValueError, match="n_per_axis"):
        acoustic.sensor_grid([1.0, 1.0], 0)
    with pytest.raises(ValueError, match="room_size"):
        acoustic.sensor_grid([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="same shape"):
        acoustic_metrics.field_errors(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(B, n_t, R\)"):
        acoustic_metrics.receiver_errors(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))
    sensors = np.zeros((4, 2))
    with pytest.raises(ValueError, match="sample must be an integer index"):
        deeponet_h5.write_deeponet_h5(ds, 3, tmp_path / "x.h5", sensor_grid=sensors)
    with pytest.raises(ValueError, match=r"pulse must have shape \(n_sensors,\) = \(4,\)"):
        deeponet_h5.write_deeponet_h5(ds, 0, tmp_path / "x.h5", sensor_grid=sensors,
                                   pulse=np.zeros(3))
    uneven = ds.assign_coords(time=ds.time.values * [1, 1, 1.5, 1.5, 1.5] + [0, 0, 0, 0, 1e-3])
    uneven["time"].attrs["units"] = "s"
    with pytest.raises(ValueError, match="uniformly spaced"):
        deeponet_h5.write_deeponet_h5(uneven, 0, tmp_path / "x.h5", sensor_grid=sensors)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        deeponet_h5.read_deeponet_h5(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("mesh", data=np.zeros((4, 2)))
        f.create_dataset("pressures", data=np.zeros((3, 5)))
        f.attrs["source_position"] = [0.0, 0.0]
        f.attrs["dt"] = 1.0
    with pytest.raises(ValueError, match=r"/pressures must have shape \(N_t, N_points\)"):
        deeponet_h5.read_deeponet_h5(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "nosrc.h5", "w") as f:
        f.create_dataset("mesh", data=np.zeros((4, 2)))
        f.create_dataset("pressures", data=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="source_position"):
        deeponet_h5.read_deeponet_h5(tmp_path / "nosrc.h5")
    assert not (tmp_path / "x.h5").exists()
