"""PLAID interop: a MeshDataset written with pyplaid's API and read back is the same data."""

import json

import numpy as np
import pytest

from surrogates.data.airfoil import (
    AirfoilDataConfig,
    generate_airfoil_dataset,
    open_airfoil_dataset,
)
from surrogates.data.plaid import read_plaid, write_plaid


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cfg = AirfoilDataConfig(n_shapes=2, conditions_per_shape=2, n_panels=40, growth=0.8,
                            mach_range=(0.0, 0.3), seed=3)
    return open_airfoil_dataset(generate_airfoil_dataset(cfg, tmp_path_factory.mktemp("pl")
                                                         / "airfoils"), lazy=False)


def test_round_trip_meshes_fields_scalars_and_splits(dataset, tmp_path):
    out = write_plaid(dataset, tmp_path / "plaid", splits={"train": [0, 1, 3], "test": [2]})
    assert (out / "surrogates_mesh_dataset.json").is_file()
    back = read_plaid(out)
    order = [0, 1, 3, 2]
    assert list(back.index["split"].values) == ["train"] * 3 + ["test"]
    assert back.input_names == dataset.input_names
    assert back.output_names == dataset.output_names
    assert sorted(back.field_names) == sorted(dataset.field_names)
    np.testing.assert_allclose(back.inputs(), dataset.inputs()[order])
    np.testing.assert_allclose(back.outputs(), dataset.outputs()[order])
    for k, i in enumerate(order):
        a, b = dataset.meshes[i], back.meshes[k]
        np.testing.assert_allclose(b.points, np.asarray(a.points)[:, :2])
        for name in dataset.field_names:
            np.testing.assert_allclose(b.point_data[name], a.point_data[name])
        tri_a = [c.data for c in a.cells if c.type == "triangle"][0]
        tri_b = [c.data for c in b.cells if c.type == "triangle"][0]
        np.testing.assert_array_equal(tri_a, tri_b)
        # wall and far-field edges keep their tags (1 wall, 2 far field)
        for tag in (1, 2):
            ea = np.concatenate([np.sort(c.data[t == tag], axis=1) for c, t in
                                 zip(a.cells, a.cell_data["boundary_tag"], strict=True)
                                 if c.type == "line"])
            eb = np.concatenate([np.sort(c.data[t == tag], axis=1) for c, t in
                                 zip(b.cells, b.cell_data["boundary_tag"], strict=True)
                                 if c.type == "line"])
            assert sorted(map(tuple, ea)) == sorted(map(tuple, eb))
    only_test = read_plaid(out, splits=["test"])
    assert len(only_test) == 1 and json.loads(only_test.index.attrs["inputs"]) == \
        dataset.input_names


def test_refusals(dataset, tmp_path):
    write_plaid(dataset, tmp_path / "p")
    with pytest.raises(FileExistsError):
        write_plaid(dataset, tmp_path / "p")
    with pytest.raises(ValueError, match="out of range"):
        write_plaid(dataset, tmp_path / "q", splits={"train": [0, 99]})
    with pytest.raises(ValueError, match="not in"):
        read_plaid(tmp_path / "p", splits=["nope"])
    with pytest.raises(FileNotFoundError):
        read_plaid(tmp_path / "missing")
