"""MMGP run folders through the CLI: generate airfoil -> train mmgp -> evaluate -> predict."""

import json

import meshio
import numpy as np
import pytest
from click.testing import CliRunner

from surrogates.cli import main
from surrogates.data.airfoil import open_airfoil_dataset
from surrogates.runs.airfoil import (
    RUN_KIND,
    MMGPRunConfig,
    load_mmgp_run,
    morpher,
    split_by_shape,
)


def _invoke(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmgp") / "airfoils"
    _invoke(["generate", "airfoil", "--out", out, "--n-shapes", 6, "--conditions-per-shape", 3,
             "--panels", 80, "--growth", 0.6, "--mach", "0,0.3", "--seed", 1])
    return out


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mmgp") / "run"
    output = _invoke(["train", "mmgp", "--data", data, "--out", run_dir, "--fields", "cp",
                      "--scalars", "cl,cd", "--inputs", "alpha,mach", "--restarts", 2,
                      "--max-iter", 100, "--test-fraction", 0.34])
    assert "fitted MMGP (rbf morphing)" in output
    return run_dir


def test_train_writes_run_folder_with_shape_split(run, data):
    cfg = json.loads((run / "run_config.json").read_text())
    assert cfg["kind"] == RUN_KIND
    assert cfg["config"]["morpher"] == "rbf" and cfg["config"]["inputs"] == ["alpha", "mach"]
    train, test = cfg["split"]["train"], cfg["split"]["test"]
    assert sorted(train + test) == list(range(18)) and len(test) == 6
    shapes = open_airfoil_dataset(data).index["shape_id"].values
    assert not set(shapes[train]) & set(shapes[test])  # whole shapes held out
    assert (run / "model" / "config.json").is_file()
    with pytest.raises(Exception, match="not empty"):
        CliRunner().invoke(main, ["train", "mmgp", "--data", str(data), "--out", str(run)],
                           catch_exceptions=False, standalone_mode=False)


def test_evaluate_metrics_and_plots_beat_the_mean(run, data):
    output = _invoke(["evaluate", run])
    assert "| cl |" in output and "| cp |" in output
    result = json.loads((run / "evaluation" / "metrics.json").read_text())
    m = result["metrics"]
    assert set(m) == {"cl", "cd", "cp"}
    for key in ("rrmse", "q2", "coverage", "crps", "nll"):
        assert np.isfinite(m["cl"][key]) and np.isfinite(m["cp"][key])
    assert np.isfinite(m["cp"]["relative_l2"])
    assert len(result["calibration"]["coverage"]["cl"]) == len(result["calibration"]["levels"])
    for name in ("calibration.png", "fields_cp.png"):
        assert (run / "evaluation" / name).stat().st_size > 1000
    # the regressor reloads and predicts the same held-out cl; it beats the training mean
    model, cfg = load_mmgp_run(run)
    ds = open_airfoil_dataset(data)
    test, train = ds.subset(cfg["split"]["test"]), ds.subset(cfg["split"]["train"])
    mean = model.predict(list(test.meshes), test.inputs(["alpha", "mach"]))
    cl = test.outputs(["cl"])[:, 0]
    err_model = np.sqrt(np.mean((mean["cl"] - cl) ** 2))
    err_mean = np.sqrt(np.mean((train.outputs(["cl"])[:, 0].mean() - cl) ** 2))
    assert err_model < 0.5 * err_mean, (err_model, err_mean)
    assert m["cl"]["rrmse"] == pytest.approx(
        float(np.sqrt(np.mean((mean["cl"] - cl) ** 2 / cl**2))), rel=1e-6)


def test_predict_writes_mean_and_std_fields(run, data, tmp_path):
    out = tmp_path / "pred.vtu"
    output = _invoke(["predict", run, "--mesh", data / "sample_00000.vtu", "--alpha", 3.0,
                      "--mach", 0.2, "--out", out])
    assert "cl = " in output and "+/-" in output
    mesh = meshio.read(out)
    for name in ("cp_mean", "cp_std"):
        values = np.asarray(mesh.point_data[name])
        assert values.shape == (len(mesh.points),) and np.all(np.isfinite(values))
    assert np.all(mesh.point_data["cp_std"] > 0)
    bad = CliRunner().invoke(main, ["predict", str(run), "--mesh", str(data / "sample_00000.vtu"),
                                    "--alpha", "3", "--out", str(tmp_path / "x.vtu")])
    assert bad.exit_code != 0 and "missing ['mach']" in bad.output


def test_boundary_tags_split_and_config_validation(data):
    # the regressor keeps the support's boundary tags, so the morphers can find its wall
    mesh = open_airfoil_dataset(data).meshes[0]
    result = morpher("rbf").morph(mesh, mesh)
    assert np.allclose(result.points, mesh.points[:, :2], atol=1e-8)
    index = open_airfoil_dataset(data).index
    assert split_by_shape(index, 0.34, 3) == split_by_shape(index, 0.34, 3)
    with pytest.raises(ValueError, match="morpher"):
        MMGPRunConfig(data=str(data), morpher="nope")
    with pytest.raises(ValueError, match="nothing to learn"):
        MMGPRunConfig(data=str(data), fields=[], scalars=[])


def test_elasticity_online_morphing_in_mmgp(data, tmp_path):
    """Offline/online split: training meshes by full elasticity solves, a new shape in the span
    of the shape POD. Measured: online morph 22 ms vs 160 ms offline, wall within 6.5e-4
    chords of the target, cl within 0.006 of the panel solution (offline morph: 0.085)."""
    from surrogates.models.mmgp import MMGPRegressor

    ds = open_airfoil_dataset(data, lazy=False)
    shapes = ds.index["shape_id"].values
    train, test = ds.subset(np.flatnonzero(shapes != 5)), ds.subset(np.flatnonzero(shapes == 5))
    outputs = {"cl": train.outputs(["cl"])[:, 0], "cp": train.field("cp")}
    cl_ref = test.outputs(["cl"])[:, 0]
    models, means = {}, {}
    for name in ("elasticity", "elasticity-online"):
        model = MMGPRegressor(morpher=morpher(name), n_restarts=1, max_iter=100)
        model.fit(list(train.meshes), train.inputs(["alpha", "mach"]), outputs)
        means[name] = model.predict(list(test.meshes), test.inputs(["alpha", "mach"]))
        models[name] = model
    online, offline = models["elasticity-online"], models["elasticity"]
    # the training morphs are the same full solves
    np.testing.assert_array_equal(online.shape_pca_.mean_, offline.shape_pca_.mean_)
    res = online.morpher.morph(online.support_, test.meshes[0])
    assert res.quality["n_inverted"] == 0 and online.morpher.n_fallbacks == 0
    assert res.boundary_distance < 2e-3  # chords: the span of 5 training shapes
    coef = online.shape_pca_.transform(res.points.reshape(1, -1))
    np.testing.assert_allclose(online.shape_pca_.inverse_transform(coef)[0],
                               res.points.ravel(), atol=1e-10)  # lies in the POD span
    assert "coefficients" in res.info  # the online Gauss-Newton fit, no elasticity solve
    assert np.abs(means["elasticity-online"]["cl"] - cl_ref).max() < 0.03
    # save/load hands the basis over again: identical predictions
    online.save(tmp_path / "model")
    loaded = MMGPRegressor.load(tmp_path / "model")
    again = loaded.predict(list(test.meshes), test.inputs(["alpha", "mach"]))
    np.testing.assert_array_equal(again["cl"], means["elasticity-online"]["cl"])
